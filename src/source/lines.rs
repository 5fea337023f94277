//! Line-oriented text files (access logs, CSV exports) as a DataFusion file
//! format: files stream from object storage, `.gz` / `.zst` / `.bz2` / `.xz`
//! are decompressed by their name, large uncompressed files are split into
//! byte ranges across partitions, and every line that cannot be read is
//! either counted (the table of rows) or returned (the `__rejected` table).
//!
//! A [`LineLayout`] says what a line means; this module does the rest.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileGroupPartitioner, FileOpenFuture, FileOpener, FileScanConfig, FileSource,
};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::DataFusionError;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_datasource::boundary_stream::AlignedBoundaryStream;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

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

/// Turns lines into rows, a batch at a time.
pub trait LineDecoder: Send {
    /// Adds the line as a row, or says why it cannot be one. A rejected line
    /// adds nothing.
    fn push_line(&mut self, line: &str) -> Result<(), String>;
    /// Rows added since the last [`LineDecoder::finish`].
    fn rows(&self) -> usize;
    /// The rows added so far as a batch of the projected columns.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError>;
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
    /// The session's count of bytes scanned, for progress; set when the
    /// source is registered.
    pub scanned: Option<Arc<BytesScanned>>,
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

/// What complete scans of a source's files counted, file by file and byte
/// range by byte range. Scans of the same range count the same lines, so a
/// table read twice is not counted twice.
#[derive(Debug, Default)]
pub struct ScanTally {
    files: Mutex<HashMap<String, BTreeMap<(u64, u64), LineCounts>>>,
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

/// A line-oriented format: one per source and [`ScanMode`].
#[derive(Debug)]
pub struct LineFormat {
    layout: Arc<dyn LineLayout>,
    options: Arc<LineOptions>,
    mode: ScanMode,
    tally: Arc<ScanTally>,
}

impl LineFormat {
    /// The format of one source's table of rows or of rejected lines.
    pub fn new(
        layout: Arc<dyn LineLayout>,
        options: Arc<LineOptions>,
        mode: ScanMode,
        tally: Arc<ScanTally>,
    ) -> Self {
        LineFormat {
            layout,
            options,
            mode,
            tally,
        }
    }

    fn table_schema(&self) -> SchemaRef {
        match self.mode {
            ScanMode::Rows => self.layout.schema(),
            ScanMode::Rejected => rejected_schema(),
        }
    }
}

#[async_trait]
impl FileFormat for LineFormat {
    fn get_ext(&self) -> String {
        String::new()
    }

    fn get_ext_with_compression(&self, _: &FileCompressionType) -> Result<String> {
        Ok(String::new())
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        None
    }

    async fn infer_schema(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        _objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        Ok(self.table_schema())
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        _object: &ObjectMeta,
    ) -> Result<Statistics> {
        Ok(Statistics::new_unknown(&table_schema))
    }

