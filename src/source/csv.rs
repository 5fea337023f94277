//! CSV sources as real systems export them: any one-byte delimiter (tab
//! included), quotes and an escape character, header or not, null markers,
//! decimal comma, chrono date / time / timestamp formats (`%d/%m/%Y`,
//! `%y%m%d`, `9:05:33`), Windows-1252 input, CRLF line ends, and files whose
//! columns changed over time (`schema_drift`).
//!
//! Files are read by [`super::lines`]: a row that does not fit its columns
//! (a wrong field count, a value that is not of its column's type) goes to
//! `<source>__rejected` with its line number. A quoted value cannot hold a
//! line break: such a row is rejected, never split silently.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, RecordBatch,
    RecordBatchOptions, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::prelude::SessionContext;
use object_store::ObjectMeta;
use regex::Regex;

use super::SourceError;
use super::datetime::DateTimeFormat;
use super::drift::{Mapping, reconcile};
use super::line_source::register_lines;
use super::lines::{LineDecoder, LineError, LineLayout, LineOptions, TextEncoding, read_head};
use super::quarantine::Quarantine;
use crate::pipeline::backticked;
use crate::pipeline::{ColumnType, CsvFormatSpec, EncodingSpec, OnError, SchemaDrift};
use crate::plan::{SourcePlan, arrow_type};
use crate::privacy::redact_value;
use crate::storage::{display_object, ensure_store};

/// How many data lines type inference looks at, across the first files.
const SAMPLE_ROWS: usize = 1000;

