//! The desk (sportello) appointments and the e-mail contact log: one row
//! for each request a citizen opened at a desk or by e-mail, written as
//! front offices write them (a codice fiscale in lower case, spaced out,
//! mistyped or missing; an address in another case, with a display name,
//! or someone else's), plus visitors and senders the CRM does not know.
//! Each row's truth says whose it is when what it holds can tell.
//!
//! Their randomness comes from streams of their own, so every other file
//! of the lake is what it was before these existed.

use super::clock::{push_iso, push_num};
use super::population::Profile;
use super::sampling::{DemoRng, below, chance, pick, rng, weighted};
use crate::identity::codice_fiscale;

/// Header of the daily desk exports.
pub(crate) const DESK_HEADER: &str = "appointment_id;codice_fiscale;phone;booked_at;service";
/// Header of the daily e-mail contact logs.
pub(crate) const EMAIL_HEADER: &str = "message_id;sender;received_at;service";

/// The stream of a contact row's writing, keyed by its request's seed.
const CONTACT: u64 = 0xC0A7;
/// The stream of the day's visitors and senders outside the CRM.
const STRANGERS: u64 = 0x57A9;

/// International digits (`39…`) in the national form a clerk types:
/// `347 1234567`, `051 1234567`.
fn push_national(buf: &mut Vec<u8>, digits: u64) {
    let text = digits.to_string();
    let national = text.strip_prefix("39").unwrap_or(&text);
    let (head, tail) = national.split_at(3.min(national.len()));
    buf.extend_from_slice(head.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(tail.as_bytes());
}

/// The code with one character other than the check character changed:
/// a clerk's typo, which the check character catches.
fn mistyped(cf: &[u8; 16], r: &mut DemoRng) -> [u8; 16] {
    loop {
        let mut out = *cf;
        let at = below(r, 15) as usize;
        out[at] = if out[at].is_ascii_digit() {
            b'0' + ((out[at] - b'0' + 1 + below(r, 9) as u8) % 10)
        } else {
            b'A' + ((out[at] - b'A' + 1 + below(r, 25) as u8) % 26)
        };
        if !codice_fiscale::is_valid(&out) {
            return out;
        }
    }
}

/// Appends one desk row (`id`, the citizen's request) with its newline;
/// returns whether the row identifies the citizen: a valid code of
/// theirs, or the phone the CRM has for them.
pub(crate) fn push_visit(
    buf: &mut Vec<u8>,
    id: u64,
    local: i64,
    service: &str,
    p: &Profile,
    seed: u64,
) -> bool {
    let mut r = rng(&[seed, CONTACT]);
    push_num(buf, id);
    buf.push(b';');
    let mut known = true;
    match weighted(&mut r, &[72, 10, 8, 5, 5]) {
        0 => buf.extend_from_slice(&p.cf),
        1 => buf.extend(p.cf.iter().map(u8::to_ascii_lowercase)),
        2 => {
            for (i, c) in p.cf.iter().enumerate() {
                if [3, 6, 11, 15].contains(&i) {
                    buf.push(b' ');
                }
                buf.push(*c);
            }
        }
        3 => known = false,
        _ => {
            buf.extend_from_slice(&mistyped(&p.cf, &mut r));
            known = false;
        }
    }
    buf.push(b';');
    if chance(&mut r, 0.35) {
        // The number the citizen gives: the CRM's, or one it does not have.
        push_national(buf, p.line);
        known |= p.listed();
    }
    push_when_and_service(buf, local, service);
    known
}

/// Appends the row of a visitor the CRM does not know (a resident of
/// another comune): a valid code that is no CRM citizen's, or none.
pub(crate) fn push_walk_in(
    buf: &mut Vec<u8>,
    id: u64,
    local: i64,
    service: &str,
    seed: u64,
    crm_codes: &std::collections::HashSet<[u8; 16]>,
) {
    let mut r = rng(&[seed, STRANGERS]);
    push_num(buf, id);
    buf.push(b';');
    if chance(&mut r, 0.85) {
        let surnames = ["Ferri", "Gallo", "Monti", "Riva", "Sala", "Villa", "Testa"];
        let names = ["Paolo", "Elena", "Marco", "Chiara", "Luca", "Sara"];
        let places = ["F205", "H501", "L219", "D612", "G273"];
        let born = (
            1940 + below(&mut r, 65) as i64,
            1 + below(&mut r, 12) as u32,
            1 + below(&mut r, 28) as u32,
        );
        let cf = codice_fiscale::compute(
            pick::<&str>(&mut r, &surnames),
            pick::<&str>(&mut r, &names),
            born,
            chance(&mut r, 0.5),
            pick::<&str>(&mut r, &places),
        );
        // Never a CRM citizen's code: that visitor would be known.
        let cf = if crm_codes.contains(&cf) {
            codice_fiscale::omocode(&cf, 7)
        } else {
            cf
        };
        buf.extend_from_slice(&cf);
    }
    // No phone.
    buf.push(b';');
    push_when_and_service(buf, local, service);
}

/// Appends a desk row with the CRM test record's code: a clerk trying
/// the booking system.
pub(crate) fn push_test_visit(buf: &mut Vec<u8>, id: u64, local: i64, service: &str) {
    push_num(buf, id);
    buf.push(b';');
    buf.extend_from_slice(super::population::TEST_CODE);
    buf.push(b';');
    push_when_and_service(buf, local, service);
}

/// Appends one e-mail row (`id`, the citizen's request); returns whether
/// the sender is the address the CRM has for the citizen.
pub(crate) fn push_message(
    buf: &mut Vec<u8>,
    id: u64,
    local: i64,
    service: &str,
    p: &Profile,
    seed: u64,
) -> bool {
    let mut r = rng(&[seed, CONTACT]);
    push_num(buf, id);
    buf.push(b';');
    let known = match &p.email {
        Some(address) => match weighted(&mut r, &[60, 15, 10, 5, 10]) {
            0 => {
                buf.extend_from_slice(address.as_bytes());
                true
            }
            1 => {
                buf.extend(capitalised(address).bytes());
                true
            }
            2 => {
                let (local_part, _) = address.split_once('@').unwrap_or((address, ""));
                let shown: Vec<String> = local_part
                    .split(['.', '_'])
                    .filter(|w| w.chars().all(char::is_alphabetic) && !w.is_empty())
                    .map(capitalised)
                    .collect();
                buf.extend_from_slice(format!("{} <{address}>", shown.join(" ")).as_bytes());
                true
            }
            3 => {
                buf.extend_from_slice(format!("  {address} ").as_bytes());
                true
            }
            _ => {
                push_private_address(buf, &mut r);
                false
            }
        },
        None => {
            push_private_address(buf, &mut r);
            false
        }
    };
    push_when_and_service(buf, local, service);
    known
}

/// Appends a message from no citizen: a professional's PEC, a bounce.
pub(crate) fn push_stranger_message(
    buf: &mut Vec<u8>,
    id: u64,
    local: i64,
    service: &str,
    seed: u64,
) {
    let mut r = rng(&[seed, STRANGERS]);
    push_num(buf, id);
    buf.push(b';');
    match weighted(&mut r, &[60, 40]) {
        0 => buf.extend_from_slice(
            format!(
                "studio.{}@{}",
                100 + below(&mut r, 900),
                pick(&mut r, &["pec.it", "legalmail.it"])
            )
            .as_bytes(),
        ),
        _ => buf.extend_from_slice(b"noreply@notifiche.example.com"),
    }
    push_when_and_service(buf, local, service);
}

/// Ends a row: `;<local time>;<service>` and its newline.
fn push_when_and_service(buf: &mut Vec<u8>, local: i64, service: &str) {
    buf.push(b';');
    push_iso(buf, local);
    buf.push(b';');
    buf.extend_from_slice(service.as_bytes());
    buf.push(b'\n');
}

/// An address the CRM has for no one (a relative's, a work mailbox).
fn push_private_address(buf: &mut Vec<u8>, r: &mut DemoRng) {
    let provider = pick(r, &["gmail.com", "libero.it", "outlook.it", "alice.it"]);
    buf.extend_from_slice(format!("famiglia{}@{provider}", 1000 + below(r, 9000)).as_bytes());
}

/// `mario.rossi@gmail.com` → `Mario.Rossi@Gmail.Com`.
fn capitalised(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_breaks_the_check_character() {
        let cf = codice_fiscale::compute("Rossi", "Mario", (1985, 12, 10), false, "A562");
        let mut r = rng(&[1, 2]);
        for _ in 0..200 {
            let typo = mistyped(&cf, &mut r);
            assert_ne!(typo, cf);
            assert!(!codice_fiscale::is_valid(&typo));
        }
    }

    #[test]
    fn national_numbers_are_written_as_clerks_type_them() {
        let mut buf = Vec::new();
        push_national(&mut buf, 393_471_234_567);
        assert_eq!(buf, b"347 1234567");
        buf.clear();
        push_national(&mut buf, 390_511_234_567);
        assert_eq!(buf, b"051 1234567");
        assert_eq!(
            capitalised("mario.rossi@gmail.com"),
            "Mario.Rossi@Gmail.Com"
        );
    }
}
