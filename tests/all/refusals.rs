//! Files that are not sluice plugins, and plugins that break the contract.

use sluice_test_artifacts as art;

use crate::util::*;

fn run_with(plugin: &std::path::Path, dir: &std::path::Path) -> assert_cmd::assert::Assert {
    let input = dir.join("orders.parquet");
    write_parquet(&input, &[orders()]);
    sluice()
        .args(["run", "--input"])
        .arg(&input)
        .arg("--plugin")
        .arg(plugin)
        .arg("--output")
        .arg(dir.join("out"))
        .assert()
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plugin.wasm");
    std::fs::write(&p, "#!/bin/sh\necho hi\n").unwrap();
    run_with(&p, dir.path())
        .code(2)
        .stderr(predicates::str::contains("is not a WebAssembly file"));
    assert!(
        !dir.path().join("out").exists(),
        "nothing is created for a refused plugin"
    );
}

#[test]
fn a_core_module_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("core.wasm");
    // The smallest valid core module: magic + version 1.
    std::fs::write(&p, b"\0asm\x01\0\0\0").unwrap();
    run_with(&p, dir.path())
        .code(2)
        .stderr(predicates::str::contains("core WebAssembly module, not a component"));
}

#[test]
fn a_component_for_another_world_is_refused_naming_what_it_exports() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.wasm");
    // The smallest valid component: magic + component-model layer version. It exports nothing.
    std::fs::write(&p, b"\0asm\x0d\0\x01\0").unwrap();
    run_with(&p, dir.path()).code(2).stderr(predicates::str::contains(
        "does not export `sluice:transform/transform@1.x`; it exports: nothing",
    ));
}

#[test]
fn a_missing_plugin_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    run_with(&dir.path().join("nope.wasm"), dir.path())
        .code(2)
        .stderr(predicates::str::contains("does not exist"));
}

#[test]
fn a_batch_that_breaks_the_declared_schema_fails_with_exit_4_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_with(std::path::Path::new(art::BAD_SCHEMA), dir.path())
        .code(4)
        .stderr(predicates::str::contains("plugin `bad-schema`"))
        .stderr(predicates::str::contains("column `x`"));
    let s = summary(&a.get_output().stdout);
    assert_eq!(s["status"], "failed");
    assert_eq!(s["exit_code"], 4);
    let out = dir.path().join("out");
    assert!(!out.join("_SUCCESS").exists());
    let parts: Vec<_> = std::fs::read_dir(out.join("data"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(parts.is_empty(), "no part file, not even a temporary one: {parts:?}");
    // The failed attempt is recorded with its error, for whoever looks at 3 AM.
    let attempt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_sluice/last_attempt.json")).unwrap()).unwrap();
    assert_eq!(attempt["status"], "failed");
    assert_eq!(attempt["error"]["exit_code"], 4);
    assert_eq!(attempt["chunks_committed"], 0);
}

/// The plugin digest cache (warm start without re-hashing the file) notices a plugin file
/// whose bytes changed even when its size or mtime were kept, and is really consulted.
#[test]
fn the_digest_cache_follows_the_file_not_its_mtime() {
    use sha2::Digest;
    // Small plugins: this test compiles them into its own cache.
    use sluice_test_artifacts::{BAD_SCHEMA, ECHO};
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // A private cache: this test edits its digest entries.
    let rt = sluice_host::Runtime::new(sluice_host::RuntimeOptions {
        cache_dir: Some(cache.clone()),
        ..Default::default()
    })
    .unwrap();
    let sha = |p: &str| {
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
        )
    };
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    let put = |src: &str, dst: &std::path::Path| {
        std::fs::copy(src, dst).unwrap();
        std::fs::File::options()
            .write(true)
            .open(dst)
            .unwrap()
            .set_modified(old)
            .unwrap();
    };
    let p = dir.path().join("p.wasm");
    put(ECHO, &p);
    assert_eq!(rt.load_plugin(&p).unwrap().sha256(), sha(ECHO));
    let entries = || std::fs::read_dir(cache.join("digests")).unwrap().count();
    assert_eq!(entries(), 1, "a settled file's digest is remembered");
    assert_eq!(rt.load_plugin(&p).unwrap().sha256(), sha(ECHO), "warm load");

    // New bytes with the old mtime: the ctime (and here the size) moved, so it is re-hashed.
    put(BAD_SCHEMA, &p);
    let plugin = rt.load_plugin(&p).unwrap();
    assert_eq!(plugin.sha256(), sha(BAD_SCHEMA));
    assert_eq!(plugin.info().name, "bad-schema");
    let pin = sha(ECHO);
    let err = rt
        .load_plugin_pinned(&p, Some(&pin))
        .err()
        .expect("the old pin no longer matches");
    assert!(err.to_string().contains("does not match its pin"), "{err}");

    // A file modified just now is hashed but not remembered (a write within the same
    // timestamp tick could otherwise go unseen).
    let fresh = dir.path().join("fresh.wasm");
    std::fs::copy(ECHO, &fresh).unwrap();
    rt.load_plugin(&fresh).unwrap();
    assert_eq!(entries(), 2, "only p.wasm's two versions are remembered");

    // The cache is consulted: point p.wasm's entry at echo's digest and the warm load
    // reports echo (whose compiled code is cached) without reading the file.
    for e in std::fs::read_dir(cache.join("digests")).unwrap() {
        let e = e.unwrap().path();
        if std::fs::read_to_string(&e).unwrap() == sha(BAD_SCHEMA)["sha256:".len()..] {
            std::fs::write(&e, &sha(ECHO)["sha256:".len()..]).unwrap();
        }
    }
    assert_eq!(rt.load_plugin(&p).unwrap().info().name, "echo");
}
