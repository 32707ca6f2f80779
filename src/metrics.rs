//! The Prometheus registry: what `/metrics` exports. Sources, the query store and the
//! engine update these; nothing here knows who serves them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

/// Every metric pitwall exports, registered under the `pitwall_` prefix.
pub struct Metrics {
    pub records: Counter,
    pub records_per_second: Gauge<f64, AtomicU64>,
    pub consumed_offset: Family<PartitionLabels, Gauge>,
    pub alerts: Family<AlertLabels, Counter>,
    pub dead_letters: Family<ReasonLabels, Counter>,
    pub latency: Histogram,
    pub active_drivers: Gauge,
    pub uptime: Gauge<f64, AtomicU64>,
    pub queries: Family<EndpointLabels, Counter>,
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pitwall");
        let m = Metrics {
            records: Counter::default(),
            records_per_second: Gauge::default(),
            consumed_offset: Family::default(),
            alerts: Family::default(),
            dead_letters: Family::default(),
            latency: Histogram::new([
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            active_drivers: Gauge::default(),
            uptime: Gauge::default(),
            queries: Family::default(),
            registry: Registry::default(),
        };
        registry.register("records", "Telemetry records analysed", m.records.clone());
        registry.register(
            "records_per_second",
            "Records analysed per second, over the last scrape interval",
            m.records_per_second.clone(),
        );
        registry.register(
            "consumed_offset",
            "Next offset to read, per topic partition",
            m.consumed_offset.clone(),
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
    /// The Prometheus/OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
