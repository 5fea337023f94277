//! The pipeline YAML as written: plain serde types, one per section entry.
//!
//! Every struct denies unknown keys and every closed set is an enum, so a
//! misspelled key or value is an error that names it and its line. Nothing
//! here is resolved: placeholders, paths and references are checked when
//! the [`Plan`](super::Plan) is built.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::yaml::Pos;

/// A value with the position where it was written, and the positions of
/// the keys below it (`format.delimiter`, `features[2]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it starts in the pipeline file.
    pub pos: Pos,
    /// Positions of the values below it, by dotted path.
    pub fields: BTreeMap<String, Pos>,
}

impl<T> Located<T> {
    /// A value with no inner positions.
    pub fn new(value: T, pos: Pos) -> Self {
        Located {
            value,
            pos,
            fields: BTreeMap::new(),
        }
    }

    /// Where the value at `path` below this one was written, or this value's position.
    pub fn pos_of(&self, path: &str) -> Pos {
        self.fields.get(path).copied().unwrap_or(self.pos)
    }
}

/// A whole pipeline file, assembled section by section from the YAML.
#[derive(Debug, Clone, Default)]
pub struct PipelineSpec {
    /// `name`: the pipeline's name, used in logs and outputs. Required.
    pub name: Option<Located<String>>,
    /// `description`: free text for people reading the pipeline.
    pub description: Option<String>,
    /// `runs`: the folder run manifests are written to.
    pub runs: Option<Located<String>>,
    /// `vars`: default values for `{{ name }}` placeholders.
    pub vars: Vec<(Located<String>, String)>,
    /// `storage`: object-store client settings (never credentials).
    pub storage: StorageSpec,
    /// `sources`: input tables by name.
    pub sources: Vec<(Located<String>, Located<SourceSpec>)>,
    /// `transforms`: SQL steps, each producing a table.
    pub transforms: Vec<Located<TransformSpec>>,
    /// `segment`: the clustering step.
    pub segment: Option<Located<SegmentSpec>>,
    /// `outputs`: tables written as Parquet.
    pub outputs: Vec<Located<OutputSpec>>,
    /// `resources`: memory, spill folder and parallelism.
    pub resources: Option<Located<ResourcesSpec>>,
    /// `checks`: data-quality checks by table.
    pub checks: Vec<(Located<String>, Vec<Located<CheckSpec>>)>,
}

/// The `storage` section: how object-store clients connect and retry.
/// Credentials are never read from here: they come from the environment.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000`. Default:
    /// `AWS_ENDPOINT`, else AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allow plain `http://` endpoints. Default: `AWS_ALLOW_HTTP`, else false.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// S3 region. Default: `AWS_REGION`.
    #[serde(default)]
    pub region: Option<String>,
    /// Seconds a request may take. Default 30.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Seconds to connect. Default 5.
    #[serde(default)]
    pub connect_timeout_s: Option<f64>,
    /// Retries of a failed request. Default 10.
    #[serde(default)]
    pub max_retries: Option<usize>,
    /// Seconds after which a request is not retried any more. Default 180.
    #[serde(default)]
    pub retry_timeout_s: Option<f64>,
    /// First backoff between retries, in milliseconds (doubling). Default 100.
    #[serde(default)]
    pub backoff_initial_ms: Option<u64>,
    /// Longest backoff, in seconds. Default 15.
    #[serde(default)]
    pub backoff_max_s: Option<f64>,
}

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
// arm in `name` and `has_quarantine`.
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

/// One entry of `transforms`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// The name of the table the step produces.
    pub name: String,
    /// The SQL file, relative to the pipeline file's directory. Placeholders
    /// inside the SQL are filled like those in paths.
    pub sql: String,
}

