//! Arrow IPC file output (`FileWriter`), optionally with compressed buffers.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::CompressionType;
use arrow::ipc::writer::{FileWriter, IpcWriteOptions};

use super::{BatchSink, Codec, HashedFile, SinkStats, conform, sync_and_measure};
use crate::error::{Error, Result};

/// Create an Arrow IPC file sink; `codec` is already validated for IPC.
pub(super) fn create(file: HashedFile, path: &Path, schema: SchemaRef, codec: Codec) -> Result<Box<dyn BatchSink>> {
    let usage = |e: ArrowError| Error::usage(format!("invalid IPC options for `{}`: {e}", path.display()));
    let (kind, level) = match codec {
        Codec::Zstd(level) => (Some(CompressionType::ZSTD), Some(level)),
        Codec::Lz4 => (Some(CompressionType::LZ4_FRAME), None),
        _ => (None, None),
    };
    let options = IpcWriteOptions::default()
        .try_with_compression(kind)
        .and_then(|o| o.try_with_compression_level(level))
        .map_err(usage)?;
    let writer = FileWriter::try_new_with_options(file, &schema, options).map_err(|e| write_error(path, e))?;
    Ok(Box::new(IpcSink {
        writer,
        schema,
        path: path.to_path_buf(),
        rows: 0,
    }))
}

/// Map a writer error: an OS failure is retryable, anything else is about the data.
fn write_error(path: &Path, e: ArrowError) -> Error {
    match e {
        ArrowError::IoError(_, io) => Error::io("write", path, io),
        other => Error::input(format!(
            "failed to write Arrow IPC output `{}`: {other}",
            path.display()
        )),
    }
}

/// Writes batches into one Arrow IPC file.
struct IpcSink {
    writer: FileWriter<HashedFile>,
    schema: SchemaRef,
    path: PathBuf,
    rows: u64,
}

impl BatchSink for IpcSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let batch = conform(&self.schema, batch, &self.path)?;
        self.writer.write(&batch).map_err(|e| write_error(&self.path, e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<SinkStats> {
        let IpcSink { writer, path, rows, .. } = *self;
        // `into_inner` writes the footer and flushes the IPC writer's own buffer.
        let file = writer.into_inner().map_err(|e| write_error(&path, e))?;
        sync_and_measure(file, &path, rows)
    }
}
