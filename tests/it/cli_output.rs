//! Whole CLI runs snapshot-tested, as a user sees them: `run` on the
//! quickstart, a run stopped by a blocking check, `--log-format json`, and
//! `backfill`. Temporary paths, run ids, timestamps and durations are
//! filtered out; row
//! counts, file sizes and model figures stay, so a change in any of them
//! shows in the review of the snapshot (`cargo insta review`, or see
//! CONTRIBUTING.md).

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use regex::Regex;

use crate::common::{DS, civica, quickstart_command, write_demo};

/// A small demo lake, written once: 300 citizens over 7 days.
fn small_lake() -> &'static Path {
    static LAKE: OnceLock<tempfile::TempDir> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        write_demo(dir.path(), 300, 7, 42);
        dir
    })
    .path()
}

/// Exit code, stdout and stderr, with `dir` shown as `[DIR]`, and run ids,
/// timestamps and durations replaced by placeholders.
fn screen(out: &Output, dir: &Path) -> String {
    let text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text.replace(&dir.display().to_string(), "[DIR]");
    let filters = [
        (r"\d{8}T\d{6}\.\d{3}Z-\d+", "[RUN_ID]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", "[TS]"),
        (r#""timestamp":"[^"]*""#, r#""timestamp":"[TS]""#),
        (r#""elapsed_ms":\d+"#, r#""elapsed_ms":[MS]"#),
        (r"\d+\.\d\d s\b", "[T] s"),
        (r"finished in \d+\.\d+ s", "finished in [T] s"),
        // An SQL step without `ORDER BY` may give its rows in another order
        // from one run to the next (DataFusion's joins and aggregations run
        // in parallel), and so Parquet files of another size.
        (
            r"\.parquet \((\d+ partition\(s\), )?[0-9.]+ (B|KiB|MiB)\)",
            ".parquet ($1[SIZE])",
        ),
    ];
    filters.iter().fold(text, |text, (pattern, with)| {
        Regex::new(pattern)
            .expect("a valid filter")
            .replace_all(&text, *with)
            .into_owned()
    })
}

/// The quickstart on a fresh copy of the small lake, so each run starts
/// from the same state.
fn fresh_lake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = std::process::Command::new("cp")
        .args(["-r", &format!("{}/.", small_lake().display())])
        .arg(dir.path())
        .status()
        .expect("cp runs");
    assert!(copy.success());
    dir
}

fn quickstart(lake: &Path, extra: &[&str]) -> Output {
    quickstart_command(&lake.display().to_string(), "run")
        .args(extra)
        .output()
        .expect("the civica binary runs")
}

#[test]
fn run_on_the_quickstart() {
    let lake = fresh_lake();
    let out = quickstart(lake.path(), &[]);
    insta::assert_snapshot!(screen(&out, lake.path()));
}

#[test]
fn run_on_the_quickstart_with_json_logs() {
    let lake = fresh_lake();
    let out = quickstart(lake.path(), &["--log-format", "json"]);
    insta::assert_snapshot!(screen(&out, lake.path()));
}

/// A folder holding `files` (path, text) and `pipeline.yaml`, a pipeline
/// over `in/people.csv` with `rest` after its source, run for [`DS`].
fn run_people(files: &[(&str, &str)], rest: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
        std::fs::write(path, text).expect("write file");
    }
    let yaml = format!(
        "name: people\nsources:\n  people:\n    path: in/\n    format: {{ type: csv, delimiter: \";\" }}\n{rest}"
    );
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    let out = civica(
        dir.path(),
        &["run", "pipeline.yaml", "--var", &format!("ds={DS}")],
    );
    (dir, out)
}

#[test]
fn a_run_stopped_by_a_blocking_check() {
    let (dir, out) = run_people(
        &[("in/people.csv", "id;name\n1;Anna\n;Bruno\n3;\n")],
        r#"checks:
  people:
    - { type: not_null, column: id }
    - { type: not_null, column: name, severity: warn }
outputs:
  - { table: people, path: out/people/ }
"#,
    );
    insta::assert_snapshot!(screen(&out, dir.path()));
}

/// A step that fails while running: exit 1, the step and its file named,
/// nothing published.
#[test]
fn a_run_whose_transform_fails() {
    let (dir, out) = run_people(
        &[
            ("in/people.csv", "id;name\n1;Anna\n2;Bruno\n"),
            (
                "sql/ids.sql",
                "SELECT CAST(name AS INT) AS id FROM people\n",
            ),
        ],
        r#"transforms:
  - { name: ids, sql: sql/ids.sql }
outputs:
  - { table: ids, path: out/ids/ }
"#,
    );
    assert!(!dir.path().join("out/ids").exists(), "nothing is published");
    insta::assert_snapshot!(screen(&out, dir.path()));
}

