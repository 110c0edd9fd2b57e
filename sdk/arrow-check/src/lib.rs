//! Full validation of Arrow arrays decoded without it, shared by the sluice host (what a
//! plugin returns) and the SDK (what a plugin receives): `ArrayData::validate_full`, with a
//! faster value check for `Utf8View`, whose per-value `str::from_utf8` dominated decoding.
//! Also [`compact_views`], which both sides run on what they send across the boundary, and
//! [`FlatLayout`], which decodes batches of flat fixed-width columns without arrow's generic
//! reader.

use std::sync::Arc;

mod flat;
pub use flat::{FlatEncoder, FlatLayout, FlatMessage};

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_data::ArrayData;
use arrow_schema::{ArrowError, DataType};

/// Whether `dt` is, or holds, a dictionary type. Encoders that keep state across calls
/// need this: a long-lived IPC encoder sends each dictionary once, but every call's stream
/// must carry its own.
pub fn has_dictionary(dt: &DataType) -> bool {
    match dt {
        DataType::Dictionary(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::Map(f, _) => has_dictionary(f.data_type()),
        DataType::Struct(fs) => fs.iter().any(|f| has_dictionary(f.data_type())),
        DataType::Union(fs, _) => fs.iter().any(|(_, f)| has_dictionary(f.data_type())),
        DataType::RunEndEncoded(a, b) => has_dictionary(a.data_type()) || has_dictionary(b.data_type()),
        _ => false,
    }
}

/// Whether any field of `schema` is, or holds, a dictionary (see [`has_dictionary`]).
pub fn schema_has_dictionary(schema: &arrow_schema::Schema) -> bool {
    schema.fields().iter().any(|f| has_dictionary(f.data_type()))
}

/// Copy the live strings of view columns that hold much more data than they use.
///
/// The IPC writer sends every data buffer a view array holds, and every value crossing the
/// boundary is copied and validated again on the other side. Such buffers are mostly dead
/// bytes: after a selective kernel (`filter` keeping 1 row in 8, say), and in the batches
/// the Parquet reader returns (an 8,192-row batch of TPC-H `l_comment` holds a 1 MB buffer
/// and uses 209 kB of it). Compacting costs one copy of the live bytes.
pub fn compact_views(batch: RecordBatch) -> RecordBatch {
    fn wasteful(held: usize, used: usize) -> bool {
        held > 2 * used + 64 * 1024
    }
    let needs = batch.columns().iter().map(|c| match c.data_type() {
        DataType::Utf8View => {
            let a = c.as_string_view();
            wasteful(
                a.data_buffers().iter().map(|b| b.len()).sum(),
                a.total_buffer_bytes_used(),
            )
        }
        DataType::BinaryView => {
            let a = c.as_binary_view();
            wasteful(
                a.data_buffers().iter().map(|b| b.len()).sum(),
                a.total_buffer_bytes_used(),
            )
        }
        _ => false,
    });
    // Counting the used bytes visits every view: once per column.
    let needs: Vec<bool> = needs.collect();
    if !needs.contains(&true) {
        return batch;
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(needs)
        .map(|(c, needs)| match c.data_type() {
            DataType::Utf8View if needs => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView if needs => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(c),
        })
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    // Same schema, same types and lengths: this cannot fail; keep the original if it does.
    RecordBatch::try_new_with_options(Arc::clone(batch.schema_ref()), columns, &options).unwrap_or(batch)
}

/// What `ArrayData::validate_full` checks (layout, nulls, values, recursively), with the
/// `Utf8View` values of `data` itself checked by [`check_string_views`].
///
/// # Errors
/// The first violation found, as arrow words it.
pub fn validate_full(data: &ArrayData) -> Result<(), ArrowError> {
    if data.data_type() == &DataType::Utf8View {
        data.validate()?;
        data.validate_nulls()?;
        check_string_views(data)
    } else {
        data.validate_full()
    }
}

/// What `validate_string_view` checks (buffer index and bounds, prefix, zero padding of
/// inline views, UTF-8), with ASCII fast paths: TPC-H-like text is ASCII, and arrow's check
/// calls `str::from_utf8` once per value, which dominates decoding in a wasm guest.
///
/// A data buffer that is all ASCII (one pass over it, 8 bytes a step) needs no per-value
/// UTF-8 check at all: every value in it is ASCII. Only values in other buffers are scanned.
///
/// # Errors
/// The first bad view, by index.
pub fn check_string_views(data: &ArrayData) -> Result<(), ArrowError> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let views: &[u128] = &data.buffers()[0].typed_data::<u128>()[data.offset()..data.offset() + data.len()];
    let buffers = &data.buffers()[1..];
    let ascii: Vec<bool> = buffers.iter().map(|b| is_ascii(b)).collect();
    let bad = |idx: usize, what: &str| ArrowError::InvalidArgumentError(format!("view {idx}: {what}"));
    let utf8 = |idx: usize, b: &[u8]| {
        std::str::from_utf8(b)
            .map(|_| ())
            .map_err(|e| bad(idx, &format!("non-UTF-8 data: {e}")))
    };
    // Work on the two `u64` halves: wasm has no 128-bit shifts (they become calls).
    for (idx, &v) in views.iter().enumerate() {
        let (lo, hi) = (v as u64, (v >> 64) as u64);
        let len = lo as u32 as usize;
        if len <= 12 {
            // The bytes after the value must be zero: in the low word's upper half past
            // `len` bytes, and in the high word past `len - 4` (masks, not a byte loop).
            let pad_lo = if len >= 4 { 0 } else { !0u64 << (32 + 8 * len) };
            let pad_hi = if len >= 12 {
                0
            } else {
                !0u64 << (8 * len.saturating_sub(4))
            };
            if lo & pad_lo != 0 || hi & pad_hi != 0 {
                return Err(bad(idx, "non-zero padding in an inline view"));
            }
            if ((lo >> 32) | hi) & HIGH != 0 {
                utf8(idx, &v.to_le_bytes()[4..4 + len])?;
            }
            continue;
        }
        let (prefix, index, offset) = ((lo >> 32) as u32, hi as u32 as usize, (hi >> 32) as usize);
        let buffer = buffers
            .get(index)
            .ok_or_else(|| bad(idx, "buffer index out of range"))?;
        let b = offset
            .checked_add(len)
            .and_then(|end| buffer.get(offset..end))
            .ok_or_else(|| bad(idx, "slice out of the buffer's bounds"))?;
        // As one `u32`: a 4-byte slice comparison is a `memcmp` call in wasm.
        if u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != prefix {
            return Err(bad(idx, "prefix does not match the data"));
        }
        if !ascii[index] && !is_ascii(b) {
            utf8(idx, b)?;
        }
    }
    Ok(())
}

/// Whether `b` is all ASCII: the high bits of its bytes ORed together, 16 bytes a step as
/// wasm SIMD in the sandbox (LLVM left the portable loop scalar there), 8 elsewhere.
fn is_ascii(b: &[u8]) -> bool {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{u8x16_bitmask, u8x16_splat, v128_load, v128_or};
        let (chunks, tail) = b.as_chunks::<16>();
        let mut any = u8x16_splat(0);
        for c in chunks {
            // SAFETY: `c` is 16 readable bytes; `v128_load` reads them unaligned.
            any = v128_or(any, unsafe { v128_load(c.as_ptr().cast()) });
        }
        u8x16_bitmask(any) == 0 && tail.iter().all(|&x| x < 0x80)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let (words, tail) = b.as_chunks::<8>();
        let any = words.iter().fold(0u64, |a, w| a | u64::from_le_bytes(*w));
        (any | tail.iter().fold(0u64, |a, &x| a | x as u64)) & HIGH == 0
    }
}

