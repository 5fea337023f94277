//! The orchestrator: preparing a pipeline (everything `validate` checks, including planning SQL against the sources' schemas) and running it step by step.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::check::CheckStatus;
use crate::pipeline::{Diagnostic, OnError, display_path, load_spec};
use crate::plan::{
    OutputPlan, Plan, PlanOptions, ResourcesPlan, SegmentPlan, SourcePlan, Step, build_plan,
};
use crate::segment::{SegmentError, check_segment_columns, fit_segments, output_schemas};
use crate::sink::{
    Recovery, StagedOutput, discard_staged, publish_outputs, recover, stage_object, stage_output,
};
use crate::source::functions::register_functions;
use crate::source::lines::LineCounts;
use crate::source::{Quarantine, SourceStats, list_source, register_listing};
use crate::storage::configure_store;
use crate::transform::{plan_step, run_step};
use crate::{Error, RunFailure};

pub mod lock;
pub mod manifest;
pub mod state;

use self::lock::{LockError, RunLock, take_lock};
use self::manifest::{Journal, OutputRecord, RunClock, write_check_results, write_manifest};
use self::state::{LoadState, Selection, state_location};
use crate::source::InputObject;

/// A pipeline whose every check passed, with its session ready to run.
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// The session with sources registered and steps planned.
    pub ctx: SessionContext,
    /// What each source registration found, by source order.
    pub sources: Vec<(String, SourceStats, Duration)>,
    /// The run's id and start, taken before the pipeline was read: the id
    /// is `{{ run_id }}`.
    pub clock: RunClock,
    /// What the incremental sources read in this run, and their state after it.
    pub selection: Selection,
    /// What was repaired of the runs that died before this one.
    pub recovery: Recovery,
    /// The pipeline's lock, held until the run ends.
    pub lock: Option<RunLock>,
}

/// Every location a run publishes to: its outputs, its segment model and
/// its incremental state.
fn published_locations(plan: &Plan) -> Vec<String> {
    let mut folders: Vec<String> = plan.outputs.iter().map(|o| o.location.clone()).collect();
    folders.extend(plan.steps.iter().filter_map(|step| match step {
        Step::Segment(seg) => seg.model_path.clone(),
        Step::Sql(_) => None,
    }));
    folders.extend(
        plan.runs
            .iter()
            .map(|runs| state_location(runs, &plan.name)),
    );
    folders
}

/// Why a pipeline could not be prepared: what is wrong with the pipeline
/// or the command line, and what failed although they are right (a store
/// that cannot be reached, a missing or changed input, a damaged state).
#[derive(Debug, Default)]
pub struct Problems {
    /// Mistakes in the pipeline, its SQL or the command line.
    pub invalid: Vec<Diagnostic>,
    /// Failures of what the pipeline reads or writes.
    pub failed: Vec<Diagnostic>,
    /// Another run of the pipeline holds its lock: this one was skipped.
    pub skipped: Option<String>,
}

impl From<Problems> for Error {
    /// An invalid pipeline (exit 2) when anything is wrong with it, else a
    /// run that failed before its steps (exit 1).
    fn from(problems: Problems) -> Self {
        let Problems {
            mut invalid,
            failed,
            skipped,
        } = problems;
        if let Some(holder) = skipped {
            Error::Skipped(holder)
        } else if invalid.is_empty() {
            Error::NotStarted(crate::pipeline::Diagnostics(failed))
        } else {
            invalid.extend(failed);
            Error::Invalid(crate::pipeline::Diagnostics(invalid))
        }
    }
}

