//! `mask`: replaces every value of some string columns with the lower-hex sha256 of its
//! UTF-8 bytes. Nulls stay null; the column keeps its type (`Utf8`, `LargeUtf8` or
//! `Utf8View`), so the output schema is the input schema.
//!
//! Config: `columns` (required), a comma-separated list of string columns.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use sluice_sdk::arrow_array::builder::{GenericStringBuilder, StringViewBuilder};
use sluice_sdk::arrow_array::cast::AsArray;
use sluice_sdk::arrow_array::{Array, ArrayRef, OffsetSizeTrait, RecordBatch};
use sluice_sdk::arrow_schema::{DataType, SchemaRef};
use sluice_sdk::{ColumnOutput, ColumnPlan, Columns, Config, Error, PluginInfo, Transform};

/// The mask transform.
pub struct Mask {
    columns: Vec<usize>,
    schema: SchemaRef,
}

/// Hex digest length.
const HEX_LEN: usize = 64;

/// Hashes strings into one reusable hex buffer.
struct Hasher {
    sha: Sha256,
    hex: [u8; HEX_LEN],
}

impl Hasher {
    fn new() -> Self {
        Hasher {
            sha: Sha256::new(),
            hex: [0; HEX_LEN],
        }
    }

    /// The lower-hex sha256 of `value`, valid until the next call.
    #[inline]
    fn hash(&mut self, value: &str) -> &str {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        self.sha.update(value.as_bytes());
        let digest = self.sha.finalize_reset();
        for (i, byte) in digest.iter().enumerate() {
            self.hex[2 * i] = DIGITS[(byte >> 4) as usize];
            self.hex[2 * i + 1] = DIGITS[(byte & 0xf) as usize];
        }
        // Only ASCII hex digits were written.
        std::str::from_utf8(&self.hex).unwrap_or_default()
    }
}

fn mask_offsets<O: OffsetSizeTrait>(array: &ArrayRef, hasher: &mut Hasher) -> ArrayRef {
    let array = array.as_string::<O>();
    let valid = array.len() - array.null_count();
    let mut out = GenericStringBuilder::<O>::with_capacity(array.len(), valid * HEX_LEN);
    for value in array.iter() {
        match value {
            Some(v) => out.append_value(hasher.hash(v)),
            None => out.append_null(),
        }
    }
    Arc::new(out.finish())
}

fn mask_view(array: &ArrayRef, hasher: &mut Hasher) -> ArrayRef {
    let array = array.as_string_view();
    let valid = array.len() - array.null_count();
    // One data block holding every digest (they are longer than 12 bytes, so not inlined).
    let block = (valid * HEX_LEN).clamp(HEX_LEN, i32::MAX as usize) as u32;
    let mut out = StringViewBuilder::with_capacity(array.len()).with_fixed_block_size(block);
    for value in array.iter() {
        match value {
            Some(v) => out.append_value(hasher.hash(v)),
            None => out.append_null(),
        }
    }
    Arc::new(out.finish())
}

/// Mask one string column (`Utf8`, `LargeUtf8` or `Utf8View`).
pub fn mask_column(array: &ArrayRef) -> Result<ArrayRef, Error> {
    let mut hasher = Hasher::new();
    match array.data_type() {
        DataType::Utf8 => Ok(mask_offsets::<i32>(array, &mut hasher)),
        DataType::LargeUtf8 => Ok(mask_offsets::<i64>(array, &mut hasher)),
        DataType::Utf8View => Ok(mask_view(array, &mut hasher)),
        other => Err(Error::InvalidInput(format!("mask needs a string column, got {other}"))),
    }
}

impl Transform for Mask {
    const INFO: PluginInfo = PluginInfo {
        name: "mask",
        version: "1.0.0",
        description: "Replaces string values with their lower-hex sha256 (`columns=a,b`).",
        stateful: false,
    };

