//! The engine's Kafka sinks: alerts (partition by severity, key alert id), window aggregates
//! (key driver), dead letters (original bytes, reason in headers) and the race views: laps and
//! pit stops (key `DRIVER:LAP`, `DRIVER:LAP:pit`), predictions (key model type), and car health
//! and retirements (alerts, on their severity's partition).
//!
//! The race views send differential updates, as a changelog (`changelog.rs`): each epoch's
//! updates wait until the epoch is complete, consolidated; a row's version inserted at the
//! epoch is then sent under its key, and a row only retracted becomes a tombstone (the key and
//! a null value) on the laps and alerts topics, or the prediction marked `retracted: true` on
//! the predictions topic, whose key (the model) is shared by every driver. The latest value per
//! key is then the current row, and the topics can be compacted.
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
use super::changelog::Changelog;
use super::produce::send_blocking;
use super::redo::{Message as Kept, Redo};
use super::timing::AlertTimings;
use super::{client_error, BrokerError, KafkaConfig};
use crate::format::messages::AlertMessage;
use crate::format::race::{LapMessage, PitStopMessage, PredictionMessage};
use pitwall_dataflows::alert::{Alert, Severity};
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::race::RaceItem;
use pitwall_dataflows::DeadLetter;
use pitwall_dataflows::Output;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// A dead letter's original bytes are cut after this many (Kafka's default message size
/// limit is 1 MB, headers included).
const DEAD_LETTER_MAX_BYTES: usize = 512 * 1024;

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

/// The topic a race view's row goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RaceTopic {
    Laps,
    Predictions,
    Alerts,
}

/// A race view's row's key into `key`; its topic, and the alerts' partition.
fn race_key(key: &mut String, item: &RaceItem) -> (RaceTopic, Option<i32>) {
    let alert = |key: &mut String, a: Alert| {
        let _ = write!(key, "{}", a.alert_id);
        (RaceTopic::Alerts, Some(alerts_partition(a.severity)))
    };
    match item {
        RaceItem::Prediction(p) => {
            key.push_str(p.model.as_str());
            (RaceTopic::Predictions, None)
        }
        RaceItem::Lap(r) => {
            let d = &r.lap.done;
            let _ = write!(key, "{}:{}", d.driver, d.lap);
            (RaceTopic::Laps, None)
        }
        RaceItem::Pit(p) => {
            let _ = write!(key, "{}:{}:pit", p.stop.driver, p.stop.lap);
            (RaceTopic::Laps, None)
        }
        RaceItem::Health(h) => alert(key, h.alert()),
        RaceItem::Retirement(r) => alert(key, r.alert()),
    }
}

/// A race view's row as its message into `payload` (a prediction taken back says
/// `retracted`).
fn race_payload(payload: &mut Vec<u8>, item: &RaceItem, retracted: bool) {
    let _ = match item {
        RaceItem::Prediction(p) => {
            let mut m = PredictionMessage::new(p);
            m.retracted = retracted;
            serde_json::to_writer(payload, &m)
        }
        RaceItem::Lap(r) => serde_json::to_writer(payload, &LapMessage::new(r)),
        RaceItem::Pit(p) => serde_json::to_writer(payload, &PitStopMessage::new(p)),
        RaceItem::Health(h) => serde_json::to_writer(payload, &AlertMessage::new(&h.alert())),
        RaceItem::Retirement(r) => serde_json::to_writer(payload, &AlertMessage::new(&r.alert())),
    };
}

/// A race row's identity in the changelog: its key (laps, pit stops and alerts are keyed by
/// what they are), and for predictions, keyed by model, the driver and lap as well.
fn race_identity(item: &RaceItem, key: &str) -> String {
    match item {
        RaceItem::Prediction(p) => format!("{}:{}:{}", p.model.as_str(), p.driver, p.lap),
        _ => key.to_string(),
    }
}

/// A message to send again.
struct Retry {
    topic: String,
    partition: i32,
    key: Option<Vec<u8>>,
    /// `None` for a tombstone.
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    epoch: Epoch,
}

