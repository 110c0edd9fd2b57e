//! The trait a plugin implements.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::columns::{ColumnOutput, ColumnPlan, Columns};
use crate::{Config, Error};

/// Static facts about a plugin, readable without opening it (WIT `plugin-info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short machine name, e.g. `filter`: lowercase letters, digits, `-` and `_`.
    pub name: &'static str,
    /// Semantic version of the plugin itself, e.g. `1.2.0`.
    pub version: &'static str,
    /// One-line human description.
    pub description: &'static str,
    /// True if the output of a batch can depend on earlier batches (see [`Transform::checkpoint`]).
    pub stateful: bool,
}

/// One configured transformation over one stream of record batches.
///
/// The SDK turns Arrow IPC bytes into [`RecordBatch`]es and back; an implementation only
/// sees Arrow values. Return errors, never panic: a panic traps the whole plugin instance.
///
/// # Example
///
/// ```
/// use sluice_sdk::{Config, Error, PluginInfo, Transform};
/// use sluice_sdk::arrow_array::RecordBatch;
/// use sluice_sdk::arrow_schema::SchemaRef;
///
/// struct Passthrough(SchemaRef);
///
/// impl Transform for Passthrough {
///     const INFO: PluginInfo = PluginInfo {
///         name: "passthrough",
///         version: "1.0.0",
///         description: "Returns its input unchanged.",
///         stateful: false,
///     };
///     fn open(config: &Config, schema: SchemaRef, _state: Option<&[u8]>) -> Result<Self, Error> {
///         config.check_known(&[])?;
///         Ok(Passthrough(schema))
///     }
///     fn output_schema(&self) -> SchemaRef {
///         self.0.clone()
///     }
///     fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
///         Ok(vec![batch])
///     }
/// }
/// // In the plugin crate: sluice_sdk::export_plugin!(Passthrough);
/// ```
pub trait Transform: Sized + 'static {
    /// What `info` reports to the host.
    const INFO: PluginInfo;

    /// Validate `config` against `input_schema` and build the transformer.
    ///
    /// `state` is what [`Transform::checkpoint`] returned in an earlier run, when the host
    /// resumes one; `None` on a fresh start.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a bad configuration (name the key and say what fits),
    /// [`Error::InvalidInput`] for a schema or state the plugin cannot work with.
    fn open(config: &Config, input_schema: SchemaRef, state: Option<&[u8]>) -> Result<Self, Error>;

    /// The schema of every batch this transformer returns; must not change after `open`.
    fn output_schema(&self) -> SchemaRef;

    /// Transform one input batch (whose schema is the open-time input schema) into zero or
    /// more output batches.
    ///
    /// The default runs the [column plan](Transform::column_plan) natively
    /// ([`crate::columns::process_with_plan`]): a transform with a plan need not write it.
    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
        crate::columns::process_with_plan(self, batch)
    }

    /// Declare a column plan (ABI 1.1): the input columns the transform reads and where each
    /// output column comes from. The host then sends only those columns to
    /// [`Transform::process_columns`] and passes the others through itself, which is much
    /// cheaper when a transform reads few of many columns. `None` (the default): whole
    /// batches go through [`Transform::process`]. Called once after `open`.
    fn column_plan(&self) -> Option<ColumnPlan> {
        None
    }

    /// Transform the columns the plan reads from one batch: return the row selection (if
    /// the plan selects) and the computed columns, one value per kept row.
    ///
    /// # Errors
    /// As for [`Transform::process`]; the default reports that there is no plan.
    fn process_columns(&mut self, columns: &Columns) -> Result<ColumnOutput, Error> {
        let _ = columns;
        Err(Error::Internal(
            "the transform declares no column plan, so `process_columns` must not be called".into(),
        ))
    }

    /// Called once after the last batch: return whatever is still buffered.
    fn finish(&mut self) -> Result<Vec<RecordBatch>, Error> {
        Ok(vec![])
    }

    /// Serialize the state needed to continue after the batches processed so far.
    ///
    /// Called at chunk boundaries when [`PluginInfo::stateful`] is true. The bytes must depend
    /// only on the data seen (no time, no randomness, no hash-map iteration order).
    fn checkpoint(&mut self) -> Result<Vec<u8>, Error> {
        Ok(vec![])
    }
}
