//! Quality gates: checks over a run's whole output, evaluated after the last chunk is
//! committed and before `_SUCCESS` is published.
//!
//! Gates read the committed output parts back (only the columns they need) rather than
//! keeping per-chunk statistics: a run resumed after a crash has parts written by an
//! earlier process, and "unique across the run" needs every key anyway. Re-reading costs
//! about one scan of the output and is only done when a gate needs column data.
//!
//! ```toml
//! [[checks]]
//! check = "unique"                   # row_count, not_null, null_rate, unique,
//! columns = ["order_id"]             # accepted_values, range, freshness
//! severity = "error"                 # or "warn": reported, never blocks publishing
//! ```

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, Schema, TimeUnit};
use arrow::row::{RowConverter, SortField};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;
/// Example values kept per failing check, for the report.
const EXAMPLES: usize = 5;

/// `severity` of a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A failure blocks publishing (exit 3).
    #[default]
    Error,
    /// A failure is reported and recorded; the run still publishes.
    Warn,
}

/// One `[[checks]]` entry of a pipeline spec (or of a `--checks` file).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckSpec {
    /// `check = "row_count"`: total output rows within `min` and/or `max` (inclusive).
    RowCount {
        /// `min`: fewest rows allowed.
        min: Option<u64>,
        /// `max`: most rows allowed.
        max: Option<u64>,
        /// `severity`: `error` (default) or `warn`.
        #[serde(default)]
        severity: Severity,
        /// `name`: how the report names this check (default: derived from the check).
        name: Option<String>,
    },
    /// `check = "not_null"`: no nulls in any of `columns`.
    NotNull {
        /// `columns`: the columns that must not hold nulls.
        columns: Vec<String>,
        /// `severity`: `error` (default) or `warn`.
        #[serde(default)]
        severity: Severity,
        /// `name`: how the report names this check.
        name: Option<String>,
    },
    /// `check = "null_rate"`: the fraction of nulls in `column` is at most `max` (0..=1).
    NullRate {
        /// `column`: the column.
        column: String,
        /// `max`: highest allowed null fraction, e.g. `0.05`.
        max: f64,
        /// `severity`: `error` (default) or `warn`.
        #[serde(default)]
        severity: Severity,
        /// `name`: how the report names this check.
        name: Option<String>,
    },
    /// `check = "unique"`: no two rows share the values of `columns` (rows with a null in a
    /// key column are not compared, as in SQL's `UNIQUE`; add `not_null` to forbid them).
    Unique {
        /// `columns`: the key.
        columns: Vec<String>,
        /// `severity`: `error` (default) or `warn`.
        #[serde(default)]
        severity: Severity,
        /// `name`: how the report names this check.
        name: Option<String>,
    },
    /// `check = "accepted_values"`: every non-null value of `column` is one of `values`
    /// (compared as text, as `sluice show` prints them).
    AcceptedValues {
        /// `column`: the column.
        column: String,
        /// `values`: the allowed values (strings, numbers or booleans).
        values: Vec<toml::Value>,
        /// `severity`: `error` (default) or `warn`.
        #[serde(default)]
        severity: Severity,
        /// `name`: how the report names this check.
        name: Option<String>,
    },
    /// `check = "range"`: every non-null value of `column` within `min` and/or `max`
    /// (inclusive): numbers for numeric columns, `"YYYY-MM-DD"` or RFC 3339 text for date
    /// and timestamp columns.
    Range {
        /// `column`: the column.
        column: String,
        /// `min`: the lowest allowed value.
        min: Option<toml::Value>,
        /// `max`: the highest allowed value.
        max: Option<toml::Value>,
        /// `severity`: `error` (default) or `warn`.
        #[serde(default)]
        severity: Severity,
        /// `name`: how the report names this check.
        name: Option<String>,
    },
    /// `check = "freshness"`: the newest value of a date/timestamp `column` is at most
    /// `max_age` older than the end of the run's logical date (never the wall clock, so a
    /// replay next year gives the same verdict).
    Freshness {
        /// `column`: a date or timestamp column.
        column: String,
        /// `max_age`: e.g. `"36h"`, `"2d"`, `"90m"`.
        max_age: String,
        /// `severity`: `error` (default) or `warn`.
        #[serde(default)]
        severity: Severity,
        /// `name`: how the report names this check.
        name: Option<String>,
    },
}

