//! Erasure (GDPR art. 17): the list of citizens to erase, read from a file
//! or an object, and their rows left out of the sources as they are
//! scanned, so that no step, output, quarantine table or model sees them.
//! What those rows held that identifies the citizens elsewhere (their
//! `citizen_id`) is kept, so that the sink can remove them from every
//! published file too (`sink::erase`).

use std::collections::BTreeSet;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;

use crate::identity::codice_fiscale;
use crate::sql::quote_ident;

/// Why the erasure list cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// It cannot be read.
    #[error("the erasure list `{location}` cannot be read: {reason}")]
    Unreadable {
        /// Its location.
        location: String,
        /// Why.
        reason: String,
    },
    /// A line is neither a codice fiscale nor a pseudonym (the line is
    /// not shown: it may be personal data).
    #[error(
        "line {line} of the erasure list `{location}` is neither a codice fiscale with a valid check character nor a pseudonym (32 hex digits)"
    )]
    BadLine {
        /// Its location.
        location: String,
        /// The line number.
        line: usize,
    },
    /// It holds pseudonyms, and the run has no key to compute them.
    #[error(
        "the erasure list `{0}` holds pseudonyms, which only the pseudonym key can match: set CIVICA_PSEUDONYM_KEY or CIVICA_PSEUDONYM_KEY_FILE"
    )]
    NoKey(String),
}

/// The citizens to erase: by codice fiscale (upper case, no blanks, no
/// `TINIT-`), and by pseudonym (`pseudonym('cf', …)`, lower-case hex).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureList {
    /// Codici fiscali.
    pub codici: BTreeSet<String>,
    /// Pseudonyms.
    pub pseudonyms: BTreeSet<String>,
}

impl ErasureList {
    /// Parses the list: one entry per line; blank lines and `#` comments
    /// skipped.
    pub fn parse(text: &str, location: &str) -> Result<ErasureList, ErasureError> {
        let mut list = ErasureList::default();
        for (i, line) in text.lines().enumerate() {
            let entry = line.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let compact: String = entry.chars().filter(|c| !c.is_whitespace()).collect();
            if let Some(cf) = codice_fiscale::normalize(entry)
                .filter(|cf| codice_fiscale::is_valid(cf.as_bytes()))
            {
                list.codici.insert(cf);
            } else if compact.len() == 32 && compact.bytes().all(|b| b.is_ascii_hexdigit()) {
                list.pseudonyms.insert(compact.to_ascii_lowercase());
            } else {
                return Err(ErasureError::BadLine {
                    location: location.to_string(),
                    line: i + 1,
                });
            }
        }
        Ok(list)
    }

    /// Reads and parses the list at `location` (a file or an object).
    pub async fn read(ctx: &SessionContext, location: &str) -> Result<ErasureList, ErasureError> {
        let unreadable = |reason: String| ErasureError::Unreadable {
            location: location.to_string(),
            reason,
        };
        let url = crate::storage::table_url(location).map_err(|e| unreadable(e.to_string()))?;
        let store =
            crate::storage::ensure_store(ctx, location).map_err(|e| unreadable(e.to_string()))?;
        let bytes = match store.get(url.prefix()).await {
            Ok(found) => found.bytes().await,
            Err(err) => Err(err),
        }
        .map_err(|e| unreadable(e.to_string()))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| unreadable("it is not UTF-8 text".to_string()))?;
        ErasureList::parse(&text, location)
    }
}

/// What the erasure left out: rows per source, and the values of the
/// `ids` columns those rows held.
#[derive(Debug, Clone, Default)]
pub struct Erased {
    /// The list applied.
    pub list: ErasureList,
    /// Rows left out, by source.
    pub rows: Vec<(String, usize)>,
    /// The values (as text) of the `ids` columns in the rows left out.
    pub ids: BTreeSet<String>,
    /// The `ids` columns.
    pub id_columns: Vec<String>,
}

impl Erased {
    /// Whether anything identifies an erased citizen.
    pub fn is_empty(&self) -> bool {
        self.list.codici.is_empty() && self.list.pseudonyms.is_empty() && self.ids.is_empty()
    }

    /// Whether a text value names an erased citizen: it holds one of the
    /// erased codici fiscali (in any case, also inside free text) or is one
    /// of their pseudonyms.
    pub fn names_someone(&self, text: &str) -> bool {
        let lower = text.trim().to_ascii_lowercase();
        if self.list.pseudonyms.contains(&lower) {
            return true;
        }
        let upper = text.to_ascii_uppercase();
        self.list
            .codici
            .iter()
            .any(|cf| upper.contains(cf.as_str()))
    }
}

