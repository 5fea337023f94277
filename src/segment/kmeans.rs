//! k-means as a linfa model: k-means++ seeding and Lloyd iterations whose
//! assignment step is a blocked distance kernel (f32 or f64). Up to 16
//! centres, rows are laid out in groups by column ([`grouped`]) and their
//! exact squared distances to four centres at a time are plain vector
//! arithmetic ([`nearest_in_group`]); above, ‖x‖² − 2·x·cᵀ + ‖c‖² with the
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

use linfa::traits::{Fit, PredictInplace};
use linfa::{DatasetBase, Float};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayBase, ArrayView2, Axis, Data, Ix2, s};
use rand::Rng;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use rayon::prelude::*;

use super::wide::{self, Kernel, mul_add, to_f64};

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
        check_finite(&x)?;
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

fn check_finite<F: Float>(x: &ArrayView2<'_, F>) -> Result<(), KMeansError> {
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

/// Centres up to which distances are computed directly rather than by
/// matrix multiply: for few centres, packing the operands for the multiply
/// costs more than the arithmetic it saves.
const DIRECT_CENTRES: usize = 16;

/// Centres prepared for the distance kernels: four at a time by dimension
/// for the direct one, and with their norms for the matrix-multiply one.
struct Centres<'a, F> {
    view: ArrayView2<'a, F>,
    /// Centres [`CENTRES_AT_ONCE`] at a time, each group by dimension
    /// (groups × d), for [`nearest_in_group`].
    in_fours: Vec<[F; CENTRES_AT_ONCE]>,
    norms: Vec<F>,
}

impl<'a, F: Float> Centres<'a, F> {
    fn new(centers: &ArrayView2<'a, F>) -> Self {
        Centres {
            view: *centers,
            in_fours: in_fours(centers),
            norms: row_norms(&centers.as_standard_layout().view()),
        }
    }

    /// The squared distances of rows `start..end` of `x` to every centre,
    /// rows × m, in `scratch`, by matrix multiply (more than
    /// [`DIRECT_CENTRES`] centres, or no columns).
    fn distances<'s>(
        &self,
        x: &ArrayView2<'_, F>,
        norms: &[F],
        (start, end): (usize, usize),
        scratch: &'s mut Vec<F>,
    ) -> &'s [F] {
        let (m, d) = (self.view.nrows(), x.ncols());
        scratch.clear();
        scratch.resize((end - start) * m, F::zero());
        let dist = &mut scratch[..];
        // Without columns every distance is zero.
        if d == 0 {
            return dist;
        }
        if let Ok(mut block) = ndarray::ArrayViewMut2::from_shape((end - start, m), &mut *dist) {
            // `scratch` was sized for the block: `from_shape` cannot fail.
            let view = x.slice(s![start..end, ..]);
            general_mat_mul(F::one(), &view, &self.view.t(), F::zero(), &mut block);
            let two = F::one() + F::one();
            for (row, xn) in dist.chunks_mut(m).zip(&norms[start..end]) {
                for (v, cn) in row.iter_mut().zip(&self.norms) {
                    *v = (*xn - two * *v + *cn).max(F::zero());
                }
            }
        }
        dist
    }
}

/// The centres (m × d) [`CENTRES_AT_ONCE`] at a time, by dimension; the
/// last group is padded with centres at infinity, which are never nearest.
fn in_fours<F: Float>(centers: &ArrayView2<'_, F>) -> Vec<[F; CENTRES_AT_ONCE]> {
    let (m, d) = centers.dim();
    let mut out = Vec::with_capacity(m.div_ceil(CENTRES_AT_ONCE) * d);
    for first in (0..m).step_by(CENTRES_AT_ONCE) {
        for j in 0..d {
            out.push(std::array::from_fn(|c| match first + c < m {
                true => centers[(first + c, j)],
                false => F::infinity(),
            }));
        }
    }
    out
}

/// The rows of block `b`: `start..end`.
fn block_rows(b: usize, n: usize) -> (usize, usize) {
    (b * BLOCK, ((b + 1) * BLOCK).min(n))
}