/// Registers a CSV source and its `__rejected` table.
pub(super) async fn register_csv(
    ctx: &SessionContext,
    source: &SourcePlan,
    csv: &CsvFormatSpec,
    objects: Vec<ObjectMeta>,
    subset: bool,
) -> Result<Quarantine, SourceError> {
    let store = ensure_store(ctx, &source.location)?;
    let encoding = match csv.encoding {
        EncodingSpec::Utf8 => TextEncoding::Utf8,
        EncodingSpec::Windows1252 => TextEncoding::Windows1252,
    };
    let syntax = Syntax::of(csv);
    // Every file's header, and sample rows from the first files until
    // inference has enough.
    let mut heads = Vec::new();
    let mut to_sample = SAMPLE_ROWS;
    for object in &objects {
        let file = display_object(&source.location, &object.location);
        let head = read_head(&store, object, &file, encoding, to_sample + 1).await?;
        if head.utf8_declared_latin {
            tracing::warn!(
                "source `{}`: `{}` is declared `encoding: windows-1252`, but its bytes are UTF-8: accented letters would load as two characters each (`è` as `Ã¨`); set `encoding: utf-8` if the file is UTF-8",
                source.name,
                file
            );
        }
        if let Some(byte) = head.not_utf8_at {
            tracing::warn!(
                "source `{}`: `{}` is not UTF-8 (byte {byte}): its lines with such bytes will be rejected; set `encoding: windows-1252` if it is a Latin-1 export",
                source.name,
                file
            );
        }
        let lines = head.lines;
        to_sample = to_sample.saturating_sub(lines.len().saturating_sub(1));
        heads.push(lines);
    }
    let header_of = |lines: &[String]| -> Vec<String> {
        let first = lines.first().map(String::as_str).unwrap_or("");
        let fields = syntax.split(first).unwrap_or_default();
        if csv.header {
            fields.iter().map(|f| f.trim().to_string()).collect()
        } else {
            (1..=fields.len()).map(|i| format!("column_{i}")).collect()
        }
    };
    let headers: Vec<Vec<String>> = heads.iter().map(|lines| header_of(lines)).collect();
    let display = |idx: usize| display_object(&source.location, &objects[idx].location);
    for (idx, header) in headers.iter().enumerate() {
        if let [only] = header.as_slice()
            && let Some(other) = [';', ',', '\t', '|']
                .into_iter()
                .find(|d| *d != csv.delimiter && only.contains(*d))
        {
            tracing::warn!(
                "source `{}`: the first line of `{}` is one column with `{}` in it: is the delimiter `{}` rather than `{}`?",
                source.name,
                display(idx),
                other.escape_default(),
                other.escape_default(),
                csv.delimiter.escape_default()
            );
        }
    }
    // By name only: a declared `schema` maps columns by position. Empty
    // names (a trailing `;`) are not names.
    if csv.header && source.schema.is_none() {
        for (idx, header) in headers.iter().enumerate() {
            if let Some(twice) = header
                .iter()
                .enumerate()
                .find(|(i, name)| !name.is_empty() && header[..*i].contains(name))
            {
                return Err(SourceError::File {
                    file: display(idx),
                    reason: format!(
                        "its header names the column `{}` twice (columns {})",
                        twice.1,
                        backticked(header)
                    ),
                });
            }
        }
    }
    let (names, mappings) = match &source.schema {
        Some(schema) => {
            let names: Vec<String> = schema.0.iter().map(|(name, _)| name.clone()).collect();
            let mut mappings = Vec::new();
            for (idx, header) in headers.iter().enumerate() {
                if header.len() != names.len() && source.schema_drift == SchemaDrift::Fail {
                    return Err(SourceError::SchemaMismatch {
                        declared: names.len(),
                        found: header.len(),
                        file: display(idx),
                        columns: backticked(header),
                    });
                }
                mappings.push(
                    (0..header.len())
                        .map(|i| (i < names.len()).then_some(i))
                        .collect(),
                );
            }
            (names, mappings)
        }
        None => reconcile(&headers, source.schema_drift, csv.header).map_err(|(idx, reason)| {
            SourceError::Drift {
                source_name: source.name.clone(),
                file: display(idx),
                first: display(0),
                reason,
            }
        })?,
    };
    let types: Vec<ColumnType> = match &source.schema {
        Some(schema) => schema.0.iter().map(|(_, ty)| *ty).collect(),
        None => {
            let mut samples: Vec<Vec<String>> = vec![Vec::new(); names.len()];
            let mut taken = 0;
            'files: for (lines, mapping) in heads.iter().zip(&mappings) {
                let data = lines.iter().skip(usize::from(csv.header));
                for line in data.filter(|l| !l.trim().is_empty()) {
                    if taken == SAMPLE_ROWS {
                        break 'files;
                    }
                    let Ok(fields) = syntax.split(line) else {
                        continue;
                    };
                    if fields.len() != mapping.len() {
                        continue;
                    }
                    for (field, column) in fields.iter().zip(mapping) {
                        if let Some(column) = column {
                            samples[*column].push(field.trim().to_string());
                        }
                    }
                    taken += 1;
                }
            }
            samples
                .into_iter()
                .map(|values| infer_type(values.into_iter(), csv))
                .collect()
        }
    };
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .zip(&types)
            .map(|(name, ty)| Field::new(name, arrow_type(*ty), true))
            .collect::<Vec<_>>(),
    ));
    let layout = CsvLayout {
        schema,
        names,
        types,
        syntax,
        values: Arc::new(ValueFormat::of(csv)),
        mappings: objects
            .iter()
            .zip(mappings)
            .map(|(object, mapping)| (object.location.to_string(), Arc::new(mapping)))
            .collect(),
    };
    let settings = LineOptions {
        source: source.name.clone(),
        location: source.location.clone(),
        fail_on_error: source.on_error == OnError::Fail,
        encoding,
        header: csv.header,
        scanned: None,
    };
    register_lines(
        ctx,
        source,
        Arc::new(layout),
        settings,
        &csv.extension,
        objects,
        subset,
    )
    .await
}

/// How a line splits into fields.
#[derive(Debug, Clone, Copy)]
struct Syntax {
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
}

impl Syntax {
    fn of(csv: &CsvFormatSpec) -> Self {
        Syntax {
            delimiter: csv.delimiter as u8,
            quote: csv.quote as u8,
            escape: csv.escape.map(|c| c as u8),
        }
    }