/// Loads, checks and plans a pipeline. Every problem found is returned at
/// once. With `repair` (a run, not `validate`), what dead runs left is
/// repaired first (see [`recover`]).
pub async fn prepare(
    pipeline: &Path,
    opts: &PlanOptions,
    repair: bool,
) -> Result<Prepared, Problems> {
    let clock = RunClock::start();
    let spec = load_spec(pipeline).map_err(|invalid| Problems {
        invalid,
        ..Problems::default()
    })?;
    let mut failures: Vec<Diagnostic> = Vec::new();
    let failure = |message: String| Diagnostic {
        file: display_path(pipeline),
        pos: None,
        message,
    };
    let opts = PlanOptions {
        run_id: Some(clock.run_id.clone()),
        ..opts.clone()
    };
    let (plan, mut diags) = build_plan(&spec, pipeline, &opts);
    let ctx = match new_session(&plan.resources) {
        Ok(ctx) => ctx,
        Err(message) => {
            failures.push(failure(message));
            return Err(Problems {
                invalid: diags,
                failed: failures,
                skipped: None,
            });
        }
    };
    let mut sources = Vec::new();
    // Tables that failed: steps reading them are skipped rather than
    // reported again as reading an unknown table.
    let mut failed: BTreeSet<String> = plan.unavailable.clone();
    // Every store is built once, with the pipeline's `storage` settings.
    for (location, pos) in plan
        .sources
        .iter()
        .map(|s| (&s.location, s.pos))
        .chain(plan.outputs.iter().map(|o| (&o.location, o.pos)))
    {
        if let Err(err) = configure_store(&ctx, location, &plan.storage) {
            diags.push(Diagnostic::at(&plan.file, pos, err.to_string()));
        }
    }
    if let Some(message) = plan.runs.as_deref().and_then(runs_folder_problem) {
        failures.push(failure(message));
    }
    // One run of a pipeline at a time: a run takes the lock before it
    // repairs or reads anything.
    let mut lock = None;
    if let (true, true, Some(runs)) = (
        repair,
        diags.is_empty() && failures.is_empty(),
        plan.runs.as_deref(),
    ) {
        match take_lock(&ctx, runs, &plan.name, &clock.run_id).await {
            Ok(taken) => lock = Some(taken),
            Err(LockError::Held(holder)) => {
                return Err(Problems {
                    skipped: Some(holder),
                    ..Problems::default()
                });
            }
            Err(LockError::Failed(message)) => failures.push(failure(message)),
        }
    }
    // What dead runs left is repaired first: a publish they left half-way
    // is completed before this run reads the state or the sources it
    // moves on.
    let recovery = if repair && diags.is_empty() && failures.is_empty() {
        recover(&ctx, plan.runs.as_deref(), &published_locations(&plan)).await
    } else {
        Recovery::default()
    };
    for repair in &recovery.repairs {
        tracing::warn!("{repair}");
    }
    // What incremental sources read before, unless this run starts over.
    let mut load_state = LoadState::default();
    // (Not when a publish is unfinished: the run will fail on it.)
    if plan.sources.iter().any(|s| s.incremental)
        && !plan.full_refresh
        && recovery.unfinished.is_empty()
    {
        match &plan.runs {
            Some(runs) => match state::load_state(&ctx, &state_location(runs, &plan.name)).await {
                Ok(loaded) => load_state = loaded,
                Err(message) => failures.push(failure(message)),
            },
            None => diags.push(Diagnostic {
                file: plan.file.clone(),
                pos: None,
                message: "incremental sources keep their state in the `runs` folder: set `runs`"
                    .to_string(),
            }),
        }
    }
    // Every source is listed; incremental ones then read what is new.
    let mut listings = Vec::new();
    for source in &plan.sources {
        let started = Instant::now();
        match list_source(&ctx, source).await {
            Ok(listing) => listings.push((source, listing, started)),
            Err(err) => fail_source(&plan.file, source, &err, &mut failed, &mut failures),
        }
    }
    let incremental: Vec<_> = listings
        .iter()
        .filter(|(source, _, _)| source.incremental)
        .map(|(source, listing, _)| {
            (
                *source,
                listing.source.location.as_str(),
                listing.objects.as_slice(),
            )
        })
        .collect();
    let mut selection = Selection::default();
    if !incremental.is_empty()
        && diags.is_empty()
        && failures.is_empty()
        && recovery.unfinished.is_empty()
    {
        // `validate` does not hash new objects: only a run records them.
        let selected =
            state::select_inputs(&ctx, &incremental, &load_state, &clock.run_id, repair).await;
        match selected {
            Ok(selected) => selection = selected,
            Err(errors) => failures.extend(errors.into_iter().map(&failure)),
        }
    }
    for ignored in &selection.ignored {
        tracing::warn!("{ignored}");
    }
    for (source, listing, started) in listings {
        let chosen = selection.objects.get(&source.name);
        let store_url = crate::storage::table_url(&listing.source.location)
            .map(|url| url.object_store().as_str().to_string())
            .unwrap_or_default();
        let read = chosen.map(|listed| {
            listed
                .iter()
                .filter(|l| l.read)
                .map(|l| l.meta.clone())
                .collect()
        });
        match register_listing(&ctx, listing, read).await {
            Ok(mut stats) => {
                if let Some(listed) = chosen {
                    for input in &mut stats.inputs {
                        input.sha256 = listed
                            .iter()
                            .find(|l| input.path == format!("{store_url}{}", l.meta.location))
                            .and_then(|l| l.sha256.clone());
                    }
                }
                tracing::debug!(source = %source.name, location = %source.location, files = stats.files, "source registered");
                sources.push((source.name.clone(), stats, started.elapsed()));
            }
            Err(err) => fail_source(&plan.file, source, &err, &mut failed, &mut failures),
        }
    }
    for step in &plan.steps {
        let reads_failed = match step {
            Step::Sql(sql) => sql.reads.iter().any(|(name, _)| failed.contains(name)),
            Step::Segment(seg) => failed.contains(&seg.from),
        };
        let result = if reads_failed {
            Err(Vec::new())
        } else {
            match step {
                Step::Sql(sql) => plan_step(&ctx, sql).await.map_err(|diag| vec![diag]),
                Step::Segment(seg) => plan_segment(&ctx, seg, &plan.file).await,
            }
        };
        if let Err(mut more) = result {
            diags.append(&mut more);
            failed.extend(step.produces().into_iter().map(str::to_string));
        }
    }
    for check in &plan.checks {
        if failed.contains(&check.table) {
            continue;
        }
        if let Err(err) = crate::check::plan_check(&ctx, check).await {
            diags.push(Diagnostic::at(
                &plan.file,
                check.column_pos,
                format!(
                    "check `{}` of `{}`: {}",
                    check.name,
                    check.table,
                    crate::sql::problem_from_error(&err, "").message
                ),
            ));
        }
    }
    for output in plan.outputs.iter().filter(|o| !o.partition_by.is_empty()) {
        if failed.contains(&output.table) {
            continue;
        }
        if let Err(message) = check_partition_columns(&ctx, output).await {
            diags.push(Diagnostic::at(&plan.file, output.partition_pos, message));
        }
    }
    if diags.is_empty() && failures.is_empty() {
        if !recovery.unfinished.is_empty() {
            // The run fails on it, having read nothing.
            sources.clear();
        }
        Ok(Prepared {
            plan,
            ctx,
            sources,
            clock,
            selection,
            recovery,
            lock,
        })
    } else {
        if let Some(lock) = lock {
            lock.release().await;
        }
        // Beside other problems (a store that cannot be reached), an
        // unfinished publish is one of them.
        failures.extend(recovery.unfinished.into_iter().map(&failure));
        Err(Problems {
            invalid: diags,
            failed: failures,
            skipped: None,
        })
    }
}

