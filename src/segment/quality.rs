//! Clustering quality against a known grouping: the adjusted Rand index.

use std::collections::HashMap;
use std::hash::Hash;

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
}
