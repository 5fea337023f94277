//! The `outputs` section as written: which table goes to which folder, how.

use serde::Deserialize;

/// One entry of `outputs`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The table to write: a source, a transform or a segment table.
    pub table: String,
    /// The folder the Parquet file goes to; placeholders allowed.
    pub path: String,
    /// `overwrite` (default): the folder holds this run's file only;
    /// `append`: this run's file is added beside the earlier ones;
    /// `overwrite_partition`: the partitions this run writes are replaced,
    /// the others kept.
    #[serde(default)]
    pub mode: OutputMode,
    /// Columns that split the output into Hive-style folders
    /// (`ds=2026-11-21/part-00000.parquet`), in order; the files do not
    /// repeat them.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Columns of personal data (tagged in a source, or found by content)
    /// the output may carry; without them, `validate` refuses an output
    /// that would carry one. Needs `purpose`. Default: none.
    #[serde(default)]
    pub contains_personal_data: Vec<String>,
    /// Why the output carries the personal data it declares, for the
    /// record of processing (`civica privacy-record`).
    #[serde(default)]
    pub purpose: Option<String>,
    /// How long its files are kept (`90d`, `12h`): files of earlier runs
    /// written longer ago (appended parts, partitions no run rewrote, a
    /// kept previous version) are deleted after each publish. Default:
    /// kept.
    #[serde(default)]
    pub retention: Option<String>,
    /// A column counting the citizens of each row's group
    /// (`count(DISTINCT citizen_id) AS citizens`): rows counting fewer
    /// than `min_cell` are left out as the output is written, so its group
    /// keys tagged `quasi_identifier` or `special` (a postcode, an age
    /// band) need not be declared. Default: none.
    #[serde(default)]
    pub cell_count: Option<String>,
}

/// How an output's folder changes when a run publishes.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// This run's file replaces the folder's files.
    #[default]
    Overwrite,
    /// This run's file is added as `part-<run_id>.parquet`.
    Append,
    /// The partitions this run writes replace the same partitions; the
    /// others are kept. Needs `partition_by`.
    OverwritePartition,
}
