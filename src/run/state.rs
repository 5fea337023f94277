//! The state of incremental sources: which input objects successful runs
//! have read, kept as `<runs>/state/<pipeline>.json`, and which objects a
//! run reads. It is staged and published with the outputs, so it only
//! moves on when they do.
//!
//! An object is known by its path below its source's folder, so a lake
//! that is moved or remounted is not read again, and by its content (size
//! and SHA-256), so a file touched or copied again with the same bytes is
//! not read twice. A file whose bytes changed after a run read it is
//! never read again silently: the source's `on_changed_input` says what
//! happens.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pipeline::OnChangedInput;
use crate::plan::SourcePlan;
use crate::storage::{StorageError, display_object, ensure_store, object_at, table_url};

/// The layout of the state file this civica writes. States written before
/// it (keyed by URL, without content hashes) are read and upgraded.
pub const STATE_FORMAT: u32 = 2;

/// What an object looked like when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    /// Size in bytes.
    pub bytes: u64,
    /// The store's entity tag, where it gives one.
    pub etag: Option<String>,
    /// SHA-256 of its bytes, in hex (absent in states of format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The run that read it (absent in states of format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The objects each incremental source has read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadState {
    /// [`STATE_FORMAT`]; 0 (absent) for states of format 1.
    #[serde(default)]
    pub format: u32,
    /// By source name, then the object's path below the source's folder
    /// (its URL in format 1).
    pub sources: BTreeMap<String, BTreeMap<String, Seen>>,
}

/// Where a pipeline's state lives.
pub fn state_location(runs: &str, pipeline: &str) -> String {
    format!("{runs}state/{pipeline}.json")
}

/// Why the incremental state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Its store cannot be reached.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// Reading it failed.
    #[error("cannot read the incremental state `{location}`: {source}")]
    Read {
        /// The state file.
        location: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// It is not a state civica wrote, or not one it can read.
    #[error(
        "the incremental state `{location}` is damaged: {problem}; restore it from a backup, or run with `--full-refresh` to read every file again and rebuild it"
    )]
    Damaged {
        /// The state file.
        location: String,
        /// What is wrong.
        problem: String,
    },
}

/// Reads a pipeline's state; none yet is an empty state. A state that is
/// damaged, or was edited into one that cannot be right, is an error
/// naming the file and what is wrong.
pub async fn load_state(ctx: &SessionContext, location: &str) -> Result<LoadState, StateError> {
    let (store, path) = object_at(ctx, location)?;
    let damaged = |problem: String| StateError::Damaged {
        location: location.to_string(),
        problem,
    };
    let unreadable = |source| StateError::Read {
        location: location.to_string(),
        source,
    };
    match store.get(&path).await {
        Ok(found) => {
            let bytes = found.bytes().await.map_err(unreadable)?;
            let state: LoadState =
                serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
            state.validate().map_err(|e| damaged(e.to_string()))?;
            Ok(state)
        }
        Err(object_store::Error::NotFound { .. }) => Ok(LoadState::default()),
        Err(e) => Err(unreadable(e)),
    }
}

impl LoadState {
    /// What cannot be in a state civica wrote.
    fn validate(&self) -> Result<(), StateProblem> {
        if self.format > STATE_FORMAT {
            return Err(StateProblem::Newer(self.format));
        }
        for (source, objects) in &self.sources {
            let at = |key: &str| (source.clone(), key.to_string());
            for (key, seen) in objects {
                if key.is_empty() {
                    return Err(StateProblem::NoName(source.clone()));
                }
                if let Some(hash) = &seen.sha256
                    && (hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    let (table, key) = at(key);
                    return Err(StateProblem::Hash { table, key });
                }
                if seen.run_id.as_deref() == Some("") {
                    let (table, key) = at(key);
                    return Err(StateProblem::NoRun { table, key });
                }
            }
        }
        Ok(())
    }
}

