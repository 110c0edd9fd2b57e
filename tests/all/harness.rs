//! The SDK harness runs a plugin natively (fast unit tests) and through the real host from
//! its `.wasm`; both must give identical batches, also across checkpoint/restore.

use std::sync::Arc;

use arrow::array::RecordBatch;
use sluice_sdk::harness::{
    assert_batches_eq, check_cases_native, check_cases_wasm, check_native, run_native, run_native_checkpointed,
    run_wasm, run_wasm_checkpointed,
};
use sluice_test_artifacts as art;

use crate::util::*;

fn input() -> Vec<RecordBatch> {
    (0..4).map(|i| orders().slice(i, 7)).collect()
}

#[test]
fn native_and_wasm_runs_give_identical_batches() {
    let batches = input();
    let schema = batches[0].schema();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            art::FILTER,
            vec![("predicate", "discount between 0.02 and 0.06 and email is not null")],
        ),
        (
            art::DERIVE,
            vec![
                ("name", "revenue"),
                ("expr", "price * discount"),
                ("type", "decimal(18,4)"),
            ],
        ),
        (art::MASK, vec![("columns", "email")]),
        (art::DEDUPE, vec![("key", "id")]),
    ];
    for (wasm, config) in cases {
        let native = match wasm {
            w if w == art::FILTER => run_native::<filter::Filter>(&config, Arc::clone(&schema), &batches),
            w if w == art::DERIVE => run_native::<derive::Derive>(&config, Arc::clone(&schema), &batches),
            w if w == art::MASK => run_native::<mask::Mask>(&config, Arc::clone(&schema), &batches),
            _ => run_native::<dedupe::Dedupe>(&config, Arc::clone(&schema), &batches),
        }
        .unwrap();
        let wasm_out = run_wasm(wasm, &config, Arc::clone(&schema), &batches).unwrap();
        assert!(
            native.iter().map(|b| b.num_rows()).sum::<usize>() > 0,
            "{wasm}: the case must produce rows"
        );
        assert_batches_eq(&native, &wasm_out);
    }
}

/// `filter` compares decimals that fit in 64 bits with its own two-lane kernels in wasm only
/// (natively arrow's kernels run), so the native run is the reference: every operator and
/// `between`, over edge values of i64, nulls, batches that end inside a 64-value block on an
/// odd count, and a batch with one value too wide for 64 bits (left to arrow in wasm too).
#[test]
fn filter_decimal_kernels_in_wasm_equal_arrows() {
    use arrow::array::Decimal128Array;
    use arrow::datatypes::{DataType, Field, Schema};
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
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Decimal128(38, 2), true)]));
    let batch = |n: usize, wide: bool| {
        let mut values: Vec<Option<i128>> = (0..n).map(|i| (i % 9 != 4).then(|| edge[i % edge.len()])).collect();
        if wide {
            values[n / 2] = Some(i64::MAX as i128 + 1);
        }
        let x = Decimal128Array::from(values).with_precision_and_scale(38, 2).unwrap();
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(x)]).unwrap()
    };
    let batches = [batch(151, false), batch(131, false), batch(1, false), batch(70, true)];
    let predicates = [
        "x = 0.05",
        "x <> 0.05",
        "x < 0.05",
        "x <= 0.24",
        "x > -0.01",
        "x >= 0",
        "x < 92233720368547758.07",
        "x >= -92233720368547758.08",
        "x between 0.05 and 0.07",
        "x between -0.01 and 9999.99",
        "x between 0.24 and 0.05",
    ];
    for p in predicates {
        let config = [("predicate", p)];
        let native = run_native::<filter::Filter>(&config, Arc::clone(&schema), &batches).unwrap();
        let wasm = run_wasm(art::FILTER, &config, Arc::clone(&schema), &batches).unwrap();
        assert_batches_eq(&native, &wasm);
    }
}

#[test]
fn checkpoint_restore_matches_in_both_modes() {
    let batches = input();
    let schema = batches[0].schema();
    let config = [("key", "id")];
    let plain = run_native::<dedupe::Dedupe>(&config, Arc::clone(&schema), &batches).unwrap();
    let native = run_native_checkpointed::<dedupe::Dedupe>(&config, Arc::clone(&schema), &batches, 1).unwrap();
    let wasm = run_wasm_checkpointed(art::DEDUPE, &config, schema, &batches, 1).unwrap();
    assert_batches_eq(&plain, &native);
    assert_batches_eq(&plain, &wasm);
}

#[test]
fn harness_runs_the_conformance_cases_natively_and_through_the_host() {
    let dir = crate::conformance::cases("filter");
    check_cases_native::<filter::Filter>(&dir).unwrap();
    check_cases_wasm(art::FILTER, &dir).unwrap();
    // The same cases fail for another plugin, naming the case, row and column.
    let e = check_cases_native::<dedupe::Dedupe>(&dir).unwrap_err();
    assert!(
        e.contains("case `numeric-and`: run failed") && e.contains("`key`"),
        "{e}"
    );
}

#[test]
fn check_native_catches_state_lost_at_checkpoints() {
    let batches = input();
    let schema = batches[0].schema();
    let out = check_native::<leaky::Leaky>(&[("leak", "none")], Arc::clone(&schema), &batches).unwrap();
    assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 28);
    let e = check_native::<leaky::Leaky>(&[("leak", "state")], schema, &batches).unwrap_err();
    assert!(
        e.contains("split at batches [1]") && e.contains("first difference at row 7, column `n`: left 7, right 0"),
        "{e}"
    );
}
