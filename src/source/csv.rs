//! CSV sources: DataFusion reads every column as text, and a view converts each to its declared or inferred type (decimal comma, custom date and time formats, null markers).
//!
//! Reading text first and converting in a view keeps DataFusion's streaming,
//! parallel CSV scan while supporting what its reader does not: decimal
//! commas and `dd/mm/yyyy` dates are common in Italian exports.

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::Column;
use datafusion::functions::expr_fn::{btrim, replace, to_date, to_timestamp_micros};
use datafusion::logical_expr::{Expr, cast, lit};
use datafusion::prelude::{CsvReadOptions, SessionContext};
use object_store::ObjectMeta;
use regex::Regex;

use super::SourceError;
use crate::spec::{ColumnType, CsvFormatSpec, SourcePlan, arrow_type};
use crate::storage::display_object;

/// How many rows type inference looks at.
const SAMPLE_ROWS: usize = 1000;

/// Registers a CSV source as a typed view over a text scan.
pub(super) async fn register_csv(
    ctx: &SessionContext,
    source: &SourcePlan,
    csv: &CsvFormatSpec,
    objects: &[ObjectMeta],
) -> Result<(), SourceError> {
    let null_regex = csv
        .null
        .as_ref()
        .map(|marker| format!("^(?:{})?$", regex::escape(marker)));
    let base = || {
        CsvReadOptions::new()
            .has_header(csv.header)
            .delimiter(csv.delimiter as u8)
            .quote(csv.quote as u8)
            .file_extension(&csv.extension)
            .null_regex(null_regex.clone())
            .schema_infer_max_records(SAMPLE_ROWS)
    };
    let file_columns: Vec<String> = ctx
        .read_csv(source.location.as_str(), base())
        .await?
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let names: Vec<String> = match &source.schema {
        Some(schema) => {
            if schema.0.len() != file_columns.len() {
                return Err(SourceError::SchemaMismatch {
                    declared: schema.0.len(),
                    found: file_columns.len(),
                    file: objects
                        .first()
                        .map(|o| display_object(&source.location, &o.location))
                        .unwrap_or_default(),
                    columns: file_columns
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            schema.0.iter().map(|(name, _)| name.clone()).collect()
        }
        None => file_columns.clone(),
    };
    let text_schema = Schema::new(
        file_columns
            .iter()
            .map(|name| Field::new(name, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let text = ctx
        .read_csv(source.location.as_str(), base().schema(&text_schema))
        .await?;
    let types: Vec<ColumnType> = match &source.schema {
        Some(schema) => schema.0.iter().map(|(_, ty)| *ty).collect(),
        None => {
            let sample = text.clone().limit(0, Some(SAMPLE_ROWS))?.collect().await?;
            (0..file_columns.len())
                .map(|idx| {
                    let values = sample.iter().flat_map(|batch| {
                        let column = batch.column(idx).as_string::<i32>();
                        column
                            .iter()
                            .flatten()
                            .map(|v| v.trim().to_string())
                            .collect::<Vec<_>>()
                    });
                    infer_type(values, csv)
                })
                .collect()
        }
    };
    let exprs: Vec<Expr> = file_columns
        .iter()
        .zip(&names)
        .zip(&types)
        .map(|((file_name, name), ty)| convert(file_name, *ty, csv).alias(name))
        .collect();
    let typed = text.select(exprs)?;
    ctx.register_table(source.name.as_str(), typed.into_view())?;
    Ok(())
}

/// The expression turning a text column into its type.
fn convert(column: &str, ty: ColumnType, csv: &CsvFormatSpec) -> Expr {
    let text = Expr::Column(Column::new_unqualified(column));
    let trimmed = || btrim(vec![text.clone()]);
    match ty {
        ColumnType::String => text,
        ColumnType::Int64 | ColumnType::Boolean => cast(trimmed(), arrow_type(ty)),
        ColumnType::Float64 if csv.decimal == ',' => {
            cast(replace(trimmed(), lit(","), lit(".")), DataType::Float64)
        }
        ColumnType::Float64 => cast(trimmed(), DataType::Float64),
        ColumnType::Date => match &csv.date_format {
            Some(format) => to_date(vec![trimmed(), lit(format.as_str())]),
            None => cast(trimmed(), DataType::Date32),
        },
        ColumnType::Timestamp => match &csv.timestamp_format {
            Some(format) => to_timestamp_micros(vec![trimmed(), lit(format.as_str())]),
            None => cast(trimmed(), DataType::Timestamp(TimeUnit::Microsecond, None)),
        },
    }
}

/// The narrowest type every sampled value fits: boolean, integer, number,
/// date, timestamp, else text. Integers with a leading zero or sign (codes,
/// phone numbers) stay text.
fn infer_type(values: impl Iterator<Item = String>, csv: &CsvFormatSpec) -> ColumnType {
    let values: Vec<String> = values.filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return ColumnType::String;
    }
    let all = |pred: &dyn Fn(&str) -> bool| values.iter().all(|v| pred(v));
    let int_pattern = Regex::new(r"^-?(0|[1-9][0-9]{0,17})$").ok();
    let float_pattern = if csv.decimal == ',' {
        Regex::new(r"^-?[0-9]+(,[0-9]+)?$").ok()
    } else {
        Regex::new(r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$").ok()
    };
    let leading_zero = |v: &str| {
        let digits = v.trim_start_matches('-');
        digits.len() > 1
            && digits.starts_with('0')
            && !digits.starts_with("0.")
            && !digits.starts_with("0,")
    };
    if all(&|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) {
        return ColumnType::Boolean;
    }
    if let Some(re) = &int_pattern
        && all(&|v| re.is_match(v))
    {
        return ColumnType::Int64;
    }
    if let Some(re) = &float_pattern
        && all(&|v| re.is_match(v) && !leading_zero(v))
    {
        return ColumnType::Float64;
    }
    let date_format = csv.date_format.as_deref().unwrap_or("%Y-%m-%d");
    if all(&|v| NaiveDate::parse_from_str(v, date_format).is_ok()) {
        return ColumnType::Date;
    }
    let parses_timestamp = |v: &str| match &csv.timestamp_format {
        Some(format) => NaiveDateTime::parse_from_str(v, format).is_ok(),
        None => ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
            .iter()
            .any(|f| NaiveDateTime::parse_from_str(v, f).is_ok()),
    };
    if all(&parses_timestamp) {
        return ColumnType::Timestamp;
    }
    ColumnType::String
}

#[cfg(test)]
mod tests {
    use super::*;

    fn italian() -> CsvFormatSpec {
        CsvFormatSpec {
            delimiter: ';',
            header: true,
            quote: '"',
            null: None,
            decimal: ',',
            timestamp_format: Some("%d/%m/%Y %H:%M:%S".to_string()),
            date_format: Some("%d/%m/%Y".to_string()),
            extension: ".csv".to_string(),
        }
    }

    fn infer(values: &[&str], csv: &CsvFormatSpec) -> ColumnType {
        infer_type(values.iter().map(|v| v.to_string()), csv)
    }

    #[test]
    fn infers_decimal_comma_numbers() {
        assert_eq!(infer(&["35,4", "12", ""], &italian()), ColumnType::Float64);
    }

    #[test]
    fn keeps_codes_with_leading_zeros_as_text() {
        assert_eq!(infer(&["037006", "058091"], &italian()), ColumnType::String);
        assert_eq!(infer(&["+393471234567"], &italian()), ColumnType::String);
    }

    #[test]
    fn infers_italian_dates_and_timestamps() {
        assert_eq!(infer(&["21/11/2026"], &italian()), ColumnType::Date);
        assert_eq!(
            infer(&["21/11/2026 09:05:33"], &italian()),
            ColumnType::Timestamp
        );
    }

    #[test]
    fn infers_integers_and_booleans() {
        assert_eq!(infer(&["1", "-20", "0"], &italian()), ColumnType::Int64);
        assert_eq!(infer(&["true", "FALSE"], &italian()), ColumnType::Boolean);
    }
}
