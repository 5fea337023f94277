//! The account of a line-oriented source's rejected lines: how many lines
//! each file had, read and rejected, and the first rejected lines for
//! messages, from the scans of its table and its `__rejected` table.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::catalog::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::col;
use datafusion::prelude::SessionContext;
use object_store::ObjectMeta;

use super::lines::{LineCounts, ScanTally};
use crate::storage::display_object;

/// The account of a line-oriented source's rejected lines: what the scans
/// of its table counted, and its `__rejected` table.
#[derive(Debug)]
pub struct Quarantine {
    /// The source's location, files are named relative to.
    pub(super) location: String,
    /// The files its tables read.
    pub(super) objects: Vec<ObjectMeta>,
    /// What the scans of its tables counted, file by file.
    pub(super) tally: Arc<ScanTally>,
    /// Its table of rows.
    pub(super) rows: Arc<dyn TableProvider>,
    /// Its `__rejected` table.
    pub(super) rejected: Arc<dyn TableProvider>,
}

/// How many rejected lines are quoted in a message.
const FIRST_REJECTED: usize = 5;

impl Quarantine {
    /// Lines read and rejected, file by file. Files that no step read to
    /// the end are scanned now.
    pub async fn account(
        &self,
        ctx: &SessionContext,
    ) -> Result<Vec<(String, LineCounts)>, DataFusionError> {
        if self.tally.totals(&self.objects).is_none() {
            ctx.read_table(Arc::clone(&self.rows))?.count().await?;
        }
        let totals = self.tally.totals(&self.objects).ok_or_else(|| {
            DataFusionError::Execution("a complete scan did not cover every file".into())
        })?;
        Ok(self
            .objects
            .iter()
            .map(|object| display_object(&self.location, &object.location))
            .zip(totals)
            .collect())
    }

    /// The first rejected lines, `file:line: reason`, in file and line order.
    pub async fn first_rejected(
        &self,
        ctx: &SessionContext,
    ) -> Result<Vec<String>, DataFusionError> {
        let batches = ctx
            .read_table(Arc::clone(&self.rejected))?
            .sort_by(vec![col("source_file"), col("line_number")])?
            .limit(0, Some(FIRST_REJECTED))?
            .collect()
            .await?;
        let mut first = Vec::new();
        for batch in batches {
            let file = batch.column(0).as_string::<i32>();
            let line = batch.column(1).as_primitive::<Int64Type>();
            let reason = batch.column(3).as_string::<i32>();
            for row in 0..batch.num_rows() {
                first.push(format!(
                    "{}:{}: {}",
                    file.value(row),
                    line.value(row),
                    reason.value(row)
                ));
            }
        }
        Ok(first)
    }
}