/// Records a source that could not be listed or registered: its problem
/// (naming the source once) among the failures, and its table as failed,
/// so that steps reading it are not checked further.
fn fail_source(
    file: &str,
    source: &SourcePlan,
    err: &crate::source::SourceError,
    failed: &mut BTreeSet<String>,
    failures: &mut Vec<Diagnostic>,
) {
    let text = err.to_string();
    let named = format!("source `{}`: ", source.name);
    let message = match text.starts_with(&named) {
        true => text,
        false => format!("{named}{text}"),
    };
    failed.insert(source.name.clone());
    failures.push(Diagnostic::at(file, source.pos, message));
}

/// What is wrong with a local runs folder that exists but is not a folder.
fn runs_folder_problem(runs: &str) -> Option<String> {
    let path = crate::storage::local_path_of(runs)?;
    let meta = std::fs::metadata(&path).ok()?;
    (!meta.is_dir()).then(|| {
        format!(
            "the runs folder `{}` is a file, not a folder: move the file away or set `runs` to a folder",
            path.display()
        )
    })
}

/// Whether an output's partition columns are columns of its table, and
/// leave at least one column for the files.
async fn check_partition_columns(ctx: &SessionContext, output: &OutputPlan) -> Result<(), String> {
    let table = ctx
        .table(output.table.as_str())
        .await
        .map_err(|err| err.to_string())?;
    let schema = table.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if let Some(missing) = output
        .partition_by
        .iter()
        .find(|c| !names.contains(&c.as_str()))
    {
        return Err(format!(
            "`partition_by` names `{missing}`, which is not a column of `{}` (columns: {})",
            output.table,
            names.join(", ")
        ));
    }
    if output.partition_by.len() >= names.len() {
        return Err(format!(
            "`partition_by` takes every column of `{}`: the files would have none",
            output.table
        ));
    }
    Ok(())
}

