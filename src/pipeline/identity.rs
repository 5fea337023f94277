//! The `identity` section as written: which tables hold the CRM's citizen
//! records and the contacts to attribute (calls, desk visits, e-mails,
//! portal sessions), which of their columns carry which identifier, the
//! values that are no one's, when an identifier is shared, and the order
//! rules are tried in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `identity:`: one citizen across every touchpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// The CRM: one row per citizen record. Profiles are made of its
    /// records; duplicates of one person end in one profile. Required.
    pub crm: IdentityTableSpec,
    /// The tables of contacts to attribute to a profile, by the name
    /// `touchpoint_attribution.source` shows (`calls`, `desk`, `email`,
    /// `portal`). A contact never merges profiles: it is attributed to the
    /// one profile holding its identifier, or to none. Default: none.
    #[serde(default)]
    pub touchpoints: BTreeMap<String, IdentityTableSpec>,
    /// The rules, tried in this order: to link CRM records into profiles,
    /// and to attribute each contact (the first rule that finds one
    /// profile wins). Default `[cf, spid, phone, email]`.
    #[serde(default)]
    pub rules: Option<Vec<IdentifierType>>,
    /// Values that identify no one, as regular expressions over the
    /// normalised value (`^AAAAAA00A00A000.$`), by identifier type; added
    /// to civica's defaults (README, "Identity resolution"). Default: none.
    #[serde(default)]
    pub blocklist: BTreeMap<IdentifierType, Vec<String>>,
    /// A phone number or e-mail address held by more CRM citizens
    /// (profiles) than this is shared (a family landline, an office
    /// switchboard): it links no one and attributes no contact. Default 1.
    #[serde(default)]
    pub shared_above: Option<u64>,
    /// The country of phone numbers written without a country code, as
    /// its ISO 3166 code. Default `IT`.
    #[serde(default)]
    pub phone_region: Option<String>,
    /// After the rules, CRM records that no rule linked but that read as
    /// one person (a name mistyped, the codice fiscale left out), scored
    /// as Fellegi and Sunter did. Default: no such tier.
    #[serde(default)]
    pub probabilistic: Option<ProbabilisticSpec>,
}

/// `identity.probabilistic`: the CRM's duplicates found by weighing how
/// well their columns agree (README, "Identity resolution").
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbabilisticSpec {
    /// The CRM columns compared, each with how: `name` (equal, one edit,
    /// similar, different), `date` (equal, one edit or day and month
    /// swapped, different) or `exact`. A column that is one of the CRM's
    /// identifiers is compared in its normalised form. Required.
    pub compare: BTreeMap<String, Comparison>,
    /// Only records that agree on every column of at least one of these
    /// lists of compared columns are compared (`[birth_date,
    /// last_name]`). Required.
    pub blocking: Vec<Vec<String>>,
    /// The match probability from which two records are one profile
    /// (unless they hold two different codici fiscali). Default 0.99.
    #[serde(default)]
    pub link_above: Option<f64>,
    /// The match probability from which a pair not linked is listed in
    /// `identity_review` for a person to decide. Default 0.5.
    #[serde(default)]
    pub review_above: Option<f64>,
    /// Blocks of more records than this are not compared (a placeholder
    /// date many records share). Default 1000.
    #[serde(default)]
    pub max_block: Option<u64>,
}

/// How a column is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Names: equal, one edit, similar (Jaro–Winkler ≥ 0.88), different.
    Name,
    /// Dates: equal, one edit or day and month swapped, different.
    Date,
    /// Equal or different.
    Exact,
}

/// A table the identity step reads: its record id and its identifier
/// columns.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentityTableSpec {
    /// The table (a source or a transform). Required.
    pub table: String,
    /// Its column identifying a row (the CRM's `citizen_id`, a call's
    /// `call_id`): shown in the identity tables, so it must not be a
    /// personal identifier. Required.
    pub id: String,
    /// Its columns holding identifiers, each with its type. Required.
    pub identifiers: BTreeMap<String, IdentifierType>,
}

/// An identifier type: how a value is normalised and which rule it links by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierType {
    /// A codice fiscale (check character tested; an omocodic code is
    /// another person's).
    Cf,
    /// A SPID or CIE subject (`TINIT-<codice fiscale>`): a codice fiscale
    /// linked by its own rule.
    Spid,
    /// A phone number, to E.164.
    Phone,
    /// An e-mail or PEC address.
    Email,
}

impl IdentifierType {
    /// The type as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            IdentifierType::Cf => "cf",
            IdentifierType::Spid => "spid",
            IdentifierType::Phone => "phone",
            IdentifierType::Email => "email",
        }
    }

    /// Every type, in the default order of rules.
    pub const ALL: [IdentifierType; 4] = [
        IdentifierType::Cf,
        IdentifierType::Spid,
        IdentifierType::Phone,
        IdentifierType::Email,
    ];
}