/// A `--checks FILE`: a TOML file holding only `[[checks]]` tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksFile {
    /// `[[checks]]`.
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
}

impl ChecksFile {
    /// Read `[[checks]]` from `path`.
    pub fn load(path: &Path) -> Result<Vec<CheckSpec>> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::usage(format!("checks file `{}` does not exist", path.display())),
            _ => Error::io("read", path, e),
        })?;
        let f: ChecksFile =
            toml::from_str(&text).map_err(|e| Error::usage(format!("checks file `{}`: {e}", path.display())))?;
        Ok(f.checks)
    }
}

impl CheckSpec {
    /// The kind as written in the spec (`row_count`, `unique`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::RowCount { .. } => "row_count",
            CheckSpec::NotNull { .. } => "not_null",
            CheckSpec::NullRate { .. } => "null_rate",
            CheckSpec::Unique { .. } => "unique",
            CheckSpec::AcceptedValues { .. } => "accepted_values",
            CheckSpec::Range { .. } => "range",
            CheckSpec::Freshness { .. } => "freshness",
        }
    }

    /// `error` or `warn`.
    pub fn severity(&self) -> Severity {
        match self {
            CheckSpec::RowCount { severity, .. }
            | CheckSpec::NotNull { severity, .. }
            | CheckSpec::NullRate { severity, .. }
            | CheckSpec::Unique { severity, .. }
            | CheckSpec::AcceptedValues { severity, .. }
            | CheckSpec::Range { severity, .. }
            | CheckSpec::Freshness { severity, .. } => *severity,
        }
    }

    /// The name in reports: the spec's `name`, else `kind(columns)`.
    pub fn name(&self) -> String {
        let (name, cols) = match self {
            CheckSpec::RowCount { name, .. } => (name, Vec::new()),
            CheckSpec::NotNull { name, columns, .. } | CheckSpec::Unique { name, columns, .. } => {
                (name, columns.clone())
            }
            CheckSpec::NullRate { name, column, .. }
            | CheckSpec::AcceptedValues { name, column, .. }
            | CheckSpec::Range { name, column, .. }
            | CheckSpec::Freshness { name, column, .. } => (name, vec![column.clone()]),
        };
        match name {
            Some(n) => n.clone(),
            None if cols.is_empty() => self.kind().to_string(),
            None => format!("{}({})", self.kind(), cols.join(", ")),
        }
    }
}

/// A check's verdict, as recorded in the run record and printed in the summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckResult {
    /// The check's name (see [`CheckSpec::name`]).
    pub name: String,
    /// Its kind, e.g. `unique`.
    pub check: String,
    /// `error` or `warn`.
    pub severity: Severity,
    /// `pass` or `fail`.
    pub status: String,
    /// What the gate asked for, in words, e.g. `at most 0.05`.
    pub expected: String,
    /// What the output holds: the measured value(s) the verdict rests on.
    pub observed: serde_json::Value,
}

impl CheckResult {
    /// True when the check failed.
    pub fn failed(&self) -> bool {
        self.status == "fail"
    }

    /// One line of the readable report.
    pub fn line(&self) -> String {
        let mark = match (self.failed(), self.severity) {
            (false, _) => "pass",
            (true, Severity::Error) => "FAIL",
            (true, Severity::Warn) => "warn",
        };
        format!(
            "  {mark}  {}: expected {}, observed {}",
            self.name, self.expected, self.observed
        )
    }
}

/// The readable report of a set of results, one line per check.
pub fn report(results: &[CheckResult]) -> String {
    results.iter().map(CheckResult::line).collect::<Vec<_>>().join("\n")
}

