//! The demo population: the planted segments with their behaviour parameters, each citizen's compact profile, and the CRM citizens export with its ground-truth segment file.

use std::collections::{HashMap, HashSet};

use rand::RngCore;

use super::clock::{DAY, civil_from_days, days_from_civil, push_date, push_iso, push_num};
use super::names::{
    BOLOGNA, CAP_RANGE, COUNTRIES, EMAIL_PROVIDERS, FEMALE_NAMES, MALE_NAMES, OTHER_COMUNI,
    PEC_PROVIDERS, SURNAMES,
};
use super::sampling::{
    DemoRng, below, between, chance, key, pick, poisson, rng, stream, unit, weighted,
};
use super::site::{desktop_agent, household_isp, mobile_agent};
use super::{DemoError, Sink, Window};
use crate::identity::codice_fiscale::{self, ascii_letters};

/// A planted citizen segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Digitali,
    AnzianiTelefono,
    FamiglieScuola,
    Occasionali,
    DomandaFallita,
}

/// Hour-of-day weights (local time) for web activity.
pub(crate) type HourWeights = [u32; 24];
/// Half-hour weights from 08:30 to 18:00, the call center's opening hours.
pub(crate) type CallSlots = [u32; 19];

const WEB_LUNCH_EVENING: HourWeights = [
    3, 1, 1, 0, 0, 0, 1, 3, 5, 5, 5, 6, 12, 13, 8, 5, 5, 6, 9, 13, 16, 15, 10, 6,
];
const WEB_FAMILY: HourWeights = [
    1, 0, 0, 0, 0, 0, 1, 4, 9, 8, 6, 6, 8, 8, 6, 5, 5, 6, 7, 10, 13, 13, 8, 3,
];
const WEB_SENIOR: HourWeights = [
    0, 0, 0, 0, 0, 0, 1, 3, 8, 12, 12, 11, 6, 4, 5, 7, 7, 6, 5, 3, 2, 1, 0, 0,
];
/// General public browsing.
pub(crate) const WEB_GENERAL: HourWeights = [
    2, 1, 1, 0, 0, 0, 1, 3, 7, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7, 5, 3,
];
/// Failure demand happens while offices are reachable: people try online during the working day.
const WEB_WORKDAY: HourWeights = [
    1, 0, 0, 0, 0, 0, 1, 3, 8, 10, 10, 9, 7, 7, 9, 10, 9, 7, 5, 5, 4, 3, 2, 1,
];

const CALLS_MORNING: CallSlots = [
    9, 15, 17, 17, 16, 14, 11, 8, 5, 3, 4, 4, 4, 3, 3, 2, 2, 1, 1,
];
/// Call-center load through the day for the general public.
pub(crate) const CALLS_DAY: CallSlots =
    [5, 9, 11, 12, 12, 11, 10, 8, 5, 4, 6, 8, 9, 9, 8, 7, 6, 4, 3];

/// A segment the demo plants in its population, for the model to find:
/// its behaviour parameters; rates are per 90 days. (Not the pipeline's
/// `segment` section, `pipeline::SegmentSpec`.)
pub(crate) struct PlantedSegment {
    pub(crate) name: &'static str,
    share_permille: u32,
    pub(crate) age: (i64, i64),
    spid: f64,
    female: f64,
    foreign: f64,
    /// Sessions that go after a service (authenticated when the citizen has SPID).
    service_sessions: f64,
    /// Anonymous browsing sessions (news, events, opening hours).
    browse_sessions: f64,
    calls: f64,
    /// Share of calls that follow a failed web session on the same service.
    follow_share: f64,
    requests: f64,
    pub(crate) mobile_pct: u8,
    pub(crate) web_hours: &'static HourWeights,
    /// Whether service sessions happen mostly on working days.
    pub(crate) workday_web: bool,
    pub(crate) call_slots: &'static CallSlots,
    pub(crate) web_services: [u32; 9],
    pub(crate) call_services: [u32; 9],
    pub(crate) request_services: [u32; 9],
    /// Share of requests forced to `scuola` before drawing from `request_services`.
    pub(crate) school_share: f64,
    /// Request channel weights: sportello, web, email, telefono.
    pub(crate) channels: [u32; 4],
    pub(crate) satisfaction: [u32; 5],
    email_missing: f64,
    phone_missing: f64,
    consent_marketing: f64,
    consent_profiling: f64,
}

