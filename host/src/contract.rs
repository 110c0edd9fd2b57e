//! Schema contracts: comparing two schemas column by column (additive vs breaking), the
//! input schema contract file, and what a run does when its input drifts from it
//! (`on_schema_change`).
//!
//! Compatibility follows table-format schema evolution (as in Apache Iceberg), because a
//! plugin's output accumulates as partitions of one table: old partitions must still read
//! under the new schema. So a new column is additive only if nullable (old partitions have
//! no value for it), making a column required is breaking (old partitions hold nulls),
//! making it optional and safe widenings (int32 → int64, float32 → float64, a decimal with
//! more integer digits at the same scale) are compatible.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};

/// Version of the contract file format.
pub const CONTRACT_VERSION: u32 = 1;

/// One column-level difference between an old and a new schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// The column (the old name for removals and renames).
    pub column: String,
    /// `added`, `removed`, `renamed`, `retyped`, `widened`, `nullability_tightened`,
    /// `nullability_loosened` or `moved`.
    pub change: String,
    /// What it was (type, nullability or name), if it existed.
    pub old: Option<String>,
    /// What it is now, if it still exists.
    pub new: Option<String>,
    /// True when readers of the old schema (or old partitions under the new one) break.
    pub breaking: bool,
}

impl Change {
    /// One line for the human report.
    pub fn line(&self) -> String {
        let mark = if self.breaking { "BREAKING" } else { "ok" };
        let what = match (&self.old, &self.new) {
            (Some(o), Some(n)) => format!(": {o} -> {n}"),
            (Some(o), None) => format!(" (was {o})"),
            (None, Some(n)) => format!(" ({n})"),
            (None, None) => String::new(),
        };
        format!("  {mark:<8} {} `{}`{what}", self.change, self.column)
    }
}

/// The verdict over a list of changes: `identical`, `additive` or `breaking`.
pub fn verdict(changes: &[Change]) -> &'static str {
    if changes.iter().any(|c| c.breaking) {
        "breaking"
    } else if changes.is_empty() {
        "identical"
    } else {
        "additive"
    }
}

fn describe(f: &Field) -> String {
    format!("{}{}", f.data_type(), if f.is_nullable() { "" } else { " not null" })
}

/// True when every value of `old` is exactly representable as `new`.
fn widens(old: &DataType, new: &DataType) -> bool {
    use DataType::*;
    match (old, new) {
        (Int8, Int16 | Int32 | Int64) | (Int16, Int32 | Int64) | (Int32, Int64) => true,
        (UInt8, UInt16 | UInt32 | UInt64) | (UInt16, UInt32 | UInt64) | (UInt32, UInt64) => true,
        (Float16, Float32 | Float64) | (Float32, Float64) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => s1 == s2 && p2 >= p1,
        (Utf8, LargeUtf8) | (Binary, LargeBinary) => true,
        _ => false,
    }
}

/// Compare `old` and `new` column by column, in `old`'s order, then added columns.
///
/// A removed column and an added one with the same type and nullability at the same
/// position are reported as one rename.
pub fn compare(old: &Schema, new: &Schema) -> Vec<Change> {
    let mut changes = Vec::new();
    let added: Vec<(usize, &Arc<Field>)> = new
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| old.field_with_name(f.name()).is_err())
        .collect();
    let mut renamed_to = std::collections::BTreeSet::new();
    for (i, f) in old.fields().iter().enumerate() {
        let Ok(n) = new.field_with_name(f.name()) else {
            let rename = added
                .iter()
                .find(|(j, a)| *j == i && a.data_type() == f.data_type() && a.is_nullable() == f.is_nullable());
            match rename {
                Some((_, a)) => {
                    renamed_to.insert(a.name().clone());
                    changes.push(Change {
                        column: f.name().clone(),
                        change: "renamed".into(),
                        old: Some(f.name().clone()),
                        new: Some(a.name().clone()),
                        breaking: true,
                    });
                }
                None => changes.push(Change {
                    column: f.name().clone(),
                    change: "removed".into(),
                    old: Some(describe(f)),
                    new: None,
                    breaking: true,
                }),
            }
            continue;
        };
        if f.data_type() != n.data_type() {
            let widened = widens(f.data_type(), n.data_type());
            changes.push(Change {
                column: f.name().clone(),
                change: if widened { "widened" } else { "retyped" }.into(),
                old: Some(f.data_type().to_string()),
                new: Some(n.data_type().to_string()),
                breaking: !widened,
            });
        }
        if f.is_nullable() != n.is_nullable() {
            let tightened = f.is_nullable() && !n.is_nullable();
            changes.push(Change {
                column: f.name().clone(),
                change: if tightened {
                    "nullability_tightened"
                } else {
                    "nullability_loosened"
                }
                .into(),
                old: Some(if f.is_nullable() { "nullable" } else { "not null" }.into()),
                new: Some(if n.is_nullable() { "nullable" } else { "not null" }.into()),
                breaking: tightened,
            });
        }
    }
    for (_, a) in added {
        if renamed_to.contains(a.name()) {
            continue;
        }
        changes.push(Change {
            column: a.name().clone(),
            change: "added".into(),
            old: None,
            new: Some(describe(a)),
            // Old partitions have no value for it: only a nullable column can be read there.
            breaking: !a.is_nullable(),
        });
    }
    changes
}

