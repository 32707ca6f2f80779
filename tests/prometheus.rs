//! A real Prometheus (Debian's `prometheus`, 2.42, which .ci/run installs) with the shipped
//! scrape config (prometheus/prometheus.yml, every second), scraping `pitwall run` during a
//! paced replay of the real race: every PromQL expression of the Grafana dashboard, evaluated
//! through Prometheus's HTTP API as Grafana would send it, returns data; the counters never go
//! back, and Prometheus and another scraper read the same totals.

mod common;

use common::{
    free_port, pitwall_run, race, race_rows, root, serve_at, wait_until, wait_until_answers,
    wait_until_ok, Capture, RunningChild,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `PITWALL_PROMETHEUS`, or Debian's /usr/bin/prometheus, or `prometheus` on the PATH.
fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PITWALL_PROMETHEUS") {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/bin/prometheus");
    if debian.exists() {
        return Some(debian);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("prometheus"))
        .find(|p| p.exists())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn get_json(url: &str, params: &[(&str, &str)]) -> Value {
    let mut request = ureq::get(url);
    for (k, v) in params {
        request = request.query(k, v);
    }
    let body = match request.call() {
        Ok(r) => r.into_string().unwrap(),
        Err(ureq::Error::Status(code, r)) => {
            panic!("{url} {params:?}: {code}: {}", r.into_string().unwrap())
        }
        Err(e) => panic!("{url}: {e}"),
    };
    serde_json::from_str(&body).unwrap()
}

