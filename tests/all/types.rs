//! `passthrough` preserves every common Arrow type exactly, through the real sandbox.

use std::sync::Arc;

use arrow::array::*;
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::*;
use sluice_test_artifacts as art;

use crate::util::*;

fn all_types() -> RecordBatch {
    let n = 6;
    let nulls = || Some(NullBuffer::from(vec![true, false, true, true, false, true]));
    let floats = Float64Array::new(
        vec![f64::NAN, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, 1.5e300].into(),
        nulls(),
    );
    let list_values = Int32Array::from(vec![1, 2, 3, 4, 5, 6, 7]);
    let list = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Int32, true)),
        OffsetBuffer::new(vec![0, 2, 2, 3, 5, 7, 7].into()),
        Arc::new(list_values),
        nulls(),
    );
    let strukt = StructArray::new(
        vec![
            Field::new("a", DataType::Int8, true),
            Field::new("b", DataType::Utf8, true),
        ]
        .into(),
        vec![
            Arc::new(Int8Array::from(vec![
                Some(1),
                None,
                Some(-3),
                Some(4),
                Some(5),
                Some(i8::MIN),
            ])) as ArrayRef,
            Arc::new(StringArray::from(vec![
                Some("x"),
                Some("y"),
                None,
                Some("ß"),
                Some(""),
                Some("z"),
            ])),
        ],
        nulls(),
    );
    let dict: DictionaryArray<Int32Type> = vec![
        Some("red"),
        None,
        Some("blue"),
        Some("red"),
        Some("green"),
        Some("blue"),
    ]
    .into_iter()
    .collect();
    let unicode = vec![
        Some("héllo"),
        None,
        Some("日本語"),
        Some("🦀 crab"),
        Some(""),
        Some("a\u{0}b"),
    ];
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "i8",
            Arc::new(Int8Array::from(vec![
                Some(i8::MIN),
                None,
                Some(0),
                Some(1),
                Some(i8::MAX),
                Some(-1),
            ])),
        ),
        (
            "i16",
            Arc::new(Int16Array::from(vec![
                Some(i16::MIN),
                Some(2),
                None,
                Some(3),
                Some(i16::MAX),
                Some(0),
            ])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                Some(2),
                Some(3),
                None,
                Some(i32::MAX),
                Some(0),
            ])),
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(2),
                Some(3),
                Some(4),
                None,
                Some(i64::MAX),
            ])),
        ),
        (
            "u8",
            Arc::new(UInt8Array::from(vec![
                Some(0),
                Some(255),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
        ),
        (
            "u64",
            Arc::new(UInt64Array::from(vec![
                Some(0),
                Some(u64::MAX),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![
                Some(f32::NAN),
                Some(-0.0),
                None,
                Some(f32::INFINITY),
                Some(f32::MIN_POSITIVE),
                Some(1.0),
            ])),
        ),
        ("f64", Arc::new(floats)),
        (
            "bool",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
                Some(false),
                None,
            ])),
        ),
        ("utf8", Arc::new(StringArray::from(unicode.clone()))),
        ("large_utf8", Arc::new(LargeStringArray::from(unicode.clone()))),
        (
            "utf8_view",
            Arc::new(StringViewArray::from(vec![
                Some("a string longer than twelve bytes"),
                None,
                Some("short"),
                Some("🦀"),
                Some(""),
                Some("x"),
            ])),
        ),
        (
            "binary",
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\xff"[..]),
                None,
                Some(b""),
                Some(b"abc"),
                Some(b"\x80"),
                Some(b"z"),
            ])),
        ),
        (
            "large_binary",
            Arc::new(LargeBinaryArray::from(vec![
                Some(&b"\x00\xff"[..]),
                None,
                Some(b""),
                Some(b"abc"),
                Some(b"\x80"),
                Some(b"z"),
            ])),
        ),
        (
            "date32",
            Arc::new(Date32Array::from(vec![
                Some(0),
                Some(-1),
                None,
                Some(19_000),
                Some(i32::MAX),
                Some(1),
            ])),
        ),
        (
            "date64",
            Arc::new(Date64Array::from(vec![
                Some(0),
                Some(86_400_000),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
        ),
        (
            "ts_us",
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(0),
                Some(1_700_000_000_000_000),
                None,
                Some(-1),
                Some(1),
                Some(2),
            ])),
        ),
        (
            "ts_ns_tz",
            Arc::new(
                TimestampNanosecondArray::from(vec![Some(0), Some(1), None, Some(-1), Some(i64::MAX), Some(2)])
                    .with_timezone("Europe/Paris"),
            ),
        ),
        (
            "ts_s_utc",
            Arc::new(
                TimestampSecondArray::from(vec![Some(0), Some(1), None, Some(-1), Some(5), Some(2)])
                    .with_timezone("+00:00"),
            ),
        ),
        (
            "time64",
            Arc::new(Time64MicrosecondArray::from(vec![
                Some(0),
                Some(86_399_999_999),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
        ),
        (
            "dec128",
            Arc::new(
                Decimal128Array::from(vec![
                    Some(0),
                    Some(-12_345),
                    None,
                    Some(99_999_999_999_999),
                    Some(1),
                    Some(2),
                ])
                .with_precision_and_scale(15, 2)
                .unwrap(),
            ),
        ),
        (
            "dec256",
            Arc::new(
                Decimal256Array::from(vec![
                    Some(i256::from_i128(-1)),
                    None,
                    Some(i256::MAX),
                    Some(i256::ZERO),
                    Some(i256::from_i128(7)),
                    Some(i256::MIN),
                ])
                .with_precision_and_scale(76, 10)
                .unwrap(),
            ),
        ),
        ("dict", Arc::new(dict)),
        ("list", Arc::new(list)),
        ("struct", Arc::new(strukt)),
        ("all_null", Arc::new(NullArray::new(n))),
    ];
    let fields: Vec<Field> = cols
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(
        fields,
        std::collections::HashMap::from([("origin".to_string(), "test".to_string())]),
    ));
    RecordBatch::try_new(schema, cols.into_iter().map(|(_, a)| a).collect()).unwrap()
}

