//! Lines that cannot be parsed are never lost: they land in `<source>__rejected`, or fail the run when the pipeline says so.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;

use crate::common::{civica, describe, published, query, root, strings};

/// A pipeline over the fixture log (3 lines, the third without the closing
/// quote of its user agent) with `settings` added to the source.
fn run_with(settings: &str) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixtures = root().join("tests/fixtures/lake");
    let yaml = format!(
        "name: quarantine\nsources:\n  web:\n    path: \"{{{{ fixtures }}}}/web/\"\n    format: {{ type: access_log }}\n{settings}outputs:\n  - {{ table: web, path: out/web/, contains_personal_data: [user], purpose: portal statistics }}\n  - {{ table: web__rejected, path: out/web_rejected/, contains_personal_data: [raw_line], purpose: review of unreadable lines }}\n"
    );
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    let out = civica(
        dir.path(),
        &[
            "run",
            "pipeline.yaml",
            "--var",
            &format!("fixtures={}", fixtures.display()),
        ],
    );
    (out, dir)
}

#[test]
fn rejected_lines_are_a_table_with_file_line_text_and_reason() {
    let (out, dir) = run_with("    max_rejected_ratio: 0.5\n");
    assert!(out.status.success(), "{}", describe(&out));
    let rejected = dir.path().join("out/web_rejected");
    let rows = query(
        &[("r", &rejected)],
        "SELECT source_file, line_number, raw_line, reason FROM r",
    );
    assert_eq!(rows[0].num_rows(), 1);
    let file = &strings(&rows[0], 0)[0];
    assert!(
        file.ends_with("tests/fixtures/lake/web/access_2026-11-20.log"),
        "{file}"
    );
    assert_eq!(rows[0].column(1).as_primitive::<Int64Type>().value(0), 3);
    // The line as it was, but for its client address, masked as in the
    // table (`ip_mask: 16` by default).
    assert!(
        strings(&rows[0], 2)[0]
            .starts_with("93.44.0.0 - TINIT-RSSMRA85T10A562S [20/Nov/2026:09:01:13 +0100]"),
        "{}",
        strings(&rows[0], 2)[0]
    );
    assert_eq!(strings(&rows[0], 3)[0], "user agent is not a quoted string");
    let loaded = query(
        &[("w", &dir.path().join("out/web"))],
        "SELECT COUNT(*) FROM w",
    );
    assert_eq!(
        loaded[0].column(0).as_primitive::<Int64Type>().value(0),
        2,
        "good lines + rejected lines = all lines"
    );
}

#[test]
fn too_many_rejected_lines_fail_the_run_and_publish_nothing() {
    let (out, dir) = run_with("");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("source `web`: 1 of 3 lines could not be read (33.33% is above `max_rejected_ratio` 0.05), in `")
            && stderr.contains("access_2026-11-20.log` (1); first: ")
            && stderr.contains("access_2026-11-20.log:3: user agent is not a quoted string"),
        "{stderr}"
    );
    let left = published(&dir.path().join("out"));
    assert!(left.is_empty(), "a failed run wrote outputs: {left:?}");
}

#[test]
fn on_error_fail_fails_on_the_first_bad_line() {
    let (out, _dir) = run_with("    on_error: fail\n    max_rejected_ratio: 1\n");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: source `web`: `")
            && stderr.contains(
                "access_2026-11-20.log:3`: user agent is not a quoted string (`on_error: fail`)"
            ),
        "{stderr}"
    );
}
