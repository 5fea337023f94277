//! Web-server access logs (Apache / Nginx Common and Combined Log Format): parsing lines into typed Arrow columns, and loading files from object storage.

use std::io::Read;
use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::SourceError;
use crate::spec::LogFlavor;
use crate::storage::{display_object, ensure_store};

/// Rows per record batch.
const BATCH_ROWS: usize = 8192;
/// How many rejected lines are kept as examples.
const REJECTED_SAMPLES: usize = 5;

/// The columns of an access-log table. `timestamp` is the UTC instant;
/// `utc_offset_minutes` keeps the offset the server wrote, so local time is
/// `timestamp + utc_offset_minutes`.
pub fn access_log_schema(flavor: LogFlavor) -> SchemaRef {
    let mut fields = vec![
        Field::new("client_ip", DataType::Utf8, false),
        Field::new("ident", DataType::Utf8, true),
        Field::new("user", DataType::Utf8, true),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("utc_offset_minutes", DataType::Int32, false),
        Field::new("method", DataType::Utf8, true),
        Field::new("path", DataType::Utf8, true),
        Field::new("query", DataType::Utf8, true),
        Field::new("protocol", DataType::Utf8, true),
        Field::new("status", DataType::Int32, false),
        Field::new("bytes", DataType::Int64, true),
    ];
    if flavor == LogFlavor::Combined {
        fields.push(Field::new("referer", DataType::Utf8, true));
        fields.push(Field::new("user_agent", DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// One parsed line, borrowing from the text.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord<'a> {
    /// Client address.
    pub client_ip: &'a str,
    /// RFC 1413 identity, `None` for `-`.
    pub ident: Option<&'a str>,
    /// Authenticated user, `None` for `-`.
    pub user: Option<&'a str>,
    /// Microseconds since the Unix epoch, UTC.
    pub timestamp_us: i64,
    /// The offset written in the line, in minutes east of UTC.
    pub utc_offset_minutes: i32,
    /// Request method, `None` when the request line is not `METHOD TARGET PROTOCOL`.
    pub method: Option<&'a str>,
    /// Request path without the query; the whole request line when it is malformed.
    pub path: Option<&'a str>,
    /// The query string after `?`, without it.
    pub query: Option<&'a str>,
    /// `HTTP/1.1` and the like.
    pub protocol: Option<&'a str>,
    /// HTTP status.
    pub status: i32,
    /// Response size, `None` for `-`.
    pub bytes: Option<i64>,
    /// Referer, `None` for `-` (combined only).
    pub referer: Option<&'a str>,
    /// User agent, `None` for `-` (combined only).
    pub user_agent: Option<&'a str>,
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError(pub String);

/// Parses one access-log line.
pub fn parse_line(line: &str, flavor: LogFlavor) -> Result<LogRecord<'_>, LineError> {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    let client_ip = take_token(&mut rest).ok_or_else(|| err("empty line"))?;
    let ident = dash_to_none(take_token(&mut rest).ok_or_else(|| err("missing ident field"))?);
    let user = dash_to_none(take_token(&mut rest).ok_or_else(|| err("missing user field"))?);
    rest = rest.trim_start();
    let inner = rest
        .strip_prefix('[')
        .ok_or_else(|| err("missing `[` before the timestamp"))?;
    let close = inner
        .find(']')
        .ok_or_else(|| err("missing `]` after the timestamp"))?;
    let (timestamp_us, utc_offset_minutes) = parse_clf_time(&inner[..close])?;
    rest = &inner[close + 1..];
    let request = take_quoted(&mut rest).ok_or_else(|| err("request is not a quoted string"))?;
    let status_text = take_token(&mut rest).ok_or_else(|| err("missing status"))?;
    let status: i32 = status_text
        .parse()
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| err(&format!("status `{status_text}` is not an HTTP status")))?;
    let bytes_text = take_token(&mut rest).ok_or_else(|| err("missing bytes"))?;
    let bytes = match bytes_text {
        "-" => None,
        text => Some(
            text.parse::<i64>()
                .ok()
                .filter(|b| *b >= 0)
                .ok_or_else(|| err(&format!("bytes `{text}` is not a number")))?,
        ),
    };
    let (referer, user_agent) = match flavor {
        LogFlavor::Common => (None, None),
        LogFlavor::Combined => {
            let referer =
                take_quoted(&mut rest).ok_or_else(|| err("referer is not a quoted string"))?;
            let agent =
                take_quoted(&mut rest).ok_or_else(|| err("user agent is not a quoted string"))?;
            (dash_to_none(referer), dash_to_none(agent))
        }
    };
    let (method, path, query, protocol) = split_request(request);
    Ok(LogRecord {
        client_ip,
        ident,
        user,
        timestamp_us,
        utc_offset_minutes,
        method,
        path,
        query,
        protocol,
        status,
        bytes,
        referer,
        user_agent,
    })
}

fn err(message: &str) -> LineError {
    LineError(message.to_string())
}

fn dash_to_none(text: &str) -> Option<&str> {
    if text == "-" || text.is_empty() {
        None
    } else {
        Some(text)
    }
}

fn take_token<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let text = rest.trim_start_matches(' ');
    if text.is_empty() {
        return None;
    }
    let end = text.find(' ').unwrap_or(text.len());
    *rest = &text[end..];
    Some(&text[..end])
}

/// A `"…"` field; `\"` inside does not close it.
fn take_quoted<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let text = rest.trim_start_matches(' ').strip_prefix('"')?;
    let bytes = text.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'\\' => idx += 2,
            b'"' => {
                *rest = &text[idx + 1..];
                return Some(&text[..idx]);
            }
            _ => idx += 1,
        }
    }
    None
}

