use sluice_sdk::arrow_array::{Array, ArrayRef, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray};
use sluice_sdk::harness::run_native;

use super::*;

fn dec(v: Vec<Option<i128>>, p: u8, s: i8) -> ArrayRef {
    Arc::new(Decimal128Array::from(v).with_precision_and_scale(p, s).unwrap())
}

fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
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

/// The derived (last) column of the single output batch.
fn derived(config: &[(&str, &str)], b: &RecordBatch) -> ArrayRef {
    let out = run_native::<Derive>(config, b.schema(), std::slice::from_ref(b)).unwrap();
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!(o.num_columns(), b.num_columns() + 1);
    for i in 0..b.num_columns() {
        assert_eq!(o.column(i), b.column(i), "input columns are kept");
    }
    Arc::clone(o.column(o.num_columns() - 1))
}

fn lineitem() -> RecordBatch {
    batch(vec![
        (
            "l_extendedprice",
            dec(vec![Some(1_587_670), Some(3_307_994), None, Some(99)], 15, 2),
        ),
        ("l_discount", dec(vec![Some(6), Some(4), Some(5), Some(10)], 15, 2)),
        (
            "l_quantity",
            dec(vec![Some(1700), Some(3600), Some(800), Some(100)], 15, 2),
        ),
    ])
}

#[test]
fn b1_revenue_matches_duckdb() {
    let b = lineitem();
    let config = [
        ("name", "revenue"),
        ("expr", "l_extendedprice * l_discount"),
        ("type", "decimal(18,4)"),
    ];
    let out = run_native::<Derive>(&config, b.schema(), std::slice::from_ref(&b)).unwrap();
    let field = out[0].schema().field(3).clone();
    assert_eq!(field.name(), "revenue");
    assert_eq!(field.data_type(), &DataType::Decimal128(18, 4));
    let rev = derived(&config, &b);
    let rev = rev.as_any().downcast_ref::<Decimal128Array>().unwrap();
    // 15876.70 * 0.06 = 952.6020; 33079.94 * 0.04 = 1323.1976; null stays null.
    assert_eq!(rev.value_as_string(0), "952.6020");
    assert_eq!(rev.value_as_string(1), "1323.1976");
    assert!(rev.is_null(2));
    assert_eq!(rev.value_as_string(3), "0.0990");
}

#[test]
fn decimal_typing_follows_arrow() {
    let b = lineitem();
    let r = derived(&[("name", "r"), ("expr", "l_extendedprice * l_discount")], &b);
    assert_eq!(r.data_type(), &DataType::Decimal128(31, 4));
    let r = derived(&[("name", "r"), ("expr", "l_extendedprice * (1 - l_discount)")], &b);
    let r = r.as_any().downcast_ref::<Decimal128Array>().unwrap();
    assert_eq!(r.value_as_string(0), "14924.0980"); // 15876.70 * 0.94
    let r = derived(&[("name", "r"), ("expr", "l_quantity + 1")], &b);
    let r = r.as_any().downcast_ref::<Decimal128Array>().unwrap();
    assert_eq!(r.value_as_string(0), "18.00");
    let r = derived(&[("name", "r"), ("expr", "l_quantity * 0.5"), ("type", "float64")], &b);
    let r = r.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(r.values().to_vec(), [8.5, 18.0, 4.0, 0.5]);
}

#[test]
fn integers_and_floats() {
    let b = batch(vec![
        (
            "a",
            Arc::new(Int32Array::from(vec![Some(7), Some(-3), None])) as ArrayRef,
        ),
        ("b", Arc::new(Int64Array::from(vec![2, 4, 5]))),
        ("f", Arc::new(Float64Array::from(vec![0.5, 1.0, 2.0]))),
    ]);
    let r = derived(&[("name", "r"), ("expr", "(a - 1) * -2 + b")], &b);
    assert_eq!(r.data_type(), &DataType::Int64);
    let r = r.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!((r.value(0), r.value(1), r.is_null(2)), (-10, 12, true));
    let r = derived(&[("name", "r"), ("expr", "a / b")], &b);
    let r = r.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!((r.value(0), r.value(1)), (3.5, -0.75));
    let r = derived(&[("name", "r"), ("expr", "a * f + 1.5")], &b);
    let r = r.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!((r.value(0), r.value(1)), (5.0, -1.5));
    let r = derived(&[("name", "r"), ("expr", "b / 2"), ("type", "int64")], &b);
    let r = r.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(r.values().to_vec(), [1, 2, 2], "2.5 -> 2 on the final cast");
}

