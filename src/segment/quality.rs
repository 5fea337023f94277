//! Clustering quality: silhouette on a seeded sample, Davies–Bouldin, and
//! the adjusted Rand index against a known grouping.

use std::collections::HashMap;
use std::hash::Hash;

use linfa::Float;
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::index::sample;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use super::kmeans::distances;

/// Rows beyond which the silhouette is computed on a sample: the pairwise
/// distances of 3,000 rows take 72 MB and a fraction of a second.
pub const SILHOUETTE_SAMPLE: usize = 3_000;

/// A seeded sample of rows with their pairwise distances, scored against
/// any labelling of the full data (so `k: auto` measures every k on the
/// same rows).
#[derive(Debug, Clone)]
pub struct SilhouetteSample {
    rows: Vec<usize>,
    distances: Array2<f64>,
}

impl SilhouetteSample {
    /// Draws up to `size` rows of `x` (all of them when fewer) with `seed`.
    pub fn draw<F: Float>(x: &ArrayView2<'_, F>, size: usize, seed: u64) -> Self {
        let n = x.nrows();
        let rows: Vec<usize> = if n <= size {
            (0..n).collect()
        } else {
            let mut rng = Xoshiro256Plus::seed_from_u64(seed);
            let mut picked = sample(&mut rng, n, size).into_vec();
            picked.sort_unstable();
            picked
        };
        let sampled = x.select(Axis(0), &rows);
        let distances = distances(&sampled.view(), &sampled.view());
        SilhouetteSample { rows, distances }
    }

    /// The mean silhouette of the sampled rows under `labels` (labels of
    /// every row, from 0 to k − 1), as scikit-learn's `silhouette_score`;
    /// `None` with fewer than two clusters in the sample.
    pub fn score(&self, labels: &[usize], k: usize) -> Option<f64> {
        let sample_labels: Vec<usize> = self.rows.iter().map(|&r| labels[r]).collect();
        let mut sizes = vec![0usize; k];
        for &l in &sample_labels {
            sizes[l] += 1;
        }
        if sizes.iter().filter(|&&s| s > 0).count() < 2 {
            return None;
        }
        let mut total = 0.0;
        let mut sums = vec![0.0; k];
        for (i, row) in self.distances.rows().into_iter().enumerate() {
            sums.fill(0.0);
            for (d, &l) in row.iter().zip(&sample_labels) {
                sums[l] += d;
            }
            let own = sample_labels[i];
            if sizes[own] <= 1 {
                continue;
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            let denominator = a.max(b);
            if denominator > 0.0 {
                total += (b - a) / denominator;
            }
        }
        Some(total / self.rows.len() as f64)
    }
}

/// The Davies–Bouldin index of a labelling (lower is better), with each
/// cluster's centre the mean of its rows, as scikit-learn computes it.
pub fn davies_bouldin<F: Float>(x: &ArrayView2<'_, F>, labels: &[usize], k: usize) -> f64 {
    let d = x.ncols();
    let mut sums = Array2::<f64>::zeros((k, d));
    let mut sizes = vec![0usize; k];
    for (row, &l) in x.rows().into_iter().zip(labels) {
        sizes[l] += 1;
        for (acc, v) in sums.row_mut(l).iter_mut().zip(row) {
            *acc += v.to_f64().unwrap_or(0.0);
        }
    }
    for (mut centre, &size) in sums.rows_mut().into_iter().zip(&sizes) {
        centre.mapv_inplace(|v| v / size.max(1) as f64);
    }
    let centres = sums;
    let mut spread = vec![0.0; k];
    for (row, &l) in x.rows().into_iter().zip(labels) {
        spread[l] += row
            .iter()
            .zip(centres.row(l))
            .map(|(v, c)| (v.to_f64().unwrap_or(0.0) - c).powi(2))
            .sum::<f64>()
            .sqrt();
    }
    for (s, &size) in spread.iter_mut().zip(&sizes) {
        *s /= size.max(1) as f64;
    }
    let present: Vec<usize> = (0..k).filter(|&c| sizes[c] > 0).collect();
    let mut total = 0.0;
    for &i in &present {
        let worst = present
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| {
                let between = centres
                    .row(i)
                    .iter()
                    .zip(centres.row(j))
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                if between > 0.0 {
                    (spread[i] + spread[j]) / between
                } else {
                    0.0
                }
            })
            .fold(0.0, f64::max);
        total += worst;
    }
    total / present.len().max(1) as f64
}

/// The adjusted Rand index of two labelings of the same items: 1 for
/// identical partitions (up to renaming), about 0 for random ones.
/// Returns `None` when the labelings differ in length or are empty.
pub fn adjusted_rand_index<A: Hash + Eq, B: Hash + Eq>(a: &[A], b: &[B]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let mut pairs: HashMap<(&A, &B), u64> = HashMap::new();
    let mut rows: HashMap<&A, u64> = HashMap::new();
    let mut cols: HashMap<&B, u64> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *pairs.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let choose2 = |n: u64| (n as f64) * (n as f64 - 1.0) / 2.0;
    let index: f64 = pairs.values().map(|&n| choose2(n)).sum();
    let sum_rows: f64 = rows.values().map(|&n| choose2(n)).sum();
    let sum_cols: f64 = cols.values().map(|&n| choose2(n)).sum();
    let total = choose2(a.len() as u64);
    let expected = sum_rows * sum_cols / total;
    let max = (sum_rows + sum_cols) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        return Some(1.0);
    }
    Some((index - expected) / (max - expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn identical_partitions_score_one_whatever_the_names() {
        let ari =
            adjusted_rand_index(&[1, 1, 2, 2, 3], &["a", "a", "b", "b", "c"]).expect("same length");
        assert!((ari - 1.0).abs() < 1e-12);
    }

    #[test]
    fn matches_the_reference_value() {
        // scikit-learn: adjusted_rand_score([0, 0, 1, 2], [0, 0, 1, 1]) == 0.5714285714285715
        let ari = adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]).expect("same length");
        assert!((ari - 0.571_428_571_428_571_5).abs() < 1e-12, "{ari}");
    }

    #[test]
    fn silhouette_and_davies_bouldin_match_scikit_learn() {
        let x = array![[0.0, 0.0], [0.0, 1.0], [4.0, 0.0], [4.0, 1.0], [9.0, 9.0]];
        let labels = [0, 0, 1, 1, 1];
        // scikit-learn 1.9: silhouette_score(x, labels) and
        // davies_bouldin_score(x, labels).
        let s = SilhouetteSample::draw(&x.view(), 100, 1)
            .score(&labels, 2)
            .expect("two clusters");
        assert!((s - 0.281_696_108_931_290_8).abs() < 1e-12, "{s}");
        let db = davies_bouldin(&x.view(), &labels, 2);
        assert!((db - 0.771_763_483_159_374_8).abs() < 1e-12, "{db}");
    }
}
