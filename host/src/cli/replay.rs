//! `sluice replay OUT`: re-execute a recorded run and compare it chunk by chunk; or, with
//! `--plugin NAME=NEW.wasm --output OUT2`, reprocess the same inputs with a new plugin
//! version into a run linked to its parent, and summarize what changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use clap::Args;

use crate::digest;
use crate::engine::{Runtime, RuntimeOptions};
use crate::error::{Error, Result};
use crate::journal::ChunkEntry;
use crate::pipeline::{self, Manifest, ParentLink, PluginSpec, RunSpec};
use crate::source::{InputFormat, Source, SourceOptions};
use crate::store::PluginStore;

/// Arguments of `sluice replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The output directory of a finished run.
    pub run: PathBuf,
    /// Replace a plugin of the chain, by name: `NAME=NEW.wasm` (repeatable).
    #[arg(long = "plugin", value_name = "NAME=PATH")]
    pub replace: Vec<String>,
    /// Where to write the reprocessed run (required with --plugin).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Do not use the compiled-plugin cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Run `sluice replay`.
pub fn execute(args: &ReplayArgs) -> Result<()> {
    let manifest = read_manifest(&args.run)?;
    check_inputs(&manifest)?;
    let store = PluginStore::default_location();
    let mut plugins = Vec::new();
    for (rec, p) in manifest.spec.plugins.iter().zip(&manifest.plugins) {
        let path = find_plugin(&rec.path, &rec.sha256, &p.info.name, &store)?;
        let mut config = rec.config.clone();
        for (k, v) in &mut config {
            if rec.secret_keys.contains(k) {
                *v = secret_from_previous_env(&manifest, k)?;
            }
        }
        plugins.push((
            p.info.name.clone(),
            PluginSpec {
                path,
                config,
                sha256: Some(rec.sha256.clone()),
                secret_keys: rec.secret_keys.clone(),
                keeps: Vec::new(),
            },
        ));
    }
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: super::run::cache_dir(args.no_cache),
        ..Default::default()
    })?;
    if args.replace.is_empty() {
        return replay_same(&rt, &args.run, &manifest, plugins.into_iter().map(|(_, p)| p).collect());
    }
    let Some(out2) = &args.output else {
        return Err(Error::usage(
            "--plugin NAME=NEW.wasm needs --output OUT2 for the reprocessed run",
        ));
    };
    for r in &args.replace {
        let Some((name, path)) = r.split_once('=') else {
            return Err(Error::usage(format!("--plugin `{r}` is not NAME=PATH")));
        };
        let Some(slot) = plugins.iter_mut().find(|(n, _)| n == name) else {
            let names: Vec<&str> = plugins.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::usage(format!(
                "the run has no plugin named `{name}`; its plugins are: {}",
                names.join(", ")
            )));
        };
        slot.1.path = PathBuf::from(path);
        slot.1.sha256 = None;
    }
    let mut spec = spec_from_record(&manifest, plugins.into_iter().map(|(_, p)| p).collect(), out2.clone())?;
    spec.parent = Some(ParentLink {
        output: args.run.clone(),
        action_key: manifest.action_key.clone(),
        root_digest: manifest.root_digest.clone(),
    });
    spec.context = manifest.context.clone();
    let summary = pipeline::run(&rt, &spec)?;
    let new = read_manifest(out2)?;
    let diff = diff_runs(&args.run, &manifest, out2, &new)?;
    eprintln!("{}", diff.human());
    println!(
        "{}",
        serde_json::json!({ "status": summary.status, "output": out2, "parent": args.run, "diff": diff.json() })
    );
    Ok(())
}

fn read_manifest(run: &Path) -> Result<Manifest> {
    let p = run.join("_sluice").join("manifest.json");
    let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::usage(format!(
            "`{}` has no run record (`_sluice/manifest.json`); replay needs a finished run",
            run.display()
        )),
        _ => Error::io("read", &p, e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::usage(format!("run record `{}` is unreadable: {e}", p.display())))
}

/// Every input must still have the digest it had.
fn check_inputs(m: &Manifest) -> Result<()> {
    for i in &m.inputs {
        if !i.path.exists() {
            return Err(Error::input(format!(
                "input `{}` of the recorded run no longer exists; replay refuses",
                i.path.display()
            )));
        }
        let got = digest::blake3_file(&i.path)?;
        if got != i.digest {
            return Err(Error::input(format!(
                "input `{}` changed since the run: its digest is {got}, the run record says {}; replay refuses",
                i.path.display(),
                i.digest
            )));
        }
    }
    Ok(())
}

