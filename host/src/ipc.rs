//! Arrow IPC stream bytes in and out of plugins: the ABI's data representation.
//!
//! Everything a plugin returns is untrusted: [`decode_stream`] checks the stream's framing,
//! then validates every decoded array in full (offsets, UTF-8, nullability, buffer sizes:
//! `sluice_arrow_check`, arrow's checks with faster `Utf8View` values) and checks each batch
//! against the schema the plugin declared, so a broken batch never reaches a sink.

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::buffer::Buffer;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::Block;
use arrow::ipc::reader::{FileDecoder, StreamDecoder};
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use sluice_arrow_check::{FlatEncoder, FlatLayout};

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

/// Upper bound of the IPC body of `data`: the lengths of its buffers (and its children's),
/// plus up to 64 bytes of padding per buffer.
///
/// Lengths, never capacities: an array decoded zero-copy from a plugin's output holds
/// slices of the whole message, and `get_array_memory_size` counts that allocation's
/// capacity once per buffer (many times the data for a wide batch).
fn encoded_size(data: &arrow::array::ArrayData) -> usize {
    64 * (data.buffers().len() + 2)
        + data.buffers().iter().map(|b| b.len()).sum::<usize>()
        + data.nulls().map_or(0, |n| n.buffer().len())
        + data.child_data().iter().map(encoded_size).sum::<usize>()
}

