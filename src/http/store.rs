//! The query store: what the HTTP endpoints serve, fed by the dataflow's workers.
//!
//! Each driver's series is a bounded ring of compact columns ([`PointColumns`] of the
//! samples of [`super::sample`], with the min/max pyramid downsampled views read) and of
//! window aggregates ([`WindowRing`]) behind its own mutex; workers publish a batch at a
//! time (one lock per driver per batch) and queries take what they answer and let go: a
//! downsampled series reads about one summary per bucket under the lock, never a copy of
//! the whole ring.

use super::columns::{Encoded, PointColumns};
use super::sample::{Metric, Point};
use super::window_ring::WindowRing;
use crate::config::HttpConfig;
use crate::format::messages::AlertMessage;
use crate::ingest::EpochClock;
use crate::metrics::{AlertLabels, Metrics, ReasonLabels};
use pitwall_dataflows::alert::{Alert, AlertStatus, Severity};
use pitwall_dataflows::analysis::Derived;
use pitwall_dataflows::config::WindowConfig;
use pitwall_dataflows::dataflow::{AnalysisHook, Epoch};
use pitwall_dataflows::race::{RaceBook, RaceUpdate};
use pitwall_dataflows::window::{WindowKind, WindowStats};
use pitwall_dataflows::{DriverId, Output, Telemetry};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Window aggregates served as series, from the first tumbling window.
pub const WINDOW_METRICS: [&str; 5] = [
    "window_speed_mean",
    "window_speed_max",
    "window_rpm_mean",
    "window_throttle_mean",
    "window_brake_ratio",
];

pub fn window_value(w: &WindowStats, metric: &str) -> Option<f32> {
    Some(match metric {
        "window_speed_mean" => w.speed.mean,
        "window_speed_max" => w.speed.max,
        "window_rpm_mean" => w.rpm.mean,
        "window_throttle_mean" => w.throttle_mean.unwrap_or(f32::NAN),
        "window_brake_ratio" => w.brake_ratio,
        _ => return None,
    })
}

struct DriverSeries {
    points: PointColumns,
    windows: WindowRing,
    last_seen: Option<Instant>,
}

pub struct Store {
    started: Instant,
    /// Width of the tumbling windows served as series.
    window_ms: i64,
    points_per_driver: usize,
    windows_per_driver: usize,
    max_alerts: usize,
    drivers: RwLock<BTreeMap<DriverId, Arc<Mutex<DriverSeries>>>>,
    alerts: Mutex<VecDeque<Alert>>,
    pub metrics: Metrics,
    /// The race views as they stand: standings, laps, pit stops, predictions.
    race: Mutex<RaceBook>,
    /// `(when, records)` readings of the last few seconds, for [`Store::engine_rate`].
    rate_readings: Mutex<VecDeque<(Instant, u64)>>,
    /// The latest source-to-output latency observed, in microseconds (`u64::MAX`: none yet),
    /// and the sum and count of all of them (the histogram does not give its own back).
    last_latency_us: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

impl Store {
    /// Applies race-view updates (on worker 0's thread).
    pub fn apply_race<'a>(&self, updates: impl IntoIterator<Item = &'a RaceUpdate>) {
        if let Ok(mut book) = self.race.lock() {
            for u in updates {
                book.apply(u);
            }
        }
    }

    /// Reads the race views under the lock.
    pub fn with_race<T>(&self, read: impl FnOnce(&RaceBook) -> T) -> Option<T> {
        self.race.lock().ok().map(|book| read(&book))
    }

    /// A store keeping what `http` says, serving the first tumbling window of `windows`.
    pub fn new(http: &HttpConfig, windows: &WindowConfig) -> Store {
        Store {
            started: Instant::now(),
            window_ms: windows.tumbling_ms.first().copied().unwrap_or(1000),
            points_per_driver: http.points_per_driver.max(1),
            windows_per_driver: http.windows_per_driver.max(1),
            max_alerts: http.max_alerts.max(1),
            drivers: RwLock::new(BTreeMap::new()),
            alerts: Mutex::new(VecDeque::new()),
            metrics: Metrics::new(),
            race: Mutex::new(RaceBook::default()),
            rate_readings: Mutex::new(VecDeque::new()),
            last_latency_us: AtomicU64::new(u64::MAX),
            latency_sum_us: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
        }
    }

