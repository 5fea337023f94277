//! CSV exports as real systems write them: Windows-1252 with decimal comma
//! and CRLF, tab-separated without a header with `YYMMDD` dates, explicit
//! schemas that quarantine rows, files whose columns changed.

use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};

use crate::common::{civica, describe, published, query, root, strings};

fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures/csv")
        .join(name)
        .display()
        .to_string()
}

/// Runs a pipeline with one source `src` (its YAML body given) whose table
/// and `src__rejected` are written under `dir/out`.
fn run_source(dir: &Path, body: &str) -> std::process::Output {
    let yaml = format!(
        "name: csv\nsources:\n  src:\n{body}outputs:\n  - {{ table: src, path: out/src/ }}\n  - {{ table: src__rejected, path: out/rejected/, contains_personal_data: [raw_line], purpose: review of unreadable lines }}\n"
    );
    std::fs::write(dir.join("pipeline.yaml"), yaml).expect("pipeline");
    civica(dir, &["run", "pipeline.yaml"])
}

#[test]
fn windows_1252_with_decimal_comma_and_an_explicit_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_source(
        dir.path(),
        &format!(
            "    path: {}\n    format: {{ type: csv, delimiter: \";\", decimal: \",\", encoding: latin-1, date_format: \"%d/%m/%Y\" }}\n    schema: {{ codice: string, nome: string, comune: string, importo: float64, data_nascita: date, ora: time }}\n    max_rejected_ratio: 0.5\n",
            fixture("anagrafe_cp1252.csv")
        ),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(
        &[("t", &dir.path().join("out/src"))],
        "SELECT codice, nome, comune, importo, CAST(data_nascita AS VARCHAR), CAST(ora AS VARCHAR), \
         arrow_typeof(data_nascita), arrow_typeof(ora) FROM t ORDER BY codice",
    );
    let batch = &rows[0];
    assert_eq!(strings(batch, 0), ["001", "002", "003", "005"]);
    assert_eq!(
        strings(batch, 1),
        ["Niccolò", "Perché", "Rossi; Mario", "Zoè"]
    );
    assert_eq!(strings(batch, 2)[0], "Forlì");
    let amounts: Vec<f64> = batch
        .column(3)
        .as_primitive::<Float64Type>()
        .values()
        .to_vec();
    assert_eq!(amounts, [1234.5, 12.5, -3.25, 0.75]);
    assert_eq!(strings(batch, 4)[0], "1980-11-21");
    assert_eq!(strings(batch, 5)[0], "09:05:33");
    assert_eq!(strings(batch, 6)[0], "Date32");
    assert_eq!(strings(batch, 7)[0], "Time64(µs)");

    let rejected = query(
        &[("r", &dir.path().join("out/rejected"))],
        "SELECT line_number, reason, raw_line FROM r",
    );
    assert_eq!(
        rejected[0].column(0).as_primitive::<Int64Type>().value(0),
        5
    );
    assert_eq!(
        strings(&rejected[0], 1),
        ["column `importo`: `abc` is not a number"]
    );
    assert_eq!(
        strings(&rejected[0], 2),
        ["004;Bad;Row;abc;01/01/2000;8:00:00"]
    );
}

#[test]
fn a_row_that_does_not_fit_fails_the_run_with_on_error_fail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_source(
        dir.path(),
        &format!(
            "    path: {}\n    format: {{ type: csv, delimiter: \";\", decimal: \",\", encoding: windows-1252, date_format: \"%d/%m/%Y\" }}\n    schema: {{ codice: string, nome: string, comune: string, importo: float64, data_nascita: date, ora: time }}\n    on_error: fail\n",
            fixture("anagrafe_cp1252.csv")
        ),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "anagrafe_cp1252.csv:5`: column `importo`: `abc` is not a number (`on_error: fail`)"
        ),
        "{stderr}"
    );
    let left = published(&dir.path().join("out"));
    assert!(left.is_empty(), "a failed run wrote outputs: {left:?}");
}

