//! Digests. sha256 for plugin artifacts (the convention users pin with), BLAKE3 for bulk
//! data (an order of magnitude faster than software sha256 here). Every digest string
//! carries its algorithm: `sha256:<hex>` or `blake3:<hex>`.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef};

use crate::error::{Error, Result};

/// `blake3:<hex>` of a file's bytes (memory-mapped and hashed on all cores when large).
pub fn blake3_file(path: &Path) -> Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_mmap_rayon(path).map_err(|e| Error::io("hash", path, e))?;
    Ok(format!("blake3:{}", h.finalize().to_hex()))
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
    rows: u64,
}

#[derive(Default)]
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
            rows: 0,
        }
    }

    /// Add one batch (its schema must be the digest's).
    pub fn update(&mut self, batch: &RecordBatch) {
        let base = self.rows;
        for (col, hasher) in batch.columns().iter().zip(&mut self.columns) {
            hasher.update(col.as_ref(), base);
        }
        self.rows += batch.num_rows() as u64;
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
                self.each(len, |i| (a.is_valid(i)).then(|| a.value(i).as_bytes()));
            }
            DataType::BinaryView => {
                let a = array.as_binary_view();
                self.each(len, |i| (a.is_valid(i)).then(|| a.value(i)));
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
        let mut lengths = Vec::with_capacity(n * 8);
        let nulls = array.null_count() > 0;
        for i in 0..n {
            let l = if nulls && array.is_null(i) {
                0
            } else {
                (offsets[i + 1] - offsets[i]).as_usize() as u64
            };
            lengths.extend_from_slice(&l.to_le_bytes());
        }
        self.lengths.update(&lengths);
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

    fn each<'a>(&mut self, len: usize, value: impl Fn(usize) -> Option<&'a [u8]>) {
        let mut lengths = Vec::with_capacity(len * 8);
        let mut buf = Vec::with_capacity(64 * 1024);
        for i in 0..len {
            let v = value(i).unwrap_or(&[]);
            lengths.extend_from_slice(&(v.len() as u64).to_le_bytes());
            buf.extend_from_slice(v);
            if buf.len() >= 64 * 1024 {
                self.values.update(&buf);
                buf.clear();
            }
        }
        self.values.update(&buf);
        self.lengths.update(&lengths);
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
}
