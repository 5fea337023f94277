//! Parquet sources, read by DataFusion.

use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use object_store::ObjectMeta;

use super::SourceError;
use super::whole_file::{reads_alone, register_whole_files};
use crate::pipeline::ParquetFormatSpec;
use crate::plan::SourcePlan;

/// Registers a Parquet source as its table.
pub(super) async fn register_parquet(
    ctx: &SessionContext,
    source: &SourcePlan,
    parquet: &ParquetFormatSpec,
    objects: &[ObjectMeta],
    subset: bool,
) -> Result<(), SourceError> {
    let options = ParquetReadOptions::default()
        .file_extension(&parquet.extension)
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    register_whole_files(
        ctx,
        source,
        &ParquetFormat::default(),
        options,
        objects,
        subset,
    )
    .await
}

/// Whether one Parquet file reads to its end on its own.
pub(super) async fn parquet_reads_alone(
    ctx: &SessionContext,
    file: &str,
    parquet: &ParquetFormatSpec,
) -> bool {
    let options = ParquetReadOptions::default().file_extension(&parquet.extension);
    reads_alone(ctx.read_parquet(file, options).await).await
}