/// The planted segments, in [`Segment`] order.
pub(crate) const SEGMENTS: [PlantedSegment; 5] = [
    PlantedSegment {
        name: "digitali",
        share_permille: 250,
        age: (20, 45),
        spid: 0.98,
        female: 0.5,
        foreign: 0.08,
        service_sessions: 24.0,
        browse_sessions: 3.0,
        calls: 0.4,
        follow_share: 0.0,
        requests: 3.0,
        mobile_pct: 45,
        web_hours: &WEB_LUNCH_EVENING,
        workday_web: false,
        call_slots: &CALLS_DAY,
        web_services: [14, 18, 18, 3, 5, 6, 8, 10, 18],
        call_services: [20, 25, 20, 5, 5, 5, 10, 5, 5],
        request_services: [18, 22, 25, 2, 5, 8, 8, 7, 5],
        school_share: 0.0,
        channels: [8, 75, 12, 5],
        satisfaction: [3, 6, 18, 40, 33],
        email_missing: 0.03,
        phone_missing: 0.07,
        consent_marketing: 0.45,
        consent_profiling: 0.40,
    },
    PlantedSegment {
        name: "anziani_telefono",
        share_permille: 200,
        age: (66, 92),
        spid: 0.08,
        female: 0.58,
        foreign: 0.02,
        service_sessions: 0.3,
        browse_sessions: 0.4,
        calls: 9.0,
        follow_share: 0.0,
        requests: 2.0,
        mobile_pct: 15,
        web_hours: &WEB_SENIOR,
        workday_web: false,
        call_slots: &CALLS_MORNING,
        web_services: [20, 25, 5, 25, 0, 3, 5, 12, 5],
        call_services: [20, 25, 4, 25, 0, 3, 8, 12, 3],
        request_services: [20, 25, 4, 30, 0, 3, 5, 10, 3],
        school_share: 0.0,
        channels: [60, 0, 2, 38],
        satisfaction: [4, 8, 20, 38, 30],
        email_missing: 0.25,
        phone_missing: 0.01,
        consent_marketing: 0.20,
        consent_profiling: 0.12,
    },
    PlantedSegment {
        name: "famiglie_scuola",
        share_permille: 200,
        age: (32, 52),
        spid: 0.75,
        female: 0.55,
        foreign: 0.07,
        service_sessions: 9.0,
        browse_sessions: 2.0,
        calls: 1.5,
        follow_share: 0.0,
        requests: 5.0,
        mobile_pct: 55,
        web_hours: &WEB_FAMILY,
        workday_web: false,
        call_slots: &CALLS_DAY,
        web_services: [10, 12, 8, 6, 45, 3, 4, 5, 7],
        call_services: [10, 12, 5, 8, 45, 3, 4, 6, 7],
        request_services: [18, 22, 15, 10, 0, 8, 10, 10, 7],
        school_share: 0.75,
        channels: [12, 55, 28, 5],
        satisfaction: [5, 10, 22, 38, 25],
        email_missing: 0.04,
        phone_missing: 0.05,
        consent_marketing: 0.35,
        consent_profiling: 0.28,
    },
    PlantedSegment {
        name: "occasionali",
        share_permille: 250,
        age: (18, 85),
        spid: 0.40,
        female: 0.5,
        foreign: 0.07,
        service_sessions: 1.2,
        browse_sessions: 0.8,
        calls: 0.6,
        follow_share: 0.0,
        requests: 0.8,
        mobile_pct: 40,
        web_hours: &WEB_GENERAL,
        workday_web: false,
        call_slots: &CALLS_DAY,
        web_services: [22, 18, 12, 6, 5, 6, 10, 11, 10],
        call_services: [25, 20, 12, 8, 5, 6, 10, 9, 5],
        request_services: [30, 20, 12, 6, 5, 8, 10, 6, 3],
        school_share: 0.0,
        channels: [30, 30, 15, 25],
        satisfaction: [5, 9, 24, 36, 26],
        email_missing: 0.10,
        phone_missing: 0.08,
        consent_marketing: 0.30,
        consent_profiling: 0.22,
    },
    PlantedSegment {
        name: "domanda_fallita",
        share_permille: 100,
        age: (28, 65),
        // Failure demand is trying a service online first: that takes a
        // SPID login, so nearly all of these citizens have one.
        spid: 0.95,
        female: 0.5,
        foreign: 0.06,
        service_sessions: 8.0,
        browse_sessions: 1.5,
        calls: 6.0,
        follow_share: 0.8,
        requests: 2.0,
        mobile_pct: 30,
        web_hours: &WEB_WORKDAY,
        workday_web: true,
        call_slots: &CALLS_DAY,
        web_services: [16, 24, 18, 10, 5, 12, 8, 5, 2],
        call_services: [16, 24, 18, 10, 5, 12, 8, 5, 2],
        request_services: [16, 24, 18, 10, 5, 12, 8, 5, 2],
        school_share: 0.0,
        channels: [30, 30, 15, 25],
        satisfaction: [22, 26, 26, 16, 10],
        email_missing: 0.06,
        phone_missing: 0.01,
        consent_marketing: 0.30,
        consent_profiling: 0.25,
    },
];

impl Segment {
    const ALL: [Segment; 5] = [
        Segment::Digitali,
        Segment::AnzianiTelefono,
        Segment::FamiglieScuola,
        Segment::Occasionali,
        Segment::DomandaFallita,
    ];

    /// The segment's behaviour parameters.
    pub(crate) fn planted(self) -> &'static PlantedSegment {
        &SEGMENTS[self as usize]
    }
}

/// How many events of each kind a citizen has over the whole window: drawn once from Poisson
/// distributions, then spread over the days by the activity planner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Sessions that go after a service (authenticated when the citizen has SPID).
    pub(crate) service: u16,
    /// Anonymous browsing sessions.
    pub(crate) browse: u16,
    /// Calls independent of the web.
    pub(crate) calls: u16,
    /// Calls that follow a failed service session on the same service.
    pub(crate) followups: u16,
    /// Requests opened at a desk or by phone.
    pub(crate) office: u16,
    /// Requests opened on the web or by e-mail.
    pub(crate) online: u16,
}

