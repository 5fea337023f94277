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
