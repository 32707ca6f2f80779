//! `pitwall produce`: replays telemetry into the telemetry topic, keyed by driver.

use super::acks::{AckGap, AckGaps};
use super::{client_error, BrokerError, KafkaConfig};
use crate::format::messages::TelemetryMessage;
use crate::ingest::{due_in, RecordSource};
use pitwall_dataflows::Ingest;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts what the broker acknowledged, and how long each acknowledgement took.
pub struct Deliveries {
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub gaps: AckGaps,
    /// When the producer was made: a message's opaque is its send time, µs after this.
    origin: Instant,
    /// Send → acknowledgement, in 0.1 ms buckets (the last one: that long or longer). A fixed
    /// histogram, so a long replay keeps no list of its messages.
    ack_latency: Vec<AtomicU64>,
}

const ACK_BUCKETS: usize = 20_000;

impl Default for Deliveries {
    fn default() -> Self {
        Deliveries {
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            gaps: AckGaps::default(),
            origin: Instant::now(),
            ack_latency: (0..ACK_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Deliveries {
    fn sent_at(&self) -> usize {
        self.origin.elapsed().as_micros() as usize
    }

    /// Percentiles (ms) of send → acknowledgement: the producer's linger and batching, the
    /// request and the broker's append.
    pub fn ack_latency(&self) -> Option<crate::report::Percentiles> {
        let counts: Vec<u64> = self
            .ack_latency
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let at = |q: f64| {
            let rank = ((total - 1) as f64 * q).round() as u64;
            let mut seen = 0;
            for (bucket, n) in counts.iter().enumerate() {
                seen += n;
                if seen > rank {
                    return (bucket as f64 + 0.5) / 10.0;
                }
            }
            ACK_BUCKETS as f64 / 10.0
        };
        Some(crate::report::Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
            count: total as usize,
        })
    }
}

pub struct CountingContext(pub Arc<Deliveries>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    /// The send time, µs after `Deliveries::origin`.
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, sent_at: usize) {
        match result {
            Ok(_) => {
                let tenths = self.0.sent_at().saturating_sub(sent_at) / 100;
                self.0.ack_latency[tenths.min(ACK_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
                self.0.gaps.acknowledged();
                self.0.acked.fetch_add(1, Ordering::Relaxed)
            }
            Err((e, _)) => {
                self.0.gaps.failed();
                tracing::error!("delivery failed: {e}");
                self.0.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ProduceStats {
    pub messages: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub skipped_dead_letters: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// Stopped by SIGINT/SIGTERM before the end of the input (what was sent was flushed).
    pub interrupted: bool,
    /// The longest wait for an acknowledgement with messages in flight (a broker lost: the
    /// failover).
    #[serde(skip)]
    pub longest_ack_gap: Option<AckGap>,
    /// Event time of the first record and the wall time the pacing clock started from it.
    #[serde(skip)]
    pub first_event_ms: Option<i64>,
    #[serde(skip)]
    pub pacing_origin_wall: Option<std::time::SystemTime>,
    /// Send → acknowledgement of each message, ms.
    #[serde(skip)]
    pub ack_latency_ms: Option<crate::report::Percentiles>,
}

/// Sends one message, waiting while librdkafka's local queue is full.
pub fn send_blocking<C: ProducerContext>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(5));
                record = back;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Sends every record of `source` to the telemetry topic, paced by `speed`, until the input
/// ends or `stop` is set; then waits for what was sent to be acknowledged.
pub fn produce(
    cfg: &KafkaConfig,
    mut source: Box<dyn RecordSource>,
    speed: f64,
    batch: usize,
    stop: &AtomicBool,
) -> Result<ProduceStats, BrokerError> {
    let deliveries = Arc::new(Deliveries::default());
    let producer = replay_producer(cfg, &deliveries)?;
    let topic = &cfg.topics.telemetry.name;
    tracing::info!("producing to {topic} on {}", cfg.brokers);
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();
    let mut stats = ProduceStats::default();
    let mut clock = None;
    let mut session_start = None;
    let mut buf: Vec<Ingest> = Vec::with_capacity(batch);
    let mut payload = Vec::with_capacity(512);
    'input: loop {
        let more = source.fill(&mut buf, batch);
        for item in buf.drain(..) {
            let Ingest::Record(s) = item else {
                stats.skipped_dead_letters += 1;
                continue;
            };
            while let Some(wait) = due_in(&Ingest::Record(s), &mut clock, speed) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                producer.poll(wait.min(Duration::from_millis(50)));
            }
            if stop.load(Ordering::Relaxed) {
                stats.interrupted = true;
                break 'input;
            }
            if stats.first_event_ms.is_none() {
                stats.first_event_ms = Some(s.ts_ms);
                stats.pacing_origin_wall = Some(std::time::SystemTime::now());
            }
            let start = *session_start.get_or_insert(s.ts_ms);
            payload.clear();
            serde_json::to_writer(&mut payload, &TelemetryMessage::new(&s, start))?;
            let key = s.driver.as_str().as_bytes();
            send_blocking(
                &producer,
                BaseRecord::with_opaque_to(topic, deliveries.sent_at())
                    .key(key)
                    .payload(&payload[..]),
            )
            .map_err(|source| BrokerError::Client {
                doing: format!("producing to {topic}"),
                source,
            })?;
            deliveries.gaps.sent();
            stats.messages += 1;
            stats.bytes += payload.len() as u64;
            if stats.messages % 1024 == 0 {
                producer.poll(Duration::ZERO);
                if tty && last_progress.elapsed() > Duration::from_millis(250) {
                    last_progress = Instant::now();
                    let secs = started.elapsed().as_secs_f64();
                    eprint!(
                        "\r  produced {:>10} messages  {:>9.0} msg/s  acked {:>10}",
                        stats.messages,
                        stats.messages as f64 / secs,
                        deliveries.acked.load(Ordering::Relaxed)
                    );
                }
            }
        }
        if !more {
            break;
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(client_error(format!("flushing to {}", cfg.brokers)))?;
    if tty {
        eprintln!();
    }
    stats.delivered(&deliveries, started);
    let _ = std::io::stderr().flush();
    Ok(stats)
}

/// The replay's producer, counting what the broker acknowledges into `deliveries`.
fn replay_producer(
    cfg: &KafkaConfig,
    deliveries: &Arc<Deliveries>,
) -> Result<BaseProducer<CountingContext>, BrokerError> {
    let mut pcfg = cfg.producer_config(&cfg.producer);
    // A replay gives up on a message after two minutes rather than never ending.
    if cfg.producer.message_timeout_ms == 0 && !cfg.has_property("message.timeout.ms") {
        pcfg.set("message.timeout.ms", "120000");
    }
    pcfg.create_with_context(CountingContext(deliveries.clone()))
        .map_err(client_error(format!("kafka producer for {}", cfg.brokers)))
}

impl ProduceStats {
    /// What the broker made of the messages sent, once they are all acknowledged or failed.
    fn delivered(&mut self, deliveries: &Deliveries, started: Instant) {
        self.acknowledged = deliveries.acked.load(Ordering::Relaxed);
        self.failed = deliveries.failed.load(Ordering::Relaxed);
        self.longest_ack_gap = deliveries.gaps.longest();
        self.ack_latency_ms = deliveries.ack_latency();
        self.seconds = started.elapsed().as_secs_f64();
        self.messages_per_second = self.messages as f64 / self.seconds.max(1e-9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgement_latencies_come_from_the_histogram_in_tenths_of_a_ms() {
        let d = Deliveries::default();
        assert!(d.ack_latency().is_none());
        // 98 messages at 2.0 ms, one at 7.3 ms, one past the last bucket.
        d.ack_latency[20].fetch_add(98, Ordering::Relaxed);
        d.ack_latency[73].fetch_add(1, Ordering::Relaxed);
        d.ack_latency[ACK_BUCKETS - 1].fetch_add(1, Ordering::Relaxed);
        let p = d.ack_latency().unwrap();
        assert_eq!(p.count, 100);
        assert_eq!(p.p50, 2.05);
        assert_eq!(p.p95, 2.05);
        assert_eq!(p.p99, 7.35);
        assert_eq!(p.max, (ACK_BUCKETS as f64 - 0.5) / 10.0);
    }
}
