//! The Prometheus registry: what `/metrics` exports. Sources, the query store and the
//! engine update these; nothing here knows who serves them.
//!
//! Reading the metrics changes nothing: counters only go up, and the one derived rate
//! (`pitwall_records_per_second`) comes from the counter's own history over a fixed window,
//! not from the time since the last scrape, so any number of scrapers read the same values.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window `pitwall_records_per_second` averages over.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub alert_type: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: String,
}

/// A partition's consumer lag, and behind what: the engine's `position` (the next offset it
/// reads) or its `committed` offset (where a restart would resume).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabels {
    pub topic: String,
    pub partition: String,
    pub behind: String,
}

/// One partition of the input topic as its consumer last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The end a consumer can read to: the last stable offset (the high watermark, but for
    /// open transactions).
    pub end: i64,
    /// The next offset the engine reads.
    pub position: i64,
    /// The engine's committed offset (the partition's first offset before any commit).
    pub committed: i64,
}

/// Consumer lag per partition of the engine's input: `pitwall_kafka_consumer_lag` and
/// `/api/engine`. Written by the consumers' statistics (librdkafka's thread), read by both.
#[derive(Default)]
pub struct ConsumerLag {
    partitions: Mutex<std::collections::BTreeMap<(String, i32), PartitionLag>>,
    gauge: Family<LagLabels, Gauge>,
}

impl ConsumerLag {
    pub fn record(&self, topic: &str, partition: i32, lag: PartitionLag) {
        for (behind, from) in [("position", lag.position), ("committed", lag.committed)] {
            self.gauge
                .get_or_create(&LagLabels {
                    topic: topic.to_string(),
                    partition: partition.to_string(),
                    behind: behind.to_string(),
                })
                .set((lag.end - from).max(0));
        }
        if let Ok(mut p) = self.partitions.lock() {
            p.insert((topic.to_string(), partition), lag);
        }
    }

