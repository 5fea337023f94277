//! What arrives in the inbox cannot fool a run: every line is accounted
//! for in every format, values are loaded exactly or rejected with a
//! reason, empty and special files are named, checks and options cannot do
//! what they are not for.

use std::path::Path;

use crate::common::{civica, describe, query, strings};

/// Runs a one-source pipeline whose transform copies the source, with the
/// source's own YAML (`format`, `schema`…) and files; returns the output.
fn run_source(dir: &Path, source: &str, files: &[(&str, &[u8])]) -> std::process::Output {
    std::fs::create_dir_all(dir.join("in")).expect("mkdir");
    for (name, bytes) in files {
        std::fs::write(dir.join("in").join(name), bytes).expect("input");
    }
    let yaml = format!(
        "name: hostile\nruns: out/_runs/\nsources:\n  src:\n    path: in/\n{source}    max_rejected_ratio: 1\ntransforms:\n  - {{ name: copied, sql: copied.sql }}\noutputs:\n  - {{ table: copied, path: out/copied/ }}\n"
    );
    std::fs::write(dir.join("pipeline.yaml"), yaml).expect("pipeline");
    std::fs::write(dir.join("copied.sql"), "SELECT * FROM src").expect("sql");
    civica(dir, &["run", "pipeline.yaml"])
}

/// The `lines` step's account of the last run, from its manifest.
fn line_account(dir: &Path) -> String {
    let manifests = crate::common::manifests(&dir.join("out/_runs"));
    let steps = manifests.last().expect("a run")["steps"]
        .as_array()
        .expect("steps")
        .clone();
    steps
        .iter()
        .find(|s| s["kind"] == "lines")
        .and_then(|s| s["detail"].as_str())
        .expect("a lines step")
        .to_string()
}

/// Damaged input in each line format: binary garbage, a line with fields
/// missing, a lone `\r` inside a line, blank lines. Lines read = rows
/// loaded + rejected + skipped, stated on the step line and in the
/// manifest, and the rows loaded are the rows published.
#[test]
fn every_line_is_accounted_for_in_each_format() {
    let good = "93.44.1.1 - - [20/Nov/2026:09:00:00 +0100] \"GET / HTTP/1.1\" 200 12 \"-\" \"x\"\n";
    let mut log = Vec::new();
    log.extend_from_slice(good.as_bytes());
    log.extend_from_slice(b"\x00\x9f\xff\xfe garbage \x01\n");
    log.extend_from_slice(b"93.44.1.2 - - [20/Nov/2026:09:00:01 +0100] \"GET /\n");
    log.extend_from_slice(b"\n   \n");
    log.extend_from_slice(
        b"93.44.1.3 - - [20/Nov/2026:09:00:02 +0100] \"GET /a\rb HTTP/1.1\" 200 12 \"-\" \"x\"\n",
    );
    log.extend_from_slice(good.as_bytes());
    let csv = b"id,name,amount\n1,anna,3.5\n\n2,bruno\n\x00\xff\xfe,\x01,x\n3,carla,1e400\n4,dario\r5\r,2\n5,elena,7\n";
    let pattern = b"2026-11-20T09:00:00Z 200 /a\n\n2026-11-20T09:00:01Z abc /b\n\xff\xfe\n2026-11-20T09:00:02Z 404 /c\r\n";
    let cases: [(&str, &str, &[u8], &str, usize); 3] = [
        (
            "access.log",
            "    format: { type: access_log }\n",
            &log,
            "7 line(s) read = 3 loaded + 2 rejected + 2 skipped (blank or header)",
            3,
        ),
        (
            "input.csv",
            "    format: { type: csv }\n    schema: { id: int64, name: string, amount: float64 }\n",
            csv,
            "8 line(s) read = 3 loaded + 3 rejected + 2 skipped (blank or header)",
            3,
        ),
        (
            "pattern.log",
            "    format: { type: access_log, pattern: '^(?P<time_iso8601>\\S+) (?P<status>\\d+) (?P<path>\\S+)$' }\n",
            pattern,
            "5 line(s) read = 2 loaded + 2 rejected + 1 skipped (blank or header)",
            2,
        ),
    ];
    for (what, source, bytes, account, rows) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = run_source(dir.path(), source, &[(what, bytes)]);
        assert!(out.status.success(), "{what}: {}", describe(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(account), "{what}: {stdout}");
        assert_eq!(
            line_account(dir.path()).split(';').next(),
            Some(account),
            "{what}"
        );
        let manifest = crate::common::manifests(&dir.path().join("out/_runs"))
            .pop()
            .expect("a run");
        let lines = &manifest["lines"][0];
        assert_eq!(lines["source"], "src");
        let count = |key: &str| lines[key].as_u64().expect("a count");
        assert_eq!(
            count("read"),
            count("loaded") + count("rejected") + count("skipped"),
            "{what}: {lines}"
        );
        assert_eq!(count("loaded") as usize, rows, "{what}");
        assert!(
            stdout
                .contains("which this run does not keep (add `{ table: src__rejected, path: …, contains_personal_data: [raw_line], purpose: … }` to `outputs`"),
            "{what}: {stdout}"
        );
        let published = query(
            &[("c", &dir.path().join("out/copied"))],
            "SELECT count(*) AS n FROM c",
        );
        let n = published[0]
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .expect("count")
            .value(0);
        assert_eq!(n as usize, rows, "{what}");
    }
}

