//! The portal's daily access logs: expands planned citizen sessions plus anonymous visitors, crawlers, scanners and the uptime monitor into Apache Combined Log lines, merged in timestamp order and gzipped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{RngCore, SeedableRng};

use super::clock::{ClfClock, DAY, local_to_utc, push_num};
use super::population::{Profile, WEB_GENERAL};
use super::sampling::{
    DemoRng, below, between, chance, lognormal, pick, poisson, rng, stream, unit, weighted,
};
use super::site::{
    self, AREA_PAGES, ASSETS, CRAWLERS, DESKTOP_AGENTS, ENTRY_REFERERS, IDP_REFERERS, Ip,
    MOBILE_AGENTS, MONITOR_AGENT, MONITOR_IPS, PORTAL, SCANNER_AGENTS, SCANNER_PATHS,
};
use super::{DemoError, Sink, Window};

/// Who is behind a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SessionKind {
    /// A citizen going after a service; authenticated through SPID when the citizen is enrolled.
    Service,
    /// A citizen browsing anonymously.
    Browse,
    /// A visitor linked to no citizen.
    Visitor,
    /// A crawler, by index into [`CRAWLERS`].
    Crawler(u8),
    /// A vulnerability scanner.
    Scanner,
    /// The uptime monitor, one "session" spanning the day.
    Monitor,
}

/// A session planned for one day; its lines are expanded only when it is written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionPlan {
    /// Instant of the first request.
    pub(crate) start: i64,
    /// Seed of the session's own random stream.
    pub(crate) seed: u64,
    /// Citizen index for citizen sessions.
    pub(crate) citizen: u32,
    /// Seconds from the first to the last page view.
    pub(crate) dur: u32,
    pub(crate) kind: SessionKind,
    /// Index into [`SERVICES`] the session is about.
    pub(crate) service: u8,
    /// Page views planned (static assets come on top).
    pub(crate) pages: u8,
    /// Whether the citizen fails to complete the service online (and then calls).
    pub(crate) failing: bool,
}

/// Mean page views of an unlinked visitor session, to size visitor traffic against citizens'.
const VISITOR_MEAN_PAGES: f64 = 2.4;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Head,
}

/// One request, with its text held in the owning session's buffer.
#[derive(Clone, Copy)]
struct Line {
    ts: i64,
    path: (u32, u32),
    referer: (u32, u32),
    /// `u32::MAX` prints as `-`.
    bytes: u32,
    status: u16,
    method: Method,
    auth: bool,
}

const NO_BYTES: u32 = u32::MAX;

/// A session's requests, expanded when the merge reaches its first one.
struct Expanded {
    ip: Ip,
    /// `ip` as printed, formatted once per session.
    ip_text: Vec<u8>,
    agent: &'static str,
    cf: [u8; 16],
    text: Vec<u8>,
    lines: Vec<Line>,
    cursor: usize,
}

impl Expanded {
    fn new() -> Self {
        Self {
            ip: Ip::V4([0; 4]),
            ip_text: Vec::new(),
            agent: "-",
            cf: [b'X'; 16],
            text: Vec::new(),
            lines: Vec::new(),
            cursor: 0,
        }
    }

    fn reset(&mut self) {
        self.text.clear();
        self.lines.clear();
        self.cursor = 0;
    }

    fn add(&mut self, s: &[u8]) -> (u32, u32) {
        let a = self.text.len() as u32;
        self.text.extend_from_slice(s);
        (a, self.text.len() as u32)
    }

    fn add_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> (u32, u32) {
        let a = self.text.len() as u32;
        f(&mut self.text);
        (a, self.text.len() as u32)
    }

    /// The portal URL of an earlier path, for a referer.
    fn portal_url(&mut self, path: (u32, u32)) -> (u32, u32) {
        let a = self.text.len() as u32;
        self.text.extend_from_slice(PORTAL.as_bytes());
        self.text
            .extend_from_within(path.0 as usize..path.1 as usize);
        (a, self.text.len() as u32)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        ts: i64,
        method: Method,
        path: (u32, u32),
        status: u16,
        bytes: u32,
        referer: (u32, u32),
        auth: bool,
    ) {
        self.lines.push(Line {
            ts,
            path,
            referer,
            bytes,
            status,
            method,
            auth,
        });
    }
}

