//! Italian fiscal codes (codice fiscale): the name, date and place fields, the official check character, omocodia and the 11-digit temporary codes. The demo computes its citizens' codes with it; the privacy detectors recognise a code by its check character; the identity functions (`cf_normalize`, `cf_is_valid`, `cf_birth_date`, `cf_sex`, `cf_comune`) read codes written as real exports write them.
//!
//! An omocodic code (digits replaced by letters, when two people would
//! otherwise share a code) belongs to another person than its base code:
//! nothing here maps one onto the other. Letters are read back as digits
//! only to decode the birth date, sex and comune.

const MONTH_LETTERS: [u8; 12] = *b"ABCDEHLMPRST";

/// Values of characters in odd (1st, 3rd, …) positions, indexed by letter; digits use the first ten.
const ODD_VALUES: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// Letters that replace digits, rightmost first, when two people would otherwise share a code.
const OMOCODIA_LETTERS: [u8; 10] = *b"LMNPQRSTUV";
const OMOCODIA_POSITIONS: [usize; 7] = [14, 13, 12, 10, 9, 7, 6];

fn is_vowel(c: u8) -> bool {
    matches!(c, b'A' | b'E' | b'I' | b'O' | b'U')
}

fn letters(s: &str) -> Vec<u8> {
    ascii_letters(s)
        .into_bytes()
        .iter()
        .map(u8::to_ascii_uppercase)
        .collect()
}

fn pad3(consonants: Vec<u8>, vowels: Vec<u8>) -> [u8; 3] {
    let mut out = [b'X'; 3];
    for (slot, c) in out.iter_mut().zip(consonants.into_iter().chain(vowels)) {
        *slot = c;
    }
    out
}

/// The three surname letters: consonants, then vowels, then `X`.
pub fn surname_code(surname: &str) -> [u8; 3] {
    let l = letters(surname);
    let (v, c): (Vec<u8>, Vec<u8>) = l.into_iter().partition(|&c| is_vowel(c));
    pad3(c, v)
}

/// The three first-name letters: the 1st, 3rd and 4th consonant when there are four or more, else as for surnames.
pub fn name_code(name: &str) -> [u8; 3] {
    let l = letters(name);
    let (v, c): (Vec<u8>, Vec<u8>) = l.into_iter().partition(|&c| is_vowel(c));
    if c.len() >= 4 {
        [c[0], c[2], c[3]]
    } else {
        pad3(c, v)
    }
}

fn char_value(c: u8, odd: bool) -> u32 {
    let idx = match c {
        b'0'..=b'9' => usize::from(c - b'0'),
        b'A'..=b'Z' => usize::from(c - b'A'),
        _ => 0,
    };
    if odd { ODD_VALUES[idx] } else { idx as u32 }
}

/// The check character over the first fifteen characters of a code.
pub fn check_char(first15: &[u8]) -> u8 {
    let sum: u32 = first15
        .iter()
        .take(15)
        .enumerate()
        .map(|(i, &c)| char_value(c, i % 2 == 0))
        .sum();
    b'A' + (sum % 26) as u8
}

/// The fiscal code of a person; `female` adds 40 to the day of birth.
pub fn compute(
    surname: &str,
    name: &str,
    (year, month, day): (i64, u32, u32),
    female: bool,
    place: &str,
) -> [u8; 16] {
    let mut cf = [b'X'; 16];
    cf[0..3].copy_from_slice(&surname_code(surname));
    cf[3..6].copy_from_slice(&name_code(name));
    let yy = year.rem_euclid(100) as u8;
    cf[6] = b'0' + yy / 10;
    cf[7] = b'0' + yy % 10;
    cf[8] = MONTH_LETTERS[(month as usize).clamp(1, 12) - 1];
    let dd = day.clamp(1, 31) as u8 + if female { 40 } else { 0 };
    cf[9] = b'0' + dd / 10;
    cf[10] = b'0' + dd % 10;
    for (slot, &c) in cf[11..15].iter_mut().zip(place.as_bytes()) {
        *slot = c.to_ascii_uppercase();
    }
    cf[15] = check_char(&cf[..15]);
    cf
}

