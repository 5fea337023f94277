//! Feature scaling, the model file kept beside the outputs, and the
//! matching of a new fit's segments to the saved model's so that ids stay
//! stable from one night to the next.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::pipeline::Scaling;

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

/// The model file: enough to scale new data the same way, place citizens
/// in the same segments (`mode: assign`) and match the next fit's
/// segments to these ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedModel {
    /// The civica version that wrote it.
    pub civica_version: String,
    /// `kmeans` or `gmm`.
    pub model: String,
    /// Feature columns, in order.
    pub features: Vec<String>,
    /// Per feature: whether it went through ln(1 + x).
    pub log1p: Vec<bool>,
    /// Per feature: the value nulls were filled with, if any.
    pub fill: Vec<Option<f64>>,
    /// `standard`, `minmax`, `robust` or `none`.
    pub scaling: String,
    /// The fitted scaling.
    pub scaler: Scaler,
    /// The segment id of each centroid.
    pub segment_ids: Vec<i32>,
    /// Centroids in scaled units, one per segment id.
    pub centroids: Vec<Vec<f64>>,
    /// The id the next new segment gets; ids are never reused.
    pub next_segment_id: i32,
    /// The settings of the fit.
    pub settings: serde_json::Value,
    /// Quality figures of the fit.
    pub quality: serde_json::Value,
}

/// The largest centroid coordinate a saved model may hold, in scaled
/// units: beyond it a squared distance overflows.
const MAX_CENTROID: f64 = 1e150;

impl SavedModel {
    /// What cannot be in a model civica wrote: a model edited or damaged
    /// into one of these would place citizens wrongly or not at all.
    pub fn validate(&self) -> Result<(), String> {
        let d = self.features.len();
        if d == 0 {
            return Err("it lists no features".to_string());
        }
        for (what, len) in [
            ("`log1p`", self.log1p.len()),
            ("`fill`", self.fill.len()),
            ("`scaler.offset`", self.scaler.offset.len()),
            ("`scaler.scale`", self.scaler.scale.len()),
        ] {
            if len != d {
                return Err(format!("{what} has {len} values for {d} features"));
            }
        }
        if let Some(j) = (0..d).find(|&j| {
            !(self.scaler.offset[j].is_finite()
                && self.scaler.scale[j].is_finite()
                && self.scaler.scale[j] > 0.0)
        }) {
            return Err(format!(
                "the scaling of feature `{}` is not a finite offset and a positive scale",
                self.features[j]
            ));
        }
        if self.fill.iter().flatten().any(|v| !v.is_finite()) {
            return Err("a `fill` value is not finite".to_string());
        }
        if self.centroids.is_empty() {
            return Err("it has no centroids".to_string());
        }
        if self.segment_ids.len() != self.centroids.len() {
            return Err(format!(
                "it has {} segment ids for {} centroids",
                self.segment_ids.len(),
                self.centroids.len()
            ));
        }
        for (id, centroid) in self.segment_ids.iter().zip(&self.centroids) {
            if centroid.len() != d {
                return Err(format!(
                    "the centroid of segment {id} has {} values for {d} features",
                    centroid.len()
                ));
            }
            if let Some(j) = centroid
                .iter()
                .position(|v| !(v.is_finite() && v.abs() <= MAX_CENTROID))
            {
                return Err(format!(
                    "the centroid of segment {id} holds {:e} for feature `{}`, which no fit gives",
                    centroid[j], self.features[j]
                ));
            }
        }
        let mut ids = self.segment_ids.clone();
        ids.sort_unstable();
        if let Some(twice) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("segment id {} is listed twice", twice[0]));
        }
        if ids[0] < 1 {
            return Err(format!("segment id {} is not a positive number", ids[0]));
        }
        let last = ids[ids.len() - 1];
        if self.next_segment_id <= last {
            return Err(format!(
                "`next_segment_id` {} is not above the largest segment id {last}",
                self.next_segment_id
            ));
        }
        Ok(())
    }

    /// The centroids as a k × d matrix.
    pub fn centroid_matrix(&self) -> Array2<f64> {
        let d = self.features.len();
        Array2::from_shape_fn((self.centroids.len(), d), |(i, j)| {
            self.centroids[i].get(j).copied().unwrap_or(0.0)
        })
    }
}

