//! Line-oriented text files (access logs, CSV exports) as a DataFusion file
//! format: files stream from object storage, `.gz` / `.zst` / `.bz2` / `.xz`
//! are decompressed by their name, large uncompressed files are split into
//! byte ranges across partitions, and every line that cannot be read is
//! either counted (the table of rows) or returned (the `__rejected` table).
//!
//! A [`LineLayout`] says what a line means; this module does the rest.

mod format;
mod head;
mod scan;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::Result;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use object_store::ObjectMeta;

pub use format::LineFormat;
pub use head::{Head, read_head};

/// What a line of a text file means: the table's columns, and a decoder
/// that turns lines into rows of them.
pub trait LineLayout: Send + Sync + fmt::Debug {
    /// The columns of the table of rows.
    fn schema(&self) -> SchemaRef;
    /// A decoder for the file at `path` (an object-store path) that fills
    /// the columns at `projection` (indices into [`LineLayout::schema`]); an
    /// empty projection only counts rows.
    fn decoder(&self, projection: &[usize], path: &str) -> Box<dyn LineDecoder>;
    /// `access_log`, `csv`: how plans and messages name the format.
    fn file_type(&self) -> &'static str;
}

/// Why a line cannot be a row: the reason its quarantine row and the
/// `on_error: fail` message give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError(pub String);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LineError {}

/// Turns lines into rows, a batch at a time.
pub trait LineDecoder: Send {
    /// Adds the line as a row, or says why it cannot be one. A rejected line
    /// adds nothing.
    fn push_line(&mut self, line: &str) -> Result<(), LineError>;
    /// Rows added since the last [`LineDecoder::finish`].
    fn rows(&self) -> usize;
    /// The rows added so far as a batch of the projected columns.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError>;
    /// A rejected line, or a reason, as it may be kept or shown: what the
    /// format masks in its rows (an access log's client addresses) is
    /// masked here too. Default: as it is.
    fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Which table a scan produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// The rows that could be read; rejected lines are counted.
    Rows,
    /// The lines that could not be read, with where they were and why.
    Rejected,
}

/// How the bytes of a file are turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextEncoding {
    /// UTF-8; a line that is not valid UTF-8 is rejected.
    #[default]
    Utf8,
    /// Windows-1252 (a superset of Latin-1 / ISO-8859-1 for text), as
    /// Italian desktop software exports it.
    Windows1252,
}

/// Per-source settings of a line scan.
#[derive(Debug, Clone)]
pub struct LineOptions {
    /// The source's name, for messages.
    pub source: String,
    /// The source's location as written, to display files relative to it.
    pub location: String,
    /// `on_error: fail`: the first rejected line fails the scan.
    pub fail_on_error: bool,
    /// How bytes become text.
    pub encoding: TextEncoding,
    /// Whether the first line of each file is a header to skip.
    pub header: bool,
    /// The session's count of bytes scanned, for progress: `None` where
    /// the options are written; `register_lines` sets the session's.
    pub(crate) scanned: Option<Arc<BytesScanned>>,
}

/// The columns of a `<source>__rejected` table.
pub fn rejected_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source_file", DataType::Utf8, false),
        Field::new("line_number", DataType::Int64, false),
        Field::new("raw_line", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

/// Every line of a file, accounted for: each is a row, rejected, or
/// skipped on purpose, so that lines read = rows + rejected + skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Non-empty lines, header excluded.
    pub lines: u64,
    /// Of those, the ones that were not rows.
    pub rejected: u64,
    /// Lines skipped on purpose: blank (or only whitespace) and headers.
    pub skipped: u64,
}

impl LineCounts {
    /// Every line read, skipped ones included.
    pub fn read(&self) -> u64 {
        self.lines + self.skipped
    }

    /// The lines that became rows.
    pub fn loaded(&self) -> u64 {
        self.lines - self.rejected
    }
}

