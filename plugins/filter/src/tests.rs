use std::sync::Arc;

use sluice_sdk::arrow_array::types::Int32Type;
use sluice_sdk::arrow_array::{
    BooleanArray, Date32Array, Decimal128Array, DictionaryArray, Float64Array, Int32Array, Int64Array,
    LargeStringArray, RecordBatch, StringViewArray, TimestampMillisecondArray,
};
use sluice_sdk::arrow_schema::{Field, Schema};
use sluice_sdk::harness::{assert_batches_eq, run_native, run_native_checkpointed};

use super::*;

/// A batch whose first column `id` identifies rows, plus the given columns.
fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let n = cols[0].1.len();
    let mut fields = vec![Field::new("id", DataType::Int64, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(0..n as i64))];
    for (name, a) in cols {
        fields.push(Field::new(name, a.data_type().clone(), true));
        arrays.push(a);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

/// Ids of the rows that pass `predicate`.
fn kept(predicate: &str, b: &RecordBatch) -> Vec<i64> {
    let out = run_native::<Filter>(&[("predicate", predicate)], b.schema(), std::slice::from_ref(b))
        .unwrap_or_else(|e| panic!("{predicate}: {e}"));
    out.iter()
        .flat_map(|o| {
            assert_eq!(o.schema(), b.schema());
            let ids = o.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            ids.values().to_vec()
        })
        .collect()
}

fn open_err(predicate: &str, b: &RecordBatch) -> String {
    match run_native::<Filter>(&[("predicate", predicate)], b.schema(), &[]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{predicate}: expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn null_comparisons_drop_the_row() {
    let b = batch(vec![(
        "x",
        Arc::new(Int32Array::from(vec![Some(1), None, Some(3), Some(2), None])),
    )]);
    assert_eq!(kept("x > 1", &b), [2, 3]);
    assert_eq!(kept("x != 1", &b), [2, 3]);
    assert_eq!(kept("x <> 1", &b), [2, 3]);
    assert_eq!(kept("x not in (1, 2)", &b), [2]);
    assert_eq!(kept("x in (1, 2)", &b), [0, 3]);
    assert_eq!(kept("x not between 2 and 3", &b), [0]);
    assert_eq!(kept("x is null", &b), [1, 4]);
    assert_eq!(kept("x IS NOT NULL and x <= 2", &b), [0, 3]);
    assert_eq!(kept("x = 2.0", &b), [3], "int column vs fractional literal");
    assert_eq!(kept("x < 2.5", &b), [0, 3]);
}

#[test]
fn decimals_compare_exactly() {
    let d = |v: Vec<Option<i128>>| -> ArrayRef {
        Arc::new(Decimal128Array::from(v).with_precision_and_scale(15, 2).unwrap())
    };
    let b = batch(vec![
        ("l_discount", d(vec![Some(4), Some(5), Some(6), Some(7), Some(8), None])),
        (
            "l_quantity",
            d(vec![Some(100), Some(2300), Some(2400), Some(100), Some(100), Some(1)]),
        ),
    ]);
    assert_eq!(kept("l_discount between 0.05 and 0.07 and l_quantity < 24", &b), [1, 3]);
    assert_eq!(
        kept("l_discount BETWEEN .05 AND .07 AND l_quantity < 24.00", &b),
        [1, 3]
    );
    // More decimal places than the column: compared at the literal's scale, not truncated.
    assert_eq!(kept("l_discount < 0.055", &b), [0, 1]);
    assert_eq!(kept("l_discount = 0.050", &b), [1]);
    assert_eq!(kept("l_discount = 0.051", &b), Vec::<i64>::new());
    assert_eq!(kept("l_quantity >= -1", &b), [0, 1, 2, 3, 4, 5]);
    let e = open_err("l_quantity < 'abc'", &b);
    assert!(
        e.contains("'abc'") && e.contains("`l_quantity`") && e.contains("Decimal128(15, 2)"),
        "{e}"
    );
}

#[test]
fn dates_and_timestamps() {
    // 9131 = 1995-01-01
    let b = batch(vec![
        (
            "d",
            Arc::new(Date32Array::from(vec![Some(9130), Some(9131), Some(9190), None])),
        ),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_704_067_199_999), // 2023-12-31T23:59:59.999
                Some(1_704_067_200_000), // 2024-01-01
                None,
                Some(1_704_153_600_000), // 2024-01-02
            ])),
        ),
    ]);
    assert_eq!(kept("d >= date '1995-01-01'", &b), [1, 2]);
    assert_eq!(kept("d >= '1995-01-01' and d < DATE '1995-03-01'", &b), [1]);
    assert_eq!(kept("d in ('1994-12-31', '1995-03-01')", &b), [0, 2]);
    assert_eq!(kept("ts >= timestamp '2024-01-01 00:00:00'", &b), [1, 3]);
    assert_eq!(kept("ts < date '2024-01-01'", &b), [0]);
    let e = open_err("d = date '1995-02-30'", &b);
    assert!(e.contains("1995-02-30") && e.contains("`d`"), "{e}");
    let e = open_err("d = 5", &b);
    assert!(e.contains("`d`") && e.contains("Date32"), "{e}");
}

