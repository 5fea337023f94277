//! Access logs as a file format: compressed files, a truncated file, damaged
//! lines, byte-range splits of large files, custom patterns.

use std::io::Write;
use std::path::Path;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int32Type, Int64Type};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::common::{civica, describe, published, query, root, strings};

/// The plain 40-line fixture log.
fn portal_log() -> String {
    std::fs::read_to_string(root().join("tests/fixtures/logs/portal.log")).expect("fixture")
}

/// Runs a pipeline with one `web` source and one `summary` transform whose
/// result (and `web__rejected`) are written under `dir/out`.
fn run_summary(dir: &Path, source: &str, sql: &str) -> std::process::Output {
    let yaml = format!(
        "name: logs\nsources:\n  web:\n{source}transforms:\n  - name: summary\n    sql: summary.sql\noutputs:\n  - {{ table: summary, path: out/summary/ }}\n  - {{ table: web__rejected, path: out/rejected/, contains_personal_data: [raw_line], purpose: review of unreadable lines }}\n"
    );
    std::fs::write(dir.join("pipeline.yaml"), yaml).expect("pipeline");
    std::fs::write(dir.join("summary.sql"), sql).expect("sql");
    civica(dir, &["run", "pipeline.yaml"])
}

fn int(batch: &RecordBatch, column: usize) -> i64 {
    batch.column(column).as_primitive::<Int64Type>().value(0)
}

#[test]
fn gzip_and_zstd_files_read_like_plain_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("logs dir");
    let text = portal_log();
    std::fs::write(logs.join("a.log"), &text).expect("plain");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(logs.join("b.log.gz")).expect("gz file"),
        flate2::Compression::default(),
    );
    gz.write_all(text.as_bytes()).expect("gzip");
    gz.finish().expect("gzip end");
    std::fs::write(
        logs.join("c.log.zst"),
        zstd::encode_all(text.as_bytes(), 3).expect("zstd"),
    )
    .expect("zst file");

    // What the file holds, counted without the parser: bytes are the 10th
    // space-separated field; bots and assets by their markers.
    let lines: Vec<&str> = text.lines().collect();
    let bytes: i64 = lines
        .iter()
        .filter_map(|l| l.split(' ').nth(9)?.parse::<i64>().ok())
        .sum();
    let bots = lines
        .iter()
        .filter(|l| l.contains("Googlebot") || l.contains("curl/") || l.ends_with("\"-\""))
        .count() as i64;
    let assets = lines
        .iter()
        .filter(|l| {
            [".css ", ".js ", ".png ", ".ico "]
                .iter()
                .any(|e| l.contains(e))
        })
        .count() as i64;

    let out = run_summary(
        dir.path(),
        "    path: logs/\n    format: { type: access_log }\n",
        "SELECT count(*) AS n, sum(bytes) AS b, \
         sum(CASE WHEN is_bot(user_agent) THEN 1 ELSE 0 END) AS bots, \
         sum(CASE WHEN is_static_asset(path) THEN 1 ELSE 0 END) AS assets FROM web",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let summary = query(&[("s", &dir.path().join("out/summary"))], "SELECT * FROM s");
    let row = &summary[0];
    assert_eq!(int(row, 0), 3 * lines.len() as i64, "rows of three files");
    assert_eq!(int(row, 1), 3 * bytes);
    assert_eq!(int(row, 2), 3 * bots);
    assert_eq!(int(row, 3), 3 * assets);
    assert!(bots > 0 && assets > 0, "the fixture has bots and assets");
}

#[test]
fn a_truncated_gzip_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(portal_log().repeat(50).as_bytes())
        .expect("gzip");
    let full = gz.finish().expect("gzip end");
    std::fs::write(dir.path().join("cut.log.gz"), &full[..full.len() / 2]).expect("write");
    let out = run_summary(
        dir.path(),
        "    path: cut.log.gz\n    format: { type: access_log }\n",
        "SELECT count(*) AS n FROM web",
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("source `web`: `")
            && stderr.contains(
                "cut.log.gz` is not readable gzip data: the file is truncated or damaged"
            ),
        "{stderr}"
    );
    let left = published(&dir.path().join("out"));
    assert!(left.is_empty(), "a failed run wrote outputs: {left:?}");
}

