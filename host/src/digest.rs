//! Digests. sha256 for plugin artifacts (the convention users pin with), BLAKE3 for bulk
//! data (an order of magnitude faster than software sha256 here). Every digest string
//! carries its algorithm: `sha256:<hex>` or `blake3:<hex>`.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef};

use crate::error::{Error, Result};

/// `blake3:<hex>` of a file's bytes, read in 1 MiB blocks, each hashed on all cores while
/// a reader thread fills the next one.
///
/// Not memory-mapped: every page of a mapped file counts in the process's resident set
/// until it is unmapped, so hashing a 2.5 GB input that way made peak RSS grow with the
/// input (2.5 GB at TPC-H SF10 against 0.5 GB at SF1) although nothing else does; and a
/// file truncated while mapped kills the process (SIGBUS) instead of failing with an error.
/// Reading overlaps hashing because every run hashes its inputs before reading a row: on
/// SF1's 232 MB lineitem, the time from a run's start to opening its plugins went from
/// 112–117 ms (read, then hash) to 89–102 ms. 1 MiB blocks rather than 8: the two buffers
/// then stay in cache between the read that fills them and the hash that reads them
/// (62–75 ms against 75–100 ms for the same file, interleaved; copying out of the page
/// cache is most of what is left, about 58 ms of CPU).
pub fn blake3_file(path: &Path) -> Result<String> {
    use std::io::Read;
    use std::sync::mpsc::{channel, sync_channel};
    const BLOCK: usize = 1 << 20;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    // Two buffers: one being hashed, one being filled.
    let (full_tx, full_rx) = sync_channel::<std::io::Result<(Vec<u8>, usize)>>(1);
    let (empty_tx, empty_rx) = channel::<Vec<u8>>();
    for _ in 0..2 {
        let _ = empty_tx.send(vec![0u8; BLOCK]);
    }
    std::thread::scope(|scope| {
        scope.spawn(move || {
            while let Ok(mut buf) = empty_rx.recv() {
                // Fill the whole block (short reads happen) so that rayon gets large inputs.
                let mut n = 0;
                let filled = loop {
                    if n == BLOCK {
                        break Ok(n);
                    }
                    match f.read(&mut buf[n..]) {
                        Ok(0) => break Ok(n),
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                let end = !matches!(filled, Ok(n) if n > 0);
                if full_tx.send(filled.map(|n| (buf, n))).is_err() || end {
                    return;
                }
            }
        });
        let mut h = blake3::Hasher::new();
        loop {
            match full_rx.recv() {
                Ok(Ok((buf, n))) if n > 0 => {
                    h.update_rayon(&buf[..n]);
                    let _ = empty_tx.send(buf);
                }
                Ok(Ok(_)) => return Ok(format!("blake3:{}", h.finalize().to_hex())),
                Ok(Err(e)) => return Err(Error::io("read", path, e)),
                // The reader ends only after sending the end or an error.
                Err(_) => {
                    return Err(Error::io(
                        "read",
                        path,
                        std::io::Error::other("the reading thread stopped"),
                    ));
                }
            }
        }
    })
}

/// The logical digest of a stream of record batches (`blake3:<hex>`), version 1.
///
/// Defined over the *data*, not its encoding: the schema (field names, types,
/// nullability), the row count, and per column the validity (the positions of nulls), the
/// length of each variable-size value and the values themselves, where a null contributes
/// no value bytes and fixed-width nulls contribute zeros. Offsets, slices, buffer padding,
/// whatever lies under a null and batch boundaries do not matter: the same rows digest the
/// same however they were read, sliced or batched. Nested, dictionary and other types are
/// hashed through arrow's row format, which is canonical for them.
///
/// Each column keeps three BLAKE3 streams (nulls, lengths, values) so that splitting the
/// same rows into other batches yields the same digest.
pub struct DataDigest {
    schema: SchemaRef,
    columns: Vec<ColumnDigest>,
    /// Columns [`DataDigest::update`] leaves alone: their state will be adopted from another
    /// digest of the very same arrays ([`DataDigest::adopt`]).
    deferred: Vec<bool>,
    rows: u64,
}

#[derive(Default, Clone)]
struct ColumnDigest {
    nulls: blake3::Hasher,
    lengths: blake3::Hasher,
    values: blake3::Hasher,
}

impl DataDigest {
    /// A digest of batches with `schema`.
    pub fn new(schema: &SchemaRef) -> Self {
        DataDigest {
            schema: std::sync::Arc::clone(schema),
            columns: (0..schema.fields().len()).map(|_| ColumnDigest::default()).collect(),
            deferred: vec![false; schema.fields().len()],
            rows: 0,
        }
    }

    /// Add one batch (its schema must be the digest's).
    pub fn update(&mut self, batch: &RecordBatch) {
        let base = self.rows;
        for ((col, hasher), deferred) in batch.columns().iter().zip(&mut self.columns).zip(&self.deferred) {
            if !deferred {
                hasher.update(col.as_ref(), base);
            }
        }
        self.rows += batch.num_rows() as u64;
    }

    /// Leave column `k` out of [`DataDigest::update`] until [`DataDigest::adopt`] fills it:
    /// for a column that is, batch for batch, the same arrays another digest hashes (a
    /// column a plugin's plan passes through), hashing it twice would give the same state.
    pub fn defer(&mut self, k: usize) {
        if let Some(d) = self.deferred.get_mut(k) {
            *d = true;
        }
    }

    /// Take column `j`'s state from `from` as this digest's column `k`, which was deferred.
    ///
    /// Correct only when every batch added here so far had in column `k` the array `from`
    /// got in column `j`, batch for batch (so the same rows at the same positions).
    pub fn adopt(&mut self, k: usize, from: &DataDigest, j: usize) {
        debug_assert_eq!(self.rows, from.rows, "adopting a column from a digest of other rows");
        if let (Some(c), Some(src)) = (self.columns.get_mut(k), from.columns.get(j)) {
            *c = src.clone();
            self.deferred[k] = false;
        }
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// `blake3:<hex>` of everything added.
    pub fn finish(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"sluice-data-digest-v1\0");
        h.update(schema_fingerprint(&self.schema).as_bytes());
        h.update(&self.rows.to_le_bytes());
        for c in &self.columns {
            h.update(c.nulls.finalize().as_bytes());
            h.update(c.lengths.finalize().as_bytes());
            h.update(c.values.finalize().as_bytes());
        }
        format!("blake3:{}", h.finalize().to_hex())
    }
}

/// A canonical text form of a schema's fields (names, types, nullability), for digests.
pub fn schema_fingerprint(schema: &Schema) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{:?}:{:?}:{}", f.name(), f.data_type(), f.is_nullable()))
        .collect();
    fields.join(";")
}

/// `blake3:<hex>` of a schema's fingerprint.
pub fn schema_digest(schema: &Schema) -> String {
    blake3_bytes(schema_fingerprint(schema).as_bytes())
}

impl ColumnDigest {
    fn update(&mut self, array: &dyn Array, base: u64) {
        let len = array.len();
        let null_count = array.null_count();
        if null_count > 0 {
            let mut positions = Vec::with_capacity(null_count * 8);
            for i in 0..len {
                if array.is_null(i) {
                    positions.extend_from_slice(&(base + i as u64).to_le_bytes());
                }
            }
            self.nulls.update(&positions);
        }
        let dt = array.data_type();
        if let Some(width) = dt.primitive_width() {
            let data = array.to_data();
            let buf = &data.buffers()[0];
            let bytes = &buf.as_slice()[data.offset() * width..(data.offset() + len) * width];
            if null_count == 0 {
                self.values.update(bytes);
            } else {
                let mut owned = bytes.to_vec();
                for i in 0..len {
                    if array.is_null(i) {
                        owned[i * width..(i + 1) * width].fill(0);
                    }
                }
                self.values.update(&owned);
            }
            return;
        }
        match dt {
            DataType::Boolean => {
                let a = array.as_boolean();
                let bytes: Vec<u8> = (0..len).map(|i| u8::from(a.is_valid(i) && a.value(i))).collect();
                self.values.update(&bytes);
            }
            DataType::Utf8 => self.offsets(
                array.as_string::<i32>().offsets(),
                array.as_string::<i32>().values(),
                array,
            ),
            DataType::LargeUtf8 => self.offsets(
                array.as_string::<i64>().offsets(),
                array.as_string::<i64>().values(),
                array,
            ),
            DataType::Binary => self.offsets(
                array.as_binary::<i32>().offsets(),
                array.as_binary::<i32>().values(),
                array,
            ),
            DataType::LargeBinary => self.offsets(
                array.as_binary::<i64>().offsets(),
                array.as_binary::<i64>().values(),
                array,
            ),
            DataType::Utf8View => {
                let a = array.as_string_view();
                self.views(a.views(), a.data_buffers(), a.nulls());
            }
            DataType::BinaryView => {
                let a = array.as_binary_view();
                self.views(a.views(), a.data_buffers(), a.nulls());
            }
            DataType::Null => {}
            _ => {
                // Canonical for every type it supports (nested, dictionary, ...).
                let converted = arrow::row::RowConverter::new(vec![arrow::row::SortField::new(dt.clone())])
                    .and_then(|c| c.convert_columns(&[arrow::array::make_array(array.to_data())]));
                match converted {
                    Ok(rows) => self.each(len, |i| Some(rows.row(i).data())),
                    Err(_) => {
                        // Types the row format cannot encode: fall back to arrow's own
                        // formatting of each value, which is canonical but slow.
                        let f = arrow::util::display::ArrayFormatter::try_new(array, &Default::default());
                        let texts: Vec<Option<String>> = (0..len)
                            .map(|i| {
                                array
                                    .is_valid(i)
                                    .then(|| f.as_ref().map(|f| f.value(i).to_string()).unwrap_or_default())
                            })
                            .collect();
                        self.each(len, |i| texts[i].as_deref().map(str::as_bytes));
                    }
                }
            }
        }
    }

    fn offsets<O: arrow::array::OffsetSizeTrait>(&mut self, offsets: &[O], values: &[u8], array: &dyn Array) {
        let n = offsets.len() - 1;
        let mut lengths = Lengths::default();
        let nulls = array.null_count() > 0;
        for i in 0..n {
            let l = if nulls && array.is_null(i) {
                0
            } else {
                (offsets[i + 1] - offsets[i]).as_usize() as u64
            };
            lengths.push(&mut self.lengths, l);
        }
        lengths.flush(&mut self.lengths);
        if !nulls {
            self.values
                .update(&values[offsets[0].as_usize()..offsets[n].as_usize()]);
        } else {
            for i in 0..n {
                if array.is_valid(i) {
                    self.values
                        .update(&values[offsets[i].as_usize()..offsets[i + 1].as_usize()]);
                }
            }
        }
    }

    /// What [`ColumnDigest::each`] hashes for a view array, read straight from its views:
    /// a string of 12 bytes or fewer is inside its view. Per-value `value(i)` calls were
    /// most of the input digest's own time on TPC-H (three view columns of 16), and so were
    /// per-value `memmove` calls after them: values are gathered into one cache-sized block
    /// with fixed-size copies (12 bytes from the view, 16-byte steps from a data buffer,
    /// over-copying into the block's slack and counting only `len`).
    fn views(&mut self, views: &[u128], buffers: &[arrow::buffer::Buffer], nulls: Option<&arrow::buffer::NullBuffer>) {
        const BLOCK: usize = 64 * 1024;
        const SLACK: usize = 16;
        let mut block = vec![0u8; BLOCK + SLACK];
        let mut at = 0;
        let mut lengths = Lengths::default();
        for (i, &v) in views.iter().enumerate() {
            let len = if nulls.is_none_or(|n| n.is_valid(i)) {
                v as u32 as usize
            } else {
                0
            };
            lengths.push(&mut self.lengths, len as u64);
            if len <= 12 {
                // `at < BLOCK` here, so 12 bytes fit in the slack whatever `len` is.
                block[at..at + 12].copy_from_slice(&v.to_le_bytes()[4..16]);
                at += len;
            } else {
                let (index, offset) = ((v >> 64) as u32 as usize, (v >> 96) as u32 as usize);
                // Validated arrays never miss; an invalid one hashes as empty, never panics.
                let data = buffers.get(index).map(|b| b.as_slice()).unwrap_or(&[]);
                let Some(bytes) = data.get(offset..offset + len) else {
                    continue;
                };
                if at + len + SLACK > block.len() {
                    self.values.update(&block[..at]);
                    at = 0;
                    if len + SLACK > block.len() {
                        self.values.update(bytes);
                        continue;
                    }
                }
                let padded = len.next_multiple_of(SLACK);
                if let Some(src) = data.get(offset..offset + padded) {
                    for (d, s) in block[at..at + padded]
                        .chunks_exact_mut(SLACK)
                        .zip(src.chunks_exact(SLACK))
                    {
                        d.copy_from_slice(s);
                    }
                } else {
                    block[at..at + len].copy_from_slice(bytes);
                }
                at += len;
            }
            if at >= BLOCK {
                self.values.update(&block[..at]);
                at = 0;
            }
        }
        self.values.update(&block[..at]);
        lengths.flush(&mut self.lengths);
    }

    fn each<'a>(&mut self, len: usize, value: impl Fn(usize) -> Option<&'a [u8]>) {
        let mut lengths = Lengths::default();
        let mut buf = Vec::with_capacity(64 * 1024);
        for i in 0..len {
            let v = value(i).unwrap_or(&[]);
            lengths.push(&mut self.lengths, v.len() as u64);
            buf.extend_from_slice(v);
            if buf.len() >= 64 * 1024 {
                self.values.update(&buf);
                buf.clear();
            }
        }
        self.values.update(&buf);
        lengths.flush(&mut self.lengths);
    }
}

