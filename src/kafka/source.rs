//! The engine's Kafka source: each timely worker reads its share of the telemetry topic's
//! partitions (`partition % peers == worker index`), in batches from a `BaseConsumer`.
//!
//! Offsets are committed to the engine's group only once every output derived from them has
//! been acknowledged by the broker: the sinks hold their timely capabilities until their
//! deliveries are acknowledged, and a probe after them says which epochs are durable. The
//! committed offset is the next one to read. After a restart, with `rebuild_state`, each
//! partition is read again from its start: records below the committed offset only rebuild
//! the detectors' state (their outputs were delivered before), so the run goes on exactly as
//! if it had never stopped, re-sending at most what was delivered but not yet committed, with
//! the same alert ids.

use super::admin::partition_count;
use super::lag::{LagContext, LAG_INTERVAL_MS};
use super::timing::AlertTimings;
use super::{client_error, BrokerError, KafkaConfig};
use crate::format::messages::parse_telemetry;
use crate::ingest::{give_in_epochs, EpochClock};
use crate::metrics::{ConsumerLag, PartitionLabels};
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::{DeadLetter, Ingest};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::{Scope, Stream};

/// Records handed to the dataflow in one activation.
struct Handed {
    /// The epoch they were handed at (the latest of them).
    epoch: Epoch,
    records: usize,
    /// Next offset to read per partition after them.
    offsets: Vec<(i32, i64)>,
}

/// Records of `handed` (oldest first) at epochs before `current`.
fn in_dataflow_before(handed: &VecDeque<Handed>, current: Epoch) -> usize {
    handed
        .iter()
        .take_while(|h| h.epoch < current)
        .map(|h| h.records)
        .sum()
}

/// One worker's consumer and its offsets.
pub struct KafkaReader {
    consumer: BaseConsumer<LagContext>,
    topic: String,
    /// Next offset to read, per assigned partition.
    next: BTreeMap<i32, i64>,
    /// Offsets below these were committed before this run: replayed for state only.
    replay_until: BTreeMap<i32, i64>,
    /// What is in the dataflow and not yet through its sinks, oldest first.
    uncommitted: VecDeque<Handed>,
    committed: BTreeMap<i32, i64>,
    /// The same commits, shared with whoever reports them (a lost peer, a forced stop).
    board: Option<CommitBoard>,
    pub replayed: u64,
    pub consumed: u64,
    offsets_gauge: Option<Family<PartitionLabels, Gauge>>,
    /// Notes each sample's arrival for the latency breakdown (`bench kafka`).
    timings: Option<Arc<AlertTimings>>,
    /// `kafka.consumer.max_in_dataflow`.
    max_in_dataflow: usize,
}

impl KafkaReader {
    /// `offsets_gauge`, when given, is kept at the next offset of each assigned partition, and
    /// `lag` at each partition's consumer lag.
    pub fn open(
        cfg: &KafkaConfig,
        worker: usize,
        peers: usize,
        offsets_gauge: Option<Family<PartitionLabels, Gauge>>,
        lag: Option<Arc<ConsumerLag>>,
    ) -> Result<KafkaReader, BrokerError> {
        let mut config = cfg.consumer_config(&cfg.group_id);
        if lag.is_some() {
            config.set("statistics.interval.ms", LAG_INTERVAL_MS.to_string());
        }
        let consumer: BaseConsumer<LagContext> = config
            .create_with_context(LagContext { lag })
            .map_err(client_error(format!("kafka consumer for {}", cfg.brokers)))?;
        let topic = cfg.topics.telemetry.name.clone();
        let partitions: Vec<i32> = (0..partition_count(&consumer, &topic, &cfg.brokers)?)
            .filter(|p| *p as usize % peers == worker)
            .collect();
        let mut wanted = TopicPartitionList::new();
        for &p in &partitions {
            wanted.add_partition(&topic, p);
        }
        let committed_list = if partitions.is_empty() {
            TopicPartitionList::new()
        } else {
            committed_offsets(&consumer, &wanted).map_err(client_error(format!(
                "committed offsets of group {} on {topic}",
                cfg.group_id
            )))?
        };
        let mut committed = BTreeMap::new();
        for e in committed_list.elements() {
            if let Offset::Offset(o) = e.offset() {
                committed.insert(e.partition(), o);
            }
        }
        let mut assignment = TopicPartitionList::new();
        let mut replay_until = BTreeMap::new();
        let mut next = BTreeMap::new();
        for &p in &partitions {
            let resume = committed.get(&p).copied();
            let start = match resume {
                Some(o) if cfg.rebuild_state => {
                    replay_until.insert(p, o);
                    Offset::Beginning
                }
                Some(o) => Offset::Offset(o),
                None => Offset::Beginning,
            };
            next.insert(p, resume.unwrap_or(0));
            assignment
                .add_partition_offset(&topic, p, start)
                .map_err(client_error(format!("assigning {topic}/{p}")))?;
        }
        consumer.assign(&assignment).map_err(client_error(format!(
            "assigning {topic} partitions {partitions:?}"
        )))?;
        tracing::info!(worker, ?partitions, ?committed, "kafka source assigned");
        Ok(KafkaReader {
            consumer,
            topic,
            next,
            replay_until,
            uncommitted: VecDeque::new(),
            committed,
            board: None,
            replayed: 0,
            consumed: 0,
            offsets_gauge,
            timings: AlertTimings::shared(cfg),
            max_in_dataflow: cfg.consumer.max_in_dataflow,
        })
    }

