//! What a run tells its caller as it goes: each step's start and its line
//! in the run's account ([`StepReport`]), by kind of step.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::source::lines::BytesScanned;

/// The kind of a step in the run's account (and the run manifest's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A source registered (its files listed).
    #[default]
    Source,
    /// An SQL transform.
    Transform,
    /// The identity step.
    Identity,
    /// The segment step.
    Segment,
    /// A line source's account of read and rejected lines.
    Lines,
    /// The data-quality checks.
    Checks,
    /// An output staged.
    Output,
}

impl StepKind {
    /// The kind as the run's account and its log name it.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Source => "source",
            StepKind::Transform => "transform",
            StepKind::Identity => "identity",
            StepKind::Segment => "segment",
            StepKind::Lines => "lines",
            StepKind::Checks => "checks",
            StepKind::Output => "output",
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One line of the run's account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepReport {
    /// What kind of step.
    pub kind: StepKind,
    /// The table.
    pub name: String,
    /// Rows produced or written, where known.
    pub rows: Option<usize>,
    /// Wall time.
    pub elapsed: Duration,
    /// Extra facts: files and bytes read, inertia, where an output went.
    pub detail: String,
}

/// A step's scan of CSV and log files, for a live progress bar.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The bytes the step's sources hold (compressed where compressed).
    pub total: u64,
    /// What the session's scans have read so far, as stored.
    pub scanned: Arc<BytesScanned>,
}

/// What a run tells its caller as it goes.
#[derive(Debug, Clone)]
pub enum RunEvent<'a> {
    /// A step started.
    Started {
        /// What kind of step.
        kind: StepKind,
        /// Its table (empty for the checks).
        table: &'a str,
        /// When it scans CSV or log files, how much there is to scan.
        scan: Option<Scan>,
    },
    /// A step finished.
    Finished(&'a StepReport),
}

/// Passes a run's events to its caller and keeps the finished steps.
pub(super) struct Reporter<'a> {
    pub(super) report: &'a mut dyn FnMut(RunEvent),
    pub(super) steps: &'a mut Vec<StepReport>,
    pub(super) scanned: Arc<BytesScanned>,
}

impl Reporter<'_> {
    pub(super) fn start(&mut self, kind: StepKind, table: &str) {
        (self.report)(RunEvent::Started {
            kind,
            table,
            scan: None,
        });
    }

    /// A step that scans `bytes` of CSV and log files.
    pub(super) fn start_scan(&mut self, kind: StepKind, table: &str, bytes: u64) {
        let scan = (bytes > 0).then_some(Scan {
            total: bytes,
            scanned: Arc::clone(&self.scanned),
        });
        (self.report)(RunEvent::Started { kind, table, scan });
    }

    pub(super) fn finish(&mut self, step: StepReport) {
        tracing::info!(target: "civica::run",
            kind = step.kind.as_str(),
            table = %step.name,
            rows = step.rows,
            elapsed_ms = step.elapsed.as_millis() as u64,
            detail = %step.detail,
            "step finished"
        );
        (self.report)(RunEvent::Finished(&step));
        self.steps.push(step);
    }
}

/// `1.5 MiB` and the like.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