/// Greedy k-means++ (as scikit-learn): each new centroid is the best of
/// 2 + ln k candidates drawn in proportion to the squared distance to the
/// nearest centroid so far. Reads `x` in the [`grouped`] layout.
fn kmeans_plusplus<F: Float>(
    x: &ArrayView2<'_, F>,
    grouped: &[F],
    k: usize,
    rng: &mut Xoshiro256Plus,
) -> Array2<F> {
    let (n, d) = x.dim();
    let trials = 2 + (k as f64).ln() as usize;
    let mut centers = Array2::<F>::zeros((k, d));
    if d == 0 {
        return centers;
    }
    // Every block of rows in parallel; the returned sums in block order.
    let seed = |closest: &mut [f64], centres: &ArrayView2<'_, F>, update: bool| -> Vec<f64> {
        let in_fours = in_fours(centres);
        let m = centres.nrows();
        let partials: Vec<Vec<f64>> = closest
            .par_chunks_mut(BLOCK)
            .zip(grouped.par_chunks(BLOCK * d))
            .map(|(closest, grouped)| {
                wide::run(SeedBlock {
                    grouped,
                    d,
                    closest,
                    centres: &in_fours,
                    m,
                    update,
                })
            })
            .collect();
        let mut sums = vec![0.0; m];
        for part in &partials {
            for (total, v) in sums.iter_mut().zip(part) {
                *total += v;
            }
        }
        sums
    };
    centers.row_mut(0).assign(&x.row(rng.gen_range(0..n)));
    // Padded to whole groups with zeros, which add nothing to the sums.
    let mut closest = vec![f64::INFINITY; n];
    closest.resize(grouped.len() / d, 0.0);
    seed(&mut closest, &centers.slice(s![0..1, ..]), true);
    let mut potential: f64 = closest.iter().sum();
    let mut cumulative = vec![0.0; n];
    for c in 1..k {
        let mut running = 0.0;
        for (acc, d) in cumulative.iter_mut().zip(&closest) {
            running += d;
            *acc = running;
        }
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let target = rng.r#gen::<f64>() * potential;
                cumulative.partition_point(|&v| v < target).min(n - 1)
            })
            .collect();
        let candidate_rows = x.select(Axis(0), &candidates);
        // The potential each candidate would leave.
        let potentials = seed(&mut closest, &candidate_rows.view(), false);
        let best = (0..trials).fold(0, |best, t| {
            if potentials[t] < potentials[best] {
                t
            } else {
                best
            }
        });
        potential = potentials[best];
        seed(
            &mut closest,
            &candidate_rows.slice(s![best..=best, ..]),
            true,
        );
        centers.row_mut(c).assign(&candidate_rows.row(best));
    }
    centers
}

/// One block's share of a Lloyd step.
struct Partial<F> {
    /// Whether a row of the block changed centroid.
    changed: bool,
    /// Per centroid, the sum of its rows in the data's precision: a block
    /// is at most 2,048 rows; blocks are added up in f64.
    sums: Vec<F>,
    counts: Vec<u64>,
}

/// A row's nearest centre and, when asked, its second nearest, with their
/// squared distances.
#[derive(Clone, Copy)]
struct Nearest<F> {
    best: u32,
    best_d: F,
    second: u32,
    second_d: F,
}

impl<F: Float> Nearest<F> {
    /// No centre seen yet.
    fn none() -> Self {
        Nearest {
            best: 0,
            best_d: F::infinity(),
            second: 0,
            second_d: F::infinity(),
        }
    }

    /// Takes centre `j` at squared distance `v` into account.
    #[inline(always)]
    fn offer<const SECOND: bool>(&mut self, j: u32, v: F) {
        let Nearest {
            best,
            best_d,
            second,
            second_d,
        } = self;
        offer::<F, SECOND>((best, best_d), (second, second_d), j, v);
    }
}

/// Takes centre `j` at squared distance `v` into account in a row's
/// running nearest (index, distance) and, with `SECOND`, its runner-up;
/// ties go to the lower index. Branch-free selections, so that over arrays
/// of rows it compiles to vector compare-and-blend.
#[inline(always)]
fn offer<F: Float, const SECOND: bool>(
    (best, best_d): (&mut u32, &mut F),
    (second, second_d): (&mut u32, &mut F),
    j: u32,
    v: F,
) {
    let closer = v < *best_d;
    if SECOND {
        let runner_up = v < *second_d;
        *second_d = if closer {
            *best_d
        } else if runner_up {
            v
        } else {
            *second_d
        };
        *second = if closer {
            *best
        } else if runner_up {
            j
        } else {
            *second
        };
    }
    *best_d = if closer { v } else { *best_d };
    *best = if closer { j } else { *best };
}

