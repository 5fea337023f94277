//! Date and time formats compiled once: chrono formats made only of numeric
//! fields (`%Y %y %m %d %H %M %S`) and literal separators are parsed by a
//! small scanner (an export has millions of them); any other format falls
//! back to chrono. Both give the same results.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Year4,
    Year2,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Literal(u8),
}

/// A chrono format, with its fast scanner when it has one.
#[derive(Debug, Clone)]
pub struct DateTimeFormat {
    text: String,
    fast: Option<Vec<Token>>,
    /// Per token: whether its width is exact (another number follows).
    exact: Vec<bool>,
}

/// The fields a scan found.
#[derive(Debug, Default)]
struct Fields {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    hour: Option<u32>,
    minute: Option<u32>,
    second: Option<u32>,
}

impl DateTimeFormat {
    /// Compiles a chrono format.
    pub fn new(text: &str) -> Self {
        let fast = compile(text);
        let exact = fast
            .iter()
            .flat_map(|tokens| {
                tokens.iter().enumerate().map(|(idx, _)| {
                    matches!(tokens.get(idx + 1), Some(t) if !matches!(t, Token::Literal(_)))
                })
            })
            .collect();
        DateTimeFormat {
            text: text.to_string(),
            fast,
            exact,
        }
    }

    /// Whether the format reads a UTC offset (`%z`, `%:z`, `%#z`, `%+`):
    /// such times are converted to UTC, never stored with the offset
    /// dropped.
    fn has_offset(&self) -> bool {
        ["%z", "%:z", "%::z", "%#z", "%+"]
            .iter()
            .any(|spec| self.text.contains(spec))
    }

    /// chrono's reading of a date and time: in UTC when the format has an
    /// offset.
    fn parse_chrono(&self, s: &str) -> Option<NaiveDateTime> {
        match self.has_offset() {
            true => chrono::DateTime::parse_from_str(s, &self.text)
                .ok()
                .map(|t| t.naive_utc()),
            false => NaiveDateTime::parse_from_str(s, &self.text).ok(),
        }
    }

    /// A date and time (in UTC when the text has an offset).
    pub fn datetime(&self, s: &str) -> Option<NaiveDateTime> {
        match self.scan(s) {
            Some(f) => {
                let date = NaiveDate::from_ymd_opt(f.year?, f.month?, f.day?)?;
                let time = NaiveTime::from_hms_opt(
                    f.hour.unwrap_or(0),
                    f.minute.unwrap_or(0),
                    f.second.unwrap_or(0),
                )?;
                Some(NaiveDateTime::new(date, time))
            }
            None if self.fast.is_none() => self.parse_chrono(s),
            None => None,
        }
    }

    /// A date and time as microseconds since 1970-01-01 00:00:00, computed
    /// without building chrono values on the fast path.
    pub fn timestamp_micros(&self, s: &str) -> Option<i64> {
        match self.scan(s) {
            Some(f) => {
                let days = civil_days(f.year?, f.month?, f.day?)?;
                let (h, m, sec) = (
                    f.hour.unwrap_or(0),
                    f.minute.unwrap_or(0),
                    f.second.unwrap_or(0),
                );
                if h > 23 || m > 59 || sec > 59 {
                    return None;
                }
                let seconds = days * 86_400 + i64::from(h * 3600 + m * 60 + sec);
                Some(seconds * 1_000_000)
            }
            None if self.fast.is_none() => {
                self.parse_chrono(s).map(|t| t.and_utc().timestamp_micros())
            }
            None => None,
        }
    }

    /// A date.
    pub fn date(&self, s: &str) -> Option<NaiveDate> {
        match self.scan(s) {
            Some(f) => NaiveDate::from_ymd_opt(f.year?, f.month?, f.day?),
            None if self.fast.is_none() => NaiveDate::parse_from_str(s, &self.text).ok(),
            None => None,
        }
    }

    /// A time of day.
    pub fn time(&self, s: &str) -> Option<NaiveTime> {
        match self.scan(s) {
            Some(f) => NaiveTime::from_hms_opt(f.hour?, f.minute?, f.second.unwrap_or(0)),
            None if self.fast.is_none() => NaiveTime::parse_from_str(s, &self.text).ok(),
            None => None,
        }
    }