fn split_request(request: &str) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
    let mut parts = request.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(protocol))
            if !method.is_empty()
                && method.bytes().all(|b| b.is_ascii_uppercase())
                && protocol.starts_with("HTTP/") =>
        {
            let (path, query) = match target.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (target, None),
            };
            (Some(method), Some(path), query, Some(protocol))
        }
        _ if request.is_empty() || request == "-" => (None, None, None, None),
        _ => (None, Some(request), None, None),
    }
}

/// `21/Nov/2026:09:05:33 +0100` to (UTC microseconds, offset minutes).
fn parse_clf_time(text: &str) -> Result<(i64, i32), LineError> {
    let bad = || {
        err(&format!(
            "timestamp `{text}` is not `dd/Mon/yyyy:HH:MM:SS +zzzz`"
        ))
    };
    let (stamp, zone) = text.split_once(' ').ok_or_else(bad)?;
    let b = stamp.as_bytes();
    if b.len() != 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let day = num(&stamp[0..2])?;
    let month = match &stamp[3..6] {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return Err(bad()),
    };
    let year = i32::try_from(num(&stamp[7..11])?).map_err(|_| bad())?;
    let time = NaiveTime::from_hms_opt(
        num(&stamp[12..14])?,
        num(&stamp[15..17])?,
        num(&stamp[18..20])?,
    )
    .ok_or_else(bad)?;
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(bad)?;
    let zb = zone.as_bytes();
    if zb.len() != 5 || !(zb[0] == b'+' || zb[0] == b'-') {
        return Err(bad());
    }
    let hours = i32::try_from(num(&zone[1..3])?).map_err(|_| bad())?;
    let minutes = i32::try_from(num(&zone[3..5])?).map_err(|_| bad())?;
    let sign = if zb[0] == b'-' { -1 } else { 1 };
    let offset_minutes = sign * (hours * 60 + minutes);
    let offset = FixedOffset::east_opt(offset_minutes * 60).ok_or_else(bad)?;
    let local = NaiveDateTime::new(date, time);
    let utc = local
        .and_local_timezone(offset)
        .single()
        .ok_or_else(bad)?
        .timestamp_micros();
    Ok((utc, offset_minutes))
}

/// Column builders for one batch of log rows.
struct LogBatchBuilder {
    schema: SchemaRef,
    flavor: LogFlavor,
    client_ip: StringBuilder,
    ident: StringBuilder,
    user: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    offset: Int32Builder,
    method: StringBuilder,
    path: StringBuilder,
    query: StringBuilder,
    protocol: StringBuilder,
    status: Int32Builder,
    bytes: Int64Builder,
    referer: StringBuilder,
    user_agent: StringBuilder,
    rows: usize,
}

