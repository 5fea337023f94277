//! E-mail addresses in one form: trimmed, without a `mailto:` or a display
//! name, in lower case (providers treat the local part without regard to
//! case, whatever RFC 5321 allows), and certified mailboxes (PEC)
//! recognised by their provider's domain. Dots and `+tags` in the local
//! part are kept: whether they matter is the provider's business, and
//! folding them would join mailboxes that may be two people's.

/// Domains of the accredited PEC providers whose addresses are the
/// domain itself (`nome@pec.it`); a domain any of whose labels is `pec`,
/// `postacert`, `legalmail` or `cert` (`comune.bologna.pec.it`,
/// `pec.comune.bologna.it`, `cert.legalmail.it`) is one too.
const PEC_DOMAINS: &[&str] = &[
    "pec.it",
    "legalmail.it",
    "postacert.it",
    "arubapec.it",
    "pecimprese.it",
    "postecert.it",
    "cgn.legalmail.it",
    "registerpec.it",
    "sicurezzapostale.it",
    "gigapec.it",
    "mypec.eu",
    "pecditta.com",
    "casellapec.com",
    "pec.libero.it",
];

/// Labels that mark a certified-mail domain wherever they appear in it.
const PEC_LABELS: &[&str] = &["pec", "postacert", "legalmail", "cert", "arubapec"];

/// The address in one form, or `None` when `value` is not one address
/// (no `@`, two of them, blanks inside, an empty part, a domain without
/// a dot).
pub fn normalize(value: &str) -> Option<String> {
    let mut text = value.trim();
    // `Mario Rossi <Mario.Rossi@Example.it>`
    if let (Some(open), true) = (text.rfind('<'), text.ends_with('>')) {
        text = &text[open + 1..text.len() - 1];
    }
    let text = text.trim();
    let text = text
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("mailto:"))
        .map_or(text, |_| &text[7..]);
    let address = text.trim().to_lowercase();
    let (local, domain) = address.split_once('@')?;
    let domain = domain.trim_end_matches('.');
    let usable = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !address.chars().any(char::is_whitespace)
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    usable.then(|| format!("{local}@{domain}"))
}

/// Whether the address is a certified mailbox (PEC), by its domain.
pub fn is_pec(value: &str) -> Option<bool> {
    let address = normalize(value)?;
    let (_, domain) = address.split_once('@')?;
    Some(
        PEC_DOMAINS
            .iter()
            .any(|known| domain == *known || domain.ends_with(&format!(".{known}")))
            || domain.split('.').any(|label| PEC_LABELS.contains(&label)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_one_way() {
        let cases: &[(&str, Option<&str>)] = &[
            ("mario.rossi@example.it", Some("mario.rossi@example.it")),
            ("  Mario.Rossi@Example.IT ", Some("mario.rossi@example.it")),
            (
                "MAILTO:mario.rossi@example.it",
                Some("mario.rossi@example.it"),
            ),
            (
                "Mario Rossi <Mario.Rossi@Example.it>",
                Some("mario.rossi@example.it"),
            ),
            ("mario.rossi@example.it.", Some("mario.rossi@example.it")),
            // Kept: they may be two mailboxes.
            (
                "mario.rossi+tari@example.it",
                Some("mario.rossi+tari@example.it"),
            ),
            ("m.rossi@example.it", Some("m.rossi@example.it")),
            ("mario rossi@example.it", None),
            ("mario.rossi", None),
            ("mario@rossi@example.it", None),
            ("@example.it", None),
            ("mario@localhost", None),
            ("mario@-example.it", None),
            ("", None),
        ];
        for (written, expected) in cases {
            assert_eq!(normalize(written).as_deref(), *expected, "{written:?}");
        }
    }

    #[test]
    fn certified_mailboxes_are_known_by_their_domain() {
        let cases: &[(&str, Option<bool>)] = &[
            ("mario.rossi@pec.it", Some(true)),
            ("Mario.Rossi@LegalMail.it", Some(true)),
            ("m.rossi@postacert.it", Some(true)),
            ("protocollo@pec.comune.bologna.it", Some(true)),
            ("protocollo@comune.bologna.pec.it", Some(true)),
            ("studio@cert.legalmail.it", Some(true)),
            ("mario.rossi@example.it", Some(false)),
            ("mario.rossi@specchio.it", Some(false)),
            ("not an address", None),
        ];
        for (written, expected) in cases {
            assert_eq!(is_pec(written), *expected, "{written:?}");
        }
    }
}
