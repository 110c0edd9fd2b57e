//! `sluice plan PIPELINE.toml`: estimate rows, bytes, CPU time and output size of a run from
//! input metadata and one sample chunk through the real plugin chain; writes no output.

use std::path::PathBuf;

use clap::Args;

use crate::engine::{Runtime, RuntimeOptions};
use crate::error::Result;
use crate::sandbox::Limits;

/// Arguments of `sluice plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The pipeline spec (`pipeline.toml`).
    pub pipeline: PathBuf,
    /// The partition to plan (fills `{key}` in the spec's paths).
    #[arg(long)]
    pub partition: Option<String>,
    /// Plan spec plugins that have no sha256 pin.
    #[arg(long)]
    pub allow_unpinned: bool,
    /// Rows of the sample chunk run through the plugin chain.
    #[arg(long, default_value_t = 65_536)]
    pub sample_rows: usize,
    /// Print only the JSON plan (one line), no table.
    #[arg(long)]
    pub json: bool,
    /// Do not use the compiled-plugin cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Run `sluice plan`.
pub fn execute(args: &PlanArgs) -> Result<()> {
    let loaded = crate::spec::LoadedSpec::load(&args.pipeline)?;
    let opts = crate::spec::ResolveOptions {
        allow_unpinned: args.allow_unpinned,
        run_id: None,
        output: None,
    };
    let spec = loaded.resolve(
        args.partition.as_deref(),
        &crate::store::PluginStore::default_location(),
        &opts,
    )?;
    let rt = Runtime::new(RuntimeOptions {
        limits: Limits::default(),
        cache_dir: super::run::cache_dir(args.no_cache),
    })?;
    let plan = crate::plan::plan(&rt, &spec, args.sample_rows)?;
    if !args.json {
        println!("{}", crate::plan::table(&plan));
    }
    println!("{}", serde_json::to_string(&plan).expect("plan serializes"));
    Ok(())
}
