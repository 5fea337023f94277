//! Web-server access logs (Apache / Nginx `common` and `combined`, or a
//! custom `pattern`): parsing lines into typed Arrow columns. Reading the
//! files is [`super::lines`]'s work.

use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, RecordBatch, RecordBatchOptions,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;

use super::lines::{LineDecoder, LineLayout};
use super::log_pattern::LogPattern;
use crate::pipeline::LogFlavor;

/// A value of one column of a log row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogColumn {
    ClientIp,
    Ident,
    User,
    Timestamp,
    UtcOffset,
    Method,
    Path,
    Query,
    Protocol,
    Status,
    Bytes,
    Referer,
    UserAgent,
    RequestTime,
    Extra(usize),
}

/// The columns every access-log table has, in order.
const STANDARD: [(&str, LogColumn); 13] = [
    ("client_ip", LogColumn::ClientIp),
    ("ident", LogColumn::Ident),
    ("user", LogColumn::User),
    ("timestamp", LogColumn::Timestamp),
    ("utc_offset_minutes", LogColumn::UtcOffset),
    ("method", LogColumn::Method),
    ("path", LogColumn::Path),
    ("query", LogColumn::Query),
    ("protocol", LogColumn::Protocol),
    ("status", LogColumn::Status),
    ("bytes", LogColumn::Bytes),
    ("referer", LogColumn::Referer),
    ("user_agent", LogColumn::UserAgent),
];

fn column_type(column: LogColumn) -> DataType {
    match column {
        LogColumn::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        LogColumn::UtcOffset | LogColumn::Status => DataType::Int32,
        LogColumn::Bytes => DataType::Int64,
        LogColumn::RequestTime => DataType::Float64,
        _ => DataType::Utf8,
    }
}

/// How lines are read: a built-in flavor or a compiled `pattern`.
#[derive(Debug, Clone)]
pub enum LogParser {
    /// `common` or `combined`, by the fast hand-written parser.
    Flavor(LogFlavor),
    /// A custom layout.
    Pattern(Arc<LogPattern>),
}

impl LogParser {
    /// Parses one line.
    pub fn parse<'a>(&self, line: &'a str) -> Result<LogRecord<'a>, LineError> {
        match self {
            LogParser::Flavor(flavor) => parse_line(line, *flavor),
            LogParser::Pattern(pattern) => pattern.parse(line),
        }
    }
}

/// The access-log [`LineLayout`]: the 13 standard columns (`timestamp` is the
/// UTC instant, `utc_offset_minutes` the offset the server wrote, so local
/// time is `timestamp + utc_offset_minutes`), then, for a `pattern`,
/// `request_time` (seconds) and the pattern's other fields as text.
#[derive(Debug, Clone)]
pub struct AccessLogLayout {
    parser: LogParser,
    columns: Vec<LogColumn>,
    schema: SchemaRef,
}

impl AccessLogLayout {
    /// The layout of a parser.
    pub fn new(parser: LogParser) -> Self {
        let mut named: Vec<(String, LogColumn)> = STANDARD
            .iter()
            .map(|(name, column)| (name.to_string(), *column))
            .collect();
        if let LogParser::Pattern(pattern) = &parser {
            if pattern.has_request_time {
                named.push(("request_time".to_string(), LogColumn::RequestTime));
            }
            for (idx, name) in pattern.extras.iter().enumerate() {
                named.push((name.clone(), LogColumn::Extra(idx)));
            }
        }
        let schema = Arc::new(Schema::new(
            named
                .iter()
                .map(|(name, column)| Field::new(name, column_type(*column), true))
                .collect::<Vec<_>>(),
        ));
        AccessLogLayout {
            parser,
            columns: named.into_iter().map(|(_, column)| column).collect(),
            schema,
        }
    }
}

impl LineLayout for AccessLogLayout {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn decoder(&self, projection: &[usize], _path: &str) -> Box<dyn LineDecoder> {
        Box::new(LogDecoder {
            parser: self.parser.clone(),
            schema: Arc::new(
                self.schema
                    .project(projection)
                    .unwrap_or_else(|_| Schema::empty()),
            ),
            builders: projection
                .iter()
                .map(|idx| ColumnBuilder::new(self.columns[*idx]))
                .collect(),
            rows: 0,
        })
    }

    fn file_type(&self) -> &'static str {
        "access_log"
    }
}

/// One parsed line, borrowing from the text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogRecord<'a> {
    /// Client address.
    pub client_ip: Option<&'a str>,
    /// RFC 1413 identity, `None` for `-`.
    pub ident: Option<&'a str>,
    /// Authenticated user, `None` for `-`.
    pub user: Option<&'a str>,
    /// Microseconds since the Unix epoch, UTC.
    pub timestamp_us: Option<i64>,
    /// The offset written in the line, in minutes east of UTC.
    pub utc_offset_minutes: Option<i32>,
    /// Request method, `None` when the request line is not `METHOD TARGET PROTOCOL`.
    pub method: Option<&'a str>,
    /// Request path without the query; the whole request line when it is malformed.
    pub path: Option<&'a str>,
    /// The query string after `?`, without it.
    pub query: Option<&'a str>,
    /// `HTTP/1.1` and the like.
    pub protocol: Option<&'a str>,
    /// HTTP status.
    pub status: Option<i32>,
    /// Response size, `None` for `-`.
    pub bytes: Option<i64>,
    /// Referer, `None` for `-`.
    pub referer: Option<&'a str>,
    /// User agent, `None` for `-`.
    pub user_agent: Option<&'a str>,
    /// Seconds to serve the request (patterns with `request_time`).
    pub request_time: Option<f64>,
    /// A pattern's other fields, in order.
    pub extras: Vec<Option<&'a str>>,
}