    pub fn has_partitions(&self) -> bool {
        !self.next.is_empty()
    }

    /// Takes up to `max` messages; returns how many arrived.
    fn poll(&mut self, out: &mut Vec<Ingest>, max: usize) -> usize {
        let mut got = 0;
        while got < max {
            let message = match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!("kafka source {}: {e}", self.topic);
                    break;
                }
                Some(Ok(m)) => m,
            };
            got += 1;
            let (p, offset) = (message.partition(), message.offset());
            self.next.insert(p, offset + 1);
            let replay = self
                .replay_until
                .get(&p)
                .is_some_and(|&until| offset < until);
            let payload = message.payload().unwrap_or_default();
            match parse_telemetry(payload) {
                Ok(s) if replay => {
                    self.replayed += 1;
                    out.push(Ingest::Replay(s));
                }
                Ok(s) => {
                    self.consumed += 1;
                    if let Some(t) = &self.timings {
                        let created = match message.timestamp() {
                            Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => ms,
                            Timestamp::NotAvailable => 0,
                        };
                        t.arrived(s.driver.as_str(), s.ts_ms, created);
                    }
                    out.push(Ingest::Record(s));
                }
                // Delivered to the dead-letter topic before the restart.
                Err(_) if replay => {}
                Err(e) => {
                    self.consumed += 1;
                    out.push(Ingest::Dead(Box::new(DeadLetter {
                        origin: self.topic.clone(),
                        partition: Some(p),
                        position: offset as u64,
                        field: Some(e.field.to_string()),
                        reason: e.reason,
                        detail: e.value,
                        raw: payload.to_vec(),
                    })));
                }
            }
        }
        got
    }

    /// Commits the offsets of every epoch the durable probe has passed.
    fn commit_durable(&mut self, durable: &ProbeHandle<Epoch>) {
        let mut latest = None;
        while let Some(handed) = self.uncommitted.front() {
            if durable.less_equal(&handed.epoch) {
                break;
            }
            latest = self.uncommitted.pop_front().map(|h| h.offsets);
        }
        if let Some(offsets) = latest {
            self.commit(offsets, CommitMode::Async);
        }
    }

    fn commit(&mut self, offsets: Vec<(i32, i64)>, mode: CommitMode) {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in offsets {
            if self.committed.get(&p) == Some(&o) {
                continue;
            }
            if tpl
                .add_partition_offset(&self.topic, p, Offset::Offset(o))
                .is_ok()
            {
                self.committed.insert(p, o);
                if let Some(board) = &self.board {
                    board.record(&self.topic, p, o);
                }
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, mode) {
                tracing::warn!("committing offsets on {}: {e}", self.topic);
            }
        }
    }

    /// Records handed over at epochs before `current` and not yet through the sinks. Those at
    /// `current` are left out: the source's own capability holds them back, so waiting for
    /// them would wait for ever.
    fn in_dataflow_before(&self, current: Epoch) -> usize {
        in_dataflow_before(&self.uncommitted, current)
    }

    /// Shares this reader's commits with `board` from now on.
    pub fn share_commits(&mut self, board: CommitBoard) {
        self.board = Some(board);
    }

    /// Commits everything read: called once the dataflow has delivered all its outputs.
    pub fn commit_all(&mut self) -> BTreeMap<i32, i64> {
        let offsets: Vec<(i32, i64)> = self.next.iter().map(|(p, o)| (*p, *o)).collect();
        self.uncommitted.clear();
        self.commit(offsets, CommitMode::Sync);
        self.committed.clone()
    }
}

