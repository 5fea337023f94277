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
    inputs_of_last_run(&dir.join("out/_runs"))
}

/// The files the last manifest in a runs folder says its run read.
fn inputs_of_last_run(runs: &Path) -> Vec<String> {
    let all = crate::common::manifests(runs);
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
    parts_in(&dir.join("out/daily"))
}

/// The `part-*` files of an output folder.
fn parts_in(folder: &Path) -> usize {
    std::fs::read_dir(folder)
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

    // A rewritten file, read again by a full refresh.
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
    // A file rewritten after a run read it stops the run (see below).
    add_day(dir.path(), "2026-11-20", 6);
    let changed = run(dir.path(), &[]);
    assert_eq!(changed.status.code(), Some(1), "{}", describe(&changed));
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

/// The daily pipeline with its lake in a variable, so that it can move.
fn pipeline_in(lake_dir: &str, on_changed: &str) -> String {
    format!(
        "name: calls_daily\nvars:\n  lake: {lake_dir}\nruns: \"{{{{ lake }}}}/out/_runs/\"\nsources:\n  calls:\n    path: \"{{{{ lake }}}}/raw/calls/\"\n    format: {{ type: csv, delimiter: \";\" }}\n    incremental: true\n{on_changed}transforms:\n  - {{ name: daily, sql: daily.sql }}\noutputs:\n  - {{ table: daily, path: \"{{{{ lake }}}}/out/daily/\", mode: append }}\n"
    )
}

/// What a run in `dir` of the lake at `lake` published and read.
fn days_in(dir: &Path, lake: &str) -> (String, Vec<String>, usize) {
    let lake = dir.join(lake);
    let days = python(&format!(
        "import duckdb\nprint(duckdb.sql(\"SELECT day::VARCHAR, sum(calls)::INT FROM read_parquet('{}/out/daily/*.parquet') GROUP BY day ORDER BY day\").fetchall())",
        lake.display()
    ));
    (
        days.trim().to_string(),
        inputs_of_last_run(&lake.join("out/_runs")),
        parts_in(&lake.join("out/daily")),
    )
}

/// A file touched, copied again with the same bytes, or a lake moved to
/// another folder is not read again: the state knows objects by their
/// path below the source and their content, not by URL and time. (Before,
/// each of these doubled the day's calls.) A night with nothing new adds
/// no empty part file.
#[test]
fn touched_copied_or_moved_inputs_are_not_read_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pipeline.yaml"), pipeline_in("lake", "")).expect("pipeline");
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    let lake = dir.path().join("lake");
    add_day(&lake, "2026-11-19", 3);
    add_day(&lake, "2026-11-20", 2);
    let first = run(dir.path(), &[]);
    assert!(first.status.success(), "{}", describe(&first));
    let published = "[('2026-11-19', 3), ('2026-11-20', 2)]";
    assert_eq!(days_in(dir.path(), "lake").0, published);

    // `touch`: a new modification time, the same bytes.
    let day = lake.join("raw/calls/calls_2026-11-20.csv");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&day)
        .and_then(|f| f.set_modified(later))
        .expect("touch");
    let touched = run(dir.path(), &[]);
    assert!(touched.status.success(), "{}", describe(&touched));
    assert_eq!(
        days_in(dir.path(), "lake"),
        (published.to_string(), vec![], 1),
        "a touched file was read again, or an empty part was added"
    );

    // `cp` without `-p`: a new file (another inode and time), the same bytes.
    let bytes = std::fs::read(&day).expect("read");
    std::fs::remove_file(&day).expect("remove");
    std::fs::write(&day, bytes).expect("copy again");
    let copied = run(dir.path(), &[]);
    assert!(copied.status.success(), "{}", describe(&copied));
    assert_eq!(
        days_in(dir.path(), "lake"),
        (published.to_string(), vec![], 1)
    );

    // The lake moved: the runs folder and the state move with it.
    std::fs::rename(&lake, dir.path().join("moved")).expect("mv");
    let moved = run(dir.path(), &["--var", "lake=moved"]);
    assert!(moved.status.success(), "{}", describe(&moved));
    assert_eq!(
        days_in(dir.path(), "moved"),
        (published.to_string(), vec![], 1)
    );

    // A new day is read, alone.
    add_day(&dir.path().join("moved"), "2026-11-21", 4);
    let next = run(dir.path(), &["--var", "lake=moved"]);
    assert!(next.status.success(), "{}", describe(&next));
    assert_eq!(
        days_in(dir.path(), "moved"),
        (
            "[('2026-11-19', 3), ('2026-11-20', 2), ('2026-11-21', 4)]".to_string(),
            vec!["calls_2026-11-21.csv".to_string()],
            2
        )
    );
}

