//! Preparing a run: everything `validate` checks (the plan, the stores,
//! the sources' files, every step's SQL planned against their schemas),
//! and, for a run, the lock, the repair of what dead runs left, and what
//! incremental sources read.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::pipeline::{Diagnostic, display_path, load_spec};
use crate::plan::{
    OutputPlan, Plan, PlanOptions, ResourcesPlan, SegmentPlan, SourcePlan, Step, build_plan,
};
use crate::segment::{SegmentError, output_schemas, validate_segment_columns};
use crate::sink::{Recovery, recover};
use crate::source::functions::register_functions;
use crate::source::{list_source, register_listing};
use crate::storage::configure_store;
use crate::transform::plan_step;

use super::Prepared;
use super::lock::{LockError, take_lock};
use super::manifest::RunClock;
use super::state::{self, LoadState, Selection, state_location};
use crate::source::lines::BytesScanned;
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

/// Loads, checks and plans a pipeline. Every problem found is returned at
/// once. With `repair` (a run, not `validate`), what dead runs left is
/// repaired first (see [`recover`]).
pub async fn prepare(
    pipeline: &Path,
    opts: &PlanOptions,
    repair: bool,
) -> Result<Prepared, Problems> {
    let clock = RunClock::start();
    let opts = PlanOptions {
        run_id: Some(clock.run_id.clone()),
        ..opts.clone()
    };
    // Reading the pipeline and its SQL files is blocking file I/O: done on
    // a blocking thread, not on the runtime's.
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
    let (plan, mut diags) = loaded.map_err(|invalid| Problems {
        invalid,
        ..Problems::default()
    })?;
    let mut failures: Vec<Diagnostic> = Vec::new();
    let failure = |message: String| Diagnostic {
        file: display_path(pipeline),
        pos: None,
        message,
    };
    let ctx = match new_session(&plan.resources).await {
        Ok(ctx) => ctx,
        Err(err) => {
            failures.push(failure(err.to_string()));
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
    if let Some(message) = match plan.runs.as_deref() {
        Some(runs) => runs_folder_problem(runs).await,
        None => None,
    } {
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
        tracing::warn!(target: "civica::run", "{repair}");
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
                Err(err) => failures.push(failure(err.to_string())),
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
        tracing::warn!(target: "civica::run", "{ignored}");
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
                tracing::debug!(target: "civica::run", source = %source.name, location = %source.location, files = stats.files, "source registered");
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
        if let Err(err) = validate_partition_columns(&ctx, output).await {
            diags.push(Diagnostic::at(
                &plan.file,
                output.partition_pos,
                err.to_string(),
            ));
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
