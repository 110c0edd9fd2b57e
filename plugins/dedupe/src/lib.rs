//! `dedupe`: drops every row whose key was seen before, in this batch or an earlier one.
//! The first occurrence is kept and the input order is preserved; nulls compare equal to
//! each other, as in SQL `DISTINCT`. Floats compare by bit pattern after arrow's row
//! normalisation, so `0.0` and `-0.0` are different keys.
//!
//! Config: `key` (required), a comma-separated list of columns.
//!
//! Stateful: the set of seen keys ([`arrow_row`] encodings) is the checkpoint. Its bytes
//! are deterministic: a version byte, the key signature (names and types, so a state is
//! never restored under another key), then the keys sorted.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_row::{RowConverter, SortField};
use sluice_sdk::arrow_array::{BooleanArray, RecordBatch};
use sluice_sdk::arrow_schema::SchemaRef;
use sluice_sdk::arrow_select::filter::filter_record_batch;
use sluice_sdk::{Config, Error, PluginInfo, Transform};

/// Version of the checkpoint format.
const STATE_VERSION: u8 = 1;

/// The dedupe transform.
pub struct Dedupe {
    schema: SchemaRef,
    key: Vec<usize>,
    signature: String,
    converter: RowConverter,
    seen: HashSet<Box<[u8]>>,
}

/// Reads the checkpoint format; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(bad_state("it is truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| bad_state("it is truncated"))?,
        ))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = usize::try_from(self.u64()?).map_err(|_| bad_state("a length is too large"))?;
        self.take(n)
    }
}

fn bad_state(why: &str) -> Error {
    Error::InvalidInput(format!("cannot restore the dedupe state: {why}"))
}

fn decode_state(state: &[u8], signature: &str) -> Result<HashSet<Box<[u8]>>, Error> {
    let mut r = Reader(state);
    let version = r.take(1)?[0];
    if version != STATE_VERSION {
        return Err(bad_state(&format!(
            "it has format version {version}, this plugin reads version {STATE_VERSION}"
        )));
    }
    let stored = r.bytes()?;
    if stored != signature.as_bytes() {
        return Err(bad_state(&format!(
            "it was written for key `{}`, but the key is now `{signature}`",
            String::from_utf8_lossy(stored)
        )));
    }
    let count = r.u64()?;
    // Each key takes at least 8 bytes: a count beyond that is garbage, not a reason to
    // reserve memory.
    if count > (r.0.len() / 8) as u64 {
        return Err(bad_state("its key count does not match its length"));
    }
    let mut seen = HashSet::with_capacity(count as usize);
    for _ in 0..count {
        seen.insert(Box::from(r.bytes()?));
    }
    if !r.0.is_empty() {
        return Err(bad_state("it has trailing bytes"));
    }
    Ok(seen)
}

impl Transform for Dedupe {
    const INFO: PluginInfo = PluginInfo {
        name: "dedupe",
        version: "1.0.0",
        description: "Drops rows whose key was seen before (`key=a,b`); keeps the first.",
        stateful: true,
    };

    fn open(config: &Config, input_schema: SchemaRef, state: Option<&[u8]>) -> Result<Self, Error> {
        config.check_known(&["key"])?;
        let mut key = vec![];
        for name in config.require("key")?.split(',').map(str::trim) {
            let i = input_schema.index_of(name).map_err(|_| {
                let names: Vec<String> = input_schema
                    .fields()
                    .iter()
                    .map(|f| format!("`{}`", f.name()))
                    .collect();
                Error::InvalidConfig(format!(
                    "config key `key`: unknown column `{name}`; the input has {}",
                    names.join(", ")
                ))
            })?;
            if key.contains(&i) {
                return Err(Error::InvalidConfig(format!(
                    "config key `key`: column `{name}` is listed twice"
                )));
            }
            key.push(i);
        }
        let fields: Vec<SortField> = key
            .iter()
            .map(|&i| SortField::new(input_schema.field(i).data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields)
            .map_err(|e| Error::InvalidConfig(format!("config key `key`: these columns cannot be a key: {e}")))?;
        let signature = key
            .iter()
            .map(|&i| {
                let f = input_schema.field(i);
                format!("{}:{}", f.name(), f.data_type())
            })
            .collect::<Vec<_>>()
            .join(",");
        let seen = match state {
            Some(s) => decode_state(s, &signature)?,
            None => HashSet::new(),
        };
        Ok(Dedupe {
            schema: input_schema,
            key,
            signature,
            converter,
            seen,
        })
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, Error> {
        let columns: Vec<_> = self.key.iter().map(|&i| Arc::clone(batch.column(i))).collect();
        let rows = self.converter.convert_columns(&columns)?;
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut kept = 0;
        for row in rows.iter() {
            let bytes = row.as_ref();
            let new = !self.seen.contains(bytes);
            if new {
                self.seen.insert(Box::from(bytes));
                kept += 1;
            }
            keep.push(new);
        }
        match kept {
            0 => Ok(vec![]),
            k if k == batch.num_rows() => Ok(vec![batch]),
            _ => Ok(vec![filter_record_batch(&batch, &BooleanArray::from(keep))?]),
        }
    }

    fn checkpoint(&mut self) -> Result<Vec<u8>, Error> {
        let mut keys: Vec<&[u8]> = self.seen.iter().map(|k| k.as_ref()).collect();
        keys.sort_unstable();
        let size = 1 + 16 + self.signature.len() + keys.iter().map(|k| 8 + k.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.push(STATE_VERSION);
        out.extend_from_slice(&(self.signature.len() as u64).to_le_bytes());
        out.extend_from_slice(self.signature.as_bytes());
        out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        for k in keys {
            out.extend_from_slice(&(k.len() as u64).to_le_bytes());
            out.extend_from_slice(k);
        }
        Ok(out)
    }
}

sluice_sdk::export_plugin!(Dedupe);

#[cfg(test)]
mod tests;
