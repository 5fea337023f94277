//! Italian fiscal codes (codice fiscale): the name, date and place fields, the official check character and omocodia. The demo computes its citizens' codes with it; the privacy detectors recognise a code by its check character.

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

/// Whether a code is well-formed and carries the right check character
/// (omocodic codes, with letters for digits, included).
pub fn is_valid(cf: &[u8]) -> bool {
    cf.len() == 16
        && cf
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && cf[..6].iter().all(u8::is_ascii_uppercase)
        && MONTH_LETTERS.contains(&cf[8])
        && cf[11].is_ascii_uppercase()
        && check_char(&cf[..15]) == cf[15]
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
