//! The query API on the real race, through a socket. The dashboard test sends exactly the
//! requests Grafana and its Infinity datasource build from the dashboard JSON and reads the
//! answers as they read them (`dashboard_client`, each rule with its source file): the driver
//! variable, every panel, the alert annotations. Also /metrics through a Prometheus parser (the
//! dashboard's PromQL is evaluated by a real Prometheus in tests/prometheus.rs), the SimpleJSON
//! endpoints kept for the seeds' clients, and bad requests.

mod common;
mod dashboard_client;

use common::{pitwall_run, race, root, serve, wait_until, Capture, RunCommand, Served};
use dashboard_client as grafana;
use serde_json::Value;

/// The engine serving on a free port, with the summary it wrote of its input; stopped
/// (SIGKILL) when dropped.
struct Engine {
    base: String,
    /// The run's own `--summary` of the same input: the counts the API must show.
    summary: Value,
    _served: Served,
    _dir: tempfile::TempDir,
}

impl Engine {
    /// `run` (quiet, kept serving after its input) on a free port, once it answers and has
    /// written its summary (its input is all in).
    fn spawn(run: RunCommand) -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        let served = serve(
            run.quiet()
                .summary(&path)
                .keep_serving()
                .stdout(Capture::Null)
                .stderr(Capture::Null),
        );
        let summary = wait_until("the run's summary of its input", || {
            serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()
        });
        let engine = Engine {
            base: served.base.clone(),
            summary,
            _served: served,
            _dir: dir,
        };
        let records = engine.summary["records"].as_u64().unwrap();
        engine.wait_for_records(|n| n == records);
        engine
    }

    /// The engine on the real race, once the whole race is in.
    fn start() -> Engine {
        Engine::spawn(pitwall_run().input(race()))
    }

    /// The health answer's record count, once `done` holds for it.
    fn wait_for_records(&self, mut done: impl FnMut(u64) -> bool) -> u64 {
        wait_until("the health answer's record count", || {
            let r = ureq::get(&format!("{}/", self.base))
                .set("accept", "application/json")
                .call()
                .ok()?;
            let v: Value = serde_json::from_str(&r.into_string().ok()?).ok()?;
            v["records"].as_u64().filter(|n| done(*n))
        })
    }

    /// Alert episodes of the summary that the query API serves: the detectors' (the race
    /// views' retirement and car-health alerts are served as the standings' rows instead).
    fn detector_alerts(&self) -> u64 {
        self.summary["alerts_by_type"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(t, _)| !["retirement", "car_health"].contains(&t.as_str()))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum()
    }

    /// Waits until the race views have stopped changing: their last updates (the final laps,
    /// closed when the input ends) may reach the store just after the last record.
    fn settled(self) -> Engine {
        let mut last = Value::Null;
        let mut same = 0;
        wait_until("the race views to settle", || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let health = self.get("/").1;
            let now = serde_json::json!([health["race"], health["records"]]);
            same = if now == last { same + 1 } else { 0 };
            last = now;
            (same >= 5).then_some(())
        });
        self
    }

    /// GET with `Accept: application/json` (what `/` needs for its JSON health answer).
    fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        Self::answer(
            &url,
            ureq::get(&url).set("accept", "application/json").call(),
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

fn dashboard() -> Value {
    let path = root().join("grafana/dashboards/f1_consolidated.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The Infinity datasource of grafana/provisioning, with its URL replaced by the engine's
/// address (the one line a user changes to point Grafana elsewhere).
fn infinity_settings(e: &Engine) -> grafana::InfinitySettings {
    let path = root().join("grafana/provisioning/datasources/pitwall.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let block: Vec<&str> = text
        .split("\n  - ")
        .find(|b| b.contains(&format!("type: {}", grafana::INFINITY)))
        .expect("the Infinity datasource is provisioned")
        .lines()
        .collect();
    assert!(
        block.iter().any(|l| l.trim() == "uid: pitwall-infinity"),
        "the dashboard's uid"
    );
    assert!(
        block.iter().any(|l| l.trim().starts_with("url: http")),
        "the datasource URL is set once, in provisioning"
    );
    let allowed_hosts: Vec<String> = block
        .iter()
        .skip_while(|l| l.trim() != "allowedHosts:")
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(str::to_string)
        .collect();
    grafana::InfinitySettings {
        url: e.base.clone(),
        allowed_hosts,
    }
}

/// The panels with targets (a collapsed row keeps its panels inside it).
fn panels(dashboard: &Value) -> Vec<&Value> {
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
        .filter(|p| p["type"] != "row")
        .collect()
}

/// Runs one Infinity query as Grafana and Infinity do (`getUpdatedDataRequest`,
/// `src/app/queryUtils.ts`: migrate, then interpolate; then the backend's request and parser)
/// and returns the URL it requested, the HTTP status and the frame.
fn run_infinity(
    e: &Engine,
    settings: &grafana::InfinitySettings,
    vars: &grafana::Variables,
    what: &str,
    query: &Value,
) -> (String, u16, Option<grafana::Frame>) {
    assert_eq!(query["type"], "json", "{what}");
    assert_eq!(query["source"], "url", "{what}");
    let parser = grafana::parser_after_migration(query);
    assert_eq!(
        parser, "backend",
        "{what}: the backend parser (src/migrate.ts)"
    );
    let mut q = query.clone();
    q["url"] = Value::String(vars.replace(q["url"].as_str().unwrap_or_default()));
    for p in q["url_options"]["params"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let v = vars.replace(p["value"].as_str().unwrap_or_default());
        p["value"] = Value::String(v);
    }
    let url = grafana::request_url(settings, &q);
    assert!(
        grafana::allowed(settings, &url),
        "{what}: {url} is not in allowedHosts {:?} (pkg/infinity/client.go CanAllowURL)",
        settings.allowed_hosts
    );
    let path = url
        .strip_prefix(&e.base)
        .unwrap_or_else(|| panic!("{what}: {url} does not go to the datasource URL {}", e.base));
    assert!(
        path.starts_with('/') && !path.contains("://"),
        "{what}: {url}: an absolute URL in the query is glued to the datasource URL \
         (pkg/infinity/request.go GetQueryURL): use a path"
    );
    // The headers of pkg/infinity/headers.go for a JSON query (ApplyAcceptHeader,
    // ApplyAcceptEncodingHeader).
    let (status, body) = Engine::answer(
        &url,
        ureq::get(&format!("{}{path}", e.base))
            .set("accept", "application/json;q=0.9,text/plain")
            .set("accept-encoding", "gzip")
            .call(),
    );
    // pkg/infinity/client.go: a status of 400 or more is the query's error.
    if status >= 400 {
        return (url, status, None);
    }
    (url, status, Some(grafana::backend_frame(&q, &body)))
}

/// Checks a panel's frame: some rows, every column with some values of its type, time columns
/// with no gaps.
fn check_frame(what: &str, url: &str, frame: &grafana::Frame) {
    assert!(frame.len() > 0, "{what}: {url}: no rows");
    for f in &frame.fields {
        assert_ne!(
            f.kind, "json",
            "{what}: {url}: {} is an object or array",
            f.name
        );
        assert!(
            f.values.iter().any(|v| *v != grafana::Cell::Null),
            "{what}: {url}: column {} has no {} values",
            f.name,
            f.kind
        );
        if f.kind == "time" {
            assert!(
                f.values.iter().all(|v| matches!(v, grafana::Cell::Time(_))),
                "{what}: {url}: column {} has rows without a time",
                f.name
            );
        }
    }
}

/// The driver variable as Grafana loads it: its options, and the value it takes.
fn load_driver_variable(
    e: &Engine,
    settings: &grafana::InfinitySettings,
    dashboard: &Value,
    range: (i64, i64),
) -> (Vec<(String, String)>, String) {
    let variable = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "driver")
        .expect("a driver variable");
    assert_eq!(variable["type"], "query");
    assert_eq!(variable["datasource"]["type"], grafana::INFINITY);
    // createQueryVariableRunner.ts: Infinity has custom variable support, so the saved
    // `query` is the target as it is; index.ts migrates it.
    let query = grafana::migrate_variable_query(&variable["query"])
        .unwrap_or_else(|why| panic!("driver variable: {why}"));
    let vars = grafana::Variables {
        driver: None,
        from_ms: range.0,
        to_ms: range.1,
    };
    let (url, status, frame) = run_infinity(e, settings, &vars, "driver variable", &query);
    assert_eq!(status, 200, "driver variable: {url}");
    let options = grafana::variable_options(&frame.unwrap())
        .unwrap_or_else(|why| panic!("driver variable: {why}"));
    assert!(
        !options.is_empty(),
        "driver variable: no options from {url}"
    );
    let default = grafana::variable_default(variable, &options).unwrap();
    (options, default)
}

/// Every Infinity target of every panel, with `$driver` the variable's value; returns how many
/// targets were checked. A panel filtered by driver may rightly be empty for the default driver
/// (no gear anomalies): then the same query for the whole field must have rows.
fn check_infinity_panels(
    e: &Engine,
    settings: &grafana::InfinitySettings,
    dashboard: &Value,
    vars: &grafana::Variables,
    must_have_rows: impl Fn(&str) -> bool,
) -> usize {
    let mut checked = 0;
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
            let kind = target["datasource"]["type"].as_str().unwrap();
            if kind == "prometheus" {
                continue;
            }
            assert_eq!(kind, grafana::INFINITY, "{title}: datasource {kind}");
            let (url, status, frame) = run_infinity(e, settings, vars, title, target);
            assert_eq!(status, 200, "{title}: {url}");
            let frame = frame.unwrap();
            checked += 1;
            if frame.len() == 0 && !must_have_rows(title) {
                continue;
            }
            if frame.len() == 0 && url.contains("driver=") {
                let field = grafana::Variables {
                    driver: Some(String::new()),
                    ..*vars
                };
                let mut all = target.clone();
                if let Some(ps) = all["url_options"]["params"].as_array_mut() {
                    ps.retain(|p| p["key"] != "driver");
                }
                let (url, status, frame) = run_infinity(e, settings, &field, title, &all);
                assert_eq!(status, 200, "{title}: {url}");
                check_frame(title, &url, &frame.unwrap());
            } else {
                check_frame(title, &url, &frame);
            }
        }
    }
    checked
}

#[test]
fn the_dashboard_as_grafana_and_infinity_run_it_on_the_real_race() {
    let dashboard = dashboard();
    let e = Engine::start().settled();
    let settings = infinity_settings(&e);
    assert!(
        settings.allowed_hosts.is_empty(),
        "allowedHosts pins the old address: changing the datasource URL would then be refused"
    );

    // The driver variable: every driver of the race, and it defaults to the first served.
    let (options, default) = load_driver_variable(&e, &settings, &dashboard, (FROM, TO));
    assert_eq!(options.len(), 20, "{options:?}");
    assert!(options.iter().any(|(_, v)| v == "VER"));
    assert_eq!(
        default, options[0].1,
        "the default is the first driver served"
    );

    // Every Infinity panel, for the default driver and for VER.
    for driver in [default.as_str(), "VER"] {
        let vars = grafana::Variables {
            driver: Some(driver.to_string()),
            from_ms: FROM,
            to_ms: TO,
        };
        let checked = check_infinity_panels(&e, &settings, &dashboard, &vars, |_| true);
        assert!(checked >= 12, "{checked} Infinity targets");
    }

    // The race row has panels on the race endpoints.
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
            urls.contains(&endpoint),
            "the Race row has no panel on {endpoint}: {urls:?}"
        );
    }

    // The alert annotations: Grafana runs the annotation's target through the datasource
    // (standardAnnotationSupport.ts prepareQuery: `anno.target`) and maps the frame.
    let list = dashboard["annotations"]["list"].as_array().unwrap();
    assert!(!list.is_empty(), "alert annotations");
    for a in list {
        let name = a["name"].as_str().unwrap_or_default();
        assert_eq!(
            a["datasource"]["type"],
            grafana::INFINITY,
            "annotation {name}: through Infinity"
        );
        assert!(
            !a["query"].is_string(),
            "annotation {name}: a string `query` is turned into a legacy target"
        );
        let vars = grafana::Variables {
            driver: Some("VER".into()),
            from_ms: FROM,
            to_ms: TO,
        };
        let (url, status, frame) = run_infinity(&e, &settings, &vars, name, &a["target"]);
        assert_eq!(status, 200, "annotation {name}: {url}");
        let events = grafana::annotations(&frame.unwrap());
        assert!(
            !events.is_empty(),
            "annotation {name}: {url}: no events (a time and a text field are needed)"
        );
        for ev in &events {
            assert!((FROM..=TO).contains(&ev.time), "{ev:?}");
            let end = ev.time_end.unwrap_or_else(|| panic!("a range: {ev:?}"));
            assert!(end >= ev.time, "{ev:?}");
            assert!(!ev.text.is_empty() && ev.title.is_some(), "{ev:?}");
            assert!(ev.tags.contains(&"VER".to_string()), "{ev:?}");
            assert!(
                ev.tags
                    .iter()
                    .any(|t| ["high", "medium", "low"].contains(&t.as_str())),
                "{ev:?}"
            );
        }
    }
    assert_eq!(dashboard["refresh"], "5s");

    // The Prometheus panels read metrics /metrics has (tests/prometheus.rs evaluates them).
    let names = metric_names(&e);
    for panel in panels(&dashboard) {
        for t in panel["targets"].as_array().unwrap() {
            let Some(expr) = t["expr"].as_str() else {
                continue;
            };
            assert_eq!(t["datasource"]["uid"], "pitwall-prometheus");
            for metric in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("pitwall_"))
            {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| metric.strip_suffix(s))
                    .unwrap_or(metric);
                assert!(
                    names.iter().any(|n| n == metric || n == base),
                    "{}: {metric} is not in /metrics",
                    panel["title"]
                );
            }
        }
    }
}

