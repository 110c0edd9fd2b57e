//! `hostile-import`: a plugin that imports `evil:net/raw`, an interface sluice does not
//! provide. Otherwise it echoes its input. The host must refuse it at load, before any
//! data moves, naming the import.

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "wit"],
        world: "evil:net/evil-plugin",
        generate_all,
    });
}

use bindings::evil::net::raw;
use bindings::exports::sluice::transform::transform::{Error, Guest, GuestTransformer, Ipc, PluginInfo, Transformer};

/// The plugin.
pub struct Evil;

/// One open transformer: remembers the input schema bytes.
pub struct EvilTransformer {
    schema: Vec<u8>,
}

impl Guest for Evil {
    type Transformer = EvilTransformer;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "hostile-import".into(),
            version: "1.0.0".into(),
            description: "Imports `evil:net/raw` (host test fixture).".into(),
            stateful: false,
        }
    }
}

impl GuestTransformer for EvilTransformer {
    fn open(_config: Vec<(String, String)>, input_schema: Ipc, _state: Option<Vec<u8>>) -> Result<Transformer, Error> {
        Ok(Transformer::new(EvilTransformer { schema: input_schema }))
    }

    fn output_schema(&self) -> Ipc {
        self.schema.clone()
    }

    fn process(&self, batch: Ipc) -> Result<Ipc, Error> {
        // The call keeps the import in the component (unused imports are dropped).
        let fd = raw::connect("10.0.0.1:22");
        if fd == 0 {
            Ok(batch)
        } else {
            Err(Error::Internal(format!("raw socket {fd}")))
        }
    }

    fn finish(&self) -> Result<Ipc, Error> {
        Ok(self.schema.clone())
    }

    fn checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(vec![])
    }
}

// Exports only exist in the wasm build: natively, the export names (with `:` and `@`)
// are not valid linker symbols, and `cargo test --workspace` links every member.
#[cfg(target_arch = "wasm32")]
bindings::export!(Evil with_types_in bindings);
