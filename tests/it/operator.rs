//! What a scheduler and an auditor see: `--log-format json` writes one JSON
//! object per line on stderr (steps, problems, the outcome with its exit
//! code) and nothing on stdout; human logs carry no colour codes off a
//! terminal; every run leaves a manifest.

use serde_json::Value;

use crate::common::{civica, civica_command, describe, root};

/// A one-table pipeline over the fixture CRM export, in a temp folder.
fn pipeline(sql: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("sql")).expect("mkdir");
    let yaml = "name: ops\nsources:\n  citizens:\n    path: \"{{ fixtures }}/crm/\"\n    format: { type: csv, delimiter: \";\" }\ntransforms:\n  - name: people\n    sql: sql/people.sql\noutputs:\n  - { table: people, path: out/people/ }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    std::fs::write(dir.path().join("sql/people.sql"), sql).expect("write sql");
    let fixtures = root().join("tests/fixtures/lake");
    let args = vec![
        "run".to_string(),
        "pipeline.yaml".to_string(),
        "--log-format".to_string(),
        "json".to_string(),
        "--var".to_string(),
        format!("fixtures={}", fixtures.display()),
    ];
    (dir, args)
}

/// Every stderr line as JSON; fails the test on a line that is not.
fn json_lines(stderr: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn json_logs_give_each_step_and_the_outcome() {
    let (dir, args) = pipeline("SELECT citizen_id, name FROM citizens");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = civica(dir.path(), &args);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let events = json_lines(&out.stderr);
    let output = events
        .iter()
        .find(|e| e["message"] == "step finished" && e["kind"] == "output")
        .unwrap_or_else(|| panic!("no output step: {events:?}"));
    assert_eq!(output["table"], "people");
    assert!(output["rows"].as_u64().is_some_and(|r| r > 0), "{output}");
    assert!(output["elapsed_ms"].is_u64(), "{output}");
    let last = events.last().expect("events");
    assert_eq!(last["message"], "pipeline finished", "{last}");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["pipeline"], "ops");
}

