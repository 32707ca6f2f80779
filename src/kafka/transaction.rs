//! Exactly-once outputs: the engine's outputs for a range of completed epochs and the input
//! offsets they were derived from commit in one Kafka transaction.
//!
//! Every output of the job is produced by process 0 (the other processes' outputs are
//! exchanged to it), through one transactional producer whose `transactional.id` is the
//! group's, so a restarted job fences the one it replaces. The Kafka sources send, beside
//! their records, the next offset of each partition at the epoch the records were handed at;
//! those reach process 0's first worker. A sink sends an output only once its epoch is
//! complete, and only up to the open transaction's target epoch T; when every sink of process
//! 0 has sent all outputs before T, one of them commits: the offsets of the records handed
//! before T, with T in their metadata (`pitwall-epoch=T`), then the transaction. No output of
//! an epoch at or after T is in it, and no output before T is left out.
//!
//! A restarted job replays each partition from its start up to the committed offsets (state
//! only) and reads on live at epoch T or later; the sinks drop every output before T (race
//! rows rebuilt from the replayed records, all committed before), so a `read_committed`
//! consumer sees each output once.

use super::sink::{Deliveries, Sender, Sending, SinkProducer};
use super::source::{committed_with_resume, ResumePoint};
use super::{changelog::Changelog, client_error, BrokerError, KafkaConfig};
use crate::kafka::source::CommitBoard;
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::race::RaceItem;
use pitwall_dataflows::Output;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// Process 0's transactions: the producer, what each of its sinks has sent into the open
/// transaction, and the offsets waiting to be committed with it.
pub struct Transactions {
    state: Mutex<State>,
    /// Wakes the committer thread when a target is ready to commit.
    wake: Condvar,
    /// Tells the sinks the last transaction is committed.
    done: Condvar,
    interval: Duration,
    timeout: Duration,
    /// The race views' step: a record at epoch e makes race rows up to e rounded up to it.
    step: Epoch,
    topic: String,
    group: String,
    board: CommitBoard,
    /// The commit under way must have ended by then (`watch`).
    commit_by: Mutex<Option<Instant>>,
    /// A call of the transactional API that has not returned this long (the clients' request
    /// timeout) plus STALL_MARGIN after it was made is blocked in librdkafka, and the producer
    /// is replaced. The call itself is given the rest of the transaction timeout: given less, a
    /// broker that is only slow (paused, a leader moving) times the call out, the transaction
    /// must be aborted, and the batches in flight then fail with a sequence error.
    stall_after: Duration,
    /// To make a new producer with.
    cfg: KafkaConfig,
    /// Offsets sent to a transaction so far (`stall_at`).
    offsets_sent: AtomicU64,
    /// Fault injection for the tests (`PITWALL_FAULT_STALL_OFFSETS=N`): the Nth sending of
    /// offsets never returns, as librdkafka's does after a lost group coordinator.
    stall_at: Option<u64>,
}

/// How long past the request timeout a call of the transactional API may take before it
/// counts as blocked (librdkafka#5456, #5511: `send_offsets_to_transaction` ignores its timeout
/// and can wait for ever once the group coordinator's broker is lost).
const STALL_MARGIN: Duration = Duration::from_secs(5);

struct State {
    producer: Option<SinkProducer>,
    /// The process's sink state: what is in flight, and the open transaction's redo.
    deliveries: Option<Arc<Deliveries>>,
    group: Option<Arc<ConsumerGroupMetadata>>,
    /// Per sink of process 0: every output of an epoch before this is in the open transaction.
    sent_through: Vec<Epoch>,
    /// The open transaction commits once every sink has sent up to this epoch.
    target: Option<Epoch>,
    /// Every output before this epoch is committed.
    committed: Epoch,
    /// Epochs before this were committed by the run this one replaces: not sent again.
    resume: Epoch,
    /// Input offsets by the epoch their records were handed at, not yet committed.
    offsets: BTreeMap<Epoch, Vec<(i32, i64)>>,
    /// The last epoch any output or offset came at.
    latest_epoch: Option<Epoch>,
    /// Per partition, the committed offset: records before it made every race row committed.
    rows_at: BTreeMap<i32, i64>,
    /// Per partition, records before this made every other output committed.
    analysis_at: BTreeMap<i32, i64>,
    last_commit: Instant,
    commits: u64,
    /// A commit of `target` is under way on the committer thread.
    committing: bool,
    /// Time spent committing, in all.
    commit_time: Duration,
    /// The largest transaction committed: messages, bytes of keys and values.
    largest: (usize, usize),
}

