//! A chain of plugins and the run loop: read → transform → write, chunk by chunk.
//!
//! Input rows are cut into chunks of `chunk_rows` rows, counted from the start of the input
//! (so boundaries depend only on the input and the setting). Each chunk's output goes to its
//! own part file, written to a temporary name, fsync'd and renamed into `OUT/data/`. The run
//! record (`OUT/_sluice/manifest.json`) is written atomically at the end, then `_SUCCESS`:
//! readers that wait for `_SUCCESS` never see partial output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::digest;
use crate::engine::{EngineSettings, Runtime};
use crate::error::{Error, Result};
use crate::plugin::{Plugin, PluginInfo, Transformer};
use crate::sandbox::Determinism;
use crate::sink::{self, OutputFormat, WriterOptions};
use crate::source::{Source, SourceOptions};

/// Default rows per chunk: large enough that per-chunk costs (a file, an fsync, a
/// checkpoint) are well under 1% of the work, small enough that a crash loses little.
pub const DEFAULT_CHUNK_ROWS: usize = 1 << 20;

/// One plugin of a chain and its configuration.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Path of the `.wasm` component.
    pub path: PathBuf,
    /// Key/value configuration for this plugin only.
    pub config: Vec<(String, String)>,
}

/// Everything that defines a run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Input files or directories, read in order as one stream.
    pub inputs: Vec<PathBuf>,
    /// How inputs are read.
    pub source: SourceOptions,
    /// The plugin chain, in order.
    pub plugins: Vec<PluginSpec>,
    /// The output directory.
    pub output: PathBuf,
    /// Output file format.
    pub format: OutputFormat,
    /// Output writer settings.
    pub writer: WriterOptions,
    /// Rows per chunk.
    pub chunk_rows: usize,
    /// Replace an existing output directory.
    pub overwrite: bool,
}

/// A chain of open transformers, each one's output schema the next one's input schema.
pub struct Chain {
    stages: Vec<Transformer>,
    input_schema: SchemaRef,
}

impl Chain {
    /// Open every plugin in order, negotiating schemas before any data moves.
    ///
    /// `states` holds a checkpoint per plugin when resuming.
    pub fn open(
        plugins: &[(Plugin, Vec<(String, String)>)],
        input_schema: &SchemaRef,
        states: Option<&[Vec<u8>]>,
        seed: [u8; 32],
    ) -> Result<Chain> {
        let mut stages = Vec::with_capacity(plugins.len());
        let mut schema = Arc::clone(input_schema);
        for (i, (p, config)) in plugins.iter().enumerate() {
            let det = Determinism { wall_clock_secs: 0, seed: stage_seed(seed, i, p) };
            let state = states.and_then(|s| s.get(i)).map(|v| v.as_slice());
            let t = p.open(config, &schema, state, &det)?;
            schema = Arc::clone(t.output_schema());
            stages.push(t);
        }
        Ok(Chain { stages, input_schema: Arc::clone(input_schema) })
    }

    /// The schema of what the chain returns.
    pub fn output_schema(&self) -> &SchemaRef {
        self.stages.last().map(|t| t.output_schema()).unwrap_or(&self.input_schema)
    }

    /// Push one batch through every stage.
    pub fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        let mut batches = vec![batch];
        for t in &mut self.stages {
            let mut next = Vec::new();
            for b in &batches {
                next.extend(t.process(b)?);
            }
            batches = next;
        }
        Ok(batches)
    }

    /// Flush every stage in order; what stage i flushes still goes through stages i+1...
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        let mut carried: Vec<RecordBatch> = Vec::new();
        for t in &mut self.stages {
            let mut next = Vec::new();
            for b in &carried {
                next.extend(t.process(b)?);
            }
            next.extend(t.finish()?);
            carried = next;
        }
        Ok(carried)
    }

    /// Each stage's checkpoint (empty for stateless plugins).
    pub fn checkpoint(&mut self) -> Result<Vec<Vec<u8>>> {
        self.stages.iter_mut().map(|t| t.checkpoint()).collect()
    }

    /// Fuel used so far by each stage.
    pub fn fuel(&self) -> Vec<u64> {
        self.stages.iter().map(|t| t.fuel_used()).collect()
    }
}

fn stage_seed(seed: [u8; 32], index: usize, p: &Plugin) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(&seed);
    h.update(&(index as u64).to_le_bytes());
    h.update(p.sha256().as_bytes());
    *h.finalize().as_bytes()
}

/// A plugin as recorded in the run record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginRecord {
    /// Name, version, ABI, sha256 and size.
    #[serde(flatten)]
    pub info: PluginInfo,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// BLAKE3 of the canonical config.
    pub config_digest: String,
    /// The config itself.
    pub config: Vec<(String, String)>,
}

/// An input file as recorded in the run record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InputRecord {
    /// Path as given.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Format it was read as.
    pub format: String,
}