#[test]
fn backfill_of_three_days() {
    let dir = crate::common::daily_pipeline();
    let out = crate::common::backfill(dir.path(), "2026-11-19", "2026-11-21");
    insta::assert_snapshot!(screen(&out, dir.path()));
}

/// The record of processing of the quickstart, in Italian and English,
/// and as JSON a tool can read.
#[test]
fn privacy_record_of_the_quickstart() {
    let lake = small_lake();
    let record = |extra: &[&str]| {
        let mut command = quickstart_command(&lake.display().to_string(), "privacy-record");
        command.args(extra);
        let out = command.output().expect("the civica binary runs");
        assert!(out.status.success(), "{}", crate::common::describe(&out));
        String::from_utf8_lossy(&out.stdout).replace(&lake.display().to_string(), "[LAKE]")
    };
    insta::assert_snapshot!("privacy_record_it", record(&[]));
    insta::assert_snapshot!("privacy_record_en", record(&["--lang", "en"]));
    let json: serde_json::Value =
        serde_json::from_str(&record(&["--format", "json"])).expect("JSON");
    assert_eq!(json["legal_basis"], "public_interest");
    assert_eq!(json["dpia_required"], true);
    assert_eq!(json["safeguards"]["min_cell"], 10);
    // Every column the quickstart's CRM tags or civica finds is listed.
    let columns: Vec<&str> = json["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .filter_map(|c| c["column"].as_str())
        .collect();
    for column in [
        "citizens.codice_fiscale",
        "citizens.first_name",
        "citizens.email",
        "citizens.phone",
        "web.user",
    ] {
        assert!(
            columns.contains(&column),
            "{column} missing from {columns:?}"
        );
    }
}

#[test]
fn the_record_names_the_controller_the_law_pseudonymised_columns_and_per_citizen_outputs() {
    let dir = tempfile::tempdir().expect("temp dir");
    crate::common::copy_quickstart(dir.path());
    let pipeline = dir.path().join("pipelines/citizen_segments.yaml");
    let yaml = std::fs::read_to_string(&pipeline).expect("pipeline");
    let yaml = yaml
        .replacen(
            "  objection: objected_profiling\n",
            "  objection: objected_profiling\n  law: \"art. 7 del regolamento comunale sui servizi digitali\"\n",
            1,
        )
        .replacen(
            "    format: { type: csv, delimiter: \";\", decimal: \",\"",
            "    pseudonymize: { caller_number: phone }\n    format: { type: csv, delimiter: \";\", decimal: \",\"",
            1,
        )
        + "controller:\n  name: Comune di Esempio\n  dpo: rpd@comune.esempio.it\n  recipients: [ufficio per la transizione al digitale]\n";
    std::fs::write(&pipeline, yaml).expect("pipeline");
    let lake = small_lake().display().to_string();
    let out = crate::common::keyed_command(
        dir.path(),
        &[
            "privacy-record",
            "pipelines/citizen_segments.yaml",
            "--format",
            "json",
            "--var",
            &format!("lake={lake}"),
            "--var",
            &format!("ds={DS}"),
        ],
    )
    .output()
    .expect("the civica binary runs");
    assert!(out.status.success(), "{}", crate::common::describe(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["controller"]["name"], "Comune di Esempio");
    assert_eq!(json["controller"]["dpo"], "rpd@comune.esempio.it");
    assert_eq!(
        json["law"],
        "art. 7 del regolamento comunale sui servizi digitali"
    );
    let pseudonymised: Vec<&str> = json["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .filter(|c| c["pseudonymised"] == true)
        .filter_map(|c| c["column"].as_str())
        .collect();
    assert_eq!(pseudonymised, ["calls.caller_number"]);
    let keyed: Vec<(&str, &serde_json::Value)> = json["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .map(|r| (r["table"].as_str().unwrap_or_default(), &r["keyed_by"]))
        .collect();
    assert!(keyed.contains(&("citizen_features", &serde_json::json!("citizen_id"))));
    assert!(keyed.contains(&("segments", &serde_json::json!("citizen_id"))));
    assert!(keyed.contains(&("segment_profiles", &serde_json::Value::Null)));
    // What the pipeline now says is no longer asked for; transfers,
    // vulnerable people, special categories behind services and the use
    // of the segments still are.
    let asked: Vec<&str> = json["to_complete"]
        .as_array()
        .expect("to_complete")
        .iter()
        .filter_map(|t| t["what"].as_str())
        .collect();
    assert_eq!(asked.len(), 4, "{asked:?}");
    assert!(asked.iter().any(|a| a.contains("in the EU")), "{asked:?}");
    let vulnerable = &json["dpia_criteria"][6];
    assert_eq!(vulnerable["number"], 7);
    assert_eq!(vulnerable["met"], serde_json::Value::Null);
}
