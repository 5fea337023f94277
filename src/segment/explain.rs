//! What each segment is, in numbers and in words: the `segment_profiles`
//! table with size, share, centroid in original units, each feature's
//! z-score against the population, the features that set the segment
//! apart, and a generated label and description in Italian and English.

use rayon::prelude::*;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use crate::pipeline::FeatureName;
use crate::plan::SegmentPlan;

/// |z| from which a feature sets a segment apart.
const NOTABLE_Z: f64 = 0.5;
/// Features named in a label or description, at most.
const NAMED_FEATURES: usize = 3;

/// The schema of the profile table.
pub fn profile_schema(plan: &SegmentPlan) -> SchemaRef {
    let mut fields = vec![
        Field::new("segment", DataType::Int32, false),
        Field::new("size", DataType::Int64, true),
        Field::new("share", DataType::Float64, true),
        Field::new("suppressed", DataType::Boolean, false),
        Field::new("label_it", DataType::Utf8, false),
        Field::new("label_en", DataType::Utf8, false),
        Field::new("description_it", DataType::Utf8, false),
        Field::new("description_en", DataType::Utf8, false),
        Field::new("top_features", DataType::Utf8, false),
    ];
    fields.extend(
        plan.features
            .iter()
            .map(|f| Field::new(f, DataType::Float64, true)),
    );
    fields.extend(
        plan.features
            .iter()
            .map(|f| Field::new(format!("z_{f}"), DataType::Float64, true)),
    );
    Arc::new(Schema::new(fields))
}

/// One segment's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Its id.
    pub segment: i32,
    /// Citizens in it.
    pub size: usize,
    /// Per feature, the mean in original units.
    pub means: Vec<f64>,
    /// Per feature, (segment mean − population mean) / population
    /// standard deviation, in the units the model saw (after ln(1 + x)).
    pub z: Vec<f64>,
}

/// Computes each segment's profile. `original` holds the features in
/// original units, column by column; `transformed(j)` gives feature `j` as
/// the model saw it before scaling (one column at a time, to hold no second
/// copy of the data); `labels` gives each row's position in `ids`.
pub fn profiles(
    original: &[Vec<f64>],
    transformed: impl Fn(usize) -> Vec<f64> + Sync,
    labels: &[usize],
    ids: &[i32],
) -> Vec<Profile> {
    let k = ids.len();
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let segment_means = |column: &Vec<f64>| {
        let mut sums = vec![0.0; k];
        for (v, &l) in column.iter().zip(labels) {
            sums[l] += v;
        }
        sums.iter()
            .zip(&sizes)
            .map(|(s, &n)| if n > 0 { s / n as f64 } else { 0.0 })
            .collect::<Vec<f64>>()
    };
    // One feature per task: each is a pass over every citizen.
    let means: Vec<Vec<f64>> = original.par_iter().map(segment_means).collect();
    let z: Vec<Vec<f64>> = (0..original.len())
        .into_par_iter()
        .map(|j| {
            let column = &transformed(j);
            let n = column.len().max(1) as f64;
            let mean = column.iter().sum::<f64>() / n;
            let std = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            segment_means(column)
                .into_iter()
                .map(|m| if std > 0.0 { (m - mean) / std } else { 0.0 })
                .collect()
        })
        .collect();
    let mut out: Vec<Profile> = (0..k)
        .map(|s| Profile {
            segment: ids[s],
            size: sizes[s],
            means: means.iter().map(|m| m[s]).collect(),
            z: z.iter().map(|z| z[s]).collect(),
        })
        .collect();
    out.sort_by_key(|p| p.segment);
    out
}

/// The features that set a segment apart: |z| ≥ 0.5, largest first, at most three.
fn notable(z: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..z.len()).filter(|&j| z[j].abs() >= NOTABLE_Z).collect();
    order.sort_by(|&a, &b| z[b].abs().total_cmp(&z[a].abs()).then(a.cmp(&b)));
    order.truncate(NAMED_FEATURES);
    order
}