/// Where a page's referer comes from.
#[derive(Clone, Copy)]
enum Ref {
    Entry,
    Previous,
    Idp,
}

/// Script state for a human (citizen or visitor) session.
struct Human<'a> {
    ex: &'a mut Expanded,
    r: &'a mut DemoRng,
    times: [i64; 16],
    planned: usize,
    used: usize,
    last: i64,
    prev: Option<(u32, u32)>,
    pages_seen: u32,
    /// Returning users revalidate cached assets (304) instead of downloading them.
    cached: f64,
    auth: bool,
}

impl Human<'_> {
    fn next_time(&mut self) -> i64 {
        let t = if self.used < self.planned {
            self.times[self.used]
        } else {
            self.last + between(self.r, 4, 30)
        };
        self.used += 1;
        self.last = t;
        t
    }

    fn referer(&mut self, kind: Ref) -> (u32, u32) {
        match (kind, self.prev) {
            (Ref::Previous, Some(p)) => self.ex.portal_url(p),
            (Ref::Idp, _) => {
                let i = weighted(self.r, &IDP_REFERERS.map(|x| x.1));
                self.ex.add(IDP_REFERERS[i].0.as_bytes())
            }
            _ => {
                let i = weighted(self.r, &ENTRY_REFERERS.map(|x| x.1));
                self.ex.add(ENTRY_REFERERS[i].0.as_bytes())
            }
        }
    }

    /// A page view: the page itself (occasionally a dead link or a server error), then its static assets.
    fn page(&mut self, refk: Ref, build: impl FnOnce(&mut DemoRng, &mut Vec<u8>)) {
        let roll = unit(self.r);
        self.page_rolled(refk, roll, build);
    }

    /// A page view that always succeeds, such as the landing page after login.
    fn page_ok(&mut self, refk: Ref, build: impl FnOnce(&mut DemoRng, &mut Vec<u8>)) {
        self.page_rolled(refk, 1.0, build);
    }

    fn page_rolled(
        &mut self,
        refk: Ref,
        roll: f64,
        build: impl FnOnce(&mut DemoRng, &mut Vec<u8>),
    ) {
        let t = self.next_time();
        let referer = self.referer(refk);
        let (path, status, bytes) = if roll < 0.025 {
            let r = &mut *self.r;
            let p = self.ex.add_with(|b| site::push_stale_page(r, b));
            (p, 404, 4_180 + below(self.r, 90) as u32)
        } else {
            let r = &mut *self.r;
            let p = self.ex.add_with(|b| build(r, b));
            let s = &self.ex.text[p.0 as usize..p.1 as usize];
            let bytes = site::page_bytes(self.r, s);
            if roll < 0.031 {
                (p, 500, 1_096 + below(self.r, 60) as u32)
            } else {
                (p, 200, bytes)
            }
        };
        self.ex
            .push(t, Method::Get, path, status, bytes, referer, self.auth);
        self.assets(t, path);
        self.prev = Some(path);
    }

    fn assets(&mut self, t: i64, page: (u32, u32)) {
        let first = self.pages_seen == 0;
        self.pages_seen += 1;
        let count = if first {
            ASSETS.len()
        } else {
            1 + below(self.r, 2) as usize
        };
        let referer = self.ex.portal_url(page);
        for (i, (asset, size)) in ASSETS.iter().enumerate().take(count) {
            let path = self.ex.add(asset.as_bytes());
            let revalidate = if first {
                chance(self.r, self.cached)
            } else {
                chance(self.r, 0.7)
            };
            let (status, bytes) = if revalidate {
                (304, NO_BYTES)
            } else {
                (200, *size)
            };
            let dt = i64::from(i >= 2) + below(self.r, 2) as i64;
            self.ex
                .push(t + dt, Method::Get, path, status, bytes, referer, self.auth);
        }
        // Safari looks for home-screen icons the portal never published.
        if first
            && self.ex.agent.contains("like Mac OS X) AppleWebKit")
            && self.ex.agent.contains("Mobile/")
            && chance(self.r, 0.25)
        {
            for icon in [
                &b"/apple-touch-icon-precomposed.png"[..],
                b"/apple-touch-icon.png",
            ] {
                let path = self.ex.add(icon);
                let bytes = 4_180 + below(self.r, 90) as u32;
                let none = self.ex.add(b"-");
                self.ex
                    .push(t + 2, Method::Get, path, 404, bytes, none, self.auth);
            }
        }
    }

    /// A redirecting request (login, logout, form post) with no assets.
    fn redirect(&mut self, method: Method, build: impl FnOnce(&mut Vec<u8>)) -> i64 {
        let t = self.next_time();
        let referer = match self.prev {
            Some(p) => self.ex.portal_url(p),
            None => self.ex.add(b"-"),
        };
        let path = self.ex.add_with(build);
        self.ex.push(
            t,
            method,
            path,
            302,
            210 + below(self.r, 90) as u32,
            referer,
            self.auth,
        );
        t
    }
}

