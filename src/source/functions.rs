//! SQL helpers for web logs, registered on every session:
//!
//! - `is_bot(user_agent)`: true for crawlers, monitors, scanners and
//!   scripted clients, and for requests without a user agent;
//! - `is_static_asset(path)`: true for stylesheets, scripts, images, fonts
//!   and media, by the path's extension (the query is ignored).

use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

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

/// Registers `is_bot` and `is_static_asset` on a session.
pub fn register_functions(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(TextPredicate::new("is_bot", |value| {
        Some(is_bot(value))
    })));
    ctx.register_udf(ScalarUDF::from(TextPredicate::new(
        "is_static_asset",
        |value| value.map(is_static_asset),
    )));
}

/// A boolean function of one text argument, known by its name.
#[derive(Debug)]
struct TextPredicate {
    name: &'static str,
    signature: Signature,
    test: fn(Option<&str>) -> Option<bool>,
}

impl TextPredicate {
    fn new(name: &'static str, test: fn(Option<&str>) -> Option<bool>) -> Self {
        TextPredicate {
            name,
            signature: Signature::string(1, Volatility::Immutable),
            test,
        }
    }
}

impl PartialEq for TextPredicate {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TextPredicate {}

impl std::hash::Hash for TextPredicate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for TextPredicate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(arg) = args.args.into_iter().next() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(None)));
        };
        let text: ArrayRef = cast(&arg.into_array(args.number_rows)?, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let result: BooleanArray = (0..text.len())
            .map(|row| (self.test)((!text.is_null(row)).then(|| text.value(row))))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(result)))
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

    #[tokio::test]
    async fn usable_from_sql() {
        let ctx = SessionContext::new();
        register_functions(&ctx);
        let batches = ctx
            .sql("SELECT is_bot('Googlebot/2.1') AS b, is_static_asset(arrow_cast('/a.js', 'Utf8View')) AS s, is_static_asset(NULL) AS n")
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let row = &batches[0];
        assert!(row.column(0).as_boolean().value(0));
        assert!(row.column(1).as_boolean().value(0));
        assert!(row.column(2).is_null(0));
    }
}
