//! Provenance across partitions: tasks of a (simulated) distributed engine run the chain
//! through the library API on interleaved partitions, `sluice combine` folds their reports,
//! `sluice verify` checks the record against the files, and the row-set digest equals that
//! of a one-machine `sluice run` of the same input.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_host::distributed::{TaskDigests, TaskReport};
use sluice_host::pipeline::{Chain, PluginRecord, PluginSpec};
use sluice_test_artifacts as art;

use crate::util::*;

const PREDICATE: &str = "qty >= 20 and email is not null";

fn input(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("qty", DataType::Float64, true),
        Field::new("email", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(
            (0..n)
                .map(|i| (i % 11 != 0).then_some((i % 50) as f64))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            (0..n)
                .map(|i| (i % 7 != 0).then(|| format!("user{}@example.com", i % 13)))
                .collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// One engine task: its partition through the chain, its output file and its report.
fn run_task(
    rt: &sluice_host::Runtime,
    task: &str,
    part: &RecordBatch,
    config: &[(&str, &str)],
    out: &Path,
) -> TaskReport {
    let config: Vec<(String, String)> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let plugin = rt.load_plugin(Path::new(art::FILTER)).unwrap();
    let spec = PluginSpec::new(art::FILTER, config.clone());
    let record = PluginRecord::new(&plugin, &spec);
    let mut chain = Chain::open(&[(plugin, config)], &part.schema(), None, [0; 32]).unwrap();
    let mut digests = TaskDigests::new(task, chain.input_schema(), chain.output_schema());
    let mut produced = Vec::new();
    // Small batches, as an engine hands them over.
    for offset in (0..part.num_rows()).step_by(97) {
        let b = part.slice(offset, 97.min(part.num_rows() - offset));
        digests.input(&b);
        for o in chain.process(b).unwrap() {
            digests.output(&o);
            produced.push(o);
        }
    }
    for o in chain.finish().unwrap() {
        digests.output(&o);
        produced.push(o);
    }
    if !produced.is_empty() {
        write_parquet(&out.join(format!("{task}.parquet")), &produced);
    }
    digests.report(vec![record], rt.settings(), chain.fuel())
}

/// `sluice combine --tasks TASKS --output OUT`, ready to assert on.
fn combine(tasks: &Path, out: &Path) -> assert_cmd::assert::Assert {
    sluice()
        .args(["combine", "--tasks"])
        .arg(tasks)
        .arg("--output")
        .arg(out)
        .assert()
}

fn write_report(dir: &Path, name: &str, r: &TaskReport) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), serde_json::to_vec(r).unwrap()).unwrap();
}

fn partitions(batch: &RecordBatch, k: u32) -> Vec<RecordBatch> {
    // Interleaved rows: no partition is a contiguous slice of the input.
    (0..k)
        .map(|p| {
            let idx = UInt32Array::from((p..batch.num_rows() as u32).step_by(k as usize).collect::<Vec<_>>());
            arrow::compute::take_record_batch(batch, &idx).unwrap()
        })
        .collect()
}

