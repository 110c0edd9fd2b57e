//! The output directory: layout, the per-chunk commit protocol, recovery and publishing.
//!
//! ```text
//! OUT/data/part-NNNNNN.<ext>   committed chunks
//! OUT/_sluice/journal.jsonl    one fsync'd line per committed chunk (see `journal`)
//! OUT/_sluice/state/<hex>      plugin chain state after a chunk, content-addressed
//! OUT/_sluice/manifest.json    the run record, written atomically at the end
//! OUT/_SUCCESS                 written last
//! ```
//!
//! Commit of chunk K, each step durable before the next: write the part to a temporary
//! file → fsync → rename into place → fsync `data/` → write the state (if any) → append the
//! journal line → fsync. A part file with no journal line is not committed: resume removes it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::digest::{self, DataDigest};
use crate::error::{Error, Result};
use crate::fault;
use crate::journal::{ChunkEntry, Journal};
use crate::sink::{self, OutputFormat, WriterOptions};

/// What an output directory holds when a run starts.
pub enum Existing {
    /// Nothing (or an empty directory).
    Empty,
    /// A finished run; its manifest's action key.
    Complete(Option<String>),
    /// An unfinished run of sluice, with its journal.
    Unfinished(Journal),
    /// Files sluice did not write.
    Foreign,
}

/// Look at `root` and say what it holds (recovering a journal if there is one).
pub fn inspect(root: &Path) -> Result<Existing> {
    if !root.exists() {
        return Ok(Existing::Empty);
    }
    if !root.is_dir() {
        return Err(Error::usage(format!(
            "output `{}` exists and is not a directory",
            root.display()
        )));
    }
    let mut entries = std::fs::read_dir(root).map_err(|e| Error::io("list", root, e))?;
    if entries.next().is_none() {
        return Ok(Existing::Empty);
    }
    if root.join("_SUCCESS").exists() {
        let m = root.join("_sluice").join("manifest.json");
        let key = std::fs::read(&m)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("action_key").and_then(|k| k.as_str()).map(str::to_string));
        return Ok(Existing::Complete(key));
    }
    let j = root.join("_sluice").join("journal.jsonl");
    if j.exists() {
        return Ok(Existing::Unfinished(Journal::open(&j)?));
    }
    // Only our own layout and no journal: a run died before committing anything (or
    // before its journal existed). Nothing in it is committed, so it is safe to reuse.
    let ours = std::fs::read_dir(root)
        .map_err(|e| Error::io("list", root, e))?
        .flatten()
        .all(|e| matches!(e.file_name().to_str(), Some("data" | "_sluice")));
    Ok(if ours { Existing::Empty } else { Existing::Foreign })
}

/// An output directory being written by a run.
pub struct OutputDir {
    root: PathBuf,
    data: PathBuf,
    state_dir: PathBuf,
}

impl OutputDir {
    /// Create the layout for a fresh run and its journal.
    pub fn create(root: &Path, action_key: &str, job_key: &str) -> Result<(OutputDir, Journal)> {
        let dir = OutputDir::at(root);
        for d in [&dir.data, &dir.state_dir] {
            std::fs::create_dir_all(d).map_err(|e| Error::io("create directory", d, e))?;
        }
        // Leftovers of an attempt that died before its journal existed.
        for e in std::fs::read_dir(&dir.data)
            .map_err(|e| Error::io("list", &dir.data, e))?
            .flatten()
        {
            std::fs::remove_file(e.path()).map_err(|err| Error::io("remove", &e.path(), err))?;
        }
        let journal = Journal::create(&root.join("_sluice").join("journal.jsonl"), action_key, job_key)?;
        Ok((dir, journal))
    }

    /// The layout of an existing directory.
    pub fn at(root: &Path) -> OutputDir {
        OutputDir {
            root: root.to_path_buf(),
            data: root.join("data"),
            state_dir: root.join("_sluice").join("state"),
        }
    }

