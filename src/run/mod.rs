//! The orchestrator: preparing a pipeline (everything `validate` checks, including planning SQL against the sources' schemas) and running it step by step.

pub mod error;
pub mod events;
mod execute;
mod identify;
pub mod lock;
pub mod manifest;
mod prepare;
mod protect;
pub mod state;

pub use error::RunFailure;
pub use events::{RunEvent, Scan, StepKind, StepReport, human_bytes};
pub use prepare::{Problems, prepare};

use std::time::Duration;

use datafusion::prelude::SessionContext;

use self::lock::RunLock;
use self::manifest::{Journal, RunClock, write_check_results, write_manifest};
use self::state::Selection;
use crate::plan::Plan;
use crate::sink::Recovery;
use crate::source::InputObject;
use crate::source::SourceStats;

/// A pipeline that passed every validation, with its session ready to run.
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// The session with sources registered and steps planned.
    pub ctx: SessionContext,
    /// What each source registration found, by source order.
    pub sources: Vec<(String, SourceStats, Duration)>,
    /// The run's id and start, taken before the pipeline was read: the id
    /// is `{{ run_id }}`.
    pub clock: RunClock,
    /// What the incremental sources read in this run, and their state after it.
    pub selection: Selection,
    /// What was repaired of the runs that died before this one.
    pub recovery: Recovery,
    /// The pipeline's lock, held until the run ends.
    pub lock: Option<RunLock>,
    /// The pseudonym key the run has.
    pub pseudonym_key: Option<crate::privacy::PseudonymKey>,
    /// The tags of every table's columns, from the sources' through each
    /// step.
    pub lineage: crate::privacy::Lineage,
    /// The erased citizens' rows left out of the sources, and what
    /// identifies them in published files.
    pub erased: crate::privacy::erasure::Erased,
}

/// The account of a finished run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The pipeline's name.
    pub pipeline: String,
    /// Every step in the order it ran.
    pub steps: Vec<StepReport>,
    /// Wall time of the run itself, after [`prepare`].
    pub elapsed: Duration,
}

/// Runs a prepared pipeline: steps in order, then every output staged and
/// published together. `report` is called as each step finishes. Every
/// run, succeeded or failed, leaves a manifest in the pipeline's `runs`
/// folder (see [`manifest`]).
pub async fn run_prepared(
    prepared: Prepared,
    report: &mut dyn FnMut(RunEvent),
) -> Result<RunSummary, Box<RunFailure>> {
    let Prepared {
        plan,
        ctx,
        mut sources,
        clock,
        selection,
        recovery,
        lock,
        pseudonym_key,
        lineage,
        erased,
    } = prepared;
    let pseudonym_key_id = pseudonym_key.as_ref().map(|key| key.id().to_string());
    // Hashed before the run, so that the hash is of what ran.
    let pipeline_hash = manifest::content_hash(&plan);
    let inputs: Vec<(String, Vec<InputObject>)> = sources
        .iter_mut()
        .map(|(name, stats, _)| (name.clone(), stats.inputs.clone()))
        .collect();
    let mut journal = Journal::default();
    let result = if recovery.unfinished.is_empty() {
        let run = execute::Run {
            plan: &plan,
            ctx: &ctx,
            run_id: &clock.run_id,
            selection: &selection,
            lineage: &lineage,
            erased: &erased,
            key: pseudonym_key.as_ref(),
        };
        execute::execute(run, sources, report, &mut journal).await
    } else {
        Err(Box::new(RunFailure::Unrecovered {
            unfinished: recovery.unfinished,
        }))
    };
    if let Some(folder) = &plan.runs {
        let outcome = result.as_ref().map(|_| ()).map_err(|failure| &**failure);
        let resources = manifest::ResourcesRecord {
            memory_limit_bytes: plan.resources.memory_limit,
            spill_dir: plan.resources.spill_dir.clone(),
            target_partitions: ctx.copied_config().target_partitions(),
            peak_rss_bytes: manifest::peak_rss_bytes(),
        };
        let given = manifest::RunInputs {
            pipeline_hash: &pipeline_hash,
            inputs: &inputs,
            resources,
            privacy: manifest::PrivacyRecord {
                pseudonym_key_id,
                erasure: plan.erasure.as_ref().map(|_| manifest::ErasureRecord {
                    listed: erased.list.codici.len() + erased.list.pseudonyms.len(),
                    rows_left_out: erased.rows.iter().cloned().collect(),
                    files_rewritten: journal.erased_files,
                }),
                expired_files: journal.expired_files,
            },
        };
        let document = manifest::manifest(&plan, &clock, given, &journal, outcome);
        // The outputs are already published or kept: a manifest that
        // cannot be written is reported, and does not change the outcome.
        match write_manifest(&ctx, folder, &plan.name, &clock, &document).await {
            Ok(location) => tracing::info!(manifest = %location, "run manifest written"),
            Err(err) => tracing::warn!(%err, "run manifest not written"),
        }
        if !journal.checks.is_empty() {
            match write_check_results(&ctx, folder, &plan.name, &clock, &journal.checks).await {
                Ok(location) => tracing::info!(results = %location, "check results written"),
                Err(err) => tracing::warn!(%err, "check results not written"),
            }
        }
    }
    if let Some(lock) = lock {
        lock.release().await;
    }
    result
}
