//! OpenLineage: a run of `sluice run` (or each partition of `sluice backfill`) is reported
//! as OpenLineage RunEvents (spec 2-0-2): `START` once the plugin chain is open and before
//! the first chunk, then `COMPLETE` after the output is published or `FAIL` on any failure
//! (a failed quality gate included). Events go to an NDJSON file (`--lineage-file`) and/or
//! are POSTed to an OpenLineage HTTP endpoint (`OPENLINEAGE_URL`).
//!
//! Lineage is metadata about a run, never part of it: a transport that fails is logged as a
//! warning and the run goes on with its own exit code. Only a `--lineage-file` that cannot
//! be opened, or an `OPENLINEAGE_URL` that is not an http(s) URL, stops the command, and
//! that happens before any work (exit 2).
//!
//! What each event holds:
//! - `job`: namespace `OPENLINEAGE_NAMESPACE` (default `sluice`), name the pipeline spec's
//!   `name`, else `OPENLINEAGE_JOB_NAME`, else the output directory's name; a `jobType`
//!   facet (`BATCH`, integration `SLUICE`).
//! - `run.runId`: a UUID derived from the job, the output, the partition, the scheduler's
//!   run id and the action key (see [`run_uuid`]); facets `processing_engine`,
//!   `nominalTime` (from the logical date, if any), `sluice` (digests, action key, status;
//!   schema `host/schemas/SluiceRunFacet.json`) and, on `FAIL`, `errorMessage`.
//! - `inputs`: each input file (namespace `file`, name its absolute path) with a `schema`
//!   facet; `outputs`: the output directory with `schema`, `columnLineage` (where known)
//!   and, on `COMPLETE`, `outputStatistics`.
//!
//! Secrets: plugin configs are not in the events at all (only their digests, which are
//! computed over the redacted config), and any secret value that appears in an error
//! message is replaced by `<secret>`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::datatypes::{DataType, Field, SchemaRef};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::columns::{ColumnPlan, Source};
use crate::error::{Error, Result};
use crate::pipeline::{Manifest, RunFacts, RunObserver, RunSpec, RunSummary};

/// The OpenLineage spec version the events follow.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// `_schemaURL` of the schema facet.
pub const SCHEMA_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
/// `_schemaURL` of the output statistics facet.
pub const OUTPUT_STATISTICS_FACET_URL: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
/// `_schemaURL` of the column lineage facet.
pub const COLUMN_LINEAGE_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
/// `_schemaURL` of the error message facet.
pub const ERROR_MESSAGE_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
/// `_schemaURL` of the job type facet.
pub const JOB_TYPE_FACET_URL: &str =
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
/// `_schemaURL` of the processing engine facet.
pub const PROCESSING_ENGINE_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
/// `_schemaURL` of the nominal time facet.
pub const NOMINAL_TIME_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet";

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `producer` of every event and `_producer` of every facet: this sluice's source.
pub fn producer() -> String {
    format!("https://github.com/sluice/sluice/tree/v{VERSION}/host")
}

/// `_schemaURL` of sluice's own run facet (`sluice`): the JSON schema in this repository.
pub fn sluice_facet_url() -> String {
    format!("https://github.com/sluice/sluice/blob/v{VERSION}/host/schemas/SluiceRunFacet.json#/$defs/SluiceRunFacet")
}

/// Where events go, read from the flags and the environment once, before the run.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `--lineage-file`: append one event a line.
    pub file: Option<PathBuf>,
    /// `OPENLINEAGE_URL` + `OPENLINEAGE_ENDPOINT` (default `api/v1/lineage`).
    pub url: Option<String>,
    /// `OPENLINEAGE_API_KEY`: sent as a bearer token, never logged.
    pub api_key: Option<String>,
    /// `OPENLINEAGE_NAMESPACE` (default `sluice`).
    pub namespace: String,
    /// `OPENLINEAGE_JOB_NAME`: the job name when the run has no pipeline spec.
    pub job_name: Option<String>,
}

