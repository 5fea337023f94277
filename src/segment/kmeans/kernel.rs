//! The blocked distance kernels: each row's nearest and second-nearest
//! centre, exact squared distances to four centres at a time for up to 16
//! centres (rows grouped by column), ‖x‖² − 2·x·cᵀ + ‖c‖² by matrix
//! multiply above. Blocks run in parallel; their partial sums are added in
//! block order.

use super::{BLOCK, flat, row_norms};
use linfa::Float;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, s};
use rayon::prelude::*;

use crate::segment::wide::{Kernel, mul_add, to_f64};

/// Centres up to which distances are computed directly rather than by
/// matrix multiply: for few centres, packing the operands for the multiply
/// costs more than the arithmetic it saves.
pub(super) const DIRECT_CENTRES: usize = 16;

/// Centres prepared for the distance kernels: four at a time by dimension
/// for the direct one, and with their norms for the matrix-multiply one.
pub(super) struct Centres<'a, F> {
    pub(super) view: ArrayView2<'a, F>,
    /// Centres [`CENTRES_AT_ONCE`] at a time, each group by dimension
    /// (groups × d), for [`nearest_in_group`].
    pub(super) in_fours: Vec<[F; CENTRES_AT_ONCE]>,
    pub(super) norms: Vec<F>,
}

impl<'a, F: Float> Centres<'a, F> {
    pub(super) fn new(centers: &ArrayView2<'a, F>) -> Self {
        Centres {
            view: *centers,
            in_fours: in_fours(centers),
            norms: row_norms(&centers.as_standard_layout().view()),
        }
    }

    /// The squared distances of rows `start..end` of `x` to every centre,
    /// rows × m, in `scratch`, by matrix multiply (more than
    /// [`DIRECT_CENTRES`] centres, or no columns).
    pub(super) fn distances<'s>(
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
pub(super) fn in_fours<F: Float>(centers: &ArrayView2<'_, F>) -> Vec<[F; CENTRES_AT_ONCE]> {
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
pub(super) fn block_rows(b: usize, n: usize) -> (usize, usize) {
    (b * BLOCK, ((b + 1) * BLOCK).min(n))
}

/// One block's share of a Lloyd step.
pub(super) struct Partial<F> {
    /// Whether a row of the block changed centroid.
    pub(super) changed: bool,
    /// Per centroid, the sum of its rows in the data's precision: a block
    /// is at most 2,048 rows; blocks are added up in f64.
    pub(super) sums: Vec<F>,
    pub(super) counts: Vec<u64>,
}

/// A row's nearest centre and, when asked, its second nearest, with their
/// squared distances.
#[derive(Clone, Copy)]
pub(super) struct Nearest<F> {
    pub(super) best: u32,
    pub(super) best_d: F,
    pub(super) second: u32,
    pub(super) second_d: F,
}

impl<F: Float> Nearest<F> {
    /// No centre seen yet.
    pub(super) fn none() -> Self {
        Nearest {
            best: 0,
            best_d: F::infinity(),
            second: 0,
            second_d: F::infinity(),
        }
    }

    /// Takes centre `j` at squared distance `v` into account.
    #[inline(always)]
    pub(super) fn offer<const SECOND: bool>(&mut self, j: u32, v: F) {
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
pub(super) fn offer<F: Float, const SECOND: bool>(
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
pub(super) struct Rows<'a, 'x, 'c, F> {
    pub(super) x: &'a ArrayView2<'x, F>,
    /// `x` as [`grouped`] lays it out, when the caller has it.
    pub(super) grouped: Option<&'a [F]>,
    pub(super) norms: &'a [F],
    pub(super) centres: &'a Centres<'c, F>,
    pub(super) range: (usize, usize),
}

impl<F: Float> Rows<'_, '_, '_, F> {
    /// Calls `visit(i, values, nearest)` for each row, `i` counted from
    /// the block's first row; the second nearest only when `SECOND`.
    #[inline(always)]
    pub(super) fn for_each_nearest<const FUSED: bool, const SECOND: bool>(
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
    pub(super) fn by_groups<const L: usize, const FUSED: bool, const SECOND: bool>(
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
pub(super) fn lanes<F>() -> usize {
    match std::mem::size_of::<F>() <= 4 {
        true => 16,
        false => 8,
    }
}

/// `x` (standard layout) in groups of [`lanes`] rows, each group by column
/// (group × column × row in the group), the last group padded with
/// zeros: the layout [`nearest_in_group`] reads. Built once per fit, it
/// spares every Lloyd iteration a transposition.
pub(super) fn grouped<F: Float>(x: &ArrayView2<'_, F>) -> Vec<F> {
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
pub(super) fn by_column<F: Copy>(rows: &[F], d: usize, lanes: usize, out: &mut [F]) {
    for (r, row) in rows.chunks_exact(d).enumerate() {
        for (j, v) in row.iter().enumerate() {
            out[j * lanes + r] = *v;
        }
    }
}

/// One block's Lloyd step: each row's nearest centre and squared distance
/// written in place, and the block's rows summed per centre.
pub(super) struct StepBlock<'a, 'x, 'c, F> {
    pub(super) rows: Rows<'a, 'x, 'c, F>,
    pub(super) scratch: &'a mut Vec<F>,
    pub(super) labels: &'a mut [u32],
    pub(super) distances: &'a mut [f64],
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
pub(super) struct AssignBlock<'a, 'x, 'c, F> {
    pub(super) rows: Rows<'a, 'x, 'c, F>,
    pub(super) scratch: &'a mut Vec<F>,
    pub(super) labels: &'a mut [usize],
    pub(super) distances: &'a mut [f64],
    pub(super) second: &'a mut [usize],
    pub(super) second_distances: &'a mut [f64],
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
pub(super) const CENTRES_AT_ONCE: usize = 4;

/// The squared distances of `L` rows given by column to four centres
/// given by dimension (one group of [`in_fours`]).
#[inline(always)]
pub(super) fn four_distances<F: Float, const L: usize, const FUSED: bool>(
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
pub(super) struct SeedBlock<'a, F> {
    /// The block's groups of rows, by column.
    pub(super) grouped: &'a [F],
    pub(super) d: usize,
    /// The block's rows' squared distances to their nearest centre so far.
    pub(super) closest: &'a mut [f64],
    pub(super) centres: &'a [[F; CENTRES_AT_ONCE]],
    pub(super) m: usize,
    pub(super) update: bool,
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
    pub(super) fn by_groups<const L: usize, const FUSED: bool>(self) -> Vec<f64> {
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
pub(super) fn nearest_in_group<F: Float, const L: usize, const FUSED: bool, const SECOND: bool>(
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
