//! The process-wide wasmtime engine with sluice's determinism profile, and the compile cache.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, OptLevel, StoreContextMut};

use crate::error::{Error, Result};
use crate::plugin::Plugin;
use crate::sandbox::{Limits, PluginState};

/// Options for a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Limits applied to every plugin instance.
    pub limits: Limits,
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeOptions {
    /// Options with the default limits and the default cache directory
    /// (`$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else `~/.cache/sluice`).
    pub fn with_default_cache() -> Self {
        RuntimeOptions {
            limits: Limits::default(),
            cache_dir: default_cache_dir(),
        }
    }
}

/// The default compile-cache directory, if one can be determined.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("SLUICE_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("sluice"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("sluice"))
}

/// Engine settings that can change a plugin's behaviour, recorded in every run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct EngineSettings {
    /// wasmtime version the host was built with.
    pub wasmtime_version: String,
    /// NaN canonicalization (always on).
    pub nan_canonicalization: bool,
    /// Deterministic relaxed SIMD (always on).
    pub relaxed_simd_deterministic: bool,
    /// Wasm threads (always off).
    pub threads: bool,
    /// Fuel metering (always on: fuel per chunk is recorded).
    pub fuel: bool,
    /// Epoch interruption for the per-call wall-clock limit (always on).
    #[serde(default)]
    pub epoch_interruption: bool,
    /// Per-instance limits.
    pub limits: Limits,
}

/// One wasmtime engine, linker and compile cache, shared by every plugin of a process.
///
/// # Example
/// ```no_run
/// let rt = sluice_host::Runtime::new(sluice_host::RuntimeOptions::default())?;
/// let plugin = rt.load_plugin(std::path::Path::new("filter.wasm"))?;
/// println!("{} {}", plugin.info().name, plugin.sha256());
/// # Ok::<(), sluice_host::Error>(())
/// ```
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<PluginState>,
    pub(crate) opts: RuntimeOptions,
}

