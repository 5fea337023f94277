//! The municipal portal's catalogue as the web logs see it: page paths and sizes, static assets, browsers, crawlers, scanners and the IP ranges clients come from.

use super::sampling::{DemoRng, below, key, pick, weighted};

/// The portal's origin, used in referers.
pub(crate) const PORTAL: &str = "https://www.comune.bologna.it";

/// Service codes shared by the CRM, the call-center queues and the portal's `/servizi/<service>/` paths.
pub(crate) const SERVICES: [&str; 9] = [
    "anagrafe",
    "tributi",
    "mobilita",
    "servizi_sociali",
    "scuola",
    "edilizia",
    "polizia_locale",
    "ambiente",
    "cultura",
];

/// Index of `scuola` in [`SERVICES`].
pub(crate) const SCUOLA: u8 = 4;

/// Topic pages under each service, in [`SERVICES`] order.
pub(crate) const SERVICE_TOPICS: [&[&str]; 9] = [
    &[
        "carta-identita",
        "certificati",
        "cambio-residenza",
        "stato-civile",
        "passaporto",
    ],
    &["tari", "imu", "pagamenti", "scadenze", "rimborsi"],
    &[
        "permessi-ztl",
        "abbonamenti-sosta",
        "contrassegno-disabili",
        "multe",
        "bici",
    ],
    &[
        "contributi-affitto",
        "assistenza-domiciliare",
        "isee",
        "centri-anziani",
        "bonus-utenze",
    ],
    &[
        "iscrizioni-nidi",
        "refezione",
        "trasporto-scolastico",
        "centri-estivi",
        "rette",
    ],
    &[
        "permessi-costruire",
        "cila",
        "scia",
        "accesso-atti",
        "agibilita",
    ],
    &[
        "verbali",
        "oggetti-smarriti",
        "segnalazioni",
        "incidenti",
        "rimozioni",
    ],
    &[
        "rifiuti",
        "raccolta-differenziata",
        "verde-pubblico",
        "qualita-aria",
        "animali",
    ],
    &[
        "biblioteche",
        "musei",
        "card-cultura",
        "teatri",
        "contributi-associazioni",
    ],
];

const NEWS: [&str; 16] = [
    "lavori-tram-linea-rossa",
    "nuove-regole-ztl-centro",
    "bando-contributi-affitto",
    "iscrizioni-nidi-aperte",
    "allerta-meteo-arancione",
    "raccolta-rifiuti-nei-festivi",
    "citta-30-bilancio-primo-anno",
    "carta-identita-elettronica-open-day",
    "scadenza-tari-rata-unica",
    "bologna-estate-programma",
    "sportelli-anagrafe-nuovi-orari",
    "piano-neve-inverno",
    "consiglio-comunale-approvato-bilancio",
    "nuovo-parco-via-stalingrado",
    "centri-estivi-graduatorie",
    "sciopero-trasporto-pubblico",
];

const ADMIN: [&str; 8] = [
    "/amministrazione/sindaco",
    "/amministrazione/giunta",
    "/amministrazione/consiglio-comunale",
    "/amministrazione/albo-pretorio",
    "/amministrazione/bandi-di-gara",
    "/amministrazione/trasparenza",
    "/amministrazione/uffici",
    "/amministrazione/quartieri",
];

const EVENTS: [&str; 6] = [
    "/eventi/festa-di-san-petronio",
    "/eventi/bologna-estate",
    "/eventi/mercato-della-terra",
    "/eventi/notte-bianca-musei",
    "/eventi/capodanno-piazza-maggiore",
    "/eventi/fiera-di-natale",
];

/// Search terms residents type into the portal's search box, already `+`-encoded.
const SEARCHES: [&str; 20] = [
    "carta+identita",
    "tari+2026",
    "iscrizione+nido",
    "permesso+ztl",
    "cambio+residenza",
    "orari+anagrafe",
    "raccolta+rifiuti",
    "pagare+multa",
    "imu+acconto",
    "bonus+affitto",
    "centri+estivi",
    "biblioteca+salaborsa",
    "concorsi",
    "certificato+nascita",
    "isee",
    "mensa+scolastica",
    "passaporto",
    "parcheggi+residenti",
    "sportello+sociale",
    "rimozione+auto",
];

/// Pages of the authenticated personal area.
pub(crate) const AREA_PAGES: [&str; 5] = [
    "/area-personale/pratiche",
    "/area-personale/pagamenti",
    "/area-personale/documenti",
    "/area-personale/profilo",
    "/area-personale/messaggi",
];

/// Static assets a page pulls in, with their sizes.
pub(crate) const ASSETS: [(&str, u32); 4] = [
    ("/static/css/main.css", 48_213),
    ("/static/js/app.js", 131_962),
    ("/img/logo-comune.svg", 6_418),
    ("/favicon.ico", 15_086),
];

