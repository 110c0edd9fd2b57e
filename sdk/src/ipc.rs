//! Arrow IPC stream bytes <-> record batches, tuned for one small stream per call.
//!
//! Every `process` call receives a complete IPC stream: the input schema message, one
//! record batch (preceded by its dictionaries, if any) and an end-of-stream marker. The
//! schema message is the same every call, so [`InputDecoder`] keeps a `StreamDecoder` that
//! has already read it and, when a call starts with the same bytes, feeds it only the rest:
//! no schema re-parse, and the batch is decoded zero-copy over the call's own `Vec<u8>`.

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_buffer::Buffer;
use arrow_data::ArrayData;
use arrow_ipc::reader::{FileDecoder, StreamDecoder};
use arrow_ipc::writer::{IpcWriteOptions, StreamEncoder, StreamWriter};
use arrow_ipc::{Block, MetadataVersion};
use arrow_schema::{ArrowError, SchemaRef};
use sluice_arrow_check::{FlatEncoder, FlatLayout};

use crate::Error;

const CONTINUATION: [u8; 4] = [0xff; 4];

/// Length of the IPC message at the start of `bytes` if it is a schema message.
fn schema_message_len(bytes: &[u8]) -> Option<usize> {
    let (prefix, meta_len) = match bytes.get(..4)? {
        p if p == CONTINUATION => (8usize, bytes.get(4..8)?),
        p => (4, p),
    };
    let meta_len = u32::from_le_bytes(meta_len.try_into().ok()?) as usize;
    let meta = bytes.get(prefix..prefix.checked_add(meta_len)?)?;
    let message = arrow_ipc::root_as_message(meta).ok()?;
    if message.header_type() != arrow_ipc::MessageHeader::Schema {
        return None;
    }
    let body = usize::try_from(message.bodyLength()).ok()?;
    let len = prefix + meta_len + body;
    (len <= bytes.len()).then_some(len)
}

/// True if `rest` is empty or an end-of-stream marker (current or pre-0.15 format).
fn is_end_of_stream(rest: &[u8]) -> bool {
    rest.is_empty() || rest == END_OF_STREAM || rest == [0, 0, 0, 0]
}

fn ipc_error(what: &str, e: ArrowError) -> Error {
    Error::InvalidInput(format!("{what}: {e}"))
}

/// Read the schema of an IPC stream that should hold only a schema.
pub fn decode_schema(bytes: &[u8]) -> Result<SchemaRef, Error> {
    let mut decoder = StreamDecoder::new();
    let mut buf = Buffer::from(bytes);
    while !buf.is_empty() {
        if decoder
            .decode(&mut buf)
            .map_err(|e| ipc_error("cannot read the schema IPC stream", e))?
            .is_some()
        {
            return Err(Error::InvalidInput(
                "the schema IPC stream holds a record batch; expected only a schema".into(),
            ));
        }
    }
    decoder
        .schema()
        .ok_or_else(|| Error::InvalidInput("the schema IPC stream holds no schema".into()))
}

/// Decodes the per-call input IPC streams of one transformer.
pub struct InputDecoder {
    schema: SchemaRef,
    /// The schema message exactly as the host sent it at open time.
    schema_message: Vec<u8>,
    /// A decoder that has read `schema_message` and nothing else that failed.
    primed: StreamDecoder,
    /// Reads a single record batch message without arrow's validation (see [`validate`]);
    /// `None` when the schema has dictionaries (those streams take the `primed` path).
    unchecked: Option<FileDecoder>,
    /// Reads record batches of flat fixed-width columns straight from the message;
    /// `None` unless every column is such a column.
    flat: Option<FlatLayout>,
}

impl InputDecoder {
    /// Start from the `input-schema` bytes given to `open`.
    pub fn new(schema_ipc: &[u8]) -> Result<Self, Error> {
        let schema = decode_schema(schema_ipc)?;
        // `decode_schema` succeeded, so a schema message is there; its exact bytes are the
        // fast-path key. If framing is unusual, an empty key just disables the fast path.
        let schema_message = schema_message_len(schema_ipc)
            .map(|n| schema_ipc[..n].to_vec())
            .unwrap_or_default();
        let has_dictionaries = sluice_arrow_check::schema_has_dictionary(&schema);
        // SAFETY: the host is the trusted side of the boundary: every batch it sends was
        // fully validated by it (read from a file, or returned by a plugin) before it is
        // sent on, and `validate` checks each batch's layout here too: see [`validate`].
        let unchecked = (!has_dictionaries)
            .then(|| unsafe { FileDecoder::new(Arc::clone(&schema), MetadataVersion::V5).with_skip_validation(true) });
        let mut decoder = InputDecoder {
            flat: FlatLayout::new(&schema),
            schema,
            schema_message,
            primed: StreamDecoder::new(),
            unchecked,
        };
        decoder.reprime()?;
        Ok(decoder)
    }

