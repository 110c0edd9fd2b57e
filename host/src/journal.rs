//! The append-only, hash-chained, fsync'd journal of committed chunks
//! (`OUT/_sluice/journal.jsonl`).
//!
//! Line 1 is a header naming the run's action key; every further line records one
//! committed chunk. Each line carries the BLAKE3 digest of the line before it, so a
//! reordered, edited or truncated-in-the-middle journal is detected. Only the last line may
//! be torn (a crash during the append): it is dropped on open, which is safe because a
//! chunk only counts as committed once its line is durable.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fault;

/// Version of the journal line format.
pub const JOURNAL_VERSION: u32 = 1;

/// The first line: what run this journal belongs to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `header`.
    pub kind: String,
    /// Journal format version.
    pub journal_version: u32,
    /// Digest of everything that determines the output.
    pub action_key: String,
    /// The action key without the input digests: the same job over possibly changed
    /// input. A resume of the same job checks every committed chunk's input digest and
    /// names the first chunk whose input changed.
    pub job_key: String,
}

/// One committed chunk.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChunkEntry {
    /// Always `chunk`.
    pub kind: String,
    /// Chunk index, from 0.
    pub chunk: u64,
    /// First input row (0-based) and number of input rows.
    pub input_rows: [u64; 2],
    /// The chunk's input rows, as the run's `--input-digest` names them: the input files'
    /// digests and this row range (`digest::InputRows`), or a data digest of the rows.
    pub input_digest: String,
    /// Output file, relative to the output directory.
    pub file: String,
    /// BLAKE3 of the output file's bytes.
    pub output_digest: String,
    /// BLAKE3 over the chunk's output batches (the logical content).
    pub data_digest: String,
    /// Rows written.
    pub rows_out: u64,
    /// Output file size in bytes.
    pub bytes: u64,
    /// Content address of the plugin chain's state after this chunk (stateful chains only).
    pub state: Option<String>,
    /// Fuel each plugin used on this chunk.
    pub fuel: Vec<u64>,
    /// True for the final chunk (it also holds what the plugins flushed at the end).
    pub last: bool,
    /// BLAKE3 of the previous journal line.
    pub prev: String,
}

/// An open journal, positioned for appending.
pub struct Journal {
    file: File,
    path: PathBuf,
    last_digest: String,
    /// The header line.
    pub header: Header,
    /// Committed chunks, in order.
    pub chunks: Vec<ChunkEntry>,
}

impl Journal {
    /// Create a new journal holding only the header.
    pub fn create(path: &Path, action_key: &str, job_key: &str) -> Result<Journal> {
        let header = Header {
            kind: "header".into(),
            journal_version: JOURNAL_VERSION,
            action_key: action_key.to_string(),
            job_key: job_key.to_string(),
        };
        let line = serde_json::to_string(&header).expect("header serializes");
        // Atomic: the journal either does not exist or holds its header, never half of it.
        crate::outdir::write_atomic(path, format!("{line}\n").as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            last_digest: crate::digest::blake3_bytes(line.as_bytes()),
            header,
            chunks: Vec::new(),
        })
    }

    /// Open an existing journal: verify the chain, drop a torn last line.
    ///
    /// # Errors
    /// A usage error naming the line if the journal is corrupt anywhere but its tail.
    pub fn open(path: &Path) -> Result<Journal> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(|e| Error::io("read", path, e))?;
        let parsed = parse(path, &text)?;
        if parsed.good_len < text.len() {
            tracing::warn!(journal = %path.display(), "dropping a torn last journal line (a crash during its append)");
            file.set_len(parsed.good_len as u64)
                .map_err(|e| Error::io("truncate", path, e))?;
            file.sync_all().map_err(|e| Error::io("fsync", path, e))?;
        }
        file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", path, e))?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            last_digest: parsed.last_digest,
            header: parsed.header,
            chunks: parsed.chunks,
        })
    }

    /// Append a committed chunk (its `prev` is filled in) and make it durable.
    pub fn append(&mut self, mut entry: ChunkEntry) -> Result<()> {
        entry.prev = self.last_digest.clone();
        let line = serde_json::to_string(&entry).expect("chunk serializes");
        fault::point("before_journal", entry.chunk)?;
        fault::write(&mut self.file, &self.path, format!("{line}\n").as_bytes())?;
        fault::point("after_journal_write", entry.chunk)?;
        fault::fsync(&self.file, &self.path)?;
        fault::point("journal_synced", entry.chunk)?;
        self.last_digest = crate::digest::blake3_bytes(line.as_bytes());
        self.chunks.push(entry);
        Ok(())
    }

    /// Digest of the last line: the head of the chain.
    pub fn head(&self) -> &str {
        &self.last_digest
    }

    /// Flush the file handle (the data is already fsync'd).
    pub fn close(mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::io("flush", &self.path, e))
    }
}