/// Leaves out of source `table` the rows whose `column` names an erased
/// citizen: by the list (a codice fiscale, `TINIT-…`, or its pseudonym
/// when `keyed`), or, for a column among `erased.id_columns`, by the ids
/// collected so far. The source is registered again under its name; the
/// rows left out are counted and their ids collected.
pub async fn erase_rows(
    ctx: &SessionContext,
    table: &str,
    column: &str,
    keyed: bool,
    erased: &mut Erased,
) -> Result<(), DataFusionError> {
    let inner = format!("__civica_unerased_{table}");
    let provider = ctx.table_provider(table).await?;
    let names: Vec<String> = provider
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if !names.iter().any(|n| n == column) {
        return Err(DataFusionError::Plan(format!(
            "`erasure.sources` names column `{column}` of `{table}`, which it does not have (columns: {})",
            names.join(", ")
        )));
    }
    let quoted = quote_ident(column);
    let literals = |values: &BTreeSet<String>| {
        values
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut clauses = Vec::new();
    if erased.id_columns.iter().any(|c| c == column) {
        if !erased.ids.is_empty() {
            clauses.push(format!(
                "CAST({quoted} AS VARCHAR) IN ({})",
                literals(&erased.ids)
            ));
        }
    } else {
        let norm = format!(
            "regexp_replace(upper(replace(CAST({quoted} AS VARCHAR), ' ', '')), '^TINIT-', '')"
        );
        if !erased.list.codici.is_empty() {
            clauses.push(format!("{norm} IN ({})", literals(&erased.list.codici)));
        }
        if !erased.list.pseudonyms.is_empty() {
            clauses.push(format!(
                "lower(btrim(CAST({quoted} AS VARCHAR))) IN ({})",
                literals(&erased.list.pseudonyms)
            ));
            if keyed {
                clauses.push(format!(
                    "pseudonym('cf', {norm}) IN ({})",
                    literals(&erased.list.pseudonyms)
                ));
            }
        }
    }
    let matched = match clauses.is_empty() {
        true => "FALSE".to_string(),
        false => format!("COALESCE({}, FALSE)", clauses.join(" OR ")),
    };
    ctx.deregister_table(table)?;
    ctx.register_table(inner.as_str(), provider)?;
    let ids: Vec<&String> = erased
        .id_columns
        .iter()
        .filter(|c| names.contains(c))
        .collect();
    let selected = match ids.is_empty() {
        true => "1 AS one".to_string(),
        false => ids
            .iter()
            .map(|c| format!("CAST({} AS VARCHAR)", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let batches = ctx
        .sql(&format!(
            "SELECT {selected} FROM {} WHERE {matched}",
            quote_ident(&inner)
        ))
        .await?
        .collect()
        .await?;
    let mut rows = 0;
    for batch in &batches {
        rows += batch.num_rows();
        if ids.is_empty() {
            continue;
        }
        for column in batch.columns() {
            let text = cast(column, &DataType::Utf8)?;
            erased
                .ids
                .extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
        }
    }
    erased.rows.push((table.to_string(), rows));
    let kept = ctx
        .sql(&format!(
            "SELECT * FROM {} WHERE NOT {matched}",
            quote_ident(&inner)
        ))
        .await?;
    ctx.register_table(table, kept.into_view())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_takes_codici_fiscali_and_pseudonyms_and_names_bad_lines_by_number() {
        let list = ErasureList::parse(
            "# richieste di cancellazione\n\nrssmra85t10a562s\nTINIT-VRDLGU75B12F205B\n0123456789ABCDEF0123456789abcdef\n",
            "erasure.txt",
        )
        .expect("list");
        assert_eq!(
            list.codici,
            BTreeSet::from([
                "RSSMRA85T10A562S".to_string(),
                "VRDLGU75B12F205B".to_string()
            ])
        );
        assert_eq!(
            list.pseudonyms,
            BTreeSet::from(["0123456789abcdef0123456789abcdef".to_string()])
        );
        let err = ErasureList::parse("RSSMRA85T10A562S\nRSSMRA85T10A562T\n", "erasure.txt")
            .expect_err("a wrong check character");
        let message = err.to_string();
        assert!(
            message.contains("line 2 of the erasure list `erasure.txt`"),
            "{message}"
        );
        assert!(!message.contains("RSSMRA"), "{message}");
    }
}
