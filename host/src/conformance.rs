//! Conformance cases: golden input, config and expected output, run through the real host,
//! plus the checks every plugin must pass whatever its language (`sluice test`).
//!
//! A cases directory holds one subdirectory per case, run in name order (a directory that
//! itself holds `case.toml` is a single case):
//!
//! ```text
//! CASES/
//!   keeps-matching-rows/
//!     case.toml        config, batch size, optional expected error (see `CaseFile`)
//!     input.csv        the input: any format `sluice run` reads (csv, ndjson, parquet,
//!                      arrow, arrows), detected the same way
//!     expected.arrows  the exact expected output as an Arrow IPC stream (or file):
//!                      schema and rows; written by `sluice test --bless`
//! ```
//!
//! For each case the plugin must: produce output equal to the expected file (schema and
//! values, batch boundaries ignored); produce byte-identical output (and checkpoints) in a
//! second run with a different wall clock and random seed; produce the same output when the
//! input is split at every batch boundary, resuming as `sluice run` does between chunks
//! (stateful: checkpoint, new instance opened with the state; stateless: finish, fresh
//! instance); and return only batches of the schema it declared (the host validates every
//! batch).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};
use crate::ipc;
use crate::plugin::Plugin;
use crate::sandbox::Determinism;
use crate::source::{Source, SourceOptions};

/// The file in a case directory that configures the case.
pub const CASE_FILE: &str = "case.toml";
/// The file `--bless` writes the expected output to.
pub const EXPECTED_FILE: &str = "expected.arrows";
/// Rows per input batch when a case does not set `batch_rows`: small, so that even tiny
/// inputs have several batch boundaries to split at.
pub const DEFAULT_BATCH_ROWS: usize = 3;

/// `case.toml`: how to run one case.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// `description = "..."`: what the case shows, for people reading it.
    #[serde(default)]
    pub description: String,
    /// `[config]`: the plugin's configuration, `key = "value"` (numbers and booleans are
    /// passed as their text).
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// `batch_rows = N`: rows per input batch (default 3). Each batch boundary is a split point.
    pub batch_rows: Option<usize>,
    /// `expect_error = "invalid-config" | "invalid-input" | "internal"`: the plugin must
    /// fail with this kind of error instead of producing output.
    pub expect_error: Option<String>,
}

/// One loaded case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case directory's name.
    pub name: String,
    /// The case directory.
    pub dir: PathBuf,
    /// The parsed `case.toml`.
    pub file: CaseFile,
    /// The input file.
    pub input: PathBuf,
    /// The expected output file, if there is one.
    pub expected: Option<PathBuf>,
}

impl Case {
    /// The plugin configuration as the host passes it.
    pub fn config(&self) -> Vec<(String, String)> {
        self.file
            .config
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// Load every case under `dir` (or `dir` itself if it holds `case.toml`), sorted by name.
///
/// # Errors
///
/// A usage error naming the file for a missing directory, a bad `case.toml`, or a case
/// without exactly one `input.*` file.
pub fn load_cases(dir: &Path) -> Result<Vec<Case>> {
    if dir.join(CASE_FILE).is_file() {
        return Ok(vec![load_case(dir)?]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::usage(format!(
            "cannot read the cases directory `{}`: {e}; pass a directory of case directories (see `sluice test --help`)",
            dir.display()
        ))
    })?;
    let mut dirs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io("list", dir, e))?.path();
        if path.is_dir() && path.join(CASE_FILE).is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::usage(format!(
            "no cases in `{}`: each case is a subdirectory holding `{CASE_FILE}` and an `input.*` file",
            dir.display()
        )));
    }
    dirs.iter().map(|d| load_case(d)).collect()
}

