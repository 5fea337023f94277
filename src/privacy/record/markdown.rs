//! The record of processing as Markdown, in Italian or English: the
//! sections a DPO reads, in the order of art. 30(1), then the DPIA
//! criteria and what the controller must complete.

use super::Record;
use crate::pipeline::Sensitivity;

/// The record as Markdown, in Italian (`italian`) or English.
pub fn markdown(record: &Record, italian: bool) -> String {
    let t = |it: &'static str, en: &'static str| if italian { it } else { en };
    let mut page = Page::default();
    page.line(format!(
        "# {} `{}`",
        t(
            "Registro delle attività di trattamento (art. 30 GDPR): pipeline",
            "Record of processing activities (GDPR art. 30): pipeline"
        ),
        record.pipeline
    ));
    page.line(String::new());
    if let Some(description) = &record.description {
        page.line(description.trim().to_string());
        page.line(String::new());
    }
    let to_complete = t("da completare", "to be completed");
    page.heading(t("Titolare del trattamento", "Controller"));
    let controller = record.controller.as_ref();
    for (label, value) in [
        (
            t("titolare", "controller"),
            controller.map(|c| c.name.clone()),
        ),
        (
            t("contatti", "contact"),
            controller.and_then(|c| c.contact.clone()),
        ),
        (
            t(
                "responsabile della protezione dei dati",
                "data protection officer",
            ),
            controller.and_then(|c| c.dpo.clone()),
        ),
    ] {
        page.line(format!(
            "- {label}: {}",
            value.as_deref().unwrap_or(to_complete)
        ));
    }
    page.line(String::new());
    page.heading(t("Base giuridica", "Legal basis"));
    page.line(match record.legal_basis {
        Some("public_interest") => t(
            "Esecuzione di un compito di interesse pubblico (art. 6(1)(e) GDPR); chi si è opposto (art. 21) è escluso dalla profilazione.",
            "A task carried out in the public interest (GDPR art. 6(1)(e)); citizens who objected (art. 21) are left out of profiling.",
        )
        .to_string(),
        Some(_) => t(
            "Consenso (art. 6(1)(a) GDPR); solo chi ha acconsentito è profilato.",
            "Consent (GDPR art. 6(1)(a)); only citizens who consented are profiled.",
        )
        .to_string(),
        None => t("Nessuna profilazione.", "No profiling.").to_string(),
    });
    if record.legal_basis == Some("public_interest") {
        page.line(String::new());
        page.line(format!(
            "{}: {}",
            t(
                "Norma che attribuisce il compito (art. 2-ter d.lgs. 196/2003)",
                "Law or regulation giving the task (art. 2-ter, d.lgs. 196/2003)"
            ),
            record.law.as_deref().unwrap_or(to_complete)
        ));
    }
    page.line(String::new());
    page.heading(t("Finalità", "Purposes"));
    for purpose in &record.purposes {
        page.line(format!("- `{}`: {}", purpose.table, purpose.purpose));
    }
    page.line(String::new());
    page.heading(t("Categorie di interessati", "Categories of data subjects"));
    for source in &record.subject_sources {
        page.line(format!(
            "- {} `{source}`",
            t("cittadini presenti nella fonte", "citizens in source")
        ));
    }
    page.line(String::new());
    page.heading(t(
        "Categorie di dati personali",
        "Categories of personal data",
    ));
    page.table_head(&[
        t("colonna", "column"),
        t("categoria", "category"),
        t("perché", "why"),
    ]);
    for category in &record.categories {
        let why = if italian {
            &category.why_it
        } else {
            &category.why
        };
        page.line(format!(
            "| `{}` | {}{} | {why} |",
            category.column,
            tag_name(category.tag, italian),
            match category.pseudonymised {
                true => t(", pseudonimizzato", ", pseudonymised"),
                false => "",
            }
        ));
    }
    page.line(String::new());
    page.heading(t(
        "Dati sulle interazioni con i servizi",
        "Data on the interactions with services",
    ));
    page.paragraph(t(
        "Oltre ai dati sopra, ogni fonte registra il comportamento dei cittadini (contatti, visite, pratiche), che la segmentazione riassume:",
        "Beyond the data above, each source records what citizens did (contacts, visits, requests), which the segmentation sums up:",
    ));
    for i in &record.interactions {
        page.line(format!(
            "- `{}` ({}): {}",
            i.source,
            i.format,
            i.columns
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    page.line(String::new());
    page.heading(t(
        "Destinatari (output pubblicati)",
        "Recipients (published outputs)",
    ));
    page.table_head(&[
        t("tabella", "table"),
        t("dove", "where"),
        t("una riga per cittadino", "one row per citizen"),
        t("dati personali dichiarati", "personal data declared"),
        t("finalità", "purpose"),
    ]);
    for r in &record.recipients {
        page.line(format!(
            "| `{}` | `{}` | {} | {} | {} |",
            r.table,
            r.location,
            match &r.keyed_by {
                Some(id) => format!(
                    "{} `{id}` {}",
                    t("sì, per", "yes, by"),
                    t("(dato pseudonimo)", "(pseudonymous data)")
                ),
                None => "no".to_string(),
            },
            match (r.contains_personal_data.is_empty(), &r.cell_count) {
                (true, None) => t("nessuno", "none").to_string(),
                (true, Some(count)) => format!(
                    "{} {} {} (`{count}`)",
                    t("nessuno; righe di almeno", "none; rows of at least"),
                    record.safeguards.min_cell,
                    t("cittadini", "citizens")
                ),
                (false, _) => r.contains_personal_data.join(", "),
            },
            r.purpose.as_deref().unwrap_or("-")
        ));
    }
    page.line(String::new());
    page.paragraph(t(
        "Gli output con una riga per cittadino sono dati personali pseudonimi (art. 4(5) GDPR): chi ne ha la chiave (il CRM per `citizen_id`, la chiave degli pseudonimi) può risalire alla persona.",
        "Outputs with one row per citizen are pseudonymous personal data (GDPR art. 4(5)): whoever holds their key (the CRM for `citizen_id`, the pseudonym key) can link them back to the person.",
    ));
    let readers = controller.map(|c| c.recipients.clone()).unwrap_or_default();
    page.line(format!(
        "{}: {}",
        t("Categorie di destinatari", "Categories of recipients"),
        match readers.is_empty() {
            true => to_complete.to_string(),
            false => readers.join("; "),
        }
    ));
    page.line(String::new());
    page.heading(t("Dove sono i dati", "Where the data is"));
    page.paragraph(t(
        "civica legge e scrive solo in queste posizioni e non trasferisce dati altrove:",
        "civica reads and writes only at these locations and transfers no data elsewhere:",
    ));
    for location in &record.locations {
        page.line(format!(
            "- {}",
            match (location.as_str(), italian) {
                ("local disk", true) => "disco locale".to_string(),
                ("local disk", false) => "local disk".to_string(),
                (other, _) => format!("`{other}`"),
            }
        ));
    }
    page.line(String::new());
    page.heading(t("Conservazione", "Retention"));
    for r in &record.retention {
        let what = if italian { &r.what_it } else { &r.what };
        if r.period.as_deref() == Some("") {
            page.line(format!("- {what}"));
            continue;
        }
        page.line(format!(
            "- {}: {}",
            what,
            match (&r.period, italian) {
                (Some(period), _) if period.is_empty() => String::new(),
                (Some(period), true) => period.replace(" days", " giorni"),
                (Some(period), false) => period.clone(),
                (None, _) => t("conservati senza termine", "kept without limit").to_string(),
            }
        ));
    }
    page.line(String::new());
    page.heading(t("Misure di sicurezza", "Safeguards"));
    let s = &record.safeguards;
    let none = t("nessuna", "none");
    page.line(format!(
        "- {}: {}",
        t(
            "pseudonimi con chiave (HMAC-SHA-256) all'origine",
            "keyed pseudonyms (HMAC-SHA-256) at the source"
        ),
        if s.pseudonymised.is_empty() {
            none.to_string()
        } else {
            s.pseudonymised.join(", ")
        }
    ));
    for (source, mask) in &s.ip_masks {
        page.line(format!(
            "- {} `{source}`: `ip_mask: {mask}`",
            t(
                "indirizzi IP mascherati alla lettura,",
                "client addresses masked as read,"
            )
        ));
    }
    page.line(format!(
        "- {}: {}",
        t(
            "soglia minima delle celle pubblicate (`min_cell`)",
            "smallest published cell (`min_cell`)"
        ),
        s.min_cell
    ));
    page.line(format!(
        "- {}: {}",
        t("opposizione o consenso", "objection or consent"),
        s.objection_or_consent.as_deref().unwrap_or(none)
    ));
    page.line(format!(
        "- {}: {}",
        t("lista di cancellazione (art. 17)", "erasure list (art. 17)"),
        s.erasure_list
            .as_deref()
            .map(|l| format!("`{l}`"))
            .unwrap_or_else(|| none.to_string())
    ));
    page.line(format!(
        "- {}",
        t(
            "nessun output pubblica dati personali non dichiarati: `validate` e ogni esecuzione li rifiutano",
            "no output publishes undeclared personal data: `validate` and every run refuse it"
        )
    ));
    page.line(format!(
        "- {}: {}",
        t("file locali", "local files"),
        if italian {
            s.local_files_it
        } else {
            s.local_files
        }
    ));
    page.line(String::new());
    page.heading(t(
        "Criteri per la valutazione d'impatto (DPIA, WP248)",
        "Criteria for a data protection impact assessment (DPIA, WP248)",
    ));
    page.table_head(&[
        "#",
        t("criterio", "criterion"),
        t("soddisfatto", "met"),
        t("perché", "why"),
    ]);
    for c in &record.dpia_criteria {
        page.line(format!(
            "| {} | {} | {} | {} |",
            c.number,
            if italian { c.criterion_it } else { c.criterion },
            match c.met {
                Some(true) => t("sì", "yes"),
                Some(false) => "no",
                None => t("da valutare", "to assess"),
            },
            if italian { &c.because_it } else { &c.because }
        ));
    }
    page.line(String::new());
    page.line(
        match record.dpia_required {
            true => t(
                "Il trattamento soddisfa almeno due criteri: la DPIA è necessaria (art. 35 GDPR).",
                "The processing meets two criteria or more: a DPIA is required (GDPR art. 35).",
            ),
            false => t(
                "Il trattamento soddisfa meno di due criteri: la DPIA non è di norma necessaria.",
                "The processing meets fewer than two criteria: a DPIA is not usually required.",
            ),
        }
        .to_string(),
    );
    page.line(String::new());
    page.heading(t("Da completare", "To be completed"));
    page.paragraph(t(
        "civica non può desumere dalla pipeline:",
        "civica cannot tell from the pipeline:",
    ));
    for item in &record.to_complete {
        page.line(format!(
            "- {}",
            if italian { item.what_it } else { item.what }
        ));
    }
    page.out
}

/// A Markdown page being written, line by line.
#[derive(Default)]
struct Page {
    out: String,
}

impl Page {
    fn line(&mut self, text: String) {
        self.out.push_str(&text);
        self.out.push('\n');
    }

    /// A `##` heading and the blank line after it.
    fn heading(&mut self, text: &str) {
        self.line(format!("## {text}"));
        self.line(String::new());
    }

    /// The header of a table with these columns.
    fn table_head(&mut self, columns: &[&str]) {
        self.line(format!("| {} |", columns.join(" | ")));
        self.line(format!("|{}", " --- |".repeat(columns.len())));
    }

    /// A paragraph and the blank line after it.
    fn paragraph(&mut self, text: &str) {
        self.line(text.to_string());
        self.line(String::new());
    }
}

fn tag_name(tag: Sensitivity, italian: bool) -> &'static str {
    match (tag, italian) {
        (Sensitivity::Identifier, true) => "identificativo",
        (Sensitivity::QuasiIdentifier, true) => "quasi-identificativo",
        (Sensitivity::Contact, true) => "dato di contatto",
        (Sensitivity::Special, true) => "categoria particolare (art. 9-10)",
        (Sensitivity::None, true) => "nessuna",
        (tag, false) => tag.name(),
    }
}
