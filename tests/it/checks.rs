//! Data-quality checks: each kind finds the rows it should, results are
//! kept as Parquet every run, and a failing blocking check exits 3 and
//! publishes nothing.

use std::path::Path;

use crate::common::{civica, describe, python};

/// People with known flaws: id 3 twice, a null name, an age of 140, a
/// gender outside the list; requests with an orphan citizen (99) and one
/// closed before it opened.
const PEOPLE: &str = "id;name;age;gender;seen_at\n1;Mario;41;M;2026-11-21 18:00:00\n2;;35;F;2026-11-20 09:00:00\n3;Luca;140;M;2026-11-19 10:00:00\n3;Luca;22;X;2026-11-18 10:00:00\n";
const REQUESTS: &str = "request_id;citizen_id;opened;closed\n10;1;2026-11-01;2026-11-02\n11;2;2026-11-05;2026-11-03\n12;99;2026-11-06;2026-11-07\n";

fn write_lake(dir: &Path, people: &str) {
    for (folder, file, text) in [
        ("people", "people.csv", people),
        ("requests", "requests.csv", REQUESTS),
    ] {
        std::fs::create_dir_all(dir.join("raw").join(folder)).expect("mkdir");
        std::fs::write(dir.join("raw").join(folder).join(file), text).expect("write csv");
    }
}

fn pipeline(checks: &str) -> String {
    format!(
        "name: checked\nsources:\n  people:\n    path: raw/people/\n    format: {{ type: csv, delimiter: \";\" }}\n  requests:\n    path: raw/requests/\n    format: {{ type: csv, delimiter: \";\" }}\noutputs:\n  - {{ table: people, path: out/people/ }}\nchecks:\n{checks}"
    )
}

fn run(dir: &Path) -> std::process::Output {
    civica(
        dir,
        &[
            "run",
            "pipeline.yaml",
            "--date",
            "2026-11-21",
            "--log-format",
            "json",
        ],
    )
}

/// The rows of the check results of every run so far, through DuckDB.
fn results(dir: &Path) -> String {
    python(&format!(
        "import duckdb\nfor row in duckdb.sql(\"SELECT \\\"table\\\", \\\"check\\\", status, failing_rows, total_rows, failing_keys FROM read_parquet('{}/out/_runs/checks/*.parquet') ORDER BY run_id, \\\"table\\\", \\\"check\\\"\").fetchall(): print(row)",
        dir.display()
    ))
}

#[test]
fn every_kind_of_check_finds_its_failing_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_lake(dir.path(), PEOPLE);
    let checks = r#"  people:
    - { type: not_null, column: name, key: id, severity: warn }
    - { type: unique, column: id, severity: warn }
    - { type: unique, columns: [id, name], name: unique_id_name, severity: warn }
    - { type: range, column: age, min: 0, max: 120, key: id, severity: warn }
    - { type: accepted_values, column: gender, values: [F, M], severity: warn }
    - { type: accepted_values, column: gender, values: [F, M], name: gender_tolerated, max_failing_ratio: 0.25 }
    - { type: row_count, min: 5, severity: warn }
    - { type: row_count, max: 4, name: row_count_max }
    - { type: freshness, column: seen_at, max_age: 12h }
    - { type: freshness, column: seen_at, max_age: 2h, name: stale, severity: warn }
  requests:
    - { type: relationship, column: citizen_id, to: people, to_column: id, key: request_id, severity: warn }
    - { type: sql, name: closed_before_opened, query: "SELECT request_id, opened FROM requests WHERE closed < opened", severity: warn }
"#;
    std::fs::write(dir.path().join("pipeline.yaml"), pipeline(checks)).expect("write pipeline");
    let out = run(dir.path());
    assert!(out.status.success(), "{}", describe(&out));
    let rows = results(dir.path());
    let expected = [
        "('people', 'accepted_values(gender)', 'warn', 1, 4, ['X'])",
        "('people', 'freshness(seen_at)', 'pass', None, 4, ['2026-11-21T18:00:00'])",
        "('people', 'gender_tolerated', 'pass', 1, 4, ['X'])",
        "('people', 'not_null(name)', 'warn', 1, 4, ['2'])",
        "('people', 'range(age)', 'warn', 1, 4, ['3'])",
        "('people', 'row_count', 'warn', None, 4, [])",
        "('people', 'row_count_max', 'pass', None, 4, [])",
        "('people', 'stale', 'warn', None, 4, ['2026-11-21T18:00:00'])",
        "('people', 'unique(id)', 'warn', 2, 4, ['3'])",
        "('people', 'unique_id_name', 'warn', 2, 4, ['3|Luca'])",
        "('requests', 'closed_before_opened', 'warn', 1, 3, ['11'])",
        "('requests', 'relationship(citizen_id)', 'warn', 1, 3, ['12'])",
    ];
    assert_eq!(rows.lines().collect::<Vec<_>>(), expected, "{rows}");
    // The manifest holds the same results; warnings do not stop the publish.
    let manifest = only_manifest(dir.path());
    assert_eq!(manifest["status"], "succeeded");
    assert_eq!(manifest["checks"].as_array().map(Vec::len), Some(12));
    assert!(dir.path().join("out/people/part-00000.parquet").exists());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("check warned: `range(age)` of `people`: 1 of 4 row(s) fail"),
        "{stderr}"
    );
}

