//! The segment step's input: the `from` table read in id order into one
//! column of f64 per feature, nulls imputed or rows dropped as the pipeline
//! says, then ln(1 + x) where asked.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, make_comparator};
use datafusion::arrow::compute::{SortOptions, cast, concat, filter, sort_to_indices, take};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::SegmentError;
use crate::pipeline::Impute;
use crate::plan::SegmentPlan;
use crate::sql::quote_ident;

/// The features of every citizen kept for the fit.
#[derive(Debug, Clone)]
pub struct Features {
    /// Ids, sorted, of the rows kept.
    pub ids: ArrayRef,
    /// Per feature, its values in original units after imputation.
    pub columns: Vec<Vec<f64>>,
    /// Per feature, the value nulls were replaced with (median or zero).
    pub fill: Vec<Option<f64>>,
    /// Per feature, how many nulls were filled.
    pub imputed: Vec<usize>,
    /// Rows left out because a feature was null (`impute: drop`).
    pub dropped: usize,
    /// Citizens left out before anything was read of them: they objected
    /// to profiling, or (`basis: consent`) did not consent to it.
    pub not_profiled: usize,
}

impl Features {
    /// Rows kept.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// Checks that every `log1p` feature is above −1, where ln(1 + x) exists.
    pub fn validate_log1p(&self, plan: &SegmentPlan) -> Result<(), SegmentError> {
        for (j, values) in self.columns.iter().enumerate() {
            if !plan.log1p[j] {
                continue;
            }
            if let Some(bad) = values.iter().find(|v| **v <= -1.0) {
                return Err(SegmentError::Log1pDomain {
                    column: plan.features[j].clone(),
                    value: *bad,
                });
            }
        }
        Ok(())
    }

    /// Feature `j` as the model sees it before scaling: ln(1 + x) when
    /// it is flagged in `log1p`. One column at a time, so that the step
    /// never holds a second copy of every feature.
    /// Call [`Features::validate_log1p`] first: values at or below −1 give NaN.
    pub fn transformed(&self, plan: &SegmentPlan, j: usize) -> Vec<f64> {
        let log1p = plan.log1p[j];
        self.columns[j]
            .iter()
            .map(|v| model_value(log1p, *v))
            .collect()
    }
}

/// A feature value as the model sees it before scaling: ln(1 + x) when the
/// feature is flagged in `log1p`.
pub fn model_value(log1p: bool, value: f64) -> f64 {
    match log1p {
        true => value.ln_1p(),
        false => value,
    }
}

/// The query reading `id` and the features of `from`: every row, or, with
/// `profiling`, the rows of citizens who may be profiled.
pub fn features_query(plan: &SegmentPlan) -> String {
    let columns: Vec<String> = std::iter::once(&plan.id)
        .chain(&plan.features)
        .map(|c| format!("civica_input.{}", quote_ident(c)))
        .collect();
    let kept = plan
        .profiling
        .as_ref()
        .map(|p| format!(" WHERE {}", p.keeps("civica_input", &plan.id)))
        .unwrap_or_default();
    format!(
        "SELECT {} FROM {} AS civica_input{kept}",
        columns.join(", "),
        quote_ident(&plan.from)
    )
}

/// With `profiling`, the query counting the citizens it leaves out: of
/// `from` as its step computed it, before they were left out of it
/// ([`crate::transform::before_profiling`]), when `from` is a step.
pub fn left_out_query(ctx: &SessionContext, plan: &SegmentPlan) -> Option<String> {
    let profiling = plan.profiling.as_ref()?;
    let all = crate::transform::before_profiling(&plan.from);
    let counted = match ctx.table_exist(all.as_str()) {
        Ok(true) => all,
        _ => plan.from.clone(),
    };
    Some(format!(
        "SELECT count(*) FROM {} AS civica_input WHERE NOT ({})",
        quote_ident(&counted),
        profiling.keeps("civica_input", &plan.id)
    ))
}

