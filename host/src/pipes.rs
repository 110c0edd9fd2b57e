//! Dagster Pipes: when `sluice run` is launched by Dagster (`PipesSubprocessClient` and the
//! other Pipes clients), it reads the Pipes context and reports the run back as Pipes
//! messages: `opened`, one `report_asset_check` per quality gate, a
//! `report_asset_materialization` with row counts and digests, and `closed`.
//!
//! The protocol (version 0.1, as in the `dagster-pipes` package): the environment variables
//! `DAGSTER_PIPES_CONTEXT` and `DAGSTER_PIPES_MESSAGES` each hold base64 of zlib-compressed
//! JSON. The context params are `{"path": FILE}` (a JSON file of the context data) or
//! `{"data": {...}}`; the messages params are `{"path": FILE}` (append one JSON message a
//! line) or `{"stdio" | "buffered_stdio": "stderr" | "stdout"}`.

use std::io::{Read, Write};
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The environment variable holding the encoded context params.
pub const CONTEXT_ENV: &str = "DAGSTER_PIPES_CONTEXT";
/// The environment variable holding the encoded messages params.
pub const MESSAGES_ENV: &str = "DAGSTER_PIPES_MESSAGES";
/// The Pipes protocol version sluice speaks.
pub const PROTOCOL_VERSION: &str = "0.1";

/// Where messages go.
#[derive(Debug)]
enum Channel {
    File(PathBuf),
    Stderr,
    Stdout,
}

/// An open Pipes session: the context Dagster sent and the channel to report on.
#[derive(Debug)]
pub struct Session {
    /// The context data (`asset_keys`, `partition_key`, `run_id`, `extras`, …).
    pub context: Value,
    channel: Channel,
    closed: bool,
}

/// Decode a Pipes param: base64 → zlib → JSON.
pub fn decode_param(var: &str, value: &str) -> Result<Value> {
    let bad = |what: String| {
        Error::usage(format!(
            "{var} is not a Dagster Pipes param ({what}); it should be base64 of zlib-compressed \
             JSON as written by dagster's Pipes clients, or unset when not running under Dagster"
        ))
    };
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(64 << 20)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("not zlib-compressed UTF-8: {e}")))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))
}

/// Encode a Pipes param (the inverse of [`decode_param`]).
pub fn encode_param(value: &Value) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(value.to_string().as_bytes())
        .expect("writing to a Vec cannot fail");
    let compressed = z.finish().expect("writing to a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(compressed)
}

impl Session {
    /// Open a session when `DAGSTER_PIPES_CONTEXT` is set (None otherwise) and send `opened`.
    ///
    /// # Errors
    /// A usage error naming the variable when a param cannot be decoded, the context file
    /// cannot be read, or the messages params name no channel sluice can write.
    pub fn from_env() -> Result<Option<Session>> {
        let Ok(context) = std::env::var(CONTEXT_ENV) else {
            return Ok(None);
        };
        let messages = std::env::var(MESSAGES_ENV).map_err(|_| {
            Error::usage(format!(
                "{CONTEXT_ENV} is set but {MESSAGES_ENV} is not: launch sluice with a Dagster \
                 Pipes client (it sets both), or unset {CONTEXT_ENV}"
            ))
        })?;
        let session = Session::open(
            &decode_param(CONTEXT_ENV, &context)?,
            &decode_param(MESSAGES_ENV, &messages)?,
        )?;
        Ok(Some(session))
    }

