//! Feature scaling and the k-means fit through linfa.

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::{Array1, Array2, Axis};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use crate::spec::{KmeansPlan, Scaling};

/// Per-feature affine scaling, kept so centroids can be read in original units.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    /// Subtracted from each feature.
    pub offset: Array1<f64>,
    /// Each feature is divided by this after the offset.
    pub scale: Array1<f64>,
}

impl Scaler {
    /// Learns the scaling of each column of `data`.
    pub fn fit(data: &Array2<f64>, scaling: Scaling) -> Self {
        let d = data.ncols();
        match scaling {
            Scaling::None => Scaler {
                offset: Array1::zeros(d),
                scale: Array1::ones(d),
            },
            Scaling::Standard => {
                let mean = data.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(d));
                // A constant feature carries no information; dividing by 1
                // keeps it at zero instead of producing NaN.
                let std = data
                    .std_axis(Axis(0), 0.0)
                    .mapv(|s| if s > 0.0 && s.is_finite() { s } else { 1.0 });
                Scaler {
                    offset: mean,
                    scale: std,
                }
            }
        }
    }

    /// Scales `data` column by column.
    pub fn transform(&self, data: &Array2<f64>) -> Array2<f64> {
        (data - &self.offset) / &self.scale
    }
}

/// A fitted k-means model and its assignment of the training rows.
#[derive(Debug, Clone)]
pub struct KmeansFit {
    /// Centroids in scaled units, k × d.
    pub centroids: Array2<f64>,
    /// The segment of each row, from 0.
    pub labels: Vec<usize>,
    /// Euclidean distance of each row to its centroid, in scaled units.
    pub distances: Vec<f64>,
    /// Sum of squared distances.
    pub inertia: f64,
}

/// Fits k-means (k-means++ initialisation, Lloyd iterations) with a seeded
/// generator, keeping the best of `n_init` runs.
pub fn fit_kmeans(data: &Array2<f64>, params: &KmeansPlan) -> Result<KmeansFit, String> {
    let rng = Xoshiro256Plus::seed_from_u64(params.seed);
    let dataset = DatasetBase::from(data.clone());
    let model = KMeans::params_with_rng(params.k, rng)
        .n_runs(params.n_init)
        .max_n_iterations(params.max_iter)
        .tolerance(params.tolerance)
        .fit(&dataset)
        .map_err(|e| e.to_string())?;
    let labels: Array1<usize> = model.predict(data);
    let centroids = model.centroids().clone();
    let distances: Vec<f64> = data
        .rows()
        .into_iter()
        .zip(labels.iter())
        .map(|(row, &label)| {
            row.iter()
                .zip(centroids.row(label).iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let inertia = distances.iter().map(|d| d * d).sum();
    Ok(KmeansFit {
        centroids,
        labels: labels.to_vec(),
        distances,
        inertia,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn params(k: usize) -> KmeansPlan {
        KmeansPlan {
            k,
            seed: 7,
            n_init: 3,
            max_iter: 100,
            tolerance: 1e-6,
        }
    }

    #[test]
    fn separates_two_obvious_groups() {
        let data = array![
            [0.0, 0.1],
            [0.1, 0.0],
            [0.0, 0.0],
            [10.0, 10.1],
            [10.1, 10.0],
            [10.0, 10.0]
        ];
        let fit = fit_kmeans(&data, &params(2)).expect("fits");
        assert_eq!(fit.labels[0], fit.labels[1]);
        assert_eq!(fit.labels[3], fit.labels[5]);
        assert_ne!(fit.labels[0], fit.labels[3]);
        assert!(fit.inertia < 0.1, "{}", fit.inertia);
    }

    #[test]
    fn standard_scaling_keeps_constant_features_finite() {
        let data = array![[1.0, 5.0], [3.0, 5.0]];
        let scaled = Scaler::fit(&data, Scaling::Standard).transform(&data);
        assert_eq!(scaled, array![[-1.0, 0.0], [1.0, 0.0]]);
    }
}
