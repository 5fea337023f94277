//! Erasure in what is already published: after a run's publish, every
//! Parquet file below each output's folder (the current version, the kept
//! previous one, appended parts, partitions, quarantine tables) and below
//! the runs folder (the check history) loses the rows naming an erased
//! citizen, and the run manifests lose such values; files are rewritten
//! only where something was removed.

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::parquet_bytes;
use crate::privacy::erasure::Erased;
use crate::storage::{ensure_store, table_url};

/// Why erasing from published files failed.
#[derive(Debug, thiserror::Error)]
#[error("erasing from `{location}` failed: {reason}")]
pub struct EraseError {
    /// The file or folder.
    pub location: String,
    /// Why.
    pub reason: String,
}

/// Removes the erased citizens from every file below `folders` (outputs
/// and the runs folder). Returns how many files were rewritten.
pub async fn erase_published(
    ctx: &SessionContext,
    folders: &[String],
    erased: &Erased,
) -> Result<usize, EraseError> {
    if erased.is_empty() {
        return Ok(0);
    }
    let mut rewritten = 0;
    for folder in folders {
        let failed = |reason: String| EraseError {
            location: folder.clone(),
            reason,
        };
        let (store, prefix, objects) = objects_below(ctx, folder).await?;
        for object in objects {
            let path = object.location;
            let name = path.as_ref().to_string();
            if name.contains(".civica-staging-") {
                continue;
            }
            let erase = |bytes: Bytes| match () {
                _ if name.ends_with(".parquet") => erase_in_parquet(bytes, erased),
                _ if name.ends_with(".json") => Ok(erase_in_json(&bytes, erased)),
                _ => Ok(None),
            };
            let bytes = match store.get(&path).await {
                Ok(found) => found.bytes().await,
                Err(err) => Err(err),
            }
            .map_err(|e| failed(e.to_string()))?;
            if let Some(cleaned) =
                erase(bytes).map_err(|reason| failed(format!("{name}: {reason}")))?
            {
                put(store.as_ref(), &path, cleaned)
                    .await
                    .map_err(|e| failed(format!("{name}: {e}")))?;
                keep_modified_time(folder, &prefix, &path, object.last_modified);
                rewritten += 1;
            }
        }
    }
    Ok(rewritten)
}

/// The store of `folder`, its prefix, and every object below it.
pub(super) async fn objects_below(
    ctx: &SessionContext,
    folder: &str,
) -> Result<
    (
        std::sync::Arc<dyn ObjectStore>,
        object_store::path::Path,
        Vec<object_store::ObjectMeta>,
    ),
    EraseError,
> {
    let failed = |reason: String| EraseError {
        location: folder.to_string(),
        reason,
    };
    let store = ensure_store(ctx, folder).map_err(|e| failed(e.to_string()))?;
    let prefix = table_url(folder)
        .map_err(|e| failed(e.to_string()))?
        .prefix()
        .clone();
    let objects = store
        .list(Some(&prefix))
        .filter_map(|meta| async move { meta.ok() })
        .collect()
        .await;
    Ok((store, prefix, objects))
}

/// On local disk, gives a rewritten file back the time it was last
/// modified before, so that retention, which goes by it where the path
/// names no run, does not count its age from the erasure. (An object
/// store sets its own time; files there are aged by the run in their path.)
fn keep_modified_time(
    folder: &str,
    prefix: &object_store::path::Path,
    path: &object_store::path::Path,
    modified: chrono::DateTime<chrono::Utc>,
) {
    let Some(root) = crate::storage::local_path_of(folder) else {
        return;
    };
    let relative = path
        .as_ref()
        .strip_prefix(prefix.as_ref())
        .unwrap_or_default()
        .trim_start_matches('/');
    let file = std::fs::File::options()
        .write(true)
        .open(root.join(relative));
    if let Ok(file) = file {
        let _ = file.set_modified(modified.into());
    }
}

async fn put(
    store: &dyn ObjectStore,
    path: &object_store::path::Path,
    bytes: Vec<u8>,
) -> Result<(), object_store::Error> {
    store.put(path, bytes.into()).await.map(|_| ())
}

