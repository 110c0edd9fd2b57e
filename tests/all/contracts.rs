//! Schema contracts: `sluice check-compat` on additive and breaking plugin pairs, and
//! `on_schema_change` when the input drifts from its contract.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_test_artifacts as art;

use crate::util::*;

/// `sluice check-compat OLD NEW --input-schema INPUT ARGS…`: exit code and summary.
fn compat(old: &str, new: &str, input: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let o = sluice()
        .args(["check-compat", old, new, "--input-schema"])
        .arg(input)
        .args(args)
        .output()
        .unwrap();
    (o.status.code().unwrap(), summary(&o.stdout))
}

fn changes(s: &serde_json::Value) -> Vec<(String, String)> {
    s["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["column"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn orders_file(dir: &Path) -> PathBuf {
    let p = dir.join("orders.parquet");
    write_parquet(&p, &[orders()]);
    p
}

#[test]
fn check_compat_accepts_additive_changes() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    // A new nullable column (qty is nullable, so qty * 2 is).
    let (code, s) = compat(
        art::PASSTHROUGH,
        art::DERIVE,
        &input,
        &["--new-config", "name=double_qty", "--new-config", "expr=qty * 2"],
    );
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["status"], "additive");
    assert_eq!(changes(&s), [("double_qty".to_string(), "added".to_string())]);
    assert_eq!(s["new"]["name"], "derive");
    assert!(s["old"]["sha256"].as_str().unwrap().starts_with("sha256:"));
    // The same plugin and config: identical.
    let (code, s) = compat(art::PASSTHROUGH, art::PASSTHROUGH, &input, &[]);
    assert_eq!((code, s["status"].as_str()), (0, Some("identical")));
}

#[test]
fn check_compat_refuses_removed_renamed_retyped_and_tightened_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = orders_file(dir.path());
    let (code, s) = compat(
        art::PASSTHROUGH,
        art::SELECT,
        &input,
        &["--new-config", "columns=id, qty, price, discount, day"],
    );
    assert_eq!(code, 3, "{s}");
    assert_eq!(s["status"], "breaking");
    assert_eq!(changes(&s), [("email".to_string(), "removed".to_string())]);

    let (code, s) = compat(
        art::PASSTHROUGH,
        art::SELECT,
        &input,
        &[
            "--new-config",
            "columns=id, qty as quantity, price, discount, email, day",
        ],
    );
    assert_eq!(code, 3);
    assert_eq!(changes(&s), [("qty".to_string(), "renamed".to_string())]);
    assert_eq!(s["changes"][0]["new"], "quantity");

    let (code, s) = compat(
        art::DERIVE,
        art::DERIVE,
        &input,
        &["-c", "name=x", "-c", "expr=qty * 2", "--new-config", "type=int64"],
    );
    assert_eq!(code, 3);
    assert_eq!(changes(&s), [("x".to_string(), "retyped".to_string())]);

    // The input schema may be a contract file; `a` nullable, `b` not: selecting `b` as the
    // column that used to be `a` tightens nullability (old partitions hold nulls).
    let contract = dir.path().join("input.schema.json");
    std::fs::write(
        &contract,
        r#"{"sluice_schema": 1, "fields": [{"name": "a", "type": "Int64", "nullable": true}, {"name": "b", "type": "Int64", "nullable": false}]}"#,
    )
    .unwrap();
    let o = sluice()
        .args(["check-compat", art::SELECT, art::SELECT, "--input-schema"])
        .arg(&contract)
        .args(["--old-config", "columns=a as v", "--new-config", "columns=b as v"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let s = summary(&o.stdout);
    assert_eq!(changes(&s), [("v".to_string(), "nullability_tightened".to_string())]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("BREAKING nullability_tightened `v`"), "{err}");
}

/// The orders sample with one more column, `channel`.
fn orders_plus_channel() -> RecordBatch {
    let b = orders();
    let mut fields = b.schema().fields().to_vec();
    fields.push(Arc::new(Field::new("channel", DataType::Utf8, true)));
    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
    cols.push(Arc::new(StringArray::from(vec![Some("web"); b.num_rows()])));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

#[test]
fn input_drift_follows_on_schema_change() {
    let dir = tempfile::tempdir().unwrap();
    let contract = dir.path().join("orders.schema.json");
    let first = orders_file(dir.path());
    let run = |input: &Path, out: &str, mode: &str| {
        let mut c = sluice();
        c.args(["run", "--input"])
            .arg(input)
            .arg("--schema-contract")
            .arg(&contract)
            .args(["--on-schema-change", mode, "--output"])
            .arg(dir.path().join(out));
        c
    };
    // The first run records the contract from its input.
    run(&first, "o1", "fail").assert().success();
    assert!(contract.exists());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o1/_sluice/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["input_contract"]["created"], true);

    let drifted = dir.path().join("drifted.parquet");
    write_parquet(&drifted, &[orders_plus_channel()]);
    // fail: refused before anything is written, naming the column and the ways out.
    let a = run(&drifted, "o2", "fail").assert().code(5);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("added `channel`") && err.contains("append_new_columns"),
        "{err}"
    );
    assert!(!dir.path().join("o2/_SUCCESS").exists());
    // append_new_columns: the new column flows through, and the drift is recorded.
    run(&drifted, "o3", "append-new-columns").assert().success();
    assert!(
        output_batch(&dir.path().join("o3"))
            .schema()
            .field_with_name("channel")
            .is_ok()
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o3/_sluice/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["input_contract"]["drift"][0]["column"], "channel");
    assert_eq!(m["input_contract"]["on_schema_change"], "append_new_columns");
    // ignore: plugins and output see exactly the contract's columns.
    run(&drifted, "o4", "ignore").assert().success();
    assert_eq!(
        output_batch(&dir.path().join("o4")),
        output_batch(&dir.path().join("o1"))
    );
    // A removed column is never accepted.
    let shrunk = dir.path().join("shrunk.parquet");
    write_parquet(&shrunk, &[orders().project(&[0, 1, 2, 3, 5]).unwrap()]);
    let a = run(&shrunk, "o5", "ignore").assert().code(5);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("removed `email`"), "{err}");
}

#[test]
fn a_spec_declares_the_contract_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    orders_file(dir.path());
    let spec = dir.path().join("pipeline.toml");
    std::fs::write(
        &spec,
        "version = 1\nname = \"orders\"\n[input]\npaths = [\"orders.parquet\"]\nschema_contract = \"contracts/orders.json\"\non_schema_change = \"ignore\"\n[output]\npath = \"out\"\n",
    )
    .unwrap();
    sluice().arg("run").arg(&spec).assert().success();
    assert!(dir.path().join("contracts/orders.json").exists());
    // The recorded contract is replayed with the run.
    let a = sluice().arg("replay").arg(dir.path().join("out")).assert().success();
    assert_eq!(summary(&a.get_output().stdout)["status"], "identical");
    std::fs::write(
        &spec,
        "version = 1\nname = \"orders\"\n[input]\npaths = [\"orders.parquet\"]\non_schema_change = \"ignore\"\n[output]\npath = \"out2\"\n",
    )
    .unwrap();
    let a = sluice().arg("run").arg(&spec).assert().code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("schema_contract"));
}
