//! The live page: one HTML, one script, one stylesheet and an icon, embedded in the binary and
//! served by it (nothing from elsewhere at run time). The page polls the JSON API and draws
//! its charts itself on canvas.
//!
//! `GET /` is the page for a browser (an `Accept` naming `text/html`) and the health JSON for
//! everyone else. The page names its script and stylesheet with a hash of their contents, so
//! they can be cached for good while the page itself is always revalidated.

use super::response::Response;
use std::sync::OnceLock;

const INDEX: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");
const ICON_SVG: &str = include_str!("icon.svg");

/// The path a browser's `GET /` is answered from.
pub const INDEX_PATH: &str = "/index.html";

/// FNV-1a, 64 bits: enough to tell one build's assets from another's.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The page, its asset links carrying the assets' version.
fn index() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        let version = format!("{:016x}", fnv1a(&[APP_JS, STYLE_CSS, ICON_SVG]));
        INDEX.replace("{{version}}", &version)
    })
}

fn asset(content_type: &'static str, body: &str) -> Response {
    Response {
        status: 200,
        content_type,
        body: body.as_bytes().to_vec(),
    }
}

pub fn page() -> Response {
    asset("text/html; charset=utf-8", index())
}

pub fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

pub fn icon_svg() -> Response {
    asset("image/svg+xml", ICON_SVG)
}

/// Whether an `Accept` header asks for HTML (a browser navigating), `text/html` with a
/// nonzero quality; `*/*` alone is not enough, so API clients keep getting JSON.
pub fn wants_html(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        media.eq_ignore_ascii_case("text/html") && !refused
    })
}

/// The `Cache-Control` of a page path: the versioned assets for good, the page revalidated;
/// `None` for the API.
pub fn cache_control(path: &str) -> Option<&'static str> {
    match path {
        "/" | INDEX_PATH => Some("no-cache"),
        p if p.starts_with("/page/") => Some("public, max-age=31536000, immutable"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        assert!(wants_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
        ));
        assert!(wants_html("TEXT/HTML"));
        assert!(!wants_html("*/*"));
        assert!(!wants_html("application/json"));
        assert!(!wants_html("text/html;q=0, application/json"));
        assert!(!wants_html(""));
    }

    #[test]
    fn the_page_links_its_assets_by_their_version() {
        let html = index();
        assert!(!html.contains("{{version}}"));
        let version = format!("{:016x}", fnv1a(&[APP_JS, STYLE_CSS, ICON_SVG]));
        for asset in ["/page/app.js?v=", "/page/style.css?v=", "/page/icon.svg?v="] {
            assert!(
                html.contains(&format!("{asset}{version}")),
                "{asset} is linked with the assets' version"
            );
        }
        assert_ne!(fnv1a(&["a"]), fnv1a(&["b"]));
        assert_eq!(
            cache_control("/page/app.js"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(cache_control("/"), Some("no-cache"));
        assert_eq!(cache_control("/api/standings"), None);
    }
}
