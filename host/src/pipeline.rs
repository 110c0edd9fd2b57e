//! A chain of plugins and the run loop: read → transform → write, chunk by chunk.
//!
//! Input rows are cut into chunks of `chunk_rows` rows, counted from the start of the input
//! (so boundaries depend only on the input and the setting). Each chunk is committed with
//! the protocol in [`crate::outdir`] and recorded in the journal; a rerun of the same job
//! resumes after the last committed chunk, and a rerun of a finished job is a no-op.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::contract::{Applied, InputContract};
pub use crate::digest::InputDigest;
use crate::digest::{self, DataDigest, InputRows};
use crate::engine::{EngineSettings, Runtime};
use crate::error::{Error, Result};
use crate::fault;
use crate::journal::{ChunkEntry, Journal};
use crate::outdir::{self, Existing, FinishedPart, OutputDir};
use crate::plugin::{Plugin, PluginInfo, Transformer};
use crate::privacy::Classification;
use crate::quality::{CheckResult, CheckSpec, Gates, Severity};
use crate::sandbox::Determinism;
use crate::sink::{OutputFormat, WriterOptions};
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
    /// Expected `sha256:<hex>` of the file; a mismatch is refused before compiling.
    pub sha256: Option<String>,
    /// Config keys whose values are secrets (from the environment): never recorded or logged.
    pub secret_keys: Vec<String>,
    /// Columns the spec declares this plugin passes through unchanged (`*`: all it keeps
    /// by name and type): lineage only, never part of the action key.
    pub keeps: Vec<String>,
}

impl PluginSpec {
    /// A plugin with a config and no pin or secrets.
    pub fn new(path: impl Into<PathBuf>, config: Vec<(String, String)>) -> Self {
        PluginSpec {
            path: path.into(),
            config,
            sha256: None,
            secret_keys: Vec::new(),
            keeps: Vec::new(),
        }
    }

    /// The config as recorded: secret values replaced by `<secret>`.
    pub fn redacted_config(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if self.secret_keys.contains(k) {
                        "<secret>".to_string()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect()
    }
}

/// Who ran this and for what: recorded, never part of the action key.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RunContext {
    /// The partition key value (`--partition`).
    pub partition: Option<String>,
    /// The run's logical date, when the partition is a date or the scheduler gave one.
    pub logical_date: Option<String>,
    /// The scheduler's run id (`--run-id`).
    pub run_id: Option<String>,
    /// The pipeline spec this run came from.
    pub pipeline: Option<PathBuf>,
}

/// A link from a reprocessed run to the run it reprocessed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ParentLink {
    /// The parent's output directory.
    pub output: PathBuf,
    /// The parent's action key.
    pub action_key: String,
    /// The parent's root digest.
    pub root_digest: String,
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
    /// What each chunk's `input_digest` records.
    pub input_digest: InputDigest,
    /// Replace an existing output directory.
    pub overwrite: bool,
    /// Re-run even if the same job already finished (replaces it like `overwrite`).
    pub force: bool,
    /// Scheduler context, recorded in the run record.
    pub context: RunContext,
    /// The run this one reprocesses, if any.
    pub parent: Option<ParentLink>,
    /// Quality gates evaluated over the whole output before it is published.
    pub checks: Vec<CheckSpec>,
    /// Worker threads for chunks; `None`: `SLUICE_THREADS`, else the number of CPUs. Never
    /// changes the output.
    pub threads: Option<usize>,
    /// The input schema contract and what to do when the input drifts from it.
    pub input_contract: Option<InputContract>,
    /// Column sensitivity and retention, written into the output's field metadata.
    pub classification: Option<Classification>,
    /// The pipeline's name (the spec's `name`): the lineage job name. Not recorded and not
    /// in the action key (renaming a pipeline changes no output byte).
    pub name: Option<String>,
}

impl RunSpec {
    /// A spec with default reader/writer settings and no plugins.
    pub fn new(inputs: Vec<PathBuf>, output: PathBuf) -> Self {
        RunSpec {
            inputs,
            source: SourceOptions::default(),
            plugins: Vec::new(),
            output,
            format: OutputFormat::Parquet,
            writer: WriterOptions::default(),
            chunk_rows: DEFAULT_CHUNK_ROWS,
            input_digest: InputDigest::default(),
            overwrite: false,
            force: false,
            context: RunContext::default(),
            parent: None,
            checks: Vec::new(),
            threads: None,
            input_contract: None,
            classification: None,
            name: None,
        }
    }
}

/// What the run record keeps of a [`RunSpec`], enough to re-execute it (`sluice replay`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RecordedSpec {
    /// Input paths as given.
    pub inputs: Vec<PathBuf>,
    /// Forced input format, if any.
    pub input_format: Option<String>,
    /// Rows per input batch.
    pub batch_rows: usize,
    /// CSV header row.
    pub csv_header: bool,
    /// CSV delimiter byte.
    pub csv_delimiter: u8,
    /// Rows read to infer a CSV/NDJSON schema.
    pub infer_rows: usize,
    /// Plugins: path, pin, config (secrets redacted) and secret keys.
    pub plugins: Vec<RecordedPlugin>,
    /// Output format.
    pub format: String,
    /// Writer settings.
    pub writer: WriterOptions,
    /// Rows per chunk.
    pub chunk_rows: usize,
    /// What each chunk's `input_digest` records (records from before the choice existed
    /// hold data digests).
    #[serde(default = "InputDigest::before_choice")]
    pub input_digest: InputDigest,
    /// Quality gates (part of the action key, so a replay judges the output the same way).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// The input schema contract and its policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_contract: Option<InputContract>,
    /// Column classification and masking declarations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
}

