//! Provenance for jobs a distributed engine runs: Spark or Ray executes the chain on many
//! partitions, each task reports its digests, and [`combine`] folds the reports into one
//! run record (`OUT/_sluice/manifest.json`, `kind = "distributed"`) that `sluice verify`
//! checks against the output files.
//!
//! Engines decide how rows are partitioned and in what order tasks run or are retried, so
//! the record's data digests are row-set digests ([`RowSet`]): the same rows give the same
//! digest however they were split. Tasks are listed sorted by their id, so the record
//! itself does not depend on completion order either.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};

use crate::digest::{self, DataDigest, RowSet, RowSetDigest};
use crate::engine::EngineSettings;
use crate::error::{Error, Result};
use crate::pipeline::PluginRecord;

/// The `kind` of a distributed run record.
pub const RECORD_KIND: &str = "distributed";

/// What one engine task reports after pushing its partition through the chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskReport {
    /// Report format version (1).
    pub report_version: u32,
    /// A stable id of the task's input (e.g. `part-00003`); the same partition retried
    /// reports the same id.
    pub task: String,
    /// sluice version of the worker.
    pub host_version: String,
    /// The worker's engine settings.
    pub engine: EngineSettings,
    /// The chain as the worker loaded it.
    pub plugins: Vec<PluginRecord>,
    /// Fingerprint of the chain's input schema.
    pub input_schema: String,
    /// Fingerprint of the chain's output schema.
    pub output_schema: String,
    /// The output schema as an Arrow IPC schema message (hex), so `sluice verify` can read
    /// the output files back as exactly these types.
    pub output_schema_ipc: String,
    /// The task's output rows, in the order produced (data digest v1).
    pub data_digest: String,
    /// The task's input rows, order-independent.
    pub input: RowSet,
    /// The task's output rows, order-independent.
    pub output: RowSet,
    /// Fuel each plugin used.
    pub fuel: Vec<u64>,
}

/// One task as listed in a distributed run record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEntry {
    /// The task's id.
    pub task: String,
    /// Its output rows in the order produced (data digest v1).
    pub data_digest: String,
    /// Its input rows, order-independent.
    pub input: RowSet,
    /// Its output rows, order-independent.
    pub output: RowSet,
    /// Fuel per plugin.
    pub fuel: Vec<u64>,
}

/// The run record of a distributed job.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedRecord {
    /// Record format version (1).
    pub manifest_version: u32,
    /// Always [`RECORD_KIND`].
    pub kind: String,
    /// sluice version of the workers.
    pub host_version: String,
    /// Engine settings of the workers.
    pub engine: EngineSettings,
    /// The plugin chain (path as loaded by the first task).
    pub plugins: Vec<PluginRecord>,
    /// Fingerprint of the input schema.
    pub input_schema: String,
    /// BLAKE3 of the input schema fingerprint.
    pub input_schema_digest: String,
    /// Fingerprint of the output schema.
    pub output_schema: String,
    /// BLAKE3 of the output schema fingerprint.
    pub output_schema_digest: String,
    /// The output schema as an Arrow IPC schema message (hex).
    pub output_schema_ipc: String,
    /// Rows read by all tasks.
    pub rows_in: u64,
    /// Rows written by all tasks.
    pub rows_out: u64,
    /// Row-set digest of every task's input.
    pub input_rowset_digest: String,
    /// Row-set digest of every task's output: equal to the row-set digest of a one-machine
    /// `sluice run` of the same input and chain.
    pub output_rowset_digest: String,
    /// The tasks, sorted by id.
    pub tasks: Vec<TaskEntry>,
    /// BLAKE3 over the tasks' canonical JSON, in order.
    pub root_digest: String,
    /// `ok`.
    pub status: String,
}

/// Collects one task's digests while batches go through a chain.
pub struct TaskDigests {
    task: String,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    input: RowSetDigest,
    output: RowSetDigest,
    data: DataDigest,
}