/// A journal read and checked, without touching the file.
pub struct Parsed {
    /// The header line.
    pub header: Header,
    /// Committed chunks.
    pub chunks: Vec<ChunkEntry>,
    /// Digest of the last complete line.
    pub last_digest: String,
    /// Length of the complete lines; anything after it is a torn tail.
    pub good_len: usize,
}

/// Read a journal without modifying it (for `verify`).
pub fn read(path: &Path) -> Result<Parsed> {
    let text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse(path, &text)
}

/// Parse and verify journal text; `path` is for messages.
pub fn parse(path: &Path, text: &[u8]) -> Result<Parsed> {
    let corrupt = |n: usize, why: &str| {
        Error::usage(format!(
            "journal `{}` is corrupt at line {n}: {why}; the output directory was modified by something other than sluice. Remove it or rerun with --overwrite",
            path.display()
        ))
    };
    let mut good_len = 0usize;
    let mut header: Option<Header> = None;
    let mut chunks = Vec::new();
    let mut last_digest = String::new();
    let mut pos = 0usize;
    let mut n = 0usize;
    while pos < text.len() {
        n += 1;
        // No newline: the append was cut short by a crash. Not committed.
        let Some(end) = text[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i) else {
            break;
        };
        let line = &text[pos..end];
        let is_last = end + 1 == text.len();
        let value: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) if is_last && n > 1 => break,
            Err(e) => return Err(corrupt(n, &format!("not JSON ({e})"))),
        };
        if n == 1 {
            let h: Header = serde_json::from_value(value).map_err(|e| corrupt(n, &format!("bad header ({e})")))?;
            if h.journal_version != JOURNAL_VERSION {
                return Err(corrupt(
                    n,
                    &format!("journal version {} is not {JOURNAL_VERSION}", h.journal_version),
                ));
            }
            header = Some(h);
        } else {
            let c: ChunkEntry =
                serde_json::from_value(value).map_err(|e| corrupt(n, &format!("bad chunk line ({e})")))?;
            if c.prev != last_digest {
                return Err(corrupt(
                    n,
                    "the hash chain is broken (a line was edited, removed or reordered)",
                ));
            }
            if c.chunk != chunks.len() as u64 {
                return Err(corrupt(
                    n,
                    &format!("expected chunk {} but found chunk {}", chunks.len(), c.chunk),
                ));
            }
            chunks.push(c);
        }
        last_digest = crate::digest::blake3_bytes(line);
        pos = end + 1;
        good_len = pos;
    }
    let Some(header) = header else {
        return Err(corrupt(1, "no header line"));
    };
    Ok(Parsed {
        header,
        chunks,
        last_digest,
        good_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_torn_tail_and_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let mut j = Journal::create(&p, "blake3:a", "blake3:b").unwrap();
        for i in 0..3 {
            let mut e = ChunkEntry {
                kind: "chunk".into(),
                chunk: i,
                input_rows: [i * 10, 10],
                input_digest: "blake3:i".into(),
                file: format!("data/part-{i:06}.parquet"),
                output_digest: "blake3:o".into(),
                data_digest: "blake3:d".into(),
                rows_out: 10,
                bytes: 100,
                state: None,
                fuel: vec![1],
                last: i == 2,
                prev: String::new(),
            };
            e.prev.clear();
            j.append(e).unwrap();
        }
        let head = j.head().to_string();
        drop(j);
        let text = std::fs::read(&p).unwrap();
        let parsed = parse(&p, &text).unwrap();
        assert_eq!(parsed.chunks.len(), 3);
        assert_eq!(parsed.last_digest, head);
        // A torn tail is dropped, not an error.
        let mut torn = text.clone();
        torn.extend_from_slice(b"{\"kind\":\"chu");
        let parsed = parse(&p, &torn).unwrap();
        assert_eq!((parsed.chunks.len(), parsed.good_len), (3, text.len()));
        // An edit in the middle breaks the chain, naming the line after it.
        let edited = String::from_utf8(text)
            .unwrap()
            .replacen("\"rows_out\":10", "\"rows_out\":11", 1);
        let err = parse(&p, edited.as_bytes()).err().unwrap().to_string();
        assert!(err.contains("corrupt at line 3"), "{err}");
    }
}
