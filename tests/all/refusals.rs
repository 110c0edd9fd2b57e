//! Files that are not sluice plugins, and plugins that break the contract.

use sluice_test_artifacts as art;

use crate::util::*;

fn run_with(plugin: &std::path::Path, dir: &std::path::Path) -> assert_cmd::assert::Assert {
    let input = dir.join("orders.parquet");
    write_parquet(&input, &[orders()]);
    sluice()
        .args(["run", "--input"])
        .arg(&input)
        .arg("--plugin")
        .arg(plugin)
        .arg("--output")
        .arg(dir.join("out"))
        .assert()
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plugin.wasm");
    std::fs::write(&p, "#!/bin/sh\necho hi\n").unwrap();
    run_with(&p, dir.path())
        .code(2)
        .stderr(predicates::str::contains("is not a WebAssembly file"));
    assert!(
        !dir.path().join("out").exists(),
        "nothing is created for a refused plugin"
    );
}

#[test]
fn a_core_module_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("core.wasm");
    // The smallest valid core module: magic + version 1.
    std::fs::write(&p, b"\0asm\x01\0\0\0").unwrap();
    run_with(&p, dir.path())
        .code(2)
        .stderr(predicates::str::contains("core WebAssembly module, not a component"));
}

#[test]
fn a_component_for_another_world_is_refused_naming_what_it_exports() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.wasm");
    // The smallest valid component: magic + component-model layer version. It exports nothing.
    std::fs::write(&p, b"\0asm\x0d\0\x01\0").unwrap();
    run_with(&p, dir.path()).code(2).stderr(predicates::str::contains(
        "does not export `sluice:transform/transform@1.x`; it exports: nothing",
    ));
}

#[test]
fn a_missing_plugin_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    run_with(&dir.path().join("nope.wasm"), dir.path())
        .code(2)
        .stderr(predicates::str::contains("does not exist"));
}

#[test]
fn a_batch_that_breaks_the_declared_schema_fails_with_exit_4_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_with(std::path::Path::new(art::BAD_SCHEMA), dir.path())
        .code(4)
        .stderr(predicates::str::contains("plugin `bad-schema`"))
        .stderr(predicates::str::contains("column `x`"));
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["status"], "failed");
    assert_eq!(s["exit_code"], 4);
    let out = dir.path().join("out");
    assert!(!out.join("_SUCCESS").exists());
    let parts: Vec<_> = std::fs::read_dir(out.join("data"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(parts.is_empty(), "no part file, not even a temporary one: {parts:?}");
    // The failed attempt is recorded with its error, for whoever looks at 3 AM.
    let attempt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_sluice/last_attempt.json")).unwrap()).unwrap();
    assert_eq!(attempt["status"], "failed");
    assert_eq!(attempt["error"]["exit_code"], 4);
    assert_eq!(attempt["chunks_committed"], 0);
}