/// Checks bound to an output schema, ready to read data.
pub struct Gates {
    checks: Vec<(CheckSpec, State)>,
    rows: u64,
    columns: BTreeSet<String>,
}

/// How a range or freshness column is compared: as a number, or as UTC microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Number,
    Time,
}

enum State {
    RowCount,
    NotNull {
        nulls: Vec<u64>,
    },
    NullRate {
        nulls: u64,
    },
    Unique {
        converter: RowConverter,
        seen: HashSet<Box<[u8]>>,
        duplicates: u64,
        examples: Vec<String>,
    },
    Accepted {
        allowed: HashSet<String>,
        bad: u64,
        examples: BTreeSet<String>,
    },
    Range {
        axis: Axis,
        min: Option<f64>,
        max: Option<f64>,
        lowest: Option<f64>,
        highest: Option<f64>,
        outside: u64,
    },
    Freshness {
        reference_us: i64,
        max_age_us: i64,
        newest: Option<i64>,
    },
}

impl Gates {
    /// Bind `checks` to the output `schema`; `logical_date` (`YYYY-MM-DD`) anchors freshness.
    ///
    /// # Errors
    /// A usage error naming the check when a column is missing or has a type the check
    /// cannot use, a bound does not parse, or freshness has no logical date.
    pub fn prepare(checks: &[CheckSpec], schema: &Schema, logical_date: Option<&str>) -> Result<Gates> {
        let mut out = Vec::new();
        let mut columns = BTreeSet::new();
        for c in checks {
            let name = c.name();
            let bad = |msg: String| Error::usage(format!("check `{name}`: {msg}"));
            let field = |col: &str| -> Result<DataType> {
                match schema.field_with_name(col) {
                    Ok(f) => Ok(f.data_type().clone()),
                    Err(_) => Err(bad(format!(
                        "the output has no column `{col}`; it has: {}",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            };
            let state = match c {
                CheckSpec::RowCount { min, max, .. } => {
                    if min.is_none() && max.is_none() {
                        return Err(bad("give `min`, `max` or both".into()));
                    }
                    State::RowCount
                }
                CheckSpec::NotNull { columns: cols, .. } => {
                    if cols.is_empty() {
                        return Err(bad("`columns` is empty".into()));
                    }
                    for col in cols {
                        field(col)?;
                    }
                    State::NotNull {
                        nulls: vec![0; cols.len()],
                    }
                }
                CheckSpec::NullRate { column, max, .. } => {
                    field(column)?;
                    if !(0.0..=1.0).contains(max) {
                        return Err(bad(format!("`max = {max}` must be a fraction between 0 and 1")));
                    }
                    State::NullRate { nulls: 0 }
                }
                CheckSpec::Unique { columns: cols, .. } => {
                    if cols.is_empty() {
                        return Err(bad("`columns` is empty".into()));
                    }
                    let fields = cols
                        .iter()
                        .map(|col| Ok(SortField::new(field(col)?)))
                        .collect::<Result<Vec<_>>>()?;
                    let converter =
                        RowConverter::new(fields).map_err(|e| bad(format!("these columns cannot form a key: {e}")))?;
                    State::Unique {
                        converter,
                        seen: HashSet::new(),
                        duplicates: 0,
                        examples: Vec::new(),
                    }
                }
                CheckSpec::AcceptedValues { column, values, .. } => {
                    let t = field(column)?;
                    if !arrow::compute::can_cast_types(&t, &DataType::Utf8) {
                        return Err(bad(format!("column `{column}` ({t}) has no text form to compare")));
                    }
                    let allowed = values
                        .iter()
                        .map(|v| {
                            value_text(v).ok_or_else(|| bad(format!("value `{v}` must be a string, number or boolean")))
                        })
                        .collect::<Result<_>>()?;
                    State::Accepted {
                        allowed,
                        bad: 0,
                        examples: BTreeSet::new(),
                    }
                }
                CheckSpec::Range { column, min, max, .. } => {
                    let t = field(column)?;
                    let axis = axis_of(&t).ok_or_else(|| {
                        bad(format!(
                            "column `{column}` is {t}; a range needs a numeric, date or timestamp column"
                        ))
                    })?;
                    if min.is_none() && max.is_none() {
                        return Err(bad("give `min`, `max` or both".into()));
                    }
                    let parse = |v: &Option<toml::Value>| -> Result<Option<f64>> {
                        v.as_ref().map(|v| bound(v, axis).map_err(&bad)).transpose()
                    };
                    State::Range {
                        axis,
                        min: parse(min)?,
                        max: parse(max)?,
                        lowest: None,
                        highest: None,
                        outside: 0,
                    }
                }
                CheckSpec::Freshness { column, max_age, .. } => {
                    let t = field(column)?;
                    if axis_of(&t) != Some(Axis::Time) {
                        return Err(bad(format!(
                            "column `{column}` is {t}; freshness needs a date or timestamp column"
                        )));
                    }
                    let Some(date) = logical_date else {
                        return Err(bad(
                            "freshness is measured from the run's logical date, and this run has none; use a date partition (`[partition] kind = \"date\"`) or pass --logical-date YYYY-MM-DD".into(),
                        ));
                    };
                    let days = crate::spec::parse_date(date)
                        .ok_or_else(|| bad(format!("logical date `{date}` is not a date like `2026-11-01`")))?;
                    State::Freshness {
                        reference_us: (days + 1) * DAY_US,
                        max_age_us: parse_age(max_age).map_err(bad)?,
                        newest: None,
                    }
                }
            };
            columns.extend(c.columns());
            out.push((c.clone(), state));
        }
        Ok(Gates {
            checks: out,
            rows: 0,
            columns,
        })
    }

    /// True when no check needs column data (row counts come from the journal).
    pub fn needs_data(&self) -> bool {
        !self.columns.is_empty()
    }

    /// Feed one batch of output (all columns, or at least those the checks use).
    ///
    /// # Errors
    /// A bad-input error if a column cannot be read as the check needs.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        for (spec, state) in &mut self.checks {
            let spec = &*spec;
            let col = |name: &str| -> Result<&ArrayRef> {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| Error::input(format!("check `{}`: output part lacks column `{name}`", spec.name())))
            };
            match (spec, state) {
                (CheckSpec::RowCount { .. }, State::RowCount) => {}
                (CheckSpec::NotNull { columns, .. }, State::NotNull { nulls }) => {
                    for (c, n) in columns.iter().zip(nulls.iter_mut()) {
                        *n += col(c)?.logical_null_count() as u64;
                    }
                }
                (CheckSpec::NullRate { column, .. }, State::NullRate { nulls }) => {
                    *nulls += col(column)?.logical_null_count() as u64;
                }
                (
                    CheckSpec::Unique { columns, .. },
                    State::Unique {
                        converter,
                        seen,
                        duplicates,
                        examples,
                    },
                ) => {
                    let arrays = columns.iter().map(|c| col(c).cloned()).collect::<Result<Vec<_>>>()?;
                    let rows = converter
                        .convert_columns(&arrays)
                        .map_err(|e| Error::input(format!("check `{}`: {e}", spec.name())))?;
                    let nulls: Vec<_> = arrays.iter().map(|a| a.logical_nulls()).collect();
                    for (i, row) in rows.iter().enumerate() {
                        if nulls.iter().any(|n| n.as_ref().is_some_and(|n| n.is_null(i))) {
                            continue;
                        }
                        if !seen.insert(row.as_ref().into()) {
                            *duplicates += 1;
                            if examples.len() < EXAMPLES {
                                examples.push(row_text(&arrays, i));
                            }
                        }
                    }
                }
                (CheckSpec::AcceptedValues { column, .. }, State::Accepted { allowed, bad, examples }) => {
                    let text = arrow::compute::cast(col(column)?, &DataType::Utf8)
                        .map_err(|e| Error::input(format!("check `{}`: {e}", spec.name())))?;
                    for v in text.as_string::<i32>().iter().flatten() {
                        if !allowed.contains(v) {
                            *bad += 1;
                            if examples.len() < EXAMPLES {
                                examples.insert(v.to_string());
                            }
                        }
                    }
                }
                (
                    CheckSpec::Range { column, .. },
                    State::Range {
                        axis,
                        min,
                        max,
                        lowest,
                        highest,
                        outside,
                    },
                ) => {
                    let values = to_f64(col(column)?, *axis)
                        .map_err(|e| Error::input(format!("check `{}`: {e}", spec.name())))?;
                    for v in values.iter().flatten() {
                        // NaN compares false both ways: count it as outside any bound.
                        if v.is_nan() || min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
                            *outside += 1;
                        }
                        if !v.is_nan() {
                            *lowest = Some(lowest.map_or(v, |l| l.min(v)));
                            *highest = Some(highest.map_or(v, |h| h.max(v)));
                        }
                    }
                }
                (CheckSpec::Freshness { column, .. }, State::Freshness { newest, .. }) => {
                    let values = to_f64(col(column)?, Axis::Time)
                        .map_err(|e| Error::input(format!("check `{}`: {e}", spec.name())))?;
                    for v in values.iter().flatten() {
                        let v = v as i64;
                        *newest = Some(newest.map_or(v, |n| n.max(v)));
                    }
                }
                _ => unreachable!("each check is prepared with its own state"),
            }
        }
        Ok(())
    }

