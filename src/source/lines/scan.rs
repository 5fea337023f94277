//! One scan of one file (or byte range): bytes into lines, lines into the
//! layout's decoder or the `__rejected` table, each line counted.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::error::ArrowError;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{
    LineCounts, LineDecoder, LineError, LineOptions, LineScanError, ScanTally, TextEncoding,
    compressed_ending, rejected_schema,
};

/// The state of one scan of one file (or byte range of a file).
pub(super) struct LineScan {
    pub(super) display: String,
    pub(super) path: String,
    pub(super) range: Option<(u64, u64)>,
    pub(super) decoder: Box<dyn LineDecoder>,
    pub(super) rejected: Option<RejectedBuilder>,
    pub(super) options: Arc<LineOptions>,
    pub(super) tally: Arc<ScanTally>,
    pub(super) batch_size: usize,
    pub(super) carry: Vec<u8>,
    pub(super) ready: VecDeque<RecordBatch>,
    pub(super) line_no: u64,
    pub(super) skip_header: bool,
    pub(super) counts: LineCounts,
    pub(super) done: bool,
}

/// The first rejected line of a scan with `on_error: fail`: its number
/// within the scan, and why.
pub(super) struct Failure {
    pub(super) line: u64,
    pub(super) reason: String,
}

impl LineScan {
    pub(super) fn error(&self, message: String) -> DataFusionError {
        DataFusionError::External(Box::new(LineScanError {
            source_name: self.options.source.clone(),
            message: format!("`{}` {message}", self.display),
        }))
    }

