//! The pipeline document as written: its top-level keys, storage,
//! transforms and resources, and [`Located`], which every section entry is
//! wrapped in. The other sections have files of their own.
//!
//! Every struct denies unknown keys and every closed set is an enum, so a
//! misspelled key or value is an error that names it and its line. Nothing
//! here is resolved: placeholders, paths and references are checked when
//! the [`Plan`](crate::plan::Plan) is built.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::check::CheckSpec;
use super::identity::IdentitySpec;
use super::output::OutputSpec;
use super::privacy::{ControllerSpec, ErasureSpec, ProfilingSpec, RetentionSpec};
use super::segment::SegmentSpec;
use super::source::SourceSpec;
use super::yaml::Pos;

/// A value with the position where it was written, and the positions of
/// the keys below it (`format.delimiter`, `features[2]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it starts in the pipeline file.
    pub pos: Pos,
    /// Positions of the values below it, by dotted path.
    pub fields: BTreeMap<String, Pos>,
}

impl<T> Located<T> {
    /// A value with no inner positions.
    pub fn new(value: T, pos: Pos) -> Self {
        Located {
            value,
            pos,
            fields: BTreeMap::new(),
        }
    }

    /// Where the value at `path` below this one was written, or this value's position.
    pub fn pos_of(&self, path: &str) -> Pos {
        self.fields.get(path).copied().unwrap_or(self.pos)
    }
}

/// A whole pipeline file, assembled section by section from the YAML.
#[derive(Debug, Clone, Default)]
pub struct PipelineSpec {
    /// `name`: the pipeline's name, used in logs and outputs. Required.
    pub name: Option<Located<String>>,
    /// `description`: free text for people reading the pipeline.
    pub description: Option<String>,
    /// `runs`: the folder run manifests are written to.
    pub runs: Option<Located<String>>,
    /// `vars`: default values for `{{ name }}` placeholders.
    pub vars: Vec<(Located<String>, String)>,
    /// `storage`: object-store client settings (never credentials).
    pub storage: StorageSpec,
    /// `sources`: input tables by name.
    pub sources: Vec<(Located<String>, Located<SourceSpec>)>,
    /// `transforms`: SQL steps, each producing a table.
    pub transforms: Vec<Located<TransformSpec>>,
    /// `identity`: one citizen across every touchpoint.
    pub identity: Option<Located<IdentitySpec>>,
    /// `segment`: the clustering step.
    pub segment: Option<Located<SegmentSpec>>,
    /// `profiling`: the legal basis of the segment step, and whom it
    /// leaves out.
    pub profiling: Option<Located<ProfilingSpec>>,
    /// `min_cell`: the fewest citizens an aggregate civica publishes may
    /// count (a segment profile, a migration cell); default 10, never
    /// below 3.
    pub min_cell: Option<Located<u64>>,
    /// `erasure`: the citizens whose data is erased, and where.
    pub erasure: Option<Located<ErasureSpec>>,
    /// `retention`: how long the runs folder's records are kept.
    pub retention: Option<Located<RetentionSpec>>,
    /// `controller`: who answers for the processing, for its record.
    pub controller: Option<Located<ControllerSpec>>,
    /// `outputs`: tables written as Parquet.
    pub outputs: Vec<Located<OutputSpec>>,
    /// `resources`: memory, spill folder and parallelism.
    pub resources: Option<Located<ResourcesSpec>>,
    /// `checks`: data-quality checks by table.
    pub checks: Vec<(Located<String>, Vec<Located<CheckSpec>>)>,
    /// The file's text as read, not a key: what `--var` names are checked
    /// against and what the run's hash is of.
    pub text: String,
}

/// The `storage` section: how object-store clients connect and retry.
/// Credentials are never read from here: they come from the environment.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000`. Default:
    /// `AWS_ENDPOINT`, else AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allow plain `http://` endpoints. Default: `AWS_ALLOW_HTTP`, else false.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// S3 region. Default: `AWS_REGION`.
    #[serde(default)]
    pub region: Option<String>,
    /// Seconds a request may take. Default 30.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Seconds to connect. Default 5.
    #[serde(default)]
    pub connect_timeout_s: Option<f64>,
    /// Retries of a failed request. Default 10.
    #[serde(default)]
    pub max_retries: Option<usize>,
    /// Seconds after which a request is not retried any more. Default 180.
    #[serde(default)]
    pub retry_timeout_s: Option<f64>,
    /// First backoff between retries, in milliseconds (doubling). Default 100.
    #[serde(default)]
    pub backoff_initial_ms: Option<u64>,
    /// Longest backoff, in seconds. Default 15.
    #[serde(default)]
    pub backoff_max_s: Option<f64>,
}

/// One entry of `transforms`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// The name of the table the step produces.
    pub name: String,
    /// The SQL file, relative to the pipeline file's directory. Placeholders
    /// inside the SQL are filled like those in paths.
    pub sql: String,
}

/// The `resources` section: what a run may use. The command line's
/// `--memory-limit`, `--spill-dir` and `--target-partitions` win.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    /// Memory for DataFusion's operators: `512MiB`, `2GiB`, `1.5GB`.
    pub memory_limit: Option<String>,
    /// Where operators spill when the limit is reached.
    pub spill_dir: Option<String>,
    /// Partitions per query. Default: the number of cores.
    pub target_partitions: Option<usize>,
}
