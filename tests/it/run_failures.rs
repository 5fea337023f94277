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
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .expect("out folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        vec!["people".to_string()],
        "staging leftovers: {leftovers:?}"
    );
}