/// Prometheus on a free loopback port with the shipped config pointed at `target`.
struct Prometheus {
    base: String,
    _process: RunningChild,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(binary: PathBuf, target: &str) -> Prometheus {
        let shipped = root().join("prometheus/prometheus.yml");
        let config = std::fs::read_to_string(&shipped).unwrap();
        assert!(
            config.contains("\"localhost:5001\"") && config.contains("scrape_interval: 1s"),
            "{}: scrapes pitwall's default address every second",
            shipped.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(
            &config_path,
            config.replace("\"localhost:5001\"", &format!("\"{target}\"")),
        )
        .unwrap();
        let port = free_port();
        let log_path = dir.path().join("prometheus.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = RunningChild::new(
            Command::new(&binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", binary.display())),
        );
        let base = format!("http://127.0.0.1:{port}");
        wait_until_answers(&format!("{base}/-/ready"), &mut child, || {
            format!("Prometheus's log:\n{}", read_log(&log_path))
        });
        Prometheus {
            base,
            _process: child,
            dir,
        }
    }

    fn log(&self) -> String {
        read_log(&self.dir.path().join("prometheus.log"))
    }

    /// `/api/v1/query` at the current time: the result vector.
    fn instant(&self, expr: &str) -> Vec<Value> {
        let v = get_json(&format!("{}/api/v1/query", self.base), &[("query", expr)]);
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// `/api/v1/query_range`, as Grafana's Prometheus datasource asks for a graph.
    fn range(&self, expr: &str, start: f64, end: f64, step: u32) -> Vec<Value> {
        let v = get_json(
            &format!("{}/api/v1/query_range", self.base),
            &[
                ("query", expr),
                ("start", &format!("{start:.3}")),
                ("end", &format!("{end:.3}")),
                ("step", &step.to_string()),
            ],
        );
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

fn read_log(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn sample_value(v: &Value) -> f64 {
    v[1].as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The records total in one scrape of pitwall's /metrics.
fn scraped_records(base: &str) -> Option<u64> {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("pitwall_records_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

fn health_records(base: &str) -> Option<u64> {
    let r = ureq::get(&format!("{base}/"))
        .set("accept", "application/json")
        .call()
        .ok()?;
    let v: Value = serde_json::from_str(&r.into_string().ok()?).ok()?;
    v["records"].as_u64()
}

/// The dashboard's Prometheus expressions, by panel title.
fn dashboard_expressions() -> Vec<(String, String)> {
    let path = root().join("grafana/dashboards/f1_consolidated.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    let panels = dashboard["panels"].as_array().unwrap();
    for p in panels
        .iter()
        .flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
    {
        for t in p["targets"].as_array().into_iter().flatten() {
            if t["datasource"]["type"] == "prometheus" {
                let expr = t["expr"].as_str().expect("a Prometheus target has an expr");
                out.push((p["title"].as_str().unwrap().to_string(), expr.to_string()));
            }
        }
    }
    out
}

/// Grafana's `$__rate_interval` (grafana/grafana packages/grafana-prometheus/src/datasource.ts,
/// `getRateIntervalScopedVariable`): max(interval + scrape interval, 4 × scrape interval), the
/// scrape interval being the datasource's `timeInterval` (1s, provisioned) and the interval
/// the step, here the smallest it can be, that same second.
fn grafana_expr(expr: &str, step_s: u32, scrape_s: u32) -> String {
    let rate_interval = (step_s + scrape_s).max(4 * scrape_s);
    let out = expr
        .replace("$__rate_interval", &format!("{rate_interval}s"))
        .replace("$__interval", &format!("{step_s}s"));
    assert!(
        !out.contains('$'),
        "{expr}: a variable this test does not fill"
    );
    out
}

#[test]
fn prometheus_evaluates_every_dashboard_expression_during_a_paced_replay() {
    let Some(binary) = prometheus_binary() else {
        common::cannot_run(
            "prometheus_evaluates_every_dashboard_expression_during_a_paced_replay",
            "Prometheus (Debian's package: apt-get install prometheus; or PITWALL_PROMETHEUS \
             naming its binary)",
        );
        return;
    };
    let race = race();
    let race_records = race_rows();
    let provisioning =
        std::fs::read_to_string(root().join("grafana/provisioning/datasources/pitwall.yaml"))
            .unwrap();
    assert!(
        provisioning.contains("uid: pitwall-prometheus"),
        "the dashboard's Prometheus datasource is provisioned"
    );
    assert!(
        provisioning.contains("timeInterval: 1s"),
        "the Prometheus datasource's timeInterval is the scrape interval"
    );
    let expressions = dashboard_expressions();
    assert!(expressions.len() >= 4, "{expressions:?}");

    let pitwall = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let prometheus = Prometheus::start(binary, &pitwall.to_string());

    // The race at 500x: 1 h 53 min of telemetry in about 14 s.
    let start = unix_now();
    let engine = serve_at(
        pitwall_run()
            .quiet()
            .speed(500.0)
            .input(&race)
            .keep_serving()
            .stdout(Capture::Null)
            .stderr(Capture::Null),
        pitwall,
    );
    let base = engine.base.clone();

    // A second scraper beside Prometheus, ten times a second: its totals never go back.
    let done = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (base, done) = (base.clone(), done.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Some(n) = scraped_records(&base) {
                    seen.push(n);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        })
    };

    wait_until("the end of the replay", || {
        (health_records(&base) == Some(race_records)).then_some(())
    });
    let end = unix_now();
    // Until Prometheus has scraped the end of the race.
    wait_until_ok("Prometheus to scrape the whole race", || {
        let total = prometheus
            .instant("pitwall_records_total")
            .first()
            .map(|s| sample_value(&s["value"]));
        if total == Some(race_records as f64) {
            return Ok(());
        }
        Err(format!(
            "Last {total:?}; targets: {}\n{}",
            get_json(&format!("{}/api/v1/targets", prometheus.base), &[]),
            prometheus.log()
        ))
    });
    done.store(true, Ordering::Relaxed);
    let seen = scraper.join().unwrap();
    assert!(seen.len() > 20, "{} scrapes", seen.len());
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "pitwall_records_total went back between scrapes: {seen:?}"
    );
    // Both scrapers agree on the total, and Prometheus saw no counter reset.
    assert_eq!(scraped_records(&base), Some(race_records));
    let up = prometheus.instant("up{job=\"pitwall\"}");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(sample_value(&up[0]["value"]), 1.0);
    let window = format!("{}s", (unix_now() - start).ceil() as u64 + 5);
    for counter in ["pitwall_records_total", "pitwall_alerts_total"] {
        for series in prometheus.instant(&format!("resets({counter}[{window}])")) {
            assert_eq!(
                sample_value(&series["value"]),
                0.0,
                "{counter} was reset: {series}"
            );
        }
    }

    // Every expression of the dashboard, over the replay, one point a second.
    for (title, expr) in &expressions {
        let query = grafana_expr(expr, 1, 1);
        let result = prometheus.range(&query, start.floor(), end.ceil() + 2.0, 1);
        assert!(
            !result.is_empty(),
            "{title}: {query}: no data during the replay"
        );
        let values: Vec<f64> = result
            .iter()
            .flat_map(|s| s["values"].as_array().unwrap().iter().map(sample_value))
            .collect();
        assert!(
            values.iter().any(|v| v.is_finite()),
            "{title}: {query}: only NaN: {result:?}"
        );
        eprintln!(
            "{title}: {query}: {} series, {} points, max {:.3}",
            result.len(),
            values.len(),
            values
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::MIN, f64::max)
        );
        if expr.contains("rate(") {
            assert!(
                values.iter().any(|v| *v > 0.0),
                "{title}: {query}: never above zero while the race ran: {result:?}"
            );
        }
    }
    // The throughput panel sees the replay's pace: the race's records over its duration, at
    // the peak at least.
    let (_, throughput) = expressions
        .iter()
        .find(|(t, _)| t == "Throughput")
        .expect("a Throughput panel");
    assert_eq!(throughput, "rate(pitwall_records_total[$__rate_interval])");
    let peak = prometheus
        .range(
            &grafana_expr(throughput, 1, 1),
            start.floor(),
            end.ceil(),
            1,
        )
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().iter().map(sample_value))
        .fold(0.0, f64::max);
    let average = race_records as f64 / (end - start);
    eprintln!(
        "replay {:.1} s, {} direct scrapes, throughput peak {peak:.0}/s, average {average:.0}/s",
        end - start,
        seen.len()
    );
    assert!(
        peak >= average * 0.5,
        "peak rate {peak:.0}/s against an average of {average:.0}/s"
    );
}
