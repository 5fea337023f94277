//! Custom access-log layouts: the `pattern` of an access-log source, either
//! an Nginx `log_format` (`$remote_addr - $remote_user [$time_local] …`) or a
//! regular expression with named groups (`(?P<client_ip>\S+) …`).
//!
//! Fields with a known name fill the standard columns (see [`role_of`]);
//! every other field becomes a text column of its own.

use regex::Regex;

use super::access_log::{LineError, LogRecord, parse_clf_time, split_request};

/// What a field of the pattern fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    ClientIp,
    Ident,
    User,
    TimeClf,
    TimeIso,
    Request,
    Method,
    RequestUri,
    Path,
    Query,
    Protocol,
    Status,
    Bytes,
    Referer,
    UserAgent,
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

#[derive(Debug, Clone)]
enum Piece {
    Literal(String),
    Field(usize),
}

#[derive(Debug, Clone)]
enum Matcher {
    /// Nginx `log_format`: literal text and fields in turn.
    Format(Vec<Piece>),
    /// A regex; field `i` is capture group `groups[i]`.
    Regex { regex: Regex, groups: Vec<usize> },
}

/// A compiled `pattern`.
#[derive(Debug, Clone)]
pub struct LogPattern {
    matcher: Matcher,
    roles: Vec<Role>,
    /// Names of the extra text columns, in pattern order.
    pub extras: Vec<String>,
    /// Whether the pattern has `request_time` (a `Float64` column).
    pub has_request_time: bool,
}

impl LogPattern {
    /// Compiles a pattern, or says what is wrong with it.
    pub fn compile(pattern: &str) -> Result<LogPattern, String> {
        if pattern.contains("(?P<") || pattern.contains("(?<") {
            compile_regex(pattern)
        } else if pattern.contains('$') {
            compile_format(pattern)
        } else {
            Err("`pattern` must be an Nginx `log_format` with `$variables`, or a regular expression with named groups such as `(?P<client_ip>\\S+)`".to_string())
        }
    }

    /// Parses one line.
    pub fn parse<'a>(&self, line: &'a str) -> Result<LogRecord<'a>, LineError> {
        let mut values: Vec<Option<&'a str>> = vec![None; self.roles.len()];
        match &self.matcher {
            Matcher::Format(pieces) => match_format(pieces, line, &mut values)?,
            Matcher::Regex { regex, groups } => {
                let caps = regex
                    .captures(line)
                    .ok_or_else(|| LineError("line does not match the `pattern`".into()))?;
                for (value, group) in values.iter_mut().zip(groups) {
                    *value = caps.get(*group).map(|m| m.as_str());
                }
            }
        }
        let mut record = LogRecord {
            extras: vec![None; self.extras.len()],
            ..LogRecord::default()
        };
        for (role, value) in self.roles.iter().zip(values) {
            let Some(value) = value.filter(|v| !v.is_empty() && *v != "-") else {
                continue;
            };
            fill(&mut record, *role, value)?;
        }
        Ok(record)
    }
}

fn fill<'a>(r: &mut LogRecord<'a>, role: Role, value: &'a str) -> Result<(), LineError> {
    let bad = |what: &str| LineError(format!("{what} `{value}` is not valid"));
    match role {
        Role::ClientIp => r.client_ip = Some(value),
        Role::Ident => r.ident = Some(value),
        Role::User => r.user = Some(value),
        Role::TimeClf => {
            let (ts, offset) = parse_clf_time(value)?;
            r.timestamp_us = Some(ts);
            r.utc_offset_minutes = Some(offset);
        }
        Role::TimeIso => {
            let time = chrono::DateTime::parse_from_rfc3339(value)
                .map_err(|_| bad("ISO 8601 timestamp"))?;
            r.timestamp_us = Some(time.timestamp_micros());
            r.utc_offset_minutes = Some(time.offset().local_minus_utc() / 60);
        }
        Role::Request => {
            let (method, path, query, protocol) = split_request(value);
            (r.method, r.path, r.query, r.protocol) = (method, path, query, protocol);
        }
        Role::Method => r.method = Some(value),
        Role::RequestUri => match value.split_once('?') {
            Some((path, query)) => (r.path, r.query) = (Some(path), Some(query)),
            None => r.path = Some(value),
        },
        Role::Path => r.path = Some(value),
        Role::Query => r.query = Some(value),
        Role::Protocol => r.protocol = Some(value),
        Role::Status => {
            r.status = Some(
                value
                    .parse()
                    .ok()
                    .filter(|s| (100..=999).contains(s))
                    .ok_or_else(|| LineError(format!("status `{value}` is not an HTTP status")))?,
            )
        }
        Role::Bytes => {
            r.bytes = Some(
                value
                    .parse()
                    .ok()
                    .filter(|b: &i64| *b >= 0)
                    .ok_or_else(|| LineError(format!("bytes `{value}` is not a number")))?,
            )
        }
        Role::Referer => r.referer = Some(value),
        Role::UserAgent => r.user_agent = Some(value),
        Role::RequestTime => {
            r.request_time = Some(
                value
                    .parse()
                    .map_err(|_| LineError(format!("request_time `{value}` is not a number")))?,
            )
        }
        Role::Extra(idx) => r.extras[idx] = Some(value),
    }
    Ok(())
}

