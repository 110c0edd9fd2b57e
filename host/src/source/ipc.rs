//! Arrow IPC input: the file format (`ARROW1`, with a footer) and the stream format.
//!
//! IPC lengths come from the file and cannot be trusted: the file reader allocates each
//! block's declared size before reading it. [`check_footer`] bounds every block by the
//! file's real size first, so a corrupt length is an input error, not a huge allocation.
//! (The stream reader of arrow 60 already grows its buffers with the data it reads.)

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::{FileReader, StreamReader, read_footer_length};
use arrow::ipc::{Block, root_as_footer};

use super::{Batches, arrow_message, decode_error};
use crate::error::{Error, Result};

/// Footers larger than this are treated as corrupt rather than read into memory (a real
/// footer needs 24 bytes per batch: this allows millions of batches).
const MAX_FOOTER_BYTES: usize = 256 << 20;

/// The schema of an Arrow IPC file, after checking its footer.
pub(super) fn file_schema(path: &Path, file: File, size: u64) -> Result<SchemaRef> {
    Ok(open_file_reader(path, file, size)?.schema())
}

/// The batches of an Arrow IPC file, in the order of its footer.
pub(super) fn file_batches(path: &Path, file: File) -> Result<Batches> {
    let size = file.metadata().map_err(|e| Error::io("read", path, e))?.len();
    let reader = open_file_reader(path, file, size)?;
    let total = reader.num_batches();
    let path = path.to_path_buf();
    Ok(Box::new(reader.enumerate().map(move |(i, r)| {
        r.map_err(|e| {
            decode_error(&path, e, |m| {
                format!(
                    "failed to read Arrow IPC input `{}` at record batch {i} of {total}: {m}; \
                     the file is corrupt",
                    path.display()
                )
            })
        })
    })))
}

/// The schema of an Arrow IPC stream (its first message).
pub(super) fn stream_schema(path: &Path, file: File) -> Result<SchemaRef> {
    Ok(open_stream_reader(path, file)?.schema())
}

/// The batches of an Arrow IPC stream, in order.
pub(super) fn stream_batches(path: &Path, file: File) -> Result<Batches> {
    let reader = open_stream_reader(path, file)?;
    let path: PathBuf = path.to_path_buf();
    Ok(Box::new(reader.enumerate().map(move |(i, r)| {
        r.map_err(|e| {
            decode_error(&path, e, |m| {
                format!(
                    "failed to read Arrow IPC stream `{}` at record batch {i}: {m}; the stream \
                     is truncated or corrupt",
                    path.display(),
                )
            })
        })
    })))
}

/// Check the footer of an IPC file, then open a reader on it.
fn open_file_reader(path: &Path, mut file: File, size: u64) -> Result<FileReader<BufReader<File>>> {
    check_footer(path, &mut file, size)?;
    FileReader::try_new(BufReader::new(file), None).map_err(|e| {
        decode_error(path, e, |m| {
            format!(
                "failed to read Arrow IPC input `{}`: {m}; the file is corrupt",
                path.display()
            )
        })
    })
}

/// Open a stream reader, which reads the schema message.
fn open_stream_reader(path: &Path, file: File) -> Result<StreamReader<BufReader<File>>> {
    StreamReader::try_new(BufReader::new(file), None).map_err(|e| {
        decode_error(path, e, |m| {
            format!(
                "failed to read the schema of Arrow IPC stream `{}`: {m}; the stream is \
                 truncated or corrupt",
                path.display()
            )
        })
    })
}

/// Check that the footer of IPC file `path` parses and that every block it lists lies
/// inside the file.
fn check_footer(path: &Path, file: &mut File, size: u64) -> Result<()> {
    let bad = |why: String| {
        Error::input(format!(
            "Arrow IPC input `{}` is corrupt: {why}; re-create the file, or pass \
             `--input-format arrows` if it is an IPC stream",
            path.display()
        ))
    };
    // Leading magic (8 bytes with padding) and trailing length + magic (10 bytes).
    if size < 18 {
        return Err(bad(format!("it has only {size} bytes")));
    }
    let mut trailer = [0u8; 10];
    file.seek(SeekFrom::End(-10))
        .and_then(|_| file.read_exact(&mut trailer))
        .map_err(|e| Error::io("read", path, e))?;
    let footer_len =
        read_footer_length(trailer).map_err(|e| bad(format!("{} (is it truncated?)", arrow_message(&e))))?;
    let data_end = size - 10;
    if footer_len as u64 > data_end - 8 || footer_len > MAX_FOOTER_BYTES {
        return Err(bad(format!("its footer claims {footer_len} bytes")));
    }
    let mut footer = vec![0u8; footer_len];
    file.seek(SeekFrom::Start(data_end - footer_len as u64))
        .and_then(|_| file.read_exact(&mut footer))
        .map_err(|e| Error::io("read", path, e))?;
    let footer = root_as_footer(&footer).map_err(|e| bad(format!("unreadable footer ({e})")))?;
    let blocks_end = data_end - footer_len as u64;
    let batches = footer.recordBatches().into_iter().flatten();
    let dictionaries = footer.dictionaries().into_iter().flatten();
    for (kind, block) in batches
        .map(|b| ("record batch", b))
        .chain(dictionaries.map(|b| ("dictionary", b)))
    {
        if !block_fits(block, blocks_end) {
            return Err(bad(format!(
                "a {kind} block at offset {} declares {} + {} bytes, beyond the end of the data \
                 ({blocks_end} bytes)",
                block.offset(),
                block.metaDataLength(),
                block.bodyLength()
            )));
        }
    }
    file.rewind().map_err(|e| Error::io("read", path, e))?;
    Ok(())
}

/// Whether `block` starts after the leading magic and ends by `end`.
fn block_fits(block: &Block, end: u64) -> bool {
    let (Ok(offset), Ok(meta), Ok(body)) = (
        u64::try_from(block.offset()),
        u64::try_from(block.metaDataLength()),
        u64::try_from(block.bodyLength()),
    ) else {
        return false;
    };
    offset >= 8
        && offset
            .checked_add(meta)
            .and_then(|x| x.checked_add(body))
            .is_some_and(|e| e <= end)
}
