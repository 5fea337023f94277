//! Clustering quality: silhouette on a seeded sample, Davies–Bouldin, and
//! the adjusted Rand index against a known grouping.

use std::collections::HashMap;
use std::hash::Hash;

use linfa::Float;
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::index::sample;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use rayon::prelude::*;

use super::wide::{self, Kernel, mul_add, to_f64};

/// The figures of one fit, a row of the quality table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// Rows beyond which the silhouette is computed on a sample: 3,000 rows
/// are 4.5 million pairs, measured in a few milliseconds.
pub const SILHOUETTE_SAMPLE: usize = 3_000;

/// A seeded sample of rows, scored against any labelling of the full data
/// (so `k: auto` measures every k on the same rows).
#[derive(Debug, Clone)]
pub struct SilhouetteSample<F> {
    rows: Vec<usize>,
    /// The sampled rows' values, row-major.
    points: Array2<F>,
}

impl<F: Float> SilhouetteSample<F> {
    /// Draws up to `size` rows of `x` (all of them when fewer) with `seed`.
    pub fn draw(x: &ArrayView2<'_, F>, size: usize, seed: u64) -> Self {
        let n = x.nrows();
        let rows: Vec<usize> = if n <= size {
            (0..n).collect()
        } else {
            let mut rng = Xoshiro256Plus::seed_from_u64(seed);
            let mut picked = sample(&mut rng, n, size).into_vec();
            picked.sort_unstable();
            picked
        };
        let points = x.select(Axis(0), &rows).as_standard_layout().into_owned();
        SilhouetteSample { rows, points }
    }

    /// The mean silhouette of the sampled rows under `labels` (labels of
    /// every row, from 0 to k − 1), as scikit-learn's `silhouette_score`;
    /// `None` with fewer than two clusters in the sample.
    ///
    /// The sample is sorted by label and laid out by column, so that each
    /// row's distances to a whole cluster are one run of vector arithmetic
    /// and one sum; no distance matrix is kept. Rows run in parallel and
    /// their terms are added in row order, the same on any thread count.
    pub fn score(&self, labels: &[usize], k: usize) -> Option<f64> {
        let sample_labels: Vec<usize> = self.rows.iter().map(|&r| labels[r]).collect();
        let mut sizes = vec![0usize; k];
        for &l in &sample_labels {
            sizes[l] += 1;
        }
        if sizes.iter().filter(|&&s| s > 0).count() < 2 {
            return None;
        }
        let (s, d) = self.points.dim();
        let mut order: Vec<usize> = (0..s).collect();
        order.sort_by_key(|&i| sample_labels[i]);
        let mut columns = vec![F::zero(); s * d];
        for (at, &i) in order.iter().enumerate() {
            for (j, v) in self.points.row(i).iter().enumerate() {
                columns[j * s + at] = *v;
            }
        }
        let mut starts = vec![0usize; k + 1];
        for c in 0..k {
            starts[c + 1] = starts[c] + sizes[c];
        }
        let points = self.points.as_slice().unwrap_or(&[]);
        let terms: Vec<f64> = (0..s)
            .into_par_iter()
            .map_init(
                || (vec![F::zero(); s], vec![0.0; k]),
                |(distances, sums), i| {
                    wide::run(SilhouetteRow {
                        point: &points[i * d..(i + 1) * d],
                        columns: &columns,
                        starts: &starts,
                        distances,
                        sums,
                    });
                    let own = sample_labels[i];
                    if sizes[own] <= 1 {
                        return 0.0;
                    }
                    let a = sums[own] / (sizes[own] - 1) as f64;
                    let b = (0..k)
                        .filter(|&c| c != own && sizes[c] > 0)
                        .map(|c| sums[c] / sizes[c] as f64)
                        .fold(f64::INFINITY, f64::min);
                    match a.max(b) {
                        m if m > 0.0 => (b - a) / m,
                        _ => 0.0,
                    }
                },
            )
            .collect();
        Some(terms.iter().sum::<f64>() / s as f64)
    }
}

/// One sampled row's summed distances to each cluster of the sample.
struct SilhouetteRow<'a, F> {
    point: &'a [F],
    /// The sample by column (d × s), sorted by label.
    columns: &'a [F],
    /// Where each cluster's rows start in that order, and the end.
    starts: &'a [usize],
    distances: &'a mut [F],
    /// Out: per cluster, the sum of the distances to its rows.
    sums: &'a mut [f64],
}

