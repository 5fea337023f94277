//! Fitting Gaussian mixtures (linfa) for each k asked.

use linfa::DatasetBase;
use linfa::traits::{Fit, Predict};
use ndarray::ArrayView2;

use super::{Candidates, Fitted};
use crate::plan::SegmentPlan;
use crate::segment::SegmentError;
use crate::segment::kmeans::Assignment;
use crate::segment::quality::FitQuality;
use crate::segment::quality::{SILHOUETTE_SAMPLE, SilhouetteSample, davies_bouldin};

/// A Gaussian mixture (full covariances, linfa) for each k asked. linfa
/// initialises a mixture with its own k-means at its slow defaults, so the
/// responsibilities start at random instead; `n_init` runs keep the best
/// likelihood. Each citizen's second segment is its second most probable
/// component.
pub(super) fn fit_gmm(x: &ArrayView2<'_, f64>, plan: &SegmentPlan) -> Result<Fitted, SegmentError> {
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