    /// The fields of a line: quoted fields lose their quotes, doubled quotes
    /// and escapes are resolved.
    fn split<'a>(&self, line: &'a str) -> Result<Vec<Cow<'a, str>>, LineError> {
        let (mut spans, mut scratch) = (Vec::new(), String::new());
        self.split_into(line, &mut spans, &mut scratch)?;
        Ok(spans
            .iter()
            .map(|span| match span.owned {
                true => Cow::Owned(scratch[span.start..span.end].to_string()),
                false => Cow::Borrowed(&line[span.start..span.end]),
            })
            .collect())
    }

    /// Splits a line into `spans` without allocating per line: a span is a
    /// range of the line, or of `scratch` for a quoted field whose doubled
    /// quotes or escapes were resolved.
    fn split_into(
        &self,
        line: &str,
        spans: &mut Vec<Span>,
        scratch: &mut String,
    ) -> Result<(), LineError> {
        spans.clear();
        scratch.clear();
        let bytes = line.as_bytes();
        let mut pos = 0;
        loop {
            if bytes.get(pos) == Some(&self.quote) {
                pos = self.quoted(line, pos + 1, spans, scratch)?;
                match bytes.get(pos) {
                    None => return Ok(()),
                    Some(b) if *b == self.delimiter => pos += 1,
                    Some(_) => {
                        return Err(LineError(format!(
                            "unexpected text after the closing quote of field {}",
                            spans.len()
                        )));
                    }
                }
            } else {
                // Fields are short: a plain loop beats a vectorised search.
                match bytes[pos..].iter().position(|b| *b == self.delimiter) {
                    Some(len) => {
                        spans.push(Span::of(pos, pos + len));
                        pos += len + 1;
                    }
                    None => {
                        spans.push(Span::of(pos, bytes.len()));
                        return Ok(());
                    }
                }
            }
        }
    }

    /// A quoted field starting after its opening quote: pushes its span and
    /// returns the position after the closing quote.
    fn quoted(
        &self,
        line: &str,
        start: usize,
        spans: &mut Vec<Span>,
        scratch: &mut String,
    ) -> Result<usize, LineError> {
        let bytes = line.as_bytes();
        let mut copied: Option<usize> = None;
        let mut run = start;
        let mut pos = start;
        while pos < bytes.len() {
            let b = bytes[pos];
            if Some(b) == self.escape && pos + 1 < bytes.len() {
                copied.get_or_insert(scratch.len());
                scratch.push_str(&line[run..pos]);
                run = pos + 1;
                pos += 2;
            } else if b == self.quote {
                if bytes.get(pos + 1) == Some(&self.quote) {
                    copied.get_or_insert(scratch.len());
                    scratch.push_str(&line[run..=pos]);
                    pos += 2;
                    run = pos;
                } else {
                    spans.push(match copied {
                        Some(from) => {
                            scratch.push_str(&line[run..pos]);
                            Span {
                                start: from,
                                end: scratch.len(),
                                owned: true,
                            }
                        }
                        None => Span::of(start, pos),
                    });
                    return Ok(pos + 1);
                }
            } else {
                pos += 1;
            }
        }
        Err(LineError(
            "a quoted field is not closed on its line".to_string(),
        ))
    }
}

/// Where a field's text is: a range of the line, or of the scratch buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    owned: bool,
}

impl Span {
    fn of(start: usize, end: usize) -> Self {
        Span {
            start,
            end,
            owned: false,
        }
    }
}

/// How values are written: null marker, decimal separator, formats.
#[derive(Debug)]
struct ValueFormat {
    null: Option<String>,
    decimal_comma: bool,
    date_format: DateTimeFormat,
    timestamp_format: Option<DateTimeFormat>,
    time_format: DateTimeFormat,
    /// ISO 8601 without fractions, tried first when no timestamp format is set.
    iso: [DateTimeFormat; 2],
}

/// ISO 8601 timestamps accepted without a `timestamp_format`.
const ISO_TIMESTAMPS: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"];

impl ValueFormat {
    fn of(csv: &CsvFormatSpec) -> Self {
        ValueFormat {
            null: csv.null_marker.clone(),
            decimal_comma: csv.decimal == ',',
            date_format: DateTimeFormat::new(csv.date_format.as_deref().unwrap_or("%Y-%m-%d")),
            timestamp_format: csv.timestamp_format.as_deref().map(DateTimeFormat::new),
            time_format: DateTimeFormat::new(csv.time_format.as_deref().unwrap_or("%H:%M:%S")),
            iso: [
                DateTimeFormat::new("%Y-%m-%d %H:%M:%S"),
                DateTimeFormat::new("%Y-%m-%dT%H:%M:%S"),
            ],
        }
    }

