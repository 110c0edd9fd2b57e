//! OpenLineage: `--lineage-file` and `OPENLINEAGE_URL` get START then COMPLETE or FAIL,
//! whose datasets, statistics and digests agree with the run record, and which the
//! official OpenLineage Python client accepts (tests/lineage/validate.py).
//!
//! Needs the `openlineage-python` and `jsonschema` Python packages (tests/requirements.txt;
//! the README's test command installs them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sluice_test_artifacts as art;

use crate::util::*;

fn python() -> String {
    std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A date-partitioned spec over tests/data/orders.csv: filter, derive `revenue`, mask the
/// e-mail (declared with `masks`), each declaring it keeps the other columns (`keeps`),
/// plus `extra` (checks).
fn pipeline(dir: &Path, extra: &str) -> PathBuf {
    let orders = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/orders.csv");
    for day in ["2026-11-01", "2026-11-02"] {
        let landing = dir.join("landing").join(day);
        std::fs::create_dir_all(&landing).unwrap();
        std::fs::copy(&orders, landing.join("orders.csv")).unwrap();
    }
    let spec = dir.join("pipeline.toml");
    std::fs::write(
        &spec,
        format!(
            "version = 1\nname = \"orders-daily\"\n[partition]\nkey = \"date\"\n\
             [input]\npaths = [\"landing/{{date}}/*.csv\"]\n\
             [[plugins]]\npath = {:?}\nconfig = {{ predicate = \"quantity < 24\" }}\nkeeps = [\"*\"]\n\
             [[plugins]]\npath = {:?}\nconfig = {{ name = \"revenue\", expr = \"unit_price * quantity\" }}\nkeeps = [\"*\"]\n\
             [[plugins]]\npath = {:?}\nconfig = {{ columns = \"customer_email\" }}\nmasks = [\"customer_email\"]\nkeeps = [\"*\"]\n\
             [output]\npath = \"out/{{date}}\"\n{extra}",
            art::FILTER,
            art::DERIVE,
            art::MASK
        ),
    )
    .unwrap();
    spec
}

fn events(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
        .collect()
}

fn manifest(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("_sluice/manifest.json")).unwrap()).unwrap()
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().to_string_lossy().into_owned()
}

