//! The output guard: personal data (tagged in a source, found by content,
//! raw quarantined lines) followed through the SQL, and an output that
//! would publish it without declaring it refused by `validate` and by a
//! run, naming the output, the column and the path it came by.

use std::path::Path;
use std::process::Output;

use crate::common::{
    DS, civica_command, copy_quickstart, describe, files_under, manifests, write_demo,
};

/// Four citizens; one note hides a codice fiscale in free text.
const PEOPLE: &str = "citizen_id;codice_fiscale;first_name;notes\n\
    1;RSSMRA80A01H501U;Anna;richiamare lunedì\n\
    2;VRDLGU75B12F205X;Luigi;pratica chiusa\n\
    3;BNCGNN90C43L219Y;Giovanna;chiede per conto di RSSMRA80A01H501U, la madre\n\
    4;RSSMRA80A01H501U;Anna;\n";

/// Writes a pipeline reading `PEOPLE` (with `source` extra keys), with
/// the SQL steps `steps` (name, query) and the outputs `outputs`.
fn write_guarded(dir: &Path, source: &str, steps: &[(&str, &str)], outputs: &str) {
    std::fs::create_dir_all(dir.join("in")).expect("mkdir");
    std::fs::write(dir.join("in/people.csv"), PEOPLE).expect("csv");
    let mut transforms = String::new();
    for (name, sql) in steps {
        std::fs::write(dir.join(format!("{name}.sql")), sql).expect("sql");
        transforms.push_str(&format!("  - {{ name: {name}, sql: {name}.sql }}\n"));
    }
    std::fs::write(
        dir.join("pipeline.yaml"),
        format!(
            "name: guarded\nsources:\n  people:\n    path: in/\n    format: {{ type: csv, delimiter: \";\" }}\n{source}transforms:\n{transforms}outputs:\n{outputs}"
        ),
    )
    .expect("pipeline");
}

fn civica_in(dir: &Path, command: &str) -> Output {
    crate::common::keyed_command(
        dir,
        &[command, "pipeline.yaml", "--var", &format!("ds={DS}")],
    )
    .output()
    .expect("the civica binary runs")
}

/// Validates and runs: both refuse with exit 2, publishing nothing, and
/// the error is returned.
fn refused(dir: &Path) -> String {
    let validated = civica_in(dir, "validate");
    assert_eq!(validated.status.code(), Some(2), "{}", describe(&validated));
    let ran = civica_in(dir, "run");
    assert_eq!(ran.status.code(), Some(2), "{}", describe(&ran));
    assert_nothing_published(dir);
    String::from_utf8_lossy(&validated.stderr).into_owned()
}

