//! Hostile plugins: every way the `hostile` test plugin misbehaves is contained. A plugin
//! that fails is stopped with exit code 4, a message naming the plugin and the limit or
//! violation, and nothing published; one that probes the sandbox finds nothing.

use std::path::Path;

use arrow::array::{Array, StringArray};
use sluice_host::ExitCode;
use sluice_test_artifacts as art;

use crate::util::*;

/// Run `hostile` with `mode=<mode>` (plus `config`) over the orders sample, with `flags`.
fn run_mode(dir: &Path, mode: &str, config: &[&str], flags: &[&str]) -> assert_cmd::assert::Assert {
    let input = dir.join("orders.parquet");
    write_parquet(&input, &[orders()]);
    let mut cmd = sluice();
    cmd.args(["run", "--input"])
        .arg(&input)
        .args(["--plugin", art::HOSTILE, "--config"])
        .arg(format!("mode={mode}"));
    for c in config {
        cmd.args(["--config", c]);
    }
    cmd.args(flags).arg("--output").arg(dir.join("out")).assert()
}

/// Assert the run failed with exit 4 naming the plugin and every `needle`, and published
/// nothing: no `_SUCCESS`, no part file (not even a temporary one).
fn assert_contained(a: assert_cmd::assert::Assert, dir: &Path, needles: &[&str]) {
    let out = a.get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "stderr: {stderr}");
    assert!(
        stderr.contains("error: plugin `hostile`"),
        "the error names the plugin: {stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks `{n}`: {stderr}");
    }
    let s = summary(&out.stdout);
    assert_eq!(s["status"], "failed");
    assert_eq!(s["exit_code"], 4);
    assert_eq!(s["error"]["category"], "plugin");
    assert_no_output(&dir.join("out"));
}

/// The `seen` column of a probing run's output.
fn seen(dir: &Path) -> Vec<String> {
    let b = output_batch(&dir.join("out"));
    let col = b.column_by_name("seen").expect("a `seen` column");
    let col = col.as_any().downcast_ref::<StringArray>().expect("Utf8");
    (0..col.len()).map(|i| col.value(i).to_string()).collect()
}

#[test]
fn a_tight_infinite_loop_is_stopped_by_the_call_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "loop", &[], &["--max-call-time", "1s"]);
    assert_contained(
        a,
        dir.path(),
        &[
            "`process` ran for longer than the limit of 1 s per call",
            "--max-call-time",
        ],
    );
}

#[test]
fn a_tight_infinite_loop_is_stopped_by_fuel() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "loop", &[], &["--fuel-per-call", "100000000"]);
    assert_contained(
        a,
        dir.path(),
        &["`process` ran out of fuel", "100000000 units", "--fuel-per-call"],
    );
}

#[test]
fn endless_memory_growth_hits_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "memory", &[], &["--max-memory", "64MiB"]);
    assert_contained(
        a,
        dir.path(),
        &[
            "`process` exceeded the memory limit",
            "over the limit of 64 MiB (67108864 bytes) per instance",
            "--max-memory",
        ],
    );
}

#[test]
fn endless_recursion_overflows_the_wasm_stack() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "recurse", &[], &[]);
    assert_contained(
        a,
        dir.path(),
        &["`process` overflowed the wasm stack of 1 MiB", "--max-stack"],
    );
}

#[test]
fn a_smaller_stack_limit_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "recurse", &[], &["--max-stack", "128KiB"]);
    assert_contained(a, dir.path(), &["overflowed the wasm stack of 128 KiB (131072 bytes)"]);
}

#[test]
fn a_1_gib_result_cannot_even_be_built_under_the_default_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "huge-output", &[], &[]);
    assert_contained(
        a,
        dir.path(),
        &[
            "`process` exceeded the memory limit",
            "1 GiB (1073741824 bytes) per instance",
        ],
    );
}

#[test]
fn a_1_gib_result_is_refused_by_the_output_limit() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "huge-output", &[], &["--max-memory", "2GiB"]);
    assert_contained(
        a,
        dir.path(),
        &[
            "`process` handed the host more than 1 GiB (1073741824 bytes) in one call, over the limit",
            "--max-output-bytes",
        ],
    );
}

