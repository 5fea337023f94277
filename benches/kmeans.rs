//! The k-means fit: seeded overlapping groups (as in
//! `benches/compare_kmeans_with_sklearn.py`, so that Lloyd runs tens of
//! iterations), n rows × 8 features, k = 8, one k-means++ initialisation,
//! in f32 and f64; data built outside the timed loop.
//! `benches/compare_kmeans_with_sklearn.py` runs the same sizes against
//! scikit-learn.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use civica::segment::KMeansParams;
use linfa::DatasetBase;
use linfa::traits::Fit;

fn blobs(n: usize, d: usize, k: usize) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let centers: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..d).map(|_| rng.gen_range(-10.0..10.0)).collect())
        .collect();
    // Normal noise of standard deviation 4 (Box-Muller): the groups
    // overlap, as citizens do.
    Array2::from_shape_fn((n, d), |(i, j)| {
        let (u, v): (f64, f64) = (rng.r#gen(), rng.r#gen());
        let normal = (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        centers[i % k][j] + 4.0 * normal
    })
}

fn fit(c: &mut Criterion) {
    let mut group = c.benchmark_group("kmeans_fit");
    let params = KMeansParams {
        k: 8,
        n_init: 1,
        max_iter: 300,
        tolerance: 1e-4,
        seed: 42,
        init: None,
    };
    for n in [10_000usize, 100_000] {
        let wide = DatasetBase::from(blobs(n, 8, 8));
        let narrow = DatasetBase::from(wide.records.mapv(|v| v as f32));
        group.bench_with_input(BenchmarkId::new("f64", n), &wide, |b, data| {
            b.iter(|| params.fit(data).expect("fits").inertia)
        });
        group.bench_with_input(BenchmarkId::new("f32", n), &narrow, |b, data| {
            b.iter(|| params.fit(data).expect("fits").inertia)
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = fit
}
criterion_main!(benches);