/// A plugin of a [`RecordedSpec`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RecordedPlugin {
    /// Path it was loaded from.
    pub path: PathBuf,
    /// `sha256:<hex>` of its bytes.
    pub sha256: String,
    /// Config with secret values redacted.
    pub config: Vec<(String, String)>,
    /// Which config keys are secrets (their values must come from the environment again).
    pub secret_keys: Vec<String>,
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
            let det = Determinism {
                wall_clock_secs: 0,
                seed: stage_seed(seed, i, p),
            };
            let state = states.and_then(|s| s.get(i)).map(|v| v.as_slice());
            let t = p.open(config, &schema, state, &det)?;
            schema = Arc::clone(t.output_schema());
            stages.push(t);
        }
        Ok(Chain {
            stages,
            input_schema: Arc::clone(input_schema),
        })
    }

    /// The schema the chain was opened for.
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    /// The schema of what the chain returns.
    pub fn output_schema(&self) -> &SchemaRef {
        self.stages
            .last()
            .map(|t| t.output_schema())
            .unwrap_or(&self.input_schema)
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

    /// Each stage's column plan (ABI 1.1), in order; `None` for a whole-batch stage.
    pub fn column_plans(&self) -> Vec<Option<crate::columns::ColumnPlan>> {
        self.stages.iter().map(|t| t.column_plan().cloned()).collect()
    }

    /// For each output column, the input column whose arrays it always is (`Some(j)`), when
    /// every stage has a column plan that passes it through and no stage selects rows: then
    /// each input batch gives exactly one output batch holding the very same arrays there
    /// (the host shares them, see [`crate::columns::ColumnPlan::assemble`]), so the output
    /// digest of that column equals the input digest's.
    pub fn shared_columns(&self) -> Vec<Option<usize>> {
        let width = self.output_schema().fields().len();
        let mut map: Vec<Option<usize>> = (0..self.input_schema.fields().len()).map(Some).collect();
        for t in &self.stages {
            let Some(plan) = t.column_plan().filter(|p| !p.selects) else {
                return vec![None; width];
            };
            map = plan
                .output
                .iter()
                .map(|src| match *src {
                    crate::columns::Source::Input(i) => map.get(i).copied().flatten(),
                    crate::columns::Source::Computed => None,
                })
                .collect();
        }
        map
    }

    /// Each stage's output schema, in order.
    pub fn stage_schemas(&self) -> Vec<SchemaRef> {
        self.stages.iter().map(|t| Arc::clone(t.output_schema())).collect()
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

impl PluginRecord {
    /// The record of `plugin` run with `spec`'s config (secrets redacted, digest over the
    /// redacted config so records and keys never depend on a secret's value).
    pub fn new(plugin: &Plugin, spec: &PluginSpec) -> Self {
        let config = spec.redacted_config();
        PluginRecord {
            info: plugin.info().clone(),
            path: plugin.path().to_path_buf(),
            config_digest: digest::config_digest(&config),
            config,
        }
    }
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
    /// BLAKE3 of the file's bytes.
    pub digest: String,
}

/// The run record written to `OUT/_sluice/manifest.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Record format version.
    pub manifest_version: u32,
    /// Digest of everything that determines the output (and nothing else).
    pub action_key: String,
    /// sluice version that wrote it.
    pub host_version: String,
    /// Engine settings.
    pub engine: EngineSettings,
    /// The plugin chain.
    pub plugins: Vec<PluginRecord>,
    /// Inputs.
    pub inputs: Vec<InputRecord>,
    /// Everything needed to re-execute the run.
    pub spec: RecordedSpec,
    /// Scheduler context (partition, logical date, run id).
    pub context: RunContext,
    /// The run this one reprocessed, if any.
    pub parent: Option<ParentLink>,
    /// Fingerprint of the input schema (`name:type:nullable;…`).
    pub input_schema: String,
    /// BLAKE3 of the input schema fingerprint.
    pub input_schema_digest: String,
    /// Fingerprint of the output schema.
    pub output_schema: String,
    /// BLAKE3 of the output schema fingerprint.
    pub output_schema_digest: String,
    /// Rows per chunk.
    pub chunk_rows: u64,
    /// Rows per input batch.
    pub batch_rows: u64,
    /// Output format (`parquet` or `ipc`).
    pub format: String,
    /// Output writer settings.
    pub writer: WriterOptions,
    /// The journal of committed chunks, in order.
    pub chunks: Vec<ChunkEntry>,
    /// BLAKE3 over the chunks' data digests: the output's data version.
    pub root_digest: String,
    /// Digest of the journal's last line.
    pub journal_head: String,
    /// Total rows read.
    pub rows_in: u64,
    /// Total rows written.
    pub rows_out: u64,
    /// `ok`, or `failed_quality` (then `_SUCCESS` is absent and nothing is published).
    pub status: String,
    /// Wall time of the run (of its last attempt, when resumed) in milliseconds.
    pub elapsed_ms: u64,
    /// Each quality gate's verdict and observed value (absent when the run had none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// The input schema contract: file, policy, its schema digest and the drift accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_contract: Option<serde_json::Value>,
    /// Each classified output column's sensitivity, retention and masking plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<serde_json::Value>,
}

/// What a finished run reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// `ok`, or `already_complete` when the same job had already finished.
    pub status: String,
    /// The output directory.
    pub output: PathBuf,
    /// The job's action key.
    pub action_key: String,
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Chunks (part files) in the output.
    pub chunks: u64,
    /// Chunks found already committed and skipped (resume).
    pub chunks_resumed: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// The output's data version.
    pub root_digest: String,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Each quality gate's verdict (absent when the run had none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
}

/// What a run knows once its chain is open, just before the first chunk: what lineage
/// reports in its START event.
pub struct RunFacts<'a> {
    /// The job's action key.
    pub action_key: &'a str,
    /// The input files with their digests.
    pub inputs: &'a [InputRecord],
    /// The schema of the input files.
    pub source_schema: &'a SchemaRef,
    /// The schema the chain reads (the input contract may have dropped columns).
    pub input_schema: &'a SchemaRef,
    /// Each plugin stage's declared output schema, in order.
    pub stage_schemas: &'a [SchemaRef],
    /// The output schema (with classification metadata).
    pub output_schema: &'a SchemaRef,
    /// The plugins, in order.
    pub plugins: &'a [LoadedPlugin],
    /// Per plugin stage, the columns the spec declares it masks.
    pub masks: &'a [Vec<String>],
    /// Per plugin stage, its column plan (ABI 1.1), which says which columns it passes
    /// through unchanged.
    pub plans: &'a [Option<crate::columns::ColumnPlan>],
}

