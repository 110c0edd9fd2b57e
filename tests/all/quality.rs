//! Quality gates: each kind passing and failing, whole-run uniqueness (also across a crash
//! and resume), `warn` gates, gates from a pipeline spec, and gate spec errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::util::*;

/// A batch of `ids` with a `status` column.
fn keyed(ids: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("status", DataType::Utf8, true),
    ]));
    let status: Vec<&str> = ids.iter().map(|i| if i % 2 == 0 { "paid" } else { "new" }).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(status)),
        ],
    )
    .unwrap()
}

struct Outcome {
    code: i32,
    summary: serde_json::Value,
    stderr: String,
    out: PathBuf,
}

impl Outcome {
    fn record(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.out.join("_sluice/manifest.json")).unwrap()).unwrap()
    }
    fn published(&self) -> bool {
        self.out.join("_SUCCESS").exists()
    }
    /// The check named `name` in the summary.
    fn check(&self, name: &str) -> serde_json::Value {
        self.summary["checks"]
            .as_array()
            .unwrap_or_else(|| panic!("no checks in {}", self.summary))
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check `{name}` in {}", self.summary))
            .clone()
    }
}

/// Run `input` (no plugins) with the gates in `checks` (TOML) into a new `dir/out-N`.
fn gate(dir: &Path, input: &Path, checks: &str, extra: &[&str]) -> Outcome {
    let n = std::fs::read_dir(dir).unwrap().count();
    let file = dir.join(format!("checks-{n}.toml"));
    std::fs::write(&file, checks).unwrap();
    let out = dir.join(format!("out-{n}"));
    let o = sluice()
        .args(["run", "--input"])
        .arg(input)
        .arg("--checks")
        .arg(&file)
        .arg("--output")
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    Outcome {
        code: o.status.code().unwrap(),
        summary: summary(&o.stdout),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        out,
    }
}

/// The orders sample (10 rows: `id` = i % 7, a null `qty` at 3 and `email` at 5, `day`
/// 2022-01-08 … 2022-01-17) as a Parquet file in `dir`.
fn orders_file(dir: &Path) -> PathBuf {
    let p = dir.join("orders.parquet");
    write_parquet(&p, &[orders()]);
    p
}

fn assert_blocked(o: &Outcome, name: &str) {
    assert_eq!(o.code, 3, "a failed gate exits 3; stderr: {}", o.stderr);
    assert!(!o.published(), "a failed gate publishes nothing");
    assert_eq!(o.summary["status"], "failed_quality", "{}", o.summary);
    assert_eq!(o.check(name)["status"], "fail");
    let record = o.record();
    assert_eq!(record["status"], "failed_quality");
    assert!(
        record["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == name && c["status"] == "fail"),
        "{record}"
    );
    assert!(
        o.stderr.contains("FAIL") && o.stderr.contains(name) && o.stderr.contains("nothing was published"),
        "{}",
        o.stderr
    );
    // `verify` says why the run is not published, naming the gate.
    let v = sluice().arg("verify").arg(&o.out).output().unwrap();
    assert_eq!(v.status.code(), Some(5));
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(err.contains("failed its quality gates") && err.contains(name), "{err}");
}

fn assert_published(o: &Outcome, name: &str) {
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    assert!(o.published());
    assert_eq!(o.summary["status"], "ok");
    assert_eq!(o.check(name)["status"], "pass", "{}", o.summary);
    assert_eq!(o.record()["status"], "ok");
}

#[test]
fn row_count_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"row_count\"\nmin = 10\nmax = 10\n",
        &[],
    );
    assert_published(&o, "row_count");
    assert_eq!(o.check("row_count")["observed"]["rows"], 10);
    let o = gate(dir.path(), &input, "[[checks]]\ncheck = \"row_count\"\nmin = 11\n", &[]);
    assert_blocked(&o, "row_count");
    assert_eq!(o.check("row_count")["observed"]["rows"], 10);
    assert_eq!(o.check("row_count")["expected"], "at least 11");
}

