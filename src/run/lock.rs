//! One run of a pipeline at a time: a lock object in the runs folder,
//! `<runs>/lock/<pipeline>.json`, taken with a create-if-absent write and
//! removed when the run ends. A lock whose run is dead (its process is
//! gone from this machine, or its pid was reused) is broken; a live one
//! makes the new run skip, with its own exit code.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};

use crate::storage::object_in;

/// What a lock object holds: who holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
}

/// A taken lock, released by [`RunLock::release`] (a run killed before
/// that leaves it, and the next run breaks it).
#[derive(Debug)]
pub struct RunLock {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    runs: String,
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another run holds it: this run is skipped.
    Held(String),
    /// The store failed.
    Store(String),
}

/// This machine's name, to tell locks of other machines.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

/// Takes the lock of `pipeline` in the runs folder for run `run_id`.
pub async fn take_lock(
    ctx: &SessionContext,
    runs: &str,
    pipeline: &str,
    run_id: &str,
) -> Result<RunLock, LockError> {
    let (store, path) = object_in(ctx, runs, &format!("lock/{pipeline}.json"))
        .map_err(|e| LockError::Store(e.to_string()))?;
    let location = format!("{runs}lock/{pipeline}.json");
    let me = Holder {
        run_id: run_id.to_string(),
        host: host_name(),
    };
    let body = serde_json::to_vec(&me).unwrap_or_default();
    // Twice at most: once more after breaking a dead run's lock.
    for _ in 0..2 {
        let put = store
            .put_opts(
                &path,
                body.clone().into(),
                PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                },
            )
            .await;
        match put {
            Ok(_) => {
                return Ok(RunLock {
                    store,
                    path,
                    runs: runs.to_string(),
                });
            }
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(err) => {
                return Err(LockError::Store(format!(
                    "cannot take the lock `{location}`: {err}"
                )));
            }
        }
        let holder = match store.get(&path).await {
            Ok(found) => found
                .bytes()
                .await
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Holder>(&bytes).ok()),
            // Released in between: try again.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(err) => {
                return Err(LockError::Store(format!(
                    "cannot read the lock `{location}`: {err}"
                )));
            }
        };
        let alive = match &holder {
            Some(h) if h.host != me.host => true,
            Some(h) => crate::sink::run_alive(&h.run_id),
            // Unreadable: a run killed while writing it.
            None => false,
        };
        if let (true, Some(holder)) = (alive, &holder) {
            return Err(LockError::Held(format!(
                "run `{}` on `{}` holds the lock `{location}`, so this run was skipped; if that run is gone (its machine stopped), remove the lock",
                holder.run_id, holder.host
            )));
        }
        tracing::warn!(
            lock = %location,
            run = holder.as_ref().map(|h| h.run_id.as_str()).unwrap_or("unknown"),
            "broke the lock of a dead run"
        );
        if let Err(err) = store.delete(&path).await {
            return Err(LockError::Store(format!(
                "cannot remove the dead run's lock `{location}`: {err}"
            )));
        }
    }
    Err(LockError::Held(format!(
        "another run took the lock `{location}` as this one started, so this run was skipped"
    )))
}

impl RunLock {
    /// Removes the lock; a lock that cannot be removed is logged (the next
    /// run breaks it, its run being dead).
    pub async fn release(self) {
        match self.store.delete(&self.path).await {
            Ok(()) => crate::sink::remove_empty_local_folder(&self.runs, &self.path).await,
            Err(err) => tracing::warn!(lock = %self.path, %err, "run lock not removed"),
        }
    }
}
