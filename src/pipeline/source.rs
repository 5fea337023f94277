//! The `sources` section as written: where a source is, its format and
//! options, its schema, and what unreadable lines, changed inputs and
//! schema drift do.

use serde::Deserialize;

/// One entry of `sources`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A file, a folder (ending in `/`) or a URL (`file://`, `s3://`);
    /// placeholders allowed. Relative paths are resolved against the
    /// directory civica runs in.
    pub path: String,
    /// How the files are written.
    pub format: FormatSpec,
    /// Column names and types, in file order. Inferred from the data when absent.
    #[serde(default)]
    pub schema: Option<SchemaSpec>,
    /// What a line that cannot be parsed does: `quarantine` keeps it in the
    /// table `<source>__rejected`; `fail` fails the run. Default `quarantine`.
    /// Access logs and CSV.
    #[serde(default)]
    pub on_error: OnError,
    /// The share of rejected lines above which the run fails, from 0 to 1.
    /// Default 0.05.
    #[serde(default = "default_max_rejected_ratio")]
    pub max_rejected_ratio: f64,
    /// What a file whose columns differ from the first file's does (CSV):
    /// `fail`, `union` or `ignore_new`. Default `fail`.
    #[serde(default)]
    pub schema_drift: SchemaDrift,
    /// Read only the files no successful run has read yet (state kept in
    /// the runs folder). Default `false`.
    #[serde(default)]
    pub incremental: bool,
    /// What an incremental source does with a file whose bytes changed
    /// after a run read it: `fail` stops the run naming it; `reread` reads
    /// it again, with every file of the run that read it, and replaces the
    /// rows that run appended; `ignore` keeps what was read and logs the
    /// change. Default `fail`.
    #[serde(default)]
    pub on_changed_input: OnChangedInput,
    /// Columns replaced by their keyed pseudonym (`pseudonym(kind, value)`)
    /// before any step reads the source: a list of columns (each its own
    /// kind), or a mapping of column to kind (`{ codice_fiscale: cf }`), so
    /// that columns of two sources holding the same identifier give the
    /// same pseudonym. Default: none.
    #[serde(default)]
    pub pseudonymize: Pseudonymize,
    /// How sensitive columns are: a mapping of column to `identifier`,
    /// `quasi_identifier`, `contact`, `special` or `none`. civica tags
    /// more by content (a codice fiscale, an e-mail, a phone number, an IP
    /// address, an IBAN in a sample of the values); `none` clears that.
    /// An output may carry a tagged column only when it declares it in
    /// `contains_personal_data`. Default: none declared.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, crate::pipeline::Sensitivity>,
}

/// A source's `pseudonymize:` columns, each with its identifier kind, in
/// the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pseudonymize(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pseudonymize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ColumnsVisitor;
        impl<'de> serde::de::Visitor<'de> for ColumnsVisitor {
            type Value = Pseudonymize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of columns, or a mapping of column to identifier kind")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut columns = Vec::new();
                while let Some(column) = seq.next_element::<String>()? {
                    columns.push((column.clone(), column));
                }
                Ok(Pseudonymize(columns))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut columns = Vec::new();
                while let Some((column, kind)) = map.next_entry::<String, String>()? {
                    columns.push((column, kind));
                }
                Ok(Pseudonymize(columns))
            }
        }
        deserializer.deserialize_any(ColumnsVisitor)
    }
}

/// What an incremental source does with a file that changed after it was read.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnChangedInput {
    /// Stop the run, naming the file and the choices.
    #[default]
    Fail,
    /// Read it again and replace what the run that read it appended.
    Reread,
    /// Keep what was read; log the change.
    Ignore,
}

/// What a file whose columns differ from the source's first file does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SchemaDrift {
    /// Fail, naming the file and the columns added or dropped.
    #[default]
    Fail,
    /// The table has every column of every file; missing ones are null.
    Union,
    /// The table has the first file's columns: new ones are ignored,
    /// dropped ones are null.
    IgnoreNew,
}