/// Told about a run's progress; lineage implements it. The run never depends on it.
pub trait RunObserver {
    /// The chain is open and nothing has been written by this attempt yet.
    fn started(&mut self, _facts: &RunFacts<'_>) {}
    /// The run record is final: about to be published, or the run failed a gate.
    fn recorded(&mut self, _manifest: &Manifest) {}
}

/// An observer that ignores everything.
pub struct NoObserver;

impl RunObserver for NoObserver {}

/// What the action key covers: everything that determines the output bytes.
#[derive(serde::Serialize)]
struct ActionKeyInput<'a> {
    key_version: u32,
    /// Not an output byte, but what the journal's `input_digest` means: a journal (and a
    /// record to replay) belongs to one choice.
    input_digest: InputDigest,
    host_version: &'a str,
    inputs: Vec<(&'a str, &'a str)>,
    source: String,
    plugins: Vec<(&'a str, String)>,
    chunk_rows: usize,
    format: String,
    writer: &'a WriterOptions,
    engine: EngineSettings,
    /// Digest of the quality gates, when there are any: the same output under other gates
    /// is another job's result (a finished run is not "already complete" for new gates).
    /// Not in the job key, so a run that failed a gate resumes and is re-judged when the
    /// gate is changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<String>,
    /// The input contract's policy and schema digest: `ignore` drops new input columns, so
    /// the same input can give other output under another contract.
    #[serde(skip_serializing_if = "Option::is_none")]
    input_contract: Option<(String, String)>,
    /// Digest of the classification: it is written into the output files' metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    classification: Option<String>,
}

/// Execute a run end to end: fresh, resumed, or a no-op when already complete.
///
/// # Errors
/// Any [`Error`]; on failure no `_SUCCESS` is written, committed chunks stay committed
/// (a rerun resumes after them) and the temporary file of the chunk in flight is removed.
pub fn run(rt: &Runtime, spec: &RunSpec) -> Result<RunSummary> {
    run_observed(rt, spec, &mut NoObserver)
}

/// [`run`], telling `observer` when the run starts (not for a job already complete, which
/// does no work) and when its record is final.
///
/// # Errors
/// As [`run`].
pub fn run_observed(rt: &Runtime, spec: &RunSpec, observer: &mut dyn RunObserver) -> Result<RunSummary> {
    let start = Instant::now();
    if spec.chunk_rows == 0 {
        return Err(Error::usage("--chunk-rows must be at least 1"));
    }
    let plugins = load_chain(rt, spec)?;
    let mut source = Source::open(&spec.inputs, &spec.source)?;
    let source_schema = source.schema();
    let contract: Option<Applied> = spec
        .input_contract
        .as_ref()
        .map(|c| c.apply(&source.schema()))
        .transpose()?;
    let input_schema = match &contract {
        Some(a) => Arc::clone(&a.schema),
        None => source.schema(),
    };
    let projection = contract.as_ref().and_then(|a| a.projection.clone());
    tracing::debug!(context = ?spec.context, "run context");
    let inputs: Vec<InputRecord> = source
        .files()
        .iter()
        .map(|f| {
            Ok(InputRecord {
                path: f.path.clone(),
                size: f.size,
                format: f.format.to_string(),
                digest: digest::blake3_file(&f.path)?,
            })
        })
        .collect::<Result<_>>()?;
    // Secrets are digested as `<secret>`: their values must not be derivable from a record.
    let config_digests: Vec<String> = spec
        .plugins
        .iter()
        .map(|p| digest::config_digest(&p.redacted_config()))
        .collect();
    let mut key_input = ActionKeyInput {
        // 2: chunks' `input_digest` is chosen by `input_digest` (before, always `data`).
        key_version: 2,
        input_digest: spec.input_digest,
        host_version: env!("CARGO_PKG_VERSION"),
        inputs: inputs.iter().map(|i| (i.format.as_str(), i.digest.as_str())).collect(),
        source: format!("{:?}", spec.source),
        plugins: plugins
            .iter()
            .zip(&config_digests)
            .map(|((p, _), c)| (p.sha256(), c.clone()))
            .collect(),
        chunk_rows: spec.chunk_rows,
        format: spec.format.to_string(),
        writer: &spec.writer,
        engine: rt.settings(),
        checks: gates_digest(spec),
        input_contract: spec
            .input_contract
            .as_ref()
            .zip(contract.as_ref())
            .map(|(c, a)| (c.on_change.to_string(), a.digest.clone())),
        classification: spec
            .classification
            .as_ref()
            .map(|c| digest::blake3_bytes(&serde_json::to_vec(c).expect("classification serializes"))),
    };
    let action_key = digest::blake3_bytes(&serde_json::to_vec(&key_input).expect("key serializes"));
    // The key of the data alone (no gates): what the journal header records and what seeds
    // plugin randomness, so changing a gate never changes an output byte.
    key_input.checks = None;
    let data_key = digest::blake3_bytes(&serde_json::to_vec(&key_input).expect("key serializes"));
    key_input.inputs = Vec::new();
    let job_key = digest::blake3_bytes(&serde_json::to_vec(&key_input).expect("key serializes"));

    // Where to write: the output itself, or (for --overwrite) a staging sibling that
    // replaces it only once the new run has committed.
    finish_interrupted_swap(&spec.output)?;
    let (work, swap) = match outdir::inspect(&spec.output)? {
        Existing::Empty => (spec.output.clone(), false),
        Existing::Complete(Some(k)) if k == action_key && !spec.force => {
            return already_complete(&spec.output, start);
        }
        Existing::Unfinished(j)
            if j.header.job_key == job_key && !(spec.overwrite && j.header.action_key != data_key) =>
        {
            // The same job; if its input changed under a committed chunk, the per-chunk
            // input digests catch it below and name the chunk (with --overwrite, a changed
            // input starts over instead).
            drop(j);
            (spec.output.clone(), false)
        }
        other if spec.overwrite || spec.force => {
            drop(other);
            (staging_path(&spec.output, "new"), true)
        }
        Existing::Complete(_) => {
            return Err(Error::usage(format!(
                "output `{}` holds a finished run of a different job (other inputs, plugins or settings); choose another --output or pass --overwrite to replace it",
                spec.output.display()
            )));
        }
        Existing::Unfinished(_) => {
            return Err(Error::usage(format!(
                "output `{}` holds an unfinished run of a different job; rerun that job to finish it, or pass --overwrite to replace it",
                spec.output.display()
            )));
        }
        Existing::Foreign => {
            return Err(Error::usage(format!(
                "output `{}` already holds files that sluice did not write; choose another --output or pass --overwrite",
                spec.output.display()
            )));
        }
    };
    let (out, mut journal) = match outdir::inspect(&work)? {
        // A stale staging directory of the same job over other input is not resumed:
        // --overwrite asks for a fresh run.
        Existing::Unfinished(j) if j.header.job_key == job_key && !(swap && j.header.action_key != data_key) => {
            let out = OutputDir::at(&work);
            out.recover(&j)?;
            tracing::info!(chunks = j.chunks.len(), output = %work.display(), "resuming after the last committed chunk");
            (out, j)
        }
        Existing::Complete(Some(k)) if swap && k == action_key && !spec.force => {
            swap_into_place(&work, &spec.output)?;
            return already_complete(&spec.output, start);
        }
        Existing::Empty => OutputDir::create(&work, &data_key, &job_key)?,
        _ => {
            // Only a stale staging directory can get here: it is ours to replace.
            std::fs::remove_dir_all(&work).map_err(|e| Error::io("remove", &work, e))?;
            OutputDir::create(&work, &data_key, &job_key)?
        }
    };
    let resumed = journal.chunks.len() as u64;
    let states = out.load_state(&journal)?;
    let seed = *blake3::hash(data_key.as_bytes()).as_bytes();
    let input_rows =
        (spec.input_digest == InputDigest::Files).then(|| InputRows::new(inputs.iter().map(|i| i.digest.as_str())));
    // Files' digests are known before any row is read: a changed input is refused now, and
    // an unchanged one lets the resume skip the committed rows (below).
    if let (Some(ids), Some(c)) = (&input_rows, journal.chunks.first()) {
        let now = ids.chunk(c.input_rows);
        if now != c.input_digest {
            return Err(input_changed(c, c.input_rows, &now, true));
        }
    }
    let chain = Chain::open(&plugins, &input_schema, states.as_deref(), seed)?;
    let mut out_schema = Arc::clone(chain.output_schema());
    let mut classification_record = None;
    if let Some(c) = &spec.classification {
        let stages: Vec<(String, SchemaRef)> = plugins
            .iter()
            .zip(chain.stage_schemas())
            .map(|((p, _), s)| (p.info().name.clone(), s))
            .collect();
        let classified = c.apply(&out_schema, &stages)?;
        out_schema = classified.schema;
        classification_record = Some(classified.record);
    }
    let stateful = plugins.iter().any(|(p, _)| p.info().stateful);
    // Bind the gates to the output schema now, so a misnamed column stops the run before
    // any work rather than after it.
    let mut gates = Gates::prepare(&spec.checks, &out_schema, spec.context.logical_date.as_deref())?;
    let masks = spec
        .classification
        .as_ref()
        .map(|c| c.masks.clone())
        .unwrap_or_default();
    observer.started(&RunFacts {
        action_key: &action_key,
        inputs: &inputs,
        source_schema: &source_schema,
        input_schema: &input_schema,
        stage_schemas: &chain.stage_schemas(),
        output_schema: &out_schema,
        plugins: &plugins,
        masks: &masks,
        plans: &chain.column_plans(),
    });

    // Every chunk committed (a crash before publishing, or a failed gate): nothing to
    // transform, unless the input changed since, which re-reading it names by chunk.
    let all_committed = journal.chunks.last().is_some_and(|c| c.last) && journal.header.action_key == data_key;
    let progress = crate::progress::Progress::start();
    if !all_committed {
        // Under `--input-digest files` the committed chunks' input is known to be unchanged
        // (the files' digests matched above), so a resume need not read it again: skip the
        // Parquet row groups it lies in without decoding them.
        // Where dispatching starts. Under data digests every committed chunk is re-read and
        // re-digested, from the start; under file digests dispatching starts after them,
        // dropping the committed rows the source could not skip.
        let from = match &input_rows {
            Some(_) => {
                let rows: u64 = journal.chunks.iter().map(|c| c.input_rows[1]).sum();
                let skipped = if rows > 0 { source.skip_rows(rows)? } else { 0 };
                if skipped > 0 {
                    tracing::info!(
                        rows = skipped,
                        "resuming: skipped the committed rows' row groups without reading them"
                    );
                }
                Start {
                    chunk: resumed,
                    rows,
                    drop: rows - skipped.min(rows),
                }
            }
            None => Start::default(),
        };
        // Parquet inputs under file digests: chunks are cut by row number from the footers'
        // row counts, and every worker reads its own chunk (decode, transform, encode on
        // one thread). Otherwise one thread decodes and a dispatcher streams each chunk to a
        // worker, which leaves the second worker idle until the first chunk is handed out.
        // With one worker the streaming path is kept: its decoding thread overlaps the
        // worker, where a worker reading its own chunk would decode and transform in turn.
        let workers = if stateful {
            1
        } else {
            spec.threads.unwrap_or_else(worker_threads).max(1)
        };
        let seek = match (&input_rows, workers < 2) {
            (Some(_), false) => source.parquet_rows()?.map(|total| Seek {
                source: Mutex::new(source.reopen()),
                total,
                projection: projection.clone(),
            }),
            _ => None,
        };
        let (feed, reader) = if let Some(seek) = &seek {
            tracing::debug!(rows = seek.total, "workers read their own chunks");
            (Feed::Seek(seek), None)
        } else {
            // Decoding runs on its own thread so it overlaps the transform and the encoding.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<RecordBatch>>(4);
            let reader = std::thread::spawn(move || {
                for b in source {
                    let b = b.and_then(|b| project(b, projection.as_deref()));
                    let stop = b.is_err();
                    if tx.send(b).is_err() || stop {
                        break;
                    }
                }
            });
            (Feed::Stream(rx), Some(reader))
        };
        let ctx = ChunkCtx {
            spec,
            out: &out,
            input_schema: &input_schema,
            out_schema: &out_schema,
            relabel: spec.classification.is_some(),
            progress: &progress,
            stateful,
            plugins: &plugins,
            seed,
            input_rows: input_rows.as_ref(),
            start: from,
            workers,
        };
        let result = run_chunks(chain, feed, &ctx, &mut journal);
        drop(reader);
        progress.finish(None);
        if let Err(e) = result {
            out.cleanup_temp();
            // The failed attempt is recorded beside the journal (the manifest is only for
            // finished runs): what failed, how, after how long, how far it got.
            let attempt = serde_json::json!({
                "status": "failed",
                "action_key": action_key,
                "error": { "category": e.category(), "exit_code": e.exit_code() as u8, "message": e.to_string() },
                "chunks_committed": journal.chunks.len(),
                "elapsed_ms": start.elapsed().as_millis() as u64,
                "context": spec.context,
            });
            let path = out.root().join("_sluice").join("last_attempt.json");
            if let Err(w) = outdir::write_atomic(&path, &serde_json::to_vec_pretty(&attempt).expect("serializes")) {
                tracing::warn!("could not record the failed attempt: {w}");
            }
            return Err(e);
        }
    }

    let chunks = journal.chunks.clone();
    let rows_in = chunks.iter().map(|c| c.input_rows[1]).sum();
    let rows_out = chunks.iter().map(|c| c.rows_out).sum();
    let bytes_out = chunks.iter().map(|c| c.bytes).sum();
    let root_digest = root_digest(&chunks);
    // Gates see the committed parts, whichever attempt wrote them, so a resumed run is
    // judged on exactly the output it would publish.
    if gates.needs_data() {
        let files: Vec<PathBuf> = chunks.iter().map(|c| out.root().join(&c.file)).collect();
        gates.scan(&files)?;
    }
    let checks = gates.finish(rows_out);
    let failed = checks.iter().any(|c| c.failed() && c.severity == Severity::Error);
    for c in checks.iter().filter(|c| c.failed() && c.severity == Severity::Warn) {
        tracing::warn!(check = %c.name, observed = %c.observed, "quality gate (warn) failed: expected {}", c.expected);
    }
    let elapsed_ms = start.elapsed().as_millis() as u64;
    let manifest = Manifest {
        manifest_version: 1,
        action_key: action_key.clone(),
        host_version: env!("CARGO_PKG_VERSION").to_string(),
        engine: rt.settings(),
        plugins: plugins
            .iter()
            .zip(&spec.plugins)
            .map(|((p, _), ps)| PluginRecord::new(p, ps))
            .collect(),
        spec: record_spec(spec, &plugins),
        context: spec.context.clone(),
        parent: spec.parent.clone(),
        input_schema: digest::schema_fingerprint(&input_schema),
        input_schema_digest: digest::schema_digest(&input_schema),
        output_schema: digest::schema_fingerprint(&out_schema),
        output_schema_digest: digest::schema_digest(&out_schema),
        inputs,
        chunk_rows: spec.chunk_rows as u64,
        batch_rows: spec.source.batch_rows as u64,
        format: spec.format.to_string(),
        writer: spec.writer.clone(),
        journal_head: journal.head().to_string(),
        chunks,
        root_digest: root_digest.clone(),
        rows_in,
        rows_out,
        status: if failed { "failed_quality" } else { "ok" }.into(),
        elapsed_ms,
        checks: checks.clone(),
        classification: classification_record,
        input_contract: spec.input_contract.as_ref().zip(contract.as_ref()).map(|(c, a)| {
            serde_json::json!({
                "path": c.path,
                "on_schema_change": c.on_change,
                "schema_digest": a.digest,
                "created": a.created,
                "drift": a.drift,
            })
        }),
    };
    journal.close()?;
    observer.recorded(&manifest);
    if failed {
        // The record is kept (without `_SUCCESS`) so a scheduler or a person can see what
        // each gate observed; a rerun keeps the committed chunks and only re-judges them.
        let record = out.root().join("_sluice").join("manifest.json");
        outdir::write_atomic(
            &record,
            &serde_json::to_vec_pretty(&manifest).expect("manifest serializes"),
        )?;
        return Err(Error::Quality {
            message: format!(
                "quality gates failed; nothing was published (no `_SUCCESS` in `{}`):\n{}\nEach check's observed value is in `{}`. Fix the data or the gate and rerun: committed chunks are kept, so only the gates run again.",
                out.root().display(),
                crate::quality::report(&checks),
                record.display()
            ),
            checks: serde_json::to_value(&checks).expect("checks serialize"),
        });
    }
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    out.publish(&json, manifest.chunks.len() as u64)?;
    if swap {
        swap_into_place(&work, &spec.output)?;
    }
    Ok(RunSummary {
        status: "ok".into(),
        output: spec.output.clone(),
        action_key,
        rows_in,
        rows_out,
        chunks: manifest.chunks.len() as u64,
        chunks_resumed: resumed,
        bytes_out,
        root_digest,
        elapsed_ms,
        checks,
    })
}

/// Digest of the quality gates (and of the logical date, when a freshness gate depends on
/// it), or `None` without gates so runs without gates keep their keys.
fn gates_digest(spec: &RunSpec) -> Option<String> {
    if spec.checks.is_empty() {
        return None;
    }
    let fresh = spec.checks.iter().any(|c| matches!(c, CheckSpec::Freshness { .. }));
    let logical_date = if fresh {
        spec.context.logical_date.as_deref()
    } else {
        None
    };
    let json = serde_json::to_vec(&(&spec.checks, logical_date)).expect("checks serialize");
    Some(digest::blake3_bytes(&json))
}

fn record_spec(spec: &RunSpec, plugins: &[(Plugin, Vec<(String, String)>)]) -> RecordedSpec {
    RecordedSpec {
        inputs: spec.inputs.clone(),
        input_format: spec.source.format.map(|f| f.to_string()),
        batch_rows: spec.source.batch_rows,
        csv_header: spec.source.csv_header,
        csv_delimiter: spec.source.csv_delimiter,
        infer_rows: spec.source.infer_rows,
        plugins: spec
            .plugins
            .iter()
            .zip(plugins)
            .map(|(ps, (p, _))| RecordedPlugin {
                path: ps.path.clone(),
                sha256: p.sha256().to_string(),
                config: ps.redacted_config(),
                secret_keys: ps.secret_keys.clone(),
            })
            .collect(),
        format: spec.format.to_string(),
        writer: spec.writer.clone(),
        chunk_rows: spec.chunk_rows,
        input_digest: spec.input_digest,
        checks: spec.checks.clone(),
        input_contract: spec.input_contract.clone(),
        classification: spec.classification.clone(),
    }
}

/// A compiled plugin and the config it runs with.
pub type LoadedPlugin = (Plugin, Vec<(String, String)>);

/// Load the spec's plugins with their configs, each checked against its pin (bare hex or
/// `sha256:`-prefixed) on the very bytes that are compiled, before compiling them.
pub fn load_chain(rt: &Runtime, spec: &RunSpec) -> Result<Vec<LoadedPlugin>> {
    spec.plugins
        .iter()
        .map(|p| {
            let pin = p
                .sha256
                .as_deref()
                .map(|s| format!("sha256:{}", s.trim().trim_start_matches("sha256:")));
            Ok((rt.load_plugin_pinned(&p.path, pin.as_deref())?, p.config.clone()))
        })
        .collect()
}

/// BLAKE3 over the chunks' data digests, in order.
pub fn root_digest(chunks: &[ChunkEntry]) -> String {
    let mut h = blake3::Hasher::new();
    for c in chunks {
        h.update(c.data_digest.as_bytes());
        h.update(b"\n");
    }
    format!("blake3:{}", h.finalize().to_hex())
}

fn already_complete(root: &Path, start: Instant) -> Result<RunSummary> {
    let path = root.join("_sluice").join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::usage(format!(
            "run record `{}` is unreadable ({e}); remove the output or pass --overwrite",
            path.display()
        ))
    })?;
    tracing::info!(output = %root.display(), "already complete: the same job finished earlier; nothing to do");
    Ok(RunSummary {
        status: "already_complete".into(),
        output: root.to_path_buf(),
        action_key: m.action_key,
        rows_in: m.rows_in,
        rows_out: m.rows_out,
        chunks: m.chunks.len() as u64,
        chunks_resumed: m.chunks.len() as u64,
        bytes_out: m.chunks.iter().map(|c| c.bytes).sum(),
        root_digest: m.root_digest,
        elapsed_ms: start.elapsed().as_millis() as u64,
        checks: m.checks,
    })
}