/// `1e400` under `float64` is rejected, not infinity; a timestamp with an
/// offset is stored in UTC; a whole number beyond what a float holds stays
/// text; a UTF-8 file declared Latin-1 is named in a warning.
#[test]
fn values_are_loaded_exactly_or_rejected_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = "id,at,amount\n12345678901234567890,2026-11-20T10:00:00+01:00,1e400\n98765432109876543210,2026-11-20T10:00:00Z,2.5\n";
    let out = run_source(
        dir.path(),
        "    format: { type: csv }\n",
        &[("values.csv", csv.as_bytes())],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(
        &[("c", &dir.path().join("out/copied"))],
        "SELECT id, CAST(at AS VARCHAR) AS at, CAST(amount AS VARCHAR) AS amount FROM c ORDER BY id",
    );
    assert_eq!(
        strings(&rows[0], 0),
        ["12345678901234567890", "98765432109876543210"],
        "ids beyond i64 are kept as written"
    );
    assert_eq!(
        strings(&rows[0], 1),
        ["2026-11-20T09:00:00", "2026-11-20T10:00:00"],
        "offsets are converted to UTC"
    );
    // Inferred as text (a number column cannot hold 1e400), kept as written.
    assert_eq!(strings(&rows[0], 2), ["1e400", "2.5"]);

    let declared = run_source(
        dir.path(),
        "    format: { type: csv }\n    schema: { id: string, at: timestamp, amount: float64 }\n",
        &[("values.csv", csv.as_bytes())],
    );
    assert!(declared.status.success(), "{}", describe(&declared));
    let stdout = String::from_utf8_lossy(&declared.stdout);
    assert!(stdout.contains("= 1 loaded + 1 rejected"), "{stdout}");

    let latin = run_source(
        dir.path(),
        "    format: { type: csv, encoding: latin-1 }\n",
        &[("values.csv", "id,comune\n1,Forlì\n".as_bytes())],
    );
    assert!(latin.status.success(), "{}", describe(&latin));
    let stderr = String::from_utf8_lossy(&latin.stderr);
    assert!(
        stderr
            .contains("values.csv` is declared `encoding: windows-1252`, but its bytes are UTF-8"),
        "{stderr}"
    );
}

/// A zero-byte file is empty: beside other files it adds nothing, alone it
/// is no rows when the source has a schema, else a clear error. A FIFO is
/// named and refused (reading it would block the night).
#[test]
fn empty_and_special_files_are_named() {
    let csv = "    format: { type: csv }\n";
    let dir = tempfile::tempdir().expect("temp dir");
    let beside = run_source(
        dir.path(),
        csv,
        &[("a.csv", b"id,x\n1,2\n"), ("b.csv", b"")],
    );
    assert!(beside.status.success(), "{}", describe(&beside));
    let stdout = String::from_utf8_lossy(&beside.stdout);
    assert!(stdout.contains("2 file(s), 9 B, 1 empty"), "{stdout}");
    assert!(stdout.contains("2 line(s) read = 1 loaded"), "{stdout}");

    let dir = tempfile::tempdir().expect("temp dir");
    let alone = run_source(dir.path(), csv, &[("b.csv", b"")]);
    assert_eq!(alone.status.code(), Some(1), "{}", describe(&alone));
    assert!(
        String::from_utf8_lossy(&alone.stderr).contains("every file is empty (0 bytes)"),
        "{}",
        describe(&alone)
    );
    let with_schema = run_source(
        dir.path(),
        "    format: { type: csv }\n    schema: { id: int64, x: int64 }\n",
        &[],
    );
    assert!(with_schema.status.success(), "{}", describe(&with_schema));

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("in/pipe.csv"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let fifo = run_source(dir.path(), csv, &[("a.csv", b"id,x\n1,2\n")]);
    assert_eq!(fifo.status.code(), Some(1), "{}", describe(&fifo));
    assert!(
        String::from_utf8_lossy(&fifo.stderr).contains("pipe.csv`: is not a regular file"),
        "{}",
        describe(&fifo)
    );
    // Named as the source's path itself, it would block the run for good.
    let yaml = std::fs::read_to_string(dir.path().join("pipeline.yaml")).expect("yaml");
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        yaml.replace("path: in/\n", "path: in/pipe.csv\n"),
    )
    .expect("pipeline");
    let direct = civica(dir.path(), &["validate", "pipeline.yaml"]);
    assert_eq!(direct.status.code(), Some(1), "{}", describe(&direct));
    assert!(
        String::from_utf8_lossy(&direct.stderr).contains("pipe.csv`: is not a regular file"),
        "{}",
        describe(&direct)
    );
}

