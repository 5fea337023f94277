//! Sources and outputs on a real S3-compatible server: s3s-fs, installed by the test command and started here on 127.0.0.1.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    DS, describe, objected_citizens, profiled_records, quickstart_command, read_parquet,
    write_demo, written_values,
};

const ACCESS_KEY: &str = "civica-test";
const SECRET_KEY: &str = "civica-test-secret";

/// An s3s-fs process serving a temporary folder; each subfolder is a bucket.
struct S3Server {
    child: Child,
    root: tempfile::TempDir,
    port: u16,
}

impl S3Server {
    fn start() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(server_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let server = S3Server { child, root, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The local folder behind a bucket.
    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.path().join(bucket)
    }

    /// Runs `command` with the S3 settings in its environment, as a user would set them.
    fn run(&self, command: Command, secret: &str) -> Output {
        self.configure(command, secret)
            .output()
            .expect("the civica binary runs")
    }

    /// `command` with the S3 settings in its environment.
    fn configure(&self, mut command: Command, secret: &str) -> Command {
        command
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port))
            .env("AWS_ALLOW_HTTP", "true");
        command
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The s3s-fs binary: `CIVICA_S3_SERVER`, else on `PATH`, else where the test command installs it.
fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CIVICA_S3_SERVER") {
        return PathBuf::from(path);
    }
    let installed = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/civica-tools/bin/s3s-fs"))
        .filter(|p| p.exists());
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("s3s-fs"))
            .find(|p| p.exists())
    });
    on_path.or(installed).expect(
        "s3s-fs is not installed: run the test suite with `bash tests/run.sh`, which installs it",
    )
}

#[test]
fn quickstart_reads_its_lake_from_a_bucket_and_writes_outputs_to_it() {
    let server = S3Server::start();
    let lake = server.bucket_dir("lake");
    write_demo(&lake, 300, 14, 5);
    let out = server.run(quickstart_command("s3://lake", "run"), SECRET_KEY);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("s3://lake/marts/segments/_versions/"),
        "{stdout}"
    );
    // What the server stored is real Parquet with every citizen in it, in
    // the version the pointer names.
    let segments = read_parquet(&current_version(&lake.join("marts/segments")));
    let profiled = profiled_records(&lake);
    assert!(
        !objected_citizens(&lake).is_empty(),
        "someone objected in the demo lake"
    );
    assert_eq!(
        segments.iter().map(|b| b.num_rows()).sum::<usize>(),
        profiled
    );
    let profiles = read_parquet(&current_version(&lake.join("marts/segment_profiles")));
    assert_eq!(profiles.iter().map(|b| b.num_rows()).sum::<usize>(), 5);

    // The next night follows the pointer to the segments it published: the
    // migrations table counts every citizen from a previous segment.
    let again = server.run(quickstart_command("s3://lake", "run"), SECRET_KEY);
    assert!(again.status.success(), "{}", describe(&again));
    let migrations = read_parquet(&current_version(&lake.join("marts/segment_migrations")));
    let moved: i64 = migrations
        .iter()
        .map(|b| {
            datafusion::arrow::compute::sum(
                b.column_by_name("citizens")
                    .expect("citizens")
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
                    .expect("counts"),
            )
            .unwrap_or(0)
        })
        .sum();
    assert_eq!(
        moved as usize, profiled,
        "every profiled citizen had a previous segment"
    );
}

/// Writes `calls` calls of `day` as `raw/calls/<day>.csv` in a bucket's folder.
fn write_calls(lake: &std::path::Path, day: &str, calls: usize) {
    std::fs::create_dir_all(lake.join("raw/calls")).expect("mkdir");
    let mut text = "call_id;day\n".to_string();
    for i in 0..calls {
        text.push_str(&format!("{i};{day}\n"));
    }
    std::fs::write(lake.join(format!("raw/calls/{day}.csv")), text).expect("calls");
}

