//! Registering sources as DataFusion tables, one file per format.

pub mod access_log;
mod csv;
mod datetime;
pub mod functions;
pub mod lines;
pub mod log_pattern;

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::col;
use datafusion::prelude::{JsonReadOptions, ParquetReadOptions, SessionContext};
use object_store::ObjectMeta;

use self::access_log::{AccessLogLayout, LogParser};
use self::lines::{
    LineCounts, LineFormat, LineLayout, LineOptions, ScanMode, ScanTally, TextEncoding,
    rejected_schema,
};
use self::log_pattern::LogPattern;
use crate::pipeline::{FormatSpec, OnError, SchemaDrift, SchemaSpec};
use crate::plan::{SourcePlan, arrow_type};
use crate::storage::{
    StorageError, display_object, ensure_store, list_objects, local_path_of, object_url, table_url,
};
use datafusion::datasource::MemTable;

/// What registering a source found.
#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    /// Files read.
    pub files: usize,
    /// Files an incremental source skipped, read by an earlier run.
    pub skipped: usize,
    /// Files read that were empty (0 bytes): no rows.
    pub empty: usize,
    /// Their total size in bytes (compressed where compressed).
    pub bytes: u64,
    /// Each file, for the run manifest.
    pub inputs: Vec<InputObject>,
    /// For line-oriented sources, the account of rejected lines.
    pub quarantine: Option<Arc<Quarantine>>,
}

/// A file a source reads, as the run manifest lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InputObject {
    /// Its URL (`file:///…`, `s3://bucket/…`).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Last modified, RFC 3339.
    pub last_modified: String,
    /// The store's entity tag, where it gives one.
    pub etag: Option<String>,
    /// SHA-256 of its bytes, for an incremental source (how its state
    /// knows it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The account of a line-oriented source's rejected lines: what the scans
/// of its table counted, and its `__rejected` table.
#[derive(Debug)]
pub struct Quarantine {
    location: String,
    objects: Vec<ObjectMeta>,
    tally: Arc<ScanTally>,
    rows: Arc<dyn TableProvider>,
    rejected: Arc<dyn TableProvider>,
}

/// How many rejected lines are quoted in a message.
const FIRST_REJECTED: usize = 5;

impl Quarantine {
    /// Lines read and rejected, file by file. Files that no step read to
    /// the end are scanned now.
    pub async fn account(
        &self,
        ctx: &SessionContext,
    ) -> Result<Vec<(String, LineCounts)>, DataFusionError> {
        if self.tally.totals(&self.objects).is_none() {
            ctx.read_table(Arc::clone(&self.rows))?.count().await?;
        }
        let totals = self.tally.totals(&self.objects).ok_or_else(|| {
            DataFusionError::Execution("a complete scan did not cover every file".into())
        })?;
        Ok(self
            .objects
            .iter()
            .map(|object| display_object(&self.location, &object.location))
            .zip(totals)
            .collect())
    }

    /// The first rejected lines, `file:line: reason`, in file and line order.
    pub async fn first_rejected(
        &self,
        ctx: &SessionContext,
    ) -> Result<Vec<String>, DataFusionError> {
        let batches = ctx
            .read_table(Arc::clone(&self.rejected))?
            .sort_by(vec![col("source_file"), col("line_number")])?
            .limit(0, Some(FIRST_REJECTED))?
            .collect()
            .await?;
        let mut first = Vec::new();
        for batch in batches {
            let file = batch.column(0).as_string::<i32>();
            let line = batch.column(1).as_primitive::<Int64Type>();
            let reason = batch.column(3).as_string::<i32>();
            for row in 0..batch.num_rows() {
                first.push(format!(
                    "{}:{}: {}",
                    file.value(row),
                    line.value(row),
                    reason.value(row)
                ));
            }
        }
        Ok(first)
    }
}