/// What is wrong with a state file civica cannot have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProblem {
    /// A format this version cannot read.
    #[error("it has format {0}, written by a newer civica (this one reads up to {STATE_FORMAT})")]
    Newer(u32),
    /// An object with an empty name.
    #[error("source `{0}` lists an object with no name")]
    NoName(String),
    /// A content hash that is not SHA-256 hex.
    #[error("the content hash of `{key}` (source `{table}`) is not a SHA-256")]
    Hash {
        /// The source.
        table: String,
        /// The object.
        key: String,
    },
    /// An object read by no run.
    #[error("`{key}` (source `{table}`) names no run that read it")]
    NoRun {
        /// The source.
        table: String,
        /// The object.
        key: String,
    },
}

/// The path of an object below its source's folder: how the state knows it.
pub fn object_key(prefix: &ObjectPath, object: &ObjectPath) -> String {
    let (prefix, object) = (prefix.as_ref(), object.as_ref());
    match object.strip_prefix(prefix) {
        _ if prefix.is_empty() => object.to_string(),
        Some("") => object.rsplit('/').next().unwrap_or(object).to_string(),
        Some(rest) if rest.starts_with('/') => rest[1..].to_string(),
        _ => object.to_string(),
    }
}

/// SHA-256 of an object's bytes, in hex, read as a stream.
async fn content_sha256(
    store: &dyn ObjectStore,
    path: &ObjectPath,
) -> Result<String, object_store::Error> {
    let mut stream = store.get(path).await?.into_stream();
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// One listed object of an incremental source and what this run does with it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The object.
    pub meta: ObjectMeta,
    /// Its path below the source's folder.
    pub key: String,
    /// SHA-256 of its bytes, where it was needed.
    pub sha256: Option<String>,
    /// Whether this run reads it.
    pub read: bool,
}

/// What the incremental sources read in this run, and the state after it.
#[derive(Debug, Default)]
pub struct Selection {
    /// By source name, every object listed.
    pub objects: BTreeMap<String, Vec<Listed>>,
    /// Runs whose objects are read again (`on_changed_input: reread`):
    /// the files they appended are replaced by this run's.
    pub replaced_runs: BTreeSet<String>,
    /// The state to publish with the outputs.
    pub next: LoadState,
    /// Changes that `on_changed_input: ignore` let pass, for the log.
    pub ignored: Vec<String>,
}

/// An incremental source's folder as listed, resolved once for both passes
/// of [`select_inputs`].
struct Root<'a> {
    source: &'a SourcePlan,
    /// The folder listed: a version folder when the source follows a
    /// civica output's `_CURRENT` pointer.
    location: &'a str,
    store: std::sync::Arc<dyn ObjectStore>,
    /// Its path in the store, which object keys are relative to.
    prefix: ObjectPath,
    /// What earlier runs read of it, by path below the folder.
    seen: BTreeMap<String, Seen>,
}

impl<'a> Root<'a> {
    fn resolve(
        ctx: &SessionContext,
        before: &LoadState,
        source: &'a SourcePlan,
        location: &'a str,
    ) -> Result<Self, StorageError> {
        let url = table_url(location)?;
        Ok(Root {
            source,
            location,
            store: ensure_store(ctx, location)?,
            prefix: url.prefix().clone(),
            seen: upgraded(before, &source.name, &url.object_store(), url.prefix()),
        })
    }

    /// Whether the folder listed is a version of a civica output.
    fn follows_pointer(&self) -> bool {
        self.location != self.source.location
    }
}

