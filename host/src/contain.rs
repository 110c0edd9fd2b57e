//! Containing panics in third-party decoders of untrusted bytes.
//!
//! arrow and parquet panic on some malformed inputs instead of returning an error. The host
//! runs those decoders inside [`catch`], which turns such a panic into an error the caller
//! reports with the file or plugin named. While a decoder runs under [`catch`], the panic
//! hook stays quiet: the message reaches the user once, inside that error, instead of as a
//! "thread panicked" line on stderr (or in the middle of JSON logs).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// How many [`catch`] frames are active on this thread.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Run `f`; a panic inside it becomes `Err(message)`.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // Chain to the hook in place (the default one, or an embedding program's), so a
        // panic anywhere else is reported as before.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|payload| {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic without a message".to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_nesting_is_kept() {
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(
            catch(|| -> u8 { panic!("bad offset {}", 3) }),
            Err("bad offset 3".to_string())
        );
        let inner = catch(|| catch(|| -> u8 { panic!("inner") }));
        assert_eq!(inner, Ok(Err("inner".to_string())));
        DEPTH.with(|d| assert_eq!(d.get(), 0));
    }
}
