//! The ABI versions this host runs, behind one interface: bindings for 1.0.0
//! (`wit/transform.wit`) and 1.1.0 (`wit/1.1/transform.wit`), chosen per plugin by the
//! version of the `transform` interface it exports.
//!
//! Two sets of bindings rather than one: wasmtime finds exports semver-compatibly, so
//! 1.1 bindings would accept a 1.0 plugin's export and then miss `column-plan` at
//! instantiation. The version the plugin exports decides instead.

use std::mem::MaybeUninit;

use arrow::buffer::Buffer;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext};
use wasmtime::component::{ComponentType, InstancePre, Linker, Lower, ResourceAny, TypedFunc};
use wasmtime::{Store, ValRaw};

use crate::sandbox::PluginState;

/// Host bindings generated from `wit/transform.wit` (ABI 1.0.0).
#[allow(missing_docs)]
pub mod v1_0 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform-plugin",
    });
}

/// Host bindings generated from `wit/1.1/transform.wit` (ABI 1.1.0: column plans).
#[allow(missing_docs)]
pub mod v1_1 {
    wasmtime::component::bindgen!({
        path: "../wit/1.1",
        world: "transform-plugin",
    });
}

/// The error variant of the ABI (the same in every 1.x version).
pub enum GuestError {
    /// `invalid-config`
    InvalidConfig(String),
    /// `invalid-input`
    InvalidInput(String),
    /// `internal`
    Internal(String),
}

/// `plugin-info` as the plugin returned it.
pub struct RawInfo {
    /// Short machine name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Whether it keeps state across batches.
    pub stateful: bool,
}

/// Where an output column comes from, as the plugin declared it (1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawOutputColumn {
    /// An input column by index.
    Input(u32),
    /// The next computed column.
    Computed,
}

/// A `column-plan` as the plugin returned it (1.1), not yet checked.
pub struct RawPlan {
    /// Input columns read.
    pub reads: Vec<u32>,
    /// Whether the plugin returns a selection.
    pub selects: bool,
    /// Source of each output column.
    pub output: Vec<RawOutputColumn>,
}

/// A `column-result` (1.1).
pub struct RawColumnResult {
    /// The selection bitmap, if any.
    pub selection: Option<Vec<u8>>,
    /// The computed columns' IPC stream (may be empty).
    pub computed: Vec<u8>,
}

macro_rules! conversions {
    ($($v:ident),*) => {$(
        impl From<$v::exports::sluice::transform::transform::Error> for GuestError {
            fn from(e: $v::exports::sluice::transform::transform::Error) -> Self {
                use $v::exports::sluice::transform::transform::Error as E;
                match e {
                    E::InvalidConfig(m) => GuestError::InvalidConfig(m),
                    E::InvalidInput(m) => GuestError::InvalidInput(m),
                    E::Internal(m) => GuestError::Internal(m),
                }
            }
        }
        impl From<$v::exports::sluice::transform::transform::PluginInfo> for RawInfo {
            fn from(i: $v::exports::sluice::transform::transform::PluginInfo) -> Self {
                RawInfo { name: i.name, version: i.version, description: i.description, stateful: i.stateful }
            }
        }
        impl $v::sluice::transform::host::Host for PluginState {
            fn log(&mut self, level: $v::sluice::transform::host::Level, message: String) {
                use $v::sluice::transform::host::Level as L;
                let level = match level {
                    L::Trace => tracing::Level::TRACE,
                    L::Debug => tracing::Level::DEBUG,
                    L::Info => tracing::Level::INFO,
                    L::Warn => tracing::Level::WARN,
                    L::Error => tracing::Level::ERROR,
                };
                self.log.message(level, &message);
            }
        }
    )*};
}
conversions!(v1_0, v1_1);

/// Define the `host` interface of every supported version, and the host kernels
/// (`sluice:kernels`), in `linker`.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    v1_0::TransformPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)?;
    v1_1::TransformPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)?;
    crate::kernels::add_to_linker(linker)
}

/// A linked plugin, ready to instantiate, with the bindings of the version it exports.
pub enum Pre {
    /// ABI 1.0.x
    V1_0(v1_0::TransformPluginPre<PluginState>),
    /// ABI 1.1 and later 1.x (later minors only add items)
    V1_1(
        v1_1::TransformPluginPre<PluginState>,
        wasmtime::component::ComponentExportIndex,
    ),
}