fn load_case(dir: &Path) -> Result<Case> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let case_path = dir.join(CASE_FILE);
    let text = std::fs::read_to_string(&case_path).map_err(|e| Error::io("read", &case_path, e))?;
    let file: CaseFile = toml::from_str(&text)
        .map_err(|e| Error::usage(format!("case file `{}` is not valid: {e}", case_path.display())))?;
    if file.batch_rows == Some(0) {
        return Err(Error::usage(format!(
            "case file `{}`: `batch_rows` must be at least 1",
            case_path.display()
        )));
    }
    if let Some(kind) = &file.expect_error
        && error_category(kind).is_none()
    {
        return Err(Error::usage(format!(
            "case file `{}`: `expect_error` is `{kind}`; use `invalid-config`, `invalid-input` or `internal`",
            case_path.display()
        )));
    }
    let with_stem = |stem: &str| -> Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
            let path = entry.map_err(|e| Error::io("list", dir, e))?.path();
            if path.is_file() && path.file_stem().is_some_and(|s| s == stem) {
                found.push(path);
            }
        }
        found.sort();
        Ok(found)
    };
    let inputs = with_stem("input")?;
    let [input] = inputs.as_slice() else {
        return Err(Error::usage(format!(
            "case `{}` must hold exactly one `input.*` file (csv, ndjson, parquet, arrow or arrows), found {}",
            dir.display(),
            inputs.len()
        )));
    };
    let expected = with_stem("expected")?;
    if expected.len() > 1 {
        return Err(Error::usage(format!(
            "case `{}` holds {} `expected.*` files; keep one",
            dir.display(),
            expected.len()
        )));
    }
    Ok(Case {
        name,
        dir: dir.to_path_buf(),
        file,
        input: input.clone(),
        expected: expected.into_iter().next(),
    })
}

/// The host error category a WIT error kind maps to.
fn error_category(kind: &str) -> Option<&'static str> {
    match kind {
        "invalid-config" => Some("usage"),
        "invalid-input" => Some("input"),
        "internal" => Some("plugin"),
        _ => None,
    }
}

/// Read a data file (any format `sluice run` reads) as batches of at most `batch_rows` rows.
///
/// # Errors
///
/// The source's error for an unreadable file.
pub fn read_batches(path: &Path, batch_rows: usize) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let opts = SourceOptions {
        batch_rows,
        ..SourceOptions::default()
    };
    let source = Source::open(&[path.to_path_buf()], &opts)?;
    let schema = source.schema();
    let batches = source.collect::<Result<Vec<_>>>()?;
    Ok((schema, batches))
}

/// What one run of a plugin over a case's batches gave.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The output schema the plugin declared.
    pub schema: SchemaRef,
    /// Every batch it returned, in order.
    pub batches: Vec<RecordBatch>,
    /// The checkpoints it returned, in order (stateful plugins only).
    pub checkpoints: Vec<Vec<u8>>,
}

/// Runs a plugin over a case's batches: [`HostRunner`] through the sandbox, or the SDK
/// harness natively. The checks in [`check_case`] are the same for both.
pub trait Runner {
    /// Whether the plugin says it is stateful (resumes from a checkpoint, not afresh).
    fn stateful(&self) -> bool;

    /// Run over `batches`, resuming at each batch index in `splits` as `sluice run` does
    /// between chunks: a stateful plugin is checkpointed and a new instance opened with the
    /// state; a stateless one is finished and a fresh instance opened. Without splits, a
    /// stateful plugin is still asked for a checkpoint after every batch, as a carried
    /// instance is at chunk boundaries. `other_time` runs at another logical time and seed.
    ///
    /// # Errors
    ///
    /// The plugin's error, with the category of the WIT error (usage for
    /// `invalid-config`, input for `invalid-input`, plugin for `internal` and traps).
    fn run(
        &mut self,
        config: &[(String, String)],
        schema: &SchemaRef,
        batches: &[RecordBatch],
        splits: &[usize],
        other_time: bool,
    ) -> Result<RunOutput>;
}

/// Runs a compiled plugin through the real host.
pub struct HostRunner<'a>(pub &'a Plugin);

