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
pub mod error;
pub mod faults;
pub mod functions;
pub mod identity;
pub mod pipeline;
pub mod plan;
pub mod privacy;
pub mod run;
pub mod run_id;
pub mod segment;
pub mod sink;
pub mod source;
pub mod sql;
pub mod storage;
pub mod transform;

pub use error::{Error, SKIPPED_EXIT_CODE};