/// A problem registering a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Listing or reading the files failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Nothing matched the location.
    #[error("no `{extension}` files at `{location}`")]
    NoFiles {
        /// The location.
        location: String,
        /// The file ending looked for (empty: any).
        extension: String,
    },
    /// The explicit schema does not fit the file.
    #[error("`schema` lists {declared} columns but `{file}` has {found}: {columns}")]
    SchemaMismatch {
        /// Columns in the YAML.
        declared: usize,
        /// Columns in the file.
        found: usize,
        /// The file.
        file: String,
        /// The file's columns.
        columns: String,
    },
    /// A file's columns differ from the first file's, with `schema_drift: fail`.
    #[error(
        "source `{source_name}`: `{file}` {reason} compared with `{first}` (set `schema_drift: union` or `ignore_new` to accept it)"
    )]
    Drift {
        /// The source.
        source_name: String,
        /// The file that differs.
        file: String,
        /// The source's first file.
        first: String,
        /// What changed.
        reason: String,
    },
    /// A file could not be read or decoded.
    #[error("cannot read `{file}`: {reason}")]
    File {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// DataFusion refused the table.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
}

/// A source's objects as listed: for an output civica published to an
/// object store, those of the version its `_CURRENT` pointer names.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The source, at the folder that was listed.
    pub source: SourcePlan,
    /// Every object, sorted by path.
    pub objects: Vec<ObjectMeta>,
    extension: String,
}

/// Lists a source's objects; none is an error naming the location.
pub async fn list_source(
    ctx: &SessionContext,
    source: &SourcePlan,
) -> Result<Listing, SourceError> {
    let extension = match &source.format {
        FormatSpec::Csv(csv) => csv.extension.clone(),
        FormatSpec::Ndjson(json) => json.extension.clone(),
        FormatSpec::Parquet(parquet) => parquet.extension.clone(),
        FormatSpec::AccessLog(log) => log.extension.clone().unwrap_or_default(),
    };
    // Before listing: opening a FIFO would block the run for good.
    if let Some(root) = local_path_of(&source.location) {
        refuse_special_files(root, &extension)?;
    }
    let mut listed = list_objects(ctx, &source.location, &extension).await?;
    // An output civica published to an object store is read at the version
    // its `_CURRENT` pointer names, not every version it keeps (asked after
    // the listing, whose errors explain a store's problems best).
    let current = crate::storage::layout::current_folder(ctx, &source.location).await?;
    let mut source = source.clone();
    if current != source.location {
        tracing::debug!(source = %source.name, version = %current, "following the folder's pointer");
        listed = list_objects(ctx, &current, &extension).await?;
        source.location = current;
    }
    if listed.is_empty() {
        return Err(SourceError::NoFiles {
            location: source.location.clone(),
            extension,
        });
    }
    if local_path_of(&source.location).is_some() {
        check_local_files(&source.location, &listed)?;
    }
    Ok(Listing {
        source,
        objects: listed,
        extension,
    })
}

/// Fails, naming it, when the local path of a source, or an entry below its
/// folder with the source's file ending, is a FIFO, socket or device:
/// listing would skip it silently, and reading a FIFO blocks for good.
fn refuse_special_files(root: std::path::PathBuf, extension: &str) -> Result<(), SourceError> {
    use std::os::unix::fs::FileTypeExt;
    let special = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|meta| {
            let kind = meta.file_type();
            kind.is_fifo() || kind.is_socket() || kind.is_block_device() || kind.is_char_device()
        })
    };
    let refuse = |path: &std::path::Path| SourceError::File {
        file: path.display().to_string(),
        reason: "is not a regular file (a FIFO, socket or device): sources read files only"
            .to_string(),
    };
    let mut folders = vec![root];
    while let Some(path) = folders.pop() {
        if special(&path) {
            return Err(refuse(&path));
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Symbolic links to folders are not followed: a link to a
            // parent would loop for good.
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                folders.push(path);
            } else if path.to_string_lossy().ends_with(extension) && special(&path) {
                return Err(refuse(&path));
            }
        }
    }
    Ok(())
}

