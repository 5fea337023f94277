//! Privacy by design: keyed pseudonyms (the key from the environment only,
//! its id in the manifest, never the key itself), client addresses masked
//! as web logs are read.

use std::path::Path;
use std::process::Output;

use crate::common::{DS, civica_command, describe, files_under, manifests, written_values};

const KEY: &str = "a-test-key-of-forty-characters-xxxxxxxxx";
const OTHER_KEY: &str = "another-test-key-of-forty-characters-yyy";

const PEOPLE: &str = "citizen_id;codice_fiscale;email\n1;RSSMRA80A01H501U;anna@comune.it\n2;VRDLGU75B12F205X;luigi@comune.it\n3;BNCGNN90C43L219Y;giovanna@comune.it\n";

/// A pipeline that pseudonymises the CRM's codice fiscale at the source and
/// the e-mail in SQL, and publishes both.
fn write_pipeline(dir: &Path) {
    std::fs::create_dir_all(dir.join("in")).expect("mkdir");
    std::fs::create_dir_all(dir.join("sql")).expect("mkdir");
    std::fs::write(dir.join("in/people.csv"), PEOPLE).expect("write csv");
    std::fs::write(
        dir.join("sql/keyed.sql"),
        "SELECT citizen_id, codice_fiscale AS cf_pid, pseudonym('email', email) AS email_pid FROM people ORDER BY citizen_id\n",
    )
    .expect("write sql");
    std::fs::write(
        dir.join("pipeline.yaml"),
        r#"name: keyed
runs: out/_runs/
sources:
  people:
    path: in/
    format: { type: csv, delimiter: ";" }
    pseudonymize: { codice_fiscale: cf }
transforms:
  - { name: keyed, sql: sql/keyed.sql }
outputs:
  - { table: keyed, path: out/keyed/ }
"#,
    )
    .expect("write pipeline");
}

fn run_with(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = civica_command(dir, &["run", "pipeline.yaml", "--var", &format!("ds={DS}")]);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the civica binary runs")
}

/// The published pseudonyms, by citizen: (cf_pid, email_pid).
fn pseudonyms(dir: &Path) -> Vec<(String, String)> {
    let file = dir.join("out/keyed/part-00000.parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&file).expect("published file"),
    )
    .expect("parquet")
    .build()
    .expect("reader");
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let text = |name: &str| {
            let column = batch.column_by_name(name).expect("column");
            arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).expect("text")
        };
        let (cf, email) = (text("cf_pid"), text("email_pid"));
        let (cf, email) = (cf.as_string::<i32>(), email.as_string::<i32>());
        for row in 0..batch.num_rows() {
            rows.push((cf.value(row).to_string(), email.value(row).to_string()));
        }
    }
    rows
}

use arrow::array::AsArray;

