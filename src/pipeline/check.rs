//! The `checks` section as written: data-quality checks per table.
//!
//! Adding a data-quality check: see "Adding a data-quality check" in
//! ARCHITECTURE.md. Here: a variant of [`CheckSpec`] with its options struct
//! (`deny_unknown_fields`, so a key that does not apply to the kind is
//! refused at its line by the YAML layer), and its arms in
//! [`CheckSpec::kind`], [`CheckSpec::common`] and [`CheckKind::name`].

use serde::Deserialize;

/// One data-quality check of a table, as written under `checks.<table>`,
/// tagged by `type`. Each kind takes only its own keys, besides `name` and
/// `severity`, which every kind takes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckSpec {
    /// No nulls in `column`.
    NotNull(NotNullCheck),
    /// No value of `column` (or of `columns` together) twice.
    Unique(UniqueCheck),
    /// `column` only takes `values`.
    AcceptedValues(AcceptedValuesCheck),
    /// `column` between `min` and `max`.
    Range(RangeCheck),
    /// The table has between `min` and `max` rows.
    RowCount(RowCountCheck),
    /// The newest `column` is at most `max_age` before the end of the run date.
    Freshness(FreshnessCheck),
    /// Every `column` exists in `to.to_column`.
    Relationship(RelationshipCheck),
    /// A query returning the failing rows.
    Sql(SqlCheck),
}

/// The keys of a check that do not depend on its kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckCommon<'a> {
    /// A name for reports. Default: the type and the column.
    pub name: Option<&'a str>,
    /// `error` blocks the publish; `warn` is reported only.
    pub severity: Severity,
    /// The column whose values identify failing rows in the results
    /// (checks that find rows).
    pub key: Option<&'a str>,
    /// Failing rows tolerated, as a share of the table's rows (checks that
    /// find rows). Default 0.
    pub max_failing_ratio: f64,
}

impl CheckSpec {
    /// What is checked.
    pub fn kind(&self) -> CheckKind {
        match self {
            CheckSpec::NotNull(_) => CheckKind::NotNull,
            CheckSpec::Unique(_) => CheckKind::Unique,
            CheckSpec::AcceptedValues(_) => CheckKind::AcceptedValues,
            CheckSpec::Range(_) => CheckKind::Range,
            CheckSpec::RowCount(_) => CheckKind::RowCount,
            CheckSpec::Freshness(_) => CheckKind::Freshness,
            CheckSpec::Relationship(_) => CheckKind::Relationship,
            CheckSpec::Sql(_) => CheckKind::Sql,
        }
    }

    /// The keys that do not depend on the kind.
    pub fn common(&self) -> CheckCommon<'_> {
        fn rows<'a>(
            name: &'a Option<String>,
            severity: Severity,
            key: &'a Option<String>,
            ratio: Option<f64>,
        ) -> CheckCommon<'a> {
            CheckCommon {
                name: name.as_deref(),
                severity,
                key: key.as_deref(),
                max_failing_ratio: ratio.unwrap_or(0.0),
            }
        }
        fn table(name: &Option<String>, severity: Severity) -> CheckCommon<'_> {
            CheckCommon {
                name: name.as_deref(),
                severity,
                key: None,
                max_failing_ratio: 0.0,
            }
        }
        match self {
            CheckSpec::NotNull(c) => rows(&c.name, c.severity, &c.key, c.max_failing_ratio),
            CheckSpec::Unique(c) => rows(&c.name, c.severity, &c.key, c.max_failing_ratio),
            CheckSpec::AcceptedValues(c) => rows(&c.name, c.severity, &c.key, c.max_failing_ratio),
            CheckSpec::Range(c) => rows(&c.name, c.severity, &c.key, c.max_failing_ratio),
            CheckSpec::Relationship(c) => rows(&c.name, c.severity, &c.key, c.max_failing_ratio),
            CheckSpec::Sql(c) => rows(&c.name, c.severity, &c.key, c.max_failing_ratio),
            CheckSpec::RowCount(c) => table(&c.name, c.severity),
            CheckSpec::Freshness(c) => table(&c.name, c.severity),
        }
    }
}

/// Options of `type: not_null`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotNullCheck {
    /// The column checked. Required.
    pub column: String,
    /// A name for reports. Default `not_null(<column>)`.
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// The column identifying failing rows in the results. Default: none.
    pub key: Option<String>,
    /// Failing rows tolerated, as a share of the table's rows. Default 0.
    pub max_failing_ratio: Option<f64>,
}

/// Options of `type: unique`: `column`, or `columns` checked together.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UniqueCheck {
    /// The column checked.
    pub column: Option<String>,
    /// The columns checked together, instead of `column`.
    pub columns: Option<Vec<String>>,
    /// A name for reports. Default `unique(<columns>)`.
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// The column identifying failing rows. Default: the checked values.
    pub key: Option<String>,
    /// Failing rows tolerated, as a share of the table's rows. Default 0.
    pub max_failing_ratio: Option<f64>,
}

/// Options of `type: accepted_values`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AcceptedValuesCheck {
    /// The column checked. Required.
    pub column: String,
    /// The allowed values, compared as text. Required, not empty.
    pub values: Vec<Literal>,
    /// A name for reports. Default `accepted_values(<column>)`.
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// The column identifying failing rows. Default: the value.
    pub key: Option<String>,
    /// Failing rows tolerated, as a share of the table's rows. Default 0.
    pub max_failing_ratio: Option<f64>,
}

/// Options of `type: range`: `min`, `max` or both.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeCheck {
    /// The column checked. Required.
    pub column: String,
    /// The lowest allowed value.
    pub min: Option<Literal>,
    /// The highest allowed value.
    pub max: Option<Literal>,
    /// A name for reports. Default `range(<column>)`.
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// The column identifying failing rows. Default: the value.
    pub key: Option<String>,
    /// Failing rows tolerated, as a share of the table's rows. Default 0.
    pub max_failing_ratio: Option<f64>,
}

/// Options of `type: row_count`: `min`, `max` or both.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RowCountCheck {
    /// At least this many rows.
    pub min: Option<Literal>,
    /// At most this many rows.
    pub max: Option<Literal>,
    /// A name for reports. Default `row_count`.
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
}

/// Options of `type: freshness`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FreshnessCheck {
    /// The timestamp or date column. Required.
    pub column: String,
    /// How old the newest row may be: `36h`, `2d`, `90m`. Required.
    pub max_age: String,
    /// A name for reports. Default `freshness(<column>)`.
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
}

/// Options of `type: relationship`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RelationshipCheck {
    /// The column whose values must exist in `to`. Required.
    pub column: String,
    /// The table whose keys must exist. Required.
    pub to: String,
    /// The column of `to`. Default: `column`.
    pub to_column: Option<String>,
    /// A name for reports. Default `relationship(<column>)`.
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// The column identifying failing rows. Default: the value.
    pub key: Option<String>,
    /// Failing rows tolerated, as a share of the table's rows. Default 0.
    pub max_failing_ratio: Option<f64>,
}

/// Options of `type: sql`: `query` (with a `name`) or `file`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqlCheck {
    /// A query returning the failing rows.
    pub query: Option<String>,
    /// A file holding that query, relative to the pipeline.
    pub file: Option<String>,
    /// A name for reports. Required with `query`; default: the file's stem.
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// The column identifying failing rows. Default: the first.
    pub key: Option<String>,
    /// Failing rows tolerated, as a share of the table's rows. Default 0.
    pub max_failing_ratio: Option<f64>,
}

/// The kinds of check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
