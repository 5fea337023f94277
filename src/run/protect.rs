//! The privacy stages of preparing a run: the pseudonym key, the erasure
//! list and the sources' protection (erased rows left out, columns
//! pseudonymised) before any step reads them, the tags their columns start
//! with, the tags of the segment step's tables, and the output guard.

use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

use super::prepare::Findings;
use crate::pipeline::Diagnostic;
use crate::plan::{Plan, SegmentPlan};
use crate::privacy::erasure::{Erased, ErasureError, ErasureList, erase_rows};
use crate::privacy::guard::{output_problems, rejected_taints, source_taints};
use crate::privacy::{
    KeyError, Lineage, PseudonymKey, pseudonymize_table, register_pseudonym,
    register_unusable_pseudonym,
};
use crate::segment::output_schemas;
use crate::storage::configure_store;

/// Reads the pseudonym key from the environment and registers
/// `pseudonym()` with it. A key that is set but unusable is a mistake
/// whether or not the pipeline needs it; no key is one only for a source
/// that `pseudonymize`s (SQL calling `pseudonym()` fails when planned).
pub(super) fn load_pseudonym_key(
    ctx: &SessionContext,
    plan: &Plan,
    found: &mut Findings,
) -> Option<PseudonymKey> {
    let key = match PseudonymKey::from_env() {
        Ok(key) => key,
        Err(err) => {
            // Said once: not again for each source and query that needs it.
            found.invalid.push(Diagnostic {
                file: plan.file.clone(),
                pos: None,
                message: err.to_string(),
            });
            register_unusable_pseudonym(ctx);
            return None;
        }
    };
    if key.is_none() {
        for step in &plan.steps {
            if let crate::plan::Step::Identity(identity) = step {
                found.invalid.push(Diagnostic::at(
                    &plan.file,
                    identity.located.pos,
                    format!(
                        "`identity` shows identifiers only as keyed pseudonyms: {}",
                        KeyError::Missing
                    ),
                ));
            }
        }
        for source in plan.sources.iter().filter(|s| !s.pseudonymize.is_empty()) {
            found.invalid.push(Diagnostic::at(
                &plan.file,
                source.pseudonymize_pos,
                format!(
                    "source `{}` has `pseudonymize`: {}",
                    source.name,
                    KeyError::Missing
                ),
            ));
        }
    }
    register_pseudonym(ctx, key.clone());
    key
}

/// Reads the erasure list, when the pipeline has one: a list that cannot
/// be read fails the run (erasing nobody is not a default).
pub(super) async fn read_erasure_list(
    ctx: &SessionContext,
    plan: &Plan,
    has_key: bool,
    found: &mut Findings,
) -> Option<ErasureList> {
    let erasure = plan.erasure.as_ref()?;
    if let Err(err) = configure_store(ctx, &erasure.list, &plan.storage) {
        found
            .invalid
            .push(Diagnostic::at(&plan.file, erasure.pos, err.to_string()));
        return None;
    }
    let read = ErasureList::read(ctx, &erasure.list)
        .await
        .and_then(|list| match list.pseudonyms.is_empty() || has_key {
            true => Ok(list),
            false => Err(ErasureError::NoKey(erasure.list.clone())),
        });
    match read {
        Ok(list) => Some(list),
        Err(err) => {
            found
                .failures
                .push(Diagnostic::at(&plan.file, erasure.pos, err.to_string()));
            None
        }
    }
}

