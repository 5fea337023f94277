//! Day-by-day activity of the demo lake: plans every citizen's web sessions, calls and service requests one day at a time, writes the call-center and CRM request exports, the desk and e-mail exports of the requests opened there (`contacts.rs`) with the truth of whose each contact is, and hands each day's sessions to the web-log writers.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;

use rand::{RngCore, SeedableRng};

use super::clock::{
    DAY, date_string, local_to_utc, push_decimal_comma, push_iso, push_italian, push_num, push_pad,
    utc_to_local, weekday,
};
use super::contacts;
use super::population::{
    CALLS_DAY, HourWeights, Profile, Segment, Totals, push_phone, push_withheld, stranger_number,
};
use super::sampling::{
    DemoRng, below, between, binomial, chance, log_uniform, lognormal, poisson, rng, stream,
    weighted,
};
use super::site::{SCUOLA, SERVICES};
use super::weblog::{self, SessionKind, SessionPlan};
use super::{DemoError, Sink, Window};

/// Weekday weights (Monday first) for spreading a citizen's events over the window; each averages 1.
const WEB_WEEK: [f64; 7] = [1.08, 1.06, 1.05, 1.04, 0.98, 0.85, 0.94];
/// Working-day weights for citizens who go online while offices are open.
const WORK_WEEK: [f64; 7] = [1.25, 1.2, 1.2, 1.2, 1.1, 0.6, 0.45];
/// The call center is closed on Sundays and quieter on Saturdays.
const CALL_WEEK: [f64; 7] = [1.40, 1.25, 1.20, 1.20, 1.15, 0.80, 0.0];
/// Desks and phone lines for requests work Monday to Friday.
const OFFICE_WEEK: [f64; 7] = [1.4, 1.4, 1.4, 1.4, 1.4, 0.0, 0.0];
/// Half-hour weights from 08:30 to 17:00 for requests opened at a desk or by phone.
const OFFICE_SLOTS: [u32; 17] = [5, 9, 11, 12, 12, 11, 10, 8, 5, 2, 3, 6, 7, 7, 6, 5, 3];

/// Call-center opening, 08:30, in seconds after midnight.
const OPEN: i64 = 8 * 3600 + 1800;
/// Call-center closing, 18:00.
const CLOSE: i64 = 18 * 3600;

const CHANNELS: [&str; 4] = ["sportello", "web", "email", "telefono"];

/// Header of the daily call-center exports.
pub(crate) const CALLS_HEADER: &str =
    "call_id;caller_number;started_at;wait_s;talk_s;queue;outcome;agent_id";
/// Header of the CRM service-request export.
pub(crate) const REQUESTS_HEADER: &str =
    "request_id;citizen_id;opened_at;closed_at;service;channel;status;satisfaction";

