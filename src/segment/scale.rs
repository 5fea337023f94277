//! Feature scaling: the per-feature affine scaler (fitted, or the saved
//! model's), the range guard on scaled values, and the scaled matrix the
//! models are fitted on.

use linfa::Float;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::SegmentError;
use super::features::{Features, model_value};
use crate::pipeline::Precision;
use crate::pipeline::Scaling;
use crate::plan::{ModelKind, SegmentPlan};

/// Per-feature affine scaling, `(x − offset) / scale`, kept so centroids
/// can be read in original units and later runs can scale the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Subtracted from each feature.
    pub offset: Vec<f64>,
    /// Each feature is divided by this after the offset.
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Learns the scaling of one feature per column; a constant feature
    /// gets a scale of 1 so it stays finite (at 0 after the offset).
    pub fn fit(columns: impl Iterator<Item = Vec<f64>>, scaling: Scaling) -> Self {
        let (offset, scale) = columns
            .map(|mut values| {
                let (offset, scale) = match scaling {
                    Scaling::None => (0.0, 1.0),
                    Scaling::Standard => {
                        let n = values.len().max(1) as f64;
                        let mean = values.iter().sum::<f64>() / n;
                        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                        (mean, var.sqrt())
                    }
                    Scaling::Minmax => {
                        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        (min, max - min)
                    }
                    Scaling::Robust => {
                        values.sort_by(f64::total_cmp);
                        let q = |p: f64| quantile(&values, p);
                        (q(0.5), q(0.75) - q(0.25))
                    }
                };
                let offset = if offset.is_finite() { offset } else { 0.0 };
                let scale = if scale > 0.0 && scale.is_finite() {
                    scale
                } else {
                    1.0
                };
                (offset, scale)
            })
            .unzip();
        Scaler { offset, scale }
    }

    /// Feature `j` scaled.
    pub fn apply(&self, j: usize, value: f64) -> f64 {
        (value - self.offset[j]) / self.scale[j]
    }

    /// Feature `j` back in the units it was fitted in.
    pub fn invert(&self, j: usize, value: f64) -> f64 {
        value * self.scale[j] + self.offset[j]
    }
}

/// The `p` quantile of sorted values, interpolated linearly between the
/// closest ranks (NumPy's default, which scikit-learn's `RobustScaler` uses).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

/// Fails, naming the feature, when a value is not finite (`inf`, NaN) or,
/// once scaled, too large for a squared distance in the model's precision
/// (a column of 3e300): k-means would otherwise fail on a row and column
/// number, or on overflowing distances.
pub(super) fn ensure_feature_range(
    features: &Features,
    plan: &SegmentPlan,
    scaler: &Scaler,
) -> Result<(), SegmentError> {
    let limit = match plan.model.kind {
        ModelKind::Kmeans(Precision::Float32) => 1e18,
        ModelKind::Kmeans(Precision::Float64) | ModelKind::Gmm => 1e150,
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
pub(super) fn scaled_matrix<F: Float>(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(values: Vec<f64>, scaling: Scaling) -> (f64, f64) {
        let s = Scaler::fit(std::iter::once(values), scaling);
        (s.offset[0], s.scale[0])
    }

    #[test]
    fn scalers_match_their_definitions() {
        let v = vec![1.0, 2.0, 3.0, 4.0, 100.0];
        let (mean, std) = fit(v.clone(), Scaling::Standard);
        assert!((mean - 22.0).abs() < 1e-12);
        assert!((std - 39.0128).abs() < 1e-3, "{std}");
        assert_eq!(fit(v.clone(), Scaling::Minmax), (1.0, 99.0));
        // NumPy: median 3, percentiles 25 and 75 are 2 and 4.
        assert_eq!(fit(v.clone(), Scaling::Robust), (3.0, 2.0));
        assert_eq!(fit(v, Scaling::None), (0.0, 1.0));
        assert_eq!(fit(vec![5.0, 5.0], Scaling::Standard), (5.0, 1.0));
    }
}
