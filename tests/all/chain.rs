//! Chains, config scoping and chunking through the real binary.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Decimal128Type;
use sluice_test_artifacts as art;

use crate::util::*;

#[test]
fn filter_then_derive_chain_with_scoped_config() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders()]);
    let out = dir.path().join("out");
    let a = sluice()
        .args(["run", "--input"])
        .arg(&input)
        .args([
            "--plugin",
            art::FILTER,
            "--config",
            "predicate=discount between 0.02 and 0.05 and qty is not null",
        ])
        .args([
            "--plugin",
            art::DERIVE,
            "--config",
            "name=revenue",
            "--config",
            "expr=price * discount",
            "--config",
            "type=decimal(18,4)",
        ])
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["status"], "ok");
    assert_eq!(s["rows_in"], 10);
    let b = output_batch(&out);
    // discount = i % 10 hundredths: rows 2,3,4,5 qualify; row 3 has a null qty.
    assert_eq!(b.num_rows(), 3);
    let ids: Vec<i64> = b
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .values()
        .to_vec();
    assert_eq!(ids, vec![2, 4, 5]);
    let rev = b.column_by_name("revenue").unwrap().as_primitive::<Decimal128Type>();
    assert_eq!(
        arrow::array::Array::data_type(rev),
        &arrow::datatypes::DataType::Decimal128(18, 4)
    );
    // price row 2 = 124.68, discount 0.02 -> 2.4936
    assert_eq!(rev.value(0), 24_936);
    assert!(out.join("_SUCCESS").exists());
    assert!(out.join("_sluice/manifest.json").exists());
}

#[test]
fn config_before_any_plugin_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders()]);
    sluice()
        .args(["run", "--input"])
        .arg(&input)
        .args(["--config", "predicate=id > 1", "--plugin", art::FILTER, "--output"])
        .arg(dir.path().join("out"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("comes before any --plugin"));
}

#[test]
fn chunks_split_rows_exactly_and_output_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    let batches: Vec<RecordBatch> = (0..5).map(|_| orders()).collect();
    write_parquet(&input, &batches);
    let mut digests = Vec::new();
    for run in 0..2 {
        let out = dir.path().join(format!("out{run}"));
        sluice()
            .args(["run", "--chunk-rows", "15", "--batch-rows", "4", "--input"])
            .arg(&input)
            .args(["--plugin", art::PASSTHROUGH, "--output"])
            .arg(&out)
            .assert()
            .success();
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap();
        let parts = m["chunks"].as_array().unwrap();
        assert_eq!(parts.len(), 4, "50 rows in chunks of 15");
        let rows: Vec<u64> = parts.iter().map(|p| p["rows_out"].as_u64().unwrap()).collect();
        assert_eq!(rows, vec![15, 15, 15, 5]);
        digests.push(
            parts
                .iter()
                .map(|p| p["output_digest"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            output_batch(&out),
            arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
        );
    }
    assert_eq!(digests[0], digests[1], "same inputs give byte-identical parts");
}

#[test]
fn an_output_directory_with_foreign_files_is_refused_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders()]);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "precious").unwrap();
    let run = || {
        let mut c = sluice();
        c.args(["run", "--input"])
            .arg(&input)
            .args(["--plugin", art::PASSTHROUGH, "--output"])
            .arg(&out);
        c
    };
    run()
        .assert()
        .code(2)
        .stderr(predicates::str::contains("files that sluice did not write"));
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "precious");
    run().arg("--overwrite").assert().success();
    assert!(out.join("_SUCCESS").exists());
    assert!(!out.join("notes.txt").exists(), "--overwrite replaces the directory");
}

