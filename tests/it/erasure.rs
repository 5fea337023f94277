//! Erasure (GDPR art. 17): a citizen on the erasure list is left out of
//! the sources as they are scanned, and after the next run's publish no
//! current or earlier version of any output, no quarantine table, no check
//! history, no manifest and no model holds them. The S3 case is in `s3.rs`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{DS, describe, keyed_command, manifests, root, write_demo, written_values};

/// The quickstart with an erasure list, a history of its segments
/// (appended each run) and the CRM's quarantine kept (appended), in
/// `dir/pipelines/erase.yaml` beside a link to the repository's `sql/`.
pub fn write_erasure_pipeline(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("pipelines/citizen_segments.yaml"))
        .expect("quickstart");
    let mut pipeline: Value = serde_saphyr::from_str(&text).expect("YAML");
    pipeline["erasure"] = serde_json::json!({
        "list": "{{ lake }}/privacy/erasure.txt",
        "sources": { "citizens": "codice_fiscale", "service_requests": "citizen_id" }
    });
    let outputs = pipeline["outputs"].as_array_mut().expect("outputs");
    outputs.push(serde_json::json!({
        "table": "segments", "path": "{{ lake }}/marts/segments_history/", "mode": "append"
    }));
    outputs.push(serde_json::json!({
        "table": "citizens__rejected", "path": "{{ lake }}/quarantine/citizens/", "mode": "append",
        "contains_personal_data": ["raw_line"], "purpose": "review of unreadable lines"
    }));
    std::fs::create_dir_all(dir.join("pipelines")).expect("mkdir");
    let _ = std::os::unix::fs::symlink(root().join("sql"), dir.join("sql"));
    let file = dir.join("pipelines/erase.yaml");
    std::fs::write(&file, pipeline.to_string()).expect("pipeline");
    file
}

/// Picks a citizen of the demo CRM under `lake` who did not object to
/// profiling (so they are in `segments`), plants a broken line holding
/// their codice fiscale (so the quarantine holds it too), and writes an
/// empty erasure list. Returns their `citizen_id` and codice fiscale.
pub fn plant_citizen(lake: &Path) -> (String, String) {
    let crm_file = lake.join("raw/crm/citizens/citizens.csv");
    let crm = std::fs::read_to_string(&crm_file).expect("CRM");
    let header: Vec<&str> = crm.lines().next().expect("header").split(';').collect();
    let objected = header
        .iter()
        .position(|c| *c == "objected_profiling")
        .expect("flag");
    let fields: Vec<&str> = crm
        .lines()
        .skip(1)
        .map(|line| line.split(';').collect::<Vec<_>>())
        .find(|fields| fields[objected] == "false")
        .expect("a citizen who did not object");
    let (id, cf) = (fields[0].to_string(), fields[1].to_string());
    std::fs::write(&crm_file, format!("{crm}{id};{cf};broken line\n")).expect("CRM");
    std::fs::create_dir_all(lake.join("privacy")).expect("mkdir");
    std::fs::write(
        lake.join("privacy/erasure.txt"),
        "# richieste di cancellazione\n",
    )
    .expect("list");
    (id, cf)
}

/// The folders below `lake` civica writes to.
pub fn written_folders(lake: &Path) -> [PathBuf; 3] {
    [
        lake.join("marts"),
        lake.join("_runs"),
        lake.join("quarantine"),
    ]
}

/// No value civica wrote under `lake` is the citizen's `id` or holds
/// their codice fiscale.
pub fn assert_erased(lake: &Path, id: &str, cf: &str) {
    for folder in written_folders(lake) {
        let values = written_values(&folder);
        assert!(
            !values.contains(id),
            "citizen {id} is still in {}",
            folder.display()
        );
        assert!(
            !values.iter().any(|v| v.contains(cf)),
            "their codice fiscale is still in {}",
            folder.display()
        );
    }
}

fn run(dir: &Path, pipeline: &Path, lake: &Path) {
    let out = keyed_command(
        dir,
        &[
            "run",
            pipeline.to_str().expect("utf-8"),
            "--var",
            &format!("lake={}", lake.display()),
            "--var",
            &format!("ds={DS}"),
        ],
    )
    .output()
    .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn an_erased_citizen_leaves_every_output_version_quarantine_and_record_after_the_next_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    write_demo(&lake, 300, 14, 5);
    let pipeline = write_erasure_pipeline(dir.path());
    let (id, cf) = plant_citizen(&lake);

    run(dir.path(), &pipeline, &lake);
    // The control: the citizen is in what the first run wrote.
    let before: Vec<_> = written_folders(&lake)
        .iter()
        .flat_map(|f| written_values(f))
        .collect();
    assert!(before.contains(&id), "the first run has no citizen {id}");
    assert!(
        before.iter().any(|v| v.contains(&cf)),
        "the quarantine has no line of theirs"
    );

    // The first run's part of the history, as if written a month ago.
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
    let first_part = std::fs::read_dir(lake.join("marts/segments_history"))
        .expect("history")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("the first run's part");
    std::fs::File::options()
        .write(true)
        .open(&first_part)
        .and_then(|f| f.set_modified(month_ago))
        .expect("backdate");
    let first_bytes = std::fs::read(&first_part).expect("part");

    std::fs::write(
        lake.join("privacy/erasure.txt"),
        format!("# ticket 42\n{}\n", cf.to_lowercase()),
    )
    .expect("list");
    run(dir.path(), &pipeline, &lake);
    assert_erased(&lake, &id, &cf);
    // Rewritten without the citizen, the part keeps its age: retention
    // counts from when it was written, not from the erasure.
    assert_ne!(std::fs::read(&first_part).expect("part"), first_bytes);
    let modified = std::fs::metadata(&first_part)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(
        modified, month_ago,
        "the erasure made {first_part:?} younger"
    );
    // Both runs' parts of the segment history are there, without them.
    let history = std::fs::read_dir(lake.join("marts/segments_history"))
        .expect("history")
        .count();
    assert_eq!(history, 2, "one part per run");
    let manifest = manifests(&lake.join("_runs")).pop().expect("a manifest");
    let erasure = &manifest["privacy"]["erasure"];
    assert_eq!(erasure["listed"], 1, "{erasure}");
    assert_eq!(erasure["rows_left_out"]["citizens"], 1, "{erasure}");
    assert!(
        erasure["files_rewritten"].as_u64().expect("a count") >= 2,
        "{erasure}"
    );
}

#[test]
fn an_unreadable_or_malformed_erasure_list_stops_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    write_demo(&lake, 60, 3, 5);
    let pipeline = write_erasure_pipeline(dir.path());
    let args = [
        "run".to_string(),
        pipeline.display().to_string(),
        "--var".to_string(),
        format!("lake={}", lake.display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = keyed_command(dir.path(), &args).output().expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the erasure list `"),
        "{}",
        describe(&out)
    );
    std::fs::create_dir_all(lake.join("privacy")).expect("mkdir");
    std::fs::write(
        lake.join("privacy/erasure.txt"),
        "RSSMRA85T10A562S\nRSSMRA85T10A562X\n",
    )
    .expect("list");
    let out = keyed_command(dir.path(), &args).output().expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2 of the erasure list"), "{stderr}");
    assert!(!stderr.contains("RSSMRA85T10A562X"), "{stderr}");
    assert!(!lake.join("marts").exists(), "a stopped run published");
}