    /// Read the committed output `files` (Parquet or Arrow IPC file), only the columns the
    /// checks use, and feed every batch.
    ///
    /// # Errors
    /// An I/O error if a part cannot be read.
    pub fn scan(&mut self, files: &[PathBuf]) -> Result<()> {
        let columns = self.columns.clone();
        for f in files {
            let file = std::fs::File::open(f).map_err(|e| Error::io("open", f, e))?;
            let read_err = |e: &dyn std::fmt::Display| {
                Error::io(
                    "read",
                    f,
                    std::io::Error::other(format!("{e} (rerun with --overwrite to rewrite the output)")),
                )
            };
            if f.extension().is_some_and(|e| e == "parquet") {
                let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| read_err(&e))?;
                let roots: Vec<usize> = b
                    .schema()
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, fl)| columns.contains(fl.name()))
                    .map(|(i, _)| i)
                    .collect();
                let mask = parquet::arrow::ProjectionMask::roots(b.parquet_schema(), roots);
                for batch in b.with_projection(mask).build().map_err(|e| read_err(&e))? {
                    self.update(&batch.map_err(|e| read_err(&e))?)?;
                }
            } else {
                let r = arrow::ipc::reader::FileReader::try_new(std::io::BufReader::new(file), None)
                    .map_err(|e| read_err(&e))?;
                for batch in r {
                    self.update(&batch.map_err(|e| read_err(&e))?)?;
                }
            }
        }
        Ok(())
    }

    /// The verdicts; `rows` is the run's total output rows (from the journal).
    pub fn finish(self, rows: u64) -> Vec<CheckResult> {
        self.checks
            .into_iter()
            .map(|(spec, state)| verdict(&spec, state, rows))
            .collect()
    }

    /// Rows fed so far (a consistency check against the journal).
    pub fn rows_seen(&self) -> u64 {
        self.rows
    }
}