impl LogBatchBuilder {
    fn new(flavor: LogFlavor) -> Self {
        LogBatchBuilder {
            schema: access_log_schema(flavor),
            flavor,
            client_ip: StringBuilder::new(),
            ident: StringBuilder::new(),
            user: StringBuilder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            offset: Int32Builder::new(),
            method: StringBuilder::new(),
            path: StringBuilder::new(),
            query: StringBuilder::new(),
            protocol: StringBuilder::new(),
            status: Int32Builder::new(),
            bytes: Int64Builder::new(),
            referer: StringBuilder::new(),
            user_agent: StringBuilder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, r: &LogRecord<'_>) {
        self.client_ip.append_value(r.client_ip);
        self.ident.append_option(r.ident);
        self.user.append_option(r.user);
        self.timestamp.append_value(r.timestamp_us);
        self.offset.append_value(r.utc_offset_minutes);
        self.method.append_option(r.method);
        self.path.append_option(r.path);
        self.query.append_option(r.query);
        self.protocol.append_option(r.protocol);
        self.status.append_value(r.status);
        self.bytes.append_option(r.bytes);
        if self.flavor == LogFlavor::Combined {
            self.referer.append_option(r.referer);
            self.user_agent.append_option(r.user_agent);
        }
        self.rows += 1;
    }

    fn finish(&mut self) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.client_ip.finish()),
            Arc::new(self.ident.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.query.finish()),
            Arc::new(self.protocol.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.bytes.finish()),
        ];
        if self.flavor == LogFlavor::Combined {
            columns.push(Arc::new(self.referer.finish()));
            columns.push(Arc::new(self.user_agent.finish()));
        }
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
    }
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

/// Lines that could not be parsed, kept whole with where they were and why.
#[derive(Debug, Default)]
pub struct RejectedLines {
    file: StringBuilder,
    line: Int64Builder,
    raw: StringBuilder,
    reason: StringBuilder,
    /// How many.
    pub count: usize,
    /// The first few, `file:line: reason`.
    pub samples: Vec<String>,
}

impl RejectedLines {
    fn push(&mut self, file: &str, line_number: usize, raw: &str, reason: &str) {
        self.file.append_value(file);
        self.line
            .append_value(i64::try_from(line_number).unwrap_or(i64::MAX));
        self.raw.append_value(raw);
        self.reason.append_value(reason);
        self.count += 1;
        if self.samples.len() < REJECTED_SAMPLES {
            self.samples.push(format!("{file}:{line_number}: {reason}"));
        }
    }

    /// The rejected lines as one record batch.
    pub fn finish(&mut self) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        RecordBatch::try_new(
            rejected_schema(),
            vec![
                Arc::new(self.file.finish()),
                Arc::new(self.line.finish()),
                Arc::new(self.raw.finish()),
                Arc::new(self.reason.finish()),
            ],
        )
    }
}

/// Parsed log lines as record batches, plus the lines that were rejected.
#[derive(Debug, Default)]
pub struct ParsedLog {
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// Rows loaded.
    pub rows: usize,
    /// Lines rejected.
    pub rejected: RejectedLines,
}

/// Parses the text of one log file; `file` names it in rejections. Empty lines are skipped.
pub fn parse_log_text(
    text: &str,
    file: &str,
    flavor: LogFlavor,
    out: &mut ParsedLog,
) -> Result<(), SourceError> {
    let arrow_error = |e: datafusion::arrow::error::ArrowError| SourceError::File {
        file: file.to_string(),
        reason: e.to_string(),
    };
    let mut builder = LogBatchBuilder::new(flavor);
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, flavor) {
            Ok(record) => {
                builder.push(&record);
                out.rows += 1;
                if builder.rows == BATCH_ROWS {
                    out.batches.push(builder.finish().map_err(arrow_error)?);
                }
            }
            Err(LineError(reason)) => out.rejected.push(file, idx + 1, line, &reason),
        }
    }
    if builder.rows > 0 {
        out.batches.push(builder.finish().map_err(arrow_error)?);
    }
    Ok(())
}

/// Access logs loaded into memory, ready to register.
pub struct LoadedLog {
    /// The table of parsed rows.
    pub table: MemTable,
    /// The table of rejected lines.
    pub rejected_table: MemTable,
    /// Rows loaded.
    pub rows: usize,
    /// Lines rejected.
    pub rejected: usize,
    /// The first rejected lines.
    pub rejected_samples: Vec<String>,
}

