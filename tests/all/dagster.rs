//! Dagster Pipes: a real Dagster asset (`PipesSubprocessClient`, tests/all/dagster_asset.py)
//! runs the `sluice` binary; the materialization carries the run's row counts and digests,
//! each quality gate is an asset check, and a failing run's exit code reaches Dagster.
//!
//! Needs the `dagster` Python package (tests/requirements.txt; the README's test command
//! installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_test_artifacts as art;

use crate::util::*;

fn python() -> String {
    std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A date-partitioned spec over a copy of tests/data/orders.csv, filtered, with `checks`.
fn pipeline(dir: &Path, checks: &str) -> PathBuf {
    let landing = dir.join("landing/2026-11-01");
    std::fs::create_dir_all(&landing).unwrap();
    let orders = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/orders.csv");
    std::fs::copy(orders, landing.join("orders.csv")).unwrap();
    let spec = dir.join("pipeline.toml");
    std::fs::write(
        &spec,
        format!(
            "version = 1\nname = \"orders-daily\"\n[partition]\nkey = \"date\"\n\
             [input]\npaths = [\"landing/{{date}}/*.csv\"]\n\
             [[plugins]]\npath = {:?}\nconfig = {{ predicate = \"quantity < 24\" }}\n\
             [output]\npath = \"out/{{date}}\"\n{checks}",
            art::FILTER
        ),
    )
    .unwrap();
    spec
}

/// Materialize the Dagster asset for partition 2026-11-01; the driver's JSON report.
fn materialize(spec: &Path, checks: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/all/dagster_asset.py");
    let o = Command::new(python())
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg(spec)
        .arg("2026-11-01")
        .arg(checks.join(","))
        .env("DAGSTER_HOME", spec.parent().unwrap())
        .output()
        .expect("python3 with the dagster package is needed: pip install -r tests/requirements.txt");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the Dagster driver failed:\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("driver printed `{last}` ({e}); stderr:\n{stderr}"))
}

const GATES: &str = "[[checks]]\ncheck = \"row_count\"\nmin = 1\n\
                     [[checks]]\ncheck = \"not_null\"\ncolumns = [\"order_id\"]\n\
                     [[checks]]\ncheck = \"accepted_values\"\ncolumn = \"status\"\nvalues = [\"new\"]\nseverity = \"warn\"\n";

#[test]
fn a_dagster_asset_materializes_with_the_runs_rows_digests_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let spec = pipeline(dir.path(), GATES);
    let r = materialize(&spec, &["row_count", "not_null_order_id", "accepted_values_status"]);
    assert_eq!(r["success"], true, "{r}");
    let mats = r["materializations"].as_array().unwrap();
    assert_eq!(mats.len(), 1, "{r}");
    // Dagster's partition key chose the partition: the output is the 2026-11-01 one.
    let out = dir.path().join("out/2026-11-01");
    assert!(out.join("_SUCCESS").exists(), "{r}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap();
    let md = &mats[0]["metadata"];
    assert_eq!(mats[0]["partition"], "2026-11-01");
    assert_eq!(md["rows_in"], 2000);
    assert_eq!(md["rows_out"], record["rows_out"]);
    assert!(md["rows_out"].as_u64().unwrap() < 2000, "the filter dropped rows: {md}");
    assert_eq!(md["root_digest"], record["root_digest"]);
    assert_eq!(md["action_key"], record["action_key"]);
    assert_eq!(
        md["chunks"].as_u64(),
        record["chunks"].as_array().map(|c| c.len() as u64)
    );
    assert_eq!(mats[0]["tags"]["dagster/data_version"], record["root_digest"]);
    // Dagster's run id is recorded as the scheduler's run id.
    assert!(
        record["context"]["run_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{}",
        record["context"]
    );
    let checks: Vec<(String, bool, String)> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["passed"] == true,
                c["severity"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("row_count".into(), true, "ERROR".into()),
            ("not_null_order_id".into(), true, "ERROR".into()),
            ("accepted_values_status".into(), false, "WARN".into()),
        ]
    );
}

#[test]
fn a_failing_run_fails_the_dagster_step_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let spec = pipeline(dir.path(), "[[checks]]\ncheck = \"row_count\"\nmax = 10\n");
    let r = materialize(&spec, &["row_count"]);
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(r["materializations"].as_array().unwrap().len(), 0, "{r}");
    let errors = r["errors"].to_string();
    assert!(errors.contains("failed with code 3"), "{errors}");
    assert!(!dir.path().join("out/2026-11-01/_SUCCESS").exists());
}

/// Encode a Pipes param as Dagster does: base64 of zlib-compressed JSON.
fn encode(v: &serde_json::Value) -> String {
    let o = Command::new(python())
        .args([
            "-c",
            "import base64,sys,zlib; print(base64.b64encode(zlib.compress(sys.argv[1].encode())).decode())",
        ])
        .arg(v.to_string())
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn pipes_messages_without_dagster_report_a_failed_gate_and_close_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = pipeline(dir.path(), "[[checks]]\ncheck = \"row_count\"\nmax = 10\n");
    let messages = dir.path().join("messages.jsonl");
    let context = serde_json::json!({"data": {"asset_keys": ["orders_daily"], "partition_key": "2026-11-01",
        "run_id": "r-1", "extras": {}}});
    let o = sluice()
        .args(["run", "--allow-unpinned"])
        .arg(&spec)
        .env("DAGSTER_PIPES_CONTEXT", encode(&context))
        .env("DAGSTER_PIPES_MESSAGES", encode(&serde_json::json!({"path": messages})))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&messages)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let methods: Vec<&str> = lines.iter().map(|l| l["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["opened", "report_asset_check", "closed"], "{lines:?}");
    assert_eq!(lines[1]["params"]["passed"], false);
    assert_eq!(lines[1]["params"]["metadata"]["observed"]["raw_value"]["rows"], 921);
    let exc = &lines[2]["params"]["exception"];
    assert!(exc["message"].as_str().unwrap().contains("exit code 3"), "{exc}");
    // A param that is not base64 of zlib JSON is a usage error naming the variable.
    let o = sluice()
        .args(["run", "--allow-unpinned"])
        .arg(&spec)
        .env("DAGSTER_PIPES_CONTEXT", "not-a-param")
        .env("DAGSTER_PIPES_MESSAGES", "x")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("DAGSTER_PIPES_CONTEXT"));
}