impl TaskDigests {
    /// Start collecting for `task` over a chain with these schemas.
    pub fn new(task: impl Into<String>, input_schema: &SchemaRef, output_schema: &SchemaRef) -> Self {
        TaskDigests {
            task: task.into(),
            input_schema: Arc::clone(input_schema),
            output_schema: Arc::clone(output_schema),
            input: RowSetDigest::new(input_schema),
            output: RowSetDigest::new(output_schema),
            data: DataDigest::new(output_schema),
        }
    }

    /// Count a batch that went into the chain.
    pub fn input(&mut self, batch: &RecordBatch) {
        self.input.update(batch);
    }

    /// Count a batch that came out of the chain.
    pub fn output(&mut self, batch: &RecordBatch) {
        self.output.update(batch);
        self.data.update(batch);
    }

    /// The task's id.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// Name the task after it started (e.g. from its input's row-set digest).
    pub fn set_task(&mut self, task: impl Into<String>) {
        self.task = task.into();
    }

    /// The input rows counted so far, order-independent.
    pub fn input_rowset(&self) -> RowSet {
        self.input.partial()
    }

    /// The task's report.
    pub fn report(&self, plugins: Vec<PluginRecord>, engine: EngineSettings, fuel: Vec<u64>) -> TaskReport {
        TaskReport {
            report_version: 1,
            task: self.task.clone(),
            host_version: env!("CARGO_PKG_VERSION").to_string(),
            engine,
            plugins,
            input_schema: digest::schema_fingerprint(&self.input_schema),
            output_schema: digest::schema_fingerprint(&self.output_schema),
            output_schema_ipc: hex::encode(crate::ipc::encode_schema(&self.output_schema)),
            data_digest: self.data.finish(),
            input: self.input.partial(),
            output: self.output.partial(),
            fuel,
        }
    }
}

/// Read every `*.json` task report in `dir` (sorted by name).
///
/// # Errors
/// A usage error when the directory is missing or empty; an input error naming the file
/// when a report is not valid.
pub fn read_reports(dir: &Path) -> Result<Vec<TaskReport>> {
    let rd = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::usage(format!(
            "task report directory `{}` does not exist; point --tasks at the directory the workers wrote their reports to",
            dir.display()
        )),
        _ => Error::io("list", dir, e),
    })?;
    let mut paths: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::usage(format!(
            "no task reports (`*.json`) in `{}`; did the job run?",
            dir.display()
        )));
    }
    paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).map_err(|e| Error::io("read", p, e))?;
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::input(format!(
                    "task report `{}` is not a sluice task report: {e}; delete it and rerun that task",
                    p.display()
                ))
            })
        })
        .collect()
}

