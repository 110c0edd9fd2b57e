//! Pipeline specs (`pipeline.toml`, version 1): inputs, a pinned plugin chain, output, and
//! how partitions map to paths. `sluice run PIPELINE.toml --partition P` and
//! `sluice backfill` turn a spec plus a partition into a [`RunSpec`].
//!
//! ```toml
//! version = 1
//! name = "orders-daily"
//!
//! [partition]
//! key = "date"                       # `{date}` in paths is replaced by the partition
//!
//! [input]
//! paths = ["data/{date}/*.csv"]      # files, directories or globs; relative to this file
//!
//! [[plugins]]
//! path = "plugins/filter.wasm"       # or: use = "filter@0.1.0" (the plugin store)
//! sha256 = "9f2c…"                   # required unless --allow-unpinned or sluice.lock pins it
//! config = { predicate = "quantity < 24" }
//! secrets = { salt = "ORDERS_SALT" } # config key = environment variable holding the value
//!
//! [output]
//! path = "out/{date}"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::pipeline::{PluginSpec, RunContext, RunSpec};
use crate::sink::{OutputFormat, WriterOptions};
use crate::source::{InputFormat, SourceOptions};
use crate::store::PluginStore;

/// The only spec version this sluice reads.
pub const SPEC_VERSION: u32 = 1;

/// A parsed `pipeline.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// `version`: the spec format version, must be 1.
    pub version: u32,
    /// `name`: the pipeline's name, for logs and lineage.
    pub name: String,
    /// `[partition]`: how partitions map to paths.
    #[serde(default)]
    pub partition: PartitionSpec,
    /// `[input]`: what to read.
    pub input: InputSpec,
    /// `[[plugins]]`: the chain, in order.
    #[serde(default)]
    pub plugins: Vec<PluginEntry>,
    /// `[output]`: where and how to write.
    pub output: OutputSpec,
    /// `[[checks]]`: quality gates over the whole output, evaluated before publishing.
    #[serde(default)]
    pub checks: Vec<crate::quality::CheckSpec>,
    /// `[columns.NAME]`: each column's `sensitivity` and `retention`.
    #[serde(default)]
    pub columns: BTreeMap<String, crate::privacy::ColumnClass>,
    /// `[privacy]`: rules over classified columns (`require_masked_pii`).
    #[serde(default)]
    pub privacy: crate::privacy::PrivacyRules,
}

/// `[partition]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// `key`: the placeholder name, `{key}` in paths (default `partition`).
    #[serde(default = "default_key")]
    pub key: String,
    /// `kind`: `date` (YYYY-MM-DD, also the run's logical date) or `string` (default `date`).
    #[serde(default = "default_kind")]
    pub kind: String,
}

impl Default for PartitionSpec {
    fn default() -> Self {
        PartitionSpec {
            key: default_key(),
            kind: default_kind(),
        }
    }
}

fn default_key() -> String {
    "partition".into()
}
fn default_kind() -> String {
    "date".into()
}

/// `[input]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// `paths`: files, directories or glob patterns, templated with the partition.
    pub paths: Vec<String>,
    /// `format`: force the input format (`parquet`, `ipc`, `arrows`, `csv`, `ndjson`).
    pub format: Option<String>,
    /// `batch_rows`: rows per batch handed to plugins (default 65,536).
    pub batch_rows: Option<usize>,
    /// `csv_header`: CSV files have a header row (default true).
    pub csv_header: Option<bool>,
    /// `csv_delimiter`: one byte (default `,`).
    pub csv_delimiter: Option<String>,
    /// `schema_contract`: the input schema contract file (JSON), relative to this file;
    /// written from the first run's input when it does not exist.
    pub schema_contract: Option<String>,
    /// `on_schema_change`: `fail` (default), `append_new_columns` or `ignore`.
    pub on_schema_change: Option<crate::contract::OnSchemaChange>,
}

/// `[[plugins]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// `path`: the `.wasm` file, relative to the spec.
    pub path: Option<String>,
    /// `use`: `name@version` from the plugin store.
    #[serde(rename = "use")]
    pub use_: Option<String>,
    /// `sha256`: the pin (`sha256:<hex>` or bare hex).
    pub sha256: Option<String>,
    /// `config`: key/value settings for this plugin.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// `secrets`: config key → environment variable that holds its value.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// `masks`: output columns this plugin masks (what `require_masked_pii` accepts).
    #[serde(default)]
    pub masks: Vec<String>,
    /// `keeps`: columns this plugin passes through with their values unchanged (it may
    /// drop rows); `["*"]` for every column it outputs under an input column's name and
    /// type. Only for lineage: what makes a column's lineage `IDENTITY`.
    #[serde(default)]
    pub keeps: Vec<String>,
}

