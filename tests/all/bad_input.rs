//! Bad input files: each one costs one clear error naming the file (and the row group,
//! line or batch where known), exit code 5 (or 2 for a usage mistake), no panic, and
//! nothing published.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::util::*;

/// `sluice run` over `inputs` with no plugin (plugins are not the subject here).
fn run_inputs(dir: &Path, inputs: &[&Path], flags: &[&str]) -> assert_cmd::assert::Assert {
    let mut cmd = sluice();
    cmd.arg("run");
    for i in inputs {
        cmd.arg("--input").arg(i);
    }
    cmd.args(flags).arg("--output").arg(dir.join("out")).assert()
}

/// Exit `code`, every `needle` in the error, a failed summary, no panic, nothing published.
fn assert_refused(a: assert_cmd::assert::Assert, dir: &Path, code: i32, needles: &[&str]) {
    let out = a.get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks `{n}`: {stderr}");
    }
    let s = summary(&out.stdout);
    assert_eq!(s["status"], "failed");
    assert_eq!(s["exit_code"], code);
    let out_dir = dir.join("out");
    assert!(!out_dir.join("_SUCCESS").exists(), "nothing is published");
    let parts: Vec<PathBuf> = std::fs::read_dir(out_dir.join("data"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(parts.is_empty(), "no part file: {parts:?}");
}

fn ints(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..n)),
        Arc::new(StringArray::from_iter((0..n).map(|i| Some(format!("name-{i}"))))),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn write_ipc_stream(path: &Path, batches: &[RecordBatch]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = arrow::ipc::writer::StreamWriter::try_new(f, &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn truncated_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    write_parquet(&p, &[ints(1000)]);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["t.parquet`", "truncated or corrupt"],
    );
}

#[test]
fn corrupt_parquet_data_names_the_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.parquet");
    let f = std::fs::File::create(&p).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, ints(1000).schema(), Some(props)).unwrap();
    w.write(&ints(1000)).unwrap();
    let meta = w.close().unwrap();
    let (start, len) = meta.row_group(0).column(1).byte_range();
    let mut bytes = std::fs::read(&p).unwrap();
    for b in &mut bytes[(start + len / 2) as usize..(start + len) as usize] {
        *b = 0x5A;
    }
    std::fs::write(&p, bytes).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["c.parquet`", "row group 0 (rows 0..1000)"],
    );
}

#[test]
fn a_parquet_footer_that_claims_a_huge_column_chunk() {
    // Rewrite the footer so every column chunk claims 1 TiB: a reader that trusts it would
    // allocate that much before reading.
    use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.parquet");
    write_parquet(&p, &[ints(10)]);
    let bytes = std::fs::read(&p).unwrap();
    let footer_len = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    let data_end = bytes.len() - 8 - footer_len;
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(bytes.clone()))
        .unwrap();
    let mut b = meta.into_builder();
    let groups = b
        .take_row_groups()
        .into_iter()
        .map(|g| {
            let mut gb = g.into_builder();
            let cols = gb.take_columns();
            let cols = cols
                .into_iter()
                .map(|c| c.into_builder().set_total_compressed_size(1 << 40).build().unwrap());
            gb.set_column_metadata(cols.collect()).build().unwrap()
        })
        .collect();
    let meta = b.set_row_groups(groups).build();
    let mut out = bytes[..data_end].to_vec();
    ParquetMetaDataWriter::new(&mut out, &meta).finish().unwrap();
    std::fs::write(&p, out).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &[
            "h.parquet` is corrupt: the footer gives row group 0 column `id`",
            "outside the file",
        ],
    );
}

#[test]
fn not_parquet_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("n.parquet");
    std::fs::write(&p, b"PAR1 this is not really parquet PAR1").unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["n.parquet`", "is not Parquet, or it is truncated"],
    );
}

#[test]
fn truncated_ipc_stream_names_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.arrows");
    write_ipc_stream(&p, &[ints(100), ints(100)]);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["t.arrows`", "record batch 1"],
    );
}

#[test]
fn a_tiny_ipc_stream_that_declares_a_huge_allocation() {
    // 16 bytes: the continuation marker and a metadata length of almost 2 GiB. The reader
    // must fail on the missing bytes, not allocate what the header claims.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge-meta.arrows");
    let mut bytes = vec![0xFF, 0xFF, 0xFF, 0xFF];
    bytes.extend_from_slice(&0x7FFF_FFF0_i32.to_le_bytes());
    bytes.extend_from_slice(b"tinytiny");
    std::fs::write(&p, &bytes).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["huge-meta.arrows`"],
    );
}

