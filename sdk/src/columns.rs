//! Column plans (ABI 1.1): a transform declares which input columns it reads and how its
//! output is made of input columns, a row selection and computed columns. The host then
//! sends only the columns it reads and passes every other column through itself, so a
//! filter over 2 of 16 columns moves 2 columns through the sandbox instead of 16.
//!
//! A transform opts in with [`Transform::column_plan`] and implements
//! [`Transform::process_columns`]; its `process` can stay the default, which runs the plan
//! natively ([`process_with_plan`]), so native tests and benchmarks see the same results.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow_buffer::BooleanBuffer;
use arrow_schema::{Schema, SchemaRef};
use arrow_select::filter::{FilterBuilder, prep_null_mask_filter};

use crate::{Error, Transform};

/// Where one output column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputColumn {
    /// The input column at this index, passed through unchanged (the selection applies).
    Input(usize),
    /// The next computed column of [`ColumnOutput::computed`].
    Computed,
}

/// How a transform uses every batch: the columns it reads, whether it drops rows, and the
/// source of each output column (in output schema order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPlan {
    /// Input columns the transform reads, by index into the input schema (sorted, unique).
    pub reads: Vec<usize>,
    /// True if [`Transform::process_columns`] returns a row selection.
    pub selects: bool,
    /// One entry per output field.
    pub output: Vec<OutputColumn>,
}

fn sorted(reads: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut r: Vec<usize> = reads.into_iter().collect();
    r.sort_unstable();
    r.dedup();
    r
}

impl ColumnPlan {
    /// A row filter: reads `reads`, keeps all `width` input columns, returns a selection.
    pub fn filter(width: usize, reads: impl IntoIterator<Item = usize>) -> Self {
        ColumnPlan {
            reads: sorted(reads),
            selects: true,
            output: (0..width).map(OutputColumn::Input).collect(),
        }
    }

    /// Keeps all `width` input columns and appends `computed` new columns after them.
    pub fn append(width: usize, reads: impl IntoIterator<Item = usize>, computed: usize) -> Self {
        ColumnPlan {
            reads: sorted(reads),
            selects: false,
            output: (0..width)
                .map(OutputColumn::Input)
                .chain(std::iter::repeat_n(OutputColumn::Computed, computed))
                .collect(),
        }
    }

    /// Replaces the input columns `replaced` in place with computed columns (in input
    /// order), passing the other `width - replaced.len()` columns through.
    pub fn replace(width: usize, reads: impl IntoIterator<Item = usize>, replaced: &[usize]) -> Self {
        ColumnPlan {
            reads: sorted(reads),
            selects: false,
            output: (0..width)
                .map(|i| {
                    if replaced.contains(&i) {
                        OutputColumn::Computed
                    } else {
                        OutputColumn::Input(i)
                    }
                })
                .collect(),
        }
    }

    /// Outputs the input columns `keep`, in that order, reading nothing.
    pub fn project(keep: &[usize]) -> Self {
        ColumnPlan {
            reads: vec![],
            selects: false,
            output: keep.iter().copied().map(OutputColumn::Input).collect(),
        }
    }

    /// How many computed columns the output has.
    pub fn computed(&self) -> usize {
        self.output.iter().filter(|c| **c == OutputColumn::Computed).count()
    }

    /// Check the plan against the input and output schemas; returns the schemas of the
    /// columns read and of the computed columns.
    ///
    /// # Errors
    /// [`Error::Internal`] naming the first inconsistency (a bug in the transform).
    pub fn check(&self, input: &Schema, output: &Schema) -> Result<(SchemaRef, SchemaRef), Error> {
        let bad = |m: String| Err(Error::Internal(format!("the column plan is inconsistent: {m}")));
        if let Some(w) = self.reads.windows(2).find(|w| w[0] >= w[1]) {
            return bad(format!(
                "`reads` must be strictly ascending, found {} before {}",
                w[0], w[1]
            ));
        }
        if let Some(&r) = self.reads.iter().find(|&&r| r >= input.fields().len()) {
            return bad(format!(
                "reads column {r}, but the input has {} columns",
                input.fields().len()
            ));
        }
        if self.output.len() != output.fields().len() {
            return bad(format!(
                "it describes {} output columns, but the output schema has {}",
                self.output.len(),
                output.fields().len()
            ));
        }
        let mut computed = Vec::new();
        for (i, (src, field)) in self.output.iter().zip(output.fields()).enumerate() {
            match *src {
                OutputColumn::Input(j) => match input.fields().get(j) {
                    Some(f) if f == field => {}
                    Some(f) => {
                        return bad(format!(
                            "output column {i} `{}` ({}) is input column {j}, whose field `{}` ({}) differs",
                            field.name(),
                            field.data_type(),
                            f.name(),
                            f.data_type()
                        ));
                    }
                    None => {
                        return bad(format!(
                            "output column {i} is input column {j}, but the input has {} columns",
                            input.fields().len()
                        ));
                    }
                },
                OutputColumn::Computed => computed.push(Arc::clone(field)),
            }
        }
        let read = Arc::new(input.project(&self.reads).map_err(|e| Error::Internal(e.to_string()))?);
        Ok((read, Arc::new(Schema::new(computed))))
    }
}

/// The columns a transform reads from one batch, addressed by their input schema index.
#[derive(Debug, Clone)]
pub struct Columns {
    rows: usize,
    columns: Vec<Option<ArrayRef>>,
}

impl Columns {
    /// `read` holds the input columns at `reads` (in that order) of a batch of `width` columns.
    pub fn new(width: usize, reads: &[usize], read: &RecordBatch) -> Self {
        let mut columns = vec![None; width];
        for (&i, c) in reads.iter().zip(read.columns()) {
            columns[i] = Some(Arc::clone(c));
        }
        Columns {
            rows: read.num_rows(),
            columns,
        }
    }

