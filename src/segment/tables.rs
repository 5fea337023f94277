//! The segment step's tables: their schemas (registered empty at planning
//! time so later steps can be planned), the `segments`, `segment_quality`
//! and `segment_migrations` tables, and the validation of the input's columns.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::prelude::SessionContext;

use super::SegmentError;
use super::disclosure::suppressed_cells;
use super::explain::profile_schema;
use super::kmeans::Assignment;
use super::model::model_name;
use super::quality::FitQuality;
use crate::pipeline::backticked;
use crate::plan::SegmentPlan;

/// Checks the `from` table's columns against the segment settings, before any data is read.
pub fn validate_segment_columns(plan: &SegmentPlan, schema: &DFSchema) -> Vec<SegmentError> {
    let mut problems = Vec::new();
    let fields = schema.fields();
    let columns = || {
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        backticked(&names)
    };
    let find = |name: &str| fields.iter().find(|f| f.name() == name);
    if find(&plan.id).is_none() {
        problems.push(SegmentError::MissingColumn {
            column: plan.id.clone(),
            table: plan.from.clone(),
            columns: columns(),
        });
    }
    for feature in &plan.features {
        match find(feature) {
            None => problems.push(SegmentError::MissingColumn {
                column: feature.clone(),
                table: plan.from.clone(),
                columns: columns(),
            }),
            Some(field) if !field.data_type().is_numeric() => {
                problems.push(SegmentError::NotNumeric {
                    column: feature.clone(),
                    table: plan.from.clone(),
                    found: field.data_type().to_string(),
                })
            }
            Some(_) => {}
        }
    }
    problems
}

/// The schemas of the tables the step writes, given the id column's type:
/// segments, profiles, quality, migrations.
pub fn output_schemas(plan: &SegmentPlan, id_type: &DataType) -> [SchemaRef; 4] {
    let segments = Schema::new(vec![
        Field::new(&plan.id, id_type.clone(), false),
        Field::new("segment", DataType::Int32, false),
        Field::new("distance", DataType::Float64, false),
        Field::new("second_segment", DataType::Int32, false),
        Field::new("margin", DataType::Float64, false),
    ]);
    let quality = Schema::new(vec![
        Field::new("k", DataType::Int32, false),
        Field::new("chosen", DataType::Boolean, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("inertia", DataType::Float64, false),
        Field::new("silhouette", DataType::Float64, true),
        Field::new("davies_bouldin", DataType::Float64, false),
        Field::new("iterations", DataType::Int64, false),
        Field::new("converged", DataType::Boolean, false),
        Field::new("fit_seconds", DataType::Float64, false),
    ]);
    let migrations = Schema::new(vec![
        Field::new("previous_segment", DataType::Int32, false),
        Field::new("segment", DataType::Int32, false),
        Field::new("citizens", DataType::Int64, true),
        Field::new("suppressed", DataType::Boolean, false),
    ]);
    [
        Arc::new(segments),
        profile_schema(plan),
        Arc::new(quality),
        Arc::new(migrations),
    ]
}

/// The per-citizen table: id, segment, distance, second segment, margin
/// (how much farther the second segment's centroid is).
pub(super) fn segment_table(
    plan: &SegmentPlan,
    ids: &ArrayRef,
    assignment: &Assignment,
    segment_ids: &[i32],
) -> Result<RecordBatch, SegmentError> {
    let [schema, ..] = output_schemas(plan, ids.data_type());
    let id_of = |labels: &[usize]| -> ArrayRef {
        Arc::new(
            labels
                .iter()
                .map(|&l| segment_ids[l])
                .collect::<Int32Array>(),
        )
    };
    let margin: Float64Array = assignment
        .second_distances
        .iter()
        .zip(&assignment.distances)
        .map(|(second, own)| Some(second - own))
        .collect();
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::clone(ids),
            id_of(&assignment.labels),
            Arc::new(Float64Array::from(assignment.distances.clone())),
            id_of(&assignment.second),
            Arc::new(margin),
        ],
    )?)
}