impl CheckSpec {
    fn columns(&self) -> Vec<String> {
        match self {
            CheckSpec::RowCount { .. } => Vec::new(),
            CheckSpec::NotNull { columns, .. } | CheckSpec::Unique { columns, .. } => columns.clone(),
            CheckSpec::NullRate { column, .. }
            | CheckSpec::AcceptedValues { column, .. }
            | CheckSpec::Range { column, .. }
            | CheckSpec::Freshness { column, .. } => vec![column.clone()],
        }
    }
}

fn verdict(spec: &CheckSpec, state: State, rows: u64) -> CheckResult {
    use serde_json::json;
    let (pass, expected, observed) = match (spec, state) {
        (CheckSpec::RowCount { min, max, .. }, State::RowCount) => (
            min.is_none_or(|m| rows >= m) && max.is_none_or(|m| rows <= m),
            bounds_text(min.map(|m| m.to_string()), max.map(|m| m.to_string())),
            json!({ "rows": rows }),
        ),
        (CheckSpec::NotNull { columns, .. }, State::NotNull { nulls }) => (
            nulls.iter().all(|&n| n == 0),
            "no nulls".to_string(),
            json!({ "nulls": columns.iter().zip(&nulls).map(|(c, n)| (c.clone(), json!(n))).collect::<serde_json::Map<_, _>>() }),
        ),
        (CheckSpec::NullRate { max, .. }, State::NullRate { nulls }) => {
            let rate = if rows == 0 { 0.0 } else { nulls as f64 / rows as f64 };
            (
                rate <= *max,
                format!("null rate at most {max}"),
                json!({ "null_rate": rate, "nulls": nulls, "rows": rows }),
            )
        }
        (
            CheckSpec::Unique { .. },
            State::Unique {
                duplicates, examples, ..
            },
        ) => (
            duplicates == 0,
            "no duplicate keys".to_string(),
            json!({ "duplicate_rows": duplicates, "examples": examples }),
        ),
        (CheckSpec::AcceptedValues { values, .. }, State::Accepted { bad, examples, .. }) => (
            bad == 0,
            format!(
                "one of [{}]",
                values.iter().filter_map(value_text).collect::<Vec<_>>().join(", ")
            ),
            json!({ "unaccepted_rows": bad, "examples": examples }),
        ),
        (
            CheckSpec::Range { .. },
            State::Range {
                axis,
                min,
                max,
                lowest,
                highest,
                outside,
            },
        ) => {
            let show = |v: Option<f64>| v.map(|v| axis_text(v, axis));
            (
                outside == 0,
                bounds_text(show(min), show(max)),
                json!({ "min": show(lowest), "max": show(highest), "rows_outside": outside }),
            )
        }
        (
            CheckSpec::Freshness { max_age, .. },
            State::Freshness {
                reference_us,
                max_age_us,
                newest,
            },
        ) => {
            let age = newest.map(|n| reference_us - n);
            (
                age.is_some_and(|a| a <= max_age_us),
                format!(
                    "newest value at most {max_age} before {}",
                    axis_text(reference_us as f64, Axis::Time)
                ),
                json!({
                    "newest": newest.map(|n| axis_text(n as f64, Axis::Time)),
                    "age_hours": age.map(|a| (a as f64 / 3.6e9 * 100.0).round() / 100.0),
                }),
            )
        }
        _ => unreachable!("each check is prepared with its own state"),
    };
    CheckResult {
        name: spec.name(),
        check: spec.kind().to_string(),
        severity: spec.severity(),
        status: if pass { "pass" } else { "fail" }.to_string(),
        expected,
        observed,
    }
}

