//! The SQL functions civica adds to every session, each a function of
//! text arguments (numbers and dates are read as their text):
//!
//! - web logs (`source::functions`): `is_bot(user_agent)`,
//!   `is_static_asset(path)`;
//! - identifiers (`identity`): `cf_normalize`, `cf_is_valid`,
//!   `cf_birth_date(cf [, as_of])`, `cf_sex`, `cf_comune`,
//!   `phone_normalize(value [, default_region])`, `email_normalize`,
//!   `email_is_pec`, `name_normalize`.
//!
//! `pseudonym(kind, value)` needs the key, so `privacy::pseudonym`
//! registers it apart.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Date32Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use crate::identity::{codice_fiscale, email, name, phone};
use crate::source::functions::{is_bot, is_static_asset};

/// Registers every function of this module on a session.
pub fn register_functions(ctx: &SessionContext) {
    let functions = [
        TextFunction::new("is_bot", &[1], Body::Test(|a| Some(is_bot(a[0])))),
        TextFunction::new(
            "is_static_asset",
            &[1],
            Body::Test(|a| a[0].map(is_static_asset)),
        ),
        TextFunction::new(
            "cf_normalize",
            &[1],
            Body::Text(|a| Ok(a[0].and_then(codice_fiscale::normalize))),
        ),
        TextFunction::new(
            "cf_is_valid",
            &[1],
            Body::Test(|a| a[0].map(codice_fiscale::is_valid_code)),
        ),
        TextFunction::new("cf_birth_date", &[1, 2], Body::Date(cf_birth_date)),
        TextFunction::new(
            "cf_sex",
            &[1],
            Body::Text(|a| Ok(a[0].and_then(codice_fiscale::sex).map(str::to_string))),
        ),
        TextFunction::new(
            "cf_comune",
            &[1],
            Body::Text(|a| Ok(a[0].and_then(codice_fiscale::comune))),
        ),
        TextFunction::new("phone_normalize", &[1, 2], Body::Text(phone_normalize)),
        TextFunction::new(
            "email_normalize",
            &[1],
            Body::Text(|a| Ok(a[0].and_then(email::normalize))),
        ),
        TextFunction::new(
            "email_is_pec",
            &[1],
            Body::Test(|a| a[0].and_then(email::is_pec)),
        ),
        TextFunction::new(
            "name_normalize",
            &[1],
            Body::Text(|a| Ok(a[0].and_then(name::normalize))),
        ),
    ];
    for function in functions {
        ctx.register_udf(ScalarUDF::from(function));
    }
}

/// `cf_birth_date(cf [, as_of])`: `as_of` defaults to today.
fn cf_birth_date(args: &[Option<&str>]) -> Result<Option<NaiveDate>> {
    let as_of = match args.get(1) {
        None => chrono::Utc::now().date_naive(),
        Some(None) => return Ok(None),
        Some(Some(text)) => match text.get(..10).and_then(|d| d.parse().ok()) {
            Some(date) => date,
            None => return exec_err!("cf_birth_date: `as_of` must be a date, found `{text}`"),
        },
    };
    Ok(args[0].and_then(|cf| codice_fiscale::birth_date(cf, as_of)))
}

/// `phone_normalize(value [, default_region])`: the region defaults to `IT`.
fn phone_normalize(args: &[Option<&str>]) -> Result<Option<String>> {
    let region = match args.get(1) {
        None => phonenumber::country::Id::IT,
        Some(None) => return Ok(None),
        Some(Some(name)) => match phone::region(name) {
            Ok(region) => region,
            Err(e) => return exec_err!("phone_normalize: {e}"),
        },
    };
    Ok(args[0].and_then(|value| phone::normalize(value, region)))
}

/// What a function computes from its arguments' text, row by row (`None`
/// for a null argument).
#[derive(Debug, Clone, Copy)]
enum Body {
    Test(fn(&[Option<&str>]) -> Option<bool>),
    Text(fn(&[Option<&str>]) -> Result<Option<String>>),
    Date(fn(&[Option<&str>]) -> Result<Option<NaiveDate>>),
}

/// A function of text arguments, known by its name.
#[derive(Debug)]
struct TextFunction {
    name: &'static str,
    signature: Signature,
    body: Body,
}

impl TextFunction {
    fn new(name: &'static str, arities: &[usize], body: Body) -> Self {
        // The one-argument `cf_birth_date` reads today's date.
        let volatility = if name == "cf_birth_date" {
            Volatility::Stable
        } else {
            Volatility::Immutable
        };
        let forms = arities.iter().map(|&n| TypeSignature::Any(n)).collect();
        TextFunction {
            name,
            signature: Signature::one_of(forms, volatility),
            body,
        }
    }
}

impl PartialEq for TextFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TextFunction {}