pub(super) fn quality_table(
    plan: &SegmentPlan,
    tried: &[FitQuality],
    rows: usize,
) -> Result<RecordBatch, SegmentError> {
    let [_, _, schema, _] = output_schemas(plan, &DataType::Int64);
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(tried.iter().map(|q| q.k as i32).collect::<Int32Array>()),
            Arc::new(
                tried
                    .iter()
                    .map(|q| Some(q.chosen))
                    .collect::<BooleanArray>(),
            ),
            Arc::new(
                tried
                    .iter()
                    .map(|_| Some(model_name(plan)))
                    .collect::<datafusion::arrow::array::StringArray>(),
            ),
            Arc::new(tried.iter().map(|_| rows as i64).collect::<Int64Array>()),
            Arc::new(tried.iter().map(|q| q.inertia).collect::<Float64Array>()),
            Arc::new(tried.iter().map(|q| q.silhouette).collect::<Float64Array>()),
            Arc::new(
                tried
                    .iter()
                    .map(|q| q.davies_bouldin)
                    .collect::<Float64Array>(),
            ),
            Arc::new(
                tried
                    .iter()
                    .map(|q| q.iterations as i64)
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                tried
                    .iter()
                    .map(|q| Some(q.converged))
                    .collect::<BooleanArray>(),
            ),
            Arc::new(
                tried
                    .iter()
                    .map(|q| q.fit_seconds)
                    .collect::<Float64Array>(),
            ),
        ],
    )?)
}

/// Citizens per (previous segment, segment), from the `segments` output
/// the previous run published; empty on the first run.
pub(super) async fn migrations(
    ctx: &SessionContext,
    plan: &SegmentPlan,
    segments: &RecordBatch,
) -> Result<RecordBatch, SegmentError> {
    let [_, _, _, schema] = output_schemas(plan, &DataType::Int64);
    let empty = RecordBatch::new_empty(Arc::clone(&schema));
    let Some(folder) = &plan.published else {
        return Ok(empty);
    };
    let Some(previous) = crate::storage::layout::read_published(ctx, folder).await? else {
        return Ok(empty);
    };
    let has = |name: &str| previous.schema().field_with_unqualified_name(name).is_ok();
    if !has(&plan.id) || !has("segment") {
        tracing::warn!(target: "civica::segment",
            "the previous `{}` output has no `{}` and `segment` columns; no migrations",
            plan.name,
            plan.id
        );
        return Ok(empty);
    }
    let previous_table = format!("__civica_previous_{}", plan.name);
    let current_table = format!("__civica_current_{}", plan.name);
    ctx.register_table(&previous_table, previous.into_view())?;
    ctx.register_batch(&current_table, segments.clone())?;
    let quote = crate::sql::quote_ident;
    let sql = format!(
        "SELECT CAST(p.segment AS INT) AS previous_segment, c.segment AS segment, \
         COUNT(*) AS citizens FROM {} p JOIN {} c ON p.{id} = c.{id} \
         GROUP BY 1, 2 ORDER BY 1, 2",
        quote(&previous_table),
        quote(&current_table),
        id = quote(&plan.id)
    );
    let result = ctx.sql(&sql).await;
    let batches = match result {
        Ok(frame) => frame.collect().await,
        Err(e) => Err(e),
    };
    ctx.deregister_table(&previous_table)?;
    ctx.deregister_table(&current_table)?;
    let mut cells = Vec::new();
    for batch in batches? {
        let from = batch.column(0).as_primitive::<Int32Type>();
        let to = batch.column(1).as_primitive::<Int32Type>();
        let citizens = batch.column(2).as_primitive::<Int64Type>();
        cells
            .extend((0..batch.num_rows()).map(|i| (from.value(i), to.value(i), citizens.value(i))));
    }
    let suppressed = suppressed_cells(&cells, plan.min_cell);
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(cells.iter().map(|c| c.0).collect::<Int32Array>()),
            Arc::new(cells.iter().map(|c| c.1).collect::<Int32Array>()),
            Arc::new(
                cells
                    .iter()
                    .zip(&suppressed)
                    .map(|(c, hidden)| (!hidden).then_some(c.2))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                suppressed
                    .iter()
                    .map(|s| Some(*s))
                    .collect::<BooleanArray>(),
            ),
        ],
    )?)
}
