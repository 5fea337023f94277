//! Variables from the command line: a name the pipeline does not have, or
//! a built-in civica sets, is an error; in SQL a value is data where it
//! stands, never code.

use std::path::Path;

use crate::common::{civica, describe, strings};

const PIPELINE: &str = "name: services\nvars:\n  lake: lake\n  svc: anagrafe\nsources:\n  requests:\n    path: \"{{ lake }}/requests.csv\"\n    format: { type: csv }\ntransforms:\n  - { name: picked, sql: picked.sql }\noutputs:\n  - { table: picked, path: \"{{ lake }}/out/picked/\" }\n";

fn lake(dir: &Path, sql: &str) {
    std::fs::create_dir_all(dir.join("lake")).expect("mkdir");
    std::fs::write(
        dir.join("lake/requests.csv"),
        "request_id,service\n1,anagrafe\n2,tributi\n3,scuola\n",
    )
    .expect("csv");
    std::fs::write(dir.join("pipeline.yaml"), PIPELINE).expect("pipeline");
    std::fs::write(dir.join("picked.sql"), sql).expect("sql");
}

/// `--var lakee=…` would leave `lake` at its default and publish there;
/// `--var run_id=…` would rename the run. Both stop before anything runs.
#[test]
fn unknown_and_read_only_variables_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    lake(dir.path(), "SELECT * FROM requests");
    for (var, expected) in [
        (
            "lakee=/data/lake",
            "`--var lakee`: the pipeline has no variable `lakee` (its variables: `ds`, `lake`, `svc`)",
        ),
        ("run_id=x", "`--var run_id`: `run_id` is set by civica"),
        (
            "ds_nodash=20261121",
            "`--var ds_nodash`: `ds_nodash` is set by civica",
        ),
    ] {
        for command in ["run", "validate"] {
            let out = civica(dir.path(), &[command, "pipeline.yaml", "--var", var]);
            assert_eq!(out.status.code(), Some(2), "{var}: {}", describe(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(expected), "{var}: {stderr}");
        }
    }
    assert!(!dir.path().join("lake/out").exists(), "nothing may run");
    // A variable used only in SQL is known.
    lake(
        dir.path(),
        "SELECT * FROM requests WHERE service = '{{ only_sql }}'",
    );
    let out = civica(
        dir.path(),
        &["run", "pipeline.yaml", "--var", "only_sql=scuola"],
    );
    assert!(out.status.success(), "{}", describe(&out));
}

/// The rows a run of the pipeline with `svc` set to `value` published.
fn picked(dir: &Path, sql: &str, value: &str) -> Vec<String> {
    lake(dir, sql);
    let out = civica(
        dir,
        &["run", "pipeline.yaml", "--var", &format!("svc={value}")],
    );
    assert!(out.status.success(), "{}", describe(&out));
    crate::common::read_parquet(&dir.join("lake/out/picked"))
        .iter()
        .flat_map(|batch| strings(batch, 1))
        .collect()
}

/// `x' OR '1'='1` pasted into a string literal returned every row; now it
/// is the text it is, and matches none. Outside quotes a value is a
/// literal too; `| raw` inserts SQL on purpose.
#[test]
fn a_variable_in_sql_is_a_value_not_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let quoted =
        "SELECT request_id, service FROM requests WHERE service = '{{ svc }}' ORDER BY request_id";
    assert_eq!(picked(dir.path(), quoted, "tributi"), ["tributi"]);
    assert!(picked(dir.path(), quoted, "x' OR '1'='1").is_empty());
    let bare =
        "SELECT request_id, service FROM requests WHERE service = {{ svc }} ORDER BY request_id";
    assert_eq!(picked(dir.path(), bare, "scuola"), ["scuola"]);
    assert!(picked(dir.path(), bare, "'' OR 1=1 --").is_empty());
    let raw = "SELECT request_id, service FROM requests WHERE {{ svc | raw }} ORDER BY request_id";
    assert_eq!(
        picked(dir.path(), raw, "service <> 'anagrafe'"),
        ["tributi", "scuola"]
    );
}
