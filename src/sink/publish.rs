//! Publishing staged outputs together: the intent record written first,
//! then renames into place (local disk) or a pointer moved to the new
//! version (object stores), then the record removed. [`complete`] is also
//! what recovery runs to finish a dead run's publish.

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use datafusion::prelude::SessionContext;

use super::{Layout, Publication, Replace, SinkError, StagedOutput};
use crate::faults::{fail_point, pause_point};
use crate::run_id::run_alive;
use crate::storage::layout::{POINTER, VERSIONS, parse_pointer, part_files, read_pointer};
use crate::storage::{local_path, object_in, path_below};

/// Where the run records what it is about to publish, so that a run
/// killed half-way through publishing is completed by the next one.
pub(super) const INTENTS: &str = "publishing";

/// Publishes every staged output. With a runs folder, the publications are
/// first recorded in `<runs>/publishing/<run_id>.json`, removed once done:
/// a run killed half-way is completed by the next run ([`recover`](super::recover())), so the
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
            let body =
                serde_json::to_vec_pretty(&publications).map_err(|source| SinkError::Record {
                    location: runs.to_string(),
                    source,
                })?;
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
            pause_point(&point).await;
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
            Err(err) => {
                tracing::warn!(target: "civica::sink", record = %path, %err, "publish record not removed")
            }
        }
    }
    Ok(())
}

/// [`complete`], unless a test makes the store fail at `point` (see
/// [`fail_point`]).
pub(super) async fn complete_at(
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
                prune_local(location, folder, false).await;
            }
            prune_local(location, staging, true).await;
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
pub(super) async fn versions(store: &dyn ObjectStore, folder: &str) -> Vec<(String, ObjectPath)> {
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
pub(super) async fn remove_all(store: &dyn ObjectStore, location: &str, prefix: &ObjectPath) {
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

/// On local disk, removes the empty folders below `path` (partition
/// folders a replace emptied, a staging folder whose files moved), and
/// `path` itself too when `itself` and it is left empty.
async fn prune_local(location: &str, path: &str, itself: bool) {
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
        // A walk of the local disk: on a blocking thread.
        let _ = tokio::task::spawn_blocking(move || prune(&dir, itself)).await;
    }
}

/// On local disk, removes the folder an object was deleted from when it is
/// left empty, so that the runs folder holds only run records.
pub(super) async fn remove_empty_local_folder(location: &str, object: &ObjectPath) {
    if let Some((folder, _)) = object.as_ref().rsplit_once('/')
        && let Some(path) = local_path(location, folder)
    {
        let _ = tokio::fs::remove_dir(path).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::path_below;

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
}
