//! Preparing a run: everything `validate` checks (the plan, the stores,
//! the sources' files, every step's SQL planned against their schemas),
//! and, for a run, the lock, the repair of what dead runs left, and what
//! incremental sources read.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::functions::register_functions;
use crate::pipeline::{Diagnostic, display_path, load_spec};
use crate::plan::{
    OutputPlan, Plan, PlanOptions, ResourcesPlan, SegmentPlan, SourcePlan, Step, build_plan,
};
use crate::privacy::Lineage;
use crate::segment::{SegmentError, left_out_query, output_schemas, validate_segment_columns};
use crate::sink::{Recovery, recover};
use crate::source::{Listing, SourceStats, list_source, register_listing};
use crate::storage::configure_store;
use crate::transform::plan_step;

use super::Prepared;
use super::lock::{LockError, RunLock, take_lock};
use super::manifest::RunClock;
use super::protect::{
    guard_outputs, load_pseudonym_key, protect_sources, read_erasure_list, record_segment,
    tag_sources,
};
use super::state::{self, LoadState, Selection, state_location};
use crate::source::lines::BytesScanned;
/// Every location a run publishes to: its outputs, its segment model and
/// its incremental state.
fn published_locations(plan: &Plan) -> Vec<String> {
    let mut folders: Vec<String> = plan.outputs.iter().map(|o| o.location.clone()).collect();
    folders.extend(plan.steps.iter().filter_map(|step| match step {
        Step::Segment(seg) => seg.model_path.clone(),
        Step::Sql(_) | Step::Identity(_) => None,
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

/// What the stages of [`prepare`] found so far. A stage adds to it and
/// reads it: most stages run only while nothing has been found, and steps
/// reading a table that failed are not planned (they would only report an
/// unknown table again).
pub(super) struct Findings {
    /// The pipeline file, as messages name it.
    pub(super) file: String,
    /// Mistakes in the pipeline, its SQL or the command line.
    pub(super) invalid: Vec<Diagnostic>,
    /// Failures of what the pipeline reads or writes.
    pub(super) failures: Vec<Diagnostic>,
    /// Tables that could not be made.
    pub(super) failed: BTreeSet<String>,
}

impl Findings {
    /// Whether nothing is wrong so far.
    pub(super) fn clean(&self) -> bool {
        self.invalid.is_empty() && self.failures.is_empty()
    }

    /// A failure of the whole pipeline, with no line to point at.
    fn fail(&mut self, message: String) {
        self.failures.push(Diagnostic {
            file: self.file.clone(),
            pos: None,
            message,
        });
    }

    fn into_problems(self) -> Problems {
        Problems {
            invalid: self.invalid,
            failed: self.failures,
            skipped: None,
        }
    }
}

/// Loads, checks and plans a pipeline. Every problem found is returned at
/// once. With `repair` (a run, not `validate`), the run takes the
/// pipeline's lock and repairs what dead runs left (see [`recover`])
/// before it reads any state or source.
///
/// The stages, in order:
/// 1. read and plan the YAML and SQL files (`load_and_plan`);
/// 2. make the session and every store;
/// 3. for a run: take the lock, then recover (both before anything is read);
/// 4. read the incremental state, list the sources, choose what is new;
/// 5. register the sources, plan every step, check and output against
///    their schemas.
pub async fn prepare(
    pipeline: &Path,
    opts: &PlanOptions,
    repair: bool,
) -> Result<Prepared, Problems> {
    let clock = RunClock::start();
    let (plan, invalid) = load_and_plan(pipeline, opts, &clock).await?;
    let mut found = Findings {
        file: display_path(pipeline),
        invalid,
        failures: Vec::new(),
        failed: plan.unavailable.clone(),
    };
    let ctx = match new_session(&plan.resources).await {
        Ok(ctx) => ctx,
        Err(err) => {
            found.fail(err.to_string());
            return Err(found.into_problems());
        }
    };
    let key = load_pseudonym_key(&ctx, &plan, &mut found);
    configure_stores(&ctx, &plan, &mut found).await;
    let lock = match repair && found.clean() {
        true => take_run_lock(&ctx, &plan, &clock, &mut found).await?,
        false => None,
    };
    // What dead runs left is repaired before this run reads anything: a
    // publish they left half-way is completed before this run reads the
    // state or the sources it moves on.
    let recovery = match repair && found.clean() {
        true => recover(&ctx, plan.runs.as_deref(), &published_locations(&plan)).await,
        false => Recovery::default(),
    };
    for repair in &recovery.repairs {
        tracing::warn!(target: "civica::run", "{repair}");
    }
    let load_state = read_state(&ctx, &plan, &recovery, &mut found).await;
    let listings = list_sources(&ctx, &plan, &mut found).await;
    let selection = match found.clean() && recovery.unfinished.is_empty() {
        true => select_new_inputs(&ctx, &listings, &load_state, &clock, repair, &mut found).await,
        false => Selection::default(),
    };
    for ignored in &selection.ignored {
        tracing::warn!(target: "civica::run", "{ignored}");
    }
    let erasure_list = read_erasure_list(&ctx, &plan, key.is_some(), &mut found).await;
    let mut sources = register_sources(&ctx, listings, &selection, &mut found).await;
    let erased = protect_sources(&ctx, &plan, erasure_list, key.is_some(), &mut found).await;
    let mut lineage = tag_sources(&ctx, &plan, &mut found).await;
    plan_steps(&ctx, &plan, &mut lineage, &mut found).await;
    plan_quality_checks(&ctx, &plan, &mut found).await;
    validate_partitions(&ctx, &plan, &mut found).await;
    guard_outputs(&plan, &lineage, &mut found);
    if !found.clean() {
        if let Some(lock) = lock {
            lock.release().await;
        }
        // Beside other problems (a store that cannot be reached), an
        // unfinished publish is one of them.
        for unfinished in recovery.unfinished {
            found.fail(unfinished);
        }
        return Err(found.into_problems());
    }
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
        pseudonym_key: key,
        lineage,
        erased,
    })
}

/// Reads the pipeline and its SQL files and builds the plan, on a blocking
/// thread (it is file I/O). The plan comes back with its problems; a
/// pipeline that cannot be read or parsed is an error.
async fn load_and_plan(
    pipeline: &Path,
    opts: &PlanOptions,
    clock: &RunClock,
) -> Result<(Plan, Vec<Diagnostic>), Problems> {
    let opts = PlanOptions {
        run_id: Some(clock.run_id.clone()),
        ..opts.clone()
    };
    let path = pipeline.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || {
        let spec = load_spec(&path)?;
        Ok::<_, Vec<Diagnostic>>(build_plan(&spec, &path, &opts))
    })
    .await
    .unwrap_or_else(|err| {
        Err(vec![Diagnostic {
            file: display_path(pipeline),
            pos: None,
            message: format!("reading the pipeline stopped: {err}"),
        }])
    });
    loaded.map_err(|invalid| Problems {
        invalid,
        ..Problems::default()
    })
}

/// Builds every store once, with the pipeline's `storage` settings, and
/// checks that the runs folder is not a file.
async fn configure_stores(ctx: &SessionContext, plan: &Plan, found: &mut Findings) {
    for (location, pos) in plan
        .sources
        .iter()
        .map(|s| (&s.location, s.pos))
        .chain(plan.outputs.iter().map(|o| (&o.location, o.pos)))
    {
        if let Err(err) = configure_store(ctx, location, &plan.storage) {
            found
                .invalid
                .push(Diagnostic::at(&plan.file, pos, err.to_string()));
        }
    }
    if let Some(runs) = plan.runs.as_deref()
        && let Some(message) = runs_folder_problem(runs).await
    {
        found.fail(message);
    }
}

/// One run of a pipeline at a time: a run takes the lock before it
/// repairs or reads anything. A lock held by a live run skips this one.
async fn take_run_lock(
    ctx: &SessionContext,
    plan: &Plan,
    clock: &RunClock,
    found: &mut Findings,
) -> Result<Option<RunLock>, Problems> {
    let Some(runs) = plan.runs.as_deref() else {
        return Ok(None);
    };
    match take_lock(ctx, runs, &plan.name, &clock.run_id).await {
        Ok(taken) => Ok(Some(taken)),
        Err(LockError::Held(holder)) => Err(Problems {
            skipped: Some(holder),
            ..Problems::default()
        }),
        Err(LockError::Failed(message)) => {
            found.fail(message);
            Ok(None)
        }
    }
}

/// What incremental sources read before, unless this run starts over (or a
/// publish is unfinished: the run will fail on it).
async fn read_state(
    ctx: &SessionContext,
    plan: &Plan,
    recovery: &Recovery,
    found: &mut Findings,
) -> LoadState {
    if !plan.sources.iter().any(|s| s.incremental)
        || plan.full_refresh
        || !recovery.unfinished.is_empty()
    {
        return LoadState::default();
    }
    let Some(runs) = &plan.runs else {
        found.invalid.push(Diagnostic {
            file: plan.file.clone(),
            pos: None,
            message: "incremental sources keep their state in the `runs` folder: set `runs`"
                .to_string(),
        });
        return LoadState::default();
    };
    match state::load_state(ctx, &state_location(runs, &plan.name)).await {
        Ok(loaded) => loaded,
        Err(err) => {
            found.fail(err.to_string());
            LoadState::default()
        }
    }
}

/// A source's listing, with when its listing started.
type Listed<'a> = (&'a SourcePlan, Listing, Instant);

