//! Personal data recognised by its content, for what civica shows or
//! keeps of a value (check results, messages): a codice fiscale with a
//! valid check character (also behind SPID's `TINIT-`), an e-mail address,
//! an Italian phone number, an IPv4 or IPv6 address, an IBAN with a valid
//! check. Checksums keep numbers and codes that only look alike out.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use crate::identity::codice_fiscale;

/// What kind of personal data a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PersonalKind {
    /// A codice fiscale.
    CodiceFiscale,
    /// An e-mail address.
    Email,
    /// An Italian phone number.
    Phone,
    /// An IP address.
    IpAddress,
    /// An IBAN.
    Iban,
}

impl PersonalKind {
    /// How a hidden value of this kind is shown: `<codice fiscale>`.
    pub fn placeholder(self) -> &'static str {
        match self {
            PersonalKind::CodiceFiscale => "<codice fiscale>",
            PersonalKind::Email => "<e-mail>",
            PersonalKind::Phone => "<phone>",
            PersonalKind::IpAddress => "<ip address>",
            PersonalKind::Iban => "<iban>",
        }
    }

    /// The kind in a sentence: `a codice fiscale`.
    pub fn description(self) -> &'static str {
        match self {
            PersonalKind::CodiceFiscale => "a codice fiscale",
            PersonalKind::Email => "an e-mail address",
            PersonalKind::Phone => "a phone number",
            PersonalKind::IpAddress => "an IP address",
            PersonalKind::Iban => "an IBAN",
        }
    }

    /// How sensitive a column holding values of this kind is.
    pub fn sensitivity(self) -> crate::pipeline::Sensitivity {
        use crate::pipeline::Sensitivity;
        match self {
            PersonalKind::Email | PersonalKind::Phone => Sensitivity::Contact,
            PersonalKind::CodiceFiscale | PersonalKind::IpAddress | PersonalKind::Iban => {
                Sensitivity::Identifier
            }
        }
    }
}

/// The kind of personal data `text` is or holds among its words: the
/// whole value as [`detect`] sees it, else a word of it that is a codice
/// fiscale, an e-mail, an IP address or an IBAN. Phone numbers count only
/// as whole values: numbers in free text are too often something else.
pub fn detect_in_text(text: &str) -> Option<PersonalKind> {
    if let Some(kind) = detect(text) {
        return Some(kind);
    }
    text.split(|c: char| c.is_whitespace() || ",;()[]{}\"'<>=|".contains(c))
        .map(|word| word.trim_end_matches(['.', ':', '!', '?']))
        .filter(|word| word.len() >= 7)
        .find_map(|word| detect(word).filter(|kind| *kind != PersonalKind::Phone))
}

/// The kind of personal data `value` is, if it is one.
pub fn detect(value: &str) -> Option<PersonalKind> {
    static EMAIL: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$").ok()
    });
    let value = value.trim();
    if codice_fiscale::normalize(value).is_some_and(|cf| codice_fiscale::is_valid(cf.as_bytes())) {
        return Some(PersonalKind::CodiceFiscale);
    }
    if EMAIL.as_ref().is_some_and(|re| re.is_match(value)) {
        return Some(PersonalKind::Email);
    }
    if value
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| !is_masked(ip))
    {
        return Some(PersonalKind::IpAddress);
    }
    if is_iban(&value.to_ascii_uppercase()) {
        return Some(PersonalKind::Iban);
    }
    if is_italian_phone(value) {
        return Some(PersonalKind::Phone);
    }
    None
}

/// An address masked as `ip_mask` masks it (IPv4 to /24 or /16, IPv6 to
/// /48): no longer a whole address.
fn is_masked(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.octets()[3] == 0,
        std::net::IpAddr::V6(v6) => v6.segments()[3..].iter().all(|s| *s == 0),
    }
}

/// `value`, or the placeholder of its kind when it is personal data.
pub fn redact_value(value: &str) -> Cow<'_, str> {
    match detect(value) {
        Some(kind) => Cow::Borrowed(kind.placeholder()),
        None => Cow::Borrowed(value),
    }
}