fn page_times(r: &mut DemoRng, start: i64, dur: u32, n: usize) -> [i64; 16] {
    let mut times = [start; 16];
    let n = n.clamp(1, 16);
    let mut w = [0f64; 16];
    let mut total = 0.0;
    for slot in w.iter_mut().take(n).skip(1) {
        *slot = -(1.0 - unit(r)).ln() + 0.15;
        total += *slot;
    }
    // Keep at least three seconds between page views so assets never trail into the next page.
    let spare = (f64::from(dur) - 3.0 * (n as f64 - 1.0)).max(0.0);
    let mut t = start as f64;
    for i in 1..n {
        t += 3.0
            + if total > 0.0 {
                spare * w[i] / total
            } else {
                0.0
            };
        times[i] = t as i64;
    }
    times
}

fn service_path(r: &mut DemoRng, b: &mut Vec<u8>, service: u8) {
    if chance(r, 0.35) {
        site::push_service_page(b, service)
    } else {
        site::push_topic_page(r, b, service)
    }
}

fn pratiche(b: &mut Vec<u8>, service: u8, tail: &[u8]) {
    site::push_service_page(b, service);
    b.extend_from_slice(b"/pratiche");
    b.extend_from_slice(tail);
}

fn expand_human(
    plan: &SessionPlan,
    profile: Option<&Profile>,
    day: i64,
    mobile_pct: u8,
    ex: &mut Expanded,
) {
    let mut r = DemoRng::seed_from_u64(plan.seed);
    let mobile = chance(&mut r, f64::from(mobile_pct) / 100.0);
    match profile {
        Some(p) => {
            ex.agent = if mobile {
                MOBILE_AGENTS[usize::from(p.agents[1])].0
            } else {
                DESKTOP_AGENTS[usize::from(p.agents[0])].0
            };
            ex.ip = if mobile && chance(&mut r, 0.6) {
                site::mobile_ip(&mut r)
            } else {
                site::household_ip(p.isp, p.v6, p.household_lease(day))
            };
            ex.cf = p.cf;
        }
        None => {
            ex.agent = if mobile {
                MOBILE_AGENTS[site::mobile_agent(&mut r) as usize].0
            } else {
                DESKTOP_AGENTS[site::desktop_agent(&mut r) as usize].0
            };
            ex.ip = if chance(&mut r, 0.1) {
                site::foreign_ip(&mut r)
            } else if mobile && chance(&mut r, 0.7) {
                site::mobile_ip(&mut r)
            } else {
                let isp = site::household_isp(&mut r);
                let v6 = chance(&mut r, 0.15);
                site::household_ip(isp, v6, r.next_u64())
            };
        }
    }
    let n = usize::from(plan.pages).clamp(1, 16);
    let times = page_times(&mut r, plan.start, plan.dur, n);
    let cached = if profile.is_some() { 0.6 } else { 0.25 };
    let spid = profile.is_some_and(|p| p.spid) && plan.kind == SessionKind::Service;
    let s = plan.service;
    let mut h = Human {
        ex,
        r: &mut r,
        times,
        planned: n,
        used: 0,
        last: plan.start,
        prev: None,
        pages_seen: 0,
        cached,
        auth: false,
    };

    match plan.kind {
        SessionKind::Service => {
            if chance(h.r, 0.7) {
                h.page(Ref::Entry, |_, b| b.push(b'/'));
            } else {
                h.page(Ref::Entry, |r, b| site::push_topic_page(r, b, s));
            }
            if spid {
                let pre = 1 + below(h.r, (n.saturating_sub(3)).clamp(1, 3) as u64) as usize;
                for _ in 1..pre {
                    if chance(h.r, 0.75) {
                        h.page(Ref::Previous, |r, b| service_path(r, b, s));
                    } else {
                        h.page(Ref::Previous, site::push_public_page);
                    }
                }
                h.redirect(Method::Get, |b| b.extend_from_slice(b"/spid/login"));
                h.auth = true;
                h.page_ok(Ref::Idp, |_, b| b.extend_from_slice(b"/area-personale"));
                let remaining = n.saturating_sub(pre + 2).max(1);
                if plan.failing {
                    h.page(Ref::Previous, |_, b| pratiche(b, s, b"/nuova"));
                    h.failed_post(s);
                    for _ in 2..remaining {
                        if chance(h.r, 0.5) {
                            h.page(Ref::Previous, |_, b| pratiche(b, s, b"/nuova"));
                        } else {
                            h.page(Ref::Previous, |r, b| site::push_topic_page(r, b, s));
                        }
                    }
                    h.page(Ref::Previous, |_, b| b.extend_from_slice(b"/contatti"));
                } else {
                    h.page_ok(Ref::Previous, |_, b| pratiche(b, s, b""));
                    for _ in 1..remaining {
                        match weighted(h.r, &[35, 30, 20, 15]) {
                            0 => {
                                h.page(Ref::Previous, |_, b| pratiche(b, s, b"/nuova"));
                                h.submit(s);
                            }
                            1 => h.page(Ref::Previous, |r, b| {
                                b.extend_from_slice(pick(r, &AREA_PAGES).as_bytes())
                            }),
                            2 => h.page(Ref::Previous, |r, b| {
                                pratiche(b, s, b"/");
                                push_num(b, 100_000 + below(r, 900_000));
                            }),
                            _ => h.page(Ref::Previous, |r, b| site::push_topic_page(r, b, s)),
                        }
                    }
                    if chance(h.r, 0.2) {
                        h.redirect(Method::Get, |b| b.extend_from_slice(b"/spid/logout"));
                    }
                }
            } else {
                let tail = if plan.failing { 3 } else { 0 };
                for _ in 1..n.saturating_sub(tail).max(1) {
                    if chance(h.r, 0.75) {
                        h.page(Ref::Previous, |r, b| service_path(r, b, s));
                    } else {
                        h.page(Ref::Previous, site::push_public_page);
                    }
                }
                if plan.failing {
                    // Without SPID the online form bounces to a login the citizen cannot complete.
                    h.redirect(Method::Get, |b| pratiche(b, s, b"/nuova"));
                    h.redirect(Method::Get, |b| b.extend_from_slice(b"/spid/login"));
                    h.page(Ref::Previous, |_, b| b.extend_from_slice(b"/contatti"));
                }
            }
        }
        _ => {
            if chance(h.r, 0.4) {
                h.page(Ref::Entry, |_, b| b.push(b'/'));
            } else {
                h.page(Ref::Entry, site::push_public_page);
            }
            for _ in 1..n {
                h.page(Ref::Previous, site::push_public_page);
            }
        }
    }
}

