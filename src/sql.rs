//! SQL as civica reads it, shared by the plan (which checks each step's and
//! check's query) and the transforms (which run them): parsing one query,
//! finding the tables it reads, locating DataFusion's errors in the SQL
//! file as written, quoting names, and planning a query that may only read.

use std::sync::LazyLock;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use regex::Regex;

use crate::pipeline::template::{Rendered, offset_of_pos, pos_of_offset};
use crate::pipeline::{Diagnostic, Pos};

/// A problem in a step's SQL, at a position of the rendered query when known.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlProblem {
    /// Line and column in the rendered query.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
}

/// Parses a step's query: exactly one `SELECT` (or `WITH … SELECT`, `VALUES`) statement.
pub fn parse_query(sql: &str) -> Result<Statement, SqlProblem> {
    let mut statements = DFParser::parse_sql(sql).map_err(|err| problem_from_error(&err, sql))?;
    let Some(statement) = statements.pop_front() else {
        return Err(SqlProblem {
            pos: None,
            message: "the SQL file holds no statement".to_string(),
        });
    };
    if !statements.is_empty() {
        return Err(SqlProblem {
            pos: None,
            message: format!(
                "a step holds one query, found {} statements",
                statements.len() + 1
            ),
        });
    }
    match &statement {
        Statement::Statement(inner) if matches!(inner.as_ref(), SqlStatement::Query(_)) => {
            Ok(statement)
        }
        _ => Err(SqlProblem {
            pos: Some(Pos { line: 1, col: 1 }),
            message: "a step must be a query (`SELECT …` or `WITH … SELECT …`)".to_string(),
        }),
    }
}

/// The tables a query reads (common table expressions excluded), each with
/// the position of its first mention.
pub fn table_references(
    statement: &Statement,
    sql: &str,
) -> Result<Vec<(String, Option<Pos>)>, SqlProblem> {
    let (tables, _ctes) = datafusion::sql::resolve::resolve_table_references(statement, true)
        .map_err(|err| problem_from_error(&err, sql))?;
    let mut names: Vec<(String, Option<Pos>)> = Vec::new();
    for table in tables {
        let name = table.table().to_string();
        if !names.iter().any(|(n, _)| *n == name) {
            let pos = find_word(sql, &name);
            names.push((name, pos));
        }
    }
    Ok(names)
}

/// The position of the first whole-word, case-insensitive mention of `word`.
fn find_word(sql: &str, word: &str) -> Option<Pos> {
    // `k.wait_s` may be written `k . wait_s`.
    let escaped = regex::escape(word).replace(r"\.", r"\s*\.\s*");
    let pattern = Regex::new(&format!(r"(?i)\b{escaped}\b")).ok()?;
    pattern.find(sql).map(|m| pos_of_offset(sql, m.start()))
}

/// Where the SQL parser says it stopped, with the blanks before it.
static PARSER_POSITION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s*at Line: (\d+), Column: (\d+)").expect("a valid regex"));

/// The field, column or table an error names.
static NAMED_IN_ERROR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:field named|column|table) '?([A-Za-z_][A-Za-z0-9_.]*)'?")
        .expect("a valid regex")
});

/// Turns a DataFusion error into a message and, where DataFusion or the
/// parser gives one, the position in the query.
pub fn problem_from_error(err: &DataFusionError, sql: &str) -> SqlProblem {
    let message = clean_message(&err.find_root().to_string());
    // The parser says where it stopped; schema errors name the field or
    // table, whose first mention is the most useful place to point at;
    // DataFusion's own span comes last, as it can cover a whole statement.
    let parser_pos = PARSER_POSITION.captures(&message).and_then(|caps| {
        Some(Pos {
            line: caps[1].parse().ok()?,
            col: caps[2].parse().ok()?,
        })
    });
    // A civica function that refuses to plan names itself: `function
    // `pseudonym`: …`.
    let function_pos = || {
        let name = message.strip_prefix("function `")?.split('`').next()?;
        find_word(sql, name)
    };
    let named_pos = || {
        let named = NAMED_IN_ERROR
            .captures(&message)?
            .get(1)?
            .as_str()
            .trim_end_matches('.')
            .to_string();
        let column = named.rsplit('.').next().filter(|c| !c.is_empty())?;
        find_word(sql, &named).or_else(|| find_word(sql, column))
    };
    let span_pos = || {
        let span = err.diagnostic()?.span?;
        (span.start.line > 0).then(|| Pos {
            line: u32::try_from(span.start.line).unwrap_or(u32::MAX),
            col: u32::try_from(span.start.column).unwrap_or(u32::MAX),
        })
    };
    let pos = parser_pos
        .or_else(function_pos)
        .or_else(named_pos)
        .or_else(span_pos);
    let message = PARSER_POSITION.replace_all(&message, "").into_owned();
    SqlProblem {
        pos,
        message: message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// DataFusion prefixes errors with their kind (`Error during planning: `,
/// `SQL error: ParserError(…)`); the user needs the sentence only.
fn clean_message(message: &str) -> String {
    let mut text = message.trim().to_string();
    for prefix in [
        "Schema error: ",
        "Error during planning: ",
        "This feature is not implemented: ",
        "SQL error: ",
        "Execution error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.to_string();
        }
    }
    if let Some(inner) = text
        .strip_prefix("ParserError(\"")
        .and_then(|t| t.strip_suffix("\")"))
    {
        text = inner.replace("\\\"", "\"");
    }
    if let Some(inner) = text
        .strip_prefix("TokenizerError(\"")
        .and_then(|t| t.strip_suffix("\")"))
    {
        text = inner.replace("\\\"", "\"");
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// A diagnostic for a problem in a step's SQL, positioned in the SQL file as written.
pub fn sql_diagnostic(step_file: &str, rendered: &Rendered, problem: SqlProblem) -> Diagnostic {
    let pos = problem.pos.map(|pos| {
        let offset = rendered.source_offset(offset_of_pos(&rendered.text, pos));
        pos_of_offset(&rendered.template, offset)
    });
    Diagnostic {
        file: step_file.to_string(),
        pos,
        message: problem.message,
    }
}

/// Plans a query that may only read: a statement that writes (`COPY … TO`,
/// `INSERT`), defines (`CREATE …`) or changes settings (`SET`) is refused
/// even where the text passed the checks, for transforms and checks alike.
pub async fn read_only_query(
    ctx: &SessionContext,
    sql: &str,
) -> Result<datafusion::dataframe::DataFrame, DataFusionError> {
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options).await
}

/// A column name quoted for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
