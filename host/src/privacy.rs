//! Column classification: each output column's sensitivity and retention, written into the
//! output's field metadata and the run record, and the rule that a `pii` column may reach
//! the output only masked.
//!
//! "Masked" means: a plugin stage of the chain is declared to mask that column
//! (`masks = ["email"]` on its `[[plugins]]` entry) and the column is in that stage's
//! output. The host cannot tell a hash from a name by looking at bytes, so the declaration
//! is the spec author's statement; the host checks that it is consistent (the stage
//! exists and outputs the column) and records which stage masked what.
//!
//! ```toml
//! [columns.email]
//! sensitivity = "pii"                # public | internal | pii | sensitive
//! retention = "90d"                  # days (d), weeks (w) or years (y)
//!
//! [privacy]
//! require_masked_pii = true          # refuse a run whose output has an unmasked pii column
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Field metadata key holding a column's sensitivity.
pub const META_SENSITIVITY: &str = "sluice.sensitivity";
/// Field metadata key holding a column's retention (as declared, e.g. `90d`).
pub const META_RETENTION: &str = "sluice.retention";
/// Field metadata key holding the name of the plugin that masked the column.
pub const META_MASKED_BY: &str = "sluice.masked_by";

/// How sensitive a column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Anyone may see it.
    Public,
    /// Inside the organisation only.
    Internal,
    /// Personal data: identifies a person (email, name, phone).
    Pii,
    /// Sensitive personal or business data (health, finance, credentials).
    Sensitive,
}

impl std::fmt::Display for Sensitivity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sensitivity::Public => "public",
            Sensitivity::Internal => "internal",
            Sensitivity::Pii => "pii",
            Sensitivity::Sensitive => "sensitive",
        })
    }
}

/// `[columns.NAME]`: one column's classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnClass {
    /// `sensitivity`: `public`, `internal`, `pii` or `sensitive`.
    pub sensitivity: Sensitivity,
    /// `retention`: how long the data may be kept, e.g. `90d`, `52w`, `7y`.
    pub retention: Option<String>,
}

/// `[privacy]`: rules over classified columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyRules {
    /// `require_masked_pii`: a `pii` column in the output must be masked by a stage.
    #[serde(default)]
    pub require_masked_pii: bool,
}

/// A run's classification: columns, rules, and which plugin stage masks which column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// Column name → classification.
    pub columns: BTreeMap<String, ColumnClass>,
    /// The rules.
    pub rules: PrivacyRules,
    /// For each plugin stage (by index), the columns it is declared to mask.
    pub masks: Vec<Vec<String>>,
}

/// What classifying an output schema produced.
#[derive(Debug, Clone)]
pub struct Classified {
    /// The output schema with classification in its field metadata.
    pub schema: SchemaRef,
    /// The run record's `classification`: each output column's class and masking stage,
    /// and declared columns the output does not have.
    pub record: serde_json::Value,
}

/// Check a retention text (`90d`, `52w`, `7y`) and return it in days.
pub fn retention_days(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().ok()?;
    let per = match unit {
        "d" => 1,
        "w" => 7,
        "y" => 365,
        _ => return None,
    };
    n.checked_mul(per)
}

