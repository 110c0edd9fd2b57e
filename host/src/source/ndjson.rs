//! Newline-delimited JSON input, with a given schema or one inferred from the first lines.
//!
//! The decoder is fed one line at a time so that a syntax error names its line; errors
//! found when a batch is assembled (types, UTF-8) name the batch's range of lines.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::json::reader::{Decoder, ReaderBuilder, infer_json_schema_from_iterator};

use super::{Batches, SourceOptions, arrow_message, decode_error};
use crate::error::{Error, Result};

/// Infer the schema of NDJSON file `path` from its first `opts.infer_rows` records.
///
/// Records are parsed here rather than by `infer_json_schema`, whose errors count lines
/// from the start of each record instead of the file.
pub(super) fn infer_schema(path: &Path, file: File, opts: &SourceOptions) -> Result<SchemaRef> {
    let max = if opts.infer_rows == 0 {
        usize::MAX
    } else {
        opts.infer_rows
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    // An I/O error is kept aside: inference only passes `ArrowError`s through.
    let mut io_error = None;
    let records = std::iter::from_fn(|| {
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) => line_no += 1,
                Err(e) => {
                    io_error = Some(e);
                    return None;
                }
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let value = serde_json::from_slice::<serde_json::Value>(&line).map_err(|e| {
                let text = e.to_string();
                // serde's position is within the line; keep its column, use our line.
                let text = text.rfind(" at line ").map_or(text.as_str(), |i| &text[..i]);
                ArrowError::JsonError(format!("invalid JSON at line {line_no}, column {}: {text}", e.column()))
            });
            return Some(value);
        }
    })
    .take(max);
    let inferred = infer_json_schema_from_iterator(records);
    if let Some(e) = io_error {
        return Err(Error::io("read", path, e));
    }
    let schema = inferred.map_err(|e| {
        decode_error(path, e, |m| {
            format!("failed to infer the schema of NDJSON input `{}`: {m}", path.display())
        })
    })?;
    if schema.fields().is_empty() {
        return Err(Error::input(format!(
            "NDJSON input `{}` has no fields in its first records; give a schema",
            path.display()
        )));
    }
    Ok(Arc::new(schema))
}

/// The batches of NDJSON file `path` decoded with `schema`.
pub(super) fn batches(path: &Path, file: File, schema: SchemaRef, opts: &SourceOptions) -> Result<Batches> {
    let inferred = opts.schema.is_none();
    let decoder = ReaderBuilder::new(schema)
        .with_batch_size(opts.batch_rows)
        // An inferred schema saw only the first lines: a field that appears later must
        // fail loudly, not vanish. A given schema may list a subset on purpose.
        .with_strict_mode(inferred)
        .build_decoder()
        .map_err(|e| decode_error(path, e, |m| m))?;
    Ok(Box::new(Lines {
        path: path.to_path_buf(),
        reader: BufReader::new(file),
        decoder,
        line: Vec::new(),
        pos: 0,
        line_no: 0,
        batch_first_line: None,
        record_first_line: 0,
        eof: false,
        hint: if inferred && opts.infer_rows > 0 {
            format!(
                "; the schema was inferred from the first {} lines: infer from more lines \
                 (0 reads them all) or give a schema",
                opts.infer_rows
            )
        } else {
            String::new()
        },
    }))
}

/// Feeds an NDJSON file to the decoder line by line, tracking line numbers.
struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    decoder: Decoder,
    /// The current line, and how much of it the decoder has taken.
    line: Vec<u8>,
    pos: usize,
    /// The 1-based number of the current line.
    line_no: u64,
    /// The line where the rows buffered in the decoder begin.
    batch_first_line: Option<u64>,
    /// The line where the last record the decoder started begins.
    record_first_line: u64,
    eof: bool,
    /// Appended to errors about values that do not fit the schema.
    hint: String,
}

impl Lines {
    /// Assemble the buffered rows into a batch.
    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        let first = self.batch_first_line.take().unwrap_or(self.line_no);
        let last = self.line_no;
        self.decoder.flush().map_err(|e| {
            let hint = if is_schema_mismatch(&e) { self.hint.as_str() } else { "" };
            decode_error(&self.path, e, |m| {
                let lines = if first == last {
                    format!("line {first}")
                } else {
                    format!("lines {first} to {last}")
                };
                format!(
                    "failed to read NDJSON input `{}` in {lines}: {m}{hint}",
                    self.path.display()
                )
            })
        })
    }
}

/// Whether `e` says a value does not fit the schema (rather than malformed JSON).
fn is_schema_mismatch(e: &ArrowError) -> bool {
    let m = arrow_message(e);
    m.contains("missing from schema") || m.contains("whilst decoding field")
}

impl Iterator for Lines {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pos < self.line.len() {
                let was_partial = self.decoder.has_partial_record();
                let consumed = match self.decoder.decode(&self.line[self.pos..]) {
                    Ok(n) => n,
                    Err(e) => {
                        let (path, line) = (&self.path, self.line_no);
                        return Some(Err(decode_error(path, e, |m| {
                            format!("failed to read NDJSON input `{}` at line {line}: {m}", path.display())
                        })));
                    }
                };
                if !was_partial && self.decoder.has_partial_record() {
                    self.record_first_line = self.line_no;
                }
                if self.batch_first_line.is_none() && !self.decoder.is_empty() {
                    self.batch_first_line = Some(self.line_no);
                }
                self.pos += consumed;
                if self.pos < self.line.len() {
                    // The decoder holds a full batch; the rest of the line starts the next.
                    return self.flush().transpose();
                }
                continue;
            }
            if self.eof {
                if self.decoder.has_partial_record() {
                    return Some(Err(Error::input(format!(
                        "failed to read NDJSON input `{}`: the last record (from line {}) is \
                         incomplete; the file is truncated",
                        self.path.display(),
                        self.record_first_line
                    ))));
                }
                return self.flush().transpose();
            }
            self.line.clear();
            self.pos = 0;
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => self.eof = true,
                Ok(_) => self.line_no += 1,
                Err(e) => return Some(Err(Error::io("read", &self.path, e))),
            }
        }
    }
}