/// Damaged files name themselves: a CSV header naming a column twice, an
/// NDJSON file that is not JSON, a Parquet file that is not Parquet.
#[test]
fn damaged_files_are_named() {
    let cases: [(&str, &str, &[u8], &str); 3] = [
        (
            "    format: { type: csv }\n",
            "dup.csv",
            b"id,name,id\n1,a,2\n",
            "dup.csv`: its header names the column `id` twice",
        ),
        (
            "    format: { type: ndjson }\n",
            "bad.json",
            b"{\"id\": 1}\nnot json at all\n",
            "bad.json`: cannot be read as json",
        ),
        (
            "    format: { type: parquet }\n",
            "bad.parquet",
            b"PAR1 this is not a parquet file",
            "bad.parquet`: cannot be read as parquet",
        ),
    ];
    for (source, name, bytes, expected) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = run_source(dir.path(), source, &[(name, bytes)]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

/// A check is one read-only query: `COPY … TO` would write every row
/// outside the publish. Numeric options are bounded. A runs folder that is
/// a file is named as such.
#[test]
fn checks_and_options_cannot_do_what_they_are_not_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = "    format: { type: csv }\n";
    let ok = run_source(dir.path(), csv, &[("a.csv", b"id,x\n1,2\n")]);
    assert!(ok.status.success(), "{}", describe(&ok));
    let yaml = std::fs::read_to_string(dir.path().join("pipeline.yaml")).expect("yaml");
    let leak = dir.path().join("leak.csv");
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        format!(
            "{yaml}checks:\n  copied:\n    - {{ type: sql, name: leak, query: \"COPY (SELECT * FROM copied) TO '{}'\" }}\n",
            leak.display()
        ),
    )
    .expect("pipeline");
    for command in ["validate", "run"] {
        let out = civica(dir.path(), &[command, "pipeline.yaml"]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("a check is one read-only query"),
            "{}",
            describe(&out)
        );
    }
    assert!(!leak.exists(), "the check wrote a file");

    std::fs::write(dir.path().join("pipeline.yaml"), &yaml).expect("pipeline");
    let out = civica(
        dir.path(),
        &["run", "pipeline.yaml", "--target-partitions", "99999999999"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("`--target-partitions` must be from 1 to 1024, found `99999999999`"),
        "{}",
        describe(&out)
    );

    std::fs::remove_dir_all(dir.path().join("out/_runs")).expect("rm");
    std::fs::write(dir.path().join("out/_runs"), "not a folder").expect("file");
    let out = civica(dir.path(), &["run", "pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("_runs` is a file, not a folder"),
        "{stderr}"
    );
    assert!(!stderr.contains("earlier run's publish"), "{stderr}");
}

/// `validate` opens a sample of each line source: an access-log source
/// none of whose first lines fits its format (a wrong `flavor` or
/// `pattern`) is reported before the night, naming the file.
#[test]
fn validate_reads_a_sample_of_each_log_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = "2026-11-20T09:00:00Z 200 /a\n2026-11-20T09:00:01Z 404 /b\n";
    let ok = run_source(
        dir.path(),
        "    format: { type: access_log, pattern: '^(?P<time_iso8601>\\S+) (?P<status>\\d+) (?P<path>\\S+)$' }\n",
        &[("app.log", lines.as_bytes())],
    );
    assert!(ok.status.success(), "{}", describe(&ok));
    let yaml = std::fs::read_to_string(dir.path().join("pipeline.yaml")).expect("yaml");
    let wrong = yaml.replace(
        "format: { type: access_log, pattern: '^(?P<time_iso8601>\\S+) (?P<status>\\d+) (?P<path>\\S+)$' }",
        "format: { type: access_log, flavor: combined }",
    );
    // (With `max_rejected_ratio: 1`, every line may be rejected: no sample check.)
    let wrong = wrong.replace("max_rejected_ratio: 1\n", "max_rejected_ratio: 0.5\n");
    assert_ne!(wrong, yaml);
    std::fs::write(dir.path().join("pipeline.yaml"), wrong).expect("pipeline");
    let out = civica(dir.path(), &["validate", "pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "app.log`: none of its first 2 lines is a `access_log` line as the source's format says"
        ),
        "{}",
        describe(&out)
    );
}

/// Damage past what schema inference reads (an NDJSON line after the
/// first thousand) fails the step, naming the file DataFusion's reader
/// does not.
#[test]
fn a_file_damaged_deep_inside_is_named_when_the_step_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut damaged = String::new();
    for i in 0..3000 {
        damaged.push_str(&format!("{{\"id\": {i}, \"x\": {}}}\n", i * 2));
    }
    damaged.push_str("{broken\n");
    let out = run_source(
        dir.path(),
        "    format: { type: ndjson }\n",
        &[
            ("a.json", damaged.as_bytes()),
            ("b.json", b"{\"id\": 1, \"x\": 1}\n"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a.json`, which cannot be read whole)") && !stderr.contains("b.json"),
        "{stderr}"
    );
}
