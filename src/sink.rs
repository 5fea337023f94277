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

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::{Expr, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::spec::{OutputMode, OutputPlan, quote_ident};
use crate::storage::{
    StorageError, ensure_store, object_at, object_in, path_below, store_path, table_url,
};

/// The file name of an output table inside its folder (or partition).
pub const OUTPUT_FILE: &str = "part-00000.parquet";

/// The pointer object of a versioned output: it holds the folder of the
/// current version, relative to the output's folder (`_versions/<run_id>/`).
pub const POINTER: &str = "_CURRENT";

/// The folder of a versioned output's versions, one per run.
pub const VERSIONS: &str = "_versions";

/// The folder name of a null partition value, as Hive, Spark and Arrow write it.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

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

impl Publication {
    /// What a record civica wrote for run `run_id` always holds: its files
    /// staged where that run stages them (beside or below the output
    /// folder, named by the run), and names that stay inside the folders.
    /// A record edited into anything else could move files anywhere.
    fn validate(&self, run_id: &str) -> Result<(), String> {
        let staging_of_run = [
            format!("{}.civica-staging-{run_id}", self.folder),
            format!("{}/.civica-staging-{run_id}", self.folder),
            format!("{}/{VERSIONS}/{run_id}", self.folder),
        ];
        if !staging_of_run.contains(&self.staging) {
            return Err(format!(
                "its staging `{}` is not where run {run_id} stages `{}`",
                self.staging, self.folder
            ));
        }
        if let Some(bad) = self.files.iter().find(|file| {
            file.is_empty()
                || file.starts_with('/')
                || file
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
        }) {
            return Err(format!(
                "it names the file `{bad}`, which leaves its folder"
            ));
        }
        if !self.tags.is_empty() && self.tags.len() != self.files.len() {
            return Err(format!(
                "it has {} e-tags for {} files",
                self.tags.len(),
                self.files.len()
            ));
        }
        Ok(())
    }
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
    let frame = DataFrame::new(state, plan);
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

/// One partition of an output: its folder (`col=value/…/`, empty when the
/// output is not partitioned) and the rows that go there.
struct Part {
    folder: String,
    filter: Option<Expr>,
}

/// The partitions of an output, in the order of their values: one with
/// every row when it has no `partition_by`.
async fn partitions(frame: &DataFrame, output: &OutputPlan) -> Result<Vec<Part>, SinkError> {
    if output.partition_by.is_empty() {
        return Ok(vec![Part {
            folder: String::new(),
            filter: None,
        }]);
    }
    let read_error = read_error(output);
    let columns: Vec<&str> = output.partition_by.iter().map(String::as_str).collect();
    let quoted: Vec<Expr> = columns.iter().map(|c| col(quote_ident(c))).collect();
    let order = quoted.iter().map(|c| c.clone().sort(true, false)).collect();
    let values: Vec<RecordBatch> = frame
        .clone()
        .select_columns(&columns)
        .and_then(DataFrame::distinct)
        .and_then(|f| f.sort(order))
        .map_err(read_error)?
        .collect()
        .await
        .map_err(read_error)?;
    let mut parts = Vec::new();
    for batch in &values {
        for row in 0..batch.num_rows() {
            let mut folder = String::new();
            let mut filter: Option<Expr> = None;
            for (i, (name, column)) in columns.iter().zip(&quoted).enumerate() {
                let array = batch.column(i);
                let column = column.clone();
                let (text, matches) = if array.is_null(row) {
                    (NULL_PARTITION.to_string(), column.is_null())
                } else {
                    let value = ScalarValue::try_from_array(array, row).map_err(read_error)?;
                    let text = array_value_to_string(array, row).map_err(|err| {
                        read_error(datafusion::error::DataFusionError::ArrowError(
                            Box::new(err),
                            None,
                        ))
                    })?;
                    (text, column.eq(lit(value)))
                };
                if let Some(bad) = text
                    .chars()
                    .find(|c| !(c.is_alphanumeric() || " ._-+:".contains(*c)))
                    .or_else(|| text.is_empty().then_some(' '))
                {
                    return Err(SinkError::Partition {
                        table: output.table.clone(),
                        column: name.to_string(),
                        reason: match text.is_empty() {
                            true => "an empty value cannot name a folder".to_string(),
                            false => format!(
                                "the value `{text}` has `{bad}`, which cannot be part of a folder name (partition values may hold letters, digits, spaces and `._-+:`)"
                            ),
                        },
                    });
                }
                folder.push_str(&format!("{name}={text}/"));
                filter = Some(match filter {
                    Some(before) => before.and(matches),
                    None => matches,
                });
            }
            parts.push(Part { folder, filter });
        }
    }
    Ok(parts)
}

/// Writes a frame's rows to one Parquet object; returns its rows and size.
/// `first` marks an output's first file, where the `writing:<table>` test
/// pause is.
async fn write_parquet(
    frame: DataFrame,
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    output: &OutputPlan,
    first: bool,
) -> Result<(usize, u64), SinkError> {
    let read_error = read_error(output);
    let write_error = |source| SinkError::Write {
        location: output.location.clone(),
        source,
    };
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let mut stream = frame.execute_stream().await.map_err(read_error)?;
    let props = writer_properties().map_err(write_error)?;
    let object_writer = BufWriter::new(Arc::clone(store), path.clone());
    let mut writer =
        AsyncArrowWriter::try_new(object_writer, schema, Some(props)).map_err(write_error)?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(read_error)?;
        rows += batch.num_rows();
        writer.write(&batch).await.map_err(write_error)?;
        if first && rows == batch.num_rows() {
            pause_point(&format!("writing:{}", output.table));
        }
    }
    writer.close().await.map_err(write_error)?;
    let bytes = store
        .head(path)
        .await
        .map(|meta| meta.size)
        .map_err(|source| SinkError::Publish {
            location: output.location.clone(),
            source,
        })?;
    Ok((rows, bytes))
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

/// The `part-*.parquet` files of `base` and of its partition folders
/// (`col=value/`), with their paths relative to it.
async fn part_files(
    store: &dyn ObjectStore,
    base: &str,
) -> Result<Vec<(ObjectPath, String)>, object_store::Error> {
    let prefix = store_path(base);
    let listed: Vec<_> = store.list(Some(&prefix)).collect().await;
    let mut files = Vec::new();
    for object in listed {
        let object = match object {
            Ok(object) => object,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(err) => return Err(err),
        };
        let name = object.location.filename().unwrap_or_default();
        let relative = object
            .location
            .as_ref()
            .strip_prefix(&format!("{}/", prefix.as_ref()))
            .unwrap_or_default()
            .to_string();
        // Only the folder's own files and its partition folders': not
        // `_versions/`, nor another output's folder inside this one.
        let in_partitions = relative.rsplit_once('/').is_none_or(|(folders, _)| {
            folders
                .split('/')
                .all(|f| f.contains('=') && !f.contains(".civica-staging-"))
        });
        if name.starts_with("part-") && name.ends_with(".parquet") && in_partitions {
            files.push((object.location, relative));
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
}

/// The current version a versioned output's pointer names
/// (`_versions/<run_id>/`), or `None` when the folder has no pointer.
async fn read_pointer(
    store: &dyn ObjectStore,
    folder: &str,
) -> Result<Option<String>, object_store::Error> {
    match store.get(&path_below(folder, POINTER)).await {
        Ok(got) => {
            let bytes = got.bytes().await?;
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            match parse_pointer(&text) {
                Some(_) => Ok(Some(text)),
                None => Err(object_store::Error::Generic {
                    store: "civica",
                    source: format!(
                        "the pointer `{folder}/{POINTER}` holds `{text}`, not `{VERSIONS}/<run id>/`"
                    )
                    .into(),
                }),
            }
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The run id a pointer's text names, when it is `_versions/<run id>/`.
fn parse_pointer(text: &str) -> Option<&str> {
    let run_id = text
        .strip_prefix(&format!("{VERSIONS}/"))?
        .strip_suffix('/')?;
    let plain = !run_id.is_empty()
        && !run_id.starts_with('.')
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    plain.then_some(run_id)
}

/// The folder to read for a folder `location`: the version its `_CURRENT`
/// pointer names when it has one (an output civica published to an object
/// store), else the folder itself.
pub async fn current_folder(ctx: &SessionContext, location: &str) -> Result<String, StorageError> {
    if !location.ends_with('/') {
        return Ok(location.to_string());
    }
    let store = ensure_store(ctx, location)?;
    let folder = table_url(location)?.prefix().to_string();
    match read_pointer(store.as_ref(), &folder).await {
        Ok(Some(version)) => Ok(format!("{location}{version}")),
        Ok(None) => Ok(location.to_string()),
        Err(err) => Err(StorageError::Read {
            location: format!("{location}{POINTER}"),
            source: Box::new(err),
        }),
    }
}

/// How civica writes Parquet: zstd level 3.
fn writer_properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build())
}

/// A small table as the bytes of a Parquet file.
pub fn parquet_bytes(batch: &RecordBatch) -> Result<Vec<u8>, parquet::errors::ParquetError> {
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

/// Where the run records what it is about to publish, so that a run
/// killed half-way through publishing is completed by the next one.
const INTENTS: &str = "publishing";

/// Publishes every staged output. With a runs folder, the publications are
/// first recorded in `<runs>/publishing/<run_id>.json`, removed once done:
/// a run killed half-way is completed by the next run ([`recover`]), so the
/// outputs end at one run's state, never a mix.
pub async fn publish_outputs(
    ctx: &SessionContext,
    staged: &[StagedOutput],
    runs: Option<&str>,
    run_id: &str,
) -> Result<(), SinkError> {
    let intent = match runs {
        Some(runs) => {
            let mut publications = Vec::new();
            for output in staged {
                let mut publication = output.publication.clone();
                if publication.layout == Layout::Renamed {
                    for file in &publication.files {
                        let staged_file = path_below(&publication.staging, file);
                        let meta = output.store.head(&staged_file).await;
                        publication.tags.push(meta.ok().and_then(|m| m.e_tag));
                    }
                }
                publications.push(publication);
            }
            let body = serde_json::to_vec_pretty(&publications).unwrap_or_default();
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
        let point = format!("publishing:{done}");
        if done > 0 {
            pause_point(&point);
        }
        complete_at(&point, output.store.as_ref(), &output.publication)
            .await
            .map_err(|source| SinkError::Publish {
                location: output.location.clone(),
                source,
            })?;
    }
    if let Some((store, path)) = intent {
        match store.delete(&path).await {
            Ok(()) => remove_empty_local_folder(runs.unwrap_or_default(), &path).await,
            // Done again by the next run before it reads anything.
            Err(err) => tracing::warn!(record = %path, %err, "publish record not removed"),
        }
    }
    Ok(())
}

/// [`complete`], unless a test makes the store fail at `point` (see
/// [`fail_point`]).
async fn complete_at(
    point: &str,
    store: &dyn ObjectStore,
    publication: &Publication,
) -> Result<bool, object_store::Error> {
    fail_point(point)?;
    complete(store, publication).await
}

/// Publishes one output, or completes its publish: renames the staged
/// files not yet moved and removes what they replace, or points the
/// output at its new version and removes the versions no reader needs.
/// Returns `false` when there was nothing left to do: the pointer names
/// this version, or a later one.
async fn complete(
    store: &dyn ObjectStore,
    publication: &Publication,
) -> Result<bool, object_store::Error> {
    let Publication {
        folder,
        staging,
        files,
        ..
    } = publication;
    match publication.layout {
        Layout::Renamed => {
            for file in files {
                let from = path_below(staging, file);
                if store.head(&from).await.is_ok() {
                    store.rename(&from, &path_below(folder, file)).await?;
                }
            }
            if publication.replace != Replace::Nothing {
                for (object, relative) in part_files(store, folder).await? {
                    if publication.replace.removes(&relative) && !files.contains(&relative) {
                        store.delete(&object).await?;
                    }
                }
            }
            let location = &publication.location;
            if location.ends_with('/') {
                prune_local(location, folder, false);
            }
            prune_local(location, staging, true);
        }
        Layout::Versioned => {
            let Some(run_id) = staging.rsplit('/').next() else {
                return Ok(false);
            };
            let before = read_pointer(store, folder).await?;
            let previous = before.as_deref().and_then(parse_pointer);
            if previous.is_some_and(|current| current >= run_id) {
                // Completed already (a recorded publish done again), or a
                // later run has published since: never point back.
                return Ok(false);
            }
            store
                .put(
                    &path_below(folder, POINTER),
                    format!("{VERSIONS}/{run_id}/").into(),
                )
                .await?;
            remove_old_versions(
                store,
                &publication.location,
                folder,
                &[Some(run_id), previous],
            )
            .await;
            if previous.is_some() {
                // The files published before the folder was versioned: the
                // run before this one stopped pointing at them.
                for (object, _) in part_files(store, folder).await.unwrap_or_default() {
                    let _ = store.delete(&object).await;
                }
            }
        }
    }
    Ok(true)
}

/// Removes every version of a versioned output but those in `keep` and
/// those of runs still running. The version a pointer named until now is
/// kept, for readers that followed it just before it moved.
async fn remove_old_versions(
    store: &dyn ObjectStore,
    location: &str,
    folder: &str,
    keep: &[Option<&str>],
) {
    for (run_id, prefix) in versions(store, folder).await {
        if keep.contains(&Some(run_id.as_str())) || run_alive(&run_id) {
            continue;
        }
        remove_all(store, location, &prefix).await;
    }
}

/// The versions below a versioned output, by run id.
async fn versions(store: &dyn ObjectStore, folder: &str) -> Vec<(String, ObjectPath)> {
    let Ok(listing) = store
        .list_with_delimiter(Some(&path_below(folder, VERSIONS)))
        .await
    else {
        return Vec::new();
    };
    listing
        .common_prefixes
        .into_iter()
        .map(|prefix| (prefix.filename().unwrap_or_default().to_string(), prefix))
        .collect()
}

/// Deletes every object below a prefix, and its folder when `location` is
/// on local disk.
async fn remove_all(store: &dyn ObjectStore, location: &str, prefix: &ObjectPath) {
    let objects: Vec<_> = store
        .list(Some(prefix))
        .filter_map(|meta| async move { meta.ok() })
        .collect()
        .await;
    for object in objects {
        let _ = store.delete(&object.location).await;
    }
    if let Some(path) = local_path(location, prefix.as_ref()) {
        let _ = tokio::fs::remove_dir_all(path).await;
    }
}

/// Whether the run that named a staging folder, a version or an intent may
/// still be running: the process its id ends with is alive on this
/// machine, and started before the run did. A process started later only
/// reuses the pid, as civica does every night when it is PID 1 of a
/// container.
pub(crate) fn run_alive(run_id: &str) -> bool {
    let Some((stamp, pid)) = run_id.rsplit_once('-') else {
        return false;
    };
    let (Ok(pid), Ok(started)) = (
        pid.parse::<u32>(),
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3fZ"),
    ) else {
        return false;
    };
    // A minute of slack, for the clock stepping forward while the run
    // runs: a run taken for alive wrongly is only waited for, one taken
    // for dead wrongly would lose its files.
    process_start(pid).is_some_and(|process| process <= started.and_utc().timestamp() + 60)
}

/// When process `pid` started, in seconds since the epoch, from `/proc`.
fn process_start(pid: u32) -> Option<i64> {
    /// The unit of `/proc` times (`USER_HZ`), 100 on Linux.
    const TICKS_PER_SECOND: i64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces; the start time is field 22, the 20th of these.
    let (_, fields) = stat.rsplit_once(')')?;
    let ticks: i64 = fields.split_whitespace().nth(19)?.parse().ok()?;
    let boot: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot + ticks / TICKS_PER_SECOND)
}

/// What [`recover`] did before a run.
#[derive(Debug, Default)]
pub struct Recovery {
    /// What was repaired, for the log.
    pub repairs: Vec<String>,
    /// The publishes of dead runs that could not be completed, and why.
    /// Their records and files are kept: a run must not publish over
    /// them, and the next run retries.
    pub unfinished: Vec<String>,
}

/// Repairs what dead runs left, before a run reads anything: completes the
/// publish of a run killed or failed half-way (from its record in
/// `<runs>/publishing/`), then removes the staging folders beside `folders`
/// and the never-published versions below them that dead runs left.
pub async fn recover(ctx: &SessionContext, runs: Option<&str>, folders: &[String]) -> Recovery {
    let mut recovery = Recovery::default();
    // Runs whose publish could not be completed: what they staged stays.
    let mut pending: Vec<String> = Vec::new();
    if let Some(runs) = runs {
        match recorded_publishes(ctx, runs).await {
            Ok((store, records)) => {
                for (at, (run_id, record)) in records.iter().enumerate() {
                    let outcome = match wait_while_alive(store.as_ref(), run_id, record).await {
                        Ok(true) => complete_recorded(ctx, store.as_ref(), record, run_id).await,
                        Ok(false) => Ok(Vec::new()),
                        Err(why) => Err(why),
                    };
                    match outcome {
                        Ok(repairs) => {
                            recovery.repairs.extend(repairs);
                            remove_empty_local_folder(runs, record).await;
                        }
                        Err(why) => {
                            recovery.unfinished.push(format!(
                                "the publish of run {run_id} (recorded in {record}): {why}"
                            ));
                            // Later publishes wait for this one: completing
                            // them first would let it move outputs back.
                            pending.extend(records[at..].iter().map(|(id, _)| id.clone()));
                            break;
                        }
                    }
                }
            }
            Err(why) => recovery.unfinished.push(why),
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
            if run_alive(run_id) || pending.iter().any(|p| p == run_id) {
                continue;
            }
            remove_all(store.as_ref(), parent, &prefix).await;
            recovery.repairs.push(format!(
                "removed the staging leftovers of run {run_id}: {prefix}"
            ));
        }
    }
    for location in folders.iter().filter(|f| f.ends_with('/')) {
        let (Ok(store), Ok(url)) = (ensure_store(ctx, location), table_url(location)) else {
            continue;
        };
        let folder = url.prefix().to_string();
        let Ok(current) = read_pointer(store.as_ref(), &folder).await else {
            continue;
        };
        let current = current
            .as_deref()
            .and_then(parse_pointer)
            .unwrap_or_default();
        for (run_id, prefix) in versions(store.as_ref(), &folder).await {
            // A version newer than the current one was never published.
            if run_id.as_str() > current && !run_alive(&run_id) && !pending.contains(&run_id) {
                remove_all(store.as_ref(), location, &prefix).await;
                recovery.repairs.push(format!(
                    "removed the unpublished version of run {run_id}: {prefix}"
                ));
            }
        }
    }
    recovery
}

/// The publish records in `<runs>/publishing/`, by run id, oldest first.
/// A listing that fails is an error: taking it for "none" would let a run
/// publish over an unfinished publish.
async fn recorded_publishes(
    ctx: &SessionContext,
    runs: &str,
) -> Result<(Arc<dyn ObjectStore>, Vec<(String, ObjectPath)>), String> {
    let cannot = |err: &dyn std::fmt::Display| {
        format!("cannot list the publish records in {runs}{INTENTS}/: {err}")
    };
    let (store, intents) = object_in(ctx, runs, INTENTS).map_err(|err| cannot(&err))?;
    let listed: Vec<_> = store.list(Some(&intents)).collect().await;
    let mut records = Vec::new();
    for meta in listed {
        match meta {
            Ok(meta) => {
                let run_id = meta
                    .location
                    .filename()
                    .and_then(|f| f.strip_suffix(".json"))
                    .unwrap_or_default()
                    .to_string();
                records.push((run_id, meta.location));
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => return Err(cannot(&err)),
        }
    }
    records.sort();
    Ok((store, records))
}

/// How long a run waits for another run, still running, to finish its
/// publish: a publish is renames or pointer writes, seconds at most.
const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits while the run that wrote `record` is alive (another run of this
/// or another pipeline publishing to the same runs folder now). Returns
/// whether the record is still there to complete.
async fn wait_while_alive(
    store: &dyn ObjectStore,
    run_id: &str,
    record: &ObjectPath,
) -> Result<bool, String> {
    // This process runs one run at a time: a record of its own (a
    // backfill's earlier day whose record could not be removed) is of a
    // finished run.
    let ours = run_id.ends_with(&format!("-{}", std::process::id()));
    let waited = std::time::Instant::now();
    while run_alive(run_id) && !ours {
        if !record_present(store, record).await? {
            return Ok(false);
        }
        if waited.elapsed() > PUBLISH_WAIT {
            return Err(format!(
                "run {run_id} is still running and publishing (waited {} s); runs of one pipeline must not overlap",
                PUBLISH_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    record_present(store, record).await
}

/// Whether a publish record is still there; a store error is not "no".
async fn record_present(store: &dyn ObjectStore, record: &ObjectPath) -> Result<bool, String> {
    match store.head(record).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(err) => Err(format!("cannot read the record: {err}")),
    }
}

/// Completes the publish recorded in `record` by a dead run, then removes
/// the record. Returns what was done, or why it could not be (the record
/// is then kept).
async fn complete_recorded(
    ctx: &SessionContext,
    store: &dyn ObjectStore,
    record: &ObjectPath,
    run_id: &str,
) -> Result<Vec<String>, String> {
    let body = store
        .get(record)
        .await
        .map_err(|err| format!("cannot read the record: {err}"))?
        .bytes()
        .await
        .map_err(|err| format!("cannot read the record: {err}"))?;
    let publications: Vec<Publication> = serde_json::from_slice(&body)
        .map_err(|err| format!("the record is not a publish record: {err}"))?;
    for publication in &publications {
        publication.validate(run_id).map_err(|err| {
            format!("the record cannot be right: {err}; check the outputs, then remove the record")
        })?;
    }
    let mut done = Vec::new();
    for publication in publications {
        let target = ensure_store(ctx, &publication.location).map_err(|err| err.to_string())?;
        if !staged_files_present(target.as_ref(), &publication).await {
            return Err(format!(
                "the files it staged for {} are gone; check that output, then remove the record",
                publication.location
            ));
        }
        let moved = complete_at("recovering", target.as_ref(), &publication)
            .await
            .map_err(|err| format!("cannot complete {}: {err}", publication.location))?;
        done.push(match moved {
            true => format!(
                "completed the publish of run {run_id}: {}",
                publication.location
            ),
            false => format!(
                "the publish of run {run_id} to {} was done already",
                publication.location
            ),
        });
    }
    store
        .delete(record)
        .await
        .map_err(|err| format!("completed, but cannot remove the record: {err}"))?;
    Ok(done)
}

/// Whether a recorded publish can still be completed: every staged file
/// is still staged or already moved (a publish is recorded only once all
/// are written, so this fails only if someone removed them since).
async fn staged_files_present(store: &dyn ObjectStore, publication: &Publication) -> bool {
    for (at, file) in publication.files.iter().enumerate() {
        let staged = store
            .head(&path_below(&publication.staging, file))
            .await
            .is_ok();
        let moved = publication.layout == Layout::Renamed
            && match store.head(&path_below(&publication.folder, file)).await {
                // Not the file of an earlier run with the same name.
                Ok(meta) => match publication.tags.get(at) {
                    Some(Some(tag)) => meta.e_tag.as_ref() == Some(tag),
                    _ => true,
                },
                Err(_) => false,
            };
        if !staged && !moved {
            return false;
        }
    }
    true
}

/// The local file system path of a store path when `location` is on
/// local disk, `None` elsewhere.
fn local_path(location: &str, path: &str) -> Option<PathBuf> {
    if !is_local(location) {
        return None;
    }
    let path = ObjectPath::parse(path).ok()?;
    LocalFileSystem::new()
        .path_to_filesystem(&path)
        .ok()
        .filter(|p| p.exists())
}

/// On local disk, removes the empty folders below `path` (partition
/// folders a replace emptied, a staging folder whose files moved), and
/// `path` itself too when `itself` and it is left empty.
fn prune_local(location: &str, path: &str, itself: bool) {
    fn prune(dir: &std::path::Path, itself: bool) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.filter_map(Result::ok) {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    prune(&entry.path(), true);
                }
            }
        }
        if itself {
            let _ = std::fs::remove_dir(dir);
        }
    }
    if let Some(dir) = local_path(location, path) {
        prune(&dir, itself);
    }
}

/// On local disk, removes the folder an object was deleted from when it is
/// left empty, so that the runs folder holds only run records.
pub(crate) async fn remove_empty_local_folder(location: &str, object: &ObjectPath) {
    if let Some((folder, _)) = object.as_ref().rsplit_once('/')
        && let Some(path) = local_path(location, folder)
    {
        let _ = tokio::fs::remove_dir(path).await;
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
/// outputs are published), says so on stderr, and waits to be killed.
pub fn pause_point(point: &str) {
    if std::env::var("CIVICA_PAUSE_AT").is_ok_and(|p| p == point) {
        eprintln!("civica: paused at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// A failure for tests of failed publishes: with `CIVICA_FAIL_AT=<point>`
/// in the environment, the store operation at that point fails
/// (`publishing:<n>` the publish of output `n`, counted from 0;
/// `recovering` the completion of a dead run's publish).
fn fail_point(point: &str) -> Result<(), object_store::Error> {
    if std::env::var("CIVICA_FAIL_AT").is_ok_and(|p| p == point) {
        return Err(object_store::Error::Generic {
            store: "civica",
            source: format!("failure injected at {point} (CIVICA_FAIL_AT)").into(),
        });
    }
    Ok(())
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
    fn a_pointer_names_one_version_folder() {
        assert_eq!(
            parse_pointer("_versions/20261121T010203.004Z-77/"),
            Some("20261121T010203.004Z-77")
        );
        for bad in [
            "",
            "_versions/",
            "_versions/../x/",
            "_versions/a/b/",
            "versions/a/",
            "_versions/a",
            "s3://b/x/",
        ] {
            assert_eq!(parse_pointer(bad), None, "{bad}");
        }
    }

    /// A publish done again (its record read twice) after a later run
    /// published never points the output back at its older version.
    #[tokio::test]
    async fn a_pointer_never_moves_back_to_an_older_run() {
        let store = object_store::memory::InMemory::new();
        let (older, newer) = (
            "20261120T010000.000Z-999999999",
            "20261121T010000.000Z-999999999",
        );
        let publication = |run_id: &str| Publication {
            location: "s3://lake/out/".to_string(),
            folder: "out".to_string(),
            staging: format!("out/{VERSIONS}/{run_id}"),
            files: vec!["part-00000.parquet".to_string()],
            replace: Replace::Everything,
            layout: Layout::Versioned,
            tags: Vec::new(),
        };
        let write = |run_id: &str| {
            let file = path_below(&format!("out/{VERSIONS}/{run_id}"), "part-00000.parquet");
            let store = &store;
            async move { store.put(&file, "x".into()).await.expect("put") }
        };
        let pointer = || async { read_pointer(&store, "out").await.expect("pointer") };
        write(older).await;
        complete(&store, &publication(older)).await.expect("older");
        assert_eq!(pointer().await, Some(format!("{VERSIONS}/{older}/")));
        write(newer).await;
        complete(&store, &publication(newer)).await.expect("newer");
        complete(&store, &publication(older))
            .await
            .expect("older again");
        assert_eq!(pointer().await, Some(format!("{VERSIONS}/{newer}/")));
        // Both versions stay: the current one, and the one readers may
        // have followed just before the pointer moved.
        let kept: Vec<String> = versions(&store, "out")
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(kept, [older, newer]);
    }

    /// A run id is alive while its process runs; one naming this
    /// process's pid from before it started is a dead run whose pid was
    /// reused (civica as PID 1 of a container, night after night).
    #[test]
    fn a_reused_pid_does_not_keep_a_dead_run_alive() {
        let pid = std::process::id();
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        assert!(run_alive(&format!("{now}-{pid}")));
        let yesterday =
            (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y%m%dT%H%M%S%.3fZ");
        assert!(!run_alive(&format!("{yesterday}-{pid}")));
        assert!(!run_alive(&format!("{now}-999999999")), "no such process");
        assert!(!run_alive("validate"));
    }

    #[test]
    fn a_publish_record_edited_to_move_files_elsewhere_is_refused() {
        let good = Publication {
            location: "/lake/out/people/".to_string(),
            folder: "lake/out/people".to_string(),
            staging: "lake/out/people.civica-staging-R1".to_string(),
            files: vec![
                "part-00000.parquet".to_string(),
                "day=1/part-R1.parquet".to_string(),
            ],
            replace: Replace::Everything,
            layout: Layout::Renamed,
            tags: vec![None, None],
        };
        assert_eq!(good.validate("R1"), Ok(()));
        let versioned = Publication {
            staging: "lake/out/people/_versions/R1".to_string(),
            layout: Layout::Versioned,
            tags: Vec::new(),
            ..good.clone()
        };
        assert_eq!(versioned.validate("R1"), Ok(()));
        let cases = [
            (
                Publication {
                    staging: "etc".to_string(),
                    ..good.clone()
                },
                "is not where run R1",
            ),
            (good.clone(), "is not where run R2"),
            (
                Publication {
                    files: vec!["../../etc/passwd".to_string()],
                    tags: Vec::new(),
                    ..good.clone()
                },
                "leaves its folder",
            ),
            (
                Publication {
                    tags: vec![None],
                    ..good.clone()
                },
                "1 e-tags for 2 files",
            ),
        ];
        for (at, (publication, expected)) in cases.into_iter().enumerate() {
            let run = if at == 1 { "R2" } else { "R1" };
            let err = publication.validate(run).expect_err(expected);
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn a_replace_removes_what_it_names() {
        let partitions = Replace::Partitions(vec!["ds=2026-11-21/".into()]);
        assert!(partitions.removes("ds=2026-11-21/part-00000.parquet"));
        assert!(!partitions.removes("ds=2026-11-20/part-00000.parquet"));
        assert!(Replace::Everything.removes("part-1.parquet"));
        assert!(!Replace::Nothing.removes("part-1.parquet"));
    }
}