/// Value lengths as little-endian `u64`s, hashed a cache-sized block at a time: one
/// `Vec` the size of the column, filled with per-value `extend_from_slice` calls, cost more
/// than hashing it.
struct Lengths {
    block: [u64; 4096],
    at: usize,
}

impl Default for Lengths {
    fn default() -> Self {
        Lengths {
            block: [0; 4096],
            at: 0,
        }
    }
}

impl Lengths {
    fn push(&mut self, hasher: &mut blake3::Hasher, len: u64) {
        self.block[self.at] = len.to_le();
        self.at += 1;
        if self.at == self.block.len() {
            self.flush(hasher);
        }
    }

    fn flush(&mut self, hasher: &mut blake3::Hasher) {
        use arrow::datatypes::ToByteSlice;
        hasher.update(self.block[..self.at].to_byte_slice());
        self.at = 0;
    }
}

/// An order-independent digest of a multiset of rows, version 1: what "the same rows"
/// means when a distributed engine (Spark, Ray) runs a chain over partitions in an order
/// nobody controls. Written `rowset-xxh3:<hex>`.
///
/// Each row is encoded canonically (per column: a null tag, or a valid tag, the value's
/// length and its bytes, the bytes being those [`DataDigest`] hashes), hashed with seeded
/// XXH3-128, and the hashes are summed lane-wise (two wrapping `u64` lanes); the digest is
/// BLAKE3 of the schema digest, the row count and the sum. Addition commutes, so any order,
/// batching or partitioning of the same rows gives the same sum, and duplicates count.
/// XXH3 rather than BLAKE3 per row: rows are short, and a keyed BLAKE3 call per row ran at
/// a quarter of a GB/s. The sum is a checksum of *content*, strong against accidents (a
/// lost, added, duplicated or changed row changes it) but not a commitment against an
/// adversary who crafts rows; tamper evidence comes from the file and root digests.
pub struct RowSetDigest {
    schema_digest: String,
    rows: u64,
    sum: [u64; 2],
    buf: Vec<u8>,
}

