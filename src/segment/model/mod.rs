//! The models behind one dispatch ([`fit_model`]): k-means (f32 or f64)
//! and Gaussian mixtures, each fitted for every `k` asked, keeping the best
//! silhouette.
//!
//! Adding a model: see "Adding a model" in ARCHITECTURE.md. Here: its file
//! with a `fit_*` returning [`Fitted`], and its arm in [`fit_model`] and in
//! [`model_name`].

mod gmm;
mod kmeans;

use ndarray::Array2;

use super::SegmentError;
use super::features::Features;
use super::kmeans::Assignment;
use super::saved::SavedModel;
use super::scale::{Scaler, scaled_matrix};
use crate::pipeline::Precision;
use crate::plan::{ModelKind, SegmentPlan};
use crate::segment::quality::FitQuality;

/// A fitted or reused model, with each row's place in it.
pub(super) struct Fitted {
    /// Centroids (component means for a mixture) in scaled units.
    pub(super) centroids: Array2<f64>,
    /// Each row's segment, second segment and distances.
    pub(super) assignment: Assignment,
    /// The figures of every k tried.
    pub(super) tried: Vec<FitQuality>,
}

/// The fits of each k tried; the best mean silhouette is kept.
#[derive(Default)]
pub(super) struct Candidates {
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

/// Fits the plan's model on the scaled features, or, with `saved`, assigns
/// them to the saved model's centroids (k-means only).
/// `clock` is the step's start, for the debug log of its stages.
pub(super) fn fit_model(
    features: &Features,
    plan: &SegmentPlan,
    scaler: &Scaler,
    saved: Option<&SavedModel>,
    clock: std::time::Instant,
) -> Result<Fitted, SegmentError> {
    match plan.model.kind {
        ModelKind::Kmeans(Precision::Float32) => {
            let x = scaled_matrix::<f32>(features, plan, scaler)?;
            tracing::debug!(
                target: "civica::segment",
                stage = "matrix built",
                elapsed_ms = clock.elapsed().as_millis() as u64,
                "segment step"
            );
            kmeans::fit_kmeans(&x.view(), plan, saved)
        }
        ModelKind::Kmeans(Precision::Float64) => {
            let x = scaled_matrix::<f64>(features, plan, scaler)?;
            kmeans::fit_kmeans(&x.view(), plan, saved)
        }
        ModelKind::Gmm => {
            let x = scaled_matrix::<f64>(features, plan, scaler)?;
            gmm::fit_gmm(&x.view(), plan)
        }
    }
}

/// The model's name in the saved model and the run summary.
pub(super) fn model_name(plan: &SegmentPlan) -> &'static str {
    match plan.model.kind {
        ModelKind::Kmeans(_) => "kmeans",
        ModelKind::Gmm => "gmm",
    }
}