impl Runner for HostRunner<'_> {
    fn stateful(&self) -> bool {
        self.0.info().stateful
    }

    fn run(
        &mut self,
        config: &[(String, String)],
        schema: &SchemaRef,
        batches: &[RecordBatch],
        splits: &[usize],
        other_time: bool,
    ) -> Result<RunOutput> {
        let plugin = self.0;
        let det = if other_time { OTHER_RUN } else { Determinism::default() };
        let stateful = plugin.info().stateful;
        let mut t = plugin.open(config, schema, None, &det)?;
        let declared = Arc::clone(t.output_schema());
        let mut out = Vec::new();
        let mut checkpoints = Vec::new();
        for (i, b) in batches.iter().enumerate() {
            if splits.contains(&i) {
                let state = if stateful {
                    let s = t.checkpoint()?;
                    checkpoints.push(s.clone());
                    Some(s)
                } else {
                    out.extend(t.finish()?);
                    None
                };
                t = plugin.open(config, schema, state.as_deref(), &det)?;
                if t.output_schema().fields() != declared.fields() {
                    return Err(Error::plugin(
                        t.name(),
                        format!(
                            "declared a different output schema when reopened at batch {i}: {}",
                            ipc::describe_difference(t.output_schema(), &declared)
                        ),
                    ));
                }
            }
            out.extend(t.process(b)?);
            if stateful && splits.is_empty() {
                checkpoints.push(t.checkpoint()?);
            }
        }
        out.extend(t.finish()?);
        Ok(RunOutput {
            schema: declared,
            batches: out,
            checkpoints,
        })
    }
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Input rows.
    pub rows_in: usize,
    /// Output rows (of the first run).
    pub rows_out: usize,
    /// How many split runs were compared.
    pub splits: usize,
    /// The first failed check, in words; `None` if the case passed.
    pub failure: Option<String>,
    /// Set when `--bless` wrote the expected file.
    pub blessed: Option<PathBuf>,
}

/// The logical time and seed of the second run: different from the first on purpose, so
/// output that depends on the clock or on randomness shows up as a difference.
const OTHER_RUN: Determinism = Determinism {
    wall_clock_secs: 1_893_456_000,
    seed: [0xA5; 32],
};

/// Run one case and every check against `plugin` through the host. With `bless`, write the
/// expected output file from this run (after the determinism and split checks pass)
/// instead of comparing.
///
/// # Errors
///
/// Only for problems with the case itself (unreadable input, unwritable expected file);
/// a plugin that fails a check gives `Ok` with [`CaseResult::failure`] set.
pub fn run_case(plugin: &Plugin, case: &Case, bless: bool) -> Result<CaseResult> {
    check_case(&mut HostRunner(plugin), case, bless)
}