/// Run tests/lineage/validate.py on an events file: (success, stdout, stderr).
fn validate(file: &Path, spec: Option<&Path>) -> (bool, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/lineage/validate.py");
    let mut c = Command::new(python());
    c.arg(script)
        .arg("--self-test")
        .arg(file)
        .env_remove("OPENLINEAGE_SPEC");
    if let Some(s) = spec {
        c.env("OPENLINEAGE_SPEC", s);
    }
    let o = c
        .output()
        .expect("python3 with openlineage-python is needed: pip install -r tests/requirements.txt");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn assert_valid(file: &Path) {
    let (ok, out, err) = validate(file, None);
    assert!(ok, "the OpenLineage client rejects the events:\n{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(report["rejected_broken_copies"].as_u64().unwrap() > 10, "{report}");
}

#[test]
fn a_run_reports_start_and_complete_with_the_records_datasets_statistics_and_digests() {
    let dir = tempfile::tempdir().unwrap();
    let spec = pipeline(dir.path(), "");
    let file = dir.path().join("lineage.ndjson");
    sluice()
        .env_remove("OPENLINEAGE_URL")
        .env_remove("OPENLINEAGE_NAMESPACE")
        .args(["run", "--allow-unpinned", "--partition", "2026-11-01", "--lineage-file"])
        .arg(&file)
        .arg(&spec)
        .assert()
        .success();
    let out = dir.path().join("out/2026-11-01");
    let m = manifest(&out);
    let ev = events(&file);
    assert_eq!(ev.len(), 2, "{ev:?}");
    let (start, done) = (&ev[0], &ev[1]);
    assert_eq!(
        (start["eventType"].as_str(), done["eventType"].as_str()),
        (Some("START"), Some("COMPLETE"))
    );
    assert_eq!(start["run"]["runId"], done["run"]["runId"]);
    for e in &ev {
        assert_eq!(e["job"]["namespace"], "sluice");
        assert_eq!(e["job"]["name"], "orders-daily");
        assert_eq!(e["inputs"].as_array().unwrap().len(), 1);
        assert_eq!(e["inputs"][0]["namespace"], "file");
        assert_eq!(
            e["inputs"][0]["name"].as_str().unwrap(),
            canonical(&dir.path().join("landing/2026-11-01/orders.csv"))
        );
        assert_eq!(e["outputs"][0]["namespace"], "file");
        assert_eq!(e["outputs"][0]["name"].as_str().unwrap(), canonical(&out));
        assert_eq!(e["run"]["facets"]["sluice"]["action_key"], m["action_key"]);
        // The logical date is the nominal time, not the event time.
        assert_eq!(
            e["run"]["facets"]["nominalTime"]["nominalStartTime"],
            "2026-11-01T00:00:00Z"
        );
    }
    // Schemas: the input file's columns, and the output's (with the derived column).
    let names = |facet: &Value| -> Vec<String> {
        facet["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let in_cols = names(&done["inputs"][0]["facets"]["schema"]);
    assert_eq!(in_cols[0], "order_id");
    assert!(!in_cols.contains(&"revenue".to_string()));
    let out_cols = names(&done["outputs"][0]["facets"]["schema"]);
    assert_eq!(out_cols.last().unwrap(), "revenue");
    let fingerprint: Vec<String> = m["output_schema"]
        .as_str()
        .unwrap()
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|s| s.split(':').next().unwrap().trim_matches('"').to_string())
        .collect();
    assert_eq!(
        out_cols, fingerprint,
        "the schema facet has the record's output columns"
    );
    // Output statistics: the record's rows, bytes and files.
    let stats = &done["outputs"][0]["outputFacets"]["outputStatistics"];
    let chunks = m["chunks"].as_array().unwrap();
    assert_eq!(stats["rowCount"], m["rows_out"]);
    assert!(m["rows_out"].as_u64().unwrap() < 2000, "the filter dropped rows");
    assert_eq!(stats["fileCount"].as_u64().unwrap(), chunks.len() as u64);
    let bytes: u64 = chunks.iter().map(|c| c["bytes"].as_u64().unwrap()).sum();
    assert_eq!(stats["size"].as_u64().unwrap(), bytes);
    assert!(
        start["outputs"][0].get("outputFacets").is_none(),
        "no statistics before the run"
    );
    // The sluice facet: the record's digests.
    let facet = &done["run"]["facets"]["sluice"];
    assert_eq!(facet["status"], "ok");
    assert_eq!(facet["exit_code"], 0);
    assert_eq!(facet["root_digest"], m["root_digest"]);
    assert_eq!(facet["output_schema_digest"], m["output_schema_digest"]);
    let shas: Vec<&Value> = m["plugins"].as_array().unwrap().iter().map(|p| &p["sha256"]).collect();
    let facet_shas: Vec<&Value> = facet["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["sha256"])
        .collect();
    assert_eq!(facet_shas, shas);
    assert_eq!(facet["inputs"][0]["digest"], m["inputs"][0]["digest"]);
    assert_eq!(start["run"]["facets"]["sluice"]["status"], "running");
    // Column lineage: carried columns are IDENTITY, the declared mask is a masking
    // transformation, and the derived column is left out rather than guessed.
    let cl = &done["outputs"][0]["facets"]["columnLineage"]["fields"];
    let t = |col: &str| cl[col]["inputFields"][0]["transformations"][0].clone();
    assert_eq!(cl["order_id"]["inputFields"][0]["field"], "order_id");
    assert_eq!(t("order_id")["subtype"], "IDENTITY");
    assert_eq!(t("customer_email")["subtype"], "TRANSFORMATION");
    assert_eq!(t("customer_email")["masking"], true);
    assert!(cl.get("revenue").is_none(), "{cl}");
    assert_valid(&file);

    // A rerun finds the job complete: no work, no new events (the run that did the work
    // has the same run id and already reported).
    sluice()
        .env_remove("OPENLINEAGE_URL")
        .args(["run", "--allow-unpinned", "--partition", "2026-11-01", "--lineage-file"])
        .arg(&file)
        .arg(&spec)
        .assert()
        .success();
    assert_eq!(events(&file).len(), 2);

    // The same job forced to run again (--overwrite over a finished run of another job is
    // not needed: backfill --reprocess all) reports under the same run id; another
    // partition is another run.
    sluice()
        .env_remove("OPENLINEAGE_URL")
        .args([
            "backfill",
            "--allow-unpinned",
            "--partitions",
            "2026-11-01..2026-11-02",
            "--reprocess",
            "all",
        ])
        .arg("--lineage-file")
        .arg(&file)
        .arg(&spec)
        .assert()
        .success();
    let ev = events(&file);
    assert_eq!(ev.len(), 6, "{ev:?}");
    let kinds: Vec<&str> = ev[2..].iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["START", "COMPLETE", "START", "COMPLETE"]);
    assert_eq!(
        ev[2]["run"]["runId"], ev[0]["run"]["runId"],
        "same job, same output: same run"
    );
    assert_ne!(ev[4]["run"]["runId"], ev[0]["run"]["runId"]);
    assert_eq!(ev[4]["run"]["facets"]["sluice"]["partition"], "2026-11-02");
    assert_valid(&file);
}

#[test]
fn a_failed_gate_reports_start_and_fail_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = pipeline(dir.path(), "[[checks]]\ncheck = \"row_count\"\nmax = 10\n");
    let file = dir.path().join("lineage.ndjson");
    sluice()
        .env_remove("OPENLINEAGE_URL")
        .args(["run", "--allow-unpinned", "--partition", "2026-11-01", "--lineage-file"])
        .arg(&file)
        .arg(&spec)
        .assert()
        .code(3);
    let ev = events(&file);
    let kinds: Vec<&str> = ev.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["START", "FAIL"]);
    let fail = &ev[1];
    assert_eq!(fail["run"]["runId"], ev[0]["run"]["runId"]);
    let err = &fail["run"]["facets"]["errorMessage"];
    assert_eq!(err["programmingLanguage"], "rust");
    assert!(
        err["message"].as_str().unwrap().contains("quality gates failed"),
        "{err}"
    );
    let facet = &fail["run"]["facets"]["sluice"];
    assert_eq!(facet["status"], "failed_quality");
    assert_eq!(facet["exit_code"], 3);
    let m = manifest(&dir.path().join("out/2026-11-01"));
    assert_eq!(facet["root_digest"], m["root_digest"]);
    assert_eq!(facet["checks"][0]["status"], "fail", "{facet}");
    assert!(
        fail["outputs"][0].get("outputFacets").is_none(),
        "nothing was published"
    );
    assert_valid(&file);

    // A failure before the chain opens (a plugin that is not there) still gets START + FAIL.
    let missing = dir.path().join("lineage-missing.ndjson");
    sluice()
        .env_remove("OPENLINEAGE_URL")
        .args(["run", "--input"])
        .arg(dir.path().join("landing/2026-11-01/orders.csv"))
        .args(["--plugin", "/nonexistent/plugin.wasm", "--output"])
        .arg(dir.path().join("out-missing"))
        .arg("--lineage-file")
        .arg(&missing)
        .assert()
        .code(2);
    let ev = events(&missing);
    let kinds: Vec<&str> = ev.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["START", "FAIL"]);
    assert_eq!(
        ev[1]["job"]["name"], "out-missing",
        "no spec: the output directory names the job"
    );
    assert_eq!(ev[1]["run"]["facets"]["sluice"]["exit_code"], 2);
    assert_valid(&missing);
}