impl Pre {
    /// Bind `pre` with the bindings of ABI `version` (`1.0.0`, `1.1.0`, ...).
    pub fn new(pre: InstancePre<PluginState>, version: &str) -> wasmtime::Result<Pre> {
        let minor = version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(if minor >= 1 {
            // The export as bindgen finds it (semver-compatibly), for the typed call below.
            let component = pre.component();
            let process_columns = component
                .get_export_index(None, "sluice:transform/transform@1.1.0")
                .and_then(|i| component.get_export_index(Some(&i), "[method]transformer.process-columns"))
                .ok_or_else(|| wasmtime::Error::msg("no `transformer.process-columns` export"))?;
            Pre::V1_1(v1_1::TransformPluginPre::new(pre)?, process_columns)
        } else {
            Pre::V1_0(v1_0::TransformPluginPre::new(pre)?)
        })
    }

    /// Instantiate the plugin in `store`.
    pub fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Bound> {
        Ok(match self {
            Pre::V1_0(p) => Bound::V1_0(p.instantiate(store)?),
            Pre::V1_1(p, process_columns) => {
                let instance = p.instance_pre().instantiate(&mut *store)?;
                let bound = v1_1::TransformPlugin::new(&mut *store, &instance)?;
                let f = instance
                    .get_func(&mut *store, process_columns)
                    .ok_or_else(|| wasmtime::Error::msg("no `transformer.process-columns` export"))?;
                Bound::V1_1(bound, f.typed(&*store)?)
            }
        })
    }
}

/// A live plugin instance.
pub enum Bound {
    /// ABI 1.0.x
    V1_0(v1_0::TransformPlugin),
    /// ABI 1.1+, with `process-columns` typed to take the batch as [`Segments`].
    V1_1(v1_1::TransformPlugin, ProcessColumns),
}

/// `transformer.process-columns` of ABI 1.1, taking its IPC stream as [`Segments`].
pub type ProcessColumns = TypedFunc<
    (ResourceAny, Segments),
    (
        Result<
            v1_1::exports::sluice::transform::transform::ColumnResult,
            v1_1::exports::sluice::transform::transform::Error,
        >,
    ),
>;

/// An IPC stream as the pieces arrow's `StreamEncoder` gives: message headers and padding,
/// and the batch's own buffers, not copied. Lowered as a `list<u8>`, the pieces are written
/// straight into the guest's memory: one copy of each buffer, where a `Vec<u8>` argument
/// cost three (into the IPC body, into the stream, into the guest).
pub struct Segments(pub Vec<Buffer>);

impl Segments {
    /// The stream's length in bytes.
    pub fn len(&self) -> usize {
        self.0.iter().map(|b| b.len()).sum()
    }

    /// Whether the stream has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole stream in one buffer (for a caller that needs it contiguous).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for b in &self.0 {
            out.extend_from_slice(b);
        }
        out
    }

    /// Allocate the stream in the guest (its `realloc`, which checks the range is in its
    /// memory) and copy the pieces there: the `(pointer, length)` of a `list<u8>`.
    fn store<U>(&self, cx: &mut LowerContext<'_, U>) -> wasmtime::Result<(usize, usize)> {
        let len = self.len();
        let ptr = cx.realloc(0, 0, 1, len)?;
        let mut at = ptr;
        let memory = cx.as_slice_mut();
        for b in &self.0 {
            memory[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        }
        Ok((ptr, len))
    }
}

// SAFETY: the same representation as wasmtime's own `[u8]`: a pointer pair, type-checked as
// `list<u8>` by `[u8]`'s own check.
unsafe impl ComponentType for Segments {
    type Lower = [ValRaw; 2];

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[u8] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: writes exactly what wasmtime's `[u8]` lowering writes: the list's bytes in memory
// that the guest's `realloc` returned (bounds-checked there), then its pointer and length
// (as two i64 flat values, or two little-endian u32s in memory).
unsafe impl Lower for Segments {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; 2]>,
    ) -> wasmtime::Result<()> {
        let (ptr, len) = self.store(cx)?;
        dst.write([ValRaw::i64(ptr as i64), ValRaw::i64(len as i64)]);
        Ok(())
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let (ptr, len) = self.store(cx)?;
        *cx.get::<4>(offset) = u32::try_from(ptr)?.to_le_bytes();
        *cx.get::<4>(offset + 4) = u32::try_from(len)?.to_le_bytes();
        Ok(())
    }
}

