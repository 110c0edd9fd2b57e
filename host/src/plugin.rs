//! Plugins: a compiled, checked component ([`Plugin`], cheap to share and instantiate) and
//! a live, configured instance of it ([`Transformer`], one store, one transformer resource).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, ResourceAny};

use crate::engine::Runtime;
use crate::error::{Error, Result};
use crate::ipc;
use crate::sandbox::{Determinism, LimitExceeded, Limits, PluginState, fmt_bytes};

use crate::abi::{self, Bound, GuestError, RawInfo};
use crate::columns::ColumnPlan;

/// The ABI major version this host implements.
pub const ABI_MAJOR: u64 = 1;
/// The newest ABI version this host knows.
pub const ABI_VERSION: &str = "1.1.0";
const EXPORT_PREFIX: &str = "sluice:transform/transform@";
const HOST_IMPORT_PREFIX: &str = "sluice:transform/host@";

/// What a plugin says about itself (`info` export), plus what the host measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's short name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Whether it keeps state across batches.
    pub stateful: bool,
    /// The ABI version it was built against, e.g. `1.0.0`.
    pub abi_version: String,
    /// `sha256:<hex>` of the `.wasm` bytes.
    pub sha256: String,
    /// Size of the `.wasm` file in bytes.
    pub size: u64,
    /// Every import of the component.
    pub imports: Vec<String>,
    /// Every export of the component.
    pub exports: Vec<String>,
}

/// A compiled and ABI-checked plugin, ready to be instantiated many times.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    info: PluginInfo,
    path: PathBuf,
    pre: abi::Pre,
    engine: wasmtime::Engine,
    limits: Limits,
}

impl Plugin {
    /// Check and compile a plugin from its bytes; `path` is used in messages. With
    /// `pin` (lowercase hex), the bytes must have that sha256; it is checked first.
    pub(crate) fn from_bytes(rt: &Runtime, path: &Path, bytes: &[u8], pin: Option<&str>) -> Result<Plugin> {
        let sha = hex::encode(Sha256::digest(bytes));
        check_pin(path, &sha, pin)?;
        check_header(path, bytes)?;
        let component = rt.compile(path, &sha, bytes)?;
        Plugin::from_component(rt, path, &sha, bytes.len() as u64, &component)
    }

    /// Check, link and describe a compiled plugin whose bytes (`size` long) have sha256
    /// `sha` (lowercase hex).
    pub(crate) fn from_component(
        rt: &Runtime,
        path: &Path,
        sha: &str,
        size: u64,
        component: &Component,
    ) -> Result<Plugin> {
        let (abi_version, imports, exports) = check_abi(rt, path, component)?;
        let pre = rt.linker.instantiate_pre(component).map_err(|e| {
            Error::plugin(
                file_name(path),
                format!(
                    "cannot be linked: {e:#}; plugins may import only WASI 0.2, `{HOST_IMPORT_PREFIX}{ABI_MAJOR}.x` and `{}`",
                    crate::kernels::HASH_INTERFACE
                ),
            )
        })?;
        let pre = abi::Pre::new(pre, &abi_version).map_err(|e| {
            Error::usage(format!(
                "plugin `{}` does not fit the sluice ABI: {e:#}",
                path.display()
            ))
        })?;
        let mut plugin = Plugin {
            inner: Arc::new(PluginInner {
                info: PluginInfo {
                    name: file_name(path),
                    version: String::new(),
                    description: String::new(),
                    stateful: false,
                    abi_version,
                    sha256: format!("sha256:{sha}"),
                    size,
                    imports,
                    exports,
                },
                path: path.to_path_buf(),
                pre,
                engine: rt.engine.clone(),
                limits: rt.opts.limits.clone(),
            }),
        };
        let raw = plugin.call_info()?;
        validate_name(path, &raw.name)?;
        let inner = Arc::get_mut(&mut plugin.inner).expect("plugin not shared yet");
        inner.info.name = raw.name;
        inner.info.version = raw.version;
        inner.info.description = raw.description;
        inner.info.stateful = raw.stateful;
        Ok(plugin)
    }

