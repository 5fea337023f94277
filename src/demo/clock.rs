//! Europe/Rome wall-clock arithmetic for the demo lake: the EU daylight-saving rule, local day bounds and the timestamp formats each export uses.

/// Seconds in a civil day.
pub(crate) const DAY: i64 = 86_400;

/// `NaiveDate::num_days_from_ce` of 1970-01-01, to move between chrono dates and epoch days.
pub(crate) const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm; out-of-range days roll over).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `(year, month, day)` of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Weekday of an epoch day, 0 = Monday … 6 = Sunday.
pub(crate) fn weekday(days: i64) -> usize {
    (days + 3).rem_euclid(7) as usize
}

fn last_sunday(year: i64, month: u32) -> i64 {
    let last = days_from_civil(year, month + 1, 1) - 1;
    last - ((weekday(last) as i64 + 1) % 7)
}

/// Whether an instant falls in EU summer time: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
pub(crate) fn is_summer_time(utc: i64) -> bool {
    let (y, _, _) = civil_from_days(utc.div_euclid(DAY));
    let start = last_sunday(y, 3) * DAY + 3600;
    let end = last_sunday(y, 10) * DAY + 3600;
    (start..end).contains(&utc)
}

/// Europe/Rome's UTC offset in seconds at an instant.
pub(crate) fn rome_offset(utc: i64) -> i64 {
    if is_summer_time(utc) { 7200 } else { 3600 }
}

/// The instant of a Rome wall-clock reading (seconds as if the wall clock were UTC).
///
/// The skipped spring hour maps forward, as a clock set by hand would; the repeated autumn hour takes its first (summer) reading.
pub(crate) fn local_to_utc(local: i64) -> i64 {
    let summer = local - 7200;
    if is_summer_time(summer) {
        return summer;
    }
    local - 3600
}

/// The Rome wall-clock reading of an instant.
pub(crate) fn utc_to_local(utc: i64) -> i64 {
    utc + rome_offset(utc)
}