/// Decides which objects of each incremental source this run reads, given
/// what earlier runs read: new objects, and the objects of runs whose
/// input changed under `on_changed_input: reread`. An object whose bytes
/// changed under `fail` (the default) is an error naming it and the
/// choices. New objects are hashed only with `hash_new` (a run, which
/// records them; `validate` does not).
pub async fn select_inputs(
    ctx: &SessionContext,
    listings: &[(&SourcePlan, &str, &[ObjectMeta])],
    before: &LoadState,
    run_id: &str,
    hash_new: bool,
) -> Result<Selection, Vec<String>> {
    let mut selection = Selection {
        next: LoadState {
            format: STATE_FORMAT,
            sources: BTreeMap::new(),
        },
        ..Selection::default()
    };
    let mut errors = Vec::new();
    let mut roots = Vec::new();
    // Each object against what was read of it: first pass.
    for (source, location, objects) in listings {
        let root = Root::resolve(ctx, before, source, location).map_err(|e| vec![e.to_string()])?;
        let mut listed: Vec<Listed> = objects
            .iter()
            .map(|meta| Listed {
                meta: meta.clone(),
                key: object_key(&root.prefix, &meta.location),
                sha256: None,
                read: false,
            })
            .collect();
        let listed_keys: BTreeSet<String> = listed.iter().map(|l| l.key.clone()).collect();
        // What was read and is not listed now (moved away, archived) stays
        // known: were it put back, it is not read again.
        let mut kept: BTreeMap<String, Seen> = root
            .seen
            .iter()
            .filter(|(key, _)| !listed_keys.contains(*key))
            .map(|(key, earlier)| (key.clone(), earlier.clone()))
            .collect();
        for object in &mut listed {
            let meta = &object.meta;
            let hash = || async {
                content_sha256(root.store.as_ref(), &meta.location)
                    .await
                    .map_err(|e| {
                        format!(
                            "source `{}`: cannot read `{}` to hash it: {e}",
                            source.name,
                            display_object(location, &meta.location)
                        )
                    })
            };
            let Some(earlier) = root.seen.get(&object.key) else {
                object.read = true;
                if hash_new && meta.size > 0 {
                    match hash().await {
                        Ok(sha) => object.sha256 = Some(sha),
                        Err(err) => errors.push(err),
                    }
                }
                continue;
            };
            let same_tag = earlier.etag == meta.e_tag;
            let resized = earlier.bytes != meta.size;
            let (unchanged, sha) = if resized && source.on_changed_input == OnChangedInput::Fail {
                // Changed for sure, and the run stops: no need to hash.
                (false, earlier.sha256.clone())
            } else if !resized && same_tag && meta.e_tag.is_some() && earlier.sha256.is_some() {
                (true, earlier.sha256.clone())
            } else {
                // The bytes decide, and the hash recorded is the one of
                // the bytes there now.
                match hash().await {
                    // Without an earlier hash, the same size and tag stand
                    // for the same bytes (format 1, also on stores
                    // without tags).
                    Ok(sha) => (
                        !resized && earlier.sha256.as_ref().map_or(same_tag, |h| *h == sha),
                        Some(sha),
                    ),
                    Err(err) => {
                        errors.push(err);
                        continue;
                    }
                }
            };
            object.sha256 = sha.clone();
            let current = Seen {
                bytes: meta.size,
                etag: meta.e_tag.clone(),
                sha256: sha,
                run_id: earlier.run_id.clone(),
            };
            if unchanged {
                kept.insert(object.key.clone(), current);
                continue;
            }
            let name = display_object(location, &meta.location);
            let change = Change {
                what: format!(
                    "`{name}` changed after run `{}` read it ({} bytes then, {} now)",
                    earlier.run_id.as_deref().unwrap_or("of an earlier civica"),
                    earlier.bytes,
                    meta.size
                ),
                remedy: "read it again and replace what that run appended",
                ignored: "its new bytes are not read",
                key: object.key.clone(),
                current: Some(current),
            };
            change.apply(source, earlier, &mut kept, &mut selection, &mut errors);
        }
        // A civica output read at the version its `_CURRENT` names: a file
        // read before and gone from the current version was replaced by
        // the run that publishes it (a reread, a full refresh), so what it
        // gave this pipeline is out of date, like a changed file.
        if root.follows_pointer() {
            for (key, earlier) in root
                .seen
                .iter()
                .filter(|(key, _)| !listed_keys.contains(*key))
            {
                let change = Change {
                    what: format!(
                        "`{key}`, which run `{}` read, is not in the current version of `{}` any more (the pipeline that publishes it replaced it)",
                        earlier.run_id.as_deref().unwrap_or("of an earlier civica"),
                        source.location
                    ),
                    remedy: "replace what that run appended with the current version's files",
                    ignored: "what was read of it is kept",
                    key: key.clone(),
                    current: None,
                };
                change.apply(source, earlier, &mut kept, &mut selection, &mut errors);
            }
        }
        selection.objects.insert(source.name.clone(), listed);
        selection.next.sources.insert(source.name.clone(), kept);
        roots.push(root);
    }
    // Second pass: every object of a replaced run is read again, so that
    // its appended rows are replaced whole. A replaced run that also read
    // a source this run does not read incrementally cannot be replaced:
    // its rows from there would be lost.
    for (name, objects) in &before.sources {
        if listings.iter().any(|(source, _, _)| source.name == *name) {
            continue;
        }
        if let Some(run) = objects
            .values()
            .filter_map(|seen| seen.run_id.as_ref())
            .find(|run| selection.replaced_runs.contains(*run))
        {
            errors.push(format!(
                "run `{run}` also read source `{name}`, which this run does not read incrementally, so the rows it appended cannot be read again; run with `--full-refresh`"
            ));
        }
    }
    for root in roots.iter().filter(|_| !selection.replaced_runs.is_empty()) {
        let name = &root.source.name;
        let listed = selection.objects.entry(name.clone()).or_default();
        let kept = selection.next.sources.entry(name.clone()).or_default();
        for (key, earlier) in &root.seen {
            let Some(run) = earlier
                .run_id
                .as_ref()
                .filter(|r| selection.replaced_runs.contains(*r))
            else {
                continue;
            };
            kept.remove(key);
            match listed.iter_mut().find(|l| l.key == *key) {
                Some(object) => {
                    object.read = true;
                    if object.sha256.is_none() {
                        // Read again: its state is of the bytes read.
                        object.sha256 = content_sha256(root.store.as_ref(), &object.meta.location)
                            .await
                            .ok();
                    }
                }
                // Replaced upstream: the current version's files stand
                // for it.
                None if root.follows_pointer() => {}
                None => errors.push(format!(
                    "source `{name}`: run `{run}` read `{key}`, which is gone, so the rows that run appended cannot be read again; put the file back, or run with `--full-refresh`"
                )),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for (name, listed) in &selection.objects {
        let kept = selection.next.sources.entry(name.clone()).or_default();
        // An empty file is read as nothing and stays unknown: filled
        // later, it is a new file.
        for object in listed.iter().filter(|l| l.read && l.meta.size > 0) {
            kept.insert(
                object.key.clone(),
                Seen {
                    bytes: object.meta.size,
                    etag: object.meta.e_tag.clone(),
                    sha256: object.sha256.clone(),
                    run_id: Some(run_id.to_string()),
                },
            );
        }
    }
    // Sources of the earlier state that this run does not list (renamed,
    // or made non-incremental) keep what they read.
    for (name, objects) in &before.sources {
        selection
            .next
            .sources
            .entry(name.clone())
            .or_insert_with(|| objects.clone());
    }
    Ok(selection)
}

/// An object that is not as an earlier run read it (its bytes changed, or
/// it is gone from the version of a civica output), for
/// `on_changed_input` to decide on.
struct Change {
    /// What happened, naming the object.
    what: String,
    /// What `reread` does about it.
    remedy: &'static str,
    /// What `ignore` does about it.
    ignored: &'static str,
    /// The object, by path below its folder.
    key: String,
    /// The object as it is now, if it is still there.
    current: Option<Seen>,
}

impl Change {
    /// `fail`: an error with the choices; `ignore`: a warning, and the
    /// object taken as it is now (`current`, if it is still there);
    /// `reread`: the run that read it is replaced.
    fn apply(
        self,
        source: &SourcePlan,
        earlier: &Seen,
        kept: &mut BTreeMap<String, Seen>,
        selection: &mut Selection,
        errors: &mut Vec<String>,
    ) {
        let Change {
            what,
            remedy,
            ignored,
            key,
            current,
        } = self;
        let name = &source.name;
        match (source.on_changed_input, &earlier.run_id) {
            (OnChangedInput::Fail, _) => errors.push(format!(
                "source `{name}`: {what}; to {remedy}, set `on_changed_input: reread` on the source; to keep what was read, `on_changed_input: ignore`; or start over with `--full-refresh`"
            )),
            (OnChangedInput::Ignore, _) => {
                selection.ignored.push(format!(
                    "source `{name}`: {what}; {ignored} (`on_changed_input: ignore`)"
                ));
                if let Some(current) = current {
                    kept.insert(key, current);
                }
            }
            (OnChangedInput::Reread, Some(run)) => {
                selection.replaced_runs.insert(run.clone());
                kept.remove(&key);
            }
            (OnChangedInput::Reread, None) => errors.push(format!(
                "source `{name}`: {what}, and the state does not say which run read it (written by an earlier civica), so its rows cannot be replaced; run with `--full-refresh`"
            )),
        }
    }
}

/// The tables whose rows come, directly or through steps, from an
/// incremental source (its table or its rejected lines).
pub fn tables_from_incremental_sources(plan: &crate::plan::Plan) -> BTreeSet<String> {
    let mut tables: BTreeSet<String> = plan
        .sources
        .iter()
        .filter(|s| s.incremental)
        .flat_map(|s| std::iter::once(s.name.clone()).chain(s.rejected_table()))
        .collect();
    // Steps are in dependency order: one pass sees every path.
    for step in &plan.steps {
        let reads_one = match step {
            crate::plan::Step::Sql(sql) => sql.reads.iter().any(|(name, _)| tables.contains(name)),
            crate::plan::Step::Segment(seg) => tables.contains(&seg.from),
            crate::plan::Step::Identity(identity) => identity.reads().any(|t| tables.contains(t)),
        };
        if reads_one {
            tables.extend(step.produces().into_iter().map(str::to_string));
        }
    }
    tables
}

/// A source's entries keyed by path below its folder: a state of format 1
/// keyed them by URL.
fn upgraded(
    state: &LoadState,
    source: &str,
    store_url: &datafusion::execution::object_store::ObjectStoreUrl,
    prefix: &ObjectPath,
) -> BTreeMap<String, Seen> {
    let Some(objects) = state.sources.get(source) else {
        return BTreeMap::new();
    };
    if state.format >= 2 {
        return objects.clone();
    }
    objects
        .iter()
        .map(|(url, seen)| {
            let key = url
                .strip_prefix(store_url.as_str())
                .map(|path| object_key(prefix, &crate::storage::store_path(path)))
                .unwrap_or_else(|| url.clone());
            (key, seen.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_known_by_their_path_below_the_source() {
        let folder = ObjectPath::from("data/lake/raw/calls");
        let key = |p: &str| object_key(&folder, &ObjectPath::from(p));
        assert_eq!(key("data/lake/raw/calls/day=1/a.csv"), "day=1/a.csv");
        assert_eq!(key("data/lake/raw/calls/a.csv"), "a.csv");
        let file = ObjectPath::from("data/lake/raw/calls/a.csv");
        assert_eq!(object_key(&file, &file), "a.csv");
        assert_eq!(object_key(&ObjectPath::from(""), &file), file.as_ref());
    }

    #[test]
    fn a_state_that_cannot_be_right_is_refused() {
        let state = |json: &str| serde_json::from_str::<LoadState>(json);
        let bad_hash = state(
            r#"{"format":2,"sources":{"calls":{"a.csv":{"bytes":3,"etag":null,"sha256":"zz","run_id":"r"}}}}"#,
        )
        .expect("parses");
        assert!(
            bad_hash
                .validate()
                .unwrap_err()
                .to_string()
                .contains("not a SHA-256")
        );
        let newer = state(r#"{"format":9,"sources":{}}"#).expect("parses");
        assert!(
            newer
                .validate()
                .unwrap_err()
                .to_string()
                .contains("newer civica")
        );
        assert!(state(r#"{"sources":{"calls":{"a.csv":{"bytes":-1}}}}"#).is_err());
        assert!(state(r#"{"sources":{},"extra":1}"#).is_err());
        let old = state(r#"{"sources":{"calls":{"file:///x/a.csv":{"bytes":3,"etag":"t"}}}}"#)
            .expect("format 1 reads");
        assert!(old.validate().is_ok());
    }
}