    async fn create_physical_plan(
        &self,
        _state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(DataSourceExec::from_data_source(conf))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(LineSource {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            layout: Arc::clone(&self.layout),
            options: Arc::clone(&self.options),
            mode: self.mode,
            tally: Arc::clone(&self.tally),
            batch_size: 8192,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

/// The [`FileSource`] of a [`LineFormat`].
#[derive(Debug, Clone)]
struct LineSource {
    table_schema: TableSchema,
    projection: SplitProjection,
    layout: Arc<dyn LineLayout>,
    options: Arc<LineOptions>,
    mode: ScanMode,
    tally: Arc<ScanTally>,
    batch_size: usize,
    metrics: ExecutionPlanMetricsSet,
}

impl FileSource for LineSource {
    fn create_file_opener(
        &self,
        store: Arc<dyn ObjectStore>,
        _base_config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let opener = Arc::new(LineOpener {
            store,
            layout: Arc::clone(&self.layout),
            options: Arc::clone(&self.options),
            mode: self.mode,
            tally: Arc::clone(&self.tally),
            batch_size: self.batch_size,
            file_indices: self.projection.file_indices.clone(),
        });
        ProjectionOpener::try_new(
            self.projection.clone(),
            opener,
            self.table_schema.file_schema(),
        )
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let mut source = self.clone();
        source.batch_size = batch_size;
        Arc::new(source)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        let mut source = self.clone();
        let merged = self.projection.source.try_merge(projection)?;
        source.projection = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(source)))
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        self.layout.file_type()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }

    /// Only the table of rows is split: rejected lines are numbered from the
    /// start of their file.
    fn supports_repartitioning(&self) -> bool {
        self.mode == ScanMode::Rows
    }

    /// Uncompressed files are split into byte ranges; when any file is
    /// compressed, files are spread whole across partitions instead.
    fn repartitioned(
        &self,
        target_partitions: usize,
        repartition_file_min_size: usize,
        output_ordering: Option<LexOrdering>,
        config: &FileScanConfig,
    ) -> Result<Option<FileScanConfig>> {
        let any_compressed = config
            .file_groups
            .iter()
            .flat_map(|group| group.iter())
            .any(|file| compression_of(file.object_meta.location.as_ref()).is_compressed());
        if any_compressed || !self.supports_repartitioning() {
            return Ok(None);
        }
        let groups = FileGroupPartitioner::new()
            .with_target_partitions(target_partitions)
            .with_repartition_file_min_size(repartition_file_min_size)
            .with_preserve_order_within_groups(output_ordering.is_some())
            .repartition_file_groups(&config.file_groups);
        Ok(groups.map(|file_groups| {
            let mut config = config.clone();
            config.file_groups = file_groups;
            config
        }))
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

struct LineOpener {
    store: Arc<dyn ObjectStore>,
    layout: Arc<dyn LineLayout>,
    options: Arc<LineOptions>,
    mode: ScanMode,
    tally: Arc<ScanTally>,
    batch_size: usize,
    file_indices: Vec<usize>,
}

impl FileOpener for LineOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.store);
        let meta = file.object_meta.clone();
        let range = file
            .range
            .as_ref()
            .map(|r| (r.start.max(0) as u64, r.end.max(0) as u64));
        let decoder_projection = match self.mode {
            ScanMode::Rows => self.file_indices.clone(),
            ScanMode::Rejected => Vec::new(),
        };
        let scan = LineScan {
            display: crate::storage::display_object(&self.options.location, &meta.location),
            path: meta.location.to_string(),
            range,
            decoder: self
                .layout
                .decoder(&decoder_projection, meta.location.as_ref()),
            rejected: (self.mode == ScanMode::Rejected)
                .then(|| RejectedBuilder::new(self.file_indices.clone())),
            options: Arc::clone(&self.options),
            tally: Arc::clone(&self.tally),
            batch_size: self.batch_size.max(1),
            carry: Vec::new(),
            ready: VecDeque::new(),
            line_no: 0,
            skip_header: self.options.header && range.is_none_or(|(start, _)| start == 0),
            counts: LineCounts::default(),
            done: false,
        };
        Ok(Box::pin(async move {
            let compression = compression_of(meta.location.as_ref());
            let raw: BoxStream<'static, Result<Bytes>> = match range {
                Some((start, end)) => AlignedBoundaryStream::new(
                    Arc::clone(&store),
                    meta.location.clone(),
                    start,
                    end,
                    meta.size,
                    b'\n',
                )
                .await
                .map_err(|e| scan.error(format!("cannot be read: {e}")))?
                .map_err(DataFusionError::from)
                .boxed(),
                None => store
                    .get(&meta.location)
                    .await
                    .map_err(|e| scan.error(format!("cannot be read: {e}")))?
                    .into_stream()
                    .map_err(DataFusionError::from)
                    .boxed(),
            };
            // Counted as stored (before decompression), as listed sizes are.
            let scanned = scan.options.scanned.clone();
            let raw = raw
                .inspect_ok(move |chunk| {
                    if let Some(scanned) = &scanned {
                        scanned.add(chunk.len() as u64);
                    }
                })
                .boxed();
            let input = compression.convert_stream(raw)?;
            Ok(scan.into_stream(input, store))
        }))
    }
}

/// Bytes of CSV and log files a session's scans have read so far, as
/// stored (compressed files before decompression): what the live progress
/// bar of a step that scans them counts. Each session has one, kept in its
/// configuration ([`BytesScanned::of`]), and the run's events carry it.
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
    pub fn of(ctx: &datafusion::prelude::SessionContext) -> Option<Arc<BytesScanned>> {
        ctx.state().config().get_extension::<BytesScanned>()
    }
}

/// The state of one scan of one file (or byte range of a file).
struct LineScan {
    display: String,
    path: String,
    range: Option<(u64, u64)>,
    decoder: Box<dyn LineDecoder>,
    rejected: Option<RejectedBuilder>,
    options: Arc<LineOptions>,
    tally: Arc<ScanTally>,
    batch_size: usize,
    carry: Vec<u8>,
    ready: VecDeque<RecordBatch>,
    line_no: u64,
    skip_header: bool,
    counts: LineCounts,
    done: bool,
}

/// The first rejected line of a scan with `on_error: fail`: its number
/// within the scan, and why.
struct Failure {
    line: u64,
    reason: String,
}

impl LineScan {
    fn error(&self, message: String) -> DataFusionError {
        DataFusionError::External(Box::new(LineScanError {
            source_name: self.options.source.clone(),
            message: format!("`{}` {message}", self.display),
        }))
    }

