//! The library API (`sluice_host::embed`) and its Python binding (`host/python`) give the
//! CLI's rows and digests, on their own and inside Apache Spark and Ray Data.
//!
//! The Python tests build the wheel with maturin (dev profile, into the suite's target dir),
//! install it into a venv under the target dir that reuses the system's pyarrow, pyspark
//! and ray (`--system-site-packages`; `tests/setup.sh` installs them), and run the checks in
//! `host/python/tests/`. Each compares with a `sluice run` of the same input and plugins.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use sluice_host::embed::{ChainOptions, ChainRunner};
use sluice_host::pipeline::PluginSpec;
use sluice_test_artifacts as art;

use crate::util::*;

const PREDICATE: &str = "l_discount between 0.05 and 0.07 and l_quantity < 24";

fn python() -> String {
    std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(cmd: &mut Command, what: &str) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start ({e}); run tests/setup.sh first"));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{out}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The filter + derive chain of TPC-H job B1, as (path, config).
fn chain() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        (art::FILTER, vec![("predicate", PREDICATE)]),
        (
            art::DERIVE,
            vec![
                ("name", "revenue"),
                ("expr", "l_extendedprice * l_discount"),
                ("type", "decimal(18,4)"),
            ],
        ),
    ]
}

/// Built once for the Python tests: the venv with the wheel, the input and the CLI's run.
struct Setup {
    python: PathBuf,
    args: String,
    _dir: tempfile::TempDir,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // `target/debug/sluice` → `target`: maturin builds into the suite's target dir, so
        // it reuses the host crates cargo just compiled (cargo releases its lock while
        // tests run).
        let target = Path::new(env!("CARGO_BIN_EXE_sluice")).ancestors().nth(2).unwrap();
        let venv = tmp.join("sluice-pyenv");
        if !venv.join("bin/python").exists() {
            run(
                Command::new(python())
                    .args(["-m", "venv", "--system-site-packages"])
                    .arg(&venv),
                "python3 -m venv",
            );
        }
        let wheels = tmp.join("sluice-wheels");
        let _ = std::fs::remove_dir_all(&wheels);
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        run(
            Command::new("maturin")
                .args(["build", "--profile", "dev", "--manifest-path"])
                .arg(root.join("host/python/Cargo.toml"))
                .arg("--interpreter")
                .arg(venv.join("bin/python"))
                .arg("--out")
                .arg(&wheels)
                .env("CARGO_TARGET_DIR", target),
            "maturin build (pip install maturin)",
        );
        let wheel = std::fs::read_dir(&wheels)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .expect("maturin built no wheel");
        run(
            Command::new(venv.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-deps",
                    "--force-reinstall",
                    "--no-index",
                ])
                .arg(&wheel),
            "pip install the wheel",
        );

        let dir = tempfile::tempdir().unwrap();
        run(
            Command::new("tpchgen-cli")
                .args(["parquet", "-s", "0.01", "--tables", "lineitem", "--output-dir"])
                .arg(dir.path()),
            "tpchgen-cli (pip install tpchgen-cli)",
        );
        let input = dir.path().join("lineitem.parquet");
        let cli_out = dir.path().join("cli");
        let mut cmd = sluice();
        // One chunk: its digests are what one `transform` of the whole input must give.
        // Data digests: the binding has no files, so only these compare with it.
        cmd.args(["run", "--chunk-rows", "100000000", "--input-digest", "data", "--input"])
            .arg(&input);
        for (path, config) in chain() {
            cmd.args(["--plugin", path]);
            for (k, v) in config {
                cmd.args(["--config", &format!("{k}={v}")]);
            }
        }
        cmd.arg("--output").arg(&cli_out).assert().success();

        let plugins: Vec<serde_json::Value> = chain()
            .into_iter()
            .map(|(p, c)| {
                let config: serde_json::Map<String, serde_json::Value> =
                    c.into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
                serde_json::json!([p, config])
            })
            .collect();
        let args = serde_json::json!({
            "plugins": plugins,
            "input": input,
            "cli_output": cli_out,
            "sluice": env!("CARGO_BIN_EXE_sluice"),
            "scratch": dir.path().join("scratch"),
            "hostile_plugin": art::HOSTILE,
            "dedupe_plugin": art::DEDUPE,
        });
        Setup {
            python: venv.join("bin/python"),
            args: args.to_string(),
            _dir: dir,
        }
    })
}

/// Run one check script of `host/python/tests` in the venv; one at a time, since Spark and
/// Ray each want both cores.
fn check(script: &str) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/python/tests");
    let out = run(
        Command::new(&s.python)
            .arg(tests.join(script))
            .arg(&s.args)
            .current_dir(&tests)
            .env("SLUICE_CACHE_DIR", cache_dir()),
        script,
    );
    println!("{out}");
    assert!(out.contains("all checks passed"), "{script} did not finish:\n{out}");
}

#[test]
fn the_python_binding_gives_the_clis_rows_digests_and_errors() {
    check("check_binding.py");
}

#[test]
fn spark_map_in_arrow_gives_the_clis_rows() {
    check("check_spark.py");
}

#[test]
fn ray_map_batches_gives_the_clis_rows() {
    check("check_ray.py");
}

#[test]
fn the_library_api_gives_the_clis_chunk_digests() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.parquet");
    let batch = orders();
    write_parquet(&input, std::slice::from_ref(&batch));
    let out = dir.path().join("out");
    sluice()
        .args(["run", "--input-digest", "data", "--input"])
        .arg(&input)
        .args(["--plugin", art::FILTER, "--config", "predicate=qty >= 10"])
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap();

    let plugins = [PluginSpec::new(
        art::FILTER,
        vec![("predicate".into(), "qty >= 10".into())],
    )];
    let opts = ChainOptions {
        cache_dir: Some(cache_dir()),
        ..ChainOptions::default()
    };
    let mut runner = ChainRunner::new(&plugins, opts).unwrap();
    assert!(!runner.is_stateful());
    // Parquet round trip: the batch the CLI read, with the schema it read.
    let read = read_parquet(&input);
    let r = runner.transform(read.clone()).unwrap();
    let chunk = &manifest["chunks"][0];
    assert_eq!(r.input_digest, chunk["input_digest"].as_str().unwrap());
    assert_eq!(r.data_digest, chunk["data_digest"].as_str().unwrap());
    assert_eq!(r.rows_in, manifest["rows_in"].as_u64().unwrap());
    assert_eq!(r.rows_out, manifest["rows_out"].as_u64().unwrap());
    assert_eq!(r.fuel.len(), 1);
    assert!(r.fuel[0] > 0);
    assert_eq!(&r.schema, runner.output_schema(&read.schema()).as_ref().unwrap());
    assert!(runner.finish().unwrap().is_none(), "a stateless chain flushes nothing");

    // Errors keep the CLI's category.
    let bad = [PluginSpec::new(
        art::FILTER,
        vec![("predicate".into(), "nope > 1".into())],
    )];
    let mut runner = ChainRunner::new(&bad, ChainOptions::default()).unwrap();
    let e = runner.transform(read).unwrap_err();
    assert_eq!(e.exit_code() as u8, 2, "{e}");
    assert!(ChainRunner::new(&[], ChainOptions::default()).is_err());
}