    fn float(&self, text: &str) -> Option<f64> {
        let (decimal, thousands) = match self.decimal_comma {
            true => (b',', Some(b'.')),
            false => (b'.', None),
        };
        if let Some(value) = exact_decimal(text.as_bytes(), decimal, thousands) {
            return Some(value);
        }
        if self.decimal_comma {
            // `1.234,5` → `1234.5`, without allocating for usual lengths.
            let mut buf = [0u8; 64];
            let mut len = 0;
            for b in text.bytes().filter(|b| *b != b'.') {
                *buf.get_mut(len)? = if b == b',' { b'.' } else { b };
                len += 1;
            }
            std::str::from_utf8(&buf[..len]).ok()?.parse().ok()
        } else {
            text.parse().ok()
        }
    }

    fn timestamp(&self, text: &str) -> Option<NaiveDateTime> {
        match &self.timestamp_format {
            Some(format) => format.datetime(text),
            None => self.iso.iter().find_map(|f| f.datetime(text)).or_else(|| {
                ISO_TIMESTAMPS
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                    // With `Z` or an offset (`+01:00`): converted to UTC.
                    .or_else(|| {
                        chrono::DateTime::parse_from_rfc3339(text)
                            .ok()
                            .map(|t| t.naive_utc())
                    })
            }),
        }
    }

    fn timestamp_micros(&self, text: &str) -> Option<i64> {
        match &self.timestamp_format {
            Some(format) => format.timestamp_micros(text),
            None => self.timestamp(text).map(|t| t.and_utc().timestamp_micros()),
        }
    }

    /// Converts a field to its column's type: the number (integers,
    /// days, microseconds, a float's bits, 0 or 1) goes to `out`, so that no
    /// enum travels through memory on the hot path.
    fn parse(&self, text: &str, ty: ColumnType, out: &mut i64) -> Parsed {
        let trimmed = text.trim_ascii();
        if trimmed.is_empty() || self.null.as_deref() == Some(trimmed) {
            return Parsed::Null;
        }
        let value: Option<i64> = match ty {
            ColumnType::String => Some(0),
            ColumnType::Int64 => trimmed.trim_start_matches('+').parse().ok(),
            // `1e400` or `inf` would load as infinity: never a number read.
            ColumnType::Float64 => self
                .float(trimmed)
                .filter(|v| v.is_finite())
                .map(|v| v.to_bits() as i64),
            ColumnType::Boolean => {
                let is = |words: &[&str]| words.iter().any(|w| trimmed.eq_ignore_ascii_case(w));
                if is(&["true", "t", "1", "yes", "y", "si", "sì"]) {
                    Some(1)
                } else if is(&["false", "f", "0", "no", "n"]) {
                    Some(0)
                } else {
                    None
                }
            }
            ColumnType::Date => self
                .date_format
                .date(trimmed)
                .map(|date| (date - unix_epoch()).num_days()),
            ColumnType::Timestamp => self.timestamp_micros(trimmed),
            ColumnType::Time => self.time_format.time(trimmed).map(|time| {
                i64::from(time.num_seconds_from_midnight()) * 1_000_000
                    + i64::from(time.nanosecond() / 1_000)
            }),
        };
        match value {
            Some(value) => {
                *out = value;
                Parsed::Value
            }
            None => Parsed::Invalid,
        }
    }
}

/// Powers of ten that f64 holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A plain decimal (`-12`, `3,75`, `1.234,5`) without the general float
/// parser: when the digits fit in 2^53 and there are at most 22 decimals,
/// digits ÷ 10^decimals is one exact division of exact operands, so the
/// result is the correctly rounded value `str::parse` would give (Clinger's
/// fast path). Anything else (exponents, long mantissas) returns `None`.
fn exact_decimal(text: &[u8], decimal: u8, thousands: Option<u8>) -> Option<f64> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mut mantissa, mut decimals, mut count, mut after_point) = (0u64, 0usize, 0, false);
    for &b in digits {
        if b.is_ascii_digit() {
            mantissa = mantissa * 10 + u64::from(b - b'0');
            if mantissa > 1 << 53 {
                return None;
            }
            decimals += usize::from(after_point);
            count += 1;
        } else if b == decimal && !after_point {
            after_point = true;
        } else if Some(b) != thousands || after_point {
            return None;
        }
    }
    if count == 0 {
        return None;
    }
    let value = mantissa as f64 / *EXACT_POWERS_OF_TEN.get(decimals)?;
    Some(if negative { -value } else { value })
}

