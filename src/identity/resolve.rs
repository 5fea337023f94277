//! Profiles from CRM records, and contacts attributed to them, by rules
//! tried in order.
//!
//! CRM records are linked into profiles by the identifiers they share,
//! one rule at a time (connected components by union–find). Two guards
//! keep junk and shared identifiers from merging people, the failure the
//! identity tools' users report most (Segment's QA `user_id` merging
//! hundreds of profiles, a family's one device in Mixpanel, Splink
//! converging on households):
//!
//! - a union that would give one profile two different codici fiscali is
//!   refused (an omocodic code is another code, so its holder stays apart);
//! - a phone or e-mail held by more profiles than `shared_above` links no
//!   one (a family landline, an office switchboard).
//!
//! A contact (a call, a desk visit, an e-mail, a portal session) never
//! links profiles: it is attributed by the first rule under which exactly
//! one profile holds its identifier, or left unattributed with the reason.

use std::collections::{BTreeMap, HashMap};

use crate::pipeline::IdentifierType;

/// What a row's identifier column held, once normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A value that may identify someone, in its canonical form.
    Usable(String),
    /// A value on the blocklist.
    Blocklisted,
    /// Not a value of its type (a wrong check character, not a number).
    Invalid,
    /// A withheld caller.
    Withheld,
}

/// A row's identifiers: each non-blank column's type and what it held.
pub type Row = Vec<(IdentifierType, Seen)>;

/// The values of types that are one identifier: a SPID subject is a
/// codice fiscale.
pub fn class(kind: IdentifierType) -> IdentifierType {
    match kind {
        IdentifierType::Spid => IdentifierType::Cf,
        other => other,
    }
}

/// Why a CRM record is in the profile of another.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The record joined.
    pub record: usize,
    /// The record of the profile it was joined to.
    pub linked_to: usize,
    /// What joined them.
    pub by: By,
}

/// What joined two records.
#[derive(Debug, Clone, PartialEq)]
pub enum By {
    /// A rule, through the identifier value (canonical) they share.
    Rule(IdentifierType, String),
    /// The probabilistic tier: the pair's match probability and its
    /// comparison levels (`first_name:one_edit,…`, no values).
    Score(f64, String),
}

/// CRM records grouped into profiles.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    /// The profile of each record, numbered from 0 in order of each
    /// profile's first record.
    pub profile_of: Vec<usize>,
    /// Each profile's records, in record order.
    pub members: Vec<Vec<usize>>,
    /// Each profile's codice fiscale, when one of its records has a
    /// usable one.
    pub cf: Vec<Option<String>>,
    /// The links that made the profiles, in the order they were made.
    pub links: Vec<Link>,
    /// Unions refused because they would join two codici fiscali.
    pub refused: usize,
    /// Values of each rule held by more profiles than `shared_above`
    /// when the rule was applied.
    pub shared: BTreeMap<IdentifierType, usize>,
}

/// Links CRM records (`records`, one `Row` each) into profiles by the
/// rules alone.
pub fn link_records(records: &[Row], rules: &[IdentifierType], shared_above: usize) -> Profiles {
    let mut linker = Linker::new(records);
    linker.by_rules(records, rules, shared_above);
    linker.finish()
}

/// Profiles in the making: the rules first, then scored pairs.
pub struct Linker {
    sets: Sets,
    links: Vec<Link>,
    refused: usize,
    shared: BTreeMap<IdentifierType, usize>,
}

impl Linker {
    /// Every record its own profile.
    pub fn new(records: &[Row]) -> Linker {
        Linker {
            sets: Sets::new(records),
            links: Vec::new(),
            refused: 0,
            shared: BTreeMap::new(),
        }
    }

    /// Links made so far.
    pub fn links(&self) -> usize {
        self.links.len()
    }

    /// Each record's profile so far, as the record that stands for it.
    pub fn roots(&mut self) -> Vec<usize> {
        (0..self.sets.parent.len())
            .map(|r| self.sets.find(r))
            .collect()
    }

    /// Joins the pairs of records the probabilistic tier is sure of, in
    /// the order given (the most likely first), each with its match
    /// probability and levels; a pair holding two different codici
    /// fiscali is refused.
    pub fn by_scores(&mut self, pairs: impl IntoIterator<Item = (usize, usize, f64, String)>) {
        for (a, b, probability, levels) in pairs {
            self.join(a, b, By::Score(probability, levels));
        }
    }

