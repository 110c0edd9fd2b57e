//! ABI 1.1 column plans: plugins read only the columns they declare, the host passes the
//! rest through, and every way a plugin can break its plan is caught (exit 4, nothing
//! published).

use std::path::Path;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int64Type;
use sluice_host::ExitCode;
use sluice_test_artifacts as art;

use crate::util::*;

fn open(plugin: &str, config: &[(&str, &str)], batch: &RecordBatch) -> sluice_host::Result<sluice_host::Transformer> {
    let p = runtime().load_plugin(Path::new(plugin))?;
    let config: Vec<(String, String)> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    p.open(&config, &batch.schema(), None, &Default::default())
}

#[test]
fn sdk_plugins_are_built_against_1_1_and_declare_what_they_read() {
    let b = orders();
    let p = runtime().load_plugin(Path::new(art::FILTER)).unwrap();
    assert_eq!(p.info().abi_version, "1.1.0");
    let t = open(art::FILTER, &[("predicate", "qty > 10 and discount < 0.05")], &b).unwrap();
    let plan = t.column_plan().expect("filter declares a plan");
    assert_eq!(plan.reads, vec![1, 3], "qty and discount only");
    assert!(plan.selects);
    let t = open(
        art::DERIVE,
        &[("name", "total"), ("expr", "price * (1 - discount)")],
        &b,
    )
    .unwrap();
    assert_eq!(t.column_plan().unwrap().reads, vec![2, 3]);
    let t = open(art::MASK, &[("columns", "email")], &b).unwrap();
    assert_eq!(t.column_plan().unwrap().reads, vec![4]);
    let t = open(art::PASSTHROUGH, &[], &b).unwrap();
    assert!(t.column_plan().unwrap().reads.is_empty());
    // A 1.0 plugin has no plan and gets whole batches.
    let t = open(art::ABI_1_0_0_FIXTURE, &[], &b).unwrap();
    assert!(t.column_plan().is_none());
}

#[test]
fn the_host_builds_the_output_from_selection_pass_through_and_computed_columns() {
    let b = orders();
    let mut t = open(art::BAD_PLAN, &[("mode", "good")], &b).unwrap();
    // Two batches: the plugin numbers rows across calls and keeps the even ones.
    let mut got = t.process(&b).unwrap();
    got.extend(t.process(&b).unwrap());
    assert_eq!(got.len(), 2);
    let n = b.num_rows();
    for (call, out) in got.iter().enumerate() {
        let even =
            arrow::array::BooleanArray::from((0..n).map(|r| (call * n + r).is_multiple_of(2)).collect::<Vec<_>>());
        let want = filter_record_batch(&b, &even).unwrap();
        assert_eq!(out.num_columns(), b.num_columns() + 1);
        for c in 0..b.num_columns() {
            assert_eq!(
                out.column(c).as_ref(),
                want.column(c).as_ref(),
                "column {c}, call {call}"
            );
        }
        let numbers: Vec<i64> = out
            .column(b.num_columns())
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        let expected: Vec<i64> = (0..n as i64)
            .map(|r| call as i64 * n as i64 + r)
            .filter(|r| r % 2 == 0)
            .collect();
        assert_eq!(numbers, expected);
        assert_eq!(out.schema().field(b.num_columns()).name(), "n");
    }
}

#[test]
fn a_plan_that_does_not_fit_the_schemas_is_refused_at_open() {
    let b = orders();
    for (mode, says) in [
        ("unsorted-reads", "strictly ascending, but 1 comes before 0"),
        (
            "read-out-of-range",
            "names input column 11, but the input has 6 columns",
        ),
        (
            "wrong-field",
            "output column 0 `id: Int64` is said to be input column 1, which is `qty: Float64`",
        ),
        (
            "short-output",
            "it describes 6 output columns, but the output schema has 7",
        ),
    ] {
        let e = open(art::BAD_PLAN, &[("mode", mode)], &b)
            .err()
            .unwrap_or_else(|| panic!("{mode} was accepted"));
        assert_eq!(e.exit_code(), ExitCode::Plugin, "{mode}");
        let msg = e.to_string();
        assert!(
            msg.contains("plugin `bad-plan`") && msg.contains("`column-plan` does not fit"),
            "{mode}: {msg}"
        );
        assert!(msg.contains(says), "{mode}: {msg}");
    }
}