/// No Parquet file under `dir/out`.
fn assert_nothing_published(dir: &Path) {
    let published: Vec<_> = files_under(&dir.join("out"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(
        published.is_empty(),
        "a refused run published {published:?}"
    );
}

#[test]
fn a_codice_fiscale_carried_through_two_steps_and_a_rename_is_refused_with_its_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_guarded(
        dir.path(),
        "",
        &[
            (
                "a",
                "SELECT citizen_id, upper(codice_fiscale) AS cf FROM people",
            ),
            (
                "b",
                "SELECT a.citizen_id, a.cf AS fiscal FROM a JOIN people p ON p.citizen_id = a.citizen_id",
            ),
        ],
        "  - { table: b, path: out/b/ }\n",
    );
    let stderr = refused(dir.path());
    assert!(
        stderr.contains("pipeline.yaml:10:5: output `b` would publish `fiscal`, personal data (identifier: a codice fiscale found in its values)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("it comes by `people.codice_fiscale` → `a.cf` → `b.fiscal`"),
        "{stderr}"
    );
    // The message names the data, never a value of it.
    assert!(!stderr.contains("RSSMRA80A01H501U"), "{stderr}");
}

#[test]
fn a_codice_fiscale_hidden_in_free_text_is_found_by_content() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_guarded(
        dir.path(),
        "",
        &[("notes", "SELECT citizen_id, notes FROM people")],
        "  - { table: notes, path: out/notes/ }\n",
    );
    let stderr = refused(dir.path());
    assert!(
        stderr.contains("output `notes` would publish `notes`, personal data (identifier: a codice fiscale found in its values) that it does not declare; it comes by `people.notes` → `notes.notes`"),
        "{stderr}"
    );
}

#[test]
fn declared_tags_quarantined_lines_and_a_declared_output_follow_their_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A declared identifier the content does not reveal, and raw lines.
    write_guarded(
        dir.path(),
        "    tags: { first_name: identifier, notes: none }\n",
        &[
            (
                "names",
                "SELECT citizen_id, first_name AS name, notes FROM people",
            ),
            ("raw", "SELECT raw_line AS line FROM people__rejected"),
        ],
        "  - { table: names, path: out/names/ }\n  - { table: raw, path: out/raw/ }\n",
    );
    let stderr = refused(dir.path());
    assert!(
        stderr.contains("output `names` would publish `name`, personal data (identifier: tagged in its source) that it does not declare; it comes by `people.first_name` → `names.name`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("output `raw` would publish `line`, personal data (identifier: raw lines of a quarantine table) that it does not declare; it comes by `people__rejected.raw_line` → `raw.line`"),
        "{stderr}"
    );
    // `notes: none` is the author's word over the content's.
    assert!(!stderr.contains("`notes`"), "{stderr}");
    assert_eq!(stderr.matches("would publish").count(), 2, "{stderr}");

    // Declared with a purpose, the same outputs are published. (`notes:
    // none` clears the source's sample, not the sink's look at what it
    // publishes: the note naming a codice fiscale is declared too.)
    write_guarded(
        dir.path(),
        "    tags: { first_name: identifier, notes: none }\n",
        &[
            (
                "names",
                "SELECT citizen_id, first_name AS name, notes FROM people",
            ),
            ("raw", "SELECT raw_line AS line FROM people__rejected"),
        ],
        "  - { table: names, path: out/names/, contains_personal_data: [name, notes], purpose: letters to citizens }\n  - { table: raw, path: out/raw/, contains_personal_data: [line], purpose: review of unreadable lines }\n",
    );
    let ran = civica_in(dir.path(), "run");
    assert!(ran.status.success(), "{}", describe(&ran));
    assert!(dir.path().join("out/names/part-00000.parquet").exists());

    // A declaration needs a purpose, and names columns the output has;
    // `tags` name columns the source has.
    write_guarded(
        dir.path(),
        "    tags: { nome: identifier }\n",
        &[("names", "SELECT citizen_id, first_name FROM people")],
        "  - { table: names, path: out/names/, contains_personal_data: [first_name, surname] }\n",
    );
    let out = civica_in(dir.path(), "validate");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "pipeline.yaml:6:11: `tags` of source `people` names `nome`, not among its columns",
        "pipeline.yaml:10:63: output `names` declares `contains_personal_data` without a `purpose`: say why it carries first_name, surname",
        "output `names` declares `surname` in `contains_personal_data`, which is not one of its columns",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn pseudonyms_counts_and_tests_of_an_identifier_are_not_personal_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_guarded(
        dir.path(),
        "",
        &[(
            "keyed",
            "SELECT pseudonym('cf', codice_fiscale) AS cf_pid, count(*) AS contacts, \
             bool_or(notes LIKE '%RSSMRA%') AS mentioned, max(length(notes)) AS longest \
             FROM people GROUP BY pseudonym('cf', codice_fiscale)",
        )],
        "  - { table: keyed, path: out/keyed/ }\n",
    );
    let out = civica_in(dir.path(), "run");
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn the_quickstart_validates_and_a_copy_selecting_the_codice_fiscale_does_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    write_demo(&lake, 200, 3, 7);
    copy_quickstart(dir.path());
    let validate = || {
        crate::common::keyed_command(
            dir.path(),
            &[
                "validate",
                "pipelines/citizen_segments.yaml",
                "--var",
                &format!("lake={}", lake.display()),
                "--var",
                &format!("ds={DS}"),
            ],
        )
        .output()
        .expect("the civica binary runs")
    };
    let out = validate();
    assert!(out.status.success(), "{}", describe(&out));

    let features = dir.path().join("sql/citizen_features.sql");
    let sql = std::fs::read_to_string(&features).expect("sql");
    let leaky = sql.replacen(
        "    c.citizen_id,\n",
        "    c.citizen_id,\n    c.codice_fiscale,\n",
        1,
    );
    assert_ne!(leaky, sql, "the SELECT list starts with c.citizen_id");
    std::fs::write(&features, leaky).expect("sql");
    let out = validate();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("output `citizen_features` would publish `codice_fiscale`, personal data (identifier: a codice fiscale found in its values) that it does not declare; it comes by `citizens.codice_fiscale` → `citizen_features.codice_fiscale`"),
        "{stderr}"
    );
}