impl Transactions {
    /// The transactions of a job whose process 0 has `sinks` workers.
    pub fn new(cfg: &KafkaConfig, sinks: usize, step: Epoch, board: CommitBoard) -> Transactions {
        Transactions {
            state: Mutex::new(State {
                producer: None,
                deliveries: None,
                group: None,
                sent_through: vec![0; sinks],
                target: None,
                committed: 0,
                resume: 0,
                offsets: BTreeMap::new(),
                latest_epoch: None,
                rows_at: BTreeMap::new(),
                analysis_at: BTreeMap::new(),
                last_commit: Instant::now(),
                commits: 0,
                committing: false,
                commit_time: Duration::ZERO,
                largest: (0, 0),
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
            interval: Duration::from_millis(cfg.transactions.commit_interval_ms),
            timeout: Duration::from_millis(u64::from(cfg.transactions.timeout_ms)),
            step: step.max(1),
            topic: cfg.topics.telemetry.name.clone(),
            group: cfg.group_id.clone(),
            board,
            commit_by: Mutex::new(None),
            stall_after: Duration::from_millis(u64::from(cfg.request_timeout_ms)),
            cfg: cfg.clone(),
            offsets_sent: AtomicU64::new(0),
            stall_at: std::env::var("PITWALL_FAULT_STALL_OFFSETS")
                .ok()
                .and_then(|n| n.parse().ok()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// The producer (its first transaction fences the replaced run's and aborts what that one
    /// left open), then the group's metadata that offsets are committed under and where the
    /// replaced run's last transaction left off. Each worker of process 0 calls it before its
    /// dataflow is built; the first does the work.
    pub fn open(
        self: &Arc<Self>,
        cfg: &KafkaConfig,
        deliveries: &Arc<Deliveries>,
    ) -> Result<(), BrokerError> {
        let mut st = self.lock();
        if st.producer.is_some() {
            return Ok(());
        }
        let consumer: BaseConsumer = cfg
            .consumer_config(&cfg.group_id)
            .create()
            .map_err(client_error(format!("consumer of group {}", cfg.group_id)))?;
        // An unreachable broker or a missing topic says so at once, before the producer waits
        // for its transaction coordinator.
        super::admin::partition_count(&consumer, &self.topic, &cfg.brokers)?;
        st.producer = Some(deliveries.transactional_producer(cfg)?);
        st.deliveries = Some(deliveries.clone());
        let txn = self.clone();
        std::thread::Builder::new()
            .name("pitwall-commit".into())
            .spawn(move || txn.committer())?;
        let txn = self.clone();
        std::thread::Builder::new()
            .name("pitwall-commit-watch".into())
            .spawn(move || txn.watch())?;
        // Fenced: the replaced run's offsets are no longer pending, and can be read.
        st.group = consumer.group_metadata().map(Arc::new);
        let committed = committed_with_resume(&consumer, &self.topic, &cfg.brokers)?;
        let mut resume = 0;
        for (p, (rows, point)) in committed {
            st.rows_at.insert(p, rows);
            let analysis = point.and_then(|r| r.analysis).unwrap_or(rows).max(rows);
            st.analysis_at.insert(p, analysis);
            resume = resume.max(point.map_or(0, |r| r.epoch));
        }
        st.resume = resume;
        st.committed = resume;
        for s in &mut st.sent_through {
            *s = (*s).max(resume);
        }
        tracing::info!(resume, rows_at = ?st.rows_at, analysis_at = ?st.analysis_at, "transactions resume");
        Ok(())
    }

    /// Offsets of records handed at `epoch` (from process 0's first sink).
    fn handed(&self, epoch: Epoch, offsets: &mut Vec<(i32, i64)>) {
        let mut st = self.lock();
        st.latest_epoch = st.latest_epoch.max(Some(epoch));
        st.offsets.entry(epoch).or_default().append(offsets);
    }

    /// Sink `sink` has sent every output before `through` it had (its frontier, or the
    /// target); commits when every sink has. Returns the epoch before which all is committed.
    fn sent(&self, sink: usize, through: Epoch, latest: Option<Epoch>) -> Epoch {
        let mut st = self.lock();
        st.latest_epoch = st.latest_epoch.max(latest);
        if let Some(s) = st.sent_through.get_mut(sink) {
            *s = (*s).max(through);
        }
        let furthest = st.sent_through.iter().copied().max().unwrap_or(0);
        if st.target.is_none()
            && furthest > st.committed
            && (furthest == Epoch::MAX
                || st.last_commit.elapsed() >= self.interval
                || st
                    .deliveries
                    .as_deref()
                    .is_some_and(Deliveries::transaction_full))
        {
            st.target = Some(furthest);
        }
        if let Some(t) = st.target {
            if !st.committing && st.sent_through.iter().all(|s| *s >= t) {
                st.committing = true;
                self.wake.notify_one();
            }
        }
        st.committed
    }

    /// The committer thread: commits each target the sinks have all sent up to, while they go
    /// on (holding what comes after the target until the next transaction begins).
    fn committer(&self) {
        loop {
            let (target, producer, deliveries, group, (rows, analysis), resume) = {
                let mut st = self.lock();
                while !st.committing {
                    st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                let Some(target) = st.target else {
                    st.committing = false;
                    continue;
                };
                let (rows, analysis) = self.positions(&mut st, target);
                // After the input's end the target is "every epoch": a restart resumes after
                // the last.
                let resume = if target == Epoch::MAX {
                    st.latest_epoch.map_or(0, |e| e + 1).max(st.resume)
                } else {
                    target
                };
                (
                    target,
                    st.producer.clone(),
                    st.deliveries.clone(),
                    st.group.clone(),
                    (rows, analysis),
                    resume,
                )
            };
            let started = Instant::now();
            let (Some(mut producer), Some(deliveries)) = (producer, deliveries) else {
                fail("no transactional producer")
            };
            let deadline = started + self.timeout;
            // Each call of the transactional API is bounded (`bounded`); the watch ends the run
            // should anything else block (a new producer's init_transactions), and a restart
            // resumes from the last commit.
            self.arm(Some(started + 2 * self.timeout + Duration::from_secs(10)));
            loop {
                let failed = match self.commit(
                    &producer,
                    group.as_ref(),
                    &rows,
                    &analysis,
                    resume,
                    target == Epoch::MAX,
                ) {
                    Ok(()) => break,
                    Err(Failed::Fatal(e)) => fail(&e),
                    Err(Failed::Abortable(e) | Failed::Stalled(e))
                        if Instant::now() >= deadline =>
                    {
                        fail(&format!("{e}, and the transaction timeout has passed"))
                    }
                    Err(failed) => failed,
                };
                match self.recover(&failed, &mut producer, &deliveries) {
                    Ok(n) => tracing::warn!(
                        "a Kafka transaction had to be aborted ({}); its {n} outputs sent again in a new one",
                        failed.what()
                    ),
                    Err(Failed::Abortable(e) | Failed::Fatal(e) | Failed::Stalled(e)) => {
                        fail(&format!("{}; then {e}", failed.what()))
                    }
                }
            }
            let size = match deliveries
                .redo
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
            {
                Some(redo) => {
                    let size = (redo.messages_held(), redo.bytes_held());
                    redo.clear();
                    size
                }
                None => (0, 0),
            };
            self.arm(None);
            let last = target == Epoch::MAX;
            if !last {
                if let Err(e) = producer.begin_transaction() {
                    fail(&format!("beginning a transaction: {e}"));
                }
            }
            let mut st = self.lock();
            st.rows_at = rows;
            st.analysis_at = analysis;
            st.committed = target;
            st.target = None;
            st.committing = false;
            st.last_commit = Instant::now();
            st.commits += 1;
            st.commit_time += started.elapsed();
            st.largest = st.largest.max(size);
            tracing::debug!(
                target,
                messages = size.0,
                bytes = size.1,
                "transaction committed"
            );
            if last {
                tracing::info!(
                    commits = st.commits,
                    commit_seconds = st.commit_time.as_secs_f64(),
                    largest_messages = st.largest.0,
                    largest_bytes = st.largest.1,
                    resume,
                    group = %self.group,
                    "last transaction committed"
                );
                self.done.notify_all();
                return;
            }
        }
    }

    /// When the commit under way must have ended by, if one is.
    fn arm(&self, by: Option<Instant>) {
        *self.commit_by.lock().unwrap_or_else(|e| e.into_inner()) = by;
    }

    /// The watch thread: a commit still under way past its time ends the run.
    fn watch(&self) {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let by = *self.commit_by.lock().unwrap_or_else(|e| e.into_inner());
            if by.is_some_and(|by| Instant::now() > by) {
                fail("a commit did not return within twice the transaction timeout (blocked in librdkafka)");
            }
        }
    }

    /// Waits until the last transaction (of the whole input) is committed.
    pub fn wait_for_last(&self) -> Epoch {
        let mut st = self.lock();
        while st.committed != Epoch::MAX {
            st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.committed
    }

    /// The epoch a sink may send up to (before): the open transaction's target, if it has one.
    fn limit(&self) -> Epoch {
        self.lock().target.unwrap_or(Epoch::MAX)
    }

    /// When the next commit is due (a sink with outputs sent and not committed wakes then).
    fn due_in(&self) -> Duration {
        self.interval
            .saturating_sub(self.lock().last_commit.elapsed())
    }

    /// The offsets to commit with `target`: per partition, where the race rows' records end
    /// (the committed offset) and where the other outputs' do. Offsets handed at epochs whose
    /// race rows are all before `target` are used up.
    fn positions(&self, st: &mut State, target: Epoch) -> (BTreeMap<i32, i64>, BTreeMap<i32, i64>) {
        let (mut rows, mut analysis) = (st.rows_at.clone(), st.analysis_at.clone());
        let rows_before =
            |e: Epoch| target == Epoch::MAX || e.div_ceil(self.step) * self.step < target;
        for (&e, offsets) in st.offsets.range(..target) {
            for &(p, o) in offsets {
                let b = analysis.entry(p).or_default();
                *b = (*b).max(o);
                if rows_before(e) {
                    let a = rows.entry(p).or_default();
                    *a = (*a).max(o);
                }
            }
        }
        st.offsets.retain(|&e, _| !rows_before(e) || e >= target);
        (rows, analysis)
    }

    /// A call of the transactional API, made again while it fails with an error librdkafka
    /// calls retriable (a coordinator that timed out or moved: a broker lost, its partitions
    /// led elsewhere), for up to the transaction timeout in all. Each attempt is `bounded`.
    fn retrying<F>(&self, what: &str, call: F) -> Result<(), Failed>
    where
        F: Fn(Duration) -> rdkafka::error::KafkaResult<()> + Send + Sync + 'static,
    {
        let call = Arc::new(call);
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = left.max(Duration::from_secs(1));
            match bounded(what, timeout, timeout.min(self.stall_after), call.clone())? {
                Ok(()) => return Ok(()),
                Err(rdkafka::error::KafkaError::Transaction(e))
                    if e.is_retriable() && Instant::now() < deadline =>
                {
                    tracing::warn!("{what}: {e}; trying again");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(rdkafka::error::KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                    return Err(Failed::Abortable(format!("{what}: {e}")))
                }
                Err(e) => return Err(Failed::Fatal(format!("{what}: {e}"))),
            }
        }
    }

    /// The open transaction failed: what it held is sent again in a new one; how many
    /// outputs. Abortable: the producer aborts it and begins another. Stalled (a call blocked
    /// in librdkafka): a new producer fences the blocked one, the broker aborts its open
    /// transaction, and the sinks send through the new one from then on.
    fn recover(
        &self,
        failed: &Failed,
        producer: &mut SinkProducer,
        deliveries: &Arc<Deliveries>,
    ) -> Result<usize, Failed> {
        let redo = deliveries.redo.lock().unwrap_or_else(|e| e.into_inner());
        let Some(redo) = redo.as_ref() else {
            return Err(Failed::Fatal("no outputs kept to send again".into()));
        };
        if !redo.complete() {
            return Err(Failed::Fatal(format!(
                "the transaction held {} MB of outputs, more than is kept to send again ({} MB)",
                redo.bytes_held() >> 20,
                super::redo::KEEP_BYTES >> 20
            )));
        }
        match failed {
            Failed::Stalled(_) => {
                let fresh = deliveries
                    .replace_transactional_producer(&self.cfg)
                    .map_err(|e| Failed::Fatal(format!("a new transactional producer: {e}")))?;
                self.lock().producer = Some(fresh.clone());
                *producer = fresh;
                tracing::warn!("the blocked transactional producer is replaced by a new one");
            }
            _ => {
                let p = producer.clone();
                self.retrying("aborting the transaction", move |timeout| {
                    p.abort_transaction(timeout)
                })?;
                producer
                    .begin_transaction()
                    .map_err(|e| Failed::Fatal(format!("beginning a transaction again: {e}")))?;
            }
        }
        redo.send_again(producer, deliveries)
            .map_err(|e| Failed::Fatal(format!("sending the aborted outputs again: {e}")))?;
        Ok(redo.len())
    }

    /// The offsets (with where the analysis and the outputs are beside them), then the
    /// transaction.
    fn commit(
        &self,
        producer: &SinkProducer,
        group: Option<&Arc<ConsumerGroupMetadata>>,
        rows: &BTreeMap<i32, i64>,
        analysis: &BTreeMap<i32, i64>,
        resume: Epoch,
        ended: bool,
    ) -> Result<(), Failed> {
        if let (Some(group), false) = (group, rows.is_empty()) {
            let mut tpl = TopicPartitionList::new();
            for (&p, &o) in rows {
                let mut e = tpl.add_partition(&self.topic, p);
                e.set_offset(Offset::Offset(o))
                    .map_err(|e| Failed::Fatal(format!("offset {}/{p}: {e}", self.topic)))?;
                let point = ResumePoint {
                    epoch: resume,
                    analysis: Some(analysis.get(&p).copied().unwrap_or(o).max(o)),
                    ended,
                };
                e.set_metadata(point.metadata());
            }
            let n = self.offsets_sent.fetch_add(1, Ordering::Relaxed) + 1;
            let stall = self.stall_at == Some(n);
            let (p, group) = (producer.clone(), group.clone());
            self.retrying("sending offsets to the transaction", move |timeout| {
                if stall {
                    tracing::warn!("fault injected: sending offsets {n} blocks for ever");
                    loop {
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                }
                p.send_offsets_to_transaction(&tpl, &group, timeout)
            })?;
        }
        let p = producer.clone();
        self.retrying("committing the transaction", move |timeout| {
            p.commit_transaction(timeout)
        })?;
        for (&p, &o) in rows {
            self.board.record(&self.topic, p, o);
        }
        Ok(())
    }
}

/// Why a commit failed.
enum Failed {
    /// The producer must abort the transaction; after that it can go on.
    Abortable(String),
    /// A call did not return (blocked in librdkafka): a new producer takes over.
    Stalled(String),
    /// Fenced by a newer run, the transaction timed out, or the producer cannot go on.
    Fatal(String),
}

impl Failed {
    fn what(&self) -> &str {
        match self {
            Failed::Abortable(w) | Failed::Stalled(w) | Failed::Fatal(w) => w,
        }
    }
}

/// One call of the transactional API on a thread of its own, waited for up to `stall_after`
/// plus STALL_MARGIN: past that it is blocked in librdkafka (and left there, with the producer
/// it holds; the caller replaces that producer).
fn bounded<F>(
    what: &str,
    timeout: Duration,
    stall_after: Duration,
    call: Arc<F>,
) -> Result<rdkafka::error::KafkaResult<()>, Failed>
where
    F: Fn(Duration) -> rdkafka::error::KafkaResult<()> + Send + Sync + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("pitwall-txn-call".into())
        .spawn(move || {
            let _ = tx.send(call(timeout));
        })
        .map_err(|e| Failed::Fatal(format!("{what}: a thread to call it on: {e}")))?;
    let limit = stall_after + STALL_MARGIN;
    match rx.recv_timeout(limit) {
        Ok(result) => Ok(result),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Failed::Stalled(format!(
            "{what} did not return within {} s (blocked in librdkafka)",
            limit.as_secs()
        ))),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(Failed::Fatal(format!("{what}: its thread ended")))
        }
    }
}

/// A transaction that cannot commit ends the run: what it held is aborted by the broker (or
/// fenced by the restart), and the restart resumes from the last one committed.
fn fail(what: &str) -> ! {
    tracing::error!("kafka transaction failed: {what}");
    eprintln!(
        "pitwall: a Kafka transaction failed ({what}); nothing of it is visible to \
         read_committed consumers, and a restart resumes from the last committed transaction"
    );
    std::process::exit(1)
}

/// The outputs of process 0 into its transactions: every worker's outputs go to worker
/// `to` of process 0 (its own index there), every offset to worker 0; on the other processes
/// it receives nothing. The returned stream carries no data, only the frontier of what the
/// broker acknowledged.
///
/// The exchanges are this operator's input pacts, not timely's `exchange` operator: that one
/// may reorder the messages of one epoch, and an alert's `raised` must reach the topic before
/// its `cleared`. A pact keeps each sender's order.
///
/// Long for a reason: one timely operator with two inputs whose state (outputs waiting for
/// their epoch, capabilities held until acknowledged) lives in its closure.
pub fn transactional_sink<'scope>(
    outputs: Stream<'scope, Epoch, Vec<Output>>,
    offsets: Stream<'scope, Epoch, Vec<(i32, i64)>>,
    to: u64,
    cfg: &KafkaConfig,
    deliveries: Arc<Deliveries>,
    txn: Option<(Arc<Transactions>, usize)>,
) -> Result<Stream<'scope, Epoch, Vec<()>>, BrokerError> {
    // The transactional producer is made by `Transactions::open` (before the dataflow):
    // the sender sends through it.
    let mut sender = match &txn {
        Some(_) => Some(Sender::new(cfg, deliveries.clone())?),
        None => None,
    };
    // Epochs before it were committed by the run this one replaces (read by `open`).
    let resume = txn.as_ref().map_or(0, |(t, _)| t.lock().resume);
    let scope = outputs.scope();
    Ok(outputs
        .binary_frontier::<_, timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _, _>(
            offsets,
            Exchange::new(move |_: &Output| to),
            Exchange::new(|_: &(i32, i64)| 0),
            "KafkaTransactionalSink",
            move |initial, info| {
                let activator = scope.activator_for(info.address);
                // Outputs waiting for their epoch to complete (and for the target to allow it).
                let mut waiting: BTreeMap<Epoch, (Capability<Epoch>, Vec<Output>)> =
                    BTreeMap::new();
                // Epochs sent and not all acknowledged: the probe after the sink waits for them.
                let mut held: BTreeMap<Epoch, Capability<Epoch>> = BTreeMap::new();
                // Race view updates waiting for their epoch to be sent (`changelog.rs`), and
                // the epochs' capabilities.
                let mut changelog: Changelog<RaceItem> = Changelog::default();
                let mut race_epochs: BTreeMap<Epoch, Capability<Epoch>> = BTreeMap::new();
                let mut offsets_buf = Vec::new();
                // Held until this sink has sent everything (then the last transaction can commit):
                // the dataflow does not end before. Kept at the inputs' frontier.
                let mut last = Some(initial);
                move |(outputs_in, outputs_frontier), (offsets_in, offsets_frontier), _output| {
                    let (Some((txn, index)), Some(sender)) = (&txn, sender.as_mut()) else {
                        // Not process 0: nothing comes here, and nothing is held.
                        outputs_in.for_each(|_, data| data.clear());
                        offsets_in.for_each(|_, data| data.clear());
                        last = None;
                        return;
                    };
                    // A producer blocked in librdkafka may have been replaced (`recover`).
                    sender.refresh();
                    let mut latest = None;
                    outputs_in.for_each(|cap, data| {
                        let Some(&epoch) = cap.least() else { return };
                        latest = latest.max(Some(epoch));
                        if epoch < resume {
                            // Rebuilt from replayed records: committed by the run this replaces
                            // (the race rows' values are only remembered, `send_epoch`).
                            for o in data.drain(..) {
                                if let Output::Race(u) = o {
                                    changelog.push(epoch, u.item, u.diff);
                                }
                            }
                            return;
                        }
                        if let Some(c) = cap.retain_least(0) {
                            let entry = waiting.entry(epoch).or_insert_with(|| (c, Vec::new()));
                            entry.1.append(data);
                        }
                    });
                    offsets_in.for_each(|cap, data| {
                        if let Some(&epoch) = cap.least() {
                            offsets_buf.append(data);
                            txn.handed(epoch, &mut offsets_buf);
                        }
                    });
                    let frontier = [outputs_frontier.frontier(), offsets_frontier.frontier()]
                        .iter()
                        .filter_map(|f| f.iter().min().copied())
                        .min()
                        .unwrap_or(Epoch::MAX);
                    let target = txn.limit();
                    let mut limit = frontier.min(target);
                    while let Some(entry) = waiting.first_entry() {
                        let epoch = *entry.key();
                        if epoch >= limit {
                            break;
                        }
                        // The open transaction holds enough (a drain, a replay's end): it
                        // commits before more is sent; with a target set, on to it.
                        if target == Epoch::MAX && deliveries.transaction_full() {
                            limit = epoch;
                            break;
                        }
                        let (cap, batch) = entry.remove();
                        let mut sent = false;
                        for o in batch {
                            match sender.output(epoch, o, &mut changelog) {
                                Sending::Sent => sent = true,
                                Sending::Waiting => {
                                    race_epochs.entry(epoch).or_insert_with(|| cap.clone());
                                }
                                Sending::Nothing => {}
                            }
                        }
                        if sent {
                            held.entry(epoch).or_insert(cap);
                        }
                    }
                    for (epoch, updates) in changelog.release(|e| e < limit) {
                        // Epochs before `resume` are rebuilt by the replay, committed before.
                        if sender.send_epoch(epoch, &updates, epoch < resume) {
                            if let Some(c) = race_epochs.get(&epoch) {
                                held.entry(epoch).or_insert_with(|| c.clone());
                            }
                        }
                    }
                    race_epochs.retain(|e, _| *e >= limit);
                    sender.poll_and_retry();
                    let committed = txn.sent(*index, limit, latest);
                    if limit == Epoch::MAX {
                        last = None;
                    } else if let Some(c) = last.as_mut() {
                        if *c.time() < frontier {
                            c.downgrade(&frontier);
                        }
                    }
                    // Acknowledged (in the open transaction) is enough for the source to read on.
                    held.retain(|epoch, _| deliveries.waits_for(*epoch));
                    let soon = Duration::from_millis(1);
                    if limit < frontier || !held.is_empty() {
                        // Held back by the open transaction's target, or waiting for
                        // acknowledgements: look again soon.
                        activator.activate_after(soon);
                    } else if committed < limit {
                        // Sent and not committed: the commit is due then.
                        activator.activate_after(txn.due_in().max(soon));
                    }
                }
            },
        ))
}
