//! `derive`: appends a column computed by an arithmetic expression.
//!
//! It declares a column plan: only the columns the expression names enter the sandbox; the
//! host passes the others through and appends the result.
//!
//! Config:
//! - `name` (required): the new column; it must not exist yet.
//! - `expr` (required): `+ - * /` with parentheses over column names and numeric literals,
//!   e.g. `l_extendedprice * (1 - l_discount)`.
//! - `type` (optional): cast the result to this type, e.g. `decimal(18,4)`, `float64`,
//!   `int64` (or any arrow type name such as `Decimal128(18, 4)`).
//!
//! Typing follows arrow-arith: decimal * decimal is `Decimal128(p1+p2+1, s1+s2)`, decimal
//! +/- decimal keeps the larger scale; integers mixed with decimals become decimals; any
//! float makes the operation float64; `/` of two integers is a float64 division, as in
//! SQL engines like DuckDB. Overflow, division by zero and a final cast that does not fit
//! are errors (`invalid-input`) naming the column, never silent nulls.

pub mod expr;

use std::sync::Arc;

use arrow_cast::cast::{CastOptions, can_cast_types, cast_with_options};
use sluice_sdk::arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use sluice_sdk::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_sdk::{ColumnOutput, ColumnPlan, Columns, Config, Error, PluginInfo, Transform};

use expr::Expr;

/// The derive transform.
pub struct Derive {
    expr: Expr,
    /// The input columns `expr` reads (the column plan's `reads`).
    reads: Vec<usize>,
    /// `expr` over a batch of just the `reads` columns.
    read_expr: Expr,
    /// The schema of that batch.
    read_schema: SchemaRef,
    name: String,
    /// The expression's own result type.
    computed: DataType,
    schema: SchemaRef,
}

