//! SQL transforms: each step's SQL file read, rendered and parsed, with the
//! tables it reads.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Plan, SqlStep, Tables};
use crate::pipeline::template::{pos_of_offset, render_sql};
use crate::pipeline::{Diagnostic, Located, PipelineSpec, TransformSpec, display_path};
use crate::sql::{parse_query, sql_diagnostic, table_references};

fn load_sql_step(
    file: &str,
    step: &Located<TransformSpec>,
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

/// Loads every transform's SQL; a step whose file cannot be read,
/// rendered or parsed is left out and marked unavailable.
pub(super) fn load_steps(
    spec: &PipelineSpec,
    pipeline_dir: &Path,
    tables: &mut Tables,
    plan: &mut Plan,
    diags: &mut Vec<Diagnostic>,
) -> Vec<SqlStep> {
    let file = tables.file;
    let mut sql_steps = Vec::new();
    for step in &spec.transforms {
        if !tables.claim(&step.value.name, step.pos_of("name"), diags) {
            continue;
        }
        match load_sql_step(file, step, pipeline_dir, &plan.vars, diags) {
            Some(sql) => sql_steps.push(sql),
            None => {
                plan.unavailable.insert(step.value.name.clone());
            }
        }
    }
    sql_steps
}