impl Classification {
    /// True when there is nothing to label or enforce.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && !self.rules.require_masked_pii && self.masks.iter().all(Vec::is_empty)
    }

    /// Label `output` (the chain's output schema) and enforce the rules. `stages` are each
    /// plugin's name and output schema, in chain order.
    ///
    /// # Errors
    /// A usage error for a bad retention or a `masks` declaration the chain contradicts; a
    /// quality error (exit 3) when `require_masked_pii` finds an unmasked `pii` column.
    pub fn apply(&self, output: &SchemaRef, stages: &[(String, SchemaRef)]) -> Result<Classified> {
        for (name, c) in &self.columns {
            if let Some(r) = &c.retention
                && retention_days(r).is_none()
            {
                return Err(Error::usage(format!(
                    "column `{name}`: retention `{r}` is not a number of days, weeks or years like `90d`, `52w`, `7y`"
                )));
            }
        }
        let mut masked_by: HashMap<&str, &str> = HashMap::new();
        for (i, cols) in self.masks.iter().enumerate() {
            let Some((plugin, schema)) = stages.get(i) else {
                continue;
            };
            for c in cols {
                if schema.field_with_name(c).is_err() {
                    return Err(Error::usage(format!(
                        "plugins[{i}] (`{plugin}`) is declared to mask `{c}`, but its output has no column `{c}`; fix `masks`"
                    )));
                }
                masked_by.insert(c.as_str(), plugin.as_str());
            }
        }
        let unmasked: Vec<&str> = output
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| self.columns.get(*n).is_some_and(|c| c.sensitivity == Sensitivity::Pii))
            .filter(|n| !masked_by.contains_key(n))
            .collect();
        if self.rules.require_masked_pii && !unmasked.is_empty() {
            let checks = serde_json::json!([{
                "name": "require_masked_pii",
                "check": "require_masked_pii",
                "severity": "error",
                "status": "fail",
                "expected": "every pii column in the output masked by a plugin",
                "observed": { "unmasked_pii_columns": unmasked },
            }]);
            return Err(Error::Quality {
                message: format!(
                    "pii column{} {} would reach the output unmasked (`[privacy] require_masked_pii = true`); add a masking plugin and declare it with `masks = [\"{}\"]` on its `[[plugins]]` entry, or drop the column",
                    if unmasked.len() == 1 { "" } else { "s" },
                    unmasked.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                    unmasked.join("\", \"")
                ),
                checks,
            });
        }
        let mut record_cols = serde_json::Map::new();
        let fields: Vec<Arc<Field>> = output
            .fields()
            .iter()
            .map(|f| {
                let Some(c) = self.columns.get(f.name()) else {
                    return Arc::clone(f);
                };
                let mut meta = f.metadata().clone();
                meta.insert(META_SENSITIVITY.to_string(), c.sensitivity.to_string());
                if let Some(r) = &c.retention {
                    meta.insert(META_RETENTION.to_string(), r.clone());
                }
                let by = masked_by.get(f.name().as_str());
                if let Some(p) = by {
                    meta.insert(META_MASKED_BY.to_string(), (*p).to_string());
                }
                record_cols.insert(
                    f.name().clone(),
                    serde_json::json!({
                        "sensitivity": c.sensitivity,
                        "retention": c.retention,
                        "retention_days": c.retention.as_deref().and_then(retention_days),
                        "masked_by": by,
                    }),
                );
                Arc::new(f.as_ref().clone().with_metadata(meta))
            })
            .collect();
        let present: BTreeSet<&str> = output.fields().iter().map(|f| f.name().as_str()).collect();
        let absent: Vec<&str> = self
            .columns
            .keys()
            .map(String::as_str)
            .filter(|c| !present.contains(c))
            .collect();
        Ok(Classified {
            schema: Arc::new(Schema::new_with_metadata(fields, output.metadata().clone())),
            record: serde_json::json!({
                "columns": record_cols,
                "not_in_output": absent,
                "require_masked_pii": self.rules.require_masked_pii,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType;

    fn schema(cols: &[&str]) -> SchemaRef {
        Arc::new(Schema::new(
            cols.iter()
                .map(|c| Field::new(*c, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn class(s: Sensitivity, r: Option<&str>) -> ColumnClass {
        ColumnClass {
            sensitivity: s,
            retention: r.map(str::to_string),
        }
    }

    #[test]
    fn labels_fields_and_enforces_masking() {
        let mut c = Classification::default();
        c.columns.insert("email".into(), class(Sensitivity::Pii, Some("90d")));
        c.columns.insert("id".into(), class(Sensitivity::Internal, None));
        c.columns.insert("gone".into(), class(Sensitivity::Public, None));
        let out = schema(&["id", "email", "n"]);
        let done = c.apply(&out, &[("select".into(), Arc::clone(&out))]).unwrap();
        let email = done.schema.field_with_name("email").unwrap();
        assert_eq!(email.metadata()[META_SENSITIVITY], "pii");
        assert_eq!(email.metadata()[META_RETENTION], "90d");
        assert!(done.schema.field_with_name("n").unwrap().metadata().is_empty());
        assert_eq!(done.record["not_in_output"], serde_json::json!(["gone"]));
        assert_eq!(done.record["columns"]["email"]["retention_days"], 90);

        c.rules.require_masked_pii = true;
        let e = c.apply(&out, &[("select".into(), Arc::clone(&out))]).unwrap_err();
        assert_eq!(e.exit_code() as u8, 3);
        assert!(
            e.to_string().contains("`email`") && e.to_string().contains("masks"),
            "{e}"
        );
        c.masks = vec![vec!["email".into()]];
        let done = c.apply(&out, &[("mask".into(), Arc::clone(&out))]).unwrap();
        assert_eq!(
            done.schema.field_with_name("email").unwrap().metadata()[META_MASKED_BY],
            "mask"
        );
        c.masks = vec![vec!["mail".into()]];
        assert!(
            c.apply(&out, &[("mask".into(), Arc::clone(&out))])
                .unwrap_err()
                .to_string()
                .contains("no column `mail`")
        );
        assert_eq!(retention_days("7y"), Some(2555));
        assert_eq!(retention_days("7 years"), None);
    }
}