    /// What the plugin says about itself, its digest and ABI.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// `sha256:<hex>` of the plugin's bytes.
    pub fn sha256(&self) -> &str {
        &self.inner.info.sha256
    }

    /// The file the plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn new_store(&self, name: &str, det: &Determinism) -> Store<PluginState> {
        let limits = &self.inner.limits;
        let mut store = Store::new(&self.inner.engine, PluginState::new(name, limits, det));
        store.limiter(|s| &mut s.limiter);
        store.set_max_component_handles(usize::try_from(limits.resources).unwrap_or(usize::MAX));
        // Bounds the bytes lifted out of the guest in one call (a result, a log line),
        // checked before they are copied, so an oversized result never reaches host memory.
        // Log lines may be up to the log quota even under a small --max-output-bytes.
        let lifted = limits.max_output_bytes.saturating_add(1).max(limits.max_log_bytes);
        store.set_hostcall_fuel(usize::try_from(lifted).unwrap_or(usize::MAX));
        store.epoch_deadline_trap();
        store
    }

    fn call_info(&self) -> Result<RawInfo> {
        let name = self.inner.info.name.clone();
        let limits = &self.inner.limits;
        let mut store = self.new_store(&name, &Determinism::default());
        arm(&mut store, limits);
        let inst = self
            .inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| trap(&store, &name, limits, "instantiation", e))?;
        arm(&mut store, limits);
        let info = inst.info(&mut store);
        store.data().log.flush();
        info.map_err(|e| trap(&store, &name, limits, "info", e))
    }

    /// Instantiate the plugin and open a transformer for `input_schema` with `config`.
    ///
    /// `state` is a previous [`Transformer::checkpoint`] to resume from.
    ///
    /// # Errors
    /// Usage error if the plugin rejects its config; plugin error on a trap or a bad
    /// output schema.
    pub fn open(
        &self,
        config: &[(String, String)],
        input_schema: &SchemaRef,
        state: Option<&[u8]>,
        det: &Determinism,
    ) -> Result<Transformer> {
        let name = self.inner.info.name.clone();
        let limits = self.inner.limits.clone();
        let mut store = self.new_store(&name, det);
        let mut fuel_used = 0;
        arm(&mut store, &limits);
        let bindings = self
            .inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| trap(&store, &name, &limits, "instantiation", e))?;
        fuel_used += limits.fuel_per_call - store.get_fuel().unwrap_or(0);
        let mut sorted = config.to_vec();
        sorted.sort();
        let schema_ipc = ipc::encode_schema(input_schema);
        arm(&mut store, &limits);
        let opened = bindings.open(&mut store, &sorted, &schema_ipc, state);
        store.data().log.flush();
        let handle = opened
            .map_err(|e| trap(&store, &name, &limits, "open", e))?
            .map_err(|e| guest_error(&name, "open", e))?;
        fuel_used += limits.fuel_per_call - store.get_fuel().unwrap_or(0);
        arm(&mut store, &limits);
        let out_ipc = bindings
            .output_schema(&mut store, handle)
            .map_err(|e| trap(&store, &name, &limits, "output-schema", e))?;
        fuel_used += limits.fuel_per_call - store.get_fuel().unwrap_or(0);
        if out_ipc.len() as u64 > limits.max_output_bytes {
            return Err(Error::plugin(
                &name,
                format!(
                    "`output-schema` returned {}, over the limit of {} per call (raise it with --max-output-bytes)",
                    fmt_bytes(out_ipc.len() as u64),
                    fmt_bytes(limits.max_output_bytes)
                ),
            ));
        }
        let output_schema = contained(&name, "output-schema", || ipc::decode_schema(out_ipc))?;
        arm(&mut store, &limits);
        let raw_plan = bindings
            .column_plan(&mut store, handle)
            .map_err(|e| trap(&store, &name, &limits, "column-plan", e))?;
        fuel_used += limits.fuel_per_call - store.get_fuel().unwrap_or(0);
        let plan = raw_plan
            .map(|raw| ColumnPlan::check(raw, input_schema, &output_schema))
            .transpose()
            .map_err(|m| Error::plugin(&name, format!("`column-plan` does not fit its schemas: {m}")))?;
        if let Some(p) = &plan {
            tracing::debug!(
                plugin = %name,
                reads = p.reads.len(),
                of = input_schema.fields().len(),
                selects = p.selects,
                computed = p.computed_schema.fields().len(),
                "column plan"
            );
        }
        Ok(Transformer {
            name,
            limits,
            store,
            bindings,
            handle,
            input_schema: Arc::clone(input_schema),
            output_schema,
            plan: plan.map(|plan| Planned {
                encoder: ipc::SegmentEncoder::new(&plan.read_schema),
                plan,
            }),
            fuel_used,
            dead: false,
        })
    }
}