#[test]
fn a_tiny_ipc_batch_that_declares_a_huge_body() {
    // A valid schema message, then a record batch message whose header claims a 1 TiB body.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge-body.arrows");
    write_ipc_stream(&p, &[ints(3)]);
    let good = std::fs::read(&p).unwrap();
    let data = arrow::ipc::writer::IpcDataGenerator::default();
    let mut tracker = arrow::ipc::writer::DictionaryTracker::new(false);
    let (_, encoded) = data
        .encode(&ints(3), &mut tracker, &Default::default(), &mut Default::default())
        .unwrap();
    let body_len = encoded.arrow_data.len() as i64;
    // The body length is an i64 in the message flatbuffer; find it and inflate it.
    let needle = body_len.to_le_bytes();
    let at = good
        .windows(8)
        .rposition(|w| w == needle)
        .expect("body length in the stream");
    let mut bad = good[..at].to_vec();
    bad.extend_from_slice(&(1_i64 << 40).to_le_bytes());
    bad.extend_from_slice(&good[at + 8..]);
    std::fs::write(&p, &bad).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["huge-body.arrows`"],
    );
}

#[test]
fn a_truncated_ipc_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.arrow");
    let f = std::fs::File::create(&p).unwrap();
    let mut w = arrow::ipc::writer::FileWriter::try_new(f, &ints(10).schema()).unwrap();
    w.write(&ints(10)).unwrap();
    w.finish().unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 30]).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["t.arrow`", "corrupt"],
    );
}

#[test]
fn ragged_csv_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.csv");
    let mut text = String::from("a,b,c\n");
    for i in 0..50 {
        text.push_str(&format!("{i},{i},{i}\n"));
    }
    text.push_str("51,51\n");
    std::fs::write(&p, text).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["r.csv`", "Expected 3 records, found 2 records at line 52"],
    );
}

#[test]
fn invalid_utf8_in_csv() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("u.csv");
    std::fs::write(&p, b"id,name\n1,ok\n2,\xff\xfe bad\n").unwrap();
    assert_refused(run_inputs(dir.path(), &[&p], &[]), dir.path(), 5, &["u.csv`", "UTF-8"]);
}

#[test]
fn invalid_json_line_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.ndjson");
    std::fs::write(&p, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": oops}\n").unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["j.ndjson`", "line 3"],
    );
}

#[test]
fn empty_files() {
    for name in ["e.parquet", "e.arrow", "e.csv", "e.ndjson"] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, b"").unwrap();
        assert_refused(
            run_inputs(dir.path(), &[&p], &[]),
            dir.path(),
            5,
            &[&format!("{name}` is empty (0 bytes)")],
        );
    }
}

#[test]
fn zero_row_files_are_valid_input() {
    // A file with a schema and no rows is not bad data: the run succeeds with zero rows.
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("z.parquet");
    write_parquet(&pq, &[ints(0)]);
    let csv = dir.path().join("z.csv");
    std::fs::write(&csv, "id,name\n").unwrap();
    for (p, out) in [(&pq, "out-parquet"), (&csv, "out-csv")] {
        let a = sluice()
            .args(["run", "--input"])
            .arg(p)
            .arg("--output")
            .arg(dir.path().join(out))
            .assert()
            .code(0);
        let s = summary(&a.get_output().stdout);
        assert_eq!(
            (s["rows_in"].as_u64(), s["rows_out"].as_u64()),
            (Some(0), Some(0)),
            "{s}"
        );
        assert!(dir.path().join(out).join("_SUCCESS").exists());
    }
}

#[test]
fn a_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nowhere.parquet");
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["input `", "nowhere.parquet` does not exist"],
    );
}

#[test]
fn a_path_under_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.csv");
    std::fs::write(&file, "a\n1\n").unwrap();
    let p = file.join("child.csv");
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["child.csv`", "is not a directory"],
    );
}

/// A directory nobody may read. Permission bits do not stop root, and the suite runs as
/// root here, so as root the run is started as `nobody` (uid 65534); as any other user,
/// the permission bits apply directly. Either way the run must be refused.
#[test]
fn a_directory_without_permission() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    write_parquet(&locked.join("a.parquet"), &[ints(5)]);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    cmd.env_remove("SLUICE_LOG_FORMAT")
        .env("SLUICE_CACHE_DIR", dir.path().join("cache"));
    cmd.args(["run", "--no-cache", "--input"])
        .arg(&locked)
        .arg("--output")
        .arg(dir.path().join("out"));
    let a = assert_cmd::Command::from_std(cmd).assert();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_refused(a, dir.path(), 5, &["locked`", "permission denied"]);
}

#[test]
fn files_whose_schemas_differ_in_one_input_set() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set");
    std::fs::create_dir(&set).unwrap();
    write_parquet(&set.join("a.parquet"), &[ints(5)]);
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["x"])) as ArrayRef],
    )
    .unwrap();
    write_parquet(&set.join("b.parquet"), &[other]);
    assert_refused(
        run_inputs(dir.path(), &[&set], &[]),
        dir.path(),
        5,
        &["b.parquet` does not have the same schema as `", "a.parquet`", "`id`"],
    );
}