/// Lists every source's files.
async fn list_sources<'a>(
    ctx: &SessionContext,
    plan: &'a Plan,
    found: &mut Findings,
) -> Vec<Listed<'a>> {
    let mut listings = Vec::new();
    for source in &plan.sources {
        let started = Instant::now();
        match list_source(ctx, source).await {
            Ok(listing) => listings.push((source, listing, started)),
            Err(err) => fail_source(found, source, &err),
        }
    }
    listings
}

/// Chooses what incremental sources read in this run: new files, and
/// changed ones as their `on_changed_input` says. `validate` does not hash
/// new objects: only a run records them.
async fn select_new_inputs(
    ctx: &SessionContext,
    listings: &[Listed<'_>],
    load_state: &LoadState,
    clock: &RunClock,
    repair: bool,
    found: &mut Findings,
) -> Selection {
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
    if incremental.is_empty() {
        return Selection::default();
    }
    match state::select_inputs(ctx, &incremental, load_state, &clock.run_id, repair).await {
        Ok(selected) => selected,
        Err(errors) => {
            for message in errors {
                found.fail(message);
            }
            Selection::default()
        }
    }
}

/// Registers every listed source as a table (incremental ones with the
/// files chosen for this run), recording each file's content hash.
async fn register_sources(
    ctx: &SessionContext,
    listings: Vec<Listed<'_>>,
    selection: &Selection,
    found: &mut Findings,
) -> Vec<(String, SourceStats, Duration)> {
    let mut sources = Vec::new();
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
        match register_listing(ctx, listing, read).await {
            Ok(mut stats) => {
                if let Some(listed) = chosen {
                    for input in &mut stats.inputs {
                        input.sha256 = listed
                            .iter()
                            .find(|l| input.path == format!("{store_url}{}", l.meta.location))
                            .and_then(|l| l.sha256.clone());
                    }
                }
                tracing::debug!(target: "civica::run", source = %source.name, location = %source.location, files = stats.files, "source registered");
                sources.push((source.name.clone(), stats, started.elapsed()));
            }
            Err(err) => fail_source(found, source, &err),
        }
    }
    sources
}