#[test]
fn strings_in_every_flavour() {
    let vals = vec![
        Some("apple"),
        None,
        Some("pear"),
        Some("a string longer than 12 bytes"),
        Some(""),
    ];
    for col in [
        Arc::new(StringArray::from(vals.clone())) as ArrayRef,
        Arc::new(LargeStringArray::from(vals.clone())),
        Arc::new(StringViewArray::from(vals.clone())),
        Arc::new(vals.iter().copied().collect::<DictionaryArray<Int32Type>>()),
    ] {
        let t = col.data_type().clone();
        let b = batch(vec![("s", col)]);
        assert_eq!(kept("s = 'apple'", &b), [0], "{t}");
        assert_eq!(kept("s = 'a string longer than 12 bytes'", &b), [3], "{t}");
        assert_eq!(kept("s > 'b'", &b), [2], "{t}");
        assert_eq!(kept("s in ('pear', '')", &b), [2, 4], "{t}");
        assert_eq!(kept("s is null", &b), [1], "{t}");
        assert_eq!(kept("s != ''", &b), [0, 2, 3], "{t}");
        let e = open_err("s = 5", &b);
        assert!(e.contains("`s`") && e.contains("quote"), "{t}: {e}");
    }
}

#[test]
fn floats_and_bools() {
    let b = batch(vec![
        (
            "f",
            Arc::new(Float64Array::from(vec![Some(1.0), Some(-2.5), None, Some(1e10)])),
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), Some(true), None])),
        ),
    ]);
    assert_eq!(kept("f < 1.5", &b), [0, 1]);
    assert_eq!(kept("f >= 1e3", &b), [3]);
    assert_eq!(kept("f > -3", &b), [0, 1, 3]);
    assert_eq!(kept("b = true", &b), [0, 2]);
    assert_eq!(kept("b = FALSE", &b), [1]);
}

#[test]
fn config_errors_name_the_problem() {
    let b = batch(vec![("x", Arc::new(Int32Array::from(vec![1])) as ArrayRef)]);
    let e = open_err("y = 1", &b);
    assert!(e.contains("`y`") && e.contains("`id`, `x`"), "{e}");
    let e = match run_native::<Filter>(&[], b.schema(), &[]) {
        Err(Error::InvalidConfig(m)) => m,
        o => panic!("{o:?}"),
    };
    assert!(e.contains("missing config key `predicate`"), "{e}");
    let e = open_err("x = true", &b);
    assert!(e.contains("boolean") && e.contains("`x`"), "{e}");
    let e = open_err("x = 99999999999", &b);
    assert!(e.contains("99999999999") && e.contains("Int32"), "{e}");
}

#[test]
fn empty_and_all_pass_batches() {
    let b = batch(vec![("x", Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef)]);
    let all = run_native::<Filter>(&[("predicate", "x > 0")], b.schema(), std::slice::from_ref(&b)).unwrap();
    assert_batches_eq(&all, std::slice::from_ref(&b));
    let none = run_native::<Filter>(&[("predicate", "x > 5")], b.schema(), &[b.clone(), b.slice(0, 0)]).unwrap();
    assert_eq!(none.iter().map(|o| o.num_rows()).sum::<usize>(), 0);
    let split = run_native_checkpointed::<Filter>(
        &[("predicate", "x >= 2")],
        b.schema(),
        &[b.clone(), b.clone(), b.clone()],
        1,
    )
    .unwrap();
    let whole = run_native::<Filter>(&[("predicate", "x >= 2")], b.schema(), &[b.clone(), b.clone(), b]).unwrap();
    assert_batches_eq(&split, &whole);
    assert_eq!(whole.iter().map(|o| o.num_rows()).sum::<usize>(), 6);
}

