//! `sluice plugin add|list|lock`: the plugin store of versioned, content-addressed artifacts.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::engine::{Runtime, RuntimeOptions};
use crate::error::{Error, Result};
use crate::spec::{LoadedSpec, LockFile};
use crate::store::PluginStore;

/// Arguments of `sluice plugin`.
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// The store directory (default `$SLUICE_PLUGIN_STORE`, else `./.sluice/plugins`).
    #[arg(long, global = true)]
    pub store: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// `sluice plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Check a plugin and store it under its name and version, content-addressed.
    Add {
        /// The `.wasm` file.
        plugin: PathBuf,
    },
    /// List stored plugin versions.
    List,
    /// Write `sluice.lock` beside a pipeline spec, pinning each `use = "name@version"`.
    Lock {
        /// The pipeline spec.
        pipeline: PathBuf,
    },
}

/// Run `sluice plugin`.
pub fn execute(args: &PluginArgs) -> Result<()> {
    let store = args
        .store
        .clone()
        .map(PluginStore::at)
        .unwrap_or_else(PluginStore::default_location);
    match &args.command {
        PluginCommand::Add { plugin } => {
            let rt = Runtime::new(RuntimeOptions::with_default_cache())?;
            let p = store.add(&rt, plugin)?;
            tracing::info!(
                "stored {}@{} ({}) in `{}`",
                p.name,
                p.version,
                p.sha256,
                store.root().display()
            );
            println!("{}", serde_json::to_string(&p).expect("serializes"));
        }
        PluginCommand::List => {
            for p in store.list()? {
                println!("{}@{}\t{}\t{}", p.name, p.version, p.sha256, p.description);
            }
        }
        PluginCommand::Lock { pipeline } => {
            let loaded = LoadedSpec::load(pipeline)?;
            let mut lock = LockFile::default();
            for p in &loaded.spec.plugins {
                if let Some(u) = &p.use_ {
                    let (sha, _) = store.resolve(u)?;
                    lock.plugins.insert(u.clone(), sha);
                }
            }
            let path = pipeline.with_file_name("sluice.lock");
            let text = format!(
                "# Pins for `use = \"name@version\"` plugins of `{}`. Written by `sluice plugin lock`; commit it.\n{}",
                pipeline
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                toml::to_string(&lock).map_err(|e| Error::usage(format!("cannot write the lock file: {e}")))?
            );
            crate::outdir::write_atomic(&path, text.as_bytes())?;
            println!("{}", serde_json::json!({ "lock": path, "plugins": lock.plugins }));
        }
    }
    Ok(())
}
