//! Writing output tables as Parquet (zstd): each output is first written to a staging object, and all are moved into place only once every one has been written, so a failed run leaves the published files as they were.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::spec::{OutputMode, OutputPlan};
use crate::storage::{StorageError, ensure_store, object_at, object_in, table_url};

/// The file name of an output table inside its folder.
pub const OUTPUT_FILE: &str = "part-00000.parquet";

/// A problem writing or publishing an output.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The location has no store.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading the table failed.
    #[error("cannot read table `{table}`: {source}")]
    Read {
        /// The table.
        table: String,
        /// DataFusion's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// Writing the Parquet file failed.
    #[error("cannot write `{location}`: {source}")]
    Write {
        /// Where.
        location: String,
        /// The writer's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Moving the staged file into place failed.
    #[error("cannot publish `{location}`: {source}")]
    Publish {
        /// Where.
        location: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
}

/// An output written to staging, waiting to be published.
#[derive(Debug, Clone)]
pub struct StagedOutput {
    /// The table.
    pub table: String,
    /// The final object.
    pub target: ObjectPath,
    /// The staged object.
    pub staged: ObjectPath,
    /// The folder URL, for messages.
    pub location: String,
    /// Rows written.
    pub rows: usize,
    /// Size of the Parquet file.
    pub bytes: u64,
    /// Whether publishing removes the folder's other `part-*.parquet` files.
    pub replace: bool,
    store: Arc<dyn ObjectStore>,
}

/// Writes a table to a staging object beside its output folder.
/// `full_refresh` makes an `append` output replace its folder's files.
pub async fn stage_output(
    ctx: &SessionContext,
    output: &OutputPlan,
    run_id: &str,
    full_refresh: bool,
) -> Result<StagedOutput, SinkError> {
    let store = ensure_store(ctx, &output.location)?;
    let folder = table_url(&output.location)?.prefix().clone();
    let (file, replace) = match output.mode {
        OutputMode::Overwrite => (OUTPUT_FILE.to_string(), true),
        OutputMode::Append => (format!("part-{run_id}.parquet"), full_refresh),
    };
    let target = folder.clone().join(file.as_str());
    let staged = ObjectPath::from(format!(
        "{}.civica-staging-{run_id}/{file}",
        folder.as_ref().trim_end_matches('/')
    ));
    let read_error = |source| SinkError::Read {
        table: output.table.clone(),
        source,
    };
    // Read as one partition: the table's rows are written in the order the
    // step produced them (an `ORDER BY` holds), and a re-run writes the
    // same bytes; several partitions would interleave as they finish.
    let mut state = ctx.state();
    state.config_mut().options_mut().execution.target_partitions = 1;
    let plan = ctx
        .table(output.table.as_str())
        .await
        .map_err(read_error)?
        .into_unoptimized_plan();
    let frame = datafusion::dataframe::DataFrame::new(state, plan);
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let mut stream = frame.execute_stream().await.map_err(read_error)?;
    let write_error = |source| SinkError::Write {
        location: output.location.clone(),
        source,
    };
    let props = writer_properties().map_err(write_error)?;
    let object_writer = BufWriter::new(Arc::clone(&store), staged.clone());
    let mut writer =
        AsyncArrowWriter::try_new(object_writer, schema, Some(props)).map_err(write_error)?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(read_error)?;
        rows += batch.num_rows();
        writer.write(&batch).await.map_err(write_error)?;
        if rows == batch.num_rows() {
            pause_point(&format!("writing:{}", output.table));
        }
    }
    writer.close().await.map_err(write_error)?;
    let bytes = store
        .head(&staged)
        .await
        .map(|meta| meta.size)
        .map_err(|source| SinkError::Publish {
            location: output.location.clone(),
            source,
        })?;
    Ok(StagedOutput {
        table: output.table.clone(),
        target,
        staged,
        location: output.location.clone(),
        rows,
        bytes,
        replace,
        store,
    })
}

/// How civica writes Parquet: zstd level 3.
fn writer_properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build())
}

/// A small table as the bytes of a Parquet file.
pub fn parquet_bytes(
    batch: &datafusion::arrow::array::RecordBatch,
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        &mut bytes,
        batch.schema(),
        Some(writer_properties()?),
    )?;
    writer.write(batch)?;
    writer.close()?;
    Ok(bytes)
}