    /// The input schema every decoded batch carries.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Reset the persistent decoder to "has read the schema message".
    ///
    /// A schema message has an empty body, which `StreamDecoder` only completes when more
    /// bytes arrive: the schema is parsed once, on the first call, then kept.
    fn reprime(&mut self) -> Result<(), Error> {
        self.primed = StreamDecoder::new();
        if !self.schema_message.is_empty() {
            let mut buf = Buffer::from(self.schema_message.as_slice());
            self.primed
                .decode(&mut buf)
                .map_err(|e| ipc_error("cannot read the input schema", e))?;
        }
        Ok(())
    }

    /// Decode an IPC stream holding the input schema and exactly one record batch.
    pub fn decode(&mut self, bytes: Vec<u8>) -> Result<RecordBatch, Error> {
        if !self.schema_message.is_empty() && has_prefix(&bytes, &self.schema_message) {
            let skip = self.schema_message.len();
            let mut buf = Buffer::from_vec(bytes);
            buf.advance(skip);
            if let Some(decoder) = &self.unchecked {
                return Self::decode_unchecked(decoder, self.flat.as_ref(), &buf).and_then(|b| self.relabel(b));
            }
            match Self::one_batch(&mut self.primed, &mut buf).and_then(|b| self.relabel(b)) {
                Ok(batch) => Ok(batch),
                Err(e) => {
                    // The decoder may hold half a message: start over from the schema.
                    self.reprime()?;
                    Err(e)
                }
            }
        } else {
            self.decode_slow(bytes)
        }
    }

    /// Give a batch decoded on the fast path the open-time schema `Arc`, so that every batch
    /// a plugin sees shares it (`RecordBatch::try_new` checks the column types: O(columns)).
    fn relabel(&self, batch: RecordBatch) -> Result<RecordBatch, Error> {
        if Arc::ptr_eq(batch.schema_ref(), &self.schema) {
            return Ok(batch);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            batch.columns().to_vec(),
            &options,
        )?)
    }

    /// Read the one record batch message at the start of `buf` (then expect the end of the
    /// stream) without arrow's per-value validation, then [`validate`] it.
    ///
    /// `StreamDecoder` in arrow 60 validates every array however it is configured; for
    /// `Utf8View` that is one `str::from_utf8` call per value, which dominated decoding here.
    ///
    /// With `flat` (every column flat and fixed-width), the message already verified here is
    /// read by [`FlatLayout::decode`], which checks what arrow's validation would.
    fn decode_unchecked(decoder: &FileDecoder, flat: Option<&FlatLayout>, buf: &Buffer) -> Result<RecordBatch, Error> {
        let bytes = buf.as_slice();
        if is_end_of_stream(bytes) {
            return Err(Error::InvalidInput(
                "the input IPC stream holds no record batch; expected exactly one".into(),
            ));
        }
        let malformed = |what: &str| Error::InvalidInput(format!("cannot read the input IPC stream: {what}"));
        let (prefix, meta_len) = match bytes.get(..4) {
            Some(p) if p == CONTINUATION => (8usize, bytes.get(4..8)),
            Some(p) => (4, Some(p)),
            None => return Err(malformed("no record batch; expected exactly one")),
        };
        let meta_len = u32::from_le_bytes(
            meta_len
                .and_then(|m| m.try_into().ok())
                .ok_or_else(|| malformed("truncated message header"))?,
        ) as usize;
        let meta_end = prefix
            .checked_add(meta_len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| malformed("truncated message"))?;
        let message = arrow_ipc::root_as_message(&bytes[prefix..meta_end])
            .map_err(|e| malformed(&format!("invalid message: {e}")))?;
        if message.header_type() != arrow_ipc::MessageHeader::RecordBatch {
            return Err(malformed("expected exactly one record batch"));
        }
        let body = usize::try_from(message.bodyLength()).map_err(|_| malformed("negative body length"))?;
        let end = meta_end
            .checked_add(body)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| malformed("truncated body"))?;
        if !is_end_of_stream(&bytes[end..]) {
            return Err(Error::InvalidInput(format!(
                "the input IPC stream has {} bytes after its record batch; expected exactly one batch",
                bytes.len() - end
            )));
        }
        if let (Some(flat), Some(header)) = (flat, message.header_as_record_batch())
            && header.compression().is_none()
        {
            return flat
                .decode(header, &buf.slice_with_length(meta_end, body))
                .map_err(|e| ipc_error("cannot read the input IPC stream", e));
        }
        let block = Block::new(0, meta_end as i32, body as i64);
        let batch = decoder
            .read_record_batch(&block, &buf.slice_with_length(0, end))
            .map_err(|e| ipc_error("cannot read the input IPC stream", e))?
            .ok_or_else(|| malformed("no record batch; expected exactly one"))?;
        validate(batch)
    }

    /// Read one record batch (and any dictionaries before it), then expect the end.
    fn one_batch(decoder: &mut StreamDecoder, buf: &mut Buffer) -> Result<RecordBatch, Error> {
        let batch = loop {
            if buf.is_empty() {
                return Err(Error::InvalidInput(
                    "the input IPC stream holds no record batch; expected exactly one".into(),
                ));
            }
            if let Some(batch) = decoder
                .decode(buf)
                .map_err(|e| ipc_error("cannot read the input IPC stream", e))?
            {
                break batch;
            }
        };
        if !is_end_of_stream(buf.as_slice()) {
            return Err(Error::InvalidInput(format!(
                "the input IPC stream has {} bytes after its record batch; expected exactly one batch",
                buf.len()
            )));
        }
        Ok(batch)
    }

    /// A stream whose schema bytes differ from open time: decode it all and compare.
    fn decode_slow(&self, bytes: Vec<u8>) -> Result<RecordBatch, Error> {
        let mut decoder = StreamDecoder::new();
        let mut buf = Buffer::from_vec(bytes);
        let batch = Self::one_batch(&mut decoder, &mut buf)?;
        if batch.schema_ref().fields() != self.schema.fields() {
            return Err(Error::InvalidInput(format!(
                "the input batch's schema differs from the schema given to open: expected {:?}, got {:?}",
                self.schema.fields(),
                batch.schema_ref().fields()
            )));
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            batch.columns().to_vec(),
            &options,
        )?)
    }
}