impl Human<'_> {
    /// Posts a new case file: 302 to the created case, which is then shown.
    fn submit(&mut self, service: u8) {
        let t = self.redirect(Method::Post, |b| pratiche(b, service, b""));
        let id = 100_000 + below(self.r, 900_000);
        let referer = match self.prev {
            Some(p) => self.ex.portal_url(p),
            None => self.ex.add(b"-"),
        };
        let path = self.ex.add_with(|b| {
            pratiche(b, service, b"/");
            push_num(b, id);
        });
        let bytes = site::page_bytes(self.r, &[]);
        self.ex
            .push(t + 1, Method::Get, path, 200, bytes, referer, self.auth);
        self.assets(t + 1, path);
        self.prev = Some(path);
    }

    /// A failing submission: the back end errors out or the form comes back rejected.
    fn failed_post(&mut self, service: u8) {
        let t = self.next_time();
        let referer = match self.prev {
            Some(p) => self.ex.portal_url(p),
            None => self.ex.add(b"-"),
        };
        let path = self.ex.add_with(|b| pratiche(b, service, b""));
        let (status, bytes) = if chance(self.r, 0.4) {
            (500, 1_096 + below(self.r, 60) as u32)
        } else {
            (200, 24_000 + below(self.r, 3_000) as u32)
        };
        self.ex
            .push(t, Method::Post, path, status, bytes, referer, self.auth);
        if status == 200 {
            self.assets(t, path);
        }
    }
}

