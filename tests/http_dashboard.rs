//! The query API on the real race, through a socket: every panel target of the Grafana
//! dashboard gets the request Grafana would send and a non-empty, correctly typed answer, so
//! the dashboard cannot drift from the API. Also /metrics through a Prometheus parser, and
//! bad requests.

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The engine on the real race, serving on a free port; stopped (SIGKILL) when dropped.
struct Engine {
    base: String,
    child: Child,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Engine {
    fn start() -> Engine {
        let race = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/monaco-2023/monaco_2023_race.csv.gz");
        assert!(race.exists(), "{} is missing", race.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_pitwall"))
            .args([
                "run",
                "-q",
                "--input",
                race.to_str().unwrap(),
                "--http",
                &format!("127.0.0.1:{port}"),
                "--keep-serving",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let engine = Engine {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "the engine did not finish the race in time"
            );
            if let Ok(r) = ureq::get(&format!("{}/", engine.base)).call() {
                let v: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
                if v["records"] == 513_360 {
                    return engine;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the race views have stopped changing: their last updates (the final laps,
    /// closed when the input ends) may reach the store just after the last record.
    fn settled(self) -> Engine {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = Value::Null;
        let mut same = 0;
        while same < 5 {
            assert!(
                Instant::now() < deadline,
                "the race views did not settle: {last}"
            );
            std::thread::sleep(Duration::from_millis(200));
            let race = self.get("/").1["race"].clone();
            same = if race == last { same + 1 } else { 0 };
            last = race;
        }
        self
    }

    fn get(&self, path: &str) -> (u16, Value) {
        Self::answer(
            &format!("{}{path}", self.base),
            ureq::get(&format!("{}{path}", self.base)).call(),
        )
    }

    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        Self::answer(
            &url,
            ureq::post(&url)
                .set("content-type", "application/json")
                .send_string(body),
        )
    }

    /// Status and JSON body, whether the status is a success or not.
    fn answer(url: &str, result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
        let (status, response) = match result {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(e) => panic!("{url}: {e}"),
        };
        (
            status,
            serde_json::from_str(&response.into_string().unwrap()).unwrap(),
        )
    }

    fn metrics_text(&self) -> String {
        ureq::get(&format!("{}/metrics", self.base))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }
}

// The race: 2023-05-28 13:01:02 to 14:54:14 UTC.
const FROM: i64 = 1_685_278_800_000;
const TO: i64 = 1_685_285_700_000;

fn substitute(v: &str) -> String {
    v.replace("$driver", "VER")
        .replace("${__from}", &FROM.to_string())
        .replace("${__to}", &TO.to_string())
}

fn metric_names(e: &Engine) -> Vec<String> {
    let text = e.metrics_text();
    let lines: Vec<std::io::Result<String>> = text.lines().map(|l| Ok(l.to_string())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter())
        .expect("/metrics is valid Prometheus text");
    scrape.samples.iter().map(|s| s.metric.clone()).collect()
}

/// What Grafana's Infinity plugin requests for a target: its URL with its parameters (all of
/// them, or all but the driver filter).
fn infinity_request(target: &Value, with_driver: bool) -> String {
    let url = target["url"].as_str().unwrap();
    let path = url
        .strip_prefix("http://localhost:5001")
        .expect("targets point at the default address");
    let params: Vec<String> = target["url_options"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| with_driver || p["key"] != "driver")
        .map(|p| {
            format!(
                "{}={}",
                p["key"].as_str().unwrap(),
                substitute(p["value"].as_str().unwrap())
            )
        })
        .collect();
    if params.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", params.join("&"))
    }
}

fn check_infinity(e: &Engine, panel: &str, target: &Value) {
    let mut request = infinity_request(target, true);
    let (status, mut body) = e.get(&request);
    assert_eq!(status, 200, "{panel}: {request}: {body}");
    let filtered = target["url_options"]["params"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["key"] == "driver"));
    if filtered && body.as_array().is_some_and(|rows| rows.is_empty()) {
        // A panel on the selected driver may rightly be empty for VER (he had no gear
        // anomalies): then the field must have some, in the panel's columns.
        request = infinity_request(target, false);
        let (status, all) = e.get(&request);
        assert_eq!(status, 200, "{panel}: {request}: {all}");
        body = all;
    }
    let rows = body
        .as_array()
        .unwrap_or_else(|| panic!("{panel}: {request}: not an array"));
    assert!(!rows.is_empty(), "{panel}: {request}: empty");
    for column in target["columns"].as_array().unwrap() {
        let selector = column["selector"].as_str().unwrap();
        let kind = column["type"].as_str().unwrap();
        for row in rows {
            let v = selector.split('.').fold(row, |v, key| &v[key]);
            let ok = match kind {
                "number" | "timestamp_epoch" => v.is_number() || (selector == "lap" && v.is_null()),
                "string" | "timestamp" => v.is_string(),
                other => panic!("{panel}: column type {other} is not checked"),
            };
            assert!(ok, "{panel}: {request}: {selector} should be {kind}: {row}");
        }
    }
}

fn check_prometheus(panel: &str, target: &Value, names: &[String]) {
    let expr = target["expr"].as_str().unwrap();
    let metric: String = expr
        .chars()
        .skip_while(|c| !c.is_ascii_lowercase())
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert!(metric.starts_with("pitwall_"), "{panel}: {expr}");
    assert!(
        names.contains(&metric),
        "{panel}: {metric} is not in /metrics"
    );
}

fn check_simple_json(e: &Engine, panel: &str, target: &Value) {
    let body = serde_json::json!({
        "range": {"from": "2023-05-28T13:00:00.000Z", "to": "2023-05-28T14:55:00.000Z"},
        "targets": [{"target": substitute(target["target"].as_str().unwrap()), "type": target["type"]}],
        "maxDataPoints": 500,
        "intervalMs": 1000,
    });
    let (status, answer) = e.post("/query", &body.to_string());
    assert_eq!(status, 200, "{panel}: {answer}");
    let first = &answer[0];
    if target["type"] == "table" {
        assert!(
            !first["rows"].as_array().unwrap().is_empty(),
            "{panel}: no rows"
        );
        assert_eq!(
            first["columns"].as_array().unwrap().len(),
            first["rows"][0].as_array().unwrap().len()
        );
    } else {
        let points = first["datapoints"].as_array().unwrap();
        assert!(
            !points.is_empty() && points.len() <= 500,
            "{panel}: {} points",
            points.len()
        );
        assert!(
            points.iter().all(|p| p[0].is_number() && p[1].is_i64()),
            "{panel}"
        );
    }
}

#[test]
fn every_panel_target_of_the_dashboard_gets_a_typed_answer() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards/f1_consolidated.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let e = Engine::start();
    let names = metric_names(&e);
    let mut checked = 0;
    // A row holds no targets; a collapsed row keeps its panels inside it.
    let panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
        .filter(|p| p["type"] != "row")
        .collect();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
            match target["datasource"]["uid"].as_str().unwrap() {
                "pitwall-infinity" => check_infinity(&e, title, target),
                "pitwall-prometheus" => check_prometheus(title, target, &names),
                "pitwall-json" => check_simple_json(&e, title, target),
                other => panic!("{title}: unknown datasource {other}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 18, "{checked} targets");
    // The race row and its panels on the race endpoints.
    let all = dashboard["panels"].as_array().unwrap();
    let row = all
        .iter()
        .position(|p| p["type"] == "row" && p["title"] == "Race")
        .expect("a Race row");
    let urls: Vec<&str> = all[row + 1..]
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter_map(|t| t["url"].as_str())
        .collect();
    for endpoint in ["/api/standings", "/api/pit_stops", "/api/predictions"] {
        assert!(
            urls.contains(&format!("http://localhost:5001{endpoint}").as_str()),
            "the Race row has no panel on {endpoint}: {urls:?}"
        );
    }
    // The driver variable and the alert annotations.
    let variable = &dashboard["templating"]["list"][0];
    assert_eq!(variable["name"], "driver");
    check_infinity(&e, "driver variable", &variable["query"]);
    for a in dashboard["annotations"]["list"].as_array().unwrap() {
        assert_eq!(a["datasource"]["uid"], "pitwall-json");
        let (status, items) = e.post("/annotations", r#"{"range": {"from": "2023-05-28T13:00:00Z", "to": "2023-05-28T15:00:00Z"}, "annotation": {"name": "Alerts"}}"#);
        assert_eq!(status, 200);
        let items = items.as_array().unwrap();
        assert!(!items.is_empty());
        assert!(items
            .iter()
            .all(|i| i["time"].is_i64() && i["title"].is_string() && i["tags"].is_array()));
    }
    assert_eq!(dashboard["refresh"], "5s");
}

#[test]
fn metrics_are_valid_prometheus_text_with_the_engine_counters() {
    let e = Engine::start();
    let text = e.metrics_text();
    let lines: Vec<std::io::Result<String>> = text.lines().map(|l| Ok(l.to_string())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter()).unwrap();
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum::<f64>()
    };
    assert_eq!(value("pitwall_records_total"), 513_360.0);
    assert_eq!(
        value("pitwall_alerts_total"),
        945.0,
        "alert episodes of the real race"
    );
    assert!(value("pitwall_uptime_seconds") > 0.0);
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "pitwall_source_to_output_latency_seconds"
            || s.metric
                .starts_with("pitwall_source_to_output_latency_seconds")));
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "pitwall_http_queries_total"));
}

#[test]
fn endpoints_answer_in_their_shapes() {
    let e = Engine::start();
    let (get, post) = (|p: &str| e.get(p), |p: &str, b: &str| e.post(p, b));
    let (s, health) = get("/");
    assert_eq!(s, 200);
    assert_eq!(
        (health["status"].as_str(), health["drivers"].as_u64()),
        (Some("ok"), Some(20))
    );
    let (_, drivers) = get("/api/drivers");
    assert_eq!(drivers.as_array().unwrap().len(), 20);
    assert_eq!(get("/drivers").1, drivers);
    // maxDataPoints is honoured by min/max buckets: the top speed survives downsampling.
    let (_, all) = get(&format!(
        "/api/series?driver=VER&metric=speed&from={FROM}&to={TO}&maxDataPoints=100000"
    ));
    let (_, few) = get(&format!(
        "/api/series?driver=VER&metric=speed&from={FROM}&to={TO}&maxDataPoints=50"
    ));
    let top = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .fold(0.0, f64::max)
    };
    assert_eq!(all.as_array().unwrap().len(), 25_668);
    assert!(few.as_array().unwrap().len() <= 50);
    assert_eq!(top(&all), top(&few));
    let times: Vec<i64> = few
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    let (_, high) = get("/api/alerts?severity=high");
    assert!(high
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["severity"] == "high"));
    let (_, ver) = get("/alerts?driver=VER");
    assert!(!ver.as_array().unwrap().is_empty());
    assert!(ver
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["driver_id"] == "VER"));
    let (_, windows) = get("/api/windows?driver=HAM&max=10");
    assert_eq!(windows.as_array().unwrap().len(), 10);
    assert_eq!(windows[0]["size"], 1000);
    let (_, search) = post("/search", "{}");
    assert!(search
        .as_array()
        .unwrap()
        .contains(&Value::String("wheel_spin:HAM".into())));
}