/// What the activity generator needs to know about a citizen, kept compact so a million fit comfortably.
pub(crate) struct Profile {
    pub(crate) cf: [u8; 16],
    /// The e-mail address in the CRM, when it has one.
    pub(crate) email: Option<Box<str>>,
    /// The phone in the CRM as international digits (`39…`), 0 when the CRM has none.
    pub(crate) phone: u64,
    /// The number the citizen actually calls from.
    pub(crate) line: u64,
    /// Whether other citizens give the CRM the same number (a family's
    /// landline, an office's switchboard): calls from it tell no one.
    pub(crate) shared_line: bool,
    /// The citizen's second CRM record, when a clerk registered them
    /// again before the end of the window.
    pub(crate) duplicate: Option<Duplicate>,
    /// Key from which the household's dynamic addresses derive.
    pub(crate) net: u64,
    pub(crate) totals: Totals,
    pub(crate) segment: Segment,
    pub(crate) spid: bool,
    pub(crate) v6: bool,
    pub(crate) isp: u8,
    pub(crate) lease_days: u16,
    /// Services this citizen returns to most.
    pub(crate) fav: [u8; 2],
    /// Desktop and mobile browser.
    pub(crate) agents: [u8; 2],
}

/// A citizen's second CRM record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Duplicate {
    pub(crate) citizen_id: u64,
    /// When it was registered (epoch seconds).
    pub(crate) registered: i64,
}

/// Mobile prefixes handed out to citizens; numbers outside these never match a citizen.
const CITIZEN_PREFIXES: [u64; 30] = [
    320, 324, 327, 328, 329, 330, 333, 334, 335, 336, 337, 338, 339, 340, 345, 346, 347, 348, 349,
    350, 351, 352, 360, 366, 368, 380, 388, 389, 392, 393,
];
/// Mobile prefixes only strangers call from.
pub(crate) const STRANGER_PREFIXES: [u64; 8] = [331, 342, 344, 353, 370, 371, 377, 379];

/// A citizen's unique mobile number: an affine permutation of the index over the prefix space.
fn citizen_mobile(seed: u64, index: u64) -> u64 {
    const SPACE: u64 = 30 * 10_000_000;
    // Odd and free of the factors 3 and 5, so coprime with SPACE: the map is a bijection.
    const MULT: u64 = 2_654_435_761;
    let offset = key(&[seed, stream::PHONE]) % SPACE;
    let v = ((u128::from(index % SPACE) * u128::from(MULT) + u128::from(offset))
        % u128::from(SPACE)) as u64;
    let prefix = CITIZEN_PREFIXES[(v / 10_000_000) as usize % CITIZEN_PREFIXES.len()];
    39 * 10_000_000_000 + prefix * 10_000_000 + v % 10_000_000
}

/// A number that belongs to no citizen: a landline or a mobile on a stranger prefix.
pub(crate) fn stranger_number(rng: &mut DemoRng) -> u64 {
    let base = 39 * 10_000_000_000;
    match weighted(rng, &[45, 8, 5, 42]) {
        // Bologna landline: 051 + 7 digits, none a family's (051 2…).
        0 => {
            let n = below(rng, 10_000_000);
            base + 510_000_000 + if n / 1_000_000 == 2 { n + 1_000_000 } else { n }
        }
        // Roma and Milano landlines: 06/02 + 8 digits.
        1 => base + 600_000_000 + below(rng, 100_000_000),
        2 => base + 200_000_000 + below(rng, 100_000_000),
        _ => base + pick(rng, &STRANGER_PREFIXES) * 10_000_000 + below(rng, 10_000_000),
    }
}

/// Bologna landlines handed out to families: 051 2xxxxxx.
const FAMILY_LINES: u64 = 39 * 10_000_000_000 + 512_000_000;
/// The switchboards of two care homes, 051 2480111 and 051 2193111, which
/// some of their residents give as their number.
const SWITCHBOARDS: [u64; 2] = [
    39 * 10_000_000_000 + 512_480_111,
    39 * 10_000_000_000 + 512_193_111,
];

/// The number a citizen gives the CRM and calls from when it is not their
/// own mobile: three blocks of four citizens in 200 are a family with a
/// landline, which each member gives with even odds; three citizens in
/// two thousand give a care home's switchboard. From streams of
/// their own, so every other value is what it was.
///
/// Calls from a number the CRM has for several citizens tell no one, so a
/// citizen who calls a lot from one is segmented as if they never called:
/// the planted segment cannot be recovered for them (on the default lake,
/// 7 of the 4,884 segmented citizens; at 2.5% of families, 13 were, and
/// agreement with the planted segments fell from 0.902 to 0.898).
fn shared_number(seed: u64, index: u64) -> Option<u64> {
    let mut home = rng(&[seed, stream::FAMILY_LINE, index / 4]);
    if chance(&mut home, 0.015) {
        let line = FAMILY_LINES + below(&mut home, 1_000_000);
        let mut member = rng(&[seed, stream::FAMILY_LINE, index / 4, 1 + index % 4]);
        if chance(&mut member, 0.5) {
            return Some(line);
        }
    }
    let mut office = rng(&[seed, stream::SWITCHBOARD, index]);
    chance(&mut office, 0.0015).then(|| *pick(&mut office, &SWITCHBOARDS))
}

