//! Greedy k-means++ seeding, as scikit-learn does it.

use super::BLOCK;
use super::kernel::{SeedBlock, in_fours};
use linfa::Float;
use ndarray::{Array2, ArrayView2, Axis, s};
use rand::Rng;
use rand_xoshiro::Xoshiro256Plus;
use rayon::prelude::*;

use crate::segment::wide::{self};

/// Greedy k-means++ (as scikit-learn): each new centroid is the best of
/// 2 + ln k candidates drawn in proportion to the squared distance to the
/// nearest centroid so far. Reads `x` in the [`grouped`] layout.
pub(super) fn kmeans_plusplus<F: Float>(
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