/// The 64-bit decimal comparisons against arrow's kernels: every operator and `between`,
/// literals at and around the values, nulls, bounds of i64, and a column with one value
/// too wide for 64 bits (which arrow compares instead). 151 values cross two 64-value
/// blocks into a partial one of an odd count, whole and sliced (an offset that is not a
/// block multiple, 131 values).
#[test]
fn decimal_fast_path_equals_arrows_kernels() {
    let t = DataType::Decimal128(18, 2);
    let edge = [
        0i128,
        1,
        -1,
        5,
        7,
        24,
        i64::MAX as i128,
        i64::MIN as i128,
        999_999,
        -999_999,
    ];
    let values: Vec<Option<i128>> = (0..151).map(|i| (i % 9 != 4).then(|| edge[i % edge.len()])).collect();
    let whole: ArrayRef = Arc::new(Decimal128Array::from(values.clone()).with_data_type(t.clone()));
    let mut wide = values;
    wide.insert(100, Some(i64::MAX as i128 + 1));
    let wide: ArrayRef = Arc::new(Decimal128Array::from(wide).with_data_type(t.clone()));
    for (narrow, wide) in [
        (Arc::clone(&whole), Arc::clone(&wide)),
        (whole.slice(3, 131), wide.slice(3, 131)),
    ] {
        decimal_cases(
            &t,
            &[0, 5, 6, 24, -1, i64::MAX as i128, i64::MIN as i128],
            &narrow,
            &wide,
        );
    }
}

/// Whether the bits of `a`'s buffer after its last value are all clear: inverted results
/// (`<>`, `<=`, `>=`, `between`) must not set them.
fn clear_past_end(a: &BooleanArray) -> bool {
    let bits = a.values();
    let bytes = bits.inner().as_slice();
    (bits.offset() + bits.len()..bytes.len() * 8).all(|i| bytes[i / 8] >> (i % 8) & 1 == 0)
}

fn decimal_cases(t: &DataType, literals: &[i128], narrow: &ArrayRef, wide: &ArrayRef) {
    use crate::decimal;
    let lit = |v: i128| Scalar::new(Arc::new(Decimal128Array::from(vec![v]).with_data_type(t.clone())) as ArrayRef);
    let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
    for &v in literals {
        for op in ops {
            let want = match op {
                Op::Eq => cmp::eq(narrow, &lit(v)),
                Op::Ne => cmp::neq(narrow, &lit(v)),
                Op::Lt => cmp::lt(narrow, &lit(v)),
                Op::Le => cmp::lt_eq(narrow, &lit(v)),
                Op::Gt => cmp::gt(narrow, &lit(v)),
                Op::Ge => cmp::gt_eq(narrow, &lit(v)),
            }
            .unwrap();
            let got = decimal::compare(op, narrow, &lit(v)).unwrap();
            assert_eq!(got, want, "{op:?} {v}");
            assert!(clear_past_end(&got), "{op:?} {v}: bits past the end are set");
            assert!(
                decimal::compare(op, wide, &lit(v)).is_none(),
                "a 128-bit value is left to arrow"
            );
        }
        for hi in [v, v + 1, 24, i64::MAX as i128, -2] {
            if hi > i64::MAX as i128 {
                continue;
            }
            let want = and(
                &cmp::gt_eq(narrow, &lit(v)).unwrap(),
                &cmp::lt_eq(narrow, &lit(hi)).unwrap(),
            )
            .unwrap();
            let got = decimal::between(narrow, &lit(v), &lit(hi)).unwrap();
            assert_eq!(got, want, "between {v} and {hi}");
            assert!(clear_past_end(&got), "between {v} and {hi}: bits past the end are set");
        }
    }
    // A literal of another decimal type is not compared here.
    let other =
        Scalar::new(Arc::new(Decimal128Array::from(vec![5]).with_precision_and_scale(18, 3).unwrap()) as ArrayRef);
    assert!(decimal::compare(Op::Lt, narrow, &other).is_none());
}
