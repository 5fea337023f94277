//! The `checks` section checked into [`CheckPlan`]s: which keys each kind of
//! check needs, the query that finds its failing rows, and the freshness
//! cutoff of the run date.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{NaiveDate, NaiveTime, TimeDelta};

use super::{Plan, Tables};
use crate::pipeline::template::{pos_of_offset, render_sql};
use crate::pipeline::{
    CheckKind, CheckSpec, Diagnostic, Literal, Located, PipelineSpec, Pos, Severity, SqlCheck,
    display_path,
};
use crate::sql::quote_ident;

/// A check ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckPlan {
    /// The table checked.
    pub table: String,
    /// The check's name, unique within its table.
    pub name: String,
    /// What kind of check.
    pub kind: CheckKind,
    /// The column (or columns, comma-separated) checked, for reports.
    pub column: Option<String>,
    /// How it is evaluated.
    pub rule: CheckRule,
    /// `error` blocks the publish.
    pub severity: Severity,
    /// Failing rows tolerated, as a share of the table's rows.
    pub max_failing_ratio: f64,
    /// Where the check is written, and where its column is.
    pub pos: Pos,
    /// Where its column (or query) is written, for planning errors.
    pub column_pos: Pos,
}

/// How a check is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckRule {
    /// A query whose rows are the failing rows; its `failing_key` column
    /// (text, possibly null) identifies them in reports.
    Rows {
        /// The query.
        sql: String,
    },
    /// A query written by the user whose rows are the failing rows.
    Query {
        /// The query, placeholders filled.
        sql: String,
        /// The column identifying failing rows. Default: the first.
        key: Option<String>,
    },
    /// The table's row count within bounds.
    RowCount {
        /// At least this many rows.
        min: Option<u64>,
        /// At most this many rows.
        max: Option<u64>,
    },
    /// The newest value of a column at or after a cutoff.
    Freshness {
        /// The timestamp or date column.
        column: String,
        /// The oldest newest value allowed, `YYYY-MM-DD HH:MM:SS`.
        cutoff: String,
        /// `max_age` as written.
        max_age: String,
    },
}

/// The name of the column a failing-rows query identifies rows with.
pub const FAILING_KEY: &str = "failing_key";

/// What the checks of a pipeline need from the rest of the plan.
struct CheckContext<'a> {
    /// The pipeline file, for diagnostics.
    file: &'a str,
    /// Its folder, which SQL files are relative to.
    pipeline_dir: &'a Path,
    /// Every table the pipeline defines.
    tables: &'a BTreeSet<String>,
    /// The variables, for placeholders in check queries.
    vars: &'a BTreeMap<String, String>,
    /// The run date (`ds`): freshness is measured from its end.
    ds: NaiveDate,
}

/// Plans the `checks` section; every problem is added to `diags`.
pub(super) fn plan_checks(
    spec: &PipelineSpec,
    plan: &Plan,
    pipeline_dir: &Path,
    tables: &Tables,
    diags: &mut Vec<Diagnostic>,
) -> Vec<CheckPlan> {
    let ds = plan
        .vars
        .get("ds")
        .and_then(|ds| NaiveDate::parse_from_str(ds, "%Y-%m-%d").ok())
        .unwrap_or_default();
    let table_names: BTreeSet<String> = tables.defined.keys().cloned().collect();
    let cx = CheckContext {
        file: tables.file,
        pipeline_dir,
        tables: &table_names,
        vars: &plan.vars,
        ds,
    };
    plan_each(&cx, &spec.checks, diags)
}

fn plan_each(
    cx: &CheckContext,
    checks: &[(Located<String>, Vec<Located<CheckSpec>>)],
    diags: &mut Vec<Diagnostic>,
) -> Vec<CheckPlan> {
    let mut plans = Vec::new();
    for (table, list) in checks {
        if !cx.tables.contains(&table.value) {
            diags.push(Diagnostic::at(
                cx.file,
                table.pos,
                format!(
                    "`checks.{}`: no source, transform or segment table is called `{}`",
                    table.value, table.value
                ),
            ));
            continue;
        }
        let mut names: BTreeMap<String, Pos> = BTreeMap::new();
        for (idx, check) in list.iter().enumerate() {
            let at = format!("checks.{}[{idx}]", table.value);
            let Some(plan) = quality_check_plan(cx, &table.value, check, &at, diags) else {
                continue;
            };
            if let Some(first) = names.insert(plan.name.clone(), check.pos) {
                diags.push(Diagnostic::at(
                    cx.file,
                    check.pos,
                    format!(
                        "in `{at}`: table `{}` already has a check named `{}` (at {}:{first}); give one a `name`",
                        table.value, plan.name, cx.file
                    ),
                ));
                continue;
            }
            plans.push(plan);
        }
    }
    plans
}