#[cfg(test)]
mod tests {
    use arrow_buffer::Buffer;
    use arrow_schema::DataType;

    use super::*;

    #[test]
    fn dictionaries_are_found_however_deep() {
        use std::sync::Arc;

        use arrow_schema::Field;
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert!(has_dictionary(&dict));
        let list = DataType::List(Arc::new(Field::new("x", dict.clone(), true)));
        assert!(has_dictionary(&list));
        let s = DataType::Struct(vec![Field::new("a", DataType::Int64, true), Field::new("b", list, true)].into());
        assert!(has_dictionary(&s));
        let plain = DataType::Struct(vec![Field::new("a", DataType::Utf8View, true)].into());
        assert!(!has_dictionary(&plain));
        assert!(!has_dictionary(&DataType::Decimal128(15, 2)));
        let schema = |dt: DataType| {
            arrow_schema::Schema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", dt, true)])
        };
        assert!(schema_has_dictionary(&schema(dict)));
        assert!(!schema_has_dictionary(&schema(DataType::Utf8View)));
    }

    /// The view check accepts what arrow accepts and refuses what it refuses.
    #[test]
    fn string_view_check_agrees_with_arrow() {
        use arrow_array::{Array, BinaryViewArray, StringViewArray};
        let good = StringViewArray::from(vec![
            Some("short"),
            None,
            Some("a string longer than twelve bytes"),
            Some(""),
            Some("ünïcödé, long enough to be out of line"),
            Some("ü"),
        ]);
        assert!(check_string_views(&good.to_data()).is_ok());
        assert!(check_string_views(&good.slice(2, 3).to_data()).is_ok());
        for bad in [
            &b"\xff"[..],
            &b"0123456789abcdef\xc3"[..],
            &b"0123456789abcdef\xc3(rest)"[..],
        ] {
            let bin = BinaryViewArray::from(vec![Some(&b"fine"[..]), Some(bad)]);
            let data = bin.to_data().into_builder().data_type(DataType::Utf8View);
            // SAFETY: only handed to the checks below, never used as a string array.
            let data = unsafe { data.build_unchecked() };
            assert!(data.validate_values().is_err(), "arrow refuses {bad:?}");
            assert!(check_string_views(&data).is_err(), "the view check refuses {bad:?}");
        }
        let long = StringViewArray::from(vec!["a string longer than twelve bytes"]).to_data();
        let view = long.buffers()[0].typed_data::<u128>()[0];
        for v in [view + (1u128 << 96) * 100, view ^ (1u128 << 33), view + (1u128 << 64)] {
            let views = Buffer::from_vec(vec![v]);
            let data = long
                .clone()
                .into_builder()
                .buffers(vec![views, long.buffers()[1].clone()]);
            // SAFETY: only handed to the checks below.
            let data = unsafe { data.build_unchecked() };
            assert!(data.validate_values().is_err());
            assert!(check_string_views(&data).is_err());
        }
        // Non-zero padding after a short inline string.
        let short = StringViewArray::from(vec!["ab"]).to_data();
        let v = short.buffers()[0].typed_data::<u128>()[0] | (1u128 << 120);
        let data = short.clone().into_builder().buffers(vec![Buffer::from_vec(vec![v])]);
        // SAFETY: only handed to the checks below.
        let data = unsafe { data.build_unchecked() };
        assert!(data.validate_values().is_err());
        assert!(check_string_views(&data).is_err());
    }

    /// Inline views of every length pass, and a set bit in any padding byte after the value
    /// is refused, as arrow refuses it.
    #[test]
    fn inline_padding_is_checked_at_every_length_and_byte() {
        use arrow_array::{Array, StringViewArray};
        for len in 0..=12 {
            let good = StringViewArray::from(vec!["x".repeat(len)]).to_data();
            assert!(check_string_views(&good).is_ok(), "length {len}");
            let view = good.buffers()[0].typed_data::<u128>()[0];
            for byte in 4 + len..16 {
                let v = view | (1u128 << (8 * byte));
                let data = good.clone().into_builder().buffers(vec![Buffer::from_vec(vec![v])]);
                // SAFETY: only handed to the checks below.
                let data = unsafe { data.build_unchecked() };
                assert!(data.validate_values().is_err(), "arrow: length {len}, byte {byte}");
                assert!(check_string_views(&data).is_err(), "length {len}, byte {byte}");
            }
        }
    }
}
