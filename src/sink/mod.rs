//! Writing output tables as Parquet (zstd) and publishing them together.
//!
//! Every output is first written where no reader looks. On local disk that
//! is a staging folder beside the output, moved into place by renames once
//! every output is written. Object stores have no rename: there an output
//! is written as a new version, `<output>/_versions/<run_id>/`, and made
//! current by rewriting the output's `_CURRENT` pointer object, which
//! readers (and civica's own sources) follow. Either way a failed run
//! leaves the published outputs as they were, and a run killed half-way
//! through publishing is completed by the next one ([`recover`]).

pub mod erase;
mod parquet;
mod partition;
mod publish;
mod recover;
pub mod retention;

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

pub use self::parquet::parquet_bytes;
use self::parquet::write_parquet;
use crate::pipeline::OutputMode;
use crate::plan::OutputPlan;
use crate::storage::layout::{OUTPUT_FILE, VERSIONS, part_files, read_pointer};
use crate::storage::{
    StorageError, ensure_store, is_local, object_at, path_below, store_path, table_url,
};
use partition::{Part, partitions};
pub use publish::publish_outputs;
use publish::remove_all;
pub use recover::{Recovery, recover};

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
        source: ::parquet::errors::ParquetError,
    },
    /// A partition value cannot name a folder.
    #[error("cannot partition `{table}` by `{column}`: {reason}")]
    Partition {
        /// The table.
        table: String,
        /// The partition column.
        column: String,
        /// Why.
        reason: String,
    },
    /// The publish record could not be written as JSON.
    #[error("cannot write the publish record in `{location}`: {source}")]
    Record {
        /// The runs folder.
        location: String,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
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

/// How a run's files reach an output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Layout {
    /// Written to a staging folder beside the output, then renamed into it.
    Renamed,
    /// Written to `<output>/_versions/<run_id>/`, then named by `_CURRENT`.
    Versioned,
}

/// Which files already in an output a publish removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replace {
    /// None: the run's files are added (`append`).
    #[default]
    Nothing,
    /// Every `part-*.parquet` file (`overwrite`, or a full refresh).
    Everything,
    /// The files of the partition folders the run wrote
    /// (`overwrite_partition`), as `col=value/` paths.
    Partitions(Vec<String>),
    /// The files these runs appended (`part-<run_id>.parquet`, in any
    /// partition), whose inputs this run read again.
    Runs(Vec<String>),
}

impl Replace {
    /// Whether the file at `relative` (below the output folder) goes.
    fn removes(&self, relative: &str) -> bool {
        match self {
            Replace::Nothing => false,
            Replace::Everything => true,
            Replace::Partitions(folders) => folders.iter().any(|f| relative.starts_with(f)),
            Replace::Runs(runs) => {
                let name = relative.rsplit('/').next().unwrap_or(relative);
                runs.iter().any(|run| name == format!("part-{run}.parquet"))
            }
        }
    }
}

/// One output's publish, as recorded in the intent record before it
/// happens, so that the next run can complete it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Publication {
    /// The location the store is found by.
    location: String,
    /// The output folder (or, for a single object, its folder), in the store.
    folder: String,
    /// Where the run's files were written, in the store.
    staging: String,
    /// The files written, relative to `staging` and to `folder`.
    files: Vec<String>,
    /// What the publish removes.
    replace: Replace,
    /// Renames or a new version.
    layout: Layout,
    /// For renamed files, each staged file's e-tag, which a rename keeps:
    /// a file in the output folder with it is one this publish moved
    /// there, not the one it replaces.
    #[serde(default)]
    tags: Vec<Option<String>>,
}

/// An output written where readers do not look, waiting to be published.
#[derive(Debug, Clone)]
pub struct StagedOutput {
    /// The table.
    pub table: String,
    /// The output folder (or the object) as the pipeline names it.
    pub location: String,
    /// Rows written.
    pub rows: usize,
    /// Size of the Parquet files written.
    pub bytes: u64,
    /// Partitions written (0 when the output is not partitioned).
    pub partitions: usize,
    /// Run id of the version written, for a versioned output.
    version: Option<String>,
    publication: Publication,
    store: Arc<dyn ObjectStore>,
}

impl StagedOutput {
    /// Where this run's data is read once published: the file of an
    /// unpartitioned output, else the folder (the version's folder for a
    /// versioned output).
    pub fn published_path(&self) -> String {
        if !self.location.ends_with('/') {
            return self.location.clone();
        }
        let folder = match &self.version {
            Some(run_id) => format!("{}{VERSIONS}/{run_id}/", self.location),
            None => self.location.clone(),
        };
        match (self.partitions, self.publication.files.as_slice()) {
            (0, [file]) => format!("{folder}{file}"),
            _ => folder,
        }
    }

