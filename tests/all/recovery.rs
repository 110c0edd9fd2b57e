//! Crash safety: SIGKILL at every step of the commit protocol, random kills, injected
//! EIO/ENOSPC, torn journals, leftovers and tampering. After recovery the output must be
//! byte-identical to an uninterrupted run, with a stateful plugin in the chain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::RecordBatch;
use sluice_test_artifacts as art;

use crate::util::*;

const CHUNK_ROWS: &str = "10";

/// 60 rows with repeated keys, so `dedupe` drops rows across chunk boundaries.
fn input(dir: &Path) -> PathBuf {
    let p = dir.join("orders.parquet");
    let batches: Vec<RecordBatch> = (0..6).map(|_| orders()).collect();
    write_parquet(&p, &batches);
    p
}

fn cmd(input: &Path, out: &Path) -> assert_cmd::Command {
    let mut c = sluice();
    c.args(["run", "--chunk-rows", CHUNK_ROWS, "--batch-rows", "3", "--input"])
        .arg(input)
        .args(["--plugin", art::DEDUPE, "--config", "key=id,discount"])
        .args(["--plugin", art::PASSTHROUGH, "--output"])
        .arg(out);
    c
}

/// Every file under `out/data` with its bytes, plus the manifest's chunk records.
fn snapshot(out: &Path) -> (BTreeMap<String, Vec<u8>>, serde_json::Value) {
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(out.join("data")).unwrap() {
        let e = e.unwrap();
        files.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap();
    // Fuel is deterministic for the same execution history, but a resumed stateful plugin
    // starts from a fresh heap, so its instruction count may differ (and with it the
    // journal's `prev` chain). Everything about the data must be identical.
    for c in m["chunks"].as_array_mut().unwrap() {
        let c = c.as_object_mut().unwrap();
        c.remove("fuel");
        c.remove("prev");
    }
    (
        files,
        serde_json::json!({ "chunks": m["chunks"], "root": m["root_digest"], "key": m["action_key"] }),
    )
}

fn reference(dir: &Path, input: &Path) -> (BTreeMap<String, Vec<u8>>, serde_json::Value) {
    let out = dir.join("reference");
    cmd(input, &out).assert().success();
    let snap = snapshot(&out);
    assert_eq!(snap.0.len(), 6, "60 rows in chunks of 10");
    snap
}

fn assert_same_as(out: &Path, want: &(BTreeMap<String, Vec<u8>>, serde_json::Value), what: &str) {
    assert!(out.join("_SUCCESS").exists(), "{what}: no _SUCCESS");
    let got = snapshot(out);
    assert_eq!(
        got.0.keys().collect::<Vec<_>>(),
        want.0.keys().collect::<Vec<_>>(),
        "{what}: files differ"
    );
    for (k, v) in &want.0 {
        assert!(got.0[k] == *v, "{what}: `{k}` is not byte-identical");
    }
    assert_eq!(got.1, want.1, "{what}: run record differs");
}

const POINTS: &[&str] = &[
    "part_written",
    "part_synced",
    "part_renamed",
    "dir_synced",
    "state_written",
    "before_journal",
    "after_journal_write",
    "journal_synced",
];

#[test]
fn sigkill_at_every_protocol_step_then_resume_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let want = reference(dir.path(), &input);
    let mut cases: Vec<(String, u64)> = Vec::new();
    for k in [0u64, 3, 5] {
        for p in POINTS {
            cases.push((p.to_string(), k));
        }
    }
    for p in ["before_manifest", "manifest_written", "success_written"] {
        cases.push((p.to_string(), 6));
    }
    for (point, k) in cases {
        let what = format!("kill@{point}:{k}");
        let out = dir.path().join(format!("out-{point}-{k}"));
        let a = cmd(&input, &out).env("SLUICE_FAULT", &what).assert().failure();
        let status = a.get_output().status;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{what}: the process was not killed"
        );
        let a = cmd(&input, &out).assert().success();
        let s = summary(&a.get_output().stdout);
        assert!(s["status"] == "ok" || s["status"] == "already_complete", "{what}: {s}");
        assert_same_as(&out, &want, &what);
    }
}

