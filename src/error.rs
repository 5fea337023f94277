//! [`Error`], everything that can stop a civica command, joined from each
//! layer's errors, and the process exit code of each.

use crate::demo::DemoError;
use crate::pipeline::Diagnostics;
use crate::run::{Problems, RunFailure};

/// The exit code of a run skipped because another run of its pipeline
/// holds the lock: 75, `EX_TEMPFAIL` (try again later), as `flock -E 75`
/// in the README's crontab line.
pub const SKIPPED_EXIT_CODE: u8 = 75;

/// Everything that can stop a civica command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline has problems; each is listed with its file and position.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// The pipeline is right, but what it reads failed before any step
    /// ran: a store that cannot be reached, a missing or changed input, a
    /// damaged state, an unfinished earlier publish.
    #[error("{0}")]
    NotStarted(Diagnostics),
    /// Another run of the pipeline holds its lock: this run did nothing.
    #[error("{0}")]
    Skipped(String),
    /// A step failed while running (boxed: a failure carries DataFusion's
    /// error, and every `Result` of the run would otherwise be that large).
    #[error(transparent)]
    Run(Box<RunFailure>),
    /// The demo lake could not be written.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// The async runtime could not start (threads or file descriptors exhausted).
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A file the command writes cannot be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

impl From<Box<RunFailure>> for Error {
    fn from(failure: Box<RunFailure>) -> Self {
        Error::Run(failure)
    }
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
            Error::NotStarted(Diagnostics(failed))
        } else {
            invalid.extend(failed);
            Error::Invalid(Diagnostics(invalid))
        }
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
            Error::Run(failure) => failure.exit_code(),
            Error::NotStarted(_) | Error::Demo(_) | Error::Runtime(_) | Error::Write { .. } => 1,
        }
    }
}

/// A message as civica shows or records it (on the terminal, in JSON
/// logs, in a run manifest): the user and password of URLs hidden, and
/// every value that is personal data (a codice fiscale a failing cast
/// quotes, a phone number, an e-mail, an IP address, an IBAN) replaced by
/// its kind.
pub fn shown(text: &str) -> String {
    crate::privacy::redact_text(&crate::storage::redact_credentials(text))
}