/// How the bytes of a text file are decoded.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum EncodingSpec {
    /// UTF-8 (a byte-order mark is skipped).
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// Windows-1252, the superset of Latin-1 that Italian desktop software
    /// writes.
    #[serde(
        rename = "windows-1252",
        alias = "latin-1",
        alias = "latin1",
        alias = "iso-8859-1",
        alias = "cp1252"
    )]
    Windows1252,
}

/// What a line that cannot be parsed does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Keep it in `<source>__rejected` with its file, line and reason.
    #[default]
    Quarantine,
    /// Fail the run, naming the file, the line and the reason.
    Fail,
}

/// The file format of a source, tagged by `type`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FormatSpec {
    /// Delimited text.
    Csv(CsvFormatSpec),
    /// One JSON object per line.
    Ndjson(NdjsonFormatSpec),
    /// Apache Parquet.
    Parquet(ParquetFormatSpec),
    /// Web-server access logs (Apache / Nginx).
    AccessLog(AccessLogFormatSpec),
}

// Adding a source format: see "Adding a source format" in ARCHITECTURE.md.
// Here: a variant with its options struct (`deny_unknown_fields`), and its
// arm in `name`, `extension` and `has_quarantine`.
impl FormatSpec {
    /// The format as `validate` and the run summary name it:
    /// `csv`, `ndjson`, `parquet`, `access_log/<flavor>` or
    /// `access_log/pattern`.
    pub fn name(&self) -> String {
        match self {
            FormatSpec::Csv(_) => "csv".to_string(),
            FormatSpec::Ndjson(_) => "ndjson".to_string(),
            FormatSpec::Parquet(_) => "parquet".to_string(),
            FormatSpec::AccessLog(log) if log.pattern.is_some() => "access_log/pattern".to_string(),
            FormatSpec::AccessLog(log) => format!("access_log/{}", log.flavor.name()),
        }
    }

    /// The file ending a source's folder is listed with (empty: any file).
    pub fn extension(&self) -> &str {
        match self {
            FormatSpec::Csv(csv) => &csv.extension,
            FormatSpec::Ndjson(json) => &json.extension,
            FormatSpec::Parquet(parquet) => &parquet.extension,
            FormatSpec::AccessLog(log) => log.extension.as_deref().unwrap_or_default(),
        }
    }

    /// Whether lines of this format can be unreadable one by one, and so
    /// go to a quarantine table (`<source>__rejected`) instead of failing
    /// the whole file. NDJSON and Parquet files are read whole.
    pub fn has_quarantine(&self) -> bool {
        match self {
            FormatSpec::Csv(_) | FormatSpec::AccessLog(_) => true,
            FormatSpec::Ndjson(_) | FormatSpec::Parquet(_) => false,
        }
    }
}

/// Options of `format: { type: csv }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvFormatSpec {
    /// Field separator, one character. Default `,`.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first line holds the column names. Default `true`.
    #[serde(default = "default_true")]
    pub header: bool,
    /// Quote character. Default `"`.
    #[serde(default = "default_quote")]
    pub quote: char,
    /// Escape character inside quoted fields, e.g. `\\`. Default: none (a
    /// quote inside a quoted field is doubled).
    #[serde(default)]
    pub escape: Option<char>,
    /// `utf-8` or `windows-1252` (also `latin-1`). Default `utf-8`.
    #[serde(default)]
    pub encoding: EncodingSpec,
    /// A text that means null (besides the empty field), e.g. `\\N` or
    /// `ND`. Default: none. (A bare `null` key is YAML's null, so the key is
    /// `null_marker`; a quoted `"null"` key is accepted too.)
    #[serde(default, alias = "null")]
    pub null_marker: Option<String>,
    /// Decimal separator of numbers: `.` or `,`. Default `.`.
    #[serde(default = "default_decimal")]
    pub decimal: char,
    /// chrono format of timestamp columns, e.g. `%d/%m/%Y %H:%M:%S`.
    /// Default: ISO 8601 only.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// chrono format of date columns, e.g. `%d/%m/%Y` or `%y%m%d`.
    /// Default: ISO 8601 only.
    #[serde(default)]
    pub date_format: Option<String>,
    /// chrono format of time columns. Default `%H:%M:%S` (hours may have
    /// one digit).
    #[serde(default)]
    pub time_format: Option<String>,
    /// File name ending to read in a folder. Default `.csv`.
    #[serde(default = "default_csv_extension")]
    pub extension: String,
}

