//! The record of processing (GDPR art. 30) of a pipeline, as the data
//! protection officer reads it: purposes, legal basis, categories of data
//! and of data subjects (from the tags), recipients (the outputs), where
//! it is kept and for how long, the safeguards in force, and which of the
//! criteria for a data protection impact assessment the pipeline meets
//! (EDPB WP248 rev.01, which the Garante's list of 11 October 2018 adopts).
//! Written from the checked plan and the tags `validate` finds; it never
//! holds a value of the data.

use serde::Serialize;

mod markdown;
pub use markdown::markdown;

use super::PersonalKind;
use super::lineage::{Lineage, Taint, Why};
use crate::pipeline::{FormatSpec, IpMask, Sensitivity};
use crate::plan::{Plan, Step};

/// The record of a pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its description.
    pub description: Option<String>,
    /// Who answers for the processing, as the pipeline's `controller` says.
    pub controller: Option<crate::pipeline::ControllerSpec>,
    /// The legal basis of profiling, when the pipeline segments citizens.
    pub legal_basis: Option<&'static str>,
    /// The law giving the task, with `public_interest`, when named.
    pub law: Option<String>,
    /// Why personal data is processed: profiling, and each output's
    /// declared purpose.
    pub purposes: Vec<Purpose>,
    /// The personal data each source holds, by column.
    pub categories: Vec<Category>,
    /// What each source records of the citizens' interactions.
    pub interactions: Vec<Interaction>,
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
    /// Where civica reads and writes: what a transfer outside the EU would
    /// depend on.
    pub locations: Vec<String>,
    /// What the record cannot know and the controller must complete.
    pub to_complete: Vec<ToComplete>,
}

/// A source as the record describes it: what it records, in which columns.
#[derive(Debug, Clone, Serialize)]
pub struct Interaction {
    /// The source.
    pub source: String,
    /// Its format (`csv`, `access_log/combined`).
    pub format: String,
    /// Its columns.
    pub columns: Vec<String>,
}

/// Something the controller must add to the record.
#[derive(Debug, Clone, Serialize)]
pub struct ToComplete {
    /// What, in English.
    pub what: &'static str,
    /// What, in Italian.
    #[serde(skip)]
    pub what_it: &'static str,
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
    /// Replaced by a keyed pseudonym at the source: still personal data
    /// (GDPR art. 4(5)), as whoever holds the key can link it back.
    pub pseudonymised: bool,
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
    /// The column that names a citizen in each row (the segment step's
    /// `id`), when it has one: the output is then pseudonymous personal
    /// data, one row per citizen.
    pub keyed_by: Option<String>,
    /// With `cell_count`, the column counting each row's citizens: rows of
    /// fewer than `min_cell` are left out.
    pub cell_count: Option<String>,
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
    /// The same, in Italian.
    #[serde(skip)]
    pub local_files_it: &'static str,
}

/// DPIA criterion 4 (WP248).
const SENSITIVE: [&str; 2] = [
    "sensitive data or data of a highly personal nature",
    "dati sensibili o di natura estremamente personale",
];