/// A message with every value in it that is personal data replaced by its
/// kind's placeholder: a quoted value (`'+39 333 123 4567'`) as a whole,
/// then each word. Unlike [`detect_in_text`], phone numbers count among the
/// words: what an error quotes is a value, and hiding a number that only
/// looks like a phone costs a message little.
pub fn redact_text(text: &str) -> String {
    static QUOTED: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r#"'([^'\n]{1,64})'|"([^"\n]{1,64})""#).ok());
    let quoted = match QUOTED.as_ref() {
        Some(re) => re.replace_all(text, |caps: &regex::Captures<'_>| {
            let inner = caps
                .get(1)
                .or_else(|| caps.get(2))
                .map_or("", |m| m.as_str());
            match detect(inner) {
                Some(kind) => kind.placeholder().to_string(),
                None => caps[0].to_string(),
            }
        }),
        None => Cow::Borrowed(text),
    };
    let mut shown = String::with_capacity(quoted.len());
    let mut word = String::new();
    let flush = |word: &mut String, shown: &mut String| {
        let trimmed = word.trim_end_matches(['.', ':', '!', '?']);
        match detect(trimmed) {
            Some(kind) if trimmed.len() >= 7 => {
                shown.push_str(kind.placeholder());
                shown.push_str(&word[trimmed.len()..]);
            }
            _ => shown.push_str(word),
        }
        word.clear();
    };
    for c in quoted.chars() {
        if c.is_whitespace() || ",;()[]{}\"'<>=|`".contains(c) {
            flush(&mut word, &mut shown);
            shown.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut shown);
    shown
}

/// The length of an IBAN of each country that issues them (the SWIFT
/// IBAN registry): a value of another length is no IBAN, however its
/// check digits fall (a 32-character keyed pseudonym passes mod 97 once in
/// 97).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// An IBAN: a country that issues them, two check digits and the
/// country's number of letters and digits, whose ISO 7064 mod-97
/// remainder is 1 (blanks ignored).
fn is_iban(upper: &str) -> bool {
    let compact: String = upper.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = compact.as_bytes();
    let known_length = compact.get(..2).is_some_and(|country| {
        IBAN_LENGTHS
            .iter()
            .any(|(c, len)| *c == country && *len == bytes.len())
    });
    if !known_length
        || !bytes[..2].iter().all(u8::is_ascii_uppercase)
        || !bytes[2..4].iter().all(u8::is_ascii_digit)
        || !bytes.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let rotated = bytes[4..].iter().chain(&bytes[..4]);
    let mut remainder: u32 = 0;
    for &b in rotated {
        let digits = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            _ => u32::from(b - b'A') + 10,
        };
        let width = if digits >= 10 { 100 } else { 10 };
        remainder = (remainder * width + digits) % 97;
    }
    remainder == 1
}

