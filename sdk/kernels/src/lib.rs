//! The computations behind `sluice:kernels` (`wit/kernels/kernels.wit`), shared by the host,
//! which runs them for plugins, and the SDK, which runs them in process in a plugin's native
//! build (tests, the harness), so that both give the same bytes and the same errors.

use sha2::{Digest, Sha256};

/// Most values one `sha256-many` call hashes: their digests (256 MiB) are allocated on the
/// host before they are copied into the plugin, so a plugin must not be able to ask for
/// more (empty values cost no input bytes, so `data` does not bound the count).
pub const SHA256_MAX_VALUES: usize = 1 << 23;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct one- and two-block path equals `Sha256` at every length around the
    /// padding boundaries (55/56 bytes, 64, 119/120) and beyond.
    #[test]
    fn short_values_hash_as_sha256_does() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..=200 {
            let mut out = vec![];
            sha256_append(&bytes[..len], &mut out);
            assert_eq!(out, Sha256::digest(&bytes[..len]).as_slice(), "length {len}");
        }
    }
}
