//! `mask`: replaces every value of some string columns with the lower-hex sha256 of its
//! UTF-8 bytes. Nulls stay null; the column keeps its type (`Utf8`, `LargeUtf8` or
//! `Utf8View`), so the output schema is the input schema.
//!
//! Config: `columns` (required), a comma-separated list of string columns.

use std::sync::Arc;

use sluice_sdk::arrow_array::StringViewArray;
use sluice_sdk::arrow_array::builder::GenericStringBuilder;
use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::{Array, ArrayRef, OffsetSizeTrait, RecordBatch};
use sluice_sdk::arrow_buffer::{Buffer, ScalarBuffer};
use sluice_sdk::arrow_schema::{DataType, SchemaRef};
use sluice_sdk::kernels::sha256_many;
use sluice_sdk::{ColumnOutput, ColumnPlan, Columns, Config, Error, PluginInfo, Transform};

/// The mask transform.
pub struct Mask {
    columns: Vec<usize>,
    schema: SchemaRef,
}

/// Hex digest length.
const HEX_LEN: usize = 64;

/// Bytes of values handed to the host's SHA-256 kernel per call: large enough that the
/// call costs nothing per value, small enough that the copies it makes stay small.
const CALL_BYTES: usize = 8 << 20;
/// Values per call at most (empty strings cost no bytes; the host takes up to 8,388,608).
const CALL_VALUES: usize = 1 << 20;

/// The SHA-256 of every valid value, in order (nulls skipped), 32 bytes each.
///
/// The host's kernel does the hashing (`sluice:kernels/hash`): inside the sandbox SHA-256
/// would run in software, 4-5x slower per value than the host's SHA instructions.
fn digests<'a>(values: impl Iterator<Item = Option<&'a str>>, valid: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(valid * 32);
    let (mut data, mut ends) = (Vec::new(), Vec::new());
    for v in values.flatten() {
        if !ends.is_empty() && (data.len() + v.len() > CALL_BYTES || ends.len() == CALL_VALUES) {
            out.extend(sha256_many(&data, &ends)?);
            data.clear();
            ends.clear();
        }
        append(&mut data, v.as_bytes());
        let end = u32::try_from(data.len())
            .map_err(|_| Error::InvalidInput(format!("a string of {} bytes is too long to mask", v.len())))?;
        ends.push(end);
    }
    if !ends.is_empty() {
        out.extend(sha256_many(&data, &ends)?);
    }
    Ok(out)
}

/// `data.extend_from_slice(v)` in copies of fixed sizes: 16 bytes a step, the last step
/// overlapping the one before; a shorter value as two overlapping copies of 8 or 4 bytes.
///
/// In the sandbox a copy of unknown length is a `memory.copy`, which the runtime performs
/// by calling out of the compiled code: for values of 10 to 43 bytes (TPC-H's comments)
/// that call cost more than the copy. Fixed sizes compile to plain loads and stores.
#[inline]
fn append(data: &mut Vec<u8>, v: &[u8]) {
    use std::ptr::{read_unaligned, write_unaligned};
    let n = v.len();
    data.reserve(n);
    let start = data.len();
    // SAFETY: `reserve` made room for `n` bytes after `start`. Every copy reads `K` bytes
    // of `v` at `at` with `at + K <= n`, and writes them to the same place in that room;
    // after the copies all `n` bytes are written, so the new length covers initialized bytes.
    unsafe {
        let (src, dst) = (v.as_ptr(), data.as_mut_ptr().add(start));
        #[inline(always)]
        unsafe fn copy<const K: usize>(src: *const u8, dst: *mut u8, at: usize) {
            // SAFETY: the caller's bounds (see `append`).
            unsafe {
                write_unaligned(
                    dst.add(at).cast::<[u8; K]>(),
                    read_unaligned(src.add(at).cast::<[u8; K]>()),
                )
            }
        }
        if n >= 16 {
            let mut at = 0;
            while at + 16 <= n {
                copy::<16>(src, dst, at);
                at += 16;
            }
            if at < n {
                copy::<16>(src, dst, n - 16);
            }
        } else if n >= 8 {
            copy::<8>(src, dst, 0);
            copy::<8>(src, dst, n - 8);
        } else if n >= 4 {
            copy::<4>(src, dst, 0);
            copy::<4>(src, dst, n - 4);
        } else {
            for at in 0..n {
                copy::<1>(src, dst, at);
            }
        }
        data.set_len(start + n);
    }
}

