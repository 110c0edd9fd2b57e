//! `sluice combine --tasks DIR --output OUT`: fold the task reports of a distributed job
//! (Spark, Ray) into one run record that `sluice verify` checks.

use std::path::PathBuf;

use clap::Args;

use crate::distributed;
use crate::error::Result;

/// Arguments of `sluice combine`.
#[derive(Debug, Args)]
pub struct CombineArgs {
    /// The directory the workers wrote their task reports (`*.json`) to.
    #[arg(long)]
    pub tasks: PathBuf,
    /// The job's output directory; the record goes to `OUT/_sluice/manifest.json`.
    #[arg(long)]
    pub output: PathBuf,
}

/// Run `sluice combine`.
pub fn execute(args: &CombineArgs) -> Result<()> {
    let record = distributed::combine(distributed::read_reports(&args.tasks)?)?;
    distributed::write_record(&args.output, &record)?;
    tracing::info!(output = %args.output.display(), tasks = record.tasks.len(), rows_out = record.rows_out, "run record written");
    println!(
        "{}",
        serde_json::json!({
            "status": "ok",
            "output": args.output,
            "tasks": record.tasks.len(),
            "rows_in": record.rows_in,
            "rows_out": record.rows_out,
            "output_rowset_digest": record.output_rowset_digest,
            "root_digest": record.root_digest,
        })
    );
    Ok(())
}
