//! Custom access-log layouts: the `pattern` of an access-log source, either
//! an Nginx `log_format` (`$remote_addr - $remote_user [$time_local] …`) or a
//! regular expression with named groups (`(?P<client_ip>\S+) …`), compiled
//! into the fields it has and what each fills. Part of the pipeline
//! language, like the `{{ }}` templates: the plan compiles a pattern to
//! validate it, the access-log reader to read with it
//! (`source/access_log/pattern.rs`).
//!
//! Fields with a known name fill the standard columns (see `role_of`);
//! every other field becomes a text column of its own.

use regex::Regex;

/// What a field of the pattern fills: one or more columns of the
/// access-log table (`source::access_log`'s `LogColumn`s), or an extra
/// text column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `client_ip`.
    ClientIp,
    /// `ident`.
    Ident,
    /// `user`.
    User,
    /// `timestamp` and `utc_offset_minutes`, from a CLF time (`21/Nov/2026:10:00:00 +0100`).
    TimeClf,
    /// `timestamp` and `utc_offset_minutes`, from an ISO 8601 time.
    TimeIso,
    /// `method`, `path`, `query` and `protocol`, from a whole request line.
    Request,
    /// `method`.
    Method,
    /// `path` and `query`, from a request URI.
    RequestUri,
    /// `path`.
    Path,
    /// `query`.
    Query,
    /// `protocol`.
    Protocol,
    /// `status`.
    Status,
    /// `bytes`.
    Bytes,
    /// `referer`.
    Referer,
    /// `user_agent`.
    UserAgent,
    /// `request_time` (seconds, `Float64`).
    RequestTime,
    /// A column of its own, by index among the extra columns.
    Extra(usize),
}

/// The standard role of a field name (an Nginx variable or a regex group).
fn role_of(name: &str) -> Option<Role> {
    Some(match name {
        "remote_addr" | "client_ip" => Role::ClientIp,
        "ident" => Role::Ident,
        "remote_user" | "user" => Role::User,
        "time_local" | "timestamp" => Role::TimeClf,
        "time_iso8601" => Role::TimeIso,
        "request" => Role::Request,
        "request_method" | "method" => Role::Method,
        "request_uri" => Role::RequestUri,
        "uri" | "path" => Role::Path,
        "args" | "query_string" | "query" => Role::Query,
        "server_protocol" | "protocol" => Role::Protocol,
        "status" => Role::Status,
        "body_bytes_sent" | "bytes_sent" | "bytes" => Role::Bytes,
        "http_referer" | "referer" => Role::Referer,
        "http_user_agent" | "user_agent" => Role::UserAgent,
        "request_time" => Role::RequestTime,
        _ => return None,
    })
}

/// A piece of an Nginx `log_format`.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    /// Text the line must have here.
    Literal(String),
    /// The field with this index.
    Field(usize),
}

/// How a pattern finds its fields in a line.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// Nginx `log_format`: literal text and fields in turn.
    Format(Vec<Piece>),
    /// A regex; field `i` is capture group `groups[i]`.
    Regex {
        /// The expression.
        regex: Regex,
        /// The capture group of each field.
        groups: Vec<usize>,
    },
}

/// A compiled `pattern`.
#[derive(Debug, Clone)]
pub struct LogPattern {
    /// How the fields are found.
    pub(crate) matcher: Matcher,
    /// What each field fills, in field order.
    pub(crate) roles: Vec<Role>,
    /// Names of the extra text columns, in pattern order.
    pub extras: Vec<String>,
    /// Whether the pattern has `request_time` (a `Float64` column).
    pub has_request_time: bool,
}