/// `on_schema_change`: what a run does when its input schema differs from the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaChange {
    /// Any difference stops the run (exit 5) before anything is written.
    #[default]
    Fail,
    /// New input columns flow through to the plugins; anything else stops the run.
    AppendNewColumns,
    /// New input columns are dropped, so plugins see exactly the contract's columns;
    /// anything else stops the run.
    Ignore,
}

impl std::fmt::Display for OnSchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnSchemaChange::Fail => "fail",
            OnSchemaChange::AppendNewColumns => "append_new_columns",
            OnSchemaChange::Ignore => "ignore",
        })
    }
}

/// A run's input schema contract: the file that holds it and the policy for drift.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputContract {
    /// The contract file (JSON, see [`write_schema`]); created from the input on first use.
    pub path: std::path::PathBuf,
    /// What to do when the input differs from it.
    #[serde(rename = "on_schema_change")]
    pub on_change: OnSchemaChange,
}

/// What applying a contract to an input schema decided.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The schema plugins see.
    pub schema: SchemaRef,
    /// Input column indices to keep (`None`: all of them, unchanged).
    pub projection: Option<Vec<usize>>,
    /// The drift found (empty when the input matches), as recorded in the run record.
    pub drift: Vec<Change>,
    /// Digest of the contract's schema, for the action key.
    pub digest: String,
    /// True when the contract file was created by this run.
    pub created: bool,
}