/// A number with one decimal, a decimal comma in Italian and a true minus.
fn signed(value: f64, italian: bool) -> String {
    let text = format!("{:+.1}", value).replace('-', "\u{2212}");
    if italian {
        text.replace('.', ",")
    } else {
        text
    }
}

/// A count with thousands separators: `1.234` in Italian, `1,234` in English.
fn grouped(count: usize, italian: bool) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(if italian { '.' } else { ',' });
        }
        out.push(c);
    }
    out
}

/// The label and description of a profile, in Italian then English.
pub fn describe(
    profile: &Profile,
    total: usize,
    names: &[FeatureName],
) -> (String, String, String, String) {
    let top = notable(&profile.z);
    let name = |j: usize, italian: bool| match italian {
        true => names[j].it.clone(),
        false => names[j].en.clone(),
    };
    let side = |above: bool, italian: bool| {
        top.iter()
            .filter(|&&j| (profile.z[j] > 0.0) == above)
            .map(|&j| name(j, italian))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let label = |italian: bool| {
        let (up, down) = (side(true, italian), side(false, italian));
        let (above, below, only_below, average) = match italian {
            true => ("Sopra la media", "sotto", "Sotto la media", "Nella media"),
            false => (
                "Above average",
                "below",
                "Below average",
                "Close to average",
            ),
        };
        match (up.is_empty(), down.is_empty()) {
            (true, true) => average.to_string(),
            (false, true) => format!("{above}: {up}"),
            (true, false) => format!("{only_below}: {down}"),
            (false, false) => format!("{above}: {up}; {below}: {down}"),
        }
    };
    let share = profile.size as f64 / total.max(1) as f64 * 100.0;
    let figures = |italian: bool| {
        top.iter()
            .map(|&j| format!("{} {}σ", name(j, italian), signed(profile.z[j], italian)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let description_it = format!(
        "Segmento {}: {} cittadini ({}%). {}",
        profile.segment,
        grouped(profile.size, true),
        format!("{share:.1}").replace('.', ","),
        match top.is_empty() {
            true => "Valori vicini alla media su tutte le caratteristiche.".to_string(),
            false => format!("Rispetto alla popolazione: {}.", figures(true)),
        }
    );
    let description_en = format!(
        "Segment {}: {} citizens ({share:.1}%). {}",
        profile.segment,
        grouped(profile.size, false),
        match top.is_empty() {
            true => "Close to the average on every feature.".to_string(),
            false => format!("Compared with the population: {}.", figures(false)),
        }
    );
    (label(true), label(false), description_it, description_en)
}

/// The label and description of a segment smaller than `min_cell`, whose
/// figures are not published.
fn withheld(profile: &Profile, min_cell: usize) -> (String, String, String, String) {
    (
        format!("Segmento con meno di {min_cell} cittadini"),
        format!("Segment of fewer than {min_cell} citizens"),
        format!(
            "Segmento {}: meno di {min_cell} cittadini; le sue cifre non sono pubblicate, perché permetterebbero di riconoscerli.",
            profile.segment
        ),
        format!(
            "Segment {}: fewer than {min_cell} citizens; its figures are not published, as they could single them out.",
            profile.segment
        ),
    )
}

/// The profile table, one row per segment in id order. A segment of fewer
/// than `min_cell` citizens is `suppressed`: its size, share, means and
/// z-scores are null and its label says why.
pub fn profile_table(
    plan: &SegmentPlan,
    profiles: &[Profile],
    total: usize,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let shown = |p: &Profile| p.size >= plan.min_cell;
    let texts: Vec<_> = profiles
        .iter()
        .map(|p| match shown(p) {
            true => describe(p, total, &plan.feature_names),
            false => withheld(p, plan.min_cell),
        })
        .collect();
    let text_column = |pick: fn(&(String, String, String, String)) -> &String| -> ArrayRef {
        Arc::new(
            texts
                .iter()
                .map(|t| Some(pick(t).as_str()))
                .collect::<StringArray>(),
        )
    };
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(profiles.iter().map(|p| p.segment).collect::<Int32Array>()),
        Arc::new(
            profiles
                .iter()
                .map(|p| shown(p).then_some(p.size as i64))
                .collect::<Int64Array>(),
        ),
        Arc::new(
            profiles
                .iter()
                .map(|p| shown(p).then_some(p.size as f64 / total.max(1) as f64))
                .collect::<Float64Array>(),
        ),
        Arc::new(
            profiles
                .iter()
                .map(|p| Some(!shown(p)))
                .collect::<BooleanArray>(),
        ),
        text_column(|t| &t.0),
        text_column(|t| &t.1),
        text_column(|t| &t.2),
        text_column(|t| &t.3),
        Arc::new(
            profiles
                .iter()
                .map(|p| {
                    Some(match shown(p) {
                        false => String::new(),
                        true => notable(&p.z)
                            .iter()
                            .map(|&j| plan.features[j].as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                })
                .collect::<StringArray>(),
        ),
    ];
    for j in 0..plan.features.len() {
        columns.push(Arc::new(
            profiles
                .iter()
                .map(|p| shown(p).then_some(p.means[j]))
                .collect::<Float64Array>(),
        ));
    }
    for j in 0..plan.features.len() {
        columns.push(Arc::new(
            profiles
                .iter()
                .map(|p| shown(p).then_some(p.z[j]))
                .collect::<Float64Array>(),
        ));
    }
    RecordBatch::try_new(profile_schema(plan), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<FeatureName> {
        [
            ("sessioni web", "web sessions"),
            ("chiamate", "calls"),
            ("età", "age"),
        ]
        .iter()
        .map(|(it, en)| FeatureName {
            it: it.to_string(),
            en: en.to_string(),
        })
        .collect()
    }

    #[test]
    fn labels_name_the_features_that_set_a_segment_apart() {
        let profile = Profile {
            segment: 2,
            size: 1234,
            means: vec![9.0, 0.5, 35.0],
            z: vec![1.84, -0.93, 0.1],
        };
        let (label_it, label_en, description_it, description_en) =
            describe(&profile, 5273, &names());
        assert_eq!(label_it, "Sopra la media: sessioni web; sotto: chiamate");
        assert_eq!(label_en, "Above average: web sessions; below: calls");
        assert_eq!(
            description_it,
            "Segmento 2: 1.234 cittadini (23,4%). Rispetto alla popolazione: sessioni web +1,8σ, chiamate \u{2212}0,9σ."
        );
        assert_eq!(
            description_en,
            "Segment 2: 1,234 citizens (23.4%). Compared with the population: web sessions +1.8σ, calls \u{2212}0.9σ."
        );
    }

    #[test]
    fn average_segments_say_so() {
        let profile = Profile {
            segment: 1,
            size: 10,
            means: vec![0.0; 3],
            z: vec![0.2, -0.1, 0.0],
        };
        let (label_it, label_en, _, description_en) = describe(&profile, 10, &names());
        assert_eq!(
            (label_it.as_str(), label_en.as_str()),
            ("Nella media", "Close to average")
        );
        assert!(description_en.ends_with("Close to the average on every feature."));
    }

    #[test]
    fn z_scores_and_means_per_segment() {
        let original = vec![vec![0.0, 0.0, 10.0, 10.0]];
        let got = profiles(&original, |j| original[j].clone(), &[0, 0, 1, 1], &[7, 3]);
        assert_eq!(got[0].segment, 3);
        assert_eq!(got[0].means, vec![10.0]);
        assert_eq!(got[0].z, vec![1.0]);
        assert_eq!(got[1].z, vec![-1.0]);
    }
}
