//! SQL steps: planning each step's query against the tables before it, and running it (kept in memory or spilled to Parquet on disk).

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::catalog::TableProvider;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;

use crate::pipeline::Diagnostic;
use crate::plan::SqlStep;
use crate::sql::{problem_from_error, read_only_query, sql_diagnostic};

/// The table a profiled step's own query makes, before the citizens who
/// may not be profiled are left out (see [`crate::plan::Plan::profiling_filter`]).
pub fn before_profiling(step: &str) -> String {
    format!("{step}__before_profiling")
}

/// The plans of a step: its query's, and with `keeps`, the one of the
/// step's table, which holds the rows of [`before_profiling`] that keep.
pub struct StepPlans {
    /// The step's query.
    pub query: LogicalPlan,
    /// With `keeps`, the table's, reading the query's rows.
    pub kept: Option<LogicalPlan>,
}

/// Plans a step's query against the tables registered so far and registers
/// its result as a view named after the step; with `keeps` (an SQL
/// condition over `civica_input`), the query's result is the view
/// [`before_profiling`] and the step's view holds its rows that keep.
pub async fn plan_step(
    ctx: &SessionContext,
    step: &SqlStep,
    keeps: Option<&str>,
) -> Result<StepPlans, Diagnostic> {
    let frame = read_only_query(ctx, &step.sql.text).await.map_err(|err| {
        sql_diagnostic(
            &step.file,
            &step.sql,
            problem_from_error(&err, &step.sql.text),
        )
    })?;
    let query = frame.logical_plan().clone();
    let cannot_register = |table: &str, err: DataFusionError| Diagnostic {
        file: step.file.clone(),
        pos: None,
        message: format!("cannot register table `{table}`: {err}"),
    };
    let Some(keeps) = keeps else {
        ctx.register_table(step.name.as_str(), frame.into_view())
            .map_err(|err| cannot_register(&step.name, err))?;
        return Ok(StepPlans { query, kept: None });
    };
    let all = before_profiling(&step.name);
    ctx.register_table(all.as_str(), frame.into_view())
        .map_err(|err| cannot_register(&all, err))?;
    // A `profiling` naming a table or a column that is not there is
    // reported by the segment step's checks, at its own keys: the step
    // keeps every row meanwhile.
    let kept = match ctx.sql(&kept_rows(&all, keeps)).await {
        Ok(kept) => kept,
        Err(_) => ctx
            .table(all.as_str())
            .await
            .map_err(|err| cannot_register(&all, err))?,
    };
    let kept_plan = kept.logical_plan().clone();
    ctx.register_table(step.name.as_str(), kept.into_view())
        .map_err(|err| cannot_register(&step.name, err))?;
    Ok(StepPlans {
        query,
        kept: Some(kept_plan),
    })
}

/// The rows of `table` that `keeps`.
fn kept_rows(table: &str, keeps: &str) -> String {
    format!(
        "SELECT * FROM {} AS civica_input WHERE {keeps}",
        crate::sql::quote_ident(table)
    )
}

/// Runs a step and keeps its result as the table named after the step, so
/// that later steps read it once: in memory, or, with `on_disk` (a run
/// with a memory limit), as a Parquet file in that folder, so that a large
/// intermediate table does not have to fit in memory. With `keeps`, the
/// result is kept as [`before_profiling`] and the step's table holds its
/// rows that keep. Returns the step's row count.
pub async fn run_step(
    ctx: &SessionContext,
    step: &SqlStep,
    on_disk: Option<&std::path::Path>,
    keeps: Option<&str>,
) -> Result<usize, DataFusionError> {
    let frame = read_only_query(ctx, &step.sql.text).await?;
    match keeps {
        None => keep_result(ctx, &step.name, frame, on_disk).await,
        Some(keeps) => {
            let all = before_profiling(&step.name);
            keep_result(ctx, &all, frame, on_disk).await?;
            let kept = ctx.sql(&kept_rows(&all, keeps)).await?;
            keep_result(ctx, &step.name, kept, on_disk).await
        }
    }
}

/// Computes `frame` and registers it as `name` (in memory, or in a Parquet
/// file in `on_disk`); returns its row count.
async fn keep_result(
    ctx: &SessionContext,
    name: &str,
    frame: datafusion::dataframe::DataFrame,
    on_disk: Option<&std::path::Path>,
) -> Result<usize, DataFusionError> {
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let (table, rows): (Arc<dyn TableProvider>, usize) = match on_disk {
        None => {
            let batches = frame.collect().await?;
            let rows = batches.iter().map(|b| b.num_rows()).sum();
            (Arc::new(MemTable::try_new(schema, vec![batches])?), rows)
        }
        Some(folder) => {
            let path = folder.join(format!("{name}.parquet"));
            let path = path.display().to_string();
            let options = DataFrameWriteOptions::new().with_single_file_output(true);
            let counts = frame.write_parquet(&path, options, None).await?;
            let rows = counts
                .first()
                .and_then(|b| b.column(0).as_primitive_opt::<UInt64Type>())
                .map_or(0, |c| c.value(0) as usize);
            let config = ListingTableConfig::new(ListingTableUrl::parse(&path)?)
                .with_listing_options(ListingOptions::new(Arc::new(ParquetFormat::default())))
                .with_schema(schema);
            (Arc::new(ListingTable::try_new(config)?), rows)
        }
    };
    ctx.deregister_table(name)?;
    ctx.register_table(name, table)?;
    Ok(rows)
}