/// An Italian number as call-center exports write it: `+39` or `0039`
/// optional, then a mobile (`3` and 9 or 10 digits) or a landline (`0` and
/// 5 to 10 digits), with blanks, dots, dashes or slashes between digits.
fn is_italian_phone(value: &str) -> bool {
    if !value
        .chars()
        .all(|c| c.is_ascii_digit() || " .-/+()".contains(c))
    {
        return false;
    }
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let international = value.trim_start().starts_with('+') || digits.starts_with("0039");
    let national = if value.trim_start().starts_with('+') {
        match digits.strip_prefix("39") {
            Some(rest) => rest,
            None => return false,
        }
    } else {
        digits.strip_prefix("0039").unwrap_or(&digits)
    };
    // Without a country prefix, a landline needs 8 digits or more: shorter
    // codes with a leading zero are ISTAT codes (`037006`) and the like.
    let shortest_landline = if international { 6 } else { 8 };
    match national.as_bytes().first() {
        Some(b'3') => (10..=11).contains(&national.len()),
        Some(b'0') => (shortest_landline..=11).contains(&national.len()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_is_recognised_by_content_and_checksum() {
        for (value, kind) in [
            ("RSSMRA85T10A562S", Some(PersonalKind::CodiceFiscale)),
            ("TINIT-RSSMRA85T10A562S", Some(PersonalKind::CodiceFiscale)),
            ("rssmra85t10a562s", Some(PersonalKind::CodiceFiscale)),
            // The wrong check character: not a codice fiscale.
            ("RSSMRA85T10A562T", None),
            ("anna.rossi@comune.bologna.it", Some(PersonalKind::Email)),
            ("not an@address", None),
            ("+39 333 123 4567", Some(PersonalKind::Phone)),
            ("0039 051 1234567", Some(PersonalKind::Phone)),
            ("051/1234567", Some(PersonalKind::Phone)),
            ("3471234567", Some(PersonalKind::Phone)),
            // An ISTAT code and a postcode are not phone numbers.
            ("037006", None),
            ("40127", None),
            ("12345", None),
            ("100001", None),
            ("83.149.9.216", Some(PersonalKind::IpAddress)),
            ("2001:db8::1", Some(PersonalKind::IpAddress)),
            // Masked as `ip_mask` masks them: not whole addresses.
            ("93.44.0.0", None),
            ("93.44.1.0", None),
            ("2001:db8:1::", None),
            (
                "IT60 X054 2811 1010 0000 0123 456",
                Some(PersonalKind::Iban),
            ),
            ("IT60X0542811101000000123457", None),
            ("DE89 3704 0044 0532 0130 00", Some(PersonalKind::Iban)),
            // A keyed pseudonym whose check digits happen to fall right:
            // no country has IBANs of 32 characters starting `ED`.
            ("ed50f03daa2d6ffef589c88901eeb7e6", None),
            ("2026-11-21", None),
            ("scuola", None),
        ] {
            assert_eq!(detect(value), kind, "{value}");
        }
        assert_eq!(redact_value("RSSMRA85T10A562S"), "<codice fiscale>");
        assert_eq!(redact_value("140"), "140");
    }

    #[test]
    fn personal_data_is_found_among_the_words_of_free_text() {
        for (text, kind) in [
            (
                "richiesta di RSSMRA85T10A562S, da richiamare",
                Some(PersonalKind::CodiceFiscale),
            ),
            (
                "scrivere a anna.rossi@comune.bologna.it.",
                Some(PersonalKind::Email),
            ),
            ("client=10.1.2.3 refused", Some(PersonalKind::IpAddress)),
            ("3471234567", Some(PersonalKind::Phone)),
            // Numbers in text are not phones, nor versions addresses.
            ("pratica 0512345678 chiusa", None),
            ("Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36", None),
            ("/servizi/scuola/iscrizioni", None),
        ] {
            assert_eq!(detect_in_text(text), kind, "{text}");
        }
    }

    #[test]
    fn messages_show_the_kind_of_a_personal_value_never_the_value() {
        for (message, shown) in [
            (
                "Cast error: Cannot cast string 'RSSMRA85T10A562S' to value of Int64 type",
                "Cast error: Cannot cast string <codice fiscale> to value of Int64 type",
            ),
            (
                "Cannot cast string '+39 333 123 4567' to value of Int64 type",
                "Cannot cast string <phone> to value of Int64 type",
            ),
            (
                "value 3471234567 out of range; from anna.rossi@comune.bologna.it.",
                "value <phone> out of range; from <e-mail>.",
            ),
            ("client (10.1.2.3) refused", "client (<ip address>) refused"),
            // Paths, line numbers, sizes and dates are left as they are.
            (
                "source `calls` (/lake/raw/calls/2026-11-21.csv:1204): `started_at` is not a date: '2026-13-01'",
                "source `calls` (/lake/raw/calls/2026-11-21.csv:1204): `started_at` is not a date: '2026-13-01'",
            ),
        ] {
            assert_eq!(redact_text(message), shown, "{message}");
        }
    }
}