/// Fold task reports into one run record.
///
/// A task retried by the engine may report twice: identical reports are kept once, but two
/// different reports for one task id are refused (the engine ran the same partition to
/// different results, or two partitions share an id). Every task must have run the same
/// plugins (sha256 and config digest), engine settings and schemas.
///
/// # Errors
/// An input error naming the first disagreeing task.
pub fn combine(mut reports: Vec<TaskReport>) -> Result<DistributedRecord> {
    if reports.is_empty() {
        return Err(Error::usage("no task reports to combine"));
    }
    reports.sort_by(|a, b| a.task.cmp(&b.task));
    reports.dedup();
    for w in reports.windows(2) {
        if w[0].task == w[1].task {
            return Err(Error::input(format!(
                "task `{}` reported two different results; each partition needs its own task id, and a retried task must produce the same output",
                w[0].task
            )));
        }
    }
    let first = &reports[0];
    let chain = |r: &TaskReport| -> Vec<(String, String)> {
        r.plugins
            .iter()
            .map(|p| (p.info.sha256.clone(), p.config_digest.clone()))
            .collect()
    };
    for r in &reports[1..] {
        let differs = if r.report_version != first.report_version {
            Some("report version")
        } else if chain(r) != chain(first) {
            Some("plugins (sha256 or config)")
        } else if r.engine != first.engine {
            Some("engine settings")
        } else if r.host_version != first.host_version {
            Some("sluice version")
        } else if r.input_schema != first.input_schema {
            Some("input schema")
        } else if r.output_schema != first.output_schema || r.output_schema_ipc != first.output_schema_ipc {
            Some("output schema")
        } else {
            None
        };
        if let Some(what) = differs {
            return Err(Error::input(format!(
                "task `{}` ran with other {what} than task `{}`; a distributed run must use one chain everywhere",
                r.task, first.task
            )));
        }
    }
    let input_schema_digest = digest::blake3_bytes(first.input_schema.as_bytes());
    let output_schema_digest = digest::blake3_bytes(first.output_schema.as_bytes());
    let input = RowSet::combine(&first.input.schema_digest, reports.iter().map(|r| &r.input))?;
    let output = RowSet::combine(&first.output.schema_digest, reports.iter().map(|r| &r.output))?;
    let tasks: Vec<TaskEntry> = reports
        .iter()
        .map(|r| TaskEntry {
            task: r.task.clone(),
            data_digest: r.data_digest.clone(),
            input: r.input.clone(),
            output: r.output.clone(),
            fuel: r.fuel.clone(),
        })
        .collect();
    Ok(DistributedRecord {
        manifest_version: 1,
        kind: RECORD_KIND.into(),
        host_version: first.host_version.clone(),
        engine: first.engine.clone(),
        plugins: first.plugins.clone(),
        input_schema: first.input_schema.clone(),
        input_schema_digest,
        output_schema: first.output_schema.clone(),
        output_schema_digest,
        output_schema_ipc: first.output_schema_ipc.clone(),
        rows_in: input.rows,
        rows_out: output.rows,
        input_rowset_digest: input.digest(),
        output_rowset_digest: output.digest(),
        root_digest: tasks_root(&tasks),
        tasks,
        status: "ok".into(),
    })
}

/// BLAKE3 over each task entry's canonical JSON line, in order.
pub fn tasks_root(tasks: &[TaskEntry]) -> String {
    let mut h = blake3::Hasher::new();
    for t in tasks {
        h.update(&serde_json::to_vec(t).expect("task entries serialize"));
        h.update(b"\n");
    }
    format!("blake3:{}", h.finalize().to_hex())
}

/// Write `record` to `OUT/_sluice/manifest.json` (atomically). Re-combining a distributed
/// job replaces its record; the record of a `sluice run` is refused.
///
/// # Errors
/// A usage error when `OUT` holds a `sluice run` record; an I/O error from the write.
pub fn write_record(out: &Path, record: &DistributedRecord) -> Result<()> {
    let existing = out.join("_sluice").join("manifest.json");
    if let Ok(bytes) = std::fs::read(&existing) {
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if !is_distributed(&json) {
            return Err(Error::usage(format!(
                "`{}` already holds the run record of a `sluice run`; write the distributed job's record into its own output directory",
                out.display()
            )));
        }
    }
    let dir = out.join("_sluice");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let mut json = serde_json::to_vec_pretty(record).expect("records serialize");
    json.push(b'\n');
    crate::outdir::write_atomic(&dir.join("manifest.json"), &json)
}