fn staging_path(output: &Path, which: &str) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join(format!(".{name}.sluice-{which}"))
}

/// Replace `output` with the finished `staged` run: rename the old one aside, rename the
/// new one in, remove the old one. A crash in between is completed by the next run.
fn swap_into_place(staged: &Path, output: &Path) -> Result<()> {
    let old = staging_path(output, "old");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    if output.exists() {
        std::fs::rename(output, &old).map_err(|e| Error::io("move aside", output, e))?;
    }
    std::fs::rename(staged, output).map_err(|e| Error::io("move into place", output, e))?;
    outdir::sync_parent(output)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    Ok(())
}

fn finish_interrupted_swap(output: &Path) -> Result<()> {
    let old = staging_path(output, "old");
    if !old.exists() {
        return Ok(());
    }
    let new = staging_path(output, "new");
    if !output.exists() && new.join("_SUCCESS").exists() {
        std::fs::rename(&new, output).map_err(|e| Error::io("move into place", output, e))?;
        outdir::sync_parent(output)?;
    }
    if output.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    Ok(())
}

/// Worker threads for a run: `SLUICE_THREADS` if set to a positive number, else the CPUs.
///
/// Output bytes, digests and the journal do not depend on it (see [`run_chunks`]).
fn worker_threads() -> usize {
    std::env::var("SLUICE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

struct ChunkCtx<'a> {
    spec: &'a RunSpec,
    out: &'a OutputDir,
    input_schema: &'a SchemaRef,
    out_schema: &'a SchemaRef,
    /// Plugin output is re-labelled with `out_schema` (classification metadata) before writing.
    relabel: bool,
    /// The terminal progress line (a no-op off a terminal).
    progress: &'a crate::progress::Progress,
    stateful: bool,
    plugins: &'a [(Plugin, Vec<(String, String)>)],
    seed: [u8; 32],
    /// How chunks' `input_digest` is formed when it is not a data digest
    /// ([`InputDigest::Files`]); `None`: every input value is digested.
    input_rows: Option<&'a InputRows>,
    /// Where dispatching starts (after the committed chunks under [`InputDigest::Files`]).
    start: Start,
    /// Worker threads: 1 for a stateful chain (one instance carried across chunks).
    workers: usize,
}

/// Where the chunks' batches come from.
enum Feed<'a> {
    /// The decoding thread's batches, cut into chunks and streamed to workers.
    Stream(Receiver<Result<RecordBatch>>),
    /// Workers read their own chunks.
    Seek(&'a Seek),
}

/// Parquet input cut into chunks by row number: each worker reopens the source and reads
/// its chunk's rows itself, starting at the chunk's row group.
///
/// The batches are the ones the streaming path gives: row groups are read from their
/// first row in batches of the same size, and a batch across a chunk boundary is sliced at
/// it. So output bytes and digests do not depend on which path ran.
struct Seek {
    /// The source before its first row, reopened per chunk.
    source: Mutex<Source>,
    /// The input's rows, from the Parquet footers.
    total: u64,
    /// The columns the input contract keeps.
    projection: Option<Vec<usize>>,
}

/// `b` restricted to the columns the input contract keeps.
fn project(b: RecordBatch, projection: Option<&[usize]>) -> Result<RecordBatch> {
    match projection {
        Some(idx) => b
            .project(idx)
            .map_err(|e| Error::input(format!("cannot drop the columns the contract ignores: {e}"))),
        None => Ok(b),
    }
}

/// The rows of one chunk read by its worker: [`Msg`]s as the dispatcher would send them.
struct RangeReader<'a> {
    source: Source,
    /// Rows of the first batches before the chunk's first row (its row group starts earlier).
    skip: u64,
    /// Rows of the chunk still to read.
    left: u64,
    input_rows: [u64; 2],
    last: bool,
    total: u64,
    projection: Option<&'a [usize]>,
    ended: bool,
}