/// Parse the `type` key: friendly SQL names first, then arrow's own type syntax.
pub fn parse_type(s: &str) -> Result<DataType, Error> {
    let t = s.trim().to_ascii_lowercase().replace(' ', "");
    let simple = match t.as_str() {
        "int8" | "tinyint" => Some(DataType::Int8),
        "int16" | "smallint" => Some(DataType::Int16),
        "int32" | "int" | "integer" => Some(DataType::Int32),
        "int64" | "bigint" | "long" => Some(DataType::Int64),
        "uint8" => Some(DataType::UInt8),
        "uint16" => Some(DataType::UInt16),
        "uint32" => Some(DataType::UInt32),
        "uint64" => Some(DataType::UInt64),
        "float32" | "float" | "real" => Some(DataType::Float32),
        "float64" | "double" => Some(DataType::Float64),
        "utf8" | "string" | "varchar" | "text" => Some(DataType::Utf8),
        _ => None,
    };
    if let Some(dt) = simple {
        return Ok(dt);
    }
    let decimal = ["decimal128(", "decimal(", "numeric("]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .map(|rest| (rest, false))
        .or_else(|| t.strip_prefix("decimal256(").map(|rest| (rest, true)));
    if let Some((rest, wide)) = decimal {
        let parsed = rest.strip_suffix(')').and_then(|inner| {
            let (p, s) = inner.split_once(',').unwrap_or((inner, "0"));
            Some((p.parse::<u8>().ok()?, s.parse::<i8>().ok()?))
        });
        let max = if wide { 76 } else { 38 };
        return match parsed {
            Some((p, s)) if (1..=max).contains(&p) && s >= 0 && s as u8 <= p => Ok(if wide {
                DataType::Decimal256(p, s)
            } else {
                DataType::Decimal128(p, s)
            }),
            _ => Err(Error::InvalidConfig(format!(
                "invalid value `{s}` for config key `type`: expected decimal(precision, scale) with 1 <= precision <= {max} and 0 <= scale <= precision"
            ))),
        };
    }
    s.trim().parse::<DataType>().map_err(|_| {
        Error::InvalidConfig(format!(
            "invalid value `{s}` for config key `type`: expected int8..int64, uint8..uint64, float32, float64, decimal(p,s), or an arrow type name"
        ))
    })
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

impl Transform for Derive {
    const INFO: PluginInfo = PluginInfo {
        name: "derive",
        version: "1.0.2",
        description: "Appends a column computed by an arithmetic expression (`name`, `expr`, `type`).",
        stateful: false,
    };

    fn open(config: &Config, input_schema: SchemaRef, _state: Option<&[u8]>) -> Result<Self, Error> {
        config.check_known(&["name", "expr", "type"])?;
        let name = config.require("name")?.trim().to_string();
        if name.is_empty() {
            return Err(Error::InvalidConfig("config key `name` is empty".into()));
        }
        if input_schema.index_of(&name).is_ok() {
            return Err(Error::InvalidConfig(format!(
                "config key `name`: column `{name}` already exists; pick a new name (or `select` it away first)"
            )));
        }
        let source = config.require("expr")?;
        let expr = expr::parse(source, &input_schema)?;
        // Run the expression over zero rows: the kernels report the result type (or the
        // type error) exactly as they will on data.
        let empty = RecordBatch::new_empty(Arc::clone(&input_schema));
        let computed = expr
            .eval(&empty)
            .map_err(|e| Error::InvalidConfig(format!("config key `expr`: cannot compute `{source}`: {e}")))?
            .data_type()
            .clone();
        let output = match config.get("type") {
            None => computed.clone(),
            Some(t) => {
                let t = parse_type(t)?;
                if !can_cast_types(&computed, &t) {
                    return Err(Error::InvalidConfig(format!(
                        "config key `type`: the result of `{source}` is {computed}, which cannot be cast to {t}"
                    )));
                }
                t
            }
        };
        let mut fields: Vec<Arc<Field>> = input_schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(&name, output, true)));
        let schema = Arc::new(Schema::new_with_metadata(fields, input_schema.metadata().clone()));
        let reads = expr.columns();
        let read_expr = expr.remap(&|i| reads.binary_search(&i).unwrap_or(i));
        let read_schema = Arc::new(input_schema.project(&reads)?);
        Ok(Derive {
            reads,
            read_expr,
            read_schema,
            expr,
            name,
            computed,
            schema,
        })
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
        let value = self.compute(&self.expr, &batch)?;
        let mut columns = batch.columns().to_vec();
        columns.push(value);
        Ok(vec![RecordBatch::try_new(Arc::clone(&self.schema), columns)?])
    }

    /// Reads only the expression's columns and appends the result; the host passes the
    /// other columns through.
    fn column_plan(&self) -> Option<ColumnPlan> {
        Some(ColumnPlan::append(
            self.schema.fields().len() - 1,
            self.reads.iter().copied(),
            1,
        ))
    }

    fn process_columns(&mut self, columns: &Columns) -> Result<ColumnOutput, Error> {
        let arrays = self
            .reads
            .iter()
            .map(|&i| columns.column(i).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(columns.num_rows()));
        let read = RecordBatch::try_new_with_options(Arc::clone(&self.read_schema), arrays, &options)?;
        Ok(ColumnOutput {
            selection: None,
            computed: vec![self.compute(&self.read_expr, &read)?],
        })
    }
}

impl Derive {
    /// Evaluate `expr` over `batch` and cast the result to the output type.
    fn compute(&self, expr: &Expr, batch: &RecordBatch) -> Result<ArrayRef, Error> {
        let context = |e| Error::from(e).context(format!("computing column `{}`", self.name));
        let mut value = expr.eval(batch).map_err(context)?;
        let target = self.schema.field(self.schema.fields().len() - 1).data_type();
        if value.data_type() != target {
            debug_assert_eq!(value.data_type(), &self.computed);
            value = match expr::narrow_decimal(&value, target) {
                Some(v) => v,
                None => cast_with_options(&value, target, &strict())
                    .map_err(|e| Error::from(e).context(format!("casting column `{}` to {target}", self.name)))?,
            };
        }
        Ok(value)
    }
}

sluice_sdk::export_plugin!(Derive);

#[cfg(test)]
mod tests;