/// A session with the plan's resources: one partition per core unless the
/// plan or the environment (`DATAFUSION_*` variables) says otherwise, a
/// spilling memory pool when a memory limit is set, and spill files in the
/// plan's folder.
fn new_session(resources: &ResourcesPlan) -> Result<SessionContext, String> {
    let mut config = SessionConfig::from_env()
        .unwrap_or_else(|err| {
            tracing::warn!(%err, "ignoring DATAFUSION_* settings");
            SessionConfig::new()
        })
        .with_information_schema(true);
    if let Some(partitions) = resources.target_partitions {
        config = config.with_target_partitions(partitions);
    }
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = resources.memory_limit {
        // Each sorting partition sets memory aside for merging what it
        // spilled (10 MB by default): under a small limit, a quarter of a
        // fair share, so that the merge itself fits.
        let partitions = config.target_partitions().max(1);
        let execution = &mut config.options_mut().execution;
        execution.sort_spill_reservation_bytes = execution
            .sort_spill_reservation_bytes
            .min(limit / (4 * partitions));
        // Fair shares between the operators that can spill (sorts,
        // aggregations, joins), with the largest consumers named in the
        // error when even spilling is not enough.
        runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(limit),
            NonZeroUsize::new(5).expect("five"),
        )));
    }
    if let Some(dir) = &resources.spill_dir {
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("cannot create the spill folder `{}`: {err}", dir.display()))?;
        runtime = runtime.with_temp_file_path(dir);
    }
    let runtime = runtime.build_arc().map_err(|err| err.to_string())?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    register_functions(&ctx);
    Ok(ctx)
}

/// Checks the segment step's columns and registers empty tables with the
/// shapes it will produce, so that later SQL steps can be planned.
async fn plan_segment(
    ctx: &SessionContext,
    seg: &SegmentPlan,
    file: &str,
) -> Result<(), Vec<Diagnostic>> {
    let at = |key: &str, err: String| {
        Diagnostic::at(
            file,
            seg.located.pos_of(key),
            format!("in `segment`: {err}"),
        )
    };
    let frame = ctx
        .table(seg.from.as_str())
        .await
        .map_err(|err| vec![at("from", err.to_string())])?;
    let schema = frame.schema().clone();
    let problems = check_segment_columns(seg, &schema);
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|p| {
                let key = match &p {
                    SegmentError::MissingColumn { column, .. }
                    | SegmentError::NotNumeric { column, .. } => seg
                        .features
                        .iter()
                        .position(|f| f == column)
                        .map(|i| format!("features[{i}]"))
                        .unwrap_or_else(|| "id".to_string()),
                    _ => "from".to_string(),
                };
                at(&key, p.to_string())
            })
            .collect());
    }
    let id_type = schema
        .field_with_unqualified_name(&seg.id)
        .map(|f| f.data_type().clone())
        .unwrap_or(DataType::Utf8);
    let [segments, profiles, quality, migrations] = output_schemas(seg, &id_type);
    for (name, schema) in [
        (&seg.name, segments),
        (&seg.profiles, profiles),
        (&seg.quality, quality),
        (&seg.migrations, migrations),
    ] {
        let table = MemTable::try_new(schema, vec![vec![]])
            .map_err(|err| vec![at("name", err.to_string())])?;
        ctx.register_table(name.as_str(), Arc::new(table))
            .map_err(|err| vec![at("name", err.to_string())])?;
    }
    Ok(())
}

/// One line of the run's account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepReport {
    /// `source`, `transform`, `segment` or `output`.
    pub kind: &'static str,
    /// The table.
    pub name: String,
    /// Rows produced or written, where known.
    pub rows: Option<usize>,
    /// Wall time.
    pub elapsed: Duration,
    /// Extra facts: files and bytes read, inertia, where an output went.
    pub detail: String,
}