/// Leaves the erased citizens' rows out of the sources (those matched by
/// the list first, then those matched by the ids found in them), then
/// replaces `pseudonymize` columns, before any step reads a source.
pub(super) async fn protect_sources(
    ctx: &SessionContext,
    plan: &Plan,
    list: Option<ErasureList>,
    has_key: bool,
    found: &mut Findings,
) -> Erased {
    let mut erased = Erased::default();
    if let (Some(erasure), Some(list)) = (&plan.erasure, list) {
        erased.list = list;
        erased.id_columns = erasure.ids.clone();
        let (by_id, by_list): (Vec<_>, Vec<_>) = erasure
            .sources
            .iter()
            .partition(|(_, column)| erasure.ids.contains(column));
        for (source, column) in by_list.into_iter().chain(by_id) {
            if found.failed.contains(source) {
                continue;
            }
            if let Err(err) = erase_rows(ctx, source, column, has_key, &mut erased).await {
                found.invalid.push(Diagnostic::at(
                    &plan.file,
                    erasure.pos,
                    crate::sql::problem_from_error(&err, "").message,
                ));
                found.failed.insert(source.clone());
            }
        }
    }
    for source in &plan.sources {
        if !has_key || found.failed.contains(&source.name) {
            continue;
        }
        if let Err(err) = pseudonymize_table(ctx, &source.name, &source.pseudonymize).await {
            found.invalid.push(Diagnostic::at(
                &plan.file,
                source.pseudonymize_pos,
                err.to_string(),
            ));
            found.failed.insert(source.name.clone());
        }
    }
    erased
}

/// The tags every registered source and quarantine table starts with:
/// declared in `tags`, found by content in a sample, given by the format.
pub(super) async fn tag_sources(
    ctx: &SessionContext,
    plan: &Plan,
    found: &mut Findings,
) -> Lineage {
    let mut lineage = Lineage::default();
    for source in &plan.sources {
        if found.failed.contains(&source.name) {
            continue;
        }
        match source_taints(ctx, source).await {
            Ok((columns, unknown)) => {
                lineage.set_table(&source.name, columns);
                if !unknown.is_empty() {
                    found.invalid.push(Diagnostic::at(
                        &plan.file,
                        source.tags_pos,
                        format!(
                            "`tags` of source `{}` names {}, not among its columns",
                            source.name,
                            unknown
                                .iter()
                                .map(|c| format!("`{c}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            Err(err) => {
                found.failures.push(Diagnostic::at(
                    &plan.file,
                    source.pos,
                    format!(
                        "source `{}`: reading a sample to find personal data: {}",
                        source.name,
                        crate::sql::problem_from_error(&err, "").message
                    ),
                ));
                found.failed.insert(source.name.clone());
            }
        }
        if let Some(rejected) = source.rejected_table() {
            let schema = crate::source::lines::rejected_schema();
            let columns = schema.fields().iter().map(|f| f.name().as_str());
            lineage.set_table(&rejected, rejected_taints(&rejected, columns));
        }
    }
    lineage
}

/// Refuses every output that would publish personal data it does not
/// declare, naming the column and the path it came by.
pub(super) fn guard_outputs(plan: &Plan, lineage: &Lineage, found: &mut Findings) {
    for output in &plan.outputs {
        for message in output_problems(lineage, output) {
            found.invalid.push(Diagnostic::at(
                &plan.file,
                output.personal_data_pos,
                message,
            ));
        }
    }
}

/// The tags of the segment step's tables: `segments` carries those of the
/// id; the profiles, quality and migrations tables are aggregates, whose
/// small cells `min_cell` suppresses.
pub(super) fn record_segment(seg: &SegmentPlan, lineage: &mut Lineage) {
    let id_taints = lineage
        .table(&seg.from)
        .and_then(|columns| columns.iter().find(|(c, _)| *c == seg.id))
        .map(|(_, taints)| taints.clone())
        .unwrap_or_default();
    let id_type = DataType::Utf8;
    let [segments, ..] = output_schemas(seg, &id_type);
    let columns = segments
        .fields()
        .iter()
        .map(|field| {
            let taints = match *field.name() == seg.id {
                true => id_taints
                    .iter()
                    .cloned()
                    .map(|mut taint| {
                        taint.path.push(format!("{}.{}", seg.name, seg.id));
                        taint
                    })
                    .collect(),
                false => Vec::new(),
            };
            (field.name().clone(), taints)
        })
        .collect();
    lineage.set_table(&seg.name, columns);
}
