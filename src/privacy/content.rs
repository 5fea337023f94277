//! Columns tagged by their content: a sample of each text and number
//! column of a table is read, and a column where a codice fiscale, an
//! e-mail, an IP address or an IBAN turns up (also inside free text), or
//! whose values are mostly phone numbers, is personal data whatever its
//! name. A number can only be a phone number (`3471234567` read as an
//! integer, or averaged over one citizen's calls): whole numbers are
//! looked at as their digits, and fractions are not looked at.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::{PersonalKind, detect_in_text};

/// How many rows of a source are looked at.
pub const SOURCE_SAMPLE_ROWS: usize = 1000;

/// The text and number columns of `table` (but `skip`) found to hold
/// personal data in its first `rows` rows, with the kind found most.
pub async fn tag_by_content(
    ctx: &SessionContext,
    table: &str,
    skip: &[&str],
    rows: usize,
) -> Result<Vec<(String, PersonalKind)>, DataFusionError> {
    let frame = ctx.table(table).await?;
    let texts: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .filter(|f| {
            (is_text(f.data_type()) || f.data_type().is_numeric())
                && !skip.contains(&f.name().as_str())
        })
        .map(|f| f.name().clone())
        .collect();
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let columns: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batches = frame
        .select_columns(&columns)?
        .limit(0, Some(rows))?
        .collect()
        .await?;
    let mut found = Vec::new();
    for (i, name) in texts.iter().enumerate() {
        let mut kinds: BTreeMap<PersonalKind, usize> = BTreeMap::new();
        let mut values = 0;
        let mut count = |kind: Option<PersonalKind>| {
            values += 1;
            if let Some(kind) = kind {
                *kinds.entry(kind).or_default() += 1;
            }
        };
        for batch in &batches {
            let column = batch.column(i);
            if column.data_type().is_numeric() {
                let numbers = cast(column, &DataType::Float64)?;
                for number in numbers.as_primitive::<Float64Type>().iter().flatten() {
                    count(whole_digits(number).and_then(|digits| detect_in_text(&digits)));
                }
            } else {
                let texts = cast(column, &DataType::Utf8)?;
                for value in texts.as_string::<i32>().iter().flatten() {
                    count(detect_in_text(value));
                }
            }
        }
        // Phone numbers only where most values are one: digit strings
        // are too often codes.
        let counted = |(kind, count): (&PersonalKind, &usize)| {
            (*kind != PersonalKind::Phone || 2 * count >= values).then_some((*count, *kind))
        };
        if let Some((_, kind)) = kinds.iter().filter_map(counted).max() {
            found.push((name.clone(), kind));
        }
    }
    Ok(found)
}

/// The digits of a whole number small enough to be exact in a double
/// (phone numbers have at most 13), or none for a fraction.
fn whole_digits(number: f64) -> Option<String> {
    (number.fract() == 0.0 && number.abs() < 1e15).then(|| format!("{number:.0}"))
}

fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}