/// `blake3:<hex>` of the logical schema a row set is hashed under: field names and types,
/// with the string types (`Utf8`, `LargeUtf8`, `Utf8View`) as one, the binary types as one,
/// dictionaries as their value type, and without nullability. Those are choices of the
/// engine that carried the rows (Spark has no views and calls every column nullable), not
/// of the data, and every string type's values are encoded alike in the row hashes.
pub fn rowset_schema_digest(schema: &Schema) -> String {
    fn logical(t: &DataType) -> String {
        match t {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "Utf8".into(),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "Binary".into(),
            DataType::Dictionary(_, v) => logical(v),
            t => format!("{t:?}"),
        }
    }
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{:?}:{}", f.name(), logical(f.data_type())))
        .collect();
    blake3_bytes(format!("rowset-schema-v1;{}", fields.join(";")).as_bytes())
}

/// The combinable state of a [`RowSetDigest`]: what an engine task reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSet {
    /// [`rowset_schema_digest`] of the schema the rows were hashed under.
    pub schema_digest: String,
    /// How many rows were added.
    pub rows: u64,
    /// The lane-wise sum of the rows' hashes: 32 hex digits, lanes little-endian.
    pub sum: String,
}

/// The seed of the row hashes (fixed: it is part of the digest's definition).
const ROWSET_SEED: u64 = 0x736c_7569_6365_7231; // "sluicer1"