impl Runtime {
    /// Create the engine with the determinism profile and link deny-all WASI plus the
    /// `sluice:transform/host` import.
    ///
    /// CPU is bounded twice: fuel (deterministic, recorded per chunk) and an epoch deadline
    /// (wall clock, [`Limits::call_time_ms`]), driven by a background thread that ends with
    /// the engine. `benches/limits.rs` measures both together at about 1% on the example
    /// plugins, and 18% on the worst case, a loop of independent additions.
    ///
    /// # Errors
    /// A usage error for unusable limits ([`Limits::validate`]); otherwise fails only if
    /// wasmtime rejects the configuration (a bug).
    pub fn new(opts: RuntimeOptions) -> Result<Self> {
        opts.limits.validate()?;
        let mut c = Config::new();
        c.wasm_component_model(true)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            // Wasm threads are not compiled in (wasmtime's `threads` feature is off), so
            // no plugin can observe scheduling nondeterminism.
            .shared_memory(false)
            .consume_fuel(true)
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .max_wasm_stack(usize::try_from(opts.limits.stack_bytes).unwrap_or(usize::MAX))
            .parallel_compilation(true);
        let engine = Engine::new(&c).map_err(|e| Error::usage(format!("invalid engine configuration: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::usage(format!("failed to link WASI: {e:#}")))?;
        link_virtual_sleep(&mut linker)
            .map_err(|e| Error::usage(format!("failed to link the virtual clock: {e:#}")))?;
        crate::abi::add_to_linker(&mut linker)
            .map_err(|e| Error::usage(format!("failed to link the host interface: {e:#}")))?;
        start_epoch_ticker(&engine)?;
        Ok(Runtime { engine, linker, opts })
    }

    /// The settings recorded in run records.
    pub fn settings(&self) -> EngineSettings {
        EngineSettings {
            wasmtime_version: WASMTIME_VERSION.to_string(),
            nan_canonicalization: true,
            relaxed_simd_deterministic: true,
            threads: false,
            fuel: true,
            epoch_interruption: true,
            limits: self.opts.limits.clone(),
        }
    }

    /// The limits applied to plugin instances.
    pub fn limits(&self) -> &Limits {
        &self.opts.limits
    }

    /// Load, check and compile a plugin from a `.wasm` component file.
    ///
    /// # Errors
    /// Usage errors for a missing or non-component file or a wrong ABI; plugin errors for
    /// a plugin that imports what sluice does not provide or fails in `info`; I/O errors.
    pub fn load_plugin(&self, path: &Path) -> Result<Plugin> {
        self.load_plugin_pinned(path, None)
    }

    /// Like [`Runtime::load_plugin`], but when `pin` is given (`sha256:<64 hex digits>`),
    /// refuse the plugin unless the bytes read have that digest. The check runs on the very
    /// bytes that are then compiled, before compiling them, so the file cannot change in
    /// between.
    ///
    /// # Errors
    /// A usage error for a malformed pin or a digest mismatch (naming both digests), and
    /// everything [`Runtime::load_plugin`] returns.
    pub fn load_plugin_pinned(&self, path: &Path, pin: Option<&str>) -> Result<Plugin> {
        let expected = pin.map(|p| parse_pin(path, p)).transpose()?;
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::usage(format!("plugin `{}` does not exist", path.display())),
            _ => Error::io("read plugin", path, e),
        })?;
        if let Some((sha, component)) = self.cached(path, &meta) {
            crate::plugin::check_pin(path, &sha, expected.as_deref())?;
            return Plugin::from_component(self, path, &sha, meta.len(), &component);
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io("read plugin", path, e))?;
        let plugin = Plugin::from_bytes(self, path, &bytes, expected.as_deref())?;
        self.remember_digest(path, &meta, plugin.sha256().trim_start_matches("sha256:"));
        Ok(plugin)
    }

    /// The sha256 and compiled component of plugin file `path`, if the cache holds both
    /// for the file as it is now.
    ///
    /// Hashing a plugin costs about 1 ms per MB, more than the rest of a warm start. Like
    /// git's index, the digest cache trusts a file unchanged while its device, inode, size,
    /// mtime and ctime are: no write leaves all five as they were (ctime cannot be set back
    /// by an unprivileged user), and digests of files modified in the last two seconds are
    /// never cached, so a write within one timestamp tick cannot hide either.
    fn cached(&self, path: &Path, meta: &std::fs::Metadata) -> Option<(String, Component)> {
        let dir = self.opts.cache_dir.as_ref()?;
        let key = stat_key(path, meta)?;
        let sha = std::fs::read_to_string(dir.join("digests").join(key)).ok()?;
        let sha = sha.trim();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let f = dir.join(format!("{sha}-{}.cwasm", self.compat_hash()));
        // SAFETY: as in `compile`: a private directory, entries written only by `compile`
        // from components we compiled, named by the plugin's sha256 and the engine hash.
        let component = unsafe { Component::deserialize_file(&self.engine, &f) }.ok()?;
        Some((sha.to_string(), component))
    }

    /// Record `sha` as the digest of plugin file `path` (see [`Runtime::cached`]).
    fn remember_digest(&self, path: &Path, meta: &std::fs::Metadata, sha: &str) {
        let (Some(dir), Some(key)) = (self.opts.cache_dir.as_ref(), stat_key(path, meta)) else {
            return;
        };
        let settled = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= Duration::from_secs(2));
        if !settled {
            return;
        }
        let dir = dir.join("digests");
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, sha)?;
            std::fs::rename(&tmp, dir.join(&key))
        };
        if let Err(e) = write() {
            tracing::debug!(cache = %dir.display(), "could not record a plugin digest: {e}");
        }
    }

    /// Compile `bytes` (whose sha256 is `sha256`), through the cache when there is one.
    pub(crate) fn compile(&self, path: &Path, sha256: &str, bytes: &[u8]) -> Result<Component> {
        let cache_file = self
            .opts
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{sha256}-{}.cwasm", self.compat_hash())));
        if let Some(f) = &cache_file
            && f.exists()
        {
            // SAFETY: the cache directory is private to the user (0700) and every entry is
            // written by this function from a component we compiled ourselves; its name
            // binds the plugin's sha256 and the engine's compatibility hash.
            match unsafe { Component::deserialize_file(&self.engine, f) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(cache = %f.display(), "ignoring unreadable compile cache entry: {e}"),
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| Error::usage(format!("plugin `{}` is not a valid component: {e:#}", path.display())))?;
        if let Some(f) = &cache_file
            && let Err(e) = write_cache(f, &component)
        {
            tracing::warn!(cache = %f.display(), "could not write the compile cache: {e}");
        }
        Ok(component)
    }

    fn compat_hash(&self) -> String {
        let mut h = std::hash::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// The hex digest of a `sha256:<hex>` pin, lowercased.
fn parse_pin(path: &Path, pin: &str) -> Result<String> {
    let hex = pin.trim().strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::usage(format!(
            "the pin `{pin}` of plugin `{}` is not `sha256:` followed by 64 hex digits; get the digest with `sluice inspect {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

/// How often the epoch advances: the resolution of the per-call time limit.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Epoch ticks for a call limit of `ms` milliseconds (rounded up, at least one).
pub(crate) fn epoch_ticks(ms: u64) -> u64 {
    ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1)
}

/// Advance the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .map_err(|e| Error::io("start the epoch thread for", Path::new("the engine"), e))
}

/// The WASI version whose `monotonic-clock` functions wasmtime-wasi 48 links.
const WASI_CLOCKS: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replace `subscribe-duration` and `subscribe-instant` with sleeps on the plugin's virtual
/// clock ([`PluginState::virtual_sleep`]): a plugin that sleeps must not block the host in
/// real time, where neither fuel nor the epoch deadline could stop it.
fn link_virtual_sleep(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(WASI_CLOCKS)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut cx: StoreContextMut<'_, PluginState>, (d,): (u64,)| {
            let state = cx.data_mut();
            let deadline = state.clock_now().saturating_add(d);
            Ok((state.virtual_sleep(deadline)?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut cx: StoreContextMut<'_, PluginState>, (when,): (u64,)| Ok((cx.data_mut().virtual_sleep(when)?,)),
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A name for the identity of file `path` as it is now: canonical path, device, inode,
/// size, mtime and ctime (see [`Runtime::cached`]). `None` where those are not available.
fn stat_key(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let canonical = std::fs::canonicalize(path).ok()?;
        let mut h = blake3::Hasher::new();
        h.update(canonical.as_os_str().as_encoded_bytes());
        for n in [
            meta.dev() as i64,
            meta.ino() as i64,
            meta.size() as i64,
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        ] {
            h.update(&n.to_le_bytes());
        }
        Some(h.finalize().to_hex()[..32].to_string())
    }
    #[cfg(not(unix))]
    {
        let _ = (path, meta);
        None
    }
}

fn write_cache(f: &Path, component: &Component) -> std::io::Result<()> {
    let dir = f.parent().expect("cache file has a parent");
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        f.file_name().and_then(|n| n.to_str()).unwrap_or("c"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, f)
}

/// The wasmtime version this host is built against.
pub const WASMTIME_VERSION: &str = "48.0.8";
