//! Parquet output through `ArrowWriter`, with the Arrow schema stored in the footer.

use std::fs::File;
use std::path::{Path, PathBuf};

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::{BatchSink, Codec, SinkStats, WriterOptions, conform, sync_and_measure};
use crate::error::{Error, Result};

/// Create a Parquet sink; `codec` is already validated for Parquet.
pub(super) fn create(
    file: File,
    path: &Path,
    schema: SchemaRef,
    codec: Codec,
    opts: &WriterOptions,
) -> Result<Box<dyn BatchSink>> {
    let props = WriterProperties::builder()
        .set_compression(compression(codec, path)?)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_dictionary_enabled(opts.dictionary)
        .build();
    // `created_by` stays the library default ("parquet-rs version 60.1.0"): constant for
    // a given build, so output bytes do not vary between runs.
    let writer =
        ArrowWriter::try_new(file, std::sync::Arc::clone(&schema), Some(props)).map_err(|e| match io_error(e) {
            Ok(io) => Error::io("write", path, io),
            Err(e) => Error::usage(format!(
                "cannot write the output schema as Parquet to `{}`: {e}; choose the `ipc` \
                 output format",
                path.display()
            )),
        })?;
    Ok(Box::new(ParquetSink {
        writer,
        schema,
        path: path.to_path_buf(),
        rows: 0,
    }))
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
    writer: ArrowWriter<File>,
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
}

impl BatchSink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let batch = conform(&self.schema, batch, &self.path)?;
        self.writer.write(&batch).map_err(|e| self.error(e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<SinkStats> {
        let ParquetSink { writer, path, rows, .. } = *self;
        // `into_inner` writes the footer and flushes the writer's buffer.
        let file = writer.into_inner().map_err(|e| match io_error(e) {
            Ok(io) => Error::io("write", &path, io),
            Err(e) => Error::input(format!("failed to finish Parquet output `{}`: {e}", path.display())),
        })?;
        let bytes = sync_and_measure(&file, &path)?;
        Ok(SinkStats { rows, bytes })
    }
}