/// The rows `range` of a standard-layout `x`, whose nearest centres are
/// wanted.
struct Rows<'a, 'x, 'c, F> {
    x: &'a ArrayView2<'x, F>,
    /// `x` as [`grouped`] lays it out, when the caller has it.
    grouped: Option<&'a [F]>,
    norms: &'a [F],
    centres: &'a Centres<'c, F>,
    range: (usize, usize),
}

impl<F: Float> Rows<'_, '_, '_, F> {
    /// Calls `visit(i, values, nearest)` for each row, `i` counted from
    /// the block's first row; the second nearest only when `SECOND`.
    #[inline(always)]
    fn for_each_nearest<const FUSED: bool, const SECOND: bool>(
        &self,
        scratch: &mut Vec<F>,
        mut visit: impl FnMut(usize, &[F], Nearest<F>),
    ) {
        let (start, end) = self.range;
        let (m, d) = (self.centres.view.nrows(), self.x.ncols());
        let rows = &flat(self.x)[start * d..end * d];
        if m <= DIRECT_CENTRES && d > 0 {
            // Sixteen f32 or eight f64 rows at a time, two vector registers
            // per quantity; half as many when the runner-up doubles the
            // quantities, so that they all stay in registers.
            match (std::mem::size_of::<F>() <= 4, SECOND) {
                (true, false) => self.by_groups::<16, FUSED, SECOND>(rows, &mut visit),
                (false, false) | (true, true) => {
                    self.by_groups::<8, FUSED, SECOND>(rows, &mut visit)
                }
                (false, true) => self.by_groups::<4, FUSED, SECOND>(rows, &mut visit),
            }
            return;
        }
        let dist = self
            .centres
            .distances(self.x, self.norms, self.range, scratch);
        for (i, (row, values)) in dist.chunks(m.max(1)).zip(rows.chunks(d.max(1))).enumerate() {
            let mut nearest = Nearest::none();
            for (j, v) in row.iter().enumerate() {
                nearest.offer::<SECOND>(j as u32, *v);
            }
            visit(i, values, nearest);
        }
    }

    #[inline(always)]
    fn by_groups<const L: usize, const FUSED: bool, const SECOND: bool>(
        &self,
        rows: &[F],
        visit: &mut impl FnMut(usize, &[F], Nearest<F>),
    ) {
        let d = self.x.ncols();
        let mut scratch = vec![F::zero(); L * d];
        // Blocks start at a multiple of `BLOCK`, itself a multiple of `L`.
        let first = self.range.0 / L;
        for (g, group) in rows.chunks(L * d).enumerate() {
            let columns = match self.grouped {
                Some(all) if L == lanes::<F>() => {
                    &all[(first + g) * L * d..(first + g + 1) * L * d]
                }
                _ => {
                    by_column(group, d, L, &mut scratch);
                    &scratch
                }
            };
            let columns = columns.as_chunks::<L>().0;
            let found = nearest_in_group::<F, L, FUSED, SECOND>(columns, &self.centres.in_fours);
            for (r, values) in group.chunks_exact(d).enumerate() {
                visit(g * L + r, values, found[r]);
            }
        }
    }
}

/// Rows per group of [`nearest_in_group`] for `F`: two AVX2 registers.
fn lanes<F>() -> usize {
    match std::mem::size_of::<F>() <= 4 {
        true => 16,
        false => 8,
    }
}

/// `x` (standard layout) in groups of [`lanes`] rows, each group by column
/// (group × column × row in the group), the last group padded with
/// zeros: the layout [`nearest_in_group`] reads. Built once per fit, it
/// spares every Lloyd iteration a transposition.
fn grouped<F: Float>(x: &ArrayView2<'_, F>) -> Vec<F> {
    let (n, d, lanes) = (x.nrows(), x.ncols(), lanes::<F>());
    let mut out = vec![F::zero(); n.div_ceil(lanes) * lanes * d];
    if d == 0 {
        return out;
    }
    out.par_chunks_mut(lanes * d)
        .zip(flat(x).par_chunks(lanes * d))
        .for_each(|(group, rows)| by_column(rows, d, lanes, group));
    out
}

