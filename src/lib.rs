//! civica: a batch data-lake ETL and citizen-segmentation engine for public administrations.
//!
//! A pipeline is one YAML file: sources (CSV, NDJSON, Parquet, access logs)
//! read from object storage into Apache Arrow, SQL transforms run by Apache
//! DataFusion, a k-means segmentation fitted with linfa, and outputs written
//! as Parquet. [`pipeline`] reads the YAML as written, [`plan`] checks it
//! into a [`plan::Plan`], and [`run`] prepares and runs it; ARCHITECTURE.md
//! maps the rest.

pub mod check;
pub mod cli;
pub mod demo;
pub mod faults;
pub mod pipeline;
pub mod plan;
pub mod run;
pub mod run_id;
pub mod segment;
pub mod sink;
pub mod source;
pub mod sql;
pub mod storage;
pub mod transform;

/// The exit code of a run skipped because another run of its pipeline
/// holds the lock: 75, `EX_TEMPFAIL` (try again later), as `flock -E 75`
/// in the README's crontab line.
pub const SKIPPED_EXIT_CODE: u8 = 75;

/// Everything that can stop a civica command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline has problems; each is listed with its file and position.
    #[error("{0}")]
    Invalid(pipeline::Diagnostics),
    /// The pipeline is right, but what it reads failed before any step
    /// ran: a store that cannot be reached, a missing or changed input, a
    /// damaged state, an unfinished earlier publish.
    #[error("{0}")]
    NotStarted(pipeline::Diagnostics),
    /// Another run of the pipeline holds its lock: this run did nothing.
    #[error("{0}")]
    Skipped(String),
    /// A step failed while running (boxed: a failure carries DataFusion's
    /// error, and every `Result` of the run would otherwise be that large).
    #[error(transparent)]
    Run(Box<RunFailure>),
    /// The demo lake could not be written.
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    /// The async runtime could not start (threads or file descriptors exhausted).
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl From<RunFailure> for Error {
    fn from(failure: RunFailure) -> Self {
        Error::Run(Box::new(failure))
    }
}

impl Error {
    /// The process exit code: 2 for an invalid pipeline or command line,
    /// 3 for a blocking check that failed, 1 for any other failed run
    /// (outages included).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_) => 2,
            Error::Skipped(_) => SKIPPED_EXIT_CODE,
            Error::Run(failure) if matches!(**failure, RunFailure::ChecksFailed { .. }) => 3,
            Error::NotStarted(_) | Error::Run(_) | Error::Demo(_) | Error::Runtime(_) => 1,
        }
    }
}

/// DataFusion's error, or the civica error inside it when there is one: a
/// damaged file is explained without DataFusion's wrapping.
fn describe(err: &datafusion::error::DataFusionError) -> String {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(inner) = current {
        if let Some(scan) = inner.downcast_ref::<source::lines::LineScanError>() {
            return scan.to_string();
        }
        current = inner.source();
    }
    err.to_string()
}

/// A source's read failure: civica's own message names the source already.
fn source_failure(name: &str, err: &datafusion::error::DataFusionError) -> String {
    let text = describe(err);
    if text.starts_with(&format!("source `{name}`: ")) {
        text
    } else {
        format!("reading source `{name}` failed: {text}")
    }
}

/// A failure while running a valid pipeline, naming the step.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// An SQL step failed.
    #[error(
        "transform `{step}` ({file}) failed: {}{}",
        describe(source),
        damaged.as_ref().map(|f| format!(" (in `{f}`, which cannot be read whole)")).unwrap_or_default()
    )]
    Transform {
        /// The step.
        step: String,
        /// Its SQL file.
        file: String,
        /// The NDJSON or Parquet file of a source it reads that fails when
        /// read alone, when the error comes from one.
        damaged: Option<String>,
        /// DataFusion's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// The segment step failed.
    #[error("segment step `{step}` failed: {source}")]
    Segment {
        /// The step.
        step: String,
        /// What went wrong.
        #[source]
        source: segment::SegmentError,
    },
    /// Writing an output failed; nothing was published.
    #[error("output `{table}` failed, nothing was published: {source}")]
    Output {
        /// The table.
        table: String,
        /// What went wrong.
        #[source]
        source: sink::SinkError,
    },
    /// A dead run's publish could not be completed: this run publishing
    /// over it would mix two runs, so it ran no step.
    #[error(
        "an earlier run's publish could not be completed, so this run ran no step and published nothing; that run's files and record are kept and the next run retries: {}",
        unfinished.join("; ")
    )]
    Unrecovered {
        /// Each unfinished publish and why.
        unfinished: Vec<String>,
    },
    /// Moving staged outputs into place failed.
    #[error(
        "publishing the outputs failed; what was staged is kept and the next run completes the publish: {source}"
    )]
    Publish {
        /// What went wrong.
        #[source]
        source: sink::SinkError,
    },
    /// A source has more unreadable lines than its pipeline allows.
    #[error(
        "source `{source_name}`: {rejected} of {lines} lines could not be read ({limit}), in {files}; first: {first}"
    )]
    Rejected {
        /// The source.
        source_name: String,
        /// Lines rejected.
        rejected: u64,
        /// Lines read.
        lines: u64,
        /// The files with rejected lines and how many each, worst first.
        files: String,
        /// The setting that was exceeded.
        limit: String,
        /// The first rejected lines, `file:line: reason`.
        first: String,
    },
    /// Reading a source failed (a damaged file, a line with `on_error: fail`).
    #[error("{}", source_failure(source_name, source))]
    Source {
        /// The source.
        source_name: String,
        /// DataFusion's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// The folder for step results on disk could not be made.
    #[error("cannot create the folder for step results `{folder}`: {source}")]
    Scratch {
        /// The folder.
        folder: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Blocking checks failed; nothing was published.
    #[error("{} blocking check(s) failed, nothing was published: {}", failed.len(), failed.join("; "))]
    ChecksFailed {
        /// Each failed check: table, name and what was found.
        failed: Vec<String>,
    },
    /// A check could not be run.
    #[error("{}", describe(source))]
    Check {
        /// DataFusion's error, naming the check.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// A computed table could not be registered.
    #[error("cannot register table `{table}`: {source}")]
    Register {
        /// The table.
        table: String,
        /// DataFusion's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
}