impl Config {
    /// The configuration from `--lineage-file` and the `OPENLINEAGE_*` variables; `None`
    /// when neither a file nor a URL is set, or `OPENLINEAGE_DISABLED` is `true`.
    ///
    /// # Errors
    /// A usage error when `OPENLINEAGE_URL` is not an http(s) URL.
    pub fn from_env(file: Option<&Path>) -> Result<Option<Config>> {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if var("OPENLINEAGE_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
            return Ok(None);
        }
        let url = match var("OPENLINEAGE_URL") {
            Some(u) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(Error::usage(format!(
                        "OPENLINEAGE_URL `{}` is not an http:// or https:// URL; set it to the lineage server's base URL (e.g. http://marquez:5000) or unset it",
                        redact_url(&u)
                    )));
                }
                let endpoint = var("OPENLINEAGE_ENDPOINT").unwrap_or_else(|| "api/v1/lineage".into());
                Some(format!(
                    "{}/{}",
                    u.trim_end_matches('/'),
                    endpoint.trim_start_matches('/')
                ))
            }
            None => None,
        };
        if file.is_none() && url.is_none() {
            return Ok(None);
        }
        Ok(Some(Config {
            file: file.map(Path::to_path_buf),
            url,
            api_key: var("OPENLINEAGE_API_KEY"),
            namespace: var("OPENLINEAGE_NAMESPACE").unwrap_or_else(|| "sluice".into()),
            job_name: var("OPENLINEAGE_JOB_NAME"),
        }))
    }
}

/// The URL without `user:password@`, for messages.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// What START learned, kept for the terminal event.
struct Started {
    action_key: String,
    inputs: Vec<Value>,
    input_digests: Vec<Value>,
    plugins: Vec<Value>,
    output_schema: Value,
    column_lineage: Option<Value>,
}

/// Emits one run's events; plugged into the run as its [`RunObserver`].
pub struct Emitter {
    config: Config,
    file: Option<std::fs::File>,
    agent: Option<ureq::Agent>,
    job_name: String,
    output: PathBuf,
    partition: Option<String>,
    logical_date: Option<String>,
    scheduler_run_id: Option<String>,
    input_paths: Vec<PathBuf>,
    secrets: Vec<String>,
    keeps: Vec<Vec<String>>,
    run_id: Option<String>,
    started: Option<Started>,
    manifest: Option<Manifest>,
}

impl Emitter {
    /// An emitter for one run of `spec`, with the lineage file opened for appending now, so
    /// an unwritable path stops the command before any work.
    ///
    /// # Errors
    /// A usage error naming the file when it cannot be opened.
    pub fn new(config: Config, spec: &RunSpec) -> Result<Emitter> {
        let file = match &config.file {
            Some(path) => Some(open_file(path)?),
            None => None,
        };
        let agent = config.url.as_ref().map(|_| {
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into()
        });
        let job_name = spec
            .name
            .clone()
            .or_else(|| config.job_name.clone())
            .or_else(|| spec.output.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "sluice-run".into());
        let secrets = spec
            .plugins
            .iter()
            .flat_map(|p| {
                p.config
                    .iter()
                    .filter(|(k, v)| p.secret_keys.contains(k) && !v.is_empty())
                    .map(|(_, v)| v.clone())
            })
            .collect();
        Ok(Emitter {
            config,
            file,
            agent,
            job_name,
            output: spec.output.clone(),
            partition: spec.context.partition.clone(),
            logical_date: spec.context.logical_date.clone(),
            scheduler_run_id: spec.context.run_id.clone(),
            input_paths: spec.inputs.clone(),
            secrets,
            keeps: spec.plugins.iter().map(|p| p.keeps.clone()).collect(),
            run_id: None,
            started: None,
            manifest: None,
        })
    }