    /// The directory's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make the directory match its journal: remove temporary and uncommitted files and
    /// check every committed part still has its recorded digest.
    pub fn recover(&self, journal: &Journal) -> Result<()> {
        std::fs::create_dir_all(&self.data).map_err(|e| Error::io("create directory", &self.data, e))?;
        std::fs::create_dir_all(&self.state_dir).map_err(|e| Error::io("create directory", &self.state_dir, e))?;
        let committed: std::collections::HashSet<String> = journal.chunks.iter().map(|c| c.file.clone()).collect();
        for e in std::fs::read_dir(&self.data).map_err(|e| Error::io("list", &self.data, e))? {
            let e = e.map_err(|e| Error::io("list", &self.data, e))?;
            let rel = format!("data/{}", e.file_name().to_string_lossy());
            if !committed.contains(&rel) {
                tracing::info!(file = %rel, "removing a file of an uncommitted chunk");
                std::fs::remove_file(e.path()).map_err(|err| Error::io("remove", &e.path(), err))?;
            }
        }
        sync_dir(&self.data)?;
        for c in &journal.chunks {
            let path = self.root.join(&c.file);
            if !path.exists() {
                return Err(Error::usage(format!(
                    "committed chunk {} (`{}`) is missing from `{}`; the output was modified after commit. Remove it or rerun with --overwrite",
                    c.chunk,
                    c.file,
                    self.root.display()
                )));
            }
            let got = digest::blake3_file(&path)?;
            if got != c.output_digest {
                return Err(Error::usage(format!(
                    "committed chunk {} (`{}`) was modified after commit: its digest is {got}, the journal recorded {}. Remove `{}` or rerun with --overwrite",
                    c.chunk,
                    c.file,
                    c.output_digest,
                    self.root.display()
                )));
            }
        }
        Ok(())
    }

    /// Load the chain state saved after the last committed chunk.
    pub fn load_state(&self, journal: &Journal) -> Result<Option<Vec<Vec<u8>>>> {
        let Some(address) = journal.chunks.last().and_then(|c| c.state.clone()) else {
            return Ok(None);
        };
        let path = self.state_dir.join(address.trim_start_matches("blake3:"));
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read plugin state", &path, e))?;
        if digest::blake3_bytes(&bytes) != address {
            return Err(Error::usage(format!(
                "plugin state `{}` does not match its digest {address}; the output was modified. Remove it or rerun with --overwrite",
                path.display()
            )));
        }
        decode_states(&bytes)
            .map(Some)
            .ok_or_else(|| Error::usage(format!("plugin state `{}` is malformed", path.display())))
    }

    /// Save the chain state; returns its content address.
    pub fn save_state(&self, states: &[Vec<u8>], chunk: u64) -> Result<String> {
        let bytes = encode_states(states);
        let address = digest::blake3_bytes(&bytes);
        let path = self.state_dir.join(address.trim_start_matches("blake3:"));
        if !path.exists() {
            write_atomic(&path, &bytes)?;
        }
        fault::point("state_written", chunk)?;
        Ok(address)
    }

    /// Start writing chunk `chunk`'s part.
    pub fn begin_part(
        &self,
        chunk: u64,
        schema: &SchemaRef,
        format: OutputFormat,
        writer: &WriterOptions,
    ) -> Result<PartWriter> {
        let name = format!("part-{chunk:06}.{}", format.extension());
        let tmp = self.data.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        let sink = sink::create_sink(file, &tmp, Arc::clone(schema), format, writer)?;
        Ok(PartWriter {
            sink: Some(sink),
            tmp,
            dir: self.data.clone(),
            name,
            chunk,
            rows: 0,
            digest: DataDigest::new(schema),
        })
    }

    /// Remove temporary files (after a failure).
    pub fn cleanup_temp(&self) {
        if let Ok(rd) = std::fs::read_dir(&self.data) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Write the manifest atomically, then `_SUCCESS`.
    pub fn publish(&self, manifest_json: &[u8], chunks: u64) -> Result<()> {
        fault::point("before_manifest", chunks)?;
        write_atomic(&self.root.join("_sluice").join("manifest.json"), manifest_json)?;
        fault::point("manifest_written", chunks)?;
        write_atomic(&self.root.join("_SUCCESS"), b"")?;
        // A failed earlier attempt is history now: the manifest is the record.
        let attempt = self.root.join("_sluice").join("last_attempt.json");
        if attempt.exists() {
            std::fs::remove_file(&attempt).map_err(|e| Error::io("remove", &attempt, e))?;
        }
        fault::point("success_written", chunks)?;
        Ok(())
    }
}

/// A part file being written.
pub struct PartWriter {
    sink: Option<Box<dyn sink::BatchSink>>,
    tmp: PathBuf,
    dir: PathBuf,
    name: String,
    chunk: u64,
    rows: u64,
    digest: DataDigest,
}

/// What committing a part produced, before its journal line is written.
pub struct CommittedPart {
    /// Path relative to the output directory.
    pub file: String,
    /// Rows written.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// BLAKE3 of the file.
    pub output_digest: String,
    /// BLAKE3 of the batches written.
    pub data_digest: String,
}

impl PartWriter {
    /// Write one output batch.
    pub fn write(&mut self, b: &RecordBatch) -> Result<()> {
        fault::check_write(&self.tmp)?;
        self.rows += b.num_rows() as u64;
        self.digest.update(b);
        self.sink.as_mut().expect("open sink").write(b)
    }

