//! Registering sources as DataFusion tables, one file per format.

// Adding a source format: see "Adding a source format" in ARCHITECTURE.md.
// Here: its file (`<format>.rs`, registering its table), and its arm in
// `register_listing` and, if DataFusion reads it whole, `damaged_file`.
pub mod access_log;
mod csv;
mod datetime;
mod drift;
pub mod functions;
mod line_source;
pub mod lines;
mod listing;
mod ndjson;
mod parquet;
mod quarantine;
mod whole_file;

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use object_store::ObjectMeta;

use self::lines::rejected_schema;
use crate::pipeline::{FormatSpec, SchemaSpec};
use crate::plan::{SourcePlan, arrow_type};
use crate::storage::{StorageError, display_object, object_url, table_url};

pub use self::listing::{Listing, list_source};
pub use self::quarantine::Quarantine;

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
    match &source.format {
        FormatSpec::Csv(csv) => {
            let quarantine = csv::register_csv(ctx, source, csv, objects, subset).await?;
            stats.quarantine = Some(Arc::new(quarantine));
        }
        FormatSpec::Ndjson(json) => {
            ndjson::register_ndjson(ctx, source, json, &objects, subset).await?;
        }
        FormatSpec::Parquet(parquet) => {
            parquet::register_parquet(ctx, source, parquet, &objects, subset).await?;
        }
        FormatSpec::AccessLog(log) => {
            let quarantine =
                access_log::register_access_log(ctx, source, log, &extension, objects, subset)
                    .await?;
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
            let whole = match &source.format {
                FormatSpec::Ndjson(json) => ndjson::ndjson_reads_alone(ctx, file, json).await,
                FormatSpec::Parquet(parquet) => {
                    parquet::parquet_reads_alone(ctx, file, parquet).await
                }
                FormatSpec::Csv(_) | FormatSpec::AccessLog(_) => break,
            };
            if !whole {
                return Some(display_object(
                    &source.location,
                    &crate::storage::store_path(table_url(file).ok()?.prefix().as_ref()),
                ));
            }
        }
    }
    None
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
