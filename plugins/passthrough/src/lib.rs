//! `passthrough`: returns every batch unchanged (schema and values). Takes no configuration.
//!
//! Useful as a baseline: its cost is the plugin boundary itself. It declares a column plan
//! that reads no column, so under ABI 1.1 a call carries only the batch's row count (the
//! `echo` test plugin, built against ABI 1.0, still sends whole batches).

use std::sync::Arc;

use sluice_sdk::arrow_array::RecordBatch;
use sluice_sdk::arrow_schema::SchemaRef;
use sluice_sdk::{ColumnOutput, ColumnPlan, Columns, Config, Error, PluginInfo, Transform};

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

    /// Reads nothing: under ABI 1.1 only the row count of each batch enters the sandbox.
    fn column_plan(&self) -> Option<ColumnPlan> {
        Some(ColumnPlan::project(
            &(0..self.schema.fields().len()).collect::<Vec<_>>(),
        ))
    }

    fn process_columns(&mut self, _columns: &Columns) -> Result<ColumnOutput, Error> {
        Ok(ColumnOutput::default())
    }
}

sluice_sdk::export_plugin!(Passthrough);

#[cfg(test)]
mod tests;
