//! The engine's Kafka sinks: alerts (partition by severity, key alert id), window aggregates
//! (key driver), dead letters (original bytes, reason in headers) and the race views: laps and
//! pit stops (key `DRIVER:LAP`, `DRIVER:LAP:pit`), predictions (key model type), and car health
//! and retirements (alerts, on their severity's partition).
//!
//! The race views send differential updates. Only insertions are produced: a changed row comes
//! as a retraction of the old version and an insertion of the new one, and the insertion, on
//! the same key, supersedes the old message for a consumer keeping the latest value per key
//! (the laps topic can be compacted).
//!
//! Alerts (everything on the alerts topic) have a producer of their own that sends at once
//! (`[kafka.alert_sink]`, linger 0), so an alert never waits for a batch of windows to fill or
//! behind one in flight; the rest is batched (`[kafka.sink]`). One producer per topic keeps each
//! partition's order as emitted.
//!
//! Each worker produces what its own operators emitted. The operator keeps a timely
//! capability for every epoch whose messages are not all acknowledged yet, so the probe after
//! it marks what is durable; the Kafka source commits offsets only up to there. Deliveries
//! that fail are sent again; the broker being away only delays them (no message timeout).

use super::acks::AckGaps;
use super::produce::send_blocking;
use super::timing::AlertTimings;
use super::{client_error, BrokerError, KafkaConfig};
use crate::format::messages::AlertMessage;
use crate::format::race::{LapMessage, PitStopMessage, PredictionMessage};
use pitwall_dataflows::alert::{Alert, Severity};
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::race::RaceItem;
use pitwall_dataflows::Output;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// Partition of the alerts topic a severity is routed to (the topic has one per severity).
pub fn alerts_partition(severity: Severity) -> i32 {
    match severity {
        Severity::High => 0,
        Severity::Medium => 1,
        Severity::Low => 2,
    }
}

/// An alert's message into the reused payload and key buffers: its JSON, keyed by its id.
fn write_alert(payload: &mut Vec<u8>, key: &mut String, a: &Alert) {
    let _ = serde_json::to_writer(payload, &AlertMessage::new(a));
    let _ = write!(key, "{}", a.alert_id);
}

/// A message to send again.
struct Retry {
    topic: String,
    partition: i32,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
    epoch: Epoch,
}

#[derive(Default)]
pub struct Deliveries {
    in_flight: Mutex<HashMap<Epoch, usize>>,
    retries: Mutex<Vec<Retry>>,
    pub acked: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub gaps: AckGaps,
}

impl Deliveries {
    /// Outputs handed to the producer and not yet acknowledged by the broker.
    pub fn in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .map(|f| f.values().sum())
            .unwrap_or_default()
    }
}

struct SinkContext {
    deliveries: Arc<Deliveries>,
    /// For the alert producer with `kafka.alert_timings`: acknowledgements are timed.
    timings: Option<Arc<AlertTimings>>,
}

impl ClientContext for SinkContext {}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, epoch: usize) {
        let epoch = epoch as Epoch;
        let deliveries = &self.deliveries;
        match result {
            Ok(m) => {
                if let (Some(t), Some(key)) = (&self.timings, m.key()) {
                    t.acknowledged(key);
                }
                deliveries.gaps.acknowledged();
                deliveries.acked.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = deliveries.in_flight.lock() {
                    if let Some(n) = f.get_mut(&epoch) {
                        *n -= 1;
                        if *n == 0 {
                            f.remove(&epoch);
                        }
                    }
                }
            }
            Err((e, m)) => {
                deliveries.failed_attempts.fetch_add(1, Ordering::Relaxed);
                deliveries.gaps.failed();
                tracing::warn!("delivery to {} failed, sending again: {e}", m.topic());
                if let Ok(mut r) = deliveries.retries.lock() {
                    r.push(Retry {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().unwrap_or_default().to_vec(),
                        headers: m.headers().map(|h| h.detach()),
                        epoch,
                    });
                }
            }
        }
    }
}

