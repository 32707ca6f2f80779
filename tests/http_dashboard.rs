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

/// What Grafana's Infinity plugin requests for a target: its URL with its parameters.
fn infinity_request(target: &Value) -> String {
    let url = target["url"].as_str().unwrap();
    let path = url
        .strip_prefix("http://localhost:5001")
        .expect("targets point at the default address");
    let params: Vec<String> = target["url_options"]["params"]
        .as_array()
        .unwrap()
        .iter()
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
    let request = infinity_request(target);
    let (status, body) = e.get(&request);
    assert_eq!(status, 200, "{panel}: {request}: {body}");
    let rows = body
        .as_array()
        .unwrap_or_else(|| panic!("{panel}: {request}: not an array"));
    assert!(!rows.is_empty(), "{panel}: {request}: empty");
    for column in target["columns"].as_array().unwrap() {
        let selector = column["selector"].as_str().unwrap();
        let kind = column["type"].as_str().unwrap();
        for row in rows {
            let v = &row[selector];
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
    for panel in dashboard["panels"].as_array().unwrap() {
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
    assert!(checked >= 14, "{checked} targets");
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
        2886.0,
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
    // A body over the limit.
    let big = "x".repeat(2 << 20);
    let (status, body) = post("/query", &big);
    assert_eq!(status, 413, "{body}");
    // A huge range is fine (the store is bounded).
    assert_eq!(
        get("/api/series?driver=VER&metric=rpm&from=0&to=9223372036854775807&maxDataPoints=10").0,
        200
    );
    assert_eq!(get("/").0, 200);
}