    /// Records analysed per second over the last few seconds, `None` until two readings
    /// (taken whenever this is asked, at most four a second) are far enough apart. Apart from
    /// `/metrics`' gauge, whose interval is whoever scraped last.
    pub fn engine_rate(&self) -> Option<f64> {
        const SPAN: Duration = Duration::from_secs(5);
        let now = Instant::now();
        let records = self.metrics.records.get();
        let mut readings = self.rate_readings.lock().unwrap_or_else(|e| e.into_inner());
        if readings
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(250))
        {
            readings.push_back((now, records));
        }
        while readings.len() > 2 && readings.get(1).is_some_and(|(t, _)| now - *t >= SPAN) {
            readings.pop_front();
        }
        let (t0, r0) = *readings.front()?;
        let secs = now.duration_since(t0).as_secs_f64();
        (secs >= 0.2).then(|| records.saturating_sub(r0) as f64 / secs)
    }

    /// Notes one source-to-output latency, in seconds (the histogram has it too).
    fn note_latency(&self, seconds: f64) {
        let us = (seconds * 1e6) as u64;
        self.last_latency_us
            .store(us.min(u64::MAX - 1), Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Source-to-output latency in seconds: the latest, the mean over the run, and how many.
    pub fn latency(&self) -> (Option<f64>, Option<f64>, u64) {
        let last = match self.last_latency_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(us as f64 / 1e6),
        };
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (last, (count > 0).then(|| sum / count as f64), count)
    }

    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn series(&self, driver: DriverId) -> Arc<Mutex<DriverSeries>> {
        if let Some(s) = self.existing(driver) {
            return s;
        }
        let mut drivers = self.drivers.write().unwrap_or_else(|e| e.into_inner());
        drivers
            .entry(driver)
            .or_insert_with(|| {
                Arc::new(Mutex::new(DriverSeries {
                    points: PointColumns::new(self.points_per_driver),
                    windows: WindowRing::new(self.windows_per_driver),
                    last_seen: None,
                }))
            })
            .clone()
    }

    /// A driver's series, if it has any.
    fn existing(&self, driver: DriverId) -> Option<Arc<Mutex<DriverSeries>>> {
        self.drivers
            .read()
            .ok()
            .and_then(|d| d.get(&driver).cloned())
    }

    pub fn drivers(&self) -> Vec<(DriverId, usize, Option<i64>)> {
        let drivers: Vec<_> = self
            .drivers
            .read()
            .map(|d| d.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        drivers
            .into_iter()
            .map(|(id, s)| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                (id, s.points.len(), s.points.last_ms())
            })
            .collect()
    }

    pub fn has_driver(&self, driver: DriverId) -> bool {
        self.drivers
            .read()
            .map(|d| d.contains_key(&driver))
            .unwrap_or(false)
    }

    /// Points of a driver within [from, to] (every one: for short spans such as the live
    /// page's trace; a series wants [`Store::point_series`]).
    pub fn points(&self, driver: DriverId, from: i64, to: i64) -> Vec<Point> {
        let Some(s) = self.existing(driver) else {
            return Vec::new();
        };
        let s = s.lock().unwrap_or_else(|e| e.into_inner());
        s.points.points(from, to)
    }

    /// One metric of a driver within [from, to] as `(time, value)`, at most `max` of them
    /// (each bucket's minimum and maximum past that: [`PointColumns::series`]).
    pub fn point_series(
        &self,
        driver: DriverId,
        metric: Metric,
        from: i64,
        to: i64,
        max: usize,
    ) -> Vec<(i64, f32)> {
        let mut out = Vec::new();
        if let Some(s) = self.existing(driver) {
            let s = s.lock().unwrap_or_else(|e| e.into_inner());
            s.points.series(metric, from, to, max, &mut out);
        }
        out
    }

    /// One window aggregate of a driver within [from, to] (by window end) as `(end, value)`,
    /// oldest first.
    pub fn window_series(
        &self,
        driver: DriverId,
        metric: &str,
        from: i64,
        to: i64,
    ) -> Vec<(i64, f32)> {
        let Some(s) = self.existing(driver) else {
            return Vec::new();
        };
        let s = s.lock().unwrap_or_else(|e| e.into_inner());
        s.windows.series(driver, self.window_ms, from, to, |w| {
            window_value(w, metric)
        })
    }

    /// The newest `max` window aggregates of a driver within [from, to] (by window end),
    /// oldest first.
    pub fn windows(&self, driver: DriverId, from: i64, to: i64, max: usize) -> Vec<WindowStats> {
        let Some(s) = self.existing(driver) else {
            return Vec::new();
        };
        let s = s.lock().unwrap_or_else(|e| e.into_inner());
        s.windows.windows(driver, self.window_ms, from, to, max)
    }

    /// Alerts (their latest state) whose episode overlaps [from, to], newest first.
    pub fn alerts(&self, from: i64, to: i64, filter: impl Fn(&Alert) -> bool) -> Vec<Alert> {
        let alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        alerts
            .iter()
            .rev()
            .filter(|a| a.start_ms <= to && a.end_ms >= from && filter(a))
            .cloned()
            .collect()
    }

    /// How many of the stored alerts have each severity, counted under the lock.
    pub fn alerts_by_severity(&self) -> BTreeMap<Severity, usize> {
        let mut counts: BTreeMap<Severity, usize> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
        let alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        for a in alerts.iter() {
            *counts.entry(a.severity).or_default() += 1;
        }
        counts
    }

    pub fn alert_message(a: &Alert) -> serde_json::Value {
        serde_json::to_value(AlertMessage::new(a)).unwrap_or_default()
    }

    /// Prometheus text exposition.
    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        m.uptime.set(self.uptime_seconds());
        m.refresh_records_per_second();
        let active = self
            .drivers
            .read()
            .map(|d| {
                d.values()
                    .filter(|s| {
                        s.lock()
                            .map(|s| s.last_seen.is_some_and(|t| t.elapsed().as_secs() < 30))
                            .unwrap_or(false)
                    })
                    .count()
            })
            .unwrap_or(0);
        m.active_drivers.set(active as i64);
        m.encode()
    }
}

