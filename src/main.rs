//! The `civica` binary: parse the command line, set up logging, call the library, report errors, return an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use civica::cli::LogFormat;
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    restrict_file_modes();
    let cli = civica::cli::Cli::parse();
    let format = cli.log_format;
    init_logging(format, cli.quiet);
    match civica::cli::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err, format);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Outputs, quarantine tables, manifests, check results, models and the
/// state hold personal data: whatever the umask, what civica creates on a
/// local disk gives others no permission (files at most 0640, folders
/// 0750). A stricter umask is kept.
fn restrict_file_modes() {
    const NOTHING_FOR_OTHERS: libc::mode_t = 0o027;
    // SAFETY: `umask` only sets this process's file-creation mask and
    // cannot fail; it runs first in `main`, before any other thread.
    unsafe {
        let before = libc::umask(NOTHING_FOR_OTHERS);
        libc::umask(before | NOTHING_FOR_OTHERS);
    }
}

/// Logs go to stderr. In human format warnings and errors (errors only
/// with `--quiet`) unless `CIVICA_LOG` says otherwise, coloured when stderr
/// is a terminal and `NO_COLOR` is unset; in JSON, from `info` up unless
/// `CIVICA_LOG` says otherwise.
fn init_logging(format: LogFormat, quiet: bool) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match format {
        LogFormat::Human => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let filter = EnvFilter::try_from_env("CIVICA_LOG").unwrap_or_else(|_| {
                EnvFilter::new(if quiet { "civica=error" } else { "civica=warn" })
            });
            builder.with_env_filter(filter).with_ansi(colour).init();
        }
        LogFormat::Json => {
            let filter = EnvFilter::try_from_env("CIVICA_LOG")
                .unwrap_or_else(|_| EnvFilter::new("civica=info"));
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_env_filter(filter)
                .init();
        }
    }
}

/// Writes the error that ended the command: text lines, or JSON events
/// (one per problem of an invalid pipeline, then the outcome).
fn report(err: &civica::Error, format: LogFormat) {
    let exit_code = err.exit_code();
    if let civica::Error::Skipped(reason) = err {
        match format {
            LogFormat::Json => tracing::warn!(%reason, exit_code, "pipeline skipped"),
            LogFormat::Human => {
                let _ = writeln!(std::io::stderr().lock(), "skipped: {reason}");
            }
        }
        return;
    }
    if format == LogFormat::Json {
        match err {
            civica::Error::Invalid(diags) => {
                for diag in &diags.0 {
                    let problem = civica::error::shown(&diag.to_string());
                    tracing::error!(%problem, "invalid pipeline");
                }
            }
            civica::Error::NotStarted(diags) => {
                for diag in &diags.0 {
                    let problem = civica::error::shown(&diag.to_string());
                    tracing::error!(%problem, "run not started");
                }
            }
            _ => {}
        }
        let error = civica::error::shown(&err.to_string());
        tracing::error!(%error, exit_code, "pipeline failed");
        return;
    }
    let mut stderr = std::io::stderr().lock();
    match err {
        civica::Error::Invalid(diags) => {
            let _ = writeln!(stderr, "{}", civica::error::shown(&diags.to_string()));
            let _ = writeln!(stderr, "error: {} problem(s) found", diags.0.len());
        }
        civica::Error::NotStarted(diags) => {
            let _ = writeln!(stderr, "{}", civica::error::shown(&diags.to_string()));
            let _ = writeln!(
                stderr,
                "error: the run failed before its first step ({} problem(s)); nothing was published",
                diags.0.len()
            );
        }
        // Each error's message already carries its cause.
        other => {
            let text = civica::error::shown(&other.to_string());
            let _ = writeln!(stderr, "error: {text}");
        }
    }
}
