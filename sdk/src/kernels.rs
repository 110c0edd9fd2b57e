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
    /// What the host computes (`sluice-kernels`, the crate both use), in process.
    pub fn sha256_many(data: &[u8], ends: &[u32]) -> Result<Vec<u8>, String> {
        sluice_kernels::sha256_many(data, ends.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