impl RowSetDigest {
    /// An empty row set of `schema`.
    pub fn new(schema: &Schema) -> Self {
        RowSetDigest {
            schema_digest: rowset_schema_digest(schema),
            rows: 0,
            sum: [0; 2],
            buf: Vec::with_capacity(256),
        }
    }

    /// Add every row of `batch` (its schema must be the digest's).
    pub fn update(&mut self, batch: &RecordBatch) {
        // Dictionary columns digest as their values: engines decide whether to encode them.
        let owned: Vec<arrow::array::ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Dictionary(_, v) => arrow::compute::cast(c, v).unwrap_or_else(|_| std::sync::Arc::clone(c)),
                _ => std::sync::Arc::clone(c),
            })
            .collect();
        let cols: Vec<Cells<'_>> = owned.iter().map(|c| Cells::new(c.as_ref())).collect();
        for row in 0..batch.num_rows() {
            self.buf.clear();
            for c in &cols {
                c.encode(row, &mut self.buf);
            }
            let h = twox_hash::XxHash3_128::oneshot_with_seed(ROWSET_SEED, &self.buf);
            self.sum[0] = self.sum[0].wrapping_add(h as u64);
            self.sum[1] = self.sum[1].wrapping_add((h >> 64) as u64);
        }
        self.rows += batch.num_rows() as u64;
    }

    /// The combinable state so far.
    pub fn partial(&self) -> RowSet {
        RowSet {
            schema_digest: self.schema_digest.clone(),
            rows: self.rows,
            sum: hex::encode(self.sum.iter().flat_map(|l| l.to_le_bytes()).collect::<Vec<u8>>()),
        }
    }

    /// `rowset-xxh3:<hex>` of the rows added so far.
    pub fn finish(&self) -> String {
        self.partial().digest()
    }
}

impl RowSet {
    /// The empty row set of a schema with this digest.
    pub fn empty(schema_digest: &str) -> Self {
        RowSet {
            schema_digest: schema_digest.to_string(),
            rows: 0,
            sum: "0".repeat(32),
        }
    }

    fn lanes(&self) -> Result<[u64; 2]> {
        let bytes = hex::decode(&self.sum)
            .ok()
            .filter(|b| b.len() == 16)
            .ok_or_else(|| Error::input(format!("row-set sum `{}` is not 32 hex digits", self.sum)))?;
        let mut lanes = [0u64; 2];
        for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(8)) {
            *lane = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        }
        Ok(lanes)
    }

    /// The union (as multisets) of row sets hashed under one schema.
    ///
    /// # Errors
    /// An input error when a sum is malformed or the schemas differ.
    pub fn combine<'a>(schema_digest: &str, parts: impl IntoIterator<Item = &'a RowSet>) -> Result<RowSet> {
        let mut rows = 0u64;
        let mut sum = [0u64; 2];
        for p in parts {
            if p.schema_digest != schema_digest {
                return Err(Error::input(format!(
                    "row sets of different schemas cannot be combined: {} is not {schema_digest}",
                    p.schema_digest
                )));
            }
            for (a, b) in sum.iter_mut().zip(p.lanes()?) {
                *a = a.wrapping_add(b);
            }
            rows += p.rows;
        }
        Ok(RowSet {
            schema_digest: schema_digest.to_string(),
            rows,
            sum: hex::encode(sum.iter().flat_map(|l| l.to_le_bytes()).collect::<Vec<u8>>()),
        })
    }

    /// `rowset-xxh3:<hex>` of the row set: BLAKE3 of schema, row count and sum.
    pub fn digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"sluice-rowset-digest-v1\0");
        h.update(self.schema_digest.as_bytes());
        h.update(&self.rows.to_le_bytes());
        h.update(self.sum.as_bytes());
        format!("rowset-xxh3:{}", h.finalize().to_hex())
    }
}