fn find_plugin(recorded: &Path, sha256: &str, name: &str, store: &PluginStore) -> Result<PathBuf> {
    if recorded.exists() && digest::sha256_file(recorded).ok().as_deref() == Some(sha256) {
        return Ok(recorded.to_path_buf());
    }
    store.find(sha256).ok_or_else(|| {
        Error::usage(format!(
            "plugin `{name}` ({sha256}) is neither at its recorded path `{}` (missing or changed) nor in the plugin store `{}`; add that exact artifact with `sluice plugin add`",
            recorded.display(),
            store.root().display()
        ))
    })
}

fn secret_from_previous_env(m: &Manifest, key: &str) -> Result<String> {
    // Secrets are never recorded; replay reads them from the same variable the spec named.
    let env = m
        .context
        .pipeline
        .as_ref()
        .and_then(|p| crate::spec::LoadedSpec::load(p).ok())
        .and_then(|s| s.spec.plugins.iter().find_map(|p| p.secrets.get(key).cloned()));
    match env.and_then(|e| std::env::var(&e).ok()) {
        Some(v) => Ok(v),
        None => Err(Error::usage(format!(
            "the run used the secret config key `{key}`; its value is never recorded: set the environment variable its pipeline spec names"
        ))),
    }
}

fn spec_from_record(m: &Manifest, plugins: Vec<PluginSpec>, output: PathBuf) -> Result<RunSpec> {
    let r = &m.spec;
    let mut spec = RunSpec::new(r.inputs.clone(), output);
    spec.source = SourceOptions {
        format: r.input_format.as_deref().map(str::parse::<InputFormat>).transpose()?,
        batch_rows: r.batch_rows,
        csv_header: r.csv_header,
        csv_delimiter: r.csv_delimiter,
        infer_rows: r.infer_rows,
        schema: None,
    };
    spec.plugins = plugins;
    spec.format = r.format.parse()?;
    spec.writer = r.writer.clone();
    spec.chunk_rows = r.chunk_rows;
    spec.input_digest = r.input_digest;
    // Gates are part of the action key; freshness is judged from the recorded logical date.
    spec.checks = r.checks.clone();
    spec.input_contract = r.input_contract.clone();
    spec.classification = r.classification.clone();
    spec.context.logical_date = m.context.logical_date.clone();
    Ok(spec)
}

fn replay_same(rt: &Runtime, run: &Path, m: &Manifest, plugins: Vec<PluginSpec>) -> Result<()> {
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let scratch = run
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!(".{name}.sluice-replay"));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| Error::io("remove", &scratch, e))?;
    }
    let spec = spec_from_record(m, plugins, scratch.clone())?;
    let result = pipeline::run(rt, &spec).and_then(|_| read_manifest(&scratch));
    let _ = std::fs::remove_dir_all(&scratch);
    let again = result?;
    if again.action_key != m.action_key {
        return Err(Error::plugin(
            "replay",
            format!(
                "the re-executed run has another action key ({} vs {}): the engine settings or host version differ",
                again.action_key, m.action_key
            ),
        ));
    }
    if let Some(d) = first_divergence(&m.chunks, &again.chunks) {
        return Err(Error::plugin(
            "replay",
            format!("the re-execution diverges from the record: {d}"),
        ));
    }
    tracing::info!(
        chunks = m.chunks.len(),
        "replay matches the record: every chunk digest and fuel figure is identical"
    );
    println!(
        "{}",
        serde_json::json!({ "status": "identical", "run": run, "chunks": m.chunks.len(), "root_digest": m.root_digest })
    );
    Ok(())
}

fn first_divergence(a: &[ChunkEntry], b: &[ChunkEntry]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} chunks recorded, {} produced", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        let fields = [
            ("input digest", &x.input_digest, &y.input_digest),
            ("data digest", &x.data_digest, &y.data_digest),
            ("file digest", &x.output_digest, &y.output_digest),
        ];
        for (what, p, q) in fields {
            if p != q {
                return Some(format!("chunk {}: {what} {q} instead of {p}", x.chunk));
            }
        }
        if x.rows_out != y.rows_out {
            return Some(format!(
                "chunk {}: {} rows out instead of {}",
                x.chunk, y.rows_out, x.rows_out
            ));
        }
        if x.fuel != y.fuel {
            return Some(format!("chunk {}: fuel {:?} instead of {:?}", x.chunk, y.fuel, x.fuel));
        }
    }
    None
}