/// The offsets this process's readers have committed, for a report written when the process
/// has to stop before its end (a lost peer, a forced stop).
#[derive(Clone, Debug, Default)]
pub struct CommitBoard {
    group: Arc<std::sync::Mutex<String>>,
    offsets: Arc<std::sync::Mutex<BTreeMap<(String, i32), i64>>>,
}

impl CommitBoard {
    /// A board for the commits of consumer group `group`.
    pub fn new(group: &str) -> CommitBoard {
        let board = CommitBoard::default();
        *board.group.lock().unwrap_or_else(|e| e.into_inner()) = group.to_string();
        board
    }

    fn record(&self, topic: &str, partition: i32, offset: i64) {
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        offsets.insert((topic.to_string(), partition), offset);
    }

    /// One sentence: what this process committed, per partition (next offset to read).
    pub fn describe(&self) -> String {
        let group = self.group.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        if offsets.is_empty() {
            return format!("This process had committed no Kafka offsets yet (group {group}): a restart reads its partitions from the group's last commit.");
        }
        let list: Vec<String> = offsets
            .iter()
            .map(|((topic, p), o)| format!("{topic}/{p}={o}"))
            .collect();
        format!(
            "Kafka offsets this process committed (group {group}, next to read): {}; a restart resumes from them.",
            list.join(" ")
        )
    }
}

/// When the Kafka source stops.
#[derive(Clone)]
pub struct StopWhen {
    /// No new message for this long (`--until-idle`).
    pub idle: Option<Duration>,
    /// SIGINT / SIGTERM.
    pub signal: Arc<AtomicBool>,
}

/// The group's committed offsets of `wanted`. A cluster's first consumer group makes its offsets
/// topic, and until that topic's partitions have leaders the group coordinator answers that it
/// is not ready: asked again for up to 60 s.
fn committed_offsets(
    consumer: &BaseConsumer<LagContext>,
    wanted: &TopicPartitionList,
) -> rdkafka::error::KafkaResult<TopicPartitionList> {
    use rdkafka::types::RDKafkaErrorCode::{
        CoordinatorLoadInProgress, CoordinatorNotAvailable, NotCoordinator,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match consumer.committed_offsets(wanted.clone(), Duration::from_secs(30)) {
            Err(e)
                if matches!(
                    e.rdkafka_error_code(),
                    Some(NotCoordinator | CoordinatorNotAvailable | CoordinatorLoadInProgress)
                ) && Instant::now() < deadline =>
            {
                tracing::info!("committed offsets: {e}; asking again");
                std::thread::sleep(Duration::from_millis(500));
            }
            result => return result,
        }
    }
}

/// How often an idle source looks again without being woken: for commits, `--until-idle` and
/// stop signals. A message arriving wakes it at once (librdkafka's queue callback).
const IDLE_RECHECK: Duration = Duration::from_millis(20);

/// How long a source waits with nothing arriving before it lets its last epoch complete.
const SETTLE_AFTER: Duration = Duration::from_millis(500);

