//! `sluice run`: input files → plugin chain → output directory.

use std::path::PathBuf;

use clap::{ArgMatches, Args};

use crate::engine::{Runtime, RuntimeOptions};
use crate::error::{Error, Result};
use crate::pipeline::{self, PluginSpec, RunSpec};
use crate::sandbox::Limits;
use crate::sink::{OutputFormat, WriterOptions};
use crate::source::{InputFormat, SourceOptions};

/// Arguments of `sluice run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A pipeline spec (`pipeline.toml`); instead of --input/--plugin/--output.
    #[arg(conflicts_with_all = ["input", "plugin", "config"])]
    pub pipeline: Option<PathBuf>,
    /// The partition to run (fills `{key}` in the spec's paths).
    #[arg(long, requires = "pipeline")]
    pub partition: Option<String>,
    /// Run spec plugins that have no sha256 pin.
    #[arg(long)]
    pub allow_unpinned: bool,
    /// Input file or directory (repeatable; read in order as one stream).
    #[arg(long, short = 'i', required_unless_present = "pipeline")]
    pub input: Vec<PathBuf>,
    /// Input format; detected from magic bytes and the extension when omitted.
    #[arg(long)]
    pub input_format: Option<InputFormat>,
    /// Plugin `.wasm` component (repeatable; applied in order). `P.wasm@sha256:HEX` pins it:
    /// a file with another digest is refused before it is compiled.
    #[arg(long, short = 'p')]
    pub plugin: Vec<PathBuf>,
    /// `KEY=VALUE` for the nearest `--plugin` before it (repeatable).
    #[arg(long, short = 'c', value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Output directory (with a spec: overrides `[output] path`).
    #[arg(long, short = 'o', required_unless_present = "pipeline")]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "parquet")]
    pub format: OutputFormat,
    /// Output compression: parquet `zstd(N)`, `snappy`, `lz4`, `gzip(N)`, `brotli(N)`, `none`; ipc `zstd`, `lz4`, `none`.
    #[arg(long, default_value = "zstd(1)")]
    pub compression: String,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 122_880)]
    pub row_group_rows: usize,
    /// Rows per checkpointed chunk (one output part per chunk).
    #[arg(long, default_value_t = pipeline::DEFAULT_CHUNK_ROWS)]
    pub chunk_rows: usize,
    /// What each chunk's `input_digest` records: `files` (the input files' digests and the chunk's row range; free) or `data` (a digest of every input value: costs hashing them all, equals the Python binding's).
    #[arg(long, default_value = "files")]
    pub input_digest: crate::pipeline::InputDigest,
    /// Rows per batch read from the input and handed to plugins.
    #[arg(long, default_value_t = 65_536)]
    pub batch_rows: usize,
    /// Worker threads running chunks in parallel (stateless chains); never changes the output [default: $SLUICE_THREADS, else the number of CPUs].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
    /// CSV input has no header row.
    #[arg(long)]
    pub csv_no_header: bool,
    /// CSV delimiter (one byte).
    #[arg(long, default_value = ",")]
    pub csv_delimiter: String,
    /// Replace the contents of an existing output directory.
    #[arg(long)]
    pub overwrite: bool,
    /// Fuel (about one unit per wasm instruction) a plugin may use per call [default: 200000000000].
    #[arg(long)]
    pub fuel_per_call: Option<u64>,
    /// Linear memory per plugin instance, e.g. `1GiB`, `512MiB` [default: 1GiB].
    #[arg(long)]
    pub max_memory: Option<String>,
    /// Bytes a plugin may return from one call, e.g. `1GiB` [default: 1GiB].
    #[arg(long)]
    pub max_output_bytes: Option<String>,
    /// Wall-clock time a plugin call may take, e.g. `60s`, `500ms`, `2m` [default: 60s].
    #[arg(long)]
    pub max_call_time: Option<String>,
    /// Wasm stack per plugin call, e.g. `1MiB` (at most `4MiB`) [default: 1MiB].
    #[arg(long)]
    pub max_stack: Option<String>,
    /// Table elements per plugin instance [default: 1000000].
    #[arg(long)]
    pub max_table_elements: Option<u64>,
    /// Wasm instances per plugin instance [default: 100].
    #[arg(long)]
    pub max_instances: Option<u64>,
    /// Tables per plugin instance [default: 100].
    #[arg(long)]
    pub max_tables: Option<u64>,
    /// Linear memories per plugin instance [default: 10].
    #[arg(long)]
    pub max_memories: Option<u64>,
    /// Live resource handles (streams, pollables, own resources) per plugin instance [default: 10000].
    #[arg(long)]
    pub max_resources: Option<u64>,
    /// Log bytes a plugin may write (stdout, stderr, `log`) before the rest is dropped, e.g. `1MiB` [default: 1MiB].
    #[arg(long)]
    pub max_log_bytes: Option<String>,
    /// Longest plugin log line in bytes; longer ones are truncated [default: 4096].
    #[arg(long)]
    pub max_log_line: Option<usize>,
    /// Do not use the compiled-plugin cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The scheduler's run id, recorded in the run record (not part of the action key).
    #[arg(long, env = "SLUICE_RUN_ID")]
    pub run_id: Option<String>,
    /// The run's logical date (`YYYY-MM-DD`): anchors freshness gates; recorded, not part of
    /// the action key. With a date-partitioned spec it defaults to the partition.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub logical_date: Option<String>,
    /// A TOML file of `[[checks]]` quality gates (added to the spec's own).
    #[arg(long, value_name = "FILE")]
    pub checks: Vec<PathBuf>,
    /// Input schema contract file (JSON); written from this run's input if it does not exist.
    #[arg(long, value_name = "FILE")]
    pub schema_contract: Option<PathBuf>,
    /// What to do when the input schema differs from the contract [default: fail].
    #[arg(long, value_enum, requires = "schema_contract")]
    pub on_schema_change: Option<crate::contract::OnSchemaChange>,
    /// Append OpenLineage RunEvents (START, then COMPLETE or FAIL) to FILE, one JSON object
    /// a line; `OPENLINEAGE_URL` sends them over HTTP as well.
    #[arg(long, value_name = "FILE")]
    pub lineage_file: Option<PathBuf>,
}

