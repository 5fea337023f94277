//! Running a prepared pipeline: the sources' account, the steps in order,
//! the line limits, the data-quality checks, then every output staged and
//! published together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::error::RunFailure;
use crate::check::{CheckResult, CheckStatus};
use crate::pipeline::OnError;
use crate::plan::{IDENTITY_TABLES, OutputPlan, Plan, SourcePlan, Step};
use crate::privacy::Lineage;
use crate::privacy::content::tag_by_content;
use crate::privacy::erasure::Erased;
use crate::segment::{SavedModel, fit_segments};
use crate::sink::erase::erase_published;
use crate::sink::retention::{checks_of, expire, manifest_of, output_file};
use crate::sink::{StagedOutput, discard_staged, publish_outputs, stage_object, stage_output};
use crate::source::lines::LineCounts;
use crate::source::{Quarantine, SourceStats};
use crate::transform::run_step;

use super::RunSummary;
use super::events::{Reporter, RunEvent, StepKind, StepReport, human_bytes};
use super::manifest::{Journal, OutputRecord, ProfilingRecord, SegmentRecord};
use super::state::{self, Selection, state_location};
use crate::source::lines::BytesScanned;
/// What a run executes: the plan and its session, this run's id, the
/// inputs chosen for it, and the tags of every table's columns.
pub(super) struct Run<'a> {
    pub plan: &'a Plan,
    pub ctx: &'a SessionContext,
    pub run_id: &'a str,
    pub selection: &'a Selection,
    pub lineage: &'a Lineage,
    pub erased: &'a Erased,
    pub key: Option<&'a crate::privacy::PseudonymKey>,
}

/// Runs the steps of a prepared pipeline and publishes its outputs, stage
/// by stage: the sources' account, the steps in order, the line limits,
/// the data-quality checks, the screen of what outputs hold, staging every
/// output and record, then one publish. A stage that fails ends the run;
/// nothing is published unless every stage before the publish succeeded.
pub(super) async fn execute(
    run: Run<'_>,
    sources: Vec<(String, SourceStats, Duration)>,
    report: &mut dyn FnMut(RunEvent),
    journal: &mut Journal,
) -> Result<RunSummary, Box<RunFailure>> {
    let Run {
        plan,
        ctx,
        run_id,
        selection,
        lineage,
        erased,
        key,
    } = run;
    let started = Instant::now();
    let next_state = serialise_state(plan, selection)?;
    let mut out = Reporter {
        report,
        steps: &mut journal.steps,
        scanned: BytesScanned::of(ctx).unwrap_or_default(),
    };
    let results = scratch_folder(plan, run_id).await?;
    let read = report_sources(&mut out, plan, sources);
    let (segment, model_file) =
        run_steps(ctx, plan, key, &mut out, results.as_deref(), &read).await?;
    journal.segment = segment;
    for (source, quarantine) in &read.quarantines {
        out.start(StepKind::Lines, &source.name);
        let (report, counts) = account_lines(ctx, source, quarantine, &plan.outputs).await?;
        out.finish(report);
        journal.lines.push((source.name.clone(), counts));
    }
    if !plan.checks.is_empty() {
        let (results, failed) = run_quality_checks(ctx, plan, lineage, &mut out).await?;
        journal.checks = results;
        if !failed.is_empty() {
            return Err(Box::new(RunFailure::ChecksFailed { failed }));
        }
    }
    screen_outputs(ctx, plan).await?;
    let mut staged = stage_outputs(ctx, plan, &mut out, run_id, selection).await?;
    // The segment model and the incremental state are published with the
    // outputs.
    if let Err(failure) =
        stage_records(ctx, plan, run_id, model_file, next_state, &mut staged).await
    {
        discard_staged(&staged).await;
        return Err(failure);
    }
    // A publish that fails part-way keeps what it staged: some outputs may
    // already be published from it, and the next run completes the rest
    // from the intent record (or removes the leftovers of a run without one).
    if let Err(source) = publish_outputs(ctx, &staged, plan.runs.as_deref(), run_id).await {
        return Err(Box::new(RunFailure::Publish { source }));
    }
    if plan.erasure.is_some() {
        // Every version and record kept from earlier runs, now that this
        // run's are in place.
        let mut folders: Vec<String> = plan.outputs.iter().map(|o| o.location.clone()).collect();
        folders.extend(plan.runs.clone());
        let rewritten = erase_published(ctx, &folders, erased)
            .await
            .map_err(|source| Box::new(RunFailure::Erasure { source }))?;
        journal.erased_files = Some(rewritten);
    }
    journal.expired_files = expire_old_files(ctx, plan)
        .await
        .map_err(|source| Box::new(RunFailure::Erasure { source }))?;
    journal.outputs = staged
        .iter()
        .map(|done| OutputRecord {
            table: done.table.clone(),
            path: done.published_path(),
            files: done.partition_files(),
            rows: done.rows,
            bytes: done.bytes,
        })
        .collect();
    Ok(RunSummary {
        pipeline: plan.name.clone(),
        steps: out.steps.clone(),
        elapsed: started.elapsed(),
    })
}

