//! Retention: files of earlier runs older than an output's `retention`,
//! and manifests and check results older than the pipeline's, are
//! deleted after the next publish; newer ones stay.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::{DS, civica_command, describe, files_under};

fn run(dir: &Path) {
    let out = civica_command(dir, &["run", "pipeline.yaml", "--var", &format!("ds={DS}")])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
}

/// The files below `dir/out/<folder>` whose name ends with `ending`.
fn named(dir: &Path, folder: &str, ending: &str) -> Vec<String> {
    files_under(&dir.join("out").join(folder))
        .iter()
        .map(|p| p.display().to_string())
        .filter(|p| p.ends_with(ending))
        .collect()
}

#[test]
fn files_and_records_older_than_their_retention_are_deleted_after_the_next_publish() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    std::fs::write(
        dir.path().join("in/calls.csv"),
        "queue,calls\ntributi,4\nscuola,7\n",
    )
    .expect("csv");
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        "name: kept\nruns: out/_runs/\nretention: { manifests: 30d, checks: 30d }\nsources:\n  calls:\n    path: in/\n    format: { type: csv }\noutputs:\n  - { table: calls, path: out/calls/, mode: append, retention: 30d }\n  - { table: calls, path: out/forever/, mode: append }\nchecks:\n  calls:\n    - { type: row_count, min: 1 }\n",
    )
    .expect("pipeline");
    run(dir.path());
    // The first run's files, made 100 days old.
    let old = SystemTime::now() - Duration::from_secs(100 * 86_400);
    for file in files_under(&dir.path().join("out")) {
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(old))
            .expect("set the time");
    }
    run(dir.path());
    assert_eq!(
        named(dir.path(), "calls", ".parquet").len(),
        1,
        "the old part was not deleted"
    );
    assert_eq!(
        named(dir.path(), "forever", ".parquet").len(),
        2,
        "a part without retention went"
    );
    assert_eq!(
        named(dir.path(), "_runs", "_kept.json").len(),
        1,
        "the old manifest was not deleted"
    );
    assert_eq!(
        named(dir.path(), "_runs/checks", "_kept.parquet").len(),
        1,
        "the old check results were not deleted"
    );
    // What went is counted in the manifest of the run that deleted it.
    let manifest = crate::common::manifests(&dir.path().join("out/_runs"))
        .pop()
        .expect("manifest");
    assert_eq!(
        manifest["privacy"]["expired_files"], 3,
        "{}",
        manifest["privacy"]
    );

    std::fs::write(
        dir.path().join("pipeline.yaml"),
        "name: kept\nsources:\n  calls:\n    path: in/\n    format: { type: csv }\noutputs:\n  - { table: calls, path: out/calls/, retention: soon }\n",
    )
    .expect("pipeline");
    let out = civica_command(dir.path(), &["validate", "pipeline.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pipeline.yaml:7:50: `retention` must be a number followed by `m`, `h` or `d` (`90d`, `12h`), found `soon`"),
        "{}",
        describe(&out)
    );
}