/// A process's sink state, shared by its workers: what is in flight, what to send again, and
/// the producers.
#[derive(Default)]
pub struct Deliveries {
    in_flight: Mutex<HashMap<Epoch, usize>>,
    retries: Mutex<Vec<Retry>>,
    pub acked: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub gaps: AckGaps,
    /// The batching producer and the alert producer, made by the first worker's sink and
    /// shared by the others: each librdkafka client is a few threads, connections and queues
    /// (memory), and a key's messages still come from the one worker that analyses it, in order.
    producers: Mutex<Option<SinkProducers>>,
    /// With transactions: what the open transaction holds (`redo.rs`).
    pub(super) redo: Mutex<Option<Redo>>,
    /// Bumped when the transactional producer is replaced (`replace_transactional_producer`):
    /// a sink holding an older one takes the new one, and the old one's reports are ignored.
    generation: AtomicU64,
}

pub(super) type SinkProducer = Arc<BaseProducer<SinkContext>>;

#[derive(Clone)]
struct SinkProducers {
    batched: SinkProducer,
    alerts: SinkProducer,
}

impl Deliveries {
    /// One more message of `epoch` in flight. Counted before it is handed to the producer:
    /// its acknowledgement may be served at once (by another worker polling the shared
    /// producer, or by the wait for room in a full queue), and must find it counted.
    pub(super) fn add_in_flight(&self, epoch: Epoch) {
        if let Ok(mut f) = self.in_flight.lock() {
            *f.entry(epoch).or_default() += 1;
        }
    }

    /// A message counted by `add_in_flight` is settled (acknowledged, or never sent).
    pub(super) fn settle(&self, epoch: Epoch) {
        if let Ok(mut f) = self.in_flight.lock() {
            if let Some(n) = f.get_mut(&epoch) {
                *n -= 1;
                if *n == 0 {
                    f.remove(&epoch);
                }
            }
        }
    }

    /// Whether some output of `epoch` waits for its acknowledgement.
    pub(super) fn waits_for(&self, epoch: Epoch) -> bool {
        self.in_flight
            .lock()
            .map(|f| f.contains_key(&epoch))
            .unwrap_or_default()
    }

    /// The process's one transactional producer, made (and its first transaction begun) on
    /// the first call; every sink of the process then sends through it.
    pub(super) fn transactional_producer(
        self: &Arc<Self>,
        cfg: &KafkaConfig,
    ) -> Result<SinkProducer, BrokerError> {
        let mut slot = self.producers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.batched.clone());
        }
        let producer = self.new_transactional_producer(cfg, 0)?;
        *self.redo.lock().unwrap_or_else(|e| e.into_inner()) = Some(Redo::default());
        *slot = Some(SinkProducers {
            batched: producer.clone(),
            alerts: producer.clone(),
        });
        Ok(producer)
    }

    /// A new transactional producer in place of one blocked in librdkafka: its
    /// `init_transactions` fences the old one (whose open transaction the broker aborts), and
    /// its first transaction is begun. The sinks send through it from their next message; the
    /// old one's outstanding messages are no longer waited for (the redo sends them again).
    pub(super) fn replace_transactional_producer(
        self: &Arc<Self>,
        cfg: &KafkaConfig,
    ) -> Result<SinkProducer, BrokerError> {
        let generation = self.generation.load(Ordering::Acquire) + 1;
        let producer = self.new_transactional_producer(cfg, generation)?;
        let mut slot = self.producers.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.store(generation, Ordering::Release);
        if let Ok(mut f) = self.in_flight.lock() {
            f.clear();
        }
        *slot = Some(SinkProducers {
            batched: producer.clone(),
            alerts: producer.clone(),
        });
        Ok(producer)
    }

    fn new_transactional_producer(
        self: &Arc<Self>,
        cfg: &KafkaConfig,
        generation: u64,
    ) -> Result<SinkProducer, BrokerError> {
        let doing = format!("transactional producer for {}", cfg.brokers);
        let producer: BaseProducer<SinkContext> = cfg
            .transactional_producer_config()
            .create_with_context(SinkContext {
                deliveries: Arc::downgrade(self),
                timings: AlertTimings::shared(cfg),
                retry: false,
                generation,
            })
            .map_err(client_error(doing.clone()))?;
        let timeout = Duration::from_millis(u64::from(cfg.transactions.timeout_ms));
        producer
            .init_transactions(timeout)
            .map_err(client_error(format!("{doing}: init_transactions")))?;
        producer
            .begin_transaction()
            .map_err(client_error(format!("{doing}: begin_transaction")))?;
        Ok(Arc::new(producer))
    }

    /// The producers' generation (bumped by `replace_transactional_producer`).
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current batching and alert producers, if made.
    fn producers_now(&self) -> Option<SinkProducers> {
        self.producers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the open transaction holds enough outputs to be committed before its interval
    /// is up (`redo.rs`): the memory kept to send them again stays bounded.
    pub(super) fn transaction_full(&self) -> bool {
        self.redo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(Redo::full)
    }

    /// Outputs handed to the producer and not yet acknowledged by the broker.
    pub fn in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .map(|f| f.values().sum())
            .unwrap_or_default()
    }
}

