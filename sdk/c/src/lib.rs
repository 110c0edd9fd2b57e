//! Build sluice plugins written in C: generate the WIT bindings with wit-bindgen's C
//! generator, compile with clang for `wasm32-wasi` against wasi-libc (Debian packages
//! `clang lld wasi-libc libclang-rt-dev-wasm32`), and turn the core module into a component
//! with the WASI preview1 reactor adapter.
//!
//! Everything but clang is a Rust crate, so a fresh machine needs no other CLI: the WIT is
//! compiled into this tool, and so is the adapter (matched to the host's wasmtime 48).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use wit_bindgen_core::wit_parser::Resolve;

/// The sluice ABI this tool builds plugins for (`wit/transform.wit`).
pub const WIT: &str = include_str!("../../../wit/transform.wit");
/// The world every plugin targets.
pub const WORLD: &str = "transform-plugin";

/// Write the C bindings for the sluice world into `dir`: `transform_plugin.h`,
/// `transform_plugin.c` and `transform_plugin_component_type.o` (the component type,
/// linked in so the componentizer knows the exports). Returns the files written.
///
/// # Errors
///
/// If the WIT does not parse (a bug) or `dir` cannot be written.
pub fn bindings(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("transform.wit", WIT)?;
    let world = resolve.select_world(&[pkg], Some(WORLD))?;
    let mut generator = wit_bindgen_c::Opts::default().build();
    let mut files = wit_bindgen_core::Files::default();
    generator.generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut written = Vec::new();
    for (name, bytes) in files.iter() {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("failed to write `{}`", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The C compiler: `$SLUICE_CLANG`, else `clang`.
pub fn clang() -> String {
    std::env::var("SLUICE_CLANG").unwrap_or_else(|_| "clang".into())
}

/// Compile `sources` (C files) with the bindings into a core wasm module at `core_out`.
/// `extra_flags` go to clang after the defaults (`-O2`).
///
/// # Errors
///
/// If clang is missing or fails (its output is passed through).
pub fn compile(sources: &[PathBuf], bindings_dir: &Path, core_out: &Path, extra_flags: &[String]) -> Result<()> {
    let cc = clang();
    let mut cmd = Command::new(&cc);
    // A reactor: no `main`; the adapter and the host call the exports.
    cmd.args([
        "--target=wasm32-wasi",
        "-mexec-model=reactor",
        "-O2",
        "-Wall",
        "-Werror",
    ])
    .arg("-I")
    .arg(bindings_dir)
    .args(extra_flags)
    .arg("-o")
    .arg(core_out)
    .args(sources)
    .arg(bindings_dir.join("transform_plugin.c"))
    .arg(bindings_dir.join("transform_plugin_component_type.o"));
    let status = cmd.status().map_err(|e| {
        anyhow::anyhow!(
            "cannot run `{cc}`: {e}; install clang and wasi-libc (Debian: `apt-get install clang lld wasi-libc libclang-rt-dev-wasm32`, or run tests/setup.sh), or point $SLUICE_CLANG at a clang that targets wasm32-wasi"
        )
    })?;
    if !status.success() {
        bail!("`{cc}` failed ({status}) compiling {:?}", sources);
    }
    Ok(())
}

/// Turn a core module (wasm32-wasi, preview1) into a component that imports WASI 0.2.
///
/// # Errors
///
/// If the module lacks the component type (not linked with the bindings) or does not
/// validate.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(core)?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
}

/// Bindings, compile, componentize: build the plugin component `out` from `sources`,
/// using `work_dir` for the bindings and the core module.
///
/// # Errors
///
/// As [`bindings`], [`compile`] and [`componentize`].
pub fn build(sources: &[PathBuf], out: &Path, work_dir: &Path, extra_flags: &[String]) -> Result<()> {
    bindings(work_dir)?;
    let core = work_dir.join("core.wasm");
    compile(sources, work_dir, &core, extra_flags)?;
    let bytes = std::fs::read(&core).with_context(|| format!("failed to read `{}`", core.display()))?;
    let component = componentize(&bytes).context("failed to make a component of the compiled module")?;
    std::fs::write(out, component).with_context(|| format!("failed to write `{}`", out.display()))?;
    Ok(())
}