impl<'a> RangeReader<'a> {
    /// Position a reopened source at row `first`, without decoding the row groups before it.
    fn open(seek: &'a Seek, first: u64, rows: u64, last: bool) -> Result<Self> {
        let mut source = match seek.source.lock() {
            Ok(s) => s.reopen(),
            Err(p) => p.into_inner().reopen(),
        };
        let skipped = if first > 0 { source.skip_rows(first)? } else { 0 };
        Ok(RangeReader {
            source,
            skip: first - skipped.min(first),
            left: rows,
            input_rows: [first, rows],
            last,
            total: seek.total,
            projection: seek.projection.as_deref(),
            ended: false,
        })
    }

    /// The chunk's next batch, then its end.
    fn next(&mut self) -> Result<Option<Msg>> {
        loop {
            if self.left == 0 {
                if self.ended {
                    return Ok(None);
                }
                self.ended = true;
                return Ok(Some(Msg::End {
                    input_rows: self.input_rows,
                    last: self.last,
                }));
            }
            let b = match self.source.next() {
                Some(b) => b?,
                None => {
                    let at = self.input_rows[0] + self.input_rows[1] - self.left;
                    return Err(Error::input(format!(
                        "the input ended at row {at}, before the {} rows its Parquet footers declare; \
                         it was truncated or replaced during the run: rerun once it is complete",
                        self.total
                    )));
                }
            };
            let n = b.num_rows() as u64;
            if n <= self.skip {
                self.skip -= n;
                continue;
            }
            let from = self.skip;
            self.skip = 0;
            let take = (n - from).min(self.left);
            self.left -= take;
            let b = if from == 0 && take == n {
                b
            } else {
                b.slice(from as usize, take as usize)
            };
            return Ok(Some(Msg::Batch(project(b, self.projection)?)));
        }
    }
}