#[test]
fn not_null_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"not_null\"\ncolumns = [\"id\", \"day\"]\n",
        &[],
    );
    assert_published(&o, "not_null(id, day)");
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"not_null\"\ncolumns = [\"id\", \"email\"]\n",
        &[],
    );
    assert_blocked(&o, "not_null(id, email)");
    assert_eq!(
        o.check("not_null(id, email)")["observed"]["nulls"],
        serde_json::json!({"id": 0, "email": 1})
    );
}

#[test]
fn null_rate_at_most() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"null_rate\"\ncolumn = \"email\"\nmax = 0.1\n",
        &[],
    );
    assert_published(&o, "null_rate(email)");
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"null_rate\"\ncolumn = \"email\"\nmax = 0.05\n",
        &[],
    );
    assert_blocked(&o, "null_rate(email)");
    assert_eq!(o.check("null_rate(email)")["observed"]["null_rate"], 0.1);
}

#[test]
fn unique_is_judged_over_the_whole_run_not_per_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let unique = "[[checks]]\ncheck = \"unique\"\ncolumns = [\"id\"]\n";
    // Each 10-row chunk is unique on its own; the run is not (id 3 is in both chunks).
    let input = dir.path().join("keys.parquet");
    write_parquet(
        &input,
        &[
            keyed(&(0..10).collect::<Vec<_>>()),
            keyed(&[3, 10, 11, 12, 13, 14, 15, 16, 17, 18]),
        ],
    );
    let o = gate(dir.path(), &input, unique, &["--chunk-rows", "10"]);
    assert_blocked(&o, "unique(id)");
    assert_eq!(o.check("unique(id)")["observed"]["duplicate_rows"], 1);
    assert_eq!(o.check("unique(id)")["observed"]["examples"], serde_json::json!(["3"]));
    assert_eq!(
        o.record()["chunks"].as_array().unwrap().len(),
        2,
        "two chunks were committed"
    );
    // Distinct keys across both chunks pass; a compound key is unique where one column is not.
    write_parquet(
        &input,
        &[
            keyed(&(0..10).collect::<Vec<_>>()),
            keyed(&(10..20).collect::<Vec<_>>()),
        ],
    );
    let o = gate(dir.path(), &input, unique, &["--chunk-rows", "10"]);
    assert_published(&o, "unique(id)");
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"unique\"\ncolumns = [\"status\", \"id\"]\n[[checks]]\ncheck = \"unique\"\ncolumns = [\"status\"]\n",
        &["--chunk-rows", "10"],
    );
    assert_eq!(o.check("unique(status, id)")["status"], "pass");
    assert_eq!(o.check("unique(status)")["status"], "fail");
    assert_eq!(o.code, 3);
}

#[test]
fn unique_holds_across_a_crash_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("keys.parquet");
    write_parquet(
        &input,
        &[
            keyed(&(0..10).collect::<Vec<_>>()),
            keyed(&[3, 10, 11, 12, 13, 14, 15, 16, 17, 18]),
        ],
    );
    let checks = dir.path().join("checks.toml");
    std::fs::write(&checks, "[[checks]]\ncheck = \"unique\"\ncolumns = [\"id\"]\n").unwrap();
    let out = dir.path().join("out");
    let run = || {
        let mut c = sluice();
        c.args(["run", "--chunk-rows", "10", "--input"])
            .arg(&input)
            .arg("--checks")
            .arg(&checks)
            .arg("--output")
            .arg(&out);
        c
    };
    // The first attempt dies right after chunk 0 is committed.
    run().env("SLUICE_FAULT", "kill@journal_synced:0").assert().failure();
    assert!(!out.join("_SUCCESS").exists());
    // The resumed attempt writes only chunk 1, yet the gate sees chunk 0's keys too.
    let a = run().assert().code(3);
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["checks"][0]["observed"]["duplicate_rows"], 1, "{s}");
    assert!(!out.join("_SUCCESS").exists());
    // Loosened to a warning, the rerun keeps the committed chunks and only re-judges them.
    std::fs::write(
        &checks,
        "[[checks]]\ncheck = \"unique\"\ncolumns = [\"id\"]\nseverity = \"warn\"\n",
    )
    .unwrap();
    let a = run().assert().success();
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["chunks_resumed"], 2, "{s}");
    assert_eq!(s["checks"][0]["status"], "fail");
    assert_eq!(s["checks"][0]["severity"], "warn");
    assert!(out.join("_SUCCESS").exists());
}