/// A worker's side of the store: buffers a batch, publishes it with one lock per driver.
pub struct StoreHook {
    store: Arc<Store>,
    epochs: EpochClock,
    /// Encoded as they come, so the batch sorts and publishes 32 bytes a sample.
    points: Vec<(DriverId, Encoded)>,
    windows: Vec<WindowStats>,
    alerts: Vec<Alert>,
    records: u64,
}

impl StoreHook {
    pub fn new(store: Arc<Store>, epochs: EpochClock) -> StoreHook {
        StoreHook {
            store,
            epochs,
            points: Vec::new(),
            windows: Vec::new(),
            alerts: Vec::new(),
            records: 0,
        }
    }
}

impl AnalysisHook for StoreHook {
    fn sample(&mut self, s: &Telemetry, d: &Derived) {
        self.records += 1;
        let spin = d.spin;
        self.points.push((
            s.driver,
            Encoded::new(&Point {
                ts_ms: s.ts_ms,
                speed: s.speed,
                rpm: s.rpm,
                throttle: s.throttle,
                brake: s.brake as u8,
                gear: s.gear,
                drs: s.drs,
                expected_speed: spin.map_or(f32::NAN, |r| r.expected_kmh as f32),
                wheel_spin: spin.map_or(f32::NAN, |r| r.spin_pct as f32),
                spinning: spin.is_some_and(|r| r.spinning),
                brake_temp: d.brake_temp_c as f32,
            }),
        ));
    }

