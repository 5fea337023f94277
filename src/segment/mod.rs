//! The segment step: features read in id order, imputed, transformed and
//! scaled; a model fitted (k-means or a Gaussian mixture, `k` fixed or
//! chosen by silhouette) or the saved one reused; segment ids kept stable
//! against the saved model; and the `segments`, `segment_profiles`,
//! `segment_quality` and `segment_migrations` tables.

mod disclosure;
mod error;
mod explain;
mod features;
mod ids;
mod kmeans;
mod model;
mod quality;
mod saved;
mod scale;
mod tables;
mod wide;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::prelude::SessionContext;

pub use error::SegmentError;
pub use explain::profile_schema;
pub use features::{Features, features_query, left_out_query, read_features};
pub use ids::{min_cost_matching, stable_ids};
pub use kmeans::{Assignment, KMeansError, KMeansModel, KMeansParams};
pub use quality::FitQuality;
pub use quality::{SILHOUETTE_SAMPLE, SilhouetteSample, adjusted_rand_index, davies_bouldin};
pub use saved::{ModelFileProblem, SavedModel};
pub use scale::Scaler;
pub use tables::{output_schemas, validate_segment_columns};

use crate::pipeline::{ModelMode, Precision, backticked};
use crate::plan::{ModelKind, SegmentPlan};
use model::{fit_model, model_name};
pub use saved::FitSettings;
use saved::{load_model, previous_centroids};
use scale::ensure_feature_range;
use tables::{migrations, quality_table, segment_table};

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
    /// With `profiling`, the citizens it left out.
    pub not_profiled: Option<usize>,
    /// A line for the run summary.
    pub summary: String,
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
    ensure_unique_ids(&features.ids, plan)?;
    features.validate_log1p(plan)?;
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
    ensure_feature_range(&features, plan, &scaler)?;
    // The fit (and its silhouette) is CPU-bound, parallel on rayon's
    // threads: it runs on a blocking thread, never on the runtime's.
    let (features, scaler, fitted) = {
        let (step, kept) = (plan.clone(), saved.clone().filter(|_| assign));
        tokio::task::spawn_blocking(move || {
            let fitted = fit_model(&features, &step, &scaler, kept.as_ref(), clock);
            (features, scaler, fitted)
        })
        .await
        .map_err(|err| SegmentError::Model {
            model: "the segment model",
            message: format!("the fit stopped: {err}"),
        })?
    };
    let fitted = fitted?;
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
    let model = plan
        .model_path
        .clone()
        .map(|path| -> Result<_, SegmentError> {
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
                settings: FitSettings {
                    k,
                    seed: plan.model.seed,
                    n_init: plan.model.n_init,
                    max_iter: plan.model.max_iter,
                    tolerance: plan.model.tolerance,
                    precision: match plan.model.kind {
                        ModelKind::Kmeans(precision) => precision,
                        ModelKind::Gmm => Precision::Float64,
                    },
                    mode: plan.model.mode,
                },
                quality: fitted.tried.clone(),
            };
            Ok((path, saved))
        });
    let model = model.transpose()?;
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
    if let Some(profiling) = &plan.profiling {
        summary.push_str(&format!(
            ", {} citizen(s) not profiled ({})",
            features.not_profiled,
            match profiling.basis {
                crate::pipeline::LegalBasis::PublicInterest => "objected",
                crate::pipeline::LegalBasis::Consent => "objected or did not consent",
            }
        ));
    }
    Ok(SegmentResult {
        segments,
        profiles,
        quality,
        migrations,
        model,
        rows,
        not_profiled: plan.profiling.as_ref().map(|_| features.not_profiled),
        summary,
    })
}

fn ensure_unique_ids(ids: &ArrayRef, plan: &SegmentPlan) -> Result<(), SegmentError> {
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
