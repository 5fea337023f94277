//! The identity step checked: its tables named and free, its rules, its
//! blocklist compiled over civica's defaults, its phone region known.

use regex::Regex;

use super::Tables;
use crate::identity::probabilistic::Settings;
use crate::pipeline::{
    Comparison, Diagnostic, IdentifierType, IdentitySpec, IdentityTableSpec, Located, PipelineSpec,
    ProbabilisticSpec,
};

/// The tables the identity step makes, in the order it makes them.
pub const IDENTITY_TABLES: [&str; 4] = [
    "identity_profiles",
    "identity_links",
    "identity_review",
    "touchpoint_attribution",
];

/// Values no one is known by, whatever the pipeline adds, as regular
/// expressions over normalised values: load-test and placeholder codici
/// fiscali of public PA code (`AAAAAA00A00A000A`, `LVTEST00A00…`), codes
/// born in a Belfiore `Y…` place (none exists: fake test data), temporary
/// codes of one repeated digit; numbered-in-sequence phones; mailboxes
/// that reach no one or everyone (`noreply@`, `@example.com`).
const DEFAULT_BLOCKLIST: &[(IdentifierType, &str)] = &[
    (IdentifierType::Cf, "^AAAAAA"),
    (IdentifierType::Cf, "^XXXXXX"),
    (IdentifierType::Cf, "^LVTEST"),
    (IdentifierType::Cf, "^.{11}Y.{4}$"),
    (IdentifierType::Cf, "^(0{11}|1{11}|9{11})$"),
    (
        IdentifierType::Phone,
        r"^\+39(0123456789|123456789|1234567890|3123456789)$",
    ),
    (
        IdentifierType::Email,
        "^(noreply|no-reply|no_reply|donotreply|do-not-reply|nomail|nessuna|nessuno|none|null|test|prova|x+)@",
    ),
    (
        IdentifierType::Email,
        r"@(example\.(com|org|net|it)|test\.(com|it)|invalid|localhost|nomail\.(com|it)|mailinator\.com)$",
    ),
];

/// A table the identity step reads.
#[derive(Debug, Clone)]
pub struct IdentityInput {
    /// The table.
    pub table: String,
    /// Its row id column.
    pub id: String,
    /// Its identifier columns, with their types.
    pub identifiers: Vec<(String, IdentifierType)>,
}

/// The probabilistic tier, checked.
#[derive(Debug, Clone)]
pub struct ProbabilisticPlan {
    /// The CRM columns compared, in the order `Settings::blocking` counts
    /// them, each with how.
    pub columns: Vec<(String, Comparison)>,
    /// Blocking, thresholds and the block cap.
    pub settings: Settings,
}

/// The identity step, checked.
#[derive(Debug, Clone)]
pub struct IdentityPlan {
    /// The CRM's citizen records.
    pub crm: IdentityInput,
    /// Contacts to attribute, by source name.
    pub touchpoints: Vec<(String, IdentityInput)>,
    /// Rules in the order they are tried.
    pub rules: Vec<IdentifierType>,
    /// Values no one is known by, per type (a SPID subject is a codice
    /// fiscale and is checked against the `cf` list too).
    pub blocklist: Vec<(IdentifierType, Regex)>,
    /// Profiles above which a phone or e-mail is shared.
    pub shared_above: usize,
    /// The country of national phone numbers.
    pub phone_region: phonenumber::country::Id,
    /// The probabilistic tier, when there is one.
    pub probabilistic: Option<ProbabilisticPlan>,
    /// The folder `identity_profiles` is published to, when it is: the
    /// previous night's profiles, whose ids profiles without a codice
    /// fiscale inherit.
    pub published: Option<String>,
    /// Where the section is written.
    pub located: Located<()>,
}

impl IdentityPlan {
    /// The tables it reads, the CRM first.
    pub fn reads(&self) -> impl Iterator<Item = &str> {
        self.inputs().map(|(_, input)| input.table.as_str())
    }

    /// Each table it reads, the CRM first, with where the section names it
    /// (`crm`, `touchpoints.calls`).
    pub fn inputs(&self) -> impl Iterator<Item = (String, &IdentityInput)> {
        std::iter::once(("crm".to_string(), &self.crm)).chain(
            self.touchpoints
                .iter()
                .map(|(name, input)| (format!("touchpoints.{name}"), input)),
        )
    }