/// One committed output part.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PartRecord {
    /// Chunk index.
    pub chunk: u64,
    /// Path relative to the output directory.
    pub file: String,
    /// First input row of the chunk (0-based) and number of input rows.
    pub input_rows: [u64; 2],
    /// Rows written.
    pub rows_out: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// BLAKE3 of the file.
    pub digest: String,
    /// Fuel used by each plugin on this chunk.
    pub fuel: Vec<u64>,
}

/// The run record written to `OUT/_sluice/manifest.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Record format version.
    pub manifest_version: u32,
    /// sluice version that wrote it.
    pub host_version: String,
    /// Engine settings.
    pub engine: EngineSettings,
    /// The plugin chain.
    pub plugins: Vec<PluginRecord>,
    /// Inputs.
    pub inputs: Vec<InputRecord>,
    /// Rows per chunk.
    pub chunk_rows: u64,
    /// Output format (`parquet` or `ipc`).
    pub format: String,
    /// Output compression setting.
    pub compression: String,
    /// Committed parts in order.
    pub parts: Vec<PartRecord>,
    /// Total rows read.
    pub rows_in: u64,
    /// Total rows written.
    pub rows_out: u64,
    /// `ok` (the manifest is only written for completed runs in this version).
    pub status: String,
    /// Wall time of the run in milliseconds.
    pub elapsed_ms: u64,
}

/// What a finished run reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// `ok`.
    pub status: String,
    /// The output directory.
    pub output: PathBuf,
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Part files written.
    pub parts: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Execute a run end to end.
///
/// # Errors
/// Any [`Error`]; on failure no `_SUCCESS` is written and the temporary file of the
/// chunk in flight is removed.
pub fn run(rt: &Runtime, spec: &RunSpec) -> Result<RunSummary> {
    let start = Instant::now();
    if spec.chunk_rows == 0 {
        return Err(Error::usage("--chunk-rows must be at least 1"));
    }
    let plugins: Vec<(Plugin, Vec<(String, String)>)> = spec
        .plugins
        .iter()
        .map(|p| Ok((rt.load_plugin(&p.path)?, p.config.clone())))
        .collect::<Result<_>>()?;
    let source = Source::open(&spec.inputs, &spec.source)?;
    let input_schema = source.schema();
    let mut chain = Chain::open(&plugins, &input_schema, None, [0u8; 32])?;
    let out_schema = Arc::clone(chain.output_schema());
    let out = OutputDir::prepare(&spec.output, spec.overwrite)?;
    let inputs: Vec<InputRecord> = source
        .files()
        .iter()
        .map(|f| InputRecord { path: f.path.clone(), size: f.size, format: f.format.to_string() })
        .collect();

    // Decoding runs on its own thread so it overlaps the transform and the encoding.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<RecordBatch>>(4);
    let reader = std::thread::spawn(move || {
        for b in source {
            let stop = b.is_err();
            if tx.send(b).is_err() || stop {
                break;
            }
        }
    });
    let result = run_chunks(&mut chain, rx.into_iter(), spec, &out, &out_schema);
    drop(reader);
    let (parts, rows_in) = match result {
        Ok(x) => x,
        Err(e) => {
            out.cleanup_temp();
            return Err(e);
        }
    };
    let rows_out = parts.iter().map(|p| p.rows_out).sum();
    let bytes_out = parts.iter().map(|p| p.bytes).sum();
    let elapsed_ms = start.elapsed().as_millis() as u64;
    let manifest = Manifest {
        manifest_version: 1,
        host_version: env!("CARGO_PKG_VERSION").to_string(),
        engine: rt.settings(),
        plugins: plugins
            .iter()
            .map(|(p, c)| PluginRecord {
                info: p.info().clone(),
                path: p.path().to_path_buf(),
                config_digest: digest::config_digest(c),
                config: c.clone(),
            })
            .collect(),
        inputs,
        chunk_rows: spec.chunk_rows as u64,
        format: spec.format.to_string(),
        compression: spec.writer.compression.clone(),
        rows_in,
        rows_out,
        status: "ok".into(),
        elapsed_ms,
        parts,
    };
    out.publish(&manifest)?;
    Ok(RunSummary {
        status: "ok".into(),
        output: spec.output.clone(),
        rows_in,
        rows_out,
        parts: manifest.parts.len() as u64,
        bytes_out,
        elapsed_ms,
    })
}

