//! `echo`: a test plugin with no Arrow code at all. `output-schema` returns the input-schema
//! bytes and `process` returns its input bytes unchanged.
//!
//! It binds the WIT directly with `wit-bindgen` (not the SDK), so it stays tiny and its
//! built `.wasm` can be committed as the ABI 1.0.0 compatibility fixture: a host must keep
//! loading it forever.

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "transform-plugin",
    });
}

use bindings::exports::sluice::transform::transform::{Error, Guest, GuestTransformer, Ipc, PluginInfo, Transformer};

/// The plugin.
pub struct Echo;

/// One open echo transformer: remembers the input schema bytes.
pub struct EchoTransformer {
    schema: Vec<u8>,
}

impl Guest for Echo {
    type Transformer = EchoTransformer;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "echo".into(),
            version: "1.0.0".into(),
            description: "Returns its input IPC bytes unchanged (ABI test fixture).".into(),
            stateful: false,
        }
    }
}

impl GuestTransformer for EchoTransformer {
    fn open(_config: Vec<(String, String)>, input_schema: Ipc, _state: Option<Vec<u8>>) -> Result<Transformer, Error> {
        Ok(Transformer::new(EchoTransformer { schema: input_schema }))
    }

    fn output_schema(&self) -> Ipc {
        self.schema.clone()
    }

    fn process(&self, batch: Ipc) -> Result<Ipc, Error> {
        Ok(batch)
    }

    fn finish(&self) -> Result<Ipc, Error> {
        // The input-schema stream is a valid output stream with zero batches.
        Ok(self.schema.clone())
    }

    fn checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(vec![])
    }
}

// Exports only exist in the wasm build: natively, the export names (with `:` and `@`)
// are not valid linker symbols, and `cargo test --workspace` links every member.
#[cfg(target_arch = "wasm32")]
bindings::export!(Echo with_types_in bindings);