#[test]
fn config_errors() {
    let b = lineitem();
    let err = |config: &[(&str, &str)]| match run_native::<Derive>(config, b.schema(), &[]) {
        Err(Error::InvalidConfig(m)) => m,
        o => panic!("{config:?}: expected InvalidConfig, got {o:?}"),
    };
    let e = err(&[("name", "l_discount"), ("expr", "1 + l_quantity")]);
    assert!(e.contains("`l_discount` already exists"), "{e}");
    let e = err(&[("name", "x"), ("expr", "l_price * 2")]);
    assert!(e.contains("`l_price`") && e.contains("`l_extendedprice`"), "{e}");
    let e = err(&[("name", "x"), ("expr", "l_quantity * (2")]);
    assert!(e.contains("missing `)`"), "{e}");
    let e = err(&[("name", "x"), ("expr", "1 + 2")]);
    assert!(e.contains("at least one column"), "{e}");
    let e = err(&[("name", "x"), ("expr", "l_quantity % 2")]);
    assert!(e.contains("`%`"), "{e}");
    let e = err(&[("name", "x"), ("expr", "l_quantity"), ("type", "decimal(50,2)")]);
    assert!(e.contains("`type`"), "{e}");
    let e = err(&[("expr", "l_quantity")]);
    assert!(e.contains("missing config key `name`"), "{e}");
    let s = batch(vec![("s", Arc::new(StringArray::from(vec!["a"])) as ArrayRef)]);
    let e = match run_native::<Derive>(&[("name", "x"), ("expr", "s * 2")], s.schema(), &[]) {
        Err(Error::InvalidConfig(m)) => m,
        o => panic!("{o:?}"),
    };
    assert!(e.contains("cannot compute"), "{e}");
}

#[test]
fn data_errors_are_invalid_input() {
    let b = lineitem();
    let zero = batch(vec![("d", dec(vec![Some(1), Some(0)], 15, 2))]);
    let e = run_native::<Derive>(&[("name", "x"), ("expr", "1 / d")], zero.schema(), &[zero]).unwrap_err();
    assert!(matches!(&e, Error::InvalidInput(m) if m.contains("`x`")), "{e:?}");
    let e = run_native::<Derive>(
        &[
            ("name", "x"),
            ("expr", "l_extendedprice * 1000"),
            ("type", "decimal(5,2)"),
        ],
        b.schema(),
        &[b],
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput(m) if m.contains("casting column `x`")),
        "{e:?}"
    );
}

#[test]
fn type_names() {
    assert_eq!(parse_type("decimal(18,4)").unwrap(), DataType::Decimal128(18, 4));
    assert_eq!(parse_type("DECIMAL(18, 4)").unwrap(), DataType::Decimal128(18, 4));
    assert_eq!(parse_type("decimal256(40,2)").unwrap(), DataType::Decimal256(40, 2));
    assert_eq!(parse_type("double").unwrap(), DataType::Float64);
    assert_eq!(parse_type("Int64").unwrap(), DataType::Int64);
    assert_eq!(parse_type("Decimal128(10, 1)").unwrap(), DataType::Decimal128(10, 1));
    assert!(parse_type("decimal(3,4)").is_err());
    assert!(parse_type("nonsense").is_err());
}

/// The 64-bit product path against arrow's own `mul`, on values at the edges of 32 bits,
/// with nulls, and on a column one value too wide for it (arrow computes that one).
#[test]
fn small_decimal_products_equal_arrows() {
    let edge = [0i128, 1, -1, 7, i32::MAX as i128, i32::MIN as i128, 12_345_678, -99_999];
    let mut l = Vec::new();
    let mut r = Vec::new();
    for (i, &x) in edge.iter().enumerate() {
        for (j, &y) in edge.iter().enumerate() {
            l.push(if (i + j) % 7 == 3 { None } else { Some(x) });
            r.push(if (i * j) % 5 == 4 { None } else { Some(y) });
        }
    }
    let wide = {
        let mut l = l.clone();
        l.push(Some(i32::MAX as i128 + 1));
        l
    };
    for left in [l, wide] {
        let mut right = r.clone();
        right.resize(left.len(), Some(3));
        let (a, b) = (dec(left, 15, 2), dec(right, 12, 3));
        let want = arrow_arith::numeric::mul(&a, &b).unwrap();
        let got = crate::expr::mul_small_decimals(&a, &b).unwrap();
        let fast = got.is_some();
        let got = got.unwrap_or_else(|| Arc::clone(&want));
        assert_eq!(got.data_type(), want.data_type());
        assert_eq!(got.to_data().nulls(), want.to_data().nulls());
        let (g, w) = (
            got.as_any().downcast_ref::<Decimal128Array>().unwrap(),
            want.as_any().downcast_ref::<Decimal128Array>().unwrap(),
        );
        for i in 0..w.len() {
            if w.is_valid(i) {
                assert_eq!(g.value(i), w.value(i), "row {i}");
            }
        }
        // The path is taken exactly when every value fits in 32 bits.
        assert_eq!(fast, a.len() == 64, "fast path on {} rows", a.len());
    }
}

