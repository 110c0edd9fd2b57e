//! Artifact pinning, fail closed: `--plugin P.wasm@sha256:HEX` and
//! `Runtime::load_plugin_pinned`. A mismatch is refused before the bytes are compiled
//! (even bytes that are not wasm at all get the pin error), naming both digests.

use std::path::Path;

use sha2::Digest;
use sluice_host::ExitCode;
use sluice_test_artifacts as art;

use crate::util::*;

fn sha(path: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
    )
}

fn run_pinned(dir: &Path, plugin: &str) -> assert_cmd::assert::Assert {
    let input = dir.join("orders.parquet");
    write_parquet(&input, &[orders()]);
    sluice()
        .args(["run", "--input"])
        .arg(&input)
        .args(["--plugin", plugin, "--output"])
        .arg(dir.join("out"))
        .assert()
}

#[test]
fn a_matching_pin_runs() {
    let dir = tempfile::tempdir().unwrap();
    run_pinned(dir.path(), &format!("{}@{}", art::PASSTHROUGH, sha(art::PASSTHROUGH))).code(0);
    assert_eq!(output_batch(&dir.path().join("out")), orders());
}

#[test]
fn a_mismatched_pin_is_refused_naming_both_digests() {
    let dir = tempfile::tempdir().unwrap();
    let (got, want) = (sha(art::PASSTHROUGH), sha(art::ECHO));
    let a = run_pinned(dir.path(), &format!("{}@{want}", art::PASSTHROUGH))
        .code(2)
        .stderr(predicates::str::contains(format!("found {got} but expected {want}")));
    assert_eq!(summary(&a.get_output().stdout)["exit_code"], 2);
    assert!(!dir.path().join("out").exists(), "nothing is created for a refused pin");
}

#[test]
fn a_malformed_pin_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    run_pinned(dir.path(), &format!("{}@sha256:abc", art::PASSTHROUGH))
        .code(2)
        .stderr(predicates::str::contains("sha256:abc"))
        .stderr(predicates::str::contains("64 hex digits"));
}

#[test]
fn the_library_checks_the_pin_before_compiling() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // Not wasm at all: without a pin this fails as "not a WebAssembly file"; with a wrong
    // pin the pin is what refuses it, so nothing was parsed or compiled first.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"#!/bin/sh\nrm -rf /\n").unwrap();
    let want = sha(art::ECHO);
    let e = rt.load_plugin_pinned(&junk, Some(&want)).err().expect("refused");
    assert_eq!(e.exit_code(), ExitCode::Usage, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("does not match its pin") && text.contains(&want),
        "{text}"
    );
    assert!(
        text.contains(&sha(junk.to_str().unwrap())),
        "names the digest found: {text}"
    );

    let p = rt.load_plugin_pinned(
        Path::new(art::ECHO),
        Some(&want.to_uppercase().replace("SHA256:", "sha256:")),
    );
    assert_eq!(p.expect("a matching pin (any hex case) loads").sha256(), want);
    let e = rt
        .load_plugin_pinned(Path::new(art::ECHO), Some("md5:1234"))
        .err()
        .expect("malformed");
    assert_eq!(e.exit_code(), ExitCode::Usage);
    assert!(rt.load_plugin_pinned(Path::new(art::ECHO), None).is_ok());
}