/// A live, configured plugin instance processing one stream of batches.
pub struct Transformer {
    name: String,
    limits: Limits,
    store: Store<PluginState>,
    bindings: Bound,
    handle: ResourceAny,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    /// The plugin's column plan (ABI 1.1), if it declared one.
    plan: Option<Planned>,
    fuel_used: u64,
    dead: bool,
}

/// A column plan and the encoder of the columns it reads, call after call.
struct Planned {
    plan: ColumnPlan,
    encoder: ipc::SegmentEncoder,
}

impl Transformer {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema of every batch this transformer returns.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// The schema this transformer was opened with.
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    /// Total fuel consumed by this instance so far (deterministic for the same inputs).
    pub fn fuel_used(&self) -> u64 {
        self.fuel_used
    }

    fn begin(&mut self, what: &str) -> Result<()> {
        if self.dead {
            return Err(Error::plugin(
                &self.name,
                format!("cannot call `{what}`: the instance failed earlier"),
            ));
        }
        arm(&mut self.store, &self.limits);
        Ok(())
    }

    fn end<T>(&mut self, what: &str, r: wasmtime::Result<T>) -> Result<T> {
        self.fuel_used += self.limits.fuel_per_call - self.store.get_fuel().unwrap_or(0);
        self.store.data().log.flush();
        r.map_err(|e| {
            self.dead = true;
            trap(&self.store, &self.name, &self.limits, what, e)
        })
    }

    /// Run one batch through the plugin; returns zero or more validated output batches.
    ///
    /// # Errors
    /// Plugin errors for traps, limits, invalid Arrow or a schema other than the declared one.
    pub fn process(&mut self, batch: &RecordBatch) -> Result<Vec<RecordBatch>> {
        if batch.schema().fields() != self.input_schema.fields() {
            return Err(Error::input(format!(
                "batch for plugin `{}` does not match its input schema: {}",
                self.name,
                ipc::describe_difference(&batch.schema(), &self.input_schema)
            )));
        }
        if self.plan.is_some() {
            return self.process_columns(batch);
        }
        let batch = sluice_arrow_check::compact_views(batch.clone());
        let bytes = ipc::encode_batches(&self.input_schema, std::slice::from_ref(&batch))
            .map_err(|e| Error::input(format!("cannot encode a batch for plugin `{}`: {e}", self.name)))?;
        self.begin("process")?;
        let r = self.bindings.process(&mut self.store, self.handle, &bytes);
        let r = self.end("process", r)?;
        let out = r.map_err(|e| guest_error(&self.name, "process", e))?;
        self.decode(out, "process")
    }