#[test]
fn invalid_arrow_is_a_contract_violation() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "bad-offsets",
            &["`process` returned data that breaks the ABI contract", "offset"],
        ),
        (
            "bad-utf8",
            &[
                "`process` returned data that breaks the ABI contract",
                "Invalid UTF8 sequence",
            ],
        ),
        (
            "wrong-rows",
            &["`process` returned data that breaks the ABI contract", "row count"],
        ),
        (
            "wrong-schema",
            &["`process` returned data that breaks the ABI contract", "column `s`"],
        ),
        (
            "garbage",
            &[
                "`process` returned data that breaks the ABI contract",
                "invalid Arrow IPC stream",
            ],
        ),
    ];
    for (mode, needles) in cases {
        let dir = tempfile::tempdir().unwrap();
        let a = run_mode(dir.path(), mode, &[], &[]);
        assert_contained(a, dir.path(), needles);
    }
}

#[test]
fn a_trap_after_partial_output_publishes_nothing() {
    // Four batches of 3 rows; the first goes through, the second traps, mid-chunk.
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "trap-after", &["after=1"], &["--batch-rows", "3"]);
    assert_contained(a, dir.path(), &["`process` trapped: wasm `unreachable` executed"]);
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "panic", &[], &[]);
    assert_contained(
        a,
        dir.path(),
        &[
            "`process` panicked at",
            "hostile plugin panics on purpose in call 0 (the plugin panicked and aborted)",
        ],
    );
}

#[test]
fn asking_for_a_gibibyte_of_randomness_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "random-huge", &[], &[]);
    assert_contained(
        a,
        dir.path(),
        &["`process` asked for more randomness than the limit of 1 MiB (1048576 bytes) per call"],
    );
}

#[test]
fn a_loop_of_host_calls_is_stopped_by_the_deadline_although_it_burns_little_fuel() {
    // Each turn asks the host for 1 MiB of randomness: the host does the work, the plugin
    // spends a few fuel units. The fuel limit would take hours to stop it; the deadline does.
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "random-flood", &[], &["--max-call-time", "1s"]);
    assert_contained(a, dir.path(), &["ran for longer than the limit of 1 s per call"]);
}

#[test]
fn endless_host_resources_hit_the_resource_limit() {
    for mode in ["resources", "guest-resources"] {
        let dir = tempfile::tempdir().unwrap();
        let a = run_mode(dir.path(), mode, &[], &["--max-resources", "500"]);
        assert_contained(
            a,
            dir.path(),
            &[
                "`process` exceeded the resource limit",
                "more than 500 live handles",
                "--max-resources",
            ],
        );
    }
}

#[test]
fn an_import_the_host_does_not_provide_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders()]);
    let out = dir.path().join("out");
    let a = sluice()
        .args(["run", "--input"])
        .arg(&input)
        .args(["--plugin", art::HOSTILE_IMPORT, "--output"])
        .arg(&out)
        .assert()
        .code(4)
        .stderr(predicates::str::contains(
            "error: plugin `hostile_import.wasm`: imports `evil:net/raw@0.1.0`, which sluice does not provide",
        ));
    assert_eq!(summary(&a.get_output().stdout)["exit_code"], 4);
    assert!(!out.exists(), "refused before anything is created");
}

#[test]
fn files_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    run_mode(dir.path(), "files", &[], &[]).code(0);
    let rows = seen(dir.path());
    assert_eq!(rows.len(), 8, "every probe ran: {rows:#?}");
    for r in &rows {
        assert!(r.contains(": denied ("), "the plugin got something: {r}");
    }
    assert!(!dir.path().join("sluice-hostile-was-here").exists());
    assert!(!Path::new("sluice-hostile-was-here").exists());
}

#[test]
fn environment_arguments_and_working_directory_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders()]);
    let canary = "canary-7f3d9a-do-not-leak";
    sluice()
        .env("SLUICE_TEST_SECRET", canary)
        .env("HOME", "/root-canary")
        .args(["run", "--input"])
        .arg(&input)
        .args(["--plugin", art::HOSTILE, "--config", "mode=env", "--output"])
        .arg(dir.path().join("out"))
        .assert()
        .code(0);
    let rows = seen(dir.path());
    assert_eq!(rows.len(), 5, "every probe ran: {rows:#?}");
    for r in &rows {
        assert!(r.contains(": denied ("), "the plugin got something: {r}");
        assert!(!r.contains(canary) && !r.contains("root-canary"), "leaked: {r}");
    }
}