#[test]
fn distributed_record_combines_verifies_and_matches_one_machine_run() {
    let dir = tempfile::tempdir().unwrap();
    let batch = input(5_000);
    let in_path = dir.path().join("in.parquet");
    write_parquet(&in_path, std::slice::from_ref(&batch));

    // One machine.
    let single = dir.path().join("single");
    sluice()
        .args(["run", "--input"])
        .arg(&in_path)
        .args(["--plugin", art::FILTER, "--config"])
        .arg(format!("predicate={PREDICATE}"))
        .arg("--output")
        .arg(&single)
        .assert()
        .success();
    let a = sluice().arg("digest").arg(&single).assert().success();
    let one = summary(&a.get_output().stdout);
    assert!(one["rows"].as_u64().unwrap() > 1_000, "{one}");

    // Three tasks over interleaved partitions, finishing in reverse order, one retried.
    let rt = runtime();
    let out = dir.path().join("dist");
    let tasks = dir.path().join("tasks");
    std::fs::create_dir_all(&out).unwrap();
    let parts = partitions(&batch, 3);
    let mut reports = Vec::new();
    for (i, p) in parts.iter().enumerate().rev() {
        let r = run_task(&rt, &format!("part-{i:05}"), p, &[("predicate", PREDICATE)], &out);
        write_report(&tasks, &format!("part-{i:05}.json"), &r);
        reports.push(r);
    }
    write_report(&tasks, "part-00001-attempt-2.json", &reports[1]);
    std::fs::write(out.join("_SUCCESS"), b"").unwrap();

    let a = combine(&tasks, &out).success();
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["tasks"], 3, "the identical retry is counted once: {s}");
    assert_eq!(s["rows_in"], 5_000);
    assert_eq!(s["rows_out"], one["rows"]);
    assert_eq!(
        s["output_rowset_digest"], one["rowset_digest"],
        "same rows on one machine and across partitions"
    );
    // The record does not depend on the order reports arrive in: combining again is a no-op.
    let first = std::fs::read(out.join("_sluice/manifest.json")).unwrap();
    combine(&tasks, &out).success();
    assert_eq!(first, std::fs::read(out.join("_sluice/manifest.json")).unwrap());
    let a = sluice().arg("verify").arg(&out).assert().success();
    assert_eq!(summary(&a.get_output().stdout)["status"], "ok");
    // `sluice digest` of the engine's files agrees too.
    let a = sluice().arg("digest").arg(&out).assert().success();
    assert_eq!(summary(&a.get_output().stdout)["rowset_digest"], one["rowset_digest"]);

    // A row lost from one output file is found.
    let victim = out.join("part-00002.parquet");
    let kept = read_parquet(&victim);
    let all = arrow::compute::concat_batches(&kept[0].schema(), &kept).unwrap();
    write_parquet(&victim, &[all.slice(1, all.num_rows() - 1)]);
    let a = sluice().arg("verify").arg(&out).assert().code(5);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("rows, the run record"), "{err}");
    write_parquet(&victim, &[all]);
    sluice().arg("verify").arg(&out).assert().success();

    // An edited record is found.
    let mpath = out.join("_sluice/manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&first).unwrap();
    m["rows_out"] = serde_json::json!(m["rows_out"].as_u64().unwrap() + 1);
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let a = sluice().arg("verify").arg(&out).assert().code(5);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("does not match its tasks"));
    std::fs::write(&mpath, &first).unwrap();

    // A file that is not part of the run is found (its rows are extra).
    write_parquet(&out.join("stray.parquet"), &[kept[0].slice(0, 1)]);
    sluice().arg("verify").arg(&out).assert().code(5);
}

#[test]
fn combine_refuses_disagreeing_tasks_and_foreign_records() {
    let dir = tempfile::tempdir().unwrap();
    let batch = input(600);
    let parts = partitions(&batch, 2);
    let rt = runtime();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let a = run_task(&rt, "part-00000", &parts[0], &[("predicate", PREDICATE)], &out);
    let b = run_task(&rt, "part-00001", &parts[1], &[("predicate", "qty >= 1")], &out);

    // Two partitions run with different plugin configs.
    let tasks = dir.path().join("mixed");
    write_report(&tasks, "a.json", &a);
    write_report(&tasks, "b.json", &b);
    let r = combine(&tasks, &out).code(5);
    let err = String::from_utf8_lossy(&r.get_output().stderr).to_string();
    assert!(err.contains("part-00001") && err.contains("plugins"), "{err}");

    // One task id with two different results.
    let tasks = dir.path().join("conflict");
    let mut other = a.clone();
    other.output.rows += 1;
    write_report(&tasks, "a.json", &a);
    write_report(&tasks, "a2.json", &other);
    let r = combine(&tasks, &out).code(5);
    assert!(String::from_utf8_lossy(&r.get_output().stderr).contains("two different results"));

    // A damaged report is named.
    let tasks = dir.path().join("damaged");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::write(tasks.join("bad.json"), b"{\"task\": 1}").unwrap();
    let r = combine(&tasks, &out).code(5);
    assert!(String::from_utf8_lossy(&r.get_output().stderr).contains("bad.json"));

    // No reports at all, and a `sluice run` output as the target, are usage errors.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    combine(&empty, &out).code(2);
    let in_path = dir.path().join("in.parquet");
    write_parquet(&in_path, std::slice::from_ref(&batch));
    let run_out = dir.path().join("run");
    sluice()
        .args(["run", "--input"])
        .arg(&in_path)
        .args(["--plugin", art::PASSTHROUGH, "--output"])
        .arg(&run_out)
        .assert()
        .success();
    let tasks = dir.path().join("ok");
    write_report(&tasks, "a.json", &a);
    combine(&tasks, &run_out).code(2);
    sluice().arg("verify").arg(&run_out).assert().success();
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}