/// One column of a batch, prepared for per-row canonical encoding.
struct Cells<'a> {
    nulls: Option<arrow::buffer::NullBuffer>,
    values: Values<'a>,
}

enum Values<'a> {
    /// Fixed-width values: the data buffer, the first value's byte offset and the width.
    Fixed(arrow::buffer::Buffer, usize, usize),
    Bool(&'a arrow::array::BooleanArray),
    Utf8(&'a arrow::array::StringArray),
    LargeUtf8(&'a arrow::array::LargeStringArray),
    Binary(&'a arrow::array::BinaryArray),
    LargeBinary(&'a arrow::array::LargeBinaryArray),
    Utf8View(&'a arrow::array::StringViewArray),
    BinaryView(&'a arrow::array::BinaryViewArray),
    /// Nested, dictionary and other types through arrow's canonical row format.
    Rows(arrow::row::Rows),
    /// Types the row format cannot encode: arrow's display text of each value.
    Text(Vec<String>),
    /// The null type: every value is null.
    Null,
}

impl<'a> Cells<'a> {
    fn new(array: &'a dyn Array) -> Self {
        let nulls = array.logical_nulls();
        let dt = array.data_type();
        let values = if let Some(width) = dt.primitive_width() {
            // `to_data` clones buffer handles (reference counts), not the bytes.
            let data = array.to_data();
            Values::Fixed(data.buffers()[0].clone(), data.offset() * width, width)
        } else {
            match dt {
                DataType::Boolean => Values::Bool(array.as_boolean()),
                DataType::Utf8 => Values::Utf8(array.as_string::<i32>()),
                DataType::LargeUtf8 => Values::LargeUtf8(array.as_string::<i64>()),
                DataType::Binary => Values::Binary(array.as_binary::<i32>()),
                DataType::LargeBinary => Values::LargeBinary(array.as_binary::<i64>()),
                DataType::Utf8View => Values::Utf8View(array.as_string_view()),
                DataType::BinaryView => Values::BinaryView(array.as_binary_view()),
                DataType::Null => Values::Null,
                _ => {
                    let converted = arrow::row::RowConverter::new(vec![arrow::row::SortField::new(dt.clone())])
                        .and_then(|c| c.convert_columns(&[arrow::array::make_array(array.to_data())]));
                    match converted {
                        Ok(rows) => Values::Rows(rows),
                        Err(_) => {
                            let f = arrow::util::display::ArrayFormatter::try_new(array, &Default::default());
                            Values::Text(
                                (0..array.len())
                                    .map(|i| f.as_ref().map(|f| f.value(i).to_string()).unwrap_or_default())
                                    .collect(),
                            )
                        }
                    }
                }
            }
        };
        Cells { nulls, values }
    }

    fn encode(&self, i: usize, out: &mut Vec<u8>) {
        let null = matches!(self.values, Values::Null) || self.nulls.as_ref().is_some_and(|n| n.is_null(i));
        if null {
            out.push(0);
            return;
        }
        let v: &[u8] = match &self.values {
            Values::Fixed(buf, start, w) => &buf.as_slice()[start + i * w..start + (i + 1) * w],
            Values::Bool(a) => {
                if a.value(i) {
                    &[1]
                } else {
                    &[0]
                }
            }
            Values::Utf8(a) => a.value(i).as_bytes(),
            Values::LargeUtf8(a) => a.value(i).as_bytes(),
            Values::Binary(a) => a.value(i),
            Values::LargeBinary(a) => a.value(i),
            Values::Utf8View(a) => a.value(i).as_bytes(),
            Values::BinaryView(a) => a.value(i),
            Values::Rows(r) => r.row(i).data(),
            Values::Text(t) => t[i].as_bytes(),
            Values::Null => &[],
        };
        out.push(1);
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        out.extend_from_slice(v);
    }
}

/// `sha256:<hex>` of a file's bytes (the convention for pinning plugin artifacts).
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    Ok(format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))))
}

/// `blake3:<hex>` of a byte string.
pub fn blake3_bytes(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

/// What a chunk's `input_digest` records (`--input-digest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputDigest {
    /// Which rows of which input bytes: the input files' digests (taken at the start of
    /// every run) and the chunk's row range ([`InputRows`]). Costs nothing per chunk.
    #[default]
    Files,
    /// The data digest of every input value of the chunk ([`DataDigest`]): independent of
    /// the file format, comparable with the Python binding's `input_digest`, and it lets a
    /// resumed run continue over an input that changed only after its committed chunks.
    /// Costs decoding and hashing every input value (about a fifth of a filter's CPU time).
    Data,
}

impl InputDigest {
    /// What records written before `--input-digest` existed hold.
    pub fn before_choice() -> Self {
        InputDigest::Data
    }
}

impl std::fmt::Display for InputDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputDigest::Files => "files",
            InputDigest::Data => "data",
        })
    }
}

