//! Every fuzz seed and every input that once crashed a fuzz target (`host/fuzz/seeds/` and
//! `host/fuzz/regressions/`) still passes the fuzz checks. The checks are the fuzz
//! targets' own (`host/fuzz/checks.rs`), run here on stable Rust without libFuzzer.

use std::path::{Path, PathBuf};

#[path = "../../host/fuzz/checks.rs"]
mod checks;

/// Run `check` on every file of `host/fuzz/{seeds,regressions}/TARGET`; return how many.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["seeds", "regressions"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d).join(target)).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(r.is_ok(), "{target}: `{}` fails the fuzz check", f.display());
    }
    files.len()
}

#[test]
fn decode_output() {
    assert!(replay("decode_output", checks::decode_output) >= 4);
}

#[test]
fn source() {
    let scratch = tempfile::tempdir().unwrap();
    assert!(replay("source", |d| checks::source(d, scratch.path())) >= 14);
}

#[test]
fn journal() {
    assert!(replay("journal", checks::journal) >= 2);
}

#[test]
fn manifest() {
    assert!(replay("manifest", checks::manifest) >= 2);
}

#[test]
fn pipeline_spec() {
    let scratch = tempfile::tempdir().unwrap();
    assert!(replay("pipeline_spec", |d| checks::pipeline_spec(d, scratch.path())) >= 2);
}

/// The seeds are valid data: the fuzzer starts from inputs that reach deep into the
/// decoders, not from ones refused at the first byte.
#[test]
fn seeds_are_accepted() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for e in std::fs::read_dir(seeds.join("decode_output")).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let schema = sluice_host::ipc::decode_schema(data.clone()).unwrap();
        sluice_host::ipc::decode_stream(data, &schema).unwrap();
    }
    let scratch = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(seeds.join("source")).unwrap() {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if data.len() <= 1 {
            continue;
        }
        let formats = ["parquet", "ipc", "arrows", "csv", "ndjson"];
        let file = scratch.path().join("seed");
        std::fs::write(&file, &data[1..]).unwrap();
        let opts = sluice_host::source::SourceOptions {
            format: Some(formats[data[0] as usize % 5].parse().unwrap()),
            ..Default::default()
        };
        let source = sluice_host::source::Source::open(&[file], &opts)
            .unwrap_or_else(|e| panic!("seed `{}`: {e}", path.display()));
        for b in source {
            b.unwrap_or_else(|e| panic!("seed `{}`: {e}", path.display()));
        }
    }
    for name in ["one-chunk.jsonl", "stateful.jsonl"] {
        let data = std::fs::read(seeds.join("journal").join(name)).unwrap();
        sluice_host::journal::parse(Path::new(name), &data).unwrap();
    }
    for name in ["ipc.json", "stateful.json"] {
        let data = std::fs::read(seeds.join("manifest").join(name)).unwrap();
        serde_json::from_slice::<sluice_host::pipeline::Manifest>(&data).unwrap();
    }
}
