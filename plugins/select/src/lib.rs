//! `select`: keeps, reorders and renames columns.
//!
//! Config: `columns` (required), a comma-separated list; each item is `name` or
//! `name as new_name` (`as` in any case; names may be `"double quoted"`). The output has
//! exactly these columns, in this order; a column may be listed twice under two names.

use std::sync::Arc;

use sluice_sdk::arrow_array::{RecordBatch, RecordBatchOptions};
use sluice_sdk::arrow_schema::{Field, Schema, SchemaRef};
use sluice_sdk::{ColumnOutput, ColumnPlan, Columns, Config, Error, OutputColumn, PluginInfo, Transform};

/// The select transform.
pub struct Select {
    indices: Vec<usize>,
    schema: SchemaRef,
    input: SchemaRef,
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(s)
}

/// Split one list item into (source, output name).
fn item(raw: &str) -> Result<(String, String), Error> {
    let s = raw.trim();
    let lower = s.to_ascii_lowercase();
    // The last ` as ` separates the rename, so a quoted name may contain " as ".
    let split = lower.rmatch_indices(" as ").next().map(|(i, _)| (&s[..i], &s[i + 4..]));
    let (src, dst) = match split {
        Some((src, dst)) => (unquote(src), unquote(dst)),
        None => (unquote(s), unquote(s)),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "config key `columns`: `{raw}` is not `name` or `name as new_name`"
        )));
    }
    Ok((src.to_string(), dst.to_string()))
}

/// Parse the `columns` list into (source, output name) pairs.
pub fn parse_columns(list: &str) -> Result<Vec<(String, String)>, Error> {
    if list.trim().is_empty() {
        return Err(Error::InvalidConfig(
            "config key `columns` is empty: list at least one column".into(),
        ));
    }
    list.split(',').map(item).collect()
}

impl Transform for Select {
    const INFO: PluginInfo = PluginInfo {
        name: "select",
        version: "1.0.0",
        description: "Keeps, reorders and renames columns (`columns=a, b as c`).",
        stateful: false,
    };

    fn open(config: &Config, input_schema: SchemaRef, _state: Option<&[u8]>) -> Result<Self, Error> {
        config.check_known(&["columns"])?;
        let items = parse_columns(config.require("columns")?)?;
        let mut indices = Vec::with_capacity(items.len());
        let mut fields = Vec::with_capacity(items.len());
        for (src, dst) in &items {
            let i = input_schema.index_of(src).map_err(|_| {
                let names: Vec<String> = input_schema
                    .fields()
                    .iter()
                    .map(|f| format!("`{}`", f.name()))
                    .collect();
                Error::InvalidConfig(format!(
                    "config key `columns`: unknown column `{src}`; the input has {}",
                    names.join(", ")
                ))
            })?;
            if fields.iter().any(|f: &Field| f.name() == dst) {
                return Err(Error::InvalidConfig(format!(
                    "config key `columns`: the output would have two columns named `{dst}`; rename one with `as`"
                )));
            }
            indices.push(i);
            fields.push(input_schema.field(i).clone().with_name(dst));
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, input_schema.metadata().clone()));
        Ok(Select {
            indices,
            schema,
            input: input_schema,
        })
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
        let columns = self.indices.iter().map(|&i| Arc::clone(batch.column(i))).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(vec![RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?])
    }

    /// Columns kept under their own name pass through the host without entering the
    /// sandbox; only renamed columns are read (and returned under the new name).
    fn column_plan(&self) -> Option<ColumnPlan> {
        let renamed: Vec<usize> = self.renamed().map(|(_, i)| i).collect();
        let output = self
            .indices
            .iter()
            .zip(self.schema.fields())
            .map(|(&i, f)| {
                if self.input.field(i) == f.as_ref() {
                    OutputColumn::Input(i)
                } else {
                    OutputColumn::Computed
                }
            })
            .collect();
        Some(ColumnPlan {
            reads: {
                let mut r = renamed;
                r.sort_unstable();
                r.dedup();
                r
            },
            selects: false,
            output,
        })
    }

    fn process_columns(&mut self, columns: &Columns) -> Result<ColumnOutput, Error> {
        let computed = self
            .renamed()
            .map(|(_, i)| columns.column(i).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ColumnOutput {
            selection: None,
            computed,
        })
    }
}

impl Select {
    /// (output position, input index) of every output column whose name differs from its
    /// input column's, in output order.
    fn renamed(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.indices
            .iter()
            .zip(self.schema.fields())
            .enumerate()
            .filter(|(_, (i, f))| self.input.field(**i) != f.as_ref())
            .map(|(pos, (&i, _))| (pos, i))
    }
}

sluice_sdk::export_plugin!(Select);

#[cfg(test)]
mod tests {
    use sluice_sdk::arrow_array::{ArrayRef, Int32Array, StringViewArray};
    use sluice_sdk::arrow_schema::DataType;
    use sluice_sdk::harness::{assert_batches_eq, run_native};

    use super::*;

    fn input() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Utf8View, true),
            Field::new("c d", DataType::Int32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef,
                Arc::new(StringViewArray::from(vec![Some("x"), None])),
                Arc::new(Int32Array::from(vec![Some(5), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn reorders_and_renames() {
        let b = input();
        let out = run_native::<Select>(
            &[("columns", r#" b AS bee, a,"c d" as cd, a as a2"#)],
            b.schema(),
            &[b.clone(), b.slice(0, 0)],
        )
        .unwrap();
        let names: Vec<String> = out[0].schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["bee", "a", "cd", "a2"]);
        assert!(!out[0].schema().field(1).is_nullable(), "nullability is kept");
        let schema = out[0].schema();
        let expected = RecordBatch::try_new(
            schema,
            vec![
                Arc::clone(b.column(1)),
                Arc::clone(b.column(0)),
                Arc::clone(b.column(2)),
                Arc::clone(b.column(0)),
            ],
        )
        .unwrap();
        assert_batches_eq(&out, &[expected]);
        assert_eq!(out[1].num_rows(), 0);
    }

    #[test]
    fn errors_list_the_columns() {
        let b = input();
        let err = |cols: &str| match run_native::<Select>(&[("columns", cols)], b.schema(), &[]) {
            Err(Error::InvalidConfig(m)) => m,
            o => panic!("{cols}: {o:?}"),
        };
        let e = err("a, z");
        assert!(e.contains("`z`") && e.contains("`a`, `b`, `c d`"), "{e}");
        assert!(err("a, b as a").contains("two columns named `a`"));
        assert!(err(" ").contains("empty"));
        assert!(err("a,,b").contains("is not `name`"));
        assert!(err("a as ").contains("unknown column `a as`") || err("a as ").contains("is not"));
    }
}
