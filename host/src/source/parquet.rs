//! Parquet input, read one row group at a time.
//!
//! Reading each row group with its own reader costs nothing (the footer is parsed once)
//! and buys two things: an error names the exact row group, and batch boundaries depend
//! only on the file's row groups and `batch_rows`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use ::parquet::errors::ParquetError;
use ::parquet::file::metadata::ParquetStatisticsPolicy;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::{Batches, arrow_message};
use crate::error::{Error, Result};

/// The Arrow schema of a Parquet file (the embedded one when the writer stored it).
pub(super) fn schema(path: &Path, file: &File, cache: &OnceLock<Footer>) -> Result<SchemaRef> {
    Ok(Arc::clone(footer(path, file, cache)?.schema()))
}

/// A Parquet file's footer, parsed and checked.
pub(super) type Footer = ArrowReaderMetadata;

/// The footer of `file`: the one in `cache`, else read, checked and kept there.
fn footer(path: &Path, file: &File, cache: &OnceLock<Footer>) -> Result<Footer> {
    if let Some(f) = cache.get() {
        return Ok(f.clone());
    }
    let size = file.metadata().map_err(|e| Error::io("read", path, e))?.len();
    let metadata = load(path, file, size)?;
    Ok(cache.get_or_init(|| metadata).clone())
}

/// The number of rows a Parquet file's footer declares.
pub(super) fn rows(path: &Path, file: &File, cache: &OnceLock<Footer>) -> Result<u64> {
    let metadata = footer(path, file, cache)?;
    Ok(metadata
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .sum())
}

/// The batches of a Parquet file, at most `batch_rows` rows each.
pub(super) fn batches(path: &Path, file: File, batch_rows: usize, cache: &OnceLock<Footer>) -> Result<Batches> {
    Ok(skipping(path, file, batch_rows, 0, cache)?.2)
}

/// The batches of a Parquet file from the row group holding row `rows` on (the row
/// groups before it are not read), the number of rows skipped that way, and the file's
/// row count.
pub(super) fn skipping(
    path: &Path,
    file: File,
    batch_rows: usize,
    rows: u64,
    cache: &OnceLock<Footer>,
) -> Result<(u64, u64, Batches)> {
    let metadata = footer(path, &file, cache)?;
    let total = metadata
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .sum();
    let (mut next_group, mut first_row) = (0, 0u64);
    for g in metadata.metadata().row_groups() {
        let n = g.num_rows().max(0) as u64;
        if first_row + n > rows {
            break;
        }
        first_row += n;
        next_group += 1;
    }
    Ok((
        first_row,
        total,
        Box::new(RowGroups {
            path: path.to_path_buf(),
            file,
            metadata,
            batch_rows,
            next_group,
            first_row,
            current: None,
        }),
    ))
}

/// Parse the footer and check that every column chunk lies inside the file.
///
/// The reader allocates a column chunk's declared size before reading it, so a corrupt
/// length must be caught here rather than turn into a huge allocation.
fn load(path: &Path, file: &File, size: u64) -> Result<ArrowReaderMetadata> {
    // The footer stays in memory for the whole run, and its column, size and page encoding
    // statistics are used by nothing here (the reader decodes every page; the sink computes
    // its own). They grow with the row groups: skipping them took 2-4 MiB off the peak RSS
    // of a run over SF10 lineitem (524 row groups), which kept growing with the input.
    let options = ArrowReaderOptions::new()
        .with_column_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_encoding_stats_as_mask(true);
    let metadata = ArrowReaderMetadata::load(file, options).map_err(|e| {
        Error::input(format!(
            "failed to read Parquet input `{}`: {}; the file is not Parquet, or it is truncated \
             or corrupt",
            path.display(),
            parquet_message(&e)
        ))
    })?;
    for (g, group) in metadata.metadata().row_groups().iter().enumerate() {
        if group.num_rows() < 0 {
            return Err(corrupt(path, g, "a negative row count"));
        }
        for column in group.columns() {
            let start = column.dictionary_page_offset().unwrap_or(column.data_page_offset());
            let len = column.compressed_size();
            let end = start.checked_add(len);
            if start < 0 || len < 0 || end.is_none_or(|end| end as u64 > size) {
                let what = format!(
                    "column `{}` at bytes {start}..{} outside the file ({size} bytes)",
                    column.column_path().string(),
                    end.map_or("overflow".to_string(), |e| e.to_string()),
                );
                return Err(corrupt(path, g, &what));
            }
        }
    }
    Ok(metadata)
}

/// An input error for a row group whose metadata is impossible.
fn corrupt(path: &Path, group: usize, what: &str) -> Error {
    Error::input(format!(
        "Parquet input `{}` is corrupt: the footer gives row group {group} {what}",
        path.display()
    ))
}

/// The message of a Parquet error without the "Parquet error: " prefix.
fn parquet_message(e: &ParquetError) -> String {
    match e {
        ParquetError::General(m) | ParquetError::ArrowError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Iterates a Parquet file's row groups in order, each through its own reader.
struct RowGroups {
    path: PathBuf,
    file: File,
    metadata: ArrowReaderMetadata,
    batch_rows: usize,
    /// The row group to open next.
    next_group: usize,
    /// The file-wide index of the first row of the row group being read.
    first_row: u64,
    /// The row group being read and its reader.
    current: Option<(usize, ParquetRecordBatchReader)>,
}

impl RowGroups {
    /// An input error located in row group `group`.
    fn error(&self, group: usize, message: String) -> Error {
        let rows = self.metadata.metadata().row_group(group).num_rows().max(0) as u64;
        Error::input(format!(
            "failed to read Parquet input `{}` in row group {group} (rows {}..{}): {message}; \
             the file is truncated or corrupt",
            self.path.display(),
            self.first_row,
            self.first_row + rows,
        ))
    }

    /// A reader over row group `group` alone.
    fn open_group(&self, group: usize) -> Result<ParquetRecordBatchReader> {
        // Each clone shares the descriptor; the reader seeks before every read.
        let file = self.file.try_clone().map_err(|e| Error::io("read", &self.path, e))?;
        ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
            .with_batch_size(self.batch_rows)
            .with_row_groups(vec![group])
            .build()
            .map_err(|e| self.error(group, parquet_message(&e)))
    }
}

impl Iterator for RowGroups {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((group, reader)) = &mut self.current {
                let group = *group;
                match reader.next() {
                    Some(Ok(batch)) => return Some(Ok(batch)),
                    Some(Err(e)) => {
                        self.current = None;
                        return Some(Err(self.error(group, arrow_message(&e))));
                    }
                    None => {
                        self.current = None;
                        let rows = self.metadata.metadata().row_group(group).num_rows();
                        self.first_row += rows.max(0) as u64;
                    }
                }
            }
            if self.next_group >= self.metadata.metadata().num_row_groups() {
                return None;
            }
            let group = self.next_group;
            self.next_group += 1;
            match self.open_group(group) {
                Ok(reader) => self.current = Some((group, reader)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