#[test]
fn damaged_lines_are_quarantined_with_their_number_and_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixture = root().join("tests/fixtures/logs/damaged.log");
    let out = run_summary(
        dir.path(),
        &format!(
            "    path: {}\n    format: {{ type: access_log }}\n    max_rejected_ratio: 1\n",
            fixture.display()
        ),
        "SELECT count(*) AS n FROM web",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("8 line(s) read = 2 loaded + 5 rejected + 1 skipped (blank or header); 71.429% rejected, in `web__rejected`"),
        "{}",
        describe(&out)
    );
    let summary = query(&[("s", &dir.path().join("out/summary"))], "SELECT * FROM s");
    assert_eq!(
        int(&summary[0], 0),
        2,
        "two good lines; the empty line is skipped"
    );
    let rejected = query(
        &[("r", &dir.path().join("out/rejected"))],
        "SELECT line_number, reason, raw_line FROM r ORDER BY line_number",
    );
    let numbers: Vec<i64> = rejected[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(numbers, [2, 3, 5, 6, 7]);
    let reasons = strings(&rejected[0], 1);
    assert_eq!(reasons[0], "missing bytes");
    assert!(
        reasons[1].starts_with("timestamp `20/Nov/2026:25:00:01 +0100`"),
        "{reasons:?}"
    );
    assert_eq!(reasons[2], "status `abc` is not an HTTP status");
    assert_eq!(reasons[3], "user agent is not a quoted string");
    assert!(
        reasons[4].starts_with("not valid UTF-8 at byte "),
        "{reasons:?}"
    );
    let raw = strings(&rejected[0], 2);
    assert!(
        raw[0].ends_with("\"GET / HTTP/1.1\" 200"),
        "line ends (CRLF) are not kept: {:?}",
        raw[0]
    );
    assert!(
        raw[4].contains("caf\u{fffd}"),
        "undecodable bytes shown replaced"
    );
}

/// Plans one `web` source from YAML with the library, for tests that need
/// their own session settings.
fn plan_source(dir: &Path, source: &str) -> civica::plan::SourcePlan {
    let path = dir.join(format!("p{}.yaml", source.len()));
    std::fs::write(&path, format!("name: ranges\nsources:\n  web:\n{source}")).expect("yaml");
    let spec = civica::pipeline::load_spec(&path).expect("spec loads");
    let (plan, diags) =
        civica::plan::build_plan(&spec, &path, &civica::plan::PlanOptions::default());
    assert!(diags.is_empty(), "{diags:?}");
    plan.sources.into_iter().next().expect("one source")
}

async fn sql(ctx: &SessionContext, text: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    ctx.sql(text).await?.collect().await
}

#[tokio::test]
async fn large_files_split_into_byte_ranges_lose_and_repeat_no_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = portal_log();
    let base: Vec<&str> = base.lines().collect();
    const LINES: usize = 30_000;
    const DAMAGED: usize = 21_234;
    let mut text = String::new();
    for n in 1..=LINES {
        text.push_str(if n == DAMAGED {
            "damaged line"
        } else {
            base[n % base.len()]
        });
        text.push('\n');
    }
    let file = dir.path().join("big.log");
    std::fs::write(&file, &text).expect("big log");
    let config = SessionConfig::new()
        .with_target_partitions(4)
        .with_repartition_file_min_size(64 * 1024);

    let source = format!(
        "    path: {}\n    format: {{ type: access_log }}\n",
        file.display()
    );
    let ctx = SessionContext::new_with_config(config.clone());
    let stats = civica::source::register_source(&ctx, &plan_source(dir.path(), &source))
        .await
        .expect("registers");
    let explain = sql(&ctx, "EXPLAIN SELECT count(*) FROM web")
        .await
        .expect("explains");
    let plan_text = strings(&explain[0], 1).join("\n");
    assert!(
        plan_text.matches("big.log:").count() >= 4,
        "the file is read in byte ranges: {plan_text}"
    );
    let counted = sql(&ctx, "SELECT count(*), count(DISTINCT client_ip) FROM web")
        .await
        .expect("counts");
    assert_eq!(int(&counted[0], 0), (LINES - 1) as i64);
    let account = stats
        .quarantine
        .expect("line source")
        .account(&ctx)
        .await
        .expect("account");
    assert_eq!(account.len(), 1);
    assert_eq!(
        (account[0].1.lines, account[0].1.rejected),
        (LINES as u64, 1)
    );
    let rejected = sql(&ctx, "SELECT line_number FROM web__rejected")
        .await
        .expect("rejected");
    assert_eq!(int(&rejected[0], 0), DAMAGED as i64);

    // With `on_error: fail`, the range holding the bad line names it by its
    // number in the whole file.
    let ctx = SessionContext::new_with_config(config);
    civica::source::register_source(
        &ctx,
        &plan_source(dir.path(), &format!("{source}    on_error: fail\n")),
    )
    .await
    .expect("registers");
    let err = sql(&ctx, "SELECT count(*) FROM web")
        .await
        .expect_err("fails on the bad line");
    assert!(
        err.to_string()
            .contains(&format!("big.log:{DAMAGED}`: missing user field")),
        "{err}"
    );
}