#[test]
fn json_logs_report_a_failed_run_and_an_invalid_pipeline() {
    // Plans fine, fails while running: exit 1, the step named.
    let (dir, args) = pipeline("SELECT citizen_id, CAST(name AS INT) AS name FROM citizens");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = civica(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let events = json_lines(&out.stderr);
    let last = events.last().expect("events");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert_eq!(last["exit_code"], 1, "{last}");
    let error = last["error"].as_str().unwrap_or_default();
    assert!(error.contains("transform `people`"), "{error}");

    // A column that does not exist: exit 2, the problem at its place.
    std::fs::write(
        dir.path().join("sql/people.sql"),
        "SELECT nobody FROM citizens",
    )
    .expect("write sql");
    let out = civica(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let events = json_lines(&out.stderr);
    let problem = events
        .iter()
        .find(|e| e["message"] == "invalid pipeline")
        .unwrap_or_else(|| panic!("no problem event: {events:?}"));
    let text = problem["problem"].as_str().unwrap_or_default();
    assert!(
        text.contains("people.sql") && text.contains("nobody"),
        "{text}"
    );
    assert_eq!(events.last().expect("events")["exit_code"], 2);
}

#[test]
fn human_logs_have_no_colour_codes_off_a_terminal() {
    let (dir, args) = pipeline("SELECT citizen_id, name FROM citizens");
    // The human format, with logs on, NO_COLOR unset: stderr is a pipe.
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--log-format" && *a != "json")
        .collect();
    let out = civica_command(dir.path(), &args)
        .env_remove("NO_COLOR")
        .env("CIVICA_LOG", "civica=info")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("step finished"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("pipeline `ops` finished"));
}

#[test]
fn each_run_leaves_a_manifest_without_secrets() {
    let (dir, args) = pipeline("SELECT citizen_id, name, '{{ note }}' AS note FROM citizens");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--var", "note=nightly"]);
    let secret = "never-in-a-manifest-4242";
    let out = civica_command(dir.path(), &args)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("out/_runs"))
        .expect("runs folder beside the outputs")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let text = std::fs::read_to_string(&runs[0]).expect("manifest");
    assert!(!text.contains(secret), "a secret in the manifest");
    let m: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(m["status"], "succeeded");
    assert_eq!(m["exit_code"], 0);
    assert_eq!(m["pipeline"]["name"], "ops");
    assert_eq!(m["pipeline"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(m["vars"]["note"], "nightly");
    // Every input object with its size and time, every step, the output.
    let inputs = m["inputs"].as_array().expect("inputs");
    assert!(!inputs.is_empty());
    for input in inputs {
        assert_eq!(input["source"], "citizens");
        let path = input["path"].as_str().unwrap_or_default();
        assert!(
            path.starts_with("file:///") && path.contains("/crm/"),
            "{path}"
        );
        assert!(input["bytes"].as_u64().is_some_and(|b| b > 0), "{input}");
        assert!(input["last_modified"].is_string(), "{input}");
    }
    let kinds: Vec<&str> = m["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["source", "transform", "lines", "output"],
        "{kinds:?}"
    );
    let output = &m["outputs"][0];
    assert_eq!(output["table"], "people");
    let written = output["path"].as_str().unwrap_or_default();
    let on_disk = std::fs::metadata(written).expect("the output path exists");
    assert_eq!(output["bytes"].as_u64(), Some(on_disk.len()));
    assert_eq!(m["versions"]["civica"], env!("CARGO_PKG_VERSION"));
    assert!(m["versions"]["datafusion"].is_string() && m["versions"]["linfa"].is_string());
    // The same pipeline hashes the same; a changed query does not.
    let again = civica(dir.path(), &args);
    assert!(again.status.success(), "{}", describe(&again));
    std::fs::write(
        dir.path().join("sql/people.sql"),
        "SELECT citizen_id, '{{ note }}' AS note FROM citizens",
    )
    .expect("write sql");
    let changed = civica(dir.path(), &args);
    assert!(changed.status.success(), "{}", describe(&changed));
    let mut all: Vec<_> = std::fs::read_dir(dir.path().join("out/_runs"))
        .expect("runs")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    all.sort();
    assert_eq!(all.len(), 3, "{all:?}");
    let hash = |p: &std::path::PathBuf| {
        let m: Value = serde_json::from_slice(&std::fs::read(p).expect("read")).expect("JSON");
        m["pipeline"]["sha256"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(hash(&all[0]), hash(&all[1]));
    assert_ne!(hash(&all[1]), hash(&all[2]));
}

#[test]
fn date_flag_and_date_arithmetic_choose_what_a_run_reads() {
    // A source path built from the run date a week back: `--date` moves it.
    let dir = tempfile::tempdir().expect("temp dir");
    let day = |date: &str, rows: &str| {
        let folder = dir.path().join(format!("in/{date}"));
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join("x.csv"), format!("n\n{rows}")).expect("write csv");
    };
    day("2026-11-14", "1\n2\n");
    day("2026-11-13", "1\n2\n3\n");
    let yaml = "name: dated\nsources:\n  x:\n    path: \"in/{{ ds | add_days(-7) }}/\"\n    format: { type: csv }\noutputs:\n  - { table: x, path: \"out/{{ ds | nodash }}/\" }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    for (date, rows, folder) in [("2026-11-21", 2, "20261121"), ("2026-11-20", 3, "20261120")] {
        let out = civica(dir.path(), &["run", "pipeline.yaml", "--date", date]);
        assert!(out.status.success(), "{}", describe(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("{rows} rows")), "{date}: {stdout}");
        let written = dir.path().join(format!("out/{folder}/part-00000.parquet"));
        assert!(written.exists(), "{date}: no {}", written.display());
    }
    // A bad filter is a pipeline error at its place.
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        yaml.replace("add_days(-7)", "add_days(week)"),
    )
    .expect("write pipeline");
    let out = civica(
        dir.path(),
        &["run", "pipeline.yaml", "--date", "2026-11-21"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pipeline.yaml:4:") && stderr.contains("got `week`"),
        "{stderr}"
    );
}

#[test]
fn backfill_runs_and_publishes_each_day_with_its_run_id() {
    let dir = crate::common::daily_pipeline();
    let out = crate::common::backfill(dir.path(), "2026-11-19", "2026-11-21");
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("== 2026-11-21 (3 of 3)"), "{stdout}");
    assert!(stdout.contains("backfill finished: 3 day(s)"), "{stdout}");
    // One publish and one manifest per day, each run's id in its output.
    let manifests = crate::common::manifests(&dir.path().join("out/_runs"));
    assert_eq!(manifests.len(), 3);
    for (manifest, (ds, nodash)) in manifests.iter().zip([
        ("2026-11-19", "20261119"),
        ("2026-11-20", "20261120"),
        ("2026-11-21", "20261121"),
    ]) {
        assert_eq!(manifest["vars"]["ds"], ds);
        let run_id = manifest["run_id"].as_str().expect("run id");
        assert_eq!(manifest["vars"]["run_id"], run_id);
        let folder = dir.path().join(format!("out/day/ds={nodash}"));
        let batches = crate::common::read_parquet(&folder);
        assert_eq!(crate::common::strings(&batches[0], 0), [ds]);
        assert_eq!(crate::common::strings(&batches[0], 1), [run_id]);
    }
    // A range the wrong way round is a usage error.
    let out = crate::common::backfill(dir.path(), "2026-11-21", "2026-11-19");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("`--to 2026-11-19` is before `--from 2026-11-21`")
    );
}

#[test]
fn resources_bound_datafusion_memory_and_reach_the_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    // 3 million numbers, about 24 MB as Int64: more than the 16 MiB limit.
    let mut csv = String::with_capacity(30_000_000);
    csv.push_str("n\n");
    for i in 0..3_000_000u64 {
        csv.push_str(&((i * 7_919) % 3_000_017).to_string());
        csv.push('\n');
    }
    std::fs::write(dir.path().join("in/n.csv"), csv).expect("write csv");
    let write = |sql: &str, resources: &str| {
        std::fs::write(dir.path().join("step.sql"), sql).expect("write sql");
        let yaml = format!(
            "name: bounded\n{resources}sources:\n  numbers:\n    path: in/\n    format: {{ type: csv }}\ntransforms:\n  - {{ name: step, sql: step.sql }}\noutputs:\n  - {{ table: step, path: out/step/ }}\n"
        );
        std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("write pipeline");
    };
    let resources = "resources:\n  memory_limit: 16MiB\n  spill_dir: spill/\n";

    // A sort larger than the limit spills and completes, in order.
    write("SELECT n FROM numbers ORDER BY n DESC", resources);
    let out = civica(
        dir.path(),
        &["run", "pipeline.yaml", "--target-partitions", "1"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    // Off a terminal, no live progress line.
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains('\r'),
        "{}",
        describe(&out)
    );
    // Read in file order (DataFusion would read row groups in parallel).
    let file = std::fs::File::open(dir.path().join("out/step/part-00000.parquet")).expect("open");
    let batches: Vec<_> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("batches");
    let sorted: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            use datafusion::arrow::array::AsArray;
            use datafusion::arrow::datatypes::Int64Type;
            b.column(0).as_primitive::<Int64Type>().values().to_vec()
        })
        .collect();
    assert_eq!(sorted.len(), 3_000_000);
    assert!(sorted.windows(2).all(|w| w[0] >= w[1]), "not in order");
    let manifest = &crate::common::manifests(&dir.path().join("out/_runs"))[0];
    assert_eq!(manifest["resources"]["memory_limit_bytes"], 16 << 20);
    assert_eq!(manifest["resources"]["target_partitions"], 1);
    assert!(
        manifest["resources"]["peak_rss_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0)
    );
    // The step's result was kept on disk in the spill folder, removed after.
    let spill: Vec<_> = std::fs::read_dir(dir.path().join("spill"))
        .expect("spill folder created")
        .filter_map(Result::ok)
        .collect();
    assert!(spill.is_empty(), "left in the spill folder: {spill:?}");

    // On a terminal (a pseudo-terminal from `script`), the running step is
    // shown live on stderr and erased before its line is printed.
    let command = format!(
        "{} run pipeline.yaml --target-partitions 1",
        env!("CARGO_BIN_EXE_civica")
    );
    let tty = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("NO_COLOR")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{shown}");
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    assert!(
        frames
            .iter()
            .any(|f| shown.contains(&format!("{f} transform step  "))),
        "no live line: {shown:?}"
    );
    assert!(shown.contains("\r\x1b[2Ktransform step"), "{shown:?}");
    // The step scans a CSV source: a bar counts its bytes, up to the
    // source's size as listed (the sort reads the whole file).
    let size = human_bytes_of(&dir.path().join("in/n.csv"));
    assert!(
        shown.contains("transform step  ["),
        "no progress bar: {shown:?}"
    );
    assert!(
        shown.contains(&format!("of {size}  ")),
        "no `of {size}` in {shown:?}"
    );

    // What cannot spill (one list of every value) fails at the limit.
    write("SELECT array_agg(n) AS all_n FROM numbers", resources);
    let out = civica(dir.path(), &["run", "pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.to_lowercase().contains("resources exhausted"),
        "{stderr}"
    );
    // Without the limit it runs.
    let out = civica(
        dir.path(),
        &["run", "pipeline.yaml", "--memory-limit", "1GiB"],
    );
    assert!(out.status.success(), "{}", describe(&out));

    // A size that is not one, in the YAML and on the command line.
    write(
        "SELECT n FROM numbers",
        "resources:\n  memory_limit: lots\n",
    );
    let out = civica(dir.path(), &["validate", "pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "pipeline.yaml:3:17: `resources.memory_limit` must be a size such as `512MiB`"
        ),
        "{stderr}"
    );
    let out = civica(
        dir.path(),
        &["validate", "pipeline.yaml", "--memory-limit", "1KiB"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("command line: `--memory-limit` must be at least 16MiB"),
        "{}",
        describe(&out)
    );
}

/// A file's size as civica prints sizes (`28.6 MiB`).
fn human_bytes_of(path: &std::path::Path) -> String {
    civica::run::human_bytes(std::fs::metadata(path).expect("file").len())
}