/// A file whose bytes changed after a run read it stops the run, naming
/// it and the choices; `ignore` keeps what was read; `reread` reads again
/// every file of the run that read it and replaces what that run appended,
/// so the day is replaced, not added to.
#[test]
fn a_changed_input_stops_the_run_unless_the_source_says_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write_pipeline = |on_changed: &str| {
        std::fs::write(
            dir.path().join("pipeline.yaml"),
            pipeline_in("lake", on_changed),
        )
        .expect("pipeline")
    };
    write_pipeline("");
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    let lake = dir.path().join("lake");
    add_day(&lake, "2026-11-19", 3);
    assert!(run(dir.path(), &[]).status.success());
    add_day(&lake, "2026-11-20", 2);
    assert!(run(dir.path(), &[]).status.success());
    let published = "[('2026-11-19', 3), ('2026-11-20', 2)]";

    add_day(&lake, "2026-11-19", 5);
    let changed = run(dir.path(), &[]);
    assert_eq!(changed.status.code(), Some(1), "{}", describe(&changed));
    let stderr = String::from_utf8_lossy(&changed.stderr);
    for expected in [
        "calls_2026-11-19.csv` changed after run",
        "`on_changed_input: reread`",
        "`on_changed_input: ignore`",
        "`--full-refresh`",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert_eq!(days_in(dir.path(), "lake").0, published);

    write_pipeline("    on_changed_input: ignore\n");
    let ignored = run(dir.path(), &[]);
    assert!(ignored.status.success(), "{}", describe(&ignored));
    assert!(
        String::from_utf8_lossy(&ignored.stderr).contains("its new bytes are not read"),
        "{}",
        describe(&ignored)
    );
    assert_eq!(
        days_in(dir.path(), "lake"),
        (published.to_string(), vec![], 2)
    );

    add_day(&lake, "2026-11-19", 7);
    write_pipeline("    on_changed_input: reread\n");
    let reread = run(dir.path(), &[]);
    assert!(reread.status.success(), "{}", describe(&reread));
    assert_eq!(
        days_in(dir.path(), "lake"),
        (
            "[('2026-11-19', 7), ('2026-11-20', 2)]".to_string(),
            vec!["calls_2026-11-19.csv".to_string()],
            2
        ),
        "the first run's rows were not replaced"
    );
    // Read once more, nothing changes.
    let idle = run(dir.path(), &[]);
    assert!(idle.status.success(), "{}", describe(&idle));
    assert_eq!(days_in(dir.path(), "lake").1, Vec::<String>::new());
}

/// Two runs of one pipeline at once: the second finds the first's lock in
/// the runs folder and is skipped (exit 75, a line saying who holds it),
/// publishing nothing. A run killed holds nothing: the next run reads the
/// new file once.
#[test]
fn a_second_run_at_once_is_skipped_and_a_dead_runs_lock_is_broken() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).expect("pipeline");
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    add_day(dir.path(), "2026-11-19", 3);
    let first = crate::publish::pause_command_at(
        crate::common::civica_command(dir.path(), &["run", "pipeline.yaml"]),
        "writing:daily",
    );
    let second = run(dir.path(), &[]);
    assert_eq!(second.status.code(), Some(75), "{}", describe(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("skipped: run `") && stderr.contains("holds the lock"),
        "{stderr}"
    );
    let json = run(dir.path(), &["--log-format", "json"]);
    assert_eq!(json.status.code(), Some(75), "{}", describe(&json));
    assert!(
        String::from_utf8_lossy(&json.stderr).contains("\"message\":\"pipeline skipped\""),
        "{}",
        describe(&json)
    );
    assert!(
        !dir.path().join("out/daily").exists() || part_files(dir.path()) == 0,
        "a skipped run published"
    );

    // The kernel releases a dead run's lock: the next run takes it and
    // reads the new file once; a run after it takes it again.
    crate::publish::kill(first);
    let next = run(dir.path(), &[]);
    assert!(next.status.success(), "{}", describe(&next));
    assert_eq!(published_days(dir.path()).trim(), "[('2026-11-19', 3)]");
    assert!(dir.path().join("out/_runs/lock/calls_daily.lock").exists());
    let again = run(dir.path(), &[]);
    assert!(
        again.status.success(),
        "the lock was not released: {}",
        describe(&again)
    );
}

