//! Job B1 of DESIGN.md (filter + derive) on TPC-H `lineitem` gives exactly DuckDB's answer.
//!
//! Needs `tpchgen-cli` and the `duckdb` Python package (the README's test command installs
//! both). A small scale factor keeps the suite fast; the SF1 figures are in the README.

use std::process::Command;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Decimal128Type};
use sluice_test_artifacts as art;

use crate::util::*;

const PREDICATE: &str = "predicate=l_discount between 0.05 and 0.07 and l_quantity < 24";

fn python() -> String {
    std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn b1_filter_derive_matches_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let generated = Command::new("tpchgen-cli")
        .args(["parquet", "-s", "0.05", "--tables", "lineitem", "--output-dir"])
        .arg(dir.path())
        .output()
        .expect("`tpchgen-cli` is needed: pip install tpchgen-cli (the README's test command does)");
    assert!(
        generated.status.success(),
        "tpchgen-cli failed: {}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let input = dir.path().join("lineitem.parquet");
    let out = dir.path().join("b1");
    sluice()
        .args(["run", "--chunk-rows", "100000", "--input"])
        .arg(&input)
        .args(["--plugin", art::FILTER, "--config", PREDICATE])
        .args([
            "--plugin",
            art::DERIVE,
            "--config",
            "name=revenue",
            "--config",
            "expr=l_extendedprice * l_discount",
            "--config",
            "type=decimal(18,4)",
        ])
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let batches = read_output(&out);
    let mut rows = 0usize;
    let mut sum: i128 = 0;
    let mut first = None;
    for b in &batches {
        assert_eq!(b.num_columns(), 17);
        let rev = b.column(16);
        assert_eq!(rev.data_type(), &DataType::Decimal128(18, 4));
        assert_eq!(rev.null_count(), 0);
        let rev = rev.as_primitive::<Decimal128Type>();
        rows += b.num_rows();
        sum += rev.values().iter().sum::<i128>();
        if first.is_none() && !rev.is_empty() {
            first = Some(rev.value(0));
        }
    }
    let sql = format!(
        "import duckdb; r = duckdb.sql(\"SELECT count(*), sum(l_extendedprice * l_discount)::DECIMAL(38,4)::VARCHAR FROM read_parquet('{}') \
         WHERE l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24\").fetchall()[0]; print(r[0], r[1])",
        input.display()
    );
    let duck = Command::new(python())
        .args(["-c", &sql])
        .output()
        .expect("python3 with the duckdb package is needed: pip install duckdb");
    assert!(
        duck.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&duck.stderr)
    );
    let text = String::from_utf8(duck.stdout).unwrap();
    let mut it = text.split_whitespace();
    let want_rows: usize = it.next().unwrap().parse().unwrap();
    let want_sum: String = it.next().unwrap().to_string();
    assert!(rows > 10_000, "a real amount of data went through: {rows}");
    assert_eq!(rows, want_rows, "row count differs from DuckDB");
    let got_sum = format!("{}.{:04}", sum / 10_000, sum % 10_000);
    assert_eq!(got_sum, want_sum, "sum(revenue) differs from DuckDB");
    assert!(first.is_some());
}