/// The omocodic variant of `level` (1–7): that many digits, rightmost first, become letters.
pub fn omocode(cf: &[u8; 16], level: usize) -> [u8; 16] {
    let mut out = *cf;
    for &pos in OMOCODIA_POSITIONS.iter().take(level) {
        if out[pos].is_ascii_digit() {
            out[pos] = OMOCODIA_LETTERS[usize::from(out[pos] - b'0')];
        }
    }
    out[15] = check_char(&out[..15]);
    out
}

/// Whether a 16-character code is well-formed (letters where the name
/// and month letters go, digits or their omocodic letters where the
/// digits go) and carries the right check character.
pub fn is_valid(cf: &[u8]) -> bool {
    is_well_formed(cf) && check_char(&cf[..15]) == cf[15]
}

/// Whether a 16-character code has the shape of one, whatever its check
/// character.
fn is_well_formed(cf: &[u8]) -> bool {
    cf.len() == 16
        && cf.iter().enumerate().all(|(i, &c)| {
            if DIGIT_POSITIONS.contains(&i) {
                c.is_ascii_digit() || OMOCODIA_LETTERS.contains(&c)
            } else {
                c.is_ascii_uppercase()
            }
        })
        && MONTH_LETTERS.contains(&cf[8])
}

/// Positions of digits in a code (omocodia may turn each into a letter).
const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

/// Whether an 11-digit temporary code (or partita IVA) carries the right
/// check digit: digits in odd places summed, those in even places doubled
/// (less 9 when over 9), and the last digit bringing the sum to a multiple
/// of ten.
pub fn is_valid_temporary(code: &[u8]) -> bool {
    if code.len() != 11 || !code.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = code[..10]
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 {
                d
            } else if d * 2 > 9 {
                d * 2 - 9
            } else {
                d * 2
            }
        })
        .sum();
    (10 - sum % 10) % 10 == u32::from(code[10] - b'0')
}

/// A code as written in an export, in its one canonical form: spaces
/// dropped, upper case, without the `TINIT-` prefix of SPID and CIE
/// (`tinit-rssmra85t10a562s` is `RSSMRA85T10A562S`). `None` when the value
/// has neither the shape of a 16-character code nor eleven digits; the
/// check character is not tested ([`is_valid_code`] does). Omocodic codes
/// stay as written.
pub fn normalize(value: &str) -> Option<String> {
    let compact: String = value
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let code = compact.strip_prefix("TINIT-").unwrap_or(&compact);
    let bytes = code.as_bytes();
    (is_well_formed(bytes) || (bytes.len() == 11 && bytes.iter().all(u8::is_ascii_digit)))
        .then(|| code.to_string())
}

/// Whether a value, once normalised, is a valid code: 16 characters with
/// the right check character (omocodic ones included), or a temporary
/// 11-digit code with the right check digit.
pub fn is_valid_code(value: &str) -> bool {
    normalize(value).is_some_and(|code| {
        let bytes = code.as_bytes();
        is_valid(bytes) || is_valid_temporary(bytes)
    })
}

/// Whether a valid code has letters where its digits go.
pub fn is_omocodic(cf: &[u8]) -> bool {
    is_valid(cf) && DIGIT_POSITIONS.iter().any(|&i| cf[i].is_ascii_uppercase())
}

/// A valid 16-character code with its omocodic letters read back as
/// digits, to decode its date and place; `None` for anything else.
fn decoded(value: &str) -> Option<[u8; 16]> {
    let code = normalize(value)?;
    let mut cf: [u8; 16] = code.as_bytes().try_into().ok()?;
    if !is_valid(&cf) {
        return None;
    }
    for &i in &DIGIT_POSITIONS {
        if let Some(digit) = OMOCODIA_LETTERS.iter().position(|&l| l == cf[i]) {
            cf[i] = b'0' + digit as u8;
        }
    }
    Some(cf)
}

fn two_digits(pair: &[u8]) -> u32 {
    u32::from(pair[0] - b'0') * 10 + u32::from(pair[1] - b'0')
}

/// The day of birth as written (41–71 for women) of a valid code.
fn coded_day(cf: &[u8; 16]) -> Option<u32> {
    let day = two_digits(&cf[9..11]);
    matches!(day, 1..=31 | 41..=71).then_some(day)
}