    /// Send the terminal event for the run's outcome: `COMPLETE` after a published run,
    /// `FAIL` (preceded by a `START` if the run failed before starting) after an error.
    /// Nothing for a job that was already complete: it did no work, and the run that did
    /// has the same run id and already sent its events.
    pub fn finish(&mut self, outcome: std::result::Result<&RunSummary, &Error>) {
        match outcome {
            Ok(s) if s.status == "already_complete" && self.started.is_none() => {}
            Ok(s) => {
                let stats = json!({
                    "_producer": producer(),
                    "_schemaURL": OUTPUT_STATISTICS_FACET_URL,
                    "rowCount": s.rows_out,
                    "size": s.bytes_out,
                    "fileCount": s.chunks,
                });
                let event = self.event("COMPLETE", "ok", 0, None, Some(stats));
                self.send(&event);
            }
            Err(e) => {
                if self.started.is_none() {
                    let start = self.event("START", "running", 0, None, None);
                    self.send(&start);
                }
                let status = if matches!(e, Error::Quality { .. }) {
                    "failed_quality"
                } else {
                    "failed"
                };
                let message = self.scrub(&e.to_string());
                let event = self.event("FAIL", status, e.exit_code() as u8, Some((e.category(), message)), None);
                self.send(&event);
            }
        }
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "<secret>"))
    }

    /// One RunEvent. `status` and `exit_code` go into the `sluice` facet; `error` is the
    /// category and message of a failure; `stats` the output statistics of a COMPLETE.
    fn event(
        &mut self,
        event_type: &str,
        status: &str,
        exit_code: u8,
        error: Option<(&str, String)>,
        stats: Option<Value>,
    ) -> Value {
        if self.run_id.is_none() {
            self.run_id = Some(run_uuid(
                &self.config.namespace,
                &self.job_name,
                &dataset_name(&self.output),
                self.partition.as_deref(),
                self.scheduler_run_id.as_deref(),
                self.started.as_ref().map(|s| s.action_key.as_str()),
            ));
        }
        let run_id = self.run_id.clone().unwrap_or_default();
        let p = producer();
        let mut run_facets = serde_json::Map::new();
        run_facets.insert(
            "processing_engine".into(),
            json!({ "_producer": p, "_schemaURL": PROCESSING_ENGINE_FACET_URL, "version": VERSION, "name": "sluice" }),
        );
        if let Some(days) = self.logical_date.as_deref().and_then(crate::spec::parse_date) {
            // The logical date is the data's date (the partition), not when the run happened:
            // it is the nominal time; `eventTime` is the wall clock.
            run_facets.insert(
                "nominalTime".into(),
                json!({
                    "_producer": p,
                    "_schemaURL": NOMINAL_TIME_FACET_URL,
                    "nominalStartTime": format!("{}T00:00:00Z", crate::spec::format_date(days)),
                    "nominalEndTime": format!("{}T00:00:00Z", crate::spec::format_date(days + 1)),
                }),
            );
        }
        let mut sluice = json!({
            "_producer": p,
            "_schemaURL": sluice_facet_url(),
            "host_version": VERSION,
            "status": status,
            "exit_code": exit_code,
        });
        let obj = sluice.as_object_mut().expect("an object");
        let mut put = |k: &str, v: Value| {
            obj.insert(k.into(), v);
        };
        if let Some(s) = &self.started {
            put("action_key", json!(s.action_key));
            put("plugins", json!(s.plugins));
            put("inputs", json!(s.input_digests));
        }
        if let Some(m) = &self.manifest {
            put("root_digest", json!(m.root_digest));
            put("output_schema_digest", json!(m.output_schema_digest));
            put("rows_in", json!(m.rows_in));
            put("rows_out", json!(m.rows_out));
            if !m.checks.is_empty() {
                put("checks", serde_json::to_value(&m.checks).unwrap_or(Value::Null));
            }
        }
        if let Some(part) = &self.partition {
            put("partition", json!(part));
        }
        if let Some(d) = &self.logical_date {
            put("logical_date", json!(d));
        }
        if let Some(r) = &self.scheduler_run_id {
            put("scheduler_run_id", json!(self.scrub(r)));
        }
        if let Some((category, message)) = &error {
            put("error_category", json!(category));
            run_facets.insert(
                "errorMessage".into(),
                json!({
                    "_producer": p,
                    "_schemaURL": ERROR_MESSAGE_FACET_URL,
                    "message": message,
                    "programmingLanguage": "rust",
                }),
            );
        }
        run_facets.insert("sluice".into(), sluice);

        let inputs: Vec<Value> = match &self.started {
            Some(s) => s.inputs.clone(),
            None => self
                .input_paths
                .iter()
                .map(|p| json!({ "namespace": "file", "name": dataset_name(p) }))
                .collect(),
        };
        let mut out_facets = serde_json::Map::new();
        if let Some(s) = &self.started {
            out_facets.insert("schema".into(), s.output_schema.clone());
            if let Some(cl) = &s.column_lineage {
                out_facets.insert("columnLineage".into(), cl.clone());
            }
        }
        let mut output = json!({ "namespace": "file", "name": dataset_name(&self.output), "facets": out_facets });
        if let Some(stats) = stats {
            output["outputFacets"] = json!({ "outputStatistics": stats });
        }
        json!({
            "eventType": event_type,
            "eventTime": now_rfc3339(),
            "producer": p,
            "schemaURL": SCHEMA_URL,
            "run": { "runId": run_id, "facets": run_facets },
            "job": {
                "namespace": self.config.namespace,
                "name": self.job_name,
                "facets": {
                    "jobType": {
                        "_producer": p,
                        "_schemaURL": JOB_TYPE_FACET_URL,
                        "processingType": "BATCH",
                        "integration": "SLUICE",
                        "jobType": "JOB",
                    }
                }
            },
            "inputs": inputs,
            "outputs": [output],
        })
    }

    /// Write the event to every transport; a failure is a warning, never the run's error.
    fn send(&mut self, event: &Value) {
        let line = serde_json::to_string(event).expect("an event serializes");
        let kind = event["eventType"].as_str().unwrap_or("?");
        if let Some(f) = self.file.as_mut() {
            let path = self.config.file.as_deref().unwrap_or(Path::new("?"));
            // One write per line: with O_APPEND, lines of concurrent writers do not interleave.
            if let Err(e) = f.write_all(format!("{line}\n").as_bytes()) {
                tracing::warn!(
                    "could not write the OpenLineage {} event to `{}`: {e}; the run goes on",
                    kind,
                    path.display()
                );
            }
        }
        if let (Some(agent), Some(url)) = (&self.agent, &self.config.url) {
            let mut req = agent.post(url.as_str()).header("Content-Type", "application/json");
            if let Some(key) = &self.config.api_key {
                req = req.header("Authorization", format!("Bearer {key}"));
            }
            match req.send(line.as_bytes()) {
                Ok(_) => tracing::debug!(url = %redact_url(url), "sent the OpenLineage {} event", kind),
                Err(e) => tracing::warn!(
                    "could not send the OpenLineage {} event to {}: {e}; the run goes on",
                    kind,
                    redact_url(url)
                ),
            }
        }
    }
}