    /// Open a session from decoded context and messages params, and send `opened`.
    ///
    /// # Errors
    /// See [`Session::from_env`].
    pub fn open(context_params: &Value, messages_params: &Value) -> Result<Session> {
        let context = if let Some(path) = context_params.get("path").and_then(Value::as_str) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io("read the Dagster Pipes context", path.as_ref(), e))?;
            serde_json::from_str(&text)
                .map_err(|e| Error::usage(format!("the Dagster Pipes context `{path}` is not JSON: {e}")))?
        } else if let Some(data) = context_params.get("data").filter(|d| d.is_object()) {
            data.clone()
        } else {
            return Err(Error::usage(format!(
                "{CONTEXT_ENV} holds {context_params}, expected {{\"path\": FILE}} or {{\"data\": {{…}}}} \
                 (the params of dagster's default context injectors)"
            )));
        };
        let stdio = messages_params
            .get("stdio")
            .or_else(|| messages_params.get("buffered_stdio"))
            .and_then(Value::as_str);
        let channel = if let Some(path) = messages_params.get("path").and_then(Value::as_str) {
            Channel::File(PathBuf::from(path))
        } else if stdio == Some("stderr") {
            Channel::Stderr
        } else if stdio == Some("stdout") {
            Channel::Stdout
        } else {
            return Err(Error::usage(format!(
                "{MESSAGES_ENV} holds {messages_params}, expected {{\"path\": FILE}} or \
                 {{\"stdio\": \"stderr\"|\"stdout\"}} (dagster's default message readers); sluice \
                 cannot write to another channel"
            )));
        };
        let mut s = Session {
            context,
            channel,
            closed: false,
        };
        s.send("opened", json!({ "extras": {} }))?;
        Ok(s)
    }

    /// The partition Dagster is materializing, if any.
    pub fn partition_key(&self) -> Option<&str> {
        self.context.get("partition_key").and_then(Value::as_str)
    }

    /// The Dagster run id.
    pub fn run_id(&self) -> Option<&str> {
        self.context.get("run_id").and_then(Value::as_str)
    }

    /// The asset this step materializes: the only one in the context's `asset_keys`.
    fn asset_key(&self) -> Option<String> {
        match self.context.get("asset_keys").and_then(Value::as_array) {
            Some(keys) if keys.len() == 1 => keys[0].as_str().map(str::to_string),
            Some(keys) if keys.len() > 1 => {
                tracing::warn!(
                    "the Dagster step targets {} assets; sluice reports only for a single-asset step",
                    keys.len()
                );
                None
            }
            _ => None,
        }
    }

    fn send(&mut self, method: &str, params: Value) -> Result<()> {
        let line = format!(
            "{}\n",
            json!({ "__dagster_pipes_version": PROTOCOL_VERSION, "method": method, "params": params })
        );
        match &self.channel {
            Channel::File(path) => {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::io("open the Dagster Pipes messages file", path, e))?;
                f.write_all(line.as_bytes())
                    .and_then(|()| f.flush())
                    .map_err(|e| Error::io("write to the Dagster Pipes messages file", path, e))?;
            }
            Channel::Stderr => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Channel::Stdout => {
                let _ = std::io::stdout().lock().write_all(line.as_bytes());
            }
        }
        Ok(())
    }

    /// Report each quality gate as an asset check (`checks`: the JSON of the run's
    /// [`crate::quality::CheckResult`]s).
    ///
    /// # Errors
    /// An I/O error when the messages channel cannot be written.
    pub fn report_checks(&mut self, checks: &Value) -> Result<()> {
        let Some(asset_key) = self.asset_key() else {
            return Ok(());
        };
        for c in checks.as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("check");
            let severity = if c["severity"] == "warn" { "WARN" } else { "ERROR" };
            let params = json!({
                "asset_key": asset_key,
                "check_name": check_name(name),
                "passed": c["status"] != "fail",
                "severity": severity,
                "metadata": {
                    "gate": { "raw_value": name, "type": "text" },
                    "check": { "raw_value": c["check"], "type": "text" },
                    "expected": { "raw_value": c["expected"], "type": "text" },
                    "observed": { "raw_value": c["observed"], "type": "json" },
                },
            });
            self.send("report_asset_check", params)?;
        }
        Ok(())
    }

    /// Report the materialization of a finished run (`summary`: its JSON summary line).
    ///
    /// # Errors
    /// An I/O error when the messages channel cannot be written.
    pub fn report_materialization(&mut self, summary: &Value) -> Result<()> {
        let Some(asset_key) = self.asset_key() else {
            return Ok(());
        };
        let int = |k: &str| json!({ "raw_value": summary[k], "type": "int" });
        let text = |k: &str| json!({ "raw_value": summary[k], "type": "text" });
        let params = json!({
            "asset_key": asset_key,
            "data_version": summary["root_digest"],
            "metadata": {
                "status": text("status"),
                "rows_in": int("rows_in"),
                "rows_out": int("rows_out"),
                "chunks": int("chunks"),
                "chunks_resumed": int("chunks_resumed"),
                "bytes_out": int("bytes_out"),
                "root_digest": text("root_digest"),
                "action_key": text("action_key"),
                "output": { "raw_value": summary["output"], "type": "path" },
                "elapsed_ms": int("elapsed_ms"),
            },
        });
        self.send("report_asset_materialization", params)
    }

    /// Send `closed`, with the error when the run failed.
    ///
    /// # Errors
    /// An I/O error when the messages channel cannot be written.
    pub fn close(&mut self, error: Option<&Error>) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let params = match error {
            None => json!({}),
            Some(e) => json!({ "exception": {
                "name": format!("sluice.{}", e.category()),
                "message": format!("{e} (exit code {})", e.exit_code() as u8),
                "stack": [],
                "cause": null,
                "context": null,
            }}),
        };
        self.send("closed", params)
    }
}