#[test]
fn the_dashboard_variable_defaults_to_a_driver_of_the_simulator_run() {
    // The default run: the simulator, whose cars are SIM01...; a hard-coded VER was a 404.
    let dashboard = dashboard();
    let e = Engine::spawn(pitwall_run().args(["--laps", "2", "--cars", "4"]));
    let settings = infinity_settings(&e);
    // The simulator's race starts 2026-05-24 13:00 UTC (config/pitwall.toml).
    let range = (1_779_627_600_000, 1_779_627_600_000 + 6 * 3_600_000);
    let (options, default) = load_driver_variable(&e, &settings, &dashboard, range);
    assert_eq!(options.len(), 4, "{options:?}");
    assert!(default.starts_with("SIM"), "{default}");
    let vars = grafana::Variables {
        driver: Some(default),
        from_ms: range.0,
        to_ms: range.1,
    };
    // Every panel answers; the driver's own series have points.
    let series: Vec<String> = panels(&dashboard)
        .into_iter()
        .filter(|p| {
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["url"] == "/api/series")
        })
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect();
    assert!(series.len() >= 6, "{series:?}");
    check_infinity_panels(&e, &settings, &dashboard, &vars, |title| {
        series.iter().any(|s| s == title)
    });
}

fn metric_names(e: &Engine) -> Vec<String> {
    let text = e.metrics_text();
    let lines: Vec<std::io::Result<String>> = text.lines().map(|l| Ok(l.to_string())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter())
        .expect("/metrics is valid Prometheus text");
    scrape.samples.iter().map(|s| s.metric.clone()).collect()
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
    assert_eq!(
        value("pitwall_records_total"),
        e.summary["records"].as_f64().unwrap()
    );
    assert_eq!(
        value("pitwall_alerts_total"),
        e.detector_alerts() as f64,
        "alert episodes of the real race, as the run's summary counts them"
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
    assert_eq!(
        all.as_array().unwrap().len() as u64,
        e.summary["per_driver"]["VER"]["records"].as_u64().unwrap(),
        "every sample of VER"
    );
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
    // The SimpleJSON protocol, kept for the seeds' clients.
    let (_, search) = post("/search", "{}");
    assert!(search
        .as_array()
        .unwrap()
        .contains(&Value::String("wheel_spin:HAM".into())));
    let (status, answer) = post(
        "/query",
        r#"{"range": {"from": "2023-05-28T13:00:00.000Z", "to": "2023-05-28T14:55:00.000Z"},
            "targets": [{"target": "speed:VER", "type": "timeserie"}, {"target": "alerts", "type": "table"}],
            "maxDataPoints": 500}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let points = answer[0]["datapoints"].as_array().unwrap();
    assert!(!points.is_empty() && points.len() <= 500);
    assert!(points.iter().all(|p| p[0].is_number() && p[1].is_i64()));
    let table = &answer[1];
    let alerts = e.detector_alerts();
    assert_eq!(table["rows"].as_array().unwrap().len() as u64, alerts);
    assert_eq!(
        table["columns"].as_array().unwrap().len(),
        table["rows"][0].as_array().unwrap().len()
    );
    let (status, items) = post(
        "/annotations",
        r#"{"range": {"from": "2023-05-28T13:00:00Z", "to": "2023-05-28T15:00:00Z"}, "annotation": {"name": "Alerts"}}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(items.as_array().unwrap().len() as u64, alerts);
    // simPod's JSON datasource lists targets with POST /metrics; GET /metrics stays
    // Prometheus's text.
    let (status, listed) = post("/metrics", r#"{"metric": "", "payload": {}}"#);
    assert_eq!((status, &listed), (200, &search));
    assert!(e.metrics_text().contains("# TYPE pitwall_records counter"));
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
        (400, post("/metrics", "{not json")),
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
    // /metrics takes GET (Prometheus) and POST (SimpleJSON), and says so.
    match ureq::put(&format!("{}/metrics", e.base)).call() {
        Err(ureq::Error::Status(405, r)) => {
            assert_eq!(r.header("allow"), Some("GET, POST"))
        }
        other => panic!("PUT /metrics: {other:?}"),
    }
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

    // Every stop of the race, as the run's summary counts them; VER made one.
    let (status, stops) = e.get("/api/pit_stops");
    assert_eq!(status, 200);
    let stops = rows(&stops);
    assert_eq!(stops.len() as u64, e.summary["pit_stops"].as_u64().unwrap());
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