/// Encode batches (all with `schema`) as one IPC stream.
pub fn encode_batches(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>, IpcError> {
    let size: usize = batches
        .iter()
        .map(|b| 512 + b.columns().iter().map(|c| encoded_size(&c.to_data())).sum::<usize>())
        .sum();
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

/// Encode one batch as an IPC stream (schema, batch, end marker) in pieces that share the
/// batch's buffers instead of copying them: for [`crate::abi::Segments`], which copies
/// them once, straight into a plugin's memory. The bytes are those of [`encode_batches`].
pub fn encode_segments(schema: &Schema, batch: &RecordBatch) -> Result<crate::abi::Segments, IpcError> {
    let malformed = |e: arrow::error::ArrowError| IpcError::Malformed(e.to_string());
    let mut encoder = arrow::ipc::writer::StreamEncoder::try_new(schema).map_err(malformed)?;
    let mut pieces = encoder.encode(batch).map_err(malformed)?;
    pieces.extend(encoder.finish().map_err(malformed)?);
    Ok(crate::abi::Segments(pieces))
}

/// The end-of-stream marker of the current IPC format: continuation, then length 0.
const END_OF_STREAM: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// Encodes the per-call streams of one transformer (schema, one batch, end marker) as
/// [`encode_segments`] does, with the schema message encoded once: building it again for
/// every call was a third of the host's encoding work on 8,192-row batches of two columns.
///
/// A schema with dictionaries takes [`encode_segments`] every call: a long-lived encoder
/// skips dictionaries it has sent before, but every call's stream must carry its own.
pub struct SegmentEncoder {
    schema: SchemaRef,
    /// The schema message, and an encoder that has emitted it (so that it writes only
    /// record batch messages); `None` for a schema with dictionaries.
    primed: Option<(Buffer, arrow::ipc::writer::StreamEncoder)>,
    /// For a schema of fixed-width columns: writes the same record batch messages without
    /// arrow's generic writer, and zero bytes to pad them with.
    flat: Option<(FlatEncoder, Buffer)>,
}

impl SegmentEncoder {
    /// An encoder for batches of `schema`.
    pub fn new(schema: &SchemaRef) -> Self {
        let primed = (!sluice_arrow_check::schema_has_dictionary(schema))
            .then(|| Self::prime(schema))
            .flatten();
        SegmentEncoder {
            schema: Arc::clone(schema),
            primed,
            flat: FlatEncoder::new(schema).map(|e| (e, Buffer::from_vec(vec![0u8; 64]))),
        }
    }

    /// The schema message alone and an encoder past it, or `None` if the schema cannot be
    /// encoded (then every call reports why, through [`encode_segments`]).
    fn prime(schema: &SchemaRef) -> Option<(Buffer, arrow::ipc::writer::StreamEncoder)> {
        let stream = encode_schema(schema);
        let message = stream.strip_suffix(&END_OF_STREAM)?;
        let mut encoder = arrow::ipc::writer::StreamEncoder::try_new(schema).ok()?;
        // The first batch brings the schema message with it; later ones come alone.
        encoder.encode(&RecordBatch::new_empty(Arc::clone(schema))).ok()?;
        Some((Buffer::from(message), encoder))
    }

    /// The stream for `batch`: the bytes [`encode_batches`] writes for it alone.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<crate::abi::Segments, IpcError> {
        let Some((schema, encoder)) = &mut self.primed else {
            return encode_segments(&self.schema, batch);
        };
        let malformed = |e: arrow::error::ArrowError| IpcError::Malformed(e.to_string());
        let mut pieces = Vec::with_capacity(16);
        pieces.push(schema.clone());
        if let Some((flat, zeros)) = &mut self.flat {
            let message = flat.encode(batch).map_err(malformed)?;
            pieces.push(Buffer::from_vec(message.header));
            for (b, pad) in message.body {
                pieces.push(b);
                if pad > 0 {
                    pieces.push(zeros.slice_with_length(0, pad));
                }
            }
        } else {
            pieces.extend(encoder.encode(batch).map_err(malformed)?);
        }
        pieces.push(Buffer::from(&END_OF_STREAM[..]));
        Ok(crate::abi::Segments(pieces))
    }
}

/// Check the framing of every message in IPC stream `bytes` before arrow decodes it: each
/// message's metadata and body fit in the bytes, and every buffer a record batch or
/// dictionary batch declares lies inside its body.
///
/// arrow-ipc 60 slices body buffers at the offsets a message declares without checking
/// them, and panics on a bad one (found by fuzzing `decode_stream`): a plugin, or an input
/// file, must not be able to take the host down that way.
pub fn check_stream_framing(bytes: &[u8]) -> Result<(), IpcError> {
    frames(bytes).map(|_| ())
}

/// One message of an IPC stream, by byte positions: it starts at `start` (its continuation
/// marker, or its length), its metadata runs from `meta_start` to `meta_end` and its body
/// to `body_end`; `compressed` if its buffers are.
struct Frame {
    start: usize,
    meta_start: usize,
    meta_end: usize,
    body_end: usize,
    kind: &'static str,
    compressed: bool,
}

/// The messages of `bytes` up to the end-of-stream marker (or the end), each checked as
/// [`check_stream_framing`] describes.
fn frames(bytes: &[u8]) -> Result<Vec<Frame>, IpcError> {
    frames_and_layouts(bytes).map(|(frames, _)| frames)
}

/// [`frames`], and the layouts of the stream's (last) schema, which hold it parsed.
fn frames_and_layouts(bytes: &[u8]) -> Result<(Vec<Frame>, Layouts), IpcError> {
    let bad = |at: usize, why: String| IpcError::Malformed(format!("message at byte {at}: {why}"));
    let mut pos = 0usize;
    let mut layouts = Layouts::default();
    let mut out = vec![];
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        // `0xFFFFFFFF` then the metadata length; streams before Arrow 0.15 omit the marker.
        let prefix = if rest.starts_with(&[0xFF; 4]) { 4 } else { 0 };
        let Some(len) = rest.get(prefix..prefix + 4) else {
            return Err(bad(pos, "the stream ends inside a message length".into()));
        };
        let meta_len = i32::from_le_bytes(len.try_into().expect("4 bytes"));
        if meta_len == 0 {
            return Ok((out, layouts)); // end-of-stream marker
        }
        let meta_start = pos + prefix + 4;
        let meta_end = usize::try_from(meta_len).ok().and_then(|l| meta_start.checked_add(l));
        let Some(meta_end) = meta_end.filter(|&e| e <= bytes.len()) else {
            return Err(bad(
                pos,
                format!("it declares {meta_len} bytes of metadata, beyond the end of the stream"),
            ));
        };
        let (kind, body_len, compressed) =
            check_message(&bytes[meta_start..meta_end], &mut layouts).map_err(|why| bad(pos, why))?;
        let body_end = usize::try_from(body_len).ok().and_then(|l| meta_end.checked_add(l));
        match body_end {
            Some(end) if end <= bytes.len() => {
                out.push(Frame {
                    start: pos,
                    meta_start,
                    meta_end,
                    body_end: end,
                    kind,
                    compressed,
                });
                pos = end;
            }
            _ => {
                return Err(bad(
                    pos,
                    format!("it declares a body of {body_len} bytes, beyond the end of the stream"),
                ));
            }
        }
    }
    Ok((out, layouts))
}