/// Every byte under `dir`, for scans of what civica wrote.
fn all_bytes(dir: &Path) -> Vec<u8> {
    files_under(dir)
        .iter()
        .flat_map(|path| std::fs::read(path).expect("read file"))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn the_same_key_gives_the_same_pseudonyms_and_another_key_none_of_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_pipeline(dir.path());
    let first = run_with(dir.path(), &[("CIVICA_PSEUDONYM_KEY", KEY)]);
    assert!(first.status.success(), "{}", describe(&first));
    let night_one = pseudonyms(dir.path());
    assert_eq!(night_one.len(), 3);
    for (cf, email) in &night_one {
        assert_eq!(cf.len(), 32, "128 bits in hex: {cf}");
        assert_eq!(email.len(), 32, "128 bits in hex: {email}");
    }
    let second = run_with(dir.path(), &[("CIVICA_PSEUDONYM_KEY", KEY)]);
    assert!(second.status.success(), "{}", describe(&second));
    assert_eq!(
        pseudonyms(dir.path()),
        night_one,
        "same key, same pseudonyms"
    );

    // The key is nowhere in what civica wrote or printed; its id is in the
    // manifests, and no codice fiscale or e-mail of the source is published.
    let written = all_bytes(&dir.path().join("out"));
    assert!(!contains(&written, KEY), "the key was written");
    for out in [&first, &second] {
        assert!(!contains(&out.stdout, KEY) && !contains(&out.stderr, KEY));
    }
    // Parquet pages are compressed: the values are read, not the bytes.
    let values = written_values(&dir.path().join("out"));
    for value in [
        "RSSMRA80A01H501U",
        "VRDLGU75B12F205X",
        "anna@comune.it",
        KEY,
    ] {
        assert!(
            !values.iter().any(|v| v.contains(value)),
            "{value} published"
        );
    }
    assert!(
        values.contains(&night_one[0].0),
        "the scan reads the outputs"
    );
    let runs = manifests(&dir.path().join("out/_runs"));
    let key_id = runs[0]["privacy"]["pseudonym_key_id"]
        .as_str()
        .expect("a key id")
        .to_string();
    assert_eq!(key_id.len(), 16);
    assert_eq!(runs[1]["privacy"]["pseudonym_key_id"], key_id.as_str());

    let rotated = run_with(dir.path(), &[("CIVICA_PSEUDONYM_KEY", OTHER_KEY)]);
    assert!(rotated.status.success(), "{}", describe(&rotated));
    let night_three = pseudonyms(dir.path());
    for (old, new) in night_one.iter().zip(&night_three) {
        assert_ne!(old.0, new.0, "another key, another pseudonym");
        assert_ne!(old.1, new.1, "another key, another pseudonym");
    }
    let runs = manifests(&dir.path().join("out/_runs"));
    assert_ne!(runs[2]["privacy"]["pseudonym_key_id"], key_id.as_str());
}

#[test]
fn a_missing_short_or_open_key_stops_the_run_before_any_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_pipeline(dir.path());
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("write key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let key_file = key_file.display().to_string();
    for (env, expected) in [
        (
            vec![],
            "pipeline.yaml:7:19: source `people` has `pseudonymize`: pseudonyms need a key: set CIVICA_PSEUDONYM_KEY",
        ),
        (
            vec![("CIVICA_PSEUDONYM_KEY", "too-short")],
            "the pseudonym key from CIVICA_PSEUDONYM_KEY is 9 bytes; it must be at least 32",
        ),
        (
            vec![("CIVICA_PSEUDONYM_KEY_FILE", key_file.as_str())],
            "can be read or written by others than its owner (mode 644)",
        ),
    ] {
        let out = run_with(dir.path(), &env);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
        assert!(
            !stderr.contains("too-short"),
            "the key was echoed: {stderr}"
        );
        // A key that is set but unusable is its one problem: not also a
        // missing key for each source and query that needs one.
        if !env.is_empty() {
            assert!(
                !stderr.contains("pseudonyms need a key")
                    && stderr.contains("error: 1 problem(s) found"),
                "{stderr}"
            );
        }
        assert!(
            !dir.path().join("out/keyed").exists(),
            "nothing is published"
        );
    }
    // Owner-only, the same key from a file runs.
    std::fs::set_permissions(
        dir.path().join("key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let out = run_with(
        dir.path(),
        &[("CIVICA_PSEUDONYM_KEY_FILE", key_file.as_str())],
    );
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn sql_calling_pseudonym_without_a_key_fails_at_its_line_when_validated() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_pipeline(dir.path());
    let yaml = std::fs::read_to_string(dir.path().join("pipeline.yaml")).expect("read");
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        yaml.replace("    pseudonymize: { codice_fiscale: cf }\n", ""),
    )
    .expect("write");
    let out = civica_command(dir.path(), &["validate", "pipeline.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sql/keyed.sql:1:46: function `pseudonym`: pseudonyms need a key"),
        "{stderr}"
    );
}

