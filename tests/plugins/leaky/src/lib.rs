//! `leaky`: a test plugin with the two bugs `sluice test` must catch. It appends an `Int64`
//! column `n`, computed according to config `leak`:
//!
//! - `clock`: the wall clock in seconds. The sandbox allows reading it, and the host fixes
//!   it per run, so a single run looks deterministic; a run at another logical time differs.
//! - `state`: a running row number across batches that `checkpoint` forgets, so a run
//!   resumed from a checkpoint restarts the numbering.
//! - `none`: the same running row number, kept correctly in the checkpoint (the control).

use std::sync::Arc;

use sluice_sdk::arrow_array::{ArrayRef, Int64Array, RecordBatch};
use sluice_sdk::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_sdk::{Config, Error, PluginInfo, Transform};

/// Which bug to have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leak {
    Clock,
    State,
    None,
}

/// The leaky transform.
pub struct Leaky {
    leak: Leak,
    schema: SchemaRef,
    rows: i64,
}

impl Transform for Leaky {
    const INFO: PluginInfo = PluginInfo {
        name: "leaky",
        version: "1.0.0",
        description: "Test plugin: leaks the clock into its output or forgets state at checkpoints.",
        stateful: true,
    };

    fn open(config: &Config, input_schema: SchemaRef, state: Option<&[u8]>) -> Result<Self, Error> {
        config.check_known(&["leak"])?;
        let leak = match config.require("leak")? {
            "clock" => Leak::Clock,
            "state" => Leak::State,
            "none" => Leak::None,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "`leak` is `{other}`; use `clock`, `state` or `none`"
                )));
            }
        };
        let rows = match state {
            Some(s) if s.len() == 8 => i64::from_le_bytes(s.try_into().expect("8 bytes")),
            _ => 0,
        };
        let mut fields: Vec<Field> = input_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("n", DataType::Int64, false));
        Ok(Leaky {
            leak,
            schema: Arc::new(Schema::new(fields)),
            rows,
        })
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
        let n = batch.num_rows() as i64;
        let values: Vec<i64> = match self.leak {
            Leak::Clock => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(-1);
                vec![now; n as usize]
            }
            Leak::State | Leak::None => (self.rows..self.rows + n).collect(),
        };
        self.rows += n;
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(values)) as ArrayRef);
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map(|b| vec![b])
            .map_err(|e| Error::Internal(e.to_string()))
    }

    fn checkpoint(&mut self) -> Result<Vec<u8>, Error> {
        Ok(match self.leak {
            Leak::State => vec![],
            _ => self.rows.to_le_bytes().to_vec(),
        })
    }
}

sluice_sdk::export_plugin!(Leaky);
