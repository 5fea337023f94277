//! The segment step: features read in id order, imputed, transformed and
//! scaled; a model fitted (k-means or a Gaussian mixture, `k` fixed or
//! chosen by silhouette) or the saved one reused; segment ids kept stable
//! against the saved model; and the `segments`, `segment_profiles`,
//! `segment_quality` and `segment_migrations` tables.

mod explain;
mod features;
mod kmeans;
mod model;
mod quality;
mod wide;

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use linfa::traits::{Fit, Predict};
use linfa::{DatasetBase, Float};
use ndarray::{Array2, ArrayView2};
use object_store::ObjectStoreExt;

pub use explain::profile_schema;
use features::model_value;
pub use features::{Features, read_features};
pub use kmeans::{Assignment, KMeansError, KMeansModel, KMeansParams};
pub use model::{SavedModel, Scaler, min_cost_matching, stable_ids};
pub use quality::{SILHOUETTE_SAMPLE, SilhouetteSample, adjusted_rand_index, davies_bouldin};

use crate::pipeline::{ModelMode, Precision, backticked};
use crate::plan::{ModelKind, SegmentPlan};
use crate::storage::{ensure_store, table_url};

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
        Field::new("citizens", DataType::Int64, false),
    ]);
    [
        Arc::new(segments),
        profile_schema(plan),
        Arc::new(quality),
        Arc::new(migrations),
    ]
}

/// The figures of one fit, a row of the quality table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FitQuality {
    /// Segments.
    pub k: usize,
    /// Whether this fit was kept.
    pub chosen: bool,
    /// Sum of squared distances to the centroids, in scaled units.
    pub inertia: f64,
    /// Mean silhouette on a seeded sample of at most 3,000 rows.
    pub silhouette: Option<f64>,
    /// Davies–Bouldin index.
    pub davies_bouldin: f64,
    /// Iterations of the kept initialisation.
    pub iterations: usize,
    /// Whether it converged within `max_iter`.
    pub converged: bool,
    /// Wall time of the fit (initialisations and iterations).
    pub fit_seconds: f64,
}

/// What the segment step produced.
#[derive(Debug, Clone)]
pub struct SegmentResult {
    /// One row per citizen: id, segment, distance, second segment, margin.
    pub segments: RecordBatch,
    /// One row per segment: size, share, centroid, z-scores, labels.
    pub profiles: RecordBatch,
    /// One row per `k` tried.
    pub quality: RecordBatch,
    /// Citizens per (previous segment, segment), for ids in both runs.
    pub migrations: RecordBatch,
    /// The model to save, and where.
    pub model: Option<(String, SavedModel)>,
    /// Citizens segmented.
    pub rows: usize,
    /// A line for the run summary.
    pub summary: String,
}

/// A fitted or reused model, with each row's place in it.
struct Fitted {
    /// Centroids (component means for a mixture) in scaled units.
    centroids: Array2<f64>,
    assignment: Assignment,
    tried: Vec<FitQuality>,
}

/// The fits of each k tried; the best mean silhouette is kept.
#[derive(Default)]
struct Candidates {
    best: Option<(f64, Fitted)>,
    tried: Vec<FitQuality>,
}

impl Candidates {
    fn offer(&mut self, quality: FitQuality, centroids: Array2<f64>, assignment: Assignment) {
        let score = quality.silhouette.unwrap_or(f64::NEG_INFINITY);
        self.tried.push(quality);
        if self.best.as_ref().is_none_or(|(s, _)| score > *s) {
            let tried = Vec::new();
            self.best = Some((
                score,
                Fitted {
                    centroids,
                    assignment,
                    tried,
                },
            ));
        }
    }

    /// The kept fit, with every k's figures and the chosen one marked.
    fn best(self, plan: &SegmentPlan, rows: usize) -> Result<Fitted, SegmentError> {
        let (_, mut fitted) = self.best.ok_or(SegmentError::TooFewRows {
            table: plan.from.clone(),
            rows,
            k: plan.model.k.min(),
        })?;
        let chosen_k = fitted.centroids.nrows();
        fitted.tried = self.tried;
        for q in &mut fitted.tried {
            q.chosen = q.k == chosen_k;
        }
        Ok(fitted)
    }
}