impl RunObserver for Emitter {
    fn started(&mut self, facts: &RunFacts<'_>) {
        let input_schema = schema_facet(facts.source_schema);
        let inputs: Vec<Value> = facts
            .inputs
            .iter()
            .map(
                |i| json!({ "namespace": "file", "name": dataset_name(&i.path), "facets": { "schema": input_schema } }),
            )
            .collect();
        let input_digests = facts
            .inputs
            .iter()
            .map(|i| json!({ "name": dataset_name(&i.path), "digest": i.digest, "size": i.size, "format": i.format }))
            .collect();
        let plugins = facts
            .plugins
            .iter()
            .map(|(p, _)| {
                let i = p.info();
                json!({ "name": i.name, "version": i.version, "sha256": i.sha256 })
            })
            .collect();
        let names: Vec<String> = facts.inputs.iter().map(|i| dataset_name(&i.path)).collect();
        let stage_names: Vec<String> = facts.plugins.iter().map(|(p, _)| p.info().name.clone()).collect();
        let column_lineage = column_lineage(
            facts.input_schema,
            facts.stage_schemas,
            facts.output_schema,
            &stage_names,
            facts.masks,
            &self.keeps,
            facts.plans,
            &names,
        );
        self.started = Some(Started {
            action_key: facts.action_key.to_string(),
            inputs,
            input_digests,
            plugins,
            output_schema: schema_facet(facts.output_schema),
            column_lineage,
        });
        let event = self.event("START", "running", 0, None, None);
        self.send(&event);
    }

