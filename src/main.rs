//! The `civica` binary: parse the command line, call the library, print errors, return an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = civica::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CIVICA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match civica::cli::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            match &err {
                civica::Error::Invalid(diags) => {
                    let _ = writeln!(stderr, "{diags}");
                    let _ = writeln!(stderr, "error: {} problem(s) found", diags.0.len());
                }
                // Each error's message already carries its cause.
                other => {
                    let _ = writeln!(stderr, "error: {other}");
                }
            }
            ExitCode::from(err.exit_code())
        }
    }
}