#[test]
fn an_unwritable_lineage_file_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let spec = pipeline(dir.path(), "");
    sluice()
        .env_remove("OPENLINEAGE_URL")
        .args(["run", "--allow-unpinned", "--partition", "2026-11-01", "--lineage-file"])
        .arg(dir.path().join("no/such/dir/lineage.ndjson"))
        .arg(&spec)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--lineage-file"))
        .stderr(predicates::str::contains("no/such/dir/lineage.ndjson"));
    assert!(!dir.path().join("out/2026-11-01").exists(), "nothing ran");
}

/// One HTTP request as the test server saw it.
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A one-thread HTTP server on 127.0.0.1 that answers `200` to `n` requests and sends each
/// to the returned channel.
fn server(n: usize) -> (String, std::sync::mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .expect("the client sends a content-length");
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            let _ = tx.send(Request {
                line: line.trim_end().to_string(),
                headers,
                body,
            });
        }
    });
    (url, rx)
}

#[test]
fn events_are_posted_to_openlineage_url_with_the_api_key_and_a_dead_server_does_not_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = pipeline(dir.path(), "");
    let (url, rx) = server(2);
    let key = "ol-key-5f3a9c";
    let a = sluice()
        .env("OPENLINEAGE_URL", &url)
        .env("OPENLINEAGE_API_KEY", key)
        .env("OPENLINEAGE_NAMESPACE", "analytics")
        .args(["--log", "debug", "run", "--allow-unpinned", "--partition", "2026-11-01"])
        .arg(&spec)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(!stderr.contains(key), "the API key is never logged:\n{stderr}");
    // sluice waits for each response, so both requests are in before it exits.
    let reqs: Vec<Request> = rx.try_iter().collect();
    assert_eq!(reqs.len(), 2);
    let file = dir.path().join("posted.ndjson");
    let mut lines = String::new();
    for (r, kind) in reqs.iter().zip(["START", "COMPLETE"]) {
        assert_eq!(r.line, "POST /api/v1/lineage HTTP/1.1");
        let header = |name: &str| r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(header("authorization"), Some(format!("Bearer {key}").as_str()));
        assert_eq!(header("content-type"), Some("application/json"));
        let e: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(e["eventType"], kind);
        assert_eq!(e["job"]["namespace"], "analytics");
        lines.push_str(&String::from_utf8_lossy(&r.body));
        lines.push('\n');
    }
    std::fs::write(&file, lines).unwrap();
    assert_valid(&file);

    // Nothing listens on port 1: the run succeeds and warns, naming the URL without its
    // password.
    let a = sluice()
        .env("OPENLINEAGE_URL", "http://lineage:pw-77e1@127.0.0.1:1")
        .args(["run", "--allow-unpinned", "--partition", "2026-11-02"])
        .arg(&spec)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        stderr.contains("could not send the OpenLineage") && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-77e1"), "{stderr}");
    assert!(dir.path().join("out/2026-11-02/_SUCCESS").exists());
    // Not a URL: a usage error before any work.
    sluice()
        .env("OPENLINEAGE_URL", "marquez:5000")
        .args(["run", "--allow-unpinned", "--partition", "2026-11-02"])
        .arg(&spec)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("OPENLINEAGE_URL"));
}

