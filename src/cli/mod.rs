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
mod commands;
mod print;
mod progress;

use self::commands::{backfill, prepare_or_report, privacy_record, run_pipeline};
use self::print::print_validation_summary;
use crate::demo::{DemoOptions, write_demo_lake};
use crate::run::human_bytes;

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
    /// Write the pipeline's record of processing (GDPR art. 30): purposes,
    /// legal basis, categories of data and of data subjects, recipients,
    /// retention, safeguards and the DPIA criteria it meets.
    PrivacyRecord(PrivacyRecordArgs),
}

/// Arguments of `civica privacy-record`.
#[derive(Debug, Args)]
pub struct PrivacyRecordArgs {
    /// The pipeline, as `validate` takes it.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The language of the Markdown record.
    #[arg(long, value_enum, default_value = "it")]
    pub lang: Lang,
    /// `markdown` (for people) or `json` (for tools).
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: RecordFormat,
    /// Write it to this file instead of the standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// A language of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Italian.
    It,
    /// English.
    En,
}

/// How the record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordFormat {
    /// Markdown.
    Markdown,
    /// JSON.
    Json,
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
        Command::PrivacyRecord(args) => runtime.block_on(privacy_record(&args)),
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
                    "demo lake written to {}: {} citizens, {} service requests, {} calls, {} desk visits, {} e-mails, {} web log lines, {} files, {}",
                    args.out.display(),
                    summary.citizens,
                    summary.service_requests,
                    summary.calls,
                    summary.desk_visits,
                    summary.emails,
                    summary.web_lines,
                    summary.files,
                    human_bytes(summary.bytes)
                );
                say!(
                    "its pseudonym key: CIVICA_PSEUDONYM_KEY_FILE={}",
                    summary.key_file.display()
                );
            }
            Ok(())
        }
    }
}