/// The local folder of the version an output folder's `_CURRENT` names.
fn current_version(folder: &std::path::Path) -> PathBuf {
    let pointer = std::fs::read_to_string(folder.join("_CURRENT")).expect("a _CURRENT pointer");
    let version = pointer.trim();
    assert!(
        version.starts_with("_versions/") && version.ends_with('/'),
        "{version}"
    );
    folder.join(version)
}

/// The versions below an output folder that hold files (the server keeps
/// emptied folders on its disk; S3 has no folders), sorted.
fn versions(folder: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder.join("_versions"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_dir(e.path())
                        .map(|mut files| files.next().is_some())
                        .unwrap_or(false)
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn wrong_credentials_and_missing_buckets_are_named() {
    let server = S3Server::start();
    write_demo(&server.bucket_dir("lake"), 50, 2, 5);

    let denied = server.run(
        quickstart_command("s3://lake", "validate"),
        "not-the-secret",
    );
    // Refused credentials and a missing bucket fail the run (1): the
    // pipeline is right, the store is not.
    assert_eq!(denied.status.code(), Some(1), "{}", describe(&denied));
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains(
            "cannot read `s3://lake/raw/crm/citizens/`: access to bucket `lake` was refused"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret leaked into the message: {stderr}"
    );

    let missing = server.run(
        quickstart_command("s3://no-such-bucket", "validate"),
        SECRET_KEY,
    );
    assert_eq!(missing.status.code(), Some(1), "{}", describe(&missing));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("cannot read `s3://no-such-bucket/raw/crm/citizens/`: bucket `no-such-bucket` does not exist"),
        "{stderr}"
    );
}

/// Runs `civica run pipeline.yaml` in `dir` with only credentials in the
/// environment: endpoint and connection settings come from the YAML.
fn run_with_yaml_settings(dir: &std::path::Path, yaml: &str) -> Output {
    std::fs::write(dir.join("pipeline.yaml"), yaml).expect("pipeline");
    std::fs::write(
        dir.join("summary.sql"),
        "SELECT count(*) AS n, sum(bytes) AS b FROM web",
    )
    .expect("sql");
    crate::common::civica_command(dir, &["run", "pipeline.yaml"])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT")
        .env_remove("AWS_ALLOW_HTTP")
        .output()
        .expect("the civica binary runs")
}

fn logs_pipeline(endpoint: &str, extra: &str) -> String {
    format!(
        "name: s3logs\nstorage:\n  endpoint: {endpoint}\n  allow_http: true\n{extra}sources:\n  web:\n    path: s3://logs/web/\n    format: {{ type: access_log }}\ntransforms:\n  - name: summary\n    sql: summary.sql\noutputs:\n  - {{ table: summary, path: s3://logs/out/summary/ }}\n"
    )
}

#[test]
fn storage_settings_in_the_yaml_reach_the_client() {
    let server = S3Server::start();
    let web = server.bucket_dir("logs").join("web");
    std::fs::create_dir_all(&web).expect("bucket folder");
    let log = std::fs::read(crate::common::root().join("tests/fixtures/logs/portal.log"))
        .expect("fixture");
    std::fs::write(web.join("a.log"), &log).expect("plain log");
    std::fs::write(
        web.join("b.log.zst"),
        zstd::encode_all(&log[..], 3).expect("zstd"),
    )
    .expect("zstd log");
    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    let out = run_with_yaml_settings(
        dir.path(),
        &logs_pipeline(&endpoint, "  timeout_s: 20\n  max_retries: 2\n"),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let summary = read_parquet(&current_version(
        &server.bucket_dir("logs").join("out/summary"),
    ));
    let n = summary[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .expect("count")
        .value(0);
    assert_eq!(n, 80, "both files of the bucket, one of them zstd");

    // A dead endpoint with few retries fails quickly, naming the URL.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // (An endpoint written with a user and password: they never show.)
    let out = run_with_yaml_settings(
        dir.path(),
        &logs_pipeline(
            &format!("http://keyholder:hunter2@127.0.0.1:{closed}"),
            "  max_retries: 0\n  connect_timeout_s: 2\n",
        ),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an outage is exit 1: {}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read `s3://logs/web/`"), "{stderr}");
    assert!(
        !stderr.contains("hunter2") && !stderr.contains("keyholder"),
        "{stderr}"
    );
}

/// The publish guarantees on the S3 server, where outputs are versions
/// named by a `_CURRENT` pointer: a failing blocking check, a run killed
/// while writing and a run killed between two pointer writes leave the
/// current outputs as they were (or complete them), the next run removes
/// what dead runs wrote, and only the current and previous versions stay.
#[test]
fn publish_guarantees_hold_on_a_bucket() {
    let server = S3Server::start();
    let lake = server.bucket_dir("lake");
    let dir = tempfile::tempdir().expect("temp dir");
    let write_people = |rows: &str| {
        std::fs::create_dir_all(lake.join("raw/people")).expect("mkdir");
        std::fs::write(
            lake.join("raw/people/people.csv"),
            format!("id;name\n{rows}"),
        )
        .expect("write people");
    };
    let yaml = "name: bucket\nruns: s3://lake/out/_runs/\nsources:\n  people:\n    path: s3://lake/raw/people/\n    format: { type: csv, delimiter: \";\" }\ntransforms:\n  - { name: names, sql: names.sql }\noutputs:\n  - { table: people, path: s3://lake/out/people/ }\n  - { table: names, path: s3://lake/out/names/ }\nchecks:\n  people:\n    - { type: unique, column: id }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("pipeline");
    std::fs::write(
        dir.path().join("names.sql"),
        "SELECT upper(name) AS name FROM people ORDER BY name",
    )
    .expect("sql");
    let run = || {
        server.run(
            crate::common::civica_command(dir.path(), &["run", "pipeline.yaml"]),
            SECRET_KEY,
        )
    };
    let kill_at = |point: &str| {
        crate::publish::kill_command_at(
            server.configure(
                crate::common::civica_command(dir.path(), &["run", "pipeline.yaml"]),
                SECRET_KEY,
            ),
            point,
        )
    };
    let tables = ["people", "names"];
    // What a reader following each pointer reads.
    let snapshot = || {
        tables.map(|t| {
            std::fs::read(current_version(&lake.join("out").join(t)).join("part-00000.parquet"))
                .expect("published")
        })
    };
    let all_versions = || tables.map(|t| versions(&lake.join("out").join(t)));
    write_people("1;anna\n2;luca\n");
    let first = run();
    assert!(first.status.success(), "{}", describe(&first));
    let day1 = snapshot();
    let after_day1 = all_versions();
    assert_eq!(after_day1.clone().map(|v| v.len()), [1, 1]);

    // A duplicate id fails the blocking check: exit 3, nothing written.
    write_people("1;anna\n2;luca\n2;mario\n");
    let failed = run();
    assert_eq!(failed.status.code(), Some(3), "{}", describe(&failed));
    assert_eq!(snapshot(), day1);
    assert_eq!(all_versions(), after_day1);

    // Killed while writing: the pointers stay, and the next run removes
    // the version the dead run had written.
    write_people("1;anna\n2;luca\n3;mario\n");
    kill_at("writing:names");
    assert_eq!(snapshot(), day1);
    let dead: Vec<String> = versions(&lake.join("out/people"))
        .into_iter()
        .filter(|v| !after_day1[0].contains(v))
        .collect();
    assert_eq!(dead.len(), 1, "the killed run had written `people`");
    let next = run();
    assert!(next.status.success(), "{}", describe(&next));
    let day2 = snapshot();
    assert_ne!(day2, day1);
    assert!(!versions(&lake.join("out/people")).contains(&dead[0]));
    assert!(String::from_utf8_lossy(&next.stderr).contains("removed the unpublished version"));

    // Killed between its two pointer writes: the next run, failing,
    // completes them.
    write_people("1;anna\n2;luca\n3;mario\n4;sara\n");
    kill_at("publishing:1");
    let torn = snapshot();
    assert_ne!(torn[0], day2[0], "`people` points at the new version");
    assert_eq!(torn[1], day2[1], "`names` does not yet");
    write_people("1;anna\n1;anna\n");
    let failing = run();
    assert_eq!(failing.status.code(), Some(3), "{}", describe(&failing));
    let repaired = snapshot();
    assert_eq!(repaired[0], torn[0]);
    assert_ne!(
        repaired[1], day2[1],
        "`names` completed from the killed run"
    );
    // Three runs published: the current and the previous version stay.
    assert_eq!(all_versions().map(|v| v.len()), [2, 2]);

    // The store fails as `names` is published: `people` points at the new
    // version, `names` still at its current one, whose files stay whole;
    // the version `names` was to point at is kept for the next run.
    write_people("1;anna\n2;luca\n5;ugo\n");
    let mut command = crate::common::civica_command(dir.path(), &["run", "pipeline.yaml"]);
    command.env("CIVICA_FAIL_AT", "publishing:1");
    let failed = server.run(command, SECRET_KEY);
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    let torn = snapshot();
    assert_ne!(torn[0], repaired[0]);
    assert_eq!(torn[1], repaired[1]);
    assert_eq!(all_versions().map(|v| v.len()), [2, 3]);
    write_people("1;anna\n1;anna\n");
    let failing = run();
    assert_eq!(failing.status.code(), Some(3), "{}", describe(&failing));
    let completed = snapshot();
    assert_eq!(completed[0], torn[0]);
    assert_ne!(completed[1], repaired[1], "`names` completed");
    assert_eq!(all_versions().map(|v| v.len()), [2, 2]);
}

/// Readers follow an output's `_CURRENT` pointer: pyarrow through the S3
/// API, DuckDB with the README's recipe (on the bucket's folder: DuckDB's
/// S3 extension is not installable offline), and civica itself when a
/// pipeline reads the output as a source. Partitions an
/// `overwrite_partition` run does not write are carried into its version.
#[test]
fn readers_follow_the_pointer_to_the_current_version() {
    let server = S3Server::start();
    let lake = server.bucket_dir("lake");
    let dir = tempfile::tempdir().expect("temp dir");
    let write_calls = |day: &str, calls: usize| write_calls(&lake, day, calls);
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        "name: calls\nruns: s3://lake/_runs/\nsources:\n  calls:\n    path: s3://lake/raw/calls/\n    format: { type: csv, delimiter: \";\" }\ntransforms:\n  - { name: today, sql: today.sql }\noutputs:\n  - { table: today, path: s3://lake/out/today/ }\n  - { table: today, path: s3://lake/out/daily/, mode: overwrite_partition, partition_by: [day] }\n  - { table: today, path: s3://lake/out/log/, mode: append }\n",
    )
    .expect("pipeline");
    std::fs::write(
        dir.path().join("today.sql"),
        "SELECT call_id, day FROM calls WHERE day = DATE '{{ ds }}' ORDER BY call_id",
    )
    .expect("sql");
    let run_day = |day: &str| {
        let out = server.run(
            crate::common::civica_command(dir.path(), &["run", "pipeline.yaml", "--date", day]),
            SECRET_KEY,
        );
        assert!(out.status.success(), "{}", describe(&out));
    };
    for (day, calls) in [("2026-11-19", 4), ("2026-11-20", 3), ("2026-11-21", 2)] {
        write_calls(day, calls);
        run_day(day);
    }

    // pyarrow through the S3 API: the pointer, then the version it names.
    let script = format!(
        r#"
import pyarrow.dataset as ds
import pyarrow.fs as fs
s3 = fs.S3FileSystem(access_key="{ACCESS_KEY}", secret_key="{SECRET_KEY}", region="us-east-1",
                     endpoint_override="http://127.0.0.1:{port}", scheme="http")
def current(folder, **options):
    with s3.open_input_stream(folder + "_CURRENT") as f:
        version = folder + f.read().decode().strip()
    selector = fs.FileSelector(version, recursive=True)
    files = [i.path for i in s3.get_file_info(selector) if i.path.endswith(".parquet")]
    return ds.dataset(files, filesystem=s3, format="parquet", partition_base_dir=version, **options)
today = current("lake/out/today/").to_table()
daily = current("lake/out/daily/", partitioning="hive").to_table()
log = current("lake/out/log/")
print(len(log.files), log.count_rows())
print(today.num_rows, sorted(daily.group_by("day").aggregate([("call_id", "count")]).to_pylist(), key=lambda r: str(r["day"])))
"#,
        port = server.port
    );
    assert_eq!(
        crate::common::python(&script).trim(),
        "3 9\n2 [{'day': '2026-11-19', 'call_id_count': 4}, {'day': '2026-11-20', 'call_id_count': 3}, {'day': '2026-11-21', 'call_id_count': 2}]"
    );

    // DuckDB, with the README's recipe on the bucket's files.
    let out = lake.join("out").display().to_string();
    let recipe = format!(
        r#"
import duckdb
con = duckdb.connect()
con.execute("SET VARIABLE daily = '{out}/daily/' || (SELECT content FROM read_text('{out}/daily/_CURRENT')) || '**/*.parquet'")
print(con.sql("SELECT day::VARCHAR, count(*) FROM read_parquet(getvariable('daily'), hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall())
"#
    );
    assert_eq!(
        crate::common::python(&recipe).trim(),
        "[('2026-11-19', 4), ('2026-11-20', 3), ('2026-11-21', 2)]"
    );

    // civica reads the output as a source at its current version only,
    // though the bucket holds the previous one too.
    assert_eq!(versions(&lake.join("out/today")).len(), 2);
    std::fs::write(
        dir.path().join("downstream.yaml"),
        "name: downstream\nsources:\n  today:\n    path: s3://lake/out/today/\n    format: { type: parquet }\ntransforms:\n  - { name: counted, sql: n.sql }\noutputs:\n  - { table: counted, path: s3://lake/out/n/ }\n",
    )
    .expect("downstream");
    std::fs::write(
        dir.path().join("n.sql"),
        "SELECT count(*) AS calls FROM today",
    )
    .expect("sql");
    let downstream = server.run(
        crate::common::civica_command(dir.path(), &["run", "downstream.yaml"]),
        SECRET_KEY,
    );
    assert!(downstream.status.success(), "{}", describe(&downstream));
    let n = read_parquet(&current_version(&lake.join("out/n")));
    let calls = n[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .expect("count")
        .value(0);
    assert_eq!(calls, 2, "the current version's rows only");
}

/// Two runs at once on a bucket: the lock object is taken with a
/// create-if-absent write (`If-None-Match: *`), so the second is skipped
/// (exit 75); once the first is dead, the next run breaks its lock.
#[test]
fn a_second_run_on_a_bucket_is_skipped_by_the_lock() {
    let server = S3Server::start();
    let lake = server.bucket_dir("lake");
    std::fs::create_dir_all(lake.join("raw/people")).expect("mkdir");
    std::fs::write(lake.join("raw/people/people.csv"), "id;name\n1;anna\n").expect("people");
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = "name: locked\nruns: s3://lake/out/_runs/\nsources:\n  people:\n    path: s3://lake/raw/people/\n    format: { type: csv, delimiter: \";\" }\noutputs:\n  - { table: people, path: s3://lake/out/people/ }\n";
    std::fs::write(dir.path().join("pipeline.yaml"), yaml).expect("pipeline");
    let command = || crate::common::civica_command(dir.path(), &["run", "pipeline.yaml"]);
    let first =
        crate::publish::pause_command_at(server.configure(command(), SECRET_KEY), "writing:people");
    assert!(
        lake.join("out/_runs/lock/locked.json").exists(),
        "the lock object"
    );
    let second = server.run(command(), SECRET_KEY);
    assert_eq!(second.status.code(), Some(75), "{}", describe(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr)
            .contains("holds the lock `s3://lake/out/_runs/lock/locked.json`"),
        "{}",
        describe(&second)
    );
    crate::publish::kill(first);
    let next = server.run(command(), SECRET_KEY);
    assert!(next.status.success(), "{}", describe(&next));
    assert!(
        String::from_utf8_lossy(&next.stderr).contains("broke the lock of a dead run"),
        "{}",
        describe(&next)
    );
    assert!(
        !lake.join("out/_runs/lock/locked.json").exists(),
        "released"
    );
}

/// An incremental source on a bucket: a file touched by a re-upload of the
/// same bytes is not read again, and a file rewritten with
/// `on_changed_input: reread` replaces the day in the `append` output's
/// next version instead of adding to it.
#[test]
fn incremental_reads_on_a_bucket_are_never_doubled() {
    let server = S3Server::start();
    let lake = server.bucket_dir("lake");
    let dir = tempfile::tempdir().expect("temp dir");
    let write_calls = |day: &str, calls: usize| write_calls(&lake, day, calls);
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        "name: calls\nruns: s3://lake/_runs/\nsources:\n  calls:\n    path: s3://lake/raw/calls/\n    format: { type: csv, delimiter: \";\" }\n    incremental: true\n    on_changed_input: reread\ntransforms:\n  - { name: daily, sql: daily.sql }\noutputs:\n  - { table: daily, path: s3://lake/out/daily/, mode: append }\n",
    )
    .expect("pipeline");
    std::fs::write(
        dir.path().join("daily.sql"),
        "SELECT day, count(*) AS calls FROM calls GROUP BY day ORDER BY day",
    )
    .expect("sql");
    let run = || {
        let out = server.run(
            crate::common::civica_command(dir.path(), &["run", "pipeline.yaml"]),
            SECRET_KEY,
        );
        assert!(out.status.success(), "{}", describe(&out));
    };
    let days = || {
        let folder = current_version(&lake.join("out/daily"));
        let mut parts: Vec<String> = std::fs::read_dir(&folder)
            .expect("version")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        parts.sort();
        let rows = crate::common::query(
            &[("d", &folder)],
            "SELECT CAST(day AS VARCHAR) AS day, CAST(calls AS VARCHAR) AS calls FROM d ORDER BY day",
        );
        let pairs: Vec<String> = rows
            .iter()
            .flat_map(|b| {
                crate::common::strings(b, 0)
                    .into_iter()
                    .zip(crate::common::strings(b, 1))
                    .map(|(d, c)| format!("{d}={c}"))
            })
            .collect();
        (pairs, parts.len())
    };
    write_calls("2026-11-19", 3);
    run();
    write_calls("2026-11-20", 2);
    run();
    assert_eq!(
        days(),
        (vec!["2026-11-19=3".into(), "2026-11-20=2".into()], 2)
    );
    // The same bytes uploaded again: not read.
    write_calls("2026-11-20", 2);
    run();
    assert_eq!(
        days(),
        (vec!["2026-11-19=3".into(), "2026-11-20=2".into()], 2)
    );
    // Other bytes: the run that read it is replaced.
    write_calls("2026-11-19", 5);
    run();
    assert_eq!(
        days(),
        (vec!["2026-11-19=5".into(), "2026-11-20=2".into()], 2)
    );
}

/// A pipeline reading another's `append` output incrementally (at the
/// version its `_CURRENT` names): when the upstream run replaces a part
/// (its input changed and was read again), the downstream run stops by
/// default, naming the part gone, and with `on_changed_input: reread`
/// replaces what it had appended from it, so the day is not counted twice.
#[test]
fn a_part_replaced_upstream_is_not_counted_twice_downstream() {
    let server = S3Server::start();
    let lake = server.bucket_dir("lake");
    let dir = tempfile::tempdir().expect("temp dir");
    let write_calls = |day: &str, calls: usize| write_calls(&lake, day, calls);
    std::fs::write(
        dir.path().join("upstream.yaml"),
        "name: upstream\nruns: s3://lake/_runs/\nsources:\n  calls:\n    path: s3://lake/raw/calls/\n    format: { type: csv, delimiter: \";\" }\n    incremental: true\n    on_changed_input: reread\ntransforms:\n  - { name: daily, sql: daily.sql }\noutputs:\n  - { table: daily, path: s3://lake/out/daily/, mode: append }\n",
    )
    .expect("pipeline");
    std::fs::write(
        dir.path().join("daily.sql"),
        "SELECT day, count(*) AS calls FROM calls GROUP BY day",
    )
    .expect("sql");
    let downstream = |on_changed: &str| {
        format!(
            "name: downstream\nruns: s3://lake/_runs/\nsources:\n  daily:\n    path: s3://lake/out/daily/\n    format: {{ type: parquet }}\n    incremental: true\n{on_changed}transforms:\n  - {{ name: copied, sql: copied.sql }}\noutputs:\n  - {{ table: copied, path: s3://lake/out/copied/, mode: append }}\n"
        )
    };
    std::fs::write(
        dir.path().join("copied.sql"),
        "SELECT day, calls FROM daily",
    )
    .expect("sql");
    let run = |file: &str| {
        server.run(
            crate::common::civica_command(dir.path(), &["run", file]),
            SECRET_KEY,
        )
    };
    let copied = || {
        let rows = crate::common::query(
            &[("c", &current_version(&lake.join("out/copied")))],
            "SELECT CAST(day AS VARCHAR) AS d, CAST(sum(calls) AS VARCHAR) AS n FROM c GROUP BY day ORDER BY d",
        );
        rows.iter()
            .flat_map(|b| {
                crate::common::strings(b, 0)
                    .into_iter()
                    .zip(crate::common::strings(b, 1))
                    .map(|(d, c)| format!("{d}={c}"))
            })
            .collect::<Vec<_>>()
    };
    std::fs::write(dir.path().join("downstream.yaml"), downstream("")).expect("pipeline");
    write_calls("2026-11-19", 3);
    assert!(run("upstream.yaml").status.success());
    let first = run("downstream.yaml");
    assert!(first.status.success(), "{}", describe(&first));
    assert_eq!(copied(), ["2026-11-19=3"]);

    write_calls("2026-11-19", 5);
    assert!(run("upstream.yaml").status.success());
    let stopped = run("downstream.yaml");
    assert_eq!(stopped.status.code(), Some(1), "{}", describe(&stopped));
    assert!(
        String::from_utf8_lossy(&stopped.stderr).contains("is not in the current version of"),
        "{}",
        describe(&stopped)
    );
    assert_eq!(copied(), ["2026-11-19=3"]);

    std::fs::write(
        dir.path().join("downstream.yaml"),
        downstream("    on_changed_input: reread\n"),
    )
    .expect("pipeline");
    let replaced = run("downstream.yaml");
    assert!(replaced.status.success(), "{}", describe(&replaced));
    assert_eq!(copied(), ["2026-11-19=5"], "the day was counted twice");
}

/// Erasure on an object store: after the next run, the citizen is in no
/// version the bucket keeps (the current one, the previous one the pointer
/// left), no appended part, no quarantine, no check history, no manifest.
#[test]
fn an_erased_citizen_leaves_every_version_kept_in_a_bucket() {
    use crate::erasure::{assert_erased, plant_citizen, write_erasure_pipeline, written_folders};
    let server = S3Server::start();
    let lake = server.bucket_dir("lake");
    write_demo(&lake, 300, 14, 5);
    let dir = tempfile::tempdir().expect("temp dir");
    let pipeline = write_erasure_pipeline(dir.path());
    let (id, cf) = plant_citizen(&lake);
    let run = || {
        let command = crate::common::keyed_command(
            dir.path(),
            &[
                "run",
                pipeline.to_str().expect("utf-8"),
                "--var",
                "lake=s3://lake",
                "--var",
                &format!("ds={DS}"),
            ],
        );
        let out = server.run(command, SECRET_KEY);
        assert!(out.status.success(), "{}", describe(&out));
    };
    run();
    run();
    // Two versions of `segments` are kept: both hold the citizen.
    assert_eq!(versions(&lake.join("marts/segments")).len(), 2);
    let before: Vec<_> = written_folders(&lake)
        .iter()
        .flat_map(|f| written_values(f))
        .collect();
    assert!(before.contains(&id), "no citizen {id} before the erasure");
    std::fs::write(lake.join("privacy/erasure.txt"), format!("{cf}\n")).expect("list");
    run();
    assert_erased(&lake, &id, &cf);
}
