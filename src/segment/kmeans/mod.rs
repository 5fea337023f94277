//! k-means as a linfa model: k-means++ seeding and Lloyd iterations whose
//! assignment step is a blocked distance kernel (f32 or f64). Up to 16
//! centres, rows are laid out in groups by column ([`grouped`]) and their
//! exact squared distances to four centres at a time are plain vector
//! arithmetic (`kernel::nearest_in_group`); above, ‖x‖² − 2·x·cᵀ + ‖c‖² with the
//! products by matrix multiply. The loops are compiled for AVX2 with FMA
//! too, chosen at run time (`wide.rs`). Blocks of rows run in parallel and
//! their partial sums are added in block order, so the result is the same
//! on any number of threads.
//!
//! linfa 0.8's own `KMeans` measures distances one pair at a time and
//! updates centroids on one thread; this model keeps linfa's `Fit` and
//! `Predict` traits and follows scikit-learn's algorithm (greedy k-means++,
//! tolerance relative to the data's variance, empty clusters moved to the
//! farthest points, a final assignment to the final centroids).

mod init;
mod kernel;
mod lloyd;

use self::init::kmeans_plusplus;
use self::kernel::{AssignBlock, Centres, DIRECT_CENTRES, Rows, block_rows, grouped};
use self::lloyd::lloyd;
use linfa::traits::{Fit, PredictInplace};
use linfa::{DatasetBase, Float};
use ndarray::{Array1, Array2, ArrayBase, ArrayView2, Data, Ix2};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use rayon::prelude::*;

use super::wide;

/// Rows per block of the distance kernel: a block's products (rows × k)
/// stay in cache, and the block boundaries, not the threads, fix the order
/// in which partial sums are added.
const BLOCK: usize = 2048;

/// Checked k-means settings; `fit` returns a [`KMeansModel`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    /// Number of clusters.
    pub k: usize,
    /// Independent k-means++ initialisations; the fit with the lowest
    /// inertia is kept.
    pub n_init: usize,
    /// Lloyd iterations per initialisation, at most.
    pub max_iter: usize,
    /// Convergence tolerance, relative to the mean variance of the
    /// features: iterations stop when the centroids' total squared shift
    /// falls below `tolerance × mean variance` (scikit-learn's `tol`).
    pub tolerance: f64,
    /// Seed of the initialisations.
    pub seed: u64,
    /// Initial centroids (k × d) instead of k-means++; one initialisation.
    pub init: Option<Array2<f64>>,
}

/// A problem fitting k-means.
#[derive(Debug, thiserror::Error)]
pub enum KMeansError {
    /// `k` is zero or larger than the rows.
    #[error("`k` must be between 1 and the number of rows ({rows}), got {k}")]
    InvalidK {
        /// Asked for.
        k: usize,
        /// Rows of the data.
        rows: usize,
    },
    /// `n_init` or `max_iter` is zero.
    #[error("`{0}` must be at least 1")]
    ZeroCount(&'static str),
    /// A negative or non-finite tolerance.
    #[error("`tolerance` must be a finite number of at least 0, got {0}")]
    InvalidTolerance(f64),
    /// NaN or infinite values in the data.
    #[error("the data holds a NaN or infinite value (row {row}, column {column})")]
    NonFinite {
        /// The first such row, from 0.
        row: usize,
        /// Its column, from 0.
        column: usize,
    },
    /// A linfa error.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

/// A fitted k-means model.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansModel<F> {
    /// Centroids, k × d.
    pub centroids: Array2<F>,
    /// Sum of squared distances of the training rows to their centroids.
    pub inertia: f64,
    /// Lloyd iterations of the kept initialisation.
    pub iterations: usize,
    /// Whether it converged before `max_iter`.
    pub converged: bool,
}

/// Where each row falls: nearest centroid, second nearest, and distances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assignment {
    /// Nearest centroid, from 0.
    pub labels: Vec<usize>,
    /// Euclidean distance to it.
    pub distances: Vec<f64>,
    /// Second nearest centroid (the nearest when k = 1).
    pub second: Vec<usize>,
    /// Euclidean distance to the second nearest.
    pub second_distances: Vec<f64>,
}

