//! The run manifest: one JSON file per run, succeeded or failed, in the
//! pipeline's `runs` folder: what was read, what each step did, what was
//! published, with which versions, and how the run ended. It holds the
//! pipeline's variables and never the environment, where secrets live.

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::StepReport;
use super::error::RunFailure;
use crate::plan::{Plan, Step};
use crate::source::InputObject;
use crate::storage::object_in;

/// The linfa release civica is built with (checked against `Cargo.lock`
/// by a test).
pub const LINFA_VERSION: &str = "0.8.1";

/// What a run did so far: filled in as it goes, so that a failed run's
/// manifest shows the steps that finished.
#[derive(Debug, Default)]
pub struct Journal {
    /// Steps in the order they finished.
    pub steps: Vec<StepReport>,
    /// Outputs published (empty unless the publish succeeded).
    pub outputs: Vec<OutputRecord>,
    /// The segment step's figures, when it ran.
    pub segment: Option<Value>,
    /// The data-quality checks' results, when they ran.
    pub checks: Vec<crate::check::CheckResult>,
    /// Each line source's account of its lines.
    pub lines: Vec<(String, crate::source::lines::LineCounts)>,
}

/// A published output.
#[derive(Debug, Clone, Serialize)]
pub struct OutputRecord {
    /// The table.
    pub table: String,
    /// The object written, or the folder of a partitioned output.
    pub path: String,
    /// The files of a partitioned output, one per partition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Rows.
    pub rows: usize,
    /// Bytes of the Parquet files.
    pub bytes: u64,
}

/// A run's identity and clock.
#[derive(Debug, Clone)]
pub struct RunClock {
    /// `YYYYMMDDTHHMMSSZ-<pid>`: sorts by start time.
    pub run_id: String,
    /// When the run started.
    pub started: DateTime<Utc>,
}

impl RunClock {
    /// A run starting now.
    pub fn start() -> Self {
        let started = Utc::now();
        RunClock {
            run_id: crate::run_id::new_run_id(started),
            started,
        }
    }
}

/// The manifest document.
pub fn manifest(
    plan: &Plan,
    pipeline_hash: &str,
    clock: &RunClock,
    inputs: &[(String, Vec<InputObject>)],
    journal: &Journal,
    outcome: Result<(), &RunFailure>,
) -> Value {
    let finished = Utc::now();
    let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let steps: Vec<Value> = journal
        .steps
        .iter()
        .map(|s| {
            json!({
                "kind": s.kind,
                "table": s.name,
                "rows": s.rows,
                "elapsed_ms": s.elapsed.as_millis() as u64,
                "detail": s.detail,
            })
        })
        .collect();
    let inputs: Vec<Value> = inputs
        .iter()
        .flat_map(|(source, objects)| {
            objects.iter().map(move |o| {
                let mut entry = json!(o);
                entry["source"] = json!(source);
                entry
            })
        })
        .collect();
    json!({
        "manifest_version": 1,
        "run_id": clock.run_id,
        "pipeline": {
            "name": plan.name,
            "file": plan.file,
            "sha256": pipeline_hash,
        },
        "vars": plan.vars,
        "started_at": rfc3339(clock.started),
        "finished_at": rfc3339(finished),
        "elapsed_ms": (finished - clock.started).num_milliseconds(),
        "status": if outcome.is_ok() { "succeeded" } else { "failed" },
        "exit_code": outcome.err().map_or(0, RunFailure::exit_code),
        "error": outcome.err().map(|e| e.to_string()),
        "inputs": inputs,
        "steps": steps,
        // Every line accounted for: read = loaded + rejected + skipped.
        "lines": journal.lines.iter().map(|(source, counts)| json!({
            "source": source,
            "read": counts.read(),
            "loaded": counts.loaded(),
            "rejected": counts.rejected,
            "skipped": counts.skipped,
        })).collect::<Vec<_>>(),
        "outputs": journal.outputs,
        "segment": journal.segment,
        "checks": journal.checks,
        "versions": {
            "civica": env!("CARGO_PKG_VERSION"),
            "datafusion": datafusion::DATAFUSION_VERSION,
            "linfa": LINFA_VERSION,
        },
    })
}

/// The process's peak resident memory so far (`VmHWM` on Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// SHA-256 of the pipeline file as it was read and of each SQL step as run
/// (placeholders filled), in step order: the same hash means the same job.
pub fn content_hash(plan: &Plan) -> String {
    let mut hasher = Sha256::new();
    hasher.update(plan.text.as_bytes());
    for step in &plan.steps {
        if let Step::Sql(sql) = step {
            hasher.update(sql.file.as_bytes());
            hasher.update(sql.sql.text.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the manifest as `<run_id>_<pipeline>.json` in `folder`; returns
/// its location.
pub async fn write_manifest(
    ctx: &SessionContext,
    folder: &str,
    pipeline: &str,
    clock: &RunClock,
    document: &Value,
) -> Result<String, String> {
    let name = format!("{}_{pipeline}.json", clock.run_id);
    let body = serde_json::to_string_pretty(document).unwrap_or_default();
    // A password in an endpoint URL (`http://user:pass@host`) is never kept.
    let body = crate::storage::redact_credentials(&body).into_bytes();
    write_record(ctx, folder, &name, body).await
}

/// Writes the check results as Parquet to `checks/<run_id>_<pipeline>.parquet`
/// in `folder`; returns its location.
pub async fn write_check_results(
    ctx: &SessionContext,
    folder: &str,
    pipeline: &str,
    clock: &RunClock,
    results: &[crate::check::CheckResult],
) -> Result<String, String> {
    let batch = crate::check::results_batch(
        results,
        &clock.run_id,
        pipeline,
        clock.started.timestamp_millis(),
    )
    .map_err(|e| e.to_string())?;
    let body = crate::sink::parquet_bytes(&batch).map_err(|e| e.to_string())?;
    let name = format!("checks/{}_{pipeline}.parquet", clock.run_id);
    write_record(ctx, folder, &name, body).await
}

/// Writes one object of the run's record (`name` may hold a `/`) under
/// `folder`; returns its location.
async fn write_record(
    ctx: &SessionContext,
    folder: &str,
    name: &str,
    body: Vec<u8>,
) -> Result<String, String> {
    let location = format!("{folder}{name}");
    let (store, path) = object_in(ctx, folder, name).map_err(|e| e.to_string())?;
    store
        .put(&path, body.into())
        .await
        .map_err(|e| format!("cannot write `{location}`: {e}"))?;
    Ok(location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linfa_version_is_the_one_built() {
        let lock = include_str!("../../Cargo.lock");
        let entry = format!("name = \"linfa\"\nversion = \"{LINFA_VERSION}\"");
        assert!(lock.contains(&entry), "Cargo.lock has no {entry}");
    }
}
