//! What `civica run` and `civica validate` print on stdout: one line per
//! finished step, and the summary of a valid pipeline.

use std::io::Write;

use crate::plan::Step;
use crate::run::{Prepared, StepReport, human_bytes};

/// One line of `civica run`'s account: kind, table, rows, time, detail.
pub(super) fn print_step(step: &StepReport) {
    let rows = step.rows.map(|r| format!("{r} rows")).unwrap_or_default();
    say!(
        "{:<9} {:<24} {:>12} {:>8.2} s  {}",
        step.kind,
        step.name,
        rows,
        step.elapsed.as_secs_f64(),
        step.detail
    );
}

/// What `civica validate` prints of a valid pipeline: its run date,
/// sources, steps and outputs.
pub(super) fn print_validation_summary(prepared: &Prepared) {
    let plan = &prepared.plan;
    say!("{}: valid pipeline `{}`", plan.file, plan.name);
    say!(
        "  run date (ds): {}",
        plan.vars.get("ds").map(String::as_str).unwrap_or("-")
    );
    for (source, (_, stats, _)) in plan.sources.iter().zip(&prepared.sources) {
        let format = source.format.name();
        say!(
            "  source    {:<22} {:<20} {} file(s), {}",
            source.name,
            format,
            stats.files,
            human_bytes(stats.bytes)
        );
    }
    for step in &plan.steps {
        match step {
            Step::Sql(sql) => say!("  transform {:<22} {}", sql.name, sql.file),
            Step::Identity(identity) => say!(
                "  identity  {:<22} CRM records of `{}`, {} contact table(s), rules {}",
                "identity_profiles",
                identity.crm.table,
                identity.touchpoints.len(),
                identity
                    .rules
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(" > ")
            ),
            Step::Segment(seg) => say!(
                "  segment   {:<22} {} k={} on {} feature(s) of `{}`",
                seg.name,
                match seg.model.kind {
                    crate::plan::ModelKind::Kmeans(_) => "k-means",
                    crate::plan::ModelKind::Gmm => "gaussian mixture",
                },
                match seg.model.k {
                    crate::plan::KPlan::Fixed(k) => k.to_string(),
                    crate::plan::KPlan::Auto(min, max) => format!("auto ({min}..={max})"),
                },
                seg.features.len(),
                seg.from
            ),
        }
    }
    for output in &plan.outputs {
        say!("  output    {:<22} {}", output.table, output.location);
    }
}
