//! Reading lines with a custom `pattern` (compiled by
//! [`crate::pipeline::log_pattern`]): matching the line, then filling the
//! standard and extra columns from its fields.

use super::record::{LineError, LogRecord, parse_clf_time, split_request};
use crate::pipeline::log_pattern::{LogPattern, Matcher, Piece, Role};

/// Parses one line with a compiled pattern.
pub(super) fn parse_with<'a>(
    pattern: &LogPattern,
    line: &'a str,
) -> Result<LogRecord<'a>, LineError> {
    let mut values: Vec<Option<&'a str>> = vec![None; pattern.roles.len()];
    match &pattern.matcher {
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
        extras: vec![None; pattern.extras.len()],
        ..LogRecord::default()
    };
    for (role, value) in pattern.roles.iter().zip(values) {
        let Some(value) = value.filter(|v| !v.is_empty() && *v != "-") else {
            continue;
        };
        fill(&mut record, *role, value)?;
    }
    Ok(record)
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
        let r = parse_with(&p, line).expect("parses");
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
        let r = parse_with(&p, "2026-11-21T10:00:00+01:00 10.0.0.2 404 /x comune").expect("parses");
        assert_eq!(r.status, Some(404));
        assert_eq!(r.utc_offset_minutes, Some(60));
        assert_eq!(r.timestamp_us, Some(1_795_251_600_000_000));
        assert_eq!(r.extras, [Some("comune")]);
        assert!(parse_with(&p, "garbage").is_err());
    }

    #[test]
    fn a_bad_status_rejects_the_line() {
        let p = LogPattern::compile("$remote_addr $status").expect("compiles");
        let e = parse_with(&p, "1.2.3.4 abc").expect_err("bad status");
        assert_eq!(e.0, "status `abc` is not an HTTP status");
    }
}
