//! `passthrough`: returns every batch unchanged (schema and values). Takes no configuration.
//!
//! Useful as a baseline: its cost is the plugin boundary itself (IPC in and out).

use std::sync::Arc;

use sluice_sdk::arrow_array::RecordBatch;
use sluice_sdk::arrow_schema::SchemaRef;
use sluice_sdk::{Config, Error, PluginInfo, Transform};

/// The passthrough transform.
pub struct Passthrough {
    schema: SchemaRef,
}

impl Transform for Passthrough {
    const INFO: PluginInfo = PluginInfo {
        name: "passthrough",
        version: "1.0.0",
        description: "Returns its input unchanged.",
        stateful: false,
    };

    fn open(config: &Config, input_schema: SchemaRef, _state: Option<&[u8]>) -> Result<Self, Error> {
        config.check_known(&[])?;
        Ok(Passthrough { schema: input_schema })
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
        Ok(vec![batch])
    }
}

sluice_sdk::export_plugin!(Passthrough);

#[cfg(test)]
mod tests;
