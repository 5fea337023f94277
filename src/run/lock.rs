//! One run of a pipeline at a time, per runs folder.
//!
//! On local disk (a local or network mount) the lock is the operating
//! system's: `<runs>/lock/<pipeline>.lock` is locked with `flock`, which
//! the kernel releases when the run ends however it ends, so a dead run
//! never holds it. On object stores it is an object,
//! `<runs>/lock/<pipeline>.json`, written with a create-if-absent PUT and
//! removed when the run ends; a lock whose run is dead (on this machine:
//! its process is gone, or its machine rebooted since) is replaced with a
//! conditional PUT on its entity tag, so that of two runs breaking it at
//! once only one succeeds. A lock of another machine cannot be checked:
//! younger than [`LEASE`] it makes the run skip, older it stops the run
//! (exit 1) asking for it to be looked at, rather than skipping every
//! night in silence.

use std::io::{Read, Seek, Write};
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::storage::{local_path_of, object_in};

/// How long another machine's lock object is taken for a live run.
pub const LEASE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Who holds a lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    /// This boot of the machine (`/proc/sys/kernel/random/boot_id`).
    #[serde(default)]
    boot: String,
    /// The process-id namespace its pid is in (`/proc/self/ns/pid`).
    #[serde(default)]
    pid_namespace: String,
    started_at: String,
}

impl Holder {
    fn me(run_id: &str) -> Self {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_string())
                .unwrap_or_default()
        };
        Holder {
            run_id: run_id.to_string(),
            host: read("/proc/sys/kernel/hostname"),
            boot: read("/proc/sys/kernel/random/boot_id"),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .map(|link| link.display().to_string())
                .unwrap_or_default(),
            started_at: chrono::Utc::now().to_rfc3339(),
        }
    }

    /// Whether `self` can be checked from `me`: the same machine, boot and
    /// pid namespace, where its pid means the same process.
    fn checkable_from(&self, me: &Holder) -> bool {
        self.host == me.host
            && !self.boot.is_empty()
            && self.boot == me.boot
            && self.pid_namespace == me.pid_namespace
    }

    fn describe(&self) -> String {
        format!("run `{}` on `{}`", self.run_id, self.host)
    }
}

/// A taken lock, held until [`RunLock::release`] (or the process's end).
#[derive(Debug)]
pub enum RunLock {
    /// A locked local file: unlocked when closed.
    File(std::fs::File),
    /// A lock object on a store.
    Object {
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The object.
        path: ObjectPath,
        /// This run.
        run_id: String,
    },
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another run holds it: this run is skipped.
    Held(String),
    /// The lock cannot be taken or checked: the run fails.
    Failed(String),
}

/// Takes the lock of `pipeline` in the runs folder for run `run_id`.
pub async fn take_lock(
    ctx: &SessionContext,
    runs: &str,
    pipeline: &str,
    run_id: &str,
) -> Result<RunLock, LockError> {
    match local_path_of(runs) {
        Some(folder) => lock_file(
            &folder.join("lock").join(format!("{pipeline}.lock")),
            run_id,
        ),
        None => lock_object(ctx, runs, pipeline, run_id).await,
    }
}

/// Locks a local file with `flock`, writing who holds it into it.
fn lock_file(path: &std::path::Path, run_id: &str) -> Result<RunLock, LockError> {
    let failed = |what: &str, err: std::io::Error| {
        LockError::Failed(format!(
            "cannot {what} the lock `{}`: {err}",
            path.display()
        ))
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(|err| failed("create the folder of", err))?;
    }
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|err| failed("open", err))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = serde_json::from_str::<Holder>(&text)
                .map(|h| h.describe())
                .unwrap_or_else(|_| "another run".to_string());
            return Err(LockError::Held(format!(
                "{holder} holds the lock `{}`, so this run was skipped",
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(err)) => return Err(failed("take", err)),
    }
    // Who holds it, for the message of a run that finds it taken.
    let written = serde_json::to_vec(&Holder::me(run_id))
        .map_err(std::io::Error::from)
        .and_then(|body| {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(&body)
        });
    if let Err(err) = written {
        tracing::warn!(lock = %path.display(), %err, "the lock's holder was not written");
    }
    Ok(RunLock::File(file))
}