    /// Flush the plugin at end of input.
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        self.begin("finish")?;
        let r = self.bindings.finish(&mut self.store, self.handle);
        let r = self.end("finish", r)?;
        let out = r.map_err(|e| guest_error(&self.name, "finish", e))?;
        self.decode(out, "finish")
    }

    /// Ask the plugin for its state at a chunk boundary.
    pub fn checkpoint(&mut self) -> Result<Vec<u8>> {
        self.begin("checkpoint")?;
        let r = self.bindings.checkpoint(&mut self.store, self.handle);
        let r = self.end("checkpoint", r)?;
        let state = r.map_err(|e| guest_error(&self.name, "checkpoint", e))?;
        self.check_size(state.len(), "checkpoint")?;
        Ok(state)
    }

    /// Whether the plugin declared a column plan (ABI 1.1).
    pub fn column_plan(&self) -> Option<&ColumnPlan> {
        self.plan.as_ref().map(|p| &p.plan)
    }

    /// [`Transformer::process`] under a column plan: send the columns read, build the output
    /// from the pass-through columns, the selection and the computed columns.
    fn process_columns(&mut self, batch: &RecordBatch) -> Result<Vec<RecordBatch>> {
        let Some(mut plan) = self.plan.take() else {
            return Err(Error::plugin(&self.name, "internal: no column plan".to_string()));
        };
        let out = self.run_columns(&mut plan, batch);
        self.plan = Some(plan);
        self.dead |= out.is_err();
        out
    }

    fn run_columns(&mut self, planned: &mut Planned, batch: &RecordBatch) -> Result<Vec<RecordBatch>> {
        let what = "process-columns";
        let plan = &planned.plan;
        let read = plan
            .project(batch)
            .map_err(|e| Error::input(format!("cannot project a batch for plugin `{}`: {e}", self.name)))?;
        // Dead bytes in view columns would be copied into the sandbox and validated there.
        let read = sluice_arrow_check::compact_views(read);
        let bytes = planned
            .encoder
            .encode(&read)
            .map_err(|e| Error::input(format!("cannot encode a batch for plugin `{}`: {e}", self.name)))?;
        self.begin(what)?;
        let r = self.bindings.process_columns(&mut self.store, self.handle, bytes);
        let r = self.end(what, r)?;
        let out = r.map_err(|e| guest_error(&self.name, what, e))?;
        let returned = out.selection.as_ref().map_or(0, Vec::len) + out.computed.len();
        self.check_size(returned, what)?;
        let broke = |m: String| Error::plugin(&self.name, format!("`{what}` broke its column plan: {m}"));
        let (selection, kept) = plan.selection(batch.num_rows(), out.selection).map_err(broke)?;
        let computed = if plan.computed_schema.fields().is_empty() {
            if !out.computed.is_empty() {
                return Err(broke(format!(
                    "returned {} bytes of computed columns, but its column plan computes none",
                    out.computed.len()
                )));
            }
            vec![]
        } else {
            let batches = contained(&self.name, what, || {
                ipc::decode_stream(out.computed, &plan.computed_schema)
            })?;
            let [computed] = <[RecordBatch; 1]>::try_from(batches).map_err(|b| {
                broke(format!(
                    "returned {} batches of computed columns; it must return exactly one",
                    b.len()
                ))
            })?;
            if computed.num_rows() != kept {
                return Err(broke(format!(
                    "returned {} rows of computed columns for {kept} kept rows",
                    computed.num_rows()
                )));
            }
            computed.columns().to_vec()
        };
        // A selection that keeps no row gives no batch (a 1.0 filter returned none either).
        if plan.selects && kept == 0 {
            return Ok(vec![]);
        }
        let assembled = plan
            .assemble(&self.output_schema, batch, selection, kept, computed)
            .map_err(broke)?;
        Ok(vec![assembled])
    }

    fn check_size(&mut self, len: usize, what: &str) -> Result<()> {
        if len as u64 > self.limits.max_output_bytes {
            self.dead = true;
            return Err(Error::plugin(
                &self.name,
                format!(
                    "`{what}` returned {}, over the limit of {} per call (raise it with --max-output-bytes)",
                    fmt_bytes(len as u64),
                    fmt_bytes(self.limits.max_output_bytes)
                ),
            ));
        }
        Ok(())
    }

    fn decode(&mut self, bytes: Vec<u8>, what: &str) -> Result<Vec<RecordBatch>> {
        self.check_size(bytes.len(), what)?;
        let schema = Arc::clone(&self.output_schema);
        let decoded = contained(&self.name, what, || ipc::decode_stream(bytes, &schema));
        self.dead |= decoded.is_err();
        decoded
    }
}

fn guest_error(name: &str, what: &str, e: GuestError) -> Error {
    match e {
        GuestError::InvalidConfig(m) => Error::usage(format!("plugin `{name}` rejected its config: {m}")),
        GuestError::InvalidInput(m) => Error::input(format!("plugin `{name}` rejected its input in `{what}`: {m}")),
        GuestError::Internal(m) => Error::plugin(name, format!("internal error in `{what}`: {m}")),
    }
}

