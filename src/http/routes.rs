//! The route table: every path, the methods it takes and its handler. Dispatch, the `405`
//! answer and the server's `Allow` header all read it; handlers are plain functions from a
//! request to a response, tested without a socket.

use super::params::{parse_query, Query};
use super::response::{answer, Response};
use super::store::Store;
use super::{infinity, simple_json};
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

/// Every endpoint. `/drivers` and `/alerts` are the seeds' names for the `/api/` ones.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/",
        methods: &["GET", "POST"],
        handler: |s, _, _| answer(Ok(infinity::health(s))),
    },
    Route {
        path: "/metrics",
        methods: GET,
        handler: |s, _, _| infinity::metrics(s),
    },
    Route {
        path: "/api/drivers",
        methods: GET,
        handler: |s, _, _| answer(Ok(infinity::drivers(s))),
    },
    Route {
        path: "/api/series",
        methods: GET,
        handler: |s, q, _| answer(infinity::series_points(s, q)),
    },
    Route {
        path: "/api/alerts",
        methods: GET,
        handler: |s, q, _| answer(infinity::alerts(s, q)),
    },
    Route {
        path: "/api/windows",
        methods: GET,
        handler: |s, q, _| answer(infinity::windows(s, q)),
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

pub fn route(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path)
}

/// The methods `path` takes (for the `Allow` header of a 405), `GET` for unknown paths.
pub fn allowed_methods(path: &str) -> &'static [&'static str] {
    route(path).map_or(GET, |r| r.methods)
}

/// Answers one request. `body` is at most [`MAX_BODY`] bytes (the server refuses larger).
pub fn handle(
    store: &Store,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let route = route(path);
    store
        .metrics
        .queries
        .get_or_create(&EndpointLabels {
            endpoint: route.map_or("other", |r| r.path).to_string(),
        })
        .inc();
    let Some(route) = route else {
        return Response::error(404, format!("no endpoint {path}"));
    };
    if !route.methods.contains(&method) {
        return Response::error(
            405,
            format!(
                "{method} is not allowed on {path}; use {}",
                route.methods.join(" or ")
            ),
        );
    }
    (route.handler)(store, &parse_query(query), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpConfig, PitwallConfig};
    use crate::http::params::parse_query;
    use crate::http::series::downsample;
    use crate::http::store::StoreHook;
    use pitwall_dataflows::analysis::DriverAnalysis;
    use pitwall_dataflows::config::WindowConfig;
    use pitwall_dataflows::dataflow::AnalysisHook;
    use pitwall_dataflows::DriverId;
    use pitwall_dataflows::{DetectorConfig, Telemetry};
    use serde_json::Value;
    use std::sync::Arc;

    #[test]
    fn downsampling_keeps_each_buckets_extremes_in_time_order() {
        let points: Vec<(i64, f32)> = (0..1000).map(|i| (i, ((i * 37) % 101) as f32)).collect();
        let out = downsample(&points, 10);
        assert!(out.len() <= 10);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        for b in 0..5 {
            let chunk = &points[b * 200..(b + 1) * 200];
            let max = chunk.iter().map(|p| p.1).fold(f32::MIN, f32::max);
            let min = chunk.iter().map(|p| p.1).fold(f32::MAX, f32::min);
            assert!(out
                .iter()
                .any(|p| p.1 == max && (b as i64 * 200..(b as i64 + 1) * 200).contains(&p.0)));
            assert!(out
                .iter()
                .any(|p| p.1 == min && (b as i64 * 200..(b as i64 + 1) * 200).contains(&p.0)));
        }
        assert_eq!(
            downsample(&points[..5], 10),
            points[..5].to_vec(),
            "fewer points than asked: all"
        );
    }

    /// A store fed as the dataflow feeds it: 40 samples of HAM with a lugging episode.
    fn store() -> Store {
        let store = Arc::new(Store::new(
            &HttpConfig {
                points_per_driver: 100,
                windows_per_driver: 100,
                max_alerts: 100,
                ..PitwallConfig::default().http
            },
            &WindowConfig::default(),
        ));
        let mut hook = StoreHook::new(store.clone(), crate::ingest::EpochClock::default());
        let driver = DriverId::new("HAM").unwrap();
        let mut a = DriverAnalysis::new(driver, &DetectorConfig::default());
        for i in 0..40i64 {
            let lug = (10..15).contains(&i);
            let s = Telemetry {
                driver,
                ts_ms: 1_000_000 + i * 250,
                speed: 100.0 + i as f32,
                rpm: if lug { 7000.0 } else { 10000.0 },
                throttle: 50.0,
                brake_temp: None,
                position: None,
                lap: Some(2),
                gear: 5,
                drs: 0,
                brake: false,
            };
            let d = a.observe(&s, |o| hook.output(&o, 0));
            hook.sample(&s, &d);
        }
        a.finish(|o| hook.output(&o, 0));
        hook.flush();
        drop(hook);
        Arc::try_unwrap(store).ok().unwrap()
    }

    fn json(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn series_alerts_and_simple_json_without_a_socket() {
        let s = store();
        let r = handle(
            &s,
            "GET",
            "/api/series",
            Some("driver=HAM&metric=speed&from=1000000&to=1000999"),
            b"",
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            json(&r),
            serde_json::json!([
                {"time": 1000000, "value": 100.0}, {"time": 1000250, "value": 101.0},
                {"time": 1000500, "value": 102.0}, {"time": 1000750, "value": 103.0}
            ])
        );
        let r = handle(
            &s,
            "GET",
            "/api/alerts",
            Some("driver=HAM&type=lugging"),
            b"",
        );
        let alerts = json(&r);
        assert_eq!(alerts.as_array().unwrap().len(), 1);
        assert_eq!(
            alerts[0]["status"], "cleared",
            "the cleared state replaced the raised one"
        );
        assert_eq!(alerts[0]["start_ms"], 1_002_500);
        let r = handle(
            &s,
            "POST",
            "/query",
            None,
            br#"{"targets": [{"target": "rpm:HAM"}], "maxDataPoints": 4}"#,
        );
        let q = json(&r);
        assert_eq!(q[0]["target"], "rpm:HAM");
        let values: Vec<f64> = q[0]["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_f64().unwrap())
            .collect();
        assert!(
            values.len() <= 4 && values.contains(&7000.0) && values.contains(&10000.0),
            "{values:?}"
        );
        let r = handle(
            &s,
            "POST",
            "/annotations",
            None,
            br#"{"range": {"from": "1970-01-01T00:00:00Z", "to": "1970-01-02T00:00:00Z"}}"#,
        );
        assert_eq!(
            json(&r)[0]["tags"],
            serde_json::json!(["low", "lugging", "HAM"])
        );
        assert_eq!(handle(&s, "DELETE", "/api/series", None, b"").status, 405);
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
    fn query_strings_are_decoded() {
        let q = parse_query(Some("driver=V%45R&metric=speed+x&empty="));
        assert_eq!(q["driver"], "VER");
        assert_eq!(q["metric"], "speed x");
        assert_eq!(q["empty"], "");
        assert_eq!(parse_query(Some("a=%zz"))["a"], "%zz");
    }
}