/// Runs the segment step.
pub async fn fit_segments(
    ctx: &SessionContext,
    plan: &SegmentPlan,
) -> Result<SegmentResult, SegmentError> {
    let saved = match &plan.model_path {
        Some(path) => load_model(ctx, path).await?,
        None => None,
    };
    let assign = plan.model.mode == ModelMode::Assign;
    if assign {
        let path = plan.model_path.clone().unwrap_or_default();
        let Some(saved) = &saved else {
            return Err(SegmentError::NoSavedModel { path });
        };
        if saved.features != plan.features || saved.log1p != plan.log1p {
            return Err(SegmentError::ModelFeatures {
                path,
                saved: backticked(&saved.features),
                listed: backticked(&plan.features),
            });
        }
    }
    let saved_fill = saved.as_ref().filter(|_| assign).map(|m| m.fill.as_slice());
    let clock = std::time::Instant::now();
    let lap = |stage: &str| {
        tracing::debug!(
            stage,
            elapsed_ms = clock.elapsed().as_millis() as u64,
            "segment step"
        );
    };
    let features = read_features(ctx, plan, saved_fill).await?;
    lap("features read");
    let rows = features.rows();
    let min_rows = match (assign, &saved) {
        (true, Some(saved)) => saved.centroids.len().min(1),
        _ => plan.model.k.min(),
    };
    if rows < min_rows.max(1) {
        return Err(SegmentError::TooFewRows {
            table: plan.from.clone(),
            rows,
            k: min_rows,
        });
    }
    check_unique_ids(&features.ids, plan)?;
    features.check_log1p(plan)?;
    let scaler = match (&saved, assign) {
        (Some(saved), true) => saved.scaler.clone(),
        _ => {
            // One transformed column at a time: never a second copy of
            // every feature.
            Scaler::fit(
                (0..plan.features.len()).map(|j| features.transformed(plan, j)),
                plan.scaling,
            )
        }
    };
    lap("scaler fitted");
    check_feature_range(&features, plan, &scaler)?;
    let fitted = match plan.model.kind {
        ModelKind::Kmeans(Precision::Float32) => {
            let x = scaled_matrix::<f32>(&features, plan, &scaler)?;
            lap("matrix built");
            fit_kmeans(&x.view(), plan, saved.as_ref().filter(|_| assign))?
        }
        ModelKind::Kmeans(Precision::Float64) => {
            let x = scaled_matrix::<f64>(&features, plan, &scaler)?;
            fit_kmeans(&x.view(), plan, saved.as_ref().filter(|_| assign))?
        }
        ModelKind::Gmm => {
            let x = scaled_matrix::<f64>(&features, plan, &scaler)?;
            fit_gmm(&x.view(), plan)?
        }
    };
    lap("model fitted");
    let k = fitted.centroids.nrows();
    let labels = &fitted.assignment.labels;
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let (ids, next_id, kept) = match (&saved, assign) {
        (Some(saved), true) => (saved.segment_ids.clone(), saved.next_segment_id, k),
        _ => {
            let previous = saved
                .as_ref()
                .filter(|m| m.features == plan.features && m.log1p == plan.log1p)
                .map(|m| (previous_centroids(m, &scaler), m));
            let (ids, next) = stable_ids(
                &fitted.centroids,
                &sizes,
                previous
                    .as_ref()
                    .map(|(c, m)| (c, m.segment_ids.as_slice(), m.next_segment_id)),
            );
            let kept = previous.map_or(0, |(_, m)| {
                ids.iter().filter(|id| m.segment_ids.contains(id)).count()
            });
            (ids, next, kept)
        }
    };
    let segments = segment_table(plan, &features.ids, &fitted.assignment, &ids)?;
    lap("segment table built");
    let profiles = explain::profiles(
        &features.columns,
        |j| features.transformed(plan, j),
        labels,
        &ids,
    );
    let profiles = explain::profile_table(plan, &profiles, rows)?;
    lap("profiles built");
    let quality = quality_table(plan, &fitted.tried, rows)?;
    let migrations = migrations(ctx, plan, &segments).await?;
    lap("migrations counted");
    let chosen = fitted.tried.iter().find(|q| q.chosen).cloned();
    let model = plan.model_path.clone().map(|path| {
        let saved = SavedModel {
            civica_version: env!("CARGO_PKG_VERSION").to_string(),
            model: model_name(plan).to_string(),
            features: plan.features.clone(),
            log1p: plan.log1p.clone(),
            fill: features.fill.clone(),
            scaling: format!("{:?}", plan.scaling).to_lowercase(),
            scaler: scaler.clone(),
            segment_ids: ids.clone(),
            centroids: fitted
                .centroids
                .rows()
                .into_iter()
                .map(|r| r.to_vec())
                .collect(),
            next_segment_id: next_id,
            settings: serde_json::json!({
                "k": k,
                "seed": plan.model.seed,
                "n_init": plan.model.n_init,
                "max_iter": plan.model.max_iter,
                "tolerance": plan.model.tolerance,
                "precision": match plan.model.kind {
                    ModelKind::Kmeans(Precision::Float32) => "float32",
                    _ => "float64",
                },
                "mode": if assign { "assign" } else { "refit" },
            }),
            quality: serde_json::to_value(&fitted.tried).unwrap_or_default(),
        };
        (path, saved)
    });
    let mut summary = match &chosen {
        Some(q) => format!(
            "{} k={}{}, inertia {:.1}, silhouette {}, {} iteration(s){}",
            model_name(plan),
            q.k,
            if fitted.tried.len() > 1 {
                " (auto)"
            } else {
                ""
            },
            q.inertia,
            q.silhouette.map_or("-".to_string(), |s| format!("{s:.3}")),
            q.iterations,
            if q.converged { "" } else { ", not converged" },
        ),
        None => format!(
            "{} assigned to the saved model's {k} segments",
            model_name(plan)
        ),
    };
    if saved.is_some() && !assign {
        summary.push_str(&format!(", {kept}/{k} segment ids kept"));
    }
    let imputed: usize = features.imputed.iter().sum();
    if imputed > 0 {
        summary.push_str(&format!(", {imputed} null value(s) imputed"));
    }
    if features.dropped > 0 {
        summary.push_str(&format!(", {} row(s) dropped for nulls", features.dropped));
    }
    Ok(SegmentResult {
        segments,
        profiles,
        quality,
        migrations,
        model,
        rows,
        summary,
    })
}