#[test]
fn a_failing_blocking_check_exits_3_and_publishes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clean = "id;name;age;gender;seen_at\n1;Mario;41;M;2026-11-21 18:00:00\n2;Anna;35;F;2026-11-20 09:00:00\n";
    write_lake(dir.path(), clean);
    let checks = "  people:\n    - { type: unique, column: id }\n    - { type: range, column: age, max: 120, severity: warn }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), pipeline(checks)).expect("write pipeline");
    let first = run(dir.path());
    assert!(first.status.success(), "{}", describe(&first));
    let published = dir.path().join("out/people/part-00000.parquet");
    let before = std::fs::read(&published).expect("published");

    write_lake(dir.path(), PEOPLE);
    let second = run(dir.path());
    assert_eq!(second.status.code(), Some(3), "{}", describe(&second));
    assert_eq!(std::fs::read(&published).expect("still there"), before);
    assert_eq!(
        crate::common::published(&dir.path().join("out")),
        ["people"]
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("\"exit_code\":3"), "{stderr}");
    assert!(
        stderr.contains("1 blocking check(s) failed, nothing was published: `unique(id)` of `people`: 2 of 4 row(s) fail"),
        "{stderr}"
    );
    let rows = results(dir.path());
    assert!(
        rows.contains("('people', 'unique(id)', 'fail', 2, 4, ['3'])"),
        "{rows}"
    );
    assert!(
        rows.contains("('people', 'range(age)', 'warn', 1, 4, ['140'])"),
        "{rows}"
    );
    let manifests = manifests(dir.path());
    let last = &manifests[1];
    assert_eq!(last["status"], "failed");
    assert_eq!(last["exit_code"], 3);
    assert_eq!(last["outputs"], serde_json::json!([]));
    assert_eq!(last["checks"][0]["status"], "fail", "{last}");
}

#[test]
fn keys_a_kind_of_check_does_not_take_are_refused_at_their_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_lake(dir.path(), PEOPLE);
    let checks = "  people:\n    - { type: not_null }\n    - { type: row_count, min: 1, key: id }\n    - { type: freshness, column: seen_at, max_age: 2d, max_failing_ratio: 0.1 }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), pipeline(checks)).expect("write pipeline");
    let out = civica(dir.path(), &["validate", "pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "pipeline.yaml:13:7: in `checks.people[0]`: missing field `column`",
        "pipeline.yaml:14:34: in `checks.people[1]`: unknown field `key`, expected one of `min`, `max`, `name`, `severity`",
        "pipeline.yaml:15:56: in `checks.people[2]`: unknown field `max_failing_ratio`, expected one of `column`, `max_age`, `name`, `severity`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
}

#[test]
fn check_mistakes_are_reported_at_their_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_lake(dir.path(), PEOPLE);
    let checks = "  ghosts:\n    - { type: not_null, column: id }\n  people:\n    - { type: unique, column: id, columns: [id, age] }\n    - { type: not_null, column: nope }\n    - { type: row_count, min: 1.5 }\n    - { type: freshness, column: seen_at, max_age: 3 weeks }\n    - { type: relationship, column: id, to: ghosts }\n    - { type: sql, query: \"SELECT 1\" }\n    - { type: not_null, column: id }\n    - { type: not_null, column: id }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), pipeline(checks)).expect("write pipeline");
    let out = civica(dir.path(), &["validate", "pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "pipeline.yaml:12:3: `checks.ghosts`: no source, transform or segment table is called `ghosts`",
        "pipeline.yaml:15:15: in `checks.people[0]`: `unique` checks need either `column` or a non-empty `columns`",
        "pipeline.yaml:16:33: check `not_null(nope)` of `people`: no field named nope",
        "pipeline.yaml:17:31: in `checks.people[2]`: `min` of a `row_count` check must be a whole number of rows, found `1.5`",
        "pipeline.yaml:18:52: in `checks.people[3]`: `max_age` must be a number followed by `m`, `h` or `d`",
        "pipeline.yaml:19:45: in `checks.people[4]`: `to`: no source, transform or segment table is called `ghosts`",
        "pipeline.yaml:20:15: in `checks.people[5]`: `sql` checks with a `query` need a `name`",
        "pipeline.yaml:22:7: in `checks.people[7]`: table `people` already has a check named `not_null(id)`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
}

fn manifests(dir: &Path) -> Vec<serde_json::Value> {
    crate::common::manifests(&dir.join("out/_runs"))
}

fn only_manifest(dir: &Path) -> serde_json::Value {
    let mut all = manifests(dir);
    assert_eq!(all.len(), 1);
    all.remove(0)
}
