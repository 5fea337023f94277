//! Lloyd iterations: assign, move the centres, relocate empty clusters to
//! the farthest points, until the shift is within tolerance.

use super::kernel::{Centres, DIRECT_CENTRES, Partial, Rows, StepBlock, block_rows};
use super::{BLOCK, KMeansModel, flat};
use linfa::Float;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::segment::wide::{self};

/// The rows' current assignment and the per-centroid sums of a Lloyd step.
pub(super) struct LloydState {
    /// Nearest centroid of each row.
    pub(super) labels: Vec<u32>,
    /// Squared distance of each row to it.
    pub(super) distances: Vec<f64>,
    /// Per centroid, the sum of its rows (k × d).
    pub(super) sums: Array2<f64>,
    /// Per centroid, its rows.
    pub(super) counts: Vec<u64>,
}

/// Assigns every row to its nearest centroid and sums the rows per
/// centroid; returns whether any label changed.
pub(super) fn lloyd_step<F: Float>(
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
pub(super) fn relocate_empty<F: Float>(x: &ArrayView2<'_, F>, state: &mut LloydState) {
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
pub(super) fn lloyd<F: Float>(
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
pub(super) fn exact_inertia<F: Float>(
    x: &ArrayView2<'_, F>,
    centroids: &Array2<F>,
    labels: &[u32],
) -> f64 {
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
