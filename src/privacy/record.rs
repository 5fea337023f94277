//! The record of processing (GDPR art. 30) of a pipeline, as the data
//! protection officer reads it: purposes, legal basis, categories of data
//! and of data subjects (from the tags), recipients (the outputs), where
//! it is kept and for how long, the safeguards in force, and which of the
//! criteria for a data protection impact assessment the pipeline meets
//! (EDPB WP248 rev.01, which the Garante's list of 11 October 2018 adopts).
//! Written from the checked plan and the tags `validate` finds; it never
//! holds a value of the data.

use serde::Serialize;

use super::PersonalKind;
use super::lineage::{Lineage, Why};
use crate::pipeline::{FormatSpec, IpMask, Sensitivity};
use crate::plan::{Plan, Step};

/// The record of a pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its description.
    pub description: Option<String>,
    /// The legal basis of profiling, when the pipeline segments citizens.
    pub legal_basis: Option<&'static str>,
    /// Why personal data is processed: profiling, and each output's
    /// declared purpose.
    pub purposes: Vec<Purpose>,
    /// The personal data each source holds, by column.
    pub categories: Vec<Category>,
    /// Who the data is about: the citizens in these sources.
    pub subject_sources: Vec<String>,
    /// Where the outputs go, and what personal data each declares.
    pub recipients: Vec<Recipient>,
    /// How long things are kept.
    pub retention: Vec<Retention>,
    /// The safeguards in force.
    pub safeguards: Safeguards,
    /// The DPIA criteria, each met or not, with why.
    pub dpia_criteria: Vec<Criterion>,
    /// Whether a DPIA is needed: two criteria or more (WP248).
    pub dpia_required: bool,
}

/// A purpose of the processing.
#[derive(Debug, Clone, Serialize)]
pub struct Purpose {
    /// What it is for.
    pub purpose: String,
    /// The table it concerns.
    pub table: String,
}

/// A column of personal data in a source.
#[derive(Debug, Clone, Serialize)]
pub struct Category {
    /// `source.column`.
    pub column: String,
    /// Its tag.
    pub tag: Sensitivity,
    /// Why it is personal data.
    pub why: String,
    /// The same, in Italian.
    #[serde(skip)]
    pub why_it: String,
}

/// An output and what it carries.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    /// The table.
    pub table: String,
    /// Where it is published.
    pub location: String,
    /// Columns of personal data it declares.
    pub contains_personal_data: Vec<String>,
    /// Why.
    pub purpose: Option<String>,
}

/// How long something is kept.
#[derive(Debug, Clone, Serialize)]
pub struct Retention {
    /// What.
    pub what: String,
    /// What, in Italian.
    #[serde(skip)]
    pub what_it: String,
    /// For how long, or `None` when kept.
    pub period: Option<String>,
}

/// The safeguards of the pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Safeguards {
    /// Columns replaced by keyed pseudonyms at their source.
    pub pseudonymised: Vec<String>,
    /// Client addresses masked as logs are read, by source.
    pub ip_masks: Vec<(String, &'static str)>,
    /// The fewest citizens a published aggregate counts.
    pub min_cell: usize,
    /// Whether an erasure list is applied, and where it is.
    pub erasure_list: Option<String>,
    /// Citizens left out of profiling: the column that says so.
    pub objection_or_consent: Option<String>,
    /// Outputs refused unless they declare their personal data.
    pub output_guard: bool,
    /// Permissions of local files.
    pub local_files: &'static str,
}

/// A DPIA criterion.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    /// Its number in WP248.
    pub number: u8,
    /// What it is, in English.
    pub criterion: &'static str,
    /// Whether the pipeline meets it.
    pub met: bool,
    /// Why, in English.
    pub because: String,
    /// The criterion, in Italian.
    #[serde(skip)]
    pub criterion_it: &'static str,
    /// Why, in Italian.
    #[serde(skip)]
    pub because_it: String,
}

