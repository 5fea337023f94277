//! The checked plan: variables filled, paths resolved, SQL files read and parsed, steps ordered by their references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::template::{
    Rendered, builtin_vars, placeholder_names, pos_of_offset, render, render_sql,
};
use super::{
    ColumnType, Diagnostic, FeatureName, FormatSpec, Impute, KChoice, Located, LogFlavor,
    ModelMode, ModelSpec, OnError, PipelineSpec, Pos, Precision, Scaling, SchemaDrift, SchemaSpec,
    backticked, display_path,
};
use crate::sql::{SqlProblem, parse_query, sql_diagnostic, table_references};

/// What the command line adds to a pipeline.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
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
    pub resources: super::ResourcesSpec,
    /// `--full-refresh`: incremental sources read every file, append
    /// outputs are replaced.
    pub full_refresh: bool,
}

/// What a run may use, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourcesPlan {
    /// Bytes for DataFusion's memory pool; unlimited when `None`.
    pub memory_limit: Option<usize>,
    /// The folder spill files go to; the system's temporary folder when `None`.
    pub spill_dir: Option<PathBuf>,
    /// Partitions per query; DataFusion's default (the cores) when `None`.
    pub target_partitions: Option<usize>,
}

/// A pipeline that passed every check that needs no data: the only form of
/// a pipeline the rest of civica sees.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The pipeline's name.
    pub name: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// Object-store client settings.
    pub storage: super::StorageSpec,
    /// The pipeline file, as the user named it.
    pub file: String,
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
    pub checks: Vec<super::CheckPlan>,
    /// Memory, spill folder and parallelism.
    pub resources: ResourcesPlan,
    /// Incremental sources read every file and append outputs are replaced.
    pub full_refresh: bool,
    /// Tables that are defined but failed their checks; steps reading them
    /// are not checked further, to avoid repeating the same problem.
    pub unavailable: BTreeSet<String>,
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
    pub on_changed_input: super::OnChangedInput,
    /// Where the source is defined in the pipeline file.
    pub pos: Pos,
}

impl SourcePlan {
    /// The quarantine table of the source, for formats that have one.
    pub fn rejected_table(&self) -> Option<String> {
        matches!(self.format, FormatSpec::AccessLog(_) | FormatSpec::Csv(_))
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
    /// The segmentation step.
    Segment(SegmentPlan),
}

impl Step {
    /// The tables the step produces.
    pub fn produces(&self) -> Vec<&str> {
        match self {
            Step::Sql(step) => vec![step.name.as_str()],
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

/// The segmentation step with checked parameters.
#[derive(Debug, Clone)]
pub struct SegmentPlan {
    /// The per-citizen table it produces.
    pub name: String,
    /// The per-segment profile table it produces.
    pub profiles: String,
    /// The quality table it produces, one row per `k` tried.
    pub quality: String,
    /// The table of moves from the previous run's segments.
    pub migrations: String,
    /// The table it reads.
    pub from: String,
    /// The id column.
    pub id: String,
    /// Feature columns.
    pub features: Vec<String>,
    /// Null handling; `None` makes a null feature an error.
    pub impute: Option<Impute>,
    /// Per feature: whether it goes through ln(1 + x).
    pub log1p: Vec<bool>,
    /// Scaling before the fit.
    pub scaling: Scaling,
    /// Per feature: its plain names for labels.
    pub feature_names: Vec<FeatureName>,
    /// Model settings.
    pub model: ModelPlan,
    /// Where the fitted model is kept, when it is.
    pub model_path: Option<String>,
    /// The folder the `segments` table is published to, when it is: the
    /// previous run's assignments are read from there for the migrations.
    pub published: Option<String>,
    /// Where `segment` and its keys are in the pipeline file.
    pub located: Located<()>,
}

/// Checked model settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPlan {
    /// k-means (with its precision) or a Gaussian mixture.
    pub kind: ModelKind,
    /// The number of segments, or the range `auto` chooses from.
    pub k: KPlan,
    /// Random seed.
    pub seed: u64,
    /// Initialisations, at least 1.
    pub n_init: usize,
    /// Iteration cap, at least 1.
    pub max_iter: usize,
    /// Convergence tolerance, positive.
    pub tolerance: f64,
    /// Refit or assign to the saved model.
    pub mode: ModelMode,
    /// Initial centroids (k-means only), k × features, scaled units.
    pub init: Option<Vec<Vec<f64>>>,
}

/// The kind of model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// k-means at this precision.
    Kmeans(Precision),
    /// Gaussian mixture (f64).
    Gmm,
}

/// The number of segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KPlan {
    /// Exactly this many, at least 2.
    Fixed(usize),
    /// Chosen by silhouette between these, inclusive.
    Auto(usize, usize),
}

impl KPlan {
    /// The smallest number of segments the step may produce.
    pub fn min(&self) -> usize {
        match *self {
            KPlan::Fixed(k) | KPlan::Auto(k, _) => k,
        }
    }

