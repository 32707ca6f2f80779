//! The bodies of the fuzz targets in `fuzz/`, here so that the fuzzers and the corpus replay
//! of `tests/fuzz_corpus.rs` call the same code: each feeds arbitrary bytes to a real parser
//! and checks what must hold of any input (no panic, every row accounted for, what is accepted
//! is within the limits and reads back the same). Not an API: a failed check panics, which is
//! what a fuzzer reports.

use crate::config::PitwallConfig;
use crate::format::messages::{parse_telemetry, TelemetryMessage};
use crate::format::timefmt::{format_utc_ms, parse_timedelta_ms, parse_utc_ms};
use crate::format::validate;
use crate::http::params::{parse_query, parse_time};
use crate::http::routes::{handle, ROUTES};
use crate::http::store::{Store, StoreHook};
use crate::ingest::{EpochClock, RecordSource, SourceStats};
use crate::source::fastf1::CsvFile;
use pitwall_dataflows::analysis::DriverAnalysis;
use pitwall_dataflows::config::LuggingMode;
use pitwall_dataflows::dataflow::AnalysisHook;
use pitwall_dataflows::{DetectorConfig, DriverId, Ingest, Telemetry};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// Checks what holds of every record a source accepts: each field within its limit.
fn assert_within_limits(s: &Telemetry) {
    let within = |v: f64, l: &validate::Limit| assert!(l.check(v).is_ok(), "{}: {v}", l.field);
    within(s.speed as f64, &validate::SPEED);
    within(s.rpm as f64, &validate::RPM);
    within(s.throttle as f64, &validate::THROTTLE);
    within(s.gear as f64, &validate::GEAR);
    within(s.drs as f64, &validate::DRS);
    if let Some(l) = s.lap {
        within(l as f64, &validate::LAP);
    }
}

/// `fastf1_csv`: the first byte picks the form (bit 0: per-driver car_data, the driver given
/// by the file name; bit 1: a `--drivers VER,LEC` filter), the rest is the file. Every row is
/// exactly one of record, dead letter or filtered.
pub fn fastf1_csv(data: &[u8]) {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let fixed = (mode & 1 == 1).then(|| DriverId::new("VER").expect("a driver code"));
    let filter = (mode & 2 == 2).then(|| {
        Arc::new(
            ["VER", "LEC"]
                .iter()
                .map(|d| DriverId::new(d).expect("a driver code"))
                .collect::<HashSet<_>>(),
        )
    });
    let stats = Arc::new(SourceStats::default());
    let Ok(mut file) = CsvFile::from_reader(
        "fuzz.csv".into(),
        Box::new(std::io::Cursor::new(text.to_vec())),
        fixed,
        filter.clone(),
        stats.clone(),
    ) else {
        return;
    };
    let mut items = Vec::new();
    while file.fill(&mut items, 64) {}
    let (mut records, mut dead) = (0u64, 0u64);
    for item in &items {
        match item {
            Ingest::Record(s) => {
                records += 1;
                assert_within_limits(s);
                if let Some(f) = &filter {
                    assert!(f.contains(&s.driver), "{} passed the filter", s.driver);
                }
                if let Some(d) = fixed {
                    assert_eq!(s.driver, d);
                }
            }
            Ingest::Dead(d) => {
                dead += 1;
                assert!(!d.reason.is_empty(), "a dead letter says why");
            }
            Ingest::Replay(_) => panic!("a file source replays nothing"),
        }
    }
    let filtered = stats.filtered.load(Ordering::Relaxed);
    assert_eq!(
        stats.rows.load(Ordering::Relaxed),
        records + dead + filtered,
        "every row is one of record, dead letter, filtered"
    );
}

