//! `{{ name }}` placeholders: filling them from variables, and mapping positions in the result back to the text as written.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::yaml::Pos;

/// A problem with a placeholder, at a byte offset of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset of the placeholder in the template.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A template with its placeholders filled, and the way back to the original offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The filled-in text.
    pub text: String,
    /// The text as written, with its placeholders.
    pub template: String,
    /// Pairs of (offset in `text`, offset in the template) where a stretch of
    /// copied text starts; placeholders map to their own start.
    pieces: Vec<(usize, usize)>,
}

impl Rendered {
    /// The template offset that produced byte `offset` of the rendered text.
    pub fn source_offset(&self, offset: usize) -> usize {
        let idx = self
            .pieces
            .partition_point(|(rendered, _)| *rendered <= offset);
        match idx.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some((rendered, source)) => source + (offset - rendered),
            None => offset,
        }
    }
}

/// Fills every `{{ name }}` in `template` from `vars`, as text (paths).
/// Reports every unknown name and malformed placeholder.
pub fn render(
    template: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Rendered, Vec<TemplateError>> {
    render_with(template, vars, |_, value| Ok(value.to_string()))
}

/// Fills every `{{ name }}` in an SQL text from `vars`, as data, written
/// for where it stands as DataFusion's SQL tokenizer reads the text:
/// inside a string literal (`'{{ ds }}'`) the value's quotes are doubled,
/// inside a quoted identifier (`"…"`, `` `…` ``) its quote characters,
/// inside a comment it cannot end the comment, and in code it becomes a
/// literal (a number as written, a negative one in parentheses, any other
/// value a quoted string). Where no value can be written safely (`E'…'`,
/// `$$…$$`, a placeholder joined to a name) it is an error.
/// `{{ name | raw }}` inserts the text as it is, as SQL code: never for
/// values from outside.
pub fn render_sql(
    template: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Rendered, Vec<TemplateError>> {
    let contexts = sql_contexts(template).map_err(|err| vec![err])?;
    render_with(template, vars, |offset, value| {
        let context = contexts.iter().find(|(at, _)| *at == offset).map_or(
            SqlContext::Unsupported("a place civica cannot read"),
            |(_, context)| *context,
        );
        match context {
            SqlContext::Code if is_plain_number(value) && value.starts_with('-') => {
                Ok(format!("({value})"))
            }
            SqlContext::Code if is_plain_number(value) => Ok(value.to_string()),
            SqlContext::Code => Ok(format!("'{}'", value.replace('\'', "''"))),
            SqlContext::String => Ok(value.replace('\'', "''")),
            SqlContext::Identifier(quote) => Ok(value.replace(quote, &format!("{quote}{quote}"))),
            SqlContext::LineComment => Ok(value.replace(['\n', '\r'], " ")),
            SqlContext::BlockComment => Ok(value.replace("*/", "* /").replace("/*", "/ *")),
            SqlContext::Joined => Err(Unplaceable::Joined),
            SqlContext::Unsupported(place) => Err(Unplaceable::Inside(place)),
        }
    })
}

/// Why a value cannot be written where its placeholder stands in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Unplaceable {
    /// Joined to the characters of a name or number.
    #[error(
        "is joined to other characters of a name or number; write it apart, or use `| raw` for a value the pipeline's authors control"
    )]
    Joined,
    /// Inside a construct with no safe quoting.
    #[error(
        "stands inside {0}, where civica cannot write a value safely; put it in a `'…'` string, or use `| raw` for a value the pipeline's authors control"
    )]
    Inside(&'static str),
}

/// Why a placeholder's filter cannot apply to its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FilterError {
    /// A date filter on a value that is not a date.
    #[error("`{filter}` needs a date `YYYY-MM-DD`, got `{value}`")]
    NotADate {
        /// The filter as written.
        filter: String,
        /// The value.
        value: String,
    },
    /// `add_days` with something other than a whole number.
    #[error("`add_days` takes a whole number of days, got `{0}`")]
    Days(String),
    /// A date beyond chrono's calendar.
    #[error("`{0}` leaves the calendar")]
    OffCalendar(String),
    /// No such filter.
    #[error("unknown filter `{0}` (known: `add_days(n)`, `nodash`, and last `raw` in SQL)")]
    Unknown(String),
}

/// The filter that inserts a value as it is, in SQL.
const RAW: &str = "raw";

/// Where a placeholder stands in SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqlContext {
    /// Alone, as a token of its own.
    Code,
    /// Inside a `'…'` string.
    String,
    /// Inside an identifier quoted with this character.
    Identifier(char),
    LineComment,
    BlockComment,
    /// Part of a longer word or number.
    Joined,
    /// Inside another kind of literal, named.
    Unsupported(&'static str),
}