/// `bytes.starts_with(prefix)`, eight bytes a step: wasi-libc's `memcmp`, which `starts_with`
/// calls, compares a byte at a time, and the schema prefix of every call's stream cost 3% of
/// `filter`'s time in the sandbox.
fn has_prefix(bytes: &[u8], prefix: &[u8]) -> bool {
    let Some(head) = bytes.get(..prefix.len()) else {
        return false;
    };
    let ((a, a_tail), (b, b_tail)) = (head.as_chunks::<8>(), prefix.as_chunks::<8>());
    a.iter()
        .zip(b)
        .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_tail == b_tail
}

/// Check a batch the host sent, decoded without arrow's validation: the layout and nulls of
/// every column (buffer counts and sizes, the first and last offsets, null counts) and the
/// schema, not every value again.
///
/// The values were validated by the host, which checks every batch in full before a plugin
/// sees it: batches it reads from files, and every batch a plugin returns
/// (`sluice_arrow_check::validate_full` there). The guest's second pass over them (each
/// view's bounds, prefix and UTF-8) was 5% of `mask`'s time in the sandbox, and guarded
/// only against a bug in the host, whose worst outcome stays inside this sandbox: the
/// host validates what the plugin returns in turn.
fn validate(batch: RecordBatch) -> Result<RecordBatch, Error> {
    for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
        let data = column.to_data();
        data.validate()
            .and_then(|()| data.validate_nulls())
            .map_err(|e| ipc_error(&format!("invalid input column `{}`", field.name()), e))?;
    }
    // The checked constructor: column lengths equal the row count, nullability, types.
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(batch.schema_ref()),
        batch.columns().to_vec(),
        &options,
    )?)
}