/// SPID identity providers users come back from after logging in.
pub(crate) const IDP_REFERERS: [(&str, u32); 5] = [
    ("https://posteid.poste.it/", 55),
    ("https://identity.infocert.it/", 12),
    ("https://loginspid.aruba.it/", 12),
    ("https://identity.sieltecloud.it/", 6),
    ("https://spid.register.it/", 5),
];

/// Where a session's first page is entered from (`-` is typed or bookmarked).
pub(crate) const ENTRY_REFERERS: [(&str, u32); 7] = [
    ("-", 45),
    ("https://www.google.com/", 36),
    ("https://www.google.it/", 6),
    ("https://www.bing.com/", 5),
    ("https://duckduckgo.com/", 3),
    ("https://m.facebook.com/", 3),
    ("https://www.ecosia.org/", 2),
];

/// Desktop browsers with their market weights.
pub(crate) const DESKTOP_AGENTS: [(&str, u32); 9] = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        30,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
        8,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
        16,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
        9,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        11,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        9,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:132.0) Gecko/20100101 Firefox/132.0",
        3,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        3,
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
        2,
    ),
];

/// Phone and tablet browsers with their market weights.
pub(crate) const MOBILE_AGENTS: [(&str, u32); 8] = [
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
        40,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        22,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        10,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        10,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/130.0.6723.90 Mobile/15E148 Safari/604.1",
        6,
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0",
        4,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        5,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36 EdgA/130.0.0.0",
        3,
    ),
];

/// A search-engine or SEO crawler: user agent, address blocks and share of crawler traffic.
pub(crate) struct Crawler {
    pub(crate) agent: &'static str,
    pub(crate) nets: &'static [[u8; 3]],
    pub(crate) weight: u32,
    /// Whether it revalidates with conditional GETs (and so sees 304s).
    pub(crate) conditional: bool,
}

/// Crawlers that visit the portal.
pub(crate) const CRAWLERS: [Crawler; 7] = [
    Crawler {
        agent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        nets: &[[66, 249, 66], [66, 249, 65], [66, 249, 68]],
        weight: 25,
        conditional: true,
    },
    Crawler {
        agent: "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.116 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        nets: &[[66, 249, 66], [66, 249, 79]],
        weight: 15,
        conditional: true,
    },
    Crawler {
        agent: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        nets: &[[40, 77, 167], [157, 55, 39], [207, 46, 13]],
        weight: 18,
        conditional: true,
    },
    Crawler {
        agent: "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        nets: &[[5, 255, 253], [213, 180, 203], [87, 250, 224]],
        weight: 8,
        conditional: false,
    },
    Crawler {
        agent: "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        nets: &[[54, 36, 148], [54, 36, 149], [51, 222, 253]],
        weight: 12,
        conditional: false,
    },
    Crawler {
        agent: "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
        nets: &[[185, 191, 171], [85, 208, 96]],
        weight: 12,
        conditional: false,
    },
    Crawler {
        agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        nets: &[[17, 241, 219], [17, 241, 75], [17, 22, 237]],
        weight: 8,
        conditional: false,
    },
];

/// User agents of vulnerability scanners and scripts.
pub(crate) const SCANNER_AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "curl/7.88.1",
    "Mozilla/5.0 zgrab/0.x",
    "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
];

/// Paths scanners probe; none exist on the portal.
pub(crate) const SCANNER_PATHS: [&str; 16] = [
    "/wp-login.php",
    "/.env",
    "/wp-admin/setup-config.php",
    "/.git/config",
    "/xmlrpc.php",
    "/phpmyadmin/index.php",
    "/admin.php",
    "/config.php",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/cgi-bin/luci/;stok=/locale",
    "/.aws/credentials",
    "/server-status",
    "/wp-content/plugins/wp-file-manager/readme.txt",
    "/backup.sql",
    "/.DS_Store",
    "/actuator/env",
];

/// Uptime monitor that checks the home page with `HEAD` every five minutes.
pub(crate) const MONITOR_AGENT: &str =
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)";
/// The monitor's probe addresses.
pub(crate) const MONITOR_IPS: [[u8; 4]; 4] = [
    [69, 162, 124, 226],
    [69, 162, 124, 235],
    [216, 144, 250, 150],
    [63, 143, 42, 244],
];

/// Fixed-line broadband blocks of Italian ISPs: first octets, prefix length, weight.
const HOUSEHOLD_V4: [([u8; 2], u8, u32); 12] = [
    ([79, 0], 11, 14),
    ([87, 0], 12, 10),
    ([95, 224], 11, 12),
    ([93, 32], 13, 9),
    ([2, 224], 12, 9),
    ([2, 32], 12, 8),
    ([5, 168], 14, 5),
    ([151, 16], 12, 8),
    ([151, 64], 12, 6),
    ([82, 48], 13, 6),
    ([37, 160], 14, 7),
    ([213, 45], 16, 3),
];

