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

use crate::spec::OutputPlan;
use crate::storage::{StorageError, ensure_store, table_url};

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
    store: Arc<dyn ObjectStore>,
}

/// Writes a table to a staging object beside its output folder.
pub async fn stage_output(
    ctx: &SessionContext,
    output: &OutputPlan,
    run_id: &str,
) -> Result<StagedOutput, SinkError> {
    let store = ensure_store(ctx, &output.location)?;
    let folder = table_url(&output.location)?.prefix().clone();
    let target = folder.clone().join(OUTPUT_FILE);
    let staged = ObjectPath::from(format!(
        "{}.civica-staging-{run_id}/{OUTPUT_FILE}",
        folder.as_ref().trim_end_matches('/')
    ));
    let read_error = |source| SinkError::Read {
        table: output.table.clone(),
        source,
    };
    let frame = ctx.table(output.table.as_str()).await.map_err(read_error)?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let mut stream = frame.execute_stream().await.map_err(read_error)?;
    let write_error = |source| SinkError::Write {
        location: output.location.clone(),
        source,
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(write_error)?,
        ))
        .build();
    let object_writer = BufWriter::new(Arc::clone(&store), staged.clone());
    let mut writer =
        AsyncArrowWriter::try_new(object_writer, schema, Some(props)).map_err(write_error)?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(read_error)?;
        rows += batch.num_rows();
        writer.write(&batch).await.map_err(write_error)?;
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
        store,
    })
}

/// Stages a small object (the segment model) to be published with the
/// outputs: `location` is the final object's path or URL.
pub async fn stage_object(
    ctx: &SessionContext,
    location: &str,
    bytes: bytes::Bytes,
    run_id: &str,
) -> Result<StagedOutput, SinkError> {
    let store = ensure_store(ctx, location)?;
    let target = table_url(location)?.prefix().clone();
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
        store,
    })
}

/// Moves every staged output into place.
pub async fn publish_outputs(staged: &[StagedOutput]) -> Result<(), SinkError> {
    for output in staged {
        output
            .store
            .rename(&output.staged, &output.target)
            .await
            .map_err(|source| SinkError::Publish {
                location: output.location.clone(),
                source,
            })?;
        remove_staging_folder(output).await;
    }
    Ok(())
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
    let folder = output
        .staged
        .as_ref()
        .rsplit_once('/')
        .map(|(dir, _)| dir.to_string());
    if let (Some(folder), true) = (
        folder,
        output.location.starts_with('/') || output.location.starts_with("file://"),
    ) {
        let _ = tokio::fs::remove_dir(format!("/{folder}")).await;
    }
}
