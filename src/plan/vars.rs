//! Variables: the built-ins (`ds`, `ds_nodash`, `run_id`), the pipeline's
//! `vars` and the command line's `--var`, resolved once; templates in the
//! pipeline file rendered with them; `--var`s that name no variable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;

use super::{Plan, PlanOptions, Step, is_identifier};
use crate::pipeline::template::{builtin_vars, placeholder_names, render};
use crate::pipeline::{CheckSpec, Diagnostic, PipelineSpec, Pos};

/// Variables civica sets itself.
const BUILTIN_VARS: [&str; 3] = ["ds", "ds_nodash", "run_id"];

pub(super) fn resolve_vars(
    spec: &PipelineSpec,
    file: &str,
    opts: &PlanOptions,
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
pub(super) fn validate_command_line_vars(
    spec: &PipelineSpec,
    pipeline: &Path,
    plan: &Plan,
    opts: &PlanOptions,
    diags: &mut Vec<Diagnostic>,
) {
    let yaml = &spec.text;
    let pipeline_dir = pipeline.parent().unwrap_or(Path::new("."));
    let check_files: Vec<String> = spec
        .checks
        .iter()
        .flat_map(|(_, checks)| checks.iter())
        .filter_map(|check| match &check.value {
            CheckSpec::Sql(sql) => sql.file.as_ref(),
            _ => None,
        })
        .filter_map(|file| std::fs::read_to_string(pipeline_dir.join(file)).ok())
        .collect();
    let mut known: BTreeSet<&str> = BUILTIN_VARS.into_iter().collect();
    known.extend(spec.vars.iter().map(|(name, _)| name.value.as_str()));
    known.extend(placeholder_names(yaml));
    known.extend(check_files.iter().flat_map(|text| placeholder_names(text)));
    known.extend(plan.steps.iter().flat_map(|step| match step {
        Step::Sql(sql) => placeholder_names(&sql.sql.template),
        Step::Segment(_) | Step::Identity(_) => Vec::new(),
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

pub(super) fn render_located(
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