#[test]
fn an_undetectable_format_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("data.xlsx");
    std::fs::write(&p, b"PK\x03\x04 spreadsheet").unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        2,
        &["data.xlsx`", "--input-format"],
    );
}

/// A Parquet file (found by fuzzing) on which the parquet crate panics ("Decoder for dict
/// should have been set"): the source contains the panic, so the user gets one input error
/// naming the file, exit 5, and no "panicked" line on stderr.
#[test]
fn a_parquet_file_that_makes_the_decoder_panic() {
    let dir = tempfile::tempdir().unwrap();
    let found = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/source/crash-f13f56b587ad05df004db71a25044feb4d1509a5");
    let bytes = std::fs::read(found).unwrap();
    // The fuzz input's first byte picks the format (0 = Parquet); the rest is the file.
    assert_eq!(bytes[0] % 5, 0);
    let p = dir.path().join("crafted.parquet");
    std::fs::write(&p, &bytes[1..]).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["crafted.parquet`", "the file is corrupt"],
    );
}

/// An IPC stream whose decimal values buffer holds 40 bytes for 2 rows, which is not a
/// whole number of 16-byte values: arrow-ipc 60 panics viewing it as `i128`; the layout
/// check refuses it first, naming the column.
#[test]
fn an_ipc_buffer_that_is_not_a_whole_number_of_values() {
    use arrow::array::Decimal128Array;
    let dir = tempfile::tempdir().unwrap();
    let values: ArrayRef = Arc::new(
        Decimal128Array::from(vec![1i128, 2, 3])
            .with_precision_and_scale(10, 2)
            .unwrap(),
    );
    let schema = Arc::new(Schema::new(vec![Field::new("d", values.data_type().clone(), false)]));
    let b = RecordBatch::try_new(schema, vec![values]).unwrap();
    let p = dir.path().join("d.arrows");
    write_ipc_stream(&p, &[b]);
    let mut bytes = std::fs::read(&p).unwrap();
    // The record batch declares its values buffer as (offset 0, length 48) and 3 rows.
    let needle: Vec<u8> = [0i64.to_le_bytes(), 48i64.to_le_bytes()].concat();
    let at = bytes.windows(16).position(|w| w == needle).expect("the values buffer");
    bytes[at + 8..at + 16].copy_from_slice(&40i64.to_le_bytes());
    std::fs::write(&p, bytes).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["d.arrows`", "column 0", "not a whole number of 16-byte elements"],
    );
}

/// Tiny IPC streams that declare more rows than bytes could ever back (found by fuzzing as
/// a run that never ended): one with no columns at all, one whose only column is of type
/// null. Both are refused at once, exit 5, naming the file.
#[test]
fn an_ipc_stream_that_declares_rows_nothing_backs() {
    use arrow::array::NullArray;
    let dir = tempfile::tempdir().unwrap();
    let found = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/source/timeout-622246be7853897725f8356eee1f4a0809495563");
    let bytes = std::fs::read(found).unwrap();
    assert_eq!(bytes[0] % 5, 2, "the fuzz input is an IPC stream");
    let p = dir.path().join("found.arrows");
    std::fs::write(&p, &bytes[1..]).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["found.arrows`", "216172782113783554 rows in one record batch"],
    );

    // A well-formed stream without columns: its row count is unbacked by any data.
    let dir = tempfile::tempdir().unwrap();
    let opts = arrow::array::RecordBatchOptions::new().with_row_count(Some(5));
    let b = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &opts).unwrap();
    let p = dir.path().join("nocols.arrows");
    write_ipc_stream(&p, &[b]);
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["nocols.arrows`", "has no columns"],
    );

    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Null, true)]));
    let b = RecordBatch::try_new(schema, vec![Arc::new(NullArray::new(3)) as ArrayRef]).unwrap();
    let p = dir.path().join("nulls.arrows");
    write_ipc_stream(&p, &[b]);
    let mut bytes = std::fs::read(&p).unwrap();
    // The batch's length and its column's (length, null count) are the only 3s.
    let three = 3i64.to_le_bytes();
    let mut patched = 0;
    while let Some(at) = bytes.windows(8).position(|w| w == three) {
        bytes[at..at + 8].copy_from_slice(&100_000_000_000_000_000i64.to_le_bytes());
        patched += 1;
    }
    assert_eq!(patched, 3);
    std::fs::write(&p, bytes).unwrap();
    assert_refused(
        run_inputs(dir.path(), &[&p], &[]),
        dir.path(),
        5,
        &["nulls.arrows`", "100000000000000000 rows in one record batch"],
    );
}