pub(super) struct SinkContext {
    /// Weak: `Deliveries` holds the producers, which hold this context.
    deliveries: Weak<Deliveries>,
    /// For the alert producer with `kafka.alert_timings`: acknowledgements are timed.
    timings: Option<Arc<AlertTimings>>,
    /// Send a failed message again. Not in a transaction: a failed message fails its
    /// transaction, and the run (a restart resumes from the last one committed).
    retry: bool,
    /// The producers' generation this one belongs to: once replaced, its reports are not
    /// counted (what it had in flight is sent again by the new one).
    generation: u64,
}

impl ClientContext for SinkContext {}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, epoch: usize) {
        let epoch = epoch as Epoch;
        let Some(deliveries) = self.deliveries.upgrade() else {
            return;
        };
        if deliveries.generation() != self.generation {
            return;
        }
        match result {
            Ok(m) => {
                if let (Some(t), Some(key)) = (&self.timings, m.key()) {
                    t.acknowledged(key);
                }
                deliveries.gaps.acknowledged();
                deliveries.acked.fetch_add(1, Ordering::Relaxed);
                deliveries.settle(epoch);
            }
            Err((e, m)) => {
                deliveries.failed_attempts.fetch_add(1, Ordering::Relaxed);
                deliveries.gaps.failed();
                if !self.retry {
                    // The transaction's commit fails with it: the committer sends it again
                    // in a new one, or the run ends (`transaction.rs`).
                    tracing::debug!("delivery to {} failed in a transaction: {e}", m.topic());
                    deliveries.settle(epoch);
                    return;
                }
                tracing::warn!("delivery to {} failed, sending again: {e}", m.topic());
                if let Ok(mut r) = deliveries.retries.lock() {
                    r.push(Retry {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                        headers: m.headers().map(|h| h.detach()),
                        epoch,
                    });
                }
            }
        }
    }
}

/// The process's producers, made on the first call.
fn sink_producers(
    cfg: &KafkaConfig,
    deliveries: &Arc<Deliveries>,
) -> Result<SinkProducers, BrokerError> {
    let mut slot = deliveries
        .producers
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = slot.as_ref() {
        return Ok(p.clone());
    }
    let make = |settings, timings, what: &str| {
        cfg.producer_config(settings)
            .create_with_context(SinkContext {
                deliveries: Arc::downgrade(deliveries),
                timings,
                retry: true,
                generation: 0,
            })
            .map(Arc::new)
            .map_err(client_error(format!("kafka {what} for {}", cfg.brokers)))
    };
    let made = SinkProducers {
        batched: make(&cfg.sink, None, "producer")?,
        alerts: make(&cfg.alert_sink, AlertTimings::shared(cfg), "alert producer")?,
    };
    *slot = Some(made.clone());
    Ok(made)
}

