//! Arrow IPC input: the file format (`ARROW1`, with a footer) and the stream format.
//!
//! IPC lengths come from the file and cannot be trusted: the readers allocate each block's
//! and each message's declared size before reading it, and slice body buffers at declared
//! offsets without checking them (arrow-ipc 60 panics on a bad one). So before a reader
//! sees a file, [`check_footer`] (file format) and [`check_stream_messages`] (stream
//! format) read every message header and bound it, its body and each of its buffers by the
//! file's real size: a corrupt length is an input error, not a huge allocation or a panic.

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

/// Open a stream reader, which reads the schema message, after checking the framing of
/// every message in the file.
fn open_stream_reader(path: &Path, mut file: File) -> Result<StreamReader<BufReader<File>>> {
    check_stream_messages(path, &mut file)?;
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
    let mut layouts = footer
        .schema()
        .map(crate::ipc::Layouts::from_schema)
        .unwrap_or_default();
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
        check_block(file, block, &mut layouts)
            .map_err(|why| bad(format!("the {kind} block at offset {} has {why}", block.offset())))?;
    }
    file.rewind().map_err(|e| Error::io("read", path, e))?;
    Ok(())
}

/// Walk the messages of IPC stream file `path`, reading only their headers, and check that
/// each header, and every buffer it declares, lies inside the file (see
/// [`crate::ipc::check_message`]): arrow's reader would allocate a declared length before
/// reading it, and panics on a buffer outside its message body.
fn check_stream_messages(path: &Path, file: &mut File) -> Result<()> {
    let size = file.metadata().map_err(|e| Error::io("read", path, e))?.len();
    let bad = |at: u64, why: String| {
        Error::input(format!(
            "Arrow IPC stream `{}` is corrupt: the message at byte {at} {why}; re-create the file",
            path.display()
        ))
    };
    let mut pos = 0u64;
    let mut batches = 0usize;
    let mut layouts = crate::ipc::Layouts::default();
    while pos < size {
        let mut head = [0u8; 8];
        let n = usize::try_from((size - pos).min(8)).expect("at most 8");
        file.seek(SeekFrom::Start(pos))
            .and_then(|_| file.read_exact(&mut head[..n]))
            .map_err(|e| Error::io("read", path, e))?;
        // `0xFFFFFFFF` then the metadata length; streams before Arrow 0.15 omit the marker.
        let prefix: u64 = if head[..n].starts_with(&[0xFF; 4]) { 4 } else { 0 };
        if (n as u64) < prefix + 4 {
            return Err(bad(
                pos,
                "is cut off inside its length (the stream is truncated)".into(),
            ));
        }
        let p = prefix as usize;
        let meta_len = i32::from_le_bytes(head[p..p + 4].try_into().expect("4 bytes"));
        if meta_len == 0 {
            break; // end-of-stream marker
        }
        let meta_start = pos + prefix + 4;
        let meta_len =
            u64::try_from(meta_len).map_err(|_| bad(pos, format!("declares {meta_len} bytes of metadata")))?;
        if meta_start + meta_len > size {
            return Err(bad(
                pos,
                format!("declares {meta_len} bytes of metadata, beyond the end of the file ({size} bytes)"),
            ));
        }
        let mut meta = vec![0u8; usize::try_from(meta_len).expect("bounded by the file size")];
        file.seek(SeekFrom::Start(meta_start))
            .and_then(|_| file.read_exact(&mut meta))
            .map_err(|e| Error::io("read", path, e))?;
        let (kind, body_len, _) =
            crate::ipc::check_message(&meta, &mut layouts).map_err(|why| bad(pos, format!("is invalid: {why}")))?;
        let end = (meta_start + meta_len).checked_add(body_len).filter(|&e| e <= size);
        let at = pos;
        pos = end.ok_or_else(|| {
            let what = if kind == "record batch" {
                format!("(record batch {batches}) ")
            } else {
                String::new()
            };
            bad(
                at,
                format!("{what}declares a body of {body_len} bytes, beyond the end of the file ({size} bytes)"),
            )
        })?;
        if kind == "record batch" {
            batches += 1;
        }
    }
    file.rewind().map_err(|e| Error::io("read", path, e))
}

/// Check the message header at `block` of IPC file `file` (see [`crate::ipc::check_message`]).
fn check_block(file: &mut File, block: &Block, layouts: &mut crate::ipc::Layouts) -> std::result::Result<(), String> {
    let mut meta = vec![0u8; usize::try_from(block.metaDataLength()).map_err(|_| "a negative metadata length")?];
    file.seek(SeekFrom::Start(
        u64::try_from(block.offset()).map_err(|_| "a negative offset")?,
    ))
    .and_then(|_| file.read_exact(&mut meta))
    .map_err(|e| format!("unreadable ({e})"))?;
    let prefix = if meta.starts_with(&[0xFF; 4]) { 4 } else { 0 };
    let len = meta
        .get(prefix..prefix + 4)
        .ok_or("a header shorter than its length prefix")?;
    let len = usize::try_from(i32::from_le_bytes(len.try_into().expect("4 bytes"))).map_err(|_| "a negative length")?;
    let header = meta
        .get(prefix + 4..prefix + 4 + len)
        .ok_or("a header longer than its block")?;
    let (_, body_len, _) = crate::ipc::check_message(header, layouts)?;
    if body_len > u64::try_from(block.bodyLength()).unwrap_or(0) {
        return Err(format!(
            "a body of {body_len} bytes in a block of {} bytes",
            block.bodyLength()
        ));
    }
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
