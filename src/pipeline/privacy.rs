//! The privacy sections as written: `profiling`, the legal basis of the
//! segment step and whom it must leave out.

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