/// Decode what plugin `name` returned from `what` with `decode`, as a plugin error if the
/// bytes break the contract. A panic in the decoder becomes such an error too: the framing
/// checks in [`ipc`] prevent the panics fuzzing found, and this keeps any other from
/// taking the host down.
fn contained<T>(name: &str, what: &str, decode: impl FnOnce() -> Result<T, ipc::IpcError>) -> Result<T> {
    match crate::contain::catch(decode) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::plugin(
            name,
            format!("`{what}` returned data that breaks the ABI contract: {e}"),
        )),
        Err(msg) => Err(Error::plugin(
            name,
            format!(
                "`{what}` returned data that breaks the ABI contract: the Arrow decoder failed an internal check on it ({msg})"
            ),
        )),
    }
}

/// Give the store a fresh budget for one call: fuel, the wall-clock deadline, and a clean
/// slate for the panic message.
fn arm(store: &mut Store<PluginState>, limits: &Limits) {
    store.set_fuel(limits.fuel_per_call).expect("fuel is enabled");
    store.set_epoch_deadline(crate::engine::epoch_ticks(limits.call_time_ms));
    store.data().log.start_call();
}

/// Turn a wasmtime error (a trap or a host-side failure) into a plugin error that names
/// the limit involved and the flag that raises it.
fn trap(store: &Store<PluginState>, name: &str, limits: &Limits, what: &str, e: wasmtime::Error) -> Error {
    if let Some(l) = e.downcast_ref::<LimitExceeded>() {
        return Error::plugin(name, format!("`{what}` {l}"));
    }
    if let Some(t) = e.downcast_ref::<wasmtime::Trap>() {
        let msg = match t {
            wasmtime::Trap::OutOfFuel => format!(
                "`{what}` ran out of fuel: it used more than {} units in one call (raise the limit with --fuel-per-call)",
                limits.fuel_per_call
            ),
            wasmtime::Trap::Interrupt => format!(
                "`{what}` ran for longer than the limit of {} per call and was stopped (raise it with --max-call-time)",
                fmt_ms(limits.call_time_ms)
            ),
            wasmtime::Trap::StackOverflow => format!(
                "`{what}` overflowed the wasm stack of {} (infinite recursion?); raise it with --max-stack",
                fmt_bytes(limits.stack_bytes)
            ),
            wasmtime::Trap::UnreachableCodeReached => match store.data().log.last_panic() {
                Some(panic) => format!("`{what}` {panic} (the plugin panicked and aborted)"),
                None => format!(
                    "`{what}` trapped: wasm `unreachable` executed (the plugin aborted; a Rust plugin does this when it panics)"
                ),
            },
            wasmtime::Trap::MemoryOutOfBounds => format!(
                "`{what}` trapped: out-of-bounds memory access (a bug in the plugin, or it overflowed its shadow stack)"
            ),
            _ => format!("`{what}` trapped: {t}"),
        };
        return Error::plugin(name, msg);
    }
    if let Some(wasmtime::component::ResourceTableError::Full) = e.downcast_ref() {
        return resources(name, limits, what);
    }
    // The remaining limits are enforced inside wasmtime and wasmtime-wasi with plain
    // messages; the root cause holds them without the wasm backtrace.
    let root = e.root_cause().to_string();
    tracing::debug!(plugin = name, "`{what}` failed: {e:?}");
    if root.contains("store handle limit exceeded") {
        return resources(name, limits, what);
    }
    let counts = [
        (
            "instance count too high",
            "instance",
            limits.instances,
            "--max-instances",
        ),
        ("table count too high", "table", limits.tables, "--max-tables"),
        ("memory count too high", "memory", limits.memories, "--max-memories"),
    ];
    for (text, kind, limit, flag) in counts {
        if root.contains(text) {
            return Error::plugin(
                name,
                format!("`{what}` exceeded the {kind} limit: it needs more than {limit} (raise it with {flag})"),
            );
        }
    }
    if root.contains("fuel allocated for hostcalls has been exhausted") {
        return Error::plugin(
            name,
            format!(
                "`{what}` handed the host more than {} in one call, over the limit (raise it with --max-output-bytes)",
                fmt_bytes(limits.max_output_bytes)
            ),
        );
    }
    if root.starts_with("requested len") && root.contains("exceeds limit") {
        return Error::plugin(
            name,
            format!(
                "`{what}` asked for more randomness than the limit of {} per call ({root})",
                fmt_bytes(crate::sandbox::MAX_RANDOM_BYTES)
            ),
        );
    }
    Error::plugin(name, format!("`{what}` failed: {}", root.replace('\n', " ")))
}

