//! Query stores fed as the dataflow feeds them, for the tests of the handlers and the routes.

use super::response::Response;
use super::store::{Store, StoreHook};
use crate::config::{HttpConfig, PitwallConfig};
use crate::ingest::EpochClock;
use pitwall_dataflows::analysis::DriverAnalysis;
use pitwall_dataflows::config::{LuggingMode, WindowConfig};
use pitwall_dataflows::dataflow::AnalysisHook;
use pitwall_dataflows::{DetectorConfig, DriverId, Telemetry};
use serde_json::Value;
use std::sync::Arc;

/// 40 samples of HAM, 250 ms apart from 1,000,000, with a lugging episode.
pub fn store() -> Store {
    store_lugging(&[(10, 15)])
}

/// 40 samples of HAM, lugging from the first to before the second sample of each of `lugs`.
pub fn store_lugging(lugs: &[(i64, i64)]) -> Store {
    let store = Arc::new(Store::new(
        &HttpConfig {
            points_per_driver: 100,
            windows_per_driver: 100,
            max_alerts: 100,
            ..PitwallConfig::default().http
        },
        &WindowConfig::default(),
    ));
    let mut hook = StoreHook::new(store.clone(), EpochClock::default());
    let driver = DriverId::new("HAM").unwrap();
    // The seeds' fixed lugging rule, which these samples (half throttle) are made for.
    let mut detectors = DetectorConfig::default();
    detectors.gear.lugging_mode = LuggingMode::Fixed;
    let mut a = DriverAnalysis::new(driver, &detectors);
    for i in 0..40i64 {
        let lug = lugs.iter().any(|&(from, to)| (from..to).contains(&i));
        let s = Telemetry {
            speed: 100.0 + i as f32,
            rpm: if lug { 7000.0 } else { 10000.0 },
            throttle: 50.0,
            lap: Some(2),
            gear: 5,
            ..Telemetry::at(driver, 1_000_000 + i * 250)
        };
        let d = a.observe(&s, |o| hook.output(&o, 0));
        hook.sample(&s, &d);
    }
    a.finish(|o| hook.output(&o, 0));
    hook.flush();
    drop(hook);
    Arc::try_unwrap(store).ok().unwrap()
}

/// A response's body as JSON.
pub fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}