impl<F: Float> Kernel for SilhouetteRow<'_, F> {
    type Output = ();

    #[inline(always)]
    fn run<const FUSED: bool>(self) {
        let s = self.distances.len();
        self.distances.fill(F::zero());
        for (j, c) in self.point.iter().enumerate() {
            let column = &self.columns[j * s..(j + 1) * s];
            for (acc, v) in self.distances.iter_mut().zip(column) {
                let diff = *v - *c;
                *acc = mul_add::<F, FUSED>(diff, diff, *acc);
            }
        }
        for v in self.distances.iter_mut() {
            *v = v.sqrt();
        }
        for (c, sum) in self.sums.iter_mut().enumerate() {
            let cluster = &self.distances[self.starts[c]..self.starts[c + 1]];
            *sum = wide::sum::<F, 16>(cluster);
        }
    }
}

/// Rows per parallel block of the Davies–Bouldin passes.
const BLOCK: usize = 4096;

/// The Davies–Bouldin index of a labelling (lower is better), with each
/// cluster's centre the mean of its rows, as scikit-learn computes it.
pub fn davies_bouldin<F: Float>(x: &ArrayView2<'_, F>, labels: &[usize], k: usize) -> f64 {
    let x = x.as_standard_layout();
    let d = x.ncols();
    let values = x.as_slice().unwrap_or(&[]);
    if d == 0 || k == 0 {
        return 0.0;
    }
    // Per-block sums, added in block order: the same on any thread count.
    let parts: Vec<(Vec<f64>, Vec<usize>)> = values
        .par_chunks(BLOCK * d)
        .zip(labels.par_chunks(BLOCK))
        .map(|(rows, labels)| {
            let (mut sums, mut sizes) = (vec![0.0; k * d], vec![0usize; k]);
            for (row, &l) in rows.chunks_exact(d).zip(labels) {
                sizes[l] += 1;
                for (acc, v) in sums[l * d..(l + 1) * d].iter_mut().zip(row) {
                    *acc += to_f64(*v);
                }
            }
            (sums, sizes)
        })
        .collect();
    let mut centres = Array2::<f64>::zeros((k, d));
    let mut sizes = vec![0usize; k];
    for (sums, part_sizes) in &parts {
        for (acc, v) in centres.iter_mut().zip(sums) {
            *acc += v;
        }
        for (acc, v) in sizes.iter_mut().zip(part_sizes) {
            *acc += v;
        }
    }
    for (mut centre, &size) in centres.rows_mut().into_iter().zip(&sizes) {
        centre.mapv_inplace(|v| v / size.max(1) as f64);
    }
    let flat_centres = centres.as_slice().unwrap_or(&[]);
    let spreads: Vec<Vec<f64>> = values
        .par_chunks(BLOCK * d)
        .zip(labels.par_chunks(BLOCK))
        .map(|(rows, labels)| {
            let mut spread = vec![0.0; k];
            for (row, &l) in rows.chunks_exact(d).zip(labels) {
                let centre = &flat_centres[l * d..(l + 1) * d];
                spread[l] += row
                    .iter()
                    .zip(centre)
                    .map(|(v, c)| (to_f64(*v) - c).powi(2))
                    .sum::<f64>()
                    .sqrt();
            }
            spread
        })
        .collect();
    let mut spread = vec![0.0; k];
    for part in &spreads {
        for (acc, v) in spread.iter_mut().zip(part) {
            *acc += v;
        }
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
    fn silhouette_matches_the_definition_on_random_data() {
        use rand::Rng;
        let mut rng = Xoshiro256Plus::seed_from_u64(9);
        let x = Array2::from_shape_fn((301, 3), |_| rng.r#gen::<f64>());
        let labels: Vec<usize> = (0..301).map(|i| (i * 7 + i / 50) % 4).collect();
        // a(i): mean distance to its own cluster; b(i): the least mean
        // distance to another; s(i) = (b − a) / max(a, b).
        let distance = |i: usize, j: usize| {
            x.row(i)
                .iter()
                .zip(x.row(j))
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let mut expected = 0.0;
        for i in 0..301 {
            let mean = |c: usize, own: bool| {
                let members: Vec<usize> = (0..301).filter(|&j| labels[j] == c).collect();
                let total: f64 = members.iter().map(|&j| distance(i, j)).sum();
                total / (members.len() - usize::from(own)) as f64
            };
            let a = mean(labels[i], true);
            let b = (0..4)
                .filter(|&c| c != labels[i])
                .map(|c| mean(c, false))
                .fold(f64::INFINITY, f64::min);
            expected += (b - a) / a.max(b);
        }
        expected /= 301.0;
        let got = SilhouetteSample::draw(&x.view(), 1000, 1)
            .score(&labels, 4)
            .expect("four clusters");
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        // In f32 the same to single precision.
        let narrow = SilhouetteSample::draw(&x.mapv(|v| v as f32).view(), 1000, 1)
            .score(&labels, 4)
            .expect("four clusters");
        assert!((narrow - expected).abs() < 1e-5, "{narrow} vs {expected}");
    }

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