/// Two good lines (IPv4, IPv6) and a broken one whose address and a
/// second address in its path must not survive either.
const LOG: &str = concat!(
    "83.149.9.216 - - [20/Nov/2026:10:05:03 +0100] \"GET /servizi/tari HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"\n",
    "2001:db8:85a3:8d3:1319:8a2e:370:7348 - - [20/Nov/2026:10:06:00 +0100] \"GET /servizi/anagrafe HTTP/1.1\" 200 128 \"-\" \"Mozilla/5.0\"\n",
    "151.38.44.201 - - [20/Nov/2026:10:07:00 +0100] \"GET /x?from=10.20.30.40 HTTP/1.1\" 200 9 \"-\" \"no closing quote\n",
);

fn run_log(dir: &Path, mask: Option<&str>) -> Output {
    std::fs::create_dir_all(dir.join("logs")).expect("mkdir");
    std::fs::write(dir.join("logs/access.log"), LOG).expect("write log");
    let mask = mask.map(|m| format!(", ip_mask: {m}")).unwrap_or_default();
    std::fs::write(
        dir.join("pipeline.yaml"),
        format!(
            "name: web\nsources:\n  web:\n    path: logs/\n    format: {{ type: access_log{mask} }}\n    max_rejected_ratio: 0.5\noutputs:\n  - {{ table: web, path: out/web/, contains_personal_data: [user, client_ip], purpose: portal statistics }}\n  - {{ table: web__rejected, path: out/rejected/, contains_personal_data: [raw_line], purpose: review of unreadable lines }}\n"
        ),
    )
    .expect("write pipeline");
    civica_command(dir, &["run", "pipeline.yaml", "--var", &format!("ds={DS}")])
        .output()
        .expect("runs")
}

fn client_ips(dir: &Path) -> Vec<String> {
    let rows = crate::common::query(
        &[("w", &dir.join("out/web"))],
        "SELECT client_ip FROM w ORDER BY client_ip",
    );
    crate::common::strings(&rows[0], 0)
}

#[test]
fn client_addresses_are_masked_as_lines_are_read_unless_declared_whole() {
    let full = [
        "83.149.9.216",
        "2001:db8:85a3:8d3:1319:8a2e:370:7348",
        "151.38.44.201",
        "10.20.30.40",
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_log(dir.path(), None);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(client_ips(dir.path()), ["2001:db8:85a3::", "83.149.0.0"]);
    let written = written_values(&dir.path().join("out"));
    assert!(written.contains("83.149.0.0"), "the scan reads the outputs");
    for address in full {
        assert!(
            !written.iter().any(|v| v.contains(address)),
            "{address} was written"
        );
        assert!(!contains(&out.stdout, address) && !contains(&out.stderr, address));
    }
    let rejected = crate::common::query(
        &[("r", &dir.path().join("out/rejected"))],
        "SELECT raw_line FROM r",
    );
    let raw = &crate::common::strings(&rejected[0], 0)[0];
    assert!(
        raw.starts_with(
            "151.38.0.0 - - [20/Nov/2026:10:07:00 +0100] \"GET /x?from=10.20.0.0 HTTP/1.1\""
        ),
        "{raw}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_log(dir.path(), Some("24"));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(client_ips(dir.path()), ["2001:db8:85a3::", "83.149.9.0"]);

    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_log(dir.path(), Some("none"));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        client_ips(dir.path()),
        ["2001:db8:85a3:8d3:1319:8a2e:370:7348", "83.149.9.216"]
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_log(dir.path(), Some("8"));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected `16`, `24` or `none`"),
        "{}",
        describe(&out)
    );
}

/// Whatever the umask it is started with, civica creates files that give
/// others no permission: they hold personal data.
#[test]
fn files_civica_writes_are_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    write_pipeline(dir.path());
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_civica"))
        .args(["run", "pipeline.yaml", "--var", &format!("ds={DS}")])
        .current_dir(dir.path())
        .env("CIVICA_PSEUDONYM_KEY", KEY)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
    let mut stack = vec![dir.path().join("out")];
    let mut files = 0;
    while let Some(path) = stack.pop() {
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o007,
            0,
            "{} has mode {:o}",
            path.display(),
            mode & 0o777
        );
        if path.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .expect("dir")
                    .map(|e| e.expect("entry").path()),
            );
        } else {
            files += 1;
        }
    }
    assert!(files >= 2, "an output and a manifest at least: {files}");
}