    pub(super) fn into_stream(
        self,
        input: BoxStream<'static, Result<Bytes>>,
        store: Arc<dyn ObjectStore>,
    ) -> BoxStream<'static, Result<RecordBatch>> {
        futures::stream::try_unfold((self, input), move |(mut scan, mut input)| {
            let store = Arc::clone(&store);
            async move {
                loop {
                    if let Some(batch) = scan.ready.pop_front() {
                        return Ok(Some((batch, (scan, input))));
                    }
                    if scan.done {
                        return Ok(None);
                    }
                    let step = match input.next().await {
                        Some(Ok(chunk)) => scan.feed(&chunk),
                        Some(Err(e)) => {
                            return Err(scan.error(read_failure(&e, &scan.path)));
                        }
                        None => scan.end(),
                    };
                    if let Err(failure) = step {
                        let path = object_store::path::Path::from(scan.path.as_str());
                        let line =
                            line_in_file(Arc::clone(&store), path, scan.range, failure.line).await;
                        let at = match line {
                            Some(line) => format!(":{line}"),
                            None => String::new(),
                        };
                        return Err(DataFusionError::External(Box::new(LineScanError {
                            source_name: scan.options.source.clone(),
                            message: format!(
                                "`{}{at}`: {} (`on_error: fail`)",
                                scan.display, failure.reason
                            ),
                        })));
                    }
                    scan.flush(false).map_err(DataFusionError::from)?;
                }
            }
        })
        .boxed()
    }

    /// Splits a chunk into lines; the unfinished last line waits for the next chunk.
    pub(super) fn feed(&mut self, chunk: &[u8]) -> Result<(), Failure> {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(pos) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&rest[..pos]);
                    self.line(&line)?;
                    rest = &rest[pos + 1..];
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    return Ok(());
                }
            }
        }
        let mut start = 0;
        for pos in memchr::memchr_iter(b'\n', rest) {
            self.line(&rest[start..pos])?;
            start = pos + 1;
        }
        self.carry.extend_from_slice(&rest[start..]);
        Ok(())
    }

    /// The input ended: the last line, the last batch, and the tally.
    pub(super) fn end(&mut self) -> Result<(), Failure> {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line)?;
        }
        self.done = true;
        self.tally.record(&self.path, self.range, self.counts);
        Ok(())
    }

    pub(super) fn line(&mut self, raw: &[u8]) -> Result<(), Failure> {
        self.line_no += 1;
        let mut raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if self.line_no == 1 && self.range.is_none_or(|(start, _)| start == 0) {
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        if self.skip_header {
            self.skip_header = false;
            self.counts.skipped += 1;
            return Ok(());
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            self.counts.skipped += 1;
            return Ok(());
        }
        self.counts.lines += 1;
        let text: Result<Cow<'_, str>, LineError> = match self.options.encoding {
            TextEncoding::Utf8 => std::str::from_utf8(raw).map(Cow::Borrowed).map_err(|e| {
                LineError(format!(
                    "not valid UTF-8 at byte {} (set `encoding: windows-1252` for Latin-1 files)",
                    e.valid_up_to() + 1
                ))
            }),
            TextEncoding::Windows1252 => {
                Ok(encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw).0)
            }
        };
        let result = match &text {
            Ok(text) => self.decoder.push_line(text),
            Err(reason) => Err(reason.clone()),
        };
        if let Err(LineError(reason)) = result {
            self.counts.rejected += 1;
            let reason = self.decoder.redact(&reason).into_owned();
            match &mut self.rejected {
                Some(rejected) => {
                    let shown = match &text {
                        Ok(text) => Cow::Borrowed(text.as_ref()),
                        Err(_) => String::from_utf8_lossy(raw),
                    };
                    let shown = self.decoder.redact(&shown);
                    rejected.push(&self.display, self.line_no, &shown, &reason);
                }
                None if self.options.fail_on_error => {
                    return Err(Failure {
                        line: self.line_no,
                        reason,
                    });
                }
                None => {}
            }
        }
        if self.decoder.rows() >= self.batch_size {
            self.flush(true).map_err(|e| Failure {
                line: self.line_no,
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Moves finished rows to the ready batches: full batches only, or
    /// everything once the input has ended (or `force`).
    pub(super) fn flush(&mut self, force: bool) -> Result<(), ArrowError> {
        let last = self.done || force;
        if self.decoder.rows() >= self.batch_size || (last && self.decoder.rows() > 0) {
            let batch = self.decoder.finish()?;
            if self.rejected.is_none() {
                self.ready.push_back(batch);
            }
        }
        if let Some(rejected) = &mut self.rejected
            && (rejected.rows >= self.batch_size || (self.done && rejected.rows > 0))
        {
            self.ready.push_back(rejected.finish()?);
        }
        Ok(())
    }
}

/// The number of a line in its file, given its number within a scan of
/// `range`: a range that starts inside the file counts the lines before it.
async fn line_in_file(
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    range: Option<(u64, u64)>,
    line: u64,
) -> Option<u64> {
    let Some((start, _)) = range.filter(|(start, _)| *start > 1) else {
        return Some(line);
    };
    let before = store.get_range(&path, 0..start - 1).await.ok()?;
    // The scan's first line starts after the first newline at or after
    // byte `start - 1`.
    let newlines = memchr::memchr_iter(b'\n', &before).count() as u64;
    Some(newlines + 1 + line)
}

/// Explains a failure of the decompressed byte stream.
pub(super) fn read_failure(error: &DataFusionError, path: &str) -> String {
    match compressed_ending(path) {
        Some((_, kind)) => {
            format!("is not readable {kind} data: the file is truncated or damaged ({error})")
        }
        None => format!("cannot be read: {error}"),
    }
}

/// Rejected lines, kept whole with where they were and why.
pub(super) struct RejectedBuilder {
    pub(super) projection: Vec<usize>,
    pub(super) file: StringBuilder,
    pub(super) line: Int64Builder,
    pub(super) raw: StringBuilder,
    pub(super) reason: StringBuilder,
    pub(super) rows: usize,
}

impl RejectedBuilder {
    pub(super) fn new(projection: Vec<usize>) -> Self {
        RejectedBuilder {
            projection,
            file: StringBuilder::new(),
            line: Int64Builder::new(),
            raw: StringBuilder::new(),
            reason: StringBuilder::new(),
            rows: 0,
        }
    }

    pub(super) fn push(&mut self, file: &str, line: u64, raw: &str, reason: &str) {
        self.file.append_value(file);
        self.line
            .append_value(i64::try_from(line).unwrap_or(i64::MAX));
        self.raw.append_value(raw);
        self.reason.append_value(reason);
        self.rows += 1;
    }

    pub(super) fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rows = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.file.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.reason.finish()),
        ];
        RecordBatch::try_new(rejected_schema(), columns)?.project(&self.projection)
    }
}