    fn join(&mut self, linked_to: usize, record: usize, by: By) {
        match self.sets.union(linked_to, record) {
            Union::Joined => self.links.push(Link {
                record,
                linked_to,
                by,
            }),
            Union::Refused => self.refused += 1,
            Union::Already => {}
        }
    }

    /// The profiles made.
    pub fn finish(self) -> Profiles {
        let mut profiles = self.sets.into_profiles();
        profiles.links = self.links;
        profiles.refused = self.refused;
        profiles.shared = self.shared;
        profiles
    }

    /// Links records by each rule in turn.
    pub fn by_rules(&mut self, records: &[Row], rules: &[IdentifierType], shared_above: usize) {
        for &rule in rules {
            // Sorted by value, so that unions (and refusals) come in an order
            // that does not depend on hashing.
            let mut holders: Vec<(&str, usize)> = Vec::with_capacity(records.len());
            for (record, row) in records.iter().enumerate() {
                for (kind, seen) in row {
                    if let (true, Seen::Usable(value)) = (*kind == rule, seen) {
                        holders.push((value.as_str(), record));
                    }
                }
            }
            holders.sort_unstable();
            holders.dedup();
            let capped = matches!(rule, IdentifierType::Phone | IdentifierType::Email);
            for held in holders.chunk_by(|x, y| x.0 == y.0) {
                let (value, list) = (held[0].0, held.iter().map(|&(_, r)| r));
                if capped {
                    let mut roots: Vec<usize> = list.clone().map(|r| self.sets.find(r)).collect();
                    roots.sort_unstable();
                    roots.dedup();
                    if roots.len() > shared_above {
                        *self.shared.entry(rule).or_insert(0) += 1;
                        continue;
                    }
                }
                let first = held[0].1;
                for record in list.skip(1) {
                    self.join(first, record, By::Rule(rule, value.to_string()));
                }
            }
        }
    }
}

/// Who holds each identifier value: the profiles, by value's class.
#[derive(Debug, Default)]
pub struct Holders<'a> {
    by_value: HashMap<(IdentifierType, &'a str), Vec<usize>>,
}

impl<'a> Holders<'a> {
    /// The holders of every usable value of the CRM records.
    pub fn of(records: &'a [Row], profiles: &Profiles) -> Holders<'a> {
        let mut by_value: HashMap<(IdentifierType, &str), Vec<usize>> =
            HashMap::with_capacity(records.len());
        for (record, row) in records.iter().enumerate() {
            let profile = profiles.profile_of[record];
            for (kind, seen) in row {
                if let Seen::Usable(value) = seen {
                    let list = by_value.entry((class(*kind), value.as_str())).or_default();
                    if !list.contains(&profile) {
                        list.push(profile);
                    }
                }
            }
        }
        Holders { by_value }
    }

    fn of_value<'s>(&'s self, kind: IdentifierType, value: &'s str) -> &'s [usize] {
        self.by_value
            .get(&(class(kind), value))
            .map_or(&[], Vec::as_slice)
    }
}

/// Why a contact is not attributed, from the least telling to the most
/// (a contact gets the most telling reason any of its identifiers gave).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unattributed {
    /// It carries no identifier.
    NoIdentifier,
    /// A withheld caller.
    Withheld,
    /// An identifier that is no value of its type.
    Invalid,
    /// An identifier on the blocklist.
    Blocklisted,
    /// An identifier no CRM citizen holds.
    Unknown,
    /// A codice fiscale held by more than one profile (only when the `cf`
    /// rule does not link them), or a phone or e-mail held by more than
    /// one and at most `shared_above`.
    Ambiguous,
    /// A phone or e-mail held by more than `shared_above` profiles.
    Shared,
}

impl Unattributed {
    /// The reason as `touchpoint_attribution.reason` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Unattributed::NoIdentifier => "no_identifier",
            Unattributed::Withheld => "withheld",
            Unattributed::Invalid => "invalid",
            Unattributed::Blocklisted => "blocklisted",
            Unattributed::Unknown => "unknown",
            Unattributed::Ambiguous => "ambiguous",
            Unattributed::Shared => "shared",
        }
    }
}

