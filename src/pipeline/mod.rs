//! The pipeline as written: the YAML's serde types ([`PipelineSpec`] and one
//! file per section), loading it with located errors ([`load_spec`]), and
//! the `{{ }}` templates. Checking it is [`crate::plan`]'s work.

mod check;
mod document;
mod identity;
pub mod log_pattern;
mod output;
mod privacy;
mod segment;
mod source;
pub mod template;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

pub use check::{
    AcceptedValuesCheck, CheckCommon, CheckKind, CheckSpec, FreshnessCheck, Literal, NotNullCheck,
    RangeCheck, RelationshipCheck, RowCountCheck, Severity, SqlCheck, UniqueCheck,
};
pub use document::{Located, PipelineSpec, ResourcesSpec, StorageSpec, TransformSpec};
pub use identity::{
    Comparison, IdentifierType, IdentitySpec, IdentityTableSpec, ProbabilisticSpec,
};
pub use output::{OutputMode, OutputSpec};
pub use privacy::{
    ControllerSpec, ErasureSpec, LegalBasis, ProfilingSpec, RetentionSpec, Sensitivity,
};
pub use segment::{
    FeatureName, Impute, KChoice, ModelMode, ModelSpec, ModelType, Precision, Scaling, SegmentSpec,
};
pub use source::{
    AccessLogFormatSpec, ColumnType, CsvFormatSpec, EncodingSpec, FormatSpec, IpMask, LogFlavor,
    NdjsonFormatSpec, OnChangedInput, OnError, ParquetFormatSpec, Pseudonymize, SchemaDrift,
    SchemaSpec, SourceSpec,
};
pub use yaml::Pos;
use yaml::{Node, Value, from_node};

/// One problem found in a pipeline, with the file and position it is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file, as the user would type it (the pipeline or an SQL file).
    pub file: String,
    /// Line and column, when known.
    pub pos: Option<Pos>,
    /// What is wrong, lowercase, naming the key or table in backticks.
    pub message: String,
}