impl std::str::FromStr for InputDigest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "files" => Ok(InputDigest::Files),
            "data" => Ok(InputDigest::Data),
            other => Err(Error::usage(format!(
                "unknown input digest `{other}`: use `files` (the default: the input files' digests and the chunk's rows) or `data` (a digest of every input value)"
            ))),
        }
    }
}

/// The `input_digest` of chunks under [`InputDigest::Files`]: `blake3:` of
/// `sluice-input-rows-v1\0`, each input file's digest string followed by `\n` (in input
/// order), then the chunk's first row and row count as little-endian u64.
///
/// The files' digests pin the bytes; the job key (which this journal belongs to) pins how
/// they are read into rows, so the range names the chunk's rows exactly without reading them.
#[derive(Clone)]
pub struct InputRows {
    files: blake3::Hasher,
}

impl InputRows {
    /// The identity of rows of the input files with these digests (`blake3:<hex>` each).
    pub fn new<'a>(file_digests: impl IntoIterator<Item = &'a str>) -> Self {
        let mut files = blake3::Hasher::new();
        files.update(b"sluice-input-rows-v1\0");
        for d in file_digests {
            files.update(d.as_bytes());
            files.update(b"\n");
        }
        InputRows { files }
    }

    /// `blake3:<hex>` of the rows `[rows[0], rows[0] + rows[1])`.
    pub fn chunk(&self, rows: [u64; 2]) -> String {
        let mut h = self.files.clone();
        h.update(&rows[0].to_le_bytes());
        h.update(&rows[1].to_le_bytes());
        format!("blake3:{}", h.finalize().to_hex())
    }
}

