//! Writers for output files: Parquet and the Arrow IPC file format.
//!
//! A sink writes to a file it is handed and makes it durable in [`BatchSink::finish`];
//! naming, temp files and the rename that commits a part belong to the caller. Options
//! are validated in [`create_sink`], before any data flows, and the bytes written depend
//! only on the batches and the options, so re-running a chunk reproduces its digest.

mod ipc;
mod parquet;

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};

/// A file format the sink can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// Apache Parquet.
    Parquet,
    /// The Arrow IPC file format (a.k.a. Feather v2).
    Ipc,
}

impl OutputFormat {
    /// The file extension for this format, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Ipc => "arrow",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "parquet" => Ok(OutputFormat::Parquet),
            "ipc" | "arrow" => Ok(OutputFormat::Ipc),
            _ => Err(Error::usage(format!(
                "unknown output format `{s}`; expected one of `parquet`, `ipc`, `arrow`"
            ))),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Ipc => "ipc",
        })
    }
}

/// How output files are encoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriterOptions {
    /// The compression codec: for Parquet `none`, `snappy`, `zstd`, `zstd(N)`, `lz4`,
    /// `gzip`, `gzip(N)`, `brotli`, `brotli(N)`; for IPC `none`, `zstd`, `zstd(N)`, `lz4`.
    pub compression: String,
    /// Maximum rows per Parquet row group (ignored for IPC).
    pub row_group_rows: usize,
    /// Whether Parquet columns are dictionary-encoded where it pays (ignored for IPC).
    pub dictionary: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: "zstd(1)".to_string(),
            row_group_rows: 122_880,
            dictionary: true,
        }
    }
}

/// What a finished sink wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Rows written.
    pub rows: u64,
    /// Size of the finished file in bytes.
    pub bytes: u64,
    /// `blake3:<hex>` of the file's bytes, hashed as they were written.
    pub digest: String,
}

/// A writer of record batches into one output file.
pub trait BatchSink: Send {
    /// Append `batch`, which must have the sink's schema (names, types, nullability).
    ///
    /// # Errors
    ///
    /// An input error naming the field if the batch does not fit the schema; an I/O error
    /// if the file cannot be written.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// Write the footer, flush, `fsync` the file and report what was written.
    ///
    /// # Errors
    ///
    /// An I/O error if the data cannot be written or synced.
    fn finish(self: Box<Self>) -> Result<SinkStats>;
}

/// Create a sink writing `schema`-shaped batches as `format` into `file`.
///
/// `path_for_messages` only names the file in errors: the caller decides where the file
/// lives and how it is committed.
///
/// # Errors
///
/// A usage error for invalid options (listing the valid values) or a schema the format
/// cannot hold; an I/O error if the header cannot be written.
pub fn create_sink(
    file: File,
    path_for_messages: &Path,
    schema: SchemaRef,
    format: OutputFormat,
    opts: &WriterOptions,
) -> Result<Box<dyn BatchSink>> {
    let codec = Codec::parse(&opts.compression, format)?;
    match format {
        OutputFormat::Parquet => {
            if opts.row_group_rows == 0 {
                return Err(Error::usage("the row group size must be at least 1 row, got `0`"));
            }
            parquet::create(hashed(file), path_for_messages, schema, codec, opts)
        }
        OutputFormat::Ipc => ipc::create(hashed(file), path_for_messages, schema, codec),
    }
}

/// A parsed compression option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    None,
    Snappy,
    Zstd(i32),
    Lz4,
    Gzip(u32),
    Brotli(u32),
}