/// The text a placeholder is replaced with while the SQL is tokenized: a
/// plain word, which keeps every context as it is.
fn sentinel(index: usize) -> String {
    format!("civica_placeholder_{index}_x")
}

/// The context of each placeholder of an SQL text, by its offset, as
/// DataFusion's tokenizer (sqlparser's generic dialect) reads the text with
/// each placeholder replaced by a plain word.
fn sql_contexts(template: &str) -> Result<Vec<(usize, SqlContext)>, TemplateError> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
    let mut offsets = Vec::new();
    let mut text = String::with_capacity(template.len());
    let mut rest = 0;
    while let Some(found) = template[rest..].find("{{") {
        let start = rest + found;
        let Some(close) = template[start + 2..].find("}}") else {
            break;
        };
        text.push_str(&template[rest..start]);
        text.push_str(&sentinel(offsets.len()));
        offsets.push(start);
        rest = start + 2 + close + 2;
    }
    text.push_str(&template[rest..]);
    if offsets.is_empty() {
        return Ok(Vec::new());
    }
    let tokens = Tokenizer::new(&GenericDialect {}, &text)
        .tokenize()
        .map_err(|err| TemplateError {
            offset: 0,
            message: format!("cannot read the SQL to fill its placeholders: {err}"),
        })?;
    let mut contexts = vec![None; offsets.len()];
    for token in &tokens {
        let (content, context) = match token {
            Token::Word(word) => (
                word.value.clone(),
                match word.quote_style {
                    Some(quote) => SqlContext::Identifier(quote),
                    None => SqlContext::Code,
                },
            ),
            Token::SingleQuotedString(value) => (value.clone(), SqlContext::String),
            Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => {
                (comment.clone(), SqlContext::LineComment)
            }
            Token::Whitespace(Whitespace::MultiLineComment(comment)) => {
                (comment.clone(), SqlContext::BlockComment)
            }
            Token::Number(value, _) => (value.clone(), SqlContext::Joined),
            Token::EscapedStringLiteral(value) => {
                (value.clone(), SqlContext::Unsupported("an `E'…'` string"))
            }
            Token::DollarQuotedString(value) => (
                value.value.clone(),
                SqlContext::Unsupported("a `$$…$$` string"),
            ),
            other => (
                other.to_string(),
                SqlContext::Unsupported("this kind of literal"),
            ),
        };
        for (index, slot) in contexts.iter_mut().enumerate() {
            let mark = sentinel(index);
            if content.contains(&mark) {
                let joined = matches!(context, SqlContext::Code) && content != mark;
                *slot = Some(if joined { SqlContext::Joined } else { context });
            }
        }
    }
    Ok(offsets
        .into_iter()
        .zip(contexts)
        .map(|(offset, context)| {
            (
                offset,
                context.unwrap_or(SqlContext::Unsupported("a place civica cannot read")),
            )
        })
        .collect())
}

/// `42`, `-7`, `0.25`, `1e5`: a value SQL reads as the same number.
fn is_plain_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => all_digits(whole) && all_digits(fraction),
        None => all_digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(all_digits)
}

/// Every placeholder name a template uses, malformed ones left out.
pub fn placeholder_names(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        rest = &rest[open + 2..];
        let Some(close) = rest.find("}}") else { break };
        let name = rest[..close].split('|').next().unwrap_or_default().trim();
        names.push(name);
        rest = &rest[close + 2..];
    }
    names
}

/// Fills every placeholder, writing each value (its filters applied) as
/// `place(offset of the placeholder, value)` says, unless its last filter
/// is `raw`.
fn render_with(
    template: &str,
    vars: &BTreeMap<String, String>,
    place: impl Fn(usize, &str) -> Result<String, Unplaceable>,
) -> Result<Rendered, Vec<TemplateError>> {
    let mut text = String::with_capacity(template.len());
    let mut pieces = vec![(0, 0)];
    let mut errors = Vec::new();
    let mut rest = 0;
    while let Some(found) = template[rest..].find("{{") {
        let start = rest + found;
        text.push_str(&template[rest..start]);
        let Some(close) = template[start + 2..].find("}}") else {
            errors.push(TemplateError {
                offset: start,
                message: "placeholder `{{` is never closed with `}}`".to_string(),
            });
            rest = template.len();
            break;
        };
        let end = start + 2 + close + 2;
        let mut parts: Vec<&str> = template[start + 2..end - 2].split('|').collect();
        let name = parts.remove(0).trim();
        let raw = parts.last().is_some_and(|f| f.trim() == RAW);
        if raw {
            parts.pop();
        }
        let is_identifier = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !is_identifier {
            errors.push(TemplateError {
                offset: start,
                message: format!(
                    "placeholder `{}` is not a variable name",
                    &template[start..end]
                ),
            });
        } else if let Some(value) = vars.get(name) {
            match parts
                .iter()
                .try_fold(value.clone(), |value, filter| apply_filter(filter, &value))
            {
                Ok(value) => {
                    let placed = match raw {
                        true => Ok(value),
                        false => place(start, &value),
                    };
                    match placed {
                        Ok(placed) => {
                            pieces.push((text.len(), start));
                            text.push_str(&placed);
                        }
                        Err(message) => errors.push(TemplateError {
                            offset: start,
                            message: format!("placeholder `{}` {message}", &template[start..end]),
                        }),
                    }
                }
                Err(message) => errors.push(TemplateError {
                    offset: start,
                    message: format!("placeholder `{}`: {message}", &template[start..end]),
                }),
            }
        } else {
            let known = vars
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            errors.push(TemplateError {
                offset: start,
                message: format!("unknown variable `{name}` (known: {known})"),
            });
        }
        pieces.push((text.len(), end));
        rest = end;
    }
    text.push_str(&template[rest.min(template.len())..]);
    if errors.is_empty() {
        Ok(Rendered {
            text,
            template: template.to_string(),
            pieces,
        })
    } else {
        Err(errors)
    }
}