    fn into_stream(
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
    fn feed(&mut self, chunk: &[u8]) -> Result<(), Failure> {
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
    fn end(&mut self) -> Result<(), Failure> {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line)?;
        }
        self.done = true;
        self.tally.record(&self.path, self.range, self.counts);
        Ok(())
    }

    fn line(&mut self, raw: &[u8]) -> Result<(), Failure> {
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
        let text: Result<Cow<'_, str>, String> = match self.options.encoding {
            TextEncoding::Utf8 => std::str::from_utf8(raw).map(Cow::Borrowed).map_err(|e| {
                format!(
                    "not valid UTF-8 at byte {} (set `encoding: windows-1252` for Latin-1 files)",
                    e.valid_up_to() + 1
                )
            }),
            TextEncoding::Windows1252 => {
                Ok(encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw).0)
            }
        };
        let result = match &text {
            Ok(text) => self.decoder.push_line(text),
            Err(reason) => Err(reason.clone()),
        };
        if let Err(reason) = result {
            self.counts.rejected += 1;
            match &mut self.rejected {
                Some(rejected) => {
                    let shown = match &text {
                        Ok(text) => Cow::Borrowed(text.as_ref()),
                        Err(_) => String::from_utf8_lossy(raw),
                    };
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
    fn flush(&mut self, force: bool) -> Result<(), ArrowError> {
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
fn read_failure(error: &DataFusionError, path: &str) -> String {
    match compressed_ending(path) {
        Some((_, kind)) => {
            format!("is not readable {kind} data: the file is truncated or damaged ({error})")
        }
        None => format!("cannot be read: {error}"),
    }
}

/// Rejected lines, kept whole with where they were and why.
struct RejectedBuilder {
    projection: Vec<usize>,
    file: StringBuilder,
    line: Int64Builder,
    raw: StringBuilder,
    reason: StringBuilder,
    rows: usize,
}

impl RejectedBuilder {
    fn new(projection: Vec<usize>) -> Self {
        RejectedBuilder {
            projection,
            file: StringBuilder::new(),
            line: Int64Builder::new(),
            raw: StringBuilder::new(),
            reason: StringBuilder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, file: &str, line: u64, raw: &str, reason: &str) {
        self.file.append_value(file);
        self.line
            .append_value(i64::try_from(line).unwrap_or(i64::MAX));
        self.raw.append_value(raw);
        self.reason.append_value(reason);
        self.rows += 1;
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
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
pub async fn read_head(
    store: &Arc<dyn ObjectStore>,
    object: &ObjectMeta,
    encoding: TextEncoding,
    max_lines: usize,
) -> Result<Head, String> {
    const MAX_BYTES: usize = 16 << 20;
    let path = object.location.as_ref();
    let raw = store
        .get(&object.location)
        .await
        .map_err(|e| format!("cannot be read: {e}"))?
        .into_stream()
        .map_err(DataFusionError::from)
        .boxed();
    let mut input = compression_of(path)
        .convert_stream(raw)
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    let mut newlines = 0;
    while newlines <= max_lines && bytes.len() < MAX_BYTES {
        match input.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(|e| read_failure(&e, path))?;
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
