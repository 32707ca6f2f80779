//! The live page in a real browser: Debian's Chromium, headless, driven over WebDriver by
//! chromedriver (fantoccini), on a paced replay of the real race. The page must list the 20
//! drivers in its timing tower, draw its charts, show an alert, redraw for another driver,
//! fit a phone's width, and log no console error.
//!
//! Why fantoccini: it speaks W3C WebDriver to Debian's own chromedriver, built with the same
//! Chromium, so nothing downloads a browser and no npm is needed; `cargo test` runs it. With
//! its TLS features off it talks plain HTTP to chromedriver on loopback, a small dependency
//! tree beside a CDP client's generated protocol crate; chromedriver's browser log
//! (`goog:loggingPrefs`) gives the console errors.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them). `cargo test --release --test live_page --
//! --ignored` also writes `docs/live-page.png` and `docs/live-page-phone.png`, the README's
//! screenshots, later in the race.

mod common;

use common::{
    free_port, pitwall_run, race, root, serve, wait_until_answers, Capture, RunningChild, Served,
    PATIENCE,
};
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `pitwall run` on `input` at `speed` times real time, serving on a free port.
fn engine(input: &Path, speed: f64) -> Served {
    serve(
        pitwall_run()
            .quiet()
            .input(input)
            .speed(speed)
            .keep_serving()
            .stdout(Capture::Null)
            .stderr(Capture::Null),
    )
}

/// What this machine lacks to drive a real Chromium, if anything.
fn missing_browser() -> Option<String> {
    [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]
        .into_iter()
        .find(|(path, _)| !Path::new(path).exists())
        .map(|(path, package)| {
            format!(
                "{path}: the live-page test drives a real Chromium; install Debian's chromium \
                 and chromium-driver (apt-get install {package}; .ci/run does)"
            )
        })
}

/// chromedriver on a free port, answering `/status`.
fn chromedriver() -> (RunningChild, String) {
    let port = free_port();
    let mut child = RunningChild::new(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_until_answers(&format!("{url}/status"), &mut child, String::new);
    (child, url)
}

/// A headless Chromium session with a fresh profile, keeping the browser's console log.
async fn browser(driver: &str, profile: &Path, width: u32, height: u32) -> Client {
    let mut caps = Capabilities::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
                format!("--window-size={width},{height}"),
            ],
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a chromedriver session")
}

/// chromedriver's browser log (the console and failed loads), taken since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

async fn console_errors(c: &Client, log: &mut Vec<Value>) -> Vec<Value> {
    let entries = c.issue_cmd(BrowserLog).await.expect("the browser log");
    log.extend(entries.as_array().cloned().unwrap_or_default());
    log.iter()
        .filter(|e| e["level"] == "SEVERE")
        .cloned()
        .collect()
}

