//! `filter`: keeps the rows that match a predicate; the output schema is the input schema.
//!
//! Config: `predicate` (required), a conjunction of conditions, e.g.
//! `l_discount between 0.05 and 0.07 and l_quantity < 24`. See [`parse`] for the grammar.
//!
//! Each literal is cast to its column's type once, at open (an error names the literal,
//! the column and the type); each batch then costs one arrow-ord comparison kernel per
//! condition against a `Scalar` and an `and`. The plugin declares a column plan: it reads
//! only the predicate's columns and returns the selection, and the host filters the other
//! columns itself, so they never cross the sandbox boundary. SQL null semantics:
//! a comparison with a null value is unknown, and unknown rows are dropped.
//!
//! Comparisons are exact where SQL's are: a decimal column compared with a literal that has
//! more decimal places is compared at the literal's scale (`d < 0.055`), and an integer
//! column compared with a fractional literal is compared as float64.

pub mod parse;

use std::sync::Arc;

use arrow_arith::boolean::{and, is_not_null, is_null, or};
use arrow_cast::cast::{CastOptions, cast_with_options};
use arrow_ord::cmp;
use sluice_sdk::arrow_array::{ArrayRef, BooleanArray, Scalar, StringArray};
use sluice_sdk::arrow_schema::{ArrowError, DataType, SchemaRef};
use sluice_sdk::{ColumnOutput, ColumnPlan, Columns, Config, Error, PluginInfo, Transform};

use parse::{Cond, Literal, Op};

/// What a condition does with its (cast) column.
enum Test {
    Cmp(Op, Scalar<ArrayRef>),
    Between(Scalar<ArrayRef>, Scalar<ArrayRef>, bool),
    IsNull(bool),
    In(Vec<Scalar<ArrayRef>>, bool),
}

/// One compiled condition.
struct Check {
    column: usize,
    /// Cast the column to this type first (dictionaries, widened decimals, int vs float).
    cast_to: Option<DataType>,
    test: Test,
}

/// The filter transform.
pub struct Filter {
    schema: SchemaRef,
    checks: Vec<Check>,
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

/// Decimal places written in a numeric literal (`0.055` -> 3).
fn literal_scale(n: &str) -> i8 {
    if n.contains(['e', 'E']) {
        return 0;
    }
    n.split_once('.')
        .map_or(0, |(_, f)| f.len().min(i8::MAX as usize) as i8)
}

fn is_integral(n: &str) -> bool {
    !n.contains(['.', 'e', 'E'])
}

/// The type a column and its literals are compared in.
fn compare_type(dt: &DataType, lits: &[&Literal]) -> DataType {
    let numbers = || {
        lits.iter().filter_map(|l| match l {
            Literal::Number(n) => Some(n.as_str()),
            _ => None,
        })
    };
    let scale = || numbers().map(literal_scale).max().unwrap_or(0);
    match dt {
        DataType::Dictionary(_, values) => compare_type(values, lits),
        d if d.is_integer() && !numbers().all(is_integral) => DataType::Float64,
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) if scale() > *s => {
            let ls = scale().min(38);
            DataType::Decimal128((*p as i16 + (ls - *s) as i16).clamp(1, 38) as u8, ls)
        }
        DataType::Decimal256(p, s) if scale() > *s => {
            let ls = scale().min(76);
            DataType::Decimal256((*p as i16 + (ls - *s) as i16).clamp(1, 76) as u8, ls)
        }
        d => d.clone(),
    }
}

fn is_string(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_temporal(dt: &DataType) -> bool {
    matches!(dt, DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _))
}

/// Cast `lit` to `target`, the comparison type of column `name` (of type `col_type`).
fn literal_scalar(
    lit: &Literal,
    target: &DataType,
    name: &str,
    col_type: &DataType,
) -> Result<Scalar<ArrayRef>, Error> {
    let mismatch = |what: &str| {
        Error::InvalidConfig(format!(
            "config key `predicate`: {what} {lit} cannot be compared with column `{name}` of type {col_type}"
        ))
    };
    let text = match lit {
        Literal::Number(n) if is_string(target) => {
            return Err(Error::InvalidConfig(format!(
                "config key `predicate`: number {n} cannot be compared with column `{name}` of type {col_type}; quote it to compare as text: '{n}'"
            )));
        }
        Literal::Number(n) => n,
        Literal::Str(s) => s,
        Literal::Date(s) | Literal::Timestamp(s) if is_temporal(target) => s,
        Literal::Date(_) | Literal::Timestamp(_) => return Err(mismatch("date/time literal")),
        Literal::Bool(b) if *target == DataType::Boolean => {
            if *b {
                "true"
            } else {
                "false"
            }
        }
        Literal::Bool(_) => return Err(mismatch("boolean")),
    };
    let array = StringArray::from(vec![text]);
    let cast = cast_with_options(&array, target, &strict()).map_err(|e| {
        Error::InvalidConfig(format!(
            "config key `predicate`: literal {lit} does not cast to the type of column `{name}` ({target}): {e}"
        ))
    })?;
    if cast.is_null(0) {
        return Err(Error::InvalidConfig(format!(
            "config key `predicate`: literal {lit} does not cast to the type of column `{name}` ({target})"
        )));
    }
    Ok(Scalar::new(cast))
}

