//! [`RunFailure`]: how a run of a valid pipeline fails, naming the step,
//! the table or the source, and the file when one is to blame.

use crate::{segment, sink, source};

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

/// A failure while running a valid pipeline, naming the step. Boxed where
/// it is returned: it carries DataFusion's error, and every `Result` of the
/// run would otherwise be that large.
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
    /// The identity step failed.
    #[error("identity step failed: {source}")]
    Identity {
        /// What went wrong.
        #[source]
        source: crate::identity::IdentityError,
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
    /// A record published with the outputs (the segment model, the
    /// incremental state) could not be written as JSON; nothing was published.
    #[error("cannot write the {what} as JSON, nothing was published: {source}")]
    Record {
        /// `model` or `incremental state`.
        what: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
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
    /// An output holds personal data it does not declare, found in its
    /// values as it was about to be written; nothing was published.
    #[error(
        "personal data in an output that does not declare it, nothing was published: {}. Find where the SQL lets it through, pass it through pseudonym() or leave it out, or list the column in the output's `contains_personal_data` with a `purpose`",
        found.join("; ")
    )]
    PersonalData {
        /// Each output, column and kind found.
        found: Vec<String>,
    },
    /// The outputs were published, but removing the erased citizens or
    /// expired files from what earlier runs published failed; the next run
    /// tries again.
    #[error(
        "the outputs were published, but earlier versions and records could not be cleaned (erasure, retention): {source}; the next run tries again"
    )]
    Erasure {
        /// What failed.
        #[source]
        source: crate::sink::erase::EraseError,
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

impl RunFailure {
    /// The process exit code: 3 for a blocking check that failed, 1 for any
    /// other failure (outages included).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunFailure::ChecksFailed { .. } | RunFailure::PersonalData { .. } => 3,
            _ => 1,
        }
    }
}
