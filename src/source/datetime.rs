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
        DateTimeFormat {
            text: text.to_string(),
            fast: compile(text),
        }
    }

    /// A date and time.
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
            None if self.fast.is_none() => NaiveDateTime::parse_from_str(s, &self.text).ok(),
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
        for (idx, token) in tokens.iter().enumerate() {
            if let Token::Literal(b) = token {
                if bytes.get(pos) != Some(b) {
                    return None;
                }
                pos += 1;
                continue;
            }
            let width = if *token == Token::Year4 { 4 } else { 2 };
            // Next to another number the width is exact; before a separator
            // or at the end, fewer digits will do (`9:05:33`).
            let exact = matches!(tokens.get(idx + 1), Some(t) if !matches!(t, Token::Literal(_)));
            let digits = bytes[pos..]
                .iter()
                .take(width)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 || (exact && digits < width) {
                return None;
            }
            let value = bytes[pos..pos + digits]
                .iter()
                .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
            pos += digits;
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