fn unix_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn type_name(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::String => "text",
        ColumnType::Int64 => "an integer",
        ColumnType::Float64 => "a number",
        ColumnType::Boolean => "a boolean",
        ColumnType::Date => "a date",
        ColumnType::Timestamp => "a timestamp",
        ColumnType::Time => "a time",
    }
}

/// What [`ValueFormat::parse`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parsed {
    /// Empty or the null marker.
    Null,
    /// A value of the column's type.
    Value,
    /// Text that is not of the column's type.
    Invalid,
}

/// The CSV [`LineLayout`].
#[derive(Debug)]
struct CsvLayout {
    schema: SchemaRef,
    names: Vec<String>,
    types: Vec<ColumnType>,
    syntax: Syntax,
    values: Arc<ValueFormat>,
    /// Each file's mapping, by object-store path.
    mappings: HashMap<String, Arc<Mapping>>,
}

impl LineLayout for CsvLayout {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn decoder(&self, projection: &[usize], path: &str) -> Box<dyn LineDecoder> {
        let mapping = self
            .mappings
            .get(path)
            .cloned()
            .unwrap_or_else(|| Arc::new((0..self.names.len()).map(Some).collect()));
        // For each column of the table, its slot among the projected ones.
        let slots: Vec<Option<usize>> = (0..self.names.len())
            .map(|c| projection.iter().position(|p| *p == c))
            .collect();
        Box::new(CsvDecoder {
            schema: Arc::new(
                self.schema
                    .project(projection)
                    .unwrap_or_else(|_| Schema::empty()),
            ),
            names: self.names.clone(),
            types: self.types.clone(),
            builders: projection
                .iter()
                .map(|c| Builder::new(self.types[*c]))
                .collect(),
            mapping,
            slots,
            syntax: self.syntax,
            format: Arc::clone(&self.values),
            values: vec![0; projection.len()],
            present: vec![false; projection.len()],
            sources: vec![usize::MAX; projection.len()],
            spans: Vec::new(),
            scratch: String::new(),
            rows: 0,
        })
    }

    fn file_type(&self) -> &'static str {
        "csv"
    }
}

/// A builder for one projected column.
enum Builder {
    Text(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
}

impl Builder {
    fn new(ty: ColumnType) -> Self {
        match ty {
            ColumnType::String => Builder::Text(StringBuilder::new()),
            ColumnType::Int64 => Builder::Int(Int64Builder::new()),
            ColumnType::Float64 => Builder::Float(Float64Builder::new()),
            ColumnType::Boolean => Builder::Bool(BooleanBuilder::new()),
            ColumnType::Date => Builder::Date(Date32Builder::new()),
            ColumnType::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::new()),
            ColumnType::Time => Builder::Time(Time64MicrosecondBuilder::new()),
        }
    }

