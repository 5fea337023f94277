//! Retention: after a publish, the files of earlier runs older than an
//! output's `retention` (appended parts, partitions no run rewrote, a kept
//! previous version) and the run manifests and check results older than
//! the pipeline's `retention` are deleted.

use chrono::{DateTime, TimeDelta, Utc};
use object_store::ObjectStoreExt;

use super::erase::{EraseError, objects_below};
use crate::storage::local_path_of;

/// Deletes the objects below `folder` written before `now - age` whose
/// path relative to `folder` `select` picks. Returns how many. An object
/// was written when it was last modified, or earlier when the run its path
/// names started earlier: an erasure rewriting it does not make it younger.
pub async fn expire(
    ctx: &datafusion::prelude::SessionContext,
    folder: &str,
    age: TimeDelta,
    now: DateTime<Utc>,
    select: impl Fn(&str) -> bool,
) -> Result<usize, EraseError> {
    let failed = |reason: String| EraseError {
        location: folder.to_string(),
        reason,
    };
    let (store, prefix, objects) = objects_below(ctx, folder).await?;
    let cutoff = now - age;
    let mut removed = 0;
    for object in objects {
        let relative = object
            .location
            .as_ref()
            .strip_prefix(prefix.as_ref())
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let written = crate::run_id::started_of(&relative)
            .map_or(object.last_modified, |started| {
                started.min(object.last_modified)
            });
        if written >= cutoff || relative.contains(".civica-staging-") || !select(&relative) {
            continue;
        }
        store
            .delete(&object.location)
            .await
            .map_err(|e| failed(format!("{relative}: {e}")))?;
        removed += 1;
        // On local disk, the partition or version folder it leaves empty.
        if let Some(root) = local_path_of(folder) {
            let mut dir = root.join(&relative);
            while dir.pop() && dir.starts_with(&root) && dir != root {
                if std::fs::remove_dir(&dir).is_err() {
                    break;
                }
            }
        }
    }
    Ok(removed)
}

/// Whether `relative` is a Parquet file of an output.
pub fn output_file(relative: &str) -> bool {
    relative.ends_with(".parquet")
}

/// Whether `relative` (below the runs folder) is a manifest of `pipeline`.
pub fn manifest_of(pipeline: &str) -> impl Fn(&str) -> bool + '_ {
    move |relative: &str| {
        !relative.contains('/') && relative.ends_with(&format!("_{pipeline}.json"))
    }
}

/// Whether `relative` (below the runs folder) is a check result of `pipeline`.
pub fn checks_of(pipeline: &str) -> impl Fn(&str) -> bool + '_ {
    move |relative: &str| {
        relative.strip_prefix("checks/").is_some_and(|name| {
            !name.contains('/') && name.ends_with(&format!("_{pipeline}.parquet"))
        })
    }
}