/// Fails, naming the file, when a listed local file is not a regular file
/// (a FIFO would block the run, a device never end) or cannot be opened.
fn check_local_files(location: &str, objects: &[ObjectMeta]) -> Result<(), SourceError> {
    let local = object_store::local::LocalFileSystem::new();
    for object in objects {
        let Ok(path) = local.path_to_filesystem(&object.location) else {
            continue;
        };
        let problem = match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => Some(
                "is not a regular file (a FIFO, socket or device): sources read files only"
                    .to_string(),
            ),
            Ok(_) => std::fs::File::open(&path)
                .err()
                .map(|err| format!("cannot be opened: {err}")),
            Err(err) => Some(format!("cannot be read: {err}")),
        };
        if let Some(reason) = problem {
            return Err(SourceError::File {
                file: display_object(location, &object.location),
                reason,
            });
        }
    }
    Ok(())
}

/// Registers a source on the session under its name: every file it lists.
pub async fn register_source(
    ctx: &SessionContext,
    source: &SourcePlan,
) -> Result<SourceStats, SourceError> {
    let listing = list_source(ctx, source).await?;
    register_listing(ctx, listing, None).await
}

/// Registers a listed source: every object, or, for an incremental source,
/// the objects in `read` (the others were read by earlier runs).
pub async fn register_listing(
    ctx: &SessionContext,
    listing: Listing,
    read: Option<Vec<ObjectMeta>>,
) -> Result<SourceStats, SourceError> {
    let Listing {
        source,
        objects: listed,
        extension,
    } = listing;
    let source = &source;
    // An incremental source reads the objects chosen, never its folder: a
    // file that lands between the listing and the scan waits for the next
    // run, which records it.
    let explicit = read.is_some();
    let (objects, skipped) = match read {
        Some(read) => {
            let skipped = listed.len() - read.len().min(listed.len());
            (read, skipped)
        }
        None => (listed.clone(), 0),
    };
    let store_url = table_url(&source.location)?.object_store();
    let url_of = |o: &ObjectMeta| object_url(&store_url, o);
    let inputs: Vec<InputObject> = objects
        .iter()
        .map(|o| InputObject {
            path: url_of(o),
            bytes: o.size,
            last_modified: o.last_modified.to_rfc3339(),
            etag: o.e_tag.clone(),
            sha256: None,
        })
        .collect();
    // An empty file has no row (and no header): it is read, and holds nothing.
    let read_count = objects.len();
    let (empty, objects): (Vec<ObjectMeta>, Vec<ObjectMeta>) =
        objects.into_iter().partition(|o| o.size == 0);
    if objects.is_empty() {
        let listing = Listing {
            source: source.clone(),
            objects: listed.into_iter().filter(|o| o.size > 0).collect(),
            extension,
        };
        let mut stats = register_empty(ctx, listing, skipped).await?;
        stats.files = read_count;
        stats.empty = empty.len();
        stats.inputs = inputs;
        return Ok(stats);
    }
    let subset = explicit || skipped > 0 || !empty.is_empty();
    let mut stats = SourceStats {
        files: read_count,
        skipped,
        empty: empty.len(),
        bytes: objects.iter().map(|o| o.size).sum(),
        inputs,
        quarantine: None,
    };
    let schema = source.schema.as_ref().map(explicit_schema);
    match &source.format {
        FormatSpec::Csv(csv) => {
            let quarantine = csv::register_csv(ctx, source, csv, objects, subset).await?;
            stats.quarantine = Some(Arc::new(quarantine));
        }
        FormatSpec::Ndjson(json) => {
            let drift = check_drift(ctx, source, &JsonFormat::default(), &objects).await?;
            let options = JsonReadOptions::default()
                .file_extension(&json.extension)
                .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
            let fixed = schema.clone().map(Arc::new).or(drift);
            register_files(ctx, source, &objects, subset, options, fixed).await?;
        }
        FormatSpec::Parquet(parquet) => {
            let drift = check_drift(ctx, source, &ParquetFormat::default(), &objects).await?;
            let options = ParquetReadOptions::default()
                .file_extension(&parquet.extension)
                .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
            let fixed = schema.clone().map(Arc::new).or(drift);
            register_files(ctx, source, &objects, subset, options, fixed).await?;
        }
        FormatSpec::AccessLog(log) => {
            let parser = match &log.pattern {
                Some(pattern) => LogParser::Pattern(Arc::new(
                    LogPattern::compile(pattern).map_err(|reason| SourceError::File {
                        file: source.location.clone(),
                        reason,
                    })?,
                )),
                None => LogParser::Flavor(log.flavor),
            };
            let layout = Arc::new(AccessLogLayout::new(parser));
            // (Unless every line may be rejected.)
            if source.max_rejected_ratio < 1.0 {
                check_sample(ctx, source, layout.as_ref(), &objects).await?;
            }
            let settings = LineOptions {
                source: source.name.clone(),
                location: source.location.clone(),
                fail_on_error: source.on_error == OnError::Fail,
                encoding: TextEncoding::Utf8,
                header: false,
            };
            let quarantine =
                register_lines(ctx, source, layout, settings, &extension, objects, subset).await?;
            stats.quarantine = Some(Arc::new(quarantine));
        }
    }
    Ok(stats)
}

