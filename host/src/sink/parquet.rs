//! Parquet output through `ArrowWriter`, with the Arrow schema stored in the footer.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use ::parquet::schema::types::ColumnPath;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};

use super::{BatchSink, Codec, HashedFile, SinkStats, WriterOptions, conform, sync_and_measure};
use crate::error::{Error, Result};

/// Create a Parquet sink; `codec` is already validated for Parquet.
pub(super) fn create(
    file: HashedFile,
    path: &Path,
    schema: SchemaRef,
    codec: Codec,
    opts: &WriterOptions,
) -> Result<Box<dyn BatchSink>> {
    let props = WriterProperties::builder()
        .set_compression(compression(codec, path)?)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_dictionary_enabled(opts.dictionary);
    // The real writer is created once the first rows are seen (to choose dictionaries);
    // try the schema now so that an unwritable one is refused before any data flows.
    ArrowWriter::try_new(
        std::io::sink(),
        std::sync::Arc::clone(&schema),
        Some(props.clone().build()),
    )
    .map_err(|e| {
        Error::usage(format!(
            "cannot write the output schema as Parquet to `{}`: {e}; choose the `ipc` \
                 output format",
            path.display()
        ))
    })?;
    Ok(Box::new(ParquetSink {
        writer: None,
        file: Some(file),
        props: Some(props),
        buffered: Vec::new(),
        buffered_rows: 0,
        sample_rows: opts.row_group_rows.min(SAMPLE_ROWS),
        dictionary: opts.dictionary,
        schema,
        path: path.to_path_buf(),
        rows: 0,
    }))
}

/// Rows looked at before choosing which columns get a dictionary.
const SAMPLE_ROWS: usize = 65_536;

/// Turn dictionary encoding off for columns where it does not pay.
///
/// The arrow-rs writer tries a dictionary on every column and only falls back to plain
/// encoding once a column chunk's dictionary passes 1 MiB, after interning every value
/// so far: on high-cardinality columns (keys, prices, free text) that costs a third of the
/// writer's time and yields larger files. A column is written plain when more than a tenth
/// of its sampled values are distinct (and more than 256). The sample is the part's first
/// rows, so the choice depends only on the data, never on timing or threads.
fn choose_dictionaries(
    mut props: WriterPropertiesBuilder,
    schema: &SchemaRef,
    sample: &[RecordBatch],
) -> WriterPropertiesBuilder {
    let rows: usize = sample.iter().map(|b| b.num_rows()).sum();
    let limit = (rows / 10).max(256);
    for (i, field) in schema.fields().iter().enumerate() {
        let columns: Vec<&ArrayRef> = sample.iter().map(|b| b.column(i)).collect();
        if distinct_over(&columns, limit) == Some(true) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    props
}

/// Whether `columns` hold more than `limit` distinct non-null values; `None` for types
/// not sampled (they keep the configured setting).
fn distinct_over(columns: &[&ArrayRef], limit: usize) -> Option<bool> {
    // Only the count matters, so the hasher's seeds cannot change the choice; fixed seeds
    // anyway, so nothing here draws randomness.
    type Set<'a> = HashSet<&'a [u8], ahash::RandomState>;
    let new_set = |n: usize| Set::with_capacity_and_hasher(n, ahash::RandomState::with_seeds(1, 2, 3, 4));
    fn bytes<'a>(mut seen: Set<'a>, limit: usize, values: impl Iterator<Item = &'a [u8]>) -> bool {
        values.into_iter().any(|v| seen.insert(v) && seen.len() > limit)
    }
    let dt = columns.first()?.data_type();
    let over = match dt {
        DataType::Utf8 => bytes(
            new_set(limit + 1),
            limit,
            columns
                .iter()
                .flat_map(|c| c.as_string::<i32>().iter().flatten().map(str::as_bytes)),
        ),
        DataType::LargeUtf8 => bytes(
            new_set(limit + 1),
            limit,
            columns
                .iter()
                .flat_map(|c| c.as_string::<i64>().iter().flatten().map(str::as_bytes)),
        ),
        DataType::Utf8View => bytes(
            new_set(limit + 1),
            limit,
            columns
                .iter()
                .flat_map(|c| c.as_string_view().iter().flatten().map(str::as_bytes)),
        ),
        DataType::Binary => bytes(
            new_set(limit + 1),
            limit,
            columns.iter().flat_map(|c| c.as_binary::<i32>().iter().flatten()),
        ),
        DataType::LargeBinary => bytes(
            new_set(limit + 1),
            limit,
            columns.iter().flat_map(|c| c.as_binary::<i64>().iter().flatten()),
        ),
        DataType::BinaryView => bytes(
            new_set(limit + 1),
            limit,
            columns.iter().flat_map(|c| c.as_binary_view().iter().flatten()),
        ),
        _ => {
            let width = dt.primitive_width()?;
            let datas: Vec<_> = columns.iter().map(|c| c.to_data()).collect();
            let mut seen = new_set(limit + 1);
            datas.iter().any(|data| {
                let values = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + data.len()) * width];
                values
                    .chunks_exact(width)
                    .enumerate()
                    .any(|(i, v)| data.is_valid(i) && seen.insert(v) && seen.len() > limit)
            })
        }
    };
    Some(over)
}

