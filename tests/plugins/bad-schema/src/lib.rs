//! `bad-schema`: a test plugin that breaks its contract. It declares an output schema of
//! one `Int64` column `x`, but every `process` returns a stream whose column `x` is `Utf8`.
//! The host must reject that output (a plugin contract violation), not pass it on.
//!
//! It binds the WIT directly: the SDK would catch the mismatch itself.

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "transform-plugin",
    });
}

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use bindings::exports::sluice::transform::transform::{Error, Guest, GuestTransformer, Ipc, PluginInfo, Transformer};

/// The plugin.
pub struct BadSchema;

/// One open transformer.
pub struct BadTransformer;

fn schema(dt: DataType) -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("x", dt, true)]))
}

fn stream(schema: &Schema, batch: Option<&RecordBatch>) -> Result<Vec<u8>, Error> {
    let internal = |e: arrow_schema::ArrowError| Error::Internal(e.to_string());
    let mut w = StreamWriter::try_new(Vec::new(), schema).map_err(internal)?;
    if let Some(b) = batch {
        w.write(b).map_err(internal)?;
    }
    w.into_inner().map_err(internal)
}

impl Guest for BadSchema {
    type Transformer = BadTransformer;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "bad-schema".into(),
            version: "1.0.0".into(),
            description: "Declares Int64 `x` but returns Utf8 `x` (host test fixture).".into(),
            stateful: false,
        }
    }
}

impl GuestTransformer for BadTransformer {
    fn open(_config: Vec<(String, String)>, _input_schema: Ipc, _state: Option<Vec<u8>>) -> Result<Transformer, Error> {
        Ok(Transformer::new(BadTransformer))
    }

    fn output_schema(&self) -> Ipc {
        stream(&schema(DataType::Int64), None).unwrap_or_default()
    }

    fn process(&self, _batch: Ipc) -> Result<Ipc, Error> {
        let utf8 = schema(DataType::Utf8);
        let values: ArrayRef = Arc::new(StringArray::from(vec!["not", "an", "int64"]));
        let batch =
            RecordBatch::try_new(Arc::clone(&utf8), vec![values]).map_err(|e| Error::Internal(e.to_string()))?;
        stream(&utf8, Some(&batch))
    }

    fn finish(&self) -> Result<Ipc, Error> {
        stream(&schema(DataType::Int64), None)
    }

    fn checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(vec![])
    }
}

// Exports only exist in the wasm build: natively, the export names (with `:` and `@`)
// are not valid linker symbols, and `cargo test --workspace` links every member.
#[cfg(target_arch = "wasm32")]
bindings::export!(BadSchema with_types_in bindings);
