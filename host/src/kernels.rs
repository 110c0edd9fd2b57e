//! `sluice:kernels@1.0.0` (`wit/kernels/kernels.wit`): pure functions the host computes
//! natively for plugins, for work WebAssembly has no instructions for.
//!
//! SHA-256 is the case that matters: in the sandbox it runs in software, natively it uses
//! the CPU's SHA extensions where there are some. The kernels are deterministic (the same
//! bytes in give the same bytes out on every host) and grant nothing, and they charge
//! fuel for their work so that a fuel limit still bounds a plugin that loops over them.

pub use sluice_kernels::{SHA256_MAX_VALUES, sha256_many};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, WasmList};

use crate::sandbox::PluginState;

/// What a plugin's import of the kernels starts with.
pub const IMPORT_PREFIX: &str = "sluice:kernels/";
/// The one version of the `hash` interface this host provides.
pub const HASH_INTERFACE: &str = "sluice:kernels/hash@1.0.0";

/// Fuel a call of `sha256-many` costs: one unit per byte and 64 per value, about a tenth
/// of what the same hashing costs compiled into the plugin, and a function of the
/// arguments only, so fuel figures stay deterministic.
pub fn sha256_fuel(bytes: usize, values: usize) -> u64 {
    bytes as u64 + 64 * values as u64
}

/// Define the kernels in `linker`.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    let mut hash = linker.instance(HASH_INTERFACE)?;
    hash.func_wrap(
        "sha256-many",
        |mut store: StoreContextMut<'_, PluginState>, (data, ends): (WasmList<u8>, WasmList<u32>)| {
            charge(&mut store, sha256_fuel(data.len(), ends.len()))?;
            // Read in place from the plugin's memory: the values are not copied first.
            let result = sha256_many(
                data.as_le_slice(&store),
                ends.as_le_slice(&store).iter().map(|e| u32::from_le(*e)),
            );
            Ok((result,))
        },
    )
}

/// Take `cost` units of the call's fuel, or trap as running out of fuel would.
fn charge(store: &mut StoreContextMut<'_, PluginState>, cost: u64) -> wasmtime::Result<()> {
    let left = store.get_fuel()?;
    if cost > left {
        store.set_fuel(0)?;
        return Err(wasmtime::Trap::OutOfFuel.into());
    }
    store.set_fuel(left - cost)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn sha256_many_hashes_each_value_and_names_bad_ends() {
        let data = b"abchello";
        let out = sha256_many(data, [3, 3, 8].into_iter()).unwrap();
        assert_eq!(out.len(), 96);
        assert_eq!(
            hex::encode(&out[..32]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(&out[32..64]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(&out[64..], Sha256::digest(b"hello").as_slice());
        assert_eq!(sha256_many(data, [].into_iter()).unwrap(), Vec::<u8>::new());
        let e = sha256_many(data, [3, 2].into_iter()).unwrap_err();
        assert!(e.contains("`ends[1]` is 2, before the previous end 3"), "{e}");
        let e = sha256_many(data, [9].into_iter()).unwrap_err();
        assert!(e.contains("`ends[0]` is 9, past the end of `data` (8 bytes)"), "{e}");
        // Empty values cost no input: the count is capped instead.
        let many = vec![0u32; SHA256_MAX_VALUES + 1];
        let e = sha256_many(data, many.into_iter()).unwrap_err();
        assert!(
            e.contains("8388609 values in one call, more than the 8388608 allowed"),
            "{e}"
        );
        assert_eq!(sha256_many(b"", vec![0u32; 1000].into_iter()).unwrap().len(), 32_000);
    }
}