/// `[output]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// `path`: the output directory, templated with the partition.
    pub path: String,
    /// `format`: `parquet` (default) or `ipc`.
    pub format: Option<String>,
    /// `compression`: as `--compression` (default `zstd(1)`).
    pub compression: Option<String>,
    /// `row_group_rows`: rows per Parquet row group (default 122,880).
    pub row_group_rows: Option<usize>,
    /// `chunk_rows`: rows per checkpointed chunk (default 1,048,576).
    pub chunk_rows: Option<usize>,
    /// `input_digest`: what each chunk's `input_digest` records, as `--input-digest`
    /// (`files`, the default, or `data`).
    pub input_digest: Option<String>,
}

/// Options that come from the command line rather than the spec.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Allow plugins without a pin.
    pub allow_unpinned: bool,
    /// The scheduler's run id.
    pub run_id: Option<String>,
    /// Override the output directory.
    pub output: Option<PathBuf>,
}

/// A spec loaded from a file, with the directory its relative paths start from.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The spec.
    pub spec: PipelineSpec,
    /// Its file.
    pub file: PathBuf,
    /// Pins from `sluice.lock` beside the spec (`name@version` → `sha256:<hex>`).
    pub lock: BTreeMap<String, String>,
}

impl LoadedSpec {
    /// Read and check `path`: the version first, then every key (unknown keys are errors).
    pub fn load(path: &Path) -> Result<LoadedSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::usage(format!("pipeline spec `{}` does not exist", path.display())),
            _ => Error::io("read", path, e),
        })?;
        let bad = |msg: String| Error::usage(format!("pipeline spec `{}`: {msg}", path.display()));
        let raw: toml::Table = toml::from_str(&text).map_err(|e| bad(format!("not valid TOML: {e}")))?;
        match raw.get("version").and_then(|v| v.as_integer()) {
            Some(v) if v == i64::from(SPEC_VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "version {v} is not supported; this sluice reads version {SPEC_VERSION}"
                )));
            }
            None => return Err(bad(format!("missing `version = {SPEC_VERSION}` at the top"))),
        }
        let spec: PipelineSpec = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let lock_path = path.with_file_name("sluice.lock");
        let lock = if lock_path.exists() {
            let t = std::fs::read_to_string(&lock_path).map_err(|e| Error::io("read", &lock_path, e))?;
            let l: LockFile =
                toml::from_str(&t).map_err(|e| Error::usage(format!("lock file `{}`: {e}", lock_path.display())))?;
            l.plugins
        } else {
            BTreeMap::new()
        };
        Ok(LoadedSpec {
            spec,
            file: path.to_path_buf(),
            lock,
        })
    }

    fn base(&self) -> PathBuf {
        self.file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into())
    }

    /// The run for one partition (`None` when the spec has no `{key}` placeholders).
    pub fn resolve(&self, partition: Option<&str>, store: &PluginStore, opts: &ResolveOptions) -> Result<RunSpec> {
        let s = &self.spec;
        let placeholder = format!("{{{}}}", s.partition.key);
        let uses_partition =
            s.input.paths.iter().any(|p| p.contains(&placeholder)) || s.output.path.contains(&placeholder);
        if uses_partition && partition.is_none() {
            return Err(Error::usage(format!(
                "pipeline `{}` is partitioned by `{}`; pass --partition VALUE",
                s.name, s.partition.key
            )));
        }
        if let Some(p) = partition {
            validate_partition(&s.partition, p)?;
        }
        let fill = |t: &str| match partition {
            Some(p) => t.replace(&placeholder, p),
            None => t.to_string(),
        };
        let base = self.base();
        let mut inputs = Vec::new();
        for pattern in &s.input.paths {
            let templ = base.join(fill(pattern));
            let text = templ.to_string_lossy().into_owned();
            if text.contains(['*', '?', '[']) {
                let mut matched: Vec<PathBuf> = glob::glob(&text)
                    .map_err(|e| Error::usage(format!("input pattern `{pattern}` is not a valid glob: {e}")))?
                    .filter_map(|r| r.ok())
                    .collect();
                if matched.is_empty() {
                    return Err(Error::input(format!(
                        "input pattern `{text}` matched no files{}",
                        partition.map(|p| format!(" for partition `{p}`")).unwrap_or_default()
                    )));
                }
                matched.sort();
                inputs.extend(matched);
            } else {
                inputs.push(templ);
            }
        }
        let plugins = self.resolve_plugins(store, opts)?;
        let format = match &s.output.format {
            Some(f) => f.parse::<OutputFormat>()?,
            None => OutputFormat::Parquet,
        };
        let mut source = SourceOptions::default();
        if let Some(f) = &s.input.format {
            source.format = Some(f.parse::<InputFormat>()?);
        }
        if let Some(n) = s.input.batch_rows {
            source.batch_rows = n.max(1);
        }
        if let Some(h) = s.input.csv_header {
            source.csv_header = h;
        }
        if let Some(d) = &s.input.csv_delimiter {
            source.csv_delimiter = match d.as_bytes() {
                [b] => *b,
                _ => {
                    return Err(Error::usage(format!(
                        "`input.csv_delimiter` must be one byte, got `{d}`"
                    )));
                }
            };
        }
        let mut writer = WriterOptions::default();
        if let Some(c) = &s.output.compression {
            writer.compression = c.clone();
        }
        if let Some(n) = s.output.row_group_rows {
            writer.row_group_rows = n;
        }
        let output = opts.output.clone().unwrap_or_else(|| base.join(fill(&s.output.path)));
        let mut run = RunSpec::new(inputs, output);
        run.source = source;
        run.plugins = plugins;
        run.format = format;
        run.writer = writer;
        run.chunk_rows = s.output.chunk_rows.unwrap_or(crate::pipeline::DEFAULT_CHUNK_ROWS);
        if let Some(d) = &s.output.input_digest {
            run.input_digest = d.parse()?;
        }
        run.checks = s.checks.clone();
        run.name = Some(s.name.clone());
        let classification = crate::privacy::Classification {
            columns: s.columns.clone(),
            rules: s.privacy.clone(),
            masks: s.plugins.iter().map(|p| p.masks.clone()).collect(),
        };
        run.classification = (!classification.is_empty()).then_some(classification);
        run.input_contract = match (&s.input.schema_contract, s.input.on_schema_change) {
            (Some(p), on) => Some(crate::contract::InputContract {
                path: base.join(fill(p)),
                on_change: on.unwrap_or_default(),
            }),
            (None, Some(_)) => {
                return Err(Error::usage(format!(
                    "pipeline `{}`: `input.on_schema_change` needs `input.schema_contract`, the file holding the expected input schema (created from the first run's input if missing)",
                    self.file.display()
                )));
            }
            (None, None) => None,
        };
        run.context = RunContext {
            partition: partition.map(str::to_string),
            logical_date: partition.filter(|_| s.partition.kind == "date").map(str::to_string),
            run_id: opts.run_id.clone(),
            pipeline: Some(self.file.clone()),
        };
        Ok(run)
    }

    /// The plugin chain alone, resolved as [`LoadedSpec::resolve`] does (paths, pins,
    /// configs, secrets), without touching the inputs: what an engine worker that is handed
    /// its data by Spark or Ray needs (`sluice_host::embed`).
    pub fn resolve_plugins(&self, store: &PluginStore, opts: &ResolveOptions) -> Result<Vec<PluginSpec>> {
        let base = self.base();
        self.spec
            .plugins
            .iter()
            .enumerate()
            .map(|(i, p)| self.resolve_plugin(i, p, &base, store, opts))
            .collect()
    }

    fn resolve_plugin(
        &self,
        i: usize,
        p: &PluginEntry,
        base: &Path,
        store: &PluginStore,
        opts: &ResolveOptions,
    ) -> Result<PluginSpec> {
        let at = format!("pipeline `{}`, plugins[{i}]", self.file.display());
        let (path, mut pin) = match (&p.path, &p.use_) {
            (Some(path), None) => (base.join(path), None),
            (None, Some(u)) => {
                let (sha, path) = store.resolve(u)?;
                (path, Some(self.lock.get(u).cloned().unwrap_or(sha)))
            }
            _ => return Err(Error::usage(format!("{at}: give exactly one of `path` or `use`"))),
        };
        if let Some(explicit) = &p.sha256 {
            pin = Some(explicit.clone());
        } else if let Some(locked) = p.use_.as_ref().and_then(|u| self.lock.get(u)) {
            pin = Some(locked.clone());
        } else if p.use_.is_none() && !opts.allow_unpinned {
            return Err(Error::usage(format!(
                "{at}: plugin `{}` has no `sha256` pin; add `sha256 = \"{}\"` (its current digest) or pass --allow-unpinned",
                path.display(),
                crate::digest::sha256_file(&path).unwrap_or_else(|_| "…".into())
            )));
        }
        let mut config = Vec::new();
        for (k, v) in &p.config {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(Error::usage(format!(
                        "{at}: config `{k}` must be a string, number or boolean, got `{other}`"
                    )));
                }
            };
            config.push((k.clone(), v));
        }
        let mut secret_keys = Vec::new();
        for (k, env) in &p.secrets {
            if p.config.contains_key(k) {
                return Err(Error::usage(format!(
                    "{at}: `{k}` is both in `config` and in `secrets`; keep it in `secrets` only"
                )));
            }
            let value = std::env::var(env).map_err(|_| {
                Error::usage(format!(
                    "{at}: secret `{k}` comes from the environment variable `{env}`, which is not set"
                ))
            })?;
            config.push((k.clone(), value));
            secret_keys.push(k.clone());
        }
        Ok(PluginSpec {
            path,
            config,
            sha256: pin,
            secret_keys,
            keeps: p.keeps.clone(),
        })
    }
}