    /// The values of k to fit.
    pub fn candidates(&self) -> Vec<usize> {
        match *self {
            KPlan::Fixed(k) => vec![k],
            KPlan::Auto(min, max) => (min..=max).collect(),
        }
    }
}

/// An output ready to write.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// The table written.
    pub table: String,
    /// An absolute local folder or a URL, always ending in `/`.
    pub location: String,
    /// Replace the folder's files or add to them.
    pub mode: super::OutputMode,
    /// Hive partition columns, in folder order.
    pub partition_by: Vec<String>,
    /// Where `partition_by` is written.
    pub partition_pos: Pos,
    /// Where the output is defined in the pipeline file.
    pub pos: Pos,
}

/// Builds the plan, reporting every problem that needs no data. A plan is
/// returned even with problems, holding the parts that checked out, so
/// later checks can still look at them.
pub fn check_spec(
    spec: &PipelineSpec,
    pipeline: &Path,
    opts: &CheckOptions,
) -> (Plan, Vec<Diagnostic>) {
    let file = display_path(pipeline);
    let mut diags = Vec::new();
    let base_dir = opts
        .base_dir
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let vars = resolve_vars(spec, &file, opts, &mut diags);
    let mut plan = Plan {
        name: spec
            .name
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_default(),
        description: spec.description.clone(),
        storage: spec.storage.clone(),
        file: file.clone(),
        runs: None,
        vars,
        sources: Vec::new(),
        steps: Vec::new(),
        outputs: Vec::new(),
        checks: Vec::new(),
        resources: ResourcesPlan::default(),
        full_refresh: opts.full_refresh,
        unavailable: BTreeSet::new(),
    };
    // Every table name with where it is defined, to catch duplicates.
    let mut tables: BTreeMap<String, Pos> = BTreeMap::new();
    let mut claim = |name: &str, pos: Pos, diags: &mut Vec<Diagnostic>| -> bool {
        if !is_identifier(name) {
            diags.push(Diagnostic::at(
                &file,
                pos,
                format!(
                    "table name `{name}` must be letters, digits and `_`, not starting with a digit"
                ),
            ));
            return false;
        }
        if let Some(first) = tables.get(name) {
            diags.push(Diagnostic::at(
                &file,
                pos,
                format!(
                    "duplicate table name `{name}` (first defined at {}:{first})",
                    file
                ),
            ));
            return false;
        }
        tables.insert(name.to_string(), pos);
        true
    };

    for (name, source) in &spec.sources {
        if !claim(&name.value, name.pos, &mut diags) {
            continue;
        }
        check_format(&file, source, &mut diags);
        if matches!(
            source.value.format,
            FormatSpec::AccessLog(_) | FormatSpec::Csv(_)
        ) {
            claim(&rejected_table_name(&name.value), name.pos, &mut diags);
        }
        let ratio = source.value.max_rejected_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            diags.push(Diagnostic::at(
                &file,
                source.pos_of("max_rejected_ratio"),
                format!("`max_rejected_ratio` must be between 0 and 1, found {ratio}"),
            ));
        }
        let path_pos = source.pos_of("path");
        match render_located(&file, &source.value.path, path_pos, &plan.vars, &mut diags) {
            Some(location) => plan.sources.push(SourcePlan {
                name: name.value.clone(),
                location: resolve_location(&location, &base_dir, false),
                format: source.value.format.clone(),
                schema: source.value.schema.clone(),
                on_error: source.value.on_error,
                max_rejected_ratio: ratio,
                schema_drift: source.value.schema_drift,
                incremental: source.value.incremental,
                on_changed_input: source.value.on_changed_input,
                pos: name.pos,
            }),
            None => {
                plan.unavailable.insert(name.value.clone());
            }
        }
    }

    let pipeline_dir = pipeline.parent().unwrap_or(Path::new(""));
    let mut sql_steps = Vec::new();
    for step in &spec.transforms {
        if !claim(&step.value.name, step.pos_of("name"), &mut diags) {
            continue;
        }
        match load_sql_step(&file, step, pipeline_dir, &plan.vars, &mut diags) {
            Some(sql) => sql_steps.push(sql),
            None => {
                plan.unavailable.insert(step.value.name.clone());
            }
        }
    }

    let segment = spec.segment.as_ref().and_then(|seg| {
        let ok_name = claim(&seg.value.name, seg.pos_of("name"), &mut diags);
        let ok_profiles = claim(&seg.value.profiles, seg.pos_of("profiles"), &mut diags);
        let ok_quality = claim(&seg.value.quality, seg.pos_of("quality"), &mut diags);
        let ok_migrations = claim(&seg.value.migrations, seg.pos_of("migrations"), &mut diags);
        let plan = check_segment(&file, seg, &mut diags);
        (ok_name && ok_profiles && ok_quality && ok_migrations).then_some(plan)
    });

    plan.steps = order_steps(&file, sql_steps, segment, &tables, spec, &mut diags);

    let mut output_paths: BTreeMap<String, Pos> = BTreeMap::new();
    for output in &spec.outputs {
        let table = &output.value.table;
        if !tables.contains_key(table) {
            diags.push(Diagnostic::at(
                &file,
                output.pos_of("table"),
                format!("output table `{table}` is not a source, a transform or a segment table"),
            ));
            continue;
        }
        let path_pos = output.pos_of("path");
        let Some(location) =
            render_located(&file, &output.value.path, path_pos, &plan.vars, &mut diags)
        else {
            continue;
        };
        let location = resolve_location(&location, &base_dir, true);
        if let Some((other, at)) = output_paths.iter().find(|(other, _)| {
            *other != &location
                && (location.starts_with(other.as_str()) || other.starts_with(location.as_str()))
        }) {
            diags.push(Diagnostic::at(
                &file,
                path_pos,
                format!(
                    "output path `{location}` and the output path `{other}` at {file}:{at} are nested: publishing one would replace the other's files; use separate folders"
                ),
            ));
            continue;
        }
        if let Some(first) = output_paths.insert(location.clone(), path_pos) {
            diags.push(Diagnostic::at(
                &file,
                path_pos,
                format!(
                    "output path `{location}` is already written by the output at {file}:{first}"
                ),
            ));
            continue;
        }
        let partition_pos = output.pos_of("partition_by");
        let partition_by = &output.value.partition_by;
        if output.value.mode == super::OutputMode::OverwritePartition && partition_by.is_empty() {
            diags.push(Diagnostic::at(
                &file,
                output.pos_of("mode"),
                "`mode: overwrite_partition` needs `partition_by`: the columns whose values name the partitions".to_string(),
            ));
        }
        if let Some(twice) = partition_by
            .iter()
            .enumerate()
            .find(|(i, c)| partition_by[..*i].contains(c))
        {
            diags.push(Diagnostic::at(
                &file,
                partition_pos,
                format!("`partition_by` names `{}` twice", twice.1),
            ));
        }
        plan.outputs.push(OutputPlan {
            table: table.clone(),
            location,
            mode: output.value.mode,
            partition_by: partition_by.clone(),
            partition_pos,
            pos: output.pos,
        });
    }
    resolve_model_path(&file, spec, &mut plan, &base_dir, &mut diags);
    let ds = plan
        .vars
        .get("ds")
        .and_then(|ds| NaiveDate::parse_from_str(ds, "%Y-%m-%d").ok())
        .unwrap_or_default();
    let table_names: BTreeSet<String> = tables.keys().cloned().collect();
    let check_context = super::CheckContext {
        file: &file,
        pipeline_dir,
        tables: &table_names,
        vars: &plan.vars,
        ds,
    };
    plan.checks = super::check_checks(&check_context, &spec.checks, &mut diags);
    plan.resources = resolve_resources(&file, spec, opts, &base_dir, &mut diags);
    plan.runs = match &spec.runs {
        Some(runs) => render_located(&file, &runs.value, runs.pos, &plan.vars, &mut diags)
            .map(|location| resolve_location(&location, &base_dir, true)),
        None => plan.outputs.first().map(|first| {
            let template = spec
                .outputs
                .iter()
                .find(|o| o.value.table == first.table)
                .map(|o| o.value.path.as_str())
                .unwrap_or_default();
            match stable_folder(template) {
                // A dated folder: the runs folder sits in the part of the
                // path every run shares, so each run finds the same state.
                Some(stable) => {
                    let rendered = render(stable, &plan.vars)
                        .map(|r| r.text)
                        .unwrap_or_else(|_| stable.to_string());
                    format!("{}_runs/", resolve_location(&rendered, &base_dir, true))
                }
                None => format!("{}_runs/", parent_folder(&first.location)),
            }
        }),
    };
    check_command_line_vars(spec, pipeline, &plan, opts, &mut diags);
    (plan, diags)
}

