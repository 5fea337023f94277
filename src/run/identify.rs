//! The identity step when a run is prepared: its tables and columns
//! checked against the session, its four tables registered (empty) so the
//! steps after it plan against them, and the tags their columns carry.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::identity::output_schemas;
use crate::pipeline::{Diagnostic, Sensitivity};
use crate::plan::{IDENTITY_TABLES, IdentityPlan};
use crate::privacy::{Lineage, Taint, Why};

/// Checks that every table of the step has its columns, registers the
/// step's tables, and returns the type of the CRM's id.
pub(super) async fn plan_identity(
    ctx: &SessionContext,
    identity: &IdentityPlan,
    file: &str,
) -> Result<DataType, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let mut id_type = DataType::Utf8;
    for (at, input) in identity.inputs() {
        let frame = match ctx.table(input.table.as_str()).await {
            Ok(frame) => frame,
            Err(err) => {
                problems.push(Diagnostic::at(
                    file,
                    identity.located.pos_of(&format!("{at}.table")),
                    format!(
                        "in `identity.{at}`: {}",
                        crate::sql::problem_from_error(&err, "").message
                    ),
                ));
                continue;
            }
        };
        let schema = frame.schema();
        let compared = match (&identity.probabilistic, at.as_str()) {
            (Some(tier), "crm") => tier.columns.as_slice(),
            _ => &[],
        };
        let columns = std::iter::once((format!("{at}.id"), &input.id))
            .chain(
                input
                    .identifiers
                    .iter()
                    .map(|(column, _)| (format!("{at}.identifiers.{column}"), column)),
            )
            .chain(
                compared
                    .iter()
                    .map(|(column, _)| (format!("probabilistic.compare.{column}"), column)),
            );
        for (key, column) in columns {
            match schema.field_with_unqualified_name(column) {
                Ok(field) if at == "crm" && *column == input.id => {
                    id_type = field.data_type().clone();
                }
                Ok(_) => {}
                Err(_) => {
                    let known: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    problems.push(Diagnostic::at(
                        file,
                        identity.located.pos_of(&key),
                        format!(
                            "`identity.{key}`: `{}` has no column `{column}` (columns: {})",
                            input.table,
                            crate::pipeline::backticked(&known)
                        ),
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for (name, schema) in IDENTITY_TABLES.iter().zip(output_schemas(&id_type)) {
        let registered = MemTable::try_new(schema, vec![vec![]])
            .and_then(|table| ctx.register_table(*name, Arc::new(table)).map(|_| ()));
        if let Err(err) = registered {
            return Err(vec![Diagnostic::at(
                file,
                identity.located.pos,
                err.to_string(),
            )]);
        }
    }
    Ok(id_type)
}

/// The tags of the step's tables: the CRM's and the contacts' ids keep
/// theirs; profile ids and evidence are keyed pseudonyms of the
/// identifiers they come from.
pub(super) fn record_identity(identity: &IdentityPlan, lineage: &mut Lineage) {
    let taints_of = |table: &str, column: &str| -> Vec<Taint> {
        lineage
            .table(table)
            .and_then(|columns| columns.iter().find(|(c, _)| c == column))
            .map(|(_, taints)| taints.clone())
            .unwrap_or_default()
    };
    let onto = |taints: Vec<Taint>, hop: String| -> Vec<Taint> {
        taints
            .into_iter()
            .map(|mut taint| {
                taint.path.push(hop.clone());
                taint
            })
            .collect()
    };
    let pseudonyms = |inputs: &[&crate::plan::IdentityInput], hop: &str| -> Vec<Taint> {
        inputs
            .iter()
            .flat_map(|input| {
                input.identifiers.iter().map(|(column, kind)| Taint {
                    tag: Sensitivity::Identifier,
                    why: Why::Pseudonymised(
                        crate::identity::resolve::class(*kind).name().to_string(),
                    ),
                    path: vec![format!("{}.{column}", input.table), hop.to_string()],
                })
            })
            .collect()
    };
    let crm_id = taints_of(&identity.crm.table, &identity.crm.id);
    let touchpoints: Vec<&crate::plan::IdentityInput> = identity
        .touchpoints
        .iter()
        .map(|(_, input)| input)
        .collect();
    let record_ids: Vec<Taint> = touchpoints
        .iter()
        .flat_map(|input| {
            onto(
                taints_of(&input.table, &input.id),
                "touchpoint_attribution.record_id".to_string(),
            )
        })
        .collect();
    let crm = [&identity.crm];
    for (table, schema) in IDENTITY_TABLES.iter().zip(output_schemas(&DataType::Utf8)) {
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                let column = field.name().as_str();
                let hop = format!("{table}.{column}");
                let taints = match column {
                    "citizen_id" | "linked_to" | "other_citizen_id" => onto(crm_id.clone(), hop),
                    "record_id" => record_ids.clone(),
                    "profile_id" => pseudonyms(&crm, &hop),
                    "evidence" if *table == "touchpoint_attribution" => {
                        pseudonyms(&touchpoints, &hop)
                    }
                    "evidence" => pseudonyms(&crm, &hop),
                    _ => Vec::new(),
                };
                (column.to_string(), taints)
            })
            .collect();
        lineage.set_table(table, columns);
    }
}
