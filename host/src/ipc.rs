//! Arrow IPC stream bytes in and out of plugins: the ABI's data representation.
//!
//! Everything a plugin returns is untrusted: [`decode_stream`] runs the reader's full
//! validation (offsets, UTF-8, nullability, buffer sizes) and checks each batch against the
//! schema the plugin declared, so a broken batch never reaches a sink.

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::{Schema, SchemaRef};
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
    let mut dec = StreamDecoder::new();
    let mut out = Vec::new();
    let mut checked = false;
    while !buf.is_empty() {
        let got = dec.decode(&mut buf).map_err(|e| IpcError::Malformed(e.to_string()))?;
        if !checked && let Some(s) = dec.schema() {
            check_schema(&s, expected)?;
            checked = true;
        }
        if let Some(b) = got {
            out.push(b);
        }
    }
    dec.finish().map_err(|e| IpcError::Malformed(e.to_string()))?;
    if !checked {
        return Err(IpcError::NoSchema);
    }
    Ok(out)
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
