//! The publish guarantees on local disk: a run killed with SIGKILL while
//! writing or between its renames never leaves the outputs at a mix of two
//! runs, the next run repairs what it left, and two runs with the same
//! inputs publish the same bytes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use crate::common::{civica, civica_command, describe, published};

const PIPELINE: &str = "name: killed\nsources:\n  citizens:\n    path: raw/crm/\n    format: { type: csv, delimiter: \";\" }\n  calls:\n    path: raw/calls/\n    format: { type: csv, delimiter: \";\", decimal: \",\", timestamp_format: \"%d/%m/%Y %H:%M:%S\" }\ntransforms:\n  - name: people\n    sql: people.sql\noutputs:\n  - { table: people, path: out/people/ }\n  - { table: calls, path: out/calls/, contains_personal_data: [caller_number], purpose: call statistics }\n";
const PEOPLE_SQL: &str = "SELECT citizen_id, upper(name) AS name FROM citizens";

/// Writes the pipeline and the inputs of day `day` (1 or 2: day 2 has one
/// more citizen and one more call).
fn write_inputs(dir: &Path, day: u32) {
    let mut citizens = "citizen_id;name\n1;Mario Rossi\n2;Anna Bianchi\n".to_string();
    let mut calls =
        "call_id;caller_number;started_at;wait_s\n1;+393471234567;20/11/2026 09:05:33;35,4\n"
            .to_string();
    if day == 2 {
        citizens.push_str("3;Luca Verdi\n");
        calls.push_str("2;+393351112223;21/11/2026 10:10:00;120,0\n");
    }
    for (folder, file, text) in [
        ("raw/crm", "citizens.csv", citizens),
        ("raw/calls", "calls.csv", calls),
    ] {
        std::fs::create_dir_all(dir.join(folder)).expect("mkdir");
        std::fs::write(dir.join(folder).join(file), text).expect("write input");
    }
    std::fs::write(dir.join("pipeline.yaml"), PIPELINE).expect("write pipeline");
    std::fs::write(dir.join("people.sql"), PEOPLE_SQL).expect("write sql");
}

/// Every published output file and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    ["people", "calls"]
        .iter()
        .map(|table| {
            let path = dir.join("out").join(table).join("part-00000.parquet");
            (
                table.to_string(),
                std::fs::read(&path).expect("published output"),
            )
        })
        .collect()
}

/// A folder with the pipeline and the inputs of day `day`, published by a
/// run that nothing disturbed, and what that run published.
fn published_day(day: u32) -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_inputs(dir.path(), day);
    let first = run(dir.path());
    assert!(first.status.success(), "{}", describe(&first));
    let published = snapshot(dir.path());
    (dir, published)
}

fn run(dir: &Path) -> std::process::Output {
    civica(dir, &["run", "pipeline.yaml"])
}

/// Starts a run that pauses at `point`, waits until it says so, and kills
/// it with SIGKILL.
fn kill_at(dir: &Path, point: &str) {
    kill_command_at(civica_command(dir, &["run", "pipeline.yaml"]), point);
}

/// Starts `command` (a civica run) pausing at `point`, waits until it says
/// so, and kills it with SIGKILL.
pub fn kill_command_at(command: std::process::Command, point: &str) {
    kill(pause_command_at(command, point));
}

/// Kills a paused run with SIGKILL.
pub fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("killed child");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed by SIGKILL"
    );
}

/// Starts `command` (a civica run) pausing at `point`, and returns it once
/// it says it has paused there.
pub fn pause_command_at(mut command: std::process::Command, point: &str) -> Child {
    let mut child = command
        .env("CIVICA_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("civica starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        if line.contains(&format!("civica: paused at {point}")) {
            return child;
        }
        seen.push(line);
    }
    panic!(
        "the run never reached {point}: {:?}\n{}",
        child.wait(),
        seen.join("\n")
    );
}

#[test]
fn a_run_killed_while_writing_changes_nothing_and_the_next_run_cleans_up() {
    let (dir, yesterday) = published_day(1);

    write_inputs(dir.path(), 2);
    kill_at(dir.path(), "writing:calls");
    assert_eq!(
        snapshot(dir.path()),
        yesterday,
        "outputs changed by a killed run"
    );
    let left = published(&dir.path().join("out"));
    assert!(
        left.iter()
            .any(|name| name.starts_with("people.civica-staging-")),
        "the killed run had staged `people`: {left:?}"
    );

    let next = run(dir.path());
    assert!(next.status.success(), "{}", describe(&next));
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(
        stderr.contains("removed the staging leftovers of run"),
        "{stderr}"
    );
    assert_eq!(published(&dir.path().join("out")), ["calls", "people"]);
    let today = snapshot(dir.path());
    assert_ne!(today, yesterday);

    // The same inputs and vars publish the same bytes.
    let again = run(dir.path());
    assert!(again.status.success(), "{}", describe(&again));
    assert_eq!(snapshot(dir.path()), today, "a re-run changed the outputs");
}