/// Options of `format: { type: ndjson }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NdjsonFormatSpec {
    /// File name ending to read in a folder. Default `.json`.
    #[serde(default = "default_json_extension")]
    pub extension: String,
}

/// Options of `format: { type: parquet }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParquetFormatSpec {
    /// File name ending to read in a folder. Default `.parquet`.
    #[serde(default = "default_parquet_extension")]
    pub extension: String,
}

/// Options of `format: { type: access_log }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLogFormatSpec {
    /// `common` or `combined`. Default `combined`.
    #[serde(default)]
    pub flavor: LogFlavor,
    /// A custom layout instead of `flavor`: an Nginx `log_format` with
    /// `$variables`, or a regular expression with named groups.
    #[serde(default)]
    pub pattern: Option<String>,
    /// File name ending to read in a folder; `.gz`, `.zst`, `.bz2` and `.xz`
    /// files are decompressed. Default: every file.
    #[serde(default)]
    pub extension: Option<String>,
    /// How client addresses are masked as lines are read, before they
    /// reach a table, the quarantine or a message: `16` keeps an IPv4
    /// address's first 16 bits (`a.b.0.0`), `24` its first 24
    /// (`a.b.c.0`); IPv6 addresses keep their first 48 bits either way.
    /// `none` keeps addresses whole. Default `16`.
    #[serde(default)]
    pub ip_mask: IpMask,
}

/// How much of a client address an access-log source keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpMask {
    /// IPv4 /16, IPv6 /48.
    #[default]
    Prefix16,
    /// IPv4 /24, IPv6 /48.
    Prefix24,
    /// Addresses as written: only when declared.
    None,
}

impl IpMask {
    /// The mask as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            IpMask::Prefix16 => "16",
            IpMask::Prefix24 => "24",
            IpMask::None => "none",
        }
    }
}

impl<'de> Deserialize<'de> for IpMask {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaskVisitor;
        impl serde::de::Visitor<'_> for MaskVisitor {
            type Value = IpMask;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`16`, `24` or `none`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IpMask, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IpMask, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IpMask, E> {
                match v {
                    "16" => Ok(IpMask::Prefix16),
                    "24" => Ok(IpMask::Prefix24),
                    "none" => Ok(IpMask::None),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(MaskVisitor)
    }
}

/// The layout of an access-log line.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFlavor {
    /// NCSA Common Log Format: no referer or user agent.
    Common,
    /// Combined Log Format: Common plus referer and user agent.
    #[default]
    Combined,
}

impl LogFlavor {
    /// The flavor as written in the YAML.
    pub fn name(self) -> &'static str {
        match self {
            LogFlavor::Common => "common",
            LogFlavor::Combined => "combined",
        }
    }
}

/// Column names and types in file order (a YAML mapping keeps its order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaSpec(pub Vec<(String, ColumnType)>);

impl<'de> Deserialize<'de> for SchemaSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SchemaVisitor;
        impl<'de> serde::de::Visitor<'de> for SchemaVisitor {
            type Value = SchemaSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of column name to type")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SchemaSpec, A::Error> {
                let mut columns = Vec::new();
                while let Some((name, ty)) = map.next_entry::<String, ColumnType>()? {
                    columns.push((name, ty));
                }
                Ok(SchemaSpec(columns))
            }
        }
        deserializer.deserialize_map(SchemaVisitor)
    }
}

/// The type of a column in an explicit `schema`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Text.
    String,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// `true` / `false`.
    Boolean,
    /// A calendar date.
    Date,
    /// A date and time without zone.
    Timestamp,
    /// A time of day.
    Time,
}

fn default_delimiter() -> char {
    ','
}
fn default_quote() -> char {
    '"'
}
fn default_decimal() -> char {
    '.'
}
fn default_csv_extension() -> String {
    ".csv".to_string()
}
fn default_json_extension() -> String {
    ".json".to_string()
}
fn default_parquet_extension() -> String {
    ".parquet".to_string()
}
fn default_max_rejected_ratio() -> f64 {
    0.05
}

fn default_true() -> bool {
    true
}