/// Segment ids for a new fit. Without a previous model, ids run from 1 in
/// order of size. With one, each new centroid is paired with a previous
/// one by minimum total distance (Hungarian algorithm), compared in the
/// new fit's scaled units; a pair keeps the previous id when the centroid
/// moved less than half the distance between the two closest previous
/// centroids, so that it is unambiguously the same segment. Other segments
/// get new ids, from the previous model's `next_segment_id`.
///
/// `centroids` are the new centroids in scaled units, `sizes` their
/// segment sizes; `previous` holds the previous centroids already in the
/// new fit's scaled units, with their ids. Returns the id of each new
/// centroid and the next free id.
pub fn stable_ids(
    centroids: &Array2<f64>,
    sizes: &[usize],
    previous: Option<(&Array2<f64>, &[i32], i32)>,
) -> (Vec<i32>, i32) {
    let k = centroids.nrows();
    let mut by_size: Vec<usize> = (0..k).collect();
    by_size.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut ids = vec![0; k];
    let mut next = 1;
    if let Some((prev, prev_ids, prev_next)) = previous {
        next = prev_next;
        let distance = |a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let mut closest_pair = f64::INFINITY;
        for a in 0..prev.nrows() {
            for b in a + 1..prev.nrows() {
                closest_pair = closest_pair.min(distance(prev.row(a), prev.row(b)));
            }
        }
        let cost: Vec<Vec<f64>> = (0..k)
            .map(|i| {
                (0..prev.nrows())
                    .map(|j| distance(centroids.row(i), prev.row(j)))
                    .collect()
            })
            .collect();
        for (i, j) in min_cost_matching(&cost).into_iter().enumerate() {
            if let Some(j) = j
                && cost[i][j] < closest_pair / 2.0
            {
                ids[i] = prev_ids[j];
            }
        }
    }
    for &i in &by_size {
        if ids[i] == 0 {
            ids[i] = next;
            next += 1;
        }
    }
    (ids, next)
}

