//! The state of incremental sources: which input objects successful runs
//! have read, kept as `<runs>/state/<pipeline>.json`. It is staged and
//! published with the outputs, so it only moves on when they do.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::source::InputObject;
use crate::storage::object_at;

/// What an object looked like when it was read: a rewritten object (other
/// size or entity tag) is read again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Size in bytes.
    pub bytes: u64,
    /// The store's entity tag, where it gives one.
    pub etag: Option<String>,
}

/// The objects each incremental source has read, by URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadState {
    /// By source name, then object URL.
    pub sources: BTreeMap<String, BTreeMap<String, Seen>>,
}

impl LoadState {
    /// Adds the objects a source read.
    pub fn record(&mut self, source: &str, inputs: &[InputObject]) {
        let seen = self.sources.entry(source.to_string()).or_default();
        for input in inputs {
            seen.insert(
                input.path.clone(),
                Seen {
                    bytes: input.bytes,
                    etag: input.etag.clone(),
                },
            );
        }
    }
}

/// Where a pipeline's state lives.
pub fn state_location(runs: &str, pipeline: &str) -> String {
    format!("{runs}state/{pipeline}.json")
}

/// Reads a pipeline's state; none yet is an empty state.
pub async fn load_state(ctx: &SessionContext, location: &str) -> Result<LoadState, String> {
    let (store, path) = object_at(ctx, location).map_err(|e| e.to_string())?;
    match store.get(&path).await {
        Ok(found) => {
            let bytes = found
                .bytes()
                .await
                .map_err(|e| format!("cannot read the incremental state `{location}`: {e}"))?;
            serde_json::from_slice(&bytes).map_err(|e| {
                format!("the incremental state `{location}` is damaged ({e}); run with `--full-refresh` to rebuild it")
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(LoadState::default()),
        Err(e) => Err(format!(
            "cannot read the incremental state `{location}`: {e}"
        )),
    }
}
