//! The README's recipes as written: every pipeline snippet validates
//! against the SQL files the repository ships, and every DuckDB, pyarrow
//! and Polars one-liner runs on a lake the quickstart (and the partition
//! example) wrote.

use std::path::Path;

use serde_json::Value;

use crate::common::{DS, describe, root, write_demo};

/// The blocks of a kind (`yaml`, `sh`) in the README, with their line.
fn readme_blocks(kind: &str) -> Vec<(usize, String)> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (at, line) in readme.lines().enumerate() {
        match &mut open {
            None if line.trim_end() == format!("```{kind}") => open = Some((at + 1, String::new())),
            None => {}
            Some(_) if line.starts_with("```") => blocks.extend(open.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    blocks
}

/// The quickstart without its identity and segment steps, and what refers
/// to them (checks of its tables, `profiling`), for a snippet that
/// replaces its transforms.
fn without_segment(pipeline: &mut Value) {
    let map = pipeline.as_object_mut().expect("map");
    for section in ["identity", "segment", "checks", "profiling"] {
        map.remove(section);
    }
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

/// A snippet made a whole pipeline: a pipeline as it is; a `format:` goes
/// to a source of its own; any other section goes into the quickstart
/// pipeline (`sources` merged by name, `transforms` added, the rest
/// replaced), so that it is checked with everything around it.
fn whole_pipeline(snippet: &Value, log: &Path) -> Value {
    if snippet.get("name").is_some() {
        return snippet.clone();
    }
    let mut pipeline = yaml(
        &std::fs::read_to_string(root().join("pipelines/citizen_segments.yaml"))
            .expect("quickstart"),
    );
    let Value::Object(sections) = snippet else {
        panic!("a snippet is a mapping: {snippet}");
    };
    for (key, value) in sections {
        match key.as_str() {
            "format" => {
                pipeline["sources"] = serde_json::json!({
                    "web": { "path": log.display().to_string(), "format": value }
                });
                pipeline["transforms"] = serde_json::json!([]);
                without_segment(&mut pipeline);
                pipeline["outputs"] = serde_json::json!([{ "table": "web", "path": "out/web/" }]);
            }
            "sources" => {
                for (name, source) in value.as_object().expect("sources") {
                    pipeline["sources"][name] = source.clone();
                }
            }
            "transforms" => {
                let steps = pipeline["transforms"].as_array_mut().expect("transforms");
                steps.extend(value.as_array().expect("a list").iter().cloned());
            }
            _ => pipeline[key] = value.clone(),
        }
    }
    pipeline
}

/// Each ```yaml block of the README, made a whole pipeline in a
/// `pipelines/` folder beside the repository's `sql/`, passes `civica
/// validate` on the demo lake: keys, formats, SQL files and their queries
/// against the real schemas.
#[test]
fn every_pipeline_snippet_in_the_readme_validates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    write_demo(&lake, 200, 3, 7);
    // The erasure list the README's `erasure` snippet names, as a
    // municipality would keep it.
    std::fs::create_dir_all(lake.join("privacy")).expect("mkdir");
    std::fs::write(
        lake.join("privacy/erasure.txt"),
        "# one codice fiscale per line\n",
    )
    .expect("erasure list");
    std::os::unix::fs::symlink(root().join("sql"), dir.path().join("sql")).expect("sql link");
    std::fs::create_dir(dir.path().join("pipelines")).expect("mkdir");
    // One line as the README's custom `pattern` writes it.
    let log = dir.path().join("pattern.log");
    std::fs::write(
        &log,
        "93.44.1.1 - - [20/Nov/2026:09:00:00 +0100] \"GET / HTTP/1.1\" 200 12 \"-\" \"x\" rt=0.012\n",
    )
    .expect("log");
    let blocks = readme_blocks("yaml");
    assert!(blocks.len() >= 7, "{} yaml blocks", blocks.len());
    for (line, text) in blocks {
        let pipeline = whole_pipeline(&yaml(&text), &log);
        let file = dir.path().join(format!("pipelines/readme_{line}.yaml"));
        // JSON is YAML.
        std::fs::write(&file, pipeline.to_string()).expect("pipeline");
        // A snippet with pseudonyms needs a key, as the README says.
        let out = crate::common::keyed(
            dir.path(),
            &[
                "validate",
                file.to_str().expect("utf-8"),
                "--var",
                &format!("lake={}", lake.display()),
                "--var",
                &format!("ds={DS}"),
            ],
        );
        assert!(
            out.status.success(),
            "README.md:{line}: the snippet does not validate:\n{text}\n{}",
            describe(&out)
        );
    }
}

/// Each `duckdb -c` and `python3 -c` line of the README's ```sh blocks
/// runs as pasted, in a folder whose `lake/` the quickstart and the
/// partition example wrote, with the test command's `duckdb` and Python.
#[test]
fn every_reader_one_liner_in_the_readme_runs_as_pasted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    write_demo(&lake, 300, 14, 5);
    for pipeline in [
        root().join("pipelines/citizen_segments.yaml"),
        partition_example(dir.path()),
    ] {
        let out = crate::common::keyed(
            dir.path(),
            &[
                "run",
                pipeline.to_str().expect("utf-8"),
                "--var",
                "lake=lake",
                "--var",
                &format!("ds={DS}"),
            ],
        );
        assert!(out.status.success(), "{}", describe(&out));
    }
    let lines: Vec<(usize, String)> = readme_blocks("sh")
        .into_iter()
        .flat_map(|(at, text)| {
            text.lines()
                .enumerate()
                .map(|(i, line)| (at + i + 1, line.to_string()))
                .collect::<Vec<_>>()
        })
        .filter(|(_, line)| {
            (line.starts_with("duckdb -c ") || line.starts_with("python3 -c "))
                && line.contains("'lake/")
        })
        .collect();
    assert!(lines.len() >= 6, "{lines:?}");
    for (at, line) in lines {
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .current_dir(dir.path())
            .output()
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !stdout.trim().is_empty(),
            "README.md:{at}: {line}\n{}",
            describe(&out)
        );
    }
}

/// The README's partition example as a pipeline of its own in `dir`.
fn partition_example(dir: &Path) -> std::path::PathBuf {
    let (_, text) = readme_blocks("yaml")
        .into_iter()
        .find(|(_, text)| text.contains("partition_by: [day]"))
        .expect("the partition example");
    let mut pipeline = yaml(
        &std::fs::read_to_string(root().join("pipelines/citizen_segments.yaml"))
            .expect("quickstart"),
    );
    let snippet = yaml(&text);
    pipeline["name"] = Value::from("calls_by_day");
    pipeline["transforms"] = snippet["transforms"].clone();
    pipeline["outputs"] = snippet["outputs"].clone();
    without_segment(&mut pipeline);
    std::os::unix::fs::symlink(root().join("sql"), dir.join("sql")).expect("sql link");
    std::fs::create_dir_all(dir.join("pipelines")).expect("mkdir");
    let file = dir.join("pipelines/calls_by_day.yaml");
    std::fs::write(&file, pipeline.to_string()).expect("pipeline");
    file
}
