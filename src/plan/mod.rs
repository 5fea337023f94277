//! The checked plan: variables filled, paths resolved, SQL files read and
//! parsed, steps ordered by their references. [`build_plan`] runs one pass
//! per section of the pipeline, collecting every problem.

mod checks;
mod dag;
mod erasure;
mod identity;
mod locations;
mod outputs;
mod resources;
mod segment;
mod sources;
mod steps;
mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::pipeline::template::Rendered;
use crate::pipeline::{
    ColumnType, Diagnostic, FormatSpec, OnChangedInput, OnError, OutputMode, PipelineSpec, Pos,
    ResourcesSpec, SchemaDrift, SchemaSpec, StorageSpec, display_path,
};

pub use checks::{CheckPlan, CheckRule, FAILING_KEY};
pub use identity::{IDENTITY_TABLES, IdentityInput, IdentityPlan};
pub use resources::{ResourcesPlan, parse_size};
pub use segment::{KPlan, ModelKind, ModelPlan, ProfilingPlan, SegmentPlan};

/// What the command line adds to a pipeline.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--var name=value` pairs, in order; later ones win.
    pub vars: Vec<(String, String)>,
    /// The day the run happens on; `ds` defaults to the day before.
    pub today: Option<NaiveDate>,
    /// The directory relative data paths are resolved against. Default: the current directory.
    pub base_dir: Option<PathBuf>,
    /// The run's id, the value of `{{ run_id }}`. Default: `validate`.
    pub run_id: Option<String>,
    /// `--memory-limit`, `--spill-dir`, `--target-partitions`: win over
    /// the pipeline's `resources`.
    pub resources: ResourcesSpec,
    /// `--full-refresh`: incremental sources read every file, append
    /// outputs are replaced.
    pub full_refresh: bool,
}

/// A pipeline that passed every validation that needs no data: the only form of
/// a pipeline the rest of civica sees.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The pipeline's name.
    pub name: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// Object-store client settings.
    pub storage: StorageSpec,
    /// The pipeline file, as the user named it.
    pub file: String,
    /// Its text as it was read and planned.
    pub text: String,
    /// The folder each run's manifest is written to: `runs`, else `_runs/`
    /// beside the first output's folder (in the part of its path that no
    /// run date changes); `None` without either.
    pub runs: Option<String>,
    /// Every variable with its final value (built-ins, `vars`, `--var`).
    pub vars: BTreeMap<String, String>,
    /// Sources in the order written.
    pub sources: Vec<SourcePlan>,
    /// SQL and segment steps, each after the steps it reads.
    pub steps: Vec<Step>,
    /// Outputs in the order written.
    pub outputs: Vec<OutputPlan>,
    /// Data-quality checks, by table in the order written.
    pub checks: Vec<CheckPlan>,
    /// Memory, spill folder and parallelism.
    pub resources: ResourcesPlan,
    /// Incremental sources read every file and append outputs are replaced.
    pub full_refresh: bool,
    /// Tables that are defined but failed their checks; steps reading them
    /// are not checked further, to avoid repeating the same problem.
    pub unavailable: BTreeSet<String>,
    /// The fewest citizens a published aggregate may count.
    pub min_cell: usize,
    /// The citizens to erase, and where, when the pipeline says.
    pub erasure: Option<ErasurePlan>,
    /// How long run manifests are kept.
    pub manifest_retention: Option<chrono::TimeDelta>,
    /// How long check results are kept.
    pub check_retention: Option<chrono::TimeDelta>,
    /// Who answers for the processing, when the pipeline says.
    pub controller: Option<crate::pipeline::ControllerSpec>,
}

