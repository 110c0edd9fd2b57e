//! Kernels the host computes natively (`sluice:kernels@1.0.0`, `wit/kernels/kernels.wit`).
//!
//! Inside the sandbox these call the host, which runs them on the CPU's own instructions
//! (SHA-256 with SHA extensions, 4-5x faster per value than software SHA-256 compiled to
//! WebAssembly). In a native build (unit tests, the harness) the same functions run in
//! process and give the same bytes, so a plugin's tests cover the code it ships.
//!
//! A component imports the kernels only if the plugin calls them; the host charges fuel
//! for their work.

use crate::Error;

/// SHA-256 of each of a batch of byte strings: `data` holds the values back to back, and
/// `ends[i]` is where value `i` ends. Returns 32 bytes per value, in order.
///
/// ```
/// let digests = sluice_sdk::kernels::sha256_many(b"abchello", &[3, 8]).unwrap();
/// assert_eq!(digests.len(), 64);
/// assert_eq!(digests[..4], [0xba, 0x78, 0x16, 0xbf]); // sha256("abc")
/// ```
///
/// # Errors
///
/// [`Error::Internal`] naming the first end that comes before the previous one or lies
/// past `data`, or the count if there are more than 8,388,608 values (call in batches).
pub fn sha256_many(data: &[u8], ends: &[u32]) -> Result<Vec<u8>, Error> {
    imp::sha256_many(data, ends).map_err(|e| Error::Internal(format!("sha256-many: {e}")))
}

#[cfg(target_arch = "wasm32")]
mod imp {
    pub fn sha256_many(data: &[u8], ends: &[u32]) -> Result<Vec<u8>, String> {
        crate::bindings::sluice::kernels::hash::sha256_many(data, ends)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use sha2::{Digest, Sha256};

    /// The host's cap on values per call (`SHA256_MAX_VALUES`).
    const MAX_VALUES: usize = 1 << 23;

    /// What the host does (`sluice_host::kernels::sha256_many`), with the same messages: a
    /// copy, because a plugin build cannot depend on the host (wasmtime does not build for
    /// wasm), so keep the two in step.
    pub fn sha256_many(data: &[u8], ends: &[u32]) -> Result<Vec<u8>, String> {
        if ends.len() > MAX_VALUES {
            return Err(format!(
                "{} values in one call, more than the {MAX_VALUES} allowed: hash them in batches",
                ends.len()
            ));
        }
        let mut out = Vec::with_capacity(ends.len() * 32);
        let mut start = 0usize;
        for (i, &end) in ends.iter().enumerate() {
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
    pub(super) fn sha256_append(value: &[u8], out: &mut Vec<u8>) {
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
            super::imp::sha256_append(&bytes[..len], &mut out);
            assert_eq!(out, Sha256::digest(&bytes[..len]).as_slice(), "length {len}");
        }
    }

    #[test]
    fn sha256_many_hashes_each_value_and_refuses_bad_ends() {
        let out = sha256_many(b"abc", &[0, 3]).unwrap();
        assert_eq!(
            out[..32],
            [
                0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27,
                0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55
            ]
        );
        assert_eq!(out[32..36], [0xba, 0x78, 0x16, 0xbf]);
        let Err(Error::Internal(m)) = sha256_many(b"abc", &[2, 1]) else {
            panic!("decreasing ends accepted")
        };
        assert!(m.contains("`ends[1]` is 1, before the previous end 2"), "{m}");
        let Err(Error::Internal(m)) = sha256_many(b"abc", &[4]) else {
            panic!("end past data accepted")
        };
        assert!(m.contains("past the end of `data` (3 bytes)"), "{m}");
    }
}
