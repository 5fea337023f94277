//! Access-log parsing throughput: one day of the demo portal's log, decompressed outside the timed loop.

use std::io::Read;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use civica::demo::{DemoOptions, write_demo_lake};
use civica::pipeline::LogFlavor;
use civica::source::access_log::{AccessLogLayout, LogParser};
use civica::source::lines::LineLayout;

fn demo_log(citizens: u64) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let end_date = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("valid date");
    write_demo_lake(&DemoOptions {
        out: dir.path().to_path_buf(),
        citizens,
        days: 1,
        seed: 42,
        end_date,
    })
    .expect("demo lake");
    let file = dir.path().join("raw/weblogs/access_2026-11-21.log.gz");
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(file).expect("log file"))
        .read_to_string(&mut text)
        .expect("gzip text");
    text
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("access_log_parse");
    let layout = AccessLogLayout::new(LogParser::Flavor(LogFlavor::Combined));
    let all_columns: Vec<usize> = (0..layout.schema().fields().len()).collect();
    for citizens in [20_000u64, 100_000] {
        let text = demo_log(citizens);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(citizens), &text, |b, text| {
            b.iter(|| {
                let mut decoder = layout.decoder(&all_columns, "bench.log");
                let mut rows = 0;
                for line in text.lines() {
                    if decoder.push_line(line).is_ok() && decoder.rows() == 8192 {
                        rows += decoder.finish().expect("batch").num_rows();
                    }
                }
                rows + decoder.finish().expect("batch").num_rows()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = parse
}
criterion_main!(benches);