/// A gate name as a Dagster check name (`[A-Za-z0-9_]+`): `not_null(order_id, line)` →
/// `not_null_order_id_line`.
pub fn check_name(gate: &str) -> String {
    let mut out = String::new();
    for c in gate.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() { "check".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip() {
        let v = json!({"path": "/tmp/x.json"});
        assert_eq!(decode_param("X", &encode_param(&v)).unwrap(), v);
        let e = decode_param("X", "not base64!").unwrap_err().to_string();
        assert!(e.contains("X is not a Dagster Pipes param"), "{e}");
    }

    #[test]
    fn check_names_are_dagster_names() {
        assert_eq!(check_name("not_null(order_id, line)"), "not_null_order_id_line");
        assert_eq!(check_name("orders are fresh"), "orders_are_fresh");
        assert_eq!(check_name("row_count"), "row_count");
        assert_eq!(check_name("(("), "check");
    }

    #[test]
    fn messages_go_to_the_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let msgs = dir.path().join("messages");
        let mut s = Session::open(
            &json!({"data": {"asset_keys": ["orders"], "partition_key": "2026-11-01", "run_id": "r"}}),
            &json!({"path": msgs}),
        )
        .unwrap();
        assert_eq!(s.partition_key(), Some("2026-11-01"));
        s.report_checks(&json!([{"name": "row_count", "check": "row_count", "severity": "warn",
            "status": "fail", "expected": "at least 1", "observed": 0}]))
            .unwrap();
        s.close(None).unwrap();
        s.close(None).unwrap();
        let lines: Vec<Value> = std::fs::read_to_string(&msgs)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let methods: Vec<&str> = lines.iter().map(|l| l["method"].as_str().unwrap()).collect();
        assert_eq!(methods, ["opened", "report_asset_check", "closed"]);
        assert_eq!(lines[1]["params"]["passed"], false);
        assert_eq!(lines[1]["params"]["severity"], "WARN");
        assert_eq!(lines[1]["params"]["asset_key"], "orders");
        assert!(lines.iter().all(|l| l["__dagster_pipes_version"] == "0.1"));
        let e = Session::open(&json!({"data": {}}), &json!({"s3": "b"})).unwrap_err();
        assert!(e.to_string().contains("DAGSTER_PIPES_MESSAGES"), "{e}");
    }
}