fn expand_crawler(plan: &SessionPlan, bot: usize, ex: &mut Expanded) {
    let mut r = DemoRng::seed_from_u64(plan.seed);
    let crawler = &CRAWLERS[bot.min(CRAWLERS.len() - 1)];
    ex.agent = crawler.agent;
    ex.ip = site::crawler_ip(&mut r, crawler);
    let mut t = plan.start;
    let dash = ex.add(b"-");
    let robots = ex.add(b"/robots.txt");
    ex.push(t, Method::Get, robots, 200, 412, dash, false);
    if chance(&mut r, 0.3) {
        t += between(&mut r, 1, 5);
        let sitemap = ex.add(b"/sitemap.xml");
        ex.push(t, Method::Get, sitemap, 200, 86_321, dash, false);
    }
    for _ in 0..plan.pages {
        t += between(&mut r, 2, 40);
        let roll = unit(&mut r);
        if roll < 0.04 {
            let p = ex.add_with(|b| site::push_stale_page(&mut r, b));
            ex.push(
                t,
                Method::Get,
                p,
                404,
                4_180 + below(&mut r, 90) as u32,
                dash,
                false,
            );
            continue;
        }
        let p = ex.add_with(|b| {
            if chance(&mut r, 0.08) {
                b.push(b'/')
            } else {
                site::push_public_page(&mut r, b)
            }
        });
        let bytes = site::page_bytes(&mut r, &ex.text[p.0 as usize..p.1 as usize]);
        if crawler.conditional && roll < 0.2 {
            ex.push(t, Method::Get, p, 304, NO_BYTES, dash, false);
        } else {
            ex.push(t, Method::Get, p, 200, bytes, dash, false);
        }
    }
}

fn expand_scanner(plan: &SessionPlan, ex: &mut Expanded) {
    let mut r = DemoRng::seed_from_u64(plan.seed);
    ex.agent = *pick(&mut r, &SCANNER_AGENTS);
    ex.ip = site::foreign_ip(&mut r);
    let dash = ex.add(b"-");
    let mut t = plan.start;
    for i in 0..plan.pages {
        if i > 0 {
            t += below(&mut r, 3) as i64;
        }
        let path = *pick(&mut r, &SCANNER_PATHS);
        let method = if path == "/xmlrpc.php" {
            Method::Post
        } else {
            Method::Get
        };
        let p = ex.add(path.as_bytes());
        ex.push(t, method, p, 404, 196, dash, false);
    }
}

fn expand_monitor(plan: &SessionPlan, day_end: i64, ex: &mut Expanded) {
    let mut r = DemoRng::seed_from_u64(plan.seed);
    ex.agent = MONITOR_AGENT;
    let ip = pick(&mut r, &MONITOR_IPS);
    ex.ip = Ip::V4(*ip);
    let dash = ex.add(b"-");
    let root = ex.add(b"/");
    let mut t = plan.start;
    while t < day_end {
        ex.push(t, Method::Head, root, 200, NO_BYTES, dash, false);
        t += 300;
    }
}