    fn open(config: &Config, input_schema: SchemaRef, _state: Option<&[u8]>) -> Result<Self, Error> {
        config.check_known(&["columns"])?;
        let list = config.require("columns")?;
        let mut columns = vec![];
        for name in list.split(',').map(str::trim) {
            let i = input_schema.index_of(name).map_err(|_| {
                let names: Vec<String> = input_schema
                    .fields()
                    .iter()
                    .map(|f| format!("`{}`", f.name()))
                    .collect();
                Error::InvalidConfig(format!(
                    "config key `columns`: unknown column `{name}`; the input has {}",
                    names.join(", ")
                ))
            })?;
            let dt = input_schema.field(i).data_type();
            if !matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                return Err(Error::InvalidConfig(format!(
                    "config key `columns`: column `{name}` is {dt}; mask works on string columns (Utf8, LargeUtf8, Utf8View)"
                )));
            }
            if !columns.contains(&i) {
                columns.push(i);
            }
        }
        Ok(Mask {
            columns,
            schema: input_schema,
        })
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
        let mut columns = batch.columns().to_vec();
        for &i in &self.columns {
            columns[i] = mask_column(&columns[i])?;
        }
        Ok(vec![RecordBatch::try_new(Arc::clone(&self.schema), columns)?])
    }

    /// Reads only the masked columns and returns their replacements; the host passes the
    /// other columns through.
    fn column_plan(&self) -> Option<ColumnPlan> {
        let mut masked = self.columns.clone();
        masked.sort_unstable();
        Some(ColumnPlan::replace(
            self.schema.fields().len(),
            masked.iter().copied(),
            &masked,
        ))
    }

    fn process_columns(&mut self, columns: &Columns) -> Result<ColumnOutput, Error> {
        let mut masked = self.columns.clone();
        masked.sort_unstable();
        let computed = masked
            .iter()
            .map(|&i| mask_column(columns.column(i)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ColumnOutput {
            selection: None,
            computed,
        })
    }
}

sluice_sdk::export_plugin!(Mask);

#[cfg(test)]
mod tests {
    use sluice_sdk::arrow_array::{Int32Array, LargeStringArray, StringArray, StringViewArray};
    use sluice_sdk::arrow_schema::{Field, Schema};
    use sluice_sdk::harness::run_native;

    use super::*;

    const COURTS: &str = "6693edd1406628d43eddf5cde76bf22907ba89b0c4db885c7bc8528f439ac94d";
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn strings(col: &ArrayRef) -> Vec<Option<String>> {
        let c = arrow_cast_to_utf8(col);
        c.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn arrow_cast_to_utf8(col: &ArrayRef) -> StringArray {
        match col.data_type() {
            DataType::Utf8 => col.as_string::<i32>().clone(),
            DataType::LargeUtf8 => col.as_string::<i64>().iter().collect(),
            DataType::Utf8View => col.as_string_view().iter().collect(),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn known_digests_in_every_string_type() {
        let values = vec![Some("egular courts above the"), None, Some("")];
        for col in [
            Arc::new(StringArray::from(values.clone())) as ArrayRef,
            Arc::new(LargeStringArray::from(values.clone())),
            Arc::new(StringViewArray::from(values.clone())),
        ] {
            let dt = col.data_type().clone();
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int32, false),
                Field::new("l_comment", dt.clone(), true),
            ]));
            let b = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int32Array::from(vec![1, 2, 3])), col],
            )
            .unwrap();
            let out = run_native::<Mask>(
                &[("columns", "l_comment")],
                Arc::clone(&schema),
                std::slice::from_ref(&b),
            )
            .unwrap();
            assert_eq!(out[0].schema(), schema, "{dt}: type kept");
            assert_eq!(out[0].column(0), b.column(0));
            assert_eq!(
                strings(out[0].column(1)),
                [Some(COURTS.to_string()), None, Some(EMPTY.to_string())],
                "{dt}"
            );
        }
    }

    #[test]
    fn config_errors() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let err = |cols: &str| match run_native::<Mask>(&[("columns", cols)], Arc::clone(&schema), &[]) {
            Err(Error::InvalidConfig(m)) => m,
            o => panic!("{cols}: {o:?}"),
        };
        let e = err("s, n");
        assert!(e.contains("`n` is Int32"), "{e}");
        let e = err("x");
        assert!(e.contains("`x`") && e.contains("`n`, `s`"), "{e}");
    }

    #[test]
    fn hasher_is_reusable() {
        let mut h = Hasher::new();
        assert_eq!(h.hash(""), EMPTY);
        assert_eq!(h.hash("egular courts above the"), COURTS);
        assert_eq!(h.hash(""), EMPTY);
    }
}
