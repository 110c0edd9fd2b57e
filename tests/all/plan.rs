//! `sluice plan`: estimates from input metadata and one sample chunk, checked against a real
//! run of the same spec. Row counts are exact where metadata gives them (Parquet footers, a
//! text file read whole); with a sample of part of the input, rows out are within 10% and
//! output bytes within 50% of the real run; a sample of the whole input is the real run.

use std::path::{Path, PathBuf};

use sluice_test_artifacts as art;

use crate::util::*;

/// A spec reading `input_glob` through `plugin` (config `config`) into `out`.
fn spec(dir: &Path, input_glob: &str, plugin: &str, config: &str) -> PathBuf {
    let p = dir.join("pipeline.toml");
    std::fs::write(
        &p,
        format!(
            "version = 1\nname = \"plan\"\n[input]\npaths = [{input_glob:?}]\n\
             [[plugins]]\npath = {plugin:?}\nconfig = {{ {config} }}\n\
             [output]\npath = \"out\"\nchunk_rows = 1000\n"
        ),
    )
    .unwrap();
    p
}

fn plan(spec: &Path, sample_rows: usize) -> serde_json::Value {
    let a = sluice()
        .args(["plan", "--allow-unpinned", "--json", "--sample-rows"])
        .arg(sample_rows.to_string())
        .arg(spec)
        .assert()
        .success();
    let stdout = &a.get_output().stdout;
    assert_eq!(
        String::from_utf8_lossy(stdout).lines().count(),
        1,
        "--json prints one line"
    );
    summary(stdout)
}

fn run(spec: &Path) -> serde_json::Value {
    let a = sluice().args(["run", "--allow-unpinned"]).arg(spec).assert().success();
    summary(&a.get_output().stdout)
}

fn within(estimate: &serde_json::Value, real: &serde_json::Value, tolerance: f64) -> bool {
    let (e, r) = (estimate.as_f64().unwrap(), real.as_f64().unwrap());
    (e - r).abs() <= tolerance * r
}

#[test]
fn a_csv_plan_matches_a_real_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let orders = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/orders.csv");
    std::fs::copy(orders, dir.path().join("in/orders.csv")).unwrap();
    let spec = spec(dir.path(), "in/*.csv", art::FILTER, "predicate = \"quantity < 24\"");
    let part = plan(&spec, 1000);
    let whole = plan(&spec, 100_000);
    // Planning writes nothing.
    assert!(!dir.path().join("out").exists());
    let real = run(&spec);
    // A 1000-row sample of 2000 rows: rows in exact (the file is small enough to count its
    // lines), rows out and bytes estimated.
    assert_eq!(part["files"][0]["rows"], 2000);
    assert_eq!(part["files"][0]["rows_exact"], true);
    assert_eq!(part["sample"]["rows_in"], 1000);
    assert_eq!(part["sample"]["whole_input"], false);
    let cur = &part["current"];
    assert_eq!(cur["rows_in"], real["rows_in"]);
    assert!(within(&cur["rows_out"], &real["rows_out"], 0.10), "{cur} vs {real}");
    assert!(
        within(&cur["output_bytes"], &real["bytes_out"], 0.50),
        "{cur} vs {real}"
    );
    assert_eq!(cur["chunks"], real["chunks"]);
    assert_eq!(
        cur["input_bytes"].as_u64(),
        Some(std::fs::metadata(dir.path().join("in/orders.csv")).unwrap().len())
    );
    // 3x volume is three times the current one.
    let x3 = &part["x3"];
    assert_eq!(x3["rows_in"].as_u64(), cur["rows_in"].as_u64().map(|r| r * 3));
    assert_eq!(x3["input_bytes"].as_u64(), cur["input_bytes"].as_u64().map(|r| r * 3));
    assert!(within(
        &x3["rows_out"],
        &serde_json::json!(cur["rows_out"].as_u64().unwrap() * 3),
        0.001
    ));
    assert_eq!(x3["chunks"], 6);
    // A sample of the whole input is the run itself: exact rows and bytes.
    assert_eq!(whole["sample"]["whole_input"], true);
    assert_eq!(whole["current"]["rows_out"], real["rows_out"]);
    assert_eq!(whole["current"]["output_bytes"].as_u64(), real["bytes_out"].as_u64());
}

