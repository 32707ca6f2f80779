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
use crate::ingest::EpochClock;
use crate::metrics::{ConsumerLag, PartitionLabels};
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::{DeadLetter, Ingest};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::Capability;
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
    /// Records below these (the committed offsets) made every race row the replaced run
    /// committed: replayed for state only, first, at the source's first epoch.
    replay_until: BTreeMap<i32, i64>,
    /// Records below these made every alert, window and dead letter it committed: the
    /// analysis takes them for state only (from `replay_until` on, at the resume epoch).
    analysis_from: BTreeMap<i32, i64>,
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
    /// Outputs and offsets commit in the sink's transactions: the reader commits nothing.
    transactional: bool,
    /// Epochs before this were committed by an earlier run's last transaction (the epoch it
    /// wrote beside its offsets): records read live go at this epoch or later.
    pub resume_epoch: Epoch,
    /// The run this one replaces committed in transactions and did not reach its input's
    /// end: its open windows and episodes close at this run's end.
    pub replaced_run_open: bool,
    /// Records read live while some partition of this worker still replays: held (and their
    /// partitions paused) until the replay is over, so that every replayed record comes at an
    /// epoch before `resume_epoch` and every live one at it or after.
    held: Vec<(i32, i64, Ingest)>,
    paused: Vec<i32>,
    /// Per partition, the offset after the last message read (held ones included).
    read_to: BTreeMap<i32, i64>,
    /// The replay ended in the last poll: `end_replay` hands the held records over.
    replay_ended: bool,
}