/// Builds the record of a checked plan whose sources and steps `lineage`
/// describes.
pub fn record(plan: &Plan, lineage: &Lineage) -> Record {
    let segment = plan.steps.iter().find_map(|step| match step {
        Step::Segment(seg) => Some(seg),
        Step::Sql(_) => None,
    });
    let profiling = segment.and_then(|seg| seg.profiling.as_ref());
    let mut purposes = Vec::new();
    if let Some(seg) = segment {
        purposes.push(Purpose {
            purpose: plan
                .description
                .as_deref()
                .map(str::trim)
                .map(str::to_string)
                .unwrap_or_else(|| {
                    "segmentation of citizens by their use of services (profiling)".to_string()
                }),
            table: seg.name.clone(),
        });
    }
    purposes.extend(plan.outputs.iter().filter_map(|o| {
        o.purpose.as_ref().map(|purpose| Purpose {
            purpose: purpose.clone(),
            table: o.table.clone(),
        })
    }));
    let mut categories = Vec::new();
    for source in &plan.sources {
        for (column, taints) in lineage.table(&source.name).into_iter().flatten() {
            for taint in taints {
                categories.push(Category {
                    column: format!("{}.{column}", source.name),
                    tag: taint.tag,
                    why: taint.why.to_string(),
                    why_it: why_in_italian(&taint.why),
                });
            }
        }
    }
    let with_personal: Vec<&str> = plan
        .sources
        .iter()
        .filter(|s| {
            categories
                .iter()
                .any(|c| c.column.starts_with(&format!("{}.", s.name)))
        })
        .map(|s| s.name.as_str())
        .collect();
    let subject_sources = with_personal.iter().map(|s| s.to_string()).collect();
    let recipients = plan
        .outputs
        .iter()
        .map(|o| Recipient {
            table: o.table.clone(),
            location: o.location.clone(),
            contains_personal_data: o.contains_personal_data.clone(),
            purpose: o.purpose.clone(),
        })
        .collect();
    let period =
        |age: Option<chrono::TimeDelta>| age.map(|a| format!("{} days", a.num_days().max(1)));
    let mut retention: Vec<Retention> = plan
        .outputs
        .iter()
        .map(|o| Retention {
            what: format!("output `{}` (files of earlier runs)", o.table),
            what_it: format!("output `{}` (file delle esecuzioni precedenti)", o.table),
            period: period(o.retention),
        })
        .collect();
    retention.push(Retention {
        what: "run manifests".to_string(),
        what_it: "manifest delle esecuzioni".to_string(),
        period: period(plan.manifest_retention),
    });
    retention.push(Retention {
        what: "check results".to_string(),
        what_it: "esiti dei controlli di qualità".to_string(),
        period: period(plan.check_retention),
    });
    let ip_masks = plan
        .sources
        .iter()
        .filter_map(|s| match &s.format {
            FormatSpec::AccessLog(log) => Some((s.name.clone(), log.ip_mask.name())),
            _ => None,
        })
        .collect::<Vec<_>>();
    let safeguards = Safeguards {
        pseudonymised: plan
            .sources
            .iter()
            .flat_map(|s| {
                s.pseudonymize
                    .iter()
                    .map(move |(c, _)| format!("{}.{c}", s.name))
            })
            .collect(),
        ip_masks: ip_masks.clone(),
        min_cell: plan.min_cell,
        erasure_list: plan.erasure.as_ref().map(|e| e.list.clone()),
        objection_or_consent: profiling.map(|p| {
            format!(
                "{}.{}",
                p.table,
                p.consent
                    .clone()
                    .or_else(|| p.objection.clone())
                    .unwrap_or_default()
            )
        }),
        output_guard: true,
        local_files: "0640 (owner read and write, group read), folders 0750",
    };
    let special = categories.iter().any(|c| c.tag == Sensitivity::Special);
    let logs: Vec<&str> = ip_masks.iter().map(|(s, _)| s.as_str()).collect();
    let combined = with_personal.len() >= 2;
    let unmasked = ip_masks.iter().any(|(_, m)| *m == IpMask::None.name());
    let crit = |number, criterion: [&'static str; 2], met, because: [String; 2]| {
        let [criterion, criterion_it] = criterion;
        let [because, because_it] = because;
        Criterion {
            number,
            criterion,
            criterion_it,
            met,
            because,
            because_it,
        }
    };
    let both = |en: &str, it: &str| [en.to_string(), it.to_string()];
    let dpia_criteria = vec![
        crit(
            1,
            [
                "evaluation or scoring, including profiling",
                "valutazione o assegnazione di un punteggio, compresa la profilazione",
            ],
            segment.is_some(),
            match segment {
                Some(seg) => [
                    format!(
                        "the segment step `{}` groups citizens by their behaviour",
                        seg.name
                    ),
                    format!(
                        "il passo di segmentazione `{}` raggruppa i cittadini per comportamento",
                        seg.name
                    ),
                ],
                None => both("no segment step", "nessuna segmentazione"),
            },
        ),
        crit(
            2,
            [
                "automated decision-making with legal or similar significant effect",
                "decisioni automatizzate con effetti giuridici o analoghi",
            ],
            false,
            both(
                "segments inform the planning of services; civica takes no decision about a citizen",
                "i segmenti orientano la programmazione dei servizi; civica non prende decisioni su un cittadino",
            ),
        ),
        crit(
            3,
            ["systematic monitoring", "monitoraggio sistematico"],
            !logs.is_empty(),
            match logs.is_empty() {
                true => both("no access-log source", "nessun log di accesso"),
                false => [
                    format!(
                        "portal visits are read from access logs ({}){}",
                        logs.join(", "),
                        if unmasked {
                            ", some with whole client addresses"
                        } else {
                            ""
                        }
                    ),
                    format!(
                        "le visite al portale sono lette dai log di accesso ({}){}",
                        logs.join(", "),
                        if unmasked {
                            ", alcuni con indirizzi IP interi"
                        } else {
                            ""
                        }
                    ),
                ],
            },
        ),
        crit(
            4,
            [
                "sensitive data or data of a highly personal nature",
                "dati sensibili o di natura estremamente personale",
            ],
            special,
            match special {
                true => both(
                    "a column is tagged `special`",
                    "una colonna è marcata `special`",
                ),
                false => both(
                    "no column is tagged `special`",
                    "nessuna colonna è marcata `special`",
                ),
            },
        ),
        crit(
            5,
            [
                "data processed on a large scale",
                "trattamento su larga scala",
            ],
            segment.is_some(),
            both(
                "every citizen of the municipality's CRM is processed each night",
                "ogni notte sono trattati tutti i cittadini del CRM comunale",
            ),
        ),
        crit(
            6,
            [
                "matching or combining datasets",
                "raffronto o combinazione di insiemi di dati",
            ],
            combined,
            [
                format!(
                    "{} source(s) with personal data: {}",
                    with_personal.len(),
                    with_personal.join(", ")
                ),
                format!(
                    "{} fonti con dati personali: {}",
                    with_personal.len(),
                    with_personal.join(", ")
                ),
            ],
        ),
        crit(
            7,
            [
                "data concerning vulnerable data subjects",
                "dati relativi a interessati vulnerabili",
            ],
            false,
            both(
                "not known from the pipeline: assess whether sources hold minors, patients or people in need",
                "non desumibile dalla pipeline: valutare se le fonti riguardano minori, pazienti o persone in difficoltà",
            ),
        ),
        crit(
            8,
            [
                "innovative use or new technological or organisational solutions",
                "uso innovativo o nuove soluzioni tecnologiche od organizzative",
            ],
            false,
            both(
                "k-means clustering and SQL are established techniques",
                "k-means e SQL sono tecniche consolidate",
            ),
        ),
        crit(
            9,
            [
                "processing that prevents data subjects from exercising a right or using a service",
                "trattamenti che impediscono di esercitare un diritto o di avvalersi di un servizio",
            ],
            false,
            both(
                "outputs do not gate access to any service",
                "gli output non condizionano l'accesso ad alcun servizio",
            ),
        ),
    ];
    let dpia_required = dpia_criteria.iter().filter(|c| c.met).count() >= 2;
    Record {
        pipeline: plan.name.clone(),
        description: plan.description.clone(),
        legal_basis: profiling.map(|p| p.basis.name()),
        purposes,
        categories,
        subject_sources,
        recipients,
        retention,
        safeguards,
        dpia_criteria,
        dpia_required,
    }
}