/// Run one case and every check with any [`Runner`]; see [`run_case`].
///
/// # Errors
///
/// As [`run_case`].
pub fn check_case(runner: &mut dyn Runner, case: &Case, bless: bool) -> Result<CaseResult> {
    let batch_rows = case.file.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS);
    let (schema, batches) =
        read_batches(&case.input, batch_rows).map_err(|e| e.prefixed(&format!("case `{}`: input: ", case.name)))?;
    let config = case.config();
    let rows_in = batches.iter().map(RecordBatch::num_rows).sum();
    let mut result = CaseResult {
        name: case.name.clone(),
        rows_in,
        rows_out: 0,
        splits: 0,
        failure: None,
        blessed: None,
    };
    let first = runner.run(&config, &schema, &batches, &[], false);

    if let Some(kind) = &case.file.expect_error {
        let want = error_category(kind).unwrap_or("plugin");
        result.failure = match first {
            Ok(o) => Some(format!(
                "expected the plugin to fail with `{kind}`, but it returned {} rows",
                rows(&o.batches)
            )),
            Err(e) if e.category() == want => None,
            Err(e) => Some(format!(
                "expected the plugin to fail with `{kind}`, but it failed with a {} error: {e}",
                e.category()
            )),
        };
        return Ok(result);
    }

    let first = match first {
        Ok(o) => o,
        Err(e) => return Ok(fail(result, format!("run failed: {e}"))),
    };
    result.rows_out = rows(&first.batches);
    let first_bytes = encode(&first)?;

    // Determinism: another run, another logical time and seed, the same bytes.
    match runner.run(&config, &schema, &batches, &[], true) {
        Err(e) => return Ok(fail(result, format!("second run failed: {e}"))),
        Ok(second) => {
            if encode(&second)? != first_bytes {
                let diff = batches_diff(&first.batches, &second.batches)
                    .unwrap_or_else(|| "same values, different batch boundaries".into());
                return Ok(fail(
                    result,
                    format!(
                        "not deterministic: a second run with another wall clock and random seed gave different output ({diff}); output must depend only on input and config"
                    ),
                ));
            }
            if let Some(i) = (0..first.checkpoints.len().max(second.checkpoints.len()))
                .find(|&i| first.checkpoints.get(i) != second.checkpoints.get(i))
            {
                return Ok(fail(
                    result,
                    format!(
                        "not deterministic: the checkpoint after batch {i} differs between two runs with another wall clock and random seed; state must depend only on the data seen"
                    ),
                ));
            }
        }
    }

    // Checkpoint/restore: split at every boundary alone, then at all of them at once.
    let mut split_sets: Vec<Vec<usize>> = (1..batches.len()).map(|i| vec![i]).collect();
    if batches.len() > 2 {
        split_sets.push((1..batches.len()).collect());
    }
    for splits in &split_sets {
        result.splits += 1;
        let where_ = if splits.len() == 1 {
            format!("at batch {} (row {})", splits[0], row_of(&batches, splits[0]))
        } else {
            "at every batch boundary".to_string()
        };
        let how = if runner.stateful() {
            "checkpoint, then a new instance opened with the state"
        } else {
            "finish, then a fresh instance (the plugin is stateless)"
        };
        match runner.run(&config, &schema, &batches, splits, false) {
            Err(e) => return Ok(fail(result, format!("run split {where_} ({how}) failed: {e}"))),
            Ok(split) => {
                if let Some(diff) = batches_diff(&first.batches, &split.batches) {
                    return Ok(fail(
                        result,
                        format!(
                            "output changes when the input is split {where_} ({how}): {diff} (left: one run, right: split run)"
                        ),
                    ));
                }
            }
        }
    }

    if bless {
        let path = case.dir.join(EXPECTED_FILE);
        for old in case.expected.iter().filter(|p| **p != path) {
            std::fs::remove_file(old).map_err(|e| Error::io("remove", old, e))?;
        }
        std::fs::write(&path, &first_bytes).map_err(|e| Error::io("write", &path, e))?;
        result.blessed = Some(path);
        return Ok(result);
    }

    let Some(expected_path) = &case.expected else {
        return Ok(fail(
            result,
            format!(
                "no `expected.*` file in `{}`; review the output with `sluice test --bless`, then `sluice show {}`",
                case.dir.display(),
                case.dir.join(EXPECTED_FILE).display()
            ),
        ));
    };
    let (want_schema, want) = read_batches(expected_path, 1 << 20)
        .map_err(|e| e.prefixed(&format!("case `{}`: expected output: ", case.name)))?;
    if want_schema.fields() != first.schema.fields() {
        return Ok(fail(
            result,
            format!(
                "the declared output schema differs from `{}`: {}",
                expected_path.display(),
                ipc::describe_difference(&first.schema, &want_schema)
            ),
        ));
    }
    if let Some(diff) = batches_diff(&want, &first.batches) {
        return Ok(fail(
            result,
            format!(
                "output differs from `{}`: {diff} (left: expected, right: plugin)",
                expected_path.display()
            ),
        ));
    }
    Ok(result)
}

