#![doc = include_str!("../README.md")]
//!
//! # How the parts fit
//!
//! - [`Transform`] is what a plugin implements, over Arrow [`RecordBatch`](arrow_array::RecordBatch)es.
//! - [`export_plugin!`] exports it through [`Adapter`], which implements the traits that
//!   `wit-bindgen` generates from `wit/1.1/transform.wit` (module [`bindings`]).
//! - [`session::Session`] sits between the two: it decodes the input IPC bytes, calls the
//!   transform and encodes its output (module [`ipc`]). The harness drives the same code.
//! - [`Config`] and [`Error`] are the configuration and the error variant of the ABI;
//!   [`log`] sends messages to the host.

pub mod adapter;
pub mod columns;
pub mod config;
pub mod error;
#[cfg(feature = "harness")]
pub mod harness;
pub mod ipc;
pub mod kernels;
pub mod log;
pub mod session;
pub mod transform;

/// Bindings generated from `wit/1.1/transform.wit` (world `transform-plugin`, ABI 1.1.0)
/// plus the host kernels of `wit/kernels/kernels.wit` (`sluice:kernels@1.0.0`), which a
/// component imports only if the plugin calls them.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: ["../wit/1.1", "../wit/kernels"],
        inline: "package sluice:sdk;
            world plugin {
                include sluice:transform/transform-plugin@1.1.0;
                import sluice:kernels/hash@1.0.0;
            }",
        world: "sluice:sdk/plugin",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "sluice_sdk::bindings",
    });
}

pub use adapter::{Adapter, Instance};
pub use columns::{ColumnOutput, ColumnPlan, Columns, OutputColumn};
pub use config::Config;
pub use error::Error;
pub use transform::{PluginInfo, Transform};

/// Arrow arrays and record batches.
pub use arrow_array;
/// Arrow buffers.
pub use arrow_buffer;
/// Arrow array data (layout-level access).
pub use arrow_data;
/// Arrow IPC, as used to cross the plugin boundary.
pub use arrow_ipc;
/// Arrow schemas, fields and data types.
pub use arrow_schema;
/// Arrow selection kernels (filter, take, concat).
pub use arrow_select;

/// The ABI version this SDK builds plugins for (`package sluice:transform@...` in the WIT).
pub const ABI_VERSION: &str = "1.1.0";