/// The worker's share of the telemetry topic as a timely stream.
///
/// `batch` records are taken per activation; at most `kafka.consumer.max_in_dataflow` records
/// handed over at earlier epochs may be in the dataflow and not yet through the sinks (the
/// `durable` probe) before the source waits, so that a source faster than the analysis does
/// not pile records up in timely's channels.
///
/// Long for a reason: one timely source operator, whose state (capability, pacing, the
/// consumer's wake-ups) lives in its closure; its steps are the reader's methods.
pub fn kafka_ingest<'scope>(
    scope: Scope<'scope, Epoch>,
    reader: Rc<RefCell<KafkaReader>>,
    durable: ProbeHandle<Epoch>,
    stop: StopWhen,
    epoch_ms: i64,
    batch: usize,
    epochs: EpochClock,
) -> Stream<'scope, Epoch, Vec<Ingest>> {
    source(scope, "KafkaIngest", move |capability, info| {
        let waker = Mutex::new(scope.worker().sync_activator_for(info.address.to_vec()));
        let activator = scope.activator_for(info.address);
        // librdkafka calls this from its own thread when the consumer's queue goes from empty
        // to not empty: the worker wakes when a message arrives instead of polling for it.
        reader.borrow_mut().consumer.set_nonempty_callback(move || {
            if let Ok(w) = waker.lock() {
                let _ = w.activate();
            }
        });
        // A worker with no partition must not hold the frontier back.
        let mut cap = reader.borrow().has_partitions().then_some(capability);
        let mut buf = Vec::with_capacity(batch);
        let mut pending = VecDeque::with_capacity(batch);
        let mut last_message = Instant::now();
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let mut r = reader.borrow_mut();
            r.commit_durable(&durable);
            let full = r.in_dataflow_before(*c.time()) >= r.max_in_dataflow;
            let got = if full { 0 } else { r.poll(&mut buf, batch) };
            if got > 0 {
                last_message = Instant::now();
            }
            pending.extend(buf.drain(..));
            give_in_epochs(
                c,
                output,
                &mut pending,
                epoch_ms,
                usize::MAX,
                &epochs,
                |_| true,
            );
            if got > 0 {
                if let Some(g) = &r.offsets_gauge {
                    for (p, o) in &r.next {
                        g.get_or_create(&PartitionLabels {
                            topic: r.topic.clone(),
                            partition: p.to_string(),
                        })
                        .set(*o);
                    }
                }
                let offsets = r.next.iter().map(|(p, o)| (*p, *o)).collect();
                let epoch = *c.time();
                r.uncommitted.push_back(Handed {
                    epoch,
                    records: got,
                    offsets,
                });
            }
            // Waiting for the dataflow is not being idle.
            if full {
                last_message = Instant::now();
            }
            // Idle with everything handed over: the source moves past the last records' epoch,
            // so that epoch can complete and its offsets be committed now rather than when the
            // next record comes (a consumer's committed lag falls to zero). A record that comes
            // later goes at the new epoch, as any record older than the current epoch does.
            if got == 0
                && pending.is_empty()
                && last_message.elapsed() >= SETTLE_AFTER
                && r.uncommitted.back().is_some_and(|h| h.epoch == *c.time())
            {
                let next = *c.time() + 1;
                c.downgrade(&next);
            }
            let idle = stop.idle.is_some_and(|idle| last_message.elapsed() >= idle);
            if stop.signal.load(Ordering::Relaxed) || idle {
                tracing::info!(
                    consumed = r.consumed,
                    replayed = r.replayed,
                    "kafka source stops"
                );
                cap = None;
                return;
            }
            if full {
                activator.activate_after(Duration::from_millis(1));
            } else if got == 0 {
                activator.activate_after(IDLE_RECHECK);
            } else {
                activator.activate();
            }
        }
    })
    .container::<Vec<_>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_waits_only_for_records_that_can_get_through() {
        let handed: VecDeque<Handed> = [(3, 100), (5, 200), (9, 400), (9, 800)]
            .into_iter()
            .map(|(epoch, records)| Handed {
                epoch,
                records,
                offsets: vec![],
            })
            .collect();
        assert_eq!(in_dataflow_before(&handed, 9), 300);
        // Those at the source's own epoch are held back by its capability: not counted.
        assert_eq!(in_dataflow_before(&handed, 10), 1500);
        assert_eq!(in_dataflow_before(&handed, 3), 0);
    }
}