/// `telemetry_json`: a Kafka message. What is accepted is within the limits, and reads back
/// the same once written in pitwall's own format.
pub fn telemetry_json(data: &[u8]) {
    let Ok(s) = parse_telemetry(data) else {
        return;
    };
    assert_within_limits(&s);
    let written = serde_json::to_vec(&TelemetryMessage::new(&s, s.ts_ms)).expect("serialises");
    let again = parse_telemetry(&written).unwrap_or_else(|e| {
        panic!(
            "{} does not read back: {e:?}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(again, s);
}

/// `times`: FastF1's timestamps and timedeltas, and the HTTP API's times. A timestamp that
/// parses names a real calendar instant: written back, it has the same date and time of day.
pub fn times(data: &[u8]) {
    if let Some(ms) = parse_utc_ms(data) {
        let text = format_utc_ms(ms);
        assert_eq!(
            text.as_bytes()[..19],
            [&data[..10], b"T", &data[11..19]].concat()[..],
            "{:?} parsed as {text}",
            String::from_utf8_lossy(data)
        );
        assert_eq!(parse_utc_ms(text.as_bytes()), Some(ms));
    }
    if let Some(ms) = parse_timedelta_ms(data) {
        assert!(ms >= 0, "a negative timedelta: {ms}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_time(text);
    }
}

/// A store fed as the dataflow feeds it: two drivers, a few hundred samples, some alerts.
fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let cfg = PitwallConfig::default();
        let store = Arc::new(Store::new(&cfg.http, &cfg.windows));
        let mut hook = StoreHook::new(store.clone(), EpochClock::default());
        let mut detectors = DetectorConfig::default();
        detectors.gear.lugging_mode = LuggingMode::Fixed;
        for code in ["VER", "HAM"] {
            let driver = DriverId::new(code).expect("a driver code");
            let mut analysis = DriverAnalysis::new(driver, &detectors);
            for i in 0..400i64 {
                let s = Telemetry {
                    speed: 100.0 + (i % 200) as f32,
                    rpm: if i % 50 < 5 { 7000.0 } else { 10_000.0 },
                    throttle: 50.0,
                    position: Some([i as f32, -(i as f32)]),
                    lap: Some(1 + (i / 100) as u16),
                    gear: 5,
                    brake: i % 7 == 0,
                    ..Telemetry::at(driver, 1_685_278_862_000 + i * 250)
                };
                let d = analysis.observe(&s, |o| hook.output(&o, 0));
                hook.sample(&s, &d);
            }
            analysis.finish(|o| hook.output(&o, 0));
        }
        hook.flush();
        drop(hook);
        Arc::try_unwrap(store).unwrap_or_else(|_| panic!("the hook is gone"))
    })
}

fn check_answer(status: u16, content_type: &str, body: &[u8]) {
    assert!(
        matches!(status, 200 | 400 | 404 | 405 | 413),
        "status {status}: {}",
        String::from_utf8_lossy(body)
    );
    if content_type.starts_with("application/json") {
        serde_json::from_slice::<serde_json::Value>(body).expect("a JSON answer is JSON");
    }
}

/// `http_query`: the first byte picks an endpoint, the rest is the query string; the answer
/// is a 2xx or 4xx, never a panic, and JSON when it says so; the query
/// decoder makes no byte out of what is not an escape.
pub fn http_query(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(rest) else {
        return;
    };
    // A control character comes out of the decoder only if it went in, as itself or as `%`
    // and two hex digits (`%+5` was once a 0x05).
    let escaped = rest
        .windows(3)
        .any(|w| w[0] == b'%' && matches!(w[1], b'0' | b'1') && w[2].is_ascii_hexdigit());
    for (k, v) in parse_query(Some(query)) {
        for c in k.chars().chain(v.chars()).filter(|c| (*c as u32) < 0x20) {
            assert!(escaped || query.contains(c), "{query:?} decoded to {c:?}");
        }
    }
    let path = ROUTES[pick as usize % ROUTES.len()].path;
    let r = handle(store(), "GET", path, Some(query), b"");
    check_answer(r.status, r.content_type, &r.body);
}

/// `simple_json`: the first byte picks a SimpleJSON endpoint, the rest is the POST body.
pub fn simple_json(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let posts: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.methods.contains(&"POST"))
        .map(|r| r.path)
        .collect();
    let path = posts[pick as usize % posts.len()];
    let r = handle(store(), "POST", path, None, body);
    check_answer(r.status, r.content_type, &r.body);
}

/// `config`: a `--config` file. One that loads and validates writes back to TOML that loads
/// to the same configuration.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = PitwallConfig::parse(text) else {
        return;
    };
    if cfg.validate().is_err() {
        return;
    }
    let written = toml::to_string(&cfg).expect("a valid configuration serialises");
    let again = PitwallConfig::parse(&written)
        .unwrap_or_else(|e| panic!("{written}\ndoes not read back: {e}"));
    assert_eq!(again, cfg);
}