impl KMeansParams {
    fn check(&self, rows: usize) -> Result<(), KMeansError> {
        if self.k == 0 || self.k > rows {
            return Err(KMeansError::InvalidK { k: self.k, rows });
        }
        if self.n_init == 0 {
            return Err(KMeansError::ZeroCount("n_init"));
        }
        if self.max_iter == 0 {
            return Err(KMeansError::ZeroCount("max_iter"));
        }
        if !self.tolerance.is_finite() || self.tolerance < 0.0 {
            return Err(KMeansError::InvalidTolerance(self.tolerance));
        }
        Ok(())
    }
}

impl<F: Float, D: Data<Elem = F>, T> Fit<ArrayBase<D, Ix2>, T, KMeansError> for KMeansParams {
    type Object = KMeansModel<F>;

    fn fit(
        &self,
        dataset: &DatasetBase<ArrayBase<D, Ix2>, T>,
    ) -> Result<KMeansModel<F>, KMeansError> {
        // Every loop below walks rows as contiguous slices.
        let x = dataset.records.as_standard_layout();
        let x = x.view();
        self.check(x.nrows())?;
        ensure_finite(&x)?;
        let norms = norms_if_needed(&x, self.k);
        let direct = self.k <= DIRECT_CENTRES && x.ncols() > 0;
        // Built once for k-means++ and, up to 16 centres, every Lloyd step;
        // not at all when neither reads it (given centroids, more centres).
        let grouped = match self.init.is_none() || direct {
            true => grouped(&x),
            false => Vec::new(),
        };
        let lloyd_grouped = direct.then_some(&grouped[..]);
        let tolerance = self.tolerance * mean_variance(&x);
        let mut rng = Xoshiro256Plus::seed_from_u64(self.seed);
        let mut best: Option<KMeansModel<F>> = None;
        let runs = if self.init.is_some() { 1 } else { self.n_init };
        for _ in 0..runs {
            let init = match &self.init {
                Some(init) => init.mapv(|v| F::from_f64(v).unwrap_or_else(F::zero)),
                None => kmeans_plusplus(&x, &grouped, self.k, &mut rng),
            };
            let model = lloyd(&x, lloyd_grouped, &norms, init, self.max_iter, tolerance);
            if best.as_ref().is_none_or(|b| model.inertia < b.inertia) {
                best = Some(model);
            }
        }
        best.ok_or(KMeansError::ZeroCount("n_init"))
    }
}