impl Diagnostic {
    /// A problem at a position of a file.
    pub fn at(file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            pos: Some(pos),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(pos) => write!(
                f,
                "{}:{}:{}: {}",
                self.file, pos.line, pos.col, self.message
            ),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Several problems, printed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, d) in self.0.iter().enumerate() {
            if idx > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A path as the user would write it: `a/../b` becomes `b`, `./a` becomes `a`.
pub fn display_path(path: &Path) -> String {
    let mut parts: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let joined: PathBuf = parts.iter().collect();
    if joined.as_os_str().is_empty() {
        ".".to_string()
    } else {
        joined.display().to_string()
    }
}

const TOP_LEVEL_KEYS: [&str; 17] = [
    "name",
    "description",
    "runs",
    "vars",
    "storage",
    "resources",
    "sources",
    "transforms",
    "identity",
    "segment",
    "profiling",
    "min_cell",
    "erasure",
    "retention",
    "controller",
    "outputs",
    "checks",
];

/// Reads a pipeline file into its spec, collecting every problem found in
/// the YAML: syntax, unknown keys, wrong types, unknown names of formats
/// and models.
pub fn load_spec(path: &Path) -> Result<PipelineSpec, Vec<Diagnostic>> {
    let file = display_path(path);
    let text = std::fs::read_to_string(path).map_err(|err| {
        vec![Diagnostic {
            file: file.clone(),
            pos: None,
            message: format!("cannot read the pipeline file: {err}"),
        }]
    })?;
    parse_spec(&file, &text)
}

/// Parses pipeline YAML text; `file` names it in diagnostics.
pub fn parse_spec(file: &str, text: &str) -> Result<PipelineSpec, Vec<Diagnostic>> {
    let root = yaml::parse_yaml(text).map_err(|err| {
        vec![Diagnostic {
            file: file.to_string(),
            pos: err.pos,
            message: format!("invalid YAML: {}", err.message),
        }]
    })?;
    let mut diags = Vec::new();
    let mut spec = PipelineSpec {
        text: text.to_string(),
        ..PipelineSpec::default()
    };
    let Value::Map(entries) = &root.value else {
        return Err(vec![Diagnostic::at(
            file,
            root.pos,
            format!(
                "a pipeline is a mapping of keys, found {}",
                root.value.kind()
            ),
        )]);
    };
    for (key, value) in entries {
        let Some(name) = key.scalar_text() else {
            diags.push(Diagnostic::at(file, key.pos, "keys must be plain names"));
            continue;
        };
        match name.as_str() {
            "name" => match value.scalar_text() {
                Some(text) => spec.name = Some(Located::new(text, value.pos)),
                None => diags.push(expected(file, value, "`name`", "a string")),
            },
            "description" => match &value.value {
                Value::Str(text) => spec.description = Some(text.clone()),
                Value::Null => {}
                _ => diags.push(expected(file, value, "`description`", "a string")),
            },
            "runs" => match value.scalar_text() {
                Some(text) => spec.runs = Some(Located::new(text, value.pos)),
                None => diags.push(expected(file, value, "`runs`", "a folder path or URL")),
            },
            "vars" => load_vars(file, value, &mut spec, &mut diags),
            "sources" => {
                for (name, entry) in map_entries(file, value, "sources", &mut diags) {
                    if let Some(source) =
                        load_entry(file, entry, &format!("sources.{}", name.value), &mut diags)
                    {
                        spec.sources.push((name, source));
                    }
                }
            }
            "transforms" => {
                for (idx, entry) in seq_items(file, value, "transforms", &mut diags)
                    .iter()
                    .enumerate()
                {
                    if let Some(step) =
                        load_entry(file, entry, &format!("transforms[{idx}]"), &mut diags)
                    {
                        spec.transforms.push(step);
                    }
                }
            }
            "identity" => spec.identity = load_entry(file, value, "identity", &mut diags),
            "segment" => spec.segment = load_entry(file, value, "segment", &mut diags),
            "profiling" => spec.profiling = load_entry(file, value, "profiling", &mut diags),
            "erasure" => spec.erasure = load_entry(file, value, "erasure", &mut diags),
            "retention" => spec.retention = load_entry(file, value, "retention", &mut diags),
            "controller" => spec.controller = load_entry(file, value, "controller", &mut diags),
            "storage" => {
                if let Some(storage) = load_entry::<StorageSpec>(file, value, "storage", &mut diags)
                {
                    let v = &storage.value;
                    for (key, seconds) in [
                        ("timeout_s", v.timeout_s),
                        ("connect_timeout_s", v.connect_timeout_s),
                        ("retry_timeout_s", v.retry_timeout_s),
                        ("backoff_max_s", v.backoff_max_s),
                    ] {
                        if let Some(seconds) = seconds.filter(|s| !(*s > 0.0 && s.is_finite())) {
                            diags.push(Diagnostic::at(
                                file,
                                storage.pos_of(key),
                                format!("`storage.{key}` must be a positive number of seconds, found {seconds}"),
                            ));
                        }
                    }
                    spec.storage = storage.value;
                }
            }
            "outputs" => {
                for (idx, entry) in seq_items(file, value, "outputs", &mut diags)
                    .iter()
                    .enumerate()
                {
                    if let Some(output) =
                        load_entry(file, entry, &format!("outputs[{idx}]"), &mut diags)
                    {
                        spec.outputs.push(output);
                    }
                }
            }
            "resources" => spec.resources = load_entry(file, value, "resources", &mut diags),
            "min_cell" => match value.scalar_text().and_then(|t| t.parse::<u64>().ok()) {
                Some(cells) => spec.min_cell = Some(Located::new(cells, value.pos)),
                None => diags.push(expected(file, value, "`min_cell`", "a whole number")),
            },
            "checks" => {
                for (table, list) in map_entries(file, value, "checks", &mut diags) {
                    let section = format!("checks.{}", table.value);
                    let checks = seq_items(file, list, &section, &mut diags)
                        .iter()
                        .enumerate()
                        .filter_map(|(idx, entry)| {
                            load_entry(file, entry, &format!("{section}[{idx}]"), &mut diags)
                        })
                        .collect();
                    spec.checks.push((table, checks));
                }
            }
            other => diags.push(Diagnostic::at(
                file,
                key.pos,
                format!(
                    "unknown key `{other}`, expected one of {}",
                    backticked(&TOP_LEVEL_KEYS)
                ),
            )),
        }
    }
    if spec.name.is_none() {
        diags.push(Diagnostic::at(file, root.pos, "missing key `name`"));
    }
    if !entries
        .iter()
        .any(|(k, _)| k.scalar_text().as_deref() == Some("sources"))
    {
        diags.push(Diagnostic::at(file, root.pos, "missing key `sources`"));
    }
    if diags.is_empty() {
        Ok(spec)
    } else {
        Err(diags)
    }
}

/// Names in backticks, comma-separated, for messages.
pub fn backticked<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn expected(file: &str, node: &Node, what: &str, kind: &str) -> Diagnostic {
    Diagnostic::at(
        file,
        node.pos,
        format!("{what} must be {kind}, found {}", node.value.kind()),
    )
}

fn load_vars(file: &str, node: &Node, spec: &mut PipelineSpec, diags: &mut Vec<Diagnostic>) {
    for (name, value) in map_entries(file, node, "vars", diags) {
        match value.scalar_text() {
            Some(text) => spec.vars.push((name, text)),
            None => diags.push(expected(
                file,
                value,
                &format!("`vars.{}`", name.value),
                "a string or a number",
            )),
        }
    }
}

fn map_entries<'a>(
    file: &str,
    node: &'a Node,
    section: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(Located<String>, &'a Node)> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .filter_map(|(key, value)| match key.scalar_text() {
                Some(name) => Some((Located::new(name, key.pos), value)),
                None => {
                    diags.push(Diagnostic::at(
                        file,
                        key.pos,
                        format!("keys of `{section}` must be plain names"),
                    ));
                    None
                }
            })
            .collect(),
        Value::Null => Vec::new(),
        _ => {
            diags.push(expected(file, node, &format!("`{section}`"), "a mapping"));
            Vec::new()
        }
    }
}