#[test]
fn a_result_that_breaks_the_plan_is_a_plugin_error() {
    let b = orders();
    for (mode, says) in [
        (
            "short-selection",
            "returned a selection of 3 bytes for 10 rows; it must have ceil(10 / 8) = 2",
        ),
        (
            "missing-selection",
            "returned no selection, but its column plan selects rows",
        ),
        ("computed-rows", "returned 6 rows of computed columns for 5 kept rows"),
        ("computed-garbage", "breaks the ABI contract"),
        ("computed-type", "column `n` should be `n: Int64`, got `n: Utf8`"),
        (
            "two-batches",
            "returned 2 batches of computed columns; it must return exactly one",
        ),
    ] {
        let mut t = open(art::BAD_PLAN, &[("mode", mode)], &b).unwrap();
        let e = t.process(&b).err().unwrap_or_else(|| panic!("{mode} was accepted"));
        assert_eq!(e.exit_code(), ExitCode::Plugin, "{mode}");
        let msg = e.to_string();
        assert!(
            msg.contains("plugin `bad-plan`") && msg.contains("`process-columns`"),
            "{mode}: {msg}"
        );
        assert!(msg.contains(says), "{mode}: {msg}");
        // The instance is not used again after breaking its contract.
        assert!(
            t.process(&b).unwrap_err().to_string().contains("failed earlier"),
            "{mode}"
        );
    }
}

#[test]
fn a_broken_plan_in_a_run_exits_4_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders()]);
    let out = dir.path().join("out");
    let a = sluice()
        .args(["run", "--input"])
        .arg(&input)
        .args(["--plugin", art::BAD_PLAN, "--config", "mode=computed-rows", "--output"])
        .arg(&out)
        .assert()
        .code(4)
        .stderr(predicates::str::contains("`process-columns` broke its column plan"));
    assert_eq!(summary(&a.get_output().stdout)["exit_code"], 4);
    assert_no_output(&out);
}

/// A 1.0 plugin and 1.1 plugins with plans in one chain, through the CLI: the rows are the
/// ones a whole-batch computation gives.
#[test]
fn plans_and_whole_batch_plugins_mix_in_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    let b = orders();
    write_parquet(&input, std::slice::from_ref(&b));
    let out = dir.path().join("out");
    sluice()
        .args(["run", "--input"])
        .arg(&input)
        .args(["--plugin", art::ECHO])
        .args(["--plugin", art::FILTER, "--config", "predicate=id >= 3"])
        .args(["--plugin", art::MASK, "--config", "columns=email"])
        .args(["--plugin", art::SELECT, "--config", "columns=email, id as key, day"])
        .args([
            "--plugin",
            art::DERIVE,
            "--config",
            "name=twice",
            "--config",
            "expr=key * 2",
        ])
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let got = output_batch(&out);
    let ids = b.column(0).as_primitive::<Int64Type>();
    let keep: Vec<usize> = (0..b.num_rows()).filter(|&r| ids.value(r) >= 3).collect();
    assert_eq!(got.num_rows(), keep.len());
    let names: Vec<&str> = got.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["email", "key", "day", "twice"]);
    let key = got.column(1).as_primitive::<Int64Type>();
    let twice = got.column(3).as_primitive::<Int64Type>();
    let emails = b.column(4).as_string::<i32>();
    let masked = got.column(0);
    for (i, &r) in keep.iter().enumerate() {
        assert_eq!(key.value(i), ids.value(r));
        assert_eq!(twice.value(i), 2 * ids.value(r));
        assert_eq!(masked.is_null(i), emails.is_null(r), "row {r}");
    }
    let day = got.column(2);
    let want_day = arrow::compute::take(
        b.column(5),
        &Int64Array::from(keep.iter().map(|&r| r as i64).collect::<Vec<_>>()),
        None,
    )
    .unwrap();
    assert_eq!(day.as_ref(), want_day.as_ref());
}