fn expand(plan: &SessionPlan, profiles: &[Profile], day: i64, day_end: i64, ex: &mut Expanded) {
    ex.reset();
    match plan.kind {
        SessionKind::Service | SessionKind::Browse => {
            let profile = profiles.get(plan.citizen as usize);
            let pct = profile.map_or(40, |p| p.segment.planted().mobile_pct);
            expand_human(plan, profile, day, pct, ex);
        }
        SessionKind::Visitor => expand_human(plan, None, day, 55, ex),
        SessionKind::Crawler(bot) => expand_crawler(plan, usize::from(bot), ex),
        SessionKind::Scanner => expand_scanner(plan, ex),
        SessionKind::Monitor => expand_monitor(plan, day_end, ex),
    }
    // Assets of one page may land in the same second as the next page; keep the session itself ordered.
    ex.lines.sort_by_key(|l| l.ts);
    ex.ip_text.clear();
    site::push_ip(&mut ex.ip_text, ex.ip);
}

fn push_line(buf: &mut Vec<u8>, clock: &mut ClfClock, ex: &Expanded, line: &Line) {
    buf.extend_from_slice(&ex.ip_text);
    buf.extend_from_slice(b" - ");
    if line.auth {
        buf.extend_from_slice(b"TINIT-");
        buf.extend_from_slice(&ex.cf);
    } else {
        buf.push(b'-');
    }
    buf.extend_from_slice(b" [");
    clock.push(buf, line.ts);
    buf.extend_from_slice(match line.method {
        Method::Get => b"] \"GET ",
        Method::Post => b"] \"POST ",
        Method::Head => b"] \"HEAD ",
    });
    buf.extend_from_slice(&ex.text[line.path.0 as usize..line.path.1 as usize]);
    buf.extend_from_slice(b" HTTP/1.1\" ");
    push_num(buf, u64::from(line.status));
    buf.push(b' ');
    if line.bytes == NO_BYTES {
        buf.push(b'-');
    } else {
        push_num(buf, u64::from(line.bytes));
    }
    buf.extend_from_slice(b" \"");
    buf.extend_from_slice(&ex.text[line.referer.0 as usize..line.referer.1 as usize]);
    buf.extend_from_slice(b"\" \"");
    buf.extend_from_slice(ex.agent.as_bytes());
    buf.extend_from_slice(b"\"\n");
}

fn local_instant(r: &mut DemoRng, day: i64, hours: &[u32; 24]) -> i64 {
    let h = weighted(r, hours) as i64;
    local_to_utc(day * DAY + h * 3600 + below(r, 3600) as i64)
}

/// Adds the day's traffic that belongs to no citizen.
fn plan_background(
    window: &Window,
    day: i64,
    citizen_pages: u64,
    day_start: i64,
    day_end: i64,
    sessions: &mut Vec<SessionPlan>,
) {
    let mut r = rng(&[window.seed, stream::DAY_WEB, day as u64]);
    let blank = SessionPlan {
        start: day_start,
        seed: 0,
        citizen: u32::MAX,
        dur: 0,
        kind: SessionKind::Visitor,
        service: 0,
        pages: 1,
        failing: false,
    };

    let visitors = poisson(&mut r, 2.0 * citizen_pages as f64 / VISITOR_MEAN_PAGES);
    for _ in 0..visitors {
        let pages = (1 + poisson(&mut r, VISITOR_MEAN_PAGES - 1.0)).min(12) as u8;
        let dur = (f64::from(pages) * lognormal(&mut r, 25.0, 0.6))
            .clamp(f64::from(pages) * 4.0, 1800.0) as u32;
        let start = local_instant(&mut r, day, &WEB_GENERAL);
        sessions.push(SessionPlan {
            start,
            seed: r.next_u64(),
            dur,
            pages,
            ..blank
        });
    }

    // Crawlers don't scale with residents, but a bigger city has a bigger, busier site.
    let target = 40 + citizen_pages / 8;
    let mut planned = 0u64;
    while planned < target {
        let bot = weighted(&mut r, &CRAWLERS.map(|c| c.weight));
        let pages = between(&mut r, 8, 60) as u8;
        planned += u64::from(pages) + 1;
        let start = day_start + below(&mut r, (day_end - day_start).max(1) as u64) as i64;
        sessions.push(SessionPlan {
            start,
            seed: r.next_u64(),
            pages,
            kind: SessionKind::Crawler(bot as u8),
            ..blank
        });
    }

    for _ in 0..poisson(&mut r, 1.5) {
        let start = day_start + below(&mut r, (day_end - day_start).max(1) as u64) as i64;
        let pages = between(&mut r, 4, 16) as u8;
        sessions.push(SessionPlan {
            start,
            seed: r.next_u64(),
            pages,
            kind: SessionKind::Scanner,
            ..blank
        });
    }

    let first = day_start + below(&mut r, 300) as i64;
    sessions.push(SessionPlan {
        start: first,
        seed: r.next_u64(),
        kind: SessionKind::Monitor,
        ..blank
    });
}