#[test]
fn the_network_is_out_of_reach() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    run_mode(dir.path(), "net", &[&format!("port={port}")], &[]).code(0);
    let rows = seen(dir.path());
    assert_eq!(rows.len(), 5, "every probe ran: {rows:#?}");
    for r in &rows {
        assert!(r.contains(": denied ("), "the plugin got something: {r}");
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the plugin reached the listener: {other:?}"),
    }
}

#[test]
fn sleeping_uses_virtual_time_and_never_blocks_the_host() {
    // With real time this test would hang for an hour (and fail on the CI timeout).
    let dir = tempfile::tempdir().unwrap();
    run_mode(dir.path(), "sleep", &[], &[]).code(0);
    assert_eq!(
        seen(dir.path()),
        vec!["sleep 3600 s: the monotonic clock moved at least one hour"]
    );
}

#[test]
fn randomness_is_seeded_by_the_job() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    run_mode(a.path(), "random", &[], &[]).code(0);
    run_mode(b.path(), "random", &[], &[]).code(0);
    let (ra, rb) = (seen(a.path()), seen(b.path()));
    assert_eq!(ra, rb, "the same job sees the same random bytes");
    assert_eq!(ra[0].len(), "random: ".len() + 64);
}

#[test]
fn log_floods_are_escaped_truncated_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(dir.path(), "log-flood", &[], &["--max-log-line", "200"]).code(0);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    // 200 iterations × ~300 KB were written; the quota lets 1 MiB through, then drops.
    assert_eq!(
        stderr.matches("reached its log quota of 1 MiB").count(),
        1,
        "{}",
        &stderr[..2000.min(stderr.len())]
    );
    assert!(stderr.len() < 200_000, "stderr is bounded: {} bytes", stderr.len());
    // (The logger's own ANSI colours are not the plugin's doing: look for the plugin's.)
    for raw in ["\x1b[31m", "\u{202e}", "\x07"] {
        assert!(!stderr.contains(raw), "raw {raw:?} leaked from the plugin");
    }
    assert!(
        stderr.contains("forged\\nERROR sluice: fake line \\u{1b}[31mred"),
        "escaped, on one line"
    );
    assert!(stderr.contains("[truncated, "), "long lines are truncated");
    for line in stderr.lines() {
        assert!(
            !line.starts_with("ERROR sluice: fake line"),
            "a plugin forged a log line: {line}"
        );
    }
}

/// Library use: one `Runtime` contains every failure, and still loads and runs a
/// well-behaved plugin after each.
#[test]
fn one_runtime_survives_every_hostile_plugin() {
    let limits = sluice_host::Limits {
        memory_bytes: 64 << 20,
        call_time_ms: 1_000,
        resources: 500,
        ..Default::default()
    };
    let rt = sluice_host::Runtime::new(sluice_host::RuntimeOptions {
        limits,
        cache_dir: Some(cache_dir()),
    })
    .unwrap();
    let batch = orders();
    let det = sluice_host::Determinism::default();
    let passthrough_still_works = |after: &str| {
        let p = rt.load_plugin(Path::new(art::PASSTHROUGH)).unwrap();
        let mut t = p.open(&[], &batch.schema(), None, &det).unwrap();
        assert_eq!(t.process(&batch).unwrap(), vec![batch.clone()], "after {after}");
    };
    let modes = [
        ("loop", "ran for longer than the limit of 1 s"),
        ("memory", "exceeded the memory limit"),
        ("recurse", "overflowed the wasm stack"),
        ("huge-output", "exceeded the memory limit"),
        ("bad-offsets", "breaks the ABI contract"),
        ("bad-utf8", "breaks the ABI contract"),
        ("wrong-rows", "breaks the ABI contract"),
        ("wrong-schema", "breaks the ABI contract"),
        ("garbage", "breaks the ABI contract"),
        ("trap-after", "unreachable"),
        ("panic", "panicked at"),
        ("random-huge", "more randomness than the limit"),
        ("random-flood", "ran for longer than the limit of 1 s"),
        ("resources", "exceeded the resource limit"),
        ("guest-resources", "exceeded the resource limit"),
    ];
    let hostile = rt.load_plugin(Path::new(art::HOSTILE)).unwrap();
    for (mode, needle) in modes {
        let config = vec![
            ("mode".to_string(), mode.to_string()),
            ("after".to_string(), "0".to_string()),
        ];
        let mut t = hostile.open(&config, &batch.schema(), None, &det).unwrap();
        let e = t.process(&batch).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::Plugin, "{mode}: {e}");
        let text = e.to_string();
        assert!(
            text.starts_with("plugin `hostile`: ") && text.contains(needle),
            "{mode}: {text}"
        );
        let again = t.process(&batch).unwrap_err();
        assert!(
            again.to_string().contains("the instance failed earlier"),
            "{mode}: {again}"
        );
        passthrough_still_works(mode);
    }
    let e = rt.load_plugin(Path::new(art::HOSTILE_IMPORT)).err().expect("refused");
    assert_eq!(e.exit_code(), ExitCode::Plugin, "{e}");
    passthrough_still_works("hostile-import");
}

