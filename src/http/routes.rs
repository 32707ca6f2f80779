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
    use crate::config::{HttpConfig, PitwallConfig};
    use crate::http::params::parse_query;
    use crate::http::series::downsample;
    use crate::http::store::StoreHook;
    use pitwall_dataflows::analysis::DriverAnalysis;
    use pitwall_dataflows::config::WindowConfig;
    use pitwall_dataflows::dataflow::AnalysisHook;
    use pitwall_dataflows::race::driver_laps::DriverLap;
    use pitwall_dataflows::race::{
        FieldState, FieldView, LapDone, LapRow, ModelType, PitRow, PitStop, Prediction, RaceItem,
        RaceUpdate, Standing,
    };
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
        store_lugging(&[(10, 15)])
    }

    /// 40 samples of HAM, lugging from the first to before the second sample of each of `lugs`.
    fn store_lugging(lugs: &[(i64, i64)]) -> Store {
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
        // The seeds' fixed lugging rule, which these samples (half throttle) are made for.
        let mut detectors = DetectorConfig::default();
        detectors.gear.lugging_mode = pitwall_dataflows::config::LuggingMode::Fixed;
        let mut a = DriverAnalysis::new(driver, &detectors);
        for i in 0..40i64 {
            let lug = lugs.iter().any(|&(from, to)| (from..to).contains(&i));
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
        // The same alert as an annotation row, fields named as Grafana maps them.
        let r = handle(&s, "GET", "/api/annotations", Some("driver=HAM"), b"");
        let a = &json(&r)[0];
        assert_eq!(
            (&a["time"], &a["timeEnd"], &a["tags"], &a["title"]),
            (
                &serde_json::json!(1_002_500),
                &alerts[0]["end_ms"],
                &serde_json::json!("low,lugging,HAM"),
                &serde_json::json!("HAM lugging")
            )
        );
        assert!(a["text"].as_str().is_some_and(|t| t.contains("lug")), "{a}");
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

    fn lap_row(driver: &str, lap: u16, end_ms: i64, position: u16, gap_ms: i64) -> LapRow {
        let driver = DriverId::new(driver).unwrap();
        LapRow {
            lap: DriverLap {
                done: LapDone {
                    driver,
                    lap,
                    start_ms: end_ms - 80_000,
                    end_ms,
                    by_distance: false,
                    samples: 320,
                    spin_samples: 0,
                    max_speed_kmh: 290,
                    top_gear: 8,
                    max_rpm: 11_800,
                    stationary_ms: 0,
                    hard_decels: 0,
                    glitch_gears: 0,
                },
                lap_time_ms: 80_000,
                pit_in: false,
                pit_out: false,
                stint: 1,
                tyre_age_laps: lap,
                pit_count: 0,
                clean: lap > 1,
                best_ms: 80_000,
                pace_permille: 1000,
                stint_loss_ms: 0,
                trend_ms_per_lap: 0,
                spread_permille: 0,
            },
            standing: Standing {
                position,
                gap_to_leader_ms: gap_ms,
                interval_ms: gap_ms,
                ahead: None,
            },
            field: FieldView::default(),
        }
    }

    fn prediction(driver: &str, lap: u16, model: ModelType, ppm: u32) -> Prediction {
        Prediction {
            driver: DriverId::new(driver).unwrap(),
            lap,
            model,
            ts_ms: 1_685_278_862_424 + lap as i64 * 80_000,
            probability_ppm: ppm,
            confidence_ppm: ppm,
        }
    }

    /// A store whose race book holds VER on laps 1-2, HAM on laps 1-2 (lap 2's position
    /// corrected by a retraction and an insertion), LEC on lap 1 only; a stop and predictions.
    fn race_store() -> Store {
        let s = store();
        let ins = |item| RaceUpdate { item, diff: 1 };
        let stop = PitRow {
            stop: PitStop {
                driver: DriverId::new("LEC").unwrap(),
                lap: 1,
                pit_in_ms: 1_000_070_000,
                pit_out_ms: 1_000_095_000,
                stationary_ms: 2_500,
                limit_kmh: 80,
            },
            field_state: FieldState::Green,
        };
        let updates = vec![
            ins(RaceItem::Lap(lap_row("VER", 1, 1_000_080_000, 1, 0))),
            ins(RaceItem::Lap(lap_row("HAM", 1, 1_000_081_000, 2, 1_000))),
            ins(RaceItem::Lap(lap_row("LEC", 1, 1_000_082_000, 3, 2_000))),
            ins(RaceItem::Lap(lap_row("HAM", 2, 1_000_160_000, 1, 0))),
            ins(RaceItem::Lap(lap_row("VER", 2, 1_000_159_000, 1, 0))),
            RaceUpdate {
                item: RaceItem::Lap(lap_row("HAM", 2, 1_000_160_000, 1, 0)),
                diff: -1,
            },
            ins(RaceItem::Lap(lap_row("HAM", 2, 1_000_160_000, 2, 1_000))),
            ins(RaceItem::Pit(stop)),
            ins(RaceItem::Prediction(prediction(
                "VER",
                1,
                ModelType::PitStopProbability,
                100_000,
            ))),
            ins(RaceItem::Prediction(prediction(
                "VER",
                2,
                ModelType::PitStopProbability,
                700_000,
            ))),
            ins(RaceItem::Prediction(prediction(
                "VER",
                2,
                ModelType::CrashRisk,
                50_000,
            ))),
            ins(RaceItem::Prediction(prediction(
                "HAM",
                2,
                ModelType::PitStopProbability,
                300_000,
            ))),
        ];
        s.apply_race(&updates);
        s
    }

    fn get(s: &Store, path: &str, query: &str) -> (u16, Value) {
        let r = handle(s, "GET", path, Some(query), b"");
        (r.status, json(&r))
    }

    #[test]
    fn standings_are_each_drivers_latest_lap_in_race_order() {
        let s = race_store();
        let (status, rows) = get(&s, "/api/standings", "");
        assert_eq!(status, 200);
        let order: Vec<(u64, &str, u64, i64, u64)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["position"].as_u64().unwrap(),
                    r["driver_id"].as_str().unwrap(),
                    r["lap"].as_u64().unwrap(),
                    r["gap_to_leader_ms"].as_i64().unwrap(),
                    r["laps_down"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (1, "VER", 2, 0, 0),
                (2, "HAM", 2, 1_000, 0),
                (3, "LEC", 1, 2_000, 1)
            ],
            "the corrected HAM row, not the retracted one"
        );
        assert_eq!(rows[0]["field_state"], "green");
        assert_eq!(rows[0]["last_lap_time_ms"], 80_000);
        assert_eq!(rows[2]["tyre_age_laps"], 1);
        assert_eq!(handle(&s, "POST", "/api/standings", None, b"").status, 405);
        // An empty book: an empty running order.
        assert_eq!(get(&store(), "/api/standings", "").1, serde_json::json!([]));
    }

    #[test]
    fn laps_and_pit_stops_filter_by_driver() {
        let s = race_store();
        let (status, all) = get(&s, "/api/laps", "");
        assert_eq!((status, all.as_array().unwrap().len()), (200, 5));
        let (_, ham) = get(&s, "/api/laps", "driver=HAM");
        let ham = ham.as_array().unwrap();
        assert_eq!(ham.len(), 2);
        assert_eq!(
            (ham[1]["lap"].as_u64(), ham[1]["position"].as_u64()),
            (Some(2), Some(2))
        );
        assert_eq!(ham[0]["message_type"], "lap");
        assert_eq!(
            get(&s, "/api/laps", "driver=HAM,LEC")
                .1
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            get(&s, "/api/laps", "driver=All")
                .1
                .as_array()
                .unwrap()
                .len(),
            5
        );
        assert_eq!(
            get(&s, "/api/laps", "driver=ZZZ"),
            (200, serde_json::json!([]))
        );
        assert_eq!(get(&s, "/api/laps", "driver=bad%20id").0, 400);
        let (status, stops) = get(&s, "/api/pit_stops", "");
        assert_eq!(status, 200);
        assert_eq!(stops[0]["driver_id"], "LEC");
        assert_eq!(stops[0]["pit_lane_ms"], 25_000);
        assert_eq!(stops[0]["field_state"], "green");
        assert_eq!(
            get(&s, "/api/pit_stops", "driver=VER"),
            (200, serde_json::json!([]))
        );
    }

    #[test]
    fn predictions_filter_by_driver_and_model_and_keep_the_latest() {
        let s = race_store();
        let (status, ver) = get(
            &s,
            "/api/predictions",
            "driver=VER&model_type=pit_stop_probability",
        );
        assert_eq!(status, 200);
        let ver = ver.as_array().unwrap();
        assert_eq!(ver.len(), 2);
        assert_eq!(ver[1]["lap"], 2);
        assert_eq!(ver[1]["probability"], 0.7);
        assert_eq!(ver[1]["prediction"]["probability"], 0.7);
        assert_eq!(ver[1]["prediction"]["risk_level"], "high");
        assert_eq!(ver[1]["ts_ms"], 1_685_279_022_424i64);
        assert_eq!(ver[1]["timestamp"], "2023-05-28T13:03:42.424Z");
        assert_eq!(
            get(&s, "/api/predictions", "").1.as_array().unwrap().len(),
            4
        );
        let (_, latest) = get(&s, "/api/predictions", "latest=true");
        let latest: Vec<(&str, u64, &str)> = latest
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["driver_id"].as_str().unwrap(),
                    p["lap"].as_u64().unwrap(),
                    p["model_type"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            latest,
            vec![
                ("HAM", 2, "pit_stop_probability"),
                ("VER", 2, "crash_risk"),
                ("VER", 2, "pit_stop_probability"),
            ]
        );
        assert_eq!(
            get(&s, "/api/predictions", "model_type=crash_risk,tire_failure")
                .1
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            get(&s, "/api/predictions", "driver=ZZZ"),
            (200, serde_json::json!([]))
        );
        let (status, e) = get(&s, "/api/predictions", "model_type=lap_time");
        assert_eq!(status, 400);
        assert_eq!(
            e["error"],
            "model_type=\"lap_time\" must be one of crash_risk, tire_failure, pit_stop_probability"
        );
        assert_eq!(get(&s, "/api/predictions", "latest=maybe").0, 400);
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

    #[test]
    fn a_trace_is_every_metric_of_the_drivers_last_seconds() {
        let s = store();
        let (status, t) = get(&s, "/api/trace", "driver=HAM&seconds=2");
        assert_eq!(status, 200);
        // The last sample is at 1_009_750; two seconds before it, samples 31..=39.
        assert_eq!(
            (t["driver"].as_str(), t["from"].as_i64(), t["to"].as_i64()),
            (Some("HAM"), Some(1_007_750), Some(1_009_750))
        );
        let points = t["points"].as_array().unwrap();
        assert_eq!(points.len(), 9);
        assert_eq!(points[0]["time"], 1_007_750);
        assert_eq!(points[0]["speed"], 131.0);
        assert_eq!(points[0]["rpm"], 10000.0);
        assert_eq!(
            (points[0]["gear"].as_u64(), points[0]["throttle"].as_f64()),
            (Some(5), Some(50.0))
        );
        for p in points {
            for key in ["expected_speed", "wheel_spin"] {
                assert!(p[key].is_null() || p[key].is_number(), "{key}: {p}");
            }
            assert!(p["spinning"].is_boolean());
        }
        let (_, whole) = get(&s, "/api/trace", "driver=HAM");
        assert_eq!(
            whole["points"].as_array().unwrap().len(),
            40,
            "the default 120 s holds all"
        );
        assert_eq!(get(&s, "/api/trace", "driver=HAM&seconds=0").0, 400);
        assert_eq!(get(&s, "/api/trace", "driver=HAM&seconds=601").0, 400);
        assert_eq!(get(&s, "/api/trace", "driver=ZZZ").0, 404);
        assert_eq!(get(&s, "/api/trace", "").0, 400);
    }

    #[test]
    fn the_engine_answer_counts_records_alerts_and_the_race_clock() {
        let s = store();
        let (status, e) = get(&s, "/api/engine", "");
        assert_eq!(status, 200);
        assert_eq!(
            (e["records"].as_u64(), e["drivers"].as_u64()),
            (Some(40), Some(1))
        );
        assert_eq!(e["race_time_ms"], 1_009_750);
        let stored = get(&s, "/api/alerts", "").1;
        let by_severity = |sev: &str| {
            stored
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["severity"] == sev)
                .count() as u64
        };
        for sev in ["high", "medium", "low"] {
            assert_eq!(e["alerts"][sev].as_u64(), Some(by_severity(sev)), "{sev}");
        }
        assert!(
            e["alerts"]["low"].as_u64().unwrap() >= 1,
            "the lugging episode"
        );
        // No epoch was noted by this store's clock: no latency measured, said as null.
        assert_eq!(
            e["latency_seconds"],
            serde_json::json!({"last": null, "mean": null, "count": 0})
        );
        assert!(e["uptime_seconds"].as_f64().unwrap() >= 0.0);
        assert!(e["records_per_second"].is_null() || e["records_per_second"].is_number());
    }

    #[test]
    fn alerts_max_keeps_the_newest() {
        let s = store_lugging(&[(10, 15), (25, 30)]);
        let all = get(&s, "/api/alerts", "").1;
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        let (status, one) = get(&s, "/api/alerts", "max=1");
        assert_eq!(status, 200);
        assert_eq!(one.as_array().unwrap(), &all[..1]);
        assert_eq!(one[0]["start_ms"], 1_006_250, "the newest episode");
        assert_eq!(get(&s, "/api/alerts", "max=0").0, 400);
        assert_eq!(get(&s, "/api/alerts", "max=lots").0, 400);
    }

    #[test]
    fn a_series_answers_the_bytes_a_json_tree_of_its_points_did() {
        let store = Arc::new(Store::new(
            &PitwallConfig::default().http,
            &WindowConfig::default(),
        ));
        let mut hook = StoreHook::new(store.clone(), crate::ingest::EpochClock::default());
        let driver = DriverId::new("LEC").unwrap();
        let mut a = DriverAnalysis::new(driver, &DetectorConfig::default());
        // Decimals that an f32 widened to f64 prints long (287.29998779296875).
        let speeds = [287.3f32, 123.45, 0.07];
        for (i, speed) in speeds.iter().enumerate() {
            let s = Telemetry {
                driver,
                ts_ms: 1_000_000 + i as i64 * 250,
                speed: *speed,
                rpm: 10_000.5,
                throttle: 99.0,
                brake_temp: None,
                position: None,
                lap: Some(1),
                gear: 7,
                drs: 12,
                brake: false,
            };
            let d = a.observe(&s, |o| hook.output(&o, 0));
            hook.sample(&s, &d);
        }
        hook.flush();
        let r = handle(
            &store,
            "GET",
            "/api/series",
            Some("driver=LEC&metric=speed"),
            b"",
        );
        let tree: Vec<Value> = speeds
            .iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"time": 1_000_000 + i as i64 * 250, "value": v}))
            .collect();
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            serde_json::to_string(&tree).unwrap()
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