/// Appends international digits (`39…`) as one of the ways exports write
/// a number, drawn from `seed`: `+393471234567`, `3471234567`,
/// `+39 347 123 4567`, `0039 347…`, `347/1234567`, `(+39) 347…`,
/// `347-1234567`, `39347…`. Landlines keep their leading 0.
pub(crate) fn push_phone(buf: &mut Vec<u8>, digits: u64, seed: u64) {
    let mut r = rng(&[seed, stream::WRITING]);
    let text = digits.to_string();
    let national = text.strip_prefix("39").unwrap_or(&text);
    // Milano and Roma have two-digit area codes; 051 and mobiles three.
    let cut = if national.starts_with("02") || national.starts_with("06") {
        2
    } else {
        3
    };
    let (head, tail) = national.split_at(cut.min(national.len()));
    let written = match weighted(&mut r, &[40, 16, 10, 10, 8, 6, 5, 5]) {
        0 => format!("+39{national}"),
        1 => national.to_string(),
        2 => {
            let (mid, end) = tail.split_at(3.min(tail.len()));
            format!("+39 {head} {mid} {end}")
        }
        3 => format!("0039 {national}"),
        4 => format!("{head}/{tail}"),
        5 => format!("(+39) {head} {tail}"),
        6 => format!("{head}-{tail}"),
        _ => format!("39{national}"),
    };
    buf.extend_from_slice(written.as_bytes());
}

/// Appends how call-center exports write a withheld caller, drawn from
/// `seed`; an empty field is one of them.
pub(crate) fn push_withheld(buf: &mut Vec<u8>, seed: u64) {
    let mut r = rng(&[seed, stream::WRITING]);
    let written = pick::<&str>(
        &mut r,
        &[
            "anonimo",
            "anonimo",
            "anonimo",
            "Anonimo",
            "ANONIMO",
            "privato",
            "Numero privato",
            "sconosciuto",
            "anonymous",
            "",
        ],
    );
    buf.extend_from_slice(written.as_bytes());
}

fn email(rng: &mut DemoRng, first: &str, last: &str, birth_year: i64, age: i64) -> String {
    let (f, l) = (ascii_letters(first), ascii_letters(last));
    let yy = birth_year.rem_euclid(100);
    let mut local = String::with_capacity(32);
    match weighted(rng, &[34, 24, 10, 10, 10, 7, 5]) {
        0 => local.push_str(&format!("{f}.{l}")),
        1 => local.push_str(&format!("{f}.{l}{yy:02}")),
        2 => local.push_str(&format!("{f}{l}")),
        3 => local.push_str(&format!("{}{l}", f.chars().next().unwrap_or('x'))),
        4 => local.push_str(&format!("{f}{}", below(rng, 990) + 10)),
        5 => local.push_str(&format!("{l}.{f}")),
        _ => local.push_str(&format!("{f}_{l}{}", below(rng, 90) + 10)),
    }
    let domain = if chance(rng, 0.03) {
        pick(rng, &PEC_PROVIDERS).to_string()
    } else {
        let old = age >= 60;
        let w = EMAIL_PROVIDERS.map(|p| if old { p.2 } else { p.1 });
        EMAIL_PROVIDERS[weighted(rng, &w)].0.to_string()
    };
    format!("{local}@{domain}")
}

