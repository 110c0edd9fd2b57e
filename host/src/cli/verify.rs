//! `sluice verify OUT`: re-hash a finished run's files against its record.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::digest;
use crate::error::{Error, Result};
use crate::journal;
use crate::pipeline::{Manifest, root_digest};

/// Arguments of `sluice verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The output directory of a finished `sluice run`, or of a distributed job with a
    /// record from `sluice combine`.
    pub output: PathBuf,
}

/// Run `sluice verify`: print one line per problem and a JSON summary; fail when any.
pub fn execute(args: &VerifyArgs) -> Result<()> {
    let problems = verify(&args.output)?;
    let ok = problems.is_empty();
    for p in &problems {
        eprintln!("mismatch: {p}");
    }
    if ok {
        println!("{}", serde_json::json!({ "status": "ok", "output": args.output }));
        tracing::info!(output = %args.output.display(), "every file matches the run record");
        Ok(())
    } else {
        Err(Error::input(format!(
            "`{}` does not match its run record: {} problem(s), first: {}",
            args.output.display(),
            problems.len(),
            problems[0]
        )))
    }
}

/// Check a run directory; returns every problem found (empty when all is well).
pub fn verify(root: &Path) -> Result<Vec<String>> {
    let mpath = root.join("_sluice").join("manifest.json");
    let bytes = std::fs::read(&mpath).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::usage(format!(
            "`{}` has no run record (`_sluice/manifest.json`); it is not a finished sluice run",
            root.display()
        )),
        _ => Error::io("read", &mpath, e),
    })?;
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && crate::distributed::is_distributed(&json)
    {
        return Ok(match serde_json::from_value(json) {
            Ok(record) => crate::distributed::verify(root, &record),
            Err(e) => vec![format!(
                "`_sluice/manifest.json` is not a valid distributed run record: {e}"
            )],
        });
    }
    let mut problems = Vec::new();
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => return Ok(vec![format!("`_sluice/manifest.json` is not a valid run record: {e}")]),
    };
    if manifest.status == "failed_quality" {
        // Not damage: the run was never published. Say why rather than what is missing.
        let failed: Vec<&str> = manifest
            .checks
            .iter()
            .filter(|c| c.failed() && c.severity == crate::quality::Severity::Error)
            .map(|c| c.name.as_str())
            .collect();
        problems.push(format!(
            "the run failed its quality gates ({}), so it was never published (no `_SUCCESS`); fix the data or the gate and rerun it",
            failed.join(", ")
        ));
    } else if !root.join("_SUCCESS").exists() {
        problems.push("`_SUCCESS` is missing".to_string());
    }
    // The journal is the durable source of truth; the manifest must repeat it exactly.
    let jpath = root.join("_sluice").join("journal.jsonl");
    match journal::read(&jpath) {
        Ok(j) => {
            if j.chunks != manifest.chunks {
                problems.push("`_sluice/manifest.json` lists other chunks than `_sluice/journal.jsonl`".into());
            }
            if j.last_digest != manifest.journal_head {
                problems.push("`_sluice/journal.jsonl` does not end where the run record says".into());
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    if root_digest(&manifest.chunks) != manifest.root_digest {
        problems.push("the run record's root digest does not match its chunks".into());
    }
    let mut listed = BTreeSet::new();
    for c in &manifest.chunks {
        listed.insert(c.file.clone());
        let path = root.join(&c.file);
        if !path.exists() {
            problems.push(format!("chunk {}: `{}` is missing", c.chunk, c.file));
            continue;
        }
        let got = digest::blake3_file(&path)?;
        if got != c.output_digest {
            problems.push(format!(
                "chunk {}: `{}` changed (digest {got}, recorded {})",
                c.chunk, c.file, c.output_digest
            ));
        }
        if let Some(state) = &c.state {
            let spath = root
                .join("_sluice")
                .join("state")
                .join(state.trim_start_matches("blake3:"));
            match std::fs::read(&spath) {
                Ok(b) if digest::blake3_bytes(&b) == *state => {}
                Ok(_) => problems.push(format!("chunk {}: plugin state `{}` changed", c.chunk, spath.display())),
                Err(_) => problems.push(format!(
                    "chunk {}: plugin state `{}` is missing",
                    c.chunk,
                    spath.display()
                )),
            }
        }
    }
    let data = root.join("data");
    if let Ok(rd) = std::fs::read_dir(&data) {
        let mut extra: Vec<String> = rd
            .flatten()
            .map(|e| format!("data/{}", e.file_name().to_string_lossy()))
            .filter(|f| !listed.contains(f))
            .collect();
        extra.sort();
        for f in extra {
            problems.push(format!("`{f}` is not part of the run"));
        }
    }
    Ok(problems)
}
