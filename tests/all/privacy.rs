//! Column classification: sensitivity and retention in the output's Parquet field metadata
//! (read back with pyarrow) and the run record; `require_masked_pii`.

use std::path::Path;
use std::process::Command;

use sluice_test_artifacts as art;

use crate::util::*;

fn python() -> String {
    std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A spec over the orders sample: email is pii (masked by `mask` when `masked`), id internal.
fn write_spec(dir: &Path, masked: bool) -> std::path::PathBuf {
    write_parquet(&dir.join("orders.parquet"), &[orders()]);
    // Masked: the mask plugin, declared to mask `email`. Not: a passthrough, so email
    // reaches the output as it came in.
    let stage = if masked {
        format!(
            "path = \"{}\"\nconfig = {{ columns = \"email\" }}\nmasks = [\"email\"]\n",
            art::MASK
        )
    } else {
        format!("path = \"{}\"\n", art::PASSTHROUGH)
    };
    let spec = dir.join("pipeline.toml");
    std::fs::write(
        &spec,
        format!(
            "version = 1\nname = \"orders\"\n[input]\npaths = [\"orders.parquet\"]\n\
             [[plugins]]\n{stage}\
             [output]\npath = \"out\"\n\
             [columns.email]\nsensitivity = \"pii\"\nretention = \"90d\"\n\
             [columns.id]\nsensitivity = \"internal\"\n\
             [columns.loyalty_tier]\nsensitivity = \"public\"\n\
             [privacy]\nrequire_masked_pii = true\n",
        ),
    )
    .unwrap();
    spec
}

#[test]
fn classification_reaches_parquet_field_metadata_and_the_run_record() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), true);
    sluice()
        .arg("run")
        .arg(&spec)
        .arg("--allow-unpinned")
        .assert()
        .success();
    let out = dir.path().join("out");
    // pyarrow, not our own reader: the labels must be visible to the rest of the ecosystem.
    let script = r#"
import json, sys, glob, pyarrow.parquet as pq
s = pq.read_schema(sorted(glob.glob(sys.argv[1] + "/data/*.parquet"))[0])
print(json.dumps({f.name: {k.decode(): v.decode() for k, v in (f.metadata or {}).items()} for f in s}))
"#;
    let o = Command::new(python())
        .args(["-c", script])
        .arg(&out)
        .output()
        .expect("python3 with pyarrow is needed: pip install -r tests/requirements.txt");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        meta["email"],
        serde_json::json!({"sluice.sensitivity": "pii", "sluice.retention": "90d", "sluice.masked_by": "mask"})
    );
    assert_eq!(meta["id"], serde_json::json!({"sluice.sensitivity": "internal"}));
    assert_eq!(
        meta["qty"],
        serde_json::json!({}),
        "unclassified columns carry no label"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap();
    let c = &m["classification"];
    assert_eq!(c["columns"]["email"]["sensitivity"], "pii");
    assert_eq!(c["columns"]["email"]["retention_days"], 90);
    assert_eq!(c["columns"]["email"]["masked_by"], "mask");
    assert_eq!(c["not_in_output"], serde_json::json!(["loyalty_tier"]));
    sluice().arg("verify").arg(&out).assert().success();
}

#[test]
fn an_unmasked_pii_column_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), false);
    let a = sluice().arg("run").arg(&spec).arg("--allow-unpinned").assert().code(3);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("`email`") && err.contains("masks = [\"email\"]"), "{err}");
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["status"], "failed_quality");
    assert_eq!(
        s["checks"][0]["observed"]["unmasked_pii_columns"],
        serde_json::json!(["email"])
    );
    assert!(!dir.path().join("out/_SUCCESS").exists());
    assert!(
        !dir.path().join("out/data/part-000000.parquet").exists(),
        "refused before any data moved"
    );
}
