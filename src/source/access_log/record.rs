//! One access-log line as parsed, before it becomes Arrow columns, and the
//! pieces every layout parses with: tokens, quoted fields, the request
//! line and the CLF time.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

pub(crate) use crate::source::lines::LineError;

/// One parsed line, borrowing from the text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogRecord<'a> {
    /// Client address.
    pub client_ip: Option<&'a str>,
    /// RFC 1413 identity, `None` for `-`.
    pub ident: Option<&'a str>,
    /// Authenticated user, `None` for `-`.
    pub user: Option<&'a str>,
    /// Microseconds since the Unix epoch, UTC.
    pub timestamp_us: Option<i64>,
    /// The offset written in the line, in minutes east of UTC.
    pub utc_offset_minutes: Option<i32>,
    /// Request method, `None` when the request line is not `METHOD TARGET PROTOCOL`.
    pub method: Option<&'a str>,
    /// Request path without the query; the whole request line when it is malformed.
    pub path: Option<&'a str>,
    /// The query string after `?`, without it.
    pub query: Option<&'a str>,
    /// `HTTP/1.1` and the like.
    pub protocol: Option<&'a str>,
    /// HTTP status.
    pub status: Option<i32>,
    /// Response size, `None` for `-`.
    pub bytes: Option<i64>,
    /// Referer, `None` for `-`.
    pub referer: Option<&'a str>,
    /// User agent, `None` for `-`.
    pub user_agent: Option<&'a str>,
    /// Seconds to serve the request (patterns with `request_time`).
    pub request_time: Option<f64>,
    /// A pattern's other fields, in order.
    pub extras: Vec<Option<&'a str>>,
}

pub(super) fn err(message: &str) -> LineError {
    LineError(message.to_string())
}

pub(super) fn dash_to_none(text: &str) -> Option<&str> {
    if text == "-" || text.is_empty() {
        None
    } else {
        Some(text)
    }
}

pub(super) fn take_token<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let text = rest.trim_start_matches(' ');
    if text.is_empty() {
        return None;
    }
    let end = text.find(' ').unwrap_or(text.len());
    *rest = &text[end..];
    Some(&text[..end])
}

/// A `"…"` field; `\"` inside does not close it.
pub(super) fn take_quoted<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let text = rest.trim_start_matches(' ').strip_prefix('"')?;
    let bytes = text.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'\\' => idx += 2,
            b'"' => {
                *rest = &text[idx + 1..];
                return Some(&text[..idx]);
            }
            _ => idx += 1,
        }
    }
    None
}

pub(super) fn split_request(
    request: &str,
) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
    let mut parts = request.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(protocol))
            if !method.is_empty()
                && method.bytes().all(|b| b.is_ascii_uppercase())
                && protocol.starts_with("HTTP/") =>
        {
            let (path, query) = match target.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (target, None),
            };
            (Some(method), Some(path), query, Some(protocol))
        }
        _ if request.is_empty() || request == "-" => (None, None, None, None),
        _ => (None, Some(request), None, None),
    }
}

/// `21/Nov/2026:09:05:33 +0100` to (UTC microseconds, offset minutes).
pub(super) fn parse_clf_time(text: &str) -> Result<(i64, i32), LineError> {
    let bad = || {
        err(&format!(
            "timestamp `{text}` is not `dd/Mon/yyyy:HH:MM:SS +zzzz`"
        ))
    };
    let (stamp, zone) = text.split_once(' ').ok_or_else(bad)?;
    let b = stamp.as_bytes();
    if b.len() != 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let day = num(&stamp[0..2])?;
    let month = match &stamp[3..6] {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return Err(bad()),
    };
    let year = i32::try_from(num(&stamp[7..11])?).map_err(|_| bad())?;
    let time = NaiveTime::from_hms_opt(
        num(&stamp[12..14])?,
        num(&stamp[15..17])?,
        num(&stamp[18..20])?,
    )
    .ok_or_else(bad)?;
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(bad)?;
    let zb = zone.as_bytes();
    if zb.len() != 5 || !(zb[0] == b'+' || zb[0] == b'-') {
        return Err(bad());
    }
    let hours = i32::try_from(num(&zone[1..3])?).map_err(|_| bad())?;
    let minutes = i32::try_from(num(&zone[3..5])?).map_err(|_| bad())?;
    let sign = if zb[0] == b'-' { -1 } else { 1 };
    let offset_minutes = sign * (hours * 60 + minutes);
    let offset = FixedOffset::east_opt(offset_minutes * 60).ok_or_else(bad)?;
    let local = NaiveDateTime::new(date, time);
    let utc = local
        .and_local_timezone(offset)
        .single()
        .ok_or_else(bad)?
        .timestamp_micros();
    Ok((utc, offset_minutes))
}