/// Encodes output batches as IPC streams with a fixed schema.
pub struct OutputEncoder {
    schema: SchemaRef,
    /// The schema alone, as an IPC stream (what `output-schema` returns).
    schema_ipc: Vec<u8>,
    /// The schema message, and an encoder that has written it and so writes only record
    /// batch messages: encoding the schema again for every call was a tenth of `derive`'s
    /// time per 8,192-row call. `None` for a schema with dictionaries, which every call's
    /// stream must carry again (a long-lived encoder sends each only once).
    primed: Option<(Vec<u8>, StreamEncoder)>,
    /// Writes record batch messages of flat fixed-width columns without arrow's generic
    /// writer (the same bytes); `None` unless every column is such a column.
    flat: Option<FlatEncoder>,
}

/// The end-of-stream marker of the current IPC format: continuation, then length 0.
const END_OF_STREAM: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

fn encode_error(e: ArrowError) -> Error {
    Error::Internal(format!("cannot encode the output as Arrow IPC: {e}"))
}

/// Upper bound of the IPC body of `data`: the lengths of its buffers (and its children's),
/// plus up to 64 bytes of padding per buffer.
///
/// Lengths, never capacities: an array decoded zero-copy holds slices of the whole input
/// message, and both `get_array_memory_size` and (for view arrays, per data buffer)
/// `get_slice_memory_size` count that allocation's capacity each time. On a 262,144-row
/// lineitem batch that asked for 1.4 GiB of output buffer for 54 MiB of data.
fn encoded_size(data: &ArrayData) -> usize {
    64 * (data.buffers().len() + 2)
        + data.buffers().iter().map(|b| b.len()).sum::<usize>()
        + data.nulls().map_or(0, |n| n.buffer().len())
        + data.child_data().iter().map(encoded_size).sum::<usize>()
}

impl OutputEncoder {
    /// Prepare to write streams with `schema`.
    pub fn new(schema: SchemaRef) -> Result<Self, Error> {
        let writer = StreamWriter::try_new(Vec::new(), &schema).map_err(encode_error)?;
        let schema_ipc = writer.into_inner().map_err(encode_error)?;
        let primed = match schema_ipc.strip_suffix(&END_OF_STREAM) {
            Some(message) if !sluice_arrow_check::schema_has_dictionary(&schema) => {
                let mut encoder = StreamEncoder::try_new(&schema).map_err(encode_error)?;
                // The first batch brings the schema message with it; later ones come alone.
                encoder
                    .encode(&RecordBatch::new_empty(Arc::clone(&schema)))
                    .map_err(encode_error)?;
                Some((message.to_vec(), encoder))
            }
            _ => None,
        };
        Ok(OutputEncoder {
            flat: FlatEncoder::new(&schema),
            schema,
            schema_ipc,
            primed,
        })
    }

    /// The schema every encoded batch carries.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The output schema alone, as an IPC stream.
    pub fn schema_ipc(&self) -> &[u8] {
        &self.schema_ipc
    }

    /// Check that `batch` fits the output schema; relabel it if only metadata differs.
    fn conform(&self, batch: RecordBatch) -> Result<RecordBatch, Error> {
        if Arc::ptr_eq(batch.schema_ref(), &self.schema) || batch.schema_ref().fields() == self.schema.fields() {
            return Ok(batch);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let fields = batch.schema_ref().fields().clone();
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), batch.columns().to_vec(), &options)
            .map_err(|e| {
                Error::Internal(format!(
                    "the plugin returned a batch that does not match its output schema ({e}): expected {:?}, got {fields:?}",
                    self.schema.fields()
                ))
            })
    }

    /// Encode the schema and `batches` as one IPC stream.
    pub fn encode(&mut self, batches: Vec<RecordBatch>) -> Result<Vec<u8>, Error> {
        let batches = batches
            .into_iter()
            .map(|b| self.conform(b).map(sluice_arrow_check::compact_views))
            .collect::<Result<Vec<_>, _>>()?;
        let capacity = self.schema_ipc.len()
            + batches
                .iter()
                .map(|b| 512 + b.columns().iter().map(|c| encoded_size(&c.to_data())).sum::<usize>())
                .sum::<usize>();
        if let Some((message, encoder)) = &mut self.primed {
            let mut out = Vec::with_capacity(capacity);
            out.extend_from_slice(message);
            for batch in &batches {
                if let Some(flat) = &mut self.flat {
                    flat.encode(batch).map_err(encode_error)?.write_to(&mut out);
                    continue;
                }
                for piece in encoder.encode(batch).map_err(encode_error)? {
                    out.extend_from_slice(&piece);
                }
            }
            out.extend_from_slice(&END_OF_STREAM);
            return Ok(out);
        }
        let mut writer =
            StreamWriter::try_new_with_options(Vec::with_capacity(capacity), &self.schema, IpcWriteOptions::default())
                .map_err(encode_error)?;
        for batch in &batches {
            writer.write(batch).map_err(encode_error)?;
        }
        writer.into_inner().map_err(encode_error)
    }
}

