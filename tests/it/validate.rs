//! `civica validate`: every kind of mistake reported with its file, line and column, all at once, exit 2; a valid pipeline summarised, exit 0.

use std::path::Path;

use crate::common::{civica, root};

const SOURCES: &str = r#"sources:
  citizens:
    path: "{{ fixtures }}/crm/"
    format: { type: csv, delimiter: ";" }
  calls:
    path: "{{ fixtures }}/calls/"
    format: { type: csv, delimiter: ";", decimal: ",", timestamp_format: "%d/%m/%Y %H:%M:%S" }
"#;

const FEATURES_SQL: &str = "SELECT c.citizen_id, c.name, COUNT(k.call_id) AS calls,\n       COALESCE(SUM(k.wait_s), 0) AS wait_s\nFROM citizens c\nLEFT JOIN calls k ON k.caller_number = c.phone\nGROUP BY c.citizen_id, c.name\n";

const SEGMENT: &str = "segment:\n  from: features\n  id: citizen_id\n  features: [calls, wait_s]\n  model: { type: kmeans, k: 2 }\n";

/// Writes `pipeline.yaml` and SQL files into a fresh folder, runs
/// `civica validate pipeline.yaml` there and returns exit code and output,
/// with the fixtures' absolute path replaced by `[FIXTURES]`.
fn validate(yaml: &str, sql_files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "pipeline.yaml", yaml);
    for (name, text) in sql_files {
        write(dir.path(), name, text);
    }
    let fixtures = root().join("tests/fixtures/lake");
    let out = civica(
        dir.path(),
        &[
            "validate",
            "pipeline.yaml",
            "--var",
            &format!("fixtures={}", fixtures.display()),
            "--var",
            "ds=2026-11-21",
        ],
    );
    let text = format!(
        "exit: {}\n{}{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.replace(&fixtures.display().to_string(), "[FIXTURES]")
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
    std::fs::write(path, text).expect("write fixture");
}

fn pipeline(rest: &str) -> String {
    format!("name: test\n{SOURCES}{rest}")
}

fn valid_steps() -> String {
    pipeline(&format!(
        "transforms:\n  - name: features\n    sql: sql/features.sql\n{SEGMENT}"
    ))
}

#[test]
fn valid_pipeline_prints_a_summary() {
    let out = validate(&valid_steps(), &[("sql/features.sql", FEATURES_SQL)]);
    insta::assert_snapshot!(out);
}

#[test]
fn yaml_syntax_error() {
    insta::assert_snapshot!(validate(
        "name: test\nsources:\n  citizens: [\n    path: x\n",
        &[]
    ));
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let yaml = valid_steps()
        .replace("delimiter: \";\" }\n  calls", "delimter: \";\" }\n  calls")
        .replace("segment:", "output: []\nsegment:");
    insta::assert_snapshot!(validate(&yaml, &[("sql/features.sql", FEATURES_SQL)]));
}

#[test]
fn wrong_value_types() {
    let yaml = valid_steps()
        .replace("k: 2", "k: two")
        .replace("decimal: \",\"", "decimal: \",\", header: maybe");
    insta::assert_snapshot!(validate(&yaml, &[("sql/features.sql", FEATURES_SQL)]));
}

#[test]
fn unknown_format() {
    let yaml = valid_steps().replace(
        "type: csv, delimiter: \";\" }\n  calls",
        "type: parqet }\n  calls",
    );
    insta::assert_snapshot!(validate(&yaml, &[("sql/features.sql", FEATURES_SQL)]));
}

#[test]
fn duplicate_table_names() {
    let yaml = pipeline(&format!(
        "transforms:\n  - name: features\n    sql: sql/features.sql\n  - name: calls\n    sql: sql/features.sql\n{SEGMENT}"
    ));
    insta::assert_snapshot!(validate(&yaml, &[("sql/features.sql", FEATURES_SQL)]));
}

#[test]
fn unknown_table_in_sql() {
    let sql = FEATURES_SQL.replace("LEFT JOIN calls k", "LEFT JOIN phone_calls k");
    insta::assert_snapshot!(validate(&valid_steps(), &[("sql/features.sql", &sql)]));
}

#[test]
fn cycle_between_transforms() {
    let yaml = pipeline(
        "transforms:\n  - name: a\n    sql: sql/a.sql\n  - name: b\n    sql: sql/b.sql\n  - name: c\n    sql: sql/c.sql\n",
    );
    let files = [
        ("sql/a.sql", "SELECT * FROM c"),
        ("sql/b.sql", "SELECT * FROM a"),
        (
            "sql/c.sql",
            "SELECT * FROM b JOIN citizens USING (citizen_id)",
        ),
    ];
    insta::assert_snapshot!(validate(&yaml, &files));
}

#[test]
fn missing_sql_file() {
    insta::assert_snapshot!(validate(&valid_steps(), &[]));
}

#[test]
fn sql_that_does_not_parse() {
    let sql = FEATURES_SQL.replace("GROUP BY", "GROUP");
    insta::assert_snapshot!(validate(&valid_steps(), &[("sql/features.sql", &sql)]));
}

#[test]
fn sql_with_unknown_column() {
    let sql = FEATURES_SQL.replace("k.wait_s", "k.waiting_s");
    insta::assert_snapshot!(validate(&valid_steps(), &[("sql/features.sql", &sql)]));
}

#[test]
fn segment_features_must_be_numeric_columns() {
    let yaml = valid_steps().replace("features: [calls, wait_s]", "features: [calls, name, age]");
    insta::assert_snapshot!(validate(&yaml, &[("sql/features.sql", FEATURES_SQL)]));
}

#[test]
fn k_below_two() {
    let yaml = valid_steps().replace("k: 2", "k: 1");
    insta::assert_snapshot!(validate(&yaml, &[("sql/features.sql", FEATURES_SQL)]));
}

#[test]
fn unknown_variable_in_a_path() {
    let yaml = valid_steps().replace("{{ fixtures }}/calls/", "{{ fixture }}/calls/");
    insta::assert_snapshot!(validate(&yaml, &[("sql/features.sql", FEATURES_SQL)]));
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = pipeline(
        "transforms:\n  - name: features\n    sql: sql/features.sql\n  - name: extra\n    sql: sql/missing.sql\nsegment:\n  from: features\n  id: citizen_id\n  features: [calls, name]\n  model: { type: kmeans, k: 0 }\noutputs:\n  - { table: segmentz, path: out/ }\n",
    );
    let sql = FEATURES_SQL.replace("k.wait_s", "k.waiting_s");
    let out = validate(&yaml, &[("sql/features.sql", &sql)]);
    insta::assert_snapshot!(out);
}