fn bounds_text(min: Option<String>, max: Option<String>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "anything".into(),
    }
}

fn value_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        _ => None,
    }
}

fn axis_of(t: &DataType) -> Option<Axis> {
    match t {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => Some(Axis::Time),
        t if t.is_numeric() => Some(Axis::Number),
        _ => None,
    }
}

/// A bound from the spec on `axis`: a number, or a date/timestamp as UTC microseconds.
fn bound(v: &toml::Value, axis: Axis) -> std::result::Result<f64, String> {
    match (axis, v) {
        (Axis::Number, toml::Value::Integer(n)) => Ok(*n as f64),
        (Axis::Number, toml::Value::Float(f)) => Ok(*f),
        (Axis::Time, toml::Value::String(_) | toml::Value::Datetime(_)) => {
            let text = value_text(v).unwrap_or_default();
            parse_time(&text).ok_or_else(|| {
                format!("bound `{text}` is not a date like \"2026-11-01\" or a timestamp like \"2026-11-01T12:00:00Z\"")
            })
        }
        (Axis::Number, other) => Err(format!("bound `{other}` must be a number for a numeric column")),
        (Axis::Time, other) => Err(format!(
            "bound `{other}` must be a date like \"2026-11-01\" for a date or timestamp column"
        )),
    }
}

