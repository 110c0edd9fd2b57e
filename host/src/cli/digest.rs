//! `sluice digest PATH...`: the row count and order-independent row-set digest of data
//! files, to compare outputs written by different engines or partitionings.

use std::path::PathBuf;

use clap::Args;

use crate::digest::{DataDigest, RowSetDigest};
use crate::error::Result;
use crate::source::{Source, SourceOptions};

/// Arguments of `sluice digest`.
#[derive(Debug, Args)]
pub struct DigestArgs {
    /// Data files or directories (a `sluice run` output directory reads its `data/`).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Run `sluice digest`: print one JSON line.
pub fn execute(args: &DigestArgs) -> Result<()> {
    let paths: Vec<PathBuf> = args
        .paths
        .iter()
        .map(|p| {
            let data = p.join("data");
            if p.join("_sluice").is_dir() && data.is_dir() {
                data
            } else {
                p.clone()
            }
        })
        .collect();
    let source = Source::open(&paths, &SourceOptions::default())?;
    let schema = source.schema();
    let mut rows = RowSetDigest::new(&schema);
    let mut data = DataDigest::new(&schema);
    for batch in source {
        let batch = batch?;
        rows.update(&batch);
        data.update(&batch);
    }
    println!(
        "{}",
        serde_json::json!({
            "rows": data.rows(),
            "rowset_digest": rows.finish(),
            "data_digest": data.finish(),
            "schema": crate::digest::schema_fingerprint(&schema),
        })
    );
    Ok(())
}
