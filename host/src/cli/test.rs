//! `sluice test P.wasm --cases DIR`: run a plugin through its conformance cases and the
//! checks every plugin must pass (see [`crate::conformance`]).

use std::path::PathBuf;

use clap::Args;

use crate::conformance::{self, CaseResult};
use crate::engine::{Runtime, RuntimeOptions};
use crate::error::{Error, Result};

/// Arguments of `sluice test`.
#[derive(Debug, Args)]
#[command(
    after_help = "A case is a directory holding `case.toml` ([config] table, optional batch_rows and \
expect_error), one `input.*` file (csv, ndjson, parquet, arrow, arrows) and `expected.arrows` (the exact \
output). Every case also checks that a second run with another clock and seed is byte-identical, and that \
splitting the input at every batch boundary (checkpoint/restore, or a fresh instance for a stateless \
plugin) gives the same output. Exit code 0 if all pass, 4 if the plugin fails any, 2 for bad cases."
)]
pub struct TestArgs {
    /// The plugin `.wasm` file.
    pub plugin: PathBuf,
    /// A directory of case directories (or one case directory).
    #[arg(long)]
    pub cases: PathBuf,
    /// Write each case's `expected.arrows` from this plugin's output (after the determinism
    /// and checkpoint checks pass) instead of comparing. Review the result with `sluice show`.
    #[arg(long)]
    pub bless: bool,
    /// Do not use the compile cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Run `sluice test`: one line per case on stdout, then a JSON summary line.
pub fn execute(args: &TestArgs) -> Result<()> {
    let cases = conformance::load_cases(&args.cases)?;
    let opts = if args.no_cache {
        RuntimeOptions::default()
    } else {
        RuntimeOptions::with_default_cache()
    };
    let rt = Runtime::new(opts)?;
    let plugin = rt.load_plugin(&args.plugin)?;
    let name = plugin.info().name.clone();
    let mut results: Vec<CaseResult> = Vec::with_capacity(cases.len());
    for case in &cases {
        let r = conformance::run_case(&plugin, case, args.bless)?;
        match (&r.failure, &r.blessed) {
            (Some(why), _) => println!("FAIL {}: {why}", r.name),
            (None, Some(path)) => println!("bless {}: wrote `{}` ({} rows)", r.name, path.display(), r.rows_out),
            (None, None) => println!(
                "ok   {} ({} rows in, {} out, {} split runs)",
                r.name, r.rows_in, r.rows_out, r.splits
            ),
        }
        results.push(r);
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| r.name.as_str())
        .collect();
    let summary = serde_json::json!({
        "status": if failed.is_empty() { "ok" } else { "failed" },
        "plugin": name,
        "sha256": plugin.sha256(),
        "cases": results.len(),
        "passed": results.len() - failed.len(),
        "failed": failed,
        "blessed": args.bless,
    });
    if failed.is_empty() {
        println!("{summary}");
        return Ok(());
    }
    let first = results
        .iter()
        .find_map(|r| r.failure.as_ref().map(|f| (r.name.as_str(), f)));
    let err = Error::plugin(
        &name,
        format!(
            "failed {} of {} conformance cases in `{}`; first, `{}`: {}",
            failed.len(),
            results.len(),
            args.cases.display(),
            first.map(|f| f.0).unwrap_or_default(),
            first.map(|f| f.1.as_str()).unwrap_or_default()
        ),
    );
    let mut summary = summary;
    summary["error"] = serde_json::json!({ "category": err.category(), "message": err.to_string() });
    summary["exit_code"] = serde_json::json!(err.exit_code() as u8);
    println!("{summary}");
    super::summary_printed();
    Err(err)
}