/// Eight values a step, then the rest: a value wider than 32 bits is found at any
/// position, on either side, and the products of narrow values are arrow's.
#[test]
fn small_decimal_products_check_every_position() {
    for at in 0..21 {
        let l: Vec<Option<i128>> = (0..21).map(|i| Some(i * 99_991 - 1_000_000)).collect();
        let r: Vec<Option<i128>> = (0..21).map(|i| Some(7 - i * 3)).collect();
        let (a, b) = (dec(l.clone(), 15, 2), dec(r.clone(), 15, 2));
        let got = crate::expr::mul_small_decimals(&a, &b).unwrap().expect("all narrow");
        assert_eq!(&got, &arrow_arith::numeric::mul(&a, &b).unwrap());
        for (mut l, mut r, side) in [(l.clone(), r.clone(), 0), (l, r, 1)] {
            let wide = Some(if at % 2 == 0 {
                i32::MAX as i128 + 1
            } else {
                i32::MIN as i128 - 1
            });
            if side == 0 {
                l[at] = wide
            } else {
                r[at] = wide
            }
            let (a, b) = (dec(l, 15, 2), dec(r, 15, 2));
            assert!(
                crate::expr::mul_small_decimals(&a, &b).unwrap().is_none(),
                "at {at} side {side}"
            );
        }
    }
}

/// Narrowing a decimal to a smaller precision of the same scale keeps the values when all
/// fit (at both bounds), and leaves a column with one value out of range to arrow's cast.
#[test]
fn narrowing_decimals_agrees_with_arrows_cast() {
    use arrow_cast::cast::{CastOptions, cast_with_options};
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    // 18 digits are checked as 64-bit words, 20 as 128-bit values.
    for p in [18u8, 20] {
        let max = 10i128.pow(u32::from(p)) - 1;
        let fits = dec(vec![Some(max), Some(-max), None, Some(0), Some(12345)], 31, 4);
        let target = DataType::Decimal128(p, 4);
        let got = crate::expr::narrow_decimal(&fits, &target).expect("every value fits");
        assert_eq!(&got, &cast_with_options(&fits, &target, &strict).unwrap());
        assert_eq!(got.data_type(), &target);
        // Past the bound, and (for 18 digits) past 64 bits.
        let wider = [i64::MAX as i128 + 1, i64::MIN as i128 - 1];
        for bad in [max + 1, -max - 1, i128::MAX, i128::MIN]
            .into_iter()
            .chain(wider.into_iter().filter(|_| p == 18))
        {
            let col = dec(vec![Some(1), Some(bad)], 38, 4);
            assert!(
                crate::expr::narrow_decimal(&col, &target).is_none(),
                "{bad} does not fit {p} digits"
            );
            assert!(
                cast_with_options(&col, &target, &strict).is_err(),
                "arrow refuses {bad} too"
            );
        }
    }
    // Eight values a step, then the rest: a value out of range is found at any position.
    let max = 10i128.pow(18) - 1;
    let target = DataType::Decimal128(18, 4);
    for at in 0..21 {
        let mut v: Vec<Option<i128>> = (0..21).map(|i| Some(i * 1_000_003 - 7)).collect();
        assert!(crate::expr::narrow_decimal(&dec(v.clone(), 31, 4), &target).is_some());
        v[at] = Some(if at % 2 == 0 { max + 1 } else { -max - 1 });
        assert!(
            crate::expr::narrow_decimal(&dec(v, 31, 4), &target).is_none(),
            "at {at}"
        );
    }
    let fits = dec(vec![Some(1)], 31, 4);
    // Another scale is not a narrowing.
    assert!(crate::expr::narrow_decimal(&fits, &DataType::Decimal128(18, 2)).is_none());
}
