//! The run manifest: one JSON file per run, succeeded or failed, in the
//! pipeline's `runs` folder: what was read, what each step did, what was
//! published, with which versions, and how the run ended. It holds the
//! pipeline's variables and never the environment, where secrets live.

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;
use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::RunFailure;
use super::events::{StepKind, StepReport};
use crate::plan::{Plan, Step};
use crate::segment::FitQuality;
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
    pub segment: Option<SegmentRecord>,
    /// The data-quality checks' results, when they ran.
    pub checks: Vec<crate::check::CheckResult>,
    /// Each line source's account of its lines.
    pub lines: Vec<(String, crate::source::lines::LineCounts)>,
    /// Published files the erasure rewrote, when it ran.
    pub erased_files: Option<usize>,
    /// Files and records deleted by their retention period.
    pub expired_files: usize,
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

/// The run manifest, as written to `<runs>/<run_id>_<pipeline>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The manifest's format: 1.
    pub manifest_version: u32,
    /// The run.
    pub run_id: String,
    /// The pipeline that ran.
    pub pipeline: PipelineRecord,
    /// Its variables (never the environment).
    pub vars: BTreeMap<String, String>,
    /// RFC 3339, milliseconds, UTC.
    pub started_at: String,
    /// RFC 3339, milliseconds, UTC.
    pub finished_at: String,
    /// Wall time of the run.
    pub elapsed_ms: i64,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    /// The process's exit code for this run.
    pub exit_code: u8,
    /// Why it failed.
    pub error: Option<String>,
    /// Every file read, by source.
    pub inputs: Vec<InputRecord>,
    /// Steps in the order they finished.
    pub steps: Vec<StepRecord>,
    /// Each line source's account: read = loaded + rejected + skipped.
    pub lines: Vec<LinesRecord>,
    /// Outputs published (none unless the publish succeeded).
    pub outputs: Vec<OutputRecord>,
    /// The segment step's figures, when it ran.
    pub segment: Option<SegmentRecord>,
    /// The data-quality checks' results.
    pub checks: Vec<crate::check::CheckResult>,
    /// What the run was given and took.
    pub resources: ResourcesRecord,
    /// The safeguards of personal data in force.
    pub privacy: PrivacyRecord,
    /// The versions of civica and of the engines it ran on.
    pub versions: Versions,
}

/// The pipeline in a manifest.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineRecord {
    /// Its `name`.
    pub name: String,
    /// Its file, as given.
    pub file: String,
    /// SHA-256 of the pipeline file and of each SQL step as run.
    pub sha256: String,
}

/// A file read, in a manifest.
#[derive(Debug, Clone, Serialize)]
pub struct InputRecord {
    /// The source that read it.
    pub source: String,
    /// The file.
    #[serde(flatten)]
    pub object: InputObject,
}

/// A step, in a manifest.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// What kind of step.
    pub kind: StepKind,
    /// The table it made or wrote.
    pub table: String,
    /// Rows, where known.
    pub rows: Option<usize>,
    /// Wall time.
    pub elapsed_ms: u64,
    /// Its facts in words, as the run's account shows them.
    pub detail: String,
}

/// A line source's account of its lines.
#[derive(Debug, Clone, Serialize)]
pub struct LinesRecord {
    /// The source.
    pub source: String,
    /// Lines read.
    pub read: u64,
    /// Rows loaded.
    pub loaded: u64,
    /// Lines quarantined.
    pub rejected: u64,
    /// Lines skipped on purpose (headers, blank lines).
    pub skipped: u64,
}

/// The segment step, in a manifest.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentRecord {
    /// The assignments table.
    pub table: String,
    /// Citizens segmented.
    pub rows: usize,
    /// The fit in words.
    pub summary: String,
    /// The figures of each `k` tried, when the model is kept.
    pub quality: Option<Vec<FitQuality>>,
    /// With `profiling`: its basis, and the citizens it left out.
    pub profiling: Option<ProfilingRecord>,
}

/// What `profiling` did in a run.
#[derive(Debug, Clone, Serialize)]
pub struct ProfilingRecord {
    /// `public_interest` or `consent`.
    pub basis: crate::pipeline::LegalBasis,
    /// Citizens left out: objected, or did not consent.
    pub not_profiled: usize,
}

/// The resources of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ResourcesRecord {
    /// DataFusion's memory limit.
    pub memory_limit_bytes: Option<usize>,
    /// Where spill files went.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Partitions per query.
    pub target_partitions: usize,
    /// The process's peak resident memory.
    pub peak_rss_bytes: Option<u64>,
}

/// The safeguards of personal data a run had.
#[derive(Debug, Clone, Serialize)]
pub struct PrivacyRecord {
    /// The id of the pseudonym key (a fingerprint; never the key).
    pub pseudonym_key_id: Option<String>,
    /// What the erasure did, when the pipeline has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erasure: Option<ErasureRecord>,
    /// Files and records of earlier runs deleted by their retention
    /// period.
    pub expired_files: usize,
}