/// When a step failed, the first NDJSON or Parquet file of the sources it
/// read that fails when read alone: DataFusion's readers name no file
/// (`Json error: Encountered unexpected 'b'`). Only on failure, so it
/// costs a successful run nothing.
pub async fn damaged_file(
    ctx: &SessionContext,
    sources: impl Iterator<Item = &SourcePlan>,
    read_files: &std::collections::BTreeMap<String, Vec<String>>,
) -> Option<String> {
    for source in sources {
        for file in read_files.get(&source.name).into_iter().flatten() {
            let frame = match &source.format {
                FormatSpec::Ndjson(json) => {
                    let options = JsonReadOptions::default().file_extension(&json.extension);
                    ctx.read_json(file.as_str(), options).await
                }
                FormatSpec::Parquet(parquet) => {
                    let options = ParquetReadOptions::default().file_extension(&parquet.extension);
                    ctx.read_parquet(file.as_str(), options).await
                }
                FormatSpec::Csv(_) | FormatSpec::AccessLog(_) => break,
            };
            // Every column read to the end (a count would read only the
            // footer of a Parquet file).
            let read = match frame {
                Ok(frame) => drain(frame).await,
                Err(err) => Err(err),
            };
            if read.is_err() {
                return Some(display_object(
                    &source.location,
                    &crate::storage::store_path(table_url(file).ok()?.prefix().as_ref()),
                ));
            }
        }
    }
    None
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

/// Compares every file's columns with the first file's, as `schema_drift`
/// says: `fail` names the first file that differs; `ignore_new` returns the
/// first file's columns and `union` every file's columns, to read every
/// file with.
async fn check_drift(
    ctx: &SessionContext,
    source: &SourcePlan,
    format: &dyn FileFormat,
    objects: &[ObjectMeta],
) -> Result<Option<SchemaRef>, SourceError> {
    if source.schema.is_some() {
        return Ok(None);
    }
    let store = ensure_store(ctx, &source.location)?;
    let state = ctx.state();
    let mut schemas = Vec::new();
    // File by file, so that a damaged one is named.
    for object in objects {
        let schema = format
            .infer_schema(&state, &store, std::slice::from_ref(object))
            .await
            .map_err(|err| SourceError::File {
                file: display_object(&source.location, &object.location),
                reason: format!(
                    "cannot be read as {}: {err}",
                    format.get_ext().trim_start_matches('.')
                ),
            })?;
        schemas.push(schema);
    }
    if objects.len() < 2 {
        return Ok(None);
    }
    let columns: Vec<Vec<String>> = schemas
        .iter()
        .map(|schema| schema.fields().iter().map(|f| f.name().clone()).collect())
        .collect();
    csv::reconcile(&columns, source.schema_drift, true).map_err(|(idx, reason)| {
        SourceError::Drift {
            source_name: source.name.clone(),
            file: display_object(&source.location, &objects[idx].location),
            first: display_object(&source.location, &objects[0].location),
            reason,
        }
    })?;
    // A column some file lacks is null there, so every column may be null.
    let nullable = |schema: &Schema| {
        Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ))
    };
    Ok(match source.schema_drift {
        SchemaDrift::Fail => None,
        SchemaDrift::IgnoreNew => Some(nullable(&schemas[0])),
        SchemaDrift::Union => {
            let merged = Schema::try_merge(schemas.iter().map(|s| s.as_ref().clone()))
                .map_err(DataFusionError::from)?;
            Some(nullable(&merged))
        }
    })
}

