//! Registering sources as DataFusion tables, one file per format.

pub mod access_log;
mod csv;

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::prelude::{JsonReadOptions, ParquetReadOptions, SessionContext};

use crate::spec::{FormatSpec, SchemaSpec, SourcePlan, arrow_type};
use crate::storage::{StorageError, list_objects};

/// What registering a source found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceStats {
    /// Files read.
    pub files: usize,
    /// Their total size in bytes (compressed where compressed).
    pub bytes: u64,
    /// Rows loaded, where known without a scan.
    pub rows: Option<usize>,
    /// Lines that could not be parsed.
    pub rejected: usize,
    /// The first rejected lines: `file:line: reason`.
    pub rejected_samples: Vec<String>,
}

/// A problem registering a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Listing or reading the files failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Nothing matched the location.
    #[error("no `{extension}` files at `{location}`")]
    NoFiles {
        /// The location.
        location: String,
        /// The file ending looked for (empty: any).
        extension: String,
    },
    /// The explicit schema does not fit the file.
    #[error("`schema` lists {declared} columns but `{file}` has {found}: {columns}")]
    SchemaMismatch {
        /// Columns in the YAML.
        declared: usize,
        /// Columns in the file.
        found: usize,
        /// The file.
        file: String,
        /// The file's columns.
        columns: String,
    },
    /// A file could not be read or decoded.
    #[error("cannot read `{file}`: {reason}")]
    File {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// DataFusion refused the table.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
}

/// Registers a source on the session under its name.
pub async fn register_source(
    ctx: &SessionContext,
    source: &SourcePlan,
) -> Result<SourceStats, SourceError> {
    let extension = match &source.format {
        FormatSpec::Csv(csv) => csv.extension.clone(),
        FormatSpec::Ndjson(json) => json.extension.clone(),
        FormatSpec::Parquet(parquet) => parquet.extension.clone(),
        FormatSpec::AccessLog(log) => log.extension.clone().unwrap_or_default(),
    };
    let objects = list_objects(ctx, &source.location, &extension).await?;
    if objects.is_empty() {
        return Err(SourceError::NoFiles {
            location: source.location.clone(),
            extension,
        });
    }
    let mut stats = SourceStats {
        files: objects.len(),
        bytes: objects.iter().map(|o| o.size).sum(),
        ..SourceStats::default()
    };
    let schema = source.schema.as_ref().map(explicit_schema);
    match &source.format {
        FormatSpec::Csv(csv) => csv::register_csv(ctx, source, csv, &objects).await?,
        FormatSpec::Ndjson(json) => {
            let mut options = JsonReadOptions::default().file_extension(&json.extension);
            if let Some(schema) = &schema {
                options = options.schema(schema);
            }
            ctx.register_json(&source.name, &source.location, options)
                .await?;
        }
        FormatSpec::Parquet(parquet) => {
            let mut options = ParquetReadOptions::default().file_extension(&parquet.extension);
            if let Some(schema) = &schema {
                options = options.schema(schema);
            }
            ctx.register_parquet(&source.name, &source.location, options)
                .await?;
        }
        FormatSpec::AccessLog(log) => {
            let loaded =
                access_log::load_access_logs(ctx, &source.location, &objects, log.flavor).await?;
            stats.rows = Some(loaded.rows);
            stats.rejected = loaded.rejected;
            stats.rejected_samples = loaded.rejected_samples;
            ctx.register_table(source.name.as_str(), Arc::new(loaded.table))?;
            if let Some(rejected) = source.rejected_table() {
                ctx.register_table(rejected.as_str(), Arc::new(loaded.rejected_table))?;
            }
        }
    }
    Ok(stats)
}

/// The Arrow schema of an explicit `schema`; every column may be null.
pub fn explicit_schema(spec: &SchemaSpec) -> Schema {
    Schema::new(
        spec.0
            .iter()
            .map(|(name, ty)| Field::new(name, arrow_type(*ty), true))
            .collect::<Vec<_>>(),
    )
}