/// Run `sluice run`; under Dagster Pipes (its environment variables set), report the run
/// to Dagster as well.
pub fn execute(args: &RunArgs, m: &ArgMatches) -> Result<()> {
    let mut pipes = crate::pipes::Session::from_env()?;
    let result = run_and_report(args, m, pipes.as_mut());
    if let Some(p) = pipes.as_mut() {
        let reported = match &result {
            Err(Error::Quality { checks, .. }) => p.report_checks(checks),
            _ => Ok(()),
        };
        if let Err(e) = reported.and_then(|()| p.close(result.as_ref().err())) {
            tracing::warn!("could not report to Dagster Pipes: {e}");
        }
    }
    result
}

fn run_and_report(args: &RunArgs, m: &ArgMatches, mut pipes: Option<&mut crate::pipes::Session>) -> Result<()> {
    let spec = if let Some(pipeline) = &args.pipeline {
        let loaded = crate::spec::LoadedSpec::load(pipeline)?;
        let opts = crate::spec::ResolveOptions {
            allow_unpinned: args.allow_unpinned,
            run_id: args.run_id.clone(),
            output: args.output.clone(),
        };
        // Under Dagster Pipes the asset's partition is the default partition.
        let partition = args
            .partition
            .as_deref()
            .or_else(|| pipes.as_ref().and_then(|p| p.partition_key()));
        let mut spec = loaded.resolve(partition, &crate::store::PluginStore::default_location(), &opts)?;
        spec.overwrite = args.overwrite;
        spec.threads = args.threads.map(|t| t as usize);
        spec
    } else {
        command_line_spec(args, m)?
    };
    let mut spec = spec;
    if spec.context.run_id.is_none() {
        spec.context.run_id = pipes.as_ref().and_then(|p| p.run_id().map(str::to_string));
    }
    if let Some(d) = &args.logical_date {
        if crate::spec::parse_date(d).is_none() {
            return Err(Error::usage(format!(
                "--logical-date `{d}` is not a date like `2026-11-01`"
            )));
        }
        spec.context.logical_date = Some(d.clone());
    }
    if let Some(path) = &args.schema_contract {
        spec.input_contract = Some(crate::contract::InputContract {
            path: path.clone(),
            on_change: args.on_schema_change.unwrap_or_default(),
        });
    }
    for f in &args.checks {
        spec.checks.extend(crate::quality::ChecksFile::load(f)?);
    }
    // Opened before any work, so a lineage file that cannot be written stops the command
    // now (exit 2) rather than after the run.
    let mut lineage = match crate::lineage::Config::from_env(args.lineage_file.as_deref())? {
        Some(c) => Some(crate::lineage::Emitter::new(c, &spec)?),
        None => None,
    };
    let result = limits(args)
        .and_then(|limits| {
            Runtime::new(RuntimeOptions {
                limits,
                cache_dir: cache_dir(args.no_cache),
            })
        })
        .and_then(|rt| match lineage.as_mut() {
            Some(l) => pipeline::run_observed(&rt, &spec, l),
            None => pipeline::run(&rt, &spec),
        });
    if let Some(l) = lineage.as_mut() {
        l.finish(result.as_ref());
    }
    let summary = match result {
        Ok(s) => s,
        Err(e @ Error::Quality { .. }) => {
            if let Error::Quality { checks, .. } = &e {
                let line = serde_json::json!({
                    "status": "failed_quality",
                    "output": spec.output,
                    "exit_code": e.exit_code() as u8,
                    "checks": checks,
                });
                println!("{line}");
                super::summary_printed();
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if let Some(p) = pipes.as_mut() {
        let value = serde_json::to_value(&summary).expect("summary serializes");
        p.report_checks(&value["checks"])?;
        p.report_materialization(&value)?;
    }
    if summary.status == "already_complete" {
        println!("{}", serde_json::to_string(&summary).expect("summary serializes"));
        return Ok(());
    }
    tracing::info!(
        rows_in = summary.rows_in,
        rows_out = summary.rows_out,
        chunks = summary.chunks,
        resumed = summary.chunks_resumed,
        elapsed_ms = summary.elapsed_ms,
        "wrote {} rows to `{}`",
        summary.rows_out,
        summary.output.display()
    );
    println!("{}", serde_json::to_string(&summary).expect("summary serializes"));
    Ok(())
}

/// The compile cache directory, unless disabled.
pub fn cache_dir(no_cache: bool) -> Option<PathBuf> {
    if no_cache {
        None
    } else {
        crate::engine::default_cache_dir()
    }
}

/// The limits the flags ask for.
pub fn limits(args: &RunArgs) -> Result<Limits> {
    let mut limits = Limits::default();
    if let Some(f) = args.fuel_per_call {
        limits.fuel_per_call = f;
    }
    if let Some(s) = &args.max_memory {
        limits.memory_bytes = parse_size("--max-memory", s)?;
    }
    if let Some(s) = &args.max_output_bytes {
        limits.max_output_bytes = parse_size("--max-output-bytes", s)?;
    }
    if let Some(s) = &args.max_call_time {
        limits.call_time_ms = parse_duration_ms("--max-call-time", s)?;
    }
    if let Some(s) = &args.max_stack {
        limits.stack_bytes = parse_size("--max-stack", s)?;
    }
    if let Some(s) = &args.max_log_bytes {
        limits.max_log_bytes = parse_size("--max-log-bytes", s)?;
    }
    let counts = [
        (args.max_table_elements, &mut limits.table_elements),
        (args.max_instances, &mut limits.instances),
        (args.max_tables, &mut limits.tables),
        (args.max_memories, &mut limits.memories),
        (args.max_resources, &mut limits.resources),
    ];
    for (flag, limit) in counts {
        if let Some(n) = flag {
            *limit = n;
        }
    }
    if let Some(n) = args.max_log_line {
        limits.max_log_line = n;
    }
    limits.validate()?;
    Ok(limits)
}

/// Parse `500ms`, `60s`, `2m`, `1h` (a bare number is seconds) into milliseconds.
pub fn parse_duration_ms(flag: &str, s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| Error::usage(format!("{flag}: `{s}` is not a duration like `60s`")))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(Error::usage(format!(
                "{flag}: unknown unit in `{s}`; use ms, s, m or h"
            )));
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| Error::usage(format!("{flag}: `{s}` is too large")))
}

/// Split `P.wasm@sha256:HEX` into the path and the pin; other paths have no pin.
fn split_pin(arg: &std::path::Path) -> (PathBuf, Option<String>) {
    let text = arg.to_string_lossy();
    match text.rfind("@sha256:") {
        Some(at) => (PathBuf::from(&text[..at]), Some(text[at + 1..].to_string())),
        None => (arg.to_path_buf(), None),
    }
}

fn command_line_spec(args: &RunArgs, m: &ArgMatches) -> Result<RunSpec> {
    let plugins = scope_configs(args, m)?;
    let delimiter = match args.csv_delimiter.as_bytes() {
        [b] => *b,
        _ => {
            return Err(Error::usage(format!(
                "--csv-delimiter must be one byte, got `{}`",
                args.csv_delimiter
            )));
        }
    };
    let spec = RunSpec {
        inputs: args.input.clone(),
        source: SourceOptions {
            format: args.input_format,
            batch_rows: args.batch_rows.max(1),
            csv_header: !args.csv_no_header,
            csv_delimiter: delimiter,
            ..SourceOptions::default()
        },
        plugins,
        output: args.output.clone().expect("clap requires --output without a spec"),
        format: args.format,
        writer: WriterOptions {
            compression: args.compression.clone(),
            row_group_rows: args.row_group_rows,
            ..WriterOptions::default()
        },
        chunk_rows: args.chunk_rows,
        input_digest: args.input_digest,
        overwrite: args.overwrite,
        force: false,
        context: crate::pipeline::RunContext {
            run_id: args.run_id.clone(),
            ..Default::default()
        },
        parent: None,
        checks: Vec::new(),
        input_contract: None,
        classification: None,
        threads: args.threads.map(|t| t as usize),
        name: None,
    };
    Ok(spec)
}

/// Attach each `--config` to the nearest `--plugin` before it on the command line.
fn scope_configs(args: &RunArgs, m: &ArgMatches) -> Result<Vec<PluginSpec>> {
    let plugin_idx: Vec<usize> = m.indices_of("plugin").map(|i| i.collect()).unwrap_or_default();
    let config_idx: Vec<usize> = m.indices_of("config").map(|i| i.collect()).unwrap_or_default();
    let mut specs: Vec<PluginSpec> = args
        .plugin
        .iter()
        .map(|p| {
            let (path, pin) = split_pin(p);
            PluginSpec {
                sha256: pin,
                ..PluginSpec::new(path, Vec::new())
            }
        })
        .collect();
    for (kv, idx) in args.config.iter().zip(config_idx) {
        let Some(owner) = plugin_idx.iter().rposition(|&p| p < idx) else {
            return Err(Error::usage(format!(
                "--config `{kv}` comes before any --plugin; put it after the plugin it configures"
            )));
        };
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Error::usage(format!("--config `{kv}` is not KEY=VALUE")));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(Error::usage(format!("--config `{kv}` has an empty key")));
        }
        let cfg = &mut specs[owner].config;
        if cfg.iter().any(|(ek, _)| ek == k) {
            return Err(Error::usage(format!(
                "--config key `{k}` is given twice for plugin `{}`",
                specs[owner].path.display()
            )));
        }
        cfg.push((k.to_string(), v.to_string()));
    }
    Ok(specs)
}

