//! Hive-partitioned outputs (`partition_by`): one folder per value, read
//! back by DuckDB; `overwrite_partition` replaces only the partitions a run
//! writes, `overwrite` all of them, `append` adds a file to each.

use std::path::Path;

use crate::common::{civica, describe, files_under, python};

/// Calls per day in one pipeline, written twice: by day with
/// `overwrite_partition`, and by day and queue with `append`.
fn pipeline(daily_mode: &str) -> String {
    format!(
        "name: calls_by_day\nruns: out/_runs/\nsources:\n  calls:\n    path: raw/calls/\n    format: {{ type: csv, delimiter: \";\" }}\ntransforms:\n  - {{ name: daily, sql: daily.sql }}\noutputs:\n  - {{ table: daily, path: out/daily/, mode: {daily_mode}, partition_by: [day] }}\n  - {{ table: daily, path: out/by_queue/, mode: append, partition_by: [day, queue] }}\n"
    )
}

fn setup(dir: &Path, daily_mode: &str) {
    std::fs::write(dir.join("pipeline.yaml"), pipeline(daily_mode)).expect("pipeline");
    std::fs::write(
        dir.join("daily.sql"),
        "SELECT day, queue, call_id FROM calls WHERE day = DATE '{{ ds }}' ORDER BY call_id",
    )
    .expect("sql");
}

/// Writes one day's calls: `queues` in turn, `calls` of them.
fn write_day(dir: &Path, day: &str, calls: usize, queues: &[&str]) {
    let mut text = "call_id;day;queue\n".to_string();
    for i in 0..calls {
        text.push_str(&format!("{i};{day};{}\n", queues[i % queues.len()]));
    }
    std::fs::create_dir_all(dir.join("raw/calls")).expect("mkdir");
    std::fs::write(dir.join(format!("raw/calls/{day}.csv")), text).expect("day");
}

fn run_day(dir: &Path, day: &str) -> std::process::Output {
    civica(dir, &["run", "pipeline.yaml", "--date", day])
}

/// (partition values…, rows) of an output folder, read by DuckDB with Hive
/// partitioning.
fn duckdb_counts(folder: &Path, columns: &str) -> String {
    python(&format!(
        "import duckdb\nprint(duckdb.sql(\"SELECT {columns}, count(*) FROM read_parquet('{}/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL\").fetchall())",
        folder.display()
    ))
}

/// Every file below a folder, relative to it, sorted.
fn files(folder: &Path) -> Vec<String> {
    files_under(folder)
        .iter()
        .map(|path| {
            let relative = path.strip_prefix(folder).expect("below");
            relative.to_string_lossy().into_owned()
        })
        .collect()
}

#[test]
fn overwrite_partition_replaces_only_the_days_a_run_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    setup(root, "overwrite_partition");
    write_day(root, "2026-11-20", 3, &["anagrafe", "mobilità"]);
    write_day(root, "2026-11-21", 2, &["tributi"]);

    let first = run_day(root, "2026-11-20");
    assert!(first.status.success(), "{}", describe(&first));
    let second = run_day(root, "2026-11-21");
    assert!(second.status.success(), "{}", describe(&second));
    let daily = root.join("out/daily");
    assert_eq!(
        files(&daily),
        [
            "day=2026-11-20/part-00000.parquet",
            "day=2026-11-21/part-00000.parquet"
        ]
    );
    let day21 = std::fs::read(daily.join("day=2026-11-21/part-00000.parquet")).expect("day 21");

    // The 20th is rewritten with more calls: its partition is replaced, the
    // 21st is left byte for byte.
    write_day(root, "2026-11-20", 5, &["anagrafe", "mobilità"]);
    let rerun = run_day(root, "2026-11-20");
    assert!(rerun.status.success(), "{}", describe(&rerun));
    assert_eq!(
        duckdb_counts(&daily, "day::VARCHAR"),
        "[('2026-11-20', 5), ('2026-11-21', 2)]\n"
    );
    assert_eq!(
        std::fs::read(daily.join("day=2026-11-21/part-00000.parquet")).expect("day 21"),
        day21
    );
    // The partition column is in the folder names, not in the files.
    let columns = python(&format!(
        "import pyarrow.parquet as pq\nprint(pq.read_schema('{}/day=2026-11-20/part-00000.parquet').names)",
        daily.display()
    ));
    assert_eq!(columns, "['queue', 'call_id']\n");

    // `append` by day and queue: a file per run in each partition it
    // wrote, the non-ASCII queue name kept as it is.
    let by_queue = root.join("out/by_queue");
    assert_eq!(
        duckdb_counts(&by_queue, "day::VARCHAR, queue"),
        "[('2026-11-20', 'anagrafe', 5), ('2026-11-20', 'mobilità', 3), ('2026-11-21', 'tributi', 2)]\n"
    );
    assert_eq!(
        files(&by_queue.join("day=2026-11-20/queue=anagrafe")).len(),
        2,
        "two runs wrote the 20th"
    );

    // The manifest lists each partition's file.
    let manifests = crate::common::manifests(&root.join("out/_runs"));
    let last = &manifests.last().expect("a run")["outputs"];
    assert_eq!(
        last[0]["files"],
        serde_json::json!([format!(
            "{}/day=2026-11-20/part-00000.parquet",
            daily.display()
        )])
    );
    assert_eq!(last[1]["files"].as_array().expect("files").len(), 2);

    // `overwrite` with partitions replaces every partition.
    setup(root, "overwrite");
    let overwrite = run_day(root, "2026-11-21");
    assert!(overwrite.status.success(), "{}", describe(&overwrite));
    assert_eq!(files(&daily), ["day=2026-11-21/part-00000.parquet"]);
}

