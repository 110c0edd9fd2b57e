//! Arrow IPC stream bytes in and out of plugins: the ABI's data representation.
//!
//! Everything a plugin returns is untrusted: [`decode_stream`] runs the reader's full
//! validation (offsets, UTF-8, nullability, buffer sizes) and checks each batch against the
//! schema the plugin declared, so a broken batch never reaches a sink.

use arrow::array::{Array, ArrayData, RecordBatch};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};

/// Why a byte string could not be turned into batches.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// The bytes are not a valid Arrow IPC stream.
    #[error("invalid Arrow IPC stream: {0}")]
    Malformed(String),
    /// The stream has no schema message.
    #[error("the Arrow IPC stream holds no schema message")]
    NoSchema,
    /// The stream's schema differs from the expected one.
    #[error("schema mismatch: {0}")]
    SchemaMismatch(String),
}

/// Encode a schema as an IPC stream holding only the schema message.
pub fn encode_schema(schema: &Schema) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    // Writing to a Vec cannot fail, and the schema comes from our own readers.
    let mut w = StreamWriter::try_new(&mut out, schema).expect("encode schema");
    w.finish().expect("finish schema stream");
    drop(w);
    out
}

/// Encode batches (all with `schema`) as one IPC stream.
pub fn encode_batches(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>, IpcError> {
    let size: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let mut out = Vec::with_capacity(size + 4096);
    let opts = IpcWriteOptions::default();
    let mut w =
        StreamWriter::try_new_with_options(&mut out, schema, opts).map_err(|e| IpcError::Malformed(e.to_string()))?;
    for b in batches {
        w.write(b).map_err(|e| IpcError::Malformed(e.to_string()))?;
    }
    w.finish().map_err(|e| IpcError::Malformed(e.to_string()))?;
    drop(w);
    Ok(out)
}

/// Decode the schema at the head of an IPC stream.
pub fn decode_schema(bytes: Vec<u8>) -> Result<SchemaRef, IpcError> {
    let mut buf = Buffer::from_vec(bytes);
    let mut dec = StreamDecoder::new();
    while !buf.is_empty() {
        dec.decode(&mut buf).map_err(|e| IpcError::Malformed(e.to_string()))?;
        if let Some(s) = dec.schema() {
            return Ok(s);
        }
    }
    dec.schema().ok_or(IpcError::NoSchema)
}

/// Decode and fully validate an IPC stream whose schema must match `expected`.
///
/// The bytes are wrapped without copying; arrays returned point into them.
pub fn decode_stream(bytes: Vec<u8>, expected: &Schema) -> Result<Vec<RecordBatch>, IpcError> {
    let mut buf = Buffer::from_vec(bytes);
    // SAFETY: every batch is checked by `validate` below before it is returned, which runs
    // arrow's full validation (with an equivalent, faster UTF-8 check for view columns).
    let mut dec = unsafe { StreamDecoder::new().with_skip_validation(true) };
    let mut out = Vec::new();
    let mut checked = false;
    while !buf.is_empty() {
        let got = dec.decode(&mut buf).map_err(|e| IpcError::Malformed(e.to_string()))?;
        if !checked && let Some(s) = dec.schema() {
            check_schema(&s, expected)?;
            checked = true;
        }
        if let Some(b) = got {
            out.push(validate(b)?);
        }
    }
    dec.finish().map_err(|e| IpcError::Malformed(e.to_string()))?;
    if !checked {
        return Err(IpcError::NoSchema);
    }
    Ok(out)
}

/// Validate a batch decoded without validation, as `ArrayData::validate_full` would, with
/// a faster value check for `Utf8View` columns (see [`check_string_views`]).
fn validate(batch: RecordBatch) -> Result<RecordBatch, IpcError> {
    for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
        let data = column.to_data();
        let checked = if data.data_type() == &DataType::Utf8View {
            data.validate()
                .and_then(|()| data.validate_nulls())
                .and_then(|()| check_string_views(&data))
        } else {
            data.validate_full()
        };
        checked.map_err(|e| IpcError::Malformed(format!("column `{}`: {e}", field.name())))?;
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(IpcError::Malformed(format!(
                "column `{}` holds nulls but its field is non-nullable",
                field.name()
            )));
        }
    }
    Ok(batch)
}