fn quality_check_plan(
    cx: &CheckContext,
    table: &str,
    check: &Located<CheckSpec>,
    at: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<CheckPlan> {
    let spec = &check.value;
    let kind = spec.kind();
    let common = spec.common();
    let before = diags.len();
    let problem = |key: &str, message: String, diags: &mut Vec<Diagnostic>| {
        diags.push(Diagnostic::at(
            cx.file,
            check.pos_of(key),
            format!("in `{at}`: {message}"),
        ));
    };
    let ratio = common.max_failing_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        problem(
            "max_failing_ratio",
            format!("`max_failing_ratio` must be between 0 and 1, found {ratio}"),
            diags,
        );
    }
    let t = quote_ident(table);
    let key = |default: &str| match common.key {
        Some(key) => format!("CAST({} AS VARCHAR)", quote_ident(key)),
        None => default.to_string(),
    };
    let as_text = |column: &str| format!("CAST({} AS VARCHAR)", quote_ident(column));
    let rows = |sql: String| CheckRule::Rows { sql };
    let (rule, reported) = match spec {
        CheckSpec::NotNull(c) => (
            rows(format!(
                "SELECT {} AS {FAILING_KEY} FROM {t} WHERE {} IS NULL",
                key("CAST(NULL AS VARCHAR)"),
                quote_ident(&c.column)
            )),
            Some(c.column.clone()),
        ),
        CheckSpec::Unique(c) => {
            let columns = match (&c.column, &c.columns) {
                (Some(one), None) => vec![one.clone()],
                (None, Some(many)) if !many.is_empty() => many.clone(),
                _ => {
                    problem(
                        "type",
                        "`unique` checks need either `column` or a non-empty `columns`".into(),
                        diags,
                    );
                    Vec::new()
                }
            };
            let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            let texts: Vec<String> = columns.iter().map(|c| as_text(c)).collect();
            let default_key = match texts.len() {
                1 => texts[0].clone(),
                _ => format!("concat_ws('|', {})", texts.join(", ")),
            };
            let not_null: Vec<String> = quoted.iter().map(|c| format!("{c} IS NOT NULL")).collect();
            (
                rows(format!(
                    "SELECT {FAILING_KEY} FROM (SELECT {} AS {FAILING_KEY}, count(*) OVER (PARTITION BY {}) AS civica_copies FROM {t} WHERE {}) WHERE civica_copies > 1",
                    key(&default_key),
                    quoted.join(", "),
                    not_null.join(" AND "),
                )),
                Some(columns.join(", ")),
            )
        }
        CheckSpec::AcceptedValues(c) => {
            if c.values.is_empty() {
                problem("values", "`values` is empty".into(), diags);
            }
            let list: Vec<String> = c
                .values
                .iter()
                .map(|v| Literal::Text(v.text()).sql())
                .collect();
            let text = as_text(&c.column);
            (
                rows(format!(
                    "SELECT {} AS {FAILING_KEY} FROM {t} WHERE {} IS NOT NULL AND {text} NOT IN ({})",
                    key(&text),
                    quote_ident(&c.column),
                    list.join(", ")
                )),
                Some(c.column.clone()),
            )
        }
        CheckSpec::Range(c) => {
            let column = quote_ident(&c.column);
            let mut outside = Vec::new();
            if let Some(min) = &c.min {
                outside.push(format!("{column} < {}", min.sql()));
            }
            if let Some(max) = &c.max {
                outside.push(format!("{column} > {}", max.sql()));
            }
            if outside.is_empty() {
                problem(
                    "type",
                    "`range` checks need `min`, `max` or both".into(),
                    diags,
                );
            }
            (
                rows(format!(
                    "SELECT {} AS {FAILING_KEY} FROM {t} WHERE {}",
                    key(&as_text(&c.column)),
                    outside.join(" OR ")
                )),
                Some(c.column.clone()),
            )
        }
        CheckSpec::RowCount(c) => {
            let mut bound = |key: &str, value: &Option<Literal>| match value {
                None => None,
                Some(Literal::Number(x)) if *x >= 0.0 && x.fract() == 0.0 => Some(*x as u64),
                Some(other) => {
                    problem(
                        key,
                        format!(
                            "`{key}` of a `row_count` check must be a whole number of rows, found `{}`",
                            other.text()
                        ),
                        diags,
                    );
                    None
                }
            };
            let (min, max) = (bound("min", &c.min), bound("max", &c.max));
            if c.min.is_none() && c.max.is_none() {
                problem(
                    "type",
                    "`row_count` checks need `min`, `max` or both".into(),
                    diags,
                );
            }
            (CheckRule::RowCount { min, max }, None)
        }
        CheckSpec::Freshness(c) => {
            let end = cx.ds.succ_opt().unwrap_or(cx.ds).and_time(NaiveTime::MIN);
            let cutoff = match parse_age(&c.max_age) {
                Some(age) => end - age,
                None => {
                    problem(
                        "max_age",
                        format!(
                            "`max_age` must be a number followed by `m`, `h` or `d` (`36h`, `2d`), found `{}`",
                            c.max_age
                        ),
                        diags,
                    );
                    end
                }
            };
            (
                CheckRule::Freshness {
                    column: c.column.clone(),
                    cutoff: cutoff.format("%Y-%m-%d %H:%M:%S").to_string(),
                    max_age: c.max_age.clone(),
                },
                Some(c.column.clone()),
            )
        }
        CheckSpec::Relationship(c) => {
            if !cx.tables.contains(&c.to) {
                problem(
                    "to",
                    format!(
                        "`to`: no source, transform or segment table is called `{}`",
                        c.to
                    ),
                    diags,
                );
            }
            let column = quote_ident(&c.column);
            let to_column = quote_ident(c.to_column.as_deref().unwrap_or(&c.column));
            (
                rows(format!(
                    "SELECT {} AS {FAILING_KEY} FROM {t} AS civica_child WHERE {column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {} AS civica_parent WHERE civica_parent.{to_column} = civica_child.{column})",
                    key(&as_text(&c.column)),
                    quote_ident(&c.to),
                )),
                Some(c.column.clone()),
            )
        }
        CheckSpec::Sql(c) => {
            let query = sql_query(cx, check, c, at, diags);
            if c.name.is_none() && c.file.is_none() {
                problem(
                    "type",
                    "`sql` checks with a `query` need a `name`".into(),
                    diags,
                );
            }
            (
                CheckRule::Query {
                    sql: query.unwrap_or_default(),
                    key: c.key.clone(),
                },
                None,
            )
        }
    };
    if diags.len() > before {
        return None;
    }
    let name = match (common.name, spec, &reported) {
        (Some(name), _, _) => name.to_string(),
        (
            None,
            CheckSpec::Sql(SqlCheck {
                file: Some(file), ..
            }),
            _,
        ) => Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sql".into()),
        (None, _, Some(columns)) => format!("{}({columns})", kind.name()),
        (None, _, None) => kind.name().to_string(),
    };
    let column_pos = ["column", "columns", "query", "file"]
        .iter()
        .find_map(|key| check.fields.get(*key).copied())
        .unwrap_or(check.pos);
    Some(CheckPlan {
        table: table.to_string(),
        name,
        kind,
        column: reported,
        rule,
        severity: common.severity,
        max_failing_ratio: ratio,
        pos: check.pos,
        column_pos,
    })
}

