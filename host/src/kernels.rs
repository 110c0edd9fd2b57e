//! `sluice:kernels@1.0.0` (`wit/kernels/kernels.wit`): pure functions the host computes
//! natively for plugins, for work WebAssembly has no instructions for.
//!
//! SHA-256 is the case that matters: in the sandbox it runs in software, natively it uses
//! the CPU's SHA extensions where there are some. The kernels are deterministic (the same
//! bytes in give the same bytes out on every host) and grant nothing, and they charge
//! fuel for their work so that a fuel limit still bounds a plugin that loops over them.

use sha2::{Digest, Sha256};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, WasmList};

use crate::sandbox::PluginState;

/// What a plugin's import of the kernels starts with.
pub const IMPORT_PREFIX: &str = "sluice:kernels/";
/// The one version of the `hash` interface this host provides.
pub const HASH_INTERFACE: &str = "sluice:kernels/hash@1.0.0";

/// Most values one `sha256-many` call hashes: their digests (256 MiB) are allocated on the
/// host before they are copied into the plugin, so a plugin must not be able to ask for
/// more (empty values cost no input bytes, so `data` does not bound the count).
pub const SHA256_MAX_VALUES: usize = 1 << 23;

/// Fuel a call of `sha256-many` costs: one unit per byte and 64 per value, about a tenth
/// of what the same hashing costs compiled into the plugin, and a function of the
/// arguments only, so fuel figures stay deterministic.
pub fn sha256_fuel(bytes: usize, values: usize) -> u64 {
    bytes as u64 + 64 * values as u64
}

/// SHA-256 of each value of `data`, cut at `ends` (see `sha256-many` in the WIT): 32 bytes
/// per value, in order.
///
/// # Errors
///
/// A message naming the first end that comes before the previous one or lies past `data`,
/// or the number of values if there are more than [`SHA256_MAX_VALUES`].
pub fn sha256_many(data: &[u8], ends: impl ExactSizeIterator<Item = u32>) -> Result<Vec<u8>, String> {
    if ends.len() > SHA256_MAX_VALUES {
        return Err(format!(
            "{} values in one call, more than the {SHA256_MAX_VALUES} allowed: hash them in batches",
            ends.len()
        ));
    }
    let mut out = Vec::with_capacity(ends.len() * 32);
    let mut start = 0usize;
    for (i, end) in ends.enumerate() {
        let end = end as usize;
        let Some(value) = data.get(start..end) else {
            return Err(if end < start {
                format!("`ends[{i}]` is {end}, before the previous end {start}: ends must not decrease")
            } else {
                format!("`ends[{i}]` is {end}, past the end of `data` ({} bytes)", data.len())
            });
        };
        sha256_append(value, &mut out);
        start = end;
    }
    Ok(out)
}

/// The SHA-256 initial state (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Append the SHA-256 of `value` to `out`. A value that fits one or two blocks with its
/// padding (up to 119 bytes: most masked strings) is padded here and compressed directly:
/// for such values the hasher's buffering and finalization cost about half as much again
/// as the compression itself. Longer values go through `Sha256`.
fn sha256_append(value: &[u8], out: &mut Vec<u8>) {
    if value.len() > 119 {
        out.extend_from_slice(&Sha256::digest(value));
        return;
    }
    let mut blocks = [[0u8; 64]; 2];
    let n = if value.len() <= 55 { 1 } else { 2 };
    let flat = blocks.as_flattened_mut();
    flat[..value.len()].copy_from_slice(value);
    flat[value.len()] = 0x80;
    flat[n * 64 - 8..n * 64].copy_from_slice(&(value.len() as u64 * 8).to_be_bytes());
    let mut state = SHA256_IV;
    sha2::block_api::compress256(&mut state, &blocks[..n]);
    for word in state {
        out.extend_from_slice(&word.to_be_bytes());
    }
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
    use super::*;

    /// The direct one- and two-block path equals `Sha256` at every length around the
    /// padding boundaries (55/56 bytes, 64, 119/120) and beyond.
    #[test]
    fn short_values_hash_as_sha256_does() {
        use sha2::{Digest, Sha256};
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..=200 {
            let mut out = vec![];
            super::sha256_append(&bytes[..len], &mut out);
            assert_eq!(out, Sha256::digest(&bytes[..len]).as_slice(), "length {len}");
        }
    }

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