/// Assigns roles to field names in order; unknown names become extra columns.
fn roles_for(names: &[String]) -> Result<(Vec<Role>, Vec<String>), String> {
    let mut roles = Vec::new();
    let mut extras: Vec<String> = Vec::new();
    for name in names {
        let role = match role_of(name) {
            Some(role) => role,
            None => {
                if extras.contains(name) {
                    return Err(format!("field `{name}` appears twice in the `pattern`"));
                }
                extras.push(name.clone());
                Role::Extra(extras.len() - 1)
            }
        };
        roles.push(role);
    }
    Ok((roles, extras))
}

fn finish(matcher: Matcher, names: &[String]) -> Result<LogPattern, String> {
    let (roles, extras) = roles_for(names)?;
    Ok(LogPattern {
        has_request_time: roles.contains(&Role::RequestTime),
        matcher,
        roles,
        extras,
    })
}

fn compile_regex(pattern: &str) -> Result<LogPattern, String> {
    let regex = Regex::new(pattern).map_err(|e| format!("`pattern` is not a valid regex: {e}"))?;
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

fn compile_format(pattern: &str) -> Result<LogPattern, String> {
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
            return Err(format!("`${{{name}` in the `pattern` has no closing `}}`"));
        }
        if name.is_empty() {
            literal.push('$');
            continue;
        }
        if literal.is_empty() && matches!(pieces.last(), Some(Piece::Field(_))) {
            return Err(format!(
                "`${name}` follows another variable with nothing between them: the two cannot be told apart"
            ));
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

fn match_format<'a>(
    pieces: &[Piece],
    line: &'a str,
    values: &mut [Option<&'a str>],
) -> Result<(), LineError> {
    let mut pos = 0;
    let mut quoted = false;
    for (idx, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Literal(text) => {
                if !line[pos..].starts_with(text.as_str()) {
                    return Err(LineError(format!(
                        "expected `{text}` at column {} of the line",
                        pos + 1
                    )));
                }
                pos += text.len();
                quoted = text.ends_with('"');
            }
            Piece::Field(field) => {
                let end = match pieces.get(idx + 1) {
                    Some(Piece::Literal(next)) => {
                        find_end(&line[pos..], next, quoted).ok_or_else(|| {
                            LineError(format!(
                                "expected `{next}` after column {} of the line",
                                pos + 1
                            ))
                        })? + pos
                    }
                    _ => line.len(),
                };
                values[*field] = Some(&line[pos..end]);
                pos = end;
            }
        }
    }
    if pos != line.len() {
        return Err(LineError(format!(
            "unexpected text after column {} of the line",
            pos
        )));
    }
    Ok(())
}

/// Where `next` starts in `text`; inside quotes, `\"` and `\\` do not count.
fn find_end(text: &str, next: &str, quoted: bool) -> Option<usize> {
    if !quoted {
        return text.find(next);
    }
    let bytes = text.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'\\' {
            idx += 2;
            continue;
        }
        if text[idx..].starts_with(next) {
            return Some(idx);
        }
        idx += 1;
        while idx < bytes.len() && !text.is_char_boundary(idx) {
            idx += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time upstream=$upstream_addr"#;

    #[test]
    fn nginx_log_format_fills_standard_and_extra_columns() {
        let p = LogPattern::compile(NGINX).expect("compiles");
        assert_eq!(p.extras, ["upstream_addr"]);
        assert!(p.has_request_time);
        let line = r#"10.0.0.1 - - [21/Nov/2026:10:00:00 +0100] "GET /servizi/tari?anno=2026 HTTP/2.0" 200 512 "-" "Mozilla/5.0 \"quoted\" agent" rt=0.042 upstream=127.0.0.1:8080"#;
        let r = p.parse(line).expect("parses");
        assert_eq!(r.client_ip, Some("10.0.0.1"));
        assert_eq!(r.user, None);
        assert_eq!(r.utc_offset_minutes, Some(60));
        assert_eq!(
            (r.path, r.query),
            (Some("/servizi/tari"), Some("anno=2026"))
        );
        assert_eq!(r.user_agent, Some(r#"Mozilla/5.0 \"quoted\" agent"#));
        assert_eq!(r.request_time, Some(0.042));
        assert_eq!(r.extras, [Some("127.0.0.1:8080")]);
    }

    #[test]
    fn regex_groups_fill_columns() {
        let p = LogPattern::compile(
            r"^(?P<time_iso8601>\S+) (?P<client_ip>\S+) (?P<status>\d+) (?P<path>\S+) (?P<tenant>\w+)$",
        )
        .expect("compiles");
        let r = p
            .parse("2026-11-21T10:00:00+01:00 10.0.0.2 404 /x comune")
            .expect("parses");
        assert_eq!(r.status, Some(404));
        assert_eq!(r.utc_offset_minutes, Some(60));
        assert_eq!(r.timestamp_us, Some(1_795_251_600_000_000));
        assert_eq!(r.extras, [Some("comune")]);
        assert!(p.parse("garbage").is_err());
    }

    #[test]
    fn bad_patterns_are_explained() {
        assert!(LogPattern::compile("no variables").is_err());
        let e = LogPattern::compile("$a$b").expect_err("adjacent");
        assert!(e.contains("`$b` follows another variable"), "{e}");
        assert!(
            LogPattern::compile("(?P<x>[)")
                .expect_err("bad regex")
                .contains("not a valid regex")
        );
    }

    #[test]
    fn a_bad_status_rejects_the_line() {
        let p = LogPattern::compile("$remote_addr $status").expect("compiles");
        let e = p.parse("1.2.3.4 abc").expect_err("bad status");
        assert_eq!(e.0, "status `abc` is not an HTTP status");
    }
}