    /// Whether `value`, normalised as a `kind`, is on the blocklist.
    pub fn is_blocked(&self, kind: IdentifierType, value: &str) -> bool {
        let list_of = |k: IdentifierType| match k {
            IdentifierType::Spid => IdentifierType::Cf,
            other => other,
        };
        self.blocklist
            .iter()
            .any(|(k, re)| list_of(*k) == list_of(kind) && re.is_match(value))
    }
}

/// The identity step, when the pipeline has one and its table names are
/// free (with what else is wrong in it reported, so that the steps after
/// it are still checked).
pub(super) fn plan_identity(
    file: &str,
    spec: &PipelineSpec,
    tables: &mut Tables,
    diags: &mut Vec<Diagnostic>,
) -> Option<IdentityPlan> {
    let section = spec.identity.as_ref()?;
    let id = &section.value;
    let mut free = true;
    for name in IDENTITY_TABLES {
        free &= tables.claim(name, section.pos, diags);
    }
    let crm = input(file, section, "crm", &id.crm, diags);
    let touchpoints: Vec<(String, IdentityInput)> = id
        .touchpoints
        .iter()
        .map(|(name, table)| {
            let at = format!("touchpoints.{name}");
            (name.clone(), input(file, section, &at, table, diags))
        })
        .collect();
    let rules = id
        .rules
        .clone()
        .unwrap_or_else(|| IdentifierType::ALL.to_vec());
    check_rules(file, section, &rules, diags);
    let blocklist = blocklist(file, section, id, diags);
    let shared_above = match id.shared_above {
        Some(0) => {
            diags.push(Diagnostic::at(
                file,
                section.pos_of("shared_above"),
                "`identity.shared_above` must be 1 or more: with 0 every phone and e-mail would be shared",
            ));
            1
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => 1,
    };
    let region_name = id.phone_region.as_deref().unwrap_or("IT");
    let phone_region = match crate::identity::phone::region(region_name) {
        Ok(region) => region,
        Err(err) => {
            diags.push(Diagnostic::at(
                file,
                section.pos_of("phone_region"),
                format!("`identity.phone_region`: {err}"),
            ));
            phonenumber::country::Id::IT
        }
    };
    let probabilistic = id
        .probabilistic
        .as_ref()
        .map(|tier| plan_probabilistic(file, section, tier, diags));
    free.then(|| IdentityPlan {
        crm,
        touchpoints,
        rules,
        blocklist,
        shared_above,
        phone_region,
        probabilistic,
        published: None,
        located: Located {
            value: (),
            pos: section.pos,
            fields: section.fields.clone(),
        },
    })
}

/// The probabilistic tier: its blocking rules name compared columns, its
/// thresholds are probabilities in order.
fn plan_probabilistic(
    file: &str,
    section: &Located<IdentitySpec>,
    tier: &ProbabilisticSpec,
    diags: &mut Vec<Diagnostic>,
) -> ProbabilisticPlan {
    let at = |key: &str| section.pos_of(&format!("probabilistic.{key}"));
    let columns: Vec<(String, Comparison)> = tier
        .compare
        .iter()
        .map(|(column, how)| (column.clone(), *how))
        .collect();
    if columns.is_empty() {
        diags.push(Diagnostic::at(
            file,
            at("compare"),
            "`identity.probabilistic.compare` is empty: name the CRM columns to compare and how (name, date, exact)",
        ));
    }
    if tier.blocking.is_empty() || tier.blocking.iter().any(Vec::is_empty) {
        diags.push(Diagnostic::at(
            file,
            at("blocking"),
            "`identity.probabilistic.blocking` needs at least one non-empty list of compared columns (`[birth_date, last_name]`): without blocking every pair of records would be compared",
        ));
    }
    let mut blocking = Vec::new();
    for rule in &tier.blocking {
        let mut on = Vec::new();
        for column in rule {
            match columns.iter().position(|(c, _)| c == column) {
                Some(i) => on.push(i),
                None => diags.push(Diagnostic::at(
                    file,
                    at("blocking"),
                    format!(
                        "`identity.probabilistic.blocking` names `{column}`, which is not in `identity.probabilistic.compare` (compared: {})",
                        crate::pipeline::backticked(&tier.compare.keys().map(String::as_str).collect::<Vec<_>>())
                    ),
                )),
            }
        }
        blocking.push(on);
    }
    let link_above = tier.link_above.unwrap_or(0.99);
    let review_above = tier.review_above.unwrap_or(0.5);
    if !(link_above > 0.0 && link_above <= 1.0) {
        diags.push(Diagnostic::at(
            file,
            at("link_above"),
            format!("`identity.probabilistic.link_above` is {link_above}: a match probability above 0 and at most 1"),
        ));
    }
    if !(review_above > 0.0 && review_above <= link_above) {
        diags.push(Diagnostic::at(
            file,
            at("review_above"),
            format!("`identity.probabilistic.review_above` is {review_above}: a match probability above 0 and at most `link_above` ({link_above})"),
        ));
    }
    let max_block = match tier.max_block {
        Some(0 | 1) => {
            diags.push(Diagnostic::at(
                file,
                at("max_block"),
                "`identity.probabilistic.max_block` must be 2 or more: a block of one record has no pair",
            ));
            2
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => 1000,
    };
    ProbabilisticPlan {
        columns,
        settings: Settings {
            blocking,
            link_above,
            review_above,
            max_block,
        },
    }
}

/// Points the identity step at the folder `identity_profiles` is
/// published to, when it is.
pub(super) fn resolve_published(plan: &mut super::Plan) {
    let published = plan
        .outputs
        .iter()
        .find(|o| o.table == IDENTITY_TABLES[0])
        .map(|o| o.location.clone());
    for step in &mut plan.steps {
        if let super::Step::Identity(identity) = step {
            identity.published = published.clone();
        }
    }
}

/// One table of the section, with its identifier columns checked against
/// the rules.
fn input(
    file: &str,
    section: &Located<IdentitySpec>,
    at: &str,
    table: &IdentityTableSpec,
    diags: &mut Vec<Diagnostic>,
) -> IdentityInput {
    if table.identifiers.is_empty() {
        diags.push(Diagnostic::at(
            file,
            section.pos_of(&format!("{at}.identifiers")),
            format!(
                "`identity.{at}.identifiers` is empty: name at least one column and its type (cf, spid, phone, email)"
            ),
        ));
    }
    if table.identifiers.contains_key(&table.id) {
        diags.push(Diagnostic::at(
            file,
            section.pos_of(&format!("{at}.id")),
            format!(
                "`identity.{at}.id` is `{}`, one of its identifiers: the id is shown in the identity tables, so it must be the table's own record id, not a personal identifier",
                table.id
            ),
        ));
    }
    IdentityInput {
        table: table.table.clone(),
        id: table.id.clone(),
        identifiers: table
            .identifiers
            .iter()
            .map(|(column, kind)| (column.clone(), *kind))
            .collect(),
    }
}

fn check_rules(
    file: &str,
    section: &Located<IdentitySpec>,
    rules: &[IdentifierType],
    diags: &mut Vec<Diagnostic>,
) {
    if rules.is_empty() {
        diags.push(Diagnostic::at(
            file,
            section.pos_of("rules"),
            "`identity.rules` is empty: name the rules in the order to try them (cf, spid, phone, email)",
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        if rules[..i].contains(rule) {
            diags.push(Diagnostic::at(
                file,
                section.pos_of(&format!("rules[{i}]")),
                format!("`identity.rules` names `{}` twice", rule.name()),
            ));
        }
    }
}

fn blocklist(
    file: &str,
    section: &Located<IdentitySpec>,
    id: &IdentitySpec,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(IdentifierType, Regex)> {
    let mut compiled: Vec<(IdentifierType, Regex)> = DEFAULT_BLOCKLIST
        .iter()
        .filter_map(|(kind, pattern)| Regex::new(pattern).ok().map(|re| (*kind, re)))
        .collect();
    for (kind, patterns) in &id.blocklist {
        for (i, pattern) in patterns.iter().enumerate() {
            match Regex::new(pattern) {
                Ok(re) => compiled.push((*kind, re)),
                Err(err) => diags.push(Diagnostic::at(
                    file,
                    section.pos_of(&format!("blocklist.{}[{i}]", kind.name())),
                    format!(
                        "`identity.blocklist.{}` has `{pattern}`, not a regular expression: {}",
                        kind.name(),
                        err.to_string().lines().last().unwrap_or_default().trim()
                    ),
                )),
            }
        }
    }
    compiled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_blocklist_pattern_compiles() {
        for (kind, pattern) in DEFAULT_BLOCKLIST {
            assert!(Regex::new(pattern).is_ok(), "{kind:?} {pattern}");
        }
    }
}
