//! `pseudonym(kind, value)` in SQL, and a source's `pseudonymize:`
//! columns replaced by their pseudonyms before any step reads them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, Result, ScalarValue, plan_err};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{SessionContext, lit};

use super::key::{KeyError, PseudonymKey};

/// The SQL function's name.
pub const PSEUDONYM: &str = "pseudonym";

/// Registers `pseudonym(kind, value)` on a session. Without a key it is
/// still known, and planning a query that calls it fails, saying how to
/// give one: before any step runs.
pub fn register_pseudonym(ctx: &SessionContext, key: Option<PseudonymKey>) {
    ctx.register_udf(ScalarUDF::from(Pseudonym {
        key,
        plans_without_key: false,
        signature: Signature::string(2, Volatility::Immutable),
    }));
}

/// Registers `pseudonym(kind, value)` for a pipeline whose key is set but
/// unusable (too short, a file others can read): that is reported once,
/// so queries calling it still plan, for `validate` to find their other
/// problems; nothing runs without a key.
pub fn register_unusable_pseudonym(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(Pseudonym {
        key: None,
        plans_without_key: true,
        signature: Signature::string(2, Volatility::Immutable),
    }));
}

/// The function; its key is never shown (`PseudonymKey`'s `Debug` shows
/// the id).
#[derive(Debug)]
struct Pseudonym {
    key: Option<PseudonymKey>,
    /// Planning does not fail without a key (the key's own problem was
    /// reported).
    plans_without_key: bool,
    signature: Signature,
}

impl PartialEq for Pseudonym {
    fn eq(&self, other: &Self) -> bool {
        self.key.as_ref().map(PseudonymKey::id) == other.key.as_ref().map(PseudonymKey::id)
    }
}

impl Eq for Pseudonym {}

impl std::hash::Hash for Pseudonym {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.as_ref().map(PseudonymKey::id).hash(state);
    }
}

impl ScalarUDFImpl for Pseudonym {
    fn name(&self) -> &str {
        PSEUDONYM
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        match self.key.is_some() || self.plans_without_key {
            true => Ok(DataType::Utf8),
            false => plan_err!("function `{PSEUDONYM}`: {}", KeyError::Missing),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(key) = &self.key else {
            return plan_err!("function `{PSEUDONYM}`: {}", KeyError::Missing);
        };
        let rows = args.number_rows;
        let mut args = args.args.into_iter();
        let (Some(kind), Some(value)) = (args.next(), args.next()) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let text = |arg: ColumnarValue| -> Result<ArrayRef> {
            Ok(cast(&arg.into_array(rows)?, &DataType::Utf8)?)
        };
        let (kinds, values) = (text(kind)?, text(value)?);
        let (kinds, values) = (kinds.as_string::<i32>(), values.as_string::<i32>());
        let result: StringArray = (0..rows)
            .map(|row| {
                (!kinds.is_null(row) && !values.is_null(row))
                    .then(|| key.pseudonym(kinds.value(row), values.value(row)))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}

/// Why a source's `pseudonymize:` columns cannot be replaced.
#[derive(Debug, thiserror::Error)]
pub enum PseudonymizeError {
    /// A listed column the source does not have.
    #[error(
        "`pseudonymize` names `{column}`, which is not a column of `{table}` (columns: {columns})"
    )]
    UnknownColumn {
        /// The column.
        column: String,
        /// The source.
        table: String,
        /// Its columns, comma-separated.
        columns: String,
    },
    /// DataFusion could not plan the replacement.
    #[error(transparent)]
    Plan(#[from] datafusion::error::DataFusionError),
}

/// Replaces the table registered as `table` by the same table with each of
/// `columns` (column, kind) replaced by its pseudonym, under the same name:
/// the values as written are never reachable by name from the session.
pub async fn pseudonymize_table(
    ctx: &SessionContext,
    table: &str,
    columns: &[(String, String)],
) -> Result<(), PseudonymizeError> {
    if columns.is_empty() {
        return Ok(());
    }
    let frame = ctx.table(table).await?;
    let names: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if let Some((missing, _)) = columns.iter().find(|(c, _)| !names.contains(c)) {
        return Err(PseudonymizeError::UnknownColumn {
            column: missing.clone(),
            table: table.to_string(),
            columns: names.join(", "),
        });
    }
    let udf = ctx.udf(PSEUDONYM)?;
    let exprs: Vec<Expr> = names
        .iter()
        .map(|name| {
            let column = Expr::Column(Column::new_unqualified(name));
            match columns.iter().find(|(c, _)| c == name) {
                Some((_, kind)) => udf.call(vec![lit(kind.as_str()), column]).alias(name),
                None => column,
            }
        })
        .collect();
    let view = frame.select(exprs)?.into_view();
    ctx.deregister_table(table)?;
    ctx.register_table(table, view)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::key::KEY_ENV;

    #[tokio::test]
    async fn sql_calls_it_and_a_source_is_replaced_under_its_name() {
        let ctx = SessionContext::new();
        let key = PseudonymKey::new(&[7; 32], KEY_ENV).expect("key");
        let expected = key.pseudonym("cf", "RSSMRA80A01H501U");
        register_pseudonym(&ctx, Some(key));
        ctx.sql("CREATE TABLE people AS VALUES ('RSSMRA80A01H501U', 1), (NULL, 2)")
            .await
            .expect("table")
            .collect()
            .await
            .expect("made");
        let renamed = [("column1".to_string(), "cf".to_string())];
        pseudonymize_table(&ctx, "people", &renamed)
            .await
            .expect("replaced");
        let batches = ctx
            .sql("SELECT column1, column2, pseudonym('cf', ' rssmra80a01h501u') AS again FROM people ORDER BY column2")
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let column = |i: usize| batches[0].column(i).as_string::<i32>().clone();
        assert_eq!(column(0).value(0), expected);
        assert!(column(0).is_null(1));
        assert_eq!(column(2).value(0), expected);
        let missing = pseudonymize_table(&ctx, "people", &[("nope".into(), "cf".into())])
            .await
            .expect_err("no such column");
        assert!(missing.to_string().contains("`nope`"), "{missing}");
    }

    #[tokio::test]
    async fn without_a_key_planning_fails_saying_how_to_give_one() {
        let ctx = SessionContext::new();
        register_pseudonym(&ctx, None);
        let err = ctx
            .sql("SELECT pseudonym('cf', 'x')")
            .await
            .expect_err("no key");
        assert!(err.to_string().contains("CIVICA_PSEUDONYM_KEY"), "{err}");
    }
}