/// The record as Markdown, in Italian (`italian`) or English.
pub fn markdown(record: &Record, italian: bool) -> String {
    let t = |it: &'static str, en: &'static str| if italian { it } else { en };
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "# {} `{}`",
        t(
            "Registro delle attività di trattamento (art. 30 GDPR): pipeline",
            "Record of processing activities (GDPR art. 30): pipeline"
        ),
        record.pipeline
    ));
    line(String::new());
    if let Some(description) = &record.description {
        line(description.trim().to_string());
        line(String::new());
    }
    line(format!("## {}", t("Base giuridica", "Legal basis")));
    line(String::new());
    line(match record.legal_basis {
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
    line(String::new());
    line(format!("## {}", t("Finalità", "Purposes")));
    line(String::new());
    for purpose in &record.purposes {
        line(format!("- `{}`: {}", purpose.table, purpose.purpose));
    }
    line(String::new());
    line(format!(
        "## {}",
        t("Categorie di interessati", "Categories of data subjects")
    ));
    line(String::new());
    for source in &record.subject_sources {
        line(format!(
            "- {} `{source}`",
            t("cittadini presenti nella fonte", "citizens in source")
        ));
    }
    line(String::new());
    line(format!(
        "## {}",
        t("Categorie di dati personali", "Categories of personal data")
    ));
    line(String::new());
    line(format!(
        "| {} | {} | {} |",
        t("colonna", "column"),
        t("categoria", "category"),
        t("perché", "why")
    ));
    line("| --- | --- | --- |".to_string());
    for category in &record.categories {
        let why = if italian {
            &category.why_it
        } else {
            &category.why
        };
        line(format!(
            "| `{}` | {} | {why} |",
            category.column,
            tag_name(category.tag, italian)
        ));
    }
    line(String::new());
    line(format!(
        "## {}",
        t(
            "Destinatari (output pubblicati)",
            "Recipients (published outputs)"
        )
    ));
    line(String::new());
    line(format!(
        "| {} | {} | {} | {} |",
        t("tabella", "table"),
        t("dove", "where"),
        t("dati personali dichiarati", "personal data declared"),
        t("finalità", "purpose")
    ));
    line("| --- | --- | --- | --- |".to_string());
    for r in &record.recipients {
        line(format!(
            "| `{}` | `{}` | {} | {} |",
            r.table,
            r.location,
            match r.contains_personal_data.is_empty() {
                true => t("nessuno", "none").to_string(),
                false => r.contains_personal_data.join(", "),
            },
            r.purpose.as_deref().unwrap_or("-")
        ));
    }
    line(String::new());
    line(format!("## {}", t("Conservazione", "Retention")));
    line(String::new());
    for r in &record.retention {
        line(format!(
            "- {}: {}",
            if italian { &r.what_it } else { &r.what },
            match (&r.period, italian) {
                (Some(period), true) => period.replace(" days", " giorni"),
                (Some(period), false) => period.clone(),
                (None, _) => t("conservati senza termine", "kept without limit").to_string(),
            }
        ));
    }
    line(String::new());
    line(format!("## {}", t("Misure di sicurezza", "Safeguards")));
    line(String::new());
    let s = &record.safeguards;
    let none = t("nessuna", "none");
    line(format!(
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
        line(format!(
            "- {} `{source}`: `ip_mask: {mask}`",
            t(
                "indirizzi IP mascherati alla lettura,",
                "client addresses masked as read,"
            )
        ));
    }
    line(format!(
        "- {}: {}",
        t(
            "soglia minima delle celle pubblicate (`min_cell`)",
            "smallest published cell (`min_cell`)"
        ),
        s.min_cell
    ));
    line(format!(
        "- {}: {}",
        t("opposizione o consenso", "objection or consent"),
        s.objection_or_consent.as_deref().unwrap_or(none)
    ));
    line(format!(
        "- {}: {}",
        t("lista di cancellazione (art. 17)", "erasure list (art. 17)"),
        s.erasure_list
            .as_deref()
            .map(|l| format!("`{l}`"))
            .unwrap_or_else(|| none.to_string())
    ));
    line(format!(
        "- {}",
        t(
            "nessun output pubblica dati personali non dichiarati: `validate` e ogni esecuzione li rifiutano",
            "no output publishes undeclared personal data: `validate` and every run refuse it"
        )
    ));
    line(format!(
        "- {}: {}",
        t("file locali", "local files"),
        s.local_files
    ));
    line(String::new());
    line(format!(
        "## {}",
        t(
            "Criteri per la valutazione d'impatto (DPIA, WP248)",
            "Criteria for a data protection impact assessment (DPIA, WP248)"
        )
    ));
    line(String::new());
    line(format!(
        "| # | {} | {} | {} |",
        t("criterio", "criterion"),
        t("soddisfatto", "met"),
        t("perché", "why")
    ));
    line("| --- | --- | --- | --- |".to_string());
    for c in &record.dpia_criteria {
        line(format!(
            "| {} | {} | {} | {} |",
            c.number,
            if italian { c.criterion_it } else { c.criterion },
            if c.met { t("sì", "yes") } else { "no" },
            if italian { &c.because_it } else { &c.because }
        ));
    }
    line(String::new());
    line(
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
    out
}

/// Why a column is personal data, in Italian.
fn why_in_italian(why: &Why) -> String {
    match why {
        Why::Declared => "dichiarato nella fonte (`tags`)".to_string(),
        Why::Content(kind) => format!(
            "{} trovato nei valori",
            match kind {
                PersonalKind::CodiceFiscale => "un codice fiscale",
                PersonalKind::Email => "un indirizzo e-mail",
                PersonalKind::Phone => "un numero di telefono",
                PersonalKind::IpAddress => "un indirizzo IP",
                PersonalKind::Iban => "un IBAN",
            }
        ),
        Why::Quarantine => "righe grezze di una tabella di quarantena".to_string(),
        Why::Unmasked => "indirizzi IP interi (`ip_mask: none`)".to_string(),
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