    /// Every partition seen, in topic and partition order.
    pub fn partitions(&self) -> Vec<(String, i32, PartitionLag)> {
        self.partitions
            .lock()
            .map(|p| p.iter().map(|((t, n), l)| (t.clone(), *n, *l)).collect())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

/// Every metric pitwall exports, registered under the `pitwall_` prefix.
pub struct Metrics {
    pub records: Counter,
    pub records_per_second: Gauge<f64, AtomicU64>,
    pub consumed_offset: Family<PartitionLabels, Gauge>,
    pub consumer_lag: std::sync::Arc<ConsumerLag>,
    pub alerts: Family<AlertLabels, Counter>,
    pub dead_letters: Family<ReasonLabels, Counter>,
    pub latency: Histogram,
    pub active_drivers: Gauge,
    pub uptime: Gauge<f64, AtomicU64>,
    pub queries: Family<EndpointLabels, Counter>,
    records_history: CounterHistory,
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pitwall");
        let m = Metrics {
            records: Counter::default(),
            records_per_second: Gauge::default(),
            consumed_offset: Family::default(),
            consumer_lag: Default::default(),
            alerts: Family::default(),
            dead_letters: Family::default(),
            latency: Histogram::new([
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            active_drivers: Gauge::default(),
            uptime: Gauge::default(),
            queries: Family::default(),
            records_history: CounterHistory::new(Instant::now()),
            registry: Registry::default(),
        };
        registry.register("records", "Telemetry records analysed", m.records.clone());
        registry.register(
            "records_per_second",
            "Records analysed per second, averaged over the last 10 s (for a graph, prefer rate(pitwall_records_total[...]))",
            m.records_per_second.clone(),
        );
        registry.register(
            "consumed_offset",
            "Next offset to read, per topic partition",
            m.consumed_offset.clone(),
        );
        registry.register(
            "kafka_consumer_lag",
            "Messages of an input partition behind the engine's position or its committed offset (librdkafka's statistics, every second)",
            m.consumer_lag.gauge.clone(),
        );
        registry.register("alerts", "Alert episodes raised", m.alerts.clone());
        registry.register(
            "dead_letters",
            "Input that could not be used, by reason",
            m.dead_letters.clone(),
        );
        registry.register(
            "source_to_output_latency_seconds",
            "Time from a source handing an epoch to the dataflow to an alert or window of it being emitted",
            m.latency.clone(),
        );
        registry.register(
            "active_drivers",
            "Drivers with a sample in the last 30 s",
            m.active_drivers.clone(),
        );
        registry.register(
            "uptime_seconds",
            "Seconds since the engine started",
            m.uptime.clone(),
        );
        registry.register(
            "http_queries",
            "HTTP queries answered, by endpoint",
            m.queries.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Counts `n` more records analysed.
    pub fn add_records(&self, n: u64) {
        self.records.inc_by(n);
        self.records_history
            .note(Instant::now(), self.records.get());
    }

    /// Sets `pitwall_records_per_second` to the rate over the last [`RATE_WINDOW`] as of now.
    /// Idempotent: calling it again (another scrape) gives the same answer for the same moment.
    pub fn refresh_records_per_second(&self) {
        let rate = self
            .records_history
            .per_second(Instant::now(), self.records.get());
        self.records_per_second.set(rate);
    }

    /// The Prometheus/OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// A counter's recent values, the latest of each tenth of [`RATE_WINDOW`] (counted from
/// `start`), enough to tell its rate over the window at any moment without being reset by
/// whoever asks.
struct CounterHistory {
    start: Instant,
    entries: Mutex<VecDeque<(Instant, u64)>>,
}

impl CounterHistory {
    fn new(start: Instant) -> CounterHistory {
        CounterHistory {
            start,
            entries: Mutex::new(VecDeque::from([(start, 0)])),
        }
    }

    fn slot(&self, t: Instant) -> u128 {
        t.saturating_duration_since(self.start).as_millis() / (RATE_WINDOW / 10).as_millis()
    }

    /// The counter stood at `total` at `now`.
    fn note(&self, now: Instant, total: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let slot = self.slot(now);
        let len = entries.len();
        match entries.back_mut() {
            // The same tenth of the window: keep its latest value (never the start's zero).
            Some(last) if len > 1 && self.slot(last.0) == slot => {
                *last = (now.max(last.0), total.max(last.1));
            }
            _ => entries.push_back((now, total)),
        }
        // Keep one entry at or before the window's start: the baseline of the rate.
        let start = now.checked_sub(RATE_WINDOW);
        while entries.len() > 1 && start.is_some_and(|s| entries[1].0 <= s) {
            entries.pop_front();
        }
    }

    /// Per second, from the latest entry at or before `now - RATE_WINDOW` (or the oldest kept,
    /// early on) to `total` at `now`.
    fn per_second(&self, now: Instant, total: u64) -> f64 {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let start = now.checked_sub(RATE_WINDOW);
        let base = entries
            .iter()
            .rev()
            .find(|(t, _)| start.is_some_and(|s| *t <= s))
            .or(entries.front());
        match base {
            Some(&(t, count)) => {
                let secs = now.saturating_duration_since(t).as_secs_f64();
                if secs > 0.0 {
                    total.saturating_sub(count) as f64 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_over_the_window_and_reading_it_changes_nothing() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let h = CounterHistory::new(t0);
        // 1,000 records a second for 20 s, noted every 50 ms.
        for i in 1..=400u64 {
            h.note(at(i * 50), i * 50);
        }
        let rate = h.per_second(at(20_000), 20_000);
        assert!((rate - 1000.0).abs() < 1.0, "{rate}");
        // Asking again, as a second scraper would, gives the same answer.
        assert_eq!(h.per_second(at(20_000), 20_000), rate);
        // Nothing more arrives: the rate falls to zero once the window has passed.
        let later = h.per_second(at(25_000), 20_000);
        assert!((later - 500.0).abs() < 10.0, "{later}");
        assert_eq!(h.per_second(at(30_100), 20_000), 0.0);
        // Early on, the rate since the start.
        let fresh = CounterHistory::new(t0);
        fresh.note(at(2_000), 4_000);
        assert_eq!(fresh.per_second(at(2_000), 4_000), 2_000.0);
        // The history stays bounded.
        assert!(h.entries.lock().unwrap().len() <= 12);
    }

    #[test]
    fn counters_never_go_back_when_read() {
        let m = Metrics::new();
        m.add_records(5);
        let first = m.encode();
        m.refresh_records_per_second();
        m.refresh_records_per_second();
        let second = m.encode();
        let total = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("pitwall_records_total "))
                .map(str::to_string)
        };
        assert_eq!(total(&first).as_deref(), Some("pitwall_records_total 5"));
        assert_eq!(total(&first), total(&second));
    }
}