/// Where the segment model is kept: `model_path` as written, else
/// `<name>_model.json` beside the `segments` output's folder.
fn resolve_model_path(
    file: &str,
    spec: &PipelineSpec,
    plan: &mut Plan,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(seg) = &spec.segment else { return };
    let published = plan
        .outputs
        .iter()
        .find(|o| o.table == seg.value.name)
        .map(|o| o.location.clone());
    let path = match &seg.value.model_path {
        Some(path) => {
            let pos = seg.pos_of("model_path");
            render_located(file, path, pos, &plan.vars, diags)
                .map(|location| resolve_location(&location, base_dir, false))
        }
        None => published.as_ref().map(|folder| {
            let folder = folder.trim_end_matches('/');
            let parent = folder.rsplit_once('/').map_or("", |(parent, _)| parent);
            format!("{parent}/{}_model.json", seg.value.name)
        }),
    };
    if path.is_none() && seg.value.model.mode() == ModelMode::Assign {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.mode"),
            format!(
                "`mode: assign` needs a saved model: set `model_path` or write `{}` as an output",
                seg.value.name
            ),
        ));
    }
    for step in &mut plan.steps {
        if let Step::Segment(s) = step {
            s.model_path = path.clone();
            s.published = published.clone();
        }
    }
}

/// The `resources` section with the command line's settings over it.
/// The most partitions a query may be split into: each takes buffers and
/// a thread's share, and far more than the cores only costs memory (99
/// billion once aborted allocating 3.2 TB).
const MAX_TARGET_PARTITIONS: usize = 1024;

