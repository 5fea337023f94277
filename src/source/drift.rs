//! Schema drift: files of one source whose columns changed over time. The
//! source's `schema_drift` says whether that fails the run (naming the
//! first file that differs), keeps the first file's columns, or reads the
//! union of every file's.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::datasource::file_format::FileFormat;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use object_store::ObjectMeta;

use super::SourceError;
use crate::pipeline::{SchemaDrift, backticked};
use crate::plan::SourcePlan;
use crate::storage::{display_object, ensure_store};

/// For each file, where its fields go in the table (`None`: ignored).
pub(super) type Mapping = Vec<Option<usize>>;

/// The table's columns and each file's mapping onto them, by the files'
/// headers and the `schema_drift` policy. An error names the file (by
/// index) and what changed.
pub(super) fn reconcile(
    headers: &[Vec<String>],
    drift: SchemaDrift,
    by_name: bool,
) -> Result<(Vec<String>, Vec<Mapping>), (usize, String)> {
    let mut names: Vec<String> = headers.first().cloned().unwrap_or_default();
    if drift == SchemaDrift::Union {
        for header in headers {
            for name in header {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    let mut mappings = Vec::new();
    for (idx, header) in headers.iter().enumerate() {
        if by_name {
            let added: Vec<String> = header
                .iter()
                .filter(|n| !headers[0].contains(n))
                .cloned()
                .collect();
            let dropped: Vec<String> = headers[0]
                .iter()
                .filter(|n| !header.contains(n))
                .cloned()
                .collect();
            if drift == SchemaDrift::Fail && (!added.is_empty() || !dropped.is_empty()) {
                let mut changes = Vec::new();
                if !added.is_empty() {
                    changes.push(format!("adds {}", backticked(&added)));
                }
                if !dropped.is_empty() {
                    changes.push(format!("drops {}", backticked(&dropped)));
                }
                return Err((idx, changes.join(" and ")));
            }
            mappings.push(
                header
                    .iter()
                    .map(|name| names.iter().position(|n| n == name))
                    .collect(),
            );
        } else {
            if header.len() != names.len() {
                match drift {
                    SchemaDrift::Fail => {
                        return Err((
                            idx,
                            format!("has {} columns instead of {}", header.len(), names.len()),
                        ));
                    }
                    SchemaDrift::Union => {
                        for i in names.len()..header.len() {
                            names.push(format!("column_{}", i + 1));
                        }
                    }
                    SchemaDrift::IgnoreNew => {}
                }
            }
            mappings.push(
                (0..header.len())
                    .map(|i| (i < names.len()).then_some(i))
                    .collect(),
            );
        }
    }
    Ok((names, mappings))
}

/// Compares every file's columns with the first file's, as `schema_drift`
/// says: `fail` names the first file that differs; `ignore_new` returns the
/// first file's columns and `union` every file's columns, to read every
/// file with.
pub(super) async fn compare_file_columns(
    ctx: &SessionContext,
    source: &SourcePlan,
    format: &dyn FileFormat,
    objects: &[ObjectMeta],
) -> Result<Option<SchemaRef>, SourceError> {
    if source.schema.is_some() {
        return Ok(None);
    }
    let store = ensure_store(ctx, &source.location)?;
    let state = ctx.state();
    let mut schemas = Vec::new();
    // File by file, so that a damaged one is named.
    for object in objects {
        let schema = format
            .infer_schema(&state, &store, std::slice::from_ref(object))
            .await
            .map_err(|err| SourceError::File {
                file: display_object(&source.location, &object.location),
                reason: format!(
                    "cannot be read as {}: {err}",
                    format.get_ext().trim_start_matches('.')
                ),
            })?;
        schemas.push(schema);
    }
    if objects.len() < 2 {
        return Ok(None);
    }
    let columns: Vec<Vec<String>> = schemas
        .iter()
        .map(|schema| schema.fields().iter().map(|f| f.name().clone()).collect())
        .collect();
    reconcile(&columns, source.schema_drift, true).map_err(|(idx, reason)| SourceError::Drift {
        source_name: source.name.clone(),
        file: display_object(&source.location, &objects[idx].location),
        first: display_object(&source.location, &objects[0].location),
        reason,
    })?;
    // A column some file lacks is null there, so every column may be null.
    let nullable = |schema: &Schema| {
        Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ))
    };
    Ok(match source.schema_drift {
        SchemaDrift::Fail => None,
        SchemaDrift::IgnoreNew => Some(nullable(&schemas[0])),
        SchemaDrift::Union => {
            let merged = Schema::try_merge(schemas.iter().map(|s| s.as_ref().clone()))
                .map_err(DataFusionError::from)?;
            Some(nullable(&merged))
        }
    })
}