/// Reads `id` and the features of `from`, ordered by id so that the fit
/// sees the rows in the same order whatever the partitioning, and applies
/// `impute` (or, with saved fill values in `assign` mode, those).
pub async fn read_features(
    ctx: &SessionContext,
    plan: &SegmentPlan,
    saved_fill: Option<&[Option<f64>]>,
) -> Result<Features, SegmentError> {
    let not_profiled = match left_out_query(ctx, plan) {
        Some(count) => {
            let batches = ctx.sql(&count).await?.collect().await?;
            let counted = batches
                .first()
                .filter(|b| b.num_rows() > 0)
                .map(|b| cast(b.column(0), &DataType::Int64))
                .transpose()?;
            counted.map_or(0, |c| {
                usize::try_from(
                    c.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                        .value(0),
                )
                .unwrap_or(0)
            })
        }
        None => 0,
    };
    let mut stream = ctx
        .sql(&features_query(plan))
        .await?
        .execute_stream()
        .await?;
    let d = plan.features.len();
    let mut ids: Vec<ArrayRef> = Vec::new();
    // NaN stands for null (a NaN value cannot be clustered either): an
    // f64 per value instead of an `Option<f64>` halves the memory.
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); d];
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        ids.push(Arc::clone(batch.column(0)));
        for (j, column) in values.iter_mut().enumerate() {
            let array = cast(batch.column(j + 1), &DataType::Float64)?;
            let array = array.as_primitive::<Float64Type>();
            let from = column.len();
            column.extend_from_slice(array.values());
            if let Some(nulls) = array.nulls().filter(|n| n.null_count() > 0) {
                for i in (0..array.len()).filter(|&i| nulls.is_null(i)) {
                    column[from + i] = f64::NAN;
                }
            }
        }
    }
    let mut ids = match ids.is_empty() {
        true => datafusion::arrow::array::new_empty_array(&DataType::Int64),
        false => concat(&ids.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?,
    };
    // Rows in id order, so the fit sees them in the same order however the
    // table was partitioned. Sorting the ids here and permuting each column
    // in turn holds one extra column at a time, where an `ORDER BY` would
    // buffer the whole table a second time.
    // Often already in order (a table written by id, one partition).
    if !is_sorted(&ids)? {
        let order = sort_to_indices(&ids, None, None)?;
        ids = take(&ids, &order, None)?;
        for column in &mut values {
            *column = order.values().iter().map(|&i| column[i as usize]).collect();
        }
    }
    let rows = ids.len();
    let nulls: Vec<usize> = values
        .iter()
        .map(|c| c.iter().filter(|v| v.is_nan()).count())
        .collect();
    let impute = plan.impute;
    if impute.is_none()
        && let Some(j) = nulls.iter().position(|&n| n > 0)
    {
        return Err(SegmentError::NullFeature {
            column: plan.features[j].clone(),
            table: plan.from.clone(),
            count: nulls[j],
        });
    }
    if impute == Some(Impute::Drop) && nulls.iter().any(|&n| n > 0) {
        let keep: BooleanArray = (0..rows)
            .map(|i| Some(values.iter().all(|c| !c[i].is_nan())))
            .collect();
        for column in &mut values {
            let mut row = 0;
            column.retain(|_| {
                row += 1;
                keep.value(row - 1)
            });
        }
        return Ok(Features {
            ids: filter(&ids, &keep)?,
            columns: values,
            fill: vec![None; d],
            imputed: vec![0; d],
            dropped: rows - keep.true_count(),
            not_profiled,
        });
    }
    let fill: Vec<Option<f64>> = match (saved_fill, impute) {
        (Some(saved), _) => saved.to_vec(),
        (None, Some(Impute::Median)) => values.iter().map(|c| median(c)).collect(),
        (None, Some(Impute::Zero)) => vec![Some(0.0); d],
        (None, _) => vec![None; d],
    };
    for (column, fill) in values.iter_mut().zip(&fill) {
        let fill = fill.unwrap_or(0.0);
        column
            .iter_mut()
            .filter(|v| v.is_nan())
            .for_each(|v| *v = fill);
    }
    Ok(Features {
        ids,
        columns: values,
        fill,
        imputed: nulls,
        dropped: 0,
        not_profiled,
    })
}

/// Whether `ids` is in ascending order (nulls first, as `sort_to_indices`
/// puts them).
fn is_sorted(ids: &ArrayRef) -> Result<bool, SegmentError> {
    let compare = make_comparator(ids.as_ref(), ids.as_ref(), SortOptions::default())?;
    Ok((1..ids.len()).all(|i| compare(i - 1, i).is_le()))
}

/// The median of the non-null (non-NaN) values, the mean of the middle two
/// for an even count; `None` when all are null.
fn median(values: &[f64]) -> Option<f64> {
    let mut present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if present.is_empty() {
        return None;
    }
    present.sort_by(f64::total_cmp);
    let mid = present.len() / 2;
    Some(match present.len() % 2 {
        1 => present[mid],
        _ => (present[mid - 1] + present[mid]) / 2.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts_skips_nulls() {
        assert_eq!(median(&[3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, f64::NAN, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
    }
}
