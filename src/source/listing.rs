//! Listing a source's objects: its folder, glob or file, following a
//! civica output's `_CURRENT` pointer, and refusing what is not a regular
//! file on local disk (a FIFO would block the run for good).

use datafusion::prelude::SessionContext;
use object_store::ObjectMeta;

use super::SourceError;
use crate::plan::SourcePlan;
use crate::storage::{display_object, list_objects, local_path_of};

/// A source's objects as listed: for an output civica published to an
/// object store, those of the version its `_CURRENT` pointer names.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The source, at the folder that was listed.
    pub source: SourcePlan,
    /// Every object, sorted by path.
    pub objects: Vec<ObjectMeta>,
    /// The file ending listed.
    pub(super) extension: String,
}

/// Lists a source's objects; none is an error naming the location.
pub async fn list_source(
    ctx: &SessionContext,
    source: &SourcePlan,
) -> Result<Listing, SourceError> {
    let extension = source.format.extension().to_string();
    // Before listing: opening a FIFO would block the run for good.
    // Walking the local folder is blocking I/O: on a blocking thread.
    if let Some(root) = local_path_of(&source.location) {
        let ending = extension.clone();
        blocking(move || refuse_special_files(root, &ending)).await?;
    }
    let mut listed = list_objects(ctx, &source.location, &extension).await?;
    // An output civica published to an object store is read at the version
    // its `_CURRENT` pointer names, not every version it keeps (asked after
    // the listing, whose errors explain a store's problems best).
    let current = crate::storage::layout::current_folder(ctx, &source.location).await?;
    let mut source = source.clone();
    if current != source.location {
        tracing::debug!(target: "civica::source", source = %source.name, version = %current, "following the folder's pointer");
        listed = list_objects(ctx, &current, &extension).await?;
        source.location = current;
    }
    if listed.is_empty() {
        return Err(SourceError::NoFiles {
            location: source.location.clone(),
            extension,
        });
    }
    if local_path_of(&source.location).is_some() {
        let (location, objects) = (source.location.clone(), listed.clone());
        blocking(move || refuse_unreadable_files(&location, &objects)).await?;
    }
    Ok(Listing {
        source,
        objects: listed,
        extension,
    })
}

/// Runs a walk over local files on a blocking thread.
async fn blocking(
    check: impl FnOnce() -> Result<(), SourceError> + Send + 'static,
) -> Result<(), SourceError> {
    tokio::task::spawn_blocking(check)
        .await
        .unwrap_or_else(|err| {
            Err(SourceError::File {
                file: String::new(),
                reason: format!("the check of local files stopped: {err}"),
            })
        })
}

/// Fails, naming it, when the local path of a source, or an entry below its
/// folder with the source's file ending, is a FIFO, socket or device:
/// listing would skip it silently, and reading a FIFO blocks for good.
fn refuse_special_files(root: std::path::PathBuf, extension: &str) -> Result<(), SourceError> {
    use std::os::unix::fs::FileTypeExt;
    let special = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|meta| {
            let kind = meta.file_type();
            kind.is_fifo() || kind.is_socket() || kind.is_block_device() || kind.is_char_device()
        })
    };
    let refuse = |path: &std::path::Path| SourceError::File {
        file: path.display().to_string(),
        reason: "is not a regular file (a FIFO, socket or device): sources read files only"
            .to_string(),
    };
    let mut folders = vec![root];
    while let Some(path) = folders.pop() {
        if special(&path) {
            return Err(refuse(&path));
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Symbolic links to folders are not followed: a link to a
            // parent would loop for good.
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                folders.push(path);
            } else if path.to_string_lossy().ends_with(extension) && special(&path) {
                return Err(refuse(&path));
            }
        }
    }
    Ok(())
}

/// Fails, naming the file, when a listed local file is not a regular file
/// (a FIFO would block the run, a device never end) or cannot be opened.
fn refuse_unreadable_files(location: &str, objects: &[ObjectMeta]) -> Result<(), SourceError> {
    let local = object_store::local::LocalFileSystem::new();
    for object in objects {
        let Ok(path) = local.path_to_filesystem(&object.location) else {
            continue;
        };
        let problem = match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => Some(
                "is not a regular file (a FIFO, socket or device): sources read files only"
                    .to_string(),
            ),
            Ok(_) => std::fs::File::open(&path)
                .err()
                .map(|err| format!("cannot be opened: {err}")),
            Err(err) => Some(format!("cannot be read: {err}")),
        };
        if let Some(reason) = problem {
            return Err(SourceError::File {
                file: display_object(location, &object.location),
                reason,
            });
        }
    }
    Ok(())
}