    /// Appends a parsed value (`value` as [`ValueFormat::parse`] wrote it,
    /// `text` for text columns), or a null when not `present`.
    fn push(&mut self, present: bool, value: i64, text: &str) {
        match self {
            Builder::Text(b) if present => b.append_value(text),
            Builder::Int(b) if present => b.append_value(value),
            Builder::Float(b) if present => b.append_value(f64::from_bits(value as u64)),
            Builder::Bool(b) if present => b.append_value(value != 0),
            Builder::Date(b) if present => b.append_value(value as i32),
            Builder::Timestamp(b) if present => b.append_value(value),
            Builder::Time(b) if present => b.append_value(value),
            Builder::Text(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// Splits lines of one file and converts every field (so that a row is
/// rejected whatever a query reads), keeping the projected columns.
struct CsvDecoder {
    schema: SchemaRef,
    names: Vec<String>,
    types: Vec<ColumnType>,
    builders: Vec<Builder>,
    /// For each field of the file, its table column.
    mapping: Arc<Mapping>,
    /// For each table column, its projected slot.
    slots: Vec<Option<usize>>,
    syntax: Syntax,
    format: Arc<ValueFormat>,
    /// Per slot: the converted value and the field it came from.
    values: Vec<i64>,
    present: Vec<bool>,
    sources: Vec<usize>,
    /// Reused for every line: the fields' spans and resolved quoted text.
    spans: Vec<Span>,
    scratch: String,
    rows: usize,
}

impl CsvDecoder {
    fn push_spans(&mut self, line: &str, spans: &[Span], scratch: &str) -> Result<(), LineError> {
        let text = |span: &Span| match span.owned {
            true => &scratch[span.start..span.end],
            false => &line[span.start..span.end],
        };
        if spans.len() != self.mapping.len() {
            return Err(LineError(format!(
                "expected {} fields, found {}",
                self.mapping.len(),
                spans.len()
            )));
        }
        self.present.fill(false);
        self.sources.fill(usize::MAX);
        let mut value = 0;
        for (idx, (span, column)) in spans.iter().zip(self.mapping.iter()).enumerate() {
            let Some(column) = *column else { continue };
            let ty = self.types[column];
            let field = text(span);
            let parsed = self.format.parse(field, ty, &mut value);
            if parsed == Parsed::Invalid {
                let out_of_range = ty == ColumnType::Float64
                    && self
                        .format
                        .float(field.trim())
                        .is_some_and(|v| !v.is_finite());
                // The value is shown unless it is personal data.
                return Err(LineError(format!(
                    "column `{}`: `{}` is not {}",
                    self.names[column],
                    redact_value(field),
                    if out_of_range {
                        "a finite number (beyond ±1.8e308, or infinite or NaN)"
                    } else {
                        type_name(ty)
                    }
                )));
            }
            if let Some(slot) = self.slots[column] {
                self.values[slot] = value;
                self.present[slot] = parsed == Parsed::Value;
                self.sources[slot] = idx;
            }
        }
        for (((builder, value), present), source) in self
            .builders
            .iter_mut()
            .zip(&self.values)
            .zip(&self.present)
            .zip(&self.sources)
        {
            builder.push(*present, *value, spans.get(*source).map(text).unwrap_or(""));
        }
        self.rows += 1;
        Ok(())
    }
}

impl LineDecoder for CsvDecoder {
    fn push_line(&mut self, line: &str) -> Result<(), LineError> {
        let mut spans = std::mem::take(&mut self.spans);
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self
            .syntax
            .split_into(line, &mut spans, &mut scratch)
            .and_then(|()| self.push_spans(line, &spans, &scratch));
        self.spans = spans;
        self.scratch = scratch;
        result
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns = self.builders.iter_mut().map(Builder::finish).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
    }
}

/// The narrowest type every sampled value fits: boolean, integer, number,
/// date, timestamp, time, else text. Integers with a leading zero or sign
/// (codes, phone numbers) stay text.
fn infer_type(values: impl Iterator<Item = String>, csv: &CsvFormatSpec) -> ColumnType {
    let values: Vec<String> = values
        .filter(|v| !v.is_empty() && csv.null_marker.as_deref() != Some(v.as_str()))
        .collect();
    if values.is_empty() {
        return ColumnType::String;
    }
    let all = |pred: &dyn Fn(&str) -> bool| values.iter().all(|v| pred(v));
    static INTEGER: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"^-?(0|[1-9][0-9]{0,17})$").ok());
    static DECIMAL_COMMA: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"^-?[0-9]{1,3}(\.?[0-9]{3})*(,[0-9]+)?$").ok());
    static DECIMAL_POINT: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$").ok());
    let int_pattern = INTEGER.as_ref();
    let float_pattern = match csv.decimal {
        ',' => DECIMAL_COMMA.as_ref(),
        _ => DECIMAL_POINT.as_ref(),
    };
    let leading_zero = |v: &str| {
        let digits = v.trim_start_matches('-');
        digits.len() > 1
            && digits.starts_with('0')
            && !digits.starts_with("0.")
            && !digits.starts_with("0,")
    };
    if all(&|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) {
        return ColumnType::Boolean;
    }
    let format = ValueFormat::of(csv);
    // A declared date format such as `%y%m%d` wins over integers.
    if csv.date_format.is_some() && all(&|v| format.date_format.date(v).is_some()) {
        return ColumnType::Date;
    }
    if let Some(re) = &int_pattern
        && all(&|v| re.is_match(v))
    {
        return ColumnType::Int64;
    }
    // A whole number a float cannot hold exactly (more than 15 digits: an
    // id, a code, beyond i64) stays text rather than be rounded.
    let long_whole = |v: &str| {
        let digits = v.trim_start_matches('-');
        digits.len() > 15 && digits.bytes().all(|b| b.is_ascii_digit())
    };
    if let Some(re) = &float_pattern
        && all(&|v| re.is_match(v) && !leading_zero(v) && !long_whole(v))
        && all(&|v| format.float(v).is_some_and(f64::is_finite))
    {
        return ColumnType::Float64;
    }
    if all(&|v| format.date_format.date(v).is_some()) {
        return ColumnType::Date;
    }
    if all(&|v| format.timestamp(v).is_some()) {
        return ColumnType::Timestamp;
    }
    if all(&|v| format.time_format.time(v).is_some()) {
        return ColumnType::Time;
    }
    ColumnType::String
}

