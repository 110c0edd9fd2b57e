//! `sluice test`: plugins pass their conformance cases (tests/conformance/<plugin>/), and
//! the checks catch a plugin that leaks the clock, one that loses state at checkpoints,
//! and output that differs from the expected file.

use std::path::{Path, PathBuf};

use sluice_test_artifacts as art;

use crate::util::*;

/// The committed conformance cases of one plugin.
pub fn cases(plugin: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/conformance")
        .join(plugin)
}

/// Run `sluice test`; returns (exit code, stdout, summary).
pub fn sluice_test(wasm: &str, cases: &Path, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let out = sluice()
        .arg("test")
        .arg(wasm)
        .arg("--cases")
        .arg(cases)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().unwrap_or(-1),
        format!("{stdout}\n--- stderr ---\n{stderr}"),
        summary(&out.stdout),
    )
}

/// Assert that `wasm` passes every case in `cases` (exit 0, every case listed as ok).
pub fn assert_passes(wasm: &str, cases: &Path) {
    let (code, out, summary) = sluice_test(wasm, cases, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(summary["status"], "ok", "{out}");
    let n = std::fs::read_dir(cases).unwrap().count();
    assert_eq!(summary["cases"], n, "every case directory runs: {out}");
    assert_eq!(summary["passed"], n, "{out}");
}

#[test]
fn rust_filter_passes_its_cases() {
    assert_passes(art::FILTER, &cases("filter"));
}

#[test]
fn rust_passthrough_passes_its_cases() {
    assert_passes(art::PASSTHROUGH, &cases("passthrough"));
}

#[test]
fn c_passthrough_passes_the_passthrough_cases() {
    assert_passes(art::PASSTHROUGH_C, &cases("passthrough"));
}

#[test]
fn rust_mask_passes_its_cases() {
    assert_passes(art::MASK, &cases("mask"));
}

#[test]
fn python_mask_passes_the_mask_cases() {
    assert_passes(art::MASK_PY, &cases("mask"));
}

#[test]
fn javascript_filter_passes_the_filter_cases() {
    assert_passes(art::FILTER_JS, &cases("filter"));
}

/// A one-case directory for the `leaky` test plugin with `leak` set.
fn leaky_case(root: &Path, leak: &str) -> PathBuf {
    let dir = root.join(leak);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(cases("filter").join("numeric-and/input.csv"), dir.join("input.csv")).unwrap();
    std::fs::write(
        dir.join("case.toml"),
        format!("batch_rows = 5\n[config]\nleak = \"{leak}\"\n"),
    )
    .unwrap();
    dir
}

#[test]
fn catches_a_plugin_that_reads_the_clock_into_its_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, summary) = sluice_test(art::LEAKY, &leaky_case(tmp.path(), "clock"), &["--bless"]);
    assert_eq!(code, 4, "{out}");
    assert_eq!(summary["status"], "failed", "{out}");
    assert!(out.contains("FAIL clock: not deterministic"), "{out}");
    assert!(out.contains("column `n`"), "the diff names the column: {out}");
    assert!(
        !tmp.path().join("clock/expected.arrows").exists(),
        "a failing case is not blessed"
    );
}

#[test]
fn catches_a_plugin_that_loses_state_across_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, _) = sluice_test(art::LEAKY, &leaky_case(tmp.path(), "state"), &["--bless"]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("FAIL state: output changes when the input is split at batch 1 (row 5)"),
        "{out}"
    );
    assert!(
        out.contains("first difference at row 5, column `n`: left 5, right 0"),
        "{out}"
    );

    // The control: the same plugin keeping its state passes, and blessing then checking works.
    let dir = leaky_case(tmp.path(), "none");
    let (code, out, summary) = sluice_test(art::LEAKY, &dir, &["--bless"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(summary["blessed"], true, "{out}");
    assert!(dir.join("expected.arrows").is_file(), "{out}");
    let (code, out, _) = sluice_test(art::LEAKY, &dir, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok   none (24 rows in, 24 out, 5 split runs)"), "{out}");
}

#[test]
fn output_that_differs_from_expected_names_the_first_row_and_column() {
    // The filter case with a looser predicate: the first kept row differs from the expected.
    let tmp = tempfile::tempdir().unwrap();
    let src = cases("filter").join("numeric-and");
    for f in ["input.csv", "expected.arrows"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    std::fs::write(
        tmp.path().join("case.toml"),
        "[config]\npredicate = \"quantity < 24\"\n",
    )
    .unwrap();
    let (code, out, summary) = sluice_test(art::FILTER, tmp.path(), &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("output differs from"), "{out}");
    assert!(
        out.contains("first difference at row 0, column `order_id`: left 4, right 1"),
        "{out}"
    );
    assert_eq!(summary["error"]["category"], "plugin", "{out}");

    // A case expecting a config error fails when the plugin accepts the config.
    std::fs::write(
        tmp.path().join("case.toml"),
        "expect_error = \"invalid-config\"\n[config]\npredicate = \"quantity < 24\"\n",
    )
    .unwrap();
    let (code, out, _) = sluice_test(art::FILTER, tmp.path(), &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("expected the plugin to fail with `invalid-config`"),
        "{out}"
    );
}

#[test]
fn bad_cases_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, _) = sluice_test(art::FILTER, tmp.path(), &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no cases in"), "{out}");
    std::fs::write(tmp.path().join("case.toml"), "batch_rows = \"many\"\n").unwrap();
    let (code, out, _) = sluice_test(art::FILTER, tmp.path(), &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("case.toml") && out.contains("batch_rows"), "{out}");
}