fn resources(name: &str, limits: &Limits, what: &str) -> Error {
    Error::plugin(
        name,
        format!(
            "`{what}` exceeded the resource limit: it holds more than {} live handles (raise it with --max-resources)",
            limits.resources
        ),
    )
}

/// `60000` ms as `60 s`, `1500` as `1.5 s`, `250` as `250 ms`.
fn fmt_ms(ms: u64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms.is_multiple_of(1000) => format!("{} s", ms / 1000),
        ms => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

/// A plugin's file name, which names it in messages until its `info` is known.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Refuse a plugin whose sha256 `sha` (lowercase hex) is not its pin `pin`, naming both.
pub(crate) fn check_pin(path: &Path, sha: &str, pin: Option<&str>) -> Result<()> {
    match pin {
        Some(want) if want != sha => Err(Error::usage(format!(
            "plugin `{}` does not match its pin: found sha256:{sha} but expected sha256:{want}; refusing to load it. If this plugin is the one you mean to run, update the pin",
            path.display()
        ))),
        _ => Ok(()),
    }
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(Error::usage(format!(
            "plugin `{}` is not a WebAssembly file (no `\\0asm` header); pass a `.wasm` component built for wasm32-wasip2",
            path.display()
        )));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(Error::usage(format!(
            "plugin `{}` is a core WebAssembly module, not a component; build it with `cargo build --target wasm32-wasip2` or wrap it with `wasm-tools component new`",
            path.display()
        )));
    }
    Ok(())
}

type AbiFacts = (String, Vec<String>, Vec<String>);

fn check_abi(rt: &Runtime, path: &Path, component: &Component) -> Result<AbiFacts> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&rt.engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(&rt.engine).map(|(n, _)| n.to_string()).collect();
    let Some(export) = exports.iter().find(|e| e.starts_with(EXPORT_PREFIX)) else {
        return Err(Error::usage(format!(
            "plugin `{}` does not export `{EXPORT_PREFIX}{ABI_MAJOR}.x`; it exports: {}. Build it against `wit/transform.wit` (world `transform-plugin`)",
            path.display(),
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
            }
        )));
    };
    let version = &export[EXPORT_PREFIX.len()..];
    let major = version.split('.').next().and_then(|m| m.parse::<u64>().ok());
    if major != Some(ABI_MAJOR) {
        return Err(Error::usage(format!(
            "plugin `{}` was built against sluice:transform@{version}, but this host runs ABI {ABI_MAJOR}.x (newest {ABI_VERSION}); rebuild the plugin against {ABI_MAJOR}.x or use a sluice that supports {version}",
            path.display()
        )));
    }
    for name in &imports {
        let ok = name.starts_with("wasi:")
            || name.starts_with(HOST_IMPORT_PREFIX)
            || name.starts_with(crate::kernels::IMPORT_PREFIX);
        if !ok {
            // The plugin's own doing, like a trap: fix or roll back the plugin (exit 4).
            return Err(Error::plugin(
                file_name(path),
                format!(
                    "imports `{name}`, which sluice does not provide; refused at load. Plugins may import only WASI, `{HOST_IMPORT_PREFIX}{ABI_MAJOR}.x` and `{}`: rebuild it without that import",
                    crate::kernels::HASH_INTERFACE
                ),
            ));
        }
    }
    Ok((version.to_string(), imports, exports))
}

fn validate_name(path: &Path, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::plugin(
            path.display().to_string(),
            format!(
                "its `info` returned the invalid name `{}`; use 1-64 lowercase letters, digits, `-` or `_`",
                name.escape_default()
            ),
        ))
    }
}
