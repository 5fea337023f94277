//! A run that fails names the failing step, exits 1, and leaves the outputs of the previous run as they were.

use crate::common::{civica, describe, root};

#[test]
fn failed_run_names_the_step_and_keeps_published_outputs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixtures = root().join("tests/fixtures/lake");
    std::fs::create_dir_all(dir.path().join("sql")).expect("mkdir");
    let yaml = "name: fail_test\nsources:\n  citizens:\n    path: \"{{ fixtures }}/crm/\"\n    format: { type: csv, delimiter: \";\" }\ntransforms:\n  - name: people\n    sql: sql/people.sql\noutputs:\n  - { table: people, path: out/people/ }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    let sql = dir.path().join("sql/people.sql");
    let args = [
        "run",
        "pipeline.yaml",
        "--var",
        &format!("fixtures={}", fixtures.display()),
    ];

    std::fs::write(&sql, "SELECT citizen_id, name FROM citizens").expect("write sql");
    let first = civica(dir.path(), &args);
    assert!(first.status.success(), "{}", describe(&first));
    let published = dir.path().join("out/people/part-00000.parquet");
    let before = std::fs::read(&published).expect("published output");

    // Plans fine, fails while running: the cast of a name to an integer.
    std::fs::write(
        &sql,
        "SELECT citizen_id, CAST(name AS INT) AS name FROM citizens",
    )
    .expect("write sql");
    let second = civica(dir.path(), &args);
    assert_eq!(second.status.code(), Some(1), "{}", describe(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("transform `people` (sql/people.sql) failed"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&published).expect("still published"), before);
    let leftovers = crate::common::published(&dir.path().join("out"));
    assert_eq!(leftovers, ["people"], "staging leftovers: {leftovers:?}");
    // One manifest per run, the failed one saying so and naming the step.
    let mut manifests: Vec<_> = std::fs::read_dir(dir.path().join("out/_runs"))
        .expect("runs folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    manifests.sort();
    assert_eq!(manifests.len(), 2, "{manifests:?}");
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifests[1]).expect("manifest")).expect("JSON");
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(last["exit_code"], 1);
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("transform `people`"))
    );
    assert_eq!(last["outputs"], serde_json::json!([]), "nothing published");
}

#[test]
fn file_urls_work_for_sources_and_outputs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixtures = root().join("tests/fixtures/lake");
    let yaml = "name: urls\nsources:\n  calls:\n    path: \"file://{{ fixtures }}/calls/\"\n    format: { type: csv, delimiter: \";\", decimal: \",\", timestamp_format: \"%d/%m/%Y %H:%M:%S\" }\n  web:\n    path: \"file://{{ fixtures }}/web/access_2026-11-20.log\"\n    format: { type: access_log }\n    max_rejected_ratio: 0.5\noutputs:\n  - { table: calls, path: \"file://{{ out }}/calls/\", contains_personal_data: [caller_number], purpose: call statistics }\n  - { table: web, path: \"file://{{ out }}/web/\", contains_personal_data: [user], purpose: portal statistics }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    let out_dir = dir.path().join("out");
    let out = civica(
        dir.path(),
        &[
            "run",
            "pipeline.yaml",
            "--var",
            &format!("fixtures={}", fixtures.display()),
            "--var",
            &format!("out={}", out_dir.display()),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The third line of the fixture log has no closing quote on its user agent.
    assert!(
        stdout.contains("3 line(s) read = 2 loaded + 1 rejected + 0 skipped (blank or header); 33.333% rejected, in `web__rejected`"),
        "{stdout}"
    );
    let calls = crate::common::query(
        &[("calls", &out_dir.join("calls"))],
        "SELECT CAST(SUM(wait_s) * 10 AS BIGINT) AS wait, COUNT(*) AS n, arrow_typeof(MIN(started_at)) AS ty FROM calls",
    );
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    assert_eq!(
        calls[0].column(0).as_primitive::<Int64Type>().value(0),
        1639,
        "35,4 + 120,0 + 8,5 = 163,9"
    );
    assert_eq!(calls[0].column(1).as_primitive::<Int64Type>().value(0), 3);
    assert_eq!(
        calls[0].column(2).as_string::<i32>().value(0),
        "Timestamp(µs)"
    );
    let web = crate::common::read_parquet(&out_dir.join("web"));
    assert_eq!(web.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
}