/// 40 citizens in two clear groups; every fifth objected to profiling,
/// every third (of the others) did not consent to it, and citizen 40's
/// consent is unknown (empty).
fn write_profiling_lake(dir: &Path) -> (Vec<i64>, Vec<i64>) {
    std::fs::create_dir_all(dir.join("crm")).expect("mkdir");
    let mut csv = String::from("citizen_id;calls;visits;consent_profiling;objected_profiling\n");
    let (mut objected, mut no_consent) = (Vec::new(), Vec::new());
    for id in 1..=40_i64 {
        let (calls, visits) = match id % 2 {
            0 => (1 + id % 3, 20 + id % 5),
            _ => (15 + id % 4, 1 + id % 2),
        };
        let objects = id % 5 == 0;
        let consents = !objects && id % 3 != 0;
        let consent = match id {
            40 => "",
            _ if consents => "true",
            _ => "false",
        };
        if objects {
            objected.push(id);
        }
        if !consents || id == 40 {
            no_consent.push(id);
        }
        csv.push_str(&format!("{id};{calls};{visits};{consent};{objects}\n"));
    }
    std::fs::write(dir.join("crm/citizens.csv"), csv).expect("write csv");
    (objected, no_consent)
}

/// The features are a step of their own, published: the per-citizen
/// table the segment step reads is a profile too.
fn profiling_pipeline(dir: &Path, profiling: &str) {
    std::fs::write(
        dir.join("features.sql"),
        "SELECT citizen_id, calls, visits FROM citizens",
    )
    .expect("write sql");
    std::fs::write(
        dir.join("pipeline.yaml"),
        format!(
            "name: prof\nruns: out/_runs/\nsources:\n  citizens:\n    path: crm/\n    format: {{ type: csv, delimiter: \";\" }}\ntransforms:\n  - {{ name: features, sql: features.sql }}\nsegment:\n  from: features\n  id: citizen_id\n  features: [calls, visits]\n  model: {{ type: kmeans, k: 2 }}\n{profiling}outputs:\n  - {{ table: features, path: out/features/ }}\n  - {{ table: segments, path: out/segments/ }}\n  - {{ table: segment_profiles, path: out/profiles/ }}\n"
        ),
    )
    .expect("write pipeline");
}

