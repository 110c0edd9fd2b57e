//! What each fuzz target checks, shared by the targets (`fuzz_targets/*.rs`) and by the
//! replay test (`tests/all/fuzz_replay.rs`), which runs every seed and every past crash
//! (`regressions/TARGET/*`) through the same checks on stable Rust in CI.
//!
//! Each function returns normally for an input that is accepted or refused cleanly, and
//! panics for a finding.

// Each fuzz target uses one check; the replay test uses them all.
#![allow(dead_code)]

use std::path::Path;

use arrow::array::{Array, RecordBatch};
use sluice_host::source::{InputFormat, Source, SourceOptions};

/// Plugin output: `ipc::decode_stream` must return fully valid batches or an error.
///
/// The expected schema is the stream's own (so mutations reach the batch decoder). Each
/// batch returned is validated again with arrow's full validation and every value is
/// formatted, which would fault on a buffer the decoder let through unchecked.
pub fn decode_output(data: &[u8]) {
    let Ok(schema) = sluice_host::ipc::decode_schema(data.to_vec()) else {
        return;
    };
    let Ok(batches) = sluice_host::ipc::decode_stream(data.to_vec(), &schema) else {
        return;
    };
    for b in &batches {
        check_batch("decode_stream", b);
    }
}

/// Input readers: the first byte picks the format, the rest is the file, written into
/// `scratch`. Reading must give valid batches or an input error, never an uncontained
/// panic. The source runs third-party decoders under `contain::catch`, so a panic inside
/// parquet or arrow becomes an input error naming the file (exit 5), which is what a user
/// sees; such an error must say so and name the file. Panics in our own code, and in the
/// Arrow IPC paths our framing and layout checks guard, are findings.
pub fn source(data: &[u8], scratch: &Path) {
    let Some((&which, file)) = data.split_first() else {
        return;
    };
    let (format, name) = match which % 5 {
        0 => (InputFormat::Parquet, "in.parquet"),
        1 => (InputFormat::ArrowFile, "in.arrow"),
        2 => (InputFormat::ArrowStream, "in.arrows"),
        3 => (InputFormat::Csv, "in.csv"),
        _ => (InputFormat::Ndjson, "in.ndjson"),
    };
    let path = scratch.join(name);
    std::fs::write(&path, file).expect("write the scratch file");
    let opts = SourceOptions {
        format: Some(format),
        batch_rows: 1024,
        ..SourceOptions::default()
    };
    let source = match Source::open(&[path], &opts) {
        Ok(s) => s,
        Err(e) => return no_contained_panic(&e),
    };
    // A valid file may hold billions of rows of nulls in a few bytes; reading a bounded
    // prefix is enough to exercise the decoders and keeps each run short.
    for batch in source.take(256) {
        match batch {
            Ok(b) => check_batch("the source", &b),
            Err(e) => return no_contained_panic(&e),
        }
    }
}

/// The journal parser must accept or refuse, never panic.
pub fn journal(data: &[u8]) {
    let _ = sluice_host::journal::parse(Path::new("journal.jsonl"), data);
}

/// The run record must deserialize or fail; what deserializes must serialize again.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = serde_json::from_slice::<sluice_host::pipeline::Manifest>(data) {
        serde_json::to_vec(&m).expect("a manifest that was read can be written");
    }
}

/// Pipeline specs and partition ranges must load or give a usage error, never panic.
pub fn pipeline_spec(data: &[u8], scratch: &Path) {
    let path = scratch.join("pipeline.toml");
    std::fs::write(&path, data).expect("write the scratch file");
    let _ = sluice_host::spec::LoadedSpec::load(&path);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sluice_host::spec::expand_partitions(text);
    }
}

fn no_contained_panic(e: &sluice_host::Error) {
    let msg = e.to_string();
    if msg.contains("the decoder failed an internal check") {
        assert!(
            msg.contains("scratch") || msg.contains("in."),
            "a contained decoder panic must name the file: {msg}"
        );
        assert!(
            !msg.contains("Arrow IPC"),
            "the Arrow IPC decoder panicked past the framing and layout checks: {msg}"
        );
        assert!(
            matches!(e, sluice_host::Error::Input(_)),
            "a contained decoder panic is bad input (exit 5): {msg}"
        );
    }
}

fn check_batch(who: &str, b: &RecordBatch) {
    let opts = arrow::util::display::FormatOptions::default();
    for col in b.columns() {
        if let Err(e) = col.to_data().validate_full() {
            panic!("{who} returned an invalid {} column: {e}", col.data_type());
        }
        if let Ok(fmt) = arrow::util::display::ArrayFormatter::try_new(col.as_ref(), &opts) {
            for i in 0..col.len().min(4096) {
                let _ = fmt.value(i).to_string();
            }
        }
    }
}