/// The `segment` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    /// The name of the per-citizen assignments table. Default `segments`.
    #[serde(default = "default_segments_name")]
    pub name: String,
    /// The name of the per-segment profile table. Default `segment_profiles`.
    #[serde(default = "default_profiles_name")]
    pub profiles: String,
    /// The name of the table of quality figures, one row per `k` tried.
    /// Default `segment_quality`.
    #[serde(default = "default_quality_name")]
    pub quality: String,
    /// The name of the table of moves between the previous run's segments
    /// and this run's. Default `segment_migrations`.
    #[serde(default = "default_migrations_name")]
    pub migrations: String,
    /// The table holding one row per citizen.
    pub from: String,
    /// The column that identifies a citizen; its values must be unique.
    pub id: String,
    /// Numeric columns the model clusters on.
    pub features: Vec<String>,
    /// What to do with null feature values: `median` or `zero` fill them,
    /// `drop` leaves the citizen without a segment. Without it a null
    /// feature stops the run, naming the column.
    #[serde(default)]
    pub impute: Option<Impute>,
    /// Features replaced by ln(1 + x) before scaling, for skewed counts.
    #[serde(default)]
    pub log1p: Vec<String>,
    /// How features are scaled before fitting. Default `standard`.
    #[serde(default)]
    pub scaling: Scaling,
    /// Plain names of features for the generated segment labels, in
    /// Italian and English. Default: the column name.
    #[serde(default)]
    pub feature_names: BTreeMap<String, FeatureName>,
    /// The clustering model, tagged by `type`.
    pub model: ModelSpec,
    /// Where the fitted model is saved (JSON) and read back by the next
    /// run. Default: `<name>_model.json` beside the folder of the `segments`
    /// output; without such an output the model is not kept.
    #[serde(default)]
    pub model_path: Option<String>,
}

/// A feature's plain name in the generated labels.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureName {
    /// In Italian.
    pub it: String,
    /// In English.
    pub en: String,
}

/// Feature scaling before the model sees the data.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Subtract the mean, divide by the standard deviation.
    #[default]
    Standard,
    /// Map the minimum to 0 and the maximum to 1.
    Minmax,
    /// Subtract the median, divide by the interquartile range.
    Robust,
    /// Use the values as they are.
    None,
}

/// How null feature values are handled.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    /// The feature's median over the non-null values.
    Median,
    /// Zero.
    Zero,
    /// The citizen is left out of the fit and gets no segment.
    Drop,
}

/// The clustering model, tagged by `type`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelSpec {
    /// k-means: k-means++ initialisation and Lloyd iterations.
    Kmeans(KmeansSpec),
    /// A Gaussian mixture fitted by expectation-maximisation (linfa).
    Gmm(GmmSpec),
}

impl ModelSpec {
    /// Whether the run refits or assigns.
    pub fn mode(&self) -> ModelMode {
        match self {
            ModelSpec::Kmeans(m) => m.mode,
            ModelSpec::Gmm(m) => m.mode,
        }
    }
}

/// Options of `model: { type: kmeans }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KmeansSpec {
    /// Number of segments, at least 2, or `auto` to choose it by silhouette
    /// within `k_range`. Required.
    pub k: KChoice,
    /// The smallest and largest `k` tried by `k: auto`. Default `[2, 8]`.
    #[serde(default)]
    pub k_range: Option<Vec<i64>>,
    /// Random seed; the same seed and data give the same segments. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Independent initialisations; the best fit is kept. Default 3.
    #[serde(default = "default_n_init")]
    pub n_init: i64,
    /// Iteration cap per initialisation. Default 300.
    #[serde(default = "default_max_iter")]
    pub max_iter: i64,
    /// Convergence tolerance relative to the mean variance of the scaled
    /// features, as scikit-learn's `tol`. Default 1e-4.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Arithmetic of the fit: `float32` (faster, half the memory) or
    /// `float64`. Default `float32`.
    #[serde(default)]
    pub precision: Precision,
    /// `refit` fits a new model and keeps segment ids stable against the
    /// saved one; `assign` places citizens in the saved model's segments.
    /// Default `refit`.
    #[serde(default)]
    pub mode: ModelMode,
    /// Initial centroids instead of k-means++: `k` lists of one value per
    /// feature, in scaled units (scikit-learn's `init=array`). Used for
    /// comparisons and reproductions; one initialisation. Default none.
    #[serde(default)]
    pub init: Option<Vec<Vec<f64>>>,
}