/// What the page shows, read in one script.
async fn look(c: &Client) -> Value {
    c.execute(
        r#"
        const canvas = (id) => {
          const el = document.getElementById(id);
          const ctx = el.getContext('2d');
          const px = ctx.getImageData(0, 0, el.width, el.height).data;
          let inked = 0;
          for (let i = 3; i < px.length; i += 4) if (px[i] > 0) inked++;
          return { points: Number(el.dataset.points || 0), driver: el.dataset.driver || null,
                   inked, image: el.toDataURL(),
                   sharp: el.width === Math.round(el.clientWidth * devicePixelRatio) };
        };
        const rows = Array.from(document.querySelectorAll('#tower tbody tr'));
        return {
          tower: rows.map((r) => r.dataset.driver),
          positions: rows.map((r) => r.cells[0].textContent),
          rejoin: rows.map((r) => r.querySelector('td.rejoin')?.textContent),
          selected: document.getElementById('driver').value,
          alerts: Array.from(document.querySelectorAll('#alerts li')).map((li) => li.textContent),
          predictions: Array.from(document.querySelectorAll('#predictions .pred .row'))
            .map((r) => r.textContent),
          charts: Object.fromEntries(['c-speed', 'c-rpm', 'c-throttle', 'c-gear', 'c-scatter']
            .map((id) => [id, canvas(id)])),
          rate: document.getElementById('e-rate').textContent,
          lap: document.getElementById('lap').textContent,
          conn: document.getElementById('conn').textContent,
          empty: Array.from(document.querySelectorAll('p.empty'))
            .filter((p) => p.offsetParent !== null).map((p) => p.textContent),
          scrollWidth: document.documentElement.scrollWidth,
          overflowing: Array.from(document.querySelectorAll('body *'))
            .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
            .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`),
          innerWidth: window.innerWidth,
        };
        "#,
        vec![],
    )
    .await
    .expect("the page's state")
}

/// Polls the page until `ready` holds, failing with what it last saw at the deadline.
async fn until(c: &Client, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let seen = look(c).await;
        if ready(&seen) {
            return seen;
        }
        if started.elapsed() > PATIENCE {
            let mut brief = seen.clone();
            for chart in brief["charts"]
                .as_object_mut()
                .into_iter()
                .flat_map(|c| c.values_mut())
            {
                chart["image"] = json!("…");
            }
            panic!("the page never showed {what}; it showed {brief:#}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn charts_drawn(seen: &Value, driver: &str) -> bool {
    seen["charts"].as_object().is_some_and(|charts| {
        charts.values().all(|c| {
            c["driver"] == driver
                && c["points"].as_u64() > Some(10)
                && c["inked"].as_u64() > Some(500)
        })
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn the_live_page_shows_the_race_in_a_real_browser() {
    if let Some(missing) = missing_browser() {
        common::cannot_run("the_live_page_shows_the_race_in_a_real_browser", &missing);
        return;
    }
    let engine = engine(&race(), 20.0);
    let base = &engine.base;

    // The same URL: HTML for a browser, JSON for an API client; assets cached for good.
    let html = ureq::get(&format!("{base}/"))
        .set("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .call()
        .unwrap();
    assert_eq!(html.content_type(), "text/html");
    assert_eq!(html.header("cache-control"), Some("no-cache"));
    assert_eq!(html.header("vary"), Some("accept"));
    let page = html.into_string().unwrap();
    let js = ureq::get(&format!("{base}/")).call().unwrap();
    assert_eq!(js.content_type(), "application/json");
    let health: Value = serde_json::from_str(&js.into_string().unwrap()).unwrap();
    assert_eq!(health["status"], "ok");
    let script = page
        .split('"')
        .find(|s| s.starts_with("/page/app.js?v="))
        .expect("the page links its script");
    let script = ureq::get(&format!("{base}{script}")).call().unwrap();
    assert_eq!(script.content_type(), "text/javascript");
    assert_eq!(
        script.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    let (_chromedriver, driver) = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let c = browser(&driver, profile.path(), 1440, 1000).await;
        let mut log = Vec::new();
        c.goto(&format!("{base}/")).await.unwrap();

        // The tower: all 20 drivers, each once, with race positions 1..20 once laps are done.
        until(&c, "a timing tower of 20 drivers in race order", |s| {
            let tower: Vec<&str> = s["tower"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut distinct = tower.clone();
            distinct.sort();
            distinct.dedup();
            let positions: Vec<String> = (1..=20).map(|p| p.to_string()).collect();
            tower.len() == 20 && distinct.len() == 20 && s["positions"] == json!(positions)
        })
        .await;
        // Where each car would rejoin after a stop next lap: a position in the field.
        let seen = look(&c).await;
        for (i, r) in seen["rejoin"].as_array().unwrap().iter().enumerate() {
            let p: usize = r
                .as_str()
                .and_then(|t| t.strip_prefix('P'))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("row {}: rejoin {r}", i + 1));
            assert!((1..=20).contains(&p), "row {}: rejoin P{p}", i + 1);
        }
        // The selected driver's charts have points drawn, and the engine's rate is shown.
        let seen = until(&c, "the selected driver's charts with points drawn", |s| {
            s["selected"]
                .as_str()
                .is_some_and(|d| !d.is_empty() && charts_drawn(s, d))
                && s["rate"] != "—"
        })
        .await;
        let first = seen["selected"].as_str().unwrap().to_string();
        let before = seen["charts"]["c-speed"]["image"].clone();

        // An alert reaches the feed.
        until(&c, "an alert in the feed", |s| {
            s["alerts"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;

        // The selected driver's three predictions, each a probability and how many times its
        // event's base rate it is ("crash risk0.25% · 1.0× base · lap 3").
        let seen = until(&c, "three predictions of the selected driver", |s| {
            s["predictions"].as_array().is_some_and(|p| p.len() == 3)
        })
        .await;
        for p in seen["predictions"].as_array().unwrap() {
            let text = p.as_str().unwrap();
            let (percent, times) = text
                .split_once("% · ")
                .and_then(|(head, rest)| {
                    let number = head.trim_start_matches(|c: char| !c.is_ascii_digit());
                    Some((number.parse::<f64>().ok()?, rest.split_once("× base")?.0))
                })
                .unwrap_or_else(|| panic!("a prediction reads {text:?}"));
            assert!((0.0..=100.0).contains(&percent), "{text}");
            assert!(times.parse::<f64>().is_ok_and(|x| x >= 0.0), "{text}");
        }

        // Another driver, chosen in the tower (a click, as a user would): the charts change.
        let other = seen["tower"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .find(|d| *d != first)
            .unwrap()
            .to_string();
        c.find(Locator::Css(&format!("#tower tr[data-driver='{other}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let seen = until(&c, &format!("charts of {other} after choosing it"), |s| {
            charts_drawn(s, &other) && s["selected"] == other.as_str()
        })
        .await;
        assert_ne!(
            seen["charts"]["c-speed"]["image"], before,
            "the speed chart was redrawn for {other}"
        );

        // A phone's width: one column, nothing wider than the screen.
        c.set_window_size(390, 844).await.unwrap();
        let seen = until(&c, "the page at a phone's width", |s| {
            s["innerWidth"].as_u64().is_some_and(|w| w < 500)
        })
        .await;
        // Every chart redrawn at the size it is shown.
        until(&c, "the charts redrawn at the phone's width", |s| {
            s["charts"]
                .as_object()
                .is_some_and(|c| c.values().all(|c| c["sharp"] == true))
        })
        .await;
        assert!(
            seen["scrollWidth"].as_u64() <= seen["innerWidth"].as_u64(),
            "the page is wider than a phone: {} > {}: {}",
            seen["scrollWidth"],
            seen["innerWidth"],
            seen["overflowing"]
        );

        let errors = console_errors(&c, &mut log).await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
        c.close().await.unwrap();
    });
}

/// Before the first sample: every panel says what it waits for, and nothing fails.
#[test]
fn the_page_is_readable_before_any_data() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no_rows_yet.csv");
    std::fs::write(
        &empty,
        "Date,SessionTime,Driver,DriverNumber,LapNumber,RPM,Speed,nGear,Throttle,Brake,DRS\n",
    )
    .unwrap();
    if let Some(missing) = missing_browser() {
        common::cannot_run("the_page_is_readable_before_any_data", &missing);
        return;
    }
    let engine = engine(&empty, 0.0);
    let base = &engine.base;
    let (_chromedriver, driver) = chromedriver();
    runtime().block_on(async {
        let c = browser(&driver, &dir.path().join("profile"), 1280, 900).await;
        c.goto(&format!("{base}/")).await.unwrap();
        let seen = until(&c, "the engine's answer with no data", |s| {
            s["conn"] == "live"
        })
        .await;
        assert_eq!(seen["tower"], json!([]));
        assert_eq!(seen["alerts"], json!([]));
        assert_eq!(
            seen["empty"],
            json!([
                "Waiting for telemetry…",
                "No alerts yet.",
                "No predictions yet: they come with completed laps.",
                "No pit stops yet."
            ]),
            "each empty panel says so"
        );
        for (id, chart) in seen["charts"].as_object().unwrap() {
            assert_eq!(chart["points"], 0, "{id}");
            assert!(
                chart["inked"].as_u64() > Some(50),
                "{id} shows its waiting message"
            );
        }
        let errors = console_errors(&c, &mut Vec::new()).await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
        c.close().await.unwrap();
    });
}

/// Writes `docs/live-page.png` (and the phone's view): the page late in a real-race replay (the tower full, pit stops
/// and predictions in). Run by hand: `cargo test --release --test live_page -- --ignored`.
#[test]
#[ignore]
fn screenshot_for_the_readme() {
    if let Some(missing) = missing_browser() {
        common::cannot_run("screenshot_for_the_readme", &missing);
        return;
    }
    let engine = engine(&race(), 60.0);
    let base = &engine.base;
    let (_chromedriver, driver) = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let c = browser(&driver, profile.path(), 1440, 1200).await;
        c.goto(&format!("{base}/")).await.unwrap();
        until(&c, "lap 52 done (rain)", |s| {
            s["lap"]
                .as_str()
                .and_then(|l| l.split(' ').next()?.parse::<u32>().ok())
                >= Some(52)
        })
        .await;
        // The driver whose wheels spun last, so that the speed chart shows it.
        let spin = ureq::get(&format!("{base}/api/alerts?type=wheel_spin&max=1"))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let spin: Value = serde_json::from_str(&spin).unwrap();
        let driver = spin[0]["driver_id"].as_str().unwrap_or("LEC").to_string();
        c.find(Locator::Css(&format!("#tower tr[data-driver='{driver}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(&c, "every chart drawn", |s| {
            charts_drawn(s, &driver) && s["alerts"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
        let docs = root().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("live-page.png"), c.screenshot().await.unwrap()).unwrap();
        c.set_window_size(390, 844).await.unwrap();
        until(&c, "the page at a phone's width", |s| {
            s["innerWidth"].as_u64().is_some_and(|w| w < 500)
                && charts_drawn(s, &driver)
                && s["charts"]
                    .as_object()
                    .is_some_and(|c| c.values().all(|c| c["sharp"] == true))
        })
        .await;
        // The phone's screen on the charts, below the tower.
        c.execute(
            "document.querySelector('.charts-panel').scrollIntoView(); \
             window.scrollBy(0, -70);",
            vec![],
        )
        .await
        .unwrap();
        std::fs::write(
            docs.join("live-page-phone.png"),
            c.screenshot().await.unwrap(),
        )
        .unwrap();
        let mut log = Vec::new();
        let errors = console_errors(&c, &mut log).await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
        c.close().await.unwrap();
    });
}