    /// Rows in the batch.
    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// Input column `i`.
    ///
    /// # Errors
    /// [`Error::Internal`] if the plan does not read column `i`.
    pub fn column(&self, i: usize) -> Result<&ArrayRef, Error> {
        self.columns.get(i).and_then(Option::as_ref).ok_or_else(|| {
            Error::Internal(format!(
                "input column {i} was used but the column plan does not read it; add it to `reads`"
            ))
        })
    }
}

/// What [`Transform::process_columns`] returns for one batch.
#[derive(Debug, Clone, Default)]
pub struct ColumnOutput {
    /// The rows to keep (null counts as not kept); `Some` exactly when the plan selects.
    pub selection: Option<BooleanArray>,
    /// The computed columns in output order, one value per kept row.
    pub computed: Vec<ArrayRef>,
}

/// A checked [`ColumnOutput`]: the selection as plain bits, and the kept row count.
pub struct Checked {
    /// The selection without nulls, `rows` long; `None` when the plan does not select.
    pub selection: Option<BooleanBuffer>,
    /// Rows kept.
    pub kept: usize,
    /// The computed columns.
    pub computed: Vec<ArrayRef>,
}

impl ColumnOutput {
    /// Check the output against `plan`, a batch of `rows` rows and the computed schema.
    ///
    /// # Errors
    /// [`Error::Internal`] naming the mismatch (a bug in the transform).
    pub fn check(self, plan: &ColumnPlan, rows: usize, computed: &Schema) -> Result<Checked, Error> {
        let bad = |m: String| Err(Error::Internal(format!("process_columns broke its column plan: {m}")));
        let selection = match (plan.selects, self.selection) {
            (true, Some(s)) if s.len() == rows => Some(if s.null_count() > 0 {
                prep_null_mask_filter(&s).values().clone()
            } else {
                s.values().clone()
            }),
            (true, Some(s)) => return bad(format!("the selection has {} entries for {rows} rows", s.len())),
            (true, None) => return bad("the plan selects rows but no selection was returned".into()),
            (false, Some(_)) => return bad("a selection was returned but the plan does not select".into()),
            (false, None) => None,
        };
        let kept = selection.as_ref().map_or(rows, BooleanBuffer::count_set_bits);
        if self.computed.len() != computed.fields().len() {
            return bad(format!(
                "{} computed columns returned, the plan has {}",
                self.computed.len(),
                computed.fields().len()
            ));
        }
        for (c, f) in self.computed.iter().zip(computed.fields()) {
            if c.data_type() != f.data_type() {
                return bad(format!(
                    "computed column `{}` is {}, the output schema says {}",
                    f.name(),
                    c.data_type(),
                    f.data_type()
                ));
            }
            if c.len() != kept {
                return bad(format!(
                    "computed column `{}` has {} values for {kept} kept rows",
                    f.name(),
                    c.len()
                ));
            }
        }
        Ok(Checked {
            selection,
            kept,
            computed: self.computed,
        })
    }
}

/// Build the output batch of a plan from the whole input `batch` and a checked output:
/// what the host does with a plugin's `process-columns` result.
///
/// # Errors
/// [`Error::Internal`] if the columns do not fit `output` (nullability, say).
pub fn assemble(
    plan: &ColumnPlan,
    output: &SchemaRef,
    batch: &RecordBatch,
    out: Checked,
) -> Result<RecordBatch, Error> {
    // Keeping every row needs no kernel: the columns are shared as they are.
    let filter = out
        .selection
        .filter(|s| out.kept != s.len())
        .map(|s| FilterBuilder::new(&BooleanArray::new(s, None)).optimize().build());
    let mut computed = out.computed.into_iter();
    let mut columns = Vec::with_capacity(plan.output.len());
    for src in &plan.output {
        columns.push(match *src {
            OutputColumn::Input(j) => match &filter {
                Some(f) => f.filter(batch.column(j)).map_err(|e| Error::Internal(e.to_string()))?,
                None => Arc::clone(batch.column(j)),
            },
            OutputColumn::Computed => computed
                .next()
                .ok_or_else(|| Error::Internal("too few computed columns".into()))?,
        });
    }
    let options = RecordBatchOptions::new().with_row_count(Some(out.kept));
    RecordBatch::try_new_with_options(Arc::clone(output), columns, &options)
        .map_err(|e| Error::Internal(format!("process_columns broke its column plan: {e}")))
}

/// Run a transform's column plan natively on a whole batch: the default
/// [`Transform::process`] of a transform with a plan.
///
/// # Errors
/// What `process_columns` returns, or [`Error::Internal`] if there is no plan or the result
/// breaks it.
pub fn process_with_plan<T: Transform>(t: &mut T, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
    let plan = t
        .column_plan()
        .ok_or_else(|| Error::Internal("the transform implements neither `process` nor a column plan".into()))?;
    let output = t.output_schema();
    let (_, computed) = plan.check(batch.schema_ref(), &output)?;
    let read = batch.project(&plan.reads).map_err(|e| Error::Internal(e.to_string()))?;
    let cols = Columns::new(batch.num_columns(), &plan.reads, &read);
    let out = t.process_columns(&cols)?.check(&plan, batch.num_rows(), &computed)?;
    // A selection that keeps no row gives no batch, as the host does.
    if plan.selects && out.kept == 0 {
        return Ok(vec![]);
    }
    Ok(vec![assemble(&plan, &output, &batch, out)?])
}
