//! Recovery before a run: completing the publish a dead run recorded, and
//! removing the staging folders and unpublished versions dead runs left.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::publish::{INTENTS, complete_at, remove_all, remove_empty_local_folder, versions};
use super::{Layout, Publication};
use crate::run_id::run_alive;
use crate::storage::layout::{VERSIONS, parse_pointer, read_pointer};
use crate::storage::{ensure_store, object_in, path_below, table_url};

/// Why the publish a dead run recorded cannot be completed now. The record
/// and what it staged are kept; the next run retries.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The publish records cannot be listed.
    #[error("cannot list the publish records in {runs}{INTENTS}/: {reason}")]
    List {
        /// The runs folder.
        runs: String,
        /// The store's error.
        reason: String,
    },
    /// The run that wrote the record is still running.
    #[error(
        "run {run_id} is still running and publishing (waited {} s); runs of one pipeline must not overlap",
        waited.as_secs()
    )]
    StillRunning {
        /// The run.
        run_id: String,
        /// How long this run waited.
        waited: std::time::Duration,
    },
    /// The record cannot be read.
    #[error("cannot read the record: {0}")]
    Read(#[source] object_store::Error),
    /// The record is not JSON of publishes.
    #[error("the record is not a publish record: {0}")]
    NotARecord(#[source] serde_json::Error),
    /// The record names files or folders its run would never have.
    #[error("the record cannot be right: {0}; check the outputs, then remove the record")]
    Implausible(String),
    /// The output's store cannot be reached.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// What the record staged is no longer there.
    #[error("the files it staged for {0} are gone; check that output, then remove the record")]
    StagedFilesGone(String),
    /// Moving the staged files failed.
    #[error("cannot complete {location}: {source}")]
    Complete {
        /// The output.
        location: String,
        /// Why.
        #[source]
        source: object_store::Error,
    },
    /// The publish was completed, the record stays.
    #[error("completed, but cannot remove the record: {0}")]
    RemoveRecord(#[source] object_store::Error),
}

impl Publication {
    /// What a record civica wrote for run `run_id` always holds: its files
    /// staged where that run stages them (beside or below the output
    /// folder, named by the run), and names that stay inside the folders.
    /// A record edited into anything else could move files anywhere.
    fn validate(&self, run_id: &str) -> Result<(), RecoveryError> {
        let staging_of_run = [
            format!("{}.civica-staging-{run_id}", self.folder),
            format!("{}/.civica-staging-{run_id}", self.folder),
            format!("{}/{VERSIONS}/{run_id}", self.folder),
        ];
        if !staging_of_run.contains(&self.staging) {
            return Err(RecoveryError::Implausible(format!(
                "its staging `{}` is not where run {run_id} stages `{}`",
                self.staging, self.folder
            )));
        }
        if let Some(bad) = self.files.iter().find(|file| {
            file.is_empty()
                || file.starts_with('/')
                || file
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
        }) {
            return Err(RecoveryError::Implausible(format!(
                "it names the file `{bad}`, which leaves its folder"
            )));
        }
        if !self.tags.is_empty() && self.tags.len() != self.files.len() {
            return Err(RecoveryError::Implausible(format!(
                "it has {} e-tags for {} files",
                self.tags.len(),
                self.files.len()
            )));
        }
        Ok(())
    }
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
            Err(why) => recovery.unfinished.push(why.to_string()),
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
) -> Result<(Arc<dyn ObjectStore>, Vec<(String, ObjectPath)>), RecoveryError> {
    let cannot = |err: &dyn std::fmt::Display| RecoveryError::List {
        runs: runs.to_string(),
        reason: err.to_string(),
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
) -> Result<bool, RecoveryError> {
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
            return Err(RecoveryError::StillRunning {
                run_id: run_id.to_string(),
                waited: PUBLISH_WAIT,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    record_present(store, record).await
}

/// Whether a publish record is still there; a store error is not "no".
async fn record_present(
    store: &dyn ObjectStore,
    record: &ObjectPath,
) -> Result<bool, RecoveryError> {
    match store.head(record).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(err) => Err(RecoveryError::Read(err)),
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
) -> Result<Vec<String>, RecoveryError> {
    let body = store
        .get(record)
        .await
        .map_err(RecoveryError::Read)?
        .bytes()
        .await
        .map_err(RecoveryError::Read)?;
    let publications: Vec<Publication> =
        serde_json::from_slice(&body).map_err(RecoveryError::NotARecord)?;
    for publication in &publications {
        publication.validate(run_id)?;
    }
    let mut done = Vec::new();
    for publication in publications {
        let target = ensure_store(ctx, &publication.location)?;
        if !staged_files_present(target.as_ref(), &publication).await {
            return Err(RecoveryError::StagedFilesGone(publication.location));
        }
        let moved = complete_at("recovering", target.as_ref(), &publication)
            .await
            .map_err(|source| RecoveryError::Complete {
                location: publication.location.clone(),
                source,
            })?;
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
        .map_err(RecoveryError::RemoveRecord)?;
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

/// The folder holding a folder or object location, with its trailing `/`.
fn parent_of(location: &str) -> &str {
    let trimmed = location.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(at) => &location[..=at],
        None => location,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Replace;

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
        good.validate("R1").expect("a record as civica writes it");
        let versioned = Publication {
            staging: "lake/out/people/_versions/R1".to_string(),
            layout: Layout::Versioned,
            tags: Vec::new(),
            ..good.clone()
        };
        versioned
            .validate("R1")
            .expect("a versioned record as civica writes it");
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
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