/// A retention period as written (`90d`, `12h`, `30m`), checked at `key`
/// of `located`.
pub(crate) fn retention_of<T>(
    file: &str,
    located: &crate::pipeline::Located<T>,
    key: &str,
    written: &Option<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<chrono::TimeDelta> {
    let written = written.as_ref()?;
    let age = checks::parse_age(written).filter(|age| *age > chrono::TimeDelta::zero());
    if age.is_none() {
        diags.push(Diagnostic::at(
            file,
            located.pos_of(key),
            format!(
                "`retention` must be a number followed by `m`, `h` or `d` (`90d`, `12h`), found `{written}`"
            ),
        ));
    }
    age
}

/// `erasure`, checked.
#[derive(Debug, Clone)]
pub struct ErasurePlan {
    /// The list's location: a local path or a URL.
    pub list: String,
    /// Each source and its column saying whose a row is.
    pub sources: Vec<(String, String)>,
    /// Columns whose values identify the erased citizens elsewhere.
    pub ids: Vec<String>,
    /// Where `erasure` is written.
    pub pos: Pos,
}

/// A source ready to register.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// The table name.
    pub name: String,
    /// An absolute local path or a URL; a trailing `/` marks a folder.
    pub location: String,
    /// How to read it.
    pub format: FormatSpec,
    /// Explicit columns, if given.
    pub schema: Option<SchemaSpec>,
    /// What an unreadable line does.
    pub on_error: OnError,
    /// The share of rejected lines that fails the run.
    pub max_rejected_ratio: f64,
    /// What a file with other columns does.
    pub schema_drift: SchemaDrift,
    /// Read only files no successful run has read.
    pub incremental: bool,
    /// What a file changed since a run read it does.
    pub on_changed_input: OnChangedInput,
    /// Columns replaced by their pseudonym, with their identifier kind.
    pub pseudonymize: Vec<(String, String)>,
    /// Where the source is defined in the pipeline file.
    pub pos: Pos,
    /// Where its `pseudonymize` is written (its position when absent).
    pub pseudonymize_pos: Pos,
    /// Columns' declared sensitivity.
    pub tags: Vec<(String, crate::pipeline::Sensitivity)>,
    /// Where its `tags` are written (its position when absent).
    pub tags_pos: Pos,
}

impl SourcePlan {
    /// The quarantine table of the source, for formats that have one.
    pub fn rejected_table(&self) -> Option<String> {
        self.format
            .has_quarantine()
            .then(|| rejected_table_name(&self.name))
    }
}

/// `<source>__rejected`.
pub fn rejected_table_name(source: &str) -> String {
    format!("{source}__rejected")
}

/// A step of the pipeline.
#[derive(Debug, Clone)]
pub enum Step {
    /// An SQL transform.
    Sql(SqlStep),
    /// The identity step.
    Identity(Box<IdentityPlan>),
    /// The segmentation step.
    Segment(Box<SegmentPlan>),
}

impl Plan {
    /// With `profiling`, the condition (SQL over `civica_input`) a row of
    /// `table` keeps when `table` is the SQL step the segment step reads
    /// its features from: the citizens who objected (or, on consent, did
    /// not consent) are left out of that table as soon as it is computed,
    /// so that neither the segments nor the published features hold them.
    pub fn profiling_filter(&self, table: &str) -> Option<String> {
        let seg = self.steps.iter().find_map(|step| match step {
            Step::Segment(seg) if seg.from == table => Some(seg),
            _ => None,
        })?;
        let is_sql_step = self
            .steps
            .iter()
            .any(|step| matches!(step, Step::Sql(sql) if sql.name == table));
        let profiling = seg.profiling.as_ref().filter(|_| is_sql_step)?;
        Some(profiling.keeps("civica_input", &seg.id))
    }
}

impl Step {
    /// The tables the step produces.
    pub fn produces(&self) -> Vec<&str> {
        match self {
            Step::Sql(step) => vec![step.name.as_str()],
            Step::Identity(_) => IDENTITY_TABLES.to_vec(),
            Step::Segment(seg) => vec![
                seg.name.as_str(),
                seg.profiles.as_str(),
                seg.quality.as_str(),
                seg.migrations.as_str(),
            ],
        }
    }
}

/// An SQL transform ready to plan.
#[derive(Debug, Clone)]
pub struct SqlStep {
    /// The table the step produces.
    pub name: String,
    /// The SQL file as the user would name it.
    pub file: String,
    /// The query with placeholders filled.
    pub sql: Rendered,
    /// The tables the query reads, with the position of their first
    /// mention in the rendered query.
    pub reads: Vec<(String, Option<Pos>)>,
}

/// An output ready to write.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// The table written.
    pub table: String,
    /// An absolute local folder or a URL, always ending in `/`.
    pub location: String,
    /// Replace the folder's files or add to them.
    pub mode: OutputMode,
    /// Hive partition columns, in folder order.
    pub partition_by: Vec<String>,
    /// Where `partition_by` is written.
    pub partition_pos: Pos,
    /// Personal data it may carry, by column.
    pub contains_personal_data: Vec<String>,
    /// Why it carries them.
    pub purpose: Option<String>,
    /// Where `contains_personal_data` is written (the output's position
    /// when absent).
    pub personal_data_pos: Pos,
    /// How long its files are kept.
    pub retention: Option<chrono::TimeDelta>,
    /// The column counting the citizens of each row, and the fewest it
    /// may count (`min_cell`): rows counting fewer are left out.
    pub cell_count: Option<(String, usize)>,
    /// Where the output is defined in the pipeline file.
    pub pos: Pos,
}