    fn output(&mut self, o: &Output, epoch: Epoch) {
        let m = &self.store.metrics;
        match o {
            Output::Alert(a) => {
                if a.status == AlertStatus::Raised {
                    m.alerts
                        .get_or_create(&AlertLabels {
                            alert_type: a.alert_type.as_str().to_string(),
                            severity: a.severity.as_str().to_string(),
                        })
                        .inc();
                    if let Some(age) = self.epochs.age(epoch) {
                        m.latency.observe(age);
                        self.store.note_latency(age);
                    }
                }
                self.alerts.push(a.clone());
            }
            Output::Window(w)
                if w.kind == WindowKind::Tumbling && w.size == self.store.window_ms =>
            {
                self.windows.push(w.clone());
            }
            Output::DeadLetter(d) => {
                m.dead_letters
                    .get_or_create(&ReasonLabels {
                        reason: d.reason_key(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    fn flush(&mut self) {
        let store = &self.store;
        store.metrics.add_records(self.records);
        self.records = 0;
        self.points.sort_by_key(|(d, p)| (*d, p.ts_ms));
        let mut i = 0;
        while i < self.points.len() {
            let driver = self.points[i].0;
            let end = i + self.points[i..]
                .iter()
                .take_while(|(d, _)| *d == driver)
                .count();
            let series = store.series(driver);
            let mut s = series.lock().unwrap_or_else(|e| e.into_inner());
            for (_, p) in &self.points[i..end] {
                s.points.push(p);
            }
            s.last_seen = Some(Instant::now());
            i = end;
        }
        self.points.clear();
        for w in self.windows.drain(..) {
            let series = store.series(w.driver);
            let mut s = series.lock().unwrap_or_else(|e| e.into_inner());
            s.windows.push(&w);
        }
        if !self.alerts.is_empty() {
            let mut alerts = store.alerts.lock().unwrap_or_else(|e| e.into_inner());
            if alerts.capacity() == 0 {
                // Its full size at once, rather than doubling past it (16,384 for 10,000).
                alerts.reserve_exact(store.max_alerts);
            }
            for a in self.alerts.drain(..) {
                // A cleared alert replaces its raised self.
                if a.status == AlertStatus::Cleared {
                    if let Some(pos) = alerts.iter().rposition(|x| x.alert_id == a.alert_id) {
                        alerts[pos] = a;
                        continue;
                    }
                }
                if alerts.len() == store.max_alerts {
                    alerts.pop_front();
                }
                alerts.push_back(a);
            }
        }
    }
}

/// Sends the race views' updates to worker 0, which applies them to `store`.
pub fn race_into_store<'scope>(
    race: timely::dataflow::Stream<'scope, Epoch, Vec<Output>>,
    store: Arc<Store>,
) {
    use timely::dataflow::channels::pact::Exchange;
    use timely::dataflow::operators::generic::Operator;
    race.sink(
        Exchange::new(|_: &Output| 0),
        "RaceStore",
        move |(input, _)| {
            input.for_each(|_time, data| {
                store.apply_race(data.iter().filter_map(|o| match o {
                    Output::Race(u) => Some(u),
                    _ => None,
                }));
            });
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PitwallConfig;

    #[test]
    fn the_engine_rate_is_records_over_the_time_between_readings() {
        let store = Store::new(&PitwallConfig::default().http, &WindowConfig::default());
        assert_eq!(store.engine_rate(), None, "one reading is no rate");
        store.metrics.records.inc_by(1000);
        // At least 0.3 s pass, so the rate is above zero and at most 1000 / 0.3.
        std::thread::sleep(Duration::from_millis(300));
        let rate = store.engine_rate().expect("a rate from two readings");
        assert!(rate > 0.0 && rate <= 1000.0 / 0.3, "{rate}");
    }

    #[test]
    fn latency_is_the_latest_and_the_mean() {
        let store = Store::new(&PitwallConfig::default().http, &WindowConfig::default());
        assert_eq!(store.latency(), (None, None, 0));
        store.note_latency(0.004);
        store.note_latency(0.002);
        let (last, mean, count) = store.latency();
        assert_eq!((last, count), (Some(0.002), 2));
        assert!((mean.unwrap() - 0.003).abs() < 1e-9);
    }
}
