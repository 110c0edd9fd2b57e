//! One open transformer driven with IPC bytes: the code between the WIT glue and a
//! [`Transform`]. The harness drives it natively, so unit tests cover the same path.

use std::sync::Arc;

use arrow_schema::SchemaRef;

use crate::columns::{ColumnPlan, Columns};
use crate::ipc::{InputDecoder, OutputEncoder};
use crate::{Config, Error, Transform};

/// A [`Transform`] with its IPC decoder and encoder.
pub struct Session<T> {
    transform: T,
    input: InputDecoder,
    output: OutputEncoder,
    plan: Option<PlanSession>,
}

/// The column plan of a session, checked at open, with the codecs of its two streams.
pub struct PlanSession {
    plan: ColumnPlan,
    /// Decodes the batches of the columns read.
    read: InputDecoder,
    /// Encodes the computed columns.
    computed: OutputEncoder,
}

/// What `process-columns` returns: the selection bitmap (if the plan selects) and the IPC
/// stream of the computed columns (empty when there are none).
pub struct ColumnsResult {
    /// One bit per input row, least significant bit first.
    pub selection: Option<Vec<u8>>,
    /// The computed columns as one IPC batch.
    pub computed: Vec<u8>,
}

impl<T: Transform> Session<T> {
    /// `open`: decode the input schema, open the transform, cache its output schema.
    pub fn open(config: &Config, input_schema: &[u8], state: Option<&[u8]>) -> Result<Self, Error> {
        let input = InputDecoder::new(input_schema)?;
        let transform = T::open(config, Arc::clone(input.schema()), state)?;
        let output = OutputEncoder::new(transform.output_schema())?;
        let plan = match transform.column_plan() {
            None => None,
            Some(plan) => {
                let (read, computed) = plan.check(input.schema(), &transform.output_schema())?;
                Some(PlanSession {
                    read: InputDecoder::new(&crate::ipc::encode_all(&read, &[])?)?,
                    computed: OutputEncoder::new(computed)?,
                    plan,
                })
            }
        };
        Ok(Session {
            transform,
            input,
            output,
            plan,
        })
    }

    /// The column plan checked at open, if the transform declared one.
    pub fn column_plan(&self) -> Option<&ColumnPlan> {
        self.plan.as_ref().map(|p| &p.plan)
    }

    /// `process-columns`: the columns read in, the selection and computed columns out.
    pub fn process_columns(&mut self, batch: Vec<u8>) -> Result<ColumnsResult, Error> {
        let p = self.plan.as_mut().ok_or_else(|| {
            Error::Internal("`process-columns` called, but the transform declared no column plan".into())
        })?;
        let read = p.read.decode(batch)?;
        let width = self.input.schema().fields().len();
        let cols = Columns::new(width, &p.plan.reads, &read);
        let out = self.transform.process_columns(&cols)?;
        let out = out.check(&p.plan, read.num_rows(), p.computed.schema())?;
        let selection = out.selection.as_ref().map(|s| s.sliced().as_slice().to_vec());
        let computed = if out.computed.is_empty() {
            Vec::new()
        } else {
            let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(out.kept));
            let batch =
                arrow_array::RecordBatch::try_new_with_options(Arc::clone(p.computed.schema()), out.computed, &options)
                    .map_err(|e| Error::Internal(format!("process_columns broke its column plan: {e}")))?;
            p.computed.encode(vec![batch])?
        };
        Ok(ColumnsResult { selection, computed })
    }

    /// The input schema given at open time.
    pub fn input_schema(&self) -> &SchemaRef {
        self.input.schema()
    }

    /// `output-schema`: the output schema alone, as an IPC stream.
    pub fn output_schema_ipc(&self) -> &[u8] {
        self.output.schema_ipc()
    }

    /// `process`: one input batch in, the output stream out.
    pub fn process(&mut self, batch: Vec<u8>) -> Result<Vec<u8>, Error> {
        let batch = self.input.decode(batch)?;
        let out = self.transform.process(batch)?;
        self.output.encode(out)
    }

    /// `finish`: flush what the transform still holds.
    pub fn finish(&mut self) -> Result<Vec<u8>, Error> {
        let out = self.transform.finish()?;
        self.output.encode(out)
    }

    /// `checkpoint`: the transform's state.
    pub fn checkpoint(&mut self) -> Result<Vec<u8>, Error> {
        self.transform.checkpoint()
    }
}
