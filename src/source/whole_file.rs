//! What NDJSON and Parquet sources share: formats DataFusion reads a whole
//! file at a time, registered as a listing table over the source's files,
//! with schema drift checked file by file first, and a damaged file found
//! by reading each alone.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::prelude::SessionContext;
use object_store::ObjectMeta;

use super::drift::compare_file_columns;
use super::{SourceError, explicit_schema, table_paths};
use crate::plan::SourcePlan;

/// Registers an NDJSON or Parquet source read with `format` and `options`:
/// the declared `schema`, else the one drift checking settles on, else the
/// files' own.
pub(super) async fn register_whole_files(
    ctx: &SessionContext,
    source: &SourcePlan,
    format: &dyn FileFormat,
    options: ListingOptions,
    objects: &[ObjectMeta],
    subset: bool,
) -> Result<(), SourceError> {
    let drift = compare_file_columns(ctx, source, format, objects).await?;
    let schema = source.schema.as_ref().map(explicit_schema);
    let fixed = schema.map(Arc::new).or(drift);
    register_files(ctx, source, objects, subset, options, fixed).await
}

/// Whether `frame` (one file read alone) reads to its end.
pub(super) async fn reads_alone(
    frame: Result<datafusion::dataframe::DataFrame, datafusion::error::DataFusionError>,
) -> bool {
    // Every column read to the end (a count would read only the footer of
    // a Parquet file).
    match frame {
        Ok(frame) => drain(frame).await.is_ok(),
        Err(_) => false,
    }
}

/// Reads a frame to its end, keeping nothing.
async fn drain(
    frame: datafusion::dataframe::DataFrame,
) -> Result<(), datafusion::error::DataFusionError> {
    use futures::StreamExt;
    let mut stream = frame.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        batch?;
    }
    Ok(())
}

/// Registers an NDJSON or Parquet source as its table: every file of its
/// location, or, for `subset`, those in `objects`. Without a `schema`, the
/// files' own is inferred.
async fn register_files(
    ctx: &SessionContext,
    source: &SourcePlan,
    objects: &[ObjectMeta],
    subset: bool,
    options: ListingOptions,
    schema: Option<SchemaRef>,
) -> Result<(), SourceError> {
    let paths = table_paths(source, objects, subset, false)?;
    let config = ListingTableConfig::new_with_multi_paths(paths).with_listing_options(options);
    let config = match schema {
        Some(schema) => config.with_schema(schema),
        None => config.infer_schema(&ctx.state()).await?,
    };
    ctx.register_table(
        source.name.as_str(),
        Arc::new(ListingTable::try_new(config)?),
    )?;
    Ok(())
}