/// Parse one IPC message header (a flatbuffer, verified) and check that every buffer of a
/// record batch or dictionary batch lies inside the body the message declares; return
/// what the message is (`schema`, `record batch`, `dictionary batch`, `message`), its
/// body length, and whether its buffers are compressed.
///
/// With `layouts` (what the stream's schema says each batch holds), also check what arrow's
/// decoder assumes without checking: that buffers it views as typed slices (offsets, views,
/// dictionary keys, fixed-width values) hold whole elements, and that union buffers cover
/// their rows. A schema message updates `layouts`.
pub fn check_message(meta: &[u8], layouts: &mut Layouts) -> Result<(&'static str, u64, bool), String> {
    let message = arrow::ipc::root_as_message(meta).map_err(|e| format!("unreadable message header ({e})"))?;
    let body_len =
        u64::try_from(message.bodyLength()).map_err(|_| format!("negative body length {}", message.bodyLength()))?;
    let (kind, batch) = match message.header_type() {
        arrow::ipc::MessageHeader::Schema => ("schema", None),
        arrow::ipc::MessageHeader::RecordBatch => ("record batch", message.header_as_record_batch()),
        arrow::ipc::MessageHeader::DictionaryBatch => (
            "dictionary batch",
            message.header_as_dictionary_batch().and_then(|d| d.data()),
        ),
        _ => ("message", None),
    };
    for (i, b) in batch.and_then(|b| b.buffers()).into_iter().flatten().enumerate() {
        let end = u64::try_from(b.offset())
            .ok()
            .zip(u64::try_from(b.length()).ok())
            .and_then(|(o, l)| o.checked_add(l));
        if end.is_none_or(|end| end > body_len) {
            return Err(format!(
                "buffer {i} at offset {} with length {} lies outside the message body of {body_len} bytes",
                b.offset(),
                b.length()
            ));
        }
    }
    match message.header_type() {
        arrow::ipc::MessageHeader::Schema => {
            if let Some(schema) = message.header_as_schema() {
                *layouts = Layouts::from_schema(schema);
            }
        }
        // Compressed buffers have their element counts only after decompression: arrow
        // checks those itself or, failing that, the callers' panic containment does.
        arrow::ipc::MessageHeader::RecordBatch => {
            if let Some(b) = message.header_as_record_batch().filter(|b| b.compression().is_none()) {
                layouts.check_record_batch(b, legacy_unions(&message))?;
            }
        }
        arrow::ipc::MessageHeader::DictionaryBatch => {
            if let Some(d) = message.header_as_dictionary_batch() {
                layouts.check_dictionary_batch(d, legacy_unions(&message))?;
            }
        }
        _ => {}
    }
    let compressed = match message.header_type() {
        arrow::ipc::MessageHeader::RecordBatch => message.header_as_record_batch().and_then(|b| b.compression()),
        arrow::ipc::MessageHeader::DictionaryBatch => message
            .header_as_dictionary_batch()
            .and_then(|d| d.data())
            .and_then(|b| b.compression()),
        _ => None,
    }
    .is_some();
    Ok((kind, body_len, compressed))
}

/// The most rows one IPC record batch may declare: what 32-bit Arrow offsets address.
pub const MAX_BATCH_ROWS: i64 = i32::MAX as i64;

/// Whether `message` predates metadata V5, whose unions have no validity buffer.
fn legacy_unions(message: &arrow::ipc::Message<'_>) -> bool {
    message.version() < arrow::ipc::MetadataVersion::V5
}

/// The column types of an IPC stream's schema, to check record and dictionary batches
/// against (see [`check_message`]).
#[derive(Debug, Default)]
pub struct Layouts {
    /// The schema, parsed; `None` before a schema message.
    schema: Option<SchemaRef>,
    /// The schema's top-level field types; `None` before a schema message.
    fields: Option<Vec<DataType>>,
    /// The value type of each dictionary id.
    dictionaries: HashMap<i64, DataType>,
}

impl Layouts {
    /// The layouts of `schema` (a flatbuffer schema message or file footer schema). A
    /// schema arrow cannot convert gives no layouts: arrow refuses the stream itself.
    pub fn from_schema(schema: arrow::ipc::Schema<'_>) -> Self {
        let Ok(schema) = arrow::ipc::convert::try_fb_to_schema(schema) else {
            return Layouts::default();
        };
        let mut this = Layouts::default();
        for f in schema.fields() {
            this.collect(f);
        }
        this.fields = Some(schema.fields().iter().map(|f| f.data_type().clone()).collect());
        this.schema = Some(Arc::new(schema));
        this
    }

    /// Record the value types of the dictionaries in `f` and its children.
    fn collect(&mut self, f: &Field) {
        #[allow(deprecated)] // arrow-ipc 60 still numbers dictionaries by field
        if let (Some(id), DataType::Dictionary(_, value)) = (f.dict_id(), f.data_type()) {
            self.dictionaries.insert(id, value.as_ref().clone());
        }
        match f.data_type() {
            DataType::List(c)
            | DataType::LargeList(c)
            | DataType::ListView(c)
            | DataType::LargeListView(c)
            | DataType::FixedSizeList(c, _)
            | DataType::Map(c, _) => self.collect(c),
            DataType::Struct(cs) => cs.iter().for_each(|c| self.collect(c)),
            DataType::Union(cs, _) => cs.iter().for_each(|(_, c)| self.collect(c)),
            DataType::RunEndEncoded(a, b) => {
                self.collect(a);
                self.collect(b);
            }
            DataType::Dictionary(_, value) => self.collect(&Field::new("", value.as_ref().clone(), true)),
            _ => {}
        }
    }