/// The address made a mailbox of its own, as a provider hands them out:
/// a second `mario.rossi@gmail.com` gets `mario.rossi2@gmail.com`. The
/// names lists are short, so at a million citizens two in five addresses
/// would otherwise be someone else's too. No draw is taken, so every
/// other value is what it was.
fn own_mailbox(address: String, taken: &mut HashSet<String>) -> String {
    if taken.insert(address.clone()) {
        return address;
    }
    let (local, domain) = address.split_once('@').unwrap_or((&address, ""));
    let mut n = 2;
    loop {
        let candidate = format!("{local}{n}@{domain}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

fn count(rng: &mut DemoRng, mean: f64) -> u16 {
    poisson(rng, mean).min(u32::from(u16::MAX)) as u16
}

/// Draws one citizen's identity and behaviour, appending its citizens.csv row (without a newline) to `row`.
fn draw_citizen(
    seed: u64,
    index: u64,
    window: &Window,
    seen: &mut HashSet<[u8; 16]>,
    mailboxes: &mut HashSet<String>,
    namesake: &mut Option<Namesake>,
    row: &mut Vec<u8>,
) -> Profile {
    let mut r = rng(&[seed, stream::CITIZEN, index]);
    let shares = SEGMENTS.map(|s| s.share_permille);
    let drawn = Segment::ALL[weighted(&mut r, &shares)];
    // The namesake lives as the first citizen does, being their age.
    let segment = match (index, namesake.as_ref()) {
        (NAMESAKE, Some(n)) => n.segment,
        _ => drawn,
    };
    let spec = segment.planted();

    // Ages bunch towards the middle of the segment's range, as a population pyramid's slices do.
    let span = (spec.age.1 - spec.age.0 + 1) as f64;
    let age = spec.age.0
        + (((unit(&mut r) + unit(&mut r) + unit(&mut r)) / 3.0 * span) as i64)
            .min(spec.age.1 - spec.age.0);
    // Born in the year up to the registry date's anniversary, so the age
    // on that date is `age`: the same people whatever the window.
    let (ey, em, ed) = civil_from_days(REGISTRY_DAY);
    let latest = days_from_civil(ey - age, em, ed);
    let earliest = days_from_civil(ey - age - 1, em, ed) + 1;
    let birth = between(&mut r, earliest, latest);
    let female = chance(&mut r, spec.female);

    let (first, last, place): (&'static str, &'static str, &'static str) =
        if chance(&mut r, spec.foreign) {
            let country = &COUNTRIES[weighted(&mut r, &COUNTRIES.map(|c| c.weight))];
            let first = if female {
                pick(&mut r, country.female)
            } else {
                pick(&mut r, country.male)
            };
            (first, *pick(&mut r, country.surnames), country.code)
        } else {
            let first = if female {
                pick(&mut r, &FEMALE_NAMES)
            } else {
                pick(&mut r, &MALE_NAMES)
            };
            // A mild Zipf tilt: the head of the surname list is more common, as in reality.
            let s = ((unit(&mut r).powf(1.6)) * SURNAMES.len() as f64) as usize;
            let last = SURNAMES[s.min(SURNAMES.len() - 1)];
            let place = if chance(&mut r, 0.62) {
                BOLOGNA
            } else {
                OTHER_COMUNI[weighted(&mut r, &OTHER_COMUNI.map(|c| c.weight))].code
            };
            (first, last, place)
        };
    // The first citizen's namesake, born the same day in the same place:
    // the Agenzia gives the later one an omocodic code.
    if index == 0 {
        *namesake = Some(Namesake {
            segment,
            first,
            last,
            place,
            birth,
            female,
        });
    }
    let (first, last, place, birth, female) = match (index, namesake.as_ref()) {
        (NAMESAKE, Some(n)) => (n.first, n.last, n.place, n.birth, n.female),
        _ => (first, last, place, birth, female),
    };
    let (by, bm, bd) = civil_from_days(birth);

    let base_cf = codice_fiscale::compute(last, first, (by, bm, bd), female, place);
    let mut cf = base_cf;
    // Two residents with the same code get omocodic variants, as the Agenzia delle Entrate does.
    let mut level = 0;
    while seen.contains(&cf) && level < 7 {
        level += 1;
        cf = codice_fiscale::omocode(&base_cf, level);
    }
    seen.insert(cf);

    let spid = chance(&mut r, spec.spid);
    let email_missing = spec.email_missing + if age >= 75 { 0.15 } else { 0.0 };
    let email = (!chance(&mut r, email_missing))
        .then(|| own_mailbox(email(&mut r, first, last, by, age), mailboxes));
    // About 5% overall; the call center records the numbers of those who call often.
    let phone = if chance(&mut r, spec.phone_missing) {
        0
    } else {
        citizen_mobile(seed, index)
    };
    let line = if phone == 0 {
        stranger_number(&mut r)
    } else {
        phone
    };
    let (phone, line) = shared_number(seed, index).map_or((phone, line), |n| (n, n));
    let cap = between(&mut r, i64::from(CAP_RANGE.0), i64::from(CAP_RANGE.1));
    let consent_marketing = chance(&mut r, spec.consent_marketing);
    let consent_profiling = consent_marketing
        && chance(
            &mut r,
            spec.consent_profiling / spec.consent_marketing.max(0.01),
        );

    // Registered some time in the ten years before the registry date (and
    // before the window, when that starts earlier), but not as a child.
    let registered_by = registered_before(window) * DAY;
    let adult = days_from_civil(by + 18, bm, bd.min(28)) * DAY;
    let lo = (registered_by - 3652 * DAY)
        .max(adult)
        .min(registered_by - DAY);
    let created_day = between(
        &mut r,
        lo.div_euclid(DAY),
        (registered_by - 1).div_euclid(DAY),
    );
    let hour = weighted(&mut r, &WEB_GENERAL) as i64;
    let created_at =
        (created_day * DAY + hour * 3600 + below(&mut r, 3600) as i64).clamp(lo, registered_by - 1);

    // Poisson noise on every count, plus a few citizens who break their segment's habits on one channel.
    let (mut web, mut calls, mut reqs) = (1.0, 1.0, 1.0);
    if chance(&mut r, 0.02) {
        match below(&mut r, 5) {
            0 => web = 0.2,
            1 => web = 2.5,
            2 => calls = 3.0,
            3 => calls = 0.15,
            _ => reqs = 3.0,
        }
    }
    let scale = f64::from(window.days) / 90.0;
    let (service, browse) = if spid || segment == Segment::DomandaFallita {
        (spec.service_sessions * web, spec.browse_sessions * web)
    } else {
        // Without SPID there is less to do online: part of the intent turns into plain browsing.
        (
            spec.service_sessions * web * 0.35,
            (spec.browse_sessions + spec.service_sessions * 0.25) * web,
        )
    };
    let office_share = f64::from(spec.channels[0] + spec.channels[3])
        / f64::from(spec.channels.iter().sum::<u32>().max(1));
    let mut totals = Totals {
        service: count(&mut r, service * scale),
        browse: count(&mut r, browse * scale),
        calls: count(
            &mut r,
            spec.calls * (1.0 - spec.follow_share) * calls * scale,
        ),
        followups: count(&mut r, spec.calls * spec.follow_share * calls * scale),
        office: count(&mut r, spec.requests * reqs * office_share * scale),
        online: count(&mut r, spec.requests * reqs * (1.0 - office_share) * scale),
    };
    if totals.service == 0 {
        // Nothing online to fail at: those calls happen anyway, unprompted.
        totals.calls = totals.calls.saturating_add(totals.followups);
        totals.followups = 0;
    }

    let fav = [
        weighted(&mut r, &spec.web_services) as u8,
        weighted(&mut r, &spec.web_services) as u8,
    ];
    let agents = [desktop_agent(&mut r), mobile_agent(&mut r)];
    let isp = household_isp(&mut r);
    let v6 = chance(&mut r, 0.15);
    let lease_days = between(&mut r, 20, 400) as u16;
    let net = r.next_u64();

    // citizen_id;codice_fiscale;first_name;last_name;birth_date;gender;comune_istat;cap;email;phone;spid_enrolled;consent_marketing;consent_profiling;objected_profiling;created_at
    push_num(row, 100_001 + index);
    row.push(b';');
    row.extend_from_slice(&cf);
    row.push(b';');
    row.extend_from_slice(first.as_bytes());
    row.push(b';');
    row.extend_from_slice(last.as_bytes());
    row.push(b';');
    push_date(row, birth);
    row.extend_from_slice(if female { b";F;037006;" } else { b";M;037006;" });
    push_num(row, cap as u64);
    row.push(b';');
    if let Some(e) = &email {
        row.extend_from_slice(e.as_bytes());
    }
    row.push(b';');
    if phone != 0 {
        push_phone(row, phone, key(&[seed, index]));
    }
    row.push(b';');
    // About 3% objected to profiling (GDPR art. 21), none of those who
    // consented to it. Drawn from the index alone, so that every other
    // value of the lake is what it was before the column existed.
    let objected = !consent_profiling && index.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58 < 2;
    for flag in [spid, consent_marketing, consent_profiling, objected] {
        row.extend_from_slice(if flag { b"true;" } else { b"false;" });
    }
    push_iso(row, created_at);

    Profile {
        cf,
        email: email.map(String::into_boxed_str),
        phone,
        line,
        shared_line: false,
        duplicate: None,
        net,
        totals,
        segment,
        spid,
        v6,
        isp,
        lease_days,
        fav,
        agents,
    }
}

/// The day the population is drawn for (1 January 2026, as an epoch
/// day): citizens are their segment's age on it and registered in the
/// ten years before it, so that lakes ending on different days hold the
/// same people under the same codes, as one CRM's exports on
/// consecutive nights do.
pub(crate) const REGISTRY_DAY: i64 = 20_454;

/// The epoch day before which the CRM's citizens were registered: the
/// registry date, or the window's first day when that is earlier.
fn registered_before(window: &Window) -> i64 {
    REGISTRY_DAY.min(window.first_day)
}

/// The citizen planted as the first one's namesake, with an omocodic code.
const NAMESAKE: u64 = 2;

/// Who the first citizen is, for their namesake.
pub(crate) struct Namesake {
    segment: Segment,
    first: &'static str,
    last: &'static str,
    place: &'static str,
    birth: i64,
    female: bool,
}

/// Header of `raw/crm/citizens/citizens.csv`.
pub(crate) const CITIZENS_HEADER: &str = "citizen_id;codice_fiscale;first_name;last_name;birth_date;gender;comune_istat;cap;email;phone;spid_enrolled;consent_marketing;consent_profiling;objected_profiling;created_at";

/// Writes the citizens export and the truth file, returning every citizen's profile.
pub(crate) fn write_population(window: &Window, citizens: u64) -> Result<Vec<Profile>, DemoError> {
    let mut crm = Sink::create(&window.out.join("raw/crm/citizens/citizens.csv"), false)?;
    let mut truth = Sink::create(&window.out.join("truth/segments.csv"), false)?;
    let mut records = Sink::create(&window.out.join("truth/crm_records.csv"), false)?;
    crm.write_line(CITIZENS_HEADER.as_bytes())?;
    truth.write_line(b"citizen_id,segment")?;
    records.write_line(b"citizen_id,person_id")?;
    let mut profiles = Vec::with_capacity(usize::try_from(citizens).unwrap_or(0));
    let mut seen = HashSet::with_capacity(usize::try_from(citizens).unwrap_or(0));
    let mut mailboxes = HashSet::with_capacity(usize::try_from(citizens).unwrap_or(0));
    let mut row = Vec::with_capacity(256);
    let mut namesake = None;
    let mut duplicates = Vec::new();
    let export_end = (window.last_day + 1) * DAY;
    for index in 0..citizens {
        row.clear();
        let p = draw_citizen(
            window.seed,
            index,
            window,
            &mut seen,
            &mut mailboxes,
            &mut namesake,
            &mut row,
        );
        crm.write_line(&row)?;
        if let Some((registered, second)) = duplicate(window.seed, index, &row, &p) {
            // In the export once registered.
            if registered < export_end {
                duplicates.push((registered, index, second));
            }
        }
        row.clear();
        push_num(&mut row, 100_001 + index);
        row.push(b',');
        row.extend_from_slice(p.segment.planted().name.as_bytes());
        truth.write_line(&row)?;
        // One record per person: the person is the citizen.
        row.clear();
        push_num(&mut row, 100_001 + index);
        row.push(b',');
        push_num(&mut row, 100_001 + index);
        records.write_line(&row)?;
        profiles.push(p);
    }
    // Test records, as every CRM has them: no one's, with codes and
    // contacts of no one (the blocklist's to catch).
    for (k, test) in TEST_RECORDS.iter().enumerate() {
        let id = 100_001 + citizens + k as u64;
        row.clear();
        push_num(&mut row, id);
        row.extend_from_slice(test.as_bytes());
        push_iso(
            &mut row,
            registered_before(window) * DAY - 400 * DAY + 9 * 3600,
        );
        crm.write_line(&row)?;
        row.clear();
        push_num(&mut row, id);
        row.push(b',');
        records.write_line(&row)?;
    }
    // The citizens recorded twice, after them in the order they were
    // registered again (so an export of a later day adds records and
    // renumbers none): the same person, planted in the same segment.
    duplicates.sort_unstable_by_key(|&(registered, index, _)| (registered, index));
    let first_duplicate = 100_001 + citizens + TEST_RECORDS.len() as u64;
    for (k, (registered, index, second)) in duplicates.iter().enumerate() {
        let id = first_duplicate + k as u64;
        let p = &mut profiles[*index as usize];
        p.duplicate = Some(Duplicate {
            citizen_id: id,
            registered: *registered,
        });
        row.clear();
        push_num(&mut row, id);
        row.extend_from_slice(second);
        crm.write_line(&row)?;
        row.clear();
        push_num(&mut row, id);
        row.push(b',');
        row.extend_from_slice(p.segment.planted().name.as_bytes());
        truth.write_line(&row)?;
        row.clear();
        push_num(&mut row, id);
        row.push(b',');
        push_num(&mut row, 100_001 + index);
        records.write_line(&row)?;
    }
    crm.finish()?;
    truth.finish()?;
    records.finish()?;
    // A number more than one citizen gives is a family's or an office's.
    let mut holders: HashMap<u64, u32> = HashMap::new();
    for p in profiles.iter().filter(|p| p.phone != 0) {
        *holders.entry(p.phone).or_insert(0) += 1;
    }
    for p in &mut profiles {
        p.shared_line = p.phone != 0 && holders.get(&p.phone).is_some_and(|&n| n > 1);
    }
    Ok(profiles)
}

/// One citizen in fifty is in the CRM twice: registered again by a clerk
/// who did not find them.
const DUPLICATED: f64 = 0.02;

/// A second record of the citizen whose row (`citizen_id` first) is
/// `original`, as clerks make them, after `citizen_id`, with the time it
/// was registered (in the year either side of the registry date, so a
/// lake ending later holds more of them): the same code
/// and a name mistyped (four in ten, which the codice fiscale rule
/// links), or the code left out (a third) or mistyped (a quarter), the
/// name as it was or mistyped, the number written another way, the
/// address kept or left out. Consent and objection are the original's.
/// `None` for the citizens not recorded twice. From a stream of its own,
/// so every other value is what it was.
fn duplicate(seed: u64, index: u64, original: &[u8], p: &Profile) -> Option<(i64, Vec<u8>)> {
    let mut r = rng(&[seed, stream::DUPLICATE, index]);
    if !chance(&mut r, DUPLICATED) {
        return None;
    }
    let text = std::str::from_utf8(original).ok()?;
    let mut f: Vec<String> = text.split(';').map(str::to_string).collect();
    let kind = weighted(&mut r, &[40, 35, 25]);
    let name = if chance(&mut r, 0.5) { 2 } else { 3 };
    match kind {
        0 => f[name] = typo(&mut r, &f[name]),
        1 => {
            f[1].clear();
            if chance(&mut r, 0.5) {
                f[name] = typo(&mut r, &f[name]);
            }
        }
        _ => {
            f[1] = mistype_code(&mut r, &f[1]);
            if chance(&mut r, 0.5) {
                f[name] = typo(&mut r, &f[name]);
            }
        }
    }
    if chance(&mut r, 0.5) {
        f[8].clear();
    }
    if p.phone != 0 && !f[9].is_empty() {
        let mut number = Vec::new();
        push_phone(&mut number, p.phone, r.next_u64());
        f[9] = String::from_utf8(number).ok()?;
    }
    let registered = between(&mut r, REGISTRY_DAY - 365, REGISTRY_DAY + 364) * DAY
        + between(&mut r, 8 * 3600, 17 * 3600);
    let mut created = Vec::new();
    push_iso(&mut created, registered);
    f[14] = String::from_utf8(created).ok()?;
    f[0].clear();
    Some((registered, f.join(";").into_bytes()))
}

/// A name with one slip of the keyboard: a letter dropped, doubled,
/// changed, or two swapped.
fn typo(r: &mut DemoRng, name: &str) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    if chars.len() < 3 {
        chars.push(chars[chars.len() - 1]);
        return chars.into_iter().collect();
    }
    // Never the first letter: names are looked up by it.
    let at = 1 + below(r, chars.len() as u64 - 1) as usize;
    match below(r, 4) {
        0 => {
            chars.remove(at);
        }
        1 => chars.insert(at, chars[at]),
        2 if at + 1 < chars.len() && chars[at] != chars[at + 1] => chars.swap(at, at + 1),
        _ => {
            let swap = if "aeiou".contains(chars[at]) {
                'e'
            } else {
                'n'
            };
            chars[at] = if chars[at] == swap { 'i' } else { swap };
        }
    }
    chars.into_iter().collect()
}

/// A codice fiscale with one character changed for another of its kind
/// (a letter for a letter, a digit for a digit): its check character no
/// longer holds.
fn mistype_code(r: &mut DemoRng, code: &str) -> String {
    let mut bytes = code.as_bytes().to_vec();
    let at = below(r, bytes.len() as u64) as usize;
    let c = bytes[at];
    let (base, span) = if c.is_ascii_digit() {
        (b'0', 10)
    } else {
        (b'A', 26)
    };
    bytes[at] = base + ((c - base) as u64 + 1 + below(r, span - 1)) as u8 % span as u8;
    String::from_utf8(bytes).unwrap_or_default()
}

/// The CRM's test records after `citizen_id`, up to `created_at`.
pub(crate) const TEST_RECORDS: [&str; 2] = [
    ";AAAAAA00A00A000A;Test;Test;1980-01-01;M;037006;40121;test@test.it;0000000000;false;false;false;false;",
    ";LVTEST80A41A944C;Prova;Utente;1980-01-01;F;037006;40121;prova@example.com;+39 0123456789;true;false;false;false;",
];

/// The codice fiscale of the CRM's test records that clerks type at the
/// desk to try the booking system.
pub(crate) const TEST_CODE: &[u8; 16] = b"AAAAAA00A00A000A";

impl Profile {
    /// Whether the CRM has the number the citizen calls from as theirs
    /// alone: only then does a call tell who made it.
    pub(crate) fn listed(&self) -> bool {
        self.phone != 0 && !self.shared_line
    }
}

impl Profile {
    /// The household's address on a given epoch day: stable for a lease, then renewed.
    pub(crate) fn household_lease(&self, day: i64) -> u64 {
        let period = i64::from(self.lease_days.max(1));
        let phase = (self.net % 400) as i64;
        key(&[
            self.net,
            stream::HOUSEHOLD,
            ((day + phase).div_euclid(period)) as u64,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_shares_add_up_to_one() {
        assert_eq!(SEGMENTS.iter().map(|s| s.share_permille).sum::<u32>(), 1000);
        for s in &SEGMENTS {
            assert_eq!(s.channels.len(), 4);
            assert!(s.web_services.iter().sum::<u32>() > 0);
        }
    }

    #[test]
    fn a_taken_address_gets_a_mailbox_of_its_own() {
        let mut taken = HashSet::new();
        let got: Vec<String> = [
            "mario.rossi@gmail.com",
            "mario.rossi@gmail.com",
            "mario.rossi@gmail.com",
            "anna@libero.it",
        ]
        .map(|a| own_mailbox(a.to_string(), &mut taken))
        .to_vec();
        assert_eq!(
            got,
            [
                "mario.rossi@gmail.com",
                "mario.rossi2@gmail.com",
                "mario.rossi3@gmail.com",
                "anna@libero.it"
            ]
        );
    }

    #[test]
    fn citizen_phone_numbers_are_unique_mobiles() {
        let mut seen = HashSet::new();
        for i in 0..200_000 {
            let n = citizen_mobile(42, i);
            let text = n.to_string();
            assert_eq!(text.len(), 12);
            assert!(text.starts_with("393"));
            let prefix: u64 = text[2..5].parse().unwrap();
            assert!(!STRANGER_PREFIXES.contains(&prefix));
            assert!(seen.insert(n), "duplicate {n}");
        }
    }

    #[test]
    fn every_way_a_number_is_written_reads_back_as_the_number() {
        use crate::identity::phone;
        let italy = phone::region("IT").unwrap();
        let mut forms = HashSet::new();
        let numbers = [393471234567u64, 390512345678, 390612345678, 390212345678];
        for (i, digits) in numbers.iter().enumerate() {
            for seed in 0..200u64 {
                let mut buf = Vec::new();
                push_phone(&mut buf, *digits, seed * 10 + i as u64);
                let text = String::from_utf8(buf).unwrap();
                let expected = format!("+{digits}");
                assert_eq!(phone::normalize(&text, italy), Some(expected), "{text}");
                forms.insert(text);
            }
        }
        assert!(forms.len() >= 4 * 8, "{forms:?}");
        for seed in 0..100 {
            let mut buf = Vec::new();
            push_withheld(&mut buf, seed);
            assert!(phone::is_withheld(std::str::from_utf8(&buf).unwrap()));
        }
    }

    #[test]
    fn families_and_care_homes_share_numbers() {
        let numbers: Vec<Option<u64>> = (0..20_000).map(|i| shared_number(42, i)).collect();
        let boards = numbers
            .iter()
            .flatten()
            .filter(|n| SWITCHBOARDS.contains(n))
            .count();
        let families = numbers.iter().flatten().count() - boards;
        // 20,000 × 1.5% × 1/2 and 20,000 × 0.15%.
        assert!((100..200).contains(&families), "{families}");
        assert!((14..50).contains(&boards), "{boards}");
        // A family's line is given only by its own block of four.
        for (i, n) in numbers.iter().enumerate() {
            if let Some(n) = n.filter(|n| !SWITCHBOARDS.contains(n)) {
                let block = i / 4;
                assert!(
                    numbers
                        .iter()
                        .enumerate()
                        .all(|(j, m)| *m != Some(n) || j / 4 == block)
                );
            }
        }
    }

    #[test]
    fn stranger_numbers_never_use_citizen_prefixes() {
        let mut r = rng(&[5]);
        for _ in 0..10_000 {
            let text = stranger_number(&mut r).to_string();
            assert!(text.starts_with("39"));
            let national = &text[2..];
            if national.starts_with('3') {
                let prefix: u64 = national[..3].parse().unwrap();
                assert!(!CITIZEN_PREFIXES.contains(&prefix));
            } else {
                assert!(national.starts_with('0'));
            }
        }
    }
}