fn resolve_resources(
    file: &str,
    spec: &PipelineSpec,
    opts: &CheckOptions,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> ResourcesPlan {
    let yaml = spec.resources.as_ref();
    let written = yaml.map(|r| r.value.clone()).unwrap_or_default();
    let cli = &opts.resources;
    // Where a setting came from, for messages: the command line or the YAML.
    let place = |key: &str, from_cli: bool| match (from_cli, yaml) {
        (false, Some(r)) => (Some(r.pos_of(key)), format!("`resources.{key}`")),
        _ => (None, format!("`--{}`", key.replace('_', "-"))),
    };
    let mut report = |key: &str, from_cli: bool, message: String| {
        let (pos, name) = place(key, from_cli);
        diags.push(Diagnostic {
            file: if pos.is_some() {
                file.to_string()
            } else {
                "command line".to_string()
            },
            pos,
            message: format!("{name} {message}"),
        });
    };
    let memory_limit = match (&cli.memory_limit, &written.memory_limit) {
        (Some(text), _) => Some((text, true)),
        (None, Some(text)) => Some((text, false)),
        (None, None) => None,
    }
    .and_then(|(text, from_cli)| match parse_size(text) {
        Some(bytes) if bytes >= 16 << 20 => Some(bytes),
        Some(_) => {
            report(
                "memory_limit",
                from_cli,
                format!("must be at least 16MiB, found `{text}`"),
            );
            None
        }
        None => {
            report(
                "memory_limit",
                from_cli,
                format!("must be a size such as `512MiB`, `2GiB` or `1.5GB`, found `{text}`"),
            );
            None
        }
    });
    let target_partitions = match (cli.target_partitions, written.target_partitions) {
        (Some(n), _) if !(1..=MAX_TARGET_PARTITIONS).contains(&n) => {
            report(
                "target_partitions",
                true,
                format!("must be from 1 to {MAX_TARGET_PARTITIONS}, found `{n}`"),
            );
            None
        }
        (None, Some(n)) if !(1..=MAX_TARGET_PARTITIONS).contains(&n) => {
            report(
                "target_partitions",
                false,
                format!("must be from 1 to {MAX_TARGET_PARTITIONS}, found `{n}`"),
            );
            None
        }
        (cli, yaml) => cli.or(yaml),
    };
    let spill_dir = cli
        .spill_dir
        .clone()
        .or(written.spill_dir)
        .map(|dir| base_dir.join(dir));
    ResourcesPlan {
        memory_limit,
        spill_dir,
        target_partitions,
    }
}

/// `512MiB`, `2GiB`, `1.5GB`, `800M`, `1048576` as bytes.
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..split].parse().ok()?;
    let unit: f64 = match text[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * unit;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as usize)
}

/// Variables civica sets itself.
const BUILTIN_VARS: [&str; 3] = ["ds", "ds_nodash", "run_id"];

fn resolve_vars(
    spec: &PipelineSpec,
    file: &str,
    opts: &CheckOptions,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let today = opts
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let mut ds = today.pred_opt().unwrap_or(today);
    let given_ds = opts
        .vars
        .iter()
        .rev()
        .find(|(k, _)| k == "ds")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            spec.vars
                .iter()
                .find(|(k, _)| k.value == "ds")
                .map(|(_, v)| v.clone())
        });
    if let Some(text) = given_ds {
        match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            Ok(date) => ds = date,
            Err(_) => diags.push(Diagnostic {
                file: file.to_string(),
                pos: None,
                message: format!("variable `ds` must be a date `YYYY-MM-DD`, found `{text}`"),
            }),
        }
    }
    let mut vars = builtin_vars(ds);
    vars.insert(
        "run_id".to_string(),
        opts.run_id
            .clone()
            .unwrap_or_else(|| "validate".to_string()),
    );
    for (name, value) in &spec.vars {
        if name.value == "ds" {
            // Read above: the run date's default.
            continue;
        }
        if BUILTIN_VARS.contains(&name.value.as_str()) {
            diags.push(Diagnostic::at(
                file,
                name.pos,
                format!(
                    "variable `{}` is set by civica: `ds_nodash` follows `ds`, `run_id` names the run",
                    name.value
                ),
            ));
            continue;
        }
        if !is_identifier(&name.value) {
            diags.push(Diagnostic::at(
                file,
                name.pos,
                format!(
                    "variable name `{}` must be letters, digits and `_`",
                    name.value
                ),
            ));
        }
        vars.insert(name.value.clone(), value.clone());
    }
    for (name, value) in &opts.vars {
        if name != "ds" && BUILTIN_VARS.contains(&name.as_str()) {
            diags.push(Diagnostic {
                file: file.to_string(),
                pos: None,
                message: format!(
                    "`--var {name}`: `{name}` is set by civica and cannot be set (`ds_nodash` follows `ds`, `run_id` names the run); set the run date with `--date` or `--var ds=`"
                ),
            });
        } else if !BUILTIN_VARS.contains(&name.as_str()) {
            vars.insert(name.clone(), value.clone());
        }
    }
    vars
}

