//! `bad-plan`: a test plugin for ABI 1.1 column plans. Config `mode` picks one way to break
//! the plan's contract, so the host's checks can be seen to catch each:
//!
//! - `good`: keeps every other row (selection) and appends `n: Int64`, the kept rows' input
//!   row numbers: a correct plan over all the input columns, read none of them.
//! - `unsorted-reads`, `read-out-of-range`, `wrong-field`, `short-output`: a plan that does
//!   not fit the schemas (refused at open).
//! - `short-selection`, `missing-selection`, `computed-rows`, `computed-garbage`,
//!   `computed-type`, `two-batches`: a `process-columns` result that breaks the plan.
//!
//! It binds the WIT directly: the SDK would catch these mistakes itself.

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/1.1",
        world: "transform-plugin",
    });
}

use std::cell::Cell;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bindings::exports::sluice::transform::transform::{
    ColumnPlan, ColumnResult, Error, Guest, GuestTransformer, Ipc, OutputColumn, PluginInfo, Transformer,
};

/// The plugin.
pub struct BadPlan;

/// One open transformer.
pub struct Open {
    mode: String,
    input: SchemaRef,
    output: SchemaRef,
    /// Input rows seen so far (the `n` of the next row).
    seen: Cell<i64>,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

fn stream(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>, Error> {
    let mut w = StreamWriter::try_new(Vec::new(), schema).map_err(internal)?;
    for b in batches {
        w.write(b).map_err(internal)?;
    }
    w.into_inner().map_err(internal)
}

fn n_field() -> Field {
    Field::new("n", DataType::Int64, true)
}

impl Guest for BadPlan {
    type Transformer = Open;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "bad-plan".into(),
            version: "1.0.0".into(),
            description: "Breaks its column plan in the way `mode` says.".into(),
            stateful: false,
        }
    }
}

impl GuestTransformer for Open {
    fn open(config: Vec<(String, String)>, input_schema: Ipc, _state: Option<Vec<u8>>) -> Result<Transformer, Error> {
        let mode = config
            .iter()
            .find(|(k, _)| k == "mode")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| Error::InvalidConfig("config key `mode` is required".into()))?;
        let input = StreamReader::try_new(std::io::Cursor::new(input_schema), None)
            .map_err(internal)?
            .schema();
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(n_field());
        let output = Arc::new(Schema::new(fields));
        Ok(Transformer::new(Open {
            mode,
            input,
            output,
            seen: Cell::new(0),
        }))
    }

    fn output_schema(&self) -> Ipc {
        stream(&self.output, &[]).unwrap_or_default()
    }

    fn process(&self, _batch: Ipc) -> Result<Ipc, Error> {
        Err(Error::Internal(
            "a plugin with a column plan gets `process-columns`, not `process`".into(),
        ))
    }

    fn finish(&self) -> Result<Ipc, Error> {
        stream(&self.output, &[])
    }

    fn checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(vec![])
    }

    fn column_plan(&self) -> Option<ColumnPlan> {
        let width = self.input.fields().len() as u32;
        let mut output: Vec<OutputColumn> = (0..width).map(OutputColumn::Input).collect();
        output.push(OutputColumn::Computed);
        let mut plan = ColumnPlan {
            reads: vec![],
            selects: true,
            output,
        };
        match self.mode.as_str() {
            "unsorted-reads" => plan.reads = vec![1, 0],
            "read-out-of-range" => plan.reads = vec![width + 5],
            "wrong-field" => plan.output[0] = OutputColumn::Input(1),
            "short-output" => {
                plan.output.pop();
            }
            _ => {}
        }
        Some(plan)
    }

    fn process_columns(&self, batch: Ipc) -> Result<ColumnResult, Error> {
        let mut reader = StreamReader::try_new(std::io::Cursor::new(batch), None).map_err(internal)?;
        let rows = reader
            .next()
            .ok_or_else(|| internal("no batch"))?
            .map_err(internal)?
            .num_rows();
        let first = self.seen.get();
        self.seen.set(first + rows as i64);
        // Keep the rows with an even input row number.
        let mut bits = vec![0u8; rows.div_ceil(8)];
        let mut kept = vec![];
        for r in 0..rows {
            let n = first + r as i64;
            if n % 2 == 0 {
                bits[r / 8] |= 1 << (r % 8);
                kept.push(n);
            }
        }
        let computed_schema = Schema::new(vec![n_field()]);
        let computed = |values: Vec<i64>| -> Result<Vec<u8>, Error> {
            let col: ArrayRef = Arc::new(Int64Array::from(values));
            let b = RecordBatch::try_new(Arc::new(computed_schema.clone()), vec![col]).map_err(internal)?;
            stream(&computed_schema, &[b])
        };
        let mut selection = Some(bits);
        let out = match self.mode.as_str() {
            "short-selection" => {
                selection = Some(vec![0xFF; rows.div_ceil(8) + 1]);
                computed(kept)?
            }
            "missing-selection" => {
                selection = None;
                computed(kept)?
            }
            "computed-rows" => {
                kept.push(-1);
                computed(kept)?
            }
            "computed-garbage" => b"not arrow".to_vec(),
            "computed-type" => {
                let s = Schema::new(vec![Field::new("n", DataType::Utf8, true)]);
                let col: ArrayRef = Arc::new(StringArray::from(
                    kept.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                ));
                let b = RecordBatch::try_new(Arc::new(s.clone()), vec![col]).map_err(internal)?;
                stream(&s, &[b])?
            }
            "two-batches" => {
                let col: ArrayRef = Arc::new(Int64Array::from(kept));
                let b = RecordBatch::try_new(Arc::new(computed_schema.clone()), vec![col]).map_err(internal)?;
                stream(&computed_schema, &[b.clone(), b])?
            }
            _ => computed(kept)?,
        };
        Ok(ColumnResult {
            selection,
            computed: out,
        })
    }
}

// Exports only exist in the wasm build: natively, the export names (with `:` and `@`)
// are not valid linker symbols, and `cargo test --workspace` links every member.
#[cfg(target_arch = "wasm32")]
bindings::export!(BadPlan with_types_in bindings);
