//! Helpers shared by the integration tests: running the `civica` binary, building demo lakes, reading Parquet back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

/// The run date every test uses, so that results do not depend on today.
pub const DS: &str = "2026-11-21";

/// The crate root, where `pipelines/` and `sql/` are.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `civica` with `args` in `dir`.
pub fn civica(dir: &Path, args: &[&str]) -> Output {
    civica_command(dir, args)
        .output()
        .expect("the civica binary runs")
}

/// The `civica` command with `args` in `dir`, for tests that add to its environment.
pub fn civica_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civica"));
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        // A key in the developer's environment must not change what the
        // tests see; the privacy tests set their own.
        .env_remove("CIVICA_PSEUDONYM_KEY")
        .env_remove("CIVICA_PSEUDONYM_KEY_FILE");
    command
}

/// Stdout and stderr of a run, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes a demo lake into `dir` with the tests' fixed end date.
pub fn write_demo(dir: &Path, citizens: u64, days: u32, seed: u64) {
    write_demo_ending(dir, citizens, days, seed, DS);
}

/// Writes a demo lake into `dir` whose window ends on `end_date`.
pub fn write_demo_ending(dir: &Path, citizens: u64, days: u32, seed: u64, end_date: &str) {
    let out = civica(
        &root(),
        &[
            "demo",
            "--out",
            dir.to_str().expect("utf-8 path"),
            "--citizens",
            &citizens.to_string(),
            "--days",
            &days.to_string(),
            "--seed",
            &seed.to_string(),
            "--end-date",
            end_date,
        ],
    );
    assert!(out.status.success(), "demo failed: {}", describe(&out));
}

/// A folder with `pipeline.yaml`, a pipeline named `daily` that counts
/// `in/x.csv` into one dated output folder per day
/// (`out/day/ds=<yyyymmdd>/`, with the run's `ds` and `run_id`), keeping
/// its runs in `out/_runs/`: what the backfill tests run.
pub fn daily_pipeline() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    std::fs::write(dir.path().join("in/x.csv"), "n\n1\n2\n").expect("write csv");
    std::fs::write(
        dir.path().join("day.sql"),
        "SELECT '{{ ds }}' AS ds, '{{ run_id }}' AS run_id, count(*) AS n FROM x",
    )
    .expect("write sql");
    let yaml = "name: daily\nruns: out/_runs/\nsources:\n  x:\n    path: in/\n    format: { type: csv }\ntransforms:\n  - { name: day, sql: day.sql }\noutputs:\n  - { table: day, path: \"out/day/ds={{ ds_nodash }}/\" }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    dir
}

/// `civica backfill pipeline.yaml --from FROM --to TO` in `dir`.
pub fn backfill(dir: &Path, from: &str, to: &str) -> Output {
    civica(
        dir,
        &["backfill", "pipeline.yaml", "--from", from, "--to", to],
    )
}

/// Runs the quickstart pipeline on the lake in `lake`.
pub fn run_quickstart(lake: &Path) -> Output {
    quickstart_command(&lake.display().to_string(), "run")
        .output()
        .expect("the civica binary runs")
}

/// The pseudonym key the tests' quickstart runs use: its identity step
/// shows identifiers only as keyed pseudonyms.
pub const QUICKSTART_KEY: &str = "a-quickstart-test-key-of-forty-characters";

/// `civica ARGS` in `dir` with the quickstart's test key.
pub fn keyed_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = civica_command(dir, args);
    command.env("CIVICA_PSEUDONYM_KEY", QUICKSTART_KEY);
    command
}

/// `civica ARGS` in `dir` with the quickstart's test key, run.
pub fn keyed(dir: &Path, args: &[&str]) -> Output {
    keyed_command(dir, args)
        .output()
        .expect("the civica binary runs")
}

/// `civica COMMAND pipelines/citizen_segments.yaml` on the lake at `lake` (a path or URL).
pub fn quickstart_command(lake: &str, command: &str) -> Command {
    keyed_command(
        &root(),
        &[
            command,
            "pipelines/citizen_segments.yaml",
            "--var",
            &format!("lake={lake}"),
            "--var",
            &format!("ds={DS}"),
        ],
    )
}

/// Copies the quickstart's `pipelines/` and `sql/` folders into `dir`, for
/// a test that changes them.
pub fn copy_quickstart(dir: &Path) {
    for folder in ["pipelines", "sql"] {
        std::fs::create_dir_all(dir.join(folder)).expect("mkdir");
        for entry in std::fs::read_dir(root().join(folder)).expect("listing") {
            let path = entry.expect("entry").path();
            std::fs::copy(
                &path,
                dir.join(folder).join(path.file_name().expect("name")),
            )
            .expect("copy");
        }
    }
}

