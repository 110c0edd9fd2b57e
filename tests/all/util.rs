//! Shared helpers: the binary under test, sample data, reading output back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use assert_cmd::Command;

/// The `sluice` binary, with a compile cache shared by the whole suite.
pub fn sluice() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.env("SLUICE_CACHE_DIR", cache_dir());
    c.env_remove("SLUICE_LOG_FORMAT");
    c
}

/// The compile cache directory used by tests: the user's default one (entries are keyed by
/// plugin sha256 and engine, so sharing is safe), which the SDK harness also uses.
pub fn cache_dir() -> PathBuf {
    sluice_host::engine::default_cache_dir()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache"))
}

/// A runtime for library-level tests, sharing the suite's cache.
pub fn runtime() -> sluice_host::Runtime {
    sluice_host::Runtime::new(sluice_host::RuntimeOptions {
        cache_dir: Some(cache_dir()),
        ..Default::default()
    })
    .unwrap()
}

/// A small "orders" batch: ints, floats, decimals, strings with nulls, dates.
pub fn orders() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("qty", DataType::Float64, true),
        Field::new("price", DataType::Decimal128(15, 2), false),
        Field::new("discount", DataType::Decimal128(15, 2), false),
        Field::new("email", DataType::Utf8, true),
        Field::new("day", DataType::Date32, false),
    ]));
    let n: i64 = 10;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from((0..n).map(|i| i % 7).collect::<Vec<i64>>())),
        Arc::new(Float64Array::from(
            (0..n)
                .map(|i| if i == 3 { None } else { Some(i as f64 * 5.0) })
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            Decimal128Array::from((0..n).map(|i| 10_000 + i as i128 * 1_234).collect::<Vec<i128>>())
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ),
        Arc::new(
            Decimal128Array::from((0..n).map(|i| (i % 10) as i128).collect::<Vec<i128>>())
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ),
        Arc::new(StringArray::from(
            (0..n)
                .map(|i| {
                    if i == 5 {
                        None
                    } else {
                        Some(format!("user{i}@example.com"))
                    }
                })
                .collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(
            (0..n).map(|i| 19_000 + i as i32).collect::<Vec<i32>>(),
        )),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// Write batches to a Parquet file.
pub fn write_parquet(path: &Path, batches: &[RecordBatch]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batches[0].schema(), None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

/// Read every part of a run's output directory, in order.
pub fn read_output(out: &Path) -> Vec<RecordBatch> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut batches = Vec::new();
    for f in files {
        let file = std::fs::File::open(&f).unwrap();
        if f.extension().is_some_and(|e| e == "parquet") {
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            batches.extend(r.map(|b| b.unwrap()));
        } else {
            let r = arrow::ipc::reader::FileReader::try_new(file, None).unwrap();
            batches.extend(r.map(|b| b.unwrap()));
        }
    }
    batches
}

/// All output rows as one batch.
pub fn output_batch(out: &Path) -> RecordBatch {
    let batches = read_output(out);
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// Nothing was published under `out`: no `_SUCCESS`, no part file (not even a temporary one).
pub fn assert_no_output(out: &Path) {
    assert!(!out.join("_SUCCESS").exists(), "nothing is published");
    let parts: Vec<PathBuf> = std::fs::read_dir(out.join("data"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(parts.is_empty(), "no part file, not even a temporary one: {parts:?}");
}

/// A Parquet file read with the reader's defaults, as one batch.
pub fn read_parquet(path: &Path) -> RecordBatch {
    let f = std::fs::File::open(path).unwrap();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = r.map(|b| b.unwrap()).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// The last line of stdout parsed as the JSON summary.
pub fn summary(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or_else(|| panic!("no stdout: {text}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary `{line}` is not JSON: {e}"))
}