/// What the dispatcher streams to the worker of one chunk.
enum Msg {
    Batch(RecordBatch),
    /// The chunk is complete: its input row range and whether it is the input's last.
    End {
        input_rows: [u64; 2],
        last: bool,
    },
}

/// One chunk handed to a worker.
struct Job<'a> {
    chunk: u64,
    input: JobInput<'a>,
}

/// Where a chunk's batches come from.
enum JobInput<'a> {
    /// Streamed by the dispatcher, ending with [`Msg::End`].
    Stream(Receiver<Msg>),
    /// Read by the worker itself from `seek`: `rows` rows from row `first`.
    Rows {
        seek: &'a Seek,
        first: u64,
        rows: u64,
        last: bool,
    },
}

/// What a chunk produced, sent to the committer (the calling thread), which commits in order.
enum Outcome {
    /// A chunk committed by an earlier attempt, re-read to check the input did not change.
    Verified {
        input_rows: [u64; 2],
        input_digest: String,
        last: bool,
    },
    /// A chunk written to its durable temporary part, ready to be renamed and journaled.
    Written {
        input_rows: [u64; 2],
        input_digest: String,
        part: FinishedPart,
        states: Option<Vec<Vec<u8>>>,
        fuel: Vec<u64>,
        last: bool,
    },
}

/// Run the chunks: read → (transform → write) × workers → commit in order.
///
/// Threads: with [`Feed::Stream`], the caller's reader thread decodes input and a dispatcher
/// cuts it into chunks of `chunk_rows` rows and streams each chunk's batches to a free
/// worker; with [`Feed::Seek`] (Parquet under file digests), the dispatcher hands out row
/// ranges and each worker decodes its own chunk, so every worker starts at once (streamed,
/// the second waited until the first chunk had been handed out: a tenth of a run on two
/// cores) and no half-chunk queues hold decoded batches. Each worker digests the chunk's
/// input, pushes it through the chain, writes and fsyncs the chunk's temporary part; the
/// calling thread commits finished parts strictly in chunk order (rename, fsync, state,
/// journal line), so the commit protocol and the journal are the serial ones.
///
/// A stateless chain gets a fresh instance of every plugin for each chunk (opened, fed the
/// chunk, finished), so a chunk's output and fuel depend only on the chunk, never on which
/// worker ran it or on how many there are: output bytes, digests and journal lines are the
/// same for any thread count. A stateful chain is one instance carried across chunks, run by
/// a single worker (still overlapping decoding and committing).
fn run_chunks(chain: Chain, feed: Feed<'_>, ctx: &ChunkCtx<'_>, journal: &mut Journal) -> Result<()> {
    let workers = ctx.workers;
    // A worker may queue up to half a chunk of batches: enough for the dispatcher to move
    // on to the next chunk (and worker) while this one finishes, and memory stays bounded
    // by about one chunk of decoded input whatever the input size.
    let chunk_batches = ctx.spec.chunk_rows.div_ceil(ctx.spec.source.batch_rows.max(1));
    let queue = (chunk_batches / 2 + 1).clamp(2, 64);
    let resumed = journal.chunks.len() as u64;
    let start = ctx.start;
    let stop = AtomicBool::new(false);
    let (job_tx, job_rx) = sync_channel::<Job>(0);
    // Shared by the workers only: once the last one has stopped, the dispatcher's next
    // `send` fails instead of waiting for a worker that will never come.
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (out_tx, out_rx) = channel::<(u64, Result<Outcome>)>();
    let in_schema = Arc::clone(chain.input_schema());
    let mut stateful_chain = ctx.stateful.then_some(chain);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let out_tx = out_tx.clone();
            let (job_rx, stop) = (Arc::clone(&job_rx), &stop);
            let mut carried = stateful_chain.take();
            scope.spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => match rx.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let chunk = job.chunk;
                    match work_chunk(job, carried.as_mut(), ctx, stop) {
                        Ok(Some(outcome)) => {
                            let _ = out_tx.send((chunk, Ok(outcome)));
                        }
                        // The dispatcher stopped mid-chunk; it reports why.
                        Ok(None) => return,
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            let _ = out_tx.send((chunk, Err(e)));
                            return;
                        }
                    }
                }
            });
        }
        let dispatch_tx = out_tx.clone();
        drop(out_tx);
        drop(job_rx);
        let stop = &stop;
        let in_schema = &in_schema;
        scope.spawn(move || match feed {
            Feed::Stream(batches) => dispatch(
                batches,
                job_tx,
                dispatch_tx,
                in_schema,
                ctx.spec.chunk_rows,
                resumed,
                queue,
                stop,
                start,
            ),
            Feed::Seek(seek) => dispatch_ranges(job_tx, dispatch_tx, seek, ctx.spec.chunk_rows, stop, start),
        });
        let r = commit_in_order(out_rx, ctx, journal, start.chunk);
        if r.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        r
    })
}

/// Where dispatching starts: the first chunk, its first input row, and how many rows of
/// the source's batches to drop before it (committed rows the source did not skip).
#[derive(Debug, Clone, Copy, Default)]
struct Start {
    chunk: u64,
    rows: u64,
    drop: u64,
}