/// Lays out up to `lanes` rows (row-major, `d` values each) by column:
/// value `j` of row `r` goes to `out[j * lanes + r]`.
#[inline(always)]
fn by_column<F: Copy>(rows: &[F], d: usize, lanes: usize, out: &mut [F]) {
    for (r, row) in rows.chunks_exact(d).enumerate() {
        for (j, v) in row.iter().enumerate() {
            out[j * lanes + r] = *v;
        }
    }
}

/// One block's Lloyd step: each row's nearest centre and squared distance
/// written in place, and the block's rows summed per centre.
struct StepBlock<'a, 'x, 'c, F> {
    rows: Rows<'a, 'x, 'c, F>,
    scratch: &'a mut Vec<F>,
    labels: &'a mut [u32],
    distances: &'a mut [f64],
}

impl<F: Float> Kernel for StepBlock<'_, '_, '_, F> {
    type Output = Partial<F>;

    #[inline(always)]
    fn run<const FUSED: bool>(self) -> Partial<F> {
        let StepBlock {
            rows,
            scratch,
            labels,
            distances,
        } = self;
        let (k, d) = (rows.centres.view.nrows(), rows.x.ncols());
        let mut part = Partial {
            changed: false,
            sums: vec![F::zero(); k * d],
            counts: vec![0; k],
        };
        rows.for_each_nearest::<FUSED, false>(scratch, |i, values, nearest| {
            let best = nearest.best as usize;
            part.changed |= labels[i] != nearest.best;
            labels[i] = nearest.best;
            distances[i] = to_f64(nearest.best_d);
            part.counts[best] += 1;
            let acc = &mut part.sums[best * d..(best + 1) * d];
            for (a, v) in acc.iter_mut().zip(values) {
                *a += *v;
            }
        });
        part
    }
}

/// One block's final assignment: nearest and second nearest centre with
/// their distances.
struct AssignBlock<'a, 'x, 'c, F> {
    rows: Rows<'a, 'x, 'c, F>,
    scratch: &'a mut Vec<F>,
    labels: &'a mut [usize],
    distances: &'a mut [f64],
    second: &'a mut [usize],
    second_distances: &'a mut [f64],
}

impl<F: Float> Kernel for AssignBlock<'_, '_, '_, F> {
    type Output = ();

    #[inline(always)]
    fn run<const FUSED: bool>(self) {
        let AssignBlock {
            rows,
            scratch,
            labels,
            distances,
            second,
            second_distances,
        } = self;
        rows.for_each_nearest::<FUSED, true>(scratch, |i, _, nearest| {
            let best_d = to_f64(nearest.best_d).max(0.0).sqrt();
            labels[i] = nearest.best as usize;
            distances[i] = best_d;
            // With one centre, the second is the first.
            (second[i], second_distances[i]) = match to_f64(nearest.second_d) {
                d if d.is_finite() => (nearest.second as usize, d.max(0.0).sqrt()),
                _ => (nearest.best as usize, best_d),
            };
        });
    }
}

/// Centres handled together by [`nearest_in_group`]: each has its own
/// running sums, so that the additions do not wait on one another.
const CENTRES_AT_ONCE: usize = 4;

/// The squared distances of `L` rows given by column to four centres
/// given by dimension (one group of [`in_fours`]).
#[inline(always)]
fn four_distances<F: Float, const L: usize, const FUSED: bool>(
    columns: &[[F; L]],
    four: &[[F; CENTRES_AT_ONCE]],
) -> [[F; L]; CENTRES_AT_ONCE] {
    let mut acc = [[F::zero(); L]; CENTRES_AT_ONCE];
    for (column, c) in columns.iter().zip(four) {
        for (acc, c) in acc.iter_mut().zip(c) {
            for r in 0..L {
                let diff = column[r] - *c;
                acc[r] = mul_add::<F, FUSED>(diff, diff, acc[r]);
            }
        }
    }
    acc
}

/// One block of k-means++ seeding, on the [`grouped`] layout: with
/// `Seeding::Potentials`, the potential Σ min(closest, d²) each centre
/// would leave over the block's rows; with `Seeding::Update`, `closest`
/// lowered to the squared distance to the (single) centre where it is
/// nearer.
struct SeedBlock<'a, F> {
    /// The block's groups of rows, by column.
    grouped: &'a [F],
    d: usize,
    /// The block's rows' squared distances to their nearest centre so far.
    closest: &'a mut [f64],
    centres: &'a [[F; CENTRES_AT_ONCE]],
    m: usize,
    update: bool,
}