/// A DPIA criterion.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    /// Its number in WP248.
    pub number: u8,
    /// What it is, in English.
    pub criterion: &'static str,
    /// Whether the pipeline meets it; `None` when only the controller can
    /// tell (whether the citizens include vulnerable people).
    pub met: Option<bool>,
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
        Step::Sql(_) | Step::Identity(_) => None,
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
    let mut interactions = Vec::new();
    for source in &plan.sources {
        let columns = lineage.table(&source.name).into_iter().flatten();
        interactions.push(Interaction {
            source: source.name.clone(),
            format: source.format.name(),
            columns: columns.clone().map(|(column, _)| column.clone()).collect(),
        });
        for (column, taints) in columns {
            // One row per column: the most sensitive tag, every reason.
            let Some(tag) = taints.iter().map(|t| t.tag).min() else {
                continue;
            };
            let joined = |why: fn(&Why) -> String| {
                let mut whys: Vec<String> = taints.iter().map(|t| why(&t.why)).collect();
                whys.dedup();
                whys.join("; ")
            };
            let pseudonymised = taints.iter().all(Taint::is_pseudonym);
            categories.push(Category {
                column: format!("{}.{column}", source.name),
                tag,
                why: match pseudonymised {
                    true => "replaced by a keyed pseudonym as read: still personal data (GDPR art. 4(5))".to_string(),
                    false => joined(|why| why.to_string()),
                },
                why_it: match pseudonymised {
                    true => "sostituito alla lettura da uno pseudonimo con chiave: resta un dato personale (art. 4(5) GDPR)".to_string(),
                    false => joined(why_in_italian),
                },
                pseudonymised,
            });
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
    let keyed_by = |table: &str| {
        let id = &segment?.id;
        lineage
            .table(table)?
            .iter()
            .any(|(column, _)| column == id)
            .then(|| id.clone())
    };
    let recipients = plan
        .outputs
        .iter()
        .map(|o| Recipient {
            table: o.table.clone(),
            location: o.location.clone(),
            contains_personal_data: o.contains_personal_data.clone(),
            purpose: o.purpose.clone(),
            keyed_by: keyed_by(&o.table),
            cell_count: o.cell_count.as_ref().map(|(column, _)| column.clone()),
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
    let told = |en: &str, it: &str| Retention {
        what: en.to_string(),
        what_it: it.to_string(),
        period: Some(String::new()),
    };
    let unpublished: Vec<String> = plan
        .sources
        .iter()
        .filter_map(|s| s.rejected_table())
        .filter(|t| !plan.outputs.iter().any(|o| &o.table == t))
        .collect();
    if !unpublished.is_empty() {
        retention.push(told(
            &format!(
                "unreadable lines ({}): not kept, only counted in the manifest",
                unpublished.join(", ")
            ),
            &format!(
                "righe illeggibili ({}): non conservate, solo contate nel manifest",
                unpublished.join(", ")
            ),
        ));
    }
    if let Some(path) = segment.and_then(|seg| seg.model_path.as_ref()) {
        retention.push(told(
            &format!("the saved model (`{path}`): replaced by each run; it holds the segments' centres and scaling, no citizen"),
            &format!("il modello salvato (`{path}`): sostituito a ogni esecuzione; contiene i centri dei segmenti e la scala, nessun cittadino"),
        ));
    }
    retention.push(told(
        "the sources (the exports civica reads): not managed by civica, kept as the controller decides for them",
        "le fonti (gli export letti da civica): non gestite da civica, conservate come stabilisce il titolare",
    ));
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
        local_files_it: "0640 (lettura e scrittura al proprietario, lettura al gruppo), cartelle 0750",
    };
    let special = categories.iter().any(|c| c.tag == Sensitivity::Special);
    let logs: Vec<&str> = ip_masks.iter().map(|(s, _)| s.as_str()).collect();
    let combined = with_personal.len() >= 2;
    let unmasked = ip_masks.iter().any(|(_, m)| *m == IpMask::None.name());
    let crit = |number, criterion: [&'static str; 2], met: bool, because: [String; 2]| {
        let [criterion, criterion_it] = criterion;
        let [because, because_it] = because;
        Criterion {
            number,
            criterion,
            criterion_it,
            met: Some(met),
            because,
            because_it,
        }
    };
    let to_assess = |number, criterion: [&'static str; 2], because: [String; 2]| {
        let [criterion, criterion_it] = criterion;
        let [because, because_it] = because;
        Criterion {
            number,
            criterion,
            criterion_it,
            met: None,
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
        to_assess(
            2,
            [
                "automated decision-making with legal or similar significant effect",
                "decisioni automatizzate con effetti giuridici o analoghi",
            ],
            both(
                "civica takes no decision about a citizen; whether its segments feed one (whom to contact, what to offer) depends on how they are used: assess",
                "civica non prende decisioni su un cittadino; se i suoi segmenti ne alimentano una (chi contattare, cosa offrire) dipende dall'uso che se ne fa: valutare",
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
        match special {
            true => crit(
                4,
                SENSITIVE,
                true,
                both(
                    "a column is tagged `special`",
                    "una colonna è marcata `special`",
                ),
            ),
            false => to_assess(
                4,
                SENSITIVE,
                both(
                    "no column is tagged `special`, but the services asked for, call queues or pages visited (social services, health) may reveal special categories: assess",
                    "nessuna colonna è marcata `special`, ma i servizi richiesti, le code del call center o le pagine visitate (servizi sociali, salute) possono rivelare categorie particolari: valutare",
                ),
            ),
        },
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
        to_assess(
            7,
            [
                "data concerning vulnerable data subjects",
                "dati relativi a interessati vulnerabili",
            ],
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
        to_assess(
            9,
            [
                "processing that prevents data subjects from exercising a right or using a service",
                "trattamenti che impediscono di esercitare un diritto o di avvalersi di un servizio",
            ],
            both(
                "civica's outputs gate no service by themselves; whether they are used to do so depends on their use: assess",
                "gli output di civica non condizionano da soli l'accesso ad alcun servizio; se vi sono usati dipende dall'uso che se ne fa: valutare",
            ),
        ),
    ];
    let dpia_required = dpia_criteria.iter().filter(|c| c.met == Some(true)).count() >= 2;
    let mut locations: Vec<String> = plan
        .sources
        .iter()
        .map(|s| s.location.as_str())
        .chain(plan.outputs.iter().map(|o| o.location.as_str()))
        .chain(plan.runs.as_deref())
        .map(storage_of)
        .collect();
    locations.sort();
    locations.dedup();
    let controller = plan.controller.clone();
    let law = profiling.and_then(|p| p.law.clone());
    let mut to_complete = Vec::new();
    let mut ask = |missing: bool, what: &'static str, what_it: &'static str| {
        if missing {
            to_complete.push(ToComplete { what, what_it });
        }
    };
    ask(
        controller.is_none(),
        "the controller's name and contact (art. 30(1)(a)): `controller: { name, contact }`",
        "nome e dati di contatto del titolare (art. 30(1)(a)): `controller: { name, contact }`",
    );
    ask(
        controller.as_ref().is_none_or(|c| c.dpo.is_none()),
        "the contact of the data protection officer (art. 30(1)(a)): `controller: { dpo }`",
        "i dati di contatto del responsabile della protezione dei dati (art. 30(1)(a)): `controller: { dpo }`",
    );
    ask(
        profiling.is_some_and(|p| p.basis == crate::pipeline::LegalBasis::PublicInterest)
            && law.is_none(),
        "the law or regulation giving the task in the public interest (art. 2-ter, d.lgs. 196/2003): `profiling: { law }`",
        "la norma di legge o di regolamento che attribuisce il compito di interesse pubblico (art. 2-ter, d.lgs. 196/2003): `profiling: { law }`",
    );
    ask(
        controller.as_ref().is_none_or(|c| c.recipients.is_empty()),
        "who reads the outputs, by category (art. 30(1)(d)): `controller: { recipients }`",
        "chi legge gli output, per categorie (art. 30(1)(d)): `controller: { recipients }`",
    );
    ask(
        true,
        "whether the locations above are in the EU, else the safeguards of the transfer (art. 30(1)(e), chapter V)",
        "se le posizioni indicate sono nell'Unione europea, altrimenti le garanzie del trasferimento (art. 30(1)(e), capo V)",
    );
    ask(
        true,
        "whether the citizens include vulnerable people (DPIA criterion 7)",
        "se tra i cittadini vi sono persone vulnerabili (criterio 7 della DPIA)",
    );
    ask(
        true,
        "whether the segments feed decisions about citizens or gate a service (DPIA criteria 2 and 9)",
        "se i segmenti alimentano decisioni sui cittadini o condizionano l'accesso a un servizio (criteri 2 e 9 della DPIA)",
    );
    ask(
        !special,
        "whether the services, queues or pages the sources name reveal special categories (DPIA criterion 4)",
        "se i servizi, le code o le pagine nominati nelle fonti rivelano categorie particolari (criterio 4 della DPIA)",
    );
    Record {
        pipeline: plan.name.clone(),
        description: plan.description.clone(),
        controller,
        legal_basis: profiling.map(|p| p.basis.name()),
        law,
        purposes,
        categories,
        interactions,
        subject_sources,
        recipients,
        retention,
        safeguards,
        dpia_criteria,
        dpia_required,
        locations,
        to_complete,
    }
}

/// Where a location is, as the record names it: `local disk`, or the
/// bucket of an object store (`s3://lake`).
fn storage_of(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(url) if url.scheme() != "file" && url.has_host() => {
            format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
        }
        _ => "local disk".to_string(),
    }
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
        Why::Pseudonymised(kind) => {
            format!("pseudonimi con chiave (`{kind}`) della fonte")
        }
    }
}