#[test]
fn tab_separated_without_header_with_yymmdd_dates_and_a_null_marker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_source(
        dir.path(),
        &format!(
            "    path: {}\n    format: {{ type: csv, delimiter: \"\\t\", header: false, date_format: \"%y%m%d\", null_marker: \"\\\\N\", extension: .tsv }}\n",
            fixture("protocollo.tsv")
        ),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(
        &[("t", &dir.path().join("out/src"))],
        "SELECT CAST(column_1 AS VARCHAR), column_2, column_3, arrow_typeof(column_1), arrow_typeof(column_3) \
         FROM t ORDER BY column_2",
    );
    let batch = &rows[0];
    assert_eq!(
        strings(batch, 0),
        ["2026-11-21", "2026-11-20", "2026-01-01"]
    );
    assert_eq!(strings(batch, 1), ["A123", "B456", "C789"]);
    let counts = batch.column(2).as_primitive::<Int64Type>();
    assert_eq!(
        (counts.value(0), counts.is_null(1), counts.value(2)),
        (3, true, -7)
    );
    assert_eq!(strings(batch, 3)[0], "Date32");
    assert_eq!(strings(batch, 4)[0], "Int64");
}

fn drift_source(policy: &str) -> String {
    format!(
        "    path: {}/\n    format: {{ type: csv, delimiter: \";\" }}\n{policy}",
        fixture("drift")
    )
}

#[test]
fn a_file_whose_columns_changed_fails_by_default_naming_file_and_columns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_source(dir.path(), &drift_source(""));
    // Drift is in the data, not the pipeline: the run failed (1).
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("calls_2026-11-20.csv` adds `channel` compared with `")
            && stderr.contains("calls_2026-11-19.csv` (set `schema_drift: union` or `ignore_new`"),
        "{stderr}"
    );
}

#[test]
fn schema_drift_union_and_ignore_new() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_source(dir.path(), &drift_source("    schema_drift: union\n"));
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(
        &[("t", &dir.path().join("out/src"))],
        "SELECT call_id, queue, channel FROM t ORDER BY call_id",
    );
    assert_eq!(
        strings(&rows[0], 2),
        ["", "", "app"],
        "missing columns are null"
    );
    assert_eq!(rows[0].column(2).null_count(), 2);
    assert_eq!(strings(&rows[0], 1), ["anagrafe", "tributi", "scuola"]);

    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_source(dir.path(), &drift_source("    schema_drift: ignore_new\n"));
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(&[("t", &dir.path().join("out/src"))], "SELECT * FROM t");
    assert_eq!(rows[0].num_columns(), 2, "the new column is ignored");
    let total: usize = rows.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 3);
}

fn write_parquet(path: &Path, columns: &[&str]) {
    use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
    let arrays: Vec<(&str, ArrayRef)> = columns
        .iter()
        .map(|c| {
            (
                *c,
                std::sync::Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
            )
        })
        .collect();
    let batch = RecordBatch::try_from_iter(arrays).expect("batch");
    let file = std::fs::File::create(path).expect("parquet file");
    let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
        .expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

#[test]
fn schema_drift_applies_to_parquet_sources_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("exports");
    std::fs::create_dir(&folder).expect("folder");
    write_parquet(&folder.join("a.parquet"), &["id", "amount"]);
    write_parquet(&folder.join("b.parquet"), &["id", "amount", "channel"]);
    let run = |policy: &str| {
        let yaml = format!(
            "name: pq\nsources:\n  src:\n    path: exports/\n    format: {{ type: parquet }}\n{policy}outputs:\n  - {{ table: src, path: out/src/ }}\n"
        );
        std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("pipeline");
        civica(dir.path(), &["run", "pipeline.yaml"])
    };
    let out = run("");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("b.parquet` adds `channel` compared with `"),
        "{}",
        describe(&out)
    );
    let out = run("    schema_drift: ignore_new\n");
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(&[("t", &dir.path().join("out/src"))], "SELECT * FROM t");
    assert_eq!(rows[0].num_columns(), 2);
    let out = run("    schema_drift: union\n");
    assert!(out.status.success(), "{}", describe(&out));
    let rows = query(
        &[("t", &dir.path().join("out/src"))],
        "SELECT count(channel), count(*) FROM t",
    );
    assert_eq!(
        (
            rows[0].column(0).as_primitive::<Int64Type>().value(0),
            rows[0].column(1).as_primitive::<Int64Type>().value(0)
        ),
        (2, 4)
    );
}
