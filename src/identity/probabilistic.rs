//! The probabilistic tier: CRM records that no deterministic rule linked
//! but that read as one person (a name mistyped, the codice fiscale left
//! out), scored as Fellegi and Sunter did and Splink does.
//!
//! - **Blocking.** Only pairs of records that agree exactly on every
//!   column of at least one blocking rule are compared (`[birth_date,
//!   last_name]` finds the first name mistyped), so the work grows with
//!   the blocks, not with the square of the CRM.
//! - **Comparison levels.** Each compared column gives a pair a level:
//!   `equal`, `one_edit` (one character added, dropped, changed or two
//!   swapped), `similar` (Jaro–Winkler at least 0.88, names only),
//!   `different`; a blank on either side says nothing.
//! - **Weights.** A level's weight is log2(m / u): m, how often a true
//!   pair has it, u, how often two records taken at random do. u is
//!   counted on random pairs; m and the share of true pairs among the
//!   compared ones (λ) are estimated by expectation–maximisation over the
//!   compared pairs. A column a pair was blocked on always agrees, so it
//!   says nothing of that pair: in each round a pair's probability is
//!   weighed from its other columns only, and each column's m is learnt
//!   only from pairs that a rule not blocking on it found.
//! - **Decision.** A pair's match probability is 1 / (1 + 2^-w), w being
//!   the prior log-odds that two records taken at random are one person
//!   (λ times the compared pairs, over all pairs: blocking is taken to
//!   miss no true pair) plus the weights of all its levels, the blocked
//!   columns' agreement included, as Splink scores. At `link_above` or more
//!   the records are linked (unless they hold two different codici
//!   fiscali); from `review_above` they go to `identity_review` for a
//!   person to decide.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::pipeline::Comparison;

/// A pair's level on one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Nothing in common.
    Different = 0,
    /// Jaro–Winkler similarity of at least [`SIMILAR`].
    Similar = 1,
    /// One character added, dropped, changed, or two swapped.
    OneEdit = 2,
    /// The same value.
    Equal = 3,
}

/// Levels there are.
const LEVELS: usize = 4;

/// The Jaro–Winkler similarity from which two names are `similar`.
pub const SIMILAR: f64 = 0.88;

impl Level {
    /// The level as `identity_review.evidence` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Different => "different",
            Level::Similar => "similar",
            Level::OneEdit => "one_edit",
            Level::Equal => "equal",
        }
    }
}

impl Comparison {
    /// The level of two normalised values.
    pub fn level(self, a: &str, b: &str) -> Level {
        if a == b {
            return Level::Equal;
        }
        let one_edit = || strsim::osa_distance(a, b) <= 1;
        match self {
            Comparison::Exact => Level::Different,
            Comparison::Name if one_edit() => Level::OneEdit,
            Comparison::Name if strsim::jaro_winkler(a, b) >= SIMILAR => Level::Similar,
            Comparison::Date if one_edit() || swapped_day_month(a, b) => Level::OneEdit,
            _ => Level::Different,
        }
    }
}

/// `1985-03-07` against `1985-07-03`.
fn swapped_day_month(a: &str, b: &str) -> bool {
    fn parts(s: &str) -> Option<(&str, &str, &str)> {
        let mut it = s.splitn(3, '-');
        Some((it.next()?, it.next()?, it.next()?))
    }
    match (parts(a), parts(b)) {
        (Some((ya, ma, da)), Some((yb, mb, db))) => ya == yb && ma == db && da == mb,
        _ => false,
    }
}

/// One compared column: its name, comparator and each record's
/// normalised value.
#[derive(Debug, Clone)]
pub struct Column {
    /// The column's name, as the evidence shows it.
    pub name: String,
    /// How it is compared.
    pub comparator: Comparison,
    /// Each record's value, `None` when blank.
    pub values: Vec<Option<String>>,
}

/// The tier's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Blocking rules: indices into the columns.
    pub blocking: Vec<Vec<usize>>,
    /// The match probability from which records are linked.
    pub link_above: f64,
    /// The match probability from which a pair is for review.
    pub review_above: f64,
    /// Blocks larger than this are skipped (a value many records share,
    /// such as a placeholder date, would give millions of pairs).
    pub max_block: usize,
}

/// A compared pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The lower record.
    pub a: usize,
    /// The higher record.
    pub b: usize,
    /// The match probability.
    pub probability: f64,
    /// Each column's level, `None` where a side was blank.
    pub levels: Vec<Option<Level>>,
}