/// Every part file of a run's output (name, bytes), by name.
fn part_files(out: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join("data"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Parallel runs: stateless chains run chunks on several workers, stateful ones on one.
/// Output files, digests and the whole journal (fuel included) must not depend on the
/// number of threads.
#[test]
fn output_and_journal_do_not_depend_on_the_thread_count() {
    /// Part files (name, bytes) and the journal as the run record repeats it.
    type Snapshot = (Vec<(String, Vec<u8>)>, serde_json::Value);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    let batches: Vec<RecordBatch> = (0..9).map(|_| orders()).collect();
    write_parquet(&input, &batches);
    let chains: [&[&str]; 2] = [
        &[
            "--plugin",
            art::FILTER,
            "--config",
            "predicate=qty > 2",
            "--plugin",
            art::MASK,
            "--config",
            "columns=email",
        ],
        &[
            "--plugin",
            art::DEDUPE,
            "--config",
            "key=id,discount",
            "--plugin",
            art::PASSTHROUGH,
        ],
    ];
    for (c, chain) in chains.iter().enumerate() {
        let mut seen: Option<Snapshot> = None;
        for threads in ["1", "2", "5"] {
            let out = dir.path().join(format!("out-{c}-{threads}"));
            let mut cmd = sluice();
            cmd.arg("run");
            // Both ways of choosing the thread count: the flag, and the environment.
            if threads == "5" {
                cmd.env("SLUICE_THREADS", "1").args(["--threads", threads]);
            } else {
                cmd.env("SLUICE_THREADS", threads);
            }
            cmd.args(["--chunk-rows", "7", "--batch-rows", "3", "--input"])
                .arg(&input)
                .args(*chain)
                .arg("--output")
                .arg(&out)
                .assert()
                .success();
            let files = part_files(&out);
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap();
            let record =
                serde_json::json!({ "chunks": m["chunks"], "root": m["root_digest"], "head": m["journal_head"] });
            assert!(files.len() > 5, "several chunks");
            match &seen {
                None => seen = Some((files, record)),
                Some((f, r)) => {
                    assert!(*f == files, "chain {c}: parts differ with {threads} threads");
                    assert_eq!(*r, record, "chain {c}: journal differs with {threads} threads");
                }
            }
        }
    }
}

/// Parquet input under file digests (the default) is read by the workers themselves, each
/// from its chunk's row group on; other inputs, `--input-digest data` and a single thread
/// are decoded by one thread and streamed to the workers. Both must cut the same batches,
/// so the parts are byte-identical: over two files, with chunk boundaries inside row groups
/// and batches.
#[test]
fn workers_reading_their_own_chunks_write_what_the_stream_writes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(8))
        .build();
    // 130 rows in row groups of 8; the second file starts at row 90, inside a chunk.
    for (name, n) in [("a.parquet", 9), ("b.parquet", 4)] {
        let batches: Vec<RecordBatch> = (0..n).map(|_| orders()).collect();
        let f = std::fs::File::create(input.join(name)).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batches[0].schema(), Some(props.clone())).unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
    }
    for (chunk_rows, batch_rows) in [("7", "3"), ("20", "5"), ("1000", "3")] {
        let mut seen = Vec::new();
        for (mode, threads) in [("files", "2"), ("data", "2"), ("files", "1")] {
            let out = dir.path().join(format!("out-{chunk_rows}-{mode}-{threads}"));
            let run = sluice()
                .env("SLUICE_THREADS", threads)
                .args(["--log", "debug", "run", "--input-digest", mode])
                .args(["--chunk-rows", chunk_rows, "--batch-rows", batch_rows, "--input"])
                .arg(&input)
                .args(["--plugin", art::FILTER, "--config", "predicate=qty > 2"])
                .args(["--plugin", art::MASK, "--config", "columns=email", "--output"])
                .arg(&out)
                .assert()
                .success();
            let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
            assert_eq!(
                stderr.contains("workers read their own chunks"),
                mode == "files" && threads == "2",
                "which path ran ({mode}, {threads} threads): {stderr}"
            );
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap();
            let chunks = m["chunks"].as_array().unwrap();
            let rows_in: u64 = chunks.iter().map(|c| c["input_rows"][1].as_u64().unwrap()).sum();
            assert_eq!(rows_in, 130, "{mode}, chunks of {chunk_rows}");
            let files = part_files(&out);
            seen.push(files);
        }
        assert_eq!(seen[0].len(), 130usize.div_ceil(chunk_rows.parse::<usize>().unwrap()));
        assert!(
            seen[0] == seen[1],
            "chunks of {chunk_rows}: the parts differ between the two paths"
        );
        assert!(
            seen[0] == seen[2],
            "chunks of {chunk_rows}: the parts differ with one thread"
        );
    }
}