#[test]
fn an_nginx_log_format_pattern_gives_typed_and_extra_columns() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("nginx.log"),
        "10.1.2.3 [2026-11-20T09:00:00+01:00] \"GET /servizi/tari?anno=2026 HTTP/2.0\" 200 512 rt=0.040 ua=\"Mozilla/5.0\" up=127.0.0.1:8080\n\
         10.1.2.4 [2026-11-20T09:00:01+01:00] \"GET /servizi/imu HTTP/2.0\" 404 - rt=0.002 ua=\"curl/8.5.0\" up=-\n\
         10.1.2.5 [2026-11-20T09:00:02+01:00] \"GET / HTTP/2.0\" 200 10 rt=abc ua=\"x\" up=-\n",
    )
    .expect("log");
    let out = run_summary(
        dir.path(),
        "    path: nginx.log\n    format:\n      type: access_log\n      pattern: '$remote_addr [$time_iso8601] \"$request\" $status $body_bytes_sent rt=$request_time ua=\"$http_user_agent\" up=$upstream_addr'\n    max_rejected_ratio: 0.5\n",
        "SELECT count(*) AS n, sum(request_time) AS rt, max(upstream_addr) AS up, \
         max(query) AS q, min(utc_offset_minutes) AS off, min(status) AS st, \
         sum(CASE WHEN is_bot(user_agent) THEN 1 ELSE 0 END) AS bots FROM web",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let s = &query(&[("s", &dir.path().join("out/summary"))], "SELECT * FROM s")[0];
    assert_eq!(int(s, 0), 2);
    let rt = s.column(1).as_primitive::<Float64Type>().value(0);
    assert!((rt - 0.042).abs() < 1e-9, "{rt}");
    assert_eq!(strings(s, 2)[0], "127.0.0.1:8080");
    assert_eq!(strings(s, 3)[0], "anno=2026");
    assert_eq!(s.column(4).as_primitive::<Int32Type>().value(0), 60);
    assert_eq!(s.column(5).as_primitive::<Int32Type>().value(0), 200);
    assert_eq!(int(s, 6), 1);
    let rejected = query(
        &[("r", &dir.path().join("out/rejected"))],
        "SELECT reason FROM r",
    );
    assert_eq!(
        strings(&rejected[0], 0),
        ["request_time `abc` is not a number"]
    );
}

#[test]
fn a_bad_pattern_is_reported_at_its_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("p.yaml"),
        "name: bad\nsources:\n  web:\n    path: x.log\n    format:\n      type: access_log\n      pattern: '$remote_addr$status'\n",
    )
    .expect("yaml");
    let out = civica(dir.path(), &["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("p.yaml:7:16: `$status` follows another variable"),
        "{stderr}"
    );
}

#[test]
fn hive_partition_folders_become_columns_and_globs_select_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = portal_log();
    for (day, name) in [("2026-11-20", "a.log"), ("2026-11-21", "b.log")] {
        let folder = dir.path().join(format!("web/ds={day}"));
        std::fs::create_dir_all(&folder).expect("partition folder");
        std::fs::write(folder.join(name), &text).expect("log");
    }
    std::fs::write(
        dir.path().join("web/ds=2026-11-21/notes.txt"),
        "not a log\n",
    )
    .expect("other");
    let out = run_summary(
        dir.path(),
        "    path: web/\n    format: { type: access_log, extension: .log }\n",
        "SELECT ds, count(*) AS n FROM web GROUP BY ds ORDER BY ds",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(&[("s", &dir.path().join("out/summary"))], "SELECT * FROM s");
    assert_eq!(strings(&rows[0], 0), ["2026-11-20", "2026-11-21"]);
    let counts = rows[0].column(1).as_primitive::<Int64Type>();
    assert_eq!((counts.value(0), counts.value(1)), (40, 40));

    let flat = dir.path().join("flat");
    std::fs::create_dir(&flat).expect("flat folder");
    std::fs::write(flat.join("access_1.log"), &text).expect("log");
    std::fs::write(
        flat.join("access_2.log.zst"),
        zstd::encode_all(text.as_bytes(), 3).expect("zstd"),
    )
    .expect("zstd log");
    std::fs::write(flat.join("error.log"), "not an access log\n").expect("other log");
    let dir2 = tempfile::tempdir().expect("temp dir");
    let out = run_summary(
        dir2.path(),
        &format!(
            "    path: {}/access_*.log\n    format: {{ type: access_log }}\n",
            flat.display()
        ),
        "SELECT count(*) AS n FROM web",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(
        &[("s", &dir2.path().join("out/summary"))],
        "SELECT * FROM s",
    );
    assert_eq!(int(&rows[0], 0), 40, "only the files the glob names");
}
