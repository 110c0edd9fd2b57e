use sluice_sdk::Config;
use sluice_sdk::arrow_array::{Array, ArrayRef, Float64Array, Int64Array, StringViewArray};
use sluice_sdk::arrow_schema::{DataType, Field, Schema};
use sluice_sdk::harness::{assert_batches_eq, run_native, run_native_checkpointed};

use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Utf8View, true),
        Field::new("f", DataType::Float64, true),
    ]))
}

fn batch(start: i64, k: Vec<Option<i64>>, s: Vec<Option<&str>>) -> RecordBatch {
    let n = k.len() as i64;
    let f = Float64Array::from_iter((0..n).map(|i| Some(i as f64)));
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(start..start + n)) as ArrayRef,
            Arc::new(Int64Array::from(k)),
            Arc::new(StringViewArray::from(s)),
            Arc::new(f),
        ],
    )
    .unwrap()
}

fn ids(out: &[RecordBatch]) -> Vec<i64> {
    out.iter()
        .flat_map(|b| {
            let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            a.values().to_vec()
        })
        .collect()
}

#[test]
fn keeps_first_occurrence_across_batches() {
    let b1 = batch(0, vec![Some(1), Some(2), Some(1), None, None], vec![Some("a"); 5]);
    let b2 = batch(10, vec![Some(3), Some(2), None, Some(4)], vec![Some("a"); 4]);
    let b3 = batch(20, vec![Some(1), Some(3)], vec![Some("a"); 2]);
    let out = run_native::<Dedupe>(&[("key", "k")], schema(), &[b1, b2, b3]).unwrap();
    assert_eq!(ids(&out), [0, 1, 3, 10, 13], "nulls are one key; order kept");
}

#[test]
fn composite_keys_with_views() {
    let long = "a string value longer than twelve bytes";
    let b1 = batch(
        0,
        vec![Some(1), Some(1), Some(1), Some(1), None, None],
        vec![Some("x"), Some(long), Some("x"), None, None, Some("x")],
    );
    let b2 = batch(10, vec![Some(1), None], vec![Some(long), None]);
    let out = run_native::<Dedupe>(&[("key", "k, s")], schema(), &[b1, b2]).unwrap();
    assert_eq!(ids(&out), [0, 1, 3, 4, 5]);
}

/// A deterministic pseudo-random stream with many repeats and nulls.
fn stream(batches: usize, rows: usize) -> Vec<RecordBatch> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words = ["alpha", "beta", "a rather long string value", "", "gamma"];
    (0..batches)
        .map(|b| {
            let k: Vec<Option<i64>> = (0..rows)
                .map(|_| {
                    let v = next() % 60;
                    (v != 0).then_some(v as i64 % 23)
                })
                .collect();
            let s: Vec<Option<&str>> = (0..rows)
                .map(|_| {
                    let v = next() as usize % 6;
                    words.get(v).copied()
                })
                .collect();
            batch((b * rows) as i64, k, s)
        })
        .collect()
}

#[test]
fn checkpointed_runs_equal_a_single_run() {
    let input = stream(12, 40);
    let whole = run_native::<Dedupe>(&[("key", "k,s")], schema(), &input).unwrap();
    let kept = ids(&whole).len();
    assert!(kept > 50 && kept < 12 * 40 / 2, "the data must have repeats: {kept}");
    for split in [1, 2, 5] {
        let resumed = run_native_checkpointed::<Dedupe>(&[("key", "k,s")], schema(), &input, split).unwrap();
        assert_batches_eq(&resumed, &whole);
    }
    // A dedupe that forgot its state would keep more rows.
    let mut fresh_each_batch = vec![];
    for b in &input {
        fresh_each_batch.extend(run_native::<Dedupe>(&[("key", "k,s")], schema(), std::slice::from_ref(b)).unwrap());
    }
    assert!(ids(&fresh_each_batch).len() > kept);
}

fn open(key: &str, state: Option<&[u8]>) -> Result<Dedupe, Error> {
    Dedupe::open(&Config::new([("key", key)]), schema(), state)
}

#[test]
fn checkpoint_bytes_are_deterministic() {
    let input = stream(3, 30);
    let mut a = open("k,s", None).unwrap();
    let mut b = open("k,s", None).unwrap();
    for batch in &input {
        a.process(batch.clone()).unwrap();
    }
    for batch in input.iter().rev() {
        b.process(batch.clone()).unwrap();
    }
    let (sa, sb) = (a.checkpoint().unwrap(), b.checkpoint().unwrap());
    assert_eq!(sa, sb, "same keys seen, same bytes, whatever the order");
    assert_eq!(sa[0], STATE_VERSION);
    // Restored state round-trips exactly.
    let mut c = open("k,s", Some(&sa)).unwrap();
    assert_eq!(c.checkpoint().unwrap(), sa);
    assert!(c.process(input[0].clone()).unwrap().is_empty(), "all seen");
}

#[test]
fn garbage_state_is_an_error() {
    let mut good = open("k", None).unwrap();
    good.process(stream(1, 10)[0].clone()).unwrap();
    let state = good.checkpoint().unwrap();
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![STATE_VERSION],
        vec![9, 0, 0],
        state[..state.len() - 1].to_vec(),
        [state.as_slice(), &[0]].concat(),
        vec![0xff; 64],
    ];
    let mut huge_count = state.clone();
    let at = 1 + 8 + "k:Int64".len();
    huge_count[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(huge_count);
    for bad in cases {
        match open("k", Some(&bad)) {
            Err(Error::InvalidInput(m)) => assert!(m.contains("dedupe state"), "{m}"),
            Err(e) => panic!("{bad:?}: wrong error kind {e:?}"),
            Ok(_) => panic!("{bad:?}: garbage accepted"),
        }
    }
    match open("k,s", Some(&state)) {
        Err(Error::InvalidInput(m)) => assert!(m.contains("`k:Int64`"), "{m}"),
        o => panic!("other key accepted: {:?}", o.err()),
    }
}

#[test]
fn config_errors() {
    for (key, want) in [("nope", "`nope`"), ("k, k", "twice"), ("", "unknown column ``")] {
        match open(key, None) {
            Err(Error::InvalidConfig(m)) => assert!(m.contains(want), "{key}: {m}"),
            o => panic!("{key}: {:?}", o.err()),
        }
    }
    assert!(matches!(
        Dedupe::open(&Config::default(), schema(), None),
        Err(Error::InvalidConfig(_))
    ));
}