/// Options of `model: { type: gmm }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GmmSpec {
    /// Number of components, at least 2, or `auto` (by silhouette within
    /// `k_range`). Required.
    pub k: KChoice,
    /// The smallest and largest `k` tried by `k: auto`. Default `[2, 8]`.
    #[serde(default)]
    pub k_range: Option<Vec<i64>>,
    /// Random seed. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Independent initialisations; the best likelihood is kept. Default 3.
    #[serde(default = "default_n_init")]
    pub n_init: i64,
    /// Iteration cap per initialisation. Default 300.
    #[serde(default = "default_max_iter")]
    pub max_iter: i64,
    /// Stop when the lower bound of the likelihood gains less. Default 1e-4.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// `refit` or `assign`, as for k-means. Default `refit`.
    #[serde(default)]
    pub mode: ModelMode,
}

/// A number of segments, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KChoice {
    /// This many.
    Fixed(i64),
    /// Chosen by silhouette.
    Auto,
}

impl<'de> Deserialize<'de> for KChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KVisitor;
        impl serde::de::Visitor<'_> for KVisitor {
            type Value = KChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or `auto`")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KChoice, E> {
                Ok(KChoice::Fixed(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KChoice, E> {
                Ok(KChoice::Fixed(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KChoice, E> {
                match v {
                    "auto" => Ok(KChoice::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(KVisitor)
    }
}

/// Floating-point width of a fit.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    Float32,
    /// 64-bit floats.
    Float64,
}

/// Whether a run fits a model or reuses the saved one.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelMode {
    /// Fit a new model; keep ids stable against the saved model.
    #[default]
    Refit,
    /// Assign citizens to the saved model's segments without fitting.
    Assign,
}

/// The `resources` section: what a run may use. The command line's
/// `--memory-limit`, `--spill-dir` and `--target-partitions` win.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    /// Memory for DataFusion's operators: `512MiB`, `2GiB`, `1.5GB`.
    pub memory_limit: Option<String>,
    /// Where operators spill when the limit is reached.
    pub spill_dir: Option<String>,
    /// Partitions per query. Default: the number of cores.
    pub target_partitions: Option<usize>,
}

/// One entry of `outputs`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The table to write: a source, a transform or a segment table.
    pub table: String,
    /// The folder the Parquet file goes to; placeholders allowed.
    pub path: String,
    /// `overwrite` (default): the folder holds this run's file only;
    /// `append`: this run's file is added beside the earlier ones;
    /// `overwrite_partition`: the partitions this run writes are replaced,
    /// the others kept.
    #[serde(default)]
    pub mode: OutputMode,
    /// Columns that split the output into Hive-style folders
    /// (`ds=2026-11-21/part-00000.parquet`), in order; the files do not
    /// repeat them.
    #[serde(default)]
    pub partition_by: Vec<String>,
}

/// How an output's folder changes when a run publishes.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// This run's file replaces the folder's files.
    #[default]
    Overwrite,
    /// This run's file is added as `part-<run_id>.parquet`.
    Append,
    /// The partitions this run writes replace the same partitions; the
    /// others are kept. Needs `partition_by`.
    OverwritePartition,
}

/// One data-quality check of a table, as written under `checks.<table>`.
/// Which keys apply depends on `type`; the plan says which are missing or
/// do not apply.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// What is checked.
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// A name for reports. Default: the type and the column.
    pub name: Option<String>,
    /// The column checked.
    pub column: Option<String>,
    /// The columns checked together (`unique` only).
    pub columns: Option<Vec<String>>,
    /// The allowed values (`accepted_values`).
    pub values: Option<Vec<Literal>>,
    /// The lowest allowed value (`range`) or row count (`row_count`).
    pub min: Option<Literal>,
    /// The highest allowed value (`range`) or row count (`row_count`).
    pub max: Option<Literal>,
    /// How old the newest row may be (`freshness`): `36h`, `2d`, `90m`.
    pub max_age: Option<String>,
    /// The table whose keys must exist (`relationship`).
    pub to: Option<String>,
    /// The column of `to` (`relationship`). Default: `column`.
    pub to_column: Option<String>,
    /// A query returning the failing rows (`sql`).
    pub query: Option<String>,
    /// A file holding that query, relative to the pipeline (`sql`).
    pub file: Option<String>,
    /// The column whose values identify failing rows in the results.
    pub key: Option<String>,
    /// `error` blocks the publish; `warn` is reported only.
    #[serde(default)]
    pub severity: Severity,
    /// Failing rows tolerated, as a share of the table's rows. Default 0.
    pub max_failing_ratio: Option<f64>,
}