/// Columns a plan passes through are digested once, as input, and the run record's output
/// data digest adopts their state. The result must be the digest of the output batches
/// hashed in full, which the library API computes without that shortcut.
#[test]
fn output_digests_of_passed_through_columns_equal_full_digests() {
    use sluice_host::embed::{ChainOptions, ChainRunner};
    use sluice_host::pipeline::PluginSpec;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders()]);
    let read = read_parquet(&input);
    type Stage<'a> = (&'a str, Vec<(&'a str, &'a str)>);
    let chains: Vec<Vec<Stage>> = vec![
        vec![(art::PASSTHROUGH, vec![])],
        vec![(art::MASK, vec![("columns", "email")])],
        vec![(art::SELECT, vec![("columns", "day, id, email")])],
        vec![
            (art::DERIVE, vec![("name", "total"), ("expr", "price * 2")]),
            (art::MASK, vec![("columns", "email")]),
        ],
        // A selecting stage: nothing is shared, everything hashed as before.
        vec![(art::FILTER, vec![("predicate", "id > 2")]), (art::PASSTHROUGH, vec![])],
    ];
    for (n, chain) in chains.iter().enumerate() {
        let specs: Vec<PluginSpec> = chain
            .iter()
            .map(|(p, c)| PluginSpec::new(p, c.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
            .collect();
        let opts = ChainOptions {
            cache_dir: Some(cache_dir()),
            ..ChainOptions::default()
        };
        let mut runner = ChainRunner::new(&specs, opts).unwrap();
        let r = runner.transform(read.clone()).unwrap();
        // Under `files` the worker hashes only the shared input columns, under `data` all
        // of them: the adopted output digest must be the full one either way.
        for mode in ["files", "data"] {
            let out = dir.path().join(format!("out{n}-{mode}"));
            let mut cmd = sluice();
            cmd.args(["run", "--input-digest", mode, "--input"]).arg(&input);
            for (p, config) in chain {
                cmd.args(["--plugin", p]);
                for (k, v) in config {
                    cmd.args(["--config", &format!("{k}={v}")]);
                }
            }
            cmd.arg("--output").arg(&out).assert().success();
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap();
            let chunk = &manifest["chunks"][0];
            assert_eq!(
                r.data_digest,
                chunk["data_digest"].as_str().unwrap(),
                "chain {n}, {mode}"
            );
            let want = if mode == "data" {
                r.input_digest.clone()
            } else {
                // The README's formula, from the file digest the run record gives.
                let mut h = blake3::Hasher::new();
                h.update(b"sluice-input-rows-v1\0");
                h.update(manifest["inputs"][0]["digest"].as_str().unwrap().as_bytes());
                h.update(b"\n");
                h.update(&0u64.to_le_bytes());
                h.update(&(read.num_rows() as u64).to_le_bytes());
                format!("blake3:{}", h.finalize().to_hex())
            };
            assert_eq!(chunk["input_digest"].as_str().unwrap(), want, "chain {n}, {mode}");
        }
    }
}

/// A view column that holds far more string data than it uses (a slice of the Parquet
/// reader's page buffer, a selective filter's output) crosses into the sandbox compacted:
/// the plugin gets, and pays fuel for, exactly what it gets for the compacted column, on
/// both paths (a column plan, and a 1.0 plugin's whole batches). Without the compaction
/// the guest copies and validates every dead byte: more fuel.
#[test]
fn sparse_view_columns_cross_compacted() {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};

    let all = StringViewArray::from_iter_values((0..200_000).map(|i| format!("a comment of some length, {i}")));
    let keep = BooleanArray::from_iter((0..200_000).map(|i| Some(i % 20 == 0)));
    let sparse = arrow::compute::filter(&all, &keep).unwrap();
    let sparse = sparse.as_string_view();
    let held: usize = sparse.data_buffers().iter().map(|b| b.len()).sum();
    assert!(
        held > 10 * sparse.total_buffer_bytes_used(),
        "the test column must be sparse"
    );
    let schema = Arc::new(Schema::new(vec![Field::new("email", DataType::Utf8View, false)]));
    let batch = |a: StringViewArray| RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(a)]).unwrap();
    let (sparse, dense) = (batch(sparse.clone()), batch(sparse.gc()));
    for (plugin, config) in [
        (art::MASK, &[("columns", "email")][..]),
        (art::ABI_1_0_0_FIXTURE, &[][..]),
    ] {
        let run = |b: &RecordBatch| {
            let mut t = open(plugin, config, b).unwrap();
            let out = t.process(b).unwrap();
            (out, t.fuel_used())
        };
        let (sparse_out, sparse_fuel) = run(&sparse);
        let (dense_out, dense_fuel) = run(&dense);
        assert_eq!(sparse_out, dense_out, "{plugin}");
        assert_eq!(sparse_fuel, dense_fuel, "{plugin}: the sparse column was not compacted");
    }
}
