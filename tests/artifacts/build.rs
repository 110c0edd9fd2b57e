//! Builds every plugin (examples and test plugins) to `wasm32-wasip2` so tests and
//! benchmarks always run the `.wasm` that matches the source, never a stale file.
//!
//! The nested cargo uses its own target directory (`target/wasm-plugins`) so it does not
//! wait on the lock the outer build holds. Paths are exported as constants in
//! `$OUT_DIR/plugins.rs`.

use std::path::PathBuf;
use std::process::Command;

/// (package, wasm file stem) of every plugin the suite uses.
const PLUGINS: &[(&str, &str)] = &[
    ("passthrough", "passthrough"),
    ("filter", "filter"),
    ("derive", "derive"),
    ("select", "select"),
    ("mask", "mask"),
    ("dedupe", "dedupe"),
    ("echo", "echo"),
    ("bad-schema", "bad_schema"),
    ("bad-plan", "bad_plan"),
    ("hostile", "hostile"),
    ("hostile-import", "hostile_import"),
    ("leaky", "leaky"),
];

fn main() {
    // This crate lives in `tests/artifacts`; the workspace root is two levels up.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../..")
        .canonicalize()
        .unwrap();
    for dir in ["plugins", "sdk", "wit", "tests/plugins"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed=Cargo.lock");
    let target_dir = root.join("target").join("wasm-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"])
        .arg("--target-dir")
        .arg(&target_dir);
    for (pkg, _) in PLUGINS {
        cmd.args(["-p", pkg]);
    }
    // The outer build's flags are for the host, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", "-C target-feature=+simd128");
    let status = cmd.status().expect("failed to run cargo for the wasm plugins");
    if !status.success() {
        panic!("building the wasm plugins failed; is the target installed? run `rustup target add wasm32-wasip2`");
    }
    let out_dir = target_dir.join("wasm32-wasip2").join("plugin");
    let mut consts = String::new();
    for (pkg, stem) in PLUGINS {
        let path = out_dir.join(format!("{stem}.wasm"));
        assert!(
            path.exists(),
            "plugin `{pkg}` was built but `{}` is missing",
            path.display()
        );
        let name = pkg.to_uppercase().replace('-', "_");
        consts.push_str(&format!(
            "/// Path of the `{pkg}` plugin.\npub const {name}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    build_c_plugins(&root, &target_dir, &mut consts);
    build_python_plugins(&root, &target_dir, &mut consts);
    build_js_plugins(&root, &target_dir, &mut consts);
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("plugins.rs");
    std::fs::write(dest, consts).unwrap();
}

/// (source under `plugins/`, wasm file stem) of every C plugin, built with clang and
/// wasi-libc by `sluice-c-tool` (the same code as its `build` command).
const C_PLUGINS: &[(&str, &str)] = &[("c-template/passthrough.c", "passthrough_c")];

fn build_c_plugins(root: &std::path::Path, target_dir: &std::path::Path, consts: &mut String) {
    let out_dir = target_dir.join("c");
    for (source, stem) in C_PLUGINS {
        let out = out_dir.join(format!("{stem}.wasm"));
        let work = out_dir.join(format!("{stem}.build"));
        if let Err(e) = sluice_c_tool::build(&[root.join("plugins").join(source)], &out, &work, &[]) {
            panic!(
                "building the C plugin `plugins/{source}` failed: {e:#}\n(run tests/setup.sh to install clang and wasi-libc)"
            );
        }
        let name = stem.to_uppercase();
        consts.push_str(&format!(
            "/// Path of the C plugin built from `plugins/{source}`.\npub const {name}: &str = {:?};\n",
            out.display().to_string()
        ));
    }
}

/// (directory under `plugins/`, wasm file stem) of every Python plugin, built with
/// componentize-py (PyPI, installed by tests/setup.sh) with the Python SDK on its path.
const PYTHON_PLUGINS: &[(&str, &str)] = &[("python-mask", "mask_py")];

fn build_python_plugins(root: &std::path::Path, target_dir: &std::path::Path, consts: &mut String) {
    let out_dir = target_dir.join("python");
    std::fs::create_dir_all(&out_dir).unwrap();
    for (dir, stem) in PYTHON_PLUGINS {
        let out = out_dir.join(format!("{stem}.wasm"));
        // Build from a copy: componentize-py writes `__pycache__` next to the sources, which
        // under `plugins/` would make cargo rerun this script on every build.
        let src = out_dir.join(format!("{stem}.src"));
        std::fs::create_dir_all(&src).unwrap();
        for from in [root.join("sdk/python"), root.join("plugins").join(dir)] {
            for entry in std::fs::read_dir(&from).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "py") {
                    std::fs::copy(&path, src.join(path.file_name().unwrap())).unwrap();
                }
            }
        }
        // --stub-wasi: the plugin imports no WASI at all (CPython's needs are stubbed).
        let status = Command::new("componentize-py")
            .arg("-d")
            .arg(root.join("wit"))
            .args(["-w", "transform-plugin", "componentize", "--stub-wasi", "-p"])
            .arg(&src)
            .args(["app", "-o"])
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("componentize-py failed ({s}) building `plugins/{dir}`"),
            Err(e) => {
                panic!("cannot run componentize-py ({e}); run tests/setup.sh (pip install -r tests/requirements.txt)")
            }
        }
        let name = stem.to_uppercase();
        consts.push_str(&format!(
            "/// Path of the Python plugin built from `plugins/{dir}`.\npub const {name}: &str = {:?};\n",
            out.display().to_string()
        ));
    }
}

/// (directory under `plugins/`, wasm file stem) of every JavaScript plugin, built by its
/// `build.mjs` (esbuild + componentize-js from its pinned `package-lock.json`; `npm ci`
/// in tests/setup.sh installs them).
const JS_PLUGINS: &[(&str, &str)] = &[("js-filter", "filter_js")];

fn build_js_plugins(root: &std::path::Path, target_dir: &std::path::Path, consts: &mut String) {
    let out_dir = target_dir.join("js");
    for (dir, stem) in JS_PLUGINS {
        let plugin_dir = root.join("plugins").join(dir);
        if !plugin_dir.join("node_modules").is_dir() {
            panic!("`plugins/{dir}/node_modules` is missing; run tests/setup.sh (it runs `npm ci` there)");
        }
        let out = out_dir.join(format!("{stem}.wasm"));
        let status = Command::new("node")
            .current_dir(&plugin_dir)
            .arg("build.mjs")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("`node build.mjs` failed ({s}) building `plugins/{dir}`"),
            Err(e) => panic!("cannot run node ({e}); install Node.js 20 and npm"),
        }
        let name = stem.to_uppercase();
        consts.push_str(&format!(
            "/// Path of the JavaScript plugin built from `plugins/{dir}`.\npub const {name}: &str = {:?};\n",
            out.display().to_string()
        ));
    }
}
