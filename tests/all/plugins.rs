//! Every example plugin through the real binary, on Parquet and on CSV input.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use sha2::{Digest, Sha256};
use sluice_test_artifacts as art;

use crate::util::*;

const CSV: &str = "id,city,amount,day\n1,Lyon,10.5,2024-01-01\n2,Oslo,3.25,2024-01-02\n1,Lyon,10.5,2024-01-01\n3,,7,2024-01-03\n2,Oslo,1,2024-01-04\n";

/// Write the same five rows as CSV and as Parquet; returns both paths.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let csv = dir.join("cities.csv");
    std::fs::write(&csv, CSV).unwrap();
    // Parquet with the schema the CSV reader infers, so both inputs give the same answers.
    let out = dir.join("tmp-out");
    sluice()
        .args(["run", "--input"])
        .arg(&csv)
        .args(["--plugin", art::PASSTHROUGH, "--output"])
        .arg(&out)
        .assert()
        .success();
    let pq = dir.join("cities.parquet");
    write_parquet(&pq, &read_output(&out));
    vec![csv, pq]
}

fn run(input: &Path, out: &Path, plugin: &str, config: &[&str]) -> arrow::array::RecordBatch {
    let mut c = sluice();
    c.args(["run", "--input"]).arg(input).args(["--plugin", plugin]);
    for kv in config {
        c.args(["--config", kv]);
    }
    c.arg("--output").arg(out).assert().success();
    output_batch(out)
}

#[test]
fn passthrough_filter_select_on_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    for (i, input) in inputs(dir.path()).iter().enumerate() {
        let b = run(input, &dir.path().join(format!("p{i}")), art::PASSTHROUGH, &[]);
        assert_eq!(b.num_rows(), 5);
        assert_eq!(b.num_columns(), 4);

        let b = run(
            input,
            &dir.path().join(format!("f{i}")),
            art::FILTER,
            &["predicate=amount >= 3.25 and city = 'Lyon'"],
        );
        assert_eq!(b.num_rows(), 2, "{input:?}");

        let b = run(
            input,
            &dir.path().join(format!("d{i}")),
            art::FILTER,
            &["predicate=day >= date '2024-01-03'"],
        );
        assert_eq!(b.num_rows(), 2, "{input:?}");

        // SQL null semantics: the row with a null city matches neither `=` nor `!=`.
        let b = run(
            input,
            &dir.path().join(format!("n{i}")),
            art::FILTER,
            &["predicate=city != 'Lyon'"],
        );
        assert_eq!(b.num_rows(), 2, "{input:?}");

        let b = run(
            input,
            &dir.path().join(format!("s{i}")),
            art::SELECT,
            &["columns=amount, id as customer"],
        );
        let names: Vec<&str> = b.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, vec!["amount", "customer"]);
    }
}

#[test]
fn derive_mask_dedupe_on_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    for (i, input) in inputs(dir.path()).iter().enumerate() {
        let b = run(
            input,
            &dir.path().join(format!("v{i}")),
            art::DERIVE,
            &["name=double", "expr=(amount + 1) * 2"],
        );
        let v = b
            .column_by_name("double")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!(v.value(0), 23.0);
        assert_eq!(v.value(1), 8.5);

        let b = run(input, &dir.path().join(format!("m{i}")), art::MASK, &["columns=city"]);
        let col = b.column_by_name("city").unwrap();
        let hashed: Vec<Option<String>> = match col.data_type() {
            arrow::datatypes::DataType::Utf8View => {
                col.as_string_view().iter().map(|s| s.map(str::to_string)).collect()
            }
            _ => col.as_string::<i32>().iter().map(|s| s.map(str::to_string)).collect(),
        };
        assert_eq!(
            hashed[0].as_deref(),
            Some(hex::encode(Sha256::digest(b"Lyon")).as_str())
        );
        assert!(col.is_null(3), "a null stays null");

        let b = run(input, &dir.path().join(format!("u{i}")), art::DEDUPE, &["key=id"]);
        let ids: Vec<i64> = b
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec();
        assert_eq!(ids, vec![1, 2, 3], "first occurrence of each key, in order");
    }
}

#[test]
fn plugin_config_errors_are_usage_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = &inputs(dir.path())[0];
    sluice()
        .args(["run", "--input"])
        .arg(input)
        .args(["--plugin", art::FILTER, "--output"])
        .arg(dir.path().join("o"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("predicate"));
    sluice()
        .args(["run", "--input"])
        .arg(input)
        .args(["--plugin", art::FILTER, "--config", "predicate=nosuch > 1", "--output"])
        .arg(dir.path().join("o2"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("nosuch"));
}

#[test]
fn dedupe_state_survives_chunk_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let input = &inputs(dir.path())[1];
    // One row per chunk: duplicates are in different chunks, so the state must carry over.
    let b = {
        let out = dir.path().join("chunked");
        sluice()
            .args(["run", "--chunk-rows", "1", "--batch-rows", "1", "--input"])
            .arg(input)
            .args(["--plugin", art::DEDUPE, "--config", "key=id,city", "--output"])
            .arg(&out)
            .assert()
            .success();
        output_batch(&out)
    };
    // (1,Lyon) and (2,Oslo) come twice, each time in another chunk.
    assert_eq!(b.num_rows(), 3);
}

#[test]
fn inspect_reports_name_version_abi_and_sha256() {
    let a = sluice().args(["inspect", "--json", art::FILTER]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["name"], "filter");
    assert_eq!(v["abi_version"], "1.1.0");
    let want = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(std::fs::read(art::FILTER).unwrap()))
    );
    assert_eq!(v["sha256"], want);
    sluice()
        .args(["inspect", art::MASK])
        .assert()
        .success()
        .stdout(predicates::str::contains("name:        mask"));
}