/// Plans every SQL step against the tables before it, and the segment
/// step against its input, in order, following the tags of their columns;
/// a step that fails marks what it makes as failed.
async fn plan_steps(
    ctx: &SessionContext,
    plan: &Plan,
    lineage: &mut Lineage,
    found: &mut Findings,
) {
    for step in &plan.steps {
        let reads_failed = match step {
            Step::Sql(sql) => sql
                .reads
                .iter()
                .any(|(name, _)| found.failed.contains(name)),
            Step::Segment(seg) => found.failed.contains(&seg.from),
            Step::Identity(identity) => identity.reads().any(|t| found.failed.contains(t)),
        };
        let result = if reads_failed {
            Err(Vec::new())
        } else {
            match step {
                Step::Sql(sql) => {
                    let keeps = plan.profiling_filter(&sql.name);
                    plan_step(ctx, sql, keeps.as_deref())
                        .await
                        .map(|planned| {
                            for mismatch in lineage.pseudonym_joins(&planned.query) {
                                tracing::warn!(target: "civica::run", "transform `{}` ({}): {mismatch}", sql.name, sql.file);
                            }
                            match &planned.kept {
                                Some(kept) => {
                                    let all = crate::transform::before_profiling(&sql.name);
                                    lineage.record_hidden(&all, &planned.query);
                                    lineage.record_step(&sql.name, kept);
                                }
                                None => lineage.record_step(&sql.name, &planned.query),
                            }
                        })
                        .map_err(|diag| vec![diag])
                }
                Step::Identity(identity) => {
                    super::identify::plan_identity(ctx, identity, &plan.file)
                        .await
                        .map(|_| super::identify::record_identity(identity, lineage))
                }
                Step::Segment(seg) => plan_segment(ctx, seg, &plan.file)
                    .await
                    .map(|()| record_segment(seg, lineage)),
            }
        };
        if let Err(mut more) = result {
            found.invalid.append(&mut more);
            found
                .failed
                .extend(step.produces().into_iter().map(str::to_string));
        }
    }
}