/// What the tier found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every compared pair, by record.
    pub pairs: Vec<Scored>,
    /// m and u per column and level, as estimated.
    pub m: Vec<[f64; LEVELS]>,
    /// See `m`.
    pub u: Vec<[f64; LEVELS]>,
    /// The estimated share of true pairs among the compared ones.
    pub lambda: f64,
    /// The probability that two records taken at random are one person.
    pub prior: f64,
    /// Expectation–maximisation rounds run.
    pub rounds: usize,
    /// Blocks skipped for their size.
    pub skipped_blocks: usize,
}

/// Random pairs u is counted on.
const U_SAMPLE: usize = 200_000;
/// The most expectation–maximisation rounds.
const MAX_ROUNDS: usize = 100;

/// Compares the pairs the blocking rules find among records, except pairs
/// `same` says are one profile already, and scores them.
pub fn score(
    columns: &[Column],
    settings: &Settings,
    same: &dyn Fn(usize, usize) -> bool,
) -> Outcome {
    let records = columns.first().map_or(0, |c| c.values.len());
    let (found, skipped_blocks) = candidate_pairs(columns, settings, records, same);
    // Each pair once, with which columns its m may be learnt from: those
    // that a rule that found it does not block on.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut learns: Vec<Vec<bool>> = Vec::new();
    for &(a, b, rule) in &found {
        if pairs.last() != Some(&(a, b)) {
            pairs.push((a, b));
            learns.push(vec![false; columns.len()]);
        }
        let learn = learns.last_mut().expect("pushed");
        for (c, slot) in learn.iter_mut().enumerate() {
            *slot |= !settings.blocking[rule].contains(&c);
        }
    }
    drop(found);
    let levels: Vec<Vec<Option<Level>>> = pairs
        .par_iter()
        .map(|&(a, b)| compare(columns, a, b))
        .collect();
    let u = u_probabilities(columns, records);
    let (m, lambda, rounds) = expectation_maximisation(&levels, &learns, &u);
    let all_pairs = (records as f64) * (records as f64 - 1.0) / 2.0;
    let prior = (lambda * levels.len() as f64 / all_pairs.max(1.0)).clamp(1e-12, 0.5);
    let everything = vec![true; columns.len()];
    let pairs = pairs
        .into_iter()
        .zip(levels)
        .map(|((a, b), levels)| Scored {
            a,
            b,
            probability: probability(&levels, &everything, &m, &u, prior),
            levels,
        })
        .collect();
    Outcome {
        pairs,
        m,
        u,
        lambda,
        prior,
        rounds,
        skipped_blocks,
    }
}

/// The pairs the blocking rules find, as (lower record, higher record,
/// rule) in that order, each once, and the blocks skipped for their size.
fn candidate_pairs(
    columns: &[Column],
    settings: &Settings,
    records: usize,
    same: &dyn Fn(usize, usize) -> bool,
) -> (Vec<(usize, usize, usize)>, usize) {
    let mut found: Vec<(usize, usize, usize)> = Vec::new();
    let mut skipped = 0;
    for (rule, on) in settings.blocking.iter().enumerate() {
        let mut blocks: HashMap<Vec<&str>, Vec<usize>> = HashMap::with_capacity(records);
        for record in 0..records {
            let key: Option<Vec<&str>> = on
                .iter()
                .map(|&c| columns[c].values[record].as_deref())
                .collect();
            if let Some(key) = key {
                blocks.entry(key).or_default().push(record);
            }
        }
        for block in blocks.values() {
            if block.len() > settings.max_block {
                skipped += 1;
                continue;
            }
            for (i, &a) in block.iter().enumerate() {
                for &b in &block[i + 1..] {
                    if !same(a, b) {
                        found.push((a.min(b), a.max(b), rule));
                    }
                }
            }
        }
    }
    found.sort_unstable();
    found.dedup();
    (found, skipped)
}

fn compare(columns: &[Column], a: usize, b: usize) -> Vec<Option<Level>> {
    columns
        .iter()
        .map(|c| match (&c.values[a], &c.values[b]) {
            (Some(x), Some(y)) => Some(c.comparator.level(x, y)),
            _ => None,
        })
        .collect()
}