/// What changed between a run and its reprocessed child.
struct Diff {
    schema_before: String,
    schema_after: String,
    chunks: Vec<(u64, u64, u64, u64)>,
    rows_added: u64,
    rows_removed: u64,
    compared_columns: Vec<String>,
}

impl Diff {
    fn human(&self) -> String {
        let mut s = String::new();
        if self.schema_before == self.schema_after {
            s.push_str("schema: unchanged\n");
        } else {
            s.push_str(&format!(
                "schema: changed\n  before: {}\n  after:  {}\n",
                self.schema_before, self.schema_after
            ));
        }
        s.push_str("chunk  rows_in  rows_out_before  rows_out_after\n");
        for (c, i, a, b) in &self.chunks {
            s.push_str(&format!("{c:>5}  {i:>7}  {a:>15}  {b:>14}\n"));
        }
        s.push_str(&format!(
            "rows changed (compared on {} common columns): {} only before, {} only after",
            self.compared_columns.len(),
            self.rows_removed,
            self.rows_added
        ));
        s
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "schema_changed": self.schema_before != self.schema_after,
            "schema_before": self.schema_before,
            "schema_after": self.schema_after,
            "chunks": self.chunks.iter().map(|(c, i, a, b)| serde_json::json!({"chunk": c, "rows_in": i, "rows_out_before": a, "rows_out_after": b})).collect::<Vec<_>>(),
            "rows_only_before": self.rows_removed,
            "rows_only_after": self.rows_added,
            "compared_columns": self.compared_columns,
        })
    }
}

fn diff_runs(a_dir: &Path, a: &Manifest, b_dir: &Path, b: &Manifest) -> Result<Diff> {
    let chunks = a
        .chunks
        .iter()
        .zip(&b.chunks)
        .map(|(x, y)| (x.chunk, x.input_rows[1], x.rows_out, y.rows_out))
        .collect();
    let read = |dir: &Path| -> Result<Source> { Source::open(&[dir.join("data")], &SourceOptions::default()) };
    let (sa, sb) = (read(a_dir)?, read(b_dir)?);
    let common: Vec<String> = sa
        .schema()
        .fields()
        .iter()
        .filter(|f| {
            sb.schema()
                .field_with_name(f.name())
                .is_ok_and(|g| g.data_type() == f.data_type())
        })
        .map(|f| f.name().clone())
        .collect();
    // Multiset difference of rows on the common columns, by a 128-bit hash per row.
    let mut counts: HashMap<u128, i64> = HashMap::new();
    let mut tally = |src: Source, sign: i64| -> Result<()> {
        let schema = src.schema();
        let idx: Vec<usize> = common
            .iter()
            .map(|c| schema.index_of(c).expect("common column"))
            .collect();
        let fields = idx
            .iter()
            .map(|&i| arrow::row::SortField::new(schema.field(i).data_type().clone()))
            .collect();
        let conv =
            arrow::row::RowConverter::new(fields).map_err(|e| Error::input(format!("cannot compare rows: {e}")))?;
        for batch in src {
            let batch: RecordBatch = batch?;
            let cols: Vec<_> = idx.iter().map(|&i| std::sync::Arc::clone(batch.column(i))).collect();
            let rows = conv
                .convert_columns(&cols)
                .map_err(|e| Error::input(format!("cannot compare rows: {e}")))?;
            for r in rows.iter() {
                let h = blake3::hash(r.as_ref());
                let k = u128::from_le_bytes(h.as_bytes()[..16].try_into().expect("16 bytes"));
                *counts.entry(k).or_default() += sign;
            }
        }
        Ok(())
    };
    tally(sa, 1)?;
    tally(sb, -1)?;
    let rows_removed = counts.values().filter(|&&v| v > 0).map(|&v| v as u64).sum();
    let rows_added = counts.values().filter(|&&v| v < 0).map(|&v| (-v) as u64).sum();
    Ok(Diff {
        schema_before: a.output_schema.clone(),
        schema_after: b.output_schema.clone(),
        chunks,
        rows_added,
        rows_removed,
        compared_columns: common,
    })
}
