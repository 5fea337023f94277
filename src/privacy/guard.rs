//! The output guard: the tags each source column starts with (declared in
//! `tags`, found by content, given by the format), and the outputs that
//! would publish a tagged column they do not declare.

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::content::{SOURCE_SAMPLE_ROWS, tag_by_content};
use super::lineage::{ColumnTaints, Lineage, Taint, Why};
use crate::pipeline::{FormatSpec, IpMask, Sensitivity};
use crate::plan::{OutputPlan, SourcePlan};

/// The column of access logs holding the client's address.
const CLIENT_COLUMN: &str = "client_ip";

/// The column of a source's quarantine table that holds what a line said
/// (its `reason` shows personal values by their kind only).
const RAW_COLUMN: &str = "raw_line";

/// The tags a source's columns start with, and the columns its `tags`
/// name that it does not have. A sample that cannot be read (a damaged
/// file, a bad line under `on_error: fail`) tags nothing by content: the
/// run fails on it when it reads the source, and the sink looks at what
/// it publishes again.
pub async fn source_taints(
    ctx: &SessionContext,
    source: &SourcePlan,
) -> Result<(ColumnTaints, Vec<String>), DataFusionError> {
    let schema = ctx.table(source.name.as_str()).await?.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let ip_mask = match &source.format {
        FormatSpec::AccessLog(log) => Some(log.ip_mask),
        _ => None,
    };
    // Columns whose tag is known without looking: declared, pseudonymised,
    // masked as they were read.
    let mut known: Vec<&str> = source.tags.iter().map(|(c, _)| c.as_str()).collect();
    known.extend(source.pseudonymize.iter().map(|(c, _)| c.as_str()));
    if ip_mask.is_some() {
        known.push(CLIENT_COLUMN);
    }
    let found = tag_by_content(ctx, &source.name, &known, SOURCE_SAMPLE_ROWS)
        .await
        .unwrap_or_else(|err| {
            tracing::debug!(target: "civica::run", source = %source.name, %err, "no sample read");
            Vec::new()
        });
    let taint = |column: &str, tag, why| Taint {
        tag,
        why,
        path: vec![format!("{}.{column}", source.name)],
    };
    let columns = names
        .iter()
        .map(|&column| {
            let declared = source
                .tags
                .iter()
                .find(|(c, _)| c == column)
                .map(|(_, t)| *t);
            let pseudonymised = source.pseudonymize.iter().find(|(c, _)| c == column);
            let taints = match (pseudonymised, declared) {
                (_, Some(Sensitivity::None)) => Vec::new(),
                (Some((_, kind)), _) => vec![taint(
                    column,
                    declared.unwrap_or(Sensitivity::Identifier),
                    Why::Pseudonymised(kind.clone()),
                )],
                (None, Some(tag)) => vec![taint(column, tag, Why::Declared)],
                (None, None) if column == CLIENT_COLUMN && ip_mask == Some(IpMask::None) => {
                    vec![taint(column, Sensitivity::Identifier, Why::Unmasked)]
                }
                (None, None) => found
                    .iter()
                    .filter(|(c, _)| c == column)
                    .map(|(_, kind)| taint(column, kind.sensitivity(), Why::Content(*kind)))
                    .collect(),
            };
            (column.to_string(), taints)
        })
        .collect();
    let unknown = source
        .tags
        .iter()
        .filter(|(c, _)| !names.contains(&c.as_str()))
        .map(|(c, _)| c.clone())
        .collect();
    Ok((columns, unknown))
}

/// The tags of a quarantine table's columns (`columns`, its schema's
/// names): the raw lines count as identifiers, whatever they hold.
pub fn rejected_taints<'a>(table: &str, columns: impl Iterator<Item = &'a str>) -> ColumnTaints {
    columns
        .map(|name| {
            let taints = match name == RAW_COLUMN {
                true => vec![Taint {
                    tag: Sensitivity::Identifier,
                    why: Why::Quarantine,
                    path: vec![format!("{table}.{name}")],
                }],
                false => Vec::new(),
            };
            (name.to_string(), taints)
        })
        .collect()
}

/// What is wrong with the personal data an output would publish: each
/// tagged column it does not declare, with the path it came by, and each
/// declared column it does not have.
pub fn output_problems(lineage: &Lineage, output: &OutputPlan) -> Vec<String> {
    let Some(columns) = lineage.table(&output.table) else {
        return Vec::new();
    };
    let mut problems: Vec<String> = columns
        .iter()
        .filter(|(column, _)| !output.contains_personal_data.contains(column))
        .flat_map(|(column, taints)| {
            // Pseudonyms are what the guard asks for; a group of at least
            // `min_cell` citizens singles none out by a quasi-identifier.
            let grouped = |t: &&Taint| {
                output.cell_count.is_some()
                    && matches!(t.tag, Sensitivity::QuasiIdentifier | Sensitivity::Special)
            };
            taints.iter().filter(move |t| !t.is_pseudonym() && !grouped(t)).map(move |taint| {
                format!(
                    "output `{}` would publish `{column}`, personal data ({}: {}) that it does not declare; it comes by {}. Pass it through pseudonym(), leave it out, or list it in the output's `contains_personal_data` with a `purpose`",
                    output.table,
                    taint.tag.name(),
                    taint.why,
                    taint.route()
                )
            })
        })
        .collect();
    if let Some((count, _)) = &output.cell_count {
        match columns.iter().find(|(column, _)| column == count) {
            None => problems.push(format!(
                "output `{}` has `cell_count: {count}`, which is not one of its columns",
                output.table
            )),
            Some((_, taints)) if !taints.is_empty() => problems.push(format!(
                "output `{}` has `cell_count: {count}`, which is computed from personal data ({}), not a count of citizens",
                output.table,
                taints[0].route()
            )),
            Some(_) => {}
        }
    }
    problems.extend(
        output
            .contains_personal_data
            .iter()
            .filter(|declared| !columns.iter().any(|(column, _)| column == *declared))
            .map(|declared| {
                format!(
                    "output `{}` declares `{declared}` in `contains_personal_data`, which is not one of its columns",
                    output.table
                )
            }),
    );
    problems
}
