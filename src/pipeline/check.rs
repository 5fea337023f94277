//! The `checks` section as written: data-quality checks per table.

use serde::Deserialize;

/// One data-quality check of a table, as written under `checks.<table>`.
/// Which keys apply depends on `type`; the plan says which are missing or
/// do not apply.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// What is checked.
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// A name for reports. Default: the type and the column.
    pub name: Option<String>,
    /// The column checked.
    pub column: Option<String>,
    /// The columns checked together (`unique` only).
    pub columns: Option<Vec<String>>,
    /// The allowed values (`accepted_values`).
    pub values: Option<Vec<Literal>>,
    /// The lowest allowed value (`range`) or row count (`row_count`).
    pub min: Option<Literal>,
    /// The highest allowed value (`range`) or row count (`row_count`).
    pub max: Option<Literal>,
    /// How old the newest row may be (`freshness`): `36h`, `2d`, `90m`.
    pub max_age: Option<String>,
    /// The table whose keys must exist (`relationship`).
    pub to: Option<String>,
    /// The column of `to` (`relationship`). Default: `column`.
    pub to_column: Option<String>,
    /// A query returning the failing rows (`sql`).
    pub query: Option<String>,
    /// A file holding that query, relative to the pipeline (`sql`).
    pub file: Option<String>,
    /// The column whose values identify failing rows in the results.
    pub key: Option<String>,
    /// `error` blocks the publish; `warn` is reported only.
    #[serde(default)]
    pub severity: Severity,
    /// Failing rows tolerated, as a share of the table's rows. Default 0.
    pub max_failing_ratio: Option<f64>,
}

/// The kinds of check.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// No nulls in `column`.
    NotNull,
    /// No value of `column` (or `columns`) twice.
    Unique,
    /// `column` only takes `values`.
    AcceptedValues,
    /// `column` between `min` and `max`.
    Range,
    /// The table has between `min` and `max` rows.
    RowCount,
    /// The newest `column` is at most `max_age` before the end of the run date.
    Freshness,
    /// Every `column` exists in `to.to_column`.
    Relationship,
    /// A query returning failing rows.
    Sql,
}

impl CheckKind {
    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::NotNull => "not_null",
            CheckKind::Unique => "unique",
            CheckKind::AcceptedValues => "accepted_values",
            CheckKind::Range => "range",
            CheckKind::RowCount => "row_count",
            CheckKind::Freshness => "freshness",
            CheckKind::Relationship => "relationship",
            CheckKind::Sql => "sql",
        }
    }
}

/// What a failing check does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Block the publish; the run exits with code 3.
    #[default]
    Error,
    /// Report it and publish anyway.
    Warn,
}

impl Severity {
    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// A YAML scalar used as an SQL literal: a number, a string or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number.
    Number(f64),
    /// A string (also dates and timestamps).
    Text(String),
    /// `true` or `false`.
    Bool(bool),
}

impl Literal {
    /// The literal in SQL.
    pub fn sql(&self) -> String {
        match self {
            Literal::Number(x) => format!("{x}"),
            Literal::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Literal::Bool(b) => b.to_string(),
        }
    }

    /// The value as text, as `CAST(… AS VARCHAR)` would give it.
    pub fn text(&self) -> String {
        match self {
            Literal::Number(x) => format!("{x}"),
            Literal::Text(s) => s.clone(),
            Literal::Bool(b) => b.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Literal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LiteralVisitor;
        impl serde::de::Visitor<'_> for LiteralVisitor {
            type Value = Literal;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, a string or a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Literal, E> {
                Ok(Literal::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Literal, E> {
                Ok(Literal::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Literal, E> {
                Ok(Literal::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Literal, E> {
                Ok(Literal::Number(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Literal, E> {
                Ok(Literal::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(LiteralVisitor)
    }
}