#[test]
fn a_value_that_cannot_name_a_folder_fails_the_run_and_publishes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    setup(root, "overwrite_partition");
    write_day(root, "2026-11-20", 2, &["anagrafe"]);
    let first = run_day(root, "2026-11-20");
    assert!(first.status.success(), "{}", describe(&first));
    let before = files(&root.join("out"));

    write_day(root, "2026-11-20", 2, &["anagrafe", "uffici/tecnici"]);
    let failed = run_day(root, "2026-11-20");
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("cannot partition `daily` by `queue`: the value `uffici/tecnici` has `/`"),
        "{stderr}"
    );
    // Nothing staged is left and nothing published changed but the run
    // records.
    let after: Vec<String> = files(&root.join("out"))
        .into_iter()
        .filter(|f| !f.starts_with("_runs"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|f| !f.starts_with("_runs"))
        .collect();
    assert_eq!(after, before);
    assert!(
        !std::fs::read_dir(root.join("out"))
            .expect("out")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains("civica-staging")),
        "the failed run's staging folders are removed"
    );
}

#[test]
fn partition_mistakes_are_reported_at_their_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    setup(root, "overwrite_partition");
    write_day(root, "2026-11-20", 2, &["anagrafe"]);
    let yaml = "name: calls_by_day\nsources:\n  calls:\n    path: raw/calls/\n    format: { type: csv, delimiter: \";\" }\noutputs:\n  - { table: calls, path: out/a/, mode: overwrite_partition }\n  - { table: calls, path: out/b/, partition_by: [day, nope] }\n  - { table: calls, path: out/c/, partition_by: [day, day] }\n  - { table: calls, path: out/d/, partition_by: [day, queue, call_id] }\n  - { table: calls, path: out/d/day=1/ }\n";
    std::fs::write(root.join("pipeline.yaml"), yaml).expect("pipeline");
    let out = civica(root, &["validate", "pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "pipeline.yaml:7:41: `mode: overwrite_partition` needs `partition_by`",
        "pipeline.yaml:8:49: `partition_by` names `nope`, which is not a column of `calls` (columns: call_id, day, queue)",
        "pipeline.yaml:9:49: `partition_by` names `day` twice",
        "pipeline.yaml:10:49: `partition_by` takes every column of `calls`",
        "pipeline.yaml:11:27: output path",
        "out/d/day=1/` and the output path `",
        "are nested: publishing one would replace the other's files",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
}

#[test]
fn dated_output_folders_share_one_runs_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::write(
        root.join("pipeline.yaml"),
        "name: dated\nsources:\n  calls:\n    path: raw/calls/\n    format: { type: csv, delimiter: \";\" }\noutputs:\n  - { table: calls, path: \"out/{{ ds }}/calls/\" }\n",
    )
    .expect("pipeline");
    write_day(root, "2026-11-20", 2, &["anagrafe"]);
    for day in ["2026-11-20", "2026-11-21"] {
        let out = run_day(root, day);
        assert!(out.status.success(), "{}", describe(&out));
    }
    assert_eq!(crate::common::manifests(&root.join("out/_runs")).len(), 2);
    assert!(!root.join("out/2026-11-20/_runs").exists());
}

/// A run killed after publishing its first output (partitioned) and
/// before its second is completed by the next run: the second output gets
/// the killed run's files too.
#[test]
fn a_partitioned_publish_killed_half_way_is_completed_by_the_next_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    setup(root, "overwrite_partition");
    write_day(root, "2026-11-20", 3, &["anagrafe", "tributi"]);
    let first = run_day(root, "2026-11-20");
    assert!(first.status.success(), "{}", describe(&first));
    let anagrafe = root.join("out/by_queue/day=2026-11-20/queue=anagrafe");
    assert_eq!(files(&anagrafe).len(), 1);

    write_day(root, "2026-11-20", 5, &["anagrafe", "tributi"]);
    crate::publish::kill_command_at(
        crate::common::civica_command(root, &["run", "pipeline.yaml", "--date", "2026-11-20"]),
        "publishing:1",
    );
    assert_eq!(
        duckdb_counts(&root.join("out/daily"), "day::VARCHAR"),
        "[('2026-11-20', 5)]\n",
        "the first output was published"
    );
    assert_eq!(files(&anagrafe).len(), 1, "the second was not");

    let next = run_day(root, "2026-11-20");
    assert!(next.status.success(), "{}", describe(&next));
    assert!(
        String::from_utf8_lossy(&next.stderr).contains("completed the publish of run"),
        "{}",
        describe(&next)
    );
    // The first run's file, the killed run's, and the next run's.
    assert_eq!(files(&anagrafe).len(), 3);
    assert_eq!(
        duckdb_counts(&root.join("out/by_queue"), "queue"),
        "[('anagrafe', 8), ('tributi', 5)]\n"
    );
    assert!(
        !std::fs::read_dir(root.join("out"))
            .expect("out")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains("civica-staging")),
        "no staging folder left"
    );
}

/// A lake below a folder with an accented name: the run records, the
/// outputs and their partition folders land where the pipeline says.
#[test]
fn an_accented_folder_name_is_kept_for_outputs_and_run_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("città");
    std::fs::create_dir_all(&root).expect("mkdir");
    setup(&root, "overwrite_partition");
    write_day(&root, "2026-11-20", 2, &["mobilità"]);
    let out = run_day(&root, "2026-11-20");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(crate::common::manifests(&root.join("out/_runs")).len(), 1);
    assert_eq!(
        duckdb_counts(&root.join("out/by_queue"), "queue"),
        "[('mobilità', 2)]\n"
    );
    let siblings: Vec<String> = std::fs::read_dir(dir.path())
        .expect("temp dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(siblings, ["città"], "nothing written under another name");
}