#[test]
fn the_validator_rejects_broken_events_and_uses_openlineage_json_when_given() {
    let dir = tempfile::tempdir().unwrap();
    let spec = pipeline(dir.path(), "");
    let file = dir.path().join("lineage.ndjson");
    sluice()
        .env_remove("OPENLINEAGE_URL")
        .args(["run", "--allow-unpinned", "--partition", "2026-11-01", "--lineage-file"])
        .arg(&file)
        .arg(&spec)
        .assert()
        .success();
    // A misspelled field is rejected, naming it.
    let text = std::fs::read_to_string(&file).unwrap();
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, text.replacen("\"rowCount\"", "\"rowcount\"", 1)).unwrap();
    let (ok, _, err) = validate(&bad, None);
    assert!(!ok && err.contains("rowcount"), "{err}");
    std::fs::write(
        &bad,
        text.replacen("\"eventType\":\"START\"", "\"eventType\":\"BEGIN\"", 1),
    )
    .unwrap();
    let (ok, _, err) = validate(&bad, None);
    assert!(!ok && err.contains("BEGIN"), "{err}");
    // With OPENLINEAGE_SPEC the events are also checked by jsonschema against that file.
    // The official file is not available here, so this only proves the path is taken: a
    // stand-in schema that requires a field sluice does not send must fail the events.
    let stand_in = dir.path().join("OpenLineage.json");
    std::fs::write(
        &stand_in,
        r##"{"$schema": "https://json-schema.org/draft/2020-12/schema",
            "oneOf": [{"$ref": "#/$defs/RunEvent"}],
            "$defs": {"RunEvent": {"type": "object", "required": ["eventTime", "notSentBySluice"]}}}"##,
    )
    .unwrap();
    let (ok, _, err) = validate(&file, Some(&stand_in));
    assert!(
        !ok && err.contains("OpenLineage.json") && err.contains("notSentBySluice"),
        "{err}"
    );
    std::fs::write(
        &stand_in,
        r##"{"$schema": "https://json-schema.org/draft/2020-12/schema",
            "oneOf": [{"$ref": "#/$defs/RunEvent"}],
            "$defs": {"RunEvent": {"type": "object", "required": ["eventTime", "run", "job"],
              "properties": {"eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
                             "eventTime": {"type": "string", "format": "date-time"}}}}}"##,
    )
    .unwrap();
    let (ok, out, err) = validate(&file, Some(&stand_in));
    assert!(ok, "{err}");
    assert!(out.contains("\"openlineage_spec\": true"), "{out}");
}

/// Without any spec declaration, a chain of plugins with column plans (ABI 1.1) still gets
/// column lineage: every column the plans pass through is `IDENTITY`; a column a plugin
/// computes (`revenue`, the masked e-mail) is left out, since nothing says what it is.
#[test]
fn column_plans_give_lineage_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let orders = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/orders.csv");
    let events_file = dir.path().join("events.ndjson");
    sluice()
        .args(["run", "--input"])
        .arg(&orders)
        .args(["--plugin", art::FILTER, "--config", "predicate=quantity < 24"])
        .args([
            "--plugin",
            art::DERIVE,
            "--config",
            "name=revenue",
            "--config",
            "expr=unit_price * quantity",
        ])
        .args(["--plugin", art::MASK, "--config", "columns=customer_email"])
        .arg("--lineage-file")
        .arg(&events_file)
        .arg("--output")
        .arg(dir.path().join("out"))
        .assert()
        .success();
    let ev = events(&events_file);
    let done = ev
        .iter()
        .find(|e| e["eventType"] == "COMPLETE")
        .expect("a COMPLETE event");
    let fields = &done["outputs"][0]["facets"]["columnLineage"]["fields"];
    let t = |c: &str| fields[c]["inputFields"][0]["transformations"][0]["subtype"].clone();
    assert_eq!(t("quantity"), "IDENTITY", "{fields}");
    assert_eq!(t("unit_price"), "IDENTITY", "{fields}");
    assert!(
        fields.get("revenue").is_none() && fields.get("customer_email").is_none(),
        "{fields}"
    );
    assert_eq!(fields["quantity"]["inputFields"][0]["field"], "quantity");
    assert_valid(&events_file);
}
