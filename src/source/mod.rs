//! Sources: everything that turns input into the one record stream.
//!
//! A source is a [`RecordSource`] that fills batches; [`ingest`] is the one timely operator
//! that drives any of them, with replay pacing and coarse event-time epochs.

pub mod fastf1;
pub mod sim;
pub mod timefmt;
pub mod validate;

use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::{DriverId, Ingest};
use sim::{SimConfig, Simulator};
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::dataflow::operators::Capability;
use timely::dataflow::{Scope, Stream};

/// Input that cannot be used at all: the run does not start (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl InputError {
    pub fn new(message: impl Into<String>) -> Self {
        InputError(message.into())
    }
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Anything that produces records (and dead letters) in batches.
pub trait RecordSource {
    /// Appends up to `max` items to `out`; returns `false` once there will be no more.
    fn fill(&mut self, out: &mut Vec<Ingest>, max: usize) -> bool;
}

/// Rows seen by this process's sources, for the summary.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Rows read (records, dead letters and filtered rows alike).
    pub rows: AtomicU64,
    /// Rows left out by `--drivers`.
    pub filtered: AtomicU64,
}

/// What `--input` names, checked before the dataflow starts.
pub enum InputSpec {
    Sim(SimConfig),
    /// A merged FastF1 file with a `Driver` column, streamed by worker 0; or, when cloned (for
    /// weak-scaling benchmarks), read by every worker, each renaming the drivers `CODE#w`.
    Merged(PathBuf, bool),
    /// Per-driver car_data, loaded and merged in time order before the start.
    CarData(Mutex<Option<fastf1::Loaded>>, Vec<PathBuf>),
}

impl InputSpec {
    /// Resolves `sim` or a path, reading headers (and car_data files) so that any problem is
    /// reported before the run starts.
    pub fn resolve(
        input: &str,
        sim: &SimConfig,
        filter: Option<Arc<HashSet<DriverId>>>,
        stats: Arc<SourceStats>,
    ) -> Result<InputSpec, InputError> {
        Self::resolve_cloned(input, sim, filter, stats, false)
    }

    /// [`InputSpec::resolve`]; with `clone`, a merged file is read by every worker.
    pub fn resolve_cloned(
        input: &str,
        sim: &SimConfig,
        filter: Option<Arc<HashSet<DriverId>>>,
        stats: Arc<SourceStats>,
        clone: bool,
    ) -> Result<InputSpec, InputError> {
        if input == "sim" {
            return Ok(InputSpec::Sim(sim.clone()));
        }
        let path = Path::new(input);
        let meta = std::fs::metadata(path)
            .map_err(|e| InputError::new(format!("{input}: cannot read: {e}")))?;
        let files = if meta.is_dir() {
            fastf1::car_data_files(path)?
        } else if fastf1::check_header(path)? {
            // Open once to check the header; worker 0 opens it again to stream it.
            fastf1::CsvFile::open(path, None, filter, stats)?;
            return Ok(InputSpec::Merged(path.to_path_buf(), clone));
        } else {
            vec![path.to_path_buf()]
        };
        let loaded = fastf1::load_car_data(&files, filter, stats)?;
        Ok(InputSpec::CarData(Mutex::new(Some(loaded)), files))
    }

    /// The source of one worker, if it has one: files are read by worker 0, simulated cars
    /// are dealt to all workers.
    pub fn open(
        &self,
        worker: usize,
        peers: usize,
        filter: Option<Arc<HashSet<DriverId>>>,
        stats: Arc<SourceStats>,
    ) -> Result<Option<Box<dyn RecordSource>>, InputError> {
        match self {
            InputSpec::Sim(cfg) => {
                // Cars are dealt to workers by index; filtering means not simulating the rest.
                let peers = peers.max(1);
                Ok(Some(Box::new(Simulator::new(cfg, |car| {
                    car % peers == worker
                        && filter.as_ref().is_none_or(|f| f.contains(&cfg.driver(car)))
                }))))
            }
            InputSpec::Merged(path, false) if worker == 0 => Ok(Some(Box::new(
                fastf1::CsvFile::open(path, None, filter, stats)?,
            ))),
            InputSpec::Merged(path, true) => Ok(Some(Box::new(CloneDrivers {
                inner: fastf1::CsvFile::open(path, None, filter, stats)?,
                worker,
                names: Default::default(),
            }))),
            InputSpec::CarData(loaded, _) if worker == 0 => Ok(loaded
                .lock()
                .map_err(|_| InputError::new("car_data loader poisoned"))?
                .take()
                .map(|l| Box::new(l) as Box<dyn RecordSource>)),
            _ => Ok(None),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            InputSpec::Sim(cfg) => format!(
                "sim ({} cars, {} laps, seed {})",
                cfg.cars, cfg.laps, cfg.seed
            ),
            InputSpec::Merged(p, false) => p.display().to_string(),
            InputSpec::Merged(p, true) => format!("{} (cloned per worker)", p.display()),
            InputSpec::CarData(_, files) => match files.as_slice() {
                [one] => one.display().to_string(),
                many => format!(
                    "{} ({} car_data files)",
                    many[0]
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    many.len()
                ),
            },
        }
    }
}

/// When this process's sources first handed each recent epoch to the dataflow, so that the
/// time from a source to an output can be measured.
pub mod epoch_clock {
    use pitwall_dataflows::dataflow::Epoch;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Instant;

    static SEEN: Mutex<BTreeMap<Epoch, Instant>> = Mutex::new(BTreeMap::new());
    const KEEP: usize = 4096;

