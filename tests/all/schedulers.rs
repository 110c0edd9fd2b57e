//! What schedulers rely on: JSON logs, one JSON summary line last on stdout, no terminal
//! control characters off a terminal (and a progress line on one), the example Airflow DAG.

use std::path::Path;
use std::process::Command;

use sluice_test_artifacts as art;

use crate::util::*;

fn input(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("orders.parquet");
    write_parquet(&p, &[orders(), orders()]);
    p
}

#[test]
fn json_logs_are_one_object_a_line_and_the_summary_is_the_last_stdout_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let o = sluice()
        .args(["--log-format", "json", "run", "--chunk-rows", "7", "--input"])
        .arg(&input)
        .args(["--plugin", art::PASSTHROUGH, "--output"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "the run logs something");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{v}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 1, "stdout holds only the summary: {stdout}");
    let s = summary(&o.stdout);
    assert_eq!(
        (s["status"].as_str(), s["rows_out"].as_u64(), s["chunks"].as_u64()),
        (Some("ok"), Some(20), Some(3))
    );
    // A failure also ends with one summary line, with its exit code.
    let o = sluice()
        .args(["--log-format", "json", "run", "--input"])
        .arg(dir.path().join("missing.parquet"))
        .arg("--output")
        .arg(dir.path().join("out2"))
        .output()
        .unwrap();
    let s = summary(&o.stdout);
    assert_eq!(s["exit_code"].as_i64(), o.status.code().map(i64::from));
    assert_eq!(s["status"], "failed");
    for l in String::from_utf8_lossy(&o.stderr).lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}"));
    }
}

#[test]
fn a_progress_line_is_drawn_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    // Off a terminal (as under a scheduler): no progress line and no escape codes at all.
    let o = sluice()
        .args(["run", "--chunk-rows", "7", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("plain"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("rows in ·"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no escape codes off a terminal: {stderr:?}");
    // On a terminal (util-linux `script` gives the run a pseudo-terminal).
    let cmd = format!(
        "{} run --chunk-rows 7 --input {} --output {}",
        env!("CARGO_BIN_EXE_sluice"),
        input.display(),
        dir.path().join("tty").display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("SLUICE_CACHE_DIR", cache_dir())
        .env_remove("SLUICE_LOG_FORMAT")
        .output()
        .expect("`script` (util-linux) runs the command on a pseudo-terminal");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(
        seen.contains("rows in ·") && seen.contains("3 chunks, 20 rows out"),
        "{seen:?}"
    );
}

#[test]
fn the_example_airflow_dag_is_valid_python_and_uses_real_flags() {
    let dag = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/airflow/sluice_orders_daily.py");
    let dir = tempfile::tempdir().unwrap();
    let python = std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let o = Command::new(python)
        .args([
            "-c",
            "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])",
        ])
        .arg(&dag)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&dag).unwrap();
    let help = sluice().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--partition", "--run-id"] {
        assert!(text.contains(&format!("\"{flag}\"")), "the DAG passes {flag}");
        assert!(help.contains(flag), "sluice run takes {flag}");
    }
    assert!(text.contains("\"--log-format\", \"json\""));
}