#[test]
fn fifty_random_sigkills_then_resume_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let want = reference(dir.path(), &input);
    // A fixed-seed LCG: the same kill schedule every run of the suite.
    let mut seed: u64 = 0x5EED;
    let mut rand = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut kills = 0;
    let mut runs = 0;
    while kills < 50 {
        runs += 1;
        let out = dir.path().join(format!("out-{runs}"));
        // Kill this output's run again and again until it completes on its own.
        loop {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
            child
                .env("SLUICE_CACHE_DIR", cache_dir())
                .args(["run", "--chunk-rows", CHUNK_ROWS, "--batch-rows", "3", "--input"])
                .arg(&input)
                .args([
                    "--plugin",
                    art::DEDUPE,
                    "--config",
                    "key=id,discount",
                    "--plugin",
                    art::PASSTHROUGH,
                    "--output",
                ])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let mut child = child.spawn().unwrap();
            if kills >= 50 {
                // Enough kills: let this attempt finish.
                let status = child.wait().unwrap();
                assert!(status.success(), "run {runs} failed on its own: {status}");
                break;
            }
            std::thread::sleep(Duration::from_millis(rand(250)));
            let finished = child.try_wait().unwrap();
            if let Some(status) = finished {
                assert!(status.success(), "run {runs} failed on its own: {status}");
                break;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
        }
        assert_same_as(&out, &want, &format!("random kills, run {runs}"));
    }
    assert!(kills >= 50);
}

#[test]
fn injected_eio_and_enospc_at_each_write_resume_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let want = reference(dir.path(), &input);
    for kind in ["eio@write", "enospc@write", "eio@fsync"] {
        let mut n = 1;
        loop {
            let out = dir.path().join(format!("out-{kind}-{n}"));
            let fault = format!("{kind}:{n}");
            let a = cmd(&input, &out).env("SLUICE_FAULT", &fault).assert();
            let code = a.get_output().status.code();
            if code == Some(0) {
                // N is past the last write: the fault never fired.
                assert_same_as(&out, &want, &fault);
                break;
            }
            assert_eq!(code, Some(1), "{fault}: an I/O error is worth retrying (exit 1)");
            let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
            let expect = if kind.starts_with("enospc") {
                "No space left"
            } else {
                "Input/output error"
            };
            assert!(err.contains(expect), "{fault}: {err}");
            cmd(&input, &out).assert().success();
            assert_same_as(&out, &want, &fault);
            n += 1;
            assert!(n < 200, "{kind}: the fault kept firing");
        }
        assert!(n > 10, "{kind}: a run should do more than 10 writes, got {n}");
    }
}

#[test]
fn torn_journal_tail_and_leftover_files_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let want = reference(dir.path(), &input);
    let out = dir.path().join("out");
    cmd(&input, &out)
        .env("SLUICE_FAULT", "kill@journal_synced:2")
        .assert()
        .failure();
    let journal = out.join("_sluice/journal.jsonl");
    let mut text = std::fs::read(&journal).unwrap();
    text.extend_from_slice(br#"{"kind":"chunk","chunk":3,"input_ro"#);
    std::fs::write(&journal, &text).unwrap();
    std::fs::write(out.join("data/.part-000003.parquet.tmp"), b"half a file").unwrap();
    std::fs::write(out.join("data/part-000004.parquet"), b"never committed").unwrap();
    cmd(&input, &out).assert().success();
    assert_same_as(&out, &want, "torn tail");
}

#[test]
fn a_tampered_committed_chunk_is_detected_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    cmd(&input, &out)
        .env("SLUICE_FAULT", "kill@journal_synced:2")
        .assert()
        .failure();
    let part = out.join("data/part-000001.parquet");
    let mut bytes = std::fs::read(&part).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&part, &bytes).unwrap();
    cmd(&input, &out).assert().code(2).stderr(predicates::str::contains(
        "committed chunk 1 (`data/part-000001.parquet`) was modified after commit",
    ));
    // An edited journal line breaks the hash chain.
    let out2 = dir.path().join("out2");
    cmd(&input, &out2)
        .env("SLUICE_FAULT", "kill@journal_synced:2")
        .assert()
        .failure();
    let journal = out2.join("_sluice/journal.jsonl");
    let text = std::fs::read_to_string(&journal)
        .unwrap()
        .replacen("\"rows_out\":", "\"rows_out\":1", 1);
    std::fs::write(&journal, text).unwrap();
    cmd(&input, &out2)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("corrupt"));
}

#[test]
fn rerunning_a_finished_run_is_a_noop_and_a_different_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    cmd(&input, &out).assert().success();
    let before = snapshot(&out);
    let a = cmd(&input, &out).assert().success();
    assert_eq!(summary(&a.get_output().stdout)["status"], "already_complete");
    assert_eq!(snapshot(&out), before);

    // Same output directory, different config: refused, old output untouched.
    let other = |out: &Path| {
        let mut c = sluice();
        c.args(["run", "--chunk-rows", CHUNK_ROWS, "--input"])
            .arg(&input)
            .args(["--plugin", art::DEDUPE, "--config", "key=id", "--output"])
            .arg(out);
        c
    };
    other(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("different job"));
    assert_eq!(snapshot(&out), before);

    // --overwrite killed half way: the old run is still complete and readable.
    other(&out)
        .arg("--overwrite")
        .env("SLUICE_FAULT", "kill@journal_synced:2")
        .assert()
        .failure();
    assert_eq!(snapshot(&out), before);
    assert!(out.join("_SUCCESS").exists());
    // Rerunning the overwrite finishes it and only then replaces the old output.
    other(&out).arg("--overwrite").assert().success();
    assert_ne!(snapshot(&out).1, before.1);
    let siblings: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !siblings.iter().any(|s| s.contains("sluice-")),
        "staging directories are cleaned up: {siblings:?}"
    );
}