/// What a run's erasure did (counts only: never whom).
#[derive(Debug, Clone, Serialize)]
pub struct ErasureRecord {
    /// Citizens on the list.
    pub listed: usize,
    /// Rows left out of each source.
    pub rows_left_out: BTreeMap<String, usize>,
    /// Published files (outputs, versions, check history, manifests)
    /// rewritten without them.
    pub files_rewritten: Option<usize>,
}

/// The versions a run was made with.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// civica.
    pub civica: &'static str,
    /// DataFusion.
    pub datafusion: &'static str,
    /// linfa.
    pub linfa: &'static str,
}

/// What a run was given, known before it ran, for its manifest.
#[derive(Debug)]
pub struct RunInputs<'a> {
    /// The hash of the pipeline and SQL as run ([`content_hash`]).
    pub pipeline_hash: &'a str,
    /// The files each source read.
    pub inputs: &'a [(String, Vec<InputObject>)],
    /// Its resources.
    pub resources: ResourcesRecord,
    /// Its privacy safeguards.
    pub privacy: PrivacyRecord,
}

/// The manifest of a run that ended with `outcome`.
pub fn manifest(
    plan: &Plan,
    clock: &RunClock,
    given: RunInputs<'_>,
    journal: &Journal,
    outcome: Result<(), &RunFailure>,
) -> Manifest {
    let RunInputs {
        pipeline_hash,
        inputs,
        resources,
        privacy,
    } = given;
    let finished = Utc::now();
    let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    Manifest {
        manifest_version: 1,
        run_id: clock.run_id.clone(),
        pipeline: PipelineRecord {
            name: plan.name.clone(),
            file: plan.file.clone(),
            sha256: pipeline_hash.to_string(),
        },
        vars: plan.vars.clone(),
        started_at: rfc3339(clock.started),
        finished_at: rfc3339(finished),
        elapsed_ms: (finished - clock.started).num_milliseconds(),
        status: if outcome.is_ok() {
            "succeeded"
        } else {
            "failed"
        },
        exit_code: outcome.err().map_or(0, RunFailure::exit_code),
        error: outcome.err().map(|e| crate::error::shown(&e.to_string())),
        inputs: inputs
            .iter()
            .flat_map(|(source, objects)| {
                objects.iter().map(move |object| InputRecord {
                    source: source.clone(),
                    object: object.clone(),
                })
            })
            .collect(),
        steps: journal
            .steps
            .iter()
            .map(|s| StepRecord {
                kind: s.kind,
                table: s.name.clone(),
                rows: s.rows,
                elapsed_ms: u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX),
                detail: s.detail.clone(),
            })
            .collect(),
        lines: journal
            .lines
            .iter()
            .map(|(source, counts)| LinesRecord {
                source: source.clone(),
                read: counts.read(),
                loaded: counts.loaded(),
                rejected: counts.rejected,
                skipped: counts.skipped,
            })
            .collect(),
        outputs: journal.outputs.clone(),
        segment: journal.segment.clone(),
        checks: journal.checks.clone(),
        resources,
        privacy,
        versions: Versions {
            civica: env!("CARGO_PKG_VERSION"),
            datafusion: datafusion::DATAFUSION_VERSION,
            linfa: LINFA_VERSION,
        },
    }
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
    hex::encode(hasher.finalize())
}

/// Why a record of the run (its manifest, its check results) was not
/// written. The run's outcome stands: the outputs are published or kept.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The runs folder's store cannot be reached.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The manifest cannot be written as JSON.
    #[error("cannot write the manifest as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The check results cannot be written as Parquet.
    #[error("cannot write the check results: {0}")]
    Parquet(String),
    /// Writing the object failed.
    #[error("cannot write `{location}`: {source}")]
    Write {
        /// Where.
        location: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
}

/// Writes the manifest as `<run_id>_<pipeline>.json` in `folder`; returns
/// its location.
pub async fn write_manifest(
    ctx: &SessionContext,
    folder: &str,
    pipeline: &str,
    clock: &RunClock,
    manifest: &Manifest,
) -> Result<String, RecordError> {
    let name = format!("{}_{pipeline}.json", clock.run_id);
    let body = serde_json::to_string_pretty(manifest)?;
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
) -> Result<String, RecordError> {
    let batch = crate::check::results_batch(
        results,
        &clock.run_id,
        pipeline,
        clock.started.timestamp_millis(),
    )
    .map_err(|e| RecordError::Parquet(e.to_string()))?;
    let body =
        crate::sink::parquet_bytes(&batch).map_err(|e| RecordError::Parquet(e.to_string()))?;
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
) -> Result<String, RecordError> {
    let location = format!("{folder}{name}");
    let (store, path) = object_in(ctx, folder, name)?;
    store
        .put(&path, body.into())
        .await
        .map_err(|source| RecordError::Write {
            location: location.clone(),
            source,
        })?;
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