/// The incremental state after this run, as its file and bytes, written
/// before any step so that a state that cannot be serialised fails the run
/// before it does any work.
fn serialise_state(
    plan: &Plan,
    selection: &Selection,
) -> Result<Option<(String, Vec<u8>)>, Box<RunFailure>> {
    match &plan.runs {
        Some(runs) if plan.sources.iter().any(|s| s.incremental) => {
            let body = serde_json::to_vec_pretty(&selection.next).map_err(|source| {
                Box::new(RunFailure::Record {
                    what: "incremental state",
                    source,
                })
            })?;
            Ok(Some((state_location(runs, &plan.name), body)))
        }
        _ => Ok(None),
    }
}

/// With a memory limit, step results go to disk, in a folder of this run
/// removed when it ends.
async fn scratch_folder(
    plan: &Plan,
    run_id: &str,
) -> Result<Option<ScratchFolder>, Box<RunFailure>> {
    if plan.resources.memory_limit.is_none() {
        return Ok(None);
    }
    let base = plan
        .resources
        .spill_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let folder = base.join(format!("civica-results-{run_id}"));
    tokio::fs::create_dir_all(&folder).await.map_err(|source| {
        Box::new(RunFailure::Scratch {
            folder: folder.display().to_string(),
            source,
        })
    })?;
    Ok(Some(ScratchFolder(folder)))
}

/// What the sources read, as the later stages need it.
struct SourcesRead<'a> {
    /// The line sources, with their rejected lines to account for.
    quarantines: Vec<(&'a SourcePlan, Arc<Quarantine>)>,
    /// The bytes of each source read line by line (CSV, logs), for the
    /// progress of the steps that scan them.
    line_bytes: BTreeMap<String, u64>,
    /// The files each source reads, to name a damaged one when a step fails.
    files: BTreeMap<String, Vec<String>>,
}

/// Reports each source as a finished step (its files were listed and
/// registered while preparing).
fn report_sources<'a>(
    out: &mut Reporter,
    plan: &'a Plan,
    sources: Vec<(String, SourceStats, Duration)>,
) -> SourcesRead<'a> {
    let mut read = SourcesRead {
        quarantines: Vec::new(),
        line_bytes: BTreeMap::new(),
        files: sources
            .iter()
            .map(|(name, stats, _)| {
                let files = stats.inputs.iter().map(|i| i.path.clone()).collect();
                (name.clone(), files)
            })
            .collect(),
    };
    for ((name, stats, elapsed), source) in sources.into_iter().zip(&plan.sources) {
        if stats.quarantine.is_some() {
            read.line_bytes.insert(name.clone(), stats.bytes);
        }
        let mut detail = match stats.skipped {
            0 => format!("{} file(s), {}", stats.files, human_bytes(stats.bytes)),
            skipped => format!(
                "{} new file(s), {} ({skipped} read by earlier runs)",
                stats.files,
                human_bytes(stats.bytes)
            ),
        };
        if stats.empty > 0 {
            detail.push_str(&format!(", {} empty", stats.empty));
        }
        out.finish(StepReport {
            kind: StepKind::Source,
            name,
            rows: None,
            elapsed,
            detail,
        });
        if let Some(quarantine) = stats.quarantine {
            read.quarantines.push((source, quarantine));
        }
    }
    read
}

/// The model file a segment step leaves to publish: where, and what.
type ModelFile = Option<(String, SavedModel)>;