/// Reports each `--var` that names no variable of the pipeline: neither in
/// its `vars` nor in a placeholder of the pipeline file or of its SQL files
/// (a misspelt `--var lakee=…` would otherwise leave `lake` at its default).
fn check_command_line_vars(
    spec: &PipelineSpec,
    pipeline: &Path,
    plan: &Plan,
    opts: &CheckOptions,
    diags: &mut Vec<Diagnostic>,
) {
    let Ok(yaml) = std::fs::read_to_string(pipeline) else {
        return;
    };
    let pipeline_dir = pipeline.parent().unwrap_or(Path::new("."));
    let check_files: Vec<String> = spec
        .checks
        .iter()
        .flat_map(|(_, checks)| checks.iter())
        .filter_map(|check| check.value.file.as_ref())
        .filter_map(|file| std::fs::read_to_string(pipeline_dir.join(file)).ok())
        .collect();
    let mut known: BTreeSet<&str> = BUILTIN_VARS.into_iter().collect();
    known.extend(spec.vars.iter().map(|(name, _)| name.value.as_str()));
    known.extend(placeholder_names(&yaml));
    known.extend(check_files.iter().flat_map(|text| placeholder_names(text)));
    known.extend(plan.steps.iter().flat_map(|step| match step {
        Step::Sql(sql) => placeholder_names(&sql.sql.template),
        Step::Segment(_) => Vec::new(),
    }));
    let settable: Vec<String> = known
        .iter()
        .filter(|name| !["ds_nodash", "run_id"].contains(name))
        .map(|name| format!("`{name}`"))
        .collect();
    let mut reported = BTreeSet::new();
    for (name, _) in &opts.vars {
        if !known.contains(name.as_str()) && reported.insert(name) {
            diags.push(Diagnostic {
                file: plan.file.clone(),
                pos: None,
                message: format!(
                    "`--var {name}`: the pipeline has no variable `{name}` (its variables: {})",
                    settable.join(", ")
                ),
            });
        }
    }
}

fn render_located(
    file: &str,
    template: &str,
    pos: Pos,
    vars: &BTreeMap<String, String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match render(template, vars) {
        Ok(rendered) => Some(rendered.text),
        Err(errors) => {
            for err in errors {
                diags.push(Diagnostic::at(file, pos, err.message));
            }
            None
        }
    }
}

/// The part of a path template before its first run-dependent placeholder
/// (`{{ ds }}`, `{{ ds_nodash }}`, `{{ run_id }}`, with or without
/// filters), cut back to a folder: `{{ lake }}/daily/{{ ds }}/` →
/// `{{ lake }}/daily/`. `None` when no such placeholder is in the path.
fn stable_folder(template: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(open) = template[from..].find("{{").map(|i| i + from) {
        let inner = template[open + 2..].trim_start();
        let name: String = inner
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ["ds", "ds_nodash", "run_id"].contains(&name.as_str()) {
            let folder = template[..open]
                .rfind('/')
                .map_or("", |at| &template[..=at]);
            return Some(if folder.is_empty() { "./" } else { folder });
        }
        from = open + 2;
    }
    None
}

/// The folder holding a folder location (`…/marts/segments/` →
/// `…/marts/`), with its trailing `/`.
fn parent_folder(folder: &str) -> &str {
    let trimmed = folder.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(at) => &folder[..=at],
        None => "",
    }
}

/// A URL stays as it is; a local path becomes absolute. Folders keep (or,
/// for outputs, get) their trailing `/`.
fn resolve_location(location: &str, base_dir: &Path, folder: bool) -> String {
    let mut resolved = if location.contains("://") {
        location.to_string()
    } else {
        let path = Path::new(location);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        };
        let mut text = display_path(&absolute);
        if location.ends_with('/') && !text.ends_with('/') {
            text.push('/');
        }
        text
    };
    if folder && !resolved.ends_with('/') {
        resolved.push('/');
    }
    resolved
}