    fn check_record_batch(&self, b: arrow::ipc::RecordBatch<'_>, legacy: bool) -> Result<(), String> {
        // Columns of type null (and run-end encoded ones) have no buffers that bound their
        // length: without a cap a 1 KB stream could declare 10^17 rows to read.
        if b.length() > MAX_BATCH_ROWS {
            return Err(format!(
                "it declares {} rows in one record batch, over the {MAX_BATCH_ROWS} sluice reads per batch",
                b.length()
            ));
        }
        let Some(fields) = &self.fields else { return Ok(()) };
        let mut walk = Walk::new(b, legacy);
        for (i, dt) in fields.iter().enumerate() {
            walk.field(dt).map_err(|e| format!("column {i} ({dt}): {e}"))?;
        }
        Ok(())
    }

    fn check_dictionary_batch(&self, d: arrow::ipc::DictionaryBatch<'_>, legacy: bool) -> Result<(), String> {
        let (Some(dt), Some(b)) = (self.dictionaries.get(&d.id()), d.data()) else {
            return Ok(()); // arrow refuses an unknown dictionary id itself
        };
        if b.compression().is_some() {
            return Ok(());
        }
        Walk::new(b, legacy)
            .field(dt)
            .map_err(|e| format!("dictionary {} ({dt}): {e}", d.id()))
    }
}

/// A walk over one batch's buffers and nodes in the order arrow-ipc's reader takes them.
/// Running out of either is left to arrow, which reports it as an error.
struct Walk<'a> {
    buffers: std::collections::VecDeque<arrow::ipc::Buffer>,
    nodes: std::collections::VecDeque<arrow::ipc::FieldNode>,
    variadic: std::collections::VecDeque<i64>,
    /// Metadata before V5: a union has a validity buffer first.
    legacy: bool,
    _batch: std::marker::PhantomData<&'a ()>,
}

impl<'a> Walk<'a> {
    fn new(b: arrow::ipc::RecordBatch<'a>, legacy: bool) -> Self {
        Walk {
            buffers: b.buffers().into_iter().flatten().copied().collect(),
            nodes: b.nodes().into_iter().flatten().copied().collect(),
            variadic: b.variadicBufferCounts().into_iter().flatten().collect(),
            legacy,
            _batch: std::marker::PhantomData,
        }
    }

    /// Take the next buffer, checking it holds whole elements of `width` bytes.
    fn buffer(&mut self, what: &str, width: usize) -> Result<Option<arrow::ipc::Buffer>, String> {
        let Some(b) = self.buffers.pop_front() else {
            return Ok(None);
        };
        if width > 1 && b.length() % width as i64 != 0 {
            return Err(format!(
                "its {what} buffer has {} bytes, not a whole number of {width}-byte elements",
                b.length()
            ));
        }
        Ok(Some(b))
    }