/// The two lower-hex digits of every byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [DIGITS[b >> 4], DIGITS[b & 0xf]];
        b += 1;
    }
    t
};

/// Lower hex of `digest` into `out` (twice as long): 16 bytes a step as SIMD, the rest
/// by table.
#[inline]
fn hex_into(digest: &[u8], out: &mut [u8]) {
    let (blocks, tail) = digest.as_chunks::<16>();
    let (outs, _) = out.as_chunks_mut::<32>();
    for (block, o) in blocks.iter().zip(outs) {
        hex16(block, o);
    }
    for (pair, byte) in out[blocks.len() * 32..].chunks_exact_mut(2).zip(tail) {
        pair.copy_from_slice(&HEX_PAIRS[*byte as usize]);
    }
}

/// Lower hex of 16 bytes. One algorithm on every target, so that the plugin compiled
/// natively (what the transform benchmark compares the sandbox with) does the same work:
/// split into nibbles, `n + '0'`, plus 39 where `n > 9` (`'a' - '0' - 10`), interleave.
/// In the sandbox the table loop cost 15% of `mask`'s time (two loads and a store per byte).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline]
fn hex16(src: &[u8; 16], dst: &mut [u8; 32]) {
    use core::arch::wasm32::*;
    // SAFETY: `src` is 16 readable bytes; `v128_load` reads them unaligned.
    let v = unsafe { v128_load(src.as_ptr().cast()) };
    let digit = |n: v128| {
        let above_nine = v128_and(u8x16_gt(n, u8x16_splat(9)), u8x16_splat(b'a' - b'0' - 10));
        u8x16_add(u8x16_add(n, u8x16_splat(b'0')), above_nine)
    };
    let (high, low) = (digit(u8x16_shr(v, 4)), digit(v128_and(v, u8x16_splat(0x0f))));
    let first = u8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(high, low);
    let second = u8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(high, low);
    // SAFETY: `dst` is 32 writable bytes; `v128_store` writes them unaligned.
    unsafe {
        v128_store(dst.as_mut_ptr().cast(), first);
        v128_store(dst.as_mut_ptr().add(16).cast(), second);
    }
}

/// [`hex16`] with SSE2, which every x86-64 CPU has.
#[cfg(target_arch = "x86_64")]
#[inline]
fn hex16(src: &[u8; 16], dst: &mut [u8; 32]) {
    use core::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86-64 baseline, so its intrinsics can be called; `src`
    // is 16 readable bytes and `dst` 32 writable ones, loaded and stored unaligned.
    unsafe {
        let v = _mm_loadu_si128(src.as_ptr().cast());
        let digit = |n: __m128i| {
            let above_nine = _mm_and_si128(
                _mm_cmpgt_epi8(n, _mm_set1_epi8(9)),
                _mm_set1_epi8((b'a' - b'0' - 10) as i8),
            );
            _mm_add_epi8(_mm_add_epi8(n, _mm_set1_epi8(b'0' as i8)), above_nine)
        };
        let nibbles = _mm_set1_epi8(0x0f);
        // Nibbles are 0..=15, so the signed compare with 9 is right.
        let high = digit(_mm_and_si128(_mm_srli_epi16(v, 4), nibbles));
        let low = digit(_mm_and_si128(v, nibbles));
        _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm_unpacklo_epi8(high, low));
        _mm_storeu_si128(dst.as_mut_ptr().add(16).cast(), _mm_unpackhi_epi8(high, low));
    }
}

/// [`hex16`] elsewhere: by table.
#[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
#[inline]
fn hex16(src: &[u8; 16], dst: &mut [u8; 32]) {
    for (pair, byte) in dst.chunks_exact_mut(2).zip(src) {
        pair.copy_from_slice(&HEX_PAIRS[*byte as usize]);
    }
}

