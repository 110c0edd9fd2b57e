//! `sluice show PATH`: the first rows of a data file or an output directory, as a table.

use std::path::PathBuf;

use arrow::array::RecordBatch;
use clap::Args;

use crate::error::{Error, Result};
use crate::source::{Source, SourceOptions};

/// Arguments of `sluice show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A data file, or an output directory of `sluice run` (its `data/` is read).
    pub path: PathBuf,
    /// Rows to print.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

/// Run `sluice show`.
pub fn execute(args: &ShowArgs) -> Result<()> {
    let data = args.path.join("data");
    let path = if data.is_dir() { data } else { args.path.clone() };
    let opts = SourceOptions {
        batch_rows: args.limit.clamp(1, 65_536),
        ..SourceOptions::default()
    };
    let source = Source::open(&[path], &opts)?;
    let schema = source.schema();
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    for b in source {
        let b = b?;
        let take = (args.limit - rows).min(b.num_rows());
        rows += take;
        batches.push(b.slice(0, take));
        if rows >= args.limit {
            break;
        }
    }
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(schema));
    }
    let table = arrow::util::pretty::pretty_format_batches(&batches)
        .map_err(|e| Error::input(format!("cannot format rows: {e}")))?;
    println!("{table}");
    Ok(())
}
