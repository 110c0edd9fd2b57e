//! Log through the host (WIT `host.log`); natively (tests) messages go to stderr.
//!
//! ```
//! sluice_sdk::log::info!("kept {} of {} rows", 3, 4);
//! sluice_sdk::log::log(sluice_sdk::log::Level::Warn, "plain message");
//! ```

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed diagnostics, normally hidden.
    Trace,
    /// Diagnostics useful when debugging the plugin.
    Debug,
    /// Normal progress messages.
    Info,
    /// Something unexpected that did not stop the plugin.
    Warn,
    /// Something failed; usually followed by an error result.
    Error,
}

/// Send `message` to the host log at `level`.
#[cfg(target_arch = "wasm32")]
pub fn log(level: Level, message: &str) {
    use crate::bindings::sluice::transform::host;
    let level = match level {
        Level::Trace => host::Level::Trace,
        Level::Debug => host::Level::Debug,
        Level::Info => host::Level::Info,
        Level::Warn => host::Level::Warn,
        Level::Error => host::Level::Error,
    };
    host::log(level, message);
}

/// Send `message` to the host log at `level` (natively: print it to stderr).
#[cfg(not(target_arch = "wasm32"))]
pub fn log(level: Level, message: &str) {
    eprintln!("[{level:?}] {message}");
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sluice_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

/// Log at trace level, with `format!` arguments.
#[macro_export]
macro_rules! __sluice_trace { ($($arg:tt)+) => { $crate::__sluice_log!(Trace, $($arg)+) }; }
/// Log at debug level, with `format!` arguments.
#[macro_export]
macro_rules! __sluice_debug { ($($arg:tt)+) => { $crate::__sluice_log!(Debug, $($arg)+) }; }
/// Log at info level, with `format!` arguments.
#[macro_export]
macro_rules! __sluice_info { ($($arg:tt)+) => { $crate::__sluice_log!(Info, $($arg)+) }; }
/// Log at warn level, with `format!` arguments.
#[macro_export]
macro_rules! __sluice_warn { ($($arg:tt)+) => { $crate::__sluice_log!(Warn, $($arg)+) }; }
/// Log at error level, with `format!` arguments.
#[macro_export]
macro_rules! __sluice_error { ($($arg:tt)+) => { $crate::__sluice_log!(Error, $($arg)+) }; }

#[doc(inline)]
pub use __sluice_debug as debug;
#[doc(inline)]
pub use __sluice_error as error;
#[doc(inline)]
pub use __sluice_info as info;
#[doc(inline)]
pub use __sluice_trace as trace;
#[doc(inline)]
pub use __sluice_warn as warn;
