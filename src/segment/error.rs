//! What can go wrong in the segment step, naming the table, column or
//! saved model it is about.

/// A problem in the segment step.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// A column named in `segment` is not in the table.
    #[error("column `{column}` is not in table `{table}` (columns: {columns})")]
    MissingColumn {
        /// The column.
        column: String,
        /// The table.
        table: String,
        /// The table's columns.
        columns: String,
    },
    /// A feature column is not numeric.
    #[error("feature `{column}` of table `{table}` is {found}, not a numeric column")]
    NotNumeric {
        /// The column.
        column: String,
        /// The table.
        table: String,
        /// Its type.
        found: String,
    },
    /// Feature values are missing.
    #[error(
        "feature `{column}` has {count} null values in table `{table}`; fill them in SQL (for example `COALESCE({column}, 0)`)"
    )]
    NullFeature {
        /// The column.
        column: String,
        /// The table.
        table: String,
        /// How many.
        count: usize,
    },
    /// The id column repeats a value.
    #[error("id column `{column}` of table `{table}` is not unique: {count} rows share a value")]
    DuplicateId {
        /// The column.
        column: String,
        /// The table.
        table: String,
        /// Rows beyond the first of each value.
        count: usize,
    },
    /// The id column has nulls.
    #[error(
        "id column `{column}` of table `{table}` has {count} null values; every citizen needs an id"
    )]
    NullId {
        /// The column.
        column: String,
        /// The table.
        table: String,
        /// How many.
        count: usize,
    },
    /// Fewer rows than segments.
    #[error("table `{table}` has {rows} rows, fewer than `k` = {k}")]
    TooFewRows {
        /// The table.
        table: String,
        /// Its rows.
        rows: usize,
        /// Segments asked for.
        k: usize,
    },
    /// ln(1 + x) of a value at or below −1.
    #[error("feature `{column}` is in `log1p` but holds {value}; ln(1 + x) needs values above -1")]
    Log1pDomain {
        /// The column.
        column: String,
        /// The first such value.
        value: f64,
    },
    /// A feature holds values no distance can be computed with.
    #[error(
        "feature `{column}` of table `{table}` has {count} value(s) {problem} (e.g. {example:e}); k-means needs finite values of comparable scale: fix or clip them in the SQL, or use `log1p`"
    )]
    FeatureOutOfRange {
        /// The column.
        column: String,
        /// The table.
        table: String,
        /// How many values.
        count: usize,
        /// What is wrong with them.
        problem: &'static str,
        /// One of them.
        example: f64,
    },
    /// The model file's figures could not be written as JSON.
    #[error("cannot write the model file's figures as JSON: {0}")]
    ModelFile(#[source] serde_json::Error),
    /// The model failed to fit.
    #[error("{model} failed: {message}")]
    Model {
        /// `k-means` or `gaussian mixture`.
        model: &'static str,
        /// Why.
        message: String,
    },
    /// `mode: assign` without a saved model.
    #[error(
        "`mode: assign` needs the saved model `{path}`, which does not exist; run once with `mode: refit`"
    )]
    NoSavedModel {
        /// Where it was looked for.
        path: String,
    },
    /// The saved model cannot be read.
    #[error("cannot read the saved model `{path}`: {message}")]
    BadSavedModel {
        /// Where.
        path: String,
        /// Why.
        message: String,
    },
    /// The saved model was fitted on other features.
    #[error(
        "the saved model `{path}` was fitted on features {saved}, the pipeline lists {listed}; `mode: assign` needs the same features"
    )]
    ModelFeatures {
        /// Where.
        path: String,
        /// The model's features.
        saved: String,
        /// The pipeline's.
        listed: String,
    },
    /// Reading or writing the model's store failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// Reading the table failed.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Building the output failed.
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}