fn compile(cond: &Cond, schema: &SchemaRef) -> Result<Check, Error> {
    let name = match cond {
        Cond::Cmp(c, ..) | Cond::Between(c, ..) | Cond::IsNull(c, _) | Cond::In(c, ..) => c,
    };
    let column = schema.index_of(name).map_err(|_| {
        let names: Vec<String> = schema.fields().iter().map(|f| format!("`{}`", f.name())).collect();
        Error::InvalidConfig(format!(
            "config key `predicate`: unknown column `{name}`; the input has {}",
            names.join(", ")
        ))
    })?;
    let col_type = schema.field(column).data_type();
    let lits: Vec<&Literal> = match cond {
        Cond::Cmp(_, _, l) => vec![l],
        Cond::Between(_, lo, hi, _) => vec![lo, hi],
        Cond::IsNull(..) => vec![],
        Cond::In(_, list, _) => list.iter().collect(),
    };
    let target = compare_type(col_type, &lits);
    let scalar = |l: &Literal| literal_scalar(l, &target, name, col_type);
    let test = match cond {
        Cond::Cmp(_, op, l) => Test::Cmp(*op, scalar(l)?),
        Cond::Between(_, lo, hi, not) => Test::Between(scalar(lo)?, scalar(hi)?, *not),
        Cond::IsNull(_, not) => Test::IsNull(*not),
        Cond::In(_, list, not) => Test::In(list.iter().map(scalar).collect::<Result<_, _>>()?, *not),
    };
    let cast_to = match test {
        Test::IsNull(_) => None,
        _ => (target != *col_type).then_some(target),
    };
    Ok(Check { column, cast_to, test })
}

fn compare(op: Op, col: &ArrayRef, lit: &Scalar<ArrayRef>) -> Result<BooleanArray, ArrowError> {
    // Natively, arrow's kernels compare 128-bit values with vector instructions and win.
    if cfg!(target_arch = "wasm32")
        && let Some(r) = decimal::compare(op, col, lit)
    {
        return Ok(r);
    }
    match op {
        Op::Eq => cmp::eq(col, lit),
        Op::Ne => cmp::neq(col, lit),
        Op::Lt => cmp::lt(col, lit),
        Op::Le => cmp::lt_eq(col, lit),
        Op::Gt => cmp::gt(col, lit),
        Op::Ge => cmp::gt_eq(col, lit),
    }
}

impl Check {
    /// True, false or null (unknown) per row.
    fn eval(&self, col: &ArrayRef) -> Result<BooleanArray, ArrowError> {
        let cast;
        let col = match &self.cast_to {
            Some(t) => {
                cast = cast_with_options(col, t, &strict())?;
                &cast
            }
            None => col,
        };
        match &self.test {
            Test::Cmp(op, lit) => compare(*op, col, lit),
            Test::Between(lo, hi, false) => {
                let fast = if cfg!(target_arch = "wasm32") {
                    decimal::between(col, lo, hi)
                } else {
                    None
                };
                match fast {
                    Some(r) => Ok(r),
                    None => and(&cmp::gt_eq(col, lo)?, &cmp::lt_eq(col, hi)?),
                }
            }
            Test::Between(lo, hi, true) => or(&cmp::lt(col, lo)?, &cmp::gt(col, hi)?),
            Test::IsNull(false) => is_null(col),
            Test::IsNull(true) => is_not_null(col),
            Test::In(list, not) => {
                let (op, combine): (Op, fn(&BooleanArray, &BooleanArray) -> _) =
                    if *not { (Op::Ne, and) } else { (Op::Eq, or) };
                let mut acc = compare(op, col, &list[0])?;
                for lit in &list[1..] {
                    acc = combine(&acc, &compare(op, col, lit)?)?;
                }
                Ok(acc)
            }
        }
    }
}

impl Transform for Filter {
    const INFO: PluginInfo = PluginInfo {
        name: "filter",
        version: "1.0.3",
        description: "Keeps the rows that match a predicate (`predicate=...`).",
        stateful: false,
    };

    fn open(config: &Config, input_schema: SchemaRef, _state: Option<&[u8]>) -> Result<Self, Error> {
        config.check_known(&["predicate"])?;
        let conds = parse::parse(config.require("predicate")?)?;
        let checks = conds
            .iter()
            .map(|c| compile(c, &input_schema))
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            schema: input_schema,
            checks,
        })
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Reads only the predicate's columns; every column passes through, filtered by the host.
    fn column_plan(&self) -> Option<ColumnPlan> {
        Some(ColumnPlan::filter(
            self.schema.fields().len(),
            self.checks.iter().map(|c| c.column),
        ))
    }

    fn process_columns(&mut self, columns: &Columns) -> Result<ColumnOutput, Error> {
        let mut mask: Option<BooleanArray> = None;
        for check in &self.checks {
            let m = check.eval(columns.column(check.column)?).map_err(|e| {
                Error::from(e).context(format!(
                    "evaluating the predicate on column `{}`",
                    self.schema.field(check.column).name()
                ))
            })?;
            mask = Some(match mask {
                None => m,
                Some(prev) => and(&prev, &m)?,
            });
        }
        let mask = mask.unwrap_or_else(|| BooleanArray::from(vec![true; columns.num_rows()]));
        Ok(ColumnOutput {
            selection: Some(mask),
            computed: vec![],
        })
    }
}

sluice_sdk::export_plugin!(Filter);

mod decimal;
#[cfg(test)]
mod tests;