/// `blake3:<hex>` of the canonical JSON of a plugin config (keys sorted).
pub fn config_digest(config: &[(String, String)]) -> String {
    let mut sorted = config.to_vec();
    sorted.sort();
    let json = serde_json::to_vec(&sorted).expect("strings serialize");
    blake3_bytes(&json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int32Array, ListArray, StringArray, StringViewArray};
    use arrow::datatypes::Field;
    use std::sync::Arc;

    #[test]
    fn file_digests_are_the_digest_of_the_bytes_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 12_345, (17 << 20) + 7] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join(format!("f{len}"));
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(
                blake3_file(&p).unwrap(),
                format!("blake3:{}", blake3::hash(&bytes).to_hex()),
                "{len} bytes"
            );
        }
        let missing = blake3_file(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(missing.contains("nope"), "{missing}");
    }

    fn digest(batches: &[RecordBatch]) -> String {
        let mut d = DataDigest::new(&batches[0].schema());
        for b in batches {
            d.update(b);
        }
        d.finish()
    }

    fn batch(ints: Vec<Option<i32>>, strs: Vec<Option<&str>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
                true,
            ),
        ]));
        let n = ints.len();
        let list = ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>((0..n).map(|i| {
            if i % 3 == 0 {
                None
            } else {
                Some(vec![Some(i as i32), None])
            }
        }));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(ints)),
            Arc::new(StringArray::from(strs)),
            Arc::new(list),
        ];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    #[test]
    fn data_digest_ignores_slicing_and_batching_but_not_data() {
        let b = batch(
            vec![Some(1), None, Some(3), Some(4), None, Some(6)],
            vec![Some("a"), Some("bb"), None, Some(""), Some("ünï"), Some("x")],
        );
        let whole = digest(std::slice::from_ref(&b));
        assert_eq!(whole, digest(&[b.slice(0, 2), b.slice(2, 3), b.slice(5, 1)]));
        // A copy of a slice digests like the slice.
        let sliced = b.slice(1, 4);
        let copied = arrow::compute::concat_batches(&b.schema(), [&sliced]).unwrap();
        assert_eq!(digest(&[sliced]), digest(&[copied]));
        // Any value, null or length change is seen.
        let other = batch(
            vec![Some(1), None, Some(3), Some(4), None, Some(7)],
            vec![Some("a"), Some("bb"), None, Some(""), Some("ünï"), Some("x")],
        );
        assert_ne!(whole, digest(&[other]));
        let moved = batch(
            vec![Some(1), None, Some(3), Some(4), None, Some(6)],
            vec![Some("ab"), Some("b"), None, Some(""), Some("ünï"), Some("x")],
        );
        assert_ne!(whole, digest(&[moved]), "value boundaries are part of the digest");
    }

    /// Digest v1 is part of every run record: its value for given data must never change
    /// (speed-ups included). Pinned over nulls, every string flavour, a decimal and a list.
    #[test]
    fn data_digest_v1_values_are_pinned() {
        let b = batch(
            vec![Some(1), None, Some(3), Some(4), None, Some(6)],
            vec![Some("a"), Some("bb"), None, Some(""), Some("ünï"), Some("x")],
        );
        let views: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("short"),
            None,
            Some("a string longer than twelve bytes"),
            Some(""),
            Some("ünïcödé is longer than twelve"),
            Some("x"),
        ]));
        let dec: ArrayRef = Arc::new(
            arrow::array::Decimal128Array::from(vec![Some(12345), None, Some(-1), Some(0), Some(7), Some(99)])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        );
        let mut fields = b.schema().fields().to_vec();
        fields.push(Arc::new(Field::new("v", DataType::Utf8View, true)));
        fields.push(Arc::new(Field::new("d", DataType::Decimal128(15, 2), true)));
        let mut cols = b.columns().to_vec();
        cols.extend([views, dec]);
        let all = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
        assert_eq!(
            digest(&[b]),
            "blake3:e702ea6c54a20f064719514791733467efff3e9a71c0766deedfa553a8d6ac34"
        );
        assert_eq!(
            digest(&[all.slice(0, 4), all.slice(4, 2)]),
            "blake3:6e6dfb6c14069e83759aa98e25e0f72cd3845242edb480b69bd50437a22c7a77"
        );
    }

    /// The view fast path (block gathering, padded copies, flushes at block edges, values
    /// longer than a block, a data buffer ending right after a value) hashes exactly what
    /// the per-value path does, for string and binary views, with and without nulls.
    #[test]
    fn view_fast_path_equals_the_per_value_path() {
        let mut x: u64 = 7;
        let mut next = move |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let values: Vec<Option<String>> = (0..40_000)
            .map(|i| {
                let len = match i {
                    17 => 70_000, // longer than a block
                    18 => 65_535,
                    _ => next(60) as usize,
                };
                (next(10) != 0).then(|| (0..len).map(|j| char::from(b'a' + ((i + j) % 26) as u8)).collect())
            })
            .collect();
        let strings = StringViewArray::from_iter(values.iter().map(|v| v.as_deref()));
        let dense = StringViewArray::from_iter(values.iter().map(|v| Some(v.as_deref().unwrap_or("null"))));
        let binary = arrow::array::BinaryViewArray::from_iter(values.iter().map(|v| v.as_deref().map(str::as_bytes)));
        for (array, name) in [
            (&strings as &dyn Array, "strings"),
            (&dense, "dense"),
            (&binary, "binary"),
        ] {
            for (offset, len) in [(0, array.len()), (1, array.len() - 1), (19, 5000), (array.len() - 1, 1)] {
                let part = array.slice(offset, len);
                let mut fast = ColumnDigest::default();
                fast.update(part.as_ref(), 0);
                let mut slow = ColumnDigest::default();
                let per_value: Vec<Option<Vec<u8>>> = (0..len)
                    .map(|i| {
                        part.is_valid(i).then(|| match part.data_type() {
                            DataType::Utf8View => part.as_string_view().value(i).as_bytes().to_vec(),
                            _ => part.as_binary_view().value(i).to_vec(),
                        })
                    })
                    .collect();
                if part.null_count() > 0 {
                    let nulls: Vec<u8> = (0..len)
                        .filter(|&i| part.is_null(i))
                        .flat_map(|i| (i as u64).to_le_bytes())
                        .collect();
                    slow.nulls.update(&nulls);
                }
                slow.each(len, |i| per_value[i].as_deref());
                for (a, b, what) in [
                    (&fast.nulls, &slow.nulls, "nulls"),
                    (&fast.lengths, &slow.lengths, "lengths"),
                    (&fast.values, &slow.values, "values"),
                ] {
                    assert_eq!(a.finalize(), b.finalize(), "{name} [{offset}..+{len}] {what}");
                }
            }
        }
        // A data buffer that ends right after a long value: no room for a padded copy.
        let tight = StringViewArray::new(
            vec![arrow::array::builder::make_view(b"exactly seventeen", 0, 0)].into(),
            vec![arrow::buffer::Buffer::from(b"exactly seventeen".as_slice())],
            None,
        );
        let mut fast = ColumnDigest::default();
        fast.update(&tight, 0);
        let mut slow = ColumnDigest::default();
        slow.each(1, |_| Some(b"exactly seventeen".as_slice()));
        assert_eq!(fast.values.finalize(), slow.values.finalize());
        assert_eq!(fast.lengths.finalize(), slow.lengths.finalize());
    }

    #[test]
    fn garbage_under_nulls_does_not_matter() {
        let a: ArrayRef = Arc::new(Int32Array::new(
            vec![1, 99, 3].into(),
            Some(vec![true, false, true].into()),
        ));
        let b: ArrayRef = Arc::new(Int32Array::new(
            vec![1, 0, 3].into(),
            Some(vec![true, false, true].into()),
        ));
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        let da = digest(&[RecordBatch::try_new(Arc::clone(&schema), vec![a]).unwrap()]);
        let db = digest(&[RecordBatch::try_new(schema, vec![b]).unwrap()]);
        assert_eq!(da, db);
        let v1: ArrayRef = Arc::new(StringViewArray::from(vec![Some("a long string value here"), None]));
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8View, true)]));
        let d1 = digest(&[RecordBatch::try_new(Arc::clone(&schema), vec![Arc::clone(&v1)]).unwrap()]);
        assert_eq!(
            d1,
            digest(&[RecordBatch::try_new(schema, vec![v1]).unwrap().slice(0, 2)])
        );
    }

    #[test]
    fn digests_carry_algorithm_and_match_known_values() {
        // BLAKE3 of the empty string is a published test vector.
        assert_eq!(
            blake3_bytes(b""),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        let a = config_digest(&[("b".into(), "1".into()), ("a".into(), "2".into())]);
        let b = config_digest(&[("a".into(), "2".into()), ("b".into(), "1".into())]);
        assert_eq!(a, b);
        assert_ne!(a, config_digest(&[("a".into(), "3".into())]));
    }

    fn rowset(batches: &[RecordBatch]) -> RowSetDigest {
        let mut d = RowSetDigest::new(&batches[0].schema());
        for b in batches {
            d.update(b);
        }
        d
    }

    #[test]
    fn rowset_digest_ignores_order_batching_and_partitioning_but_not_rows() {
        let b = batch(
            vec![Some(1), None, Some(3), Some(4), None, Some(6)],
            vec![Some("a"), Some("bb"), None, Some(""), Some("ünï"), Some("x")],
        );
        let whole = rowset(std::slice::from_ref(&b)).finish();
        // Reversed row order, other batch boundaries.
        let idx = arrow::array::UInt32Array::from(vec![5, 4, 3, 2, 1, 0]);
        let reversed = arrow::compute::take_record_batch(&b, &idx).unwrap();
        assert_eq!(whole, rowset(&[reversed.slice(0, 1), reversed.slice(1, 5)]).finish());
        // Partitions hashed apart and combined.
        let p1 = rowset(&[b.slice(3, 3)]).partial();
        let p2 = rowset(&[b.slice(0, 3)]).partial();
        let schema = rowset_schema_digest(&b.schema());
        assert_eq!(RowSet::combine(&schema, [&p1, &p2]).unwrap().digest(), whole);
        assert_eq!(
            RowSet::combine(&schema, [&p2, &p1, &RowSet::empty(&schema)])
                .unwrap()
                .digest(),
            whole
        );
        // A missing row, a duplicated row and a changed value are all seen.
        assert_ne!(rowset(&[b.slice(0, 5)]).finish(), whole);
        assert_ne!(rowset(&[b.clone(), b.slice(0, 1)]).finish(), whole);
        let changed = batch(
            vec![Some(1), None, Some(3), Some(4), None, Some(6)],
            vec![Some("a"), Some("bb"), None, Some(""), Some("ünï"), Some("y")],
        );
        assert_ne!(rowset(&[changed]).finish(), whole);
        // Null and empty string differ; so do values swapped between rows.
        let nulls = batch(vec![Some(1)], vec![None]);
        let empty = batch(vec![Some(1)], vec![Some("")]);
        assert_ne!(rowset(&[nulls]).finish(), rowset(&[empty]).finish());
        let swapped = batch(
            vec![Some(1), None, Some(3), Some(4), None, Some(6)],
            vec![Some("bb"), Some("a"), None, Some(""), Some("ünï"), Some("x")],
        );
        assert_ne!(rowset(&[swapped]).finish(), whole);
    }

    #[test]
    fn rowset_combine_refuses_other_schemas_and_bad_sums() {
        let b = batch(vec![Some(1)], vec![Some("a")]);
        let p = rowset(&[b]).partial();
        let e = RowSet::combine("blake3:other", [&p]).unwrap_err();
        assert!(e.to_string().contains("different schemas"), "{e}");
        let bad = RowSet {
            sum: "zz".into(),
            ..p.clone()
        };
        assert!(RowSet::combine(&p.schema_digest, [&bad]).is_err());
    }

    #[test]
    fn rowset_digest_is_over_logical_values_not_engine_encodings() {
        let vals = vec![Some("a"), None, Some("a string longer than twelve bytes"), Some("")];
        let one = |dt: DataType, nullable: bool, col: ArrayRef| {
            let schema = Arc::new(Schema::new(vec![Field::new("s", dt, nullable)]));
            rowset(&[RecordBatch::try_new(schema, vec![col]).unwrap()]).finish()
        };
        let utf8 = one(DataType::Utf8, true, Arc::new(StringArray::from(vals.clone())));
        let view = one(DataType::Utf8View, true, Arc::new(StringViewArray::from(vals.clone())));
        let large = one(
            DataType::LargeUtf8,
            true,
            Arc::new(arrow::array::LargeStringArray::from(vals.clone())),
        );
        let dict: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> = vals.clone().into_iter().collect();
        let dict = one(dict.data_type().clone(), true, Arc::new(dict));
        assert_eq!(utf8, view);
        assert_eq!(utf8, large);
        assert_eq!(utf8, dict);
        // Nullability is the engine's declaration, not data.
        let strict = vec![Some("a"), Some("b")];
        assert_eq!(
            one(DataType::Utf8, false, Arc::new(StringArray::from(strict.clone()))),
            one(DataType::Utf8, true, Arc::new(StringArray::from(strict)))
        );
        // Other value types are other data.
        let ints = one(DataType::Int32, true, Arc::new(Int32Array::from(vec![1, 2])));
        let longs = one(
            DataType::Int64,
            true,
            Arc::new(arrow::array::Int64Array::from(vec![1, 2])),
        );
        assert_ne!(ints, longs);
    }

    /// Row-set digest v1 is part of distributed run records: pinned like the data digest.
    #[test]
    fn rowset_digest_v1_values_are_pinned() {
        let b = batch(
            vec![Some(1), None, Some(3), Some(4), None, Some(6)],
            vec![Some("a"), Some("bb"), None, Some(""), Some("ünï"), Some("x")],
        );
        assert_eq!(
            rowset(&[b]).finish(),
            "rowset-xxh3:d421ca49081eaf806b1b9c543fee88da5a6e1589ba5e908c46a69440f06ed58e"
        );
    }
}
