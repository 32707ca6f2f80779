//! The route table: every path, the methods it takes and its handler. Dispatch, the `405`
//! answer and the server's `Allow` header all read it; handlers are plain functions from a
//! request to a response, tested without a socket. A path may have one entry per method:
//! `GET /metrics` is Prometheus's scrape, `POST /metrics` the SimpleJSON metric list that
//! simPod's JSON datasource asks for (the two protocols never use the other's method).

use super::params::{parse_query, Query};
use super::response::{answer, Response};
use super::store::Store;
use super::{infinity, page, simple_json};
use crate::metrics::EndpointLabels;

/// Bodies larger than this are refused.
pub const MAX_BODY: usize = 1 << 20;

type Handler = fn(&Store, &Query, &[u8]) -> Response;

pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    handler: Handler,
}

const GET: &[&str] = &["GET"];
const POST: &[&str] = &["POST"];

/// Every endpoint. `/drivers` and `/alerts` are the seeds' names for the `/api/` ones. A
/// browser's `GET /` is answered by `/index.html` (see [`negotiate`]).
pub const ROUTES: &[Route] = &[
    Route {
        path: "/",
        methods: &["GET", "POST"],
        handler: |s, _, _| answer(Ok(infinity::health(s))),
    },
    Route {
        path: "/health",
        methods: GET,
        handler: |s, _, _| answer(Ok(infinity::health(s))),
    },
    Route {
        path: page::INDEX_PATH,
        methods: GET,
        handler: |_, _, _| page::page(),
    },
    Route {
        path: "/page/app.js",
        methods: GET,
        handler: |_, _, _| page::app_js(),
    },
    Route {
        path: "/page/style.css",
        methods: GET,
        handler: |_, _, _| page::style_css(),
    },
    Route {
        path: "/page/icon.svg",
        methods: GET,
        handler: |_, _, _| page::icon_svg(),
    },
    Route {
        path: "/metrics",
        methods: GET,
        handler: |s, _, _| infinity::metrics(s),
    },
    Route {
        path: "/metrics",
        methods: POST,
        handler: |s, _, body| answer(simple_json::metrics(s, body)),
    },
    Route {
        path: "/api/drivers",
        methods: GET,
        handler: |s, _, _| answer(Ok(infinity::drivers(s))),
    },
    Route {
        path: "/api/series",
        methods: GET,
        handler: |s, q, _| infinity::series_points(s, q).unwrap_or_else(|e| e),
    },
    Route {
        path: "/api/alerts",
        methods: GET,
        handler: |s, q, _| answer(infinity::alerts(s, q)),
    },
    Route {
        path: "/api/annotations",
        methods: GET,
        handler: |s, q, _| answer(infinity::annotations(s, q)),
    },
    Route {
        path: "/api/windows",
        methods: GET,
        handler: |s, q, _| answer(infinity::windows(s, q)),
    },
    Route {
        path: "/api/standings",
        methods: GET,
        handler: |s, _, _| answer(infinity::standings(s)),
    },
    Route {
        path: "/api/laps",
        methods: GET,
        handler: |s, q, _| answer(infinity::laps(s, q)),
    },
    Route {
        path: "/api/pit_stops",
        methods: GET,
        handler: |s, q, _| answer(infinity::pit_stops(s, q)),
    },
    Route {
        path: "/api/predictions",
        methods: GET,
        handler: |s, q, _| answer(infinity::predictions(s, q)),
    },
    Route {
        path: "/api/trace",
        methods: GET,
        handler: |s, q, _| answer(infinity::trace(s, q)),
    },
    Route {
        path: "/api/engine",
        methods: GET,
        handler: |s, _, _| answer(Ok(infinity::engine(s))),
    },
    Route {
        path: "/search",
        methods: POST,
        handler: |s, _, _| answer(Ok(simple_json::search(s))),
    },
    Route {
        path: "/query",
        methods: POST,
        handler: |s, _, body| answer(simple_json::query(s, body)),
    },
    Route {
        path: "/annotations",
        methods: POST,
        handler: |s, _, body| answer(simple_json::annotations(s, body)),
    },
    Route {
        path: "/drivers",
        methods: GET,
        handler: |s, _, _| answer(Ok(infinity::drivers(s))),
    },
    Route {
        path: "/alerts",
        methods: GET,
        handler: |s, q, _| answer(infinity::alerts(s, q)),
    },
];

/// The entry for `path` and `method`, or `Err` with whether the path exists at all.
pub fn route(path: &str, method: &str) -> Result<&'static Route, bool> {
    let mut known = false;
    for r in ROUTES.iter().filter(|r| r.path == path) {
        known = true;
        if r.methods.contains(&method) {
            return Ok(r);
        }
    }
    Err(known)
}

