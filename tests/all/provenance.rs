//! The run record, replay, reprocessing with a new plugin, pipeline specs, pins, secrets,
//! the plugin store and backfills.

use std::path::{Path, PathBuf};

use sluice_test_artifacts as art;

use crate::util::*;

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap()
}

fn sha(path: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
    )
}

fn run_orders(dir: &Path, out: &Path) {
    let input = dir.join("orders.parquet");
    if !input.exists() {
        let batches: Vec<_> = (0..4).map(|_| orders()).collect();
        write_parquet(&input, &batches);
    }
    sluice()
        .args(["run", "--chunk-rows", "15", "--input"])
        .arg(&input)
        .args(["--plugin", art::DEDUPE, "--config", "key=id,email"])
        .args(["--plugin", art::MASK, "--config", "columns=email"])
        .arg("--output")
        .arg(out)
        .assert()
        .success();
}

#[test]
fn two_runs_give_identical_bytes_and_identical_records_except_timings() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run_orders(dir.path(), &a);
    run_orders(dir.path(), &b);
    let (mut ma, mut mb) = (manifest(&a), manifest(&b));
    assert!(ma["elapsed_ms"].is_u64());
    ma.as_object_mut().unwrap().remove("elapsed_ms");
    mb.as_object_mut().unwrap().remove("elapsed_ms");
    assert_eq!(ma, mb);
    for c in ma["chunks"].as_array().unwrap() {
        let f = c["file"].as_str().unwrap();
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
        assert!(
            c["fuel"][0].as_u64().unwrap() > 0,
            "fuel is recorded for every chunk the first plugin saw"
        );
    }
    assert!(ma["action_key"].as_str().unwrap().starts_with("blake3:"));
    assert!(ma["plugins"][0]["sha256"].as_str().unwrap().starts_with("sha256:"));
    assert!(ma["inputs"][0]["digest"].as_str().unwrap().starts_with("blake3:"));
    assert_eq!(ma["engine"]["wasmtime_version"], "48.0.8");
}

#[test]
fn replay_matches_an_untouched_run_and_names_a_changed_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_orders(dir.path(), &out);
    let a = sluice().arg("replay").arg(&out).assert().success();
    assert_eq!(summary(&a.get_output().stdout)["status"], "identical");
    // Change the input: replay refuses and names it.
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders().slice(0, 5)]);
    sluice()
        .arg("replay")
        .arg(&out)
        .assert()
        .code(5)
        .stderr(predicates::str::contains(format!(
            "input `{}` changed since the run",
            input.display()
        )));
}

#[test]
fn reprocessing_with_a_new_plugin_writes_a_linked_run_and_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_orders(dir.path(), &out);
    let before = manifest(&out);
    let out2 = dir.path().join("out2");
    // A "new version" of mask that keeps only the e-mail column, unmasked (the select plugin
    // also takes `columns`): the schema changes and every e-mail value changes.
    let a = sluice()
        .arg("replay")
        .arg(&out)
        .args(["--plugin", &format!("mask={}", art::SELECT), "--output"])
        .arg(&out2)
        .assert()
        .success();
    let s = summary(&a.get_output().stdout);
    let after = manifest(&out2);
    assert_eq!(after["parent"]["output"], out.to_string_lossy().as_ref());
    assert_eq!(after["parent"]["action_key"], before["action_key"]);
    assert_eq!(after["parent"]["root_digest"], before["root_digest"]);
    assert_eq!(after["plugins"][1]["name"], "select");
    let diff = &s["diff"];
    assert_eq!(diff["schema_changed"], true);
    assert_eq!(diff["compared_columns"], serde_json::json!(["email"]));
    let rows_out: u64 = before["rows_out"].as_u64().unwrap();
    // dedupe keeps the 10 distinct (id, email) pairs of 40 rows; one e-mail is null and
    // stays null (equal before and after); the other 9 differ (hash vs plain text).
    assert_eq!(rows_out, 10);
    assert_eq!(diff["rows_only_before"], 9);
    assert_eq!(diff["rows_only_after"], 9);
    let chunks = diff["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[0]["rows_in"], 15);
    assert_eq!(chunks[0]["rows_out_before"], chunks[0]["rows_out_after"]);
    // The parent is untouched.
    assert_eq!(manifest(&out), before);
}