/// Applies one filter of a placeholder (`{{ ds | add_days(-7) }}`) to a
/// value. Filters: `add_days(n)` on a `YYYY-MM-DD` date, `nodash` to write
/// a date as `YYYYMMDD`.
fn apply_filter(filter: &str, value: &str) -> Result<String, FilterError> {
    let filter = filter.trim();
    let date = || {
        NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| FilterError::NotADate {
            filter: filter.to_string(),
            value: value.to_string(),
        })
    };
    if filter == "nodash" {
        return Ok(date()?.format("%Y%m%d").to_string());
    }
    if let Some(argument) = filter
        .strip_prefix("add_days(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let days: i64 = argument
            .trim()
            .parse()
            .map_err(|_| FilterError::Days(argument.trim().to_string()))?;
        return date()?
            .checked_add_signed(chrono::Duration::days(days))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .ok_or_else(|| FilterError::OffCalendar(filter.to_string()));
    }
    Err(FilterError::Unknown(filter.to_string()))
}

/// The variables every pipeline has: `ds` (the run date, `YYYY-MM-DD`) and
/// `ds_nodash` (`YYYYMMDD`).
pub fn builtin_vars(ds: NaiveDate) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ds".to_string(), ds.format("%Y-%m-%d").to_string()),
        ("ds_nodash".to_string(), ds.format("%Y%m%d").to_string()),
    ])
}

/// The (line, column) of a byte offset, both from 1, columns in characters.
pub fn pos_of_offset(text: &str, offset: usize) -> Pos {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    Pos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
    }
}

