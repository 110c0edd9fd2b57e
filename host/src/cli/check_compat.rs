//! `sluice check-compat OLD.wasm NEW.wasm --input-schema FILE`: is the new plugin's output
//! schema an additive change of the old one's, or a breaking one?

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use clap::Args;

use crate::contract::{self, Change};
use crate::engine::{Runtime, RuntimeOptions};
use crate::error::{Error, Result};
use crate::pipeline::Chain;
use crate::source::{Source, SourceOptions};

/// Arguments of `sluice check-compat`.
#[derive(Debug, Args)]
pub struct CheckCompatArgs {
    /// The plugin version in production.
    pub old: PathBuf,
    /// The candidate version.
    pub new: PathBuf,
    /// The input the plugins see: a data file (Parquet, Arrow IPC, CSV, NDJSON; only its
    /// schema is read) or a schema contract `.json` (see `--schema-contract` of `sluice run`).
    #[arg(long, value_name = "FILE")]
    pub input_schema: PathBuf,
    /// `KEY=VALUE` config for both plugins (repeatable).
    #[arg(long, short = 'c', value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// `KEY=VALUE` config for the old plugin only (overrides `--config`).
    #[arg(long, value_name = "KEY=VALUE")]
    pub old_config: Vec<String>,
    /// `KEY=VALUE` config for the new plugin only (overrides `--config`).
    #[arg(long, value_name = "KEY=VALUE")]
    pub new_config: Vec<String>,
}

/// Run `sluice check-compat`: exit 0 when identical or additive, 3 when breaking.
pub fn execute(args: &CheckCompatArgs) -> Result<()> {
    let input = input_schema(&args.input_schema)?;
    let rt = Runtime::new(RuntimeOptions::with_default_cache())?;
    let (old, old_info) = output_schema(&rt, &args.old, &input, &configs(&args.config, &args.old_config)?)?;
    let (new, new_info) = output_schema(&rt, &args.new, &input, &configs(&args.config, &args.new_config)?)?;
    let changes: Vec<Change> = contract::compare(&old, &new);
    let verdict = contract::verdict(&changes);
    let summary = serde_json::json!({
        "status": verdict,
        "old": old_info,
        "new": new_info,
        "changes": changes,
    });
    let report = changes.iter().map(Change::line).collect::<Vec<_>>().join("\n");
    if verdict != "breaking" {
        tracing::info!("{verdict}: the new output schema is compatible with the old one");
        if !report.is_empty() {
            eprintln!("{report}");
        }
        println!("{summary}");
        return Ok(());
    }
    println!("{summary}");
    super::summary_printed();
    Err(Error::Quality {
        message: format!(
            "`{}` changes the output schema of `{}` in a breaking way:\n{report}\nReaders of the old output (and old partitions read under the new schema) would break; keep the old columns, or release it as a new major version with a new output",
            args.new.display(),
            args.old.display()
        ),
        checks: summary["changes"].clone(),
    })
}

/// A schema from a contract `.json`, or from a data file's header.
fn input_schema(path: &Path) -> Result<SchemaRef> {
    if path.extension().is_some_and(|e| e == "json") {
        return contract::read_schema(path);
    }
    Ok(Source::open(&[path.to_path_buf()], &SourceOptions::default())?.schema())
}

fn configs(shared: &[String], own: &[String]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for kv in shared.iter().chain(own) {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Error::usage(format!("config `{kv}` is not KEY=VALUE")));
        };
        let k = k.trim().to_string();
        out.retain(|(ek, _)| *ek != k);
        out.push((k, v.to_string()));
    }
    Ok(out)
}

/// Open `path` over `input` (no data moves) and return its declared output schema.
fn output_schema(
    rt: &Runtime,
    path: &Path,
    input: &SchemaRef,
    config: &[(String, String)],
) -> Result<(SchemaRef, serde_json::Value)> {
    let p = rt.load_plugin(path)?;
    let info = serde_json::json!({
        "path": path,
        "name": p.info().name,
        "version": p.info().version,
        "sha256": p.sha256(),
    });
    let chain = Chain::open(&[(p, config.to_vec())], input, None, [0; 32])?;
    Ok((Arc::clone(chain.output_schema()), info))
}
