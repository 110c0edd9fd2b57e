//! sluice host runtime: runs sandboxed WebAssembly transform plugins over Arrow data.
//!
//! How the parts fit:
//! - [`engine::Runtime`] owns the one wasmtime engine (determinism profile, compile cache)
//!   and loads plugins; [`plugin::Plugin`] is a compiled, ABI-checked component and
//!   [`plugin::Transformer`] a live instance in its own sandboxed store ([`sandbox`]).
//! - [`ipc`] moves batches across the boundary as Arrow IPC streams and validates what
//!   plugins return.
//! - [`source`] reads input files as bounded streams of batches; [`sink`] writes output.
//! - [`pipeline`] chains plugins and runs the whole job; [`outdir`] commits each chunk
//!   (temp file, fsync, rename) and [`journal`] records it, so a rerun resumes.
//! - [`conformance`] runs golden cases and the determinism/checkpoint checks (`sluice test`).
//! - [`embed`] is the library API: a loaded chain that transforms batches (what the Python
//!   binding in `host/python` wraps).
//! - [`cli`] is the `sluice` command.

pub mod abi;
pub mod cli;
pub mod columns;
pub mod conformance;
pub mod contain;
pub mod contract;
pub mod digest;
pub mod distributed;
pub mod embed;
pub mod engine;
pub mod error;
pub mod fault;
pub mod ipc;
pub mod journal;
pub mod kernels;
pub mod lineage;
pub mod outdir;
pub mod pipeline;
pub mod pipes;
pub mod plan;
pub mod plugin;
pub mod privacy;
pub mod progress;
pub mod quality;
pub mod sandbox;
pub mod sink;
pub mod source;
pub mod spec;
pub mod store;

pub use engine::{Runtime, RuntimeOptions};
pub use error::{Error, ExitCode, Result};
pub use plugin::{Plugin, PluginInfo, Transformer};
pub use sandbox::{Determinism, Limits};