/// Stages a small object (the segment model) to be published with the
/// outputs: `location` is the final object's path or URL.
pub async fn stage_object(
    ctx: &SessionContext,
    location: &str,
    bytes: bytes::Bytes,
    run_id: &str,
) -> Result<StagedOutput, SinkError> {
    let (store, target) = object_at(ctx, location)?;
    let (folder, name) = target
        .as_ref()
        .rsplit_once('/')
        .unwrap_or(("", target.as_ref()));
    let staged = ObjectPath::from(format!("{folder}/.civica-staging-{run_id}/{name}"));
    let size = bytes.len() as u64;
    store
        .put(&staged, bytes.into())
        .await
        .map_err(|source| SinkError::Publish {
            location: location.to_string(),
            source,
        })?;
    Ok(StagedOutput {
        table: name.to_string(),
        target,
        staged,
        location: location.to_string(),
        rows: 0,
        bytes: size,
        replace: false,
        store,
    })
}

/// Where the run records what it is about to publish, so that a run
/// killed half-way through its renames is completed by the next one.
const INTENTS: &str = "publishing";

/// One move of a publish, as recorded before it happens.
#[derive(Debug, Serialize, Deserialize)]
struct Move {
    /// The location the store is found by.
    location: String,
    /// The staged object.
    staged: String,
    /// Where it goes.
    target: String,
    /// Whether the folder's other `part-*.parquet` files go.
    #[serde(default)]
    replace: bool,
}

/// Moves every staged output into place. With a runs folder, the moves are
/// first recorded in `<runs>/publishing/<run_id>.json`, removed once done:
/// a run killed between two renames is completed by the next run
/// ([`recover`]), so the outputs end at one run's state, never a mix.
pub async fn publish_outputs(
    ctx: &SessionContext,
    staged: &[StagedOutput],
    runs: Option<&str>,
    run_id: &str,
) -> Result<(), SinkError> {
    let intent = match runs {
        Some(runs) => {
            let moves: Vec<Move> = staged
                .iter()
                .map(|s| Move {
                    location: s.location.clone(),
                    staged: s.staged.to_string(),
                    target: s.target.to_string(),
                    replace: s.replace,
                })
                .collect();
            let body = serde_json::to_vec_pretty(&moves).unwrap_or_default();
            let (store, path) = object_in(ctx, runs, &format!("{INTENTS}/{run_id}.json"))?;
            store
                .put(&path, body.into())
                .await
                .map_err(|source| SinkError::Publish {
                    location: runs.to_string(),
                    source,
                })?;
            Some((store, path))
        }
        None => None,
    };
    for (done, output) in staged.iter().enumerate() {
        if done > 0 {
            pause_point(&format!("publishing:{done}"));
        }
        output
            .store
            .rename(&output.staged, &output.target)
            .await
            .map_err(|source| SinkError::Publish {
                location: output.location.clone(),
                source,
            })?;
        remove_staging_folder(output).await;
        if output.replace {
            remove_other_parts(output.store.as_ref(), &output.target).await;
        }
    }
    if let Some((store, path)) = intent {
        let _ = store.delete(&path).await;
        remove_empty_local_folder(runs.unwrap_or_default(), &path).await;
    }
    Ok(())
}

/// Removes the `part-*.parquet` files beside `kept` in its folder: what an
/// output replaces.
async fn remove_other_parts(store: &dyn ObjectStore, kept: &ObjectPath) {
    let Some((folder, _)) = kept.as_ref().rsplit_once('/') else {
        return;
    };
    let Ok(listing) = store
        .list_with_delimiter(Some(&ObjectPath::from(folder)))
        .await
    else {
        return;
    };
    for object in listing.objects {
        let name = object.location.filename().unwrap_or_default();
        if object.location != *kept && name.starts_with("part-") && name.ends_with(".parquet") {
            let _ = store.delete(&object.location).await;
        }
    }
}

