//! `sluice backfill PIPELINE.toml --partitions A..B`: run many partitions, skipping the ones
//! already done, reprocessing the ones whose inputs or plugins changed.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::engine::{Runtime, RuntimeOptions};
use crate::error::{Error, Result};
use crate::outdir::{self, Existing};
use crate::spec::{LoadedSpec, ResolveOptions, expand_partitions};
use crate::store::PluginStore;

/// Arguments of `sluice backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The pipeline spec.
    pub pipeline: PathBuf,
    /// Partitions: an inclusive date range `2026-11-01..2026-11-07` or a list `a,b,c`.
    #[arg(long)]
    pub partitions: String,
    /// Which partitions to run again: `missing` (no finished output), `changed` (missing,
    /// or finished with another action key: inputs, plugins or settings changed), `all`.
    #[arg(long, value_enum, default_value_t = Reprocess::Changed)]
    pub reprocess: Reprocess,
    /// Run spec plugins that have no sha256 pin.
    #[arg(long)]
    pub allow_unpinned: bool,
    /// The scheduler's run id, recorded in every partition's run record.
    #[arg(long, env = "SLUICE_RUN_ID")]
    pub run_id: Option<String>,
    /// Do not use the compiled-plugin cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Append each partition's OpenLineage RunEvents to FILE, one JSON object a line
    /// (`OPENLINEAGE_URL` sends them over HTTP as well).
    #[arg(long, value_name = "FILE")]
    pub lineage_file: Option<PathBuf>,
}

/// Which partitions a backfill runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Reprocess {
    /// Only partitions without a finished output.
    Missing,
    /// Missing ones and those whose action key changed.
    Changed,
    /// Every partition.
    All,
}

/// Run `sluice backfill`.
pub fn execute(args: &BackfillArgs) -> Result<()> {
    let loaded = LoadedSpec::load(&args.pipeline)?;
    let partitions = expand_partitions(&args.partitions)?;
    let lineage = crate::lineage::Config::from_env(args.lineage_file.as_deref())?;
    if let Some(path) = lineage.as_ref().and_then(|c| c.file.as_ref()) {
        // Checked before the first partition, not after it ran.
        crate::lineage::open_file(path)?;
    }
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: super::run::cache_dir(args.no_cache),
        ..Default::default()
    })?;
    let store = PluginStore::default_location();
    let opts = ResolveOptions {
        allow_unpinned: args.allow_unpinned,
        run_id: args.run_id.clone(),
        output: None,
    };
    let mut results = Vec::new();
    let mut first_error: Option<Error> = None;
    for p in &partitions {
        let outcome = run_one(&rt, &loaded, &store, &opts, p, args.reprocess, lineage.as_ref());
        let entry = match outcome {
            Ok((status, rows)) => {
                tracing::info!(partition = %p, status, rows_out = rows, "partition done");
                serde_json::json!({ "partition": p, "status": status, "rows_out": rows })
            }
            Err(e) => {
                tracing::error!(partition = %p, "partition failed: {e}");
                let v = serde_json::json!({ "partition": p, "status": "failed", "exit_code": e.exit_code() as u8, "error": e.to_string() });
                first_error.get_or_insert(e);
                v
            }
        };
        results.push(entry);
    }
    let count = |s: &str| results.iter().filter(|r| r["status"] == s).count();
    let summary = serde_json::json!({
        "status": if first_error.is_none() { "ok" } else { "failed" },
        "partitions": partitions.len(),
        "ran": count("ok"),
        "skipped": count("already_complete") + count("skipped"),
        "failed": count("failed"),
        "results": results,
    });
    println!("{summary}");
    super::summary_printed();
    match first_error {
        None => Ok(()),
        Some(e) => {
            let failed = count("failed");
            Err(e.prefixed(&format!(
                "{failed} of {} partitions failed (the others are done); first: ",
                partitions.len()
            )))
        }
    }
}

fn run_one(
    rt: &Runtime,
    loaded: &LoadedSpec,
    store: &PluginStore,
    opts: &ResolveOptions,
    partition: &str,
    reprocess: Reprocess,
    lineage: Option<&crate::lineage::Config>,
) -> Result<(&'static str, u64)> {
    let mut spec = loaded.resolve(Some(partition), store, opts)?;
    if reprocess == Reprocess::Missing
        && let Existing::Complete(_) = outdir::inspect(&spec.output)?
    {
        return Ok(("skipped", 0));
    }
    // A partition whose inputs or plugins changed has another action key: it is replaced
    // (safely, see `--overwrite`). The same key means nothing changed: a no-op.
    spec.overwrite = true;
    spec.force = reprocess == Reprocess::All;
    // Each partition is its own lineage run (its own runId, START and COMPLETE or FAIL).
    // The file was checked before the first partition; if it became unwritable since, the
    // partition still runs (lineage never fails the data run).
    let emitter = lineage.and_then(|c| match crate::lineage::Emitter::new(c.clone(), &spec) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(partition, "no OpenLineage events for this partition: {e}");
            None
        }
    });
    let s = match emitter {
        Some(mut emitter) => {
            let result = crate::pipeline::run_observed(rt, &spec, &mut emitter);
            emitter.finish(result.as_ref());
            result?
        }
        None => crate::pipeline::run(rt, &spec)?,
    };
    Ok((
        if s.status == "already_complete" {
            "already_complete"
        } else {
            "ok"
        },
        s.rows_out,
    ))
}