/// The citizens of a published per-citizen table, by id.
fn published_ids(dir: &Path, table: &str) -> Vec<i64> {
    let rows = crate::common::query(
        &[("t", &dir.join("out").join(table))],
        "SELECT CAST(citizen_id AS BIGINT) FROM t ORDER BY 1",
    );
    rows.iter()
        .flat_map(|b| {
            let ids = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
            (0..b.num_rows()).map(|i| ids.value(i)).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn citizens_who_objected_or_did_not_consent_are_not_profiled_and_are_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (objected, no_consent) = write_profiling_lake(dir.path());
    profiling_pipeline(
        dir.path(),
        "profiling: { basis: public_interest, table: citizens, objection: objected_profiling }\n",
    );
    let out = civica_command(dir.path(), &["run", "pipeline.yaml"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
    let ids = published_ids(dir.path(), "segments");
    assert_eq!(ids.len(), 40 - objected.len());
    assert!(objected.iter().all(|id| !ids.contains(id)), "{ids:?}");
    // Nor are they in the feature table the segments were fitted on.
    assert_eq!(published_ids(dir.path(), "features"), ids);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{} citizen(s) not profiled (objected)",
            objected.len()
        )),
        "{stdout}"
    );
    let manifest = &manifests(&dir.path().join("out/_runs"))[0];
    assert_eq!(manifest["segment"]["profiling"]["basis"], "public_interest");
    assert_eq!(
        manifest["segment"]["profiling"]["not_profiled"],
        objected.len()
    );
    let profiled: i64 = crate::common::query(
        &[("p", &dir.path().join("out/profiles"))],
        "SELECT CAST(sum(size) AS BIGINT) FROM p",
    )[0]
    .column(0)
    .as_primitive::<arrow::datatypes::Int64Type>()
    .value(0);
    assert_eq!(
        profiled as usize,
        ids.len(),
        "profiles count the profiled only"
    );

    // Under consent, only who consented (not null, not false) is profiled.
    profiling_pipeline(
        dir.path(),
        "profiling: { basis: consent, table: citizens, consent: consent_profiling, objection: objected_profiling }\n",
    );
    let out = civica_command(dir.path(), &["run", "pipeline.yaml"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
    let ids = published_ids(dir.path(), "segments");
    assert_eq!(published_ids(dir.path(), "features"), ids);
    assert_eq!(ids.len(), 40 - no_consent.len());
    assert!(no_consent.iter().all(|id| !ids.contains(id)), "{ids:?}");
    assert!(ids.iter().all(|id| id % 5 != 0 && id % 3 != 0 && *id != 40));
}

#[test]
fn profiling_needs_its_column_for_its_basis_and_boolean_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_profiling_lake(dir.path());
    for (profiling, expected) in [
        (
            "profiling: { basis: public_interest, table: citizens }\n",
            "pipeline.yaml:14:21: in `profiling`: `basis: public_interest` must honour objections (GDPR art. 21): name the `objection` column",
        ),
        (
            "profiling: { basis: consent, table: citizens, objection: objected_profiling }\n",
            "in `profiling`: `basis: consent` leaves out everyone who did not consent: name the `consent` column",
        ),
        (
            "profiling: { basis: public_interest, table: citizens, objection: calls }\n",
            "pipeline.yaml:14:66: in `profiling`: `calls` of `citizens` is Int64, not a boolean (`true` where the citizen objected)",
        ),
        (
            "profiling: { basis: public_interest, table: citizens, objection: nope }\n",
            "in `profiling`: `citizens` has no column `nope`",
        ),
        (
            "profiling: { basis: public_interest, table: crm, objection: objected_profiling }\n",
            "pipeline.yaml:14:45: in `profiling`: no table named 'crm'",
        ),
    ] {
        profiling_pipeline(dir.path(), profiling);
        let out = civica_command(dir.path(), &["validate", "pipeline.yaml"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
}

/// Runs a pipeline over `in/people.csv` (holding `csv`) read with a
/// codice fiscale and an integer age, with `rest` after its source.
fn run_people_csv(csv: &str, rest: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    std::fs::write(dir.path().join("in/people.csv"), csv).expect("write csv");
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        format!("name: people\nruns: out/_runs/\nsources:\n  people:\n    path: in/\n    format: {{ type: csv, delimiter: \";\" }}\n    schema: {{ codice_fiscale: string, age: int64 }}\n{rest}"),
    )
    .expect("write pipeline");
    let out = civica_command(
        dir.path(),
        &["run", "pipeline.yaml", "--var", &format!("ds={DS}")],
    )
    .output()
    .expect("runs");
    (dir, out)
}

/// A failing check keyed by codici fiscali, and a CSV field holding an
/// e-mail where a number belongs: what civica prints, records and keeps of
/// them names their kind, never the value.
#[test]
fn check_results_and_parse_errors_show_the_kind_of_a_personal_value_not_the_value() {
    let (dir, out) = run_people_csv(
        "codice_fiscale;age\nRSSMRA85T10A562S;140\nRSSMRA85T10A562S;30\nVRDLGU75B12F205X;anna@comune.it\n",
        "    max_rejected_ratio: 0.5\nchecks:\n  people:\n    - { type: unique, column: codice_fiscale }\noutputs:\n  - { table: people__rejected, path: out/rejected/, contains_personal_data: [raw_line], purpose: review of unreadable lines }\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("e.g. <codice fiscale>"), "{stderr}");
    // The check history is Parquet: its values are read, not its bytes.
    let recorded = written_values(&dir.path().join("out/_runs"));
    assert!(
        recorded.iter().any(|v| v.contains("<codice fiscale>")),
        "the scan reads the check history"
    );
    for value in ["RSSMRA85T10A562S", "anna@comune.it"] {
        assert!(!contains(&out.stderr, value), "{value} shown");
        assert!(
            !recorded.iter().any(|v| v.contains(value)),
            "{value} recorded"
        );
    }
    let manifest = &manifests(&dir.path().join("out/_runs"))[0];
    assert_eq!(
        manifest["checks"][0]["failing_keys"],
        serde_json::json!(["<codice fiscale>"])
    );
    // The rejected line's reason names the kind, not the e-mail (the raw
    // line itself is the quarantine's: kept only where the pipeline says).
    let (_dir, out) = run_people_csv(
        "codice_fiscale;age\nRSSMRA85T10A562S;40\nVRDLGU75B12F205X;anna@comune.it\n",
        "    on_error: fail\noutputs:\n  - { table: people, path: out/people/ }\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("column `age`: `<e-mail>` is not an integer"),
        "{stderr}"
    );
    assert!(!stderr.contains("anna@comune.it"), "{stderr}");
}

/// What the quickstart writes (its outputs, the runs folder with manifests,
/// check results, state and lock, and the saved model) holds no codice
/// fiscale, e-mail, phone number or full client address of the demo lake.
#[test]
fn the_quickstart_publishes_no_direct_identifier_of_the_lake() {
    use std::io::Read;
    let lake = crate::common::default_lake();
    let citizens =
        std::fs::read_to_string(lake.join("raw/crm/citizens/citizens.csv")).expect("crm");
    let mut identifiers: Vec<String> = Vec::new();
    for line in citizens.lines().skip(1) {
        let fields: Vec<&str> = line.split(';').collect();
        // codice fiscale, e-mail, phone
        identifiers.extend([1, 8, 9].iter().map(|&i| fields[i].to_string()));
    }
    let mut logs = String::new();
    for entry in std::fs::read_dir(lake.join("raw/weblogs")).expect("weblogs") {
        let path = entry.expect("entry").path();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).expect("open"))
            .read_to_string(&mut text)
            .expect("gunzip");
        logs.push_str(&text);
    }
    identifiers.extend(
        logs.lines()
            .filter_map(|l| l.split(' ').next())
            .map(str::to_string)
            .collect::<std::collections::HashSet<_>>(),
    );
    identifiers.retain(|value| !value.is_empty() && value != "-");
    assert!(
        identifiers.len() > 15_000,
        "{} identifiers",
        identifiers.len()
    );
    // The scan sees what it looks for: the CRM export itself holds them.
    assert!(
        written_values(&lake.join("raw/crm"))
            .iter()
            .any(|v| v.contains(identifiers[0].as_str()))
    );
    let mut written = written_values(&lake.join("marts"));
    written.extend(written_values(&lake.join("_runs")));
    assert!(written.len() > 1_000, "{} values written", written.len());
    let joined: String = written
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    let found: Vec<&String> = identifiers
        .iter()
        .filter(|value| written.contains(*value) || joined.contains(value.as_str()))
        .take(5)
        .collect();
    assert!(
        found.is_empty(),
        "identifiers of the lake were written: {found:?}"
    );
}