impl InputContract {
    /// Compare `input` with the contract (creating the contract from `input` if its file
    /// does not exist yet) and decide what the run sees.
    ///
    /// # Errors
    /// A bad-input error listing every difference the policy does not allow; a usage error
    /// if the contract file is unreadable.
    pub fn apply(&self, input: &SchemaRef) -> Result<Applied> {
        let mut created = false;
        let contract = if self.path.exists() {
            read_schema(&self.path)?
        } else {
            write_schema(&self.path, input)?;
            tracing::info!(contract = %self.path.display(), "recorded the input schema contract from this run's input; keep it with the spec");
            created = true;
            Arc::clone(input)
        };
        let digest = crate::digest::schema_digest(&contract);
        let drift = compare(&contract, input);
        let allowed = |c: &Change| self.on_change != OnSchemaChange::Fail && c.change == "added";
        let refused: Vec<&Change> = drift.iter().filter(|c| !allowed(c)).collect();
        if !refused.is_empty() {
            return Err(Error::input(format!(
                "the input schema differs from the contract `{}` (on_schema_change = {}):\n{}\nFix the input, or update the contract if the change is intended{}",
                self.path.display(),
                self.on_change,
                refused.iter().map(|c| c.line()).collect::<Vec<_>>().join("\n"),
                if self.on_change == OnSchemaChange::Fail && refused.iter().all(|c| c.change == "added") {
                    " (or set on_schema_change = \"append_new_columns\" or \"ignore\" to accept new columns)"
                } else {
                    ""
                }
            )));
        }
        if !drift.is_empty() {
            tracing::warn!(contract = %self.path.display(), on_schema_change = %self.on_change, "new input columns: {}", drift.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", "));
        }
        let (schema, projection) = match self.on_change {
            OnSchemaChange::Ignore if !drift.is_empty() => {
                let idx: Vec<usize> = contract
                    .fields()
                    .iter()
                    .map(|f| input.index_of(f.name()).expect("compare found every contract column"))
                    .collect();
                (Arc::new(input.project(&idx).expect("indices are in range")), Some(idx))
            }
            _ => (Arc::clone(input), None),
        };
        Ok(Applied {
            schema,
            projection,
            drift,
            digest,
            created,
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    sluice_schema: u32,
    fields: Vec<FieldEntry>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldEntry {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    nullable: bool,
}

/// Write `schema` as a contract file: `{"sluice_schema": 1, "fields": [{"name", "type",
/// "nullable"}]}`, types in Arrow's text form (`Int64`, `Decimal128(15, 2)`, …).
///
/// # Errors
/// A usage error for a type whose text form does not read back; I/O errors.
pub fn write_schema(path: &Path, schema: &Schema) -> Result<()> {
    let mut fields = Vec::new();
    for f in schema.fields() {
        let text = f.data_type().to_string();
        if text.parse::<DataType>().ok().as_ref() != Some(f.data_type()) {
            return Err(Error::usage(format!(
                "column `{}` has type {text}, which a schema contract cannot record yet; project it away before the contract applies",
                f.name()
            )));
        }
        fields.push(FieldEntry {
            name: f.name().clone(),
            data_type: text,
            nullable: f.is_nullable(),
        });
    }
    let json = serde_json::to_vec_pretty(&SchemaFile {
        sluice_schema: CONTRACT_VERSION,
        fields,
    })
    .expect("schema serializes");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    crate::outdir::write_atomic(path, &json)
}

/// Read a contract file written by [`write_schema`] (or by hand).
///
/// # Errors
/// A usage error naming the file and what is wrong with it.
pub fn read_schema(path: &Path) -> Result<SchemaRef> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::usage(format!("schema file `{}` does not exist", path.display())),
        _ => Error::io("read", path, e),
    })?;
    let bad = |m: String| Error::usage(format!("schema file `{}`: {m}", path.display()));
    let f: SchemaFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if f.sluice_schema != CONTRACT_VERSION {
        return Err(bad(format!(
            "`sluice_schema` is {}; this sluice reads {CONTRACT_VERSION}",
            f.sluice_schema
        )));
    }
    let fields = f
        .fields
        .into_iter()
        .map(|e| {
            let t = e
                .data_type
                .parse::<DataType>()
                .map_err(|err| bad(format!("column `{}`: type `{}`: {err}", e.name, e.data_type)))?;
            Ok(Field::new(e.name, t, e.nullable))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(fields: &[(&str, DataType, bool)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn additive_and_breaking_changes() {
        use DataType::*;
        let old = s(&[
            ("id", Int32, false),
            ("name", Utf8, true),
            ("amt", Decimal128(10, 2), true),
        ]);
        assert_eq!(verdict(&compare(&old, &old)), "identical");
        let new = s(&[
            ("id", Int64, false),
            ("name", Utf8, true),
            ("amt", Decimal128(12, 2), true),
            ("note", Utf8, true),
        ]);
        let c = compare(&old, &new);
        assert_eq!(verdict(&c), "additive", "{c:?}");
        assert_eq!(
            c.iter().map(|c| c.change.as_str()).collect::<Vec<_>>(),
            ["widened", "widened", "added"]
        );
        let new = s(&[
            ("id", Int32, false),
            ("full_name", Utf8, true),
            ("amt", Float64, false),
            ("x", Int8, false),
        ]);
        let c = compare(&old, &new);
        assert_eq!(verdict(&c), "breaking");
        let kinds: Vec<_> = c
            .iter()
            .map(|c| (c.column.as_str(), c.change.as_str(), c.breaking))
            .collect();
        assert_eq!(
            kinds,
            [
                ("name", "renamed", true),
                ("amt", "retyped", true),
                ("amt", "nullability_tightened", true),
                ("x", "added", true)
            ]
        );
        let c = compare(&old, &s(&[("id", Int32, true)]));
        assert_eq!(c[0].change, "nullability_loosened");
        assert!(!c[0].breaking);
        assert_eq!(c.iter().filter(|c| c.change == "removed").count(), 2);
    }

    #[test]
    fn contract_files_round_trip_and_drift_follows_the_policy() {
        use DataType::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/input.schema.json");
        let base: SchemaRef = Arc::new(s(&[
            ("id", Int64, false),
            ("price", Decimal128(15, 2), false),
            ("day", Date32, true),
            (
                "ts",
                Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            ("tags", List(Arc::new(Field::new_list_field(Utf8, true))), true),
        ]));
        let contract = |on_change| InputContract {
            path: path.clone(),
            on_change,
        };
        let a = contract(OnSchemaChange::Fail).apply(&base).unwrap();
        assert!(a.created && a.drift.is_empty());
        assert_eq!(read_schema(&path).unwrap(), base);
        let wider: SchemaRef = Arc::new(s(&[("id", Int64, false), ("extra", Utf8, true)]));
        let mut fields = base.fields().to_vec();
        fields.push(Arc::new(Field::new("extra", Utf8, true)));
        let grown: SchemaRef = Arc::new(Schema::new(fields));
        let e = contract(OnSchemaChange::Fail).apply(&grown).unwrap_err().to_string();
        assert!(e.contains("added `extra`") && e.contains("append_new_columns"), "{e}");
        let a = contract(OnSchemaChange::AppendNewColumns).apply(&grown).unwrap();
        assert_eq!(a.schema, grown);
        assert!(a.projection.is_none());
        let a = contract(OnSchemaChange::Ignore).apply(&grown).unwrap();
        assert_eq!(a.schema.as_ref(), base.as_ref());
        assert_eq!(a.projection, Some(vec![0, 1, 2, 3, 4]));
        let e = contract(OnSchemaChange::Ignore).apply(&wider).unwrap_err().to_string();
        assert!(
            e.contains("removed `price`") && !e.contains("append_new_columns"),
            "{e}"
        );
        std::fs::write(
            &path,
            "{\"sluice_schema\": 1, \"fields\": [{\"name\": \"a\", \"type\": \"Int99\", \"nullable\": true}]}",
        )
        .unwrap();
        let e = read_schema(&path).unwrap_err().to_string();
        assert!(e.contains("input.schema.json") && e.contains("Int99"), "{e}");
    }
}