/// Mobile carriers' NAT pools.
const MOBILE_V4: [([u8; 2], u8, u32); 6] = [
    ([5, 90], 15, 10),
    ([37, 176], 13, 9),
    ([151, 38], 15, 8),
    ([176, 200], 13, 6),
    ([2, 36], 14, 6),
    ([91, 80], 13, 4),
];

/// Blocks of foreign visitors and hosting providers.
const FOREIGN_V4: [([u8; 2], u8, u32); 6] = [
    ([82, 64], 10, 5),
    ([91, 0], 10, 4),
    ([86, 0], 11, 3),
    ([185, 220], 14, 2),
    ([45, 128], 10, 2),
    ([193, 32], 11, 2),
];

/// Italian IPv6 broadband prefixes (first two groups).
const HOUSEHOLD_V6: [[u16; 2]; 4] = [
    [0x2001, 0x0b07],
    [0x2a01, 0x0e11],
    [0x2a02, 0xb024],
    [0x2a0e, 0x0410],
];

/// A client address, IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ip {
    V4([u8; 4]),
    V6([u16; 8]),
}

fn v4_in(blocks: &[([u8; 2], u8, u32)], idx: usize, host: u64) -> Ip {
    let (first, len, _) = blocks[idx.min(blocks.len().saturating_sub(1))];
    let base = u32::from_be_bytes([first[0], first[1], 0, 0]);
    let host_bits = 32 - u32::from(len);
    let mask = if host_bits >= 32 {
        u32::MAX
    } else {
        (1u32 << host_bits) - 1
    };
    let mut addr = (base & !mask) | (host as u32 & mask);
    // Skip network and broadcast-looking last octets.
    if matches!(addr & 0xff, 0 | 255) {
        addr ^= 0x17;
    }
    Ip::V4(addr.to_be_bytes())
}

fn weights_of(blocks: &[([u8; 2], u8, u32)]) -> [u32; 12] {
    let mut w = [0u32; 12];
    for (slot, b) in w.iter_mut().zip(blocks) {
        *slot = b.2;
    }
    w
}

/// Which broadband block a household sits in; stable for the household.
pub(crate) fn household_isp(rng: &mut DemoRng) -> u8 {
    weighted(rng, &weights_of(&HOUSEHOLD_V4)) as u8
}

/// A household's address while it holds one dynamic lease (`lease` is a key for that period).
pub(crate) fn household_ip(isp: u8, v6: bool, lease: u64) -> Ip {
    if v6 {
        let prefix = HOUSEHOLD_V6[usize::from(isp) % HOUSEHOLD_V6.len()];
        let mut g = [0u16; 8];
        g[0] = prefix[0];
        g[1] = prefix[1];
        for (i, slot) in g.iter_mut().enumerate().skip(2) {
            // Non-zero groups keep the printed form canonical without `::` compression.
            *slot = (key(&[lease, i as u64]) % 0xffff + 1) as u16;
        }
        Ip::V6(g)
    } else {
        v4_in(&HOUSEHOLD_V4, usize::from(isp), key(&[lease]))
    }
}

/// An address from a mobile carrier's NAT pool.
pub(crate) fn mobile_ip(rng: &mut DemoRng) -> Ip {
    let idx = weighted(rng, &weights_of(&MOBILE_V4));
    v4_in(&MOBILE_V4, idx, below(rng, u64::MAX))
}

/// An address of a foreign visitor.
pub(crate) fn foreign_ip(rng: &mut DemoRng) -> Ip {
    let idx = weighted(rng, &weights_of(&FOREIGN_V4));
    v4_in(&FOREIGN_V4, idx, below(rng, u64::MAX))
}

/// An address inside a crawler's published block.
pub(crate) fn crawler_ip(rng: &mut DemoRng, crawler: &Crawler) -> Ip {
    let net = pick(rng, crawler.nets);
    Ip::V4([net[0], net[1], net[2], 1 + below(rng, 250) as u8])
}

/// Appends an address as Apache prints `%h`.
pub(crate) fn push_ip(buf: &mut Vec<u8>, ip: Ip) {
    match ip {
        Ip::V4(o) => {
            for (i, octet) in o.iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                super::clock::push_num(buf, u64::from(*octet));
            }
        }
        Ip::V6(g) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, group) in g.iter().enumerate() {
                if i > 0 {
                    buf.push(b':');
                }
                let mut started = false;
                for shift in [12u16, 8, 4, 0] {
                    let nibble = (group >> shift) & 0xf;
                    if nibble != 0 || started || shift == 0 {
                        buf.push(HEX[usize::from(nibble)]);
                        started = true;
                    }
                }
            }
        }
    }
}