impl Codec {
    /// Parse `text` as a codec valid for `format`.
    fn parse(text: &str, format: OutputFormat) -> Result<Codec> {
        let valid = match format {
            OutputFormat::Parquet => {
                "`none`, `snappy`, `zstd`, `zstd(N)` (N from 1 to 22), `lz4`, `gzip`, \
                 `gzip(N)` (N from 0 to 9), `brotli`, `brotli(N)` (N from 0 to 11)"
            }
            OutputFormat::Ipc => "`none`, `zstd`, `zstd(N)` (N from 1 to 22), `lz4`",
        };
        let invalid = || {
            Error::usage(format!(
                "invalid compression `{text}` for {} output; expected one of {valid}",
                format_label(format)
            ))
        };
        let lower = text.trim().to_ascii_lowercase();
        let (name, level) = match lower.split_once('(') {
            Some((name, rest)) => {
                let level = rest.strip_suffix(')').ok_or_else(invalid)?;
                (name.trim(), Some(level.trim().parse::<i64>().map_err(|_| invalid())?))
            }
            None => (lower.as_str(), None),
        };
        let in_range = |lo: i64, hi: i64, default: i64| match level {
            None => Ok(default),
            Some(l) if (lo..=hi).contains(&l) => Ok(l),
            Some(_) => Err(invalid()),
        };
        let codec = match (name, level) {
            ("none" | "uncompressed", None) => Codec::None,
            ("zstd", _) => Codec::Zstd(in_range(1, 22, 1)? as i32),
            ("lz4", None) => Codec::Lz4,
            ("snappy", None) if format == OutputFormat::Parquet => Codec::Snappy,
            ("gzip", _) if format == OutputFormat::Parquet => Codec::Gzip(in_range(0, 9, 6)? as u32),
            ("brotli", _) if format == OutputFormat::Parquet => Codec::Brotli(in_range(0, 11, 1)? as u32),
            _ => return Err(invalid()),
        };
        Ok(codec)
    }
}

/// A human name of an output format for messages.
fn format_label(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Parquet => "Parquet",
        OutputFormat::Ipc => "Arrow IPC",
    }
}

/// Check that `batch` fits `schema` and give it that schema object.
///
/// Names and types must match; a nullable column may go into a non-nullable field only if
/// it holds no nulls. Field metadata is the sink's.
fn conform(schema: &SchemaRef, batch: &RecordBatch, path: &Path) -> Result<RecordBatch> {
    if Arc::ptr_eq(batch.schema_ref(), schema) {
        return Ok(batch.clone());
    }
    let mismatch = |what: String| {
        Error::input(format!(
            "cannot write a batch to `{}`: {what}; every batch must have the output's schema",
            path.display()
        ))
    };
    let (want, have) = (schema.fields(), batch.schema_ref().fields());
    if want.len() != have.len() {
        return Err(mismatch(format!(
            "it has {} columns but the output has {}",
            have.len(),
            want.len()
        )));
    }
    for (i, (w, h)) in want.iter().zip(have.iter()).enumerate() {
        if w.name() != h.name() {
            return Err(mismatch(format!(
                "column {i} is `{}` but the output's is `{}`",
                h.name(),
                w.name()
            )));
        }
        if !w.data_type().equals_datatype(h.data_type()) {
            return Err(mismatch(format!(
                "column `{}` is `{}` but the output's is `{}`",
                h.name(),
                h.data_type(),
                w.data_type()
            )));
        }
        if !w.is_nullable() && batch.column(i).null_count() > 0 {
            return Err(mismatch(format!(
                "column `{}` holds nulls but the output's field is non-nullable",
                w.name()
            )));
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(schema), batch.columns().to_vec(), &options)
        .map_err(|e| mismatch(e.to_string()))
}

/// The file a sink writes: buffered in 1 MiB blocks, each hashed (BLAKE3) on its way to
/// the file, so the file digest of a part costs no second read of it at commit.
///
/// Every sink writes its file front to back and never seeks, so the bytes hashed are the
/// file's bytes (checked against a re-read by the sink tests).
type HashedFile = std::io::BufWriter<Hashing>;

/// The unbuffered half of [`HashedFile`].
struct Hashing {
    file: File,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl std::io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn hashed(file: File) -> HashedFile {
    std::io::BufWriter::with_capacity(
        1 << 20,
        Hashing {
            file,
            hasher: blake3::Hasher::new(),
            bytes: 0,
        },
    )
}

/// Flush a finished file, make it durable, and report its size and digest.
fn sync_and_measure(file: HashedFile, path: &Path, rows: u64) -> Result<SinkStats> {
    let hashing = file
        .into_inner()
        .map_err(|e| Error::io("write", path, e.into_error()))?;
    hashing.file.sync_all().map_err(|e| Error::io("sync", path, e))?;
    Ok(SinkStats {
        rows,
        bytes: hashing.bytes,
        digest: format!("blake3:{}", hashing.hasher.finalize().to_hex()),
    })
}

#[cfg(test)]
mod tests;
