//! Stable segment ids: a new fit's segments matched to the saved model's
//! (the Hungarian algorithm on centroid distances) so that ids survive
//! from one night to the next, and new segments get new ids.

use ndarray::Array2;

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