fn run_chunks(
    chain: &mut Chain,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    spec: &RunSpec,
    out: &OutputDir,
    out_schema: &SchemaRef,
) -> Result<(Vec<PartRecord>, u64)> {
    let mut batches = batches.peekable();
    let mut parts = Vec::new();
    let mut rows_in: u64 = 0;
    let mut pending: Option<RecordBatch> = None;
    let mut chunk: u64 = 0;
    loop {
        let first_row = rows_in;
        let mut part = out.begin_part(chunk, out_schema, spec.format, &spec.writer)?;
        let fuel_before = chain.fuel();
        let mut in_chunk = 0usize;
        // Fill this chunk with exactly `chunk_rows` input rows (fewer only at the end).
        while in_chunk < spec.chunk_rows {
            let b = match pending.take() {
                Some(b) => b,
                None => match batches.next() {
                    Some(b) => b?,
                    None => break,
                },
            };
            let room = spec.chunk_rows - in_chunk;
            let b = if b.num_rows() > room {
                pending = Some(b.slice(room, b.num_rows() - room));
                b.slice(0, room)
            } else {
                b
            };
            in_chunk += b.num_rows();
            for o in chain.process(b)? {
                part.write(&o)?;
            }
        }
        rows_in += in_chunk as u64;
        let last = pending.is_none() && batches.peek().is_none();
        if last {
            for o in chain.finish()? {
                part.write(&o)?;
            }
        }
        let fuel: Vec<u64> = chain.fuel().iter().zip(&fuel_before).map(|(a, b)| a - b).collect();
        parts.push(part.commit([first_row, in_chunk as u64], fuel)?);
        chunk += 1;
        if last {
            break;
        }
    }
    Ok((parts, rows_in))
}

/// The output directory layout: `data/part-NNNNNN.<ext>`, `_sluice/manifest.json`, `_SUCCESS`.
pub struct OutputDir {
    root: PathBuf,
}

impl OutputDir {
    /// Create (or, with `overwrite`, clear) the output directory.
    pub fn prepare(root: &Path, overwrite: bool) -> Result<OutputDir> {
        if root.exists() {
            if !root.is_dir() {
                return Err(Error::usage(format!("output `{}` exists and is not a directory", root.display())));
            }
            let non_empty = std::fs::read_dir(root).map_err(|e| Error::io("list", root, e))?.next().is_some();
            if non_empty && !overwrite {
                return Err(Error::usage(format!(
                    "output `{}` already holds files; choose another --output or pass --overwrite",
                    root.display()
                )));
            }
            if non_empty {
                for sub in ["data", "_sluice"] {
                    let p = root.join(sub);
                    if p.exists() {
                        std::fs::remove_dir_all(&p).map_err(|e| Error::io("remove", &p, e))?;
                    }
                }
                let s = root.join("_SUCCESS");
                if s.exists() {
                    std::fs::remove_file(&s).map_err(|e| Error::io("remove", &s, e))?;
                }
            }
        }
        for sub in ["data", "_sluice"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| Error::io("create directory", &p, e))?;
        }
        Ok(OutputDir { root: root.to_path_buf() })
    }

    fn begin_part(&self, chunk: u64, schema: &SchemaRef, format: OutputFormat, writer: &WriterOptions) -> Result<PartWriter> {
        let name = format!("part-{chunk:06}.{}", format.extension());
        let tmp = self.root.join("data").join(format!(".{name}.tmp"));
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        let sink = sink::create_sink(file, &tmp, Arc::clone(schema), format, writer)?;
        Ok(PartWriter { sink: Some(sink), tmp, dir: self.root.join("data"), name, chunk, rows: 0 })
    }

    fn cleanup_temp(&self) {
        if let Ok(rd) = std::fs::read_dir(self.root.join("data")) {
            for e in rd.flatten() {
                let n = e.file_name();
                if n.to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    fn publish(&self, manifest: &Manifest) -> Result<()> {
        let json = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
        let path = self.root.join("_sluice").join("manifest.json");
        write_atomic(&path, &json)?;
        write_atomic(&self.root.join("_SUCCESS"), b"")?;
        Ok(())
    }
}

struct PartWriter {
    sink: Option<Box<dyn sink::BatchSink>>,
    tmp: PathBuf,
    dir: PathBuf,
    name: String,
    chunk: u64,
    rows: u64,
}

impl PartWriter {
    fn write(&mut self, b: &RecordBatch) -> Result<()> {
        self.rows += b.num_rows() as u64;
        self.sink.as_mut().expect("open sink").write(b)
    }

    /// Finish (fsync), rename into place, fsync the directory.
    fn commit(mut self, input_rows: [u64; 2], fuel: Vec<u64>) -> Result<PartRecord> {
        let stats = self.sink.take().expect("open sink").finish()?;
        let dest = self.dir.join(&self.name);
        std::fs::rename(&self.tmp, &dest).map_err(|e| Error::io("rename into", &dest, e))?;
        sync_dir(&self.dir)?;
        Ok(PartRecord {
            chunk: self.chunk,
            file: format!("data/{}", self.name),
            input_rows,
            rows_out: self.rows,
            bytes: stats.bytes,
            digest: digest::blake3_file(&dest)?,
            fuel,
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

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("path has a parent");
    let tmp = dir.join(format!(".{}.tmp", path.file_name().expect("file name").to_string_lossy()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    d.sync_all().map_err(|e| Error::io("fsync directory", dir, e))
}