/// `sluice.lock`: pins for `use = "name@version"` plugins.
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// `[plugins]`: `"name@version" = "sha256:<hex>"`.
    #[serde(default)]
    pub plugins: BTreeMap<String, String>,
}

fn validate_partition(p: &PartitionSpec, value: &str) -> Result<()> {
    if value.is_empty() || value.contains(['/', '\\']) || value == "." || value == ".." {
        return Err(Error::usage(format!(
            "partition `{value}` must be a non-empty name without `/`"
        )));
    }
    if p.kind == "date" && parse_date(value).is_none() {
        return Err(Error::usage(format!(
            "partition `{value}` is not a date like `2026-11-01` (the spec's partition kind is `date`)"
        )));
    }
    Ok(())
}

/// Parse `YYYY-MM-DD` into days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    if s.len() != 10 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Format days since 1970-01-01 as `YYYY-MM-DD`.
pub fn format_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Expand `A..B` (inclusive date range) or `a,b,c` into partition values.
pub fn expand_partitions(text: &str) -> Result<Vec<String>> {
    if let Some((a, b)) = text.split_once("..") {
        let (Some(from), Some(to)) = (parse_date(a.trim()), parse_date(b.trim())) else {
            return Err(Error::usage(format!(
                "--partitions `{text}`: a range must be two dates, e.g. `2026-11-01..2026-11-07`"
            )));
        };
        if to < from {
            return Err(Error::usage(format!(
                "--partitions `{text}`: the range ends before it starts"
            )));
        }
        if to - from > 100_000 {
            return Err(Error::usage(format!(
                "--partitions `{text}`: more than 100,000 partitions"
            )));
        }
        return Ok((from..=to).map(format_date).collect());
    }
    let parts: Vec<String> = text
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(Error::usage("--partitions is empty"));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_ranges_expand() {
        for d in ["1970-01-01", "2024-02-29", "2026-11-01", "1999-12-31"] {
            assert_eq!(format_date(parse_date(d).unwrap()), d);
        }
        assert_eq!(parse_date("2026-02-29"), None);
        assert_eq!(parse_date("2026-13-01"), None);
        let p = expand_partitions("2026-10-30..2026-11-02").unwrap();
        assert_eq!(p, vec!["2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"]);
        assert_eq!(expand_partitions("a, b").unwrap(), vec!["a", "b"]);
        assert!(expand_partitions("2026-11-02..2026-11-01").is_err());
    }

    #[test]
    fn unknown_keys_and_versions_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipeline.toml");
        std::fs::write(
            &p,
            "version = 1\nname = \"x\"\n[input]\npaths = [\"a\"]\nfromat = \"csv\"\n[output]\npath = \"o\"\n",
        )
        .unwrap();
        let e = LoadedSpec::load(&p).unwrap_err().to_string();
        assert!(e.contains("pipeline.toml") && e.contains("fromat"), "{e}");
        std::fs::write(&p, "version = 2\nname = \"x\"\n").unwrap();
        let e = LoadedSpec::load(&p).unwrap_err().to_string();
        assert!(e.contains("version 2 is not supported"), "{e}");
    }

    #[test]
    fn input_digest_is_read_from_the_output_section() {
        use crate::digest::InputDigest;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipeline.toml");
        let store = PluginStore::at(dir.path().join("store"));
        let resolve = |extra: &str| {
            std::fs::write(
                &p,
                format!("version = 1\nname = \"x\"\n[input]\npaths = [\"a\"]\n[output]\npath = \"o\"\n{extra}"),
            )
            .unwrap();
            LoadedSpec::load(&p)?.resolve(None, &store, &ResolveOptions::default())
        };
        assert_eq!(resolve("").unwrap().input_digest, InputDigest::Files);
        assert_eq!(
            resolve("input_digest = \"data\"\n").unwrap().input_digest,
            InputDigest::Data
        );
        let e = resolve("input_digest = \"rows\"\n").unwrap_err();
        assert_eq!(e.exit_code() as u8, 2);
        assert!(
            e.to_string().contains("`rows`") && e.to_string().contains("`files`"),
            "{e}"
        );
    }
}
