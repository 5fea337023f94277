//! Fitting k-means for each k asked, or assigning to a saved model.

use linfa::traits::Fit;
use linfa::{DatasetBase, Float};
use ndarray::ArrayView2;

use super::{Candidates, Fitted};
use crate::plan::SegmentPlan;
use crate::segment::SegmentError;
use crate::segment::kmeans::{KMeansModel, KMeansParams};
use crate::segment::quality::FitQuality;
use crate::segment::quality::{SILHOUETTE_SAMPLE, SilhouetteSample, davies_bouldin};
use crate::segment::saved::SavedModel;

/// k-means for each k asked (or assignment to the saved centroids),
/// keeping the best silhouette when k is chosen automatically.
pub(super) fn fit_kmeans<F: Float>(
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
            tracing::debug!(target: "civica::segment", k, stage, elapsed_ms = ms, "k-means");
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