#[test]
fn bad_requests_get_a_4xx_with_a_json_error_and_the_engine_keeps_serving() {
    let e = Engine::start();
    let (get, post) = (|p: &str| e.get(p), |p: &str, b: &str| e.post(p, b));
    let cases: Vec<(u16, (u16, Value))> = vec![
        (404, get("/api/series?driver=ZZZ&metric=speed")),
        (400, get("/api/series?driver=bad%20id&metric=speed")),
        (404, get("/api/series?driver=VER&metric=altitude")),
        (
            400,
            get("/api/series?driver=VER&metric=speed&from=20&to=10"),
        ),
        (
            400,
            get("/api/series?driver=VER&metric=speed&maxDataPoints=0"),
        ),
        (
            400,
            get("/api/series?driver=VER&metric=speed&maxDataPoints=-5"),
        ),
        (
            400,
            get("/api/series?driver=VER&metric=speed&maxDataPoints=99999999999"),
        ),
        (
            400,
            get("/api/series?driver=VER&metric=speed&from=yesterday"),
        ),
        (400, get("/api/series?metric=speed")),
        (400, get("/api/alerts?severity=catastrophic")),
        (400, get("/api/predictions?model_type=lap_time")),
        (400, get("/api/predictions?driver=VER&latest=maybe")),
        (400, get("/api/laps?driver=bad%20id")),
        (400, get("/api/pit_stops?driver=bad%20id")),
        (405, post("/api/standings", "{}")),
        (400, post("/query", "{not json")),
        (400, post("/query", r#"{"targets": [{"target": "speed"}]}"#)),
        (
            404,
            post("/query", r#"{"targets": [{"target": "speed:ZZZ"}]}"#),
        ),
        (
            400,
            post(
                "/query",
                r#"{"range": {"from": "2023-05-28T15:00:00Z", "to": "2023-05-28T13:00:00Z"}, "targets": []}"#,
            ),
        ),
        (400, post("/annotations", "[]")),
        (405, post("/api/series", "{}")),
        (405, get("/query")),
        (404, get("/no/such/endpoint")),
    ];
    for (i, (expected, (status, body))) in cases.into_iter().enumerate() {
        assert_eq!(status, expected, "case {i}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "case {i}: {body}"
        );
    }
    // A body over the limit. The request goes by hand: the server answers 413 once it has read
    // past the limit and closes, so the rest of the upload meets a broken pipe, which made this
    // check flaky with ureq (an error instead of the answer).
    let (status, body) = oversized_post(&e.base, "/query", 2 << 20);
    assert_eq!(status, 413, "{body}");
    // A huge range is fine (the store is bounded).
    assert_eq!(
        get("/api/series?driver=VER&metric=rpm&from=0&to=9223372036854775807&maxDataPoints=10").0,
        200
    );
    assert_eq!(get("/").0, 200);
}

/// POSTs `len` bytes from another thread (whose write may fail once the server has answered
/// and closed) and reads the answer.
fn oversized_post(base: &str, path: &str, len: usize) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let upload = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0;
        while sent < len {
            let n = chunk.len().min(len - sent);
            if writer.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
    });
    let mut response = Vec::new();
    // The server may reset the connection after its answer: what was read is enough.
    let _ = stream.read_to_end(&mut response);
    let _ = upload.join();
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let json = text.split("\r\n\r\n").nth(1).unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

#[test]
fn race_endpoints_follow_the_real_race() {
    let e = Engine::start().settled();
    // The running order: 20 drivers, 1..20, the winner 0 ms from himself.
    let (status, standings) = e.get("/api/standings");
    assert_eq!(status, 200, "{standings}");
    let standings = rows(&standings);
    assert_eq!(standings.len(), 20);
    let positions: Vec<u64> = standings
        .iter()
        .map(|r| r["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=20).collect::<Vec<u64>>());
    let leader = &standings[0];
    assert_eq!(leader["driver_id"], "VER", "Verstappen won Monaco 2023");
    assert_eq!(leader["gap_to_leader_ms"], 0);
    assert_eq!(leader["laps_down"], 0);
    let mut drivers: Vec<&str> = standings
        .iter()
        .map(|r| r["driver_id"].as_str().unwrap())
        .collect();
    drivers.sort();
    drivers.dedup();
    assert_eq!(drivers.len(), 20, "one row per driver");
    for r in standings {
        for key in [
            "lap",
            "gap_to_leader_ms",
            "interval_ms",
            "tyre_age_laps",
            "stint",
            "pit_count",
            "last_lap_time_ms",
        ] {
            assert!(r[key].is_number(), "{key}: {r}");
        }
        assert!(
            ["green", "rain", "neutralised", "red"].contains(&r["field_state"].as_str().unwrap()),
            "{r}"
        );
    }
    let retired: Vec<(&str, u64)> = standings
        .iter()
        .filter(|r| r["retired"] == true)
        .map(|r| {
            (
                r["driver_id"].as_str().unwrap(),
                r["retired_on_lap"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        retired,
        [("MAG", 70), ("STR", 53)],
        "Magnussen and Stroll retired, at the back of the order"
    );
    let laps_of: Vec<u64> = standings
        .iter()
        .map(|r| r["lap"].as_u64().unwrap())
        .collect();
    assert!(
        laps_of.windows(2).all(|w| w[0] >= w[1]),
        "most laps first: {laps_of:?}"
    );

    // VER's laps, in order.
    let (status, laps) = e.get("/api/laps?driver=VER");
    assert_eq!(status, 200);
    let laps = rows(&laps);
    let numbers: Vec<u64> = laps.iter().map(|l| l["lap"].as_u64().unwrap()).collect();
    assert!((77..=78).contains(&numbers.len()), "{numbers:?}");
    assert_eq!(numbers[0], 1);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert!(laps.iter().all(|l| l["driver_id"] == "VER"));
    assert_eq!(
        numbers.last().copied(),
        leader["lap"].as_u64(),
        "the standings show VER's latest lap"
    );
    let (_, all_laps) = e.get("/api/laps");
    assert_eq!(
        rows(&all_laps).len() as u64,
        e.get("/").1["race"]["laps"].as_u64().unwrap()
    );
    assert_eq!(e.get("/api/laps?driver=ZZZ"), (200, Value::Array(vec![])));

    // 36 stops in the race; VER made one.
    let (status, stops) = e.get("/api/pit_stops");
    assert_eq!(status, 200);
    let stops = rows(&stops);
    assert_eq!(stops.len(), 36);
    assert!(stops
        .iter()
        .all(|p| p["pit_in_ms"].as_i64() < p["pit_out_ms"].as_i64()));
    let (_, ver_stops) = e.get("/api/pit_stops?driver=VER");
    assert_eq!(
        rows(&ver_stops).len() as u64,
        leader["pit_count"].as_u64().unwrap()
    );

    // One pit-stop prediction per VER lap, a probability each.
    let (status, preds) = e.get("/api/predictions?driver=VER&model_type=pit_stop_probability");
    assert_eq!(status, 200);
    let preds = rows(&preds);
    let pred_laps: Vec<u64> = preds.iter().map(|p| p["lap"].as_u64().unwrap()).collect();
    assert_eq!(pred_laps, numbers);
    for p in preds {
        assert_eq!(p["driver_id"], "VER");
        assert_eq!(p["model_type"], "pit_stop_probability");
        let prob = p["prediction"]["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&prob), "{p}");
        assert_eq!(p["probability"].as_f64(), Some(prob));
        assert!(p["ts_ms"].is_i64() && p["timestamp"].is_string(), "{p}");
    }
    // The latest of each model for each driver: 20 × 3, at each driver's latest lap.
    let (_, latest) = e.get("/api/predictions?latest=true");
    let latest = rows(&latest);
    assert_eq!(latest.len(), 60);
    for r in standings {
        let d = &r["driver_id"];
        let mine: Vec<&Value> = latest.iter().filter(|p| &p["driver_id"] == d).collect();
        assert_eq!(mine.len(), 3, "{d}");
        assert!(mine.iter().all(|p| p["lap"] == r["lap"]), "{d}");
    }

    // A model that does not exist.
    let (status, error) = e.get("/api/predictions?driver=VER&model_type=lap_time");
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|m| m.contains("pit_stop_probability")),
        "{error}"
    );
}