fn check_format(file: &str, source: &Located<super::SourceSpec>, diags: &mut Vec<Diagnostic>) {
    if let FormatSpec::AccessLog(log) = &source.value.format
        && let Some(pattern) = &log.pattern
        && let Err(problem) = crate::source::log_pattern::LogPattern::compile(pattern)
    {
        diags.push(Diagnostic::at(
            file,
            source.pos_of("format.pattern"),
            problem,
        ));
    }
    let FormatSpec::Csv(csv) = &source.value.format else {
        return;
    };
    let single_byte = |c: char| c.is_ascii() && c != '\n' && c != '\r';
    if !single_byte(csv.delimiter) {
        diags.push(Diagnostic::at(
            file,
            source.pos_of("format.delimiter"),
            format!(
                "`delimiter` must be one ASCII character, found `{}`",
                csv.delimiter.escape_default()
            ),
        ));
    }
    if !single_byte(csv.quote) {
        diags.push(Diagnostic::at(
            file,
            source.pos_of("format.quote"),
            format!(
                "`quote` must be one ASCII character, found `{}`",
                csv.quote.escape_default()
            ),
        ));
    }
    if csv.decimal != '.' && csv.decimal != ',' {
        diags.push(Diagnostic::at(
            file,
            source.pos_of("format.decimal"),
            format!("`decimal` must be `.` or `,`, found `{}`", csv.decimal),
        ));
    }
    if let Some(escape) = csv.escape
        && !single_byte(escape)
    {
        diags.push(Diagnostic::at(
            file,
            source.pos_of("format.escape"),
            format!(
                "`escape` must be one ASCII character, found `{}`",
                escape.escape_default()
            ),
        ));
    }
    for (key, format) in [
        ("timestamp_format", &csv.timestamp_format),
        ("date_format", &csv.date_format),
        ("time_format", &csv.time_format),
    ] {
        if let Some(format) = format
            && chrono::format::StrftimeItems::new(format)
                .any(|item| matches!(item, chrono::format::Item::Error))
        {
            diags.push(Diagnostic::at(
                file,
                source.pos_of(&format!("format.{key}")),
                format!("`{key}` `{format}` is not a valid chrono format"),
            ));
        }
    }
    if let Some(schema) = &source.value.schema
        && schema.0.is_empty()
    {
        diags.push(Diagnostic::at(
            file,
            source.pos_of("schema"),
            "`schema` lists no columns",
        ));
    }
}

fn load_sql_step(
    file: &str,
    step: &Located<super::TransformSpec>,
    pipeline_dir: &Path,
    vars: &BTreeMap<String, String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<SqlStep> {
    let path = pipeline_dir.join(&step.value.sql);
    let sql_file = display_path(&path);
    let template = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            let reason = if err.kind() == std::io::ErrorKind::NotFound {
                "not found".to_string()
            } else {
                err.to_string()
            };
            diags.push(Diagnostic::at(
                file,
                step.pos_of("sql"),
                format!(
                    "SQL file `{sql_file}` of transform `{}` {reason} (SQL paths are relative to the pipeline file's directory)",
                    step.value.name
                ),
            ));
            return None;
        }
    };
    let sql = match render_sql(&template, vars) {
        Ok(sql) => sql,
        Err(errors) => {
            for err in errors {
                diags.push(Diagnostic::at(
                    &sql_file,
                    pos_of_offset(&template, err.offset),
                    err.message,
                ));
            }
            return None;
        }
    };
    let parsed =
        parse_query(&sql.text).and_then(|statement| table_references(&statement, &sql.text));
    match parsed {
        Ok(reads) => Some(SqlStep {
            name: step.value.name.clone(),
            file: sql_file,
            reads,
            sql,
        }),
        Err(problem) => {
            diags.push(sql_diagnostic(&sql_file, &sql, problem));
            None
        }
    }
}