fn model_name(plan: &SegmentPlan) -> &'static str {
    match plan.model.kind {
        ModelKind::Kmeans(_) => "kmeans",
        ModelKind::Gmm => "gmm",
    }
}

/// Fails, naming the feature, when a value is not finite (`inf`, NaN) or,
/// once scaled, too large for a squared distance in the model's precision
/// (a column of 3e300): k-means would otherwise fail on a row and column
/// number, or on overflowing distances.
fn check_feature_range(
    features: &Features,
    plan: &SegmentPlan,
    scaler: &Scaler,
) -> Result<(), SegmentError> {
    let limit = match plan.model.kind {
        ModelKind::Kmeans(Precision::Float32) => 1e18,
        _ => 1e150,
    };
    for (j, column) in features.columns.iter().enumerate() {
        let values = column.iter().map(|v| model_value(plan.log1p[j], *v));
        // Values too large themselves, else values whose scaling is.
        let (mut infinite, mut huge, mut scaled_huge) = ((0, 0.0), (0, 0.0), (0, 0.0));
        for v in values {
            let scaled = scaler.apply(j, v);
            if !v.is_finite() {
                infinite = (infinite.0 + 1, v);
            } else if v.abs() > limit {
                huge = (huge.0 + 1, v);
            } else if !(scaled.is_finite() && scaled.abs() <= limit) {
                scaled_huge = (scaled_huge.0 + 1, v);
            }
        }
        let found = [
            (infinite, "that are not finite"),
            (huge, "too large to compare"),
            (scaled_huge, "too large to compare once scaled"),
        ]
        .into_iter()
        .find(|((count, _), _)| *count > 0)
        .map(|((count, example), problem)| (count, problem, example));
        if let Some((count, problem, example)) = found {
            return Err(SegmentError::FeatureOutOfRange {
                column: plan.features[j].clone(),
                table: plan.from.clone(),
                count,
                problem,
                example,
            });
        }
    }
    Ok(())
}