/// Counts of one day's web log.
pub(crate) struct WebDayStats {
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
}

/// Writes `raw/weblogs/access_<day>.log.gz` from the day's citizen sessions plus background traffic.
pub(crate) fn write_day(
    window: &Window,
    profiles: &[Profile],
    day: i64,
    mut sessions: Vec<SessionPlan>,
    citizen_pages: u64,
) -> Result<WebDayStats, DemoError> {
    let day_start = local_to_utc(day * DAY);
    let day_end = local_to_utc((day + 1) * DAY);
    plan_background(
        window,
        day,
        citizen_pages,
        day_start,
        day_end,
        &mut sessions,
    );
    sessions.sort_unstable_by_key(|s| (s.start, s.kind, s.citizen, s.seed));

    let path = window.out.join(format!(
        "raw/weblogs/access_{}.log.gz",
        super::clock::date_string(day)
    ));
    let mut sink = Sink::create(&path, true)?;
    let mut buf = Vec::with_capacity(1 << 17);
    let mut slots: Vec<Expanded> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(i64, u32, usize)>> = BinaryHeap::new();
    let mut next = 0usize;
    let mut lines = 0u64;
    let mut clock = ClfClock::new();

    loop {
        let head = heap.peek().map(|Reverse(k)| k.0);
        // A session joins the merge before any pending line later than its first request.
        if let Some(plan) = sessions.get(next)
            && head.is_none_or(|t| plan.start <= t)
        {
            let slot = free.pop().unwrap_or_else(|| {
                slots.push(Expanded::new());
                slots.len() - 1
            });
            let ex = &mut slots[slot];
            expand(plan, profiles, day, day_end, ex);
            if let Some(first) = ex.lines.first() {
                heap.push(Reverse((first.ts, next as u32, slot)));
            } else {
                free.push(slot);
            }
            next += 1;
            continue;
        }
        let Some(Reverse((ts, order, slot))) = heap.pop() else {
            break;
        };
        let ex = &mut slots[slot];
        // Requests past midnight are dropped rather than carried into tomorrow's file, which keeps days
        // independent; only sessions begun in the day's last minutes lose a few requests.
        if ts < day_end
            && let Some(line) = ex.lines.get(ex.cursor)
        {
            push_line(&mut buf, &mut clock, ex, line);
            lines += 1;
        }
        ex.cursor += 1;
        match ex.lines.get(ex.cursor) {
            Some(l) if l.ts < day_end => heap.push(Reverse((l.ts, order, slot))),
            _ => free.push(slot),
        }
        if buf.len() >= 1 << 16 {
            sink.write_all(&buf)?;
            buf.clear();
        }
    }
    sink.write_all(&buf)?;
    let bytes = sink.finish()?;
    Ok(WebDayStats { lines, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_times_keep_three_seconds_apart_within_duration() {
        let mut r = rng(&[9]);
        for n in 1..=12 {
            let dur = 4 * n as u32 + below(&mut r, 600) as u32;
            let t = page_times(&mut r, 1_000, dur, n);
            assert_eq!(t[0], 1_000);
            for i in 1..n {
                assert!(t[i] - t[i - 1] >= 3, "{t:?}");
            }
            assert!(t[n - 1] <= 1_000 + i64::from(dur) + 1);
        }
    }
}
