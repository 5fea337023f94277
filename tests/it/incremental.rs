//! Incremental sources read only the files no successful run has read;
//! `append` outputs grow by one file per run; the state moves only with a
//! publish; `--full-refresh` starts over.

use std::path::Path;

use serde_json::Value;

use crate::common::{civica, describe, python};

const PIPELINE: &str = "name: calls_daily\nruns: out/_runs/\nsources:\n  calls:\n    path: raw/calls/\n    format: { type: csv, delimiter: \";\" }\n    incremental: true\ntransforms:\n  - { name: daily, sql: daily.sql }\noutputs:\n  - { table: daily, path: out/daily/, mode: append }\n";
const DAILY: &str = "SELECT day, count(*) AS calls FROM calls GROUP BY day ORDER BY day";

fn add_day(dir: &Path, day: &str, calls: usize) {
    let mut text = "call_id;day\n".to_string();
    for i in 0..calls {
        text.push_str(&format!("{i};{day}\n"));
    }
    std::fs::create_dir_all(dir.join("raw/calls")).expect("mkdir");
    std::fs::write(dir.join(format!("raw/calls/calls_{day}.csv")), text).expect("write day");
}

fn run(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "pipeline.yaml"];
    args.extend_from_slice(extra);
    civica(dir, &args)
}

/// The files the last run's manifest says it read, by file name.
fn last_inputs(dir: &Path) -> Vec<String> {
    let all = crate::common::manifests(&dir.join("out/_runs"));
    let last: &Value = all.last().expect("a run");
    last["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| {
            let path = i["path"].as_str().expect("path");
            path.rsplit('/').next().unwrap_or(path).to_string()
        })
        .collect()
}

/// Every (day, calls) row the output folder holds, read by DuckDB.
fn published_days(dir: &Path) -> String {
    python(&format!(
        "import duckdb\nprint(duckdb.sql(\"SELECT day::VARCHAR, calls FROM read_parquet('{}/out/daily/*.parquet') ORDER BY day\").fetchall())",
        dir.display()
    ))
}

fn part_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("out/daily"))
        .expect("output folder")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
        .count()
}

#[test]
fn an_incremental_run_reads_only_new_files_and_appends() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).expect("pipeline");
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    add_day(dir.path(), "2026-11-19", 3);
    add_day(dir.path(), "2026-11-20", 2);

    let first = run(dir.path(), &[]);
    assert!(first.status.success(), "{}", describe(&first));
    assert_eq!(
        last_inputs(dir.path()),
        ["calls_2026-11-19.csv", "calls_2026-11-20.csv"]
    );

    // One more day: only its file is read, and its row is appended.
    add_day(dir.path(), "2026-11-21", 4);
    let second = run(dir.path(), &[]);
    assert!(second.status.success(), "{}", describe(&second));
    assert_eq!(last_inputs(dir.path()), ["calls_2026-11-21.csv"]);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains("1 new file(s)") && stdout.contains("(2 read by earlier runs)"),
        "{stdout}"
    );
    assert_eq!(part_files(dir.path()), 2);
    assert_eq!(
        published_days(dir.path()).trim(),
        "[('2026-11-19', 3), ('2026-11-20', 2), ('2026-11-21', 4)]"
    );

    // A failed run does not move the state: its new file is read next time.
    add_day(dir.path(), "2026-11-22", 1);
    std::fs::write(
        dir.path().join("daily.sql"),
        "SELECT day, CAST(CAST(day AS VARCHAR) AS INT) AS calls FROM calls",
    )
    .expect("sql");
    let failed = run(dir.path(), &[]);
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    let fixed = run(dir.path(), &[]);
    assert!(fixed.status.success(), "{}", describe(&fixed));
    assert_eq!(last_inputs(dir.path()), ["calls_2026-11-22.csv"]);

    // Nothing new: the source is empty, the run succeeds.
    let idle = run(dir.path(), &[]);
    assert!(idle.status.success(), "{}", describe(&idle));
    assert!(last_inputs(dir.path()).is_empty());

    // A rewritten file is read again.
    add_day(dir.path(), "2026-11-19", 5);
    let rewritten = run(dir.path(), &["--full-refresh"]);
    assert!(rewritten.status.success(), "{}", describe(&rewritten));

    // --full-refresh reads every file and replaces the appended files.
    assert_eq!(last_inputs(dir.path()).len(), 4);
    assert_eq!(part_files(dir.path()), 1);
    assert_eq!(
        published_days(dir.path()).trim(),
        "[('2026-11-19', 5), ('2026-11-20', 2), ('2026-11-21', 4), ('2026-11-22', 1)]"
    );
    add_day(dir.path(), "2026-11-20", 6);
    let changed = run(dir.path(), &[]);
    assert!(changed.status.success(), "{}", describe(&changed));
    assert_eq!(
        last_inputs(dir.path()),
        ["calls_2026-11-20.csv"],
        "a rewritten file is read again"
    );
}

/// A run killed after publishing its output but before its state: the next
/// run completes the state first, so it does not read the killed run's
/// files again (the appended rows are not doubled).
#[test]
fn a_run_killed_before_its_state_moved_is_not_read_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).expect("pipeline");
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    add_day(dir.path(), "2026-11-19", 3);
    let first = run(dir.path(), &[]);
    assert!(first.status.success(), "{}", describe(&first));

    // Output 0 is `daily`, 1 the state: killed between the two.
    add_day(dir.path(), "2026-11-20", 2);
    crate::publish::kill_command_at(
        crate::common::civica_command(dir.path(), &["run", "pipeline.yaml"]),
        "publishing:1",
    );
    assert_eq!(part_files(dir.path()), 2, "`daily` was published");

    let next = run(dir.path(), &[]);
    assert!(next.status.success(), "{}", describe(&next));
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(stderr.contains("completed the publish of run"), "{stderr}");
    assert!(
        last_inputs(dir.path()).is_empty(),
        "the killed run's file was read again"
    );
    assert_eq!(
        published_days(dir.path()).trim(),
        "[('2026-11-19', 3), ('2026-11-20', 2)]"
    );
}
