//! The layout of a published output folder, as readers see it: the file
//! name of an unpartitioned output, the `_CURRENT` pointer of a versioned
//! output and its `_versions/` folder, and the `part-*.parquet` files of a
//! folder and its partitions. The sink writes this layout; sources and the
//! segment step read it.

use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{StorageError, ensure_store, path_below, store_path, table_url};

/// The file name of an output table inside its folder (or partition).
pub const OUTPUT_FILE: &str = "part-00000.parquet";

/// The pointer object of a versioned output: it holds the folder of the
/// current version, relative to the output's folder (`_versions/<run_id>/`).
pub const POINTER: &str = "_CURRENT";

/// The folder of a versioned output's versions, one per run.
pub const VERSIONS: &str = "_versions";

/// The `part-*.parquet` files of `base` and of its partition folders
/// (`col=value/`), with their paths relative to it.
pub(crate) async fn part_files(
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
pub(crate) async fn read_pointer(
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
pub(crate) fn parse_pointer(text: &str) -> Option<&str> {
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

/// The table an unpartitioned output folder holds at its current
/// version, or `None` when nothing was published there yet.
pub async fn read_published(
    ctx: &SessionContext,
    folder: &str,
) -> Result<Option<datafusion::prelude::DataFrame>, StorageError> {
    let folder = current_folder(ctx, folder).await?;
    let store = ensure_store(ctx, &folder)?;
    let file = table_url(&folder)?.prefix().clone().join(OUTPUT_FILE);
    if store.head(&file).await.is_err() {
        return Ok(None);
    }
    let location = format!("{folder}{OUTPUT_FILE}");
    ctx.read_parquet(
        location.clone(),
        datafusion::prelude::ParquetReadOptions::default(),
    )
    .await
    .map(Some)
    .map_err(|err| StorageError::Read {
        location,
        source: Box::new(err),
    })
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
}