    fn recorded(&mut self, manifest: &Manifest) {
        self.manifest = Some(manifest.clone());
    }
}

/// Open the lineage file for appending (created if missing).
///
/// # Errors
/// A usage error naming the file when it cannot be opened.
pub fn open_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
        Error::usage(format!(
            "--lineage-file `{}` cannot be opened for appending ({e}); choose a writable path or create its directory",
            path.display()
        ))
    })
}

/// The run's UUID: version 8 (RFC 9562, name-based with SHA-256 as in its appendix B.2)
/// over the job namespace and name, the output dataset, the partition, the scheduler's run
/// id and the action key.
///
/// Why not a random v4 or the scheduler's run id alone: the same job over the same inputs
/// into the same output is one run whatever attempt reports it, so a rerun that resumes
/// after a crash continues the same OpenLineage run (START again, then COMPLETE), and a
/// replay of the events agrees. The scheduler's run id is in it so that a new scheduler
/// run (not a retry) is a new lineage run; the action key, so that new inputs, plugins or
/// gates are a new run. A failure before the action key is known (a plugin that does not
/// load) gets the id without it.
pub fn run_uuid(
    namespace: &str,
    job: &str,
    output: &str,
    partition: Option<&str>,
    scheduler_run_id: Option<&str>,
    action_key: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    for part in [
        "sluice.openlineage.run.v1",
        namespace,
        job,
        output,
        partition.unwrap_or(""),
        scheduler_run_id.unwrap_or(""),
        action_key.unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The OpenLineage dataset name of a local path: its absolute path, symlinks resolved when
/// it exists (or its parent does), so one file has one name however it was given.
pub fn dataset_name(path: &Path) -> String {
    let resolved = std::fs::canonicalize(path)
        .ok()
        .or_else(|| {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
        })
        .or_else(|| std::path::absolute(path).ok())
        .unwrap_or_else(|| path.to_path_buf());
    resolved.to_string_lossy().into_owned()
}

/// The SchemaDatasetFacet of an Arrow schema: names, Arrow types, 1-based positions;
/// struct children nested.
fn schema_facet(schema: &SchemaRef) -> Value {
    fn field(f: &Field, pos: Option<usize>) -> Value {
        let mut v = json!({ "name": f.name(), "type": f.data_type().to_string() });
        if let Some(p) = pos {
            v["ordinal_position"] = json!(p);
        }
        if !f.is_nullable() {
            v["description"] = json!("not null");
        }
        if let DataType::Struct(children) = f.data_type() {
            v["fields"] = Value::Array(children.iter().map(|c| field(c, None)).collect());
        }
        v
    }
    json!({
        "_producer": producer(),
        "_schemaURL": SCHEMA_FACET_URL,
        "fields": schema.fields().iter().enumerate().map(|(i, f)| field(f, Some(i + 1))).collect::<Vec<_>>(),
    })
}

/// Column lineage, only where the chain makes it known. A whole-batch (ABI 1.0) stage
/// declares its output schema but not what it does to values, so the spec's declarations
/// decide; a stage with a column plan (ABI 1.1) says itself which columns it passes through
/// unchanged. An output column whose name and type are those of an input column and of a
/// column in every stage's output schema, and that every stage keeps (its plan passes it
/// through, or the spec declares it in `keeps`, `*` for all) or masks (`masks`), is
/// `IDENTITY`, or a masking `TRANSFORMATION` when a stage masks it. Any other column
/// (derived, renamed, retyped, or through a stage that says nothing about it) is left out
/// rather than guessed. `None` when no column qualifies.
#[allow(clippy::too_many_arguments)]
fn column_lineage(
    input: &SchemaRef,
    stages: &[SchemaRef],
    output: &SchemaRef,
    stage_names: &[String],
    masks: &[Vec<String>],
    keeps: &[Vec<String>],
    plans: &[Option<ColumnPlan>],
    inputs: &[String],
) -> Option<Value> {
    let same = |s: &SchemaRef, f: &Field| {
        s.field_with_name(f.name())
            .is_ok_and(|g| g.data_type() == f.data_type())
    };
    let declared = |lists: &[Vec<String>], i: usize, name: &str, star: bool| {
        lists
            .get(i)
            .is_some_and(|l| l.iter().any(|c| c == name || (star && c == "*")))
    };
    // Stage `i`'s plan passes its output column `name` through from its input unchanged.
    let passes = |i: usize, name: &str| {
        let (Some(Some(plan)), Some(schema)) = (plans.get(i), stages.get(i)) else {
            return false;
        };
        schema
            .index_of(name)
            .is_ok_and(|pos| matches!(plan.output.get(pos), Some(Source::Input(_))))
    };
    let mut fields = BTreeMap::new();
    'columns: for f in output.fields() {
        if !same(input, f) || !stages.iter().all(|s| same(s, f)) {
            continue;
        }
        let mut masked_by = Vec::new();
        for (i, name) in stage_names.iter().enumerate() {
            if declared(masks, i, f.name(), false) {
                masked_by.push(name.as_str());
            } else if !declared(keeps, i, f.name(), true) && !passes(i, f.name()) {
                continue 'columns;
            }
        }
        let transformation = if masked_by.is_empty() {
            json!({ "type": "DIRECT", "subtype": "IDENTITY" })
        } else {
            json!({
                "type": "DIRECT",
                "subtype": "TRANSFORMATION",
                "description": format!("masked by plugin {}", masked_by.join(", ")),
                "masking": true,
            })
        };
        let input_fields: Vec<Value> = inputs
            .iter()
            .map(|name| json!({ "namespace": "file", "name": name, "field": f.name(), "transformations": [transformation] }))
            .collect();
        fields.insert(f.name().clone(), json!({ "inputFields": input_fields }));
    }
    (!fields.is_empty()).then(|| {
        json!({
            "_producer": producer(),
            "_schemaURL": COLUMN_LINEAGE_FACET_URL,
            "fields": fields,
        })
    })
}

/// Now, UTC, as RFC 3339 with milliseconds (`eventTime`: when the event happened; metadata
/// that never enters an output or a digest).
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        crate::spec::format_date(days),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_uuids_and_depend_on_every_part() {
        let a = run_uuid("sluice", "job", "/out", Some("2026-11-01"), None, Some("blake3:ab"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8", "version 8: {a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "RFC variant: {a}");
        assert_eq!(
            a,
            run_uuid("sluice", "job", "/out", Some("2026-11-01"), None, Some("blake3:ab"))
        );
        assert_ne!(
            a,
            run_uuid("sluice", "job", "/out", Some("2026-11-02"), None, Some("blake3:ab"))
        );
        assert_ne!(
            a,
            run_uuid(
                "sluice",
                "job",
                "/out",
                Some("2026-11-01"),
                Some("r1"),
                Some("blake3:ab")
            )
        );
        assert_ne!(a, run_uuid("sluice", "job", "/out", Some("2026-11-01"), None, None));
        // Length-prefixed parts: moving a character between parts changes the id.
        assert_ne!(
            run_uuid("ab", "c", "", None, None, None),
            run_uuid("a", "bc", "", None, None, None)
        );
    }

    fn schema(cols: &[(&str, DataType)]) -> SchemaRef {
        let fields: Vec<Field> = cols.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect();
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields))
    }

    fn lineage(stages: &[SchemaRef], masks: &[Vec<String>], keeps: &[Vec<String>]) -> Value {
        lineage_with_plans(stages, masks, keeps, &vec![None; stages.len()])
    }

    fn lineage_with_plans(
        stages: &[SchemaRef],
        masks: &[Vec<String>],
        keeps: &[Vec<String>],
        plans: &[Option<ColumnPlan>],
    ) -> Value {
        let input = schema(&[
            ("id", DataType::Int64),
            ("email", DataType::Utf8),
            ("n", DataType::Int32),
        ]);
        let names: Vec<String> = (0..stages.len()).map(|i| format!("p{i}")).collect();
        let output = stages.last().cloned().unwrap_or_else(|| std::sync::Arc::clone(&input));
        column_lineage(
            &input,
            stages,
            &output,
            &names,
            masks,
            keeps,
            plans,
            &["/in.csv".to_string()],
        )
        .map(|v| v["fields"].clone())
        .unwrap_or(Value::Null)
    }

    fn subtype(fields: &Value, col: &str) -> Value {
        fields[col]["inputFields"][0]["transformations"][0]["subtype"].clone()
    }

    #[test]
    fn column_lineage_is_given_only_where_declared() {
        let all = || vec!["*".to_string()];
        // No plugins: every column is the input's.
        let f = lineage(&[], &[], &[]);
        assert_eq!(subtype(&f, "email"), "IDENTITY");
        // A stage that declares nothing: nothing is known, even for same-named columns
        // (a mask not declared as one keeps name and type).
        let same = schema(&[
            ("id", DataType::Int64),
            ("email", DataType::Utf8),
            ("n", DataType::Int32),
        ]);
        assert_eq!(lineage(std::slice::from_ref(&same), &[vec![]], &[vec![]]), Value::Null);
        // keeps = ["*"]: carried columns are IDENTITY; a declared mask is a masking transformation.
        let f = lineage(std::slice::from_ref(&same), &[vec!["email".into()]], &[all()]);
        assert_eq!(subtype(&f, "id"), "IDENTITY");
        assert_eq!(subtype(&f, "email"), "TRANSFORMATION");
        assert_eq!(f["email"]["inputFields"][0]["transformations"][0]["masking"], true);
        // Retyped, added, or dropped and added back by a later stage: left out.
        let retyped = schema(&[
            ("id", DataType::Int64),
            ("email", DataType::Utf8),
            ("n", DataType::Int64),
        ]);
        let dropped = schema(&[("id", DataType::Int64)]);
        let f = lineage(
            &[retyped, dropped, same],
            &[vec![], vec![], vec![]],
            &[all(), all(), all()],
        );
        assert_eq!(f["id"]["inputFields"][0]["field"], "id");
        assert!(f.get("n").is_none() && f.get("email").is_none(), "{f}");
        // keeps naming some columns only.
        let same = schema(&[("id", DataType::Int64), ("email", DataType::Utf8)]);
        let f = lineage(std::slice::from_ref(&same), &[vec![]], &[vec!["id".into()]]);
        assert!(f.get("id").is_some() && f.get("email").is_none(), "{f}");
    }

    #[test]
    fn a_column_plan_says_what_a_stage_passes_through() {
        let same = schema(&[
            ("id", DataType::Int64),
            ("email", DataType::Utf8),
            ("n", DataType::Int32),
        ]);
        // `id` and `n` pass through, `email` is computed (a mask without a spec declaration).
        let plan = ColumnPlan {
            reads: vec![1],
            selects: true,
            output: vec![Source::Input(0), Source::Computed, Source::Input(2)],
            read_schema: schema(&[("email", DataType::Utf8)]),
            computed_schema: schema(&[("email", DataType::Utf8)]),
        };
        let f = lineage_with_plans(std::slice::from_ref(&same), &[vec![]], &[vec![]], &[Some(plan.clone())]);
        assert_eq!(subtype(&f, "id"), "IDENTITY");
        assert_eq!(subtype(&f, "n"), "IDENTITY");
        assert!(f.get("email").is_none(), "a computed column is not identity: {f}");
        // With the spec's mask declaration, the computed column is a masking transformation.
        let f = lineage_with_plans(
            std::slice::from_ref(&same),
            &[vec!["email".into()]],
            &[vec![]],
            &[Some(plan)],
        );
        assert_eq!(f["email"]["inputFields"][0]["transformations"][0]["masking"], true);
        // A second stage without plan or declaration still hides everything.
        let f = lineage_with_plans(
            &[std::sync::Arc::clone(&same), same],
            &[vec![], vec![]],
            &[vec![], vec![]],
            &[None, None],
        );
        assert_eq!(f, Value::Null);
    }

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(redact_url("http://u:pw@host:5000/api"), "http://***@host:5000/api");
        assert_eq!(redact_url("https://host/api?a=b@c"), "https://host/api?a=b@c");
    }

    #[test]
    fn event_times_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }
}
