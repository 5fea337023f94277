//! The sources section: each source's location, format options and limits.

use std::path::Path;

use super::{
    Plan, SourcePlan, Tables, locations::resolve_location, rejected_table_name,
    vars::render_located,
};
use crate::pipeline::{Diagnostic, FormatSpec, Located, PipelineSpec, SourceSpec};

fn validate_format(file: &str, source: &Located<SourceSpec>, diags: &mut Vec<Diagnostic>) {
    if let FormatSpec::AccessLog(log) = &source.value.format
        && let Some(pattern) = &log.pattern
        && let Err(problem) = crate::pipeline::log_pattern::LogPattern::compile(pattern)
    {
        diags.push(Diagnostic::at(
            file,
            source.pos_of("format.pattern"),
            problem.to_string(),
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

/// Plans every source: its table (and quarantine table) names, format
/// options, limits and location. A source whose path cannot be rendered
/// is left out and marked unavailable.
pub(super) fn plan_sources(
    spec: &PipelineSpec,
    base_dir: &Path,
    tables: &mut Tables,
    plan: &mut Plan,
    diags: &mut Vec<Diagnostic>,
) {
    let file = tables.file;
    for (name, source) in &spec.sources {
        if !tables.claim(&name.value, name.pos, diags) {
            continue;
        }
        validate_format(file, source, diags);
        if source.value.format.has_quarantine() {
            tables.claim(&rejected_table_name(&name.value), name.pos, diags);
        }
        let ratio = source.value.max_rejected_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            diags.push(Diagnostic::at(
                file,
                source.pos_of("max_rejected_ratio"),
                format!("`max_rejected_ratio` must be between 0 and 1, found {ratio}"),
            ));
        }
        let path_pos = source.pos_of("path");
        match render_located(file, &source.value.path, path_pos, &plan.vars, diags) {
            Some(location) => plan.sources.push(SourcePlan {
                name: name.value.clone(),
                location: resolve_location(&location, base_dir, false),
                format: source.value.format.clone(),
                schema: source.value.schema.clone(),
                on_error: source.value.on_error,
                max_rejected_ratio: ratio,
                schema_drift: source.value.schema_drift,
                incremental: source.value.incremental,
                on_changed_input: source.value.on_changed_input,
                pseudonymize: source.value.pseudonymize.0.clone(),
                pos: name.pos,
                pseudonymize_pos: source.pos_of("pseudonymize"),
                tags: source.value.tags.clone().into_iter().collect(),
                tags_pos: source.pos_of("tags"),
            }),
            None => {
                plan.unavailable.insert(name.value.clone());
            }
        }
    }
}
