//! `civica run`, `civica backfill` and the preparing `civica validate`
//! shares with them: a pipeline and its command line turned into a run,
//! its steps printed as they finish.

use std::io::Write;

use chrono::NaiveDate;

use super::print::print_step;
use super::progress::Spinner;
use super::{BackfillArgs, Lang, PipelineArgs, PrivacyRecordArgs, RecordFormat};
use crate::Error;
use crate::pipeline::{Diagnostic, Diagnostics, ResourcesSpec};
use crate::plan::PlanOptions;
use crate::run::{Prepared, RunEvent, prepare, run_prepared};

/// `civica run`: prepares, runs, and prints each step as it finishes.
pub(super) async fn run_pipeline(args: &PipelineArgs, quiet: bool) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let prepared = prepare_or_report(args, true).await?;
    let spinner = (!quiet).then(Spinner::start).flatten();
    let mut print = |event: RunEvent| match event {
        RunEvent::Started { kind, table, scan } => {
            if let Some(spinner) = &spinner {
                spinner.show(format!("{kind} {table}"), scan);
            }
        }
        RunEvent::Finished(step) => {
            if let Some(spinner) = &spinner {
                spinner.clear();
            }
            if !quiet {
                print_step(step);
            }
        }
    };
    let result = run_prepared(prepared, &mut print).await;
    drop(spinner);
    let summary = result?;
    tracing::info!(target: "civica::cli",
        pipeline = %summary.pipeline,
        elapsed_ms = started.elapsed().as_millis() as u64,
        exit_code = 0,
        "pipeline finished"
    );
    if !quiet {
        say!(
            "pipeline `{}` finished in {:.2} s",
            summary.pipeline,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `civica backfill`: one run per day, oldest first, stopping at the
/// first failure.
pub(super) async fn backfill(args: BackfillArgs, quiet: bool) -> Result<(), Error> {
    if args.to < args.from {
        return Err(Error::Invalid(Diagnostics(vec![Diagnostic {
            file: "command line".to_string(),
            pos: None,
            message: format!("`--to {}` is before `--from {}`", args.to, args.from),
        }])));
    }
    let days: Vec<NaiveDate> = args
        .from
        .iter_days()
        .take_while(|d| *d <= args.to)
        .collect();
    for (done, day) in days.iter().enumerate() {
        if !quiet {
            say!("== {day} ({} of {})", done + 1, days.len());
        }
        tracing::info!(target: "civica::cli", ds = %day, "backfill day started");
        let run = PipelineArgs {
            target: args.target.clone(),
            date: Some(*day),
        };
        if let Err(err) = run_pipeline(&run, quiet).await {
            tracing::warn!(target: "civica::cli",
                "backfill stopped at {day}: {done} day(s) published before it, {} not run",
                days.len() - done - 1
            );
            return Err(err);
        }
    }
    if !quiet {
        say!(
            "backfill finished: {} day(s), {} to {}",
            days.len(),
            args.from,
            args.to
        );
    }
    Ok(())
}

/// `civica privacy-record`: the record of processing of a pipeline that
/// validates, as Markdown or JSON, to the standard output or a file.
pub(super) async fn privacy_record(args: &PrivacyRecordArgs) -> Result<(), Error> {
    let prepared = prepare_or_report(&args.pipeline, false).await?;
    let record = crate::privacy::record::record(&prepared.plan, &prepared.lineage);
    let mut text = match args.format {
        RecordFormat::Markdown => crate::privacy::record::markdown(&record, args.lang == Lang::It),
        RecordFormat::Json => serde_json::to_string_pretty(&record).unwrap_or_default(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        }),
        None => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            Ok(())
        }
    }
}

/// Prepares a pipeline, repairing first what dead runs left when `repair`
/// (for a run).
pub(super) async fn prepare_or_report(
    args: &PipelineArgs,
    repair: bool,
) -> Result<Prepared, Error> {
    let target = &args.target;
    let mut vars = target.vars.clone();
    if let Some(date) = args.date {
        // The last `ds` given is the one used.
        vars.push(("ds".to_string(), date.format("%Y-%m-%d").to_string()));
    }
    let opts = PlanOptions {
        vars,
        resources: ResourcesSpec {
            memory_limit: target.memory_limit.clone(),
            spill_dir: target.spill_dir.as_ref().map(|d| d.display().to_string()),
            target_partitions: target.target_partitions,
        },
        full_refresh: target.full_refresh,
        ..PlanOptions::default()
    };
    prepare(&target.pipeline, &opts, repair)
        .await
        .map_err(Error::from)
}