/// Seven daily partitions of a small CSV, a spec that reads `in/{date}/orders.csv`.
fn partitioned(dir: &Path, pins: bool) -> PathBuf {
    for day in 1..=7 {
        let d = dir.join(format!("in/2026-11-{day:02}"));
        std::fs::create_dir_all(&d).unwrap();
        let mut csv = String::from("id,amount\n");
        for i in 0..(10 + day) {
            csv.push_str(&format!("{i},{}\n", i * day));
        }
        std::fs::write(d.join("orders.csv"), csv).unwrap();
    }
    let pin = |p: &str| {
        if pins {
            format!("sha256 = \"{}\"\n", sha(p))
        } else {
            String::new()
        }
    };
    let spec = format!(
        "version = 1\nname = \"daily\"\n[partition]\nkey = \"date\"\n[input]\npaths = [\"in/{{date}}/*.csv\"]\n\
         [[plugins]]\npath = \"{}\"\n{}config = {{ predicate = \"amount >= 3\" }}\n[output]\npath = \"out/{{date}}\"\n",
        art::FILTER,
        pin(art::FILTER)
    );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, spec).unwrap();
    p
}

#[test]
fn pipeline_spec_runs_a_partition_and_backfill_skips_what_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let spec = partitioned(dir.path(), true);
    for day in ["2026-11-02", "2026-11-05"] {
        let a = sluice()
            .arg("run")
            .arg(&spec)
            .args(["--partition", day, "--run-id", "manual-1"])
            .assert()
            .success();
        assert_eq!(summary(&a.get_output().stdout)["status"], "ok");
    }
    let m = manifest(&dir.path().join("out/2026-11-02"));
    assert_eq!(m["context"]["partition"], "2026-11-02");
    assert_eq!(m["context"]["logical_date"], "2026-11-02");
    assert_eq!(m["context"]["run_id"], "manual-1");

    let backfill = || {
        let a = sluice()
            .arg("backfill")
            .arg(&spec)
            .args(["--partitions", "2026-11-01..2026-11-07"])
            .assert()
            .success();
        summary(&a.get_output().stdout)
    };
    let s = backfill();
    assert_eq!(
        (s["partitions"].as_u64(), s["ran"].as_u64(), s["skipped"].as_u64()),
        (Some(7), Some(5), Some(2)),
        "{s}"
    );
    let s = backfill();
    assert_eq!((s["ran"].as_u64(), s["skipped"].as_u64()), (Some(0), Some(7)), "{s}");
    // One partition's input changes: exactly that one is reprocessed.
    std::fs::write(dir.path().join("in/2026-11-03/orders.csv"), "id,amount\n1,100\n").unwrap();
    let s = backfill();
    assert_eq!((s["ran"].as_u64(), s["skipped"].as_u64()), (Some(1), Some(6)), "{s}");
    assert_eq!(manifest(&dir.path().join("out/2026-11-03"))["rows_out"], 1);
    // --reprocess all runs everything again.
    let a = sluice()
        .arg("backfill")
        .arg(&spec)
        .args(["--partitions", "2026-11-06,2026-11-07", "--reprocess", "all"])
        .assert()
        .success();
    assert_eq!(summary(&a.get_output().stdout)["ran"], 2);
}

#[test]
fn backfill_reports_failed_partitions_and_finishes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let spec = partitioned(dir.path(), true);
    std::fs::remove_dir_all(dir.path().join("in/2026-11-04")).unwrap();
    let a = sluice()
        .arg("backfill")
        .arg(&spec)
        .args(["--partitions", "2026-11-03..2026-11-05"])
        .assert()
        .code(5);
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["failed"], 1, "{s}");
    assert!(dir.path().join("out/2026-11-03/_SUCCESS").exists());
    assert!(dir.path().join("out/2026-11-05/_SUCCESS").exists());
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("1 of 3 partitions failed") && err.contains("2026-11-04"),
        "{err}"
    );
}