fn fail(mut r: CaseResult, message: String) -> CaseResult {
    r.failure = Some(message);
    r
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn row_of(batches: &[RecordBatch], index: usize) -> usize {
    rows(&batches[..index.min(batches.len())])
}

/// The output as one IPC stream, batch boundaries included: what "byte-identical" compares.
fn encode(o: &RunOutput) -> Result<Vec<u8>> {
    let mut bytes = ipc::encode_batches(&o.schema, &o.batches)
        .map_err(|e| Error::plugin("output", format!("cannot encode the plugin's output: {e}")))?;
    // An empty output must still be a readable expected file.
    if bytes.is_empty() {
        bytes = ipc::encode_schema(&o.schema);
    }
    Ok(bytes)
}

fn format_value(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    let options = FormatOptions::default().with_null("NULL");
    match ArrayFormatter::try_new(array.as_ref(), &options) {
        Ok(f) => f.value(row).to_string(),
        Err(_) => format!("{:?}", array.slice(row, 1)),
    }
}

/// The first difference between two lists of batches, in words, or `None` if they hold the
/// same schema and values (batch boundaries ignored; floats compare bitwise).
pub fn batches_diff(left: &[RecordBatch], right: &[RecordBatch]) -> Option<String> {
    let (l_rows, r_rows) = (rows(left), rows(right));
    let (Some(l0), Some(r0)) = (left.first(), right.first()) else {
        return (l_rows != r_rows).then(|| format!("left has {l_rows} rows, right has {r_rows}"));
    };
    if l0.schema_ref().fields() != r0.schema_ref().fields() {
        return Some(format!(
            "schemas differ: {}",
            ipc::describe_difference(r0.schema_ref(), l0.schema_ref())
        ));
    }
    let concat = |b: &[RecordBatch], s: &SchemaRef| arrow::compute::concat_batches(s, b);
    let (l, r) = match (concat(left, l0.schema_ref()), concat(right, r0.schema_ref())) {
        (Ok(l), Ok(r)) => (l, r),
        (l, r) => return Some(format!("cannot concatenate: {:?} / {:?}", l.err(), r.err())),
    };
    for (c, field) in l.schema_ref().fields().iter().enumerate() {
        let (a, b) = (l.column(c), r.column(c));
        let n = a.len().min(b.len());
        if let Some(row) = (0..n).find(|&i| a.slice(i, 1).to_data() != b.slice(i, 1).to_data()) {
            let mut msg = String::new();
            let _ = write!(
                msg,
                "first difference at row {row}, column `{}`: left {}, right {}",
                field.name(),
                format_value(a, row),
                format_value(b, row)
            );
            return Some(msg);
        }
    }
    (l_rows != r_rows).then(|| {
        format!(
            "left has {l_rows} rows, right has {r_rows} (the first {} agree)",
            l_rows.min(r_rows)
        )
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(v: Vec<Option<f64>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, false),
            Field::new("f", DataType::Float64, true),
        ]));
        let i = Int64Array::from_iter_values(0..v.len() as i64);
        RecordBatch::try_new(schema, vec![Arc::new(i), Arc::new(Float64Array::from(v))]).unwrap()
    }

    #[test]
    fn diff_names_first_row_and_column() {
        let a = [batch(vec![Some(1.0), None]), batch(vec![Some(2.0)])];
        let b = [batch(vec![Some(1.0), None, Some(2.5)])];
        let d = batches_diff(&a, &b).unwrap();
        assert!(d.contains("row 2") && d.contains("column `i`"), "{d}");
        let same = [batch(vec![Some(1.0), None, Some(2.0)])];
        assert_eq!(batches_diff(&same, &same.clone()), None);
        let short = [batch(vec![Some(1.0), None])];
        let d = batches_diff(&same, &short).unwrap();
        assert!(d.contains("3 rows") && d.contains("2"), "{d}");
        assert!(batches_diff(&[], &a).is_some());
        assert_eq!(batches_diff(&[], &[]), None);
        let nan = [batch(vec![Some(f64::NAN), Some(-0.0)])];
        let zero = [batch(vec![Some(f64::NAN), Some(0.0)])];
        let d = batches_diff(&nan, &zero).unwrap();
        assert!(d.contains("row 1") && d.contains("column `f`"), "{d}");
    }

    #[test]
    fn case_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("sluice-conformance-{}", std::process::id()));
        let case = dir.join("c1");
        std::fs::create_dir_all(&case).unwrap();
        assert!(load_cases(&dir).unwrap_err().to_string().contains("no cases"));
        std::fs::write(case.join(CASE_FILE), "[config]\npredicate = \"x > 1\"\nn = 3\n").unwrap();
        let e = load_cases(&dir).unwrap_err().to_string();
        assert!(e.contains("exactly one `input.*`"), "{e}");
        std::fs::write(case.join("input.csv"), "x\n1\n2\n").unwrap();
        let cases = load_cases(&dir).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(
            cases[0].config(),
            [("n".to_string(), "3".to_string()), ("predicate".into(), "x > 1".into())]
        );
        assert!(cases[0].expected.is_none());
        std::fs::write(case.join(CASE_FILE), "expect_error = \"boom\"\n").unwrap();
        let e = load_cases(&dir).unwrap_err().to_string();
        assert!(e.contains("`boom`") && e.contains("invalid-config"), "{e}");
        std::fs::write(case.join(CASE_FILE), "colour = 1\n").unwrap();
        let e = load_cases(&case).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