/// The kinds of check.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// No nulls in `column`.
    NotNull,
    /// No value of `column` (or `columns`) twice.
    Unique,
    /// `column` only takes `values`.
    AcceptedValues,
    /// `column` between `min` and `max`.
    Range,
    /// The table has between `min` and `max` rows.
    RowCount,
    /// The newest `column` is at most `max_age` before the end of the run date.
    Freshness,
    /// Every `column` exists in `to.to_column`.
    Relationship,
    /// A query returning failing rows.
    Sql,
}

impl CheckKind {
    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::NotNull => "not_null",
            CheckKind::Unique => "unique",
            CheckKind::AcceptedValues => "accepted_values",
            CheckKind::Range => "range",
            CheckKind::RowCount => "row_count",
            CheckKind::Freshness => "freshness",
            CheckKind::Relationship => "relationship",
            CheckKind::Sql => "sql",
        }
    }
}

/// What a failing check does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Block the publish; the run exits with code 3.
    #[default]
    Error,
    /// Report it and publish anyway.
    Warn,
}

impl Severity {
    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// A YAML scalar used as an SQL literal: a number, a string or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number.
    Number(f64),
    /// A string (also dates and timestamps).
    Text(String),
    /// `true` or `false`.
    Bool(bool),
}

impl Literal {
    /// The literal in SQL.
    pub fn sql(&self) -> String {
        match self {
            Literal::Number(x) => format!("{x}"),
            Literal::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Literal::Bool(b) => b.to_string(),
        }
    }

    /// The value as text, as `CAST(… AS VARCHAR)` would give it.
    pub fn text(&self) -> String {
        match self {
            Literal::Number(x) => format!("{x}"),
            Literal::Text(s) => s.clone(),
            Literal::Bool(b) => b.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Literal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LiteralVisitor;
        impl serde::de::Visitor<'_> for LiteralVisitor {
            type Value = Literal;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, a string or a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Literal, E> {
                Ok(Literal::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Literal, E> {
                Ok(Literal::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Literal, E> {
                Ok(Literal::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Literal, E> {
                Ok(Literal::Number(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Literal, E> {
                Ok(Literal::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(LiteralVisitor)
    }
}

fn default_true() -> bool {
    true
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
fn default_segments_name() -> String {
    "segments".to_string()
}
fn default_profiles_name() -> String {
    "segment_profiles".to_string()
}
fn default_max_rejected_ratio() -> f64 {
    0.05
}
fn default_quality_name() -> String {
    "segment_quality".to_string()
}
fn default_migrations_name() -> String {
    "segment_migrations".to_string()
}
fn default_seed() -> u64 {
    42
}
fn default_n_init() -> i64 {
    3
}
fn default_max_iter() -> i64 {
    300
}
fn default_tolerance() -> f64 {
    1e-4
}