/// A builder for one projected column.
enum ColumnBuilder {
    Text(LogColumn, StringBuilder),
    Int32(LogColumn, Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    fn new(column: LogColumn) -> Self {
        match column {
            LogColumn::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            LogColumn::UtcOffset | LogColumn::Status => {
                ColumnBuilder::Int32(column, Int32Builder::new())
            }
            LogColumn::Bytes => ColumnBuilder::Int64(Int64Builder::new()),
            LogColumn::RequestTime => ColumnBuilder::Float64(Float64Builder::new()),
            _ => ColumnBuilder::Text(column, StringBuilder::new()),
        }
    }

    fn push(&mut self, r: &LogRecord<'_>) {
        match self {
            ColumnBuilder::Text(column, b) => b.append_option(match column {
                LogColumn::ClientIp => r.client_ip,
                LogColumn::Ident => r.ident,
                LogColumn::User => r.user,
                LogColumn::Method => r.method,
                LogColumn::Path => r.path,
                LogColumn::Query => r.query,
                LogColumn::Protocol => r.protocol,
                LogColumn::Referer => r.referer,
                LogColumn::UserAgent => r.user_agent,
                LogColumn::Extra(idx) => r.extras.get(*idx).copied().flatten(),
                _ => None,
            }),
            ColumnBuilder::Int32(LogColumn::Status, b) => b.append_option(r.status),
            ColumnBuilder::Int32(_, b) => b.append_option(r.utc_offset_minutes),
            ColumnBuilder::Int64(b) => b.append_option(r.bytes),
            ColumnBuilder::Float64(b) => b.append_option(r.request_time),
            ColumnBuilder::Timestamp(b) => b.append_option(r.timestamp_us),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(_, b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(_, b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// Parses lines into the projected columns.
struct LogDecoder {
    parser: LogParser,
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    rows: usize,
}

impl LineDecoder for LogDecoder {
    fn push_line(&mut self, line: &str) -> Result<(), String> {
        let record = self
            .parser
            .parse(line)
            .map_err(|LineError(reason)| reason)?;
        for builder in &mut self.builders {
            builder.push(&record);
        }
        self.rows += 1;
        Ok(())
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
    }
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
        client_ip: Some(client_ip),
        ident,
        user,
        timestamp_us: Some(timestamp_us),
        utc_offset_minutes: Some(utc_offset_minutes),
        method,
        path,
        query,
        protocol,
        status: Some(status),
        bytes,
        referer,
        user_agent,
        ..LogRecord::default()
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

pub(super) fn split_request(
    request: &str,
) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
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
pub(super) fn parse_clf_time(text: &str) -> Result<(i64, i32), LineError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"83.149.9.216 - TINIT-RSSMRA85T10A562S [17/May/2015:10:05:03 +0200] "GET /presentations/logstash?x=1 HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (Macintosh)""#;

    #[test]
    fn parses_a_combined_line_into_typed_fields() {
        let r = parse_line(LINE, LogFlavor::Combined).expect("valid line");
        assert_eq!(r.client_ip, Some("83.149.9.216"));
        assert_eq!(r.user, Some("TINIT-RSSMRA85T10A562S"));
        assert_eq!(r.utc_offset_minutes, Some(120));
        // 10:05:03 at +02:00 is 08:05:03 UTC.
        assert_eq!(r.timestamp_us, Some(1_431_849_903_000_000));
        assert_eq!(
            (r.method, r.path, r.query),
            (Some("GET"), Some("/presentations/logstash"), Some("x=1"))
        );
        assert_eq!((r.status, r.bytes), (Some(200), Some(203023)));
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
    fn decoder_fills_only_projected_columns_and_counts_rows() {
        let layout = AccessLogLayout::new(LogParser::Flavor(LogFlavor::Combined));
        let status = layout.schema().index_of("status").expect("status column");
        let mut decoder = layout.decoder(&[status], "a.log");
        decoder.push_line(LINE).expect("valid");
        assert!(decoder.push_line("not a log line").is_err());
        decoder.push_line(LINE).expect("valid");
        let batch = decoder.finish().expect("batch");
        assert_eq!((batch.num_rows(), batch.num_columns()), (2, 1));
        let mut counter = layout.decoder(&[], "a.log");
        counter.push_line(LINE).expect("valid");
        assert_eq!(counter.finish().expect("batch").num_rows(), 1);
    }
}