/// What a run tells its caller as it goes.
#[derive(Debug, Clone, Copy)]
pub enum RunEvent<'a> {
    /// A step started: its kind, its table, and the bytes of CSV and log
    /// files it scans, when it reads such sources (progress is measured
    /// by [`BYTES_SCANNED`](crate::source::lines::BYTES_SCANNED)).
    Started(&'static str, &'a str, Option<u64>),
    /// A step finished.
    Finished(&'a StepReport),
}

/// Passes a run's events to its caller and keeps the finished steps.
struct Reporter<'a> {
    report: &'a mut dyn FnMut(RunEvent),
    steps: &'a mut Vec<StepReport>,
}

impl Reporter<'_> {
    fn start(&mut self, kind: &'static str, name: &str) {
        (self.report)(RunEvent::Started(kind, name, None));
    }

    /// A step that scans `bytes` of CSV and log files.
    fn start_scan(&mut self, kind: &'static str, name: &str, bytes: u64) {
        (self.report)(RunEvent::Started(kind, name, (bytes > 0).then_some(bytes)));
    }

    fn finish(&mut self, step: StepReport) {
        tracing::info!(
            kind = step.kind,
            table = %step.name,
            rows = step.rows,
            elapsed_ms = step.elapsed.as_millis() as u64,
            detail = %step.detail,
            "step finished"
        );
        (self.report)(RunEvent::Finished(&step));
        self.steps.push(step);
    }
}

/// The account of a finished run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The pipeline's name.
    pub pipeline: String,
    /// Every step in the order it ran.
    pub steps: Vec<StepReport>,
    /// Wall time of the run itself, after [`prepare`].
    pub elapsed: Duration,
}

/// Runs a prepared pipeline: steps in order, then every output staged and
/// published together. `report` is called as each step finishes. Every
/// run, succeeded or failed, leaves a manifest in the pipeline's `runs`
/// folder (see [`manifest`]).
pub async fn run_prepared(
    prepared: Prepared,
    report: &mut dyn FnMut(RunEvent),
) -> Result<RunSummary, Error> {
    let Prepared {
        plan,
        ctx,
        mut sources,
        clock,
        selection,
        recovery,
        lock,
    } = prepared;
    // Hashed before the run, so that the hash is of what ran.
    let pipeline_hash = manifest::content_hash(&plan);
    let inputs: Vec<(String, Vec<InputObject>)> = sources
        .iter_mut()
        .map(|(name, stats, _)| (name.clone(), stats.inputs.clone()))
        .collect();
    let mut journal = Journal::default();
    let result = if recovery.unfinished.is_empty() {
        execute(
            &plan,
            &ctx,
            sources,
            report,
            &clock.run_id,
            &selection,
            &mut journal,
        )
        .await
    } else {
        Err(Error::Run(RunFailure::Unrecovered {
            unfinished: recovery.unfinished,
        }))
    };
    if let Some(folder) = &plan.runs {
        let outcome = result.as_ref().map(|_| ());
        let mut document =
            manifest::manifest(&plan, &pipeline_hash, &clock, &inputs, &journal, outcome);
        document["resources"] = serde_json::json!({
            "memory_limit_bytes": plan.resources.memory_limit,
            "spill_dir": plan.resources.spill_dir,
            "target_partitions": ctx.copied_config().target_partitions(),
            "peak_rss_bytes": manifest::peak_rss_bytes(),
        });
        // The outputs are already published or kept: a manifest that
        // cannot be written is reported, and does not change the outcome.
        match write_manifest(&ctx, folder, &plan.name, &clock, &document).await {
            Ok(location) => tracing::info!(manifest = %location, "run manifest written"),
            Err(err) => tracing::warn!(%err, "run manifest not written"),
        }
        if !journal.checks.is_empty() {
            match write_check_results(&ctx, folder, &plan.name, &clock, &journal.checks).await {
                Ok(location) => tracing::info!(results = %location, "check results written"),
                Err(err) => tracing::warn!(%err, "check results not written"),
            }
        }
    }
    if let Some(lock) = lock {
        lock.release().await;
    }
    result
}