    fn field(&mut self, dt: &DataType) -> Result<(), String> {
        use DataType::*;
        let Some(node) = self.nodes.pop_front() else {
            return Ok(());
        };
        match dt {
            Null => {}
            Utf8 | Binary => self.buffers3(node, 4)?,
            LargeUtf8 | LargeBinary => self.buffers3(node, 8)?,
            Utf8View | BinaryView => {
                let Some(count) = self.variadic.pop_front() else {
                    return Ok(());
                };
                self.validity(node)?;
                let views = self.buffer("views", 16)?;
                at_least(views, node.length(), 16, "views")?;
                for _ in 0..count.clamp(0, self.buffers.len() as i64) {
                    self.buffer("data", 1)?;
                }
            }
            List(f) | Map(f, _) => {
                self.buffer("validity", 1)?;
                self.buffer("offsets", 4)?;
                self.field(f.data_type())?;
            }
            LargeList(f) => {
                self.buffer("validity", 1)?;
                self.buffer("offsets", 8)?;
                self.field(f.data_type())?;
            }
            ListView(f) | LargeListView(f) => {
                let w = if matches!(dt, ListView(_)) { 4 } else { 8 };
                self.buffer("validity", 1)?;
                self.buffer("offsets", w)?;
                self.buffer("sizes", w)?;
                self.field(f.data_type())?;
            }
            FixedSizeList(f, _) => {
                self.buffer("validity", 1)?;
                self.field(f.data_type())?;
            }
            Struct(fields) => {
                self.buffer("validity", 1)?;
                for f in fields {
                    self.field(f.data_type())?;
                }
            }
            RunEndEncoded(ends, values) => {
                self.field(ends.data_type())?;
                self.field(values.data_type())?;
            }
            Dictionary(key, _) => {
                self.buffer("validity", 1)?;
                self.buffer("keys", key.primitive_width().unwrap_or(1))?;
            }
            Union(fields, mode) => {
                // arrow slices these to the row count without checking (V5: no validity).
                let rows = node.length().max(0);
                if self.legacy {
                    self.buffer("validity", 1)?;
                }
                let ids = self.buffer("type ids", 1)?;
                if ids.is_some_and(|b| b.length() < rows) {
                    return Err(format!("its type ids buffer is shorter than its {rows} rows"));
                }
                if *mode == arrow::datatypes::UnionMode::Dense {
                    let offsets = self.buffer("offsets", 4)?;
                    if offsets.is_some_and(|b| b.length() < rows.saturating_mul(4) || b.offset() % 8 != 0) {
                        return Err(format!(
                            "its offsets buffer is shorter than its {rows} rows or not 8-byte aligned"
                        ));
                    }
                }
                for (_, f) in fields.iter() {
                    self.field(f.data_type())?;
                }
            }
            _ => {
                self.validity(node)?;
                let width = dt.primitive_width().unwrap_or(1);
                let values = self.buffer("values", width)?;
                match dt {
                    Boolean => at_least(values, node.length().saturating_add(7) / 8, 1, "values")?,
                    FixedSizeBinary(n) => at_least(values, node.length(), i64::from(*n), "values")?,
                    _ if dt.is_primitive() => at_least(values, node.length(), width as i64, "values")?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Take the validity buffer of `node`: when it has nulls, it needs a bit per row.
    fn validity(&mut self, node: arrow::ipc::FieldNode) -> Result<(), String> {
        let validity = self.buffer("validity", 1)?;
        if node.null_count() > 0 {
            at_least(validity, node.length().saturating_add(7) / 8, 1, "validity")?;
        }
        Ok(())
    }

    /// Validity, offsets of `width` bytes, and data: the string and binary layouts.
    fn buffers3(&mut self, node: arrow::ipc::FieldNode, width: usize) -> Result<(), String> {
        self.validity(node)?;
        let offsets = self.buffer("offsets", width)?;
        if node.length() > 0 {
            at_least(offsets, node.length().saturating_add(1), width as i64, "offsets")?;
        }
        self.buffer("data", 1)?;
        Ok(())
    }
}

/// Refuse buffer `b` (when present) if it is shorter than `count` elements of `width`
/// bytes: arrays decoded without arrow's validation (see [`decode_stream`]) are built over
/// their buffers before anything checks them, and arrow's constructors assert the length.
fn at_least(b: Option<arrow::ipc::Buffer>, count: i64, width: i64, what: &str) -> Result<(), String> {
    let need = count.saturating_mul(width);
    match b {
        Some(b) if count > 0 && b.length() < need => Err(format!(
            "its {what} buffer has {} bytes, fewer than the {need} that {count} elements of {width} bytes need",
            b.length()
        )),
        _ => Ok(()),
    }
}

/// Types whose every buffer the framing walk checks for length (flat types): only streams
/// made of these are decoded without arrow's validation.
fn flat(dt: &DataType) -> bool {
    use DataType::*;
    dt.is_primitive()
        || matches!(
            dt,
            Null | Boolean | Utf8 | LargeUtf8 | Binary | LargeBinary | Utf8View | BinaryView | FixedSizeBinary(_)
        )
}

/// Decode the schema at the head of an IPC stream.
pub fn decode_schema(bytes: Vec<u8>) -> Result<SchemaRef, IpcError> {
    check_stream_framing(&bytes)?;
    let mut buf = Buffer::from_vec(bytes);
    let mut dec = StreamDecoder::new();
    while !buf.is_empty() {
        dec.decode(&mut buf).map_err(|e| IpcError::Malformed(e.to_string()))?;
        if let Some(s) = dec.schema() {
            return Ok(s);
        }
    }
    // arrow's decoder yields a schema message (empty body) only once it sees the next
    // message: a stream that ends right after the schema, without the end-of-stream marker
    // (as some writers in other languages emit), gets the marker here.
    let mut end = Buffer::from(&END_OF_STREAM[..]);
    dec.decode(&mut end).map_err(|e| IpcError::Malformed(e.to_string()))?;
    dec.schema().ok_or(IpcError::NoSchema)
}

/// Decode and fully validate an IPC stream whose schema must match `expected`.
///
/// The bytes are wrapped without copying; arrays returned point into them.
pub fn decode_stream(bytes: Vec<u8>, expected: &Schema) -> Result<Vec<RecordBatch>, IpcError> {
    let malformed = |e: arrow::error::ArrowError| IpcError::Malformed(e.to_string());
    let (frames, layouts) = frames_and_layouts(&bytes)?;
    let buf = Buffer::from_vec(bytes);
    let mut frames = frames.iter();
    let Some(first) = frames.next().filter(|f| f.kind == "schema") else {
        return Err(IpcError::NoSchema);
    };
    let message = arrow::ipc::root_as_message(&buf[first.meta_start..first.meta_end])
        .map_err(|e| IpcError::Malformed(format!("unreadable schema message ({e})")))?;
    // The framing walk parsed the schema already (the last one: a second is refused below);
    // only a schema arrow refuses is parsed again, for arrow's reason.
    let schema = match layouts.schema {
        Some(schema) if frames.clone().all(|f| f.kind != "schema") => schema,
        _ => {
            let fb = message
                .header_as_schema()
                .ok_or_else(|| IpcError::Malformed("the schema message holds no schema".into()))?;
            Arc::new(arrow::ipc::convert::try_fb_to_schema(fb).map_err(malformed)?)
        }
    };
    check_schema(&schema, expected)?;
    // arrow's validation of `Utf8View` values is one `str::from_utf8` per value: a tenth of
    // a masking plugin's transform stage. Streams of flat columns without compression are
    // decoded without it: the framing walk has checked the length of every buffer they have
    // (arrow's constructors assert those before any validation could run), and
    // `sluice_arrow_check::validate_full` checks the rest below. Other streams keep arrow's
    // validation. (arrow 60's `StreamDecoder` validates record batches whatever it is told,
    // so messages are read with `FileDecoder`.)
    let unchecked = schema.fields().iter().all(|f| flat(f.data_type())) && !frames.clone().any(|f| f.compressed);
    // Columns that are all fixed-width values (a plugin's computed numbers, say) are read
    // straight from the messages the framing walk verified, with the same checks.
    let fixed = if unchecked { FlatLayout::new(&schema) } else { None };
    let mut decoder = FileDecoder::new(Arc::clone(&schema), message.version());
    if unchecked {
        // SAFETY: see above; every column is validated before it leaves this function.
        decoder = unsafe { decoder.with_skip_validation(true) };
    }
    let mut out = Vec::new();
    for f in frames {
        // The decoder reads the message at the start of the buffer it is given.
        let message = buf.slice_with_length(f.start, f.body_end - f.start);
        let block = Block::new(
            0,
            i32::try_from(f.meta_end - f.start).map_err(|_| IpcError::Malformed("metadata too long".into()))?,
            (f.body_end - f.meta_end) as i64,
        );
        match f.kind {
            "record batch" => {
                if let Some(fixed) = &fixed {
                    // SAFETY: `frames_and_layouts` verified this flatbuffer, in these same bytes.
                    let header = unsafe { arrow::ipc::root_as_message_unchecked(&buf[f.meta_start..f.meta_end]) }
                        .header_as_record_batch()
                        .ok_or_else(|| IpcError::Malformed("a record batch message holds no record batch".into()))?;
                    let body = buf.slice_with_length(f.meta_end, f.body_end - f.meta_end);
                    out.push(fixed.decode(header, &body).map_err(malformed)?);
                } else if let Some(b) = decoder.read_record_batch(&block, &message).map_err(malformed)? {
                    out.push(if unchecked { validate(b)? } else { b });
                }
            }
            "dictionary batch" => decoder.read_dictionary(&block, &message).map_err(malformed)?,
            other => {
                return Err(IpcError::Malformed(format!(
                    "a {other} at byte {} after the schema: a stream holds one schema, then dictionaries and record batches",
                    f.start
                )));
            }
        }
    }
    Ok(out)
}

/// What arrow's validation checks, for a batch decoded without it: every column in full
/// (`sluice_arrow_check`), then arrow's checked constructor (each column has the batch's row
/// count and the schema's type, and no nulls where the field is not nullable).
fn validate(b: RecordBatch) -> Result<RecordBatch, IpcError> {
    for (field, column) in b.schema_ref().fields().iter().zip(b.columns()) {
        sluice_arrow_check::validate_full(&column.to_data())
            .map_err(|e| IpcError::Malformed(format!("column `{}`: {e}", field.name())))?;
    }
    let options = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(b.schema_ref()), b.columns().to_vec(), &options)
        .map_err(|e| IpcError::Malformed(e.to_string()))
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

    /// The pieces a plugin's memory receives are, end to end, the stream `encode_batches`
    /// writes: whole and sliced (offsets rebased), and they decode to the batch.
    #[test]
    fn segments_are_the_encoded_stream() {
        let b = batch();
        for b in [b.clone(), b.slice(1, 2), b.slice(3, 0)] {
            let segments = encode_segments(&b.schema(), &b).unwrap();
            let bytes = encode_batches(&b.schema(), std::slice::from_ref(&b)).unwrap();
            assert_eq!(segments.len(), bytes.len());
            assert_eq!(segments.to_vec(), bytes);
            assert_eq!(decode_stream(segments.to_vec(), &b.schema()).unwrap(), vec![b]);
        }
    }

    /// One long-lived encoder writes, call after call, the stream `encode_batches` writes
    /// for each batch alone; a schema with a dictionary sends it in every call's stream.
    #[test]
    fn segment_encoder_writes_each_stream_whole() {
        use arrow::array::{Array, DictionaryArray, Int32Array};
        use arrow::datatypes::Int32Type;
        let b = batch();
        let mut encoder = SegmentEncoder::new(&b.schema());
        assert!(encoder.primed.is_some());
        for b in [b.clone(), b.slice(1, 2), b.slice(3, 0), b.clone()] {
            let segments = encoder.encode(&b).unwrap();
            assert_eq!(
                segments.to_vec(),
                encode_batches(&b.schema(), std::slice::from_ref(&b)).unwrap()
            );
            assert_eq!(decode_stream(segments.to_vec(), &b.schema()).unwrap(), vec![b]);
        }
        // Fixed-width columns take the flat encoder: the same bytes, the values shared.
        let n = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, true)]));
        let ints = Int32Array::from_iter((0..100).map(|i| (i % 7 != 0).then_some(i)));
        let b = RecordBatch::try_new(Arc::clone(&n), vec![Arc::new(ints)]).unwrap();
        let mut encoder = SegmentEncoder::new(&n);
        assert!(encoder.flat.is_some());
        for b in [b.clone(), b.slice(3, 50), b.slice(8, 0), b.clone()] {
            let segments = encoder.encode(&b).unwrap();
            assert_eq!(segments.to_vec(), encode_batches(&n, std::slice::from_ref(&b)).unwrap());
            let values = b.column(0).to_data().buffers()[0].as_ptr();
            assert!(b.num_rows() == 0 || segments.0.iter().any(|p| p.as_ptr() == values));
            assert_eq!(decode_stream(segments.to_vec(), &n).unwrap(), vec![b]);
        }
        let dict: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("d", dict.data_type().clone(), false),
            Field::new("i", DataType::Int32, false),
        ]));
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(dict), Arc::new(Int32Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let mut encoder = SegmentEncoder::new(&schema);
        assert!(encoder.primed.is_none());
        for _ in 0..2 {
            let segments = encoder.encode(&b).unwrap();
            assert_eq!(
                segments.to_vec(),
                encode_batches(&schema, std::slice::from_ref(&b)).unwrap()
            );
            assert_eq!(decode_stream(segments.to_vec(), &schema).unwrap(), vec![b.clone()]);
        }
    }

    /// A stream of fixed-width columns is read straight from its messages: the arrays share
    /// the stream's bytes, every batch comes back equal, and a null count that does not
    /// match its bitmap is refused, naming the column.
    #[test]
    fn flat_streams_are_read_from_their_messages() {
        use arrow::array::{Array, Decimal128Array, Int32Array};
        let schema = Arc::new(Schema::new(vec![
            Field::new("d", DataType::Decimal128(18, 4), false),
            Field::new("n", DataType::Int32, true),
        ]));
        let batch = |n: i32| {
            let d = Decimal128Array::from_iter_values((0..n).map(|i| i as i128 * 12_345))
                .with_precision_and_scale(18, 4)
                .unwrap();
            let x = Int32Array::from_iter((0..n).map(|i| (i % 4 != 1).then_some(i)));
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(d), Arc::new(x)]).unwrap()
        };
        let batches = [batch(1000), batch(0), batch(7)];
        let bytes = encode_batches(&schema, &batches).unwrap();
        let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
        let got = decode_stream(bytes, &schema).unwrap();
        assert_eq!(got, batches);
        assert!(range.contains(&(got[0].column(0).to_data().buffers()[0].as_ptr() as usize)));
        // 250 nulls in the bitmap, declared as 3.
        let x = batch(1000).column(1).to_data();
        // SAFETY: only encoded, to be refused by the decoder.
        let lying = unsafe {
            let nulls = arrow::buffer::NullBuffer::new_unchecked(x.nulls().unwrap().inner().clone(), 3);
            Int32Array::from(x.into_builder().nulls(Some(nulls)).build_unchecked())
        };
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::clone(batch(1000).column(0)), Arc::new(lying)],
        )
        .unwrap();
        let err = decode_stream(encode_batches(&schema, &[b]).unwrap(), &schema)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column 1 (`n`)") && err.contains("declares 3 nulls"),
            "{err}"
        );
    }

    /// Arrays are decoded without arrow's validation and checked by `sluice_arrow_check`:
    /// a view column with bad UTF-8 (inline or in a data buffer), or a view past its buffer,
    /// is still refused, naming the column; good views in the same shape pass.
    #[test]
    fn invalid_views_are_refused_after_unchecked_decoding() {
        use arrow::array::{Array, BinaryViewArray, StringViewArray};
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8View, true)]));
        let as_strings = |a: &BinaryViewArray| {
            let data = a.to_data().into_builder().data_type(DataType::Utf8View);
            // SAFETY: only encoded, to be refused by the decoder's checks.
            Arc::new(StringViewArray::from(unsafe { data.build_unchecked() }))
        };
        let good = BinaryViewArray::from(vec![Some(&b"fine"[..]), None, Some(b"a longer value, out of line")]);
        let good = RecordBatch::try_new(Arc::clone(&schema), vec![as_strings(&good)]).unwrap();
        let bytes = encode_batches(&schema, std::slice::from_ref(&good)).unwrap();
        assert_eq!(decode_stream(bytes, &schema).unwrap(), vec![good]);
        for bad in [&b"\xff"[..], &b"a longer value, then \xc3"[..]] {
            let a = BinaryViewArray::from(vec![Some(&b"fine"[..]), Some(bad)]);
            let b = RecordBatch::try_new(Arc::clone(&schema), vec![as_strings(&a)]).unwrap();
            let bytes = encode_batches(&schema, &[b]).unwrap();
            let err = decode_stream(bytes, &schema).unwrap_err().to_string();
            assert!(err.contains("column `v`") && err.contains("non-UTF-8"), "{err}");
        }
        let long = BinaryViewArray::from(vec![&b"a longer value, out of line"[..]]);
        let view = long.views()[0] + (1u128 << 96) * 100;
        let data = long
            .to_data()
            .into_builder()
            .data_type(DataType::Utf8View)
            .buffers(vec![Buffer::from_vec(vec![view]), long.data_buffers()[0].clone()]);
        // SAFETY: as above.
        let a = Arc::new(StringViewArray::from(unsafe { data.build_unchecked() }));
        let b = RecordBatch::try_new(Arc::clone(&schema), vec![a]).unwrap();
        let err = decode_stream(encode_batches(&schema, &[b]).unwrap(), &schema)
            .unwrap_err()
            .to_string();
        assert!(err.contains("out of the buffer's bounds"), "{err}");
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
    fn buffers_outside_their_message_body_are_refused_before_decoding() {
        // Found by fuzzing: arrow-ipc 60 panics slicing a buffer at a declared offset past
        // the body. The values buffer of [1, 2, 3] is (offset 0, length 24).
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let mut bytes = encode_batches(&b.schema(), std::slice::from_ref(&b)).unwrap();
        let needle: Vec<u8> = [0i64.to_le_bytes(), 24i64.to_le_bytes()].concat();
        let at = bytes.windows(16).position(|w| w == needle).expect("the values buffer");
        bytes[at..at + 8].copy_from_slice(&(1i64 << 53).to_le_bytes());
        let err = decode_stream(bytes.clone(), &b.schema()).unwrap_err();
        assert!(err.to_string().contains("lies outside the message body"), "{err}");
        // A message that declares more metadata than the stream holds.
        let err = decode_stream(vec![0xFF, 0xFF, 0xFF, 0xFF, 0xF0, 0xFF, 0xFF, 0x7F, 1, 2], &b.schema()).unwrap_err();
        assert!(err.to_string().contains("beyond the end of the stream"), "{err}");
    }

    /// Batches decoded zero-copy from a plugin's output (the next stage's input in an
    /// ABI 1.0 chain) are re-encoded into a buffer sized by their data, not by the message
    /// they point into (`get_array_memory_size` counted it once per buffer).
    #[test]
    fn re_encoding_a_zero_copy_batch_reserves_about_its_size() {
        let schema = Arc::new(Schema::new(
            (0..16)
                .map(|i| Field::new(format!("c{i}"), DataType::Int64, false))
                .collect::<Vec<_>>(),
        ));
        let columns: Vec<arrow::array::ArrayRef> = (0..16)
            .map(|_| Arc::new(Int64Array::from_iter_values(0..10_000)) as arrow::array::ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let bytes = encode_batches(&schema, std::slice::from_ref(&batch)).unwrap();
        let decoded = decode_stream(bytes.clone(), &schema).unwrap();
        let again = encode_batches(&schema, &decoded).unwrap();
        assert_eq!(again, bytes);
        assert!(
            again.capacity() <= 2 * bytes.len() + (64 << 10),
            "{} bytes reserved for {}",
            again.capacity(),
            again.len()
        );
    }

    #[test]
    fn a_schema_only_stream_needs_no_end_marker() {
        let b = batch();
        let mut bytes = encode_schema(&b.schema());
        // The end-of-stream marker: continuation 0xFFFFFFFF then a zero length.
        assert!(bytes.ends_with(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]));
        bytes.truncate(bytes.len() - 8);
        assert_eq!(decode_schema(bytes).unwrap(), b.schema());
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