/// Produces the outputs of this worker; the returned stream carries no data, only the
/// frontier of what the broker has acknowledged.
pub fn kafka_sink<'scope>(
    outputs: Stream<'scope, Epoch, Vec<Output>>,
    cfg: &KafkaConfig,
    deliveries: Arc<Deliveries>,
) -> Result<Stream<'scope, Epoch, Vec<()>>, BrokerError> {
    let mut sender = Sender::new(cfg, deliveries)?;
    let scope = outputs.scope();
    Ok(
        outputs.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Pipeline,
            "KafkaSink",
            move |_initial, info| {
                let activator = scope.activator_for(info.address);
                // Epochs with outputs in flight, held until the broker acknowledges them all.
                let mut held: BTreeMap<Epoch, Capability<Epoch>> = BTreeMap::new();
                // Race view updates waiting for their epoch to complete, and its capability.
                let mut changelog: Changelog<RaceItem> = Changelog::default();
                let mut waiting: BTreeMap<Epoch, Capability<Epoch>> = BTreeMap::new();
                move |(input, frontier), _output| {
                    input.for_each(|cap, data| {
                        // A batch may carry several times: its least one covers them all.
                        let Some(&epoch) = cap.least() else { return };
                        let mut sent = 0usize;
                        for o in data.drain(..) {
                            match sender.output(epoch, o, &mut changelog) {
                                Sending::Sent => sent += 1,
                                Sending::Waiting => {
                                    if let Some(c) = cap.retain_least(0) {
                                        waiting.entry(epoch).or_insert(c);
                                    }
                                }
                                Sending::Nothing => {}
                            }
                        }
                        if sent > 0 {
                            if let Some(c) = cap.retain_least(0) {
                                held.entry(epoch).or_insert(c);
                            }
                        }
                    });
                    for (epoch, updates) in changelog.release(|e| !frontier.less_equal(&e)) {
                        if sender.send_epoch(epoch, &updates, false) {
                            if let Some(c) = waiting.get(&epoch) {
                                held.entry(epoch).or_insert_with(|| c.clone());
                            }
                        }
                    }
                    waiting.retain(|e, _| frontier.less_equal(e));
                    sender.poll_and_retry();
                    held.retain(|epoch, _| sender.deliveries.waits_for(*epoch));
                    if !held.is_empty() || !frontier.is_empty() && sender.in_flight() > 0 {
                        // An alert's acknowledgement is seen within 1 ms; windows' batches are
                        // 10 ms apart anyway.
                        activator.activate_after(Duration::from_millis(1));
                    }
                }
            },
        ),
    )
}