#[test]
fn the_output_limit_applies_to_well_behaved_plugins_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    write_parquet(&input, &[orders()]);
    // A whole-batch (ABI 1.0) plugin's `process` result, and a column plan's computed columns.
    for (plugin, config, limit, call) in [
        (art::ECHO, None, "1000", "`process` returned"),
        (art::MASK, Some("columns=email"), "500", "`process-columns` returned"),
    ] {
        let out = dir.path().join(format!("out-{limit}"));
        let mut cmd = sluice();
        cmd.args(["run", "--input"]).arg(&input).args(["--plugin", plugin]);
        if let Some(c) = config {
            cmd.args(["--config", c]);
        }
        cmd.args(["--max-output-bytes", limit, "--output"])
            .arg(&out)
            .assert()
            .code(4)
            .stderr(predicates::str::contains(call))
            .stderr(predicates::str::contains(format!(
                "over the limit of {limit} bytes per call (raise it with --max-output-bytes)"
            )));
        assert_no_output(&out);
    }
}

#[test]
fn unusable_limits_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, needle) in [
        ("--max-stack", "64MiB", "--max-stack must be between `64KiB` and `4MiB`"),
        ("--max-call-time", "0s", "--max-call-time must be greater than `0`"),
        ("--max-resources", "0", "--max-resources must be greater than `0`"),
        (
            "--max-call-time",
            "soon",
            "--max-call-time: `soon` is not a duration like `60s`",
        ),
    ] {
        sluice()
            .args(["run", "--input", "x.csv", "--output"])
            .arg(dir.path().join("out"))
            .args([flag, value])
            .assert()
            .code(2)
            .stderr(predicates::str::contains(needle));
    }
}

#[test]
fn instance_table_and_memory_limits_apply_at_instantiation() {
    // Every component needs a few instances, a table and some memory: tiny limits refuse
    // even the passthrough plugin, as soon as it is instantiated at load.
    for (flags, needle) in [
        (
            ["--max-instances", "1"],
            "`instantiation` exceeded the instance limit: it needs more than 1 (raise it with --max-instances)",
        ),
        (
            ["--max-tables", "1"],
            "`instantiation` exceeded the table limit: it needs more than 1 (raise it with --max-tables)",
        ),
        (
            ["--max-table-elements", "10"],
            "`instantiation` exceeded the table limit: it asked for",
        ),
        (
            ["--max-memory", "64KiB"],
            "`instantiation` exceeded the memory limit: it asked for",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("orders.parquet");
        write_parquet(&input, &[orders()]);
        sluice()
            .args(["run", "--input"])
            .arg(&input)
            .args(["--plugin", art::PASSTHROUGH])
            .args(flags)
            .arg("--output")
            .arg(dir.path().join("out"))
            .assert()
            .code(4)
            .stderr(predicates::str::contains("error: plugin `passthrough.wasm`: "))
            .stderr(predicates::str::contains(needle));
    }
}

/// The host's SHA-256 kernel (`sluice:kernels/hash`) charges fuel for its work (a unit
/// per byte): a plugin looping over it is stopped by the fuel limit, as a loop in its own
/// code would be, not only by the wall-clock deadline much later.
#[test]
fn a_loop_over_a_host_kernel_is_stopped_by_fuel() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_mode(
        dir.path(),
        "kernel-flood",
        &[],
        &["--fuel-per-call", "100000000", "--max-call-time", "600s"],
    );
    assert_contained(
        a,
        dir.path(),
        &["`process` ran out of fuel", "100000000 units", "--fuel-per-call"],
    );
}
