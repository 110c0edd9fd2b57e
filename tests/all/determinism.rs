//! Determinism the sandbox enforces: clocks and randomness a plugin reads are the same on
//! every run, and NaN payloads are canonical.

use arrow::array::{Array, AsArray};
use sluice_test_artifacts as art;

use crate::util::*;

fn probe(dir: &std::path::Path, mode: &str, run: usize) -> Vec<String> {
    let input = dir.join("one.csv");
    std::fs::write(&input, "x\n1\n").unwrap();
    let out = dir.join(format!("{mode}-{run}"));
    sluice()
        .args(["run", "--input"])
        .arg(&input)
        .args([
            "--plugin",
            art::HOSTILE,
            "--config",
            &format!("mode={mode}"),
            "--output",
        ])
        .arg(&out)
        .assert()
        .success();
    let b = output_batch(&out);
    let col = b.column(0);
    (0..col.len())
        .map(|i| match col.data_type() {
            arrow::datatypes::DataType::Utf8View => col.as_string_view().value(i).to_string(),
            _ => col.as_string::<i32>().value(i).to_string(),
        })
        .collect()
}

#[test]
fn randomness_and_clocks_are_the_same_on_every_run() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["random", "sleep"] {
        let a = probe(dir.path(), mode, 0);
        let b = probe(dir.path(), mode, 1);
        assert!(!a.is_empty(), "{mode}: the probe reported nothing");
        assert_eq!(a, b, "{mode}: two runs saw different values");
    }
    let random = probe(dir.path(), "random", 2).join("");
    assert!(!random.contains(&"00".repeat(32)), "seeded, not zero: {random}");
}

#[test]
fn nan_payloads_are_canonical() {
    // 0/0 computed by the CPU natively is the x86 "default NaN" with the sign bit set
    // (0xfff8…); inside the sandbox NaN canonicalization turns every NaN into 0x7ff8….
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("zeros.csv");
    std::fs::write(&input, "a,b\n0.0,0.0\n1.5,0.0\n").unwrap();
    let out = dir.path().join("out");
    sluice()
        .args(["run", "--input"])
        .arg(&input)
        .args([
            "--plugin",
            art::DERIVE,
            "--config",
            "name=q",
            "--config",
            "expr=a / b",
            "--output",
        ])
        .arg(&out)
        .assert()
        .success();
    let b = output_batch(&out);
    let q = b
        .column_by_name("q")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert!(q.value(0).is_nan());
    assert_eq!(
        q.value(0).to_bits(),
        0x7ff8_0000_0000_0000,
        "NaN bits {:#x}",
        q.value(0).to_bits()
    );
    assert_eq!(q.value(1), f64::INFINITY);
}