/// u per column and level: for `equal`, exactly, from how many records
/// share each value; for the other levels, that share of the pairs that
/// differ, divided among the levels as they are among random pairs of
/// records (a fixed seed: the same CRM gives the same weights), smoothed
/// so that no level is impossible.
///
/// Equality is counted rather than sampled because it is the rare level
/// that decides: two records born on the same day are a few in a hundred
/// thousand pairs, so a sample of [`U_SAMPLE`] pairs sees a handful of
/// them at a million records, and one more CRM record, moving the
/// sample, moved the weight of a birth date enough to take pairs across
/// `link_above` from one night to the next.
fn u_probabilities(columns: &[Column], records: usize) -> Vec<[f64; LEVELS]> {
    let mut counts = vec![[1.0f64; LEVELS]; columns.len()];
    if records >= 2 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x005E_EDF5);
        let all_pairs = records.saturating_mul(records - 1) / 2;
        for _ in 0..U_SAMPLE.min(all_pairs.max(1)) {
            let a = rng.gen_range(0..records);
            let mut b = rng.gen_range(0..records - 1);
            if b >= a {
                b += 1;
            }
            for (c, level) in compare(columns, a, b).into_iter().enumerate() {
                if let Some(level) = level.filter(|l| *l != Level::Equal) {
                    counts[c][level as usize] += 1.0;
                }
            }
        }
    }
    let equal: Vec<f64> = columns.par_iter().map(|c| equal_share(&c.values)).collect();
    equal
        .into_iter()
        .zip(counts)
        .map(|(equal, mut counts)| {
            counts[Level::Equal as usize] = 0.0;
            let mut u = normalised(counts).map(|share| share * (1.0 - equal));
            u[Level::Equal as usize] = equal;
            u
        })
        .collect()
}

/// The share of pairs of non-blank values that are equal, at least one
/// pair's worth.
fn equal_share(values: &[Option<String>]) -> f64 {
    let mut held: HashMap<&str, f64> = HashMap::new();
    for value in values.iter().flatten() {
        *held.entry(value).or_default() += 1.0;
    }
    let pairs = |n: f64| n * (n - 1.0) / 2.0;
    let all = pairs(held.values().sum());
    let equal: f64 = held.values().map(|&n| pairs(n)).sum();
    if all < 1.0 { 0.5 } else { equal.max(1.0) / all }
}

fn normalised(mut row: [f64; LEVELS]) -> [f64; LEVELS] {
    let total: f64 = row.iter().sum();
    if total > 0.0 {
        for v in &mut row {
            *v /= total;
        }
    }
    row
}

/// The match probability of a pair from the levels of the columns `used`
/// says, over the prior `lambda`.
fn probability(
    levels: &[Option<Level>],
    used: &[bool],
    m: &[[f64; LEVELS]],
    u: &[[f64; LEVELS]],
    lambda: f64,
) -> f64 {
    let weights: f64 = levels
        .iter()
        .zip(used)
        .enumerate()
        .filter_map(|(c, (level, used))| {
            level
                .filter(|_| *used)
                .map(|l| (m[c][l as usize] / u[c][l as usize]).log2())
        })
        .sum();
    let log_odds = (lambda / (1.0 - lambda)).log2() + weights;
    1.0 / (1.0 + (-log_odds).exp2())
}

/// m per column and level, λ, and the rounds run, u held fixed.
fn expectation_maximisation(
    levels: &[Vec<Option<Level>>],
    learns: &[Vec<bool>],
    u: &[[f64; LEVELS]],
) -> (Vec<[f64; LEVELS]>, f64, usize) {
    let columns = u.len();
    // A true pair mostly agrees.
    let mut m = vec![[0.05, 0.05, 0.1, 0.8]; columns];
    let mut lambda = 0.1f64;
    if levels.is_empty() {
        return (m, lambda, 0);
    }
    for round in 1..=MAX_ROUNDS {
        let mut counts = vec![[1e-3f64; LEVELS]; columns];
        let mut matched = 0.0;
        for (pair, learn) in levels.iter().zip(learns) {
            let p = probability(pair, learn, &m, u, lambda);
            matched += p;
            for (c, level) in pair.iter().enumerate() {
                if let (Some(level), true) = (level, learn[c]) {
                    counts[c][*level as usize] += p;
                }
            }
        }
        let next_lambda = (matched / levels.len() as f64).clamp(1e-6, 1.0 - 1e-6);
        let next_m: Vec<[f64; LEVELS]> = counts.into_iter().map(normalised).collect();
        let change = m
            .iter()
            .zip(&next_m)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold((next_lambda - lambda).abs(), f64::max);
        m = next_m;
        lambda = next_lambda;
        if change < 1e-6 {
            return (m, lambda, round);
        }
    }
    (m, lambda, MAX_ROUNDS)
}