/// The byte offset of a (line, column) position, both from 1, columns in characters.
pub fn offset_of_pos(text: &str, pos: Pos) -> usize {
    let mut offset = 0;
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        if idx + 1 == pos.line as usize {
            let col_offset = line
                .char_indices()
                .nth(pos.col.saturating_sub(1) as usize)
                .map_or(line.len(), |(i, _)| i);
            return offset + col_offset;
        }
        offset += line.len();
    }
    text.len()
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("lake".to_string(), "/data/lake".to_string()),
            ("ds".to_string(), "2026-11-21".to_string()),
        ])
    }

    #[test]
    fn date_filters_shift_and_reformat_the_run_date() {
        let vars = builtin_vars(NaiveDate::from_ymd_opt(2026, 3, 2).expect("date"));
        let got = render(
            "{{ ds | add_days(-7) }}/{{ds|add_days(1)|nodash}}/{{ ds }}",
            &vars,
        )
        .expect("renders");
        assert_eq!(got.text, "2026-02-23/20260303/2026-03-02");
        let errors = render(
            "x {{ ds | add_days(soon) }} {{ ds_nodash | add_days(1) }} {{ ds | upper }}",
            &vars,
        )
        .expect_err("bad filters");
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(errors[0].offset, 2);
        assert!(
            messages[0].contains("whole number of days, got `soon`"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("needs a date `YYYY-MM-DD`, got `20260302`"),
            "{messages:?}"
        );
        assert!(
            messages[2].contains("unknown filter `upper`"),
            "{messages:?}"
        );
    }

    #[test]
    fn fills_placeholders_with_and_without_spaces() {
        let out = render("{{ lake }}/raw/{{ds}}/", &vars()).expect("renders");
        assert_eq!(out.text, "/data/lake/raw/2026-11-21/");
    }

    #[test]
    fn reports_every_unknown_variable() {
        let errors = render("{{ a }} and {{ b }}", &vars()).expect_err("unknown");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].offset, 12);
        assert!(errors[0].message.contains("unknown variable `a`"));
    }

    #[test]
    fn rejects_unclosed_placeholder() {
        let errors = render("x {{ lake", &vars()).expect_err("unclosed");
        assert_eq!(errors[0].offset, 2);
    }

    #[test]
    fn maps_rendered_offsets_back_to_the_template() {
        let template = "WHERE d = '{{ ds }}' AND bad_col = 1";
        let out = render(template, &vars()).expect("renders");
        let rendered_at = out.text.find("bad_col").expect("present");
        assert_eq!(
            out.source_offset(rendered_at),
            template.find("bad_col").expect("present")
        );
    }

    #[test]
    fn sql_placeholders_are_data_where_they_stand() {
        let vars = BTreeMap::from([
            ("svc".to_string(), "x' OR '1'='1".to_string()),
            ("n".to_string(), "90".to_string()),
            ("ds".to_string(), "2026-11-21".to_string()),
            ("col".to_string(), "a\"b".to_string()),
            ("note".to_string(), "line\nDROP */ x".to_string()),
            ("table".to_string(), "calls".to_string()),
            ("nest".to_string(), "x */ OR /* y".to_string()),
            ("tick".to_string(), "a`b".to_string()),
            ("neg".to_string(), "-1".to_string()),
        ]);
        let cases = [
            ("WHERE s = '{{ svc }}'", "WHERE s = 'x'' OR ''1''=''1'"),
            ("WHERE s = {{ svc }}", "WHERE s = 'x'' OR ''1''=''1'"),
            ("LIMIT {{ n }}", "LIMIT 90"),
            ("WHERE d = {{ ds }}", "WHERE d = '2026-11-21'"),
            ("CAST('{{ ds }}' AS DATE)", "CAST('2026-11-21' AS DATE)"),
            ("SELECT \"{{ col }}\"", "SELECT \"a\"\"b\""),
            ("-- {{ note }}\nSELECT 1", "-- line DROP */ x\nSELECT 1"),
            (
                "/* a /* b */ {{ nest }} */ SELECT 1",
                "/* a /* b */ x * / OR / * y */ SELECT 1",
            ),
            ("SELECT `{{ tick }}`", "SELECT `a``b`"),
            ("SELECT x-{{ neg }}", "SELECT x-(-1)"),
            (
                "-- città '{{ n }}\nSELECT 'Forlì', {{ n }}",
                "-- città '90\nSELECT 'Forlì', 90",
            ),
            ("SELECT '--', {{ svc }}", "SELECT '--', 'x'' OR ''1''=''1'"),
            ("SELECT $$it's$$, {{ n }}", "SELECT $$it's$$, 90"),
            (
                "/* {{ note }} */ SELECT 1",
                "/* line\nDROP * / x */ SELECT 1",
            ),
            ("SELECT 'it''s {{ n }}'", "SELECT 'it''s 90'"),
            ("SELECT * FROM {{ table | raw }}", "SELECT * FROM calls"),
            (
                "SELECT '{{ svc }}', {{ n }}",
                "SELECT 'x'' OR ''1''=''1', 90",
            ),
        ];
        for (template, expected) in cases {
            let got = render_sql(template, &vars).expect("renders");
            assert_eq!(got.text, expected, "{template}");
        }
        // Where no value can be written safely, an error names the place.
        for (template, expected) in [
            ("SELECT E'{{ svc }}'", "stands inside an `E'…'` string"),
            ("SELECT $$ {{ svc }} $$", "stands inside a `$$…$$` string"),
            (
                "SELECT * FROM calls_{{ n }}",
                "is joined to other characters",
            ),
        ] {
            let errors = render_sql(template, &vars).expect_err(template);
            assert!(
                errors[0].message.contains(expected),
                "{template}: {errors:?}"
            );
        }
        // `| raw` is taken as written, joined or not.
        let raw = render_sql("SELECT * FROM calls_{{ n | raw }}", &vars).expect("raw");
        assert_eq!(raw.text, "SELECT * FROM calls_90");
    }

    #[test]
    fn plain_numbers_are_only_digits_with_a_sign_point_or_exponent() {
        for yes in ["0", "-7", "0.25", "1e5", "2.5E-3"] {
            assert!(is_plain_number(yes), "{yes}");
        }
        for no in ["", "-", "1.", ".5", "NaN", "inf", "1e", "1 ", "0x10", "1;2"] {
            assert!(!is_plain_number(no), "{no}");
        }
    }

    #[test]
    fn lists_the_names_a_template_uses() {
        assert_eq!(
            placeholder_names("{{ lake }}/x/{{ds|nodash}} {{ lake }}"),
            ["lake", "ds", "lake"]
        );
    }

    #[test]
    fn converts_between_offsets_and_positions() {
        let text = "ab\ncdé\nf";
        let pos = pos_of_offset(text, text.find('f').expect("present"));
        assert_eq!(pos, Pos { line: 3, col: 1 });
        assert_eq!(offset_of_pos(text, Pos { line: 2, col: 3 }), 5);
    }
}