/// Cut the input into chunks and stream each to a worker, from `start` on (under data input
/// digests, chunks committed by an earlier attempt are only digested here, to check the
/// input did not change).
#[allow(clippy::too_many_arguments)]
fn dispatch(
    batches: Receiver<Result<RecordBatch>>,
    jobs: SyncSender<Job>,
    outcomes: Sender<(u64, Result<Outcome>)>,
    schema: &SchemaRef,
    chunk_rows: usize,
    resumed: u64,
    queue: usize,
    stop: &AtomicBool,
    start: Start,
) {
    let mut batches = batches.into_iter().peekable();
    let mut pending: Option<RecordBatch> = None;
    let mut rows_in: u64 = start.rows;
    let mut chunk: u64 = start.chunk;
    let mut drop = start.drop;
    while drop > 0 {
        match batches.next() {
            Some(Ok(b)) if b.num_rows() as u64 <= drop => drop -= b.num_rows() as u64,
            Some(Ok(b)) => {
                let d = drop as usize;
                pending = Some(b.slice(d, b.num_rows() - d));
                drop = 0;
            }
            Some(Err(e)) => {
                let _ = outcomes.send((chunk, Err(e)));
                return;
            }
            None => {
                let e =
                    Error::input("the input ended inside its committed chunks; rerun with --overwrite to start over");
                let _ = outcomes.send((chunk, Err(e)));
                return;
            }
        }
    }
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let verify = chunk < resumed;
        // Only under data input digests: under file digests dispatching starts after the
        // committed chunks.
        let mut input_digest = verify.then(|| DataDigest::new(schema));
        let mut to_worker = None;
        if !verify {
            let (tx, rx) = sync_channel::<Msg>(queue);
            if jobs
                .send(Job {
                    chunk,
                    input: JobInput::Stream(rx),
                })
                .is_err()
            {
                return;
            }
            to_worker = Some(tx);
        }
        let mut in_chunk = 0usize;
        // Fill this chunk with exactly `chunk_rows` input rows (fewer only at the end).
        while in_chunk < chunk_rows {
            let b = match pending.take() {
                Some(b) => b,
                None => match batches.next() {
                    Some(Ok(b)) => b,
                    Some(Err(e)) => {
                        let _ = outcomes.send((chunk, Err(e)));
                        return;
                    }
                    None => break,
                },
            };
            let room = chunk_rows - in_chunk;
            let b = if b.num_rows() > room {
                pending = Some(b.slice(room, b.num_rows() - room));
                b.slice(0, room)
            } else {
                b
            };
            in_chunk += b.num_rows();
            if let Some(d) = input_digest.as_mut() {
                d.update(&b);
            }
            if let Some(tx) = &to_worker
                && (tx.send(Msg::Batch(b)).is_err() || stop.load(Ordering::Relaxed))
            {
                return;
            }
        }
        let input_rows = [rows_in, in_chunk as u64];
        rows_in += in_chunk as u64;
        let last = pending.is_none() && batches.peek().is_none();
        if let Some(tx) = to_worker {
            if tx.send(Msg::End { input_rows, last }).is_err() {
                return;
            }
        } else {
            let Some(d) = input_digest else {
                unreachable!("a chunk is either verified or sent to a worker")
            };
            let input_digest = d.finish();
            let outcome = Outcome::Verified {
                input_rows,
                input_digest,
                last,
            };
            if outcomes.send((chunk, Ok(outcome))).is_err() {
                return;
            }
        }
        chunk += 1;
        if last {
            return;
        }
    }
}

/// Hand out the chunks of an input of `total` rows by row range, from `start` on, to
/// workers that read them themselves ([`Seek`]). Every chunk holds `chunk_rows` rows but the
/// last; an empty input is one empty chunk, as the streaming path has it.
fn dispatch_ranges<'a>(
    jobs: SyncSender<Job<'a>>,
    outcomes: Sender<(u64, Result<Outcome>)>,
    seek: &'a Seek,
    chunk_rows: usize,
    stop: &AtomicBool,
    start: Start,
) {
    let (total, chunk_rows) = (seek.total, chunk_rows as u64);
    let chunks = total.div_ceil(chunk_rows).max(1);
    if start.chunk >= chunks && start.chunk > 0 {
        let e = Error::input("the input ended inside its committed chunks; rerun with --overwrite to start over");
        let _ = outcomes.send((start.chunk, Err(e)));
        return;
    }
    for chunk in start.chunk..chunks {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let first = chunk * chunk_rows;
        let input = JobInput::Rows {
            seek,
            first,
            rows: chunk_rows.min(total - first),
            last: chunk + 1 == chunks,
        };
        if jobs.send(Job { chunk, input }).is_err() {
            return;
        }
    }
}

/// Transform and write one chunk into its temporary part. `None` if the dispatcher stopped
/// before the chunk was complete (it reports the reason itself).
fn work_chunk(job: Job, carried: Option<&mut Chain>, ctx: &ChunkCtx<'_>, stop: &AtomicBool) -> Result<Option<Outcome>> {
    let mut fresh;
    let chain = match carried {
        Some(c) => c,
        None => {
            fresh = Chain::open(ctx.plugins, ctx.input_schema, None, ctx.seed)?;
            &mut fresh
        }
    };
    let spec = ctx.spec;
    let mut part = ctx
        .out
        .begin_part(job.chunk, ctx.out_schema, spec.format, &spec.writer)?;
    let fuel_before = chain.fuel();
    let mut input_digest = DataDigest::new(chain.input_schema());
    // Columns passed through unchanged are digested once, as input (a third of a passthrough
    // run's CPU time went to hashing the same arrays twice).
    let shared = chain.shared_columns();
    for (k, _) in shared.iter().enumerate().filter(|(_, j)| j.is_some()) {
        part.digest_mut().defer(k);
    }
    if ctx.input_rows.is_some() {
        // The input digest names rows, not values: hash only the input columns the output
        // digest adopts (a filter's input digest was a fifth of its CPU time).
        for j in 0..chain.input_schema().fields().len() {
            if !shared.contains(&Some(j)) {
                input_digest.defer(j);
            }
        }
    }
    enum Batches<'a> {
        Stream(Receiver<Msg>),
        Read(Box<RangeReader<'a>>),
    }
    let mut input = match job.input {
        JobInput::Stream(rx) => Batches::Stream(rx),
        JobInput::Rows {
            seek,
            first,
            rows,
            last,
        } => Batches::Read(Box::new(RangeReader::open(seek, first, rows, last)?)),
    };
    loop {
        let msg = match &mut input {
            Batches::Stream(rx) => match rx.recv() {
                Ok(msg) => msg,
                Err(_) => return Ok(None),
            },
            Batches::Read(reader) => match reader.next()? {
                Some(msg) => msg,
                None => return Ok(None),
            },
        };
        match msg {
            Msg::Batch(b) => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                input_digest.update(&b);
                let input = cfg!(debug_assertions).then(|| b.clone());
                let out = chain.process(b)?;
                if let Some(input) = input {
                    debug_assert!(
                        shared.iter().all(Option::is_none)
                            || (out.len() == 1
                                && shared.iter().enumerate().all(|(k, j)| {
                                    j.is_none_or(|j| Arc::ptr_eq(out[0].column(k), input.column(j)))
                                })),
                        "a shared column is not the input's array"
                    );
                }
                for o in out {
                    part.write(&relabel(o, ctx)?)?;
                }
            }
            Msg::End { input_rows, last } => {
                for (k, j) in shared.iter().enumerate() {
                    if let Some(j) = j {
                        part.digest_mut().adopt(k, &input_digest, *j);
                    }
                }
                // A fresh (stateless) instance ends with its chunk; a carried one at the end.
                if last || !ctx.stateful {
                    for o in chain.finish()? {
                        part.write(&relabel(o, ctx)?)?;
                    }
                }
                let fuel: Vec<u64> = chain.fuel().iter().zip(&fuel_before).map(|(a, b)| a - b).collect();
                let states = if ctx.stateful && !last {
                    Some(chain.checkpoint()?)
                } else {
                    None
                };
                let part = part.finish()?;
                let input_digest = match ctx.input_rows {
                    Some(ids) => ids.chunk(input_rows),
                    None => input_digest.finish(),
                };
                return Ok(Some(Outcome::Written {
                    input_rows,
                    input_digest,
                    part,
                    states,
                    fuel,
                    last,
                }));
            }
        }
    }
}