fn seq_items<'a>(
    file: &str,
    node: &'a Node,
    section: &str,
    diags: &mut Vec<Diagnostic>,
) -> &'a [Node] {
    match &node.value {
        Value::Seq(items) => items,
        Value::Null => &[],
        _ => {
            diags.push(expected(file, node, &format!("`{section}`"), "a list"));
            &[]
        }
    }
}

fn load_entry<'a, T: serde::Deserialize<'a>>(
    file: &str,
    node: &'a Node,
    section: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Located<T>> {
    match from_node::<T>(node) {
        Ok(value) => Some(Located {
            value,
            pos: node.pos,
            fields: field_positions(node),
        }),
        Err(err) => {
            diags.push(Diagnostic::at(
                file,
                err.pos.unwrap_or(node.pos),
                format!("in `{section}`: {}", err.message),
            ));
            None
        }
    }
}

/// The positions of every value below `node`, by dotted path (`format.delimiter`, `features[1]`).
fn field_positions(node: &Node) -> BTreeMap<String, Pos> {
    fn walk(node: &Node, prefix: &str, out: &mut BTreeMap<String, Pos>) {
        match &node.value {
            Value::Map(entries) => {
                for (key, value) in entries {
                    if let Some(name) = key.scalar_text() {
                        let path = if prefix.is_empty() {
                            name
                        } else {
                            format!("{prefix}.{name}")
                        };
                        out.insert(path.clone(), value.pos);
                        walk(value, &path, out);
                    }
                }
            }
            Value::Seq(items) => {
                for (idx, item) in items.iter().enumerate() {
                    let path = format!("{prefix}[{idx}]");
                    out.insert(path.clone(), item.pos);
                    walk(item, &path, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(node, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_problems_from_every_section() {
        let yaml = "name: x\nsources:\n  a:\n    path: p\n    format: { type: parqet }\noutputs:\n  - { table: a, pat: q }\nextra: 1\n";
        let diags = parse_spec("p.yaml", yaml).expect_err("three problems");
        let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].starts_with("p.yaml:5:21: in `sources.a`: unknown variant `parqet`"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("p.yaml:7:17: in `outputs[0]`: unknown field `pat`"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("p.yaml:8:1: unknown key `extra`"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn display_path_drops_dot_segments() {
        assert_eq!(
            display_path(Path::new("pipelines/../sql/a.sql")),
            "sql/a.sql"
        );
        assert_eq!(display_path(Path::new("./a.yaml")), "a.yaml");
    }
}
