//! The `segment` section as written: the features, their scaling and
//! labels, and the model (k-means or a Gaussian mixture) with its settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `segment` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    /// The name of the per-citizen assignments table. Default `segments`.
    #[serde(default = "default_segments_name")]
    pub name: String,
    /// The name of the per-segment profile table. Default `segment_profiles`.
    #[serde(default = "default_profiles_name")]
    pub profiles: String,
    /// The name of the table of quality figures, one row per `k` tried.
    /// Default `segment_quality`.
    #[serde(default = "default_quality_name")]
    pub quality: String,
    /// The name of the table of moves between the previous run's segments
    /// and this run's. Default `segment_migrations`.
    #[serde(default = "default_migrations_name")]
    pub migrations: String,
    /// The table holding one row per citizen.
    pub from: String,
    /// The column that identifies a citizen; its values must be unique.
    pub id: String,
    /// Numeric columns the model clusters on.
    pub features: Vec<String>,
    /// What to do with null feature values: `median` or `zero` fill them,
    /// `drop` leaves the citizen without a segment. Without it a null
    /// feature stops the run, naming the column.
    #[serde(default)]
    pub impute: Option<Impute>,
    /// Features replaced by ln(1 + x) before scaling, for skewed counts.
    #[serde(default)]
    pub log1p: Vec<String>,
    /// How features are scaled before fitting. Default `standard`.
    #[serde(default)]
    pub scaling: Scaling,
    /// Plain names of features for the generated segment labels, in
    /// Italian and English. Default: the column name.
    #[serde(default)]
    pub feature_names: BTreeMap<String, FeatureName>,
    /// The clustering model, tagged by `type`.
    pub model: ModelSpec,
    /// Where the fitted model is saved (JSON) and read back by the next
    /// run. Default: `<name>_model.json` beside the folder of the `segments`
    /// output; without such an output the model is not kept.
    #[serde(default)]
    pub model_path: Option<String>,
}

/// A feature's plain name in the generated labels.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureName {
    /// In Italian.
    pub it: String,
    /// In English.
    pub en: String,
}

/// Feature scaling before the model sees the data.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Subtract the mean, divide by the standard deviation.
    #[default]
    Standard,
    /// Map the minimum to 0 and the maximum to 1.
    Minmax,
    /// Subtract the median, divide by the interquartile range.
    Robust,
    /// Use the values as they are.
    None,
}

/// How null feature values are handled.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    /// The feature's median over the non-null values.
    Median,
    /// Zero.
    Zero,
    /// The citizen is left out of the fit and gets no segment.
    Drop,
}

/// The clustering model and its settings. k-means and the Gaussian mixture
/// share every setting but `precision` and `init`, which only k-means reads
/// (the plan refuses them with `type: gmm`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `kmeans` or `gmm`. Required.
    #[serde(rename = "type")]
    pub kind: ModelType,
    /// Number of segments, at least 2, or `auto` to choose it by silhouette
    /// within `k_range`. Required.
    pub k: KChoice,
    /// The smallest and largest `k` tried by `k: auto`. Default `[2, 8]`.
    #[serde(default)]
    pub k_range: Option<Vec<i64>>,
    /// Random seed; the same seed and data give the same segments. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Independent initialisations; the best fit (k-means) or likelihood
    /// (GMM) is kept. Default 3.
    #[serde(default = "default_n_init")]
    pub n_init: i64,
    /// Iteration cap per initialisation. Default 300.
    #[serde(default = "default_max_iter")]
    pub max_iter: i64,
    /// Convergence tolerance. k-means: relative to the mean variance of the
    /// scaled features, as scikit-learn's `tol`; GMM: the smallest gain of
    /// the likelihood's lower bound. Default 1e-4.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// `refit` fits a new model and keeps segment ids stable against the
    /// saved one; `assign` places citizens in the saved model's segments
    /// (k-means only). Default `refit`.
    #[serde(default)]
    pub mode: ModelMode,
    /// k-means only. Arithmetic of the fit: `float32` (faster, half the
    /// memory) or `float64`. Default `float32`.
    #[serde(default)]
    pub precision: Option<Precision>,
    /// k-means only. Initial centroids instead of k-means++: `k` lists of one
    /// value per feature, in scaled units (scikit-learn's `init=array`).
    /// Used for comparisons and reproductions; one initialisation. Default
    /// none.
    #[serde(default)]
    pub init: Option<Vec<Vec<f64>>>,
}

/// The kinds of clustering model.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelType {
    /// k-means: k-means++ initialisation and Lloyd iterations.
    Kmeans,
    /// A Gaussian mixture with full covariances, fitted by
    /// expectation-maximisation (linfa).
    Gmm,
}

/// A number of segments, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KChoice {
    /// This many.
    Fixed(i64),
    /// Chosen by silhouette.
    Auto,
}

impl<'de> Deserialize<'de> for KChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KVisitor;
        impl serde::de::Visitor<'_> for KVisitor {
            type Value = KChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or `auto`")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KChoice, E> {
                Ok(KChoice::Fixed(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KChoice, E> {
                Ok(KChoice::Fixed(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KChoice, E> {
                match v {
                    "auto" => Ok(KChoice::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(KVisitor)
    }
}

/// Floating-point width of a fit.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    Float32,
    /// 64-bit floats.
    Float64,
}

/// Whether a run fits a model or reuses the saved one.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelMode {
    /// Fit a new model; keep ids stable against the saved model.
    #[default]
    Refit,
    /// Assign citizens to the saved model's segments without fitting.
    Assign,
}

fn default_segments_name() -> String {
    "segments".to_string()
}
fn default_profiles_name() -> String {
    "segment_profiles".to_string()
}
fn default_quality_name() -> String {
    "segment_quality".to_string()
}
fn default_migrations_name() -> String {
    "segment_migrations".to_string()
}
fn default_seed() -> u64 {
    42
}
fn default_n_init() -> i64 {
    3
}
fn default_max_iter() -> i64 {
    300
}
fn default_tolerance() -> f64 {
    1e-4
}