#[test]
fn personal_data_past_the_sources_sample_is_caught_by_the_sink() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    // 1,500 clean notes, then one naming a citizen by codice fiscale: past
    // the 1,000 rows the source's sample reads.
    let mut csv = String::from("citizen_id;notes\n");
    for id in 1..=1500 {
        csv.push_str(&format!("{id};pratica chiusa\n"));
    }
    csv.push_str("1501;chiede per conto di RSSMRA80A01H501U\n");
    std::fs::write(dir.path().join("in/notes.csv"), csv).expect("csv");
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        "name: notes\nsources:\n  notes:\n    path: in/\n    format: { type: csv, delimiter: \";\" }\ntransforms:\n  - { name: recent, sql: recent.sql }\noutputs:\n  - { table: recent, path: out/recent/ }\n",
    )
    .expect("pipeline");
    std::fs::write(
        dir.path().join("recent.sql"),
        "SELECT citizen_id, notes FROM notes ORDER BY citizen_id DESC",
    )
    .expect("sql");
    let validated = civica_in(dir.path(), "validate");
    assert!(validated.status.success(), "{}", describe(&validated));
    let ran = civica_in(dir.path(), "run");
    assert_eq!(ran.status.code(), Some(3), "{}", describe(&ran));
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(
        stderr.contains("personal data in an output that does not declare it, nothing was published: `notes` of output `recent` holds a codice fiscale"),
        "{stderr}"
    );
    assert!(!stderr.contains("RSSMRA80A01H501U"), "{stderr}");
    assert_nothing_published(dir.path());
}

#[test]
fn a_failing_check_on_a_tagged_column_shows_its_tag_not_its_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_guarded(
        dir.path(),
        "    tags: { first_name: identifier }\n",
        &[("counts", "SELECT count(*) AS people FROM people")],
        "  - { table: counts, path: out/counts/ }\nchecks:\n  people:\n    - { type: unique, column: first_name }\n",
    );
    let out = civica_in(dir.path(), "run");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("e.g. <identifier>"), "{stderr}");
    assert!(!stderr.contains("Anna"), "{stderr}");
}

#[test]
fn a_per_citizen_sum_of_an_identifier_is_refused_like_the_identifier() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The year of birth written in the codice fiscale, summed over one
    // citizen's rows: that citizen's value, not a count.
    write_guarded(
        dir.path(),
        "",
        &[(
            "years",
            "SELECT citizen_id, sum(CAST(substr(codice_fiscale, 7, 2) AS INT)) AS born \
             FROM people GROUP BY citizen_id",
        )],
        "  - { table: years, path: out/years/ }\n",
    );
    let stderr = refused(dir.path());
    assert!(
        stderr.contains("output `years` would publish `born`")
            && stderr.contains("`people.codice_fiscale` → `years.born`"),
        "{stderr}"
    );
}

#[test]
fn phone_numbers_read_as_numbers_are_caught_by_the_sink() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    let mut csv = String::from("citizen_id;callback\n");
    for id in 1..=20 {
        csv.push_str(&format!("{id};{}\n", 3_471_234_500_i64 + id));
    }
    std::fs::write(dir.path().join("in/calls.csv"), csv).expect("csv");
    // `none` clears the source's sample; the sink still looks.
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        "name: callbacks\nsources:\n  calls:\n    path: in/\n    format: { type: csv, delimiter: \";\" }\n    tags: { callback: none }\ntransforms:\n  - { name: last, sql: last.sql }\noutputs:\n  - { table: last, path: out/last/ }\n",
    )
    .expect("pipeline");
    std::fs::write(
        dir.path().join("last.sql"),
        "SELECT citizen_id, avg(callback) AS callback FROM calls GROUP BY citizen_id",
    )
    .expect("sql");
    let ran = civica_in(dir.path(), "run");
    assert_eq!(ran.status.code(), Some(3), "{}", describe(&ran));
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(
        stderr.contains("`callback` of output `last` holds a phone number"),
        "{stderr}"
    );
    assert!(!stderr.contains("347123"), "{stderr}");
    assert_nothing_published(dir.path());
}

