//! The ABI versions this host runs, behind one interface: bindings for 1.0.0
//! (`wit/transform.wit`) and 1.1.0 (`wit/1.1/transform.wit`), chosen per plugin by the
//! version of the `transform` interface it exports.
//!
//! Two sets of bindings rather than one: wasmtime finds exports semver-compatibly, so
//! 1.1 bindings would accept a 1.0 plugin's export and then miss `column-plan` at
//! instantiation. The version the plugin exports decides instead.

use wasmtime::Store;
use wasmtime::component::{InstancePre, Linker, ResourceAny};

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
    V1_1(v1_1::TransformPluginPre<PluginState>),
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
            Pre::V1_1(v1_1::TransformPluginPre::new(pre)?)
        } else {
            Pre::V1_0(v1_0::TransformPluginPre::new(pre)?)
        })
    }

    /// Instantiate the plugin in `store`.
    pub fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Bound> {
        Ok(match self {
            Pre::V1_0(p) => Bound::V1_0(p.instantiate(store)?),
            Pre::V1_1(p) => Bound::V1_1(p.instantiate(store)?),
        })
    }
}

/// A live plugin instance.
pub enum Bound {
    /// ABI 1.0.x
    V1_0(v1_0::TransformPlugin),
    /// ABI 1.1+
    V1_1(v1_1::TransformPlugin),
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
            Bound::V1_1(b) => {
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
            Bound::V1_1(b) => Ok(b
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
        batch: &Vec<u8>,
    ) -> Call<RawColumnResult> {
        match self {
            Bound::V1_0(_) => Err(wasmtime::Error::msg("`process-columns` is not in ABI 1.0")),
            Bound::V1_1(b) => Ok(b
                .sluice_transform_transform()
                .transformer()
                .call_process_columns(store, h, batch)?
                .map(|r| RawColumnResult {
                    selection: r.selection,
                    computed: r.computed,
                })
                .map_err(GuestError::from)),
        }
    }
}
