//! Parquet as civica writes it: zstd level 3, streamed to any object store.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{SinkError, read_error};
use crate::faults::pause_point;
use crate::plan::OutputPlan;

/// Writes a frame's rows to one Parquet object; returns its rows and size.
/// `first` marks an output's first file, where the `writing:<table>` test
/// pause is.
pub(super) async fn write_parquet(
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
            pause_point(&format!("writing:{}", output.table)).await;
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