/// A value's fingerprint (which value a row holds, not a secret).
fn fingerprint(payload: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

/// What became of one output.
pub(super) enum Sending {
    /// Handed to a producer: the epoch waits for its acknowledgement.
    Sent,
    /// A race view's update, held in the changelog until its epoch is complete.
    Waiting,
    /// Nothing to send (progress, totals) or a send that failed (logged).
    Nothing,
}

/// One worker's side of the sink: the two producers, the topics' names and the buffers a
/// message is written into (reused: no allocation per output).
pub(super) struct Sender {
    producer: SinkProducer,
    alert_producer: SinkProducer,
    timings: Option<Arc<AlertTimings>>,
    deliveries: Arc<Deliveries>,
    alerts: String,
    windows: String,
    dead: String,
    predictions: String,
    laps: String,
    payload: Vec<u8>,
    key: String,
    /// Per race row (by identity), a fingerprint of the value a consumer folding its topic
    /// holds now: a row sent again unchanged (taken back and put back at a later epoch, or
    /// rebuilt by a restart's replay) is not sent twice.
    latest: HashMap<String, u64>,
    /// Every message is also kept for the open transaction's redo (transactions on).
    transactional: bool,
    /// The generation of the producers held (`Deliveries::replace_transactional_producer`).
    generation: u64,
}

impl Sender {
    pub(super) fn new(
        cfg: &KafkaConfig,
        deliveries: Arc<Deliveries>,
    ) -> Result<Sender, BrokerError> {
        let SinkProducers {
            batched: producer,
            alerts: alert_producer,
        } = sink_producers(cfg, &deliveries)?;
        Ok(Sender {
            producer,
            alert_producer,
            timings: AlertTimings::shared(cfg),
            alerts: cfg.topics.alerts.name.clone(),
            windows: cfg.topics.windows.name.clone(),
            dead: cfg.topics.dead_letters.name.clone(),
            predictions: cfg.topics.predictions.name.clone(),
            laps: cfg.topics.laps.name.clone(),
            payload: Vec::with_capacity(1024),
            key: String::with_capacity(64),
            latest: HashMap::new(),
            transactional: deliveries
                .redo
                .lock()
                .map(|r| r.is_some())
                .unwrap_or_default(),
            generation: deliveries.generation(),
            deliveries,
        })
    }

    /// Takes the process's current producers if they were replaced since this sender took
    /// its own (a transactional producer blocked in librdkafka).
    pub(super) fn refresh(&mut self) {
        let generation = self.deliveries.generation();
        if generation == self.generation {
            return;
        }
        if let Some(p) = self.deliveries.producers_now() {
            self.producer = p.batched;
            self.alert_producer = p.alerts;
            self.generation = generation;
        }
    }

    /// Sends `m` through `to`; with transactions it is also kept until its transaction
    /// commits (sent again if the transaction must be aborted).
    fn send(&self, to: &SinkProducer, m: Kept<'_>) -> KafkaResult<()> {
        if self.transactional {
            if let Some(redo) = self
                .deliveries
                .redo
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
            {
                redo.push(&m);
            }
            if self.deliveries.generation() != self.generation {
                // Replaced since this sender's last refresh: never send on the fenced one.
                if let Some(p) = self.deliveries.producers_now() {
                    return send_blocking(&*p.batched, m.record());
                }
            }
        }
        send_blocking(&**to, m.record())
    }

    /// A send that failed: with transactions its message is kept for the redo (the producer
    /// refuses sends while its transaction must be aborted), so it is not lost.
    fn send_failed(&self, epoch: Epoch, what: std::fmt::Arguments<'_>, e: &KafkaError) {
        self.deliveries.settle(epoch);
        if self.transactional {
            tracing::debug!("{what}: {e} (sent again with the transaction's redo)");
        } else {
            tracing::error!("{what}: {e}");
        }
    }

    /// Sends an output, or holds a race view's update in `changelog` (`send_epoch` sends it
    /// once its epoch is complete).
    pub(super) fn output(
        &mut self,
        epoch: Epoch,
        o: Output,
        changelog: &mut Changelog<RaceItem>,
    ) -> Sending {
        if let Output::Race(u) = o {
            changelog.push(epoch, u.item, u.diff);
            return Sending::Waiting;
        }
        let o = &o;
        self.payload.clear();
        self.key.clear();
        self.deliveries.add_in_flight(epoch);
        let result = match o {
            Output::Alert(a) => {
                write_alert(&mut self.payload, &mut self.key, a);
                if let Some(t) = &self.timings {
                    t.sent(a);
                }
                let m = Kept {
                    topic: &self.alerts,
                    partition: Some(alerts_partition(a.severity)),
                    key: Some(self.key.as_bytes()),
                    payload: Some(&self.payload),
                    headers: None,
                    epoch,
                };
                self.send(&self.alert_producer, m)
            }
            Output::Window(w) => {
                let _ = serde_json::to_writer(&mut self.payload, w);
                let m = Kept {
                    topic: &self.windows,
                    partition: None,
                    key: Some(w.driver.as_str().as_bytes()),
                    payload: Some(&self.payload),
                    headers: None,
                    epoch,
                };
                self.send(&self.producer, m)
            }
            Output::DeadLetter(d) => self.send_dead_letter(epoch, d),
            Output::Race(_) | Output::Progress { .. } | Output::DriverTotals(_) => {
                self.deliveries.settle(epoch);
                return Sending::Nothing;
            }
        };
        match result {
            Ok(()) => {
                self.deliveries.gaps.sent();
                Sending::Sent
            }
            Err(e) => {
                self.send_failed(epoch, format_args!("producing {o:?}"), &e);
                Sending::Nothing
            }
        }
    }

    /// A dead letter: the raw bytes, and where they came from and why in headers.
    fn send_dead_letter(&self, epoch: Epoch, d: &DeadLetter) -> KafkaResult<()> {
        let position = d.position.to_string();
        let partition = d.partition.map(|p| p.to_string()).unwrap_or_default();
        let field = d.field.clone().unwrap_or_default();
        let mut headers = OwnedHeaders::new();
        for (key, value) in [
            ("pitwall.origin", d.origin.as_str()),
            ("pitwall.partition", partition.as_str()),
            ("pitwall.offset", position.as_str()),
            ("pitwall.field", field.as_str()),
            ("pitwall.reason", d.reason.as_str()),
            ("pitwall.detail", d.detail.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        // A message at the broker's size limit would not fit with the headers (and in a
        // transaction, would fail it at every restart): the rest is cut, its length told.
        let raw = &d.raw[..d.raw.len().min(DEAD_LETTER_MAX_BYTES)];
        if raw.len() < d.raw.len() {
            let length = d.raw.len().to_string();
            headers = headers.insert(Header {
                key: "pitwall.truncated_from",
                value: Some(length.as_str()),
            });
        }
        let m = Kept {
            topic: &self.dead,
            partition: None,
            key: None,
            payload: Some(raw),
            headers: Some(&headers),
            epoch,
        };
        self.send(&self.producer, m)
    }

    /// One complete epoch's race view updates, consolidated (`Changelog::release`): each
    /// row inserted is sent unless its topic already holds that value; each row only retracted
    /// is taken back (a tombstone, or on the predictions topic the prediction marked
    /// retracted). With `replayed` (an epoch an earlier run committed, rebuilt by a restart's
    /// replay) nothing is sent: the values are only remembered as the ones the topics hold.
    /// `true` if something is in flight for `epoch`.
    pub(super) fn send_epoch(
        &mut self,
        epoch: Epoch,
        updates: &[(RaceItem, i64)],
        replayed: bool,
    ) -> bool {
        let mut sent = false;
        // The rows of the epoch already dealt with: inserted, or taken back.
        let mut done = HashSet::new();
        let inserted = updates.iter().filter(|u| u.1 > 0);
        let retracted = updates.iter().filter(|u| u.1 < 0);
        for (item, diff) in inserted.chain(retracted) {
            let insert = *diff > 0;
            self.key.clear();
            let (topic, partition) = race_key(&mut self.key, item);
            let id = race_identity(item, &self.key);
            // A row's old version, retracted in the epoch that inserted its new one, is not
            // serialised at all.
            if done.contains(&id) {
                continue;
            }
            // A tombstone has no payload; a prediction taken back says so in its own.
            let with_payload = insert || topic == RaceTopic::Predictions;
            self.payload.clear();
            if insert || (with_payload && !replayed) {
                race_payload(&mut self.payload, item, !insert);
            }
            if insert {
                let print = fingerprint(&self.payload);
                let held = self.latest.insert(id.clone(), print) == Some(print);
                done.insert(id);
                if held {
                    continue;
                }
            } else {
                self.latest.remove(&id);
                done.insert(id);
            }
            if !replayed {
                sent |= self.send_row(epoch, topic, partition, with_payload);
            }
        }
        sent
    }

    /// Sends the race row in the key and payload buffers (no payload: a tombstone) to its
    /// topic; `true` once it is in flight.
    fn send_row(
        &mut self,
        epoch: Epoch,
        topic: RaceTopic,
        partition: Option<i32>,
        with_payload: bool,
    ) -> bool {
        let topic_name = match topic {
            RaceTopic::Laps => &self.laps,
            RaceTopic::Predictions => &self.predictions,
            RaceTopic::Alerts => &self.alerts,
        };
        self.deliveries.add_in_flight(epoch);
        let m = Kept {
            topic: topic_name,
            partition,
            key: Some(self.key.as_bytes()),
            payload: with_payload.then_some(&self.payload[..]),
            headers: None,
            epoch,
        };
        // Only alerts name their partition (their severity's).
        let to = match partition {
            Some(_) => &self.alert_producer,
            None => &self.producer,
        };
        match self.send(to, m) {
            Ok(()) => {
                self.deliveries.gaps.sent();
                true
            }
            Err(e) => {
                let what = format_args!("sending a race row to {topic_name}");
                self.send_failed(epoch, what, &e);
                false
            }
        }
    }

    /// Serves the producers' delivery reports, then sends again what they reported failed
    /// with an error worth retrying.
    pub(super) fn poll_and_retry(&self) {
        self.producer.poll(Duration::ZERO);
        self.alert_producer.poll(Duration::ZERO);
        let retries = self
            .deliveries
            .retries
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        for r in retries {
            let mut record =
                BaseRecord::with_opaque_to(&r.topic, r.epoch as usize).partition(r.partition);
            if let Some(p) = &r.payload {
                record = record.payload(&p[..]);
            }
            if let Some(k) = &r.key {
                record = record.key(&k[..]);
            }
            if let Some(h) = r.headers {
                record = record.headers(h);
            }
            let to = if r.topic == self.alerts {
                &self.alert_producer
            } else {
                &self.producer
            };
            match send_blocking(&**to, record) {
                Ok(()) => self.deliveries.gaps.sent(),
                Err(e) => tracing::error!("sending again to {}: {e}", r.topic),
            }
        }
    }

    fn in_flight(&self) -> i32 {
        self.producer.in_flight_count() + self.alert_producer.in_flight_count()
    }
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