impl KafkaReader {
    /// `offsets_gauge`, when given, is kept at the next offset of each assigned partition, and
    /// `lag` at each partition's consumer lag; `transactions`, when the sink's transactions
    /// commit the offsets, is where they record them.
    pub fn open(
        cfg: &KafkaConfig,
        worker: usize,
        peers: usize,
        offsets_gauge: Option<Family<PartitionLabels, Gauge>>,
        lag: Option<Arc<ConsumerLag>>,
        transactions: Option<CommitBoard>,
    ) -> Result<KafkaReader, BrokerError> {
        let mut config = cfg.consumer_config(&cfg.group_id);
        if lag.is_some() {
            config.set("statistics.interval.ms", LAG_INTERVAL_MS.to_string());
        }
        let consumer: BaseConsumer<LagContext> = config
            .create_with_context(LagContext {
                lag,
                commits: transactions,
            })
            .map_err(client_error(format!("kafka consumer for {}", cfg.brokers)))?;
        let topic = cfg.topics.telemetry.name.clone();
        let partitions: Vec<i32> = (0..partition_count(&consumer, &topic, &cfg.brokers)?)
            .filter(|p| *p as usize % peers == worker)
            .collect();
        let all = committed_with_resume(&consumer, &topic, &cfg.brokers)?;
        let resume_epoch = all
            .values()
            .filter_map(|(_, r)| r.map(|r| r.epoch))
            .max()
            .unwrap_or(0);
        let replaced_run_open = all.values().any(|(_, r)| r.is_some_and(|r| !r.ended));
        let mut committed = BTreeMap::new();
        let mut analysis_from = BTreeMap::new();
        for &p in &partitions {
            if let Some((o, resume)) = all.get(&p) {
                committed.insert(p, *o);
                analysis_from.insert(p, resume.and_then(|r| r.analysis).unwrap_or(*o).max(*o));
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
        tracing::info!(
            worker,
            ?partitions,
            ?committed,
            ?analysis_from,
            resume_epoch,
            "kafka source assigned"
        );
        let mut reader = KafkaReader {
            consumer,
            topic,
            next,
            replay_until,
            analysis_from,
            uncommitted: VecDeque::new(),
            committed,
            board: None,
            replayed: 0,
            consumed: 0,
            offsets_gauge,
            timings: AlertTimings::shared(cfg),
            max_in_dataflow: cfg.consumer.max_in_dataflow,
            transactional: cfg.transactions.enabled,
            resume_epoch,
            replaced_run_open,
            held: Vec::new(),
            paused: Vec::new(),
            read_to: BTreeMap::new(),
            replay_ended: false,
        };
        // Nothing to replay first: the next records already go at the resume epoch.
        reader.replay_ended = !reader.replaying();
        Ok(reader)
    }

    /// Whether some partition still has records to replay (below its committed offset).
    fn replaying(&self) -> bool {
        self.replay_until
            .iter()
            .any(|(p, until)| self.read_to.get(p).copied().unwrap_or(0) < *until)
    }

    /// Once the replay is over: the live records held meanwhile, in the order read, with their
    /// partitions resumed. `None` before then, and after the first call.
    fn end_replay(&mut self) -> Option<Vec<Ingest>> {
        if !std::mem::take(&mut self.replay_ended) {
            return None;
        }
        self.replay_until.clear();
        let mut paused = TopicPartitionList::new();
        for p in self.paused.drain(..) {
            paused.add_partition(&self.topic, p);
        }
        if paused.count() > 0 {
            if let Err(e) = self.consumer.resume(&paused) {
                tracing::warn!("resuming {} after the replay: {e}", self.topic);
            }
        }
        let mut live = Vec::with_capacity(self.held.len());
        for (p, offset, item) in self.held.drain(..) {
            let next = self.next.entry(p).or_default();
            *next = (*next).max(offset + 1);
            live.push(item);
        }
        tracing::info!(
            records = live.len(),
            "kafka source: replay over, live from here"
        );
        Some(live)
    }

    /// Holds a live record read while other partitions replay, and pauses its partition.
    fn hold(&mut self, p: i32, offset: i64, item: Ingest) {
        self.held.push((p, offset, item));
        if !self.paused.contains(&p) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.topic, p);
            if let Err(e) = self.consumer.pause(&tpl) {
                tracing::warn!("pausing {}/{p} while others replay: {e}", self.topic);
            }
            self.paused.push(p);
        }
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
            let first = self
                .replay_until
                .get(&p)
                .is_some_and(|&until| offset < until);
            let replay = self
                .analysis_from
                .get(&p)
                .is_some_and(|&from| offset < from);
            // Only while the first replay lasts: where each partition was read to, whether
            // some partition still replays, and so whether this record waits for it.
            let others_replay = !self.replay_until.is_empty() && {
                self.read_to.insert(p, offset + 1);
                self.replaying()
            };
            let hold = !first && others_replay;
            // The last replayed record: the held ones go at the resume epoch, next time.
            let replay_ends = first && !others_replay;
            if !hold {
                self.next.insert(p, offset + 1);
            }
            let payload = message.payload().unwrap_or_default();
            let item = match parse_telemetry(payload) {
                Ok(s) if replay => {
                    self.replayed += 1;
                    Ingest::Replay(s)
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
                    Ingest::Record(s)
                }
                // Delivered to the dead-letter topic before the restart.
                Err(_) if replay => {
                    if replay_ends {
                        self.replay_ended = true;
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    self.consumed += 1;
                    Ingest::Dead(Box::new(DeadLetter {
                        origin: self.topic.clone(),
                        partition: Some(p),
                        position: offset as u64,
                        field: Some(e.field.to_string()),
                        reason: e.reason,
                        detail: e.value,
                        raw: payload.to_vec(),
                    }))
                }
            };
            if hold {
                self.hold(p, offset, item);
                continue;
            }
            out.push(item);
            if replay_ends {
                self.replay_ended = true;
                break;
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

    /// Commits `offsets` to the group, unless the sink's transactions commit them.
    fn commit(&mut self, offsets: Vec<(i32, i64)>, mode: CommitMode) {
        if self.transactional {
            return;
        }
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

    /// `records` more were handed over at `epoch`: the offsets gauge and what waits for the
    /// sinks.
    fn note_handed(&mut self, epoch: Epoch, records: usize) {
        if let Some(g) = &self.offsets_gauge {
            for (p, o) in &self.next {
                g.get_or_create(&PartitionLabels {
                    topic: self.topic.clone(),
                    partition: p.to_string(),
                })
                .set(*o);
            }
        }
        let offsets = self.next.iter().map(|(p, o)| (*p, *o)).collect();
        self.uncommitted.push_back(Handed {
            epoch,
            records,
            offsets,
        });
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

    pub(super) fn record(&self, topic: &str, partition: i32, offset: i64) {
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        offsets.insert((topic.to_string(), partition), offset);
    }

    /// The offset committed on `topic`'s `partition`, if this process committed one.
    pub(super) fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        let offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        offsets.get(&(topic.to_string(), partition)).copied()
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
    consumer: &BaseConsumer<impl ConsumerContext>,
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

/// The epoch of a record's event time (dead letters have none).
fn event_epoch(item: &Ingest, epoch_ms: i64) -> Option<Epoch> {
    match item {
        Ingest::Record(s) | Ingest::Replay(s) => Some(s.ts_ms.max(0).div_euclid(epoch_ms) as Epoch),
        Ingest::Dead(_) => None,
    }
}

/// What a transaction writes beside each partition's committed offset:
/// `pitwall-epoch=T;analysis=B`. Every output before epoch T is committed; the committed
/// offset A is where the race views' state is complete (records before it made every race
/// row before T), and B >= A is where the analysis's is (records before B made every alert,
/// window and dead letter before T). A restart replays records before A for state only, and
/// those from A on at epoch T or later, for state only below B.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumePoint {
    pub epoch: Epoch,
    pub analysis: Option<i64>,
    /// Written by the transaction after the input's end (`;ended`): the run closed every
    /// window and episode. Without it a restart closes those of the drivers it only replays.
    pub ended: bool,
}

impl ResumePoint {
    const EPOCH: &'static str = "pitwall-epoch=";
    const ANALYSIS: &'static str = "analysis=";
    const ENDED: &'static str = "ended";

    /// The metadata of a committed offset; `None` when pitwall's transactions did not write it.
    pub fn parse(metadata: &str) -> Option<ResumePoint> {
        let mut parts = metadata.split(';');
        let epoch = parts.next()?.strip_prefix(Self::EPOCH)?.parse().ok()?;
        let mut point = ResumePoint {
            epoch,
            analysis: None,
            ended: false,
        };
        for part in parts {
            if let Some(b) = part.strip_prefix(Self::ANALYSIS) {
                point.analysis = b.parse().ok();
            } else if part == Self::ENDED {
                point.ended = true;
            }
        }
        Some(point)
    }

    pub fn metadata(&self) -> String {
        let mut m = format!("{}{}", Self::EPOCH, self.epoch);
        if let Some(b) = self.analysis {
            m.push_str(&format!(";{}{b}", Self::ANALYSIS));
        }
        if self.ended {
            m.push_str(&format!(";{}", Self::ENDED));
        }
        m
    }
}

/// The group's committed offsets on every partition of `topic`, each with what pitwall's
/// transactions wrote beside it.
pub(super) fn committed_with_resume(
    consumer: &BaseConsumer<impl ConsumerContext>,
    topic: &str,
    brokers: &str,
) -> Result<BTreeMap<i32, (i64, Option<ResumePoint>)>, BrokerError> {
    let mut all = TopicPartitionList::new();
    for p in 0..partition_count(consumer, topic, brokers)? {
        all.add_partition(topic, p);
    }
    let committed = committed_offsets(consumer, &all)
        .map_err(client_error(format!("committed offsets on {topic}")))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), (o, ResumePoint::parse(e.metadata())))),
            _ => None,
        })
        .collect())
}