/// A call to plan; the details are drawn from `seed` when written.
#[derive(Clone, Copy, Debug)]
struct CallPlan {
    start: i64,
    /// International digits of the caller, 0 for a withheld number.
    number: u64,
    queue: u8,
    seed: u64,
    /// Seniors talk longer.
    slow: bool,
    /// Whether the number is the one in the CRM.
    listed: bool,
    /// The citizen calling, when one is.
    citizen: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
struct RequestPlan {
    opened: i64,
    citizen: u32,
    seed: u64,
    service: u8,
    channel: u8,
    segment: Segment,
}

#[derive(Default)]
struct DayPlan {
    sessions: Vec<SessionPlan>,
    calls: Vec<CallPlan>,
    followups: Vec<CallPlan>,
    requests: Vec<RequestPlan>,
    pages: u64,
}

fn at_hour(r: &mut DemoRng, day: i64, hours: &HourWeights) -> i64 {
    let h = weighted(r, hours) as i64;
    local_to_utc(day * DAY + h * 3600 + below(r, 3600) as i64)
}

fn at_slot(r: &mut DemoRng, day: i64, slots: &[u32]) -> i64 {
    let s = weighted(r, slots) as i64;
    local_to_utc(day * DAY + OPEN + s * 1800 + below(r, 1800) as i64)
}

/// The first call-center opening at or after an instant, with a few minutes' jitter when moved.
fn next_opening(utc: i64, r: &mut DemoRng) -> i64 {
    let local = utc_to_local(utc);
    let day = local.div_euclid(DAY);
    let tod = local.rem_euclid(DAY);
    let open_day = weekday(day) <= 5;
    if open_day && (OPEN..CLOSE).contains(&tod) {
        return utc;
    }
    let mut d = if open_day && tod < OPEN { day } else { day + 1 };
    while weekday(d) == 6 {
        d += 1;
    }
    local_to_utc(d * DAY + OPEN + below(r, 1200) as i64)
}

fn pick_service(r: &mut DemoRng, p: &Profile, weights: &[u32; 9], fav_share: f64) -> u8 {
    if chance(r, fav_share) {
        p.fav[below(r, 2) as usize]
    } else {
        weighted(r, weights) as u8
    }
}

/// Suffix sums of a weekday weighting over the window: how much of it lies on or after each day.
struct Spread {
    week: [f64; 7],
    suffix: Vec<f64>,
}

impl Spread {
    fn new(window: &Window, week: [f64; 7]) -> Self {
        let days = window.days as usize;
        let mut suffix = vec![0.0; days + 1];
        for i in (0..days).rev() {
            suffix[i] = suffix[i + 1] + week[weekday(window.first_day + i as i64)];
        }
        Self { week, suffix }
    }