#[cfg(test)]
mod tests {
    use super::*;

    fn italian() -> CsvFormatSpec {
        CsvFormatSpec {
            delimiter: ';',
            header: true,
            quote: '"',
            escape: None,
            encoding: EncodingSpec::Utf8,
            null_marker: None,
            decimal: ',',
            timestamp_format: Some("%d/%m/%Y %H:%M:%S".to_string()),
            date_format: Some("%d/%m/%Y".to_string()),
            time_format: None,
            extension: ".csv".to_string(),
        }
    }

    fn infer(values: &[&str], csv: &CsvFormatSpec) -> ColumnType {
        infer_type(values.iter().map(|v| v.to_string()), csv)
    }

    #[test]
    fn infers_decimal_comma_numbers() {
        assert_eq!(infer(&["35,4", "12", ""], &italian()), ColumnType::Float64);
        assert_eq!(infer(&["1.234,5"], &italian()), ColumnType::Float64);
        assert_eq!(ValueFormat::of(&italian()).float("1.234,5"), Some(1234.5));
    }

    #[test]
    fn keeps_codes_with_leading_zeros_as_text() {
        assert_eq!(infer(&["037006", "058091"], &italian()), ColumnType::String);
        assert_eq!(infer(&["+393471234567"], &italian()), ColumnType::String);
    }

    #[test]
    fn infers_italian_dates_times_and_timestamps() {
        assert_eq!(infer(&["21/11/2026"], &italian()), ColumnType::Date);
        assert_eq!(
            infer(&["21/11/2026 09:05:33"], &italian()),
            ColumnType::Timestamp
        );
        assert_eq!(
            infer(&["9:05:33", "10:00:00"], &italian()),
            ColumnType::Time
        );
    }

    #[test]
    fn yymmdd_dates_when_declared() {
        let csv = CsvFormatSpec {
            date_format: Some("%y%m%d".to_string()),
            ..italian()
        };
        assert_eq!(infer(&["261121", "260101"], &csv), ColumnType::Date);
        let mut days = 0;
        let parsed = ValueFormat::of(&csv).parse("261121", ColumnType::Date, &mut days);
        assert_eq!(parsed, Parsed::Value);
        assert_eq!(
            days,
            (NaiveDate::from_ymd_opt(2026, 11, 21).expect("date") - unix_epoch()).num_days()
        );
    }

    #[test]
    fn times_without_a_leading_zero() {
        let mut us = 0;
        let parsed = ValueFormat::of(&italian()).parse("9:05:33", ColumnType::Time, &mut us);
        assert_eq!(parsed, Parsed::Value);
        assert_eq!(us, (9 * 3600 + 5 * 60 + 33) * 1_000_000);
    }

    fn comma() -> CsvFormatSpec {
        CsvFormatSpec {
            delimiter: ',',
            decimal: '.',
            date_format: None,
            timestamp_format: None,
            ..italian()
        }
    }

    #[test]
    fn values_a_type_cannot_hold_are_invalid_not_changed() {
        let format = ValueFormat::of(&comma());
        let mut out = 0;
        for text in ["1e400", "-1e400", "inf", "NaN"] {
            assert_eq!(
                format.parse(text, ColumnType::Float64, &mut out),
                Parsed::Invalid,
                "{text}"
            );
        }
        assert_eq!(
            format.parse("3e300", ColumnType::Float64, &mut out),
            Parsed::Value
        );
        // Integers beyond what a float holds exactly stay text.
        assert_eq!(
            infer(&["12345678901234567890", "1"], &comma()),
            ColumnType::String
        );
        assert_eq!(
            infer(&["1234567890123456789012"], &comma()),
            ColumnType::String
        );
        assert_eq!(infer(&["1e400", "2"], &comma()), ColumnType::String);
        assert_eq!(infer(&["1.5", "2"], &comma()), ColumnType::Float64);
    }

