//! Registering a line-oriented source (CSV, access logs): the test of its
//! first lines before the run, its table of rows under its name and its
//! table of rejected lines under `<name>__rejected`, both read by
//! [`super::lines`].

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::prelude::SessionContext;
use object_store::ObjectMeta;

use super::lines::{
    self, LineFormat, LineLayout, LineOptions, ScanMode, ScanTally, TextEncoding, rejected_schema,
};
use super::quarantine::Quarantine;
use super::{SourceError, table_paths};
use crate::plan::SourcePlan;
use crate::storage::{display_object, ensure_store, table_url};

/// How many lines of a source's first file are tried before the run.
const SAMPLE_LINES: usize = 20;

/// Reads the first lines of a line source's first file and fails, naming
/// the file, when not one of them can be read as the format says (a wrong
/// `flavor` or `pattern`): `validate` says so before the night, not the
/// quarantine after it.
pub(super) async fn validate_sample(
    ctx: &SessionContext,
    source: &SourcePlan,
    layout: &dyn LineLayout,
    objects: &[ObjectMeta],
) -> Result<(), SourceError> {
    let Some(first) = objects.first() else {
        return Ok(());
    };
    let store = ensure_store(ctx, &source.location)?;
    let file = display_object(&source.location, &first.location);
    let head = lines::read_head(&store, first, &file, TextEncoding::Utf8, SAMPLE_LINES).await?;
    let mut decoder = layout.decoder(&[], first.location.as_ref());
    let mut tried = 0;
    let mut first_reason = None;
    for line in head.lines.iter().filter(|l| !l.trim().is_empty()) {
        tried += 1;
        match decoder.push_line(line) {
            Ok(()) => return Ok(()),
            Err(reason) => {
                first_reason.get_or_insert_with(|| decoder.redact(&reason.0).into_owned());
            }
        }
    }
    match first_reason {
        Some(reason) => Err(SourceError::File {
            file,
            reason: format!(
                "none of its first {tried} lines is a `{}` line as the source's format says (the first: {reason}); check `flavor` or `pattern`",
                layout.file_type()
            ),
        }),
        None => Ok(()),
    }
}

/// Registers a line-oriented source: its table of rows under its name, and
/// its table of rejected lines under `<name>__rejected`. Both read the file,
/// folder, glob or URL of the source; Hive-style folders (`ds=2026-11-21/`)
/// below it become text columns.
pub(super) async fn register_lines(
    ctx: &SessionContext,
    source: &SourcePlan,
    layout: Arc<dyn LineLayout>,
    settings: LineOptions,
    extension: &str,
    objects: Vec<ObjectMeta>,
    subset: bool,
) -> Result<Quarantine, SourceError> {
    let settings = Arc::new(LineOptions {
        scanned: lines::BytesScanned::of(ctx),
        ..settings
    });
    let tally = Arc::new(ScanTally::default());
    let format = |mode: ScanMode| {
        LineFormat::new(
            Arc::clone(&layout),
            Arc::clone(&settings),
            mode,
            Arc::clone(&tally),
        )
    };
    // Both tables read the same files: their Hive-style folders are listed once.
    let url = table_url(&source.location)?;
    let partitions: Vec<(String, DataType)> = ListingOptions::new(Arc::new(format(ScanMode::Rows)))
        .with_file_extension(extension)
        .infer_partitions(&ctx.state(), &url)
        .await?
        .into_iter()
        .map(|name| (name, DataType::Utf8))
        .collect();
    let paths = table_paths(source, &objects, subset, !partitions.is_empty())?;
    let table = |mode: ScanMode, schema: SchemaRef| {
        let options = ListingOptions::new(Arc::new(format(mode)))
            .with_file_extension(extension)
            .with_table_partition_cols(partitions.clone());
        let config = ListingTableConfig::new_with_multi_paths(paths.clone())
            .with_listing_options(options)
            .with_schema(schema);
        ListingTable::try_new(config).map(|t| Arc::new(t) as Arc<dyn TableProvider>)
    };
    let rows = table(ScanMode::Rows, layout.schema())?;
    let rejected = table(ScanMode::Rejected, rejected_schema())?;
    ctx.register_table(source.name.as_str(), Arc::clone(&rows))?;
    if let Some(name) = source.rejected_table() {
        ctx.register_table(name.as_str(), Arc::clone(&rejected))?;
    }
    Ok(Quarantine {
        location: source.location.clone(),
        objects,
        tally,
        rows,
        rejected,
    })
}