/// Reads and parses every log object; `.gz` objects are decompressed.
pub async fn load_access_logs(
    ctx: &SessionContext,
    location: &str,
    objects: &[ObjectMeta],
    flavor: LogFlavor,
) -> Result<LoadedLog, SourceError> {
    let store = ensure_store(ctx, location)?;
    let mut parsed = ParsedLog::default();
    for object in objects {
        let file = display_object(location, &object.location);
        let read_error = |reason: String| SourceError::File {
            file: file.clone(),
            reason,
        };
        let bytes = store
            .get(&object.location)
            .await
            .map_err(|e| read_error(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| read_error(e.to_string()))?;
        let text = if file.ends_with(".gz") {
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(bytes.as_ref())
                .read_to_string(&mut text)
                .map_err(|e| read_error(format!("gzip data is damaged or not UTF-8: {e}")))?;
            text
        } else {
            String::from_utf8(bytes.to_vec()).map_err(|e| read_error(format!("not UTF-8: {e}")))?
        };
        parse_log_text(&text, &file, flavor, &mut parsed)?;
    }
    let table = MemTable::try_new(access_log_schema(flavor), vec![parsed.batches])?;
    let rejected_batch = parsed.rejected.finish().map_err(DataFusionError::from)?;
    let rejected_table = MemTable::try_new(rejected_schema(), vec![vec![rejected_batch]])?;
    Ok(LoadedLog {
        table,
        rejected_table,
        rows: parsed.rows,
        rejected: parsed.rejected.count,
        rejected_samples: parsed.rejected.samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;

    const LINE: &str = r#"83.149.9.216 - TINIT-RSSMRA85T10A562S [17/May/2015:10:05:03 +0200] "GET /presentations/logstash?x=1 HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (Macintosh)""#;

    #[test]
    fn parses_a_combined_line_into_typed_fields() {
        let r = parse_line(LINE, LogFlavor::Combined).expect("valid line");
        assert_eq!(r.client_ip, "83.149.9.216");
        assert_eq!(r.user, Some("TINIT-RSSMRA85T10A562S"));
        assert_eq!(r.utc_offset_minutes, 120);
        // 10:05:03 at +02:00 is 08:05:03 UTC.
        assert_eq!(r.timestamp_us, 1_431_849_903_000_000);
        assert_eq!(
            (r.method, r.path, r.query),
            (Some("GET"), Some("/presentations/logstash"), Some("x=1"))
        );
        assert_eq!((r.status, r.bytes), (200, Some(203023)));
        assert_eq!(r.user_agent, Some("Mozilla/5.0 (Macintosh)"));
    }

    #[test]
    fn dash_bytes_are_null() {
        let line = LINE.replace("203023", "-");
        assert_eq!(
            parse_line(&line, LogFlavor::Combined).expect("valid").bytes,
            None
        );
    }

    #[test]
    fn rejects_unterminated_user_agent() {
        let line = &LINE[..LINE.len() - 1];
        let e = parse_line(line, LogFlavor::Combined).expect_err("no closing quote");
        assert_eq!(e.0, "user agent is not a quoted string");
    }

    #[test]
    fn keeps_malformed_request_lines_as_path() {
        let line = LINE.replace(
            "GET /presentations/logstash?x=1 HTTP/1.1",
            "\\x16\\x03\\x01",
        );
        let r = parse_line(&line, LogFlavor::Combined).expect("kept");
        assert_eq!((r.method, r.path), (None, Some("\\x16\\x03\\x01")));
    }

    #[test]
    fn counts_rejected_lines_with_their_numbers() {
        let text = format!("{LINE}\nnot a log line\n\n{LINE}\n");
        let mut out = ParsedLog::default();
        parse_log_text(&text, "a.log", LogFlavor::Combined, &mut out).expect("parses");
        assert_eq!((out.rows, out.rejected.count), (2, 1));
        assert!(
            out.rejected.samples[0].starts_with("a.log:2: "),
            "{:?}",
            out.rejected.samples
        );
        let batch = out.rejected.finish().expect("batch");
        assert_eq!(
            batch.column(2).as_string::<i32>().value(0),
            "not a log line"
        );
        assert_eq!(
            batch
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            2
        );
    }
}