    /// The chance that one of a citizen's remaining events falls on day `i` rather than later; the last
    /// open day takes whatever remains, so every drawn total is placed.
    fn share(&self, i: usize, wd: usize) -> f64 {
        match self.suffix.get(i) {
            Some(&rest) if rest > 0.0 => self.week[wd] / rest,
            _ => 0.0,
        }
    }
}

/// The weekday weightings of the window, one per kind of event.
struct Spreads {
    web: Spread,
    work: Spread,
    calls: Spread,
    office: Spread,
}

impl Spreads {
    fn new(window: &Window) -> Self {
        Self {
            web: Spread::new(window, WEB_WEEK),
            work: Spread::new(window, WORK_WEEK),
            calls: Spread::new(window, CALL_WEEK),
            office: Spread::new(window, OFFICE_WEEK),
        }
    }
}

/// Takes today's share of a remaining count.
fn take(r: &mut DemoRng, left: &mut u16, share: f64) -> u16 {
    let n = binomial(r, u32::from(*left), share).min(u32::from(*left)) as u16;
    *left -= n;
    n
}

/// Plans one citizen's activity on day `i` of the window from its own `(seed, citizen, day)` stream,
/// drawing today's part of the citizen's remaining totals.
fn plan_citizen(
    window: &Window,
    spreads: &Spreads,
    index: u32,
    p: &Profile,
    i: usize,
    left: &mut Totals,
    plan: &mut DayPlan,
) {
    let day = window.first_day + i as i64;
    let mut r = rng(&[
        window.seed,
        stream::CITIZEN_DAY,
        u64::from(index),
        day as u64,
    ]);
    let spec = p.segment.planted();
    let wd = weekday(day);

    let week = if spec.workday_web {
        &spreads.work
    } else {
        &spreads.web
    };
    let sessions = binomial(&mut r, u32::from(left.service), week.share(i, wd));
    for _ in 0..sessions {
        let start = at_hour(&mut r, day, spec.web_hours);
        let service = pick_service(&mut r, p, &spec.web_services, 0.6);
        // Spread the follow-up calls over the remaining sessions; the last one takes what is left.
        let followups = if left.service <= 1 {
            left.followups
        } else {
            let k = binomial(
                &mut r,
                u32::from(left.followups),
                1.0 / f64::from(left.service),
            );
            (k.min(u32::from(left.followups))) as u16
        };
        left.service = left.service.saturating_sub(1);
        left.followups = left.followups.saturating_sub(followups);
        let failing = followups > 0;
        let (pages, login) = if p.spid {
            (
                (4 + poisson(&mut r, 3.0)).min(12),
                between(&mut r, 20, 90) as f64,
            )
        } else {
            (
                (3 + poisson(&mut r, 1.5))
                    .min(10)
                    .max(if failing { 4 } else { 3 }),
                0.0,
            )
        };
        let dur = (f64::from(pages) * lognormal(&mut r, 30.0, 0.5) + login)
            .clamp(f64::from(pages) * 4.0, 1800.0) as u32;
        plan.pages += u64::from(pages);
        plan.sessions.push(SessionPlan {
            start,
            seed: r.next_u64(),
            citizen: index,
            dur,
            kind: SessionKind::Service,
            service,
            pages: pages as u8,
            failing,
        });
        for _ in 0..followups {
            // Tried online, gave up, phoned the same service some minutes to hours later. The two minutes
            // of slack cover a script that runs a page or two past the planned duration.
            let after = start + i64::from(dur) + 120 + log_uniform(&mut r, 600.0, 71_880.0) as i64;
            let at = next_opening(after, &mut r);
            plan.followups.push(CallPlan {
                start: at,
                number: p.line,
                queue: service,
                seed: r.next_u64(),
                slow: false,
                listed: p.listed(),
                citizen: Some(index),
            });
        }
    }

    let browses = take(&mut r, &mut left.browse, spreads.web.share(i, wd));
    for _ in 0..browses {
        let start = at_hour(&mut r, day, spec.web_hours);
        let pages = (1 + poisson(&mut r, 1.5)).min(8);
        let dur = (f64::from(pages) * lognormal(&mut r, 30.0, 0.5))
            .clamp(f64::from(pages) * 4.0, 1800.0) as u32;
        plan.pages += u64::from(pages);
        plan.sessions.push(SessionPlan {
            start,
            seed: r.next_u64(),
            citizen: index,
            dur,
            kind: SessionKind::Browse,
            service: 0,
            pages: pages as u8,
            failing: false,
        });
    }

    let calls = take(&mut r, &mut left.calls, spreads.calls.share(i, wd));
    for _ in 0..calls {
        let start = at_slot(&mut r, day, spec.call_slots);
        let queue = pick_service(&mut r, p, &spec.call_services, 0.25);
        plan.calls.push(CallPlan {
            start,
            number: p.line,
            queue,
            seed: r.next_u64(),
            slow: p.segment == Segment::AnzianiTelefono,
            listed: p.listed(),
            citizen: Some(index),
        });
    }

    let office = take(&mut r, &mut left.office, spreads.office.share(i, wd));
    let online = take(&mut r, &mut left.online, spreads.web.share(i, wd));
    for k in 0..office + online {
        let in_office = k < office;
        let channel = if in_office {
            if weighted(&mut r, &[spec.channels[0], spec.channels[3]]) == 0 {
                0
            } else {
                3
            }
        } else if weighted(&mut r, &[spec.channels[1], spec.channels[2]]) == 0 {
            1
        } else {
            2
        };
        let opened = if in_office {
            at_slot(&mut r, day, &OFFICE_SLOTS)
        } else {
            at_hour(&mut r, day, spec.web_hours)
        };
        let service = if chance(&mut r, spec.school_share) {
            SCUOLA
        } else {
            let fav = p.fav[below(&mut r, 2) as usize];
            if chance(&mut r, 0.3) && spec.request_services[usize::from(fav)] > 0 {
                fav
            } else {
                weighted(&mut r, &spec.request_services) as u8
            }
        };
        plan.requests.push(RequestPlan {
            opened,
            citizen: index,
            seed: r.next_u64(),
            service,
            channel,
            segment: p.segment,
        });
    }
}

/// Calls from numbers in no CRM record and from withheld numbers, sized against the day's citizen calls.
fn add_background_calls(window: &Window, day: i64, calls: &mut Vec<CallPlan>) {
    if weekday(day) == 6 {
        return;
    }
    let mut r = rng(&[window.seed, stream::DAY_CALLS, day as u64]);
    let citizen_calls = calls.len() as f64;
    let unlisted = calls.iter().filter(|c| !c.listed).count() as f64;
    let total = citizen_calls / 0.82;
    let strangers = poisson(&mut r, (0.15 * total - unlisted).max(0.0));
    let withheld = poisson(&mut r, 0.03 * total);
    for i in 0..strangers + withheld {
        let start = at_slot(&mut r, day, &CALLS_DAY);
        let number = if i < strangers {
            stranger_number(&mut r)
        } else {
            0
        };
        let queue = weighted(&mut r, &[20, 22, 14, 10, 8, 6, 10, 7, 3]) as u8;
        calls.push(CallPlan {
            start,
            number,
            queue,
            seed: r.next_u64(),
            slow: false,
            listed: false,
            citizen: None,
        });
    }
}

fn push_call(buf: &mut Vec<u8>, id: u64, c: &CallPlan) {
    let mut r = DemoRng::seed_from_u64(c.seed);
    let local = utc_to_local(c.start);
    let tod = local.rem_euclid(DAY);
    // Queues build up mid-morning and on Mondays.
    let mut busy = if (9 * 3600..11 * 3600 + 1800).contains(&tod) {
        1.4
    } else {
        1.0
    };
    if weekday(local.div_euclid(DAY)) == 0 {
        busy *= 1.25;
    }
    let wait = lognormal(&mut r, 38.0 * busy, 0.85).clamp(5.0, 600.0);
    let abandoned = chance(&mut r, 0.02 + 0.5 * wait / 600.0);
    let talk = lognormal(&mut r, if c.slow { 290.0 } else { 210.0 }, 0.6).clamp(30.0, 1200.0);
    let transferred = chance(&mut r, 0.12);
    let agent = 1 + below(&mut r, 42);

    push_num(buf, id);
    buf.push(b';');
    if c.number == 0 {
        push_withheld(buf, c.seed);
    } else {
        push_phone(buf, c.number, c.seed);
    }
    buf.push(b';');
    push_italian(buf, local);
    buf.push(b';');
    push_decimal_comma(buf, (wait * 10.0).round() as u64);
    buf.push(b';');
    if !abandoned {
        push_decimal_comma(buf, (talk * 10.0).round() as u64);
    }
    buf.push(b';');
    buf.extend_from_slice(SERVICES[usize::from(c.queue) % SERVICES.len()].as_bytes());
    buf.push(b';');
    if abandoned {
        buf.extend_from_slice(b"abbandonata;");
    } else {
        buf.extend_from_slice(if transferred {
            b"trasferita;OP"
        } else {
            b"risolta;OP"
        });
        push_pad(buf, agent, 3);
    }
    buf.push(b'\n');
}

/// The first office moment (Monday–Friday, 08:00–18:00) at or after an instant.
fn office_time(utc: i64, r: &mut DemoRng) -> i64 {
    let local = utc_to_local(utc);
    let day = local.div_euclid(DAY);
    let tod = local.rem_euclid(DAY);
    let workday = weekday(day) <= 4;
    if workday && (8 * 3600..18 * 3600).contains(&tod) {
        return utc;
    }
    let mut d = if workday && tod < 8 * 3600 {
        day
    } else {
        day + 1
    };
    while weekday(d) >= 5 {
        d += 1;
    }
    local_to_utc(d * DAY + 8 * 3600 + below(r, 3 * 3600) as i64)
}

fn push_request(buf: &mut Vec<u8>, id: u64, q: &RequestPlan, filed: u64, window_end: i64) {
    let mut r = DemoRng::seed_from_u64(q.seed);
    let quick = q.channel == 0 && chance(&mut r, 0.45);
    // At most 17 days, so that waiting for the next office morning keeps every closure within 20 days.
    let delay = if quick {
        between(&mut r, 3600, 3 * 3600)
    } else {
        log_uniform(&mut r, 3600.0, 17.0 * 86_400.0) as i64
    };
    let closed = office_time(q.opened + delay, &mut r).max(q.opened + 3600);
    let stuck = chance(&mut r, 0.02);
    let open = stuck || closed >= window_end;
    let status: &[u8] = if !open {
        b"chiusa"
    } else if q.opened > window_end - 3 * DAY || chance(&mut r, 0.3) {
        b"aperta"
    } else {
        b"in_lavorazione"
    };
    let spec = q.segment.planted();
    let satisfaction =
        (!open && chance(&mut r, 0.65)).then(|| 1 + weighted(&mut r, &spec.satisfaction) as u64);

    push_num(buf, id);
    buf.push(b';');
    push_num(buf, filed);
    buf.push(b';');
    push_iso(buf, utc_to_local(q.opened));
    buf.push(b';');
    if !open {
        push_iso(buf, utc_to_local(closed));
    }
    buf.push(b';');
    buf.extend_from_slice(SERVICES[usize::from(q.service) % SERVICES.len()].as_bytes());
    buf.push(b';');
    buf.extend_from_slice(CHANNELS[usize::from(q.channel) % CHANNELS.len()].as_bytes());
    buf.push(b';');
    buf.extend_from_slice(status);
    buf.push(b';');
    if let Some(s) = satisfaction {
        push_num(buf, s);
    }
    buf.push(b'\n');
}

/// One day's citizen sessions on their way to a web-log writer.
struct WebJob {
    day: i64,
    sessions: Vec<SessionPlan>,
    pages: u64,
}

/// Totals of the activity files.
#[derive(Default)]
pub(crate) struct ActivityStats {
    pub(crate) requests: u64,
    pub(crate) calls: u64,
    pub(crate) desk_visits: u64,
    pub(crate) emails: u64,
    pub(crate) web_lines: u64,
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

fn plan_days(
    window: &Window,
    profiles: &[Profile],
    tx: &SyncSender<WebJob>,
) -> Result<ActivityStats, DemoError> {
    let mut stats = ActivityStats::default();
    let mut requests = Sink::create(
        &window
            .out
            .join("raw/crm/service_requests/service_requests.csv"),
        false,
    )?;
    requests.write_line(REQUESTS_HEADER.as_bytes())?;
    let mut touchpoints = Sink::create(&window.out.join("truth/touchpoints.csv"), false)?;
    touchpoints.write_line(b"source,record_id,person_id")?;
    let mut truth_buf = Vec::with_capacity(1 << 12);
    let crm_codes: std::collections::HashSet<[u8; 16]> = profiles.iter().map(|p| p.cf).collect();
    let (mut visit_id, mut message_id) = (1u64, 1u64);
    let window_end = local_to_utc((window.last_day + 1) * DAY);
    let mut carried: Vec<(i64, CallPlan)> = Vec::new();
    let mut plan = DayPlan::default();
    let mut buf = Vec::with_capacity(1 << 16);
    let (mut call_id, mut request_id) = (1u64, 1u64);

    let spreads = Spreads::new(window);
    // What each citizen still has to do; drawn totals are spent day by day.
    let mut left: Vec<Totals> = profiles.iter().map(|p| p.totals).collect();
    for (i, day) in (window.first_day..=window.last_day).enumerate() {
        plan.calls.clear();
        plan.requests.clear();
        plan.pages = 0;
        plan.sessions = Vec::with_capacity(plan.sessions.capacity());
        carried.retain(|(d, c)| {
            if *d == day {
                plan.calls.push(*c);
                false
            } else {
                true
            }
        });
        for (index, (p, left)) in profiles.iter().zip(left.iter_mut()).enumerate() {
            plan_citizen(window, &spreads, index as u32, p, i, left, &mut plan);
        }
        for c in plan.followups.drain(..) {
            let d = utc_to_local(c.start).div_euclid(DAY);
            if d == day {
                plan.calls.push(c);
            } else if d <= window.last_day {
                carried.push((d, c));
            }
        }
        add_background_calls(window, day, &mut plan.calls);

        plan.calls
            .sort_unstable_by_key(|c| (c.start, c.number, c.seed));
        let path = window
            .out
            .join(format!("raw/callcenter/calls_{}.csv", date_string(day)));
        let mut sink = Sink::create(&path, false)?;
        sink.write_line(CALLS_HEADER.as_bytes())?;
        for c in &plan.calls {
            push_call(&mut buf, call_id, c);
            push_truth(
                &mut truth_buf,
                "calls",
                call_id,
                c.citizen.filter(|_| c.listed),
            );
            call_id += 1;
            if buf.len() >= 1 << 15 {
                sink.write_all(&buf)?;
                buf.clear();
            }
        }
        sink.write_all(&buf)?;
        buf.clear();
        stats.bytes += sink.finish()?;
        stats.files += 1;
        stats.calls += plan.calls.len() as u64;

        plan.requests
            .sort_unstable_by_key(|q| (q.opened, q.citizen, q.seed));
        for q in &plan.requests {
            // A citizen recorded twice has a third of the requests they
            // open after the second record filed under it.
            let citizen = 100_001 + u64::from(q.citizen);
            let filed = match profiles[q.citizen as usize].duplicate {
                Some(second)
                    if q.opened >= second.registered
                        && chance(&mut rng(&[q.seed, stream::FILED_UNDER]), 1.0 / 3.0) =>
                {
                    second.citizen_id
                }
                _ => citizen,
            };
            push_request(&mut buf, request_id, q, filed, window_end);
            request_id += 1;
            if buf.len() >= 1 << 15 {
                requests.write_all(&buf)?;
                buf.clear();
            }
        }
        requests.write_all(&buf)?;
        buf.clear();
        stats.requests += plan.requests.len() as u64;

        // The desk's appointments and the e-mails of the day's requests
        // opened there, with visitors and senders the CRM does not know.
        let contacts = write_contacts(
            window,
            profiles,
            day,
            &plan.requests,
            &crm_codes,
            (&mut visit_id, &mut message_id),
            &mut truth_buf,
        )?;
        stats.desk_visits += contacts.desk_visits;
        stats.emails += contacts.emails;
        stats.files += contacts.files;
        stats.bytes += contacts.bytes;
        touchpoints.write_all(&truth_buf)?;
        truth_buf.clear();

        let job = WebJob {
            day,
            sessions: std::mem::take(&mut plan.sessions),
            pages: plan.pages,
        };
        if tx.send(job).is_err() {
            // Every writer has stopped; their errors say why.
            break;
        }
    }
    stats.bytes += requests.finish()?;
    stats.bytes += touchpoints.finish()?;
    stats.files += 2;
    Ok(stats)
}

/// `source,record_id,person_id` of one contact; the person is empty when
/// what the contact holds can tell no one.
fn push_truth(buf: &mut Vec<u8>, source: &str, id: u64, citizen: Option<u32>) {
    buf.extend_from_slice(source.as_bytes());
    buf.push(b',');
    push_num(buf, id);
    buf.push(b',');
    if let Some(citizen) = citizen {
        push_num(buf, 100_001 + u64::from(citizen));
    }
    buf.push(b'\n');
}

/// Writes one day's desk and e-mail exports, and their truth into `truth`.
fn write_contacts(
    window: &Window,
    profiles: &[Profile],
    day: i64,
    requests: &[RequestPlan],
    crm_codes: &std::collections::HashSet<[u8; 16]>,
    (visit_id, message_id): (&mut u64, &mut u64),
    truth: &mut Vec<u8>,
) -> Result<ActivityStats, DemoError> {
    let mut stats = ActivityStats::default();
    let date = date_string(day);
    let mut desk = Sink::create(
        &window
            .out
            .join(format!("raw/sportello/appointments_{date}.csv")),
        false,
    )?;
    let mut mail = Sink::create(
        &window.out.join(format!("raw/email/messages_{date}.csv")),
        false,
    )?;
    desk.write_line(contacts::DESK_HEADER.as_bytes())?;
    mail.write_line(contacts::EMAIL_HEADER.as_bytes())?;
    let (mut desk_buf, mut mail_buf) = (Vec::new(), Vec::new());
    let service_of = |q: &RequestPlan| SERVICES[usize::from(q.service) % SERVICES.len()];
    for q in requests {
        let p = &profiles[q.citizen as usize];
        let local = utc_to_local(q.opened);
        match q.channel {
            0 => {
                let known =
                    contacts::push_visit(&mut desk_buf, *visit_id, local, service_of(q), p, q.seed);
                push_truth(truth, "desk", *visit_id, known.then_some(q.citizen));
                *visit_id += 1;
                stats.desk_visits += 1;
            }
            2 => {
                let known = contacts::push_message(
                    &mut mail_buf,
                    *message_id,
                    local,
                    service_of(q),
                    p,
                    q.seed,
                );
                push_truth(truth, "email", *message_id, known.then_some(q.citizen));
                *message_id += 1;
                stats.emails += 1;
            }
            _ => {}
        }
    }
    // About one visitor in ten lives elsewhere; one message in ten is from
    // a professional or a bounce.
    let mut r = rng(&[window.seed, stream::DAY_CONTACTS, day as u64]);
    let strangers = [
        poisson(&mut r, 0.1 * stats.desk_visits as f64),
        poisson(&mut r, 0.1 * stats.emails as f64),
    ];
    for _ in 0..strangers[0] {
        let local = utc_to_local(at_slot(&mut r, day, &OFFICE_SLOTS));
        let service = SERVICES[below(&mut r, SERVICES.len() as u64) as usize];
        contacts::push_walk_in(
            &mut desk_buf,
            *visit_id,
            local,
            service,
            r.next_u64(),
            crm_codes,
        );
        push_truth(truth, "desk", *visit_id, None);
        *visit_id += 1;
        stats.desk_visits += 1;
    }
    for _ in 0..strangers[1] {
        let local = utc_to_local(at_slot(&mut r, day, &CALLS_DAY));
        let service = SERVICES[below(&mut r, SERVICES.len() as u64) as usize];
        contacts::push_stranger_message(&mut mail_buf, *message_id, local, service, r.next_u64());
        push_truth(truth, "email", *message_id, None);
        *message_id += 1;
        stats.emails += 1;
    }
    // Now and then a clerk tries the booking system with a test record.
    let mut t = rng(&[window.seed, stream::TEST_VISITS, day as u64]);
    if weekday(day) < 5 && chance(&mut t, 0.2) {
        let local = utc_to_local(at_slot(&mut t, day, &OFFICE_SLOTS));
        let service = SERVICES[below(&mut t, SERVICES.len() as u64) as usize];
        contacts::push_test_visit(&mut desk_buf, *visit_id, local, service);
        push_truth(truth, "desk", *visit_id, None);
        *visit_id += 1;
        stats.desk_visits += 1;
    }
    desk.write_all(&desk_buf)?;
    mail.write_all(&mail_buf)?;
    stats.bytes += desk.finish()? + mail.finish()?;
    stats.files += 2;
    Ok(stats)
}

fn web_worker(
    window: &Window,
    profiles: &[Profile],
    rx: &Mutex<Receiver<WebJob>>,
) -> Result<ActivityStats, DemoError> {
    let mut stats = ActivityStats::default();
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => break,
        };
        let Ok(job) = job else { break };
        let day = weblog::write_day(window, profiles, job.day, job.sessions, job.pages)?;
        stats.web_lines += day.lines;
        stats.bytes += day.bytes;
        stats.files += 1;
    }
    Ok(stats)
}