    pub fn note(epoch: Epoch) {
        if let Ok(mut seen) = SEEN.lock() {
            seen.entry(epoch).or_insert_with(Instant::now);
            while seen.len() > KEEP {
                seen.pop_first();
            }
        }
    }

    /// Seconds since `epoch` was first handed over in this process, if it was.
    pub fn age(epoch: Epoch) -> Option<f64> {
        SEEN.lock()
            .ok()?
            .get(&epoch)
            .map(|t| t.elapsed().as_secs_f64())
    }
}

/// Every worker's own copy of a file's race, drivers renamed `CODE#worker`.
struct CloneDrivers<S> {
    inner: S,
    worker: usize,
    names: pitwall_dataflows::record::DriverMap<DriverId>,
}

impl<S: RecordSource> RecordSource for CloneDrivers<S> {
    fn fill(&mut self, out: &mut Vec<Ingest>, max: usize) -> bool {
        let start = out.len();
        let more = self.inner.fill(out, max);
        for item in &mut out[start..] {
            if let Ingest::Record(s) = item {
                let worker = self.worker;
                s.driver = *self.names.entry(s.driver).or_insert_with(|| {
                    DriverId::new(&format!("{}#{worker}", s.driver)).unwrap_or(s.driver)
                });
            }
        }
        more
    }
}

/// How fast to replay, and how coarse the timely timestamps are.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// 1.0 = the original spacing of the timestamps, 2.0 twice as fast, 0 = as fast as possible.
    pub speed: f64,
    /// Width of one timely epoch in event-time ms.
    pub epoch_ms: i64,
    /// Items per activation.
    pub batch: usize,
}

/// Drives a worker's source (or none) as a timely input stream.
///
/// Epochs are event-time buckets (`ts / epoch_ms`), never going back: a record older than the
/// current epoch is sent at the current one. With a speed, a record is held until its turn.
pub fn ingest<'scope>(
    scope: Scope<'scope, Epoch>,
    source_for_worker: Option<Box<dyn RecordSource>>,
    pace: Pace,
    stop: Arc<AtomicBool>,
) -> Stream<'scope, Epoch, Vec<Ingest>> {
    source(scope, "Ingest", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut src = source_for_worker;
        let mut cap = src.is_some().then_some(capability);
        let mut pending: VecDeque<Ingest> = VecDeque::new();
        let mut fill_buf: Vec<Ingest> = Vec::with_capacity(pace.batch);
        let mut exhausted = false;
        let mut clock: Option<(Instant, i64)> = None;
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            if pending.is_empty() && !exhausted {
                if let Some(s) = src.as_mut() {
                    exhausted = !s.fill(&mut fill_buf, pace.batch);
                    pending.extend(fill_buf.drain(..));
                }
            }
            if (pending.is_empty() && exhausted) || stop.load(Ordering::Relaxed) {
                cap = None;
                src = None;
                return;
            }
            give_in_epochs(c, output, &mut pending, pace.epoch_ms, pace.batch, |item| {
                due_in(item, &mut clock, pace.speed).is_none()
            });
            match pending
                .front()
                .and_then(|item| due_in(item, &mut clock, pace.speed))
            {
                Some(delay) => activator.activate_after(delay),
                None => activator.activate(),
            }
        }
    })
    .container::<Vec<_>>()
}

/// Gives items from the front of `pending` to the dataflow, each at its epoch (event time,
/// never going back: an older record goes at the current epoch), at most `max`, stopping at
/// the first item `ready` says is not due yet. Every source hands over records through this.
pub fn give_in_epochs(
    cap: &mut Capability<Epoch>,
    output: &mut OutputBuilderSession<'_, Epoch, CapacityContainerBuilder<Vec<Ingest>>>,
    pending: &mut VecDeque<Ingest>,
    epoch_ms: i64,
    max: usize,
    mut ready: impl FnMut(&Ingest) -> bool,
) -> usize {
    let mut sent = 0;
    while sent < max {
        let epoch = match pending.front() {
            Some(item) if ready(item) => epoch_of(item, *cap.time(), epoch_ms),
            _ => break,
        };
        if epoch > *cap.time() {
            cap.downgrade(&epoch);
        }
        epoch_clock::note(epoch);
        let mut session = output.session(&*cap);
        while sent < max {
            match pending.front() {
                Some(item) if epoch_of(item, epoch, epoch_ms) == epoch && ready(item) => {}
                _ => break,
            }
            if let Some(item) = pending.pop_front() {
                session.give(item);
                sent += 1;
            }
        }
    }
    sent
}

pub fn epoch_of(item: &Ingest, current: Epoch, epoch_ms: i64) -> Epoch {
    match item {
        Ingest::Record(s) | Ingest::Replay(s) => {
            current.max(s.ts_ms.max(0).div_euclid(epoch_ms) as Epoch)
        }
        Ingest::Dead(_) => current,
    }
}

/// With pacing, how long until this item's turn (`None` when due). The first record sets the
/// origin of the replay clock.
pub fn due_in(item: &Ingest, clock: &mut Option<(Instant, i64)>, speed: f64) -> Option<Duration> {
    if speed <= 0.0 {
        return None;
    }
    let (Ingest::Record(s) | Ingest::Replay(s)) = item else {
        return None;
    };
    let (start, origin_ms) = *clock.get_or_insert((Instant::now(), s.ts_ms));
    let offset_ms = ((s.ts_ms - origin_ms) as f64 / speed).max(0.0);
    let due = start + Duration::from_secs_f64(offset_ms / 1000.0);
    let now = Instant::now();
    (due > now).then(|| due - now)
}