/// Produces the outputs of this worker; the returned stream carries no data, only the
/// frontier of what the broker has acknowledged.
pub fn kafka_sink<'scope>(
    outputs: Stream<'scope, Epoch, Vec<Output>>,
    cfg: &KafkaConfig,
    deliveries: Arc<Deliveries>,
) -> Result<Stream<'scope, Epoch, Vec<()>>, BrokerError> {
    let producer: BaseProducer<SinkContext> = cfg
        .producer_config(&cfg.sink)
        .create_with_context(SinkContext {
            deliveries: deliveries.clone(),
            timings: None,
        })
        .map_err(client_error(format!("kafka producer for {}", cfg.brokers)))?;
    let timings = AlertTimings::shared(cfg);
    let alert_producer: BaseProducer<SinkContext> = cfg
        .producer_config(&cfg.alert_sink)
        .create_with_context(SinkContext {
            deliveries: deliveries.clone(),
            timings: timings.clone(),
        })
        .map_err(client_error(format!(
            "kafka alert producer for {}",
            cfg.brokers
        )))?;
    let alerts = cfg.topics.alerts.name.clone();
    let windows = cfg.topics.windows.name.clone();
    let dead = cfg.topics.dead_letters.name.clone();
    let predictions = cfg.topics.predictions.name.clone();
    let laps = cfg.topics.laps.name.clone();
    let scope = outputs.scope();
    Ok(
        outputs.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Pipeline,
            "KafkaSink",
            move |_initial, info| {
                let activator = scope.activator_for(info.address);
                let mut held: BTreeMap<Epoch, Capability<Epoch>> = BTreeMap::new();
                let mut payload = Vec::with_capacity(1024);
                let mut key = String::with_capacity(64);
                move |(input, frontier), _output| {
                    input.for_each(|cap, data| {
                        // A batch may carry several times: its least one covers them all.
                        let Some(&epoch) = cap.least() else { return };
                        let mut sent = 0usize;
                        for o in data.drain(..) {
                            payload.clear();
                            key.clear();
                            let result = match &o {
                                Output::Alert(a) => {
                                    write_alert(&mut payload, &mut key, a);
                                    let record =
                                        BaseRecord::with_opaque_to(&alerts, epoch as usize)
                                            .partition(alerts_partition(a.severity))
                                            .key(key.as_bytes())
                                            .payload(&payload[..]);
                                    if let Some(t) = &timings {
                                        t.sent(a);
                                    }
                                    send_blocking(&alert_producer, record)
                                }
                                Output::Window(w) => {
                                    let _ = serde_json::to_writer(&mut payload, w);
                                    let record =
                                        BaseRecord::with_opaque_to(&windows, epoch as usize)
                                            .key(w.driver.as_str().as_bytes())
                                            .payload(&payload[..]);
                                    send_blocking(&producer, record)
                                }
                                Output::DeadLetter(d) => {
                                    let position = d.position.to_string();
                                    let partition =
                                        d.partition.map(|p| p.to_string()).unwrap_or_default();
                                    let field = d.field.clone().unwrap_or_default();
                                    let headers = OwnedHeaders::new()
                                        .insert(Header {
                                            key: "pitwall.origin",
                                            value: Some(d.origin.as_str()),
                                        })
                                        .insert(Header {
                                            key: "pitwall.partition",
                                            value: Some(partition.as_str()),
                                        })
                                        .insert(Header {
                                            key: "pitwall.offset",
                                            value: Some(position.as_str()),
                                        })
                                        .insert(Header {
                                            key: "pitwall.field",
                                            value: Some(field.as_str()),
                                        })
                                        .insert(Header {
                                            key: "pitwall.reason",
                                            value: Some(d.reason.as_str()),
                                        })
                                        .insert(Header {
                                            key: "pitwall.detail",
                                            value: Some(d.detail.as_str()),
                                        });
                                    let record = BaseRecord::with_opaque_to(&dead, epoch as usize)
                                        .payload(&d.raw[..])
                                        .headers(headers);
                                    send_blocking(&producer, record)
                                }
                                Output::Race(u) if u.diff > 0 => {
                                    let (topic, partition) = match &u.item {
                                        RaceItem::Prediction(p) => {
                                            let _ = serde_json::to_writer(
                                                &mut payload,
                                                &PredictionMessage::new(p),
                                            );
                                            key.push_str(p.model.as_str());
                                            (&predictions, None)
                                        }
                                        RaceItem::Lap(r) => {
                                            let _ = serde_json::to_writer(
                                                &mut payload,
                                                &LapMessage::new(r),
                                            );
                                            let d = &r.lap.done;
                                            let _ = write!(key, "{}:{}", d.driver, d.lap);
                                            (&laps, None)
                                        }
                                        RaceItem::Pit(p) => {
                                            let _ = serde_json::to_writer(
                                                &mut payload,
                                                &PitStopMessage::new(p),
                                            );
                                            let _ =
                                                write!(key, "{}:{}:pit", p.stop.driver, p.stop.lap);
                                            (&laps, None)
                                        }
                                        RaceItem::Health(h) => {
                                            let a = h.alert();
                                            write_alert(&mut payload, &mut key, &a);
                                            (&alerts, Some(alerts_partition(a.severity)))
                                        }
                                        RaceItem::Retirement(r) => {
                                            let a = r.alert();
                                            write_alert(&mut payload, &mut key, &a);
                                            (&alerts, Some(alerts_partition(a.severity)))
                                        }
                                    };
                                    let record = BaseRecord::with_opaque_to(topic, epoch as usize)
                                        .key(key.as_bytes())
                                        .payload(&payload[..]);
                                    // Only alerts name their partition (their severity's).
                                    match partition {
                                        Some(p) => {
                                            send_blocking(&alert_producer, record.partition(p))
                                        }
                                        None => send_blocking(&producer, record),
                                    }
                                }
                                // A retraction is not sent: a changed row comes as a
                                // retraction of the old version and an insertion of the new
                                // one, and that insertion supersedes the old message (same
                                // key on the laps and alerts topics; same driver, lap and
                                // model on the predictions topic).
                                Output::Race(_) => continue,
                                Output::Progress { .. }
                                | Output::DriverTotals(_)
                                | Output::Lap(_)
                                | Output::PitStop(_)
                                | Output::CarStop(..) => continue,
                            };
                            match result {
                                Ok(()) => {
                                    deliveries.gaps.sent();
                                    sent += 1
                                }
                                Err(e) => tracing::error!("producing {o:?}: {e}"),
                            }
                        }
                        if sent > 0 {
                            if let Ok(mut f) = deliveries.in_flight.lock() {
                                *f.entry(epoch).or_default() += sent;
                            }
                            if let Some(c) = cap.retain_least(0) {
                                held.entry(epoch).or_insert(c);
                            }
                        }
                    });
                    producer.poll(Duration::ZERO);
                    alert_producer.poll(Duration::ZERO);
                    let retries = deliveries
                        .retries
                        .lock()
                        .map(|mut r| std::mem::take(&mut *r))
                        .unwrap_or_default();
                    for r in retries {
                        let mut record = BaseRecord::with_opaque_to(&r.topic, r.epoch as usize)
                            .partition(r.partition)
                            .payload(&r.payload[..]);
                        if let Some(k) = &r.key {
                            record = record.key(&k[..]);
                        }
                        if let Some(h) = r.headers {
                            record = record.headers(h);
                        }
                        let to = if r.topic == alerts {
                            &alert_producer
                        } else {
                            &producer
                        };
                        match send_blocking(to, record) {
                            Ok(()) => deliveries.gaps.sent(),
                            Err(e) => tracing::error!("sending again to {}: {e}", r.topic),
                        }
                    }
                    if let Ok(in_flight) = deliveries.in_flight.lock() {
                        held.retain(|epoch, _| in_flight.contains_key(epoch));
                    }
                    let in_flight = producer.in_flight_count() + alert_producer.in_flight_count();
                    if !held.is_empty() || !frontier.is_empty() && in_flight > 0 {
                        // An alert's acknowledgement is seen within 1 ms; windows' batches are
                        // 10 ms apart anyway.
                        activator.activate_after(Duration::from_millis(1));
                    }
                }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_route_to_partitions() {
        assert_eq!(alerts_partition(Severity::High), 0);
        assert_eq!(alerts_partition(Severity::Medium), 1);
        assert_eq!(alerts_partition(Severity::Low), 2);
    }
}
