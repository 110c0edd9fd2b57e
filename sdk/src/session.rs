//! One open transformer driven with IPC bytes: the code between the WIT glue and a
//! [`Transform`]. The harness drives it natively, so unit tests cover the same path.

use std::sync::Arc;

use arrow_schema::SchemaRef;

use crate::ipc::{InputDecoder, OutputEncoder};
use crate::{Config, Error, Transform};

/// A [`Transform`] with its IPC decoder and encoder.
pub struct Session<T> {
    transform: T,
    input: InputDecoder,
    output: OutputEncoder,
}

impl<T: Transform> Session<T> {
    /// `open`: decode the input schema, open the transform, cache its output schema.
    pub fn open(config: &Config, input_schema: &[u8], state: Option<&[u8]>) -> Result<Self, Error> {
        let input = InputDecoder::new(input_schema)?;
        let transform = T::open(config, Arc::clone(input.schema()), state)?;
        let output = OutputEncoder::new(transform.output_schema())?;
        Ok(Session {
            transform,
            input,
            output,
        })
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