/// The result of a guest call: a trap or host-side failure outside, the plugin's own error
/// inside.
pub type Call<T> = wasmtime::Result<Result<T, GuestError>>;

/// Run `$body` with `$t` bound to the `transform` interface of either version.
macro_rules! dispatch {
    ($self:expr, $t:ident => $body:expr) => {
        match $self {
            Bound::V1_0(b) => {
                let $t = b.sluice_transform_transform();
                $body
            }
            Bound::V1_1(b, _) => {
                let $t = b.sluice_transform_transform();
                $body
            }
        }
    };
}

// The generated bindings take `&Vec<u8>` for `list<u8>` arguments.
#[allow(clippy::ptr_arg)]
impl Bound {
    /// `info`
    pub fn info(&self, store: &mut Store<PluginState>) -> wasmtime::Result<RawInfo> {
        dispatch!(self, t => t.call_info(store).map(RawInfo::from))
    }

    /// `transformer.open`
    pub fn open(
        &self,
        store: &mut Store<PluginState>,
        config: &[(String, String)],
        schema: &Vec<u8>,
        state: Option<&[u8]>,
    ) -> Call<ResourceAny> {
        dispatch!(self, t => t.transformer().call_open(store, config, schema, state).map(|r| r.map_err(GuestError::from)))
    }

    /// `transformer.output-schema`
    pub fn output_schema(&self, store: &mut Store<PluginState>, h: ResourceAny) -> wasmtime::Result<Vec<u8>> {
        dispatch!(self, t => t.transformer().call_output_schema(store, h))
    }

    /// `transformer.process`
    pub fn process(&self, store: &mut Store<PluginState>, h: ResourceAny, batch: &Vec<u8>) -> Call<Vec<u8>> {
        dispatch!(self, t => t.transformer().call_process(store, h, batch).map(|r| r.map_err(GuestError::from)))
    }

    /// `transformer.finish`
    pub fn finish(&self, store: &mut Store<PluginState>, h: ResourceAny) -> Call<Vec<u8>> {
        dispatch!(self, t => t.transformer().call_finish(store, h).map(|r| r.map_err(GuestError::from)))
    }

    /// `transformer.checkpoint`
    pub fn checkpoint(&self, store: &mut Store<PluginState>, h: ResourceAny) -> Call<Vec<u8>> {
        dispatch!(self, t => t.transformer().call_checkpoint(store, h).map(|r| r.map_err(GuestError::from)))
    }

    /// `transformer.column-plan` (1.1); `None` for a 1.0 plugin.
    pub fn column_plan(&self, store: &mut Store<PluginState>, h: ResourceAny) -> wasmtime::Result<Option<RawPlan>> {
        use v1_1::exports::sluice::transform::transform::OutputColumn as O;
        match self {
            Bound::V1_0(_) => Ok(None),
            Bound::V1_1(b, _) => Ok(b
                .sluice_transform_transform()
                .transformer()
                .call_column_plan(store, h)?
                .map(|p| RawPlan {
                    reads: p.reads,
                    selects: p.selects,
                    output: p
                        .output
                        .into_iter()
                        .map(|o| match o {
                            O::Input(i) => RawOutputColumn::Input(i),
                            O::Computed => RawOutputColumn::Computed,
                        })
                        .collect(),
                })),
        }
    }

    /// `transformer.process-columns` (1.1). Only called after `column_plan` returned a plan,
    /// which a 1.0 plugin never does.
    pub fn process_columns(
        &self,
        store: &mut Store<PluginState>,
        h: ResourceAny,
        batch: Segments,
    ) -> Call<RawColumnResult> {
        match self {
            Bound::V1_0(_) => Err(wasmtime::Error::msg("`process-columns` is not in ABI 1.0")),
            Bound::V1_1(_, f) => Ok(f
                .call(store, (h, batch))?
                .0
                .map(|r| RawColumnResult {
                    selection: r.selection,
                    computed: r.computed,
                })
                .map_err(GuestError::from)),
        }
    }
}