#[test]
fn a_failing_cast_shows_the_kind_of_the_value_it_quotes_never_the_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_guarded(
        dir.path(),
        "",
        &[(
            "numbers",
            "SELECT citizen_id, CAST(codice_fiscale AS BIGINT) AS as_number FROM people",
        )],
        "  - { table: numbers, path: out/numbers/, contains_personal_data: [as_number], purpose: a test }\nruns: out/_runs/\n",
    );
    for format in ["human", "json"] {
        let out = civica_command(
            dir.path(),
            &["--log-format", format, "run", "pipeline.yaml"],
        )
        .output()
        .expect("the civica binary runs");
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Cannot cast string <codice fiscale> to value of Int64 type"),
            "{stderr}"
        );
        for cf in ["RSSMRA80A01H501U", "VRDLGU75B12F205X"] {
            assert!(!stderr.contains(cf), "{stderr}");
        }
    }
    for manifest in manifests(&dir.path().join("out/_runs")) {
        let error = manifest["error"].as_str().expect("a failed run's error");
        assert!(error.contains("<codice fiscale>"), "{error}");
        assert!(!error.contains("RSSMRA80A01H501U"), "{error}");
    }
}

#[test]
fn joining_a_pseudonymised_column_with_one_in_the_clear_is_warned_about() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in/people")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("in/visits")).expect("mkdir");
    std::fs::write(dir.path().join("in/people/people.csv"), PEOPLE).expect("csv");
    std::fs::write(
        dir.path().join("in/visits/visits.csv"),
        "codice_fiscale;page\nRSSMRA80A01H501U;/servizi/scuola\nVRDLGU75B12F205X;/servizi/tributi\n",
    )
    .expect("csv");
    let write = |sql: &str| {
        std::fs::write(dir.path().join("seen.sql"), sql).expect("sql");
        std::fs::write(
            dir.path().join("pipeline.yaml"),
            "name: joined\nsources:\n  people:\n    path: in/people/\n    format: { type: csv, delimiter: \";\" }\n    pseudonymize: { codice_fiscale: cf }\n    tags: { first_name: identifier, notes: identifier }\n  visits:\n    path: in/visits/\n    format: { type: csv, delimiter: \";\" }\ntransforms:\n  - { name: seen, sql: seen.sql }\noutputs:\n  - { table: seen, path: out/seen/ }\n",
        )
        .expect("pipeline");
    };
    write(
        "SELECT p.citizen_id, count(*) AS pages FROM people p \
         JOIN visits v ON v.codice_fiscale = p.codice_fiscale GROUP BY p.citizen_id",
    );
    let out = civica_in(dir.path(), "validate");
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("transform `seen` (seen.sql): `people.codice_fiscale` holds keyed pseudonyms and is joined with `visits.codice_fiscale`, written in the clear: no row can match. Pass that side through pseudonym('cf', …)"),
        "{stderr}"
    );
    // Joined pseudonym to pseudonym, nothing to say.
    write(
        "SELECT p.citizen_id, count(*) AS pages FROM people p \
         JOIN visits v ON pseudonym('cf', v.codice_fiscale) = p.codice_fiscale GROUP BY p.citizen_id",
    );
    let out = civica_in(dir.path(), "run");
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("no row can match"), "{stderr}");
    let rows = crate::common::query(
        &[("s", &dir.path().join("out/seen"))],
        "SELECT CAST(sum(pages) AS BIGINT) FROM s",
    );
    let pages = rows[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("int64")
        .value(0);
    // Citizens 1 and 4 share a codice fiscale: its visit counts twice.
    assert_eq!(pages, 3);
}
