//! The pure-Python Arrow IPC reader/writer (`sdk/python/sluice_arrow.py`) against arrow-rs:
//! Python decodes a stream arrow-rs wrote (every supported type, nulls, a dictionary),
//! and arrow-rs decodes, with full validation, the stream Python writes back.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};

fn batch() -> RecordBatch {
    let long = "a string longer than twelve bytes";
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("i8", Arc::new(Int8Array::from(vec![Some(-128), None, Some(127)]))),
        ("u16", Arc::new(UInt16Array::from(vec![Some(65535), Some(0), None]))),
        ("i32", Arc::new(Int32Array::from(vec![None, Some(-5), Some(7)]))),
        (
            "i64",
            Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(0), Some(i64::MAX)])),
        ),
        ("f32", Arc::new(Float32Array::from(vec![Some(1.5), None, Some(-0.25)]))),
        ("f64", Arc::new(Float64Array::from(vec![Some(1e300), Some(-0.0), None]))),
        ("b", Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)]))),
        ("s", Arc::new(StringArray::from(vec![Some("x"), None, Some("ünï")]))),
        ("ls", Arc::new(LargeStringArray::from(vec![Some(""), Some("y"), None]))),
        (
            "sv",
            Arc::new(StringViewArray::from(vec![Some("short"), None, Some(long)])),
        ),
        (
            "bin",
            Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None, Some(&b""[..])])),
        ),
        ("d32", Arc::new(Date32Array::from(vec![Some(19000), None, Some(-1)]))),
        (
            "d64",
            Arc::new(Date64Array::from(vec![Some(86_400_000), Some(0), None])),
        ),
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_700_000_000_000_000), None, Some(-1)]).with_timezone("UTC"),
            ),
        ),
        (
            "dec",
            Arc::new(
                Decimal128Array::from(vec![Some(12345), None, Some(-1)])
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
        ),
        ("n", Arc::new(NullArray::new(3))),
        (
            "dict",
            Arc::new(DictionaryArray::<Int32Type>::from_iter([
                Some("red"),
                None,
                Some("red"),
            ])),
        ),
    ];
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        cols.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// What Python must print for `batch()`: one JSON list per column (bytes as hex).
const EXPECTED: &str = r#"{"i8": [-128, null, 127], "u16": [65535, 0, null], "i32": [null, -5, 7], "i64": [-9223372036854775808, 0, 9223372036854775807], "f32": [1.5, null, -0.25], "f64": [1e+300, -0.0, null], "b": [true, null, false], "s": ["x", null, "\u00fcn\u00ef"], "ls": ["", "y", null], "sv": ["short", null, "a string longer than twelve bytes"], "bin": ["00ff", null, ""], "d32": [19000, null, -1], "d64": [86400000, 0, null], "ts": [1700000000000000, null, -1], "dec": [12345, null, -1], "n": [null, null, null], "dict": ["red", null, "red"]}"#;

const SCRIPT: &str = r#"
import json, sys
import sluice_arrow as a
schema, batches = a.read_stream(open(sys.argv[1], "rb").read())
values = {}
for c in batches[0].columns:
    values[c.field.name] = [v.hex() if isinstance(v, bytes) else v for v in c.to_pylist()]
print(json.dumps(values, ensure_ascii=True))
# Write everything back from Python values; the dictionary column decoded to utf8.
fields, cols = [], []
for c in batches[0].columns:
    f = c.field if c.field.dictionary is None else a.Field(c.field.name, c.field.type, c.field.nullable)
    fields.append(f)
    cols.append(a.column_from_pylist(f, c.to_pylist()))
out = a.Schema(fields)
open(sys.argv[2], "wb").write(a.write_stream(out, [a.RecordBatch(out, cols)]))
"#;

#[test]
fn python_sdk_reads_and_writes_what_arrow_rs_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in.arrows"), tmp.path().join("out.arrows"));
    let b = batch();
    let mut w = arrow::ipc::writer::StreamWriter::try_new(std::fs::File::create(&input).unwrap(), &b.schema()).unwrap();
    w.write(&b).unwrap();
    w.finish().unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/python");
    let out = Command::new("python3")
        .env("PYTHONPATH", &sdk)
        .args(["-c", SCRIPT])
        .arg(&input)
        .arg(&output)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let want: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    assert_eq!(got, want);

    // arrow-rs reads Python's stream with full validation and gets the same values.
    let r = arrow::ipc::reader::StreamReader::try_new(std::fs::File::open(&output).unwrap(), None).unwrap();
    let back: Vec<RecordBatch> = r.map(|b| b.unwrap()).collect();
    assert_eq!(back.len(), 1);
    for (i, f) in b.schema().fields().iter().enumerate() {
        let want = match f.data_type() {
            DataType::Dictionary(_, v) => arrow::compute::cast(b.column(i), v).unwrap(),
            _ => Arc::clone(b.column(i)),
        };
        let got = back[0].column(i);
        assert_eq!(got.data_type(), want.data_type(), "column `{}`", f.name());
        assert_eq!(got.to_data(), want.to_data(), "column `{}`", f.name());
    }
    back[0]
        .columns()
        .iter()
        .for_each(|c| c.to_data().validate_full().unwrap());
    let ts = back[0].schema().field_with_name("ts").unwrap().data_type().clone();
    assert_eq!(ts, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
}