/// Runs the SQL and segment steps in order; returns the segment step's
/// record and its model file.
async fn run_steps(
    ctx: &SessionContext,
    plan: &Plan,
    key: Option<&crate::privacy::PseudonymKey>,
    out: &mut Reporter<'_>,
    results: Option<&Path>,
    read: &SourcesRead<'_>,
) -> Result<(Option<SegmentRecord>, ModelFile), Box<RunFailure>> {
    let (mut segment, mut model_file) = (None, None);
    for step in &plan.steps {
        let step_started = Instant::now();
        let report = match step {
            Step::Sql(sql) => {
                let scanned = sql
                    .reads
                    .iter()
                    .filter_map(|(name, _)| read.line_bytes.get(name.as_str()))
                    .sum();
                out.start_scan(StepKind::Transform, &sql.name, scanned);
                let keeps = plan.profiling_filter(&sql.name);
                let rows = match run_step(ctx, sql, results, keeps.as_deref()).await {
                    Ok(rows) => rows,
                    Err(source) => {
                        let damaged = crate::source::damaged_file(
                            ctx,
                            plan.sources
                                .iter()
                                .filter(|s| sql.reads.iter().any(|(name, _)| *name == s.name)),
                            &read.files,
                        )
                        .await;
                        return Err(Box::new(RunFailure::Transform {
                            step: sql.name.clone(),
                            file: sql.file.clone(),
                            damaged,
                            source,
                        }));
                    }
                };
                StepReport {
                    kind: StepKind::Transform,
                    name: sql.name.clone(),
                    rows: Some(rows),
                    elapsed: step_started.elapsed(),
                    detail: sql.file.clone(),
                }
            }
            Step::Identity(identity) => {
                out.start(StepKind::Identity, IDENTITY_TABLES[0]);
                let result = match key {
                    Some(key) => crate::identity::resolve_identities(ctx, identity, key).await,
                    None => Err(crate::identity::IdentityError::NoKey),
                };
                let result = result.map_err(|source| Box::new(RunFailure::Identity { source }))?;
                let tables = [
                    result.profiles,
                    result.links,
                    result.review,
                    result.attribution,
                ];
                for (name, table) in IDENTITY_TABLES.iter().zip(tables) {
                    replace_table(ctx, name, table)?;
                }
                StepReport {
                    kind: StepKind::Identity,
                    name: IDENTITY_TABLES[0].to_string(),
                    rows: Some(result.records),
                    elapsed: step_started.elapsed(),
                    detail: result.summary,
                }
            }
            Step::Segment(seg) => {
                out.start(StepKind::Segment, &seg.name);
                let result = fit_segments(ctx, seg).await.map_err(|source| {
                    Box::new(RunFailure::Segment {
                        step: seg.name.clone(),
                        source,
                    })
                })?;
                replace_table(ctx, &seg.name, result.segments.clone())?;
                replace_table(ctx, &seg.profiles, result.profiles.clone())?;
                replace_table(ctx, &seg.quality, result.quality.clone())?;
                replace_table(ctx, &seg.migrations, result.migrations.clone())?;
                segment = Some(SegmentRecord {
                    table: seg.name.clone(),
                    rows: result.rows,
                    summary: result.summary.clone(),
                    quality: result.model.as_ref().map(|(_, m)| m.quality.clone()),
                    profiling: seg.profiling.as_ref().map(|p| ProfilingRecord {
                        basis: p.basis,
                        not_profiled: result.not_profiled.unwrap_or(0),
                    }),
                });
                model_file = result.model;
                StepReport {
                    kind: StepKind::Segment,
                    name: seg.name.clone(),
                    rows: Some(result.rows),
                    elapsed: step_started.elapsed(),
                    detail: result.summary,
                }
            }
        };
        out.finish(report);
    }
    Ok((segment, model_file))
}

/// Runs the data-quality checks; returns their results and, for each
/// blocking one that failed, what it found.
async fn run_quality_checks(
    ctx: &SessionContext,
    plan: &Plan,
    lineage: &Lineage,
    out: &mut Reporter<'_>,
) -> Result<(Vec<CheckResult>, Vec<String>), Box<RunFailure>> {
    let checks_started = Instant::now();
    out.start(StepKind::Checks, "");
    let results = crate::check::run_checks(ctx, &plan.checks, lineage)
        .await
        .map_err(|source| Box::new(RunFailure::Check { source }))?;
    let mut failed = Vec::new();
    for result in &results {
        let mut what = format!(
            "`{}` of `{}`: {}",
            result.check, result.table, result.detail
        );
        if !result.failing_keys.is_empty() {
            what.push_str(&format!(", e.g. {}", result.failing_keys.join(", ")));
        }
        match result.status {
            CheckStatus::Pass => {
                tracing::debug!(target: "civica::run", check = %result.check, table = %result.table, "check passed")
            }
            CheckStatus::Warn => {
                tracing::warn!(target: "civica::run", check = %result.check, table = %result.table, "check warned: {what}")
            }
            CheckStatus::Fail => {
                tracing::warn!(target: "civica::run", check = %result.check, table = %result.table, "check failed: {what}");
                failed.push(what);
            }
        }
    }
    let count = |status| results.iter().filter(|r| r.status == status).count();
    out.finish(StepReport {
        kind: StepKind::Checks,
        name: format!("{} check(s)", results.len()),
        rows: None,
        elapsed: checks_started.elapsed(),
        detail: format!(
            "{} passed, {} warned, {} failed",
            count(CheckStatus::Pass),
            count(CheckStatus::Warn),
            count(CheckStatus::Fail)
        ),
    });
    Ok((results, failed))
}

