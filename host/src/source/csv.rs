//! CSV input, with a given schema or one inferred from the first rows of each file.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

use super::{Batches, SourceOptions, decode_error};
use crate::error::{Error, Result};

/// Infer the schema of CSV file `path` from its first `opts.infer_rows` records.
pub(super) fn infer_schema(path: &Path, file: File, opts: &SourceOptions) -> Result<SchemaRef> {
    let format = Format::default()
        .with_header(opts.csv_header)
        .with_delimiter(opts.csv_delimiter);
    let max = (opts.infer_rows > 0).then_some(opts.infer_rows);
    let (schema, _) = format.infer_schema(BufReader::new(file), max).map_err(|e| {
        let hint = hint(&e, true, opts.csv_delimiter, 0);
        decode_error(path, e, |m| {
            format!(
                "failed to infer the schema of CSV input `{}`: {m}{hint}",
                path.display()
            )
        })
    })?;
    let mut seen = HashSet::new();
    for field in schema.fields() {
        // Two columns of one name would be ambiguous to every plugin downstream.
        if !seen.insert(field.name()) {
            return Err(Error::input(format!(
                "the header of CSV input `{}` names column `{}` twice; rename one of them",
                path.display(),
                field.name()
            )));
        }
    }
    if schema.fields().is_empty() {
        return Err(Error::input(format!("CSV input `{}` has no columns", path.display())));
    }
    Ok(Arc::new(schema))
}

/// The batches of CSV file `path` decoded with `schema`.
pub(super) fn batches(path: &Path, file: File, schema: SchemaRef, opts: &SourceOptions) -> Result<Batches> {
    let given = opts.schema.is_some();
    let reader = ReaderBuilder::new(schema)
        .with_header(opts.csv_header)
        // With a given schema, a header in another order would silently swap columns.
        .with_header_validation(given)
        .with_delimiter(opts.csv_delimiter)
        .with_batch_size(opts.batch_rows)
        .build(file)
        .map_err(|e| decode_error(path, e, |m| m))?;
    let path: PathBuf = path.to_path_buf();
    let delimiter = opts.csv_delimiter;
    let infer_rows = opts.infer_rows;
    Ok(Box::new(reader.map(move |r| {
        r.map_err(|e| {
            let hint = hint(&e, given, delimiter, infer_rows);
            decode_error(&path, e, |m| {
                format!("failed to read CSV input `{}`: {}{hint}", path.display(), fix_line(&m))
            })
        })
    })))
}

/// What to try for a given CSV error.
fn hint(e: &ArrowError, given: bool, delimiter: u8, infer_rows: usize) -> String {
    let text = e.to_string();
    if text.contains("incorrect number of fields") || text.contains("unequal lengths") {
        format!(
            "; every row needs as many fields as the header: check the delimiter (`{}`) and \
             the quoting",
            char::from(delimiter).escape_default()
        )
    } else if text.contains("header does not match") {
        "; the given schema must list the columns in the file's order".to_string()
    } else if text.contains("Error while parsing value") && !given && infer_rows > 0 {
        format!(
            "; the schema was inferred from the first {infer_rows} rows: infer from more rows \
             (0 reads them all) or give a schema"
        )
    } else {
        String::new()
    }
}

/// Make the line number of a value parse error 1-based and count the header, as the
/// reader's other errors (and text editors) do.
///
/// arrow 60 reports "for column N at line L" with L the 0-based index of the row among
/// all lines, header included; the ragged-row error already uses 1-based line numbers.
fn fix_line(message: &str) -> String {
    const AT: &str = " at line ";
    if !message.starts_with("Error while parsing value") {
        return message.to_string();
    }
    let Some(i) = message.find(AT) else {
        return message.to_string();
    };
    let digits = &message[i + AT.len()..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    match digits[..end].parse::<u64>() {
        Ok(line) => format!("{}{AT}{}{}", &message[..i], line + 1, &digits[end..]),
        Err(_) => message.to_string(),
    }
}