impl<F: Float> Kernel for SeedBlock<'_, F> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn run<const FUSED: bool>(self) -> Vec<f64> {
        match lanes::<F>() {
            16 => self.by_groups::<16, FUSED>(),
            _ => self.by_groups::<8, FUSED>(),
        }
    }
}

impl<F: Float> SeedBlock<'_, F> {
    #[inline(always)]
    fn by_groups<const L: usize, const FUSED: bool>(self) -> Vec<f64> {
        let mut sums = vec![0.0; self.m];
        let (groups, _) = self.grouped.as_chunks::<L>();
        let groups = groups.chunks_exact(self.d.max(1));
        for (columns, closest) in groups.zip(self.closest.chunks_mut(L)) {
            for (chunk, four) in self.centres.chunks_exact(self.d).enumerate() {
                let acc = four_distances::<F, L, FUSED>(columns, four);
                for (offset, acc) in acc.iter().enumerate() {
                    let j = chunk * CENTRES_AT_ONCE + offset;
                    if j >= self.m {
                        break;
                    }
                    // Rows in order, in f64: the same sums on any CPU
                    // version up to the distances' last bit.
                    for (near, v) in closest.iter_mut().zip(acc) {
                        let v = to_f64(*v);
                        match self.update {
                            true => *near = near.min(v),
                            false => sums[j] += near.min(v),
                        }
                    }
                }
            }
        }
        sums
    }
}

/// The nearest centre (and with `SECOND` the second nearest) of each of
/// `L` rows given by column (see [`grouped`]). `centres` holds them
/// [`CENTRES_AT_ONCE`] at a time, by dimension (see [`in_fours`]). Every
/// step works on all the rows at once: plain loops over `L` values, which
/// the compiler turns into vector instructions with no shuffling. Ties go
/// to the lower index.
#[inline(always)]
fn nearest_in_group<F: Float, const L: usize, const FUSED: bool, const SECOND: bool>(
    columns: &[[F; L]],
    centres: &[[F; CENTRES_AT_ONCE]],
) -> [Nearest<F>; L] {
    let d = columns.len();
    // One array per quantity (not an array of `Nearest`), so that each
    // comparison and selection is one vector instruction for all rows.
    let mut best = [0u32; L];
    let mut best_d = [F::infinity(); L];
    let mut second = [0u32; L];
    let mut second_d = [F::infinity(); L];
    for (chunk, four) in centres.chunks_exact(d).enumerate() {
        let acc = four_distances::<F, L, FUSED>(columns, four);
        for (offset, acc) in acc.iter().enumerate() {
            let j = (chunk * CENTRES_AT_ONCE + offset) as u32;
            for r in 0..L {
                offer::<F, SECOND>(
                    (&mut best[r], &mut best_d[r]),
                    (&mut second[r], &mut second_d[r]),
                    j,
                    acc[r],
                );
            }
        }
    }
    std::array::from_fn(|r| Nearest {
        best: best[r],
        best_d: best_d[r],
        second: second[r],
        second_d: second_d[r],
    })
}

/// The rows' current assignment and the per-centroid sums of a Lloyd step.
struct LloydState {
    /// Nearest centroid of each row.
    labels: Vec<u32>,
    /// Squared distance of each row to it.
    distances: Vec<f64>,
    /// Per centroid, the sum of its rows (k × d).
    sums: Array2<f64>,
    /// Per centroid, its rows.
    counts: Vec<u64>,
}

/// Assigns every row to its nearest centroid and sums the rows per
/// centroid; returns whether any label changed.
fn lloyd_step<F: Float>(
    x: &ArrayView2<'_, F>,
    grouped: Option<&[F]>,
    norms: &[F],
    centroids: &Array2<F>,
    state: &mut LloydState,
) -> bool {
    let LloydState {
        labels,
        distances,
        sums,
        counts,
    } = state;
    let view = centroids.view();
    let centres = Centres::new(&view);
    // Each block writes its rows' labels and distances in place and
    // returns its per-centroid sums, added up afterwards in block order.
    let partials: Vec<Partial<F>> = labels
        .par_chunks_mut(BLOCK)
        .zip(distances.par_chunks_mut(BLOCK))
        .enumerate()
        .map_init(Vec::new, |scratch, (b, (labels, distances))| {
            wide::run(StepBlock {
                rows: Rows {
                    x,
                    grouped,
                    norms,
                    centres: &centres,
                    range: block_rows(b, x.nrows()),
                },
                scratch,
                labels,
                distances,
            })
        })
        .collect();
    sums.fill(0.0);
    counts.fill(0);
    let mut changed = false;
    for part in partials {
        changed |= part.changed;
        for (total, v) in sums.iter_mut().zip(&part.sums) {
            *total += v.to_f64().unwrap_or(0.0);
        }
        for (total, v) in counts.iter_mut().zip(&part.counts) {
            *total += v;
        }
    }
    changed
}