/// The features scaled into an n × d matrix of `F`, built by blocks of
/// rows in parallel.
fn scaled_matrix<F: Float>(
    features: &Features,
    plan: &SegmentPlan,
    scaler: &Scaler,
) -> Result<Array2<F>, SegmentError> {
    use rayon::prelude::*;
    const ROWS: usize = 4096;
    let (n, d) = (features.rows(), plan.features.len());
    let mut values = vec![F::zero(); n * d];
    if d > 0 {
        values
            .par_chunks_mut(ROWS * d)
            .enumerate()
            .for_each(|(b, block)| {
                for (j, column) in features.columns.iter().enumerate() {
                    let column = &column[b * ROWS..];
                    let slots = block.iter_mut().skip(j).step_by(d);
                    for (slot, v) in slots.zip(column) {
                        let v = model_value(plan.log1p[j], *v);
                        *slot = F::from_f64(scaler.apply(j, v)).unwrap_or_else(F::zero);
                    }
                }
            });
    }
    Ok(Array2::from_shape_vec((n, d), values).unwrap_or_else(|_| Array2::zeros((0, d))))
}

/// The saved model's centroids in the new scaler's units.
fn previous_centroids(saved: &SavedModel, scaler: &Scaler) -> Array2<f64> {
    let mut centroids = saved.centroid_matrix();
    for mut row in centroids.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = scaler.apply(j, saved.scaler.invert(j, *v));
        }
    }
    centroids
}

/// k-means for each k asked (or assignment to the saved centroids),
/// keeping the best silhouette when k is chosen automatically.
fn fit_kmeans<F: Float>(
    x: &ArrayView2<'_, F>,
    plan: &SegmentPlan,
    saved: Option<&SavedModel>,
) -> Result<Fitted, SegmentError> {
    if let Some(saved) = saved {
        let model = KMeansModel {
            centroids: saved
                .centroid_matrix()
                .mapv(|v| F::from_f64(v).unwrap_or_else(F::zero)),
            inertia: 0.0,
            iterations: 0,
            converged: true,
        };
        return Ok(Fitted {
            centroids: saved.centroid_matrix(),
            assignment: model.assign(x),
            tried: Vec::new(),
        });
    }
    let sample = SilhouetteSample::draw(x, SILHOUETTE_SAMPLE, plan.model.seed);
    let mut candidates = Candidates::default();
    for k in plan.model.k.candidates() {
        if k > x.nrows() {
            break;
        }
        let params = KMeansParams {
            k,
            n_init: plan.model.n_init,
            max_iter: plan.model.max_iter,
            tolerance: plan.model.tolerance,
            seed: plan.model.seed,
            init: plan.model.init.as_ref().map(|rows| {
                ndarray::Array2::from_shape_fn((rows.len(), x.ncols()), |(i, j)| {
                    rows[i].get(j).copied().unwrap_or(0.0)
                })
            }),
        };
        let started = std::time::Instant::now();
        let model = params
            .fit(&DatasetBase::from(x.view()))
            .map_err(|e| SegmentError::Model {
                model: "k-means",
                message: e.to_string(),
            })?;
        let fit_seconds = started.elapsed().as_secs_f64();
        let since = |stage: &str| {
            let ms = started.elapsed().as_millis() as u64;
            tracing::debug!(k, stage, elapsed_ms = ms, "k-means");
        };
        since("fitted");
        let assignment = model.assign(x);
        since("rows assigned");
        let silhouette = sample.score(&assignment.labels, k);
        since("silhouette");
        let davies_bouldin = davies_bouldin(x, &assignment.labels, k);
        since("davies-bouldin");
        let quality = FitQuality {
            k,
            chosen: false,
            inertia: model.inertia,
            silhouette,
            davies_bouldin,
            iterations: model.iterations,
            converged: model.converged,
            fit_seconds,
        };
        let centroids = model.centroids.mapv(|v| v.to_f64().unwrap_or(0.0));
        candidates.offer(quality, centroids, assignment);
    }
    candidates.best(plan, x.nrows())
}