    /// The files written, with the published folder before each, when the
    /// output is partitioned (an unpartitioned output's one file is its
    /// [`published_path`](Self::published_path)).
    pub fn partition_files(&self) -> Vec<String> {
        if self.partitions == 0 {
            return Vec::new();
        }
        let folder = self.published_path();
        self.publication
            .files
            .iter()
            .map(|file| format!("{folder}{file}"))
            .collect()
    }
}

/// How outputs are published at `location`: by renames on local disk, as
/// versions elsewhere (object stores cannot rename).
fn layout_of(location: &str) -> Layout {
    match is_local(location) {
        true => Layout::Renamed,
        false => Layout::Versioned,
    }
}

/// How reading an output's table fails.
fn read_error(
    output: &OutputPlan,
) -> impl Fn(datafusion::error::DataFusionError) -> SinkError + Copy + '_ {
    |source| SinkError::Read {
        table: output.table.clone(),
        source,
    }
}

/// Writes a table where no reader looks: a staging folder beside its
/// output folder, or a new version below it on object stores. With
/// `partition_by`, one file per partition folder. `full_refresh` makes an
/// `append` or `overwrite_partition` output replace all its files;
/// `replaced_runs` are runs whose inputs this run read again, whose
/// appended files it replaces.
pub async fn stage_output(
    ctx: &SessionContext,
    output: &OutputPlan,
    run_id: &str,
    full_refresh: bool,
    replaced_runs: &BTreeSet<String>,
) -> Result<StagedOutput, SinkError> {
    let store = ensure_store(ctx, &output.location)?;
    let folder = table_url(&output.location)?.prefix().to_string();
    let layout = layout_of(&output.location);
    let staging = match layout {
        Layout::Renamed => format!("{folder}.civica-staging-{run_id}"),
        Layout::Versioned => format!("{folder}/{VERSIONS}/{run_id}"),
    };
    let file = match output.mode {
        OutputMode::Append => format!("part-{run_id}.parquet"),
        OutputMode::Overwrite | OutputMode::OverwritePartition => OUTPUT_FILE.to_string(),
    };
    // Read as one partition: the table's rows are written in the order the
    // step produced them (an `ORDER BY` holds), and a re-run writes the
    // same bytes; several partitions would interleave as they finish.
    let mut state = ctx.state();
    state.config_mut().options_mut().execution.target_partitions = 1;
    let read_error = read_error(output);
    let plan = ctx
        .table(output.table.as_str())
        .await
        .map_err(read_error)?
        .into_unoptimized_plan();
    let mut frame = DataFrame::new(state, plan);
    if let Some((count, min_cell)) = &output.cell_count {
        let count =
            datafusion::prelude::Expr::Column(datafusion::common::Column::new_unqualified(count));
        let min_cell = i64::try_from(*min_cell).unwrap_or(i64::MAX);
        frame = frame
            .filter(count.gt_eq(datafusion::prelude::lit(min_cell)))
            .map_err(read_error)?;
    }
    let parts = partitions(&frame, output).await?;
    let partitioned = !output.partition_by.is_empty();
    let mut staged = StagedOutput {
        table: output.table.clone(),
        location: output.location.clone(),
        rows: 0,
        bytes: 0,
        partitions: if partitioned { parts.len() } else { 0 },
        version: (layout == Layout::Versioned).then(|| run_id.to_string()),
        publication: Publication {
            location: output.location.clone(),
            folder,
            staging,
            files: Vec::new(),
            replace: Replace::Nothing,
            layout,
            tags: Vec::new(),
        },
        store: Arc::clone(&store),
    };
    let replace = match (output.mode, full_refresh) {
        (OutputMode::Overwrite, _) | (_, true) => Replace::Everything,
        (OutputMode::Append, false) if replaced_runs.is_empty() => Replace::Nothing,
        (OutputMode::Append, false) => Replace::Runs(replaced_runs.iter().cloned().collect()),
        // The partitions written, known once they are.
        (OutputMode::OverwritePartition, false) => Replace::Partitions(Vec::new()),
    };
    match write_parts(&mut staged, &frame, parts, output, &file, replace).await {
        Ok(()) => Ok(staged),
        Err(err) => {
            discard_staged(std::slice::from_ref(&staged)).await;
            Err(err)
        }
    }
}

