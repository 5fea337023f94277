//! Phone numbers as call-center exports and CRMs write them, to E.164
//! (`+390511234567`), parsed and checked against libphonenumber's
//! numbering plans (the `phonenumber` crate). Withheld callers and junk
//! are `None`: they name no one.
//!
//! The crate is given a clean string: separators dropped, `00` read as
//! `+`, and a bare `39` followed by a whole Italian number read as the
//! country code, as the crate itself does not (whisperfish/rust-phonenumber
//! #29; libPhoneNumber-iOS #263 reads `3906…` as a national number). An
//! Italian landline keeps its leading 0 after `+39`.

use std::str::FromStr;

use phonenumber::country;

/// How exports write a caller who withheld the number, or none at all
/// (compared in lower case).
const WITHHELD: &[&str] = &[
    "",
    "0",
    "-",
    "anonymous",
    "anonimo",
    "privato",
    "numero privato",
    "riservato",
    "sconosciuto",
    "non disponibile",
    "private",
    "unknown",
    "unavailable",
    "withheld",
    "restricted",
    "n/a",
    "n.d.",
    "nd",
    "null",
    "none",
];

/// Why a region name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region `{0}`: name a country by its two-letter ISO 3166 code, such as `IT`")]
pub struct UnknownRegion(pub String);

/// The country a national number (one without `+` or `00`) belongs to.
pub fn region(name: &str) -> Result<country::Id, UnknownRegion> {
    country::Id::from_str(&name.trim().to_ascii_uppercase())
        .map_err(|_| UnknownRegion(name.to_string()))
}

/// Whether `value` is how an export writes a withheld caller, or no
/// number at all.
pub fn is_withheld(value: &str) -> bool {
    let text = value.trim().to_ascii_lowercase();
    let user = ["tel:", "sip:", "sips:"]
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
        .map_or(text.as_str(), |rest| {
            rest.split(['@', ';']).next().unwrap_or("")
        });
    WITHHELD.contains(&user.trim())
}

/// A number in E.164 (`+` and digits), or `None` when `value` is a
/// withheld caller (`anonymous`, `0`, `sip:anonymous@anonymous.invalid`),
/// holds anything but digits and separators, or is no valid number of its
/// country. National numbers are read as numbers of `region`.
pub fn normalize(value: &str, region: country::Id) -> Option<String> {
    if is_withheld(value) {
        return None;
    }
    let text = value.trim().to_ascii_lowercase();
    let text = ["tel:", "sip:", "sips:"]
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
        .map_or(text.as_str(), |rest| {
            rest.split(['@', ';']).next().unwrap_or("")
        });
    let mut digits = String::with_capacity(text.len() + 1);
    for c in text.trim().chars() {
        match c {
            '0'..='9' => digits.push(c),
            // Before any digit: `+39 …`, `(+39) …`.
            '+' if digits.is_empty() => digits.push(c),
            ' ' | '.' | '-' | '/' | '(' | ')' => {}
            _ => return None,
        }
    }
    if let Some(rest) = digits.strip_prefix("00") {
        digits = format!("+{rest}");
    }
    let national = digits.trim_start_matches('+');
    if national.len() < 6 || national.bytes().all(|b| b == national.as_bytes()[0]) {
        return None;
    }
    // A national Italian number is a mobile of 9–10 digits starting with 3
    // or a landline starting with 0: eleven or more digits starting with
    // 39 can only be the country code and a number.
    if region == country::Id::IT && !digits.starts_with('+') {
        // The crate reads a national `39…` (a 39x mobile) as the country
        // code and loses a landline's 0 unless told the country: an
        // Italian number is given to it whole, with its country code.
        if !(digits.starts_with("39") && digits.len() >= 11) {
            digits.insert_str(0, "39");
        }
        digits.insert(0, '+');
    }
    // A number with its country code is read as that country's, whatever
    // the region (the crate keeps an Italian landline's 0 only so).
    let country = (!digits.starts_with('+')).then_some(region);
    let number = phonenumber::parse(country, &digits).ok()?;
    phonenumber::is_valid(&number)
        .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_e164_whatever_the_export_wrote() {
        let it = region("IT").unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            // One Bologna landline, written six ways: the 0 stays.
            ("+39 051 123 4567", Some("+390511234567")),
            ("(+39) 051 1234567", Some("+390511234567")),
            ("0039 051 1234567", Some("+390511234567")),
            ("00390511234567", Some("+390511234567")),
            ("051/1234567", Some("+390511234567")),
            ("051.123.4567", Some("+390511234567")),
            ("390511234567", Some("+390511234567")),
            ("tel:+39-051-1234567", Some("+390511234567")),
            // A Rome landline and a mobile.
            ("06 6988 1234", Some("+390669881234")),
            ("3471234567", Some("+393471234567")),
            ("347 123 4567", Some("+393471234567")),
            ("+39 347-1234567", Some("+393471234567")),
            ("393471234567", Some("+393471234567")),
            ("(347) 1234567", Some("+393471234567")),
            // A mobile whose own digits start with 39.
            ("3921234567", Some("+393921234567")),
            // Abroad.
            ("+33 1 42 68 53 00", Some("+33142685300")),
            ("0044 20 7946 0958", Some("+442079460958")),
            // Withheld callers.
            ("", None),
            ("0", None),
            ("anonymous", None),
            ("Anonymous", None),
            ("ANONIMO", None),
            ("Numero privato", None),
            ("sip:anonymous@anonymous.invalid", None),
            // Junk.
            ("0000000000", None),
            ("3333333333", None),
            ("12345", None),
            ("347123456789012", None),
            ("051 1234567 int. 3", None),
            ("chiamare dopo le 18", None),
            ("+", None),
        ];
        for (written, expected) in cases {
            assert_eq!(normalize(written, it).as_deref(), *expected, "{written:?}");
        }
    }

    #[test]
    fn national_numbers_follow_the_default_region() {
        let fr = region("fr").unwrap();
        assert_eq!(
            normalize("01 42 68 53 00", fr).as_deref(),
            Some("+33142685300")
        );
        assert_eq!(
            normalize("+39 051 1234567", fr).as_deref(),
            Some("+390511234567")
        );
        assert_eq!(region("XX"), Err(UnknownRegion("XX".into())));
    }
}