#[test]
fn a_gated_run_whose_input_changed_is_not_rejudged_on_stale_parts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("keys.parquet");
    write_parquet(
        &input,
        &[
            keyed(&(0..10).collect::<Vec<_>>()),
            keyed(&[3, 10, 11, 12, 13, 14, 15, 16, 17, 18]),
        ],
    );
    let checks = dir.path().join("checks.toml");
    std::fs::write(&checks, "[[checks]]\ncheck = \"unique\"\ncolumns = [\"id\"]\n").unwrap();
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        let mut c = sluice();
        c.args(["run", "--chunk-rows", "10", "--input"])
            .arg(&input)
            .arg("--checks")
            .arg(&checks)
            .arg("--output")
            .arg(&out)
            .args(extra);
        c
    };
    run(&[]).assert().code(3);
    // Fixed input: the committed (unpublished) parts are stale, and the rerun says so ...
    write_parquet(
        &input,
        &[
            keyed(&(0..10).collect::<Vec<_>>()),
            keyed(&(10..20).collect::<Vec<_>>()),
        ],
    );
    // (The file's bytes changed, so under the default `--input-digest files` the first
    // committed chunk already no longer matches.)
    let a = run(&[]).assert().code(5);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("changed since chunk 0") && err.contains("input file") && err.contains("--overwrite"),
        "{err}"
    );
    // ... and --overwrite starts over rather than resuming them.
    let a = run(&["--overwrite"]).assert().success();
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["checks"][0]["status"], "pass", "{s}");
    assert_eq!(s["chunks_resumed"], 0, "{s}");
    assert!(out.join("_SUCCESS").exists());
}

#[test]
fn accepted_values() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("keys.parquet");
    write_parquet(&input, &[keyed(&[1, 2, 3])]);
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"accepted_values\"\ncolumn = \"status\"\nvalues = [\"new\", \"paid\"]\n[[checks]]\ncheck = \"accepted_values\"\ncolumn = \"id\"\nvalues = [1, 2, 3]\n",
        &[],
    );
    assert_published(&o, "accepted_values(status)");
    assert_eq!(o.check("accepted_values(id)")["status"], "pass");
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"accepted_values\"\ncolumn = \"status\"\nvalues = [\"paid\", \"shipped\"]\n",
        &[],
    );
    assert_blocked(&o, "accepted_values(status)");
    let observed = &o.check("accepted_values(status)")["observed"];
    assert_eq!(observed["unaccepted_rows"], 2);
    assert_eq!(observed["examples"], serde_json::json!(["new"]));
}

#[test]
fn numeric_and_date_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    let ok = "[[checks]]\ncheck = \"range\"\ncolumn = \"qty\"\nmin = 0\nmax = 45.0\n\
              [[checks]]\ncheck = \"range\"\ncolumn = \"day\"\nmin = \"2022-01-08\"\nmax = \"2022-01-17\"\n";
    let o = gate(dir.path(), &input, ok, &[]);
    assert_published(&o, "range(qty)");
    assert_eq!(o.check("range(day)")["status"], "pass");
    assert_eq!(o.check("range(day)")["observed"]["max"], "2022-01-17");
    let bad = "[[checks]]\ncheck = \"range\"\ncolumn = \"qty\"\nmax = 40\n\
               [[checks]]\ncheck = \"range\"\ncolumn = \"day\"\nmax = \"2022-01-16\"\n\
               [[checks]]\ncheck = \"range\"\ncolumn = \"price\"\nmin = 100\n";
    let o = gate(dir.path(), &input, bad, &[]);
    assert_blocked(&o, "range(qty)");
    assert_eq!(
        o.check("range(qty)")["observed"]["rows_outside"],
        1,
        "only 45.0 is above 40"
    );
    assert_eq!(o.check("range(day)")["status"], "fail");
    assert_eq!(o.check("range(price)")["status"], "pass", "decimals compare as numbers");
}

