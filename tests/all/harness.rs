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
