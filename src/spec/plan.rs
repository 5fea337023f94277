//! The checked plan: variables filled, paths resolved, SQL files read and parsed, steps ordered by their references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::template::{Rendered, builtin_vars, pos_of_offset, render};
use super::{
    ColumnType, Diagnostic, FormatSpec, Located, LogFlavor, ModelSpec, OnError, PipelineSpec, Pos,
    Scaling, SchemaDrift, SchemaSpec, backticked, display_path,
};
use crate::transform::{SqlProblem, parse_query, sql_diagnostic, table_references};

/// What the command line adds to a pipeline.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// `--var name=value` pairs, in order; later ones win.
    pub vars: Vec<(String, String)>,
    /// The day the run happens on; `ds` defaults to the day before.
    pub today: Option<NaiveDate>,
    /// The directory relative data paths are resolved against. Default: the current directory.
    pub base_dir: Option<PathBuf>,
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
    /// Every variable with its final value (built-ins, `vars`, `--var`).
    pub vars: BTreeMap<String, String>,
    /// Sources in the order written.
    pub sources: Vec<SourcePlan>,
    /// SQL and segment steps, each after the steps it reads.
    pub steps: Vec<Step>,
    /// Outputs in the order written.
    pub outputs: Vec<OutputPlan>,
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
            Step::Segment(seg) => vec![seg.name.as_str(), seg.profiles.as_str()],
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
    /// The table it reads.
    pub from: String,
    /// The id column.
    pub id: String,
    /// Feature columns.
    pub features: Vec<String>,
    /// Scaling before the fit.
    pub scaling: Scaling,
    /// k-means settings.
    pub kmeans: KmeansPlan,
    /// Where `segment` and its keys are in the pipeline file.
    pub located: Located<()>,
}

/// Checked k-means settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KmeansPlan {
    /// Number of segments, at least 2.
    pub k: usize,
    /// Random seed.
    pub seed: u64,
    /// Initialisations, at least 1.
    pub n_init: usize,
    /// Iteration cap, at least 1.
    pub max_iter: u64,
    /// Convergence tolerance, positive.
    pub tolerance: f64,
}

/// An output ready to write.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// The table written.
    pub table: String,
    /// An absolute local folder or a URL, always ending in `/`.
    pub location: String,
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
        vars,
        sources: Vec::new(),
        steps: Vec::new(),
        outputs: Vec::new(),
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
        let plan = check_segment(&file, seg, &mut diags);
        (ok_name && ok_profiles).then_some(plan)
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
        plan.outputs.push(OutputPlan {
            table: table.clone(),
            location,
            pos: output.pos,
        });
    }
    (plan, diags)
}

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
    for (name, value) in &spec.vars {
        if name.value == "ds" || name.value == "ds_nodash" {
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
        if name != "ds" {
            vars.insert(name.clone(), value.clone());
        }
    }
    vars
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
    let sql = match render(&template, vars) {
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
    let ModelSpec::Kmeans(kmeans) = &spec.model;
    if kmeans.k < 2 {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.k"),
            format!("`k` must be at least 2, found {}", kmeans.k),
        ));
    }
    if kmeans.n_init < 1 {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.n_init"),
            format!("`n_init` must be at least 1, found {}", kmeans.n_init),
        ));
    }
    if kmeans.max_iter < 1 {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.max_iter"),
            format!("`max_iter` must be at least 1, found {}", kmeans.max_iter),
        ));
    }
    if !(kmeans.tolerance > 0.0 && kmeans.tolerance.is_finite()) {
        diags.push(Diagnostic::at(
            file,
            seg.pos_of("model.tolerance"),
            format!(
                "`tolerance` must be a positive number, found {}",
                kmeans.tolerance
            ),
        ));
    }
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
    // The plan is kept even with bad parameters, so that its columns are
    // still checked against the data; the problems above stop any run.
    SegmentPlan {
        name: spec.name.clone(),
        profiles: spec.profiles.clone(),
        from: spec.from.clone(),
        id: spec.id.clone(),
        features: spec.features.clone(),
        scaling: spec.scaling,
        kmeans: KmeansPlan {
            k: usize::try_from(kmeans.k).unwrap_or(2).max(2),
            seed: kmeans.seed,
            n_init: usize::try_from(kmeans.n_init).unwrap_or(1).max(1),
            max_iter: u64::try_from(kmeans.max_iter).unwrap_or(1).max(1),
            tolerance: kmeans.tolerance,
        },
        located: Located {
            value: (),
            pos: seg.pos,
            fields: seg.fields.clone(),
        },
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
