//! The orchestrator: preparing a pipeline (everything `validate` checks, including planning SQL against the sources' schemas) and running it step by step.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::segment::{SegmentError, check_segment_columns, fit_segments, output_schemas};
use crate::sink::{StagedOutput, discard_staged, publish_outputs, stage_output};
use crate::source::{SourceStats, register_source};
use crate::spec::{
    CheckOptions, Diagnostic, OnError, Plan, SegmentPlan, Step, check_spec, load_spec,
};
use crate::transform::{plan_step, run_step};
use crate::{Error, RunFailure};

/// A pipeline whose every check passed, with its session ready to run.
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// The session with sources registered and steps planned.
    pub ctx: SessionContext,
    /// What each source registration found, by source order.
    pub sources: Vec<(String, SourceStats, Duration)>,
}

/// Loads, checks and plans a pipeline. Every problem found is returned at once.
pub async fn prepare(pipeline: &Path, opts: &CheckOptions) -> Result<Prepared, Vec<Diagnostic>> {
    let spec = load_spec(pipeline)?;
    let (plan, mut diags) = check_spec(&spec, pipeline, opts);
    let ctx = new_session();
    let mut sources = Vec::new();
    // Tables that failed: steps reading them are skipped rather than
    // reported again as reading an unknown table.
    let mut failed: BTreeSet<String> = plan.unavailable.clone();
    for source in &plan.sources {
        let started = Instant::now();
        match register_source(&ctx, source).await {
            Ok(stats) => {
                tracing::debug!(source = %source.name, location = %source.location, files = stats.files, "source registered");
                sources.push((source.name.clone(), stats, started.elapsed()));
            }
            Err(err) => {
                failed.insert(source.name.clone());
                diags.push(Diagnostic::at(
                    &plan.file,
                    source.pos,
                    format!("source `{}`: {err}", source.name),
                ));
            }
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
    if diags.is_empty() {
        Ok(Prepared { plan, ctx, sources })
    } else {
        Err(diags)
    }
}

/// A session with one partition per core.
fn new_session() -> SessionContext {
    let config = SessionConfig::new().with_information_schema(true);
    SessionContext::new_with_config(config)
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
    let (segments, profiles) = output_schemas(seg, &id_type);
    for (name, schema) in [(&seg.name, segments), (&seg.profiles, profiles)] {
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
    /// Lines a source could not read (sources only).
    pub rejected: usize,
    /// The first of them, `file:line: reason`.
    pub rejected_samples: Vec<String>,
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
/// published together. `report` is called as each step finishes.
pub async fn run_prepared(
    prepared: Prepared,
    report: &mut dyn FnMut(&StepReport),
) -> Result<RunSummary, Error> {
    let started = Instant::now();
    let Prepared { plan, ctx, sources } = prepared;
    let mut steps = Vec::new();
    let mut record = |step: StepReport, steps: &mut Vec<StepReport>| {
        tracing::info!(
            kind = step.kind,
            table = %step.name,
            rows = step.rows,
            elapsed_ms = step.elapsed.as_millis() as u64,
            "step finished"
        );
        report(&step);
        steps.push(step);
    };
    for (name, stats, elapsed) in sources {
        let mut detail = format!("{} file(s), {}", stats.files, human_bytes(stats.bytes));
        if stats.rejected > 0 {
            detail.push_str(&format!(
                ", {} line(s) rejected, first: {}",
                stats.rejected,
                stats.rejected_samples.join("; ")
            ));
        }
        record(
            StepReport {
                kind: "source",
                name,
                rows: stats.rows,
                elapsed,
                detail,
                rejected: stats.rejected,
                rejected_samples: stats.rejected_samples,
            },
            &mut steps,
        );
    }
    check_rejected(&plan, &steps)?;
    for step in &plan.steps {
        let step_started = Instant::now();
        match step {
            Step::Sql(sql) => {
                let rows = run_step(&ctx, sql).await.map_err(|source| {
                    Error::Run(RunFailure::Transform {
                        step: sql.name.clone(),
                        file: sql.file.clone(),
                        source,
                    })
                })?;
                record(
                    StepReport {
                        kind: "transform",
                        name: sql.name.clone(),
                        rows: Some(rows),
                        elapsed: step_started.elapsed(),
                        detail: sql.file.clone(),
                        ..StepReport::default()
                    },
                    &mut steps,
                );
            }
            Step::Segment(seg) => {
                let result = fit_segments(&ctx, seg).await.map_err(|source| {
                    Error::Run(RunFailure::Segment {
                        step: seg.name.clone(),
                        source,
                    })
                })?;
                replace_table(&ctx, &seg.name, result.segments.clone())?;
                replace_table(&ctx, &seg.profiles, result.profiles.clone())?;
                record(
                    StepReport {
                        kind: "segment",
                        name: seg.name.clone(),
                        rows: Some(result.rows),
                        elapsed: step_started.elapsed(),
                        detail: format!(
                            "k-means k={}, inertia {:.1}",
                            seg.kmeans.k, result.inertia
                        ),
                        ..StepReport::default()
                    },
                    &mut steps,
                );
            }
        }
    }
    let run_id = format!("{}-{}", std::process::id(), started.elapsed().as_nanos());
    let mut staged: Vec<StagedOutput> = Vec::new();
    for output in &plan.outputs {
        let output_started = Instant::now();
        match stage_output(&ctx, output, &run_id).await {
            Ok(done) => {
                record(
                    StepReport {
                        kind: "output",
                        name: done.table.clone(),
                        rows: Some(done.rows),
                        elapsed: output_started.elapsed(),
                        detail: format!(
                            "{}{} ({})",
                            done.location,
                            crate::sink::OUTPUT_FILE,
                            human_bytes(done.bytes)
                        ),
                        ..StepReport::default()
                    },
                    &mut steps,
                );
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
    if let Err(source) = publish_outputs(&staged).await {
        discard_staged(&staged).await;
        return Err(Error::Run(RunFailure::Publish { source }));
    }
    Ok(RunSummary {
        pipeline: plan.name,
        steps,
        elapsed: started.elapsed(),
    })
}

/// Fails the run when a source rejected more lines than it allows.
fn check_rejected(plan: &Plan, reports: &[StepReport]) -> Result<(), Error> {
    for source in &plan.sources {
        let Some(report) = reports
            .iter()
            .find(|r| r.kind == "source" && r.name == source.name)
        else {
            continue;
        };
        let (rejected, samples) = (&report.rejected, &report.rejected_samples);
        if *rejected == 0 {
            continue;
        }
        let lines = report.rows.unwrap_or(0) + rejected;
        let ratio = *rejected as f64 / lines.max(1) as f64;
        let limit = match source.on_error {
            OnError::Fail => Some("`on_error: fail`".to_string()),
            OnError::Quarantine if ratio > source.max_rejected_ratio => Some(format!(
                "{:.1}% is above `max_rejected_ratio` {}",
                ratio * 100.0,
                source.max_rejected_ratio
            )),
            OnError::Quarantine => None,
        };
        if let Some(limit) = limit {
            return Err(Error::Run(RunFailure::Rejected {
                source_name: source.name.clone(),
                rejected: *rejected,
                lines,
                limit,
                first: samples.join("; "),
            }));
        }
    }
    Ok(())
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
