//! NDJSON sources: one JSON object per line, read by DataFusion.

use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::prelude::{JsonReadOptions, SessionContext};
use object_store::ObjectMeta;

use super::SourceError;
use super::whole_file::{reads_alone, register_whole_files};
use crate::pipeline::NdjsonFormatSpec;
use crate::plan::SourcePlan;

/// Registers an NDJSON source as its table.
pub(super) async fn register_ndjson(
    ctx: &SessionContext,
    source: &SourcePlan,
    json: &NdjsonFormatSpec,
    objects: &[ObjectMeta],
    subset: bool,
) -> Result<(), SourceError> {
    let options = JsonReadOptions::default()
        .file_extension(&json.extension)
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    register_whole_files(
        ctx,
        source,
        &JsonFormat::default(),
        options,
        objects,
        subset,
    )
    .await
}

/// Whether one NDJSON file reads to its end on its own.
pub(super) async fn ndjson_reads_alone(
    ctx: &SessionContext,
    file: &str,
    json: &NdjsonFormatSpec,
) -> bool {
    let options = JsonReadOptions::default().file_extension(&json.extension);
    reads_alone(ctx.read_json(file, options).await).await
}