/// The pairing of rows to columns with the least total cost, each row to
/// at most one column and each column to at most one row (as many pairs as
/// the smaller side has): the Hungarian algorithm with potentials, O(n²m).
pub fn min_cost_matching(cost: &[Vec<f64>]) -> Vec<Option<usize>> {
    let rows = cost.len();
    let cols = cost.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 {
        return vec![None; rows];
    }
    // An infinite or undefined cost (centroids whose scale jumped by 1e300
    // between nights) would leave no column to move to, and the search
    // below would never end: such a pair costs the most a finite sum of
    // potentials can hold instead.
    let ceiling = f64::MAX / (4.0 * (rows + cols) as f64);
    if cost
        .iter()
        .flatten()
        .any(|c| !(c.is_finite() && *c <= ceiling))
    {
        let bounded: Vec<Vec<f64>> = cost
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&c| {
                        if c.is_finite() {
                            c.clamp(-ceiling, ceiling)
                        } else {
                            ceiling
                        }
                    })
                    .collect()
            })
            .collect();
        return min_cost_matching(&bounded);
    }
    if rows > cols {
        // Solve the transpose: the algorithm needs rows <= columns.
        let transposed: Vec<Vec<f64>> = (0..cols)
            .map(|j| (0..rows).map(|i| cost[i][j]).collect())
            .collect();
        let mut out = vec![None; rows];
        for (j, i) in min_cost_matching(&transposed).into_iter().enumerate() {
            if let Some(i) = i {
                out[i] = Some(j);
            }
        }
        return out;
    }
    // 1-based arrays as in the classic formulation; column 0 is virtual.
    let (n, m) = (rows, cols);
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; m + 1];
    let mut owner = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for i in 1..=n {
        owner[0] = i;
        let mut j0 = 0;
        let mut min_to = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let reduced = cost[i0 - 1][j - 1] - u[i0] - v[j];
                if reduced < min_to[j] {
                    min_to[j] = reduced;
                    way[j] = j0;
                }
                if min_to[j] < delta {
                    delta = min_to[j];
                    j1 = j;
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_to[j] -= delta;
                }
            }
            j0 = j1;
            if owner[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            owner[j0] = owner[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![None; n];
    for j in 1..=m {
        if owner[j] > 0 {
            out[owner[j] - 1] = Some(j - 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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

    #[test]
    fn hungarian_finds_the_cheapest_pairing() {
        let cost = vec![
            vec![4.0, 1.0, 3.0],
            vec![2.0, 0.0, 5.0],
            vec![3.0, 2.0, 2.0],
        ];
        // Greedy would take (1,1) then pay 4 + 2; the optimum is 1 + 2 + 2.
        assert_eq!(min_cost_matching(&cost), vec![Some(1), Some(0), Some(2)]);
        let wide = vec![vec![5.0, 1.0, 9.0]];
        assert_eq!(min_cost_matching(&wide), vec![Some(1)]);
        let tall = vec![vec![5.0], vec![1.0], vec![9.0]];
        assert_eq!(min_cost_matching(&tall), vec![None, Some(0), None]);
    }

    #[test]
    fn infinite_costs_end_the_matching() {
        let cost = vec![vec![f64::INFINITY, 1.0], vec![f64::NAN, f64::INFINITY]];
        assert_eq!(min_cost_matching(&cost), vec![Some(1), Some(0)]);
        let all = vec![vec![f64::INFINITY; 3]; 3];
        assert_eq!(min_cost_matching(&all).iter().flatten().count(), 3);
        // Centroids 1e300 apart get new ids, and the call returns.
        let prev = array![[0.0, 0.0], [1e300, 1e300]];
        let new = array![[1e300, -1e300], [0.0, 0.1]];
        let (ids, _) = stable_ids(&new, &[1, 1], Some((&prev, &[1, 2], 3)));
        assert_eq!(ids.len(), 2);
    }

    fn saved() -> SavedModel {
        SavedModel {
            civica_version: "test".to_string(),
            model: "kmeans".to_string(),
            features: vec!["a".to_string(), "b".to_string()],
            log1p: vec![false, false],
            fill: vec![None, Some(0.0)],
            scaling: "standard".to_string(),
            scaler: Scaler {
                offset: vec![0.0, 1.0],
                scale: vec![1.0, 2.0],
            },
            segment_ids: vec![1, 2],
            centroids: vec![vec![0.0, 1.0], vec![1.0, 0.0]],
            next_segment_id: 3,
            settings: serde_json::Value::Null,
            quality: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_damaged_saved_model_is_refused_with_what_is_wrong() {
        assert_eq!(saved().validate(), Ok(()));
        type Damage = fn(&mut SavedModel);
        let cases: Vec<(Damage, &str)> = vec![
            (
                |m| {
                    m.segment_ids.pop();
                },
                "1 segment ids for 2 centroids",
            ),
            (|m| m.centroids.clear(), "no centroids"),
            (|m| m.centroids[1].push(3.0), "has 3 values for 2 features"),
            (|m| m.segment_ids[1] = 1, "segment id 1 is listed twice"),
            (|m| m.centroids[0][1] = 1e308, "holds 1e308 for feature `b`"),
            (|m| m.centroids[0][0] = f64::NAN, "for feature `a`"),
            (|m| m.scaler.scale[0] = 0.0, "scaling of feature `a`"),
            (|m| m.log1p.clear(), "`log1p` has 0 values"),
            (|m| m.next_segment_id = 2, "`next_segment_id` 2"),
            (|m| m.segment_ids[0] = -4, "-4 is not a positive"),
            (|m| m.features.clear(), "no features"),
        ];
        for (damage, expected) in cases {
            let mut model = saved();
            damage(&mut model);
            let err = model.validate().expect_err(expected);
            assert!(err.contains(expected), "{err} / {expected}");
        }
    }

    #[test]
    fn ids_follow_size_then_survive_small_moves() {
        let first = array![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let (ids, next) = stable_ids(&first, &[10, 30, 20], None);
        assert_eq!((ids.clone(), next), (vec![3, 1, 2], 4));
        // The next night: the same segments, slightly moved and listed in
        // another order, plus one far away from all of them.
        let second = array![[0.2, 10.1], [30.0, 30.0], [0.1, -0.1], [9.8, 0.3]];
        let (again, next) = stable_ids(&second, &[20, 5, 10, 30], Some((&first, &ids, 4)));
        assert_eq!((again, next), (vec![2, 4, 3, 1], 5));
    }
}
