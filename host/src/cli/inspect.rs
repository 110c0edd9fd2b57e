//! `sluice inspect P.wasm`: what a plugin is, without running it on data.

use std::path::PathBuf;

use clap::Args;

use crate::engine::{Runtime, RuntimeOptions};
use crate::error::Result;

/// Arguments of `sluice inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The plugin `.wasm` file.
    pub plugin: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run `sluice inspect`.
pub fn execute(args: &InspectArgs) -> Result<()> {
    let rt = Runtime::new(RuntimeOptions::with_default_cache())?;
    let p = rt.load_plugin(&args.plugin)?;
    let i = p.info();
    if args.json {
        println!("{}", serde_json::to_string_pretty(i).expect("info serializes"));
    } else {
        println!("name:        {}", i.name);
        println!("version:     {}", i.version);
        println!("description: {}", i.description);
        println!("stateful:    {}", i.stateful);
        println!("abi:         sluice:transform@{}", i.abi_version);
        println!("sha256:      {}", i.sha256.trim_start_matches("sha256:"));
        println!("size:        {} bytes", i.size);
        println!("imports:     {}", i.imports.join(", "));
        println!("exports:     {}", i.exports.join(", "));
    }
    Ok(())
}