/// The sink's side of the output guard: `validate` followed the tags
/// through the SQL, and this looks at the values each output is about to
/// publish (its first [`SCREENED_ROWS`] rows), so that personal data the
/// sources' samples did not show (a codice fiscale typed into a note on
/// row 50,000) is not published either. Declared columns are not looked at.
async fn screen_outputs(ctx: &SessionContext, plan: &Plan) -> Result<(), Box<RunFailure>> {
    let mut found = Vec::new();
    for output in &plan.outputs {
        let declared: Vec<&str> = output
            .contains_personal_data
            .iter()
            .map(String::as_str)
            .collect();
        let columns = tag_by_content(ctx, &output.table, &declared, SCREENED_ROWS)
            .await
            .map_err(|source| Box::new(RunFailure::Check { source }))?;
        found.extend(columns.into_iter().map(|(column, kind)| {
            format!(
                "`{}` of output `{}` holds {}",
                column,
                output.table,
                kind.description()
            )
        }));
    }
    match found.is_empty() {
        true => Ok(()),
        false => Err(Box::new(RunFailure::PersonalData { found })),
    }
}

/// Deletes what the pipeline's retention periods let go: outputs' files
/// of earlier runs, run manifests and check results. Returns how many.
async fn expire_old_files(
    ctx: &SessionContext,
    plan: &Plan,
) -> Result<usize, crate::sink::erase::EraseError> {
    let now = chrono::Utc::now();
    let mut removed = 0;
    for output in &plan.outputs {
        if let Some(age) = output.retention {
            removed += expire(ctx, &output.location, age, now, output_file).await?;
        }
    }
    if let Some(runs) = &plan.runs {
        if let Some(age) = plan.manifest_retention {
            removed += expire(ctx, runs, age, now, manifest_of(&plan.name)).await?;
        }
        if let Some(age) = plan.check_retention {
            removed += expire(ctx, runs, age, now, checks_of(&plan.name)).await?;
        }
    }
    Ok(removed)
}

/// How many rows of each output the sink looks at for personal data.
const SCREENED_ROWS: usize = 10_000;

/// Writes every output where no reader looks yet. On a failure, what was
/// staged is removed.
async fn stage_outputs(
    ctx: &SessionContext,
    plan: &Plan,
    out: &mut Reporter<'_>,
    run_id: &str,
    selection: &Selection,
) -> Result<Vec<StagedOutput>, Box<RunFailure>> {
    // Only the outputs made from incremental sources hold rows of the runs
    // whose inputs are read again; the others' appended files stay.
    let from_incremental = state::tables_from_incremental_sources(plan);
    let no_runs = BTreeSet::new();
    let mut staged: Vec<StagedOutput> = Vec::new();
    for output in &plan.outputs {
        let output_started = Instant::now();
        out.start(StepKind::Output, &output.table);
        let replaced_runs = match from_incremental.contains(&output.table) {
            true => &selection.replaced_runs,
            false => &no_runs,
        };
        // With `cell_count`, the rows of groups under `min_cell` are left
        // out as the output is written: how many is said.
        let grouped = match &output.cell_count {
            Some(_) => match ctx.table(output.table.as_str()).await {
                Ok(table) => table.count().await.ok(),
                Err(_) => None,
            },
            None => None,
        };
        match stage_output(ctx, output, run_id, plan.full_refresh, replaced_runs).await {
            Ok(done) => {
                let left_out = match (grouped, &output.cell_count) {
                    (Some(all), Some((_, min_cell))) => format!(
                        ", {} row(s) counting fewer than {min_cell} citizens left out",
                        all.saturating_sub(done.rows)
                    ),
                    _ => String::new(),
                };
                out.finish(StepReport {
                    kind: StepKind::Output,
                    name: done.table.clone(),
                    rows: Some(done.rows),
                    elapsed: output_started.elapsed(),
                    detail: format!(
                        "{} ({}{}{left_out})",
                        done.published_path(),
                        match done.partitions {
                            0 => String::new(),
                            n => format!("{n} partition(s), "),
                        },
                        human_bytes(done.bytes)
                    ),
                });
                staged.push(done);
            }
            Err(source) => {
                discard_staged(&staged).await;
                return Err(Box::new(RunFailure::Output {
                    table: output.table.clone(),
                    source,
                }));
            }
        }
    }
    Ok(staged)
}

