use std::collections::HashMap;
use std::sync::Arc;

use sluice_sdk::arrow_array::builder::{Int32Builder, ListBuilder, StringDictionaryBuilder};
use sluice_sdk::arrow_array::types::Int16Type;
use sluice_sdk::arrow_array::{
    ArrayRef, BinaryViewArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int8Array,
    LargeStringArray, StringArray, StringViewArray, StructArray, TimestampMicrosecondArray, UInt64Array,
};
use sluice_sdk::arrow_schema::{DataType, Field, Fields, Schema};
use sluice_sdk::harness::{assert_batches_eq, run_native};

use super::*;

fn many_types(n: usize, offset: usize) -> (SchemaRef, RecordBatch) {
    let idx = |i: usize| (i + offset) as i64;
    let mut dict = StringDictionaryBuilder::<Int16Type>::new();
    let mut list = ListBuilder::new(Int32Builder::new());
    for i in 0..n {
        if i % 4 == 3 {
            dict.append_null();
            list.append_null();
        } else {
            dict.append_value(["a", "bb", "ccc"][i % 3]);
            list.values().append_value(i as i32);
            list.values().append_null();
            list.append(true);
        }
    }
    let long = "a string longer than twelve bytes";
    let s_struct = StructArray::new(
        Fields::from(vec![
            Field::new("x", DataType::Int8, true),
            Field::new("y", DataType::Utf8, true),
        ]),
        vec![
            Arc::new(Int8Array::from_iter((0..n).map(|i| Some(i as i8)))) as ArrayRef,
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 2 == 0).then(|| format!("y{i}"))),
            )),
        ],
        None,
    );
    let floats = [f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, 1.5, -f64::NAN];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values((0..n).map(|i| u64::MAX - i as u64))),
        Arc::new(Float64Array::from_iter(
            (0..n).map(|i| (i % 5 != 4).then(|| floats[i % floats.len()])),
        )),
        Arc::new(Float32Array::from_iter_values((0..n).map(|i| -(i as f32) * 0.0))),
        Arc::new(
            Decimal128Array::from_iter((0..n).map(|i| (i % 3 != 2).then_some(idx(i) as i128 * 101 - 50)))
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ),
        Arc::new(Date32Array::from_iter_values((0..n).map(|i| 8000 + i as i32))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values((0..n).map(|i| idx(i) * 1_000_001))
                .with_timezone("Europe/Paris"),
        ),
        Arc::new(BooleanArray::from_iter(
            (0..n).map(|i| (i % 3 != 0).then_some(i % 2 == 0)),
        )),
        Arc::new(StringArray::from_iter(
            (0..n).map(|i| (i % 2 == 1).then(|| format!("s{i}é"))),
        )),
        Arc::new(LargeStringArray::from_iter_values((0..n).map(|i| format!("large{i}")))),
        Arc::new(StringViewArray::from_iter((0..n).map(|i| {
            (i % 3 != 1).then(|| {
                if i % 2 == 0 {
                    "short".to_string()
                } else {
                    format!("{long} {i}")
                }
            })
        }))),
        Arc::new(BinaryViewArray::from_iter_values((0..n).map(|i| vec![i as u8; i % 20]))),
        Arc::new(dict.finish()),
        Arc::new(list.finish()),
        Arc::new(s_struct),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
        .collect();
    let mut fields = fields;
    fields[0] = fields[0]
        .clone()
        .with_nullable(false)
        .with_metadata(HashMap::from([("comment".to_string(), "id".to_string())]));
    let schema =
        Arc::new(Schema::new(fields).with_metadata(HashMap::from([("origin".to_string(), "test".to_string())])));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    (schema, batch)
}

#[test]
fn returns_every_type_unchanged() {
    let (schema, a) = many_types(37, 0);
    let (_, b) = many_types(0, 0);
    let (_, c) = many_types(5, 100);
    let input = vec![a, b, c];
    let out = run_native::<Passthrough>(&[], Arc::clone(&schema), &input).unwrap();
    assert_eq!(out.len(), 3, "one output batch per input batch, empty ones too");
    for (o, i) in out.iter().zip(&input) {
        assert_eq!(o.schema(), schema, "schema incl. metadata must survive");
        assert_eq!(o.num_rows(), i.num_rows());
    }
    assert_batches_eq(&out, &input);
    // Bit-exact floats: NaN payloads and the sign of zero.
    let bits = |b: &RecordBatch| {
        let f = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        f.values().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(bits(&out[0]), bits(&input[0]));
}

#[test]
fn rejects_config() {
    let (schema, _) = many_types(1, 0);
    let e = run_native::<Passthrough>(&[("x", "1")], schema, &[]).err().unwrap();
    assert!(matches!(e, Error::InvalidConfig(ref m) if m.contains("`x`")), "{e:?}");
}