/// Compare two batches bit for bit (NaN payloads and -0.0 included) via their IPC bytes.
fn assert_identical(a: &RecordBatch, b: &RecordBatch) {
    assert_eq!(a.schema(), b.schema());
    let enc = |x: &RecordBatch| sluice_host::ipc::encode_batches(&x.schema(), std::slice::from_ref(x)).unwrap();
    assert_eq!(enc(a), enc(b), "IPC bytes differ");
    assert_eq!(a, b);
}

#[test]
fn passthrough_preserves_every_common_type() {
    let rt = runtime();
    let p = rt.load_plugin(std::path::Path::new(art::PASSTHROUGH)).unwrap();
    let input = all_types();
    let mut t = p.open(&[], &input.schema(), None, &Default::default()).unwrap();
    assert_eq!(t.output_schema(), &input.schema());
    for b in [input.clone(), input.slice(2, 3), input.slice(0, 0)] {
        let out = t.process(&b).unwrap();
        let rows: usize = out.iter().map(|o| o.num_rows()).sum();
        assert_eq!(rows, b.num_rows());
        if b.num_rows() > 0 {
            assert_eq!(out.len(), 1);
            assert_identical(&out[0], &b);
        }
    }
    assert!(t.finish().unwrap().is_empty());
}

#[test]
fn passthrough_preserves_types_through_the_cli_as_ipc() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("all.arrow");
    let b = all_types();
    {
        let f = std::fs::File::create(&input).unwrap();
        let mut w = arrow::ipc::writer::FileWriter::try_new(f, &b.schema()).unwrap();
        w.write(&b).unwrap();
        w.finish().unwrap();
    }
    let out = dir.path().join("out");
    sluice()
        .args(["run", "--format", "ipc", "--compression", "none", "--input"])
        .arg(&input)
        .args(["--plugin", art::PASSTHROUGH, "--output"])
        .arg(&out)
        .assert()
        .success();
    assert_identical(&output_batch(&out), &b);
}