/// The birth date a valid code gives. The code has two digits of the
/// year: the date is the latest one with those digits not after
/// `as_of` (a child born in 2020 and someone born in 1920 share them; the
/// CRM's birth date settles it). `None` for an invalid code, a temporary
/// one, or a date that does not exist.
pub fn birth_date(value: &str, as_of: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
    use chrono::Datelike;
    let cf = decoded(value)?;
    let yy = two_digits(&cf[6..8]) as i32;
    let month = MONTH_LETTERS.iter().position(|&m| m == cf[8])? as u32 + 1;
    let day = coded_day(&cf)? % 40;
    let century = as_of.year() - as_of.year().rem_euclid(100);
    [century + yy, century - 100 + yy]
        .into_iter()
        .filter_map(|year| chrono::NaiveDate::from_ymd_opt(year, month, day))
        .find(|date| *date <= as_of)
}

/// `F` or `M`, as a valid code says (women's day of birth is 40 more).
pub fn sex(value: &str) -> Option<&'static str> {
    let day = coded_day(&decoded(value)?)?;
    Some(if day > 40 { "F" } else { "M" })
}

/// The cadastral (Belfiore) code of the birthplace of a valid code: a
/// comune (`A944`, Bologna) or, with `Z`, a foreign country (`Z404`).
pub fn comune(value: &str) -> Option<String> {
    let cf = decoded(value)?;
    Some(String::from_utf8_lossy(&cf[11..15]).into_owned())
}