/// A demo lake at the default size with the quickstart run on it, built
/// once for every test that only reads its outputs.
pub fn default_lake() -> &'static Path {
    static LAKE: OnceLock<tempfile::TempDir> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        write_demo(dir.path(), 5000, 90, 42);
        let out = run_quickstart(dir.path());
        assert!(
            out.status.success(),
            "quickstart failed: {}",
            describe(&out)
        );
        dir
    })
    .path()
}

/// Every file below a folder (none if it does not exist), sorted.
pub fn files_under(folder: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![folder.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for path in std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
        {
            match path.is_dir() {
                true => todo.push(path),
                false => found.push(path),
            }
        }
    }
    found.sort();
    found
}

/// How many records of the demo CRM the quickstart segments: every row of
/// its citizens export (its test records too, which hold no one and so
/// are citizens with nothing done) but those who objected to profiling.
pub fn profiled_records(lake: &Path) -> usize {
    let crm = std::fs::read_to_string(lake.join("raw/crm/citizens/citizens.csv")).expect("CRM");
    crm.lines().count() - 1 - objected_citizens(lake).len()
}

/// The demo CRM's citizens who objected to profiling (`objected_profiling`
/// true), whom the quickstart leaves out of its segments.
pub fn objected_citizens(lake: &Path) -> std::collections::BTreeSet<i64> {
    let crm = std::fs::read_to_string(lake.join("raw/crm/citizens/citizens.csv")).expect("CRM");
    let mut lines = crm.lines();
    let header: Vec<&str> = lines.next().expect("header").split(';').collect();
    let flag = header
        .iter()
        .position(|c| *c == "objected_profiling")
        .expect("objected_profiling column");
    lines
        .map(|line| line.split(';').collect::<Vec<_>>())
        .filter(|fields| fields[flag] == "true")
        .map(|fields| fields[0].parse().expect("citizen_id"))
        .collect()
}

/// Reads every Parquet file of a folder into record batches.
pub fn read_parquet(folder: &Path) -> Vec<RecordBatch> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ctx = SessionContext::new();
        ctx.read_parquet(
            folder.to_str().expect("utf-8 path"),
            ParquetReadOptions::default(),
        )
        .await
        .expect("parquet folder opens")
        .collect()
        .await
        .expect("parquet reads")
    })
}

/// Runs SQL over the Parquet folders given as (table, folder) pairs.
pub fn query(tables: &[(&str, &Path)], sql: &str) -> Vec<RecordBatch> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ctx = SessionContext::new();
        for (name, folder) in tables {
            ctx.register_parquet(
                *name,
                folder.to_str().expect("utf-8 path"),
                ParquetReadOptions::default(),
            )
            .await
            .expect("parquet folder registers");
        }
        ctx.sql(sql)
            .await
            .expect("query plans")
            .collect()
            .await
            .expect("query runs")
    })
}

/// The values of a string column, whatever its Arrow string type
/// (DataFusion reads Parquet strings as `Utf8View`).
pub fn strings(batch: &RecordBatch, column: usize) -> Vec<String> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::DataType;
    let text = datafusion::arrow::compute::cast(batch.column(column), &DataType::Utf8)
        .expect("a string column");
    text.as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect()
}

/// Runs a Python script (the test command installs pyarrow, DuckDB and
/// scikit-learn) and returns its standard output.
pub fn python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a run left in an output root, apart from the run manifests in
/// `_runs/`: the names of its entries, sorted (none when it is missing).
pub fn published(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name != "_runs")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The run manifests in a runs folder, oldest first.
pub fn manifests(runs: &Path) -> Vec<serde_json::Value> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(runs)
        .expect("runs folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("manifest")).expect("JSON"))
        .collect()
}

/// Every value of every Parquet file (and every JSON file) below `dir`,
/// as text: Parquet pages are compressed, so values are read, not bytes.
pub fn written_values(dir: &Path) -> std::collections::HashSet<String> {
    let mut values = std::collections::HashSet::new();
    for path in files_under(dir) {
        if path.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&path).expect("open");
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .expect("parquet")
                    .build()
                    .expect("reader");
            for batch in reader {
                let batch = batch.expect("batch");
                for column in batch.columns() {
                    let Ok(text) = datafusion::arrow::compute::cast(
                        column,
                        &datafusion::arrow::datatypes::DataType::Utf8,
                    ) else {
                        continue;
                    };
                    values.extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
                }
            }
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).expect("read")).into_owned();
            values.extend(
                text.split(|c: char| c.is_whitespace() || "\"',:[]{}".contains(c))
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            );
            values.insert(text);
        }
    }
    values
}
