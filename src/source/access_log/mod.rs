//! Web-server access logs (Apache / Nginx `common` and `combined`, or a
//! custom `pattern`): parsing lines into typed Arrow columns. Reading the
//! files is [`super::lines`]'s work.

mod clf;
mod pattern;
mod record;

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, RecordBatch, RecordBatchOptions,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;

use datafusion::prelude::SessionContext;
use object_store::ObjectMeta;

use self::clf::parse_line;
use self::pattern::parse_with;
use self::record::LogRecord;
use super::SourceError;
use super::line_source::{register_lines, validate_sample};
use super::lines::{LineDecoder, LineError, LineLayout, LineOptions, TextEncoding};
use super::quarantine::Quarantine;
use crate::pipeline::log_pattern::LogPattern;
use crate::pipeline::{AccessLogFormatSpec, IpMask, LogFlavor, OnError};
use crate::plan::SourcePlan;
use crate::privacy::{mask_address, mask_addresses_in};

/// Registers an access-log source and its `__rejected` table.
pub(super) async fn register_access_log(
    ctx: &SessionContext,
    source: &SourcePlan,
    log: &AccessLogFormatSpec,
    extension: &str,
    objects: Vec<ObjectMeta>,
    subset: bool,
) -> Result<Quarantine, SourceError> {
    let parser = match &log.pattern {
        Some(pattern) => LogParser::Pattern(Arc::new(LogPattern::compile(pattern).map_err(
            |problem| SourceError::File {
                file: source.location.clone(),
                reason: problem.to_string(),
            },
        )?)),
        None => LogParser::Flavor(log.flavor),
    };
    let layout = Arc::new(AccessLogLayout::new(parser).with_ip_mask(log.ip_mask));
    // (Unless every line may be rejected.)
    if source.max_rejected_ratio < 1.0 {
        validate_sample(ctx, source, layout.as_ref(), &objects).await?;
    }
    let settings = LineOptions {
        source: source.name.clone(),
        location: source.location.clone(),
        fail_on_error: source.on_error == OnError::Fail,
        encoding: TextEncoding::Utf8,
        header: false,
        scanned: None,
    };
    register_lines(ctx, source, layout, settings, extension, objects, subset).await
}

/// A column of the access-log table, which a builder fills from a parsed
/// [`LogRecord`]. Not the pattern's [`Role`](crate::pipeline::log_pattern::Role):
/// a role is what one field of a line fills, and one field (a request line,
/// a CLF time) can fill several columns.
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
            LogParser::Pattern(pattern) => parse_with(pattern, line),
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
    ip_mask: IpMask,
}

impl AccessLogLayout {
    /// The layout of a parser, masking client addresses as `ip_mask: 16`
    /// does (see [`AccessLogLayout::with_ip_mask`]).
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
            ip_mask: IpMask::default(),
        }
    }

    /// The same layout, masking client addresses as `mask` says.
    pub fn with_ip_mask(self, mask: IpMask) -> Self {
        AccessLogLayout {
            ip_mask: mask,
            ..self
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
            ip_mask: self.ip_mask,
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
    ip_mask: IpMask,
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    rows: usize,
}

impl LineDecoder for LogDecoder {
    fn push_line(&mut self, line: &str) -> Result<(), LineError> {
        let record = self.parser.parse(line)?;
        // The address is masked before it reaches a column.
        let client = record.client_ip.map(|ip| mask_address(ip, self.ip_mask));
        let record = LogRecord {
            client_ip: client.as_deref(),
            ..record
        };
        for builder in &mut self.builders {
            builder.push(&record);
        }
        self.rows += 1;
        Ok(())
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        mask_addresses_in(text, self.ip_mask)
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const LINE: &str = r#"83.149.9.216 - TINIT-RSSMRA85T10A562S [17/May/2015:10:05:03 +0200] "GET /presentations/logstash?x=1 HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (Macintosh)""#;

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