/// A contact's profile, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// Attributed to `profile` by `rule`, through `value`.
    To {
        /// The profile.
        profile: usize,
        /// The rule.
        rule: IdentifierType,
        /// The identifier value (canonical) it was found by.
        value: String,
    },
    /// Not attributed.
    Not(Unattributed),
}

/// Attributes one contact: the first rule under which exactly one profile
/// holds one of its identifiers.
pub fn attribute(
    row: &Row,
    holders: &Holders<'_>,
    rules: &[IdentifierType],
    shared_above: usize,
) -> Attribution {
    let mut why = Unattributed::NoIdentifier;
    for &rule in rules {
        for (kind, seen) in row.iter().filter(|(kind, _)| *kind == rule) {
            let reason = match seen {
                Seen::Usable(value) => match holders.of_value(*kind, value) {
                    [profile] => {
                        return Attribution::To {
                            profile: *profile,
                            rule,
                            value: value.clone(),
                        };
                    }
                    [] => Unattributed::Unknown,
                    many if class(*kind) != IdentifierType::Cf && many.len() > shared_above => {
                        Unattributed::Shared
                    }
                    _ => Unattributed::Ambiguous,
                },
                Seen::Blocklisted => Unattributed::Blocklisted,
                Seen::Invalid => Unattributed::Invalid,
                Seen::Withheld => Unattributed::Withheld,
            };
            why = why.max(reason);
        }
    }
    Attribution::Not(why)
}

/// Disjoint sets of records, each root knowing its codice fiscale.
struct Sets {
    parent: Vec<usize>,
    size: Vec<usize>,
    cf: Vec<Option<String>>,
}

enum Union {
    Joined,
    Already,
    Refused,
}

