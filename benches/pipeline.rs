//! The quickstart pipeline end to end on a demo lake of fixed size; the lake and the runtime are built outside the timed loop.

use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use civica::demo::{DemoOptions, write_demo_lake};
use civica::plan::PlanOptions;
use civica::run::{prepare, run_prepared};

fn quickstart(c: &mut Criterion) {
    // The quickstart's identity step needs a pseudonym key. SAFETY: set
    // before the bench starts any thread (the runtime comes after).
    unsafe {
        std::env::remove_var(civica::privacy::KEY_FILE_ENV);
        std::env::set_var(
            civica::privacy::KEY_ENV,
            "a-bench-key-of-forty-characters-xxxxxxxx",
        );
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let pipeline =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/citizen_segments.yaml");
    let mut group = c.benchmark_group("quickstart_pipeline");
    for citizens in [2_000u64, 10_000] {
        let lake = tempfile::tempdir().expect("temp dir");
        write_demo_lake(&DemoOptions {
            out: lake.path().to_path_buf(),
            citizens,
            days: 90,
            seed: 42,
            end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("valid date"),
        })
        .expect("demo lake");
        let opts = options(lake.path());
        group.bench_with_input(BenchmarkId::from_parameter(citizens), &opts, |b, opts| {
            b.iter(|| {
                runtime.block_on(async {
                    let prepared = prepare(&pipeline, opts, true)
                        .await
                        .expect("valid pipeline");
                    run_prepared(prepared, &mut |_| {})
                        .await
                        .expect("run succeeds")
                        .steps
                        .len()
                })
            })
        });
    }
    group.finish();
}

fn options(lake: &Path) -> PlanOptions {
    PlanOptions {
        vars: vec![
            ("lake".to_string(), lake.display().to_string()),
            ("ds".to_string(), "2026-11-21".to_string()),
        ],
        ..PlanOptions::default()
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = quickstart
}
criterion_main!(benches);
