//! Column plans (ABI 1.1) on the host side: check a plugin's declared plan against its
//! schemas, send it only the columns it reads, and build the output batch from the input
//! columns it passes through, its row selection and its computed columns.
//!
//! The pass-through columns never enter the sandbox: they are the host's own, already
//! validated arrays, filtered here with arrow's kernel when the plugin selects rows.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::compute::FilterBuilder;
use arrow::datatypes::{Schema, SchemaRef};

use crate::abi::{RawOutputColumn, RawPlan};

/// Where one output column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Input column by index, passed through.
    Input(usize),
    /// The next computed column.
    Computed,
}

/// A plugin's checked column plan.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// Input columns sent to the plugin, ascending.
    pub reads: Vec<usize>,
    /// Whether the plugin returns a selection.
    pub selects: bool,
    /// Source of each output column.
    pub output: Vec<Source>,
    /// Schema of the batches sent: the input fields at `reads`.
    pub read_schema: SchemaRef,
    /// Schema of the computed columns: the output fields at the computed positions.
    pub computed_schema: SchemaRef,
}

impl ColumnPlan {
    /// Check `raw` against the plugin's input and output schemas; the message names the
    /// first inconsistency.
    pub fn check(raw: RawPlan, input: &Schema, output: &Schema) -> Result<ColumnPlan, String> {
        let width = input.fields().len();
        let reads: Vec<usize> = raw.reads.iter().map(|&r| r as usize).collect();
        if let Some(w) = reads.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "`reads` must be strictly ascending, but {} comes before {}",
                w[0], w[1]
            ));
        }
        if let Some(&r) = reads.iter().find(|&&r| r >= width) {
            return Err(format!(
                "`reads` names input column {r}, but the input has {width} columns"
            ));
        }
        if raw.output.len() != output.fields().len() {
            return Err(format!(
                "it describes {} output columns, but the output schema has {}",
                raw.output.len(),
                output.fields().len()
            ));
        }
        let mut sources = Vec::with_capacity(raw.output.len());
        let mut computed = Vec::new();
        for (i, (src, field)) in raw.output.iter().zip(output.fields()).enumerate() {
            match *src {
                RawOutputColumn::Input(j) => {
                    let j = j as usize;
                    match input.fields().get(j) {
                        Some(f) if f == field => sources.push(Source::Input(j)),
                        Some(f) => {
                            return Err(format!(
                                "output column {i} `{}: {}` is said to be input column {j}, which is `{}: {}` (a passed-through column must keep its field)",
                                field.name(),
                                field.data_type(),
                                f.name(),
                                f.data_type()
                            ));
                        }
                        None => {
                            return Err(format!(
                                "output column {i} `{}` is said to be input column {j}, but the input has {width} columns",
                                field.name()
                            ));
                        }
                    }
                }
                RawOutputColumn::Computed => {
                    sources.push(Source::Computed);
                    computed.push(Arc::clone(field));
                }
            }
        }
        let read_schema = Arc::new(input.project(&reads).map_err(|e| e.to_string())?);
        Ok(ColumnPlan {
            reads,
            selects: raw.selects,
            output: sources,
            read_schema,
            computed_schema: Arc::new(Schema::new(computed)),
        })
    }

    /// The part of `batch` the plugin reads.
    pub fn project(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        batch.project(&self.reads).map_err(|e| e.to_string())
    }

    /// Check the selection bitmap for a batch of `rows` rows; returns it as bits and the
    /// number of rows kept.
    pub fn selection(&self, rows: usize, selection: Option<Vec<u8>>) -> Result<(Option<BooleanBuffer>, usize), String> {
        match (self.selects, selection) {
            (true, Some(bytes)) => {
                if bytes.len() != rows.div_ceil(8) {
                    return Err(format!(
                        "returned a selection of {} bytes for {rows} rows; it must have ceil({rows} / 8) = {}",
                        bytes.len(),
                        rows.div_ceil(8)
                    ));
                }
                let bits = BooleanBuffer::new(Buffer::from_vec(bytes), 0, rows);
                let kept = bits.count_set_bits();
                Ok((Some(bits), kept))
            }
            (true, None) => Err("returned no selection, but its column plan selects rows".into()),
            (false, Some(_)) => Err("returned a selection, but its column plan does not select rows".into()),
            (false, None) => Ok((None, rows)),
        }
    }

    /// The output batch: input columns of `batch` (filtered by `selection`) and `computed`
    /// columns (already checked against [`ColumnPlan::computed_schema`]) in plan order.
    pub fn assemble(
        &self,
        output: &SchemaRef,
        batch: &RecordBatch,
        selection: Option<BooleanBuffer>,
        kept: usize,
        computed: Vec<ArrayRef>,
    ) -> Result<RecordBatch, String> {
        // Keeping every row needs no kernel: the columns are shared as they are.
        let filter = selection
            .filter(|s| kept != s.len())
            .map(|s| FilterBuilder::new(&BooleanArray::new(s, None)).optimize().build());
        let mut computed = computed.into_iter();
        let mut columns = Vec::with_capacity(self.output.len());
        for src in &self.output {
            columns.push(match *src {
                Source::Input(j) => match &filter {
                    Some(f) => f.filter(batch.column(j)).map_err(|e| e.to_string())?,
                    None => Arc::clone(batch.column(j)),
                },
                Source::Computed => computed.next().ok_or("too few computed columns")?,
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(kept));
        RecordBatch::try_new_with_options(Arc::clone(output), columns, &options).map_err(|e| e.to_string())
    }
}
