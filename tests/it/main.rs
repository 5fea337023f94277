//! civica's integration tests: one binary, a module per area.

mod access_logs;
mod checks;
mod cli_output;
mod common;
mod csv_sources;
mod disclosure;
mod erasure;
mod guard;
mod hostile;
mod identity;
mod incremental;
mod operator;
mod partitions;
mod peer;
mod privacy;
mod publish;
mod quarantine;
mod quickstart;
mod readme;
mod retention;
mod run_failures;
mod s3;
mod segmentation;
mod validate;
mod variables;
