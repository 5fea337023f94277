//! What a scheduler sees: `--log-format json` writes one JSON object per
//! line on stderr (steps, problems, the outcome with its exit code) and
//! nothing on stdout; human logs carry no colour codes off a terminal.

use serde_json::Value;

use crate::common::{civica, civica_command, describe, root};

/// A one-table pipeline over the fixture CRM export, in a temp folder.
fn pipeline(sql: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("sql")).expect("mkdir");
    let yaml = "name: ops\nsources:\n  citizens:\n    path: \"{{ fixtures }}/crm/\"\n    format: { type: csv, delimiter: \";\" }\ntransforms:\n  - name: people\n    sql: sql/people.sql\noutputs:\n  - { table: people, path: out/people/ }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    std::fs::write(dir.path().join("sql/people.sql"), sql).expect("write sql");
    let fixtures = root().join("tests/fixtures/lake");
    let args = vec![
        "run".to_string(),
        "pipeline.yaml".to_string(),
        "--log-format".to_string(),
        "json".to_string(),
        "--var".to_string(),
        format!("fixtures={}", fixtures.display()),
    ];
    (dir, args)
}

/// Every stderr line as JSON; fails the test on a line that is not.
fn json_lines(stderr: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn json_logs_give_each_step_and_the_outcome() {
    let (dir, args) = pipeline("SELECT citizen_id, name FROM citizens");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = civica(dir.path(), &args);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let events = json_lines(&out.stderr);
    let output = events
        .iter()
        .find(|e| e["message"] == "step finished" && e["kind"] == "output")
        .unwrap_or_else(|| panic!("no output step: {events:?}"));
    assert_eq!(output["table"], "people");
    assert!(output["rows"].as_u64().is_some_and(|r| r > 0), "{output}");
    assert!(output["elapsed_ms"].is_u64(), "{output}");
    let last = events.last().expect("events");
    assert_eq!(last["message"], "pipeline finished", "{last}");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["pipeline"], "ops");
}

#[test]
fn json_logs_report_a_failed_run_and_an_invalid_pipeline() {
    // Plans fine, fails while running: exit 1, the step named.
    let (dir, args) = pipeline("SELECT citizen_id, CAST(name AS INT) AS name FROM citizens");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = civica(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let events = json_lines(&out.stderr);
    let last = events.last().expect("events");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert_eq!(last["exit_code"], 1, "{last}");
    let error = last["error"].as_str().unwrap_or_default();
    assert!(error.contains("transform `people`"), "{error}");

    // A column that does not exist: exit 2, the problem at its place.
    std::fs::write(
        dir.path().join("sql/people.sql"),
        "SELECT nobody FROM citizens",
    )
    .expect("write sql");
    let out = civica(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let events = json_lines(&out.stderr);
    let problem = events
        .iter()
        .find(|e| e["message"] == "invalid pipeline")
        .unwrap_or_else(|| panic!("no problem event: {events:?}"));
    let text = problem["problem"].as_str().unwrap_or_default();
    assert!(
        text.contains("people.sql") && text.contains("nobody"),
        "{text}"
    );
    assert_eq!(events.last().expect("events")["exit_code"], 2);
}

#[test]
fn human_logs_have_no_colour_codes_off_a_terminal() {
    let (dir, args) = pipeline("SELECT citizen_id, name FROM citizens");
    // The human format, with logs on, NO_COLOR unset: stderr is a pipe.
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--log-format" && *a != "json")
        .collect();
    let out = civica_command(dir.path(), &args)
        .env_remove("NO_COLOR")
        .env("CIVICA_LOG", "civica=info")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("step finished"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("pipeline `ops` finished"));
}
