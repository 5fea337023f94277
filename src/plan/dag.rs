//! The order steps run in: each after the tables it reads, with unknown
//! tables and cycles reported.

use std::collections::BTreeMap;

use super::{IdentityPlan, SegmentPlan, SqlStep, Step};
use crate::pipeline::{Diagnostic, PipelineSpec, Pos, backticked};
use crate::sql::{SqlProblem, sql_diagnostic};

/// Orders SQL steps, the identity step and the segment step so that each
/// comes after the tables it reads; reports unknown tables and cycles.
pub(super) fn order_steps(
    file: &str,
    sql_steps: Vec<SqlStep>,
    identity: Option<IdentityPlan>,
    segment: Option<SegmentPlan>,
    tables: &BTreeMap<String, Pos>,
    spec: &PipelineSpec,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Step> {
    let mut steps: Vec<Step> = sql_steps.into_iter().map(Step::Sql).collect();
    if let Some(identity) = identity {
        steps.push(Step::Identity(Box::new(identity)));
    }
    if let Some(seg) = segment {
        steps.push(Step::Segment(Box::new(seg)));
    }
    // Which step produces each table; sources are produced by no step.
    let mut producer: BTreeMap<&str, usize> = BTreeMap::new();
    for (idx, step) in steps.iter().enumerate() {
        for name in step.produces() {
            producer.insert(name, idx);
        }
    }
    // Quarantine tables exist but are not worth suggesting.
    let known: Vec<&str> = tables
        .keys()
        .map(String::as_str)
        .filter(|name| !name.ends_with("__rejected"))
        .collect();
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(steps.len());
    let mut valid = vec![true; steps.len()];
    for (idx, step) in steps.iter().enumerate() {
        let mut mine = Vec::new();
        match step {
            Step::Sql(sql) => {
                for (read, pos) in &sql.reads {
                    if let Some(&p) = producer.get(read.as_str()) {
                        mine.push(p);
                    } else if !tables.contains_key(read) {
                        valid[idx] = false;
                        let problem = SqlProblem {
                            pos: *pos,
                            message: format!(
                                "unknown table `{read}` (known tables: {})",
                                backticked(&known)
                            ),
                        };
                        diags.push(sql_diagnostic(&sql.file, &sql.sql, problem));
                    }
                }
            }
            Step::Identity(identity) => {
                for (at, input) in identity.inputs() {
                    if let Some(&p) = producer.get(input.table.as_str()) {
                        mine.push(p);
                    } else if !tables.contains_key(&input.table) {
                        valid[idx] = false;
                        let at = format!("{at}.table");
                        diags.push(Diagnostic::at(
                            file,
                            identity.located.pos_of(&at),
                            format!(
                                "`identity.{at}` names unknown table `{}` (known tables: {})",
                                input.table,
                                backticked(&known)
                            ),
                        ));
                    }
                }
            }
            Step::Segment(seg) => {
                if let Some(&p) = producer.get(seg.from.as_str()) {
                    mine.push(p);
                } else if !tables.contains_key(&seg.from) {
                    valid[idx] = false;
                    let table_exists_later =
                        spec.transforms.iter().any(|t| t.value.name == seg.from);
                    let hint = if table_exists_later {
                        " (its transform has errors)"
                    } else {
                        ""
                    };
                    diags.push(Diagnostic::at(
                        file,
                        seg.located.pos_of("from"),
                        format!(
                            "`segment.from` names unknown table `{}`{hint} (known tables: {})",
                            seg.from,
                            backticked(&known)
                        ),
                    ));
                }
            }
        }
        deps.push(mine);
    }
    // Kahn's algorithm, taking ready steps in the order they were written.
    let mut order = Vec::with_capacity(steps.len());
    let mut done = vec![false; steps.len()];
    loop {
        let ready = (0..steps.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d]));
        match ready {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => break,
        }
    }
    if order.len() < steps.len() {
        let stuck: Vec<usize> = (0..steps.len()).filter(|&i| !done[i]).collect();
        let cycle = describe_cycle(&stuck, &deps, &steps);
        diags.push(Diagnostic {
            file: file.to_string(),
            pos: stuck
                .first()
                .and_then(|&i| {
                    spec.transforms
                        .iter()
                        .find(|t| steps[i].produces().contains(&t.value.name.as_str()))
                })
                .map(|t| t.pos),
            message: format!("steps read each other in a cycle: {cycle}"),
        });
    }
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter(|&i| valid[i])
        .filter_map(|i| slots[i].take())
        .collect()
}

/// `a → b → a`, following dependencies from the first stuck step.
fn describe_cycle(stuck: &[usize], deps: &[Vec<usize>], steps: &[Step]) -> String {
    let Some(&start) = stuck.first() else {
        return String::new();
    };
    let mut path = vec![start];
    let mut current = start;
    while let Some(&next) = deps[current].iter().find(|d| stuck.contains(d)) {
        if let Some(at) = path.iter().position(|&p| p == next) {
            path.drain(..at);
            path.push(next);
            break;
        }
        path.push(next);
        current = next;
    }
    path.iter()
        .map(|&i| format!("`{}`", steps[i].produces()[0]))
        .collect::<Vec<_>>()
        .join(" → ")
}
