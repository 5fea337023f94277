//! The k-means fit: seeded Gaussian blobs, n rows × 8 features, k = 8, data built outside the timed loop.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use civica::segment::fit_kmeans;
use civica::spec::KmeansPlan;

fn blobs(n: usize, d: usize, k: usize) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let centers: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..d).map(|_| rng.gen_range(-10.0..10.0)).collect())
        .collect();
    Array2::from_shape_fn((n, d), |(i, j)| {
        centers[i % k][j] + rng.gen_range(-1.0..1.0)
    })
}

fn fit(c: &mut Criterion) {
    let mut group = c.benchmark_group("kmeans_fit");
    let params = KmeansPlan {
        k: 8,
        seed: 42,
        n_init: 1,
        max_iter: 300,
        tolerance: 1e-4,
    };
    for n in [10_000usize, 100_000] {
        let data = blobs(n, 8, 8);
        group.bench_with_input(BenchmarkId::from_parameter(n), &data, |b, data| {
            b.iter(|| fit_kmeans(data, &params).expect("fits").inertia)
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