/// The Parquet codec for a validated `codec`.
fn compression(codec: Codec, path: &Path) -> Result<Compression> {
    let level_error =
        |e: ParquetError| Error::usage(format!("invalid compression level for `{}`: {e}", path.display()));
    Ok(match codec {
        Codec::None => Compression::UNCOMPRESSED,
        Codec::Snappy => Compression::SNAPPY,
        Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).map_err(level_error)?),
        // LZ4_RAW is the codec the Parquet spec recommends; the older `LZ4` framing is
        // deprecated and read inconsistently across implementations.
        Codec::Lz4 => Compression::LZ4_RAW,
        Codec::Gzip(level) => Compression::GZIP(GzipLevel::try_new(level).map_err(level_error)?),
        Codec::Brotli(level) => Compression::BROTLI(BrotliLevel::try_new(level).map_err(level_error)?),
    })
}

/// The OS error inside a Parquet error, or the error itself.
fn io_error(e: ParquetError) -> std::result::Result<std::io::Error, ParquetError> {
    match e {
        ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => Ok(*io),
            Err(inner) => Err(ParquetError::External(inner)),
        },
        other => Err(other),
    }
}

/// Writes batches into one Parquet file.
struct ParquetSink {
    /// Created once `sample_rows` rows (or the end) have been seen.
    writer: Option<ArrowWriter<HashedFile>>,
    file: Option<HashedFile>,
    props: Option<WriterPropertiesBuilder>,
    /// Batches held back until the writer exists.
    buffered: Vec<RecordBatch>,
    buffered_rows: usize,
    sample_rows: usize,
    dictionary: bool,
    schema: SchemaRef,
    path: PathBuf,
    rows: u64,
}

impl ParquetSink {
    /// Map a writer error: an OS failure is retryable, anything else is about the data.
    fn error(&self, e: ParquetError) -> Error {
        match io_error(e) {
            Ok(io) => Error::io("write", &self.path, io),
            Err(e) => Error::input(format!("failed to write Parquet output `{}`: {e}", self.path.display())),
        }
    }

    /// Create the writer with dictionaries chosen from the buffered rows, and write them.
    fn start(&mut self) -> Result<()> {
        let mut props = self.props.take().expect("writer not started yet");
        if self.dictionary {
            props = choose_dictionaries(props, &self.schema, &self.buffered);
        }
        let file = self.file.take().expect("writer not started yet");
        let writer = ArrowWriter::try_new(file, std::sync::Arc::clone(&self.schema), Some(props.build()))
            .map_err(|e| self.error(e))?;
        let writer = self.writer.insert(writer);
        for b in std::mem::take(&mut self.buffered) {
            if let Err(e) = writer.write(&b) {
                return Err(self.error(e));
            }
        }
        Ok(())
    }
}

impl BatchSink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let batch = conform(&self.schema, batch, &self.path)?;
        self.rows += batch.num_rows() as u64;
        match self.writer.as_mut() {
            Some(w) => {
                if let Err(e) = w.write(&batch) {
                    return Err(self.error(e));
                }
            }
            None => {
                self.buffered_rows += batch.num_rows();
                self.buffered.push(batch);
                if self.buffered_rows >= self.sample_rows {
                    self.start()?;
                }
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<SinkStats> {
        if self.writer.is_none() {
            self.start()?;
        }
        let ParquetSink { writer, path, rows, .. } = *self;
        // `into_inner` writes the footer and flushes the writer's buffer.
        let file = writer.expect("started").into_inner().map_err(|e| match io_error(e) {
            Ok(io) => Error::io("write", &path, io),
            Err(e) => Error::input(format!("failed to finish Parquet output `{}`: {e}", path.display())),
        })?;
        sync_and_measure(file, &path, rows)
    }
}