/// A Gaussian mixture (full covariances, linfa) for each k asked. linfa
/// initialises a mixture with its own k-means at its slow defaults, so the
/// responsibilities start at random instead; `n_init` runs keep the best
/// likelihood. Each citizen's second segment is its second most probable
/// component.
fn fit_gmm(x: &ArrayView2<'_, f64>, plan: &SegmentPlan) -> Result<Fitted, SegmentError> {
    use linfa_clustering::{GaussianMixtureModel, GmmInitMethod};
    use rand_xoshiro::Xoshiro256Plus;
    use rand_xoshiro::rand_core::SeedableRng;
    let sample = SilhouetteSample::draw(x, SILHOUETTE_SAMPLE, plan.model.seed);
    let dataset = DatasetBase::from(x.to_owned());
    let mut candidates = Candidates::default();
    for k in plan.model.k.candidates() {
        let started = std::time::Instant::now();
        let rng = Xoshiro256Plus::seed_from_u64(plan.model.seed);
        let gmm = GaussianMixtureModel::params_with_rng(k, rng)
            .init_method(GmmInitMethod::Random)
            .n_runs(plan.model.n_init as u64)
            .max_n_iterations(plan.model.max_iter as u64)
            .tolerance(plan.model.tolerance)
            .fit(&dataset)
            .map_err(|e| SegmentError::Model {
                model: "gaussian mixture",
                message: e.to_string(),
            })?;
        let fit_seconds = started.elapsed().as_secs_f64();
        let labels: Vec<usize> = gmm.predict(x).to_vec();
        let proba = gmm.predict_proba(x);
        let centroids = gmm.means().clone();
        let mut assignment = Assignment::default();
        let mut inertia = 0.0;
        for ((row, &label), p) in x.rows().into_iter().zip(&labels).zip(proba.rows()) {
            let second = (0..k)
                .filter(|&c| c != label || k == 1)
                .max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a)))
                .unwrap_or(label);
            let distance = |c: usize| {
                row.iter()
                    .zip(centroids.row(c))
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt()
            };
            let d = distance(label);
            inertia += d * d;
            assignment.labels.push(label);
            assignment.distances.push(d);
            assignment.second.push(second);
            assignment.second_distances.push(distance(second));
        }
        let quality = FitQuality {
            k,
            chosen: false,
            inertia,
            silhouette: sample.score(&labels, k),
            davies_bouldin: davies_bouldin(x, &labels, k),
            iterations: 0,
            converged: true,
            fit_seconds,
        };
        candidates.offer(quality, centroids, assignment);
    }
    candidates.best(plan, x.nrows())
}

/// The per-citizen table: id, segment, distance, second segment, margin
/// (how much farther the second segment's centroid is).
fn segment_table(
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

fn quality_table(
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
async fn migrations(
    ctx: &SessionContext,
    plan: &SegmentPlan,
    segments: &RecordBatch,
) -> Result<RecordBatch, SegmentError> {
    let [_, _, _, schema] = output_schemas(plan, &DataType::Int64);
    let empty = RecordBatch::new_empty(Arc::clone(&schema));
    let Some(folder) = &plan.published else {
        return Ok(empty);
    };
    let folder = &crate::storage::layout::current_folder(ctx, folder).await?;
    let store = ensure_store(ctx, folder)?;
    let prefix = table_url(folder)?.prefix().clone();
    let file = prefix.clone().join(crate::storage::layout::OUTPUT_FILE);
    if store.head(&file).await.is_err() {
        return Ok(empty);
    }
    let previous = ctx
        .read_parquet(
            format!("{}{}", folder, crate::storage::layout::OUTPUT_FILE),
            ParquetReadOptions::default(),
        )
        .await?;
    let has = |name: &str| previous.schema().field_with_unqualified_name(name).is_ok();
    if !has(&plan.id) || !has("segment") {
        tracing::warn!(
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
    let batches = batches?;
    let batch = datafusion::arrow::compute::concat_batches(&schema, &batches)?;
    Ok(RecordBatch::try_new(schema, batch.columns().to_vec())?)
}

/// Reads the saved model; `None` when there is none yet.
async fn load_model(ctx: &SessionContext, path: &str) -> Result<Option<SavedModel>, SegmentError> {
    let store = ensure_store(ctx, path)?;
    let object = table_url(path)?.prefix().clone();
    let bad = |message: String| SegmentError::BadSavedModel {
        path: path.to_string(),
        message,
    };
    let bytes = match store.get(&object).await {
        Ok(found) => found.bytes().await.map_err(|e| bad(e.to_string()))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let model: SavedModel = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    model.validate().map_err(|message| {
        bad(format!(
            "{message}; restore it from a backup, or delete it to fit new segments (their ids start again from 1)"
        ))
    })?;
    Ok(Some(model))
}

fn check_unique_ids(ids: &ArrayRef, plan: &SegmentPlan) -> Result<(), SegmentError> {
    if ids.null_count() > 0 {
        return Err(SegmentError::NullId {
            column: plan.id.clone(),
            table: plan.from.clone(),
            count: ids.null_count(),
        });
    }
    if ids.len() < 2 {
        return Ok(());
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