#[test]
fn changed_input_is_refused_when_resuming() {
    for mode in ["files", "data"] {
        let dir = tempfile::tempdir().unwrap();
        let input = input(dir.path());
        let out = dir.path().join("out");
        cmd(&input, &out)
            .args(["--input-digest", mode])
            .env("SLUICE_FAULT", "kill@journal_synced:1")
            .assert()
            .failure();
        let mut b = orders();
        b = b.slice(1, 8);
        write_parquet(&input, &[b]);
        cmd(&input, &out)
            .args(["--input-digest", mode])
            .assert()
            .code(5)
            .stderr(predicates::str::contains(
                "the input changed since chunk 0 was committed",
            ));
    }
}

#[test]
fn input_changed_only_after_the_committed_chunks_resumes_onto_the_new_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    cmd(&input, &out)
        .args(["--input-digest", "data"])
        .env("SLUICE_FAULT", "kill@journal_synced:1")
        .assert()
        .failure();
    // Append rows: chunks 0 and 1 (rows 0..20) keep their input.
    let batches: Vec<RecordBatch> = (0..7).map(|_| orders()).collect();
    write_parquet(&input, &batches);
    cmd(&input, &out).arg("--input-digest").arg("data").assert().success();
    let fresh = dir.path().join("fresh");
    cmd(&input, &fresh).arg("--input-digest").arg("data").assert().success();
    assert_eq!(snapshot(&out), snapshot(&fresh));
}

#[test]
fn under_file_input_digests_any_changed_input_file_refuses_the_resume() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    cmd(&input, &out)
        .env("SLUICE_FAULT", "kill@journal_synced:1")
        .assert()
        .failure();
    let journal = std::fs::read(out.join("_sluice/journal.jsonl")).unwrap();
    // The same appended rows a data-digest resume accepts: the committed rows are unchanged,
    // but the file's bytes are not, and the journal only knows the file's bytes.
    let batches: Vec<RecordBatch> = (0..7).map(|_| orders()).collect();
    write_parquet(&input, &batches);
    cmd(&input, &out).assert().code(5).stderr(predicates::str::contains(
        "the input changed since chunk 0 was committed: an input file's bytes differ",
    ));
    assert_eq!(
        std::fs::read(out.join("_sluice/journal.jsonl")).unwrap(),
        journal,
        "a refused resume leaves the journal as it was"
    );
}

/// Under file input digests a resume does not read the committed rows again: it skips whole
/// Parquet files and row groups by their footers and drops the few rows left before the
/// chunk boundary, and the result is byte-identical to a run never interrupted.
#[test]
fn a_resume_skips_the_committed_row_groups_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    // Two files of 30 rows in row groups of 4: the 40 rows of chunks 0..=3 are all of
    // `a` (30) and two row groups of `b` (8), plus 2 rows that must be read and dropped.
    for name in ["a.parquet", "b.parquet"] {
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(4))
            .build();
        let f = std::fs::File::create(inputs.join(name)).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, orders().schema(), Some(props)).unwrap();
        for _ in 0..3 {
            w.write(&orders()).unwrap();
        }
        w.close().unwrap();
    }
    let out = dir.path().join("out");
    cmd(&inputs, &out)
        .env("SLUICE_FAULT", "kill@journal_synced:3")
        .assert()
        .failure();
    let resumed = cmd(&inputs, &out).env("SLUICE_LOG", "info").assert().success();
    let stderr = String::from_utf8_lossy(&resumed.get_output().stderr).into_owned();
    assert!(
        stderr.contains("skipped the committed rows' row groups") && stderr.contains("38"),
        "{stderr}"
    );
    let fresh = dir.path().join("fresh");
    cmd(&inputs, &fresh).assert().success();
    assert_eq!(snapshot(&out), snapshot(&fresh));
    // Under data digests the same resume reads (and re-hashes) every committed row.
    let out = dir.path().join("data");
    let data = |out: &Path| {
        let mut c = cmd(&inputs, out);
        c.args(["--input-digest", "data"]);
        c
    };
    data(&out)
        .env("SLUICE_FAULT", "kill@journal_synced:3")
        .assert()
        .failure();
    let resumed = data(&out).env("SLUICE_LOG", "info").assert().success();
    assert!(!String::from_utf8_lossy(&resumed.get_output().stderr).contains("skipped the committed"));
    let fresh = dir.path().join("data-fresh");
    data(&fresh).assert().success();
    assert_eq!(snapshot(&out), snapshot(&fresh));
}