/// Takes a lock object: created if absent, or put over a dead run's lock
/// on the condition that it is still the one read.
async fn lock_object(
    ctx: &SessionContext,
    runs: &str,
    pipeline: &str,
    run_id: &str,
) -> Result<RunLock, LockError> {
    let location = format!("{runs}lock/{pipeline}.json");
    let (store, path) = object_in(ctx, runs, &format!("lock/{pipeline}.json"))
        .map_err(|e| LockError::Failed(e.to_string()))?;
    let me = Holder::me(run_id);
    let body = serde_json::to_vec(&me).map_err(|err| {
        LockError::Failed(format!("cannot write the lock record `{location}`: {err}"))
    })?;
    let cannot = |what: &str, err: object_store::Error| {
        LockError::Failed(format!("cannot {what} the lock `{location}`: {err}"))
    };
    // Three tries at most: a lock released or broken by another run in
    // between is looked at again.
    for _ in 0..3 {
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match store.put_opts(&path, body.clone().into(), create).await {
            Ok(_) => return Ok(lock_of(store, path, run_id)),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(err) => return Err(cannot("take", err)),
        }
        let found = match store.get(&path).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(err) => return Err(cannot("read", err)),
        };
        let version = UpdateVersion {
            e_tag: found.meta.e_tag.clone(),
            version: found.meta.version.clone(),
        };
        let bytes = found.bytes().await.map_err(|err| cannot("read", err))?;
        // Unreadable: written by a run killed while writing it.
        let holder = serde_json::from_slice::<Holder>(&bytes).ok();
        if let Some(holder) = &holder {
            // The same machine, booted since: that run is dead.
            let rebooted =
                holder.host == me.host && !holder.boot.is_empty() && holder.boot != me.boot;
            if !rebooted && !holder.checkable_from(&me) {
                let age = chrono::DateTime::parse_from_rfc3339(&holder.started_at)
                    .map(|at| chrono::Utc::now() - at.to_utc())
                    .unwrap_or(LEASE);
                if age < LEASE {
                    return Err(LockError::Held(format!(
                        "{} holds the lock `{location}`, so this run was skipped",
                        holder.describe()
                    )));
                }
                return Err(LockError::Failed(format!(
                    "{} took the lock `{location}` {} hours ago and civica cannot tell from here whether it still runs; if it does not, remove the lock",
                    holder.describe(),
                    age.num_hours()
                )));
            }
            if !rebooted && crate::run_id::run_alive(&holder.run_id) {
                return Err(LockError::Held(format!(
                    "{} holds the lock `{location}`, so this run was skipped",
                    holder.describe()
                )));
            }
        }
        let dead = holder.map_or_else(|| "unknown".to_string(), |h| h.run_id);
        let replace = PutOptions {
            mode: PutMode::Update(version),
            ..PutOptions::default()
        };
        match store.put_opts(&path, body.clone().into(), replace).await {
            Ok(_) => {
                tracing::warn!(lock = %location, run = %dead, "broke the lock of a dead run");
                return Ok(lock_of(store, path, run_id));
            }
            // Another run replaced or removed it first: look again.
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => {}
            Err(object_store::Error::NotImplemented { .. }) => {
                // A store without conditional updates: removed, then
                // created if absent, which a racing run may win instead.
                store
                    .delete(&path)
                    .await
                    .map_err(|err| cannot("remove the dead run's", err))?;
                tracing::warn!(lock = %location, run = %dead, "broke the lock of a dead run");
            }
            Err(err) => return Err(cannot("replace the dead run's", err)),
        }
    }
    Err(LockError::Held(format!(
        "other runs took the lock `{location}` as this one started, so this run was skipped"
    )))
}

fn lock_of(store: Arc<dyn ObjectStore>, path: ObjectPath, run_id: &str) -> RunLock {
    RunLock::Object {
        store,
        path,
        run_id: run_id.to_string(),
    }
}

impl RunLock {
    /// Gives the lock up: a local file is unlocked (and kept, so that no
    /// run ever locks a file another has just removed); a lock object is
    /// removed if it is still this run's. A lock that cannot be removed is
    /// logged; the next run breaks it, this run being dead by then.
    pub async fn release(self) {
        match self {
            RunLock::File(file) => drop(file),
            RunLock::Object {
                store,
                path,
                run_id,
            } => {
                let ours = match store.get(&path).await {
                    Ok(found) => found.bytes().await.ok().is_some_and(|bytes| {
                        serde_json::from_slice::<Holder>(&bytes)
                            .is_ok_and(|holder| holder.run_id == run_id)
                    }),
                    Err(_) => false,
                };
                if !ours {
                    tracing::warn!(lock = %path, "the run lock was not this run's any more; left as it is");
                    return;
                }
                if let Err(err) = store.delete(&path).await {
                    tracing::warn!(lock = %path, %err, "run lock not removed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_local_lock_turns_a_second_run_away_until_released() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("lock/p.lock");
        let first = lock_file(&path, "20261201T010000.000Z-1").expect("taken");
        match lock_file(&path, "20261201T010001.000Z-2") {
            Err(LockError::Held(message)) => {
                assert!(
                    message.contains("run `20261201T010000.000Z-1`"),
                    "{message}"
                )
            }
            other => panic!("taken twice: {other:?}"),
        }
        drop(first);
        assert!(lock_file(&path, "20261201T010002.000Z-3").is_ok());
    }

    #[test]
    fn only_a_holder_of_this_boot_and_namespace_is_checked_by_pid() {
        let me = Holder::me("a");
        assert!(me.checkable_from(&me) || me.boot.is_empty());
        let rebooted = Holder {
            boot: "another boot".to_string(),
            ..me.clone()
        };
        assert!(!rebooted.checkable_from(&me));
        let elsewhere = Holder {
            host: "etl2".to_string(),
            ..me.clone()
        };
        assert!(!elsewhere.checkable_from(&me));
    }
}