#[test]
fn pins_are_required_and_checked_before_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let spec = partitioned(dir.path(), false);
    sluice()
        .arg("run")
        .arg(&spec)
        .args(["--partition", "2026-11-01"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("has no `sha256` pin"))
        .stderr(predicates::str::contains(sha(art::FILTER)));
    sluice()
        .arg("run")
        .arg(&spec)
        .args(["--partition", "2026-11-01", "--allow-unpinned"])
        .assert()
        .success();
    let wrong = format!("sha256 = \"{}\"\n", sha(art::PASSTHROUGH));
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("config =", &format!("{wrong}config ="));
    std::fs::write(&spec, text).unwrap();
    sluice()
        .arg("run")
        .arg(&spec)
        .args(["--partition", "2026-11-02"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(format!(
            "found {} but expected {}",
            sha(art::FILTER),
            sha(art::PASSTHROUGH)
        )));
    assert!(
        !dir.path().join("out/2026-11-02").exists(),
        "nothing is written for a refused pin"
    );
}

#[test]
fn secrets_reach_the_plugin_but_never_the_record_logs_or_output() {
    let dir = tempfile::tempdir().unwrap();
    let spec = partitioned(dir.path(), true);
    let secret = "amount >= 40 and id != 987654321";
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "config = { predicate = \"amount >= 3\" }",
        "secrets = { predicate = \"ORDERS_PREDICATE\" }",
    );
    std::fs::write(&spec, text).unwrap();
    let a = sluice()
        .env("ORDERS_PREDICATE", secret)
        .arg("run")
        .arg(&spec)
        .args(["--partition", "2026-11-07", "--log", "debug", "--lineage-file"])
        .arg(dir.path().join("lineage.ndjson"))
        .assert()
        .success();
    let out = dir.path().join("out/2026-11-07");
    // The plugin saw it: only amounts >= 40 are kept (id * 7 >= 40 → id 6..16).
    assert_eq!(manifest(&out)["rows_out"], 11);
    let mut seen = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    seen.push_str(&String::from_utf8_lossy(&a.get_output().stderr));
    for f in ["_sluice/manifest.json", "_sluice/journal.jsonl"] {
        seen.push_str(&std::fs::read_to_string(out.join(f)).unwrap());
    }
    let lineage = std::fs::read_to_string(dir.path().join("lineage.ndjson")).unwrap();
    assert!(
        lineage.contains("\"COMPLETE\""),
        "the OpenLineage events were written: {lineage}"
    );
    seen.push_str(&lineage);
    assert!(!seen.contains("987654321"), "the secret leaked");
    assert!(seen.contains("<secret>"), "the record says a secret was used");
    // Missing variable: a clear usage error naming it.
    sluice()
        .arg("run")
        .arg(&spec)
        .args(["--partition", "2026-11-06"])
        .env_remove("ORDERS_PREDICATE")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("`ORDERS_PREDICATE`, which is not set"));
}

#[test]
fn plugin_store_versions_use_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let a = sluice()
        .args(["plugin", "add", art::FILTER, "--store"])
        .arg(&store)
        .assert()
        .success();
    let stored = summary(&a.get_output().stdout);
    assert_eq!(stored["sha256"], sha(art::FILTER));
    let version = stored["version"].as_str().unwrap().to_string();
    assert!(
        store
            .join("sha256")
            .join(format!("{}.wasm", &sha(art::FILTER)[7..]))
            .exists()
    );
    // The same name and version with other bytes is refused: versions are immutable.
    let fake = dir.path().join("filter-copy.wasm");
    let mut bytes = std::fs::read(art::FILTER).unwrap();
    bytes.extend_from_slice(b"\0"); // not valid wasm: fails loading, not the version check
    std::fs::write(&fake, bytes).unwrap();
    sluice()
        .args(["plugin", "add"])
        .arg(&fake)
        .arg("--store")
        .arg(&store)
        .assert()
        .code(2);

    let spec = partitioned(dir.path(), true);
    let text = std::fs::read_to_string(&spec).unwrap();
    let start = text.find("path = \"/").unwrap();
    let end = text[start..].find("config").unwrap() + start;
    let text = format!("{}use = \"filter@{version}\"\n{}", &text[..start], &text[end..]);
    std::fs::write(&spec, text).unwrap();
    sluice()
        .env("SLUICE_PLUGIN_STORE", &store)
        .args(["plugin", "lock"])
        .arg(&spec)
        .assert()
        .success();
    let lock = std::fs::read_to_string(dir.path().join("sluice.lock")).unwrap();
    assert!(
        lock.contains(&format!("\"filter@{version}\" = \"{}\"", sha(art::FILTER))),
        "{lock}"
    );
    sluice()
        .env("SLUICE_PLUGIN_STORE", &store)
        .arg("run")
        .arg(&spec)
        .args(["--partition", "2026-11-01"])
        .assert()
        .success();
    assert_eq!(
        manifest(&dir.path().join("out/2026-11-01"))["plugins"][0]["sha256"],
        sha(art::FILTER)
    );
}