/// Parse a date or timestamp (naive ones are UTC) into UTC microseconds, with arrow's parser.
fn parse_time(text: &str) -> Option<f64> {
    let a: ArrayRef = Arc::new(StringArray::from(vec![text]));
    let t = arrow::compute::cast_with_options(
        &a,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
        &arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        },
    )
    .ok()?;
    let t = arrow::compute::cast(&t, &DataType::Int64).ok()?;
    Some(t.as_primitive::<Int64Type>().value(0) as f64)
}

/// Values of a numeric column as f64, or of a date/timestamp column as UTC microseconds
/// (exact in f64 for ±285 years around 1970).
fn to_f64(a: &ArrayRef, axis: Axis) -> std::result::Result<arrow::array::Float64Array, arrow::error::ArrowError> {
    use arrow::compute::cast;
    let micros: ArrayRef = match (axis, a.data_type()) {
        (Axis::Number, _) => return Ok(cast(a, &DataType::Float64)?.as_primitive::<Float64Type>().clone()),
        (Axis::Time, DataType::Date32) => {
            let days = cast(a, &DataType::Int32)?;
            Arc::new(
                days.as_primitive::<Int32Type>()
                    .unary::<_, Int64Type>(|d| i64::from(d) * DAY_US),
            )
        }
        (Axis::Time, DataType::Date64) => {
            let ms = cast(a, &DataType::Int64)?;
            Arc::new(ms.as_primitive::<Int64Type>().unary::<_, Int64Type>(|m| m * 1_000))
        }
        // Timestamps hold UTC instants (tz-aware) or wall times taken as UTC (naive); a
        // unit change keeps the timezone, so the raw values stay UTC.
        (Axis::Time, DataType::Timestamp(_, tz)) => {
            let us = cast(a, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?;
            cast(&us, &DataType::Int64)?
        }
        (Axis::Time, t) => {
            return Err(arrow::error::ArrowError::CastError(format!(
                "{t} is not a date or timestamp"
            )));
        }
    };
    Ok(cast(&micros, &DataType::Float64)?.as_primitive::<Float64Type>().clone())
}

/// Show a value on `axis`: a number as is; a time as `YYYY-MM-DD` or RFC 3339 (UTC).
fn axis_text(v: f64, axis: Axis) -> String {
    match axis {
        Axis::Number => v.to_string(),
        Axis::Time => {
            let us = v as i64;
            let (days, rest) = (us.div_euclid(DAY_US), us.rem_euclid(DAY_US));
            let date = crate::spec::format_date(days);
            if rest == 0 {
                date
            } else {
                let s = rest / 1_000_000;
                let frac = rest % 1_000_000;
                let mut t = format!("{date}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
                if frac != 0 {
                    t.push_str(&format!(".{frac:06}"));
                }
                t + "Z"
            }
        }
    }
}

/// Parse `90m`, `36h`, `2d`, `45s` into microseconds.
fn parse_age(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`max_age = \"{s}\"` is not an age like \"36h\" or \"2d\""))?;
    let mul: i64 = match unit.trim() {
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => DAY_US,
        _ => return Err(format!("`max_age = \"{s}\"`: use s, m, h or d, e.g. \"36h\"")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`max_age = \"{s}\"` is too large"))
}

/// Row `i` of the key `arrays` as text, for duplicate examples.
fn row_text(arrays: &[ArrayRef], i: usize) -> String {
    let opts = arrow::util::display::FormatOptions::default();
    arrays
        .iter()
        .map(|a| {
            arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &opts)
                .map(|f| f.value(i).to_string())
                .unwrap_or_else(|_| "?".into())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, TimestampMicrosecondArray};
    use arrow::datatypes::Field;

    fn checks(text: &str) -> Vec<CheckSpec> {
        toml::from_str::<ChecksFile>(text).unwrap().checks
    }

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("status", DataType::Utf8, true),
            Field::new("day", DataType::Date32, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(2), None])),
                Arc::new(StringArray::from(vec![Some("new"), Some("paid"), Some("lost"), None])),
                Arc::new(Date32Array::from(vec![20_393, 20_394, 20_395, 20_396])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_700_000_000_000_000), None, None, None])
                        .with_timezone("+00:00"),
                ),
            ],
        )
        .unwrap()
    }

    fn run(text: &str, date: Option<&str>) -> Vec<CheckResult> {
        let b = batch();
        let mut g = Gates::prepare(&checks(text), b.schema().as_ref(), date).unwrap();
        g.update(&b).unwrap();
        g.update(&b.slice(0, 1)).unwrap();
        let rows = g.rows_seen();
        g.finish(rows)
    }

    #[test]
    fn unique_spans_batches_and_skips_null_keys() {
        let r = run("[[checks]]\ncheck = \"unique\"\ncolumns = [\"id\"]\n", None);
        // The batch repeats 2 once; the second batch's 1 repeats the first batch's 1; the
        // null key is not compared.
        assert_eq!(r[0].observed["duplicate_rows"], 2, "{r:?}");
        assert_eq!(r[0].observed["examples"], serde_json::json!(["2", "1"]));
        assert!(r[0].failed());
    }

    #[test]
    fn ranges_on_dates_and_numbers() {
        let r = run(
            "[[checks]]\ncheck = \"range\"\ncolumn = \"day\"\nmin = \"2025-11-01\"\nmax = \"2025-11-04\"\n[[checks]]\ncheck = \"range\"\ncolumn = \"id\"\nmin = 1\nmax = 2\n",
            None,
        );
        assert_eq!(r[0].observed["min"], "2025-11-01");
        assert_eq!(r[0].observed["max"], "2025-11-04");
        assert!(!r[0].failed(), "{r:?}");
        assert!(!r[1].failed(), "{r:?}");
        let r = run("[[checks]]\ncheck = \"range\"\ncolumn = \"id\"\nmax = 1\n", None);
        assert_eq!(r[0].observed["rows_outside"], 2);
    }

    #[test]
    fn freshness_is_measured_from_the_logical_date() {
        // 1_700_000_000 s is 2023-11-14T22:13:20Z.
        let text = "[[checks]]\ncheck = \"freshness\"\ncolumn = \"ts\"\nmax_age = \"2h\"\n";
        assert!(!run(text, Some("2023-11-14"))[0].failed());
        let r = run(text, Some("2023-11-15"));
        assert!(r[0].failed());
        assert_eq!(r[0].observed["newest"], "2023-11-14T22:13:20Z");
        let b = batch();
        let e = Gates::prepare(&checks(text), b.schema().as_ref(), None).err().unwrap();
        assert!(e.to_string().contains("--logical-date"), "{e}");
    }

    #[test]
    fn spec_errors_name_the_check_and_the_fix() {
        let b = batch();
        let e = Gates::prepare(
            &checks("[[checks]]\ncheck = \"not_null\"\ncolumns = [\"nope\"]\n"),
            b.schema().as_ref(),
            None,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("not_null(nope)") && e.contains("no column `nope`") && e.contains("status"),
            "{e}"
        );
        let e = toml::from_str::<ChecksFile>("[[checks]]\ncheck = \"not_null\"\ncolumn = [\"id\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("column"), "{e}");
        let e = toml::from_str::<ChecksFile>("[[checks]]\ncheck = \"uniq\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("uniq") && e.contains("unique"), "{e}");
        assert!(parse_age("3w").is_err());
        assert_eq!(parse_age("36h").unwrap(), 36 * 3_600_000_000);
    }
}