/// A desktop user agent drawn by market share.
pub(crate) fn desktop_agent(rng: &mut DemoRng) -> u8 {
    weighted(rng, &DESKTOP_AGENTS.map(|a| a.1)) as u8
}

/// A mobile user agent drawn by market share.
pub(crate) fn mobile_agent(rng: &mut DemoRng) -> u8 {
    weighted(rng, &MOBILE_AGENTS.map(|a| a.1)) as u8
}

/// Appends a random public page and returns nothing; the path goes to `buf`.
pub(crate) fn push_public_page(rng: &mut DemoRng, buf: &mut Vec<u8>) {
    match weighted(rng, &[34, 9, 20, 9, 10, 8, 5, 3]) {
        0 => {
            let s = below(rng, SERVICES.len() as u64) as usize;
            push_topic_page(rng, buf, s as u8);
        }
        1 => {
            let s = below(rng, SERVICES.len() as u64) as usize;
            buf.extend_from_slice(b"/servizi/");
            buf.extend_from_slice(SERVICES[s].as_bytes());
        }
        2 => {
            buf.extend_from_slice(b"/notizie/");
            buf.extend_from_slice(pick(rng, &NEWS).as_bytes());
        }
        3 => buf.extend_from_slice(pick(rng, &ADMIN).as_bytes()),
        4 => {
            buf.extend_from_slice(b"/cerca?q=");
            buf.extend_from_slice(pick(rng, &SEARCHES).as_bytes());
        }
        5 => buf.extend_from_slice(pick(rng, &EVENTS).as_bytes()),
        6 => buf.extend_from_slice(b"/contatti"),
        _ => buf.extend_from_slice(b"/servizi"),
    }
}

/// Appends `/servizi/<service>/<topic>`.
pub(crate) fn push_topic_page(rng: &mut DemoRng, buf: &mut Vec<u8>, service: u8) {
    let s = usize::from(service).min(SERVICES.len() - 1);
    buf.extend_from_slice(b"/servizi/");
    buf.extend_from_slice(SERVICES[s].as_bytes());
    buf.push(b'/');
    buf.extend_from_slice(pick(rng, SERVICE_TOPICS[s]).as_bytes());
}

/// Appends `/servizi/<service>`.
pub(crate) fn push_service_page(buf: &mut Vec<u8>, service: u8) {
    let s = usize::from(service).min(SERVICES.len() - 1);
    buf.extend_from_slice(b"/servizi/");
    buf.extend_from_slice(SERVICES[s].as_bytes());
}

/// Appends a page a search engine might hold but that no longer exists.
pub(crate) fn push_stale_page(rng: &mut DemoRng, buf: &mut Vec<u8>) {
    match below(rng, 3) {
        0 => {
            buf.extend_from_slice(b"/notizie/2019/");
            buf.extend_from_slice(pick(rng, &NEWS).as_bytes());
        }
        1 => {
            buf.extend_from_slice(b"/flex/cm/pages/ServeBLOB.php/L/IT/IDPagina/");
            super::clock::push_num(buf, 1000 + below(rng, 90_000));
        }
        _ => {
            let s = below(rng, SERVICES.len() as u64) as u8;
            push_topic_page(rng, buf, s);
            buf.extend_from_slice(b"-old");
        }
    }
}

/// The body size of a page: stable per path, with a little dynamic jitter.
pub(crate) fn page_bytes(rng: &mut DemoRng, path: &[u8]) -> u32 {
    let base = if path == b"/" {
        52_340
    } else {
        let h = path.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        14_000 + (h % 38_000) as u32
    };
    base + below(rng, 1_200) as u32
}

#[cfg(test)]
mod tests {
    use super::super::sampling::rng;
    use super::*;

    fn ip_text(ip: Ip) -> String {
        let mut b = Vec::new();
        push_ip(&mut b, ip);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn addresses_print_in_apache_form_and_parse_back() {
        let mut r = rng(&[3]);
        for i in 0..500u64 {
            let v4 = ip_text(household_ip(household_isp(&mut r), false, i));
            assert!(v4.parse::<std::net::Ipv4Addr>().is_ok(), "{v4}");
            let v6 = household_ip(1, true, i);
            let text = ip_text(v6);
            let parsed: std::net::Ipv6Addr = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text, "canonical form");
            assert!(
                ip_text(mobile_ip(&mut r))
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok()
            );
        }
    }

    #[test]
    fn service_paths_use_the_service_codes() {
        let mut r = rng(&[4]);
        for s in 0..SERVICES.len() as u8 {
            let mut b = Vec::new();
            push_topic_page(&mut r, &mut b, s);
            let p = String::from_utf8(b).unwrap();
            assert_eq!(p.split('/').nth(2), Some(SERVICES[usize::from(s)]));
        }
        assert_eq!(SERVICES[usize::from(SCUOLA)], "scuola");
    }
}