/// The path that answers a request: a browser's `GET /` (its `Accept` naming `text/html`)
/// gets the live page, everyone else what they asked for (the health JSON at `/`).
pub fn negotiate<'a>(method: &str, path: &'a str, accept: Option<&str>) -> &'a str {
    if method == "GET" && path == "/" && accept.is_some_and(page::wants_html) {
        page::INDEX_PATH
    } else {
        path
    }
}

/// The methods `path` takes (for the `Allow` header of a 405), `GET` for unknown paths.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let methods: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.path == path)
        .flat_map(|r| r.methods.iter().copied())
        .collect();
    if methods.is_empty() {
        GET.to_vec()
    } else {
        methods
    }
}

/// Answers one request. `body` is at most [`MAX_BODY`] bytes (the server refuses larger).
pub fn handle(
    store: &Store,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let found = route(path, method);
    let known = !matches!(found, Err(false));
    store
        .metrics
        .queries
        .get_or_create(&EndpointLabels {
            endpoint: if known { path } else { "other" }.to_string(),
        })
        .inc();
    let route = match found {
        Ok(route) => route,
        Err(false) => return Response::error(404, format!("no endpoint {path}")),
        Err(true) => {
            return Response::error(
                405,
                format!(
                    "{method} is not allowed on {path}; use {}",
                    allowed_methods(path).join(" or ")
                ),
            )
        }
    };
    (route.handler)(store, &parse_query(query), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_store::{json, store};
    use serde_json::Value;

    fn get(s: &Store, path: &str, query: &str) -> (u16, Value) {
        let r = handle(s, "GET", path, Some(query), b"");
        (r.status, json(&r))
    }

    #[test]
    fn the_method_picks_the_handler_and_any_other_is_refused_with_405() {
        let s = store();
        // /metrics: Prometheus's text on GET, SimpleJSON's target list on POST.
        let r = handle(&s, "GET", "/metrics", None, b"");
        assert!(String::from_utf8_lossy(&r.body).contains("pitwall_records_total"));
        let listed = json(&handle(&s, "POST", "/metrics", None, b""));
        assert_eq!(listed, json(&handle(&s, "POST", "/search", None, b"{}")));
        assert!(listed.as_array().unwrap().contains(&"rpm:HAM".into()));
        assert_eq!(handle(&s, "POST", "/metrics", None, b"{oops").status, 400);
        assert_eq!(handle(&s, "PUT", "/metrics", None, b"").status, 405);
        assert_eq!(allowed_methods("/metrics"), ["GET", "POST"]);
        assert_eq!(handle(&s, "DELETE", "/api/series", None, b"").status, 405);
        assert_eq!(handle(&s, "POST", "/api/standings", None, b"").status, 405);
        // The query string reaches the handler, as the body did above.
        assert_eq!(
            handle(
                &s,
                "GET",
                "/api/series",
                Some("driver=HAM&metric=speed&maxDataPoints=0"),
                b""
            )
            .status,
            400
        );
    }

    #[test]
    fn health_moves_to_its_own_path_and_browsers_get_the_page_at_the_root() {
        let s = store();
        let (status, health) = get(&s, "/health", "");
        assert_eq!(
            (status, &health["status"], &health["drivers"]),
            (200, &serde_json::json!("ok"), &serde_json::json!(1))
        );
        assert_eq!(get(&s, "/", "").1["records"], health["records"]);
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(negotiate("GET", "/", Some(browser)), page::INDEX_PATH);
        assert_eq!(negotiate("GET", "/", Some("*/*")), "/");
        assert_eq!(negotiate("GET", "/", None), "/");
        assert_eq!(
            negotiate("POST", "/", Some(browser)),
            "/",
            "SimpleJSON's POST / stays JSON"
        );
        assert_eq!(negotiate("GET", "/health", Some(browser)), "/health");
        let page = handle(&s, "GET", page::INDEX_PATH, None, b"");
        assert_eq!(
            (page.status, page.content_type),
            (200, "text/html; charset=utf-8")
        );
        assert!(String::from_utf8_lossy(&page.body).contains("id=\"tower\""));
        for (path, content_type) in [
            ("/page/app.js", "text/javascript; charset=utf-8"),
            ("/page/style.css", "text/css; charset=utf-8"),
            ("/page/icon.svg", "image/svg+xml"),
        ] {
            let r = handle(&s, "GET", path, None, b"");
            assert_eq!((r.status, r.content_type), (200, content_type), "{path}");
            assert!(!r.body.is_empty(), "{path}");
        }
        assert_eq!(handle(&s, "POST", "/page/app.js", None, b"").status, 405);
    }
}
