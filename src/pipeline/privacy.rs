//! The privacy sections as written: `profiling`, the legal basis of the
//! segment step and whom it must leave out; `erasure`, `retention`, and
//! `controller`, who answers for the processing in its record.

use serde::Deserialize;

/// `profiling:`: on what legal basis citizens are segmented, and where the
/// CRM says who consented or objected.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfilingSpec {
    /// `public_interest` (GDPR art. 6(1)(e), the usual basis of a public
    /// administration: consent can rarely be freely given to an authority)
    /// or `consent` (art. 6(1)(a)). Required.
    pub basis: LegalBasis,
    /// The table with one row per citizen holding the flags (the CRM's).
    /// Required.
    pub table: String,
    /// Its column matching the segment step's `id`. Default: the same name.
    #[serde(default)]
    pub id: Option<String>,
    /// A boolean column, true for citizens who consented to profiling.
    /// Required with `basis: consent`: everyone else is left out.
    #[serde(default)]
    pub consent: Option<String>,
    /// A boolean column, true for citizens who objected to profiling (art.
    /// 21): they are left out. Required with `basis: public_interest`.
    #[serde(default)]
    pub objection: Option<String>,
    /// With `public_interest`, the law or regulation that gives the
    /// municipality the task (art. 2-ter of the Codice, d.lgs. 196/2003),
    /// as the record of processing names it. Default: the record asks for it.
    #[serde(default)]
    pub law: Option<String>,
}

/// `controller:`: who answers for the processing (GDPR art. 30(1)(a)),
/// as the record of processing names them. Institutional contacts only.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSpec {
    /// The controller: the administration (`Comune di Bologna`). Required.
    pub name: String,
    /// How to reach it (a PEC address, a postal address). Default: none.
    #[serde(default)]
    pub contact: Option<String>,
    /// How to reach its data protection officer (`rpd@comune.…`).
    /// Default: none.
    #[serde(default)]
    pub dpo: Option<String>,
    /// Who reads the outputs, by category (`the RTD office`, `analysts of
    /// the statistics office`). Default: none.
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// `erasure:`: citizens whose data must be erased (GDPR art. 17), and
/// where their rows are in the sources.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ErasureSpec {
    /// A file or object (placeholders allowed) with one codice fiscale or
    /// pseudonym (`pseudonym('cf', …)`) per line; blank lines and lines
    /// starting with `#` are skipped. Required.
    pub list: String,
    /// Each source with rows of the erased citizens, and its column that
    /// says whose a row is: a codice fiscale (also as `TINIT-…`) or its
    /// pseudonym, or one of `ids`. Required.
    pub sources: std::collections::BTreeMap<String, String>,
    /// Columns whose values, in the rows of the erased citizens, identify
    /// them elsewhere (the CRM's `citizen_id`): rows of other sources are
    /// matched by them, and no published file keeps a row holding one.
    /// Default: the segment step's `id`.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
}

/// `retention:` of the runs folder's records.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    /// How long run manifests are kept (`400d`). Default: kept.
    #[serde(default)]
    pub manifests: Option<String>,
    /// How long check results are kept. Default: kept.
    #[serde(default)]
    pub checks: Option<String>,
}

/// How sensitive a column is, as `tags:` of a source declare it and as
/// civica finds it by content: what an output may carry only when it
/// declares it (`contains_personal_data`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Names the citizen alone: codice fiscale, name, an unmasked address.
    Identifier,
    /// Names the citizen together with others: birth date, postcode, sex.
    QuasiIdentifier,
    /// Reaches the citizen: phone, e-mail, postal address.
    Contact,
    /// A special category (GDPR art. 9: health, beliefs…) or judicial data
    /// (art. 10).
    Special,
    /// Not personal: clears what civica found by content.
    None,
}

impl Sensitivity {
    /// The tag as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            Sensitivity::Identifier => "identifier",
            Sensitivity::QuasiIdentifier => "quasi_identifier",
            Sensitivity::Contact => "contact",
            Sensitivity::Special => "special",
            Sensitivity::None => "none",
        }
    }
}

/// The legal basis of profiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// A task in the public interest (art. 6(1)(e)); objections honoured.
    PublicInterest,
    /// Consent (art. 6(1)(a)); only those who consented.
    Consent,
}

impl LegalBasis {
    /// The basis as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            LegalBasis::PublicInterest => "public_interest",
            LegalBasis::Consent => "consent",
        }
    }
}