fn check_segment(
    file: &str,
    seg: &Located<super::SegmentSpec>,
    diags: &mut Vec<Diagnostic>,
) -> SegmentPlan {
    let spec = &seg.value;
    let model = check_model(file, seg, diags);
    if spec.features.is_empty() {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("features"),
            "`features` lists no columns",
        ));
    }
    let mut seen = BTreeSet::new();
    for (idx, feature) in spec.features.iter().enumerate() {
        if !seen.insert(feature) {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of(&format!("features[{idx}]")),
                format!("feature `{feature}` is listed twice"),
            ));
        }
    }
    // `log1p` and `feature_names` may only name listed features.
    let named = spec
        .log1p
        .iter()
        .enumerate()
        .map(|(idx, name)| ("log1p", format!("log1p[{idx}]"), name))
        .chain(
            spec.feature_names
                .keys()
                .map(|name| ("feature_names", format!("feature_names.{name}"), name)),
        );
    for (what, key, name) in named {
        if !spec.features.contains(name) {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of(&key),
                format!(
                    "`{what}` names `{name}`, which is not in `features` ({})",
                    backticked(&spec.features)
                ),
            ));
        }
    }
    // The plan is kept even with bad parameters, so that its columns are
    // still checked against the data; the problems above stop any run.
    SegmentPlan {
        name: spec.name.clone(),
        profiles: spec.profiles.clone(),
        quality: spec.quality.clone(),
        migrations: spec.migrations.clone(),
        from: spec.from.clone(),
        id: spec.id.clone(),
        features: spec.features.clone(),
        impute: spec.impute,
        log1p: spec
            .features
            .iter()
            .map(|f| spec.log1p.contains(f))
            .collect(),
        scaling: spec.scaling,
        feature_names: spec
            .features
            .iter()
            .map(|f| {
                spec.feature_names.get(f).cloned().unwrap_or_else(|| {
                    let plain = f.replace('_', " ");
                    FeatureName {
                        it: plain.clone(),
                        en: plain,
                    }
                })
            })
            .collect(),
        model,
        model_path: None,
        published: None,
        located: Located {
            value: (),
            pos: seg.pos,
            fields: seg.fields.clone(),
        },
    }
}

/// Checks `segment.model`; bad values are reported and replaced by the
/// nearest valid ones so the rest of the step can still be checked.
fn check_model(
    file: &str,
    seg: &Located<super::SegmentSpec>,
    diags: &mut Vec<Diagnostic>,
) -> ModelPlan {
    let init = match &seg.value.model {
        ModelSpec::Kmeans(m) => m.init.clone(),
        ModelSpec::Gmm(_) => None,
    };
    let (kind, k, k_range, seed, n_init, max_iter, tolerance, mode) = match &seg.value.model {
        ModelSpec::Kmeans(m) => (
            ModelKind::Kmeans(m.precision),
            m.k,
            &m.k_range,
            m.seed,
            m.n_init,
            m.max_iter,
            m.tolerance,
            m.mode,
        ),
        ModelSpec::Gmm(m) => (
            ModelKind::Gmm,
            m.k,
            &m.k_range,
            m.seed,
            m.n_init,
            m.max_iter,
            m.tolerance,
            m.mode,
        ),
    };
    let at_least = |key: &str, value: i64, min: i64, diags: &mut Vec<Diagnostic>| {
        if value < min {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of(&format!("model.{key}")),
                format!("`{key}` must be at least {min}, found {value}"),
            ));
        }
        usize::try_from(value.max(min)).unwrap_or(usize::MAX)
    };
    let k = match (k, k_range) {
        (KChoice::Fixed(k), None) => KPlan::Fixed(at_least("k", k, 2, diags)),
        (KChoice::Fixed(_), Some(_)) => {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of("model.k_range"),
                "`k_range` is only read with `k: auto`",
            ));
            KPlan::Fixed(2)
        }
        (KChoice::Auto, None) => KPlan::Auto(2, 8),
        (KChoice::Auto, Some(range)) => match range[..] {
            [min, max] if min >= 2 && max >= min => KPlan::Auto(min as usize, max as usize),
            _ => {
                diags.push(Diagnostic::at(
                    file,
                    seg.pos_of("model.k_range"),
                    format!("`k_range` must be `[min, max]` with 2 <= min <= max, found {range:?}"),
                ));
                KPlan::Auto(2, 2)
            }
        },
    };
    let n_init = at_least("n_init", n_init, 1, diags);
    let max_iter = at_least("max_iter", max_iter, 1, diags);
    if !(tolerance > 0.0 && tolerance.is_finite()) {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.tolerance"),
            format!("`tolerance` must be a positive number, found {tolerance}"),
        ));
    }
    if let Some(init) = &init {
        let width = seg.value.features.len();
        let fits = matches!(k, KPlan::Fixed(k) if k == init.len())
            && init.iter().all(|row| row.len() == width);
        if !fits {
            diags.push(Diagnostic::at(
                file,
                seg.pos_of("model.init"),
                format!(
                    "`init` must hold `k` centroids of {width} value(s) each (one per feature), with a fixed `k`"
                ),
            ));
        }
    }
    if mode == ModelMode::Assign && kind == ModelKind::Gmm {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.mode"),
            "`mode: assign` is available for `type: kmeans` only",
        ));
    }
    if mode == ModelMode::Assign && matches!(k, KPlan::Auto(..)) {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.mode"),
            "`mode: assign` reuses the saved model's segments; it cannot take `k: auto`",
        ));
    }
    ModelPlan {
        kind,
        k,
        seed,
        n_init,
        max_iter,
        tolerance,
        mode,
        init,
    }
}