/// The file without the rows naming an erased citizen, or `None` when it
/// names none.
fn erase_in_parquet(bytes: Bytes, erased: &Erased) -> Result<Option<Vec<u8>>, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| e.to_string())?;
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut changed = false;
    let mut kept = Vec::with_capacity(batches.len());
    for batch in batches {
        let keep = rows_to_keep(&batch, erased).map_err(|e| e.to_string())?;
        if keep.false_count() > 0 {
            changed = true;
        }
        kept.push(filter_record_batch(&batch, &keep).map_err(|e| e.to_string())?);
    }
    if !changed {
        return Ok(None);
    }
    let batch = concat_batches(&schema, &kept).map_err(|e| e.to_string())?;
    parquet_bytes(&batch).map(Some).map_err(|e| e.to_string())
}

/// False for each row naming an erased citizen: an `ids` column holding
/// an erased id, or a text (or list of texts) holding an erased codice
/// fiscale or pseudonym.
fn rows_to_keep(
    batch: &RecordBatch,
    erased: &Erased,
) -> Result<BooleanArray, datafusion::arrow::error::ArrowError> {
    let mut keep = vec![true; batch.num_rows()];
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let is_id = erased.id_columns.iter().any(|c| c == field.name());
        let names = |text: &str| match is_id {
            true => erased.ids.contains(text),
            false => erased.names_someone(text),
        };
        let texts: Option<ArrayRef> = match field.data_type() {
            DataType::List(_) | DataType::LargeList(_) => None,
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Dictionary(..) => Some(cast(column, &DataType::Utf8)?),
            _ if is_id => Some(cast(column, &DataType::Utf8)?),
            _ => None,
        };
        if let Some(texts) = texts {
            for (row, value) in texts.as_string::<i32>().iter().enumerate() {
                if value.is_some_and(names) {
                    keep[row] = false;
                }
            }
        } else if let DataType::List(_) = field.data_type() {
            let lists = column.as_list::<i32>();
            for (row, slot) in keep.iter_mut().enumerate() {
                if lists.is_null(row) {
                    continue;
                }
                let values = cast(&lists.value(row), &DataType::Utf8)?;
                if values
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .any(|v| erased.ids.contains(v) || erased.names_someone(v))
                {
                    *slot = false;
                }
            }
        }
    }
    Ok(BooleanArray::from(keep))
}

/// A JSON record (a run manifest) with every string naming an erased
/// citizen replaced by `<erased>`, or `None` when it names none.
fn erase_in_json(bytes: &[u8], erased: &Erased) -> Option<Vec<u8>> {
    fn walk(value: &mut serde_json::Value, erased: &Erased) -> bool {
        match value {
            serde_json::Value::String(text)
                if erased.ids.contains(text.as_str()) || erased.names_someone(text) =>
            {
                *text = "<erased>".to_string();
                true
            }
            serde_json::Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, item| walk(item, erased) | changed),
            serde_json::Value::Object(map) => map
                .values_mut()
                .fold(false, |changed, item| walk(item, erased) | changed),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    walk(&mut value, erased)
        .then(|| {
            serde_json::to_string_pretty(&value)
                .ok()
                .map(String::into_bytes)
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::privacy::erasure::ErasureList;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn erased() -> Erased {
        Erased {
            list: ErasureList::parse("RSSMRA85T10A562S\n", "list").expect("list"),
            ids: ["100001".to_string()].into(),
            id_columns: vec!["citizen_id".to_string()],
            ..Erased::default()
        }
    }

    #[test]
    fn rows_naming_an_erased_citizen_by_id_or_codice_fiscale_are_dropped() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("citizen_id", DataType::Int64, false),
                Field::new("raw_line", DataType::Utf8, true),
                Field::new("calls", DataType::Int64, false),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![100001, 100002, 100003, 100004])),
                Arc::new(StringArray::from(vec![
                    None,
                    Some("x;tinit-rssmra85t10a562s;y"),
                    Some("x;VRDLGU75B12F205X;y"),
                    None,
                ])),
                // A count equal to an erased id is not an id.
                Arc::new(Int64Array::from(vec![1, 2, 3, 100001])),
            ],
        )
        .expect("batch");
        let keep = rows_to_keep(&batch, &erased()).expect("mask");
        assert_eq!(keep, BooleanArray::from(vec![false, false, true, true]));
        let json = br#"{"checks":[{"failing_keys":["100001","7"]}],"rows":100001}"#;
        let cleaned = erase_in_json(json, &erased()).expect("changed");
        let text = String::from_utf8(cleaned).expect("utf-8");
        assert!(
            text.contains("\"<erased>\"") && text.contains("\"7\""),
            "{text}"
        );
        assert!(erase_in_json(br#"{"a":"b"}"#, &erased()).is_none());
    }
}
