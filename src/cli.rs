//! The command line: `civica validate`, `civica run`, `civica demo`, parsed with clap and carried out through the library.

use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::Error;

/// Prints a line to stdout, ignoring a closed pipe (`civica run … | head`):
/// output is a courtesy, and losing it must not fail the run.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}
use crate::demo::{DemoOptions, write_demo_lake};
use crate::pipeline::{Diagnostic, Diagnostics, ResourcesSpec};
use crate::plan::{PlanOptions, Step};
use crate::run::{Prepared, RunEvent, StepReport, human_bytes, prepare, run_prepared};

/// civica: load a municipality's exports and logs, transform them with SQL,
/// segment citizens, publish Parquet.
#[derive(Debug, Parser)]
#[command(name = "civica", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// `human`: a table of steps on stdout, errors on stderr. `json`: one
    /// JSON object per line on stderr for every step, error and the
    /// outcome (for schedulers), nothing on stdout.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
}

/// How civica reports what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Human,
    /// JSON lines for machines.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a pipeline without running it: YAML, SQL, references, schemas.
    Validate(PipelineArgs),
    /// Run a pipeline: sources, transforms, segmentation, outputs.
    Run(PipelineArgs),
    /// Run a pipeline once per day of a date range, oldest first: each day
    /// is a whole run with its own publish and manifest. Stops at the first
    /// day that fails.
    Backfill(BackfillArgs),
    /// Write a synthetic demo lake for one municipality.
    Demo(DemoArgs),
}

/// Arguments of `civica backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The pipeline and what the command line adds to it.
    #[command(flatten)]
    pub target: PipelineTarget,
    /// The first run date, `YYYY-MM-DD`.
    #[arg(long, value_parser = parse_date)]
    pub from: NaiveDate,
    /// The last run date, `YYYY-MM-DD` (included).
    #[arg(long, value_parser = parse_date)]
    pub to: NaiveDate,
}

/// A pipeline and what the command line adds to it.
#[derive(Debug, Clone, Args)]
pub struct PipelineTarget {
    /// The pipeline YAML file.
    pub pipeline: PathBuf,
    /// Set a variable, overriding the pipeline's `vars`: `--var lake=/data/lake`.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Memory for DataFusion's operators (`512MiB`, `2GiB`); sorts,
    /// aggregations and joins spill to disk beyond it. Wins over the
    /// pipeline's `resources.memory_limit`.
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Where spilled data goes (default: the system's temporary folder).
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Partitions each query is split into (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub target_partitions: Option<usize>,
    /// Start over: incremental sources read every file, and `append`
    /// outputs are replaced by this run's file.
    #[arg(long)]
    pub full_refresh: bool,
}

/// Arguments naming a pipeline.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline and what the command line adds to it.
    #[command(flatten)]
    pub target: PipelineTarget,
    /// The run date, `YYYY-MM-DD` (default: yesterday): `{{ ds }}` in
    /// paths and SQL. The same as `--var ds=DATE`, and wins over it.
    #[arg(long, value_parser = parse_date)]
    pub date: Option<NaiveDate>,
}

/// Arguments of `civica demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The folder to write the lake to.
    #[arg(long, default_value = "lake")]
    pub out: PathBuf,
    /// How many citizens the municipality has.
    #[arg(long, default_value_t = 5000)]
    pub citizens: u64,
    /// How many days of calls and web logs, ending at `--end-date`.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Random seed: the same seed gives the same lake.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The last day of the lake, `YYYY-MM-DD`. Default: yesterday, the
    /// default run date of pipelines.
    #[arg(long, value_parser = parse_date)]
    pub end_date: Option<NaiveDate>,
}

/// A command-line value that cannot be read; clap shows it with the flag.
#[derive(Debug, thiserror::Error)]
enum BadValue {
    /// `--var` without `=`.
    #[error("`{0}` is not `NAME=VALUE`")]
    Var(String),
    /// A date flag that is not a date.
    #[error("`{0}` is not a date `YYYY-MM-DD`")]
    Date(String),
}

fn parse_var(text: &str) -> Result<(String, String), BadValue> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(BadValue::Var(text.to_string())),
    }
}

fn parse_date(text: &str) -> Result<NaiveDate, BadValue> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| BadValue::Date(text.to_string()))
}

/// Carries out a parsed command line.
pub fn execute(cli: Cli) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    // In JSON, the steps are log events (see `run_prepared`); stdout stays
    // empty.
    let quiet = cli.quiet || cli.log_format == LogFormat::Json;
    match cli.command {
        Command::Validate(args) => runtime.block_on(async {
            let prepared = prepare_or_report(&args, false).await?;
            if !quiet {
                print_validation_summary(&prepared);
            }
            Ok(())
        }),
        Command::Run(args) => runtime.block_on(run_pipeline(&args, quiet)),
        Command::Backfill(args) => runtime.block_on(backfill(args, quiet)),
        Command::Demo(args) => {
            let end_date = args.end_date.unwrap_or_else(|| {
                chrono::Local::now()
                    .date_naive()
                    .pred_opt()
                    .unwrap_or_default()
            });
            let summary = write_demo_lake(&DemoOptions {
                out: args.out.clone(),
                citizens: args.citizens,
                days: args.days,
                seed: args.seed,
                end_date,
            })?;
            if !quiet {
                say!(
                    "demo lake written to {}: {} citizens, {} service requests, {} calls, {} web log lines, {} files, {}",
                    args.out.display(),
                    summary.citizens,
                    summary.service_requests,
                    summary.calls,
                    summary.web_lines,
                    summary.files,
                    human_bytes(summary.bytes)
                );
            }
            Ok(())
        }
    }
}

