//! The `erasure` section: where the list is, and which source columns say
//! whose a row is.

use std::path::Path;

use super::{ErasurePlan, Plan, Step, locations::resolve_location, vars::render_located};
use crate::pipeline::{Diagnostic, PipelineSpec};

/// Plans `erasure`: its list's location, and sources that exist.
pub(super) fn plan_erasure(
    spec: &PipelineSpec,
    plan: &Plan,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<ErasurePlan> {
    let erasure = spec.erasure.as_ref()?;
    let file = &plan.file;
    let list = render_located(
        file,
        &erasure.value.list,
        erasure.pos_of("list"),
        &plan.vars,
        diags,
    )?;
    for source in erasure.value.sources.keys() {
        if !plan.sources.iter().any(|s| &s.name == source) {
            diags.push(Diagnostic::at(
                file,
                erasure.pos_of("sources"),
                format!("`erasure.sources` names `{source}`, which is not a source"),
            ));
        }
    }
    if erasure.value.sources.is_empty() {
        diags.push(Diagnostic::at(
            file,
            erasure.pos_of("sources"),
            "`erasure.sources` is empty: name each source holding rows of the erased citizens and its column that says whose a row is".to_string(),
        ));
    }
    let ids = erasure.value.ids.clone().unwrap_or_else(|| {
        plan.steps
            .iter()
            .filter_map(|step| match step {
                Step::Segment(seg) => Some(seg.id.clone()),
                Step::Sql(_) | Step::Identity(_) => None,
            })
            .collect()
    });
    Some(ErasurePlan {
        list: resolve_location(&list, base_dir, false),
        sources: erasure.value.sources.clone().into_iter().collect(),
        ids,
        pos: erasure.pos,
    })
}