/// Parse `123`, `64KiB`, `512MiB`, `1GiB` (also KB/MB/GB as powers of 1000).
pub fn parse_size(flag: &str, s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| Error::usage(format!("{flag}: `{s}` is not a size like `512MiB`")))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(Error::usage(format!(
                "{flag}: unknown unit in `{s}`; use B, KiB, MiB or GiB"
            )));
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| Error::usage(format!("{flag}: `{s}` is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("x", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("x", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("x", "42").unwrap(), 42);
        assert!(parse_size("x", "12 parsecs").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("x", "500ms").unwrap(), 500);
        assert_eq!(parse_duration_ms("x", "60s").unwrap(), 60_000);
        assert_eq!(parse_duration_ms("x", "90").unwrap(), 90_000);
        assert_eq!(parse_duration_ms("x", "2m").unwrap(), 120_000);
        assert!(parse_duration_ms("x", "soon").is_err());
    }

    #[test]
    fn pins() {
        let hex = "ab".repeat(32);
        let (p, pin) = split_pin(std::path::Path::new(&format!("dir@2/f.wasm@sha256:{hex}")));
        assert_eq!((p, pin), (PathBuf::from("dir@2/f.wasm"), Some(format!("sha256:{hex}"))));
        assert_eq!(
            split_pin(std::path::Path::new("a@b.wasm")),
            (PathBuf::from("a@b.wasm"), None)
        );
    }
}