impl std::ops::AddAssign for LineCounts {
    fn add_assign(&mut self, other: Self) {
        self.lines += other.lines;
        self.rejected += other.rejected;
        self.skipped += other.skipped;
    }
}

/// A file's counts by the byte range each scan read.
type RangeCounts = BTreeMap<(u64, u64), LineCounts>;

/// What complete scans of a source's files counted, file by file and byte
/// range by byte range. Scans of the same range count the same lines, so a
/// table read twice is not counted twice.
#[derive(Debug, Default)]
pub struct ScanTally {
    files: Mutex<HashMap<String, RangeCounts>>,
}

impl ScanTally {
    /// Records a complete scan of `range` (the whole file when `None`).
    pub fn record(&self, path: &str, range: Option<(u64, u64)>, counts: LineCounts) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let ranges = files.entry(path.to_string()).or_default();
        match range {
            None => {
                ranges.clear();
                ranges.insert((0, u64::MAX), counts);
            }
            Some(range) => {
                if !ranges.contains_key(&(0, u64::MAX)) {
                    ranges.insert(range, counts);
                }
            }
        }
    }

    /// The counts of each object, in order, or `None` when some object was
    /// not read completely by any scan.
    pub fn totals(&self, objects: &[ObjectMeta]) -> Option<Vec<LineCounts>> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        objects
            .iter()
            .map(|object| {
                let path = object.location.as_ref();
                // An empty file has no line, whether a scan opened it or not.
                if object.size == 0 {
                    return Some(LineCounts::default());
                }
                let ranges = files.get(path)?;
                let mut covered = 0u64;
                let mut counts = LineCounts::default();
                for ((start, end), c) in ranges {
                    if *start > covered {
                        return None;
                    }
                    if *end > covered {
                        covered = *end;
                        counts += *c;
                    }
                }
                (covered >= object.size).then_some(counts)
            })
            .collect()
    }
}

/// File endings of compressed files: the compression, and its name in messages.
const COMPRESSED_ENDINGS: [(&str, FileCompressionType, &str); 6] = [
    (".gz", FileCompressionType::GZIP, "gzip"),
    (".gzip", FileCompressionType::GZIP, "gzip"),
    (".zst", FileCompressionType::ZSTD, "zstd"),
    (".zstd", FileCompressionType::ZSTD, "zstd"),
    (".bz2", FileCompressionType::BZIP2, "bzip2"),
    (".xz", FileCompressionType::XZ, "xz"),
];

/// The compression of a file and its name, from the file's ending.
fn compressed_ending(name: &str) -> Option<(FileCompressionType, &'static str)> {
    let name = name.to_ascii_lowercase();
    COMPRESSED_ENDINGS
        .iter()
        .find(|(ending, _, _)| name.ends_with(ending))
        .map(|(_, compression, kind)| (*compression, *kind))
}

/// The compression of a file, from its name.
pub fn compression_of(name: &str) -> FileCompressionType {
    compressed_ending(name).map_or(FileCompressionType::UNCOMPRESSED, |(compression, _)| {
        compression
    })
}

/// A problem reading a file, with the file named.
#[derive(Debug, thiserror::Error)]
#[error("source `{source_name}`: {message}")]
pub struct LineScanError {
    /// The source.
    pub source_name: String,
    /// What went wrong, starting with the file (and line).
    pub message: String,
}

/// Bytes of CSV and log files a session's scans have read so far, as
/// stored (compressed files before decompression): what the live progress
/// bar of a step that scans them counts. Each session has one, kept in its
/// configuration (`BytesScanned::of`), and the run's events carry it.
#[derive(Debug, Default)]
pub struct BytesScanned(std::sync::atomic::AtomicU64);

impl BytesScanned {
    /// The bytes scanned so far.
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn add(&self, bytes: u64) {
        self.0
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The counter of a session, when it was made with one.
    pub(crate) fn of(ctx: &datafusion::prelude::SessionContext) -> Option<Arc<BytesScanned>> {
        ctx.state().config().get_extension::<BytesScanned>()
    }
}