/// The query of an `sql` check, inline or from its file, with its
/// placeholders filled.
fn sql_query(
    cx: &CheckContext,
    check: &Located<CheckSpec>,
    spec: &SqlCheck,
    at: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    let (template, file, pos) = match (&spec.query, &spec.file) {
        (Some(query), None) => (query.clone(), cx.file.to_string(), check.pos_of("query")),
        (None, Some(file)) => {
            let path = cx.pipeline_dir.join(file);
            match std::fs::read_to_string(&path) {
                Ok(text) => (text, display_path(&path), Pos { line: 1, col: 1 }),
                Err(err) => {
                    diags.push(Diagnostic::at(
                        cx.file,
                        check.pos_of("file"),
                        format!(
                            "in `{at}`: cannot read SQL file `{}`: {err} (paths are relative to the pipeline file's directory)",
                            display_path(&path)
                        ),
                    ));
                    return None;
                }
            }
        }
        _ => {
            diags.push(Diagnostic::at(
                cx.file,
                check.pos_of("type"),
                format!("in `{at}`: `sql` checks need either `query` or `file`"),
            ));
            return None;
        }
    };
    match render_sql(&template, cx.vars) {
        Ok(rendered) => {
            let query = rendered.text.trim().trim_end_matches(';').to_string();
            // A check reads; it never writes (`COPY … TO`), defines or sets.
            match crate::sql::parse_query(&query) {
                Ok(_) => Some(query),
                Err(problem) => {
                    diags.push(Diagnostic::at(
                        &file,
                        pos,
                        format!(
                            "in `{at}`: a check is one read-only query (`SELECT …` or `WITH … SELECT …`): {}",
                            problem.message
                        ),
                    ));
                    None
                }
            }
        }
        Err(errors) => {
            for err in errors {
                let pos = match spec.file {
                    Some(_) => pos_of_offset(&template, err.offset),
                    None => pos,
                };
                diags.push(Diagnostic::at(&file, pos, err.message));
            }
            None
        }
    }
}

/// `90m`, `36h`, `2d` as a duration.
pub(super) fn parse_age(text: &str) -> Option<TimeDelta> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: f64 = text[..text.len() - unit.len_utf8()].trim().parse().ok()?;
    let minutes = match unit {
        'm' => number,
        'h' => number * 60.0,
        'd' => number * 1440.0,
        _ => return None,
    };
    (minutes.is_finite() && minutes >= 0.0)
        .then(|| TimeDelta::seconds((minutes * 60.0).round() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_in_minutes_hours_and_days() {
        assert_eq!(parse_age("90m"), Some(TimeDelta::minutes(90)));
        assert_eq!(parse_age("36h"), Some(TimeDelta::hours(36)));
        assert_eq!(parse_age("1.5d"), Some(TimeDelta::hours(36)));
        assert_eq!(parse_age("2w"), None);
        assert_eq!(parse_age("h"), None);
        assert_eq!(parse_age("-1h"), None);
    }
}