/// A pair's levels as `identity_review.evidence` shows them:
/// `first_name:one_edit,last_name:equal,birth_date:equal`.
pub fn evidence(columns: &[Column], levels: &[Option<Level>]) -> String {
    columns
        .iter()
        .zip(levels)
        .map(|(c, l)| format!("{}:{}", c.name, l.map_or("blank", Level::name)))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_typos_as_typos() {
        let cases: &[(Comparison, &str, &str, Level)] = &[
            (Comparison::Name, "rossi", "rossi", Level::Equal),
            (Comparison::Name, "rossi", "rosi", Level::OneEdit),
            (Comparison::Name, "rossi", "rosis", Level::OneEdit),
            (Comparison::Name, "giuseppe", "giusepep", Level::OneEdit),
            (Comparison::Name, "francesca", "francesa", Level::OneEdit),
            (Comparison::Name, "alessandro", "alesandr", Level::Similar),
            (Comparison::Name, "rossi", "bianchi", Level::Different),
            (Comparison::Date, "1985-03-07", "1985-03-07", Level::Equal),
            (Comparison::Date, "1985-03-07", "1985-03-08", Level::OneEdit),
            (Comparison::Date, "1985-03-07", "1985-07-03", Level::OneEdit),
            (
                Comparison::Date,
                "1985-03-07",
                "1958-11-20",
                Level::Different,
            ),
            (Comparison::Exact, "f", "f", Level::Equal),
            (Comparison::Exact, "40121", "40122", Level::Different),
        ];
        for &(comparator, a, b, expected) in cases {
            assert_eq!(comparator.level(a, b), expected, "{a} vs {b}");
        }
    }

    fn column(name: &str, comparator: Comparison, values: &[&str]) -> Column {
        Column {
            name: name.into(),
            comparator,
            values: values
                .iter()
                .map(|v| (!v.is_empty()).then(|| v.to_string()))
                .collect(),
        }
    }

    /// Two hundred people with distinct names, birth dates spread over a
    /// few years, and five of them recorded twice with a typo.
    fn crm() -> Vec<Column> {
        let firsts = [
            "marco", "giulia", "luca", "sara", "paolo", "elena", "andrea", "chiara",
        ];
        let lasts = [
            "rossi", "bianchi", "ferrari", "esposito", "romano", "colombo", "ricci", "marino",
            "greco", "bruno", "gallo", "conti", "costa", "giordano", "mancini",
        ];
        let (mut first, mut last, mut born, mut cap) = (vec![], vec![], vec![], vec![]);
        for i in 0..200usize {
            first.push(firsts[i % firsts.len()].to_string());
            last.push(lasts[(i / 3) % lasts.len()].to_string());
            born.push(format!(
                "19{:02}-{:02}-{:02}",
                50 + i % 40,
                1 + i % 12,
                1 + i % 28
            ));
            cap.push(format!("401{:02}", i % 40));
        }
        for i in [3usize, 50, 99, 120, 180] {
            let mut typo = last[i].clone();
            typo.pop();
            first.push(first[i].clone());
            last.push(typo);
            born.push(born[i].clone());
            cap.push(if i % 2 == 0 {
                cap[i].clone()
            } else {
                String::new()
            });
        }
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        vec![
            column("first_name", Comparison::Name, &refs(&first)),
            column("last_name", Comparison::Name, &refs(&last)),
            column("birth_date", Comparison::Date, &refs(&born)),
            column("cap", Comparison::Exact, &refs(&cap)),
        ]
    }

    /// Blocking on birth date and first name, and on birth date and last
    /// name, of [`crm`]'s columns; the default thresholds.
    fn crm_settings() -> Settings {
        Settings {
            blocking: vec![vec![2, 0], vec![2, 1]],
            link_above: 0.99,
            review_above: 0.5,
            max_block: 1000,
        }
    }

    #[test]
    fn the_duplicates_score_high_and_the_namesakes_low() {
        let columns = crm();
        let settings = crm_settings();
        let outcome = score(&columns, &settings, &|_, _| false);
        let linked: Vec<(usize, usize)> = outcome
            .pairs
            .iter()
            .filter(|p| p.probability >= settings.link_above)
            .map(|p| (p.a, p.b))
            .collect();
        assert_eq!(
            linked,
            [(3, 200), (50, 201), (99, 202), (120, 203), (180, 204)],
            "{:?}",
            outcome.pairs
        );
        // Agreeing names weigh for a match, different ones against; here
        // every duplicate mistyped the surname, so one edit there is the
        // surest mark of one.
        let w = |c: usize, l: Level| (outcome.m[c][l as usize] / outcome.u[c][l as usize]).log2();
        assert!(w(0, Level::Equal) > 0.0 && w(1, Level::OneEdit) > w(1, Level::Equal));
        assert!(w(2, Level::Equal) > 0.0 && w(2, Level::Different) < 0.0);
        assert!(w(1, Level::Different) < 0.0, "{:?}", outcome.m);
        assert!(outcome.rounds > 1 && outcome.lambda > 0.0 && outcome.lambda < 1.0);
    }

    /// Twins agree on the surname, the birth date and the address, and
    /// differ in the first name: as many as the duplicates, they must not
    /// teach the tier that a match is what they look like. Each scores
    /// below every duplicate, and none is linked.
    #[test]
    fn twins_score_below_every_duplicate() {
        let mut columns = crm();
        let twins = [10usize, 60, 140, 160];
        for (name, i) in ["nicola", "irene", "fabio", "marta"].into_iter().zip(twins) {
            let twin: Vec<Option<String>> = columns.iter().map(|c| c.values[i].clone()).collect();
            for (c, value) in columns.iter_mut().zip(twin) {
                c.values.push(value);
            }
            columns[0]
                .values
                .last_mut()
                .unwrap()
                .replace(name.to_string());
        }
        let settings = crm_settings();
        let outcome = score(&columns, &settings, &|_, _| false);
        let p = |a: usize, b: usize| {
            outcome
                .pairs
                .iter()
                .find(|s| (s.a, s.b) == (a, b))
                .map_or(0.0, |s| s.probability)
        };
        let lowest_duplicate = [3usize, 50, 99, 120, 180]
            .into_iter()
            .zip(200..)
            .map(|(i, dup)| p(i, dup))
            .fold(1.0, f64::min);
        for (i, twin) in twins.into_iter().zip(205..) {
            let twin = p(i, twin);
            assert!(
                twin < settings.link_above && twin < lowest_duplicate,
                "twin {i}: {twin}, lowest duplicate {lowest_duplicate}"
            );
        }
    }

    /// How often two random records are equal is counted, not sampled: in
    /// [`crm`] only the five records registered twice share a birth date,
    /// and one more record changes that share by exactly the pairs it adds.
    #[test]
    fn equality_is_counted_so_one_more_record_barely_moves_it() {
        let share = |columns: &[Column]| {
            let records = columns[0].values.len();
            u_probabilities(columns, records)[2][Level::Equal as usize]
        };
        let mut columns = crm();
        let before = share(&columns);
        assert_eq!(before, 5.0 / (205.0 * 204.0 / 2.0));
        for (column, value) in columns
            .iter_mut()
            .zip(["ugo", "neri", "1901-01-01", "40199"])
        {
            column.values.push(Some(value.to_string()));
        }
        assert_eq!(share(&columns), 5.0 / (206.0 * 205.0 / 2.0));
        // A blank takes part in no pair; every level is possible.
        let sparse = [column(
            "cap",
            Comparison::Exact,
            &["40121", "40121", "", "40122"],
        )];
        let u = u_probabilities(&sparse, 4);
        assert_eq!(u[0][Level::Equal as usize], 1.0 / 3.0);
        assert!(u[0].iter().all(|&p| p > 0.0), "{u:?}");
        assert!((u[0].iter().sum::<f64>() - 1.0).abs() < 1e-12, "{u:?}");
    }

    #[test]
    fn pairs_already_one_profile_and_oversized_blocks_are_not_compared() {
        let columns = vec![column("x", Comparison::Exact, &["a", "a", "a", "b", "b"])];
        let settings = Settings {
            blocking: vec![vec![0]],
            link_above: 0.99,
            review_above: 0.5,
            max_block: 2,
        };
        let outcome = score(&columns, &settings, &|_, _| false);
        assert_eq!(outcome.skipped_blocks, 1);
        assert_eq!(
            outcome.pairs.iter().map(|p| (p.a, p.b)).collect::<Vec<_>>(),
            [(3, 4)]
        );
        let outcome = score(&columns, &settings, &|a, b| (a, b) == (3, 4));
        assert!(outcome.pairs.is_empty());
    }

    #[test]
    fn evidence_names_levels_never_values() {
        let columns = crm();
        let text = evidence(
            &columns,
            &[
                Some(Level::Equal),
                Some(Level::OneEdit),
                None,
                Some(Level::Different),
            ],
        );
        assert_eq!(
            text,
            "first_name:equal,last_name:one_edit,birth_date:blank,cap:different"
        );
    }
}
