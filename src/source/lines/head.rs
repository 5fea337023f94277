//! The first lines of a file, for type inference and the sample test of a line source's format.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::error::DataFusionError;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::scan::read_failure;
use super::{TextEncoding, compression_of};
use crate::source::SourceError;

/// The first lines of a file, decoded, and what its bytes say of the
/// encoding declared.
#[derive(Debug)]
pub struct Head {
    /// The lines.
    pub lines: Vec<String>,
    /// Declared `windows-1252`, the bytes are UTF-8 with letters beyond
    /// ASCII: they would load as `Ã¨` for `è`.
    pub utf8_declared_latin: bool,
    /// Declared UTF-8, the bytes are not: the first bad byte's offset.
    pub not_utf8_at: Option<usize>,
}

/// The first `max_lines` lines of a file, decompressed and decoded (a
/// UTF-8 byte-order mark is dropped), for headers and type inference.
/// `file` is the file as messages name it.
pub async fn read_head(
    store: &Arc<dyn ObjectStore>,
    object: &ObjectMeta,
    file: &str,
    encoding: TextEncoding,
    max_lines: usize,
) -> Result<Head, SourceError> {
    const MAX_BYTES: usize = 16 << 20;
    let path = object.location.as_ref();
    let failed = |reason: String| SourceError::File {
        file: file.to_string(),
        reason,
    };
    let raw = store
        .get(&object.location)
        .await
        .map_err(|e| failed(format!("cannot be read: {e}")))?
        .into_stream()
        .map_err(DataFusionError::from)
        .boxed();
    let mut input = compression_of(path)
        .convert_stream(raw)
        .map_err(|e| failed(e.to_string()))?;
    let mut bytes = Vec::new();
    let mut newlines = 0;
    while newlines <= max_lines && bytes.len() < MAX_BYTES {
        match input.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(|e| failed(read_failure(&e, path)))?;
                newlines += memchr::memchr_iter(b'\n', &chunk).count();
                bytes.extend_from_slice(&chunk);
            }
            None => break,
        }
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    // A sample cut in the middle of a character at its end is UTF-8 too.
    let utf8_error = std::str::from_utf8(bytes)
        .err()
        .filter(|e| e.error_len().is_some());
    let utf8_declared_latin =
        encoding == TextEncoding::Windows1252 && !bytes.is_ascii() && utf8_error.is_none();
    let not_utf8_at = utf8_error
        .filter(|_| encoding == TextEncoding::Utf8)
        .map(|e| e.valid_up_to() + 1);
    let lines = bytes
        .split(|b| *b == b'\n')
        .take(max_lines)
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match encoding {
                TextEncoding::Utf8 => String::from_utf8_lossy(line).into_owned(),
                TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(line)
                    .0
                    .into_owned(),
            }
        })
        .collect();
    Ok(Head {
        lines,
        utf8_declared_latin,
        not_utf8_at,
    })
}