/// Decode every record batch of an IPC stream (any schema); used by the harness and tests.
pub fn decode_all(bytes: Vec<u8>) -> Result<(SchemaRef, Vec<RecordBatch>), Error> {
    let mut decoder = StreamDecoder::new();
    let mut buf = Buffer::from_vec(bytes);
    let mut batches = vec![];
    while !buf.is_empty() {
        if let Some(batch) = decoder
            .decode(&mut buf)
            .map_err(|e| ipc_error("cannot read IPC stream", e))?
        {
            batches.push(batch);
        }
    }
    decoder.finish().map_err(|e| ipc_error("truncated IPC stream", e))?;
    let schema = decoder
        .schema()
        .ok_or_else(|| Error::InvalidInput("the IPC stream holds no schema".into()))?;
    Ok((schema, batches))
}

/// Encode `schema` and `batches` as one IPC stream; used by the harness and tests.
pub fn encode_all(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, Error> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema).map_err(encode_error)?;
    for batch in batches {
        writer.write(batch).map_err(encode_error)?;
    }
    writer.into_inner().map_err(encode_error)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]))
    }

    fn batch(n: i64) -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let s: ArrayRef = Arc::new(StringArray::from_iter((0..n).map(|i| Some(format!("v{i}")))));
        RecordBatch::try_new(schema(), vec![a, s]).unwrap()
    }

    #[test]
    fn fast_path_decodes_many_calls() {
        let schema_ipc = encode_all(&schema(), &[]).unwrap();
        let mut dec = InputDecoder::new(&schema_ipc).unwrap();
        assert!(!dec.schema_message.is_empty(), "fast path must be armed");
        for n in [3, 0, 5] {
            let got = dec.decode(encode_all(&schema(), &[batch(n)]).unwrap()).unwrap();
            assert_eq!(got, batch(n));
            assert!(Arc::ptr_eq(got.schema_ref(), dec.schema()));
        }
        // No dictionaries: batches are read by the unchecked single-message decoder, which
        // never re-parses the schema; `validate` still refuses a batch whose layout is bad:
        // here a null count that does not match the bitmap.
        assert!(dec.unchecked.is_some());
        let s = arrow_array::Array::to_data(&StringArray::from(vec![Some("a"), None, Some("c")]));
        // SAFETY: only encoded, to be refused by the decoder.
        let lying = unsafe {
            let nulls = arrow_buffer::NullBuffer::new_unchecked(s.nulls().unwrap().inner().clone(), 2);
            StringArray::from(s.into_builder().nulls(Some(nulls)).build_unchecked())
        };
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let bad = RecordBatch::try_new(schema(), vec![a, Arc::new(lying)]).unwrap();
        let e = dec.decode(encode_all(&schema(), &[bad]).unwrap()).unwrap_err();
        assert!(e.message().contains("invalid input column `s`"), "{e}");
        assert_eq!(
            dec.decode(encode_all(&schema(), &[batch(2)]).unwrap()).unwrap(),
            batch(2)
        );
    }

    /// Re-encoding a batch decoded zero-copy sizes the output by what it holds, not by the
    /// input message it points into: view columns with several data buffers (as the
    /// Parquet reader makes them) once asked for many times the data (1.4 GiB for a
    /// 54 MiB lineitem batch), which is what hit the memory limit at 262,144 rows.
    #[test]
    fn output_of_a_zero_copy_batch_is_sized_by_its_data() {
        use arrow_array::StringViewArray;
        let schema = Arc::new(Schema::new(vec![
            Field::new("flag", DataType::Utf8View, false),
            Field::new("comment", DataType::Utf8View, false),
        ]));
        // Short strings are inlined, so `flag` holds data buffers it does not use, each a
        // slice of the decoded message; `comment` spreads over many small buffers.
        let columns: Vec<ArrayRef> = (0..2)
            .map(|c| {
                let parts: Vec<StringViewArray> = (0..12)
                    .map(|p| {
                        StringViewArray::from_iter_values((0..2_000).map(move |i| {
                            if c == 0 {
                                "R".to_string()
                            } else {
                                format!("comment {p} {i} and more text")
                            }
                        }))
                    })
                    .collect();
                let refs: Vec<&dyn arrow_array::Array> = parts.iter().map(|a| a as &dyn arrow_array::Array).collect();
                arrow_select::concat::concat(&refs).unwrap()
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let bytes = encode_all(&schema, std::slice::from_ref(&batch)).unwrap();
        let (_, decoded) = decode_all(bytes.clone()).unwrap();
        let out = OutputEncoder::new(Arc::clone(&schema))
            .unwrap()
            .encode(decoded)
            .unwrap();
        assert!(
            out.capacity() <= 2 * bytes.len() + (64 << 10),
            "{} bytes reserved for {} bytes of output",
            out.capacity(),
            out.len()
        );
    }

    #[test]
    fn flat_inputs_are_read_straight_from_the_message() {
        use arrow_array::Decimal128Array;
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("d", DataType::Decimal128(15, 2), false),
        ]));
        let batch = |n: i64| {
            let a: ArrayRef = Arc::new(Int64Array::from_iter((0..n).map(|i| (i % 3 != 0).then_some(i))));
            let d = Decimal128Array::from_iter_values((0..n).map(|i| i as i128 * 101))
                .with_precision_and_scale(15, 2)
                .unwrap();
            RecordBatch::try_new(Arc::clone(&schema), vec![a, Arc::new(d)]).unwrap()
        };
        let mut dec = InputDecoder::new(&encode_all(&schema, &[]).unwrap()).unwrap();
        assert!(dec.flat.is_some());
        for n in [1000, 0, 3] {
            let got = dec.decode(encode_all(&schema, &[batch(n)]).unwrap()).unwrap();
            assert_eq!(got, batch(n));
            assert!(Arc::ptr_eq(got.schema_ref(), dec.schema()));
        }
        let good = encode_all(&schema, &[batch(8)]).unwrap();
        let e = dec.decode(good[..good.len() - 20].to_vec()).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        let e = dec
            .decode(encode_all(&schema, &[batch(1), batch(1)]).unwrap())
            .unwrap_err();
        assert!(e.message().contains("exactly one"), "{e}");
        assert_eq!(dec.decode(good).unwrap(), batch(8));
        // A string column is not flat: such schemas keep arrow's reader.
        assert!(
            InputDecoder::new(&encode_all(&super::tests::schema(), &[]).unwrap())
                .unwrap()
                .flat
                .is_none()
        );
    }

    #[test]
    fn has_prefix_agrees_with_starts_with() {
        let bytes: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..=bytes.len() {
            let prefix = &bytes[..len];
            assert!(has_prefix(&bytes, prefix));
            assert!(!has_prefix(&bytes[..len.saturating_sub(1)], prefix) || len == 0);
            for at in 0..len {
                let mut other = prefix.to_vec();
                other[at] ^= 0x10;
                assert_eq!(has_prefix(&bytes, &other), bytes.starts_with(&other), "{len} {at}");
                assert!(!has_prefix(&bytes, &other));
            }
        }
    }

    #[test]
    fn errors_then_recovers() {
        let schema_ipc = encode_all(&schema(), &[]).unwrap();
        let mut dec = InputDecoder::new(&schema_ipc).unwrap();
        let good = encode_all(&schema(), &[batch(4)]).unwrap();
        // Truncated stream: an error, not a panic, and the next call still works.
        let e = dec.decode(good[..good.len() - 20].to_vec()).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        // No batch at all.
        let e = dec.decode(schema_ipc.clone()).unwrap_err();
        assert!(e.message().contains("no record batch"), "{e}");
        // Two batches.
        let e = dec
            .decode(encode_all(&schema(), &[batch(1), batch(1)]).unwrap())
            .unwrap_err();
        assert!(e.message().contains("exactly one"), "{e}");
        assert_eq!(dec.decode(good).unwrap(), batch(4));
    }

    #[test]
    fn other_schema_is_rejected() {
        let schema_ipc = encode_all(&schema(), &[]).unwrap();
        let mut dec = InputDecoder::new(&schema_ipc).unwrap();
        let other = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let b = RecordBatch::try_new(
            Arc::clone(&other),
            vec![Arc::new(Int64Array::from(vec![1])) as ArrayRef],
        )
        .unwrap();
        let e = dec.decode(encode_all(&other, &[b]).unwrap()).unwrap_err();
        assert!(e.message().contains("differs"), "{e}");
        assert!(dec.decode(vec![1, 2, 3]).is_err());
        assert!(InputDecoder::new(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn schema_metadata_difference_takes_slow_path() {
        let schema_ipc = encode_all(&schema(), &[]).unwrap();
        let mut dec = InputDecoder::new(&schema_ipc).unwrap();
        let with_meta = Arc::new(
            schema()
                .as_ref()
                .clone()
                .with_metadata(std::collections::HashMap::from([("k".to_string(), "v".to_string())])),
        );
        let b = batch(2).with_schema(Arc::clone(&with_meta)).unwrap();
        let got = dec.decode(encode_all(&with_meta, &[b]).unwrap()).unwrap();
        assert_eq!(got, batch(2));
    }

    #[test]
    fn sparse_views_are_compacted() {
        let long = |i: usize| format!("a string long enough not to be inlined, number {i}");
        let all = arrow_array::StringViewArray::from_iter_values((0..20_000).map(long));
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, false)]));
        let full = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(all) as ArrayRef]).unwrap();
        let mask = arrow_array::BooleanArray::from_iter((0..20_000).map(|i| Some(i % 100 == 0)));
        let sparse = arrow_select::filter::filter_record_batch(&full, &mask).unwrap();
        let mut enc = OutputEncoder::new(Arc::clone(&schema)).unwrap();
        let bytes = enc.encode(vec![sparse.clone()]).unwrap();
        assert!(
            bytes.len() < 40_000,
            "200 live strings, not 20,000: {} bytes",
            bytes.len()
        );
        let (_, got) = decode_all(bytes).unwrap();
        assert_eq!(got, vec![sparse]);
        // A dense array is left alone (no copy).
        let dense = enc.encode(vec![full.clone()]).unwrap();
        assert_eq!(decode_all(dense).unwrap().1, vec![full]);
    }

    /// Call after call, the encoder writes the stream `StreamWriter` writes for that call's
    /// batches alone; with a dictionary column, every stream carries the dictionary.
    #[test]
    fn every_output_stream_is_whole() {
        use arrow_array::{Array, DictionaryArray, types::Int32Type};
        let mut enc = OutputEncoder::new(schema()).unwrap();
        assert!(enc.primed.is_some());
        for batches in [vec![batch(3)], vec![], vec![batch(0), batch(5)], vec![batch(2)]] {
            assert_eq!(
                enc.encode(batches.clone()).unwrap(),
                encode_all(&schema(), &batches).unwrap()
            );
        }
        // Fixed-width columns take the flat encoder: the same bytes.
        let flat = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let mut enc = OutputEncoder::new(Arc::clone(&flat)).unwrap();
        assert!(enc.flat.is_some());
        let ints = |n: i64| {
            let a = Int64Array::from_iter((0..n).map(|i| (i % 3 != 0).then_some(i)));
            RecordBatch::try_new(Arc::clone(&flat), vec![Arc::new(a) as ArrayRef]).unwrap()
        };
        for batches in [
            vec![ints(100)],
            vec![],
            vec![ints(0), ints(9).slice(3, 5)],
            vec![ints(1)],
        ] {
            assert_eq!(
                enc.encode(batches.clone()).unwrap(),
                encode_all(&flat, &batches).unwrap()
            );
        }
        let dict: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let schema = Arc::new(Schema::new(vec![Field::new("d", dict.data_type().clone(), false)]));
        let b = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(dict) as ArrayRef]).unwrap();
        let mut enc = OutputEncoder::new(Arc::clone(&schema)).unwrap();
        assert!(enc.primed.is_none());
        for _ in 0..2 {
            let bytes = enc.encode(vec![b.clone()]).unwrap();
            assert_eq!(decode_all(bytes).unwrap().1, vec![b.clone()]);
        }
    }

    #[test]
    fn encoder_checks_batches() {
        let mut enc = OutputEncoder::new(schema()).unwrap();
        let bytes = enc.encode(vec![batch(3), batch(0)]).unwrap();
        let (s, got) = decode_all(bytes).unwrap();
        assert_eq!(s, schema());
        assert_eq!(got, vec![batch(3), batch(0)]);
        let wrong = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let s: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        let b = RecordBatch::try_new(wrong, vec![Arc::clone(&s), s]).unwrap();
        let e = enc.encode(vec![b]).unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
        let (_, none) = decode_all(enc.schema_ipc().to_vec()).unwrap();
        assert!(none.is_empty());
    }
}