impl std::hash::Hash for TextFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for TextFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.body {
            Body::Test(_) => DataType::Boolean,
            Body::Text(_) => DataType::Utf8,
            Body::Date(_) => DataType::Date32,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts: Vec<ArrayRef> = args
            .args
            .into_iter()
            .map(|arg| cast(&arg.into_array(rows)?, &DataType::Utf8).map_err(Into::into))
            .collect::<Result<_>>()?;
        let texts: Vec<_> = texts.iter().map(|a| a.as_string::<i32>()).collect();
        let args_of = |row: usize| -> Vec<Option<&str>> {
            texts
                .iter()
                .map(|text| (!text.is_null(row)).then(|| text.value(row)))
                .collect()
        };
        let result: ArrayRef = match self.body {
            Body::Test(f) => Arc::new((0..rows).map(|r| f(&args_of(r))).collect::<BooleanArray>()),
            Body::Text(f) => Arc::new(
                (0..rows)
                    .map(|r| f(&args_of(r)))
                    .collect::<Result<StringArray>>()?,
            ),
            Body::Date(f) => Arc::new(
                (0..rows)
                    .map(|r| {
                        f(&args_of(r)).map(|d| {
                            d.map(datafusion::arrow::datatypes::Date32Type::from_naive_date)
                        })
                    })
                    .collect::<Result<Date32Array>>()?,
            ),
        };
        Ok(ColumnarValue::Array(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn row(sql: &str) -> datafusion::arrow::array::RecordBatch {
        let ctx = SessionContext::new();
        register_functions(&ctx);
        let batches = ctx
            .sql(sql)
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        batches.into_iter().next().expect("a batch")
    }

    #[tokio::test]
    async fn web_log_helpers_are_usable_from_sql() {
        let batch = row("SELECT is_bot('Googlebot/2.1') AS b, is_static_asset(arrow_cast('/a.js', 'Utf8View')) AS s, is_static_asset(NULL) AS n").await;
        assert!(batch.column(0).as_boolean().value(0));
        assert!(batch.column(1).as_boolean().value(0));
        assert!(batch.column(2).is_null(0));
    }

    #[tokio::test]
    async fn identifier_functions_are_usable_from_sql() {
        let batch = row("SELECT cf_normalize(' tinit-rssmra85t10a562s') AS cf, \
                    cf_is_valid('RSSMRA85T10A562T') AS bad, \
                    cf_birth_date('RSSMRA85T10A562S', DATE '2026-12-01') AS born, \
                    cf_sex('RSSMRA85T10A562S') AS sex, \
                    cf_comune('RSSMRA85T10A562S') AS comune, \
                    phone_normalize('051/1234567', 'IT') AS landline, \
                    phone_normalize(3471234567) AS mobile, \
                    phone_normalize('anonymous', 'IT') AS withheld, \
                    email_normalize(' Mario.Rossi@PEC.it ') AS email, \
                    email_is_pec('mario.rossi@pec.it') AS pec, \
                    name_normalize('D''Angelò') AS name")
        .await;
        let text = |i: usize| {
            let column = cast(batch.column(i), &DataType::Utf8).expect("text");
            let column = column.as_string::<i32>();
            (!column.is_null(0)).then(|| column.value(0).to_string())
        };
        assert_eq!(text(0).as_deref(), Some("RSSMRA85T10A562S"));
        assert_eq!(text(1).as_deref(), Some("false"));
        assert_eq!(text(2).as_deref(), Some("1985-12-10"));
        assert_eq!(batch.column(2).data_type(), &DataType::Date32);
        assert_eq!(text(3).as_deref(), Some("M"));
        assert_eq!(text(4).as_deref(), Some("A562"));
        assert_eq!(text(5).as_deref(), Some("+390511234567"));
        assert_eq!(text(6).as_deref(), Some("+393471234567"));
        assert_eq!(text(7), None);
        assert_eq!(text(8).as_deref(), Some("mario.rossi@pec.it"));
        assert_eq!(text(9).as_deref(), Some("true"));
        assert_eq!(text(10).as_deref(), Some("dangelo"));
    }

    #[tokio::test]
    async fn a_bad_region_or_date_is_an_error_naming_the_function() {
        let ctx = SessionContext::new();
        register_functions(&ctx);
        for (sql, expected) in [
            (
                "SELECT phone_normalize('051 1234567', 'Italia')",
                "phone_normalize: unknown region `Italia`",
            ),
            (
                "SELECT cf_birth_date('RSSMRA85T10A562S', 'ieri')",
                "cf_birth_date: `as_of` must be a date, found `ieri`",
            ),
        ] {
            let result = match ctx.sql(sql).await {
                Ok(frame) => frame.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            let err = result.expect_err(sql).to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
