//! The segment step: feature columns to a matrix, scaling, k-means through linfa, and the `segments` and `segment_profiles` tables.

mod model;
mod quality;

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::prelude::SessionContext;
use ndarray::Array2;

pub use model::{KmeansFit, Scaler, fit_kmeans};
pub use quality::adjusted_rand_index;

use crate::spec::{SegmentPlan, backticked};

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
    /// The model failed to fit.
    #[error("k-means failed: {0}")]
    Model(String),
    /// Reading the table failed.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Building the output failed.
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

/// Checks the `from` table's columns against the segment settings, before any data is read.
pub fn check_segment_columns(plan: &SegmentPlan, schema: &DFSchema) -> Vec<SegmentError> {
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

/// The schemas of the two tables the step writes, given the id column's type.
pub fn output_schemas(plan: &SegmentPlan, id_type: &DataType) -> (SchemaRef, SchemaRef) {
    let segments = Schema::new(vec![
        Field::new(&plan.id, id_type.clone(), true),
        Field::new("segment", DataType::Int32, false),
        Field::new("distance", DataType::Float64, false),
    ]);
    let mut profile_fields = vec![
        Field::new("segment", DataType::Int32, false),
        Field::new("size", DataType::Int64, false),
        Field::new("share", DataType::Float64, false),
    ];
    profile_fields.extend(
        plan.features
            .iter()
            .map(|f| Field::new(f, DataType::Float64, false)),
    );
    (Arc::new(segments), Arc::new(Schema::new(profile_fields)))
}

/// What the segment step produced.
#[derive(Debug, Clone)]
pub struct SegmentResult {
    /// One row per citizen: id, segment, distance to its centroid.
    pub segments: RecordBatch,
    /// One row per segment: size, share, centroid in original units.
    pub profiles: RecordBatch,
    /// Sum of squared distances to the centroids, in scaled units.
    pub inertia: f64,
    /// Citizens segmented.
    pub rows: usize,
}

/// Reads the `from` table ordered by id, fits k-means and builds the two tables.
pub async fn fit_segments(
    ctx: &SessionContext,
    plan: &SegmentPlan,
) -> Result<SegmentResult, SegmentError> {
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let columns: Vec<String> = std::iter::once(&plan.id)
        .chain(&plan.features)
        .map(|c| quote(c))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        quote(&plan.from),
        quote(&plan.id)
    );
    let frame = ctx.sql(&sql).await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    let table = concat_batches(&schema, &batches)?;
    let rows = table.num_rows();
    if rows < plan.kmeans.k {
        return Err(SegmentError::TooFewRows {
            table: plan.from.clone(),
            rows,
            k: plan.kmeans.k,
        });
    }
    let ids = Arc::clone(table.column(0));
    check_unique_ids(&ids, plan)?;
    let features = feature_matrix(&table, plan)?;
    let scaler = Scaler::fit(&features, plan.scaling);
    let scaled = scaler.transform(&features);
    let fit = fit_kmeans(&scaled, &plan.kmeans).map_err(SegmentError::Model)?;
    let labels = relabel_by_size(&fit.labels, plan.kmeans.k);
    let (segment_schema, profile_schema) = output_schemas(plan, ids.data_type());
    let segments = RecordBatch::try_new(
        segment_schema,
        vec![
            ids,
            Arc::new(labels.iter().map(|&l| l as i32).collect::<Int32Array>()),
            Arc::new(Float64Array::from(fit.distances.clone())),
        ],
    )?;
    let profiles = profile_table(&features, &labels, plan, profile_schema)?;
    Ok(SegmentResult {
        segments,
        profiles,
        inertia: fit.inertia,
        rows,
    })
}

fn check_unique_ids(ids: &ArrayRef, plan: &SegmentPlan) -> Result<(), SegmentError> {
    if ids.null_count() > 0 {
        return Err(SegmentError::NullId {
            column: plan.id.clone(),
            table: plan.from.clone(),
            count: ids.null_count(),
        });
    }
    // Rows are sorted by id, so duplicates sit next to each other.
    let sorted = datafusion::arrow::compute::kernels::cmp::eq(
        &ids.slice(1, ids.len() - 1),
        &ids.slice(0, ids.len() - 1),
    )?;
    let count = sorted.true_count();
    if count > 0 {
        return Err(SegmentError::DuplicateId {
            column: plan.id.clone(),
            table: plan.from.clone(),
            count,
        });
    }
    Ok(())
}

/// The feature columns as an n × d matrix of f64.
fn feature_matrix(table: &RecordBatch, plan: &SegmentPlan) -> Result<Array2<f64>, SegmentError> {
    let rows = table.num_rows();
    let mut matrix = Array2::<f64>::zeros((rows, plan.features.len()));
    for (j, name) in plan.features.iter().enumerate() {
        let column = cast(table.column(j + 1), &DataType::Float64)?;
        if column.null_count() > 0 {
            return Err(SegmentError::NullFeature {
                column: name.clone(),
                table: plan.from.clone(),
                count: column.null_count(),
            });
        }
        let values = column.as_primitive::<Float64Type>();
        for (i, v) in values.values().iter().enumerate() {
            matrix[[i, j]] = *v;
        }
    }
    Ok(matrix)
}

/// Segment numbers from 1, largest segment first, so that the numbering
/// does not depend on the order k-means happened to find the clusters.
fn relabel_by_size(labels: &[usize], k: usize) -> Vec<usize> {
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut new_label = vec![0usize; k];
    for (rank, &old) in order.iter().enumerate() {
        new_label[old] = rank + 1;
    }
    labels.iter().map(|&l| new_label[l]).collect()
}

/// Size, share and mean of each feature in original units per segment.
fn profile_table(
    features: &Array2<f64>,
    labels: &[usize],
    plan: &SegmentPlan,
    schema: SchemaRef,
) -> Result<RecordBatch, SegmentError> {
    let k = plan.kmeans.k;
    let d = features.ncols();
    let mut sizes = vec![0i64; k];
    let mut sums = Array2::<f64>::zeros((k, d));
    for (row, &label) in features.rows().into_iter().zip(labels) {
        sizes[label - 1] += 1;
        let mut acc = sums.row_mut(label - 1);
        acc += &row;
    }
    let total = labels.len() as f64;
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new((1..=k).map(|s| s as i32).collect::<Int32Array>()),
        Arc::new(Int64Array::from(sizes.clone())),
        Arc::new(
            sizes
                .iter()
                .map(|&s| s as f64 / total)
                .collect::<Float64Array>(),
        ),
    ];
    for j in 0..d {
        columns.push(Arc::new(
            (0..k)
                .map(|s| {
                    if sizes[s] > 0 {
                        sums[[s, j]] / sizes[s] as f64
                    } else {
                        0.0
                    }
                })
                .collect::<Float64Array>(),
        ));
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_segments_by_size_from_one() {
        assert_eq!(
            relabel_by_size(&[2, 0, 2, 1, 2, 0], 3),
            vec![1, 2, 1, 3, 1, 2]
        );
    }
}
