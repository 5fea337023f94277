//! The model file kept beside the outputs: what a later run needs to
//! assign citizens to the same segments, or to keep their ids stable.

use datafusion::prelude::SessionContext;
use ndarray::Array2;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::SegmentError;
use super::quality::FitQuality;
use super::scale::Scaler;
use crate::pipeline::{ModelMode, Precision};
use crate::storage::{ensure_store, table_url};

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
    pub settings: FitSettings,
    /// Quality figures of the fit, one per `k` tried (none when the run
    /// assigned to an earlier model).
    pub quality: Vec<FitQuality>,
}

/// The settings a saved model was fitted (or assigned) with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    /// Segments.
    pub k: usize,
    /// Random seed.
    pub seed: u64,
    /// Initialisations.
    pub n_init: usize,
    /// Iteration cap per initialisation.
    pub max_iter: usize,
    /// Convergence tolerance.
    pub tolerance: f64,
    /// Arithmetic of the fit (`float64` for a Gaussian mixture).
    pub precision: Precision,
    /// `refit` or `assign`.
    pub mode: ModelMode,
}

/// The largest centroid coordinate a saved model may hold, in scaled
/// units: beyond it a squared distance overflows.
const MAX_CENTROID: f64 = 1e150;

/// What is wrong with a saved model that civica cannot have written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelFileProblem {
    /// No feature columns.
    #[error("it lists no features")]
    NoFeatures,
    /// A per-feature list of the wrong length.
    #[error("{what} has {len} values for {features} features")]
    FeatureList {
        /// Which list.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The number of features.
        features: usize,
    },
    /// A scaling that is not a finite offset and a positive scale.
    #[error("the scaling of feature `{0}` is not a finite offset and a positive scale")]
    Scaling(String),
    /// A `fill` value that is not finite.
    #[error("a `fill` value is not finite")]
    Fill,
    /// No centroids.
    #[error("it has no centroids")]
    NoCentroids,
    /// Segment ids and centroids do not pair up.
    #[error("it has {ids} segment ids for {centroids} centroids")]
    Ids {
        /// Segment ids.
        ids: usize,
        /// Centroids.
        centroids: usize,
    },
    /// A centroid of the wrong length.
    #[error("the centroid of segment {id} has {len} values for {features} features")]
    CentroidLength {
        /// The segment.
        id: i32,
        /// Its length.
        len: usize,
        /// The number of features.
        features: usize,
    },
    /// A centroid coordinate no fit gives.
    #[error(
        "the centroid of segment {id} holds {value:e} for feature `{feature}`, which no fit gives"
    )]
    CentroidValue {
        /// The segment.
        id: i32,
        /// The coordinate.
        value: f64,
        /// Its feature.
        feature: String,
    },
    /// A segment id listed twice.
    #[error("segment id {0} is listed twice")]
    Twice(i32),
    /// A segment id below 1.
    #[error("segment id {0} is not a positive number")]
    NotPositive(i32),
    /// `next_segment_id` would reuse an id.
    #[error("`next_segment_id` {next} is not above the largest segment id {last}")]
    NextId {
        /// `next_segment_id`.
        next: i32,
        /// The largest id.
        last: i32,
    },
}

impl SavedModel {
    /// What cannot be in a model civica wrote: a model edited or damaged
    /// into one of these would place citizens wrongly or not at all.
    pub fn validate(&self) -> Result<(), ModelFileProblem> {
        let d = self.features.len();
        if d == 0 {
            return Err(ModelFileProblem::NoFeatures);
        }
        for (what, len) in [
            ("`log1p`", self.log1p.len()),
            ("`fill`", self.fill.len()),
            ("`scaler.offset`", self.scaler.offset.len()),
            ("`scaler.scale`", self.scaler.scale.len()),
        ] {
            if len != d {
                return Err(ModelFileProblem::FeatureList {
                    what,
                    len,
                    features: d,
                });
            }
        }
        if let Some(j) = (0..d).find(|&j| {
            !(self.scaler.offset[j].is_finite()
                && self.scaler.scale[j].is_finite()
                && self.scaler.scale[j] > 0.0)
        }) {
            return Err(ModelFileProblem::Scaling(self.features[j].clone()));
        }
        if self.fill.iter().flatten().any(|v| !v.is_finite()) {
            return Err(ModelFileProblem::Fill);
        }
        if self.centroids.is_empty() {
            return Err(ModelFileProblem::NoCentroids);
        }
        if self.segment_ids.len() != self.centroids.len() {
            return Err(ModelFileProblem::Ids {
                ids: self.segment_ids.len(),
                centroids: self.centroids.len(),
            });
        }
        for (&id, centroid) in self.segment_ids.iter().zip(&self.centroids) {
            if centroid.len() != d {
                return Err(ModelFileProblem::CentroidLength {
                    id,
                    len: centroid.len(),
                    features: d,
                });
            }
            if let Some(j) = centroid
                .iter()
                .position(|v| !(v.is_finite() && v.abs() <= MAX_CENTROID))
            {
                return Err(ModelFileProblem::CentroidValue {
                    id,
                    value: centroid[j],
                    feature: self.features[j].clone(),
                });
            }
        }
        let mut ids = self.segment_ids.clone();
        ids.sort_unstable();
        if let Some(twice) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(ModelFileProblem::Twice(twice[0]));
        }
        if ids[0] < 1 {
            return Err(ModelFileProblem::NotPositive(ids[0]));
        }
        let last = ids[ids.len() - 1];
        if self.next_segment_id <= last {
            return Err(ModelFileProblem::NextId {
                next: self.next_segment_id,
                last,
            });
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

/// Reads the saved model; `None` when there is none yet.
pub(super) async fn load_model(
    ctx: &SessionContext,
    path: &str,
) -> Result<Option<SavedModel>, SegmentError> {
    let store = ensure_store(ctx, path)?;
    let object = table_url(path)?.prefix().clone();
    let bad = |message: String| SegmentError::BadSavedModel {
        path: path.to_string(),
        message,
    };
    let bytes = match store.get(&object).await {
        Ok(found) => found.bytes().await.map_err(|e| bad(e.to_string()))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let model: SavedModel = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    model.validate().map_err(|message| {
        bad(format!(
            "{message}; restore it from a backup, or delete it to fit new segments (their ids start again from 1)"
        ))
    })?;
    Ok(Some(model))
}

/// The saved model's centroids in the new scaler's units.
pub(super) fn previous_centroids(saved: &SavedModel, scaler: &Scaler) -> Array2<f64> {
    let mut centroids = saved.centroid_matrix();
    for mut row in centroids.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = scaler.apply(j, saved.scaler.invert(j, *v));
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

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
            settings: FitSettings {
                k: 2,
                seed: 42,
                n_init: 3,
                max_iter: 300,
                tolerance: 1e-4,
                precision: Precision::Float32,
                mode: ModelMode::Refit,
            },
            quality: Vec::new(),
        }
    }

    #[test]
    fn a_damaged_saved_model_is_refused_with_what_is_wrong() {
        assert_eq!(saved().validate(), Ok(()));
        let written = serde_json::to_string(&saved()).expect("serialises");
        assert!(
            written.contains(r#""precision":"float32","mode":"refit""#),
            "{written}"
        );
        let read: SavedModel = serde_json::from_str(&written).expect("reads back");
        assert_eq!(read, saved());
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
            let err = model.validate().expect_err(expected).to_string();
            assert!(err.contains(expected), "{err} / {expected}");
        }
    }
}