#[test]
fn freshness_is_relative_to_the_logical_date_not_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    // The newest `day` is 2022-01-17: 1 day old at the end of 2022-01-17, 2 days at the end
    // of 2022-01-18.
    let fresh = "[[checks]]\ncheck = \"freshness\"\ncolumn = \"day\"\nmax_age = \"36h\"\n";
    let o = gate(dir.path(), &input, fresh, &["--logical-date", "2022-01-17"]);
    assert_published(&o, "freshness(day)");
    assert_eq!(o.check("freshness(day)")["observed"]["age_hours"], 24.0);
    assert_eq!(o.record()["context"]["logical_date"], "2022-01-17");
    let o = gate(dir.path(), &input, fresh, &["--logical-date", "2022-01-18"]);
    assert_blocked(&o, "freshness(day)");
    assert_eq!(o.check("freshness(day)")["observed"]["newest"], "2022-01-17");
    // Without a logical date there is nothing to measure from: a usage error, before any work.
    let o = gate(dir.path(), &input, fresh, &[]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--logical-date"), "{}", o.stderr);
}

#[test]
fn warn_gates_report_but_publish() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"not_null\"\ncolumns = [\"email\"]\nseverity = \"warn\"\nname = \"emails present\"\n",
        &[],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.published());
    assert_eq!(o.summary["status"], "ok");
    assert_eq!(o.check("emails present")["status"], "fail");
    assert_eq!(o.record()["checks"][0]["severity"], "warn");
    assert!(
        o.stderr.contains("emails present"),
        "the warning is logged: {}",
        o.stderr
    );
}

#[test]
fn gates_from_a_pipeline_spec_use_the_date_partition() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("in/2022-01-17")).unwrap();
    write_parquet(&dir.path().join("in/2022-01-17/orders.parquet"), &[orders()]);
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "version = 1\nname = \"orders\"\n[partition]\nkey = \"date\"\n[input]\npaths = [\"in/{date}/*.parquet\"]\n\
         [output]\npath = \"out/{date}\"\n\
         [[checks]]\ncheck = \"freshness\"\ncolumn = \"day\"\nmax_age = \"1d\"\n\
         [[checks]]\ncheck = \"row_count\"\nmin = 1\n",
    )
    .unwrap();
    let a = sluice()
        .arg("run")
        .arg(dir.path().join("pipeline.toml"))
        .args(["--partition", "2022-01-17"])
        .assert()
        .success();
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["checks"].as_array().unwrap().len(), 2, "{s}");
    assert!(dir.path().join("out/2022-01-17/_SUCCESS").exists());
    // The gates and the logical date are recorded: a replay re-judges them the same way.
    let a = sluice()
        .arg("replay")
        .arg(dir.path().join("out/2022-01-17"))
        .assert()
        .success();
    assert_eq!(summary(&a.get_output().stdout)["status"], "identical");
    // A misspelt key in a check is refused with the spec named.
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "version = 1\nname = \"orders\"\n[input]\npaths = [\"in/x/*.parquet\"]\n[output]\npath = \"out/x\"\n\
         [[checks]]\ncheck = \"row_count\"\nminimum = 1\n",
    )
    .unwrap();
    let a = sluice()
        .arg("run")
        .arg(dir.path().join("pipeline.toml"))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("pipeline.toml") && err.contains("minimum"), "{err}");
}

#[test]
fn a_gate_on_a_missing_column_is_a_usage_error_naming_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    let o = gate(
        dir.path(),
        &input,
        "[[checks]]\ncheck = \"not_null\"\ncolumns = [\"e_mail\"]\n",
        &[],
    );
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("`e_mail`") && o.stderr.contains("email"),
        "{}",
        o.stderr
    );
    assert!(!o.published());
}
