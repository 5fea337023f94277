//! Data-quality checks: finding each check's failing rows with DataFusion,
//! judging them against the check's severity and tolerated ratio, and the
//! results as an Arrow table for the run's history.

use crate::privacy::{Lineage, detect};
use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{cast, col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use serde::Serialize;

use crate::pipeline::Severity;
use crate::plan::{CheckPlan, CheckRule, FAILING_KEY};
use crate::sql::quote_ident;
use crate::sql::read_only_query;

/// How many failing keys a result keeps as a sample.
pub const SAMPLE_KEYS: usize = 5;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Within bounds.
    Pass,
    /// Out of bounds, `severity: warn`.
    Warn,
    /// Out of bounds, `severity: error`: the run publishes nothing.
    Fail,
}

impl CheckStatus {
    /// `pass`, `warn` or `fail`.
    pub fn name(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The table.
    pub table: String,
    /// The check's name.
    pub check: String,
    /// Its type as written.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The column(s) checked.
    pub column: Option<String>,
    /// `error` or `warn`.
    pub severity: &'static str,
    /// The outcome.
    pub status: CheckStatus,
    /// Rows that fail the check (none for `row_count` and `freshness`).
    pub failing_rows: Option<u64>,
    /// Rows in the table.
    pub total_rows: u64,
    /// `failing_rows / total_rows`.
    pub failing_ratio: Option<f64>,
    /// The ratio tolerated.
    pub tolerated_ratio: f64,
    /// The first failing keys, sorted.
    pub failing_keys: Vec<String>,
    /// What was found, in words.
    pub detail: String,
}

/// The rows failing a row-level check, as a frame with one `failing_key`
/// text column; `None` for checks on the whole table.
pub async fn failing_rows(ctx: &SessionContext, check: &CheckPlan) -> Result<Option<DataFrame>> {
    match &check.rule {
        CheckRule::Rows { sql } => Ok(Some(read_only_query(ctx, sql).await?)),
        CheckRule::Query { sql, key } => {
            let frame = read_only_query(ctx, sql).await?;
            let key = match key {
                Some(key) => key.clone(),
                None => frame
                    .schema()
                    .fields()
                    .first()
                    .map(|f| f.name().clone())
                    .ok_or_else(|| {
                        DataFusionError::Plan("the check's query returns no column".into())
                    })?,
            };
            let key = cast(col(quote_ident(&key)), DataType::Utf8).alias(FAILING_KEY);
            Ok(Some(frame.select(vec![key])?))
        }
        CheckRule::RowCount { .. } | CheckRule::Freshness { .. } => Ok(None),
    }
}

/// The query measuring a freshness check: the newest value as text, and
/// whether it is at or after the cutoff.
fn freshness_sql(table: &str, column: &str, cutoff: &str) -> String {
    let c = quote_ident(column);
    format!(
        "SELECT CAST(max({c}) AS VARCHAR) AS latest, CAST(max({c}) AS TIMESTAMP) >= CAST('{cutoff}' AS TIMESTAMP) AS fresh FROM {}",
        quote_ident(table)
    )
}

/// Plans a check without running it: unknown columns and tables, and type
/// errors, are found here.
pub async fn plan_check(ctx: &SessionContext, check: &CheckPlan) -> Result<()> {
    if let Some(frame) = failing_rows(ctx, check).await? {
        frame.into_optimized_plan()?;
    }
    if let CheckRule::Freshness { column, cutoff, .. } = &check.rule {
        ctx.sql(&freshness_sql(&check.table, column, cutoff))
            .await?
            .into_optimized_plan()?;
    }
    Ok(())
}

/// Runs every check, counting each table's rows once.
pub async fn run_checks(
    ctx: &SessionContext,
    checks: &[CheckPlan],
    lineage: &Lineage,
) -> Result<Vec<CheckResult>> {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    let mut results = Vec::with_capacity(checks.len());
    for check in checks {
        let total = match totals.get(check.table.as_str()) {
            Some(total) => *total,
            None => {
                let total = ctx.table(check.table.as_str()).await?.count().await? as u64;
                totals.insert(&check.table, total);
                total
            }
        };
        let result = run_check(ctx, check, total, lineage).await.map_err(|err| {
            DataFusionError::Context(
                format!("check `{}` of table `{}`", check.name, check.table),
                Box::new(err),
            )
        })?;
        results.push(result);
    }
    Ok(results)
}

async fn run_check(
    ctx: &SessionContext,
    check: &CheckPlan,
    total: u64,
    lineage: &Lineage,
) -> Result<CheckResult> {
    let mut result = CheckResult {
        table: check.table.clone(),
        check: check.name.clone(),
        kind: check.kind.name(),
        column: check.column.clone(),
        severity: check.severity.name(),
        status: CheckStatus::Pass,
        failing_rows: None,
        total_rows: total,
        failing_ratio: None,
        tolerated_ratio: check.max_failing_ratio,
        failing_keys: Vec::new(),
        detail: String::new(),
    };
    let passed = match &check.rule {
        CheckRule::Rows { .. } | CheckRule::Query { .. } => {
            let frame = failing_rows(ctx, check)
                .await?
                .expect("row checks have failing rows");
            let failing = frame.clone().count().await? as u64;
            let ratio = failing as f64 / total.max(1) as f64;
            if failing > 0 {
                result.failing_keys = sample_keys(frame, lineage).await?;
            }
            result.failing_rows = Some(failing);
            result.failing_ratio = Some(ratio);
            result.detail = format!(
                "{failing} of {total} row(s) fail ({:.3}%, {:.3}% tolerated)",
                ratio * 100.0,
                check.max_failing_ratio * 100.0
            );
            failing as f64 <= check.max_failing_ratio * total as f64
        }
        CheckRule::RowCount { min, max } => {
            let low = min.is_some_and(|min| total < min);
            let high = max.is_some_and(|max| total > max);
            let bounds = match (min, max) {
                (Some(min), Some(max)) => format!("between {min} and {max}"),
                (Some(min), None) => format!("at least {min}"),
                (None, Some(max)) => format!("at most {max}"),
                (None, None) => "any number".to_string(),
            };
            result.detail = format!("{total} row(s), {bounds} expected");
            !low && !high
        }
        CheckRule::Freshness {
            column,
            cutoff,
            max_age,
        } => {
            let batches = ctx
                .sql(&freshness_sql(&check.table, column, cutoff))
                .await?
                .collect()
                .await?;
            let (latest, fresh) = batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .map(|b| -> Result<_> {
                    let latest = texts(b.column(0))?;
                    let fresh = b.column(1).as_boolean();
                    Ok((
                        latest.into_iter().next().flatten(),
                        !fresh.is_null(0) && fresh.value(0),
                    ))
                })
                .transpose()?
                .unwrap_or((None, false));
            result.detail = match &latest {
                Some(latest) => format!(
                    "newest `{column}` is {latest}; at most {max_age} before the end of the run date ({cutoff} or later) expected"
                ),
                None => format!("`{column}` has no value"),
            };
            result.failing_keys = latest.into_iter().collect();
            fresh
        }
    };
    result.status = match (passed, check.severity) {
        (true, _) => CheckStatus::Pass,
        (false, Severity::Warn) => CheckStatus::Warn,
        (false, Severity::Error) => CheckStatus::Fail,
    };
    Ok(result)
}

/// The first failing keys, distinct and sorted, nulls left out. A key
/// that is personal data is shown by its kind (`<codice fiscale>`, found
/// by content), or by its tag (`<identifier>`) when it comes from a
/// tagged column: results go to stderr, the manifest and the check history.
async fn sample_keys(frame: DataFrame, lineage: &Lineage) -> Result<Vec<String>> {
    let tagged = frame
        .schema()
        .index_of_column_by_name(None, FAILING_KEY)
        .and_then(|i| lineage.of_plan(frame.logical_plan()).into_iter().nth(i))
        .and_then(|taints| {
            taints
                .iter()
                .find(|t| !t.is_pseudonym())
                .map(|t| format!("<{}>", t.tag.name()))
        });
    let batches = frame
        .filter(col(FAILING_KEY).is_not_null())?
        .aggregate(vec![col(FAILING_KEY)], vec![count(lit(1))])?
        .sort(vec![col(FAILING_KEY).sort(true, false)])?
        .limit(0, Some(SAMPLE_KEYS))?
        .collect()
        .await?;
    let mut keys: Vec<String> = Vec::new();
    for batch in &batches {
        for key in texts(batch.column(0))?.into_iter().flatten() {
            let shown = match (detect(&key), &tagged) {
                (Some(kind), _) => kind.placeholder().to_string(),
                (None, Some(tag)) => tag.clone(),
                (None, None) => key,
            };
            if !keys.contains(&shown) {
                keys.push(shown);
            }
        }
    }
    Ok(keys)
}

/// A text column's values, whichever string layout DataFusion chose.
fn texts(array: &ArrayRef) -> Result<Vec<Option<String>>> {
    let array = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
    Ok(array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// The schema of the check results table.
pub fn results_schema() -> Arc<Schema> {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("run_id", false),
        text("pipeline", false),
        Field::new(
            "checked_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        text("table", false),
        text("check", false),
        text("type", false),
        text("column", true),
        text("severity", false),
        text("status", false),
        Field::new("failing_rows", DataType::Int64, true),
        Field::new("total_rows", DataType::Int64, false),
        Field::new("failing_ratio", DataType::Float64, true),
        Field::new("tolerated_ratio", DataType::Float64, false),
        Field::new(
            "failing_keys",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        text("detail", false),
    ]))
}

/// The results of a run as one batch of [`results_schema`].
pub fn results_batch(
    results: &[CheckResult],
    run_id: &str,
    pipeline: &str,
    checked_at_ms: i64,
) -> Result<RecordBatch> {
    let n = results.len();
    let texts = |f: &dyn Fn(&CheckResult) -> Option<String>| -> ArrayRef {
        Arc::new(results.iter().map(f).collect::<StringArray>())
    };
    let mut keys = ListBuilder::new(StringBuilder::new());
    for result in results {
        for key in &result.failing_keys {
            keys.values().append_value(key);
        }
        keys.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(StringArray::from(vec![pipeline; n])),
        Arc::new(TimestampMillisecondArray::from(vec![checked_at_ms; n]).with_timezone("UTC")),
        texts(&|r| Some(r.table.clone())),
        texts(&|r| Some(r.check.clone())),
        texts(&|r| Some(r.kind.to_string())),
        texts(&|r| r.column.clone()),
        texts(&|r| Some(r.severity.to_string())),
        texts(&|r| Some(r.status.name().to_string())),
        Arc::new(
            results
                .iter()
                .map(|r| r.failing_rows.map(|n| n as i64))
                .collect::<Int64Array>(),
        ),
        Arc::new(
            results
                .iter()
                .map(|r| Some(r.total_rows as i64))
                .collect::<Int64Array>(),
        ),
        Arc::new(
            results
                .iter()
                .map(|r| r.failing_ratio)
                .collect::<Float64Array>(),
        ),
        Arc::new(
            results
                .iter()
                .map(|r| Some(r.tolerated_ratio))
                .collect::<Float64Array>(),
        ),
        Arc::new(keys.finish()),
        texts(&|r| Some(r.detail.clone())),
    ];
    Ok(RecordBatch::try_new(results_schema(), columns)?)
}