/// Gives each empty cluster the row farthest from its centroid, taking it
/// out of its old cluster's sums (scikit-learn's relocation).
fn relocate_empty<F: Float>(x: &ArrayView2<'_, F>, state: &mut LloydState) {
    let LloydState {
        labels,
        distances,
        sums,
        counts,
    } = state;
    let empty: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| distances[b].total_cmp(&distances[a]).then(a.cmp(&b)));
    for (cluster, &row) in empty.iter().zip(&order) {
        let old = labels[row] as usize;
        if counts[old] <= 1 {
            continue;
        }
        let values = x.row(row).mapv(|v| v.to_f64().unwrap_or(0.0));
        let mut from = sums.row_mut(old);
        from -= &values;
        sums.row_mut(*cluster).assign(&values);
        counts[old] -= 1;
        counts[*cluster] = 1;
        labels[row] = *cluster as u32;
    }
}

/// Lloyd iterations from `centroids` until the labels stop changing, the
/// centroids move less than `tolerance` in total, or `max_iter`.
fn lloyd<F: Float>(
    x: &ArrayView2<'_, F>,
    grouped: Option<&[F]>,
    norms: &[F],
    mut centroids: Array2<F>,
    max_iter: usize,
    tolerance: f64,
) -> KMeansModel<F> {
    let (n, (k, d)) = (x.nrows(), centroids.dim());
    let mut state = LloydState {
        labels: vec![u32::MAX; n],
        distances: vec![0.0; n],
        sums: Array2::zeros((k, d)),
        counts: vec![0; k],
    };
    let (mut iterations, mut converged, mut labels_current) = (0, false, false);
    for _ in 0..max_iter {
        iterations += 1;
        if !lloyd_step(x, grouped, norms, &centroids, &mut state) {
            (converged, labels_current) = (true, true);
            break;
        }
        relocate_empty(x, &mut state);
        let mut shift = 0.0;
        for (c, mut centroid) in centroids.rows_mut().into_iter().enumerate() {
            let count = state.counts[c].max(1) as f64;
            for (value, sum) in centroid.iter_mut().zip(state.sums.row(c)) {
                let new = sum / count;
                shift += (new - value.to_f64().unwrap_or(0.0)).powi(2);
                *value = F::from_f64(new).unwrap_or(*value);
            }
        }
        if shift <= tolerance {
            converged = true;
            break;
        }
    }
    if !labels_current {
        lloyd_step(x, grouped, norms, &centroids, &mut state);
    }
    KMeansModel {
        // The direct kernel's distances are exact differences already;
        // the matrix-multiply expansion needs a recount.
        inertia: match k > DIRECT_CENTRES {
            true => exact_inertia(x, &centroids, &state.labels),
            false => state.distances.iter().sum(),
        },
        centroids,
        iterations,
        converged,
    }
}

/// Σ‖x − c‖² computed from differences in f64, free of the cancellation
/// of the norm expansion used to assign.
fn exact_inertia<F: Float>(x: &ArrayView2<'_, F>, centroids: &Array2<F>, labels: &[u32]) -> f64 {
    let d = x.ncols().max(1);
    let centroids = centroids.as_standard_layout();
    let centres = centroids.as_slice().unwrap_or(&[]);
    let partials: Vec<f64> = flat(x)
        .par_chunks(BLOCK * d)
        .zip(labels.par_chunks(BLOCK))
        .map(|(rows, labels)| {
            rows.chunks(d)
                .zip(labels)
                .map(|(row, &l)| {
                    let centre = &centres[l as usize * d..(l as usize + 1) * d];
                    row.iter()
                        .zip(centre)
                        .map(|(a, b)| {
                            (a.to_f64().unwrap_or(0.0) - b.to_f64().unwrap_or(0.0)).powi(2)
                        })
                        .sum::<f64>()
                })
                .sum()
        })
        .collect();
    partials.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::traits::Predict;
    use ndarray::array;

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