/// How many lines of a source's first file are tried before the run.
const SAMPLE_LINES: usize = 20;

/// Reads the first lines of a line source's first file and fails, naming
/// the file, when not one of them can be read as the format says (a wrong
/// `flavor` or `pattern`): `validate` says so before the night, not the
/// quarantine after it.
async fn check_sample(
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
    let head = lines::read_head(&store, first, TextEncoding::Utf8, SAMPLE_LINES)
        .await
        .map_err(|reason| SourceError::File {
            file: file.clone(),
            reason,
        })?;
    let mut decoder = layout.decoder(&[], first.location.as_ref());
    let mut tried = 0;
    let mut first_reason = None;
    for line in head.lines.iter().filter(|l| !l.trim().is_empty()) {
        tried += 1;
        match decoder.push_line(line) {
            Ok(()) => return Ok(()),
            Err(reason) => {
                first_reason.get_or_insert(reason);
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
async fn register_lines(
    ctx: &SessionContext,
    source: &SourcePlan,
    layout: Arc<dyn LineLayout>,
    settings: LineOptions,
    extension: &str,
    objects: Vec<ObjectMeta>,
    subset: bool,
) -> Result<Quarantine, SourceError> {
    let settings = Arc::new(settings);
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

/// Registers an incremental source with no new file: its table (and its
/// rejected lines' table) with the columns its files have, and no rows.
async fn register_empty(
    ctx: &SessionContext,
    listing: Listing,
    skipped: usize,
) -> Result<SourceStats, SourceError> {
    let source = listing.source.clone();
    if listing.objects.is_empty() {
        // Every file is empty: the columns are the declared ones, if any.
        let Some(schema) = &source.schema else {
            return Err(SourceError::File {
                file: source.location.clone(),
                reason: "every file is empty (0 bytes), so the source's columns are unknown; declare them in `schema` to read such a night as no rows".to_string(),
            });
        };
        let empty = MemTable::try_new(Arc::new(explicit_schema(schema)), vec![vec![]])?;
        ctx.register_table(source.name.as_str(), Arc::new(empty))?;
        if let Some(rejected) = source.rejected_table() {
            let empty = MemTable::try_new(rejected_schema(), vec![vec![]])?;
            ctx.register_table(rejected.as_str(), Arc::new(empty))?;
        }
        return Ok(SourceStats {
            skipped,
            ..SourceStats::default()
        });
    }
    Box::pin(register_listing(ctx, listing, None)).await?;
    let mut names = vec![source.name.clone()];
    names.extend(source.rejected_table());
    for name in names {
        let schema = ctx.table(name.as_str()).await?.schema().as_arrow().clone();
        ctx.deregister_table(name.as_str())?;
        let empty = MemTable::try_new(Arc::new(schema), vec![vec![]])?;
        ctx.register_table(name.as_str(), Arc::new(empty))?;
    }
    Ok(SourceStats {
        files: 0,
        skipped,
        ..SourceStats::default()
    })
}

/// What a table reads: the source's location, or, when an incremental
/// source reads only some of its files, each of those files.
fn table_paths(
    source: &SourcePlan,
    objects: &[ObjectMeta],
    subset: bool,
    hive_folders: bool,
) -> Result<Vec<ListingTableUrl>, SourceError> {
    if !subset {
        return Ok(vec![table_url(&source.location)?]);
    }
    if hive_folders {
        return Err(SourceError::File {
            file: source.location.clone(),
            reason: "reading some of a source's files (`incremental: true`, or beside a file of 0 bytes) does not work with Hive-style folders (`name=value/`) yet; name the files directly, read the whole folder, or remove the empty file".to_string(),
        });
    }
    let store = table_url(&source.location)?.object_store();
    objects
        .iter()
        .map(|o| Ok(table_url(&object_url(&store, o))?))
        .collect()
}

/// The Arrow schema of an explicit `schema`; every column may be null.
pub fn explicit_schema(spec: &SchemaSpec) -> Schema {
    Schema::new(
        spec.0
            .iter()
            .map(|(name, ty)| Field::new(name, arrow_type(*ty), true))
            .collect::<Vec<_>>(),
    )
}