#[test]
fn a_run_killed_between_renames_is_completed_by_the_next_run() {
    // What day 2 publishes, from a run that was not killed.
    let (_reference, day2) = published_day(2);
    let (dir, day1) = published_day(1);

    write_inputs(dir.path(), 2);
    kill_at(dir.path(), "publishing:1");
    // Killed after its first rename: `people` is day 2, `calls` still day 1.
    let torn = snapshot(dir.path());
    assert_eq!(torn["people"], day2["people"]);
    assert_eq!(torn["calls"], day1["calls"]);
    assert_eq!(intents(dir.path()), 1);

    // The next run fails in its transform, yet first completes the publish
    // the killed run had started.
    let failing = run_failing_in_its_transform(dir.path());
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert!(stderr.contains("completed the publish of run"), "{stderr}");
    assert_eq!(snapshot(dir.path()), day2, "outputs not at one run's state");
    assert_eq!(published(&dir.path().join("out")), ["calls", "people"]);
    assert_eq!(
        intents(dir.path()),
        0,
        "the publish record is removed once completed"
    );
}

/// Runs with `CIVICA_FAIL_AT=<point>`: the store fails there.
fn run_failing_at(dir: &Path, point: &str) -> std::process::Output {
    let output = civica_command(dir, &["run", "pipeline.yaml"])
        .env("CIVICA_FAIL_AT", point)
        .output()
        .expect("civica runs");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    output
}

fn intents(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("out/_runs/publishing"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

fn staging_folders(dir: &Path) -> Vec<String> {
    published(&dir.join("out"))
        .into_iter()
        .filter(|name| name.contains(".civica-staging-"))
        .collect()
}

#[test]
fn a_publish_failing_part_way_is_completed_by_the_next_run() {
    let (_reference, day2) = published_day(2);
    let (dir, day1) = published_day(1);

    // The store fails on the second output: the first is published.
    write_inputs(dir.path(), 2);
    let failed = run_failing_at(dir.path(), "publishing:1");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("publishing the outputs failed")
            && stderr.contains("failure injected at publishing:1"),
        "{stderr}"
    );
    let torn = snapshot(dir.path());
    assert_eq!(torn["people"], day2["people"]);
    assert_eq!(torn["calls"], day1["calls"]);
    assert_eq!(staging_folders(dir.path()).len(), 1, "`calls` stays staged");
    assert_eq!(intents(dir.path()), 1, "the publish record stays");

    // The next run, though it fails itself, completes that publish.
    let next = run_failing_in_its_transform(dir.path());
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(stderr.contains("completed the publish of run"), "{stderr}");
    assert_eq!(snapshot(dir.path()), day2);
    assert_eq!(published(&dir.path().join("out")), ["calls", "people"]);
    assert_eq!(intents(dir.path()), 0);
}

#[test]
fn a_run_that_cannot_complete_an_earlier_publish_publishes_nothing() {
    let (dir, day1) = published_day(1);
    write_inputs(dir.path(), 2);
    kill_at(dir.path(), "publishing:1");
    let torn = snapshot(dir.path());
    let left = staging_folders(dir.path());
    assert_eq!(left.len(), 1, "`calls` still staged: {left:?}");

    // Day 1's inputs again, and the store fails as the killed run's
    // publish is completed: publishing day 1 over it would leave `people`
    // and `calls` from two runs for good. The run stops, keeping all.
    write_inputs(dir.path(), 1);
    let failed = run_failing_at(dir.path(), "recovering");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("an earlier run's publish could not be completed")
            && stderr.contains("failure injected at recovering"),
        "{stderr}"
    );
    assert_eq!(snapshot(dir.path()), torn, "nothing published");
    assert_eq!(staging_folders(dir.path()), left, "the staged files stay");
    assert_eq!(intents(dir.path()), 1, "the publish record stays");

    // `validate` repairs nothing.
    let validate = civica(dir.path(), &["validate", "pipeline.yaml"]);
    assert!(validate.status.success(), "{}", describe(&validate));
    assert_eq!(snapshot(dir.path()), torn);
    assert_eq!(staging_folders(dir.path()), left);
    assert_eq!(intents(dir.path()), 1);

    // Once the store works, the next run completes it, then publishes.
    let next = run(dir.path());
    assert!(next.status.success(), "{}", describe(&next));
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(stderr.contains("completed the publish of run"), "{stderr}");
    assert_eq!(intents(dir.path()), 0);
    assert!(staging_folders(dir.path()).is_empty());
    assert_eq!(snapshot(dir.path()), day1, "then its own publish");
}