    #[test]
    fn timestamps_with_an_offset_are_converted_to_utc() {
        let utc = |text: &str, csv: &CsvFormatSpec| {
            let mut micros = 0;
            let parsed = ValueFormat::of(csv).parse(text, ColumnType::Timestamp, &mut micros);
            (parsed == Parsed::Value).then(|| {
                chrono::DateTime::from_timestamp_micros(micros)
                    .expect("in range")
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
        };
        let iso = comma();
        assert_eq!(
            utc("2026-11-20T10:00:00+01:00", &iso).as_deref(),
            Some("2026-11-20 09:00:00")
        );
        assert_eq!(
            utc("2026-11-20T10:00:00Z", &iso).as_deref(),
            Some("2026-11-20 10:00:00")
        );
        assert_eq!(
            utc("2026-11-20 10:00:00", &iso).as_deref(),
            Some("2026-11-20 10:00:00")
        );
        let declared = CsvFormatSpec {
            timestamp_format: Some("%+".to_string()),
            ..comma()
        };
        assert_eq!(
            utc("2026-11-20T10:00:00+01:00", &declared).as_deref(),
            Some("2026-11-20 09:00:00")
        );
        let with_z = CsvFormatSpec {
            timestamp_format: Some("%d/%m/%Y %H:%M %z".to_string()),
            ..comma()
        };
        assert_eq!(
            utc("20/11/2026 10:00 -0500", &with_z).as_deref(),
            Some("2026-11-20 15:00:00")
        );
        assert_eq!(
            infer(&["2026-11-20T10:00:00+01:00"], &iso),
            ColumnType::Timestamp
        );
    }

    #[test]
    fn infers_integers_and_booleans() {
        assert_eq!(infer(&["1", "-20", "0"], &italian()), ColumnType::Int64);
        assert_eq!(infer(&["true", "FALSE"], &italian()), ColumnType::Boolean);
    }

    #[test]
    fn splits_quotes_doubled_quotes_and_escapes() {
        let syntax = Syntax {
            delimiter: b';',
            quote: b'"',
            escape: Some(b'\\'),
        };
        let fields = syntax
            .split(r#"a;"b;c";"say ""hi""";"x\"y";"#)
            .expect("splits");
        assert_eq!(fields, ["a", "b;c", "say \"hi\"", "x\"y", ""]);
        assert!(syntax.split(r#"a;"open"#).is_err());
        let tab = Syntax {
            delimiter: b'\t',
            quote: b'"',
            escape: None,
        };
        assert_eq!(tab.split("1\t2\t").expect("splits"), ["1", "2", ""]);
    }

    #[test]
    fn plain_decimals_parse_exactly_as_the_float_parser() {
        for text in [
            "0",
            "-12",
            "3.75",
            "+0.1",
            "123456.789",
            "9007199254740992",
            ".5",
            "7.",
        ] {
            assert_eq!(
                exact_decimal(text.as_bytes(), b'.', None),
                text.parse().ok(),
                "{text}"
            );
        }
        assert_eq!(exact_decimal(b"1.234,5", b',', Some(b'.')), Some(1234.5));
        assert_eq!(exact_decimal(b"0,1", b',', Some(b'.')), Some(0.1));
        for text in ["1e5", "9007199254740993", "-", "", "1,2", "nan"] {
            assert_eq!(exact_decimal(text.as_bytes(), b'.', None), None, "{text}");
        }
    }

    #[test]
    fn drift_policies() {
        let headers = vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["a".to_string(), "b".to_string(), "c".to_string()],
            vec!["b".to_string()],
        ];
        let (_, err) = reconcile(&headers, SchemaDrift::Fail, true).expect_err("drift");
        assert_eq!(err, "adds `c`");
        let (names, maps) = reconcile(&headers, SchemaDrift::Union, true).expect("union");
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(maps[2], [Some(1)]);
        let (names, maps) = reconcile(&headers, SchemaDrift::IgnoreNew, true).expect("ignore");
        assert_eq!(names, ["a", "b"]);
        assert_eq!(maps[1], [Some(0), Some(1), None]);
    }
}