/// Lower hex of one 32-byte digest, as a `str`.
#[inline]
fn hex<'a>(digest: &[u8], buf: &'a mut [u8; HEX_LEN]) -> &'a str {
    hex_into(digest, buf);
    // Only ASCII hex digits were written.
    std::str::from_utf8(buf).unwrap_or_default()
}

fn mask_offsets<O: OffsetSizeTrait>(array: &ArrayRef) -> Result<ArrayRef, Error> {
    let array = array.as_string::<O>();
    let valid = array.len() - array.null_count();
    let sums = digests(array.iter(), valid)?;
    let mut sums = sums.chunks_exact(32);
    let mut buf = [0; HEX_LEN];
    let mut out = GenericStringBuilder::<O>::with_capacity(array.len(), valid * HEX_LEN);
    for i in 0..array.len() {
        match array.is_valid(i).then(|| sums.next()).flatten() {
            Some(d) => out.append_value(hex(d, &mut buf)),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Digests per data buffer of a masked view column (2 GiB of hex): a view's offset is a
/// `u32`, and `usize` is 32 bits in wasm.
const DIGESTS_PER_BUFFER: usize = (1 << 31) / HEX_LEN;

/// A view column built directly: the hex digests back to back in data buffers, one view per
/// valid value pointing at its 64 bytes (never inlined: longer than 12 bytes). Building it
/// through `StringViewBuilder` copied each digest once more and checked it was UTF-8
/// (`str::from_utf8` per value, slow in wasm), for bytes that are hex digits by construction.
fn mask_view(array: &ArrayRef) -> Result<ArrayRef, Error> {
    let array = array.as_string_view();
    let valid = array.len() - array.null_count();
    let sums = digests(array.iter(), valid)?;
    let mut buffers = vec![];
    for chunk in sums.chunks(32 * DIGESTS_PER_BUFFER) {
        // Appended a digest at a time rather than written over zeros: zeroing the buffer
        // first was a `memory.fill` over all of it (2% of `mask`'s time at 262,144 rows).
        let mut data = Vec::with_capacity(chunk.len() * 2);
        let mut hex = [0u8; HEX_LEN];
        for digest in chunk.chunks_exact(32) {
            hex_into(digest, &mut hex);
            data.extend_from_slice(&hex);
        }
        buffers.push(Buffer::from_vec(data));
    }
    let mut k = 0usize;
    let views: Vec<u128> = (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                return 0;
            }
            let (buffer, offset) = (k / DIGESTS_PER_BUFFER, (k % DIGESTS_PER_BUFFER) * HEX_LEN);
            k += 1;
            let data = &buffers[buffer];
            let prefix = u32::from_le_bytes([data[offset], data[offset + 1], data[offset + 2], data[offset + 3]]);
            HEX_LEN as u128 | (u128::from(prefix) << 32) | ((buffer as u128) << 64) | ((offset as u128) << 96)
        })
        .collect();
    // SAFETY: every view of a valid value has length 64, the first 4 bytes of its data as
    // prefix, and points at 64 bytes inside its buffer (k < valid digests, 64 each); those
    // bytes are ASCII hex digits. Null slots hold the zero view.
    let out = unsafe {
        StringViewArray::new_unchecked(ScalarBuffer::from(views), Arc::from(buffers), array.nulls().cloned())
    };
    Ok(Arc::new(out))
}

/// Mask one string column (`Utf8`, `LargeUtf8` or `Utf8View`).
pub fn mask_column(array: &ArrayRef) -> Result<ArrayRef, Error> {
    match array.data_type() {
        DataType::Utf8 => mask_offsets::<i32>(array),
        DataType::LargeUtf8 => mask_offsets::<i64>(array),
        DataType::Utf8View => mask_view(array),
        other => Err(Error::InvalidInput(format!("mask needs a string column, got {other}"))),
    }
}

impl Transform for Mask {
    const INFO: PluginInfo = PluginInfo {
        name: "mask",
        version: "1.0.3",
        description: "Replaces string values with their lower-hex sha256 (`columns=a,b`).",
        stateful: false,
    };

    fn open(config: &Config, input_schema: SchemaRef, _state: Option<&[u8]>) -> Result<Self, Error> {
        config.check_known(&["columns"])?;
        let list = config.require("columns")?;
        let mut columns = vec![];
        for name in list.split(',').map(str::trim) {
            let i = input_schema.index_of(name).map_err(|_| {
                let names: Vec<String> = input_schema
                    .fields()
                    .iter()
                    .map(|f| format!("`{}`", f.name()))
                    .collect();
                Error::InvalidConfig(format!(
                    "config key `columns`: unknown column `{name}`; the input has {}",
                    names.join(", ")
                ))
            })?;
            let dt = input_schema.field(i).data_type();
            if !matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                return Err(Error::InvalidConfig(format!(
                    "config key `columns`: column `{name}` is {dt}; mask works on string columns (Utf8, LargeUtf8, Utf8View)"
                )));
            }
            if !columns.contains(&i) {
                columns.push(i);
            }
        }
        Ok(Mask {
            columns,
            schema: input_schema,
        })
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
        let mut columns = batch.columns().to_vec();
        for &i in &self.columns {
            columns[i] = mask_column(&columns[i])?;
        }
        Ok(vec![RecordBatch::try_new(Arc::clone(&self.schema), columns)?])
    }

    /// Reads only the masked columns and returns their replacements; the host passes the
    /// other columns through.
    fn column_plan(&self) -> Option<ColumnPlan> {
        let mut masked = self.columns.clone();
        masked.sort_unstable();
        Some(ColumnPlan::replace(
            self.schema.fields().len(),
            masked.iter().copied(),
            &masked,
        ))
    }

    fn process_columns(&mut self, columns: &Columns) -> Result<ColumnOutput, Error> {
        let mut masked = self.columns.clone();
        masked.sort_unstable();
        let computed = masked
            .iter()
            .map(|&i| mask_column(columns.column(i)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ColumnOutput {
            selection: None,
            computed,
        })
    }
}

sluice_sdk::export_plugin!(Mask);

#[cfg(test)]
mod tests {
    use sluice_sdk::arrow_array::{Int32Array, LargeStringArray, StringArray, StringViewArray};
    use sluice_sdk::arrow_schema::{Field, Schema};
    use sluice_sdk::harness::run_native;

    use super::*;

    const COURTS: &str = "6693edd1406628d43eddf5cde76bf22907ba89b0c4db885c7bc8528f439ac94d";
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn strings(col: &ArrayRef) -> Vec<Option<String>> {
        let c = arrow_cast_to_utf8(col);
        c.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn arrow_cast_to_utf8(col: &ArrayRef) -> StringArray {
        match col.data_type() {
            DataType::Utf8 => col.as_string::<i32>().clone(),
            DataType::LargeUtf8 => col.as_string::<i64>().iter().collect(),
            DataType::Utf8View => col.as_string_view().iter().collect(),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn known_digests_in_every_string_type() {
        let values = vec![Some("egular courts above the"), None, Some("")];
        for col in [
            Arc::new(StringArray::from(values.clone())) as ArrayRef,
            Arc::new(LargeStringArray::from(values.clone())),
            Arc::new(StringViewArray::from(values.clone())),
        ] {
            let dt = col.data_type().clone();
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int32, false),
                Field::new("l_comment", dt.clone(), true),
            ]));
            let b = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int32Array::from(vec![1, 2, 3])), col],
            )
            .unwrap();
            let out = run_native::<Mask>(
                &[("columns", "l_comment")],
                Arc::clone(&schema),
                std::slice::from_ref(&b),
            )
            .unwrap();
            assert_eq!(out[0].schema(), schema, "{dt}: type kept");
            assert_eq!(out[0].column(0), b.column(0));
            assert_eq!(
                strings(out[0].column(1)),
                [Some(COURTS.to_string()), None, Some(EMPTY.to_string())],
                "{dt}"
            );
        }
    }

    /// The view column built directly equals the `Utf8` path's values (built by arrow's
    /// builder), and passes arrow's full validation: lengths, prefixes, buffer bounds, UTF-8.
    #[test]
    fn views_built_directly_are_valid_and_equal_the_builders() {
        let values: Vec<Option<String>> = (0..300)
            .map(|i| (i % 7 != 3).then(|| format!("value {i} ü").repeat(i % 5)))
            .collect();
        let view: ArrayRef = Arc::new(StringViewArray::from_iter(values.iter().map(|v| v.as_deref())));
        let plain: ArrayRef = Arc::new(StringArray::from_iter(values.iter().map(|v| v.as_deref())));
        for (start, len) in [(0, 300), (5, 200)] {
            let masked = mask_column(&view.slice(start, len)).unwrap();
            masked.to_data().validate_full().unwrap();
            let reference = mask_column(&plain.slice(start, len)).unwrap();
            assert!(strings(&masked) == strings(&reference), "rows {start}..+{len} differ");
        }
    }

    /// The SIMD hex equals the table's for every byte value, in every position of a block,
    /// and for a tail shorter than a block.
    #[test]
    fn append_copies_every_length() {
        let src: Vec<u8> = (0..80u8).map(|i| i.wrapping_mul(29)).collect();
        for len in 0..=src.len() {
            let mut data = b"before".to_vec();
            append(&mut data, &src[..len]);
            assert_eq!(&data[..6], b"before");
            assert_eq!(&data[6..], &src[..len], "length {len}");
        }
    }

    #[test]
    fn hex_of_every_byte_in_every_position() {
        let table = |bytes: &[u8]| -> Vec<u8> { bytes.iter().flat_map(|b| HEX_PAIRS[*b as usize]).collect() };
        for shift in 0..16 {
            let bytes: Vec<u8> = (0..=255u8).cycle().skip(shift * 7).take(256 + 5).collect();
            let mut out = vec![0u8; bytes.len() * 2];
            hex_into(&bytes, &mut out);
            assert_eq!(out, table(&bytes), "shift {shift}");
        }
        let mut buf = [0; HEX_LEN];
        let d: Vec<u8> = (0..32).map(|i| i * 8 + 3).collect();
        assert_eq!(hex(&d, &mut buf), String::from_utf8(table(&d)).unwrap());
        assert_eq!(table(&[0x0f, 0xa0]), b"0fa0");
    }

    #[test]
    fn config_errors() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let err = |cols: &str| match run_native::<Mask>(&[("columns", cols)], Arc::clone(&schema), &[]) {
            Err(Error::InvalidConfig(m)) => m,
            o => panic!("{cols}: {o:?}"),
        };
        let e = err("s, n");
        assert!(e.contains("`n` is Int32"), "{e}");
        let e = err("x");
        assert!(e.contains("`x`") && e.contains("`n`, `s`"), "{e}");
    }

    /// Values spread over several kernel calls (more than `CALL_BYTES`), nulls between
    /// them: every digest lands on its own row.
    #[test]
    fn digests_across_kernel_calls_stay_on_their_rows() {
        let long = "x".repeat(1 << 20);
        let values: Vec<Option<&str>> = (0..40)
            .map(|i| match i % 4 {
                0 => None,
                1 => Some("egular courts above the"),
                2 => Some(long.as_str()),
                _ => Some(""),
            })
            .collect();
        let long_sum = hex_of(&long);
        let col: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
        let out = strings(&mask_column(&col).unwrap());
        for (i, (got, v)) in out.iter().zip(&values).enumerate() {
            let want = v.map(|v| match v {
                "" => EMPTY.to_string(),
                "egular courts above the" => COURTS.to_string(),
                _ => long_sum.clone(),
            });
            assert_eq!(got, &want, "row {i}");
        }
    }

    /// More empty values than one kernel call takes: the call is cut by count too.
    #[test]
    fn many_empty_values_are_cut_into_calls_by_count() {
        let mut values = vec![Some(""); CALL_VALUES + 3];
        values.push(Some("egular courts above the"));
        let col: ArrayRef = Arc::new(StringViewArray::from(values));
        let out = strings(&mask_column(&col).unwrap());
        assert_eq!(out.len(), CALL_VALUES + 4);
        assert!(out[..CALL_VALUES + 3].iter().all(|v| v.as_deref() == Some(EMPTY)));
        assert_eq!(out[CALL_VALUES + 3].as_deref(), Some(COURTS));
    }

    fn hex_of(v: &str) -> String {
        let d = sha256_many(v.as_bytes(), &[v.len() as u32]).unwrap();
        hex(&d, &mut [0; HEX_LEN]).to_string()
    }
}