/// How often an idle source looks again without being woken: for commits, `--until-idle` and
/// stop signals. A message arriving wakes it at once (librdkafka's queue callback).
const IDLE_RECHECK: Duration = Duration::from_millis(20);

/// How long a source waits with nothing arriving before it lets its last epoch complete.
const SETTLE_AFTER: Duration = Duration::from_millis(500);

/// The worker's records from the telemetry topic, and beside them, at the same epochs, the
/// next offset of each of its partitions once those records are handed over (what the sink's
/// transactions commit with the outputs).
pub struct KafkaStreams<'scope> {
    pub records: Stream<'scope, Epoch, Vec<Ingest>>,
    pub offsets: Stream<'scope, Epoch, Vec<(i32, i64)>>,
}

/// How the Kafka source cuts its records into epochs.
pub struct Epochs {
    /// Milliseconds of event time per epoch.
    pub epoch_ms: i64,
    /// The race views' step in epochs (their rows wait for it): an idle source settles past it.
    pub view_step: Epoch,
    /// The epochs handed over, for whoever reports them.
    pub clock: EpochClock,
}

/// The worker's share of the telemetry topic as timely streams.
///
/// `batch` records are taken per activation; at most `kafka.consumer.max_in_dataflow` records
/// handed over at earlier epochs may be in the dataflow and not yet through the sinks (the
/// `durable` probe) before the source waits, so that a source faster than the analysis does
/// not pile records up in timely's channels.
///
/// Long for a reason: one timely source operator, whose state (capabilities, pacing, the
/// consumer's wake-ups) lives in its closure; its steps are the reader's methods.
pub fn kafka_ingest<'scope>(
    scope: Scope<'scope, Epoch>,
    reader: Rc<RefCell<KafkaReader>>,
    durable: ProbeHandle<Epoch>,
    stop: StopWhen,
    batch: usize,
    pace: Epochs,
) -> KafkaStreams<'scope> {
    let Epochs {
        epoch_ms,
        view_step,
        clock: epochs,
    } = pace;
    let mut builder = OperatorBuilder::new("KafkaIngest".to_owned(), scope);
    let info = builder.operator_info();
    let (records_out, records) = builder.new_output::<Vec<Ingest>>();
    let (offsets_out, offsets) = builder.new_output::<Vec<(i32, i64)>>();
    let mut records_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Ingest>>>::from(records_out);
    let mut offsets_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<(i32, i64)>>>::from(offsets_out);
    builder.build(move |capabilities| {
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
        let mut caps = capabilities.into_iter();
        let (records_cap, offsets_cap) = (caps.next(), caps.next());
        let mut cap = reader
            .borrow()
            .has_partitions()
            .then_some(())
            .and(records_cap.zip(offsets_cap));
        let mut buf = Vec::with_capacity(batch);
        let mut last_message = Instant::now();
        move |_frontiers| {
            let Some((c, oc)) = cap.as_mut() else { return };
            let mut r = reader.borrow_mut();
            r.commit_durable(&durable);
            let full = r.in_dataflow_before(*c.time()) >= r.max_in_dataflow;
            let replaying = r.replaying();
            let got = if full { 0 } else { r.poll(&mut buf, batch) };
            if got > 0 {
                last_message = Instant::now();
            }
            let mut records = records_out.activate();
            let mut offsets = offsets_out.activate();
            let mut hand = |c: &mut Capability<Epoch>,
                            oc: &mut Capability<Epoch>,
                            r: &mut KafkaReader,
                            buf: &mut Vec<Ingest>,
                            at_latest: bool| {
                if buf.is_empty() {
                    return;
                }
                // A batch goes at one epoch, so that the offsets after it say exactly which
                // records came before each epoch: the latest event time in it (or the
                // source's epoch, if later). The first replay stays at the source's epoch.
                let latest = buf.iter().filter_map(|i| event_epoch(i, epoch_ms)).max();
                let epoch = match latest {
                    Some(e) if at_latest => e.max(*c.time()),
                    _ => *c.time(),
                };
                c.downgrade(&epoch);
                oc.downgrade(&epoch);
                epochs.note(epoch);
                let n = buf.len();
                records.session(&*c).give_iterator(buf.drain(..));
                offsets
                    .session(&*oc)
                    .give_iterator(r.next.iter().map(|(p, o)| (*p, *o)));
                r.note_handed(epoch, n);
            };
            hand(c, oc, &mut r, &mut buf, !replaying);
            if let Some(mut live) = r.end_replay() {
                // From here on at the resume epoch or later: every output before it was
                // committed by the run this one replaces.
                let resume = r.resume_epoch.max(*c.time());
                c.downgrade(&resume);
                oc.downgrade(&resume);
                hand(c, oc, &mut r, &mut live, true);
            }
            drop(records);
            drop(offsets);
            // Waiting for the dataflow is not being idle.
            if full {
                last_message = Instant::now();
            }
            // Idle with everything handed over: the source moves past the last records' epoch
            // and the race views' step their rows wait for (`view_step`), so that the epoch
            // can complete and its offsets (in transactions, with those rows) be committed now
            // rather than when the next record comes (a consumer's committed lag falls to
            // zero). A record that comes later goes at the new epoch, as any record older than
            // the current epoch does.
            if got == 0
                && last_message.elapsed() >= SETTLE_AFTER
                && r.uncommitted.back().is_some_and(|h| h.epoch == *c.time())
            {
                let step = view_step.max(1);
                let next = c.time().div_ceil(step) * step + 1;
                c.downgrade(&next);
                oc.downgrade(&next);
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
    });
    KafkaStreams { records, offsets }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_point_reads_back_what_a_transaction_wrote() {
        for point in [
            ResumePoint {
                epoch: 1_685_281_376,
                analysis: Some(66_451),
                ended: false,
            },
            ResumePoint {
                epoch: 7,
                analysis: None,
                ended: true,
            },
        ] {
            assert_eq!(ResumePoint::parse(&point.metadata()), Some(point));
        }
        assert_eq!(
            ResumePoint::parse("pitwall-epoch=12;analysis=40;ended"),
            Some(ResumePoint {
                epoch: 12,
                analysis: Some(40),
                ended: true
            })
        );
        // Offsets committed by something else (or without transactions) carry no resume point.
        assert_eq!(ResumePoint::parse(""), None);
        assert_eq!(ResumePoint::parse("pitwall-epoch=x"), None);
    }

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
