//! The outputs section: each output's table, folder and partitions.

use std::collections::BTreeMap;
use std::path::Path;

use super::{OutputPlan, Plan, Tables, locations::resolve_location, vars::render_located};
use crate::pipeline::{Diagnostic, OutputMode, PipelineSpec, Pos};

/// Plans every output whose table exists and whose folder is its own: two
/// outputs in one folder, or one inside another, would replace each
/// other's files.
pub(super) fn plan_outputs(
    spec: &PipelineSpec,
    plan: &Plan,
    base_dir: &Path,
    tables: &Tables,
    diags: &mut Vec<Diagnostic>,
) -> Vec<OutputPlan> {
    let file = tables.file;
    let mut outputs = Vec::new();
    let mut output_paths: BTreeMap<String, Pos> = BTreeMap::new();
    for output in &spec.outputs {
        let table = &output.value.table;
        if !tables.contains(table) {
            diags.push(Diagnostic::at(
                file,
                output.pos_of("table"),
                format!("output table `{table}` is not a source, a transform or a segment table"),
            ));
            continue;
        }
        let path_pos = output.pos_of("path");
        let Some(location) = render_located(file, &output.value.path, path_pos, &plan.vars, diags)
        else {
            continue;
        };
        let location = resolve_location(&location, base_dir, true);
        if let Some((other, at)) = output_paths.iter().find(|(other, _)| {
            *other != &location
                && (location.starts_with(other.as_str()) || other.starts_with(location.as_str()))
        }) {
            diags.push(Diagnostic::at(
                file,
                path_pos,
                format!(
                    "output path `{location}` and the output path `{other}` at {file}:{at} are nested: publishing one would replace the other's files; use separate folders"
                ),
            ));
            continue;
        }
        if let Some(first) = output_paths.insert(location.clone(), path_pos) {
            diags.push(Diagnostic::at(
                file,
                path_pos,
                format!(
                    "output path `{location}` is already written by the output at {file}:{first}"
                ),
            ));
            continue;
        }
        let partition_pos = output.pos_of("partition_by");
        let partition_by = &output.value.partition_by;
        if output.value.mode == OutputMode::OverwritePartition && partition_by.is_empty() {
            diags.push(Diagnostic::at(
                file,
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
                file,
                partition_pos,
                format!("`partition_by` names `{}` twice", twice.1),
            ));
        }
        let personal_data_pos = output.pos_of("contains_personal_data");
        let declared = &output.value.contains_personal_data;
        let purpose = output.value.purpose.as_deref().map(str::trim);
        if !declared.is_empty() && purpose.is_none_or(str::is_empty) {
            diags.push(Diagnostic::at(
                file,
                personal_data_pos,
                format!(
                    "output `{table}` declares `contains_personal_data` without a `purpose`: say why it carries {}",
                    declared.join(", ")
                ),
            ));
        }
        outputs.push(OutputPlan {
            table: table.clone(),
            location,
            mode: output.value.mode,
            partition_by: partition_by.clone(),
            partition_pos,
            contains_personal_data: declared.clone(),
            purpose: purpose.map(str::to_string),
            personal_data_pos,
            retention: super::retention_of(
                file,
                output,
                "retention",
                &output.value.retention,
                diags,
            ),
            cell_count: output
                .value
                .cell_count
                .as_ref()
                .map(|column| (column.clone(), plan.min_cell)),
            pos: output.pos,
        });
    }
    outputs
}