    /// Scans `s` with the fast tokens; `None` when there are none or `s`
    /// does not match.
    fn scan(&self, s: &str) -> Option<Fields> {
        let tokens = self.fast.as_ref()?;
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut f = Fields::default();
        for (token, &exact) in tokens.iter().zip(&self.exact) {
            let width = match token {
                Token::Literal(b) => {
                    if bytes.get(pos) != Some(b) {
                        return None;
                    }
                    pos += 1;
                    continue;
                }
                Token::Year4 => 4,
                _ => 2,
            };
            // Next to another number the width is exact; before a separator
            // or at the end, fewer digits will do (`9:05:33`).
            let (mut value, mut digits) = (0u32, 0);
            while digits < width {
                match bytes.get(pos) {
                    Some(b) if b.is_ascii_digit() => {
                        value = value * 10 + u32::from(b - b'0');
                        pos += 1;
                        digits += 1;
                    }
                    _ => break,
                }
            }
            if digits == 0 || (exact && digits < width) {
                return None;
            }
            match token {
                Token::Year4 => f.year = Some(value as i32),
                Token::Year2 => f.year = Some(if value < 70 { 2000 } else { 1900 } + value as i32),
                Token::Month => f.month = Some(value),
                Token::Day => f.day = Some(value),
                Token::Hour => f.hour = Some(value),
                Token::Minute => f.minute = Some(value),
                Token::Second => f.second = Some(value),
                Token::Literal(_) => {}
            }
        }
        (pos == bytes.len()).then_some(f)
    }
}

/// Days from 1970-01-01 to a valid calendar date (the proleptic Gregorian
/// calendar, as chrono counts).
fn civil_days(year: i32, month: u32, day: u32) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The fast tokens of a format, when it has only numeric fields and
/// one-byte ASCII separators.
fn compile(text: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            tokens.push(match chars.next()? {
                'Y' => Token::Year4,
                'y' => Token::Year2,
                'm' => Token::Month,
                'd' => Token::Day,
                'H' => Token::Hour,
                'M' => Token::Minute,
                'S' => Token::Second,
                _ => return None,
            });
        } else if c.is_ascii() && !c.is_ascii_digit() && !c.is_ascii_whitespace() || c == ' ' {
            tokens.push(Token::Literal(c as u8));
        } else {
            return None;
        }
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_chrono() {
        let cases = [
            ("%d/%m/%Y %H:%M:%S", "21/11/2026 09:05:33"),
            ("%d/%m/%Y %H:%M:%S", "1/2/2026 9:05:33"),
            ("%d/%m/%Y %H:%M:%S", "31/02/2026 09:05:33"),
            ("%d/%m/%Y %H:%M:%S", "21/11/2026 09:05"),
            ("%d/%m/%Y %H:%M:%S", "21/11/2026 09:05:33x"),
            ("%Y-%m-%d %H:%M:%S", "2026-11-21 23:59:59"),
            ("%y%m%d", "261121"),
            ("%y%m%d", "26112"),
            ("%Y%m%d", "20261121"),
        ];
        for (format, text) in cases {
            let fast = DateTimeFormat::new(format);
            assert!(fast.fast.is_some(), "{format} has a fast scanner");
            if format.contains('H') {
                assert_eq!(
                    fast.datetime(text),
                    NaiveDateTime::parse_from_str(text, format).ok(),
                    "{format} {text}"
                );
            } else {
                assert_eq!(
                    fast.date(text),
                    NaiveDate::parse_from_str(text, format).ok(),
                    "{format} {text}"
                );
            }
        }
    }

    #[test]
    fn timestamp_micros_match_chrono() {
        let format = DateTimeFormat::new("%d/%m/%Y %H:%M:%S");
        for text in [
            "21/11/2026 09:05:33",
            "29/02/2024 23:59:59",
            "29/02/2023 10:00:00",
            "01/01/1900 00:00:00",
            "31/12/1969 23:59:59",
            "15/03/2400 12:00:00",
        ] {
            assert_eq!(
                format.timestamp_micros(text),
                NaiveDateTime::parse_from_str(text, "%d/%m/%Y %H:%M:%S")
                    .ok()
                    .map(|t| t.and_utc().timestamp_micros()),
                "{text}"
            );
        }
    }

    #[test]
    fn times_and_fallback_formats() {
        let time = DateTimeFormat::new("%H:%M:%S");
        assert_eq!(time.time("9:05:33"), NaiveTime::from_hms_opt(9, 5, 33));
        assert_eq!(time.time("25:00:00"), None);
        let named = DateTimeFormat::new("%d %b %Y");
        assert!(named.fast.is_none());
        assert_eq!(
            named.date("21 Nov 2026"),
            NaiveDate::from_ymd_opt(2026, 11, 21)
        );
    }
}