/// Give a plugin's output batch the run's output schema (the same columns, plus field
/// metadata such as classification), so the files carry it.
fn relabel(batch: RecordBatch, ctx: &ChunkCtx<'_>) -> Result<RecordBatch> {
    if !ctx.relabel {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    let opts = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::clone(ctx.out_schema), batch.columns().to_vec(), &opts)
        .map_err(|e| Error::plugin("output", format!("output batch does not fit the declared schema: {e}")))
}

/// The error for a committed chunk whose input now has `rows` digesting to `digest`.
fn input_changed(c: &ChunkEntry, rows: [u64; 2], digest: &str, files: bool) -> Error {
    // Under `--input-digest files` the digest names rows of exact file bytes, so any
    // changed input file shows at the first chunk.
    let why = if files {
        "an input file's bytes differ from when it was committed (under `--input-digest data` a resume checks the rows themselves and accepts input that changed only after the committed chunks)"
    } else {
        "its rows differ"
    };
    Error::input(format!(
        "the input changed since chunk {} was committed: {why} (rows {}..{} now digest to {digest}, the journal recorded {}); restore the input, or rerun with --overwrite to start over",
        c.chunk,
        rows[0],
        rows[0] + rows[1],
        c.input_digest
    ))
}

/// Commit chunk outcomes strictly in chunk order; the first error (in chunk order) stops.
fn commit_in_order(
    outcomes: Receiver<(u64, Result<Outcome>)>,
    ctx: &ChunkCtx<'_>,
    journal: &mut Journal,
    first: u64,
) -> Result<()> {
    let mut waiting: BTreeMap<u64, Result<Outcome>> = BTreeMap::new();
    let mut chunk: u64 = first;
    let mut rows_in: u64 = ctx.start.rows;
    let mut rows_out: u64 = journal.chunks[..first as usize].iter().map(|c| c.rows_out).sum();
    loop {
        let outcome = loop {
            if let Some(o) = waiting.remove(&chunk) {
                break o;
            }
            match outcomes.recv() {
                Ok((c, o)) => {
                    waiting.insert(c, o);
                }
                Err(_) => {
                    let e = std::io::Error::other(format!("a worker stopped before chunk {chunk} was written"));
                    return Err(Error::io("write", ctx.out.root(), e));
                }
            }
        };
        let last = match outcome? {
            Outcome::Verified {
                input_rows,
                input_digest,
                last,
            } => {
                let c = &journal.chunks[chunk as usize];
                // Already committed by an earlier attempt: the input must not have changed.
                if c.input_rows != input_rows || c.input_digest != input_digest {
                    // Verified chunks exist only under data input digests (see `Start`).
                    return Err(input_changed(c, input_rows, &input_digest, false));
                }
                if last && !c.last {
                    // The input ends here now, but the earlier attempt saw more rows.
                    return Err(Error::input(format!(
                        "the input is shorter than when chunk {chunk} was committed; rerun with --overwrite to start over"
                    )));
                }
                last
            }
            Outcome::Written {
                input_rows,
                input_digest,
                part,
                states,
                fuel,
                last,
            } => {
                let committed = part.commit()?;
                let state = match states {
                    Some(states) => Some(ctx.out.save_state(&states, chunk)?),
                    None => {
                        fault::point("state_written", chunk)?;
                        None
                    }
                };
                journal.append(outdir::entry(
                    chunk,
                    input_rows,
                    input_digest,
                    committed,
                    state,
                    fuel,
                    last,
                ))?;
                last
            }
        };
        if let Some(c) = journal.chunks.get(chunk as usize) {
            rows_in += c.input_rows[1];
            rows_out += c.rows_out;
            ctx.progress.chunk(chunk + 1, rows_in, rows_out);
        }
        chunk += 1;
        if last {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    /// A Parquet file holding `0..rows` in row groups of 8 rows.
    fn parquet(dir: &Path, rows: i64) -> PathBuf {
        let path = dir.join("in.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..rows))],
        )
        .unwrap();
        let props = ::parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(8))
            .build();
        let mut w =
            ::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        path
    }

    fn seek(path: &Path, total: u64) -> Seek {
        let opts = SourceOptions {
            batch_rows: 3,
            ..SourceOptions::default()
        };
        Seek {
            source: Mutex::new(Source::open(&[path.to_path_buf()], &opts).unwrap()),
            total,
            projection: None,
        }
    }

    /// What a reader gave: the values, the batch sizes, and its end message.
    type Drained = (Vec<i64>, Vec<usize>, [u64; 2], bool);

    /// Read a chunk to its end.
    fn drain(r: &mut RangeReader<'_>) -> Result<Drained> {
        let (mut values, mut sizes) = (Vec::new(), Vec::new());
        loop {
            match r.next()? {
                Some(Msg::Batch(b)) => {
                    sizes.push(b.num_rows());
                    values.extend(b.column(0).as_primitive::<Int64Type>().values().iter().copied());
                }
                Some(Msg::End { input_rows, last }) => {
                    assert!(r.next()?.is_none(), "nothing after the end");
                    return Ok((values, sizes, input_rows, last));
                }
                None => panic!("no end message"),
            }
        }
    }

    /// A chunk that starts inside a row group and inside a batch, and ends inside another:
    /// exactly its rows, in the batches the streaming path would cut (row groups of 8 read
    /// in batches of 3, sliced at the chunk's edges).
    #[test]
    fn a_range_reader_reads_exactly_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let s = seek(&parquet(dir.path(), 30), 30);
        let mut r = RangeReader::open(&s, 11, 12, false).unwrap();
        let (values, sizes, rows, last) = drain(&mut r).unwrap();
        assert_eq!(values, (11..23).collect::<Vec<_>>());
        // Row group 8..16 in batches 8..11, 11..14, 14..16; row group 16..24 in 16..19,
        // 19..22, 22..24, the last cut at 23.
        assert_eq!(sizes, [3, 2, 3, 3, 1]);
        assert_eq!((rows, last), ([11, 12], false));
        let mut r = RangeReader::open(&s, 23, 7, true).unwrap();
        let (values, sizes, rows, last) = drain(&mut r).unwrap();
        assert_eq!(values, (23..30).collect::<Vec<_>>());
        assert_eq!(sizes, [1, 3, 3]);
        assert_eq!((rows, last), ([23, 7], true));
    }

    /// An input that ends before the rows its footers declared (replaced during the run) is
    /// an input error naming where it ended, not a short chunk.
    #[test]
    fn an_input_shorter_than_its_footers_declared_is_an_input_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = seek(&parquet(dir.path(), 30), 100);
        let mut r = RangeReader::open(&s, 20, 20, false).unwrap();
        let e = drain(&mut r).unwrap_err();
        assert_eq!(e.category(), "input");
        let msg = e.to_string();
        assert!(msg.contains("ended at row 30, before the 100 rows"), "{msg}");
    }
}
