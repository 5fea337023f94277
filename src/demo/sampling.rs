//! Deterministic random streams for the demo lake and the few distributions it draws from.

use rand::{Rng, RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The only generator the demo lake uses, so that a seed pins every byte.
pub(crate) type DemoRng = Xoshiro256PlusPlus;

/// Stream tags: they keep the citizen, day and session streams apart even when their numeric keys coincide.
pub(crate) mod stream {
    /// A citizen's identity and habits, keyed by citizen index.
    pub(crate) const CITIZEN: u64 = 0x0C17;
    /// A citizen's activity on one day, keyed by citizen index and epoch day.
    pub(crate) const CITIZEN_DAY: u64 = 0xDA71;
    /// Calls from outside the CRM on one day.
    pub(crate) const DAY_CALLS: u64 = 0xCA11;
    /// Desk visitors and e-mail senders outside the CRM on one day.
    pub(crate) const DAY_CONTACTS: u64 = 0xC047;
    /// Web traffic linked to no citizen on one day.
    pub(crate) const DAY_WEB: u64 = 0x00EB;
    /// The permutation that hands out phone numbers.
    pub(crate) const PHONE: u64 = 0x0F0E;
    /// A household's dynamic IP leases.
    pub(crate) const HOUSEHOLD: u64 = 0x4053;
    /// A family's landline, keyed by the block of four citizens sharing it.
    pub(crate) const FAMILY_LINE: u64 = 0xFA31;
    /// A citizen on an office's switchboard.
    pub(crate) const SWITCHBOARD: u64 = 0x5B0A;
    /// How an export writes a number, keyed by the row's own seed.
    pub(crate) const WRITING: u64 = 0x3817;
    /// A citizen's second CRM record.
    pub(crate) const DUPLICATE: u64 = 0xD0B1;
    /// Which record of a citizen recorded twice a request is filed under.
    pub(crate) const FILED_UNDER: u64 = 0xF11E;
    /// The test records' desk visits on one day.
    pub(crate) const TEST_VISITS: u64 = 0x7E57;
}

/// SplitMix64's finaliser: a cheap bijective scrambler for building stream keys.
pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Folds a tuple of integers into one well-mixed 64-bit key.
pub(crate) fn key(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x243F_6A88_85A3_08D3, |h, &p| splitmix(h ^ p))
}

/// A generator seeded from a key tuple such as `(seed, stream, citizen, day)`.
pub(crate) fn rng(parts: &[u64]) -> DemoRng {
    DemoRng::seed_from_u64(key(parts))
}

/// Uniform in `[0, 1)` with 53 bits of precision.
pub(crate) fn unit(rng: &mut DemoRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in `0..n`; `0` when `n == 0` so that callers never panic on an empty range.
pub(crate) fn below(rng: &mut DemoRng, n: u64) -> u64 {
    if n == 0 { 0 } else { rng.gen_range(0..n) }
}

/// Uniform integer in the inclusive range `lo..=hi` (returns `lo` when the range is empty).
pub(crate) fn between(rng: &mut DemoRng, lo: i64, hi: i64) -> i64 {
    if hi <= lo { lo } else { rng.gen_range(lo..=hi) }
}

/// True with probability `p`.
pub(crate) fn chance(rng: &mut DemoRng, p: f64) -> bool {
    unit(rng) < p
}

/// One element of a non-empty constant table.
pub(crate) fn pick<'a, T>(rng: &mut DemoRng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len() as u64) as usize]
}

/// An index drawn with probability proportional to `weights` (the last index if all are zero).
pub(crate) fn weighted(rng: &mut DemoRng, weights: &[u32]) -> usize {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let mut r = below(rng, total);
    for (i, &w) in weights.iter().enumerate() {
        let w = u64::from(w);
        if r < w {
            return i;
        }
        r -= w;
    }
    weights.len().saturating_sub(1)
}

/// Standard normal by Box–Muller.
pub(crate) fn normal(rng: &mut DemoRng) -> f64 {
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal with the given median and log-scale spread.
pub(crate) fn lognormal(rng: &mut DemoRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Log-uniform in `[lo, hi)`: short delays are as likely per octave as long ones.
pub(crate) fn log_uniform(rng: &mut DemoRng, lo: f64, hi: f64) -> f64 {
    lo * (hi / lo).powf(unit(rng))
}

/// Poisson by Knuth's product method, split into chunks so `exp(-lambda)` never underflows.
pub(crate) fn poisson(rng: &mut DemoRng, lambda: f64) -> u32 {
    let mut remaining = if lambda.is_finite() { lambda } else { 0.0 };
    let mut k = 0u32;
    while remaining > 0.0 {
        let l = remaining.min(16.0);
        remaining -= l;
        let threshold = (-l).exp();
        let mut p = unit(rng);
        while p > threshold {
            k += 1;
            p *= unit(rng);
        }
    }
    k
}

/// Binomial by inversion: cheap for the small means of spreading a few events over many days.
pub(crate) fn binomial(rng: &mut DemoRng, n: u32, p: f64) -> u32 {
    if n == 0 || p.is_nan() || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    if p > 0.5 {
        return n - binomial(rng, n, 1.0 - p);
    }
    let q = 1.0 - p;
    let mut prob = q.powi(i32::try_from(n).unwrap_or(i32::MAX));
    if prob <= f64::MIN_POSITIVE {
        // Only for means far beyond any demo rate: a rounded normal is close enough.
        let (mean, sd) = (f64::from(n) * p, (f64::from(n) * p * q).sqrt());
        return (mean + sd * normal(rng)).round().clamp(0.0, f64::from(n)) as u32;
    }
    let ratio = p / q;
    let u = unit(rng);
    let mut cdf = prob;
    let mut k = 0;
    while u > cdf && k < n {
        prob *= ratio * f64::from(n - k) / f64::from(k + 1);
        k += 1;
        cdf += prob;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_mean_matches_lambda_for_small_and_large_rates() {
        for &lambda in &[0.05f64, 1.5, 9.0, 240.0] {
            let mut r = rng(&[7, lambda.to_bits()]);
            let n = 20_000;
            let total: u64 = (0..n).map(|_| u64::from(poisson(&mut r, lambda))).sum();
            let mean = total as f64 / n as f64;
            assert!(
                (mean - lambda).abs() < 0.05 * lambda + 0.01,
                "lambda {lambda}, mean {mean}"
            );
        }
    }

    #[test]
    fn binomial_matches_its_mean_and_bounds() {
        let mut r = rng(&[11]);
        for &(n, p) in &[
            (5u32, 0.01f64),
            (40, 0.3),
            (12, 0.9),
            (900, 0.002),
            (7, 1.0),
            (7, 0.0),
        ] {
            let draws = 20_000;
            let total: u64 = (0..draws)
                .map(|_| {
                    let k = binomial(&mut r, n, p);
                    assert!(k <= n);
                    u64::from(k)
                })
                .sum();
            let mean = total as f64 / f64::from(draws);
            let expected = f64::from(n) * p;
            assert!(
                (mean - expected).abs() < 0.05 * expected + 0.02,
                "n {n} p {p}: {mean}"
            );
        }
    }

    #[test]
    fn weighted_never_picks_zero_weight_entries() {
        let mut r = rng(&[1]);
        for _ in 0..10_000 {
            assert_ne!(weighted(&mut r, &[3, 0, 5]), 1);
        }
    }

    #[test]
    fn same_key_gives_same_stream() {
        let mut a = rng(&[42, 1, 2]);
        let mut b = rng(&[42, 1, 2]);
        let mut c = rng(&[42, 2, 1]);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }
}
