//! The `resources` section with the command line's settings over it:
//! DataFusion's memory pool, the spill folder and the partitions per query.

use std::path::{Path, PathBuf};

use super::PlanOptions;
use crate::pipeline::{Diagnostic, PipelineSpec};

/// What a run may use, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourcesPlan {
    /// Bytes for DataFusion's memory pool; unlimited when `None`.
    pub memory_limit: Option<usize>,
    /// The folder spill files go to; the system's temporary folder when `None`.
    pub spill_dir: Option<PathBuf>,
    /// Partitions per query; DataFusion's default (the cores) when `None`.
    pub target_partitions: Option<usize>,
}

/// The `resources` section with the command line's settings over it.
/// The most partitions a query may be split into: each takes buffers and
/// a thread's share, and far more than the cores only costs memory (99
/// billion once aborted allocating 3.2 TB).
const MAX_TARGET_PARTITIONS: usize = 1024;

pub(super) fn resolve_resources(
    file: &str,
    spec: &PipelineSpec,
    opts: &PlanOptions,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> ResourcesPlan {
    let yaml = spec.resources.as_ref();
    let written = yaml.map(|r| r.value.clone()).unwrap_or_default();
    let cli = &opts.resources;
    // Where a setting came from, for messages: the command line or the YAML.
    let place = |key: &str, from_cli: bool| match (from_cli, yaml) {
        (false, Some(r)) => (Some(r.pos_of(key)), format!("`resources.{key}`")),
        _ => (None, format!("`--{}`", key.replace('_', "-"))),
    };
    let mut report = |key: &str, from_cli: bool, message: String| {
        let (pos, name) = place(key, from_cli);
        diags.push(Diagnostic {
            file: if pos.is_some() {
                file.to_string()
            } else {
                "command line".to_string()
            },
            pos,
            message: format!("{name} {message}"),
        });
    };
    let memory_limit = match (&cli.memory_limit, &written.memory_limit) {
        (Some(text), _) => Some((text, true)),
        (None, Some(text)) => Some((text, false)),
        (None, None) => None,
    }
    .and_then(|(text, from_cli)| match parse_size(text) {
        Some(bytes) if bytes >= 16 << 20 => Some(bytes),
        Some(_) => {
            report(
                "memory_limit",
                from_cli,
                format!("must be at least 16MiB, found `{text}`"),
            );
            None
        }
        None => {
            report(
                "memory_limit",
                from_cli,
                format!("must be a size such as `512MiB`, `2GiB` or `1.5GB`, found `{text}`"),
            );
            None
        }
    });
    let target_partitions = match (cli.target_partitions, written.target_partitions) {
        (Some(n), _) if !(1..=MAX_TARGET_PARTITIONS).contains(&n) => {
            report(
                "target_partitions",
                true,
                format!("must be from 1 to {MAX_TARGET_PARTITIONS}, found `{n}`"),
            );
            None
        }
        (None, Some(n)) if !(1..=MAX_TARGET_PARTITIONS).contains(&n) => {
            report(
                "target_partitions",
                false,
                format!("must be from 1 to {MAX_TARGET_PARTITIONS}, found `{n}`"),
            );
            None
        }
        (cli, yaml) => cli.or(yaml),
    };
    let spill_dir = cli
        .spill_dir
        .clone()
        .or(written.spill_dir)
        .map(|dir| base_dir.join(dir));
    ResourcesPlan {
        memory_limit,
        spill_dir,
        target_partitions,
    }
}

/// `512MiB`, `2GiB`, `1.5GB`, `800M`, `1048576` as bytes.
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..split].parse().ok()?;
    let unit: f64 = match text[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * unit;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as usize)
}