/// Appends a decimal integer.
pub(crate) fn push_num(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends an integer zero-padded to `width` digits.
pub(crate) fn push_pad(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    let mut n = n;
    while n > 0 && i > 0 {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let start = i.min(tmp.len() - width.min(tmp.len()));
    buf.extend_from_slice(&tmp[start..]);
}

/// Appends tenths with a decimal comma, the Italian locale's number format (`354` → `35,4`).
pub(crate) fn push_decimal_comma(buf: &mut Vec<u8>, tenths: u64) {
    push_num(buf, tenths / 10);
    buf.push(b',');
    buf.push(b'0' + (tenths % 10) as u8);
}

fn split_time(secs: i64) -> (i64, u64, u64, u64) {
    let days = secs.div_euclid(DAY);
    let s = secs.rem_euclid(DAY) as u64;
    (days, s / 3600, s / 60 % 60, s % 60)
}

fn push_hms(buf: &mut Vec<u8>, h: u64, m: u64, s: u64) {
    push_pad(buf, h, 2);
    buf.push(b':');
    push_pad(buf, m, 2);
    buf.push(b':');
    push_pad(buf, s, 2);
}

/// Appends an epoch day as ISO `YYYY-MM-DD`.
pub(crate) fn push_date(buf: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    push_pad(buf, y.max(0) as u64, 4);
    buf.push(b'-');
    push_pad(buf, u64::from(m), 2);
    buf.push(b'-');
    push_pad(buf, u64::from(d), 2);
}

/// An epoch day as an ISO `YYYY-MM-DD` string, for file names.
pub(crate) fn date_string(days: i64) -> String {
    let mut buf = Vec::with_capacity(10);
    push_date(&mut buf, days);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Appends a wall-clock reading as the CRM's `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn push_iso(buf: &mut Vec<u8>, local: i64) {
    let (days, h, m, s) = split_time(local);
    push_date(buf, days);
    buf.push(b' ');
    push_hms(buf, h, m, s);
}

/// Appends a wall-clock reading as the call center's Italian `dd/mm/yyyy HH:MM:SS`.
pub(crate) fn push_italian(buf: &mut Vec<u8>, local: i64) {
    let (days, h, m, s) = split_time(local);
    let (y, mo, d) = civil_from_days(days);
    push_pad(buf, u64::from(d), 2);
    buf.push(b'/');
    push_pad(buf, u64::from(mo), 2);
    buf.push(b'/');
    push_pad(buf, y.max(0) as u64, 4);
    buf.push(b' ');
    push_hms(buf, h, m, s);
}

/// Appends an instant as Apache's `%t` body, `21/Nov/2026:09:05:33 +0100`, in Rome time.
pub(crate) fn push_clf(buf: &mut Vec<u8>, utc: i64) {
    let offset = rome_offset(utc);
    let (days, h, m, s) = split_time(utc + offset);
    let (y, mo, d) = civil_from_days(days);
    push_pad(buf, u64::from(d), 2);
    buf.push(b'/');
    buf.extend_from_slice(MONTHS[(mo as usize).clamp(1, 12) - 1]);
    buf.push(b'/');
    push_pad(buf, y.max(0) as u64, 4);
    buf.push(b':');
    push_hms(buf, h, m, s);
    buf.extend_from_slice(if offset == 7200 { b" +0200" } else { b" +0100" });
}

/// [`push_clf`] for a stream of nearby instants: the text up to the hour is reused within each UTC hour,
/// which never straddles a Rome date or offset change because both happen on whole UTC hours.
pub(crate) struct ClfClock {
    hour: i64,
    /// `dd/Mon/yyyy:HH:` of the cached hour.
    head: Vec<u8>,
    /// ` +0100` or ` +0200`.
    tail: &'static [u8],
}

impl ClfClock {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        Self {
            hour: i64::MIN,
            head: Vec::with_capacity(16),
            tail: b" +0100",
        }
    }

    /// Appends `utc` exactly as [`push_clf`] would.
    pub(crate) fn push(&mut self, buf: &mut Vec<u8>, utc: i64) {
        let hour = utc.div_euclid(3600);
        if hour != self.hour {
            self.hour = hour;
            self.head.clear();
            push_clf(&mut self.head, hour * 3600);
            // Keep `dd/Mon/yyyy:HH:`, drop `MM:SS +hhmm`.
            self.tail = if self.head.ends_with(b"+0200") {
                b" +0200"
            } else {
                b" +0100"
            };
            self.head.truncate(self.head.len().saturating_sub(11));
        }
        buf.extend_from_slice(&self.head);
        let s = utc.rem_euclid(3600) as u64;
        push_pad(buf, s / 60, 2);
        buf.push(b':');
        push_pad(buf, s % 60, 2);
        buf.extend_from_slice(self.tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    fn text(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut b = Vec::new();
        f(&mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn civil_conversion_round_trips_against_chrono() {
        for days in (-30_000..40_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            let date = NaiveDate::from_ymd_opt(y as i32, m, d).unwrap();
            assert_eq!(
                i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE,
                days
            );
            assert_eq!(days_from_civil(y, m, d), days);
            assert_eq!(
                weekday(days),
                date.weekday().num_days_from_monday() as usize
            );
        }
    }

    #[test]
    fn rome_offset_follows_eu_rule_in_2026() {
        // 2026's switches are on 29 March and 25 October, both at 01:00 UTC.
        let spring = days_from_civil(2026, 3, 29) * DAY + 3600;
        let autumn = days_from_civil(2026, 10, 25) * DAY + 3600;
        assert_eq!(rome_offset(spring - 1), 3600);
        assert_eq!(rome_offset(spring), 7200);
        assert_eq!(rome_offset(autumn - 1), 7200);
        assert_eq!(rome_offset(autumn), 3600);
        assert_eq!(
            text(|b| push_clf(b, spring - 1)),
            "29/Mar/2026:01:59:59 +0100"
        );
        assert_eq!(text(|b| push_clf(b, spring)), "29/Mar/2026:03:00:00 +0200");
        assert_eq!(text(|b| push_clf(b, autumn)), "25/Oct/2026:02:00:00 +0100");
    }

    #[test]
    fn local_to_utc_inverts_utc_to_local_outside_the_gap() {
        let base = days_from_civil(2026, 1, 1) * DAY;
        for step in 0..(365 * 24 * 4) {
            let utc = base + step * 900 + 17;
            let local = utc_to_local(utc);
            let back = local_to_utc(local);
            // Only the repeated autumn hour is ambiguous, and it resolves to its summer reading.
            assert!(back == utc || back == utc - 3600, "{utc} {local} {back}");
            assert_eq!(utc_to_local(back), local);
        }
    }

    #[test]
    fn clf_clock_matches_push_clf_across_dst_changes() {
        let mut clock = ClfClock::new();
        for base in [
            days_from_civil(2026, 3, 28),
            days_from_civil(2026, 10, 24),
            days_from_civil(2026, 12, 31),
        ] {
            for step in 0..(3 * 24 * 60) {
                let utc = base * DAY + step * 61;
                let (mut a, mut b) = (Vec::new(), Vec::new());
                clock.push(&mut a, utc);
                push_clf(&mut b, utc);
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn formats_match_each_export() {
        let local = days_from_civil(2026, 11, 21) * DAY + 9 * 3600 + 5 * 60 + 33;
        assert_eq!(text(|b| push_iso(b, local)), "2026-11-21 09:05:33");
        assert_eq!(text(|b| push_italian(b, local)), "21/11/2026 09:05:33");
        assert_eq!(
            text(|b| push_clf(b, local_to_utc(local))),
            "21/Nov/2026:09:05:33 +0100"
        );
        assert_eq!(text(|b| push_decimal_comma(b, 354)), "35,4");
        assert_eq!(text(|b| push_decimal_comma(b, 7)), "0,7");
        assert_eq!(text(|b| push_pad(b, 7, 3)), "007");
        assert_eq!(text(|b| push_num(b, 0)), "0");
        assert_eq!(date_string(days_from_civil(2026, 2, 3)), "2026-02-03");
    }
}