impl Sets {
    fn new(records: &[Row]) -> Sets {
        let cf = records
            .iter()
            .map(|row| {
                row.iter().find_map(|(kind, seen)| match seen {
                    Seen::Usable(value) if class(*kind) == IdentifierType::Cf => {
                        Some(value.clone())
                    }
                    _ => None,
                })
            })
            .collect();
        Sets {
            parent: (0..records.len()).collect(),
            size: vec![1; records.len()],
            cf,
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            // Path halving.
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) -> Union {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Union::Already;
        }
        if let (Some(x), Some(y)) = (&self.cf[ra], &self.cf[rb])
            && x != y
        {
            return Union::Refused;
        }
        let (big, small) = if self.size[ra] >= self.size[rb] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small] = big;
        self.size[big] += self.size[small];
        if self.cf[big].is_none() {
            self.cf[big] = self.cf[small].take();
        }
        Union::Joined
    }

    fn into_profiles(mut self) -> Profiles {
        let n = self.parent.len();
        let mut number: HashMap<usize, usize> = HashMap::new();
        let mut profiles = Profiles {
            profile_of: Vec::with_capacity(n),
            ..Profiles::default()
        };
        for record in 0..n {
            let root = self.find(record);
            let next = number.len();
            let profile = *number.entry(root).or_insert(next);
            if profile == profiles.members.len() {
                profiles.members.push(Vec::new());
                profiles.cf.push(self.cf[root].clone());
            }
            profiles.members[profile].push(record);
            profiles.profile_of.push(profile);
        }
        profiles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentifierType::{Cf, Email, Phone, Spid};

    fn usable(kind: IdentifierType, value: &str) -> (IdentifierType, Seen) {
        (kind, Seen::Usable(value.to_string()))
    }

    const RULES: [IdentifierType; 4] = [Cf, Spid, Phone, Email];

    #[test]
    fn records_sharing_a_code_are_one_profile_and_an_omocodic_code_is_another() {
        let records: Vec<Row> = vec![
            vec![
                usable(Cf, "RSSMRA85T10A562S"),
                usable(Phone, "+393471234567"),
            ],
            vec![usable(Cf, "RSSMRA85T10A562S")],
            // The omocodic code of another Mario Rossi.
            vec![usable(Cf, "RSSMRA85T10A56NH")],
            vec![(Cf, Seen::Blocklisted)],
        ];
        let profiles = link_records(&records, &RULES, 1);
        assert_eq!(profiles.profile_of, [0, 0, 1, 2]);
        assert_eq!(profiles.cf[0].as_deref(), Some("RSSMRA85T10A562S"));
        assert_eq!(profiles.cf[2], None);
        assert_eq!(
            profiles.links,
            [Link {
                record: 1,
                linked_to: 0,
                by: By::Rule(Cf, "RSSMRA85T10A562S".into())
            }]
        );
    }

    #[test]
    fn a_shared_phone_links_no_one_and_attributes_no_call() {
        // A family landline on three citizens, one mobile on one.
        let landline = "+390511234567";
        let records: Vec<Row> = vec![
            vec![usable(Cf, "AAA1"), usable(Phone, landline)],
            vec![usable(Cf, "BBB2"), usable(Phone, landline)],
            vec![usable(Phone, landline), usable(Phone, "+393471234567")],
        ];
        let profiles = link_records(&records, &RULES, 1);
        assert_eq!(profiles.members.len(), 3);
        assert_eq!(profiles.shared.get(&Phone), Some(&1));
        let holders = Holders::of(&records, &profiles);
        let call = |number: &str| attribute(&vec![usable(Phone, number)], &holders, &RULES, 1);
        assert_eq!(call(landline), Attribution::Not(Unattributed::Shared));
        assert_eq!(
            call("+393471234567"),
            Attribution::To {
                profile: 2,
                rule: Phone,
                value: "+393471234567".into()
            }
        );
        assert_eq!(
            call("+393339999999"),
            Attribution::Not(Unattributed::Unknown)
        );
    }

    #[test]
    fn a_link_that_would_join_two_codes_is_refused() {
        // Two citizens with one e-mail, allowed to link two profiles: their
        // codes still keep them apart; a record without a code joins.
        let records: Vec<Row> = vec![
            vec![usable(Cf, "AAA1"), usable(Email, "casa@example.org")],
            vec![usable(Cf, "BBB2"), usable(Email, "casa@example.org")],
            vec![usable(Email, "mario@example.org"), usable(Phone, "+39347")],
            vec![usable(Cf, "CCC3"), usable(Email, "mario@example.org")],
        ];
        let profiles = link_records(&records, &RULES, 2);
        assert_eq!(profiles.profile_of, [0, 1, 2, 2]);
        assert_eq!(profiles.refused, 1);
        assert_eq!(profiles.cf[2].as_deref(), Some("CCC3"));
        // The e-mail both hold attributes no contact.
        let holders = Holders::of(&records, &profiles);
        let mail = vec![usable(Email, "casa@example.org")];
        assert_eq!(
            attribute(&mail, &holders, &RULES, 2),
            Attribution::Not(Unattributed::Ambiguous)
        );
    }

    #[test]
    fn a_contact_is_attributed_by_the_first_rule_that_finds_one_profile() {
        let records: Vec<Row> = vec![
            vec![usable(Cf, "AAA1"), usable(Phone, "+391")],
            vec![usable(Cf, "BBB2"), usable(Phone, "+392")],
        ];
        let profiles = link_records(&records, &RULES, 1);
        let holders = Holders::of(&records, &profiles);
        // A desk visit with one citizen's code and the other's phone: the
        // code's rule comes first.
        let visit = vec![usable(Phone, "+392"), usable(Cf, "AAA1")];
        assert!(matches!(
            attribute(&visit, &holders, &RULES, 1),
            Attribution::To {
                profile: 0,
                rule: Cf,
                ..
            }
        ));
        // A portal session's SPID subject is a code.
        let session = vec![usable(Spid, "BBB2")];
        assert!(matches!(
            attribute(&session, &holders, &RULES, 1),
            Attribution::To {
                profile: 1,
                rule: Spid,
                ..
            }
        ));
        // The most telling reason wins.
        let junk = vec![(Phone, Seen::Withheld), (Cf, Seen::Blocklisted)];
        assert_eq!(
            attribute(&junk, &holders, &RULES, 1),
            Attribution::Not(Unattributed::Blocklisted)
        );
        assert_eq!(
            attribute(&vec![], &holders, &RULES, 1),
            Attribution::Not(Unattributed::NoIdentifier)
        );
        // A rule left out of `rules` attributes nothing.
        assert_eq!(
            attribute(&visit, &holders, &[Phone], 1),
            Attribution::To {
                profile: 1,
                rule: Phone,
                value: "+392".into()
            }
        );
    }
}