/// Orders SQL steps and the segment step so that each comes after the
/// tables it reads; reports unknown tables and cycles.
fn order_steps(
    file: &str,
    sql_steps: Vec<SqlStep>,
    segment: Option<SegmentPlan>,
    tables: &BTreeMap<String, Pos>,
    spec: &PipelineSpec,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Step> {
    let mut steps: Vec<Step> = sql_steps.into_iter().map(Step::Sql).collect();
    if let Some(seg) = segment {
        steps.push(Step::Segment(seg));
    }
    // Which step produces each table; sources are produced by no step.
    let mut producer: BTreeMap<&str, usize> = BTreeMap::new();
    for (idx, step) in steps.iter().enumerate() {
        for name in step.produces() {
            producer.insert(name, idx);
        }
    }
    // Quarantine tables exist but are not worth suggesting.
    let known: Vec<&str> = tables
        .keys()
        .map(String::as_str)
        .filter(|name| !name.ends_with("__rejected"))
        .collect();
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(steps.len());
    let mut valid = vec![true; steps.len()];
    for (idx, step) in steps.iter().enumerate() {
        let mut mine = Vec::new();
        match step {
            Step::Sql(sql) => {
                for (read, pos) in &sql.reads {
                    if let Some(&p) = producer.get(read.as_str()) {
                        mine.push(p);
                    } else if !tables.contains_key(read) {
                        valid[idx] = false;
                        let problem = SqlProblem {
                            pos: *pos,
                            message: format!(
                                "unknown table `{read}` (known tables: {})",
                                backticked(&known)
                            ),
                        };
                        diags.push(sql_diagnostic(&sql.file, &sql.sql, problem));
                    }
                }
            }
            Step::Segment(seg) => {
                if let Some(&p) = producer.get(seg.from.as_str()) {
                    mine.push(p);
                } else if !tables.contains_key(&seg.from) {
                    valid[idx] = false;
                    let table_exists_later =
                        spec.transforms.iter().any(|t| t.value.name == seg.from);
                    let hint = if table_exists_later {
                        " (its transform has errors)"
                    } else {
                        ""
                    };
                    diags.push(Diagnostic::at(
                        file,
                        seg.located.pos_of("from"),
                        format!(
                            "`segment.from` names unknown table `{}`{hint} (known tables: {})",
                            seg.from,
                            backticked(&known)
                        ),
                    ));
                }
            }
        }
        deps.push(mine);
    }
    // Kahn's algorithm, taking ready steps in the order they were written.
    let mut order = Vec::with_capacity(steps.len());
    let mut done = vec![false; steps.len()];
    loop {
        let ready = (0..steps.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d]));
        match ready {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => break,
        }
    }
    if order.len() < steps.len() {
        let stuck: Vec<usize> = (0..steps.len()).filter(|&i| !done[i]).collect();
        let cycle = describe_cycle(&stuck, &deps, &steps);
        diags.push(Diagnostic {
            file: file.to_string(),
            pos: stuck
                .first()
                .and_then(|&i| {
                    spec.transforms
                        .iter()
                        .find(|t| steps[i].produces().contains(&t.value.name.as_str()))
                })
                .map(|t| t.pos),
            message: format!("steps read each other in a cycle: {cycle}"),
        });
    }
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter(|&i| valid[i])
        .filter_map(|i| slots[i].take())
        .collect()
}

/// `a → b → a`, following dependencies from the first stuck step.
fn describe_cycle(stuck: &[usize], deps: &[Vec<usize>], steps: &[Step]) -> String {
    let Some(&start) = stuck.first() else {
        return String::new();
    };
    let mut path = vec![start];
    let mut current = start;
    while let Some(&next) = deps[current].iter().find(|d| stuck.contains(d)) {
        if let Some(at) = path.iter().position(|&p| p == next) {
            path.drain(..at);
            path.push(next);
            break;
        }
        path.push(next);
        current = next;
    }
    path.iter()
        .map(|&i| format!("`{}`", steps[i].produces()[0]))
        .collect::<Vec<_>>()
        .join(" → ")
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

/// The access-log flavor's name, for summaries.
pub fn flavor_name(flavor: LogFlavor) -> &'static str {
    match flavor {
        LogFlavor::Common => "common",
        LogFlavor::Combined => "combined",
    }
}

#[cfg(test)]
mod tests {
    use super::stable_folder;

    #[test]
    fn a_dated_output_path_keeps_its_runs_folder_in_the_shared_part() {
        assert_eq!(
            stable_folder("{{ lake }}/daily/{{ ds }}/calls/"),
            Some("{{ lake }}/daily/")
        );
        assert_eq!(
            stable_folder("out/day/ds={{ ds_nodash }}/"),
            Some("out/day/")
        );
        assert_eq!(stable_folder("out/{{ ds | add_days(-1) }}/"), Some("out/"));
        assert_eq!(stable_folder("{{ run_id }}/x/"), Some("./"));
        assert_eq!(stable_folder("{{ lake }}/marts/segments/"), None);
        assert_eq!(stable_folder("{{ dsn }}/x/"), None);
    }
}
