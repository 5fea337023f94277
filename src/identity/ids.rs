//! Profile ids that stay the same night after night. A profile with a
//! codice fiscale is known by the code's pseudonym (`pseudonym('cf', …)`),
//! so even a rebuild from scratch gives it the same id, and the id joins
//! with pseudonymised codes elsewhere. A profile without one inherits the
//! id of the previous night's profile that held most of its records
//! (ties: the lowest id), unless a larger share of that profile went
//! elsewhere; else it gets a new id, the pseudonym of its first record.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::resolve::Profiles;
use crate::privacy::PseudonymKey;

/// The kind of the pseudonyms that new profiles without a codice fiscale
/// are known by.
const MINTED_KIND: &str = "profile";

/// How each profile's id was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdOrigin {
    /// The pseudonym of its codice fiscale.
    CodiceFiscale,
    /// The previous night's id of the profile it overlaps most.
    Inherited,
    /// A new id.
    New,
}

/// The id of each profile and how it was chosen. `record_ids` are the
/// CRM's ids of the records, as text; `previous` maps each of last
/// night's records to its profile id.
pub fn profile_ids(
    profiles: &Profiles,
    record_ids: &[String],
    previous: &HashMap<String, String>,
    key: &PseudonymKey,
) -> Vec<(String, IdOrigin)> {
    let mut ids: Vec<Option<(String, IdOrigin)>> = profiles
        .cf
        .iter()
        .map(|cf| {
            cf.as_ref()
                .map(|cf| (key.pseudonym("cf", cf), IdOrigin::CodiceFiscale))
        })
        .collect();
    let mut taken: HashSet<String> = ids.iter().flatten().map(|(id, _)| id.clone()).collect();
    // Each profile without a code, with its overlap with each previous id.
    let mut claims: Vec<(usize, usize, String)> = Vec::new();
    for (profile, members) in profiles.members.iter().enumerate() {
        if ids[profile].is_some() {
            continue;
        }
        let mut overlap: BTreeMap<&str, usize> = BTreeMap::new();
        for &record in members {
            if let Some(id) = previous.get(&record_ids[record]) {
                *overlap.entry(id.as_str()).or_insert(0) += 1;
            }
        }
        claims.extend(
            overlap
                .into_iter()
                .map(|(id, count)| (count, profile, id.to_string())),
        );
    }
    // The largest overlaps first; ties to the lowest previous id, then to
    // the profile whose first record comes first.
    claims.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.2.cmp(&b.2))
            .then(a.1.cmp(&b.1))
    });
    for (_, profile, id) in claims {
        if ids[profile].is_none() && !taken.contains(&id) {
            taken.insert(id.clone());
            ids[profile] = Some((id, IdOrigin::Inherited));
        }
    }
    ids.into_iter()
        .enumerate()
        .map(|(profile, id)| {
            id.unwrap_or_else(|| {
                let first = &record_ids[profiles.members[profile][0]];
                let mut minted = key.pseudonym(MINTED_KIND, first);
                let mut salt = 0;
                while taken.contains(&minted) {
                    salt += 1;
                    minted = key.pseudonym(MINTED_KIND, &format!("{first}#{salt}"));
                }
                taken.insert(minted.clone());
                (minted, IdOrigin::New)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::resolve::{Seen, link_records};
    use crate::pipeline::IdentifierType::{Cf, Phone};

    fn key() -> PseudonymKey {
        PseudonymKey::new(&[9; 32], "a test").expect("key")
    }

    fn ids(records: &[Vec<(crate::pipeline::IdentifierType, Seen)>]) -> Vec<String> {
        (0..records.len()).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn a_code_gives_the_same_id_every_night_and_others_inherit_theirs() {
        let key = key();
        let phone = |p: &str| (Phone, Seen::Usable(p.into()));
        let records = vec![
            vec![(Cf, Seen::Usable("AAA1".into()))],
            vec![phone("+391")],
            vec![phone("+392")],
        ];
        let record_ids = ids(&records);
        let profiles = link_records(&records, &[Cf, Phone], 1);
        let first = profile_ids(&profiles, &record_ids, &HashMap::new(), &key);
        assert_eq!(
            first[0],
            (key.pseudonym("cf", "AAA1"), IdOrigin::CodiceFiscale)
        );
        assert_eq!(first[1].1, IdOrigin::New);
        assert_ne!(first[1].0, first[2].0);
        // The next night c1 and c2 share a phone: one profile, which keeps
        // the id of the earlier record's profile; c3 is new.
        let previous: HashMap<String, String> = record_ids
            .iter()
            .cloned()
            .zip(first.iter().map(|(id, _)| id.clone()))
            .collect();
        let records = vec![
            vec![(Cf, Seen::Usable("AAA1".into()))],
            vec![phone("+391")],
            vec![phone("+391")],
            vec![phone("+393")],
        ];
        let profiles = link_records(&records, &[Cf, Phone], 2);
        let record_ids = ids(&records);
        let second = profile_ids(&profiles, &record_ids, &previous, &key);
        assert_eq!(second[0], first[0]);
        let inherited = [&first[1].0, &first[2].0];
        assert!(inherited.contains(&&second[1].0), "{second:?}");
        assert_eq!(second[1].1, IdOrigin::Inherited);
        assert_eq!(second[2].1, IdOrigin::New);
        // Without a previous night, the same records give the same ids.
        let again = profile_ids(&profiles, &record_ids, &HashMap::new(), &key);
        assert_eq!(
            again,
            profile_ids(&profiles, &record_ids, &HashMap::new(), &key)
        );
    }

    #[test]
    fn a_split_profile_leaves_its_id_to_the_larger_part() {
        let key = key();
        let phone = |p: &str| (Phone, Seen::Usable(p.into()));
        let record_ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let previous: HashMap<String, String> = record_ids
            .iter()
            .map(|r| (r.clone(), "old".to_string()))
            .collect();
        let records = vec![
            vec![phone("+391")],
            vec![phone("+392")],
            vec![phone("+392")],
        ];
        let profiles = link_records(&records, &[Phone], 2);
        let got = profile_ids(&profiles, &record_ids, &previous, &key);
        assert_eq!(got[1], ("old".to_string(), IdOrigin::Inherited));
        assert_eq!(got[0].1, IdOrigin::New);
    }
}