/// What is wrong with a `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Neither a `log_format` nor a regex with named groups.
    #[error(
        "`pattern` must be an Nginx `log_format` with `$variables`, or a regular expression with named groups such as `(?P<client_ip>\\S+)`"
    )]
    Neither,
    /// A regex that does not compile.
    #[error("`pattern` is not a valid regex: {0}")]
    Regex(String),
    /// A field named twice.
    #[error("field `{0}` appears twice in the `pattern`")]
    Twice(String),
    /// `${name` without `}`.
    #[error("`${{{0}` in the `pattern` has no closing `}}`")]
    Unclosed(String),
    /// Two variables with nothing between them.
    #[error(
        "`${0}` follows another variable with nothing between them: the two cannot be told apart"
    )]
    Adjacent(String),
}

impl LogPattern {
    /// Compiles a pattern, or says what is wrong with it.
    pub fn compile(pattern: &str) -> Result<LogPattern, PatternError> {
        if pattern.contains("(?P<") || pattern.contains("(?<") {
            compile_regex(pattern)
        } else if pattern.contains('$') {
            compile_format(pattern)
        } else {
            Err(PatternError::Neither)
        }
    }
}

/// Assigns roles to field names in order; unknown names become extra columns.
fn roles_for(names: &[String]) -> Result<(Vec<Role>, Vec<String>), PatternError> {
    let mut roles = Vec::new();
    let mut extras: Vec<String> = Vec::new();
    for name in names {
        let role = match role_of(name) {
            Some(role) => role,
            None => {
                if extras.contains(name) {
                    return Err(PatternError::Twice(name.clone()));
                }
                extras.push(name.clone());
                Role::Extra(extras.len() - 1)
            }
        };
        roles.push(role);
    }
    Ok((roles, extras))
}

fn finish(matcher: Matcher, names: &[String]) -> Result<LogPattern, PatternError> {
    let (roles, extras) = roles_for(names)?;
    Ok(LogPattern {
        has_request_time: roles.contains(&Role::RequestTime),
        matcher,
        roles,
        extras,
    })
}

fn compile_regex(pattern: &str) -> Result<LogPattern, PatternError> {
    let regex = Regex::new(pattern).map_err(|e| PatternError::Regex(e.to_string()))?;
    let mut names = Vec::new();
    let mut groups = Vec::new();
    for (idx, name) in regex.capture_names().enumerate() {
        if let Some(name) = name {
            names.push(name.to_string());
            groups.push(idx);
        }
    }
    finish(Matcher::Regex { regex, groups }, &names)
}

fn compile_format(pattern: &str) -> Result<LogPattern, PatternError> {
    let mut pieces = Vec::new();
    let mut names = Vec::new();
    let mut literal = String::new();
    let mut chars = pattern.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            literal.push(c);
            continue;
        }
        let braced = chars.peek().is_some_and(|(_, c)| *c == '{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some((_, c)) = chars.peek() {
            if c.is_ascii_alphanumeric() || *c == '_' {
                name.push(*c);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.next().map(|(_, c)| c) != Some('}') {
            return Err(PatternError::Unclosed(name));
        }
        if name.is_empty() {
            literal.push('$');
            continue;
        }
        if literal.is_empty() && matches!(pieces.last(), Some(Piece::Field(_))) {
            return Err(PatternError::Adjacent(name));
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Field(names.len()));
        names.push(name);
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    finish(Matcher::Format(pieces), &names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_patterns_are_explained() {
        assert!(LogPattern::compile("no variables").is_err());
        let e = LogPattern::compile("$a$b").expect_err("adjacent");
        assert!(
            e.to_string().contains("`$b` follows another variable"),
            "{e}"
        );
        assert!(
            LogPattern::compile("(?P<x>[)")
                .expect_err("bad regex")
                .to_string()
                .contains("not a valid regex")
        );
        assert_eq!(
            LogPattern::compile("${a b")
                .expect_err("unclosed")
                .to_string(),
            "`${a` in the `pattern` has no closing `}`"
        );
        assert_eq!(
            LogPattern::compile("no variables")
                .expect_err("neither")
                .to_string(),
            "`pattern` must be an Nginx `log_format` with `$variables`, or a regular expression with named groups such as `(?P<client_ip>\\S+)`"
        );
    }
}