/// Plans every data-quality check's query against its table.
async fn plan_quality_checks(ctx: &SessionContext, plan: &Plan, found: &mut Findings) {
    for check in &plan.checks {
        if found.failed.contains(&check.table) {
            continue;
        }
        if let Err(err) = crate::check::plan_check(ctx, check).await {
            found.invalid.push(Diagnostic::at(
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
}

/// Validates each partitioned output's `partition_by` against its table.
async fn validate_partitions(ctx: &SessionContext, plan: &Plan, found: &mut Findings) {
    for output in plan.outputs.iter().filter(|o| !o.partition_by.is_empty()) {
        if found.failed.contains(&output.table) {
            continue;
        }
        if let Err(err) = validate_partition_columns(ctx, output).await {
            found.invalid.push(Diagnostic::at(
                &plan.file,
                output.partition_pos,
                err.to_string(),
            ));
        }
    }
}

/// Records a source that could not be listed or registered: its problem
/// (naming the source once) among the failures, and its table as failed,
/// so that steps reading it are not checked further.
fn fail_source(found: &mut Findings, source: &SourcePlan, err: &crate::source::SourceError) {
    let text = err.to_string();
    let named = format!("source `{}`: ", source.name);
    let message = match text.starts_with(&named) {
        true => text,
        false => format!("{named}{text}"),
    };
    found.failed.insert(source.name.clone());
    found
        .failures
        .push(Diagnostic::at(&found.file, source.pos, message));
}

/// What is wrong with a local runs folder that exists but is not a folder.
async fn runs_folder_problem(runs: &str) -> Option<String> {
    let path = crate::storage::local_path_of(runs)?;
    let meta = tokio::fs::metadata(&path).await.ok()?;
    (!meta.is_dir()).then(|| {
        format!(
            "the runs folder `{}` is a file, not a folder: move the file away or set `runs` to a folder",
            path.display()
        )
    })
}

/// Why an output cannot be partitioned as its `partition_by` says.
#[derive(Debug, thiserror::Error)]
enum PartitionColumnsError {
    /// The table cannot be planned.
    #[error("{0}")]
    Table(#[from] datafusion::error::DataFusionError),
    /// A partition column the table does not have.
    #[error(
        "`partition_by` names `{missing}`, which is not a column of `{table}` (columns: {columns})"
    )]
    NotAColumn {
        /// The column.
        missing: String,
        /// The table.
        table: String,
        /// Its columns, comma-separated.
        columns: String,
    },
    /// Every column is a partition column.
    #[error("`partition_by` takes every column of `{0}`: the files would have none")]
    EveryColumn(String),
}

/// Whether an output's partition columns are columns of its table, and
/// leave at least one column for the files.
async fn validate_partition_columns(
    ctx: &SessionContext,
    output: &OutputPlan,
) -> Result<(), PartitionColumnsError> {
    let table = ctx.table(output.table.as_str()).await?;
    let schema = table.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if let Some(missing) = output
        .partition_by
        .iter()
        .find(|c| !names.contains(&c.as_str()))
    {
        return Err(PartitionColumnsError::NotAColumn {
            missing: missing.clone(),
            table: output.table.clone(),
            columns: names.join(", "),
        });
    }
    if output.partition_by.len() >= names.len() {
        return Err(PartitionColumnsError::EveryColumn(output.table.clone()));
    }
    Ok(())
}

/// Why a run's DataFusion session cannot be made.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    /// The spill folder cannot be created.
    #[error("cannot create the spill folder `{}`: {source}", dir.display())]
    SpillFolder {
        /// The folder.
        dir: std::path::PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// DataFusion's runtime cannot be built.
    #[error("{0}")]
    Runtime(#[from] datafusion::error::DataFusionError),
}

/// A session with the plan's resources: one partition per core unless the
/// plan or the environment (`DATAFUSION_*` variables) says otherwise, a
/// spilling memory pool when a memory limit is set, and spill files in the
/// plan's folder.
async fn new_session(resources: &ResourcesPlan) -> Result<SessionContext, SessionError> {
    let mut config = SessionConfig::from_env()
        .unwrap_or_else(|err| {
            tracing::warn!(target: "civica::run", %err, "ignoring DATAFUSION_* settings");
            SessionConfig::new()
        })
        .with_information_schema(true)
        .with_extension(Arc::new(BytesScanned::default()));
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
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| SessionError::SpillFolder {
                dir: dir.clone(),
                source,
            })?;
        runtime = runtime.with_temp_file_path(dir);
    }
    let runtime = runtime.build_arc()?;
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
    let problems = validate_segment_columns(seg, &schema);
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
    if let (Some(profiling), Some(count)) = (&seg.profiling, left_out_query(ctx, seg)) {
        // Its table and flag columns exist, and the flags are booleans.
        let problem = |key: &str, err: String| {
            vec![Diagnostic::at(
                file,
                profiling.located.pos_of(key),
                format!("in `profiling`: {err}"),
            )]
        };
        let flags = ctx
            .table(profiling.table.as_str())
            .await
            .map_err(|err| problem("table", crate::sql::problem_from_error(&err, "").message))?;
        let named = [
            ("consent", "consented", &profiling.consent),
            ("objection", "objected", &profiling.objection),
        ];
        for (key, meaning, column) in named {
            let Some(column) = column else { continue };
            match flags.schema().field_with_unqualified_name(column) {
                Ok(field) if field.data_type() == &DataType::Boolean => {}
                Ok(field) => {
                    return Err(problem(
                        key,
                        format!(
                            "`{column}` of `{}` is {}, not a boolean (`true` where the citizen {meaning})",
                            profiling.table,
                            field.data_type()
                        ),
                    ));
                }
                Err(_) => {
                    return Err(problem(
                        key,
                        format!("`{}` has no column `{column}`", profiling.table),
                    ));
                }
            }
        }
        ctx.sql(&count)
            .await
            .map_err(|err| problem("id", crate::sql::problem_from_error(&err, "").message))?;
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