/// Stages the segment model and the incremental state beside the outputs,
/// so that they are published with them.
async fn stage_records(
    ctx: &SessionContext,
    plan: &Plan,
    run_id: &str,
    model_file: ModelFile,
    next_state: Option<(String, Vec<u8>)>,
    staged: &mut Vec<StagedOutput>,
) -> Result<(), Box<RunFailure>> {
    let mut objects: Vec<(String, Vec<u8>, &str)> = Vec::new();
    if let Some((path, model)) = &model_file {
        let json = serde_json::to_vec_pretty(model).map_err(|source| {
            Box::new(RunFailure::Record {
                what: "model",
                source,
            })
        })?;
        objects.push((path.clone(), json, "model"));
    }
    if let Some((location, body)) = next_state {
        objects.push((location, body, "incremental state"));
    }
    for (location, body, what) in objects {
        let done = stage_object(ctx, &location, body.into(), run_id)
            .await
            .map_err(|source| {
                Box::new(RunFailure::Output {
                    table: format!("{} {what}", plan.name),
                    source,
                })
            })?;
        staged.push(done);
    }
    Ok(())
}

/// A folder removed when dropped: where a run keeps its step results on disk.
struct ScratchFolder(std::path::PathBuf);

impl std::ops::Deref for ScratchFolder {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Counts a line source's rejected lines (scanning what no step read to
/// the end) and fails the run when there are more than the source allows.
async fn account_lines(
    ctx: &SessionContext,
    source: &SourcePlan,
    quarantine: &Quarantine,
    plan_outputs: &[OutputPlan],
) -> Result<(StepReport, LineCounts), Box<RunFailure>> {
    let started = Instant::now();
    let failed = |err| {
        Box::new(RunFailure::Source {
            source_name: source.name.clone(),
            source: err,
        })
    };
    let mut files = quarantine.account(ctx).await.map_err(failed)?;
    let mut total = LineCounts::default();
    for (_, counts) in &files {
        total += *counts;
    }
    let ratio = total.rejected as f64 / total.lines.max(1) as f64;
    let limit = match source.on_error {
        _ if total.rejected == 0 => None,
        OnError::Fail => Some("`on_error: fail`".to_string()),
        OnError::Quarantine if ratio > source.max_rejected_ratio => Some(format!(
            "{:.2}% is above `max_rejected_ratio` {}",
            ratio * 100.0,
            source.max_rejected_ratio
        )),
        OnError::Quarantine => None,
    };
    if let Some(limit) = limit {
        files.retain(|(_, counts)| counts.rejected > 0);
        files.sort_by(|a, b| b.1.rejected.cmp(&a.1.rejected).then(a.0.cmp(&b.0)));
        let files = files
            .iter()
            .take(3)
            .map(|(path, counts)| format!("`{path}` ({})", counts.rejected))
            .collect::<Vec<_>>()
            .join(", ");
        let first = quarantine.first_rejected(ctx).await.map_err(failed)?;
        return Err(Box::new(RunFailure::Rejected {
            source_name: source.name.clone(),
            rejected: total.rejected,
            lines: total.lines,
            limit,
            files,
            first: first.join("; "),
        }));
    }
    let mut detail = format!(
        "{} line(s) read = {} loaded + {} rejected + {} skipped (blank or header)",
        total.read(),
        total.loaded(),
        total.rejected,
        total.skipped
    );
    if let Some(table) = source.rejected_table().filter(|_| total.rejected > 0) {
        detail.push_str(&format!("; {:.3}% rejected, in `{table}`", ratio * 100.0));
        if !plan_outputs.iter().any(|o| o.table == table) {
            // The rejected lines hold what was sent, personal data
            // included: kept only where the pipeline says.
            detail.push_str(&format!(
                ", which this run does not keep (add `{{ table: {table}, path: …, contains_personal_data: [raw_line], purpose: … }}` to `outputs` to keep it)"
            ));
        }
    }
    let report = StepReport {
        kind: StepKind::Lines,
        name: source.name.clone(),
        rows: usize::try_from(total.loaded()).ok(),
        elapsed: started.elapsed(),
        detail,
    };
    Ok((report, total))
}

fn replace_table(
    ctx: &SessionContext,
    name: &str,
    batch: RecordBatch,
) -> Result<(), Box<RunFailure>> {
    let to_error = |source| {
        Box::new(RunFailure::Register {
            table: name.to_string(),
            source,
        })
    };
    ctx.deregister_table(name).map_err(to_error)?;
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(to_error)?;
    ctx.register_table(name, Arc::new(table))
        .map_err(to_error)?;
    Ok(())
}