async fn execute(
    plan: &Plan,
    ctx: &SessionContext,
    sources: Vec<(String, SourceStats, Duration)>,
    report: &mut dyn FnMut(RunEvent),
    run_id: &str,
    selection: &Selection,
    journal: &mut Journal,
) -> Result<RunSummary, Error> {
    let started = Instant::now();
    // Only the outputs made from incremental sources hold rows of the runs
    // whose inputs are read again; the others' appended files stay.
    let from_incremental = state::tables_from_incremental_sources(plan);
    let no_runs = BTreeSet::new();
    // The state after this run, published with the outputs.
    let next_state = match &plan.runs {
        Some(runs) if plan.sources.iter().any(|s| s.incremental) => {
            let body = serde_json::to_vec_pretty(&selection.next).unwrap_or_default();
            Some((state_location(runs, &plan.name), body))
        }
        _ => None,
    };
    let mut out = Reporter {
        report,
        steps: &mut journal.steps,
    };
    // With a memory limit, step results go to disk, in a folder of this run
    // removed when it ends.
    let results = match plan.resources.memory_limit {
        Some(_) => {
            let base = plan
                .resources
                .spill_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir);
            let folder = base.join(format!("civica-results-{run_id}"));
            std::fs::create_dir_all(&folder).map_err(|source| {
                Error::Run(RunFailure::Scratch {
                    folder: folder.display().to_string(),
                    source,
                })
            })?;
            Some(ScratchFolder(folder))
        }
        None => None,
    };
    let mut quarantines = Vec::new();
    let mut model_file = None;
    // The files each source reads, to name a damaged one when a step fails.
    let read_files: std::collections::BTreeMap<String, Vec<String>> = sources
        .iter()
        .map(|(name, stats, _)| {
            let files = stats.inputs.iter().map(|i| i.path.clone()).collect();
            (name.clone(), files)
        })
        .collect();
    // The bytes of each source read line by line (CSV, logs), for the
    // progress of the steps that scan them.
    let mut line_bytes: std::collections::BTreeMap<String, u64> = Default::default();
    for ((name, stats, elapsed), source) in sources.into_iter().zip(&plan.sources) {
        if stats.quarantine.is_some() {
            line_bytes.insert(name.clone(), stats.bytes);
        }
        out.finish(StepReport {
            kind: "source",
            name,
            rows: None,
            elapsed,
            detail: {
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
                detail
            },
        });
        if let Some(quarantine) = stats.quarantine {
            quarantines.push((source, quarantine));
        }
    }
    for step in &plan.steps {
        let step_started = Instant::now();
        match step {
            Step::Sql(sql) => {
                let scanned = sql
                    .reads
                    .iter()
                    .filter_map(|(name, _)| line_bytes.get(name.as_str()))
                    .sum();
                out.start_scan("transform", &sql.name, scanned)
            }
            Step::Segment(seg) => out.start("segment", &seg.name),
        }
        match step {
            Step::Sql(sql) => {
                let rows = match run_step(ctx, sql, results.as_deref()).await {
                    Ok(rows) => rows,
                    Err(source) => {
                        let damaged = crate::source::damaged_file(
                            ctx,
                            plan.sources
                                .iter()
                                .filter(|s| sql.reads.iter().any(|(name, _)| *name == s.name)),
                            &read_files,
                        )
                        .await;
                        return Err(Error::Run(RunFailure::Transform {
                            step: sql.name.clone(),
                            file: sql.file.clone(),
                            damaged,
                            source,
                        }));
                    }
                };
                out.finish(StepReport {
                    kind: "transform",
                    name: sql.name.clone(),
                    rows: Some(rows),
                    elapsed: step_started.elapsed(),
                    detail: sql.file.clone(),
                });
            }
            Step::Segment(seg) => {
                let result = fit_segments(ctx, seg).await.map_err(|source| {
                    Error::Run(RunFailure::Segment {
                        step: seg.name.clone(),
                        source,
                    })
                })?;
                replace_table(ctx, &seg.name, result.segments.clone())?;
                replace_table(ctx, &seg.profiles, result.profiles.clone())?;
                replace_table(ctx, &seg.quality, result.quality.clone())?;
                replace_table(ctx, &seg.migrations, result.migrations.clone())?;
                model_file = result.model.clone();
                journal.segment = Some(serde_json::json!({
                    "table": seg.name,
                    "rows": result.rows,
                    "summary": result.summary,
                    "quality": result.model.as_ref().map(|(_, m)| m.quality.clone()),
                }));
                out.finish(StepReport {
                    kind: "segment",
                    name: seg.name.clone(),
                    rows: Some(result.rows),
                    elapsed: step_started.elapsed(),
                    detail: result.summary.clone(),
                });
            }
        }
    }
    for (source, quarantine) in &quarantines {
        out.start("lines", &source.name);
        let (report, counts) = check_quarantine(ctx, source, quarantine, &plan.outputs).await?;
        out.finish(report);
        journal.lines.push((source.name.clone(), counts));
    }
    if !plan.checks.is_empty() {
        let checks_started = Instant::now();
        out.start("checks", "");
        let results = crate::check::run_checks(ctx, &plan.checks)
            .await
            .map_err(|source| Error::Run(RunFailure::Check { source }))?;
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
                    tracing::debug!(check = %result.check, table = %result.table, "check passed")
                }
                CheckStatus::Warn => {
                    tracing::warn!(check = %result.check, table = %result.table, "check warned: {what}")
                }
                CheckStatus::Fail => {
                    tracing::warn!(check = %result.check, table = %result.table, "check failed: {what}");
                    failed.push(what);
                }
            }
        }
        let count = |status| results.iter().filter(|r| r.status == status).count();
        out.finish(StepReport {
            kind: "checks",
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
        journal.checks = results;
        if !failed.is_empty() {
            return Err(Error::Run(RunFailure::ChecksFailed { failed }));
        }
    }
    let mut staged: Vec<StagedOutput> = Vec::new();
    for output in &plan.outputs {
        let output_started = Instant::now();
        out.start("output", &output.table);
        let replaced_runs = match from_incremental.contains(&output.table) {
            true => &selection.replaced_runs,
            false => &no_runs,
        };
        match stage_output(ctx, output, run_id, plan.full_refresh, replaced_runs).await {
            Ok(done) => {
                out.finish(StepReport {
                    kind: "output",
                    name: done.table.clone(),
                    rows: Some(done.rows),
                    elapsed: output_started.elapsed(),
                    detail: format!(
                        "{} ({}{})",
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
                return Err(Error::Run(RunFailure::Output {
                    table: output.table.clone(),
                    source,
                }));
            }
        }
    }
    // The segment model and the incremental state are published with the
    // outputs.
    let mut objects: Vec<(String, Vec<u8>, &str)> = Vec::new();
    if let Some((path, model)) = &model_file {
        let json = serde_json::to_vec_pretty(model).unwrap_or_default();
        objects.push((path.clone(), json, "model"));
    }
    if let Some((location, body)) = next_state {
        objects.push((location, body, "incremental state"));
    }
    for (location, body, what) in objects {
        match stage_object(ctx, &location, body.into(), run_id).await {
            Ok(done) => staged.push(done),
            Err(source) => {
                discard_staged(&staged).await;
                return Err(Error::Run(RunFailure::Output {
                    table: format!("{} {what}", plan.name),
                    source,
                }));
            }
        }
    }
    // A publish that fails part-way keeps what it staged: some outputs may
    // already be published from it, and the next run completes the rest
    // from the intent record (or removes the leftovers of a run without one).
    if let Err(source) = publish_outputs(ctx, &staged, plan.runs.as_deref(), run_id).await {
        return Err(Error::Run(RunFailure::Publish { source }));
    }
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
async fn check_quarantine(
    ctx: &SessionContext,
    source: &SourcePlan,
    quarantine: &Quarantine,
    plan_outputs: &[OutputPlan],
) -> Result<(StepReport, LineCounts), Error> {
    let started = Instant::now();
    let failed = |err| {
        Error::Run(RunFailure::Source {
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
        return Err(Error::Run(RunFailure::Rejected {
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
                ", which this run does not keep (add `{{ table: {table}, path: … }}` to `outputs` to keep it)"
            ));
        }
    }
    let report = StepReport {
        kind: "lines",
        name: source.name.clone(),
        rows: usize::try_from(total.loaded()).ok(),
        elapsed: started.elapsed(),
        detail,
    };
    Ok((report, total))
}

fn replace_table(ctx: &SessionContext, name: &str, batch: RecordBatch) -> Result<(), Error> {
    let to_error = |source| {
        Error::Run(RunFailure::Register {
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

/// `1.5 MiB` and the like.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
