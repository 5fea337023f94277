//! The Common and Combined Log Formats of Apache and Nginx.

use super::record::{
    LineError, LogRecord, dash_to_none, err, parse_clf_time, split_request, take_quoted, take_token,
};
use crate::pipeline::LogFlavor;

/// Parses one access-log line.
pub fn parse_line(line: &str, flavor: LogFlavor) -> Result<LogRecord<'_>, LineError> {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    let client_ip = take_token(&mut rest).ok_or_else(|| err("empty line"))?;
    let ident = dash_to_none(take_token(&mut rest).ok_or_else(|| err("missing ident field"))?);
    let user = dash_to_none(take_token(&mut rest).ok_or_else(|| err("missing user field"))?);
    rest = rest.trim_start();
    let inner = rest
        .strip_prefix('[')
        .ok_or_else(|| err("missing `[` before the timestamp"))?;
    let close = inner
        .find(']')
        .ok_or_else(|| err("missing `]` after the timestamp"))?;
    let (timestamp_us, utc_offset_minutes) = parse_clf_time(&inner[..close])?;
    rest = &inner[close + 1..];
    let request = take_quoted(&mut rest).ok_or_else(|| err("request is not a quoted string"))?;
    let status_text = take_token(&mut rest).ok_or_else(|| err("missing status"))?;
    let status: i32 = status_text
        .parse()
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| err(&format!("status `{status_text}` is not an HTTP status")))?;
    let bytes_text = take_token(&mut rest).ok_or_else(|| err("missing bytes"))?;
    let bytes = match bytes_text {
        "-" => None,
        text => Some(
            text.parse::<i64>()
                .ok()
                .filter(|b| *b >= 0)
                .ok_or_else(|| err(&format!("bytes `{text}` is not a number")))?,
        ),
    };
    let (referer, user_agent) = match flavor {
        LogFlavor::Common => (None, None),
        LogFlavor::Combined => {
            let referer =
                take_quoted(&mut rest).ok_or_else(|| err("referer is not a quoted string"))?;
            let agent =
                take_quoted(&mut rest).ok_or_else(|| err("user agent is not a quoted string"))?;
            (dash_to_none(referer), dash_to_none(agent))
        }
    };
    let (method, path, query, protocol) = split_request(request);
    Ok(LogRecord {
        client_ip: Some(client_ip),
        ident,
        user,
        timestamp_us: Some(timestamp_us),
        utc_offset_minutes: Some(utc_offset_minutes),
        method,
        path,
        query,
        protocol,
        status: Some(status),
        bytes,
        referer,
        user_agent,
        ..LogRecord::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::source::access_log::tests::LINE;

    #[test]
    fn parses_a_combined_line_into_typed_fields() {
        let r = parse_line(LINE, LogFlavor::Combined).expect("valid line");
        assert_eq!(r.client_ip, Some("83.149.9.216"));
        assert_eq!(r.user, Some("TINIT-RSSMRA85T10A562S"));
        assert_eq!(r.utc_offset_minutes, Some(120));
        // 10:05:03 at +02:00 is 08:05:03 UTC.
        assert_eq!(r.timestamp_us, Some(1_431_849_903_000_000));
        assert_eq!(
            (r.method, r.path, r.query),
            (Some("GET"), Some("/presentations/logstash"), Some("x=1"))
        );
        assert_eq!((r.status, r.bytes), (Some(200), Some(203023)));
        assert_eq!(r.user_agent, Some("Mozilla/5.0 (Macintosh)"));
    }

    #[test]
    fn dash_bytes_are_null() {
        let line = LINE.replace("203023", "-");
        assert_eq!(
            parse_line(&line, LogFlavor::Combined).expect("valid").bytes,
            None
        );
    }

    #[test]
    fn rejects_unterminated_user_agent() {
        let line = &LINE[..LINE.len() - 1];
        let e = parse_line(line, LogFlavor::Combined).expect_err("no closing quote");
        assert_eq!(e.0, "user agent is not a quoted string");
    }

    #[test]
    fn keeps_malformed_request_lines_as_path() {
        let line = LINE.replace(
            "GET /presentations/logstash?x=1 HTTP/1.1",
            "\\x16\\x03\\x01",
        );
        let r = parse_line(&line, LogFlavor::Combined).expect("kept");
        assert_eq!((r.method, r.path), (None, Some("\\x16\\x03\\x01")));
    }
}