/// Whether the run that named a staging folder or intent may still be
/// running: its process (the run id ends with the pid) is alive on this
/// machine.
fn run_alive(run_id: &str) -> bool {
    let pid = run_id
        .rsplit('-')
        .next()
        .and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(pid) if pid == std::process::id() => true,
        Some(pid) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

/// Repairs what dead runs left, before a run starts: completes the publish
/// of a run killed between its renames (from its record in
/// `<runs>/publishing/`), then removes the `.civica-staging-*` folders of
/// dead runs beside the outputs. Returns what was done, for the log.
pub async fn recover(ctx: &SessionContext, runs: Option<&str>, folders: &[String]) -> Vec<String> {
    let mut done = Vec::new();
    if let Some(runs) = runs
        && let Ok((store, intents)) = object_in(ctx, runs, INTENTS)
    {
        let listed: Vec<_> = store
            .list(Some(&intents))
            .filter_map(|meta| async move { meta.ok() })
            .collect()
            .await;
        for meta in listed {
            let run_id = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".json"))
                .unwrap_or_default()
                .to_string();
            if run_alive(&run_id) {
                continue;
            }
            let moves: Vec<Move> = match store.get(&meta.location).await {
                Ok(got) => match got.bytes().await {
                    Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
                    Err(_) => continue,
                },
                Err(_) => continue,
            };
            for step in moves {
                let Ok(target_store) = ensure_store(ctx, &step.location) else {
                    continue;
                };
                let staged = ObjectPath::from(step.staged.as_str());
                let target = ObjectPath::from(step.target.as_str());
                if target_store.head(&staged).await.is_ok()
                    && target_store.rename(&staged, &target).await.is_ok()
                {
                    done.push(format!(
                        "completed the publish of run {run_id}: {}",
                        step.target
                    ));
                }
                // A replacing output also drops the files it replaces, as
                // its publish would have.
                if step.replace && target_store.head(&target).await.is_ok() {
                    remove_other_parts(target_store.as_ref(), &target).await;
                }
            }
            let _ = store.delete(&meta.location).await;
            remove_empty_local_folder(runs, &meta.location).await;
        }
    }
    let mut parents: Vec<&str> = folders.iter().map(|f| parent_of(f)).collect();
    parents.sort_unstable();
    parents.dedup();
    for parent in parents {
        let Ok(store) = ensure_store(ctx, parent) else {
            continue;
        };
        let Ok(url) = table_url(parent) else {
            continue;
        };
        let Ok(listing) = store.list_with_delimiter(Some(url.prefix())).await else {
            continue;
        };
        for prefix in listing.common_prefixes {
            let name = prefix.filename().unwrap_or_default();
            let Some((_, run_id)) = name.split_once("civica-staging-") else {
                continue;
            };
            if run_alive(run_id) {
                continue;
            }
            let objects: Vec<_> = store
                .list(Some(&prefix))
                .filter_map(|meta| async move { meta.ok() })
                .collect()
                .await;
            for object in objects {
                let _ = store.delete(&object.location).await;
            }
            if is_local(parent) {
                let _ = tokio::fs::remove_dir_all(format!("/{prefix}")).await;
            }
            done.push(format!(
                "removed the staging leftovers of run {run_id}: {prefix}"
            ));
        }
    }
    done
}

/// On local disk, removes the folder an object was deleted from when it is
/// left empty, so that the runs folder holds only run records.
async fn remove_empty_local_folder(location: &str, object: &ObjectPath) {
    if let (true, Some((folder, _))) = (is_local(location), object.as_ref().rsplit_once('/')) {
        let _ = tokio::fs::remove_dir(format!("/{folder}")).await;
    }
}

/// The folder holding a folder or object location, with its trailing `/`.
fn parent_of(location: &str) -> &str {
    let trimmed = location.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(at) => &location[..=at],
        None => location,
    }
}

fn is_local(location: &str) -> bool {
    location.starts_with('/') || location.starts_with("file://")
}

/// A pause for tests of killed runs: with `CIVICA_PAUSE_AT=<point>` in the
/// environment the run stops at that point (`writing:<table>` after the
/// first batch of an output is written, `publishing:<n>` after `n`
/// outputs are moved into place), says so on stderr, and waits to be
/// killed.
pub fn pause_point(point: &str) {
    if std::env::var("CIVICA_PAUSE_AT").is_ok_and(|p| p == point) {
        eprintln!("civica: paused at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Removes staged files after a failure; the published files are untouched.
pub async fn discard_staged(staged: &[StagedOutput]) {
    for output in staged {
        let _ = output.store.delete(&output.staged).await;
        remove_staging_folder(output).await;
    }
}

/// On local disk the staging folder is a real directory, left empty once
/// its file moved; object stores have no folders to remove.
async fn remove_staging_folder(output: &StagedOutput) {
    remove_empty_local_folder(&output.location, &output.staged).await;
}