#[test]
fn parquet_row_counts_come_from_the_footers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    write_parquet(&dir.path().join("in/a.parquet"), &[orders(), orders(), orders()]);
    write_parquet(&dir.path().join("in/b.parquet"), &[orders()]);
    let spec = spec(dir.path(), "in/*.parquet", art::PASSTHROUGH, "");
    let p = plan(&spec, 7);
    let real = run(&spec);
    let files: Vec<(u64, bool)> = p["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rows"].as_u64().unwrap(), f["rows_exact"] == true))
        .collect();
    let n = orders().num_rows() as u64;
    assert_eq!(files, [(3 * n, true), (n, true)]);
    assert_eq!(p["sample"]["rows_in"], 7);
    assert_eq!(p["rows_in_exact"], true);
    assert_eq!(p["current"]["rows_in"], real["rows_in"]);
    // Passthrough keeps every row: the estimate is exact.
    assert_eq!(p["current"]["rows_out"], real["rows_out"]);
    assert_eq!(p["x3"]["rows_in"].as_u64(), Some(3 * 4 * n));
}

#[test]
fn the_table_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    write_parquet(&dir.path().join("in/a.parquet"), &[orders()]);
    let spec = spec(dir.path(), "in/*.parquet", art::PASSTHROUGH, "");
    let a = sluice()
        .args(["plan", "--allow-unpinned"])
        .arg(&spec)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert!(
        stdout.contains("rows out") && stdout.contains("3x") && stdout.contains("a.parquet"),
        "{stdout}"
    );
    assert_eq!(summary(a.get_output().stdout.as_slice())["status"], "planned");
    // A sample of no rows, and an unpinned plugin without --allow-unpinned, are usage errors.
    sluice()
        .args(["plan", "--allow-unpinned", "--sample-rows", "0"])
        .arg(&spec)
        .assert()
        .code(2);
    let a = sluice().arg("plan").arg(&spec).assert().code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("sha256"));
}

#[test]
fn a_stateful_chain_is_sampled_across_chunks_as_a_run_carries_it() {
    // Dedupe on `country` keeps the first row per country across the whole run, not per
    // chunk: a whole-input sample over two chunks gives the run's rows and bytes exactly.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let orders = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/orders.csv");
    std::fs::copy(orders, dir.path().join("in/orders.csv")).unwrap();
    let spec = spec(dir.path(), "in/*.csv", art::DEDUPE, "key = \"country\"");
    let p = plan(&spec, 100_000);
    let real = run(&spec);
    assert_eq!(p["sample"]["whole_input"], true);
    assert_eq!(p["sample"]["files"], 2);
    assert_eq!(p["current"]["rows_out"], real["rows_out"]);
    assert_eq!(p["current"]["output_bytes"].as_u64(), real["bytes_out"].as_u64());
}

#[test]
fn a_large_csv_is_estimated_from_its_first_lines() {
    // 5 MiB of CSV: more than the 4 MiB counted, so rows in are estimated (within 5%).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/orders.csv")).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let mut big = format!("{header}\n");
    while big.len() < 5 << 20 {
        big.push_str(body);
    }
    std::fs::write(dir.path().join("in/big.csv"), &big).unwrap();
    let spec = spec(dir.path(), "in/*.csv", art::PASSTHROUGH, "");
    let p = plan(&spec, 1000);
    let real = run(&spec);
    assert_eq!(p["files"][0]["rows_exact"], false);
    assert_eq!(p["rows_in_exact"], false);
    assert!(
        within(&p["current"]["rows_in"], &real["rows_in"], 0.05),
        "{} vs {real}",
        p["current"]
    );
    assert!(
        within(&p["current"]["rows_out"], &real["rows_out"], 0.05),
        "{} vs {real}",
        p["current"]
    );
}