/// Builds the plan, reporting every problem that needs no data: one pass
/// per section of the pipeline, in the order of the file. A plan is
/// returned even with problems, holding the parts that checked out, so
/// later passes can still look at them.
pub fn build_plan(
    spec: &PipelineSpec,
    pipeline: &Path,
    opts: &PlanOptions,
) -> (Plan, Vec<Diagnostic>) {
    let file = display_path(pipeline);
    let mut diags = Vec::new();
    let base_dir = opts
        .base_dir
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let pipeline_dir = pipeline.parent().unwrap_or(Path::new(""));
    let vars = vars::resolve_vars(spec, &file, opts, &mut diags);
    let mut plan = Plan {
        name: spec
            .name
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_default(),
        description: spec.description.clone(),
        storage: spec.storage.clone(),
        file: file.clone(),
        text: spec.text.clone(),
        runs: None,
        vars,
        sources: Vec::new(),
        steps: Vec::new(),
        outputs: Vec::new(),
        checks: Vec::new(),
        resources: ResourcesPlan::default(),
        full_refresh: opts.full_refresh,
        unavailable: BTreeSet::new(),
        min_cell: segment::min_cell(&file, spec, &mut diags),
        erasure: None,
        manifest_retention: None,
        check_retention: None,
        controller: spec.controller.as_ref().map(|c| c.value.clone()),
    };
    let mut tables = Tables::new(&file);
    sources::plan_sources(spec, &base_dir, &mut tables, &mut plan, &mut diags);
    let identity = identity::plan_identity(&file, spec, &mut tables, &mut diags);
    let sql_steps = steps::load_steps(spec, pipeline_dir, &mut tables, &mut plan, &mut diags);
    let segment = segment::plan_segment(&file, spec, &mut tables, &mut diags).map(|mut seg| {
        seg.min_cell = plan.min_cell;
        seg
    });
    plan.steps = dag::order_steps(
        &file,
        sql_steps,
        identity,
        segment,
        &tables.defined,
        spec,
        &mut diags,
    );
    plan.outputs = outputs::plan_outputs(spec, &plan, &base_dir, &tables, &mut diags);
    identity::resolve_published(&mut plan);
    segment::resolve_model_path(&file, spec, &mut plan, &base_dir, &mut diags);
    plan.checks = checks::plan_checks(spec, &plan, pipeline_dir, &tables, &mut diags);
    plan.resources = resources::resolve_resources(&file, spec, opts, &base_dir, &mut diags);
    plan.runs = locations::runs_folder(spec, &plan, &base_dir, &mut diags);
    plan.erasure = erasure::plan_erasure(spec, &plan, &base_dir, &mut diags);
    if let Some(retention) = &spec.retention {
        plan.manifest_retention = retention_of(
            &file,
            retention,
            "manifests",
            &retention.value.manifests,
            &mut diags,
        );
        plan.check_retention = retention_of(
            &file,
            retention,
            "checks",
            &retention.value.checks,
            &mut diags,
        );
    }
    vars::validate_command_line_vars(spec, pipeline, &plan, opts, &mut diags);
    (plan, diags)
}

/// Every table name with where it is defined: sources, their quarantine
/// tables, transforms and the segment tables share one namespace.
struct Tables<'a> {
    file: &'a str,
    defined: BTreeMap<String, Pos>,
}

impl<'a> Tables<'a> {
    fn new(file: &'a str) -> Self {
        Tables {
            file,
            defined: BTreeMap::new(),
        }
    }

    /// Defines `name` at `pos`; reports a name that is not an identifier
    /// or is defined already, and returns whether it was defined.
    fn claim(&mut self, name: &str, pos: Pos, diags: &mut Vec<Diagnostic>) -> bool {
        let file = self.file;
        if !is_identifier(name) {
            diags.push(Diagnostic::at(
                file,
                pos,
                format!(
                    "table name `{name}` must be letters, digits and `_`, not starting with a digit"
                ),
            ));
            return false;
        }
        if let Some(first) = self.defined.get(name) {
            diags.push(Diagnostic::at(
                file,
                pos,
                format!(
                    "duplicate table name `{name}` (first defined at {}:{first})",
                    file
                ),
            ));
            return false;
        }
        self.defined.insert(name.to_string(), pos);
        true
    }

    fn contains(&self, name: &str) -> bool {
        self.defined.contains_key(name)
    }
}

/// Whether a name can be used as an SQL table name without quoting.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The Arrow type of a schema column type.
pub fn arrow_type(ty: ColumnType) -> datafusion::arrow::datatypes::DataType {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    match ty {
        ColumnType::String => DataType::Utf8,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
    }
}