/// Folds accented Latin letters to their base letter and keeps only ASCII letters, lower case.
pub fn ascii_letters(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let c = match c {
                'à' | 'á' | 'À' | 'Á' => 'a',
                'è' | 'é' | 'È' | 'É' => 'e',
                'ì' | 'í' | 'Ì' | 'Í' => 'i',
                'ò' | 'ó' | 'Ò' | 'Ó' => 'o',
                'ù' | 'ú' | 'Ù' | 'Ú' => 'u',
                other => other,
            };
            c.is_ascii_alphabetic().then(|| c.to_ascii_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> chrono::NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn codes_are_normalised_from_how_exports_write_them() {
        let cases: &[(&str, Option<&str>)] = &[
            ("RSSMRA85T10A562S", Some("RSSMRA85T10A562S")),
            (" rssmra85t10a562s ", Some("RSSMRA85T10A562S")),
            ("RSS MRA 85T10 A562S", Some("RSSMRA85T10A562S")),
            ("TINIT-RSSMRA85T10A562S", Some("RSSMRA85T10A562S")),
            ("tinit-rssmra85t10a562s", Some("RSSMRA85T10A562S")),
            // Omocodic: kept as written, never mapped to its base code.
            ("RSSMRA85T10A56NH", Some("RSSMRA85T10A56NH")),
            // Shape only: a wrong check character is still a code.
            ("RSSMRA85T10A562T", Some("RSSMRA85T10A562T")),
            ("01234567897", Some("01234567897")),
            ("RSSMRA85T10A562", None),
            ("RSSMRA85X10A562S", None),
            ("1234RA85T10A562S", None),
            ("0123456789", None),
            ("", None),
            ("n/d", None),
        ];
        for (written, expected) in cases {
            assert_eq!(normalize(written).as_deref(), *expected, "{written:?}");
        }
    }

    #[test]
    fn validity_checks_the_check_character_of_base_omocodic_and_temporary_codes() {
        let base = compute("Rossi", "Mario", (1985, 12, 10), false, "A562");
        let omocodic = s(omocode(&base, 1));
        let cases: &[(&str, bool)] = &[
            ("RSSMRA85T10A562S", true),
            ("tinit-rssmra85t10a562s", true),
            (&omocodic, true),
            ("RSSMRA85T10A562T", false),
            // The placeholder of load tests: well-formed, wrong check.
            ("AAAAAA00A00A000A", false),
            // Temporary codes: the partita IVA's check digit.
            ("01234567897", true),
            ("01234567890", false),
            ("00000000000", true),
            ("RSSMRA85T10A562", false),
            ("", false),
        ];
        for (written, expected) in cases {
            assert_eq!(is_valid_code(written), *expected, "{written:?}");
        }
        assert!(is_omocodic(omocodic.as_bytes()));
        assert!(!is_omocodic(b"RSSMRA85T10A562S"));
        assert_ne!(normalize(&omocodic), normalize("RSSMRA85T10A562S"));
    }

    #[test]
    fn date_sex_and_comune_are_decoded_from_valid_codes_only() {
        let as_of = day("2026-12-01");
        let base = compute("Rossi", "Mario", (1985, 12, 10), false, "A562");
        let omocodic = s(omocode(&base, 7));
        let anna = s(compute("Bianchi", "Anna", (1990, 3, 5), true, "A944"));
        let child = s(compute("Verdi", "Luca", (2020, 2, 29), false, "Z404"));
        let elder = s(compute("Neri", "Ada", (1925, 4, 9), true, "F205"));
        // (code, birth date, sex, comune)
        type Decoded<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let cases: &[Decoded] = &[
            (
                "RSSMRA85T10A562S",
                Some("1985-12-10"),
                Some("M"),
                Some("A562"),
            ),
            (&omocodic, Some("1985-12-10"), Some("M"), Some("A562")),
            (&anna, Some("1990-03-05"), Some("F"), Some("A944")),
            (&child, Some("2020-02-29"), Some("M"), Some("Z404")),
            // Two digits of the year: the latest such year not after as_of.
            (&elder, Some("2025-04-09"), Some("F"), Some("F205")),
            ("RSSMRA85T10A562T", None, None, None),
            ("01234567897", None, None, None),
            ("", None, None, None),
        ];
        for (code, date, sx, place) in cases {
            let decoded = birth_date(code, as_of).map(|d| d.to_string());
            assert_eq!(decoded.as_deref(), *date, "birth date of {code}");
            assert_eq!(sex(code), *sx, "sex of {code}");
            assert_eq!(comune(code).as_deref(), *place, "comune of {code}");
        }
        assert_eq!(
            birth_date(&elder, day("2025-01-01"))
                .map(|d| d.to_string())
                .as_deref(),
            Some("1925-04-09")
        );
        // 31 February does not exist, whatever the check character says.
        let mut impossible = *b"RSSMRA85B31A562X";
        impossible[15] = check_char(&impossible[..15]);
        assert_eq!(birth_date(&s(impossible), as_of), None);
        assert_eq!(sex(&s(impossible)), Some("M"));
    }

    #[test]
    fn ascii_letters_folds_accents_and_drops_punctuation() {
        assert_eq!(ascii_letters("Nicolò"), "nicolo");
        assert_eq!(ascii_letters("D'Angelo"), "dangelo");
        assert_eq!(ascii_letters("Degli Esposti"), "degliesposti");
    }

    fn s(cf: [u8; 16]) -> String {
        String::from_utf8(cf.to_vec()).unwrap()
    }

    #[test]
    fn codice_fiscale_check_character_is_valid() {
        // The textbook examples; the last three were worked out by hand with the official tables.
        assert_eq!(check_char(b"RSSMRA85T10A562"), b'S');
        assert_eq!(
            s(compute("Rossi", "Mario", (1985, 12, 10), false, "A562")),
            "RSSMRA85T10A562S"
        );
        assert_eq!(
            s(compute("Moretti", "Matteo", (1925, 4, 9), false, "F205")),
            "MRTMTT25D09F205Z"
        );
        assert_eq!(
            s(compute("Bianchi", "Anna", (1990, 3, 5), true, "A944")),
            "BNCNNA90C45A944Y"
        );
        assert_eq!(
            s(compute(
                "Bianchi",
                "Gianfranco",
                (1962, 7, 14),
                false,
                "H501"
            )),
            "BNCGFR62L14H501B"
        );
        assert!(is_valid(b"RSSMRA85T10A562S"));
        assert!(!is_valid(b"RSSMRA85T10A562T"));
    }

    #[test]
    fn name_and_surname_codes_follow_the_padding_rules() {
        assert_eq!(&surname_code("Fo"), b"FOX");
        assert_eq!(&name_code("Ugo"), b"GUO");
        assert_eq!(&surname_code("D'Angelo"), b"DNG");
        assert_eq!(&name_code("Nicolò"), b"NCL");
        assert_eq!(&surname_code("Degli Esposti"), b"DGL");
        assert_eq!(&name_code("Li"), b"LIX");
    }

    #[test]
    fn omocodic_variants_stay_valid_and_distinct() {
        let base = compute("Rossi", "Mario", (1985, 12, 10), false, "A562");
        let first = omocode(&base, 1);
        assert_eq!(s(first)[..15], *"RSSMRA85T10A56N");
        for level in 1..=7 {
            let v = omocode(&base, level);
            assert!(is_valid(&v), "{}", s(v));
            assert_ne!(v, base);
        }
    }
}