/// Two runs of one pipeline at once: the second finds the first's lock and
/// is skipped; without the lock (removed by hand) it waits for the first's
/// publish, and when that does not end it stops without publishing, so the
/// outputs never mix the two runs.
#[test]
fn a_run_never_publishes_over_a_publish_still_under_way() {
    let (dir, day1) = published_day(1);
    write_inputs(dir.path(), 2);
    let paused = pause_command_at(
        civica_command(dir.path(), &["run", "pipeline.yaml"]),
        "publishing:1",
    );
    let torn = snapshot(dir.path());
    assert_ne!(torn["people"], day1["people"]);
    assert_eq!(torn["calls"], day1["calls"]);
    let left = staging_folders(dir.path());

    write_inputs(dir.path(), 1);
    // The pipeline's lock turns the second run away first.
    let skipped = run(dir.path());
    assert_eq!(skipped.status.code(), Some(75), "{}", describe(&skipped));
    assert!(String::from_utf8_lossy(&skipped.stderr).contains("holds the lock"));
    assert_eq!(snapshot(dir.path()), torn, "nothing published over it");
    // With the lock removed by hand, the publish under way still holds it off.
    std::fs::remove_file(dir.path().join("out/_runs/lock/killed.lock")).expect("remove the lock");
    let overlapping = run(dir.path());
    assert_eq!(
        overlapping.status.code(),
        Some(1),
        "{}",
        describe(&overlapping)
    );
    let stderr = String::from_utf8_lossy(&overlapping.stderr);
    assert!(
        stderr.contains("is still running and publishing"),
        "{stderr}"
    );
    assert_eq!(snapshot(dir.path()), torn, "nothing published over it");
    assert_eq!(staging_folders(dir.path()), left, "its staging is kept");

    // Once it is dead, the next run completes its publish, then its own.
    kill(paused);
    let next = run(dir.path());
    assert!(next.status.success(), "{}", describe(&next));
    assert!(String::from_utf8_lossy(&next.stderr).contains("completed the publish of run"));
    assert_eq!(snapshot(dir.path()), day1);
}

/// A publish record whose staged files someone removed cannot be
/// completed: runs stop, naming it, until it is removed.
#[test]
fn a_publish_record_whose_files_are_gone_stops_the_runs_until_removed() {
    let (dir, _) = published_day(1);
    write_inputs(dir.path(), 2);
    kill_at(dir.path(), "publishing:1");
    for staging in staging_folders(dir.path()) {
        std::fs::remove_dir_all(dir.path().join("out").join(staging)).expect("remove staging");
    }
    let stopped = run(dir.path());
    assert_eq!(stopped.status.code(), Some(1), "{}", describe(&stopped));
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        stderr.contains("are gone; check that output, then remove the record")
            && stderr.contains("_runs/publishing/"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir.path().join("out/_runs/publishing")).expect("remove record");
    let next = run(dir.path());
    assert!(next.status.success(), "{}", describe(&next));
}

#[test]
fn a_completed_publish_also_removes_what_a_replacing_output_replaces() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_inputs(dir.path(), 1);
    let appending = PIPELINE.replace(
        "{ table: calls, path: out/calls/, contains_personal_data: [caller_number], purpose: call statistics }",
        "{ table: calls, path: out/calls/, mode: append, contains_personal_data: [caller_number], purpose: call statistics }",
    );
    std::fs::write(dir.path().join("pipeline.yaml"), &appending).expect("pipeline");
    let parts = || {
        std::fs::read_dir(dir.path().join("out/calls"))
            .expect("calls folder")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
            .count()
    };
    for _ in 0..2 {
        let out = run(dir.path());
        assert!(out.status.success(), "{}", describe(&out));
    }
    assert_eq!(parts(), 2, "two appended files");

    // A full refresh replaces the appended files; killed after moving
    // `people`, before `calls`.
    kill_command_at(
        civica_command(dir.path(), &["run", "pipeline.yaml", "--full-refresh"]),
        "publishing:1",
    );
    assert_eq!(parts(), 2, "`calls` not moved yet");

    // The next run fails, but first completes the refresh: one file left.
    run_failing_in_its_transform(dir.path());
    assert_eq!(parts(), 1, "the refreshed file only");
}

/// Makes the `people` step fail (a name cast to a number) and runs: the run
/// exits 1, after completing any publish a killed run left.
fn run_failing_in_its_transform(dir: &Path) -> std::process::Output {
    std::fs::write(
        dir.join("people.sql"),
        "SELECT citizen_id, CAST(name AS INT) AS name FROM citizens",
    )
    .expect("write sql");
    let failing = run(dir);
    assert_eq!(failing.status.code(), Some(1), "{}", describe(&failing));
    failing
}