/// The row-set digest of files (or directories of files) read as `schema`: each column is
/// cast to the schema's type, so files an engine wrote with its own physical types (Spark's
/// INT96 timestamps, plain strings for views) digest like the batches the chain produced.
///
/// # Errors
/// An input error naming the file when it cannot be read or a column is missing or cannot
/// be cast.
pub fn rowset_of_files(paths: &[std::path::PathBuf], schema: &SchemaRef) -> Result<RowSet> {
    let source = crate::source::Source::open(paths, &crate::source::SourceOptions::default())?;
    let got = source.schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let i = got.index_of(f.name()).map_err(|_| {
            Error::input(format!(
                "the output files have no column `{}` (they have: {}); they are not this run's output",
                f.name(),
                got.fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        columns.push(i);
    }
    let mut d = RowSetDigest::new(schema);
    for batch in source {
        let batch = batch?;
        let cols = columns
            .iter()
            .zip(schema.fields())
            .map(|(&i, f)| {
                let c = batch.column(i);
                if c.data_type() == f.data_type() {
                    Ok(Arc::clone(c))
                } else {
                    arrow::compute::cast(c, f.data_type()).map_err(|e| {
                        Error::input(format!(
                            "column `{}` of the output files is {} and cannot be read as the recorded {}: {e}",
                            f.name(),
                            c.data_type(),
                            f.data_type()
                        ))
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let cast = RecordBatch::try_new(Arc::clone(schema), cols)
            .map_err(|e| Error::input(format!("the output files do not fit the recorded output schema: {e}")))?;
        d.update(&cast);
    }
    Ok(d.partial())
}

/// Check a distributed run record and the output files next to it; every problem found.
pub fn verify(root: &Path, record: &DistributedRecord) -> Vec<String> {
    let mut problems = Vec::new();
    if tasks_root(&record.tasks) != record.root_digest {
        problems.push("the run record's root digest does not match its tasks".to_string());
    }
    let Some(first) = record.tasks.first() else {
        problems.push("the run record lists no tasks".to_string());
        return problems;
    };
    match (
        RowSet::combine(&first.input.schema_digest, record.tasks.iter().map(|t| &t.input)),
        RowSet::combine(&first.output.schema_digest, record.tasks.iter().map(|t| &t.output)),
    ) {
        (Ok(i), Ok(o)) => {
            if i.digest() != record.input_rowset_digest || i.rows != record.rows_in {
                problems.push("the run record's input digest or row count does not match its tasks".into());
            }
            if o.digest() != record.output_rowset_digest || o.rows != record.rows_out {
                problems.push("the run record's output digest or row count does not match its tasks".into());
            }
        }
        (Err(e), _) | (_, Err(e)) => problems.push(format!("the run record's tasks are inconsistent: {e}")),
    }
    if digest::blake3_bytes(record.output_schema.as_bytes()) != record.output_schema_digest {
        problems.push("the run record's output schema digest does not match its fingerprint".into());
    }
    let schema = match hex::decode(&record.output_schema_ipc)
        .ok()
        .and_then(|b| crate::ipc::decode_schema(b).ok())
    {
        Some(s) if digest::schema_fingerprint(&s) == record.output_schema => s,
        _ => {
            problems.push("the run record's output schema (`output_schema_ipc`) is damaged".into());
            return problems;
        }
    };
    let files = data_files(root);
    if files.is_empty() {
        if record.rows_out > 0 {
            problems.push(format!(
                "no output files next to the run record in `{}`, but it records {} rows",
                root.display(),
                record.rows_out
            ));
        }
        return problems;
    }
    match rowset_of_files(&files, &schema) {
        Ok(got) => {
            if got.rows != record.rows_out {
                problems.push(format!(
                    "the output files hold {} rows, the run record {}",
                    got.rows, record.rows_out
                ));
            }
            if got.digest() != record.output_rowset_digest {
                problems.push(format!(
                    "the output files' rows differ from the recorded ones (row-set digest {}, recorded {})",
                    got.digest(),
                    record.output_rowset_digest
                ));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    problems
}

/// The data files of a distributed output: regular files under `root` (recursively, for
/// engines that write sub-directories), skipping hidden and `_`-prefixed names (`_SUCCESS`,
/// `_sluice/`, `.crc` files).
fn data_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Whether a run record's JSON is a distributed one.
pub fn is_distributed(json: &serde_json::Value) -> bool {
    json.get("kind").and_then(|k| k.as_str()) == Some(RECORD_KIND)
}

/// The common schema of data files (as `sluice digest` and [`rowset_of_files`] read them).
pub fn schema_of_files(paths: &[std::path::PathBuf]) -> Result<Arc<Schema>> {
    Ok(crate::source::Source::open(paths, &crate::source::SourceOptions::default())?.schema())
}