    /// The data digest of what is written, for deferring and adopting columns that another
    /// digest already covers.
    pub fn digest_mut(&mut self) -> &mut DataDigest {
        &mut self.digest
    }

    /// Finish and fsync the file, rename it into place, fsync the directory.
    pub fn commit(self) -> Result<CommittedPart> {
        self.finish()?.commit()
    }

    /// The first half of [`PartWriter::commit`]: finish and fsync the temporary file.
    ///
    /// Parallel runs finish parts on worker threads and commit them in chunk order.
    pub fn finish(mut self) -> Result<FinishedPart> {
        fault::point("part_written", self.chunk)?;
        let stats = self.sink.take().expect("open sink").finish()?;
        fault::point("part_synced", self.chunk)?;
        Ok(FinishedPart {
            tmp: std::mem::take(&mut self.tmp),
            dir: std::mem::take(&mut self.dir),
            name: std::mem::take(&mut self.name),
            chunk: self.chunk,
            rows: self.rows,
            bytes: stats.bytes,
            output_digest: stats.digest,
            data_digest: self.digest.finish(),
            renamed: false,
        })
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        if self.sink.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A part whose temporary file is complete and durable, not yet renamed into place.
pub struct FinishedPart {
    tmp: PathBuf,
    dir: PathBuf,
    name: String,
    chunk: u64,
    rows: u64,
    bytes: u64,
    /// BLAKE3 of the file, hashed by the sink as it wrote it.
    output_digest: String,
    data_digest: String,
    renamed: bool,
}

impl FinishedPart {
    /// The second half of [`PartWriter::commit`]: rename into place, fsync the directory.
    pub fn commit(mut self) -> Result<CommittedPart> {
        let dest = self.dir.join(&self.name);
        std::fs::rename(&self.tmp, &dest).map_err(|e| Error::io("rename into", &dest, e))?;
        self.renamed = true;
        fault::point("part_renamed", self.chunk)?;
        sync_dir(&self.dir)?;
        fault::point("dir_synced", self.chunk)?;
        Ok(CommittedPart {
            file: format!("data/{}", self.name),
            rows: self.rows,
            bytes: self.bytes,
            output_digest: std::mem::take(&mut self.output_digest),
            data_digest: std::mem::take(&mut self.data_digest),
        })
    }
}

impl Drop for FinishedPart {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Build a journal entry for a committed part (`prev` is set by the journal).
pub fn entry(
    chunk: u64,
    input_rows: [u64; 2],
    input_digest: String,
    part: CommittedPart,
    state: Option<String>,
    fuel: Vec<u64>,
    last: bool,
) -> ChunkEntry {
    ChunkEntry {
        kind: "chunk".into(),
        chunk,
        input_rows,
        input_digest,
        file: part.file,
        output_digest: part.output_digest,
        data_digest: part.data_digest,
        rows_out: part.rows,
        bytes: part.bytes,
        state,
        fuel,
        last,
        prev: String::new(),
    }
}

fn encode_states(states: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(states.len() as u64).to_le_bytes());
    for s in states {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
    }
    out
}

fn decode_states(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    fn take_u64(b: &mut &[u8]) -> Option<u64> {
        let (head, rest) = b.split_at_checked(8)?;
        *b = rest;
        Some(u64::from_le_bytes(head.try_into().ok()?))
    }
    let n = take_u64(&mut bytes)?;
    let mut out = Vec::new();
    for _ in 0..n {
        let len = usize::try_from(take_u64(&mut bytes)?).ok()?;
        let (s, rest) = bytes.split_at_checked(len)?;
        out.push(s.to_vec());
        bytes = rest;
    }
    bytes.is_empty().then_some(out)
}

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("path has a parent");
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().expect("file name").to_string_lossy()
    ));
    let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    fault::write(&mut f, &tmp, bytes)?;
    fault::fsync(&f, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))?;
    sync_dir(dir)
}

/// fsync a directory, so renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    fault::fsync(&d, dir)
}

/// fsync the directory holding `path`.
pub fn sync_parent(path: &Path) -> Result<()> {
    sync_dir(path.parent().expect("path has a parent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_reject_garbage() {
        let s = vec![b"abc".to_vec(), vec![], vec![0u8; 300]];
        assert_eq!(decode_states(&encode_states(&s)), Some(s));
        assert_eq!(decode_states(&[1, 2, 3]), None);
        let mut b = encode_states(&[b"x".to_vec()]);
        b.push(0);
        assert_eq!(decode_states(&b), None, "trailing bytes are refused");
    }
}