/// Writes the call-center, service-request and web-log files for the whole window.
pub(crate) fn write_activity(
    window: &Window,
    profiles: &[Profile],
) -> Result<ActivityStats, DemoError> {
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    thread::scope(|scope| {
        // One day in the queue at most: memory stays bounded by a handful of days' sessions.
        let (tx, rx) = sync_channel::<WebJob>(1);
        let rx = Arc::new(Mutex::new(rx));
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = Arc::clone(&rx);
                scope.spawn(move || web_worker(window, profiles, &rx))
            })
            .collect();
        drop(rx);
        let planned = plan_days(window, profiles, &tx);
        drop(tx);
        let mut total = ActivityStats::default();
        let mut first_error = None;
        for h in handles {
            let result = h.join().unwrap_or_else(|_| {
                Err(DemoError::Io {
                    path: window.out.join("raw/weblogs"),
                    source: std::io::Error::other("web-log writer thread panicked"),
                })
            });
            match result {
                Ok(s) => {
                    total.web_lines += s.web_lines;
                    total.files += s.files;
                    total.bytes += s.bytes;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let planned = planned?;
        total.requests = planned.requests;
        total.calls = planned.calls;
        total.desk_visits = planned.desk_visits;
        total.emails = planned.emails;
        total.files += planned.files;
        total.bytes += planned.bytes;
        Ok(total)
    })
}

#[cfg(test)]
mod tests {
    use super::super::clock::days_from_civil;
    use super::*;
    use std::path::PathBuf;

    fn local(y: i64, m: u32, d: u32, secs: i64) -> i64 {
        local_to_utc(days_from_civil(y, m, d) * DAY + secs)
    }

    #[test]
    fn calls_outside_opening_hours_move_to_next_opening() {
        let mut r = rng(&[1]);
        // Saturday 21 November 2026, 19:00 → Monday 23 November from 08:30.
        let moved = next_opening(local(2026, 11, 21, 19 * 3600), &mut r);
        let l = utc_to_local(moved);
        assert_eq!(l.div_euclid(DAY), days_from_civil(2026, 11, 23));
        assert!((OPEN..OPEN + 1200).contains(&l.rem_euclid(DAY)));
        // Inside hours nothing moves.
        let inside = local(2026, 11, 20, 10 * 3600);
        assert_eq!(next_opening(inside, &mut r), inside);
        // Early morning moves to the same day's opening.
        let early = utc_to_local(next_opening(local(2026, 11, 20, 6 * 3600), &mut r));
        assert_eq!(early.div_euclid(DAY), days_from_civil(2026, 11, 20));
    }

    #[test]
    fn spreading_places_every_drawn_event_on_an_open_day() {
        // Ten days ending on Sunday 22 November 2026: two Sundays, when the call center is closed.
        let window = Window {
            out: PathBuf::new(),
            seed: 1,
            first_day: days_from_civil(2026, 11, 13),
            last_day: days_from_civil(2026, 11, 22),
            days: 10,
        };
        let spread = Spread::new(&window, CALL_WEEK);
        let mut r = rng(&[2]);
        for total in [0u16, 1, 7, 300] {
            let mut left = total;
            let mut placed = 0;
            for i in 0..10 {
                let day = window.first_day + i as i64;
                let n = take(&mut r, &mut left, spread.share(i, weekday(day)));
                if weekday(day) == 6 {
                    assert_eq!(n, 0, "nothing on Sundays");
                }
                placed += n;
            }
            assert_eq!((placed, left), (total, 0));
        }
    }

    #[test]
    fn weekday_weights_average_one() {
        for w in [WEB_WEEK, WORK_WEEK, CALL_WEEK, OFFICE_WEEK] {
            assert!((w.iter().sum::<f64>() - 7.0).abs() < 1e-9);
        }
    }
}