impl<F: Float, D: Data<Elem = F>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>>
    for KMeansModel<F>
{
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        let assignment = self.assign(&x.view());
        for (slot, label) in y.iter_mut().zip(assignment.labels) {
            *slot = label;
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

impl<F: Float> KMeansModel<F> {
    /// The nearest and second-nearest centroid of each row, with distances.
    pub fn assign(&self, x: &ArrayView2<'_, F>) -> Assignment {
        let x = x.as_standard_layout();
        let x = x.view();
        let n = x.nrows();
        let norms = norms_if_needed(&x, self.centroids.nrows());
        let view = self.centroids.view();
        let centres = Centres::new(&view);
        let mut out = Assignment {
            labels: vec![0; n],
            distances: vec![0.0; n],
            second: vec![0; n],
            second_distances: vec![0.0; n],
        };
        let Assignment {
            labels,
            distances,
            second,
            second_distances,
        } = &mut out;
        labels
            .par_chunks_mut(BLOCK)
            .zip(distances.par_chunks_mut(BLOCK))
            .zip(second.par_chunks_mut(BLOCK))
            .zip(second_distances.par_chunks_mut(BLOCK))
            .enumerate()
            .for_each_init(
                Vec::new,
                |scratch, (b, (((labels, distances), second), second_d))| {
                    wide::run(AssignBlock {
                        rows: Rows {
                            x: &x,
                            grouped: None,
                            norms: &norms,
                            centres: &centres,
                            range: block_rows(b, n),
                        },
                        scratch,
                        labels,
                        distances,
                        second,
                        second_distances: second_d,
                    })
                },
            );
        out
    }
}

/// The rows of a standard-layout matrix as one slice.
fn flat<'a, F: Float>(x: &'a ArrayView2<'_, F>) -> &'a [F] {
    x.as_slice().unwrap_or(&[])
}

fn ensure_finite<F: Float>(x: &ArrayView2<'_, F>) -> Result<(), KMeansError> {
    let d = x.ncols().max(1);
    match flat(x).iter().position(|v| !v.is_finite()) {
        Some(at) => Err(KMeansError::NonFinite {
            row: at / d,
            column: at % d,
        }),
        None => Ok(()),
    }
}

/// Row norms for the matrix-multiply kernel, which only runs with more
/// than [`DIRECT_CENTRES`] centres.
fn norms_if_needed<F: Float>(x: &ArrayView2<'_, F>, centres: usize) -> Vec<F> {
    match centres > DIRECT_CENTRES {
        true => row_norms(x),
        false => Vec::new(),
    }
}

/// ‖x‖² of each row of a standard-layout matrix.
fn row_norms<F: Float>(x: &ArrayView2<'_, F>) -> Vec<F> {
    let d = x.ncols();
    if d == 0 {
        return vec![F::zero(); x.nrows()];
    }
    flat(x)
        .chunks(d)
        .map(|row| row.iter().fold(F::zero(), |acc, v| acc + *v * *v))
        .collect()
}

/// The mean over features of each feature's variance.
fn mean_variance<F: Float>(x: &ArrayView2<'_, F>) -> f64 {
    let (n, d) = x.dim();
    if d == 0 || n == 0 {
        return 0.0;
    }
    // One pass of sums and sums of squares, shifted by the first row so
    // that large offsets do not cancel.
    let values = flat(x);
    let shift: Vec<f64> = values[..d]
        .iter()
        .map(|v| v.to_f64().unwrap_or(0.0))
        .collect();
    let (mut sums, mut squares) = (vec![0.0; d], vec![0.0; d]);
    for row in values.chunks(d) {
        for (((s, q), v), c) in sums.iter_mut().zip(&mut squares).zip(row).zip(&shift) {
            let v = v.to_f64().unwrap_or(0.0) - c;
            *s += v;
            *q += v * v;
        }
    }
    let n = n as f64;
    let total: f64 = sums
        .iter()
        .zip(&squares)
        .map(|(s, q)| (q / n - (s / n).powi(2)).max(0.0))
        .sum();
    total / d as f64
}

#[cfg(test)]
mod tests {
    use super::kernel::StepBlock;
    use super::*;
    use crate::segment::wide::Kernel;
    use linfa::traits::Predict;
    use ndarray::array;
    use rand::Rng;

    fn params(k: usize) -> KMeansParams {
        KMeansParams {
            k,
            n_init: 3,
            max_iter: 100,
            tolerance: 1e-4,
            seed: 7,
            init: None,
        }
    }

    fn blobs(n: usize) -> Array2<f64> {
        let mut rng = Xoshiro256Plus::seed_from_u64(1);
        Array2::from_shape_fn((n, 3), |(i, j)| {
            (i % 3) as f64 * 10.0 + j as f64 + rng.r#gen::<f64>()
        })
    }

    #[test]
    fn separates_obvious_groups_and_predicts_them() {
        let data = array![
            [0.0, 0.1],
            [0.1, 0.0],
            [0.0, 0.0],
            [10.0, 10.1],
            [10.1, 10.0]
        ];
        let model = params(2)
            .fit(&DatasetBase::from(data.clone()))
            .expect("fits");
        let labels = model.predict(&data);
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[3], labels[4]);
        assert_ne!(labels[0], labels[3]);
        assert!(model.converged);
        assert!(model.inertia < 0.1, "{}", model.inertia);
    }

    #[test]
    fn same_result_on_one_thread_and_many() {
        let data = blobs(3 * BLOCK + 17);
        let fit = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                params(4)
                    .fit(&DatasetBase::from(data.clone()))
                    .expect("fits")
            })
        };
        assert_eq!(fit(1), fit(4));
    }

    #[test]
    fn f32_and_f64_agree() {
        let data = blobs(999);
        let wide = params(3)
            .fit(&DatasetBase::from(data.clone()))
            .expect("fits");
        let narrow = params(3)
            .fit(&DatasetBase::from(data.mapv(|v| v as f32)))
            .expect("fits");
        assert!((wide.inertia - narrow.inertia).abs() / wide.inertia < 1e-4);
    }

    /// Nearest and second nearest by brute force: (index, squared distance).
    fn brute_force(x: &Array2<f64>, centres: &Array2<f64>) -> Vec<[(usize, f64); 2]> {
        x.rows()
            .into_iter()
            .map(|row| {
                let mut all: Vec<(usize, f64)> = centres
                    .rows()
                    .into_iter()
                    .enumerate()
                    .map(|(j, c)| (j, row.iter().zip(c).map(|(a, b)| (a - b).powi(2)).sum()))
                    .collect();
                all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                [all[0], *all.get(1).unwrap_or(&all[0])]
            })
            .collect()
    }

    #[test]
    fn kernels_agree_with_brute_force_for_every_centre_count() {
        // Across the direct kernel (1 to 16 centres, padded to fours) and
        // the matrix-multiply one (17), rows not a multiple of the group
        // size, in both precisions and both compiled versions.
        let mut rng = Xoshiro256Plus::seed_from_u64(3);
        let x = Array2::from_shape_fn((2 * BLOCK + 37, 5), |_| rng.r#gen::<f64>() * 10.0);
        for m in [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17] {
            let centres = Array2::from_shape_fn((m, 5), |_| rng.r#gen::<f64>() * 10.0);
            let expected = brute_force(&x, &centres);
            let wide = KMeansModel {
                centroids: centres.clone(),
                inertia: 0.0,
                iterations: 0,
                converged: true,
            };
            let got = wide.assign(&x.view());
            for (i, [(best, best_d), (second, second_d)]) in expected.iter().enumerate() {
                assert_eq!(got.labels[i], *best, "m = {m}, row {i}");
                assert!((got.distances[i] - best_d.sqrt()).abs() < 1e-9, "m = {m}");
                if m > 1 {
                    assert_eq!(got.second[i], *second, "m = {m}, row {i}");
                    assert!((got.second_distances[i] - second_d.sqrt()).abs() < 1e-9);
                } else {
                    assert_eq!(got.second[i], 0);
                }
            }
            let narrow = KMeansModel {
                centroids: centres.mapv(|v| v as f32),
                inertia: 0.0,
                iterations: 0,
                converged: true,
            };
            let got = narrow.assign(&x.mapv(|v| v as f32).view());
            let agree = expected
                .iter()
                .zip(&got.labels)
                .filter(|([(best, _), _], label)| best == *label)
                .count();
            // f32 may break near-ties the other way; nothing more.
            assert!(agree as f64 >= 0.999 * x.nrows() as f64, "m = {m}: {agree}");
            // The portable version (no FMA) finds the same labels.
            let view = x.view();
            let centroid_view = centres.view();
            let prepared = Centres::new(&centroid_view);
            let (mut labels, mut distances) = (vec![0u32; BLOCK], vec![0.0; BLOCK]);
            let block = StepBlock {
                rows: Rows {
                    x: &view,
                    grouped: None,
                    norms: &row_norms(&view),
                    centres: &prepared,
                    range: block_rows(1, x.nrows()),
                },
                scratch: &mut Vec::new(),
                labels: &mut labels,
                distances: &mut distances,
            };
            let part = block.run::<false>();
            assert_eq!(part.counts.iter().sum::<u64>(), BLOCK as u64);
            for (i, label) in labels.iter().enumerate() {
                assert_eq!(
                    *label as usize,
                    expected[BLOCK + i][0].0,
                    "m = {m}, row {i}"
                );
            }
        }
    }

    #[test]
    fn second_nearest_and_distances() {
        let model = KMeansModel {
            centroids: array![[0.0, 0.0], [3.0, 0.0], [10.0, 0.0]],
            inertia: 0.0,
            iterations: 1,
            converged: true,
        };
        let got = model.assign(&array![[1.0, 0.0], [9.0, 0.0]].view());
        assert_eq!(got.labels, vec![0, 2]);
        assert_eq!(got.second, vec![1, 1]);
        assert!((got.distances[0] - 1.0).abs() < 1e-9);
        assert!((got.second_distances[1] - 6.0).abs() < 1e-9);
    }

    #[test]
    fn rejects_bad_settings_and_values() {
        let data = array![[0.0], [1.0]];
        let err = params(3).fit(&DatasetBase::from(data.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`k` must be between 1 and the number of rows (2), got 3"
        );
        let err = params(1)
            .fit(&DatasetBase::from(array![[0.0], [f64::NAN]]))
            .unwrap_err();
        assert!(err.to_string().contains("row 1, column 0"), "{err}");
    }
}