/// A state damaged or edited into one civica cannot have written stops the
/// run (exit 1) naming the file and what to do, and publishes nothing.
#[test]
fn a_damaged_state_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).expect("pipeline");
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    add_day(dir.path(), "2026-11-19", 3);
    assert!(run(dir.path(), &[]).status.success());
    let state = dir.path().join("out/_runs/state/calls_daily.json");
    for (damage, expected) in [
        (
            "{\"sources\": {\"calls\": {\"a.csv\": {\"bytes\": \"many\"}}}}",
            "is damaged: invalid type",
        ),
        (
            "{\"format\": 2, \"sources\": {\"calls\": {\"a.csv\": {\"bytes\": 3, \"etag\": null, \"sha256\": \"abc\", \"run_id\": \"r\"}}}}",
            "is not a SHA-256",
        ),
        (
            "{\"format\": 7, \"sources\": {}}",
            "written by a newer civica",
        ),
        ("not json", "is damaged"),
    ] {
        std::fs::write(&state, damage).expect("damage");
        add_day(dir.path(), "2026-11-20", 2);
        let out = run(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{damage}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("calls_daily.json` is damaged") && stderr.contains(expected),
            "{damage}: {stderr}"
        );
        assert!(stderr.contains("--full-refresh"), "{stderr}");
        assert_eq!(part_files(dir.path()), 1, "nothing published");
    }
}

/// An empty file is read as nothing and stays unknown, so that once its
/// writer fills it, it is new, not "changed". A file read, archived away
/// and put back is not read again.
#[test]
fn an_empty_file_filled_later_is_new_and_a_file_put_back_is_not_read_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).expect("pipeline");
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    add_day(dir.path(), "2026-11-19", 3);
    let empty = dir.path().join("raw/calls/calls_2026-11-20.csv");
    std::fs::write(&empty, "").expect("an empty file");
    let first = run(dir.path(), &[]);
    assert!(first.status.success(), "{}", describe(&first));
    add_day(dir.path(), "2026-11-20", 2);
    let filled = run(dir.path(), &[]);
    assert!(filled.status.success(), "{}", describe(&filled));
    assert_eq!(last_inputs(dir.path()), ["calls_2026-11-20.csv"]);
    assert_eq!(
        published_days(dir.path()).trim(),
        "[('2026-11-19', 3), ('2026-11-20', 2)]"
    );

    let archive = dir.path().join("archive.csv");
    let read = dir.path().join("raw/calls/calls_2026-11-19.csv");
    std::fs::rename(&read, &archive).expect("archive");
    assert!(run(dir.path(), &[]).status.success());
    std::fs::rename(&archive, &read).expect("put back");
    let back = run(dir.path(), &[]);
    assert!(back.status.success(), "{}", describe(&back));
    assert!(
        last_inputs(dir.path()).is_empty(),
        "a file put back was read again"
    );
    assert_eq!(
        published_days(dir.path()).trim(),
        "[('2026-11-19', 3), ('2026-11-20', 2)]"
    );
}

/// `reread` replaces only what the replaced run appended from incremental
/// sources: an append output of another source keeps that run's file.
#[test]
fn a_reread_leaves_outputs_of_other_sources_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pipeline = PIPELINE
        .replace(
            "    incremental: true\n",
            "    incremental: true\n    on_changed_input: reread\n  queues:\n    path: queues.csv\n    format: { type: csv }\n",
        )
        .replace(
            "  - { name: daily, sql: daily.sql }\n",
            "  - { name: daily, sql: daily.sql }\n  - { name: snapshot, sql: snapshot.sql }\n",
        )
        .replace(
            "mode: append }\n",
            "mode: append }\n  - { table: snapshot, path: out/snapshot/, mode: append }\n",
        );
    std::fs::write(dir.path().join("pipeline.yaml"), pipeline).expect("pipeline");
    std::fs::write(dir.path().join("daily.sql"), DAILY).expect("sql");
    std::fs::write(dir.path().join("snapshot.sql"), "SELECT * FROM queues").expect("sql");
    std::fs::write(dir.path().join("queues.csv"), "queue\nanagrafe\n").expect("queues");
    add_day(dir.path(), "2026-11-19", 3);
    assert!(run(dir.path(), &[]).status.success());
    add_day(dir.path(), "2026-11-19", 4);
    let reread = run(dir.path(), &[]);
    assert!(reread.status.success(), "{}", describe(&reread));
    assert_eq!(published_days(dir.path()).trim(), "[('2026-11-19', 4)]");
    assert_eq!(
        parts_in(&dir.path().join("out/daily")),
        1,
        "the day was replaced"
    );
    assert_eq!(
        parts_in(&dir.path().join("out/snapshot")),
        2,
        "the snapshot appended by the first run was removed"
    );
}
