//! SQL helpers for web logs, registered on every session
//! (`crate::functions`):
//!
//! - `is_bot(user_agent)`: true for crawlers, monitors, scanners and
//!   scripted clients, and for requests without a user agent;
//! - `is_static_asset(path)`: true for stylesheets, scripts, images, fonts
//!   and media, by the path's extension (the query is ignored).

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// Words that mark a user agent as automated (compared in lower case).
const BOT_MARKERS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "scrapy",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww",
    "httpclient",
    "headless",
    "phantomjs",
    "facebookexternalhit",
    "monitor",
    "uptime",
    "pingdom",
    "zgrab",
    "masscan",
    "nmap",
    "nikto",
    "sqlmap",
    "censys",
    "feedfetcher",
    "preview",
];

/// Extensions of static assets (compared in lower case).
const ASSET_EXTENSIONS: &[&str] = &[
    "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp",
    "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg", "wav",
];

/// One case-insensitive automaton over every bot marker.
static BOT_FINDER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(BOT_MARKERS)
        .ok()
});

/// Whether a user agent is automated; a missing one counts as automated.
pub fn is_bot(user_agent: Option<&str>) -> bool {
    let Some(agent) = user_agent
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "-")
    else {
        return true;
    };
    match BOT_FINDER.as_ref() {
        Some(finder) => finder.is_match(agent),
        None => {
            let agent = agent.to_ascii_lowercase();
            BOT_MARKERS.iter().any(|marker| agent.contains(marker))
        }
    }
}

/// Whether a path names a static asset, by its extension.
pub fn is_static_asset(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let file = path.rsplit('/').next().unwrap_or(path);
    match file.rsplit_once('.') {
        Some((_, ext)) => ASSET_EXTENSIONS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(ext)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bots_and_people() {
        assert!(is_bot(Some(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        )));
        assert!(is_bot(Some("curl/8.5.0")));
        assert!(is_bot(None));
        assert!(!is_bot(Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"
        )));
    }

    #[test]
    fn assets_by_extension() {
        assert!(is_static_asset("/static/app.3f2a.css"));
        assert!(is_static_asset("/img/logo.PNG?v=2"));
        assert!(!is_static_asset("/servizi/tari/pagamento"));
        assert!(!is_static_asset("/documenti/delibera.pdf"));
        assert!(!is_static_asset("/v1.2/servizi"));
    }
}
