//! Hive partitions of an output: one folder per distinct value of its
//! `partition_by` columns (`col=value/`), with the filter of its rows.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::{Expr, col, lit};
use datafusion::scalar::ScalarValue;

use super::{SinkError, read_error};
use crate::plan::OutputPlan;
use crate::sql::quote_ident;

/// The folder name of a null partition value, as Hive, Spark and Arrow write it.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One partition of an output: its folder (`col=value/…/`, empty when the
/// output is not partitioned) and the rows that go there.
pub(super) struct Part {
    /// `col=value/…/`, empty when the output is not partitioned.
    pub(super) folder: String,
    /// The rows of this partition; `None` for all of them.
    pub(super) filter: Option<Expr>,
}

/// The partitions of an output, in the order of their values: one with
/// every row when it has no `partition_by`.
pub(super) async fn partitions(
    frame: &DataFrame,
    output: &OutputPlan,
) -> Result<Vec<Part>, SinkError> {
    if output.partition_by.is_empty() {
        return Ok(vec![Part {
            folder: String::new(),
            filter: None,
        }]);
    }
    let read_error = read_error(output);
    let columns: Vec<&str> = output.partition_by.iter().map(String::as_str).collect();
    let quoted: Vec<Expr> = columns.iter().map(|c| col(quote_ident(c))).collect();
    let order = quoted.iter().map(|c| c.clone().sort(true, false)).collect();
    let values: Vec<RecordBatch> = frame
        .clone()
        .select_columns(&columns)
        .and_then(DataFrame::distinct)
        .and_then(|f| f.sort(order))
        .map_err(read_error)?
        .collect()
        .await
        .map_err(read_error)?;
    let mut parts = Vec::new();
    for batch in &values {
        for row in 0..batch.num_rows() {
            let mut folder = String::new();
            let mut filter: Option<Expr> = None;
            for (i, (name, column)) in columns.iter().zip(&quoted).enumerate() {
                let array = batch.column(i);
                let column = column.clone();
                let (text, matches) = if array.is_null(row) {
                    (NULL_PARTITION.to_string(), column.is_null())
                } else {
                    let value = ScalarValue::try_from_array(array, row).map_err(read_error)?;
                    let text = array_value_to_string(array, row).map_err(|err| {
                        read_error(datafusion::error::DataFusionError::ArrowError(
                            Box::new(err),
                            None,
                        ))
                    })?;
                    (text, column.eq(lit(value)))
                };
                if let Some(bad) = text
                    .chars()
                    .find(|c| !(c.is_alphanumeric() || " ._-+:".contains(*c)))
                    .or_else(|| text.is_empty().then_some(' '))
                {
                    return Err(SinkError::Partition {
                        table: output.table.clone(),
                        column: name.to_string(),
                        reason: match text.is_empty() {
                            true => "an empty value cannot name a folder".to_string(),
                            false => format!(
                                "the value `{text}` has `{bad}`, which cannot be part of a folder name (partition values may hold letters, digits, spaces and `._-+:`)"
                            ),
                        },
                    });
                }
                folder.push_str(&format!("{name}={text}/"));
                filter = Some(match filter {
                    Some(before) => before.and(matches),
                    None => matches,
                });
            }
            parts.push(Part { folder, filter });
        }
    }
    Ok(parts)
}
