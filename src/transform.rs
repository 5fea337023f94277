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

/// Plans a step's query against the tables registered so far and registers
/// its result as a view named after the step. Returns the query's plan.
pub async fn plan_step(ctx: &SessionContext, step: &SqlStep) -> Result<LogicalPlan, Diagnostic> {
    let frame = read_only_query(ctx, &step.sql.text).await.map_err(|err| {
        sql_diagnostic(
            &step.file,
            &step.sql,
            problem_from_error(&err, &step.sql.text),
        )
    })?;
    let plan = frame.logical_plan().clone();
    ctx.register_table(step.name.as_str(), frame.into_view())
        .map_err(|err| Diagnostic {
            file: step.file.clone(),
            pos: None,
            message: format!("cannot register table `{}`: {err}", step.name),
        })?;
    Ok(plan)
}

/// Runs a step and keeps its result as the table named after the step, so
/// that later steps read it once: in memory, or, with `on_disk` (a run
/// with a memory limit), as a Parquet file in that folder, so that a large
/// intermediate table does not have to fit in memory. Returns the row count.
pub async fn run_step(
    ctx: &SessionContext,
    step: &SqlStep,
    on_disk: Option<&std::path::Path>,
) -> Result<usize, DataFusionError> {
    let frame = read_only_query(ctx, &step.sql.text).await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let (table, rows): (Arc<dyn TableProvider>, usize) = match on_disk {
        None => {
            let batches = frame.collect().await?;
            let rows = batches.iter().map(|b| b.num_rows()).sum();
            (Arc::new(MemTable::try_new(schema, vec![batches])?), rows)
        }
        Some(folder) => {
            let path = folder.join(format!("{}.parquet", step.name));
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
    ctx.deregister_table(step.name.as_str())?;
    ctx.register_table(step.name.as_str(), table)?;
    Ok(rows)
}