/// What arrow's `validate_string_view` checks (buffer index and bounds, prefix, zero padding
/// of inline views, UTF-8), with ASCII fast paths instead of one `str::from_utf8` per value.
pub fn check_string_views(data: &ArrayData) -> Result<(), ArrowError> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let views: &[u128] = &data.buffers()[0].typed_data::<u128>()[data.offset()..data.offset() + data.len()];
    let buffers = &data.buffers()[1..];
    let bad = |idx: usize, what: &str| ArrowError::InvalidArgumentError(format!("view {idx}: {what}"));
    let utf8 = |idx: usize, b: &[u8]| {
        std::str::from_utf8(b)
            .map(|_| ())
            .map_err(|e| bad(idx, &format!("non-UTF-8 data: {e}")))
    };
    for (idx, &v) in views.iter().enumerate() {
        let len = v as u32 as usize;
        if len <= 12 {
            let payload = v >> 32;
            if len < 12 && (payload >> (len * 8)) != 0 {
                return Err(bad(idx, "non-zero padding in an inline view"));
            }
            if (payload as u64 | (payload >> 64) as u64) & HIGH != 0 {
                utf8(idx, &v.to_le_bytes()[4..4 + len])?;
            }
            continue;
        }
        let (prefix, index, offset) = ((v >> 32) as u32, (v >> 64) as u32 as usize, (v >> 96) as u32 as usize);
        let buffer = buffers
            .get(index)
            .ok_or_else(|| bad(idx, "buffer index out of range"))?;
        let b = offset
            .checked_add(len)
            .and_then(|end| buffer.get(offset..end))
            .ok_or_else(|| bad(idx, "slice out of the buffer's bounds"))?;
        if b[..4] != prefix.to_le_bytes() {
            return Err(bad(idx, "prefix does not match the data"));
        }
        let (words, tail) = b.as_chunks::<8>();
        let mut any = tail.iter().fold(0u64, |a, &x| a | x as u64);
        for w in words {
            any |= u64::from_le_bytes(*w);
        }
        if any & HIGH != 0 {
            utf8(idx, b)?;
        }
    }
    Ok(())
}

/// Check that `got` has the same fields (names, types, nullability, metadata) as `expected`.
pub fn check_schema(got: &Schema, expected: &Schema) -> Result<(), IpcError> {
    if got.fields() == expected.fields() {
        return Ok(());
    }
    Err(IpcError::SchemaMismatch(describe_difference(got, expected)))
}

/// A one-line description of the first difference between two schemas.
pub fn describe_difference(got: &Schema, expected: &Schema) -> String {
    if got.fields().len() != expected.fields().len() {
        return format!(
            "expected {} columns ({}), got {} ({})",
            expected.fields().len(),
            field_list(expected),
            got.fields().len(),
            field_list(got)
        );
    }
    for (g, e) in got.fields().iter().zip(expected.fields()) {
        if g != e {
            return format!(
                "column `{}` should be `{}: {}{}`, got `{}: {}{}`",
                e.name(),
                e.name(),
                e.data_type(),
                if e.is_nullable() { "" } else { " not null" },
                g.name(),
                g.data_type(),
                if g.is_nullable() { "" } else { " not null" },
            );
        }
    }
    "schemas differ in field metadata".to_string()
}

fn field_list(s: &Schema) -> String {
    s.fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("x"), None, Some("ünï")])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let b = batch();
        let bytes = encode_batches(&b.schema(), &[b.clone(), b.slice(1, 2)]).unwrap();
        let got = decode_stream(bytes, &b.schema()).unwrap();
        assert_eq!(got, vec![b.clone(), b.slice(1, 2)]);
        let s = decode_schema(encode_schema(&b.schema())).unwrap();
        assert_eq!(s, b.schema());
    }

    /// The fast view check accepts what arrow accepts and refuses what it refuses.
    #[test]
    fn string_view_check_agrees_with_arrow() {
        use arrow::array::{BinaryViewArray, StringViewArray};
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
        // Invalid UTF-8, inline and out of line, built as binary views and relabelled.
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
            assert!(check_string_views(&data).is_err(), "the fast check refuses {bad:?}");
        }
        // Out-of-bounds view and a wrong prefix.
        let long = StringViewArray::from(vec!["a string longer than twelve bytes"]).to_data();
        let view = long.buffers()[0].typed_data::<u128>()[0];
        for v in [view + (1u128 << 96) * 100, view ^ (1u128 << 33)] {
            let views = arrow::buffer::Buffer::from_vec(vec![v]);
            let data = long
                .clone()
                .into_builder()
                .buffers(vec![views, long.buffers()[1].clone()]);
            // SAFETY: only handed to the checks below.
            let data = unsafe { data.build_unchecked() };
            assert!(data.validate_values().is_err());
            assert!(check_string_views(&data).is_err());
        }
    }

    #[test]
    fn rejects_wrong_schema_and_garbage() {
        let b = batch();
        let other = Schema::new(vec![Field::new("a", DataType::Int32, false)]);
        let bytes = encode_batches(&b.schema(), std::slice::from_ref(&b)).unwrap();
        let err = decode_stream(bytes.clone(), &other).unwrap_err();
        assert!(err.to_string().contains("expected 1 columns"), "{err}");
        let err = decode_stream(bytes[..bytes.len() / 2].to_vec(), &b.schema()).unwrap_err();
        assert!(matches!(err, IpcError::Malformed(_)), "{err}");
        assert!(matches!(decode_stream(vec![], &b.schema()), Err(IpcError::NoSchema)));
    }
}