/// `civica run`: prepares, runs, and prints each step as it finishes.
async fn run_pipeline(args: &PipelineArgs, quiet: bool) -> Result<(), Error> {
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
    tracing::info!(
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
async fn backfill(args: BackfillArgs, quiet: bool) -> Result<(), Error> {
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
        tracing::info!(ds = %day, "backfill day started");
        let run = PipelineArgs {
            target: args.target.clone(),
            date: Some(*day),
        };
        if let Err(err) = run_pipeline(&run, quiet).await {
            tracing::warn!(
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

/// Prepares a pipeline, repairing first what dead runs left when `repair`
/// (for a run).
async fn prepare_or_report(args: &PipelineArgs, repair: bool) -> Result<Prepared, Error> {
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

/// A live line on stderr naming the running step and its elapsed time,
/// redrawn ten times a second; only when stderr is a terminal.
struct Spinner {
    state: std::sync::Arc<std::sync::Mutex<SpinnerState>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct SpinnerState {
    /// The running step and when it started.
    current: Option<(String, std::time::Instant)>,
    /// The running step's scan, and the session's count of scanned bytes
    /// when it started.
    scan: Option<(crate::run::Scan, u64)>,
    /// Whether a line is drawn that must be erased.
    drawn: bool,
    stop: bool,
}

impl Spinner {
    /// A spinner, when stderr is a terminal.
    fn start() -> Option<Spinner> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let state = std::sync::Arc::new(std::sync::Mutex::new(SpinnerState::default()));
        let shared = std::sync::Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            for frame in FRAMES.iter().cycle() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let Ok(mut state) = shared.lock() else {
                    return;
                };
                if state.stop {
                    return;
                }
                if let Some((label, since)) = &state.current {
                    let progress = state.scan.as_ref().map(scan_progress).unwrap_or_default();
                    let line = format!(
                        "{frame} {label}  {progress}{:.1} s",
                        since.elapsed().as_secs_f64()
                    );
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                    state.drawn = true;
                }
            }
        });
        Some(Spinner {
            state,
            thread: Some(thread),
        })
    }

    /// Shows `label` as the running step, with a bar of the bytes it has
    /// scanned when it scans `scanned` bytes of CSV and log files.
    fn show(&self, label: String, scan: Option<crate::run::Scan>) {
        if let Ok(mut state) = self.state.lock() {
            state.current = Some((label, std::time::Instant::now()));
            state.scan = scan.map(|scan| {
                let before = scan.scanned.get();
                (scan, before)
            });
        }
    }

    /// Erases the line, before a step's line is printed.
    fn clear(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.current = None;
            if std::mem::take(&mut state.drawn) {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
        }
    }
}

/// A step's scan as a bar: `[########------------]  40%  1.2 of 3.0 GiB  `.
fn scan_progress((scan, before): &(crate::run::Scan, u64)) -> String {
    const WIDTH: u64 = 20;
    let total = scan.total;
    let done = scan.scanned.get().saturating_sub(*before).min(total);
    let filled = (done * WIDTH / total.max(1)) as usize;
    format!(
        "[{}{}] {:>3}%  {} of {}  ",
        "#".repeat(filled),
        "-".repeat(WIDTH as usize - filled),
        done * 100 / total.max(1),
        human_bytes(done),
        human_bytes(total)
    )
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
        if let Ok(mut state) = self.state.lock() {
            state.stop = true;
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn print_step(step: &StepReport) {
    let rows = step.rows.map(|r| format!("{r} rows")).unwrap_or_default();
    say!(
        "{:<9} {:<24} {:>12} {:>8.2} s  {}",
        step.kind,
        step.name,
        rows,
        step.elapsed.as_secs_f64(),
        step.detail
    );
}

fn print_validation_summary(prepared: &Prepared) {
    let plan = &prepared.plan;
    say!("{}: valid pipeline `{}`", plan.file, plan.name);
    say!(
        "  run date (ds): {}",
        plan.vars.get("ds").map(String::as_str).unwrap_or("-")
    );
    for (source, (_, stats, _)) in plan.sources.iter().zip(&prepared.sources) {
        let format = source.format.name();
        say!(
            "  source    {:<22} {:<20} {} file(s), {}",
            source.name,
            format,
            stats.files,
            human_bytes(stats.bytes)
        );
    }
    for step in &plan.steps {
        match step {
            Step::Sql(sql) => say!("  transform {:<22} {}", sql.name, sql.file),
            Step::Segment(seg) => say!(
                "  segment   {:<22} {} k={} on {} feature(s) of `{}`",
                seg.name,
                match seg.model.kind {
                    crate::plan::ModelKind::Kmeans(_) => "k-means",
                    crate::plan::ModelKind::Gmm => "gaussian mixture",
                },
                match seg.model.k {
                    crate::plan::KPlan::Fixed(k) => k.to_string(),
                    crate::plan::KPlan::Auto(min, max) => format!("auto ({min}..={max})"),
                },
                seg.features.len(),
                seg.from
            ),
        }
    }
    for output in &plan.outputs {
        say!("  output    {:<22} {}", output.table, output.location);
    }
}