/// Writes an output's partitions to its staging folder or version, and,
/// for a version, copies in what it keeps of the current one.
async fn write_parts(
    staged: &mut StagedOutput,
    frame: &DataFrame,
    parts: Vec<Part>,
    output: &OutputPlan,
    file: &str,
    replace: Replace,
) -> Result<(), SinkError> {
    let read_error = read_error(output);
    let store = Arc::clone(&staged.store);
    let partition_columns: Vec<&str> = output.partition_by.iter().map(String::as_str).collect();
    let mut folders = Vec::new();
    for (at, part) in parts.into_iter().enumerate() {
        // In the store's encoding, as the folder's own path is.
        let relative = format!("{}{file}", part.folder)
            .split('/')
            .map(|segment| {
                object_store::path::PathPart::from(segment)
                    .as_ref()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("/");
        let path = path_below(&staged.publication.staging, &relative);
        let data = match part.filter {
            Some(filter) => frame
                .clone()
                .filter(filter)
                .and_then(|f| f.drop_columns(&partition_columns))
                .map_err(read_error)?,
            None => frame.clone(),
        };
        let (rows, bytes) = write_parquet(data, &store, &path, output, at == 0).await?;
        if rows == 0 && output.mode == OutputMode::Append {
            // An empty night appends no empty file.
            store
                .delete(&path)
                .await
                .map_err(|source| SinkError::Publish {
                    location: output.location.clone(),
                    source,
                })?;
            continue;
        }
        staged.rows += rows;
        staged.bytes += bytes;
        if let Some((partition, _)) = relative.rsplit_once('/') {
            folders.push(format!("{partition}/"));
        }
        staged.publication.files.push(relative);
    }
    staged.publication.replace = match replace {
        Replace::Partitions(_) => Replace::Partitions(folders),
        other => other,
    };
    if staged.publication.layout == Layout::Versioned {
        carry_over(staged)
            .await
            .map_err(|source| SinkError::Publish {
                location: output.location.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Copies into a new version the files of the current one that this run
/// keeps (an `append`, or the partitions an `overwrite_partition` did not
/// write), server-side. Without a current version, the files at the
/// folder's top (published before it was versioned) are the current ones.
async fn carry_over(staged: &StagedOutput) -> Result<(), object_store::Error> {
    let publication = &staged.publication;
    if publication.replace == Replace::Everything {
        return Ok(());
    }
    let store = staged.store.as_ref();
    let current = read_pointer(store, &publication.folder).await?;
    let base = match &current {
        Some(version) => format!("{}/{}", publication.folder, version.trim_end_matches('/')),
        None => publication.folder.clone(),
    };
    for (object, relative) in part_files(store, &base).await? {
        if publication.replace.removes(&relative) || publication.files.contains(&relative) {
            continue;
        }
        store
            .copy(&object, &path_below(&publication.staging, &relative))
            .await?;
    }
    Ok(())
}

/// Stages a small object (the segment model, the incremental state) to be
/// published with the outputs: `location` is the final object's path or
/// URL. One object is replaced whole, even by an object store's copy, so
/// it is renamed into place everywhere.
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
    let staging = format!("{folder}/.civica-staging-{run_id}");
    let size = bytes.len() as u64;
    store
        .put(&path_below(&staging, name), bytes.into())
        .await
        .map_err(|source| SinkError::Publish {
            location: location.to_string(),
            source,
        })?;
    Ok(StagedOutput {
        table: name.to_string(),
        location: location.to_string(),
        rows: 0,
        bytes: size,
        partitions: 0,
        version: None,
        publication: Publication {
            location: location.to_string(),
            folder: folder.to_string(),
            staging,
            files: vec![name.to_string()],
            replace: Replace::Nothing,
            layout: Layout::Renamed,
            tags: Vec::new(),
        },
        store,
    })
}

/// Removes what a failed run staged; the published files are untouched.
pub async fn discard_staged(staged: &[StagedOutput]) {
    for output in staged {
        let publication = &output.publication;
        let prefix = store_path(&publication.staging);
        remove_all(output.store.as_ref(), &publication.location, &prefix).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replace_removes_what_it_names() {
        let partitions = Replace::Partitions(vec!["ds=2026-11-21/".into()]);
        assert!(partitions.removes("ds=2026-11-21/part-00000.parquet"));
        assert!(!partitions.removes("ds=2026-11-20/part-00000.parquet"));
        assert!(Replace::Everything.removes("part-1.parquet"));
        assert!(!Replace::Nothing.removes("part-1.parquet"));
    }
}
