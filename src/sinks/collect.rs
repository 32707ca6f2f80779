//! Worker 0's end of the dataflow: the `Collect` sink exchanges to it every output its
//! [`Collector`] needs; the collector counts everything, hands the `--out` files their lines
//! ([`super::files`]), prints the live console line, and makes the [`Summary`].
//!
//! Without files to write, window aggregates are only counted on their own worker
//! (`CountWindows`): no need to send them all to worker 0.

use super::files::{write_summary, OutFiles};
use crate::ingest::EpochClock;
use crate::report::{peak_rss_kb, DriverSummary, Percentiles, Summary};
use pitwall_dataflows::alert::{AlertStatus, AlertType, Severity};
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::race::{LapRow, ModelType, Prediction, RaceBook, RaceItem, RaceUpdate};
use pitwall_dataflows::{DriverId, Output};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

/// Sends `outputs` to worker 0, where `collector` (present on worker 0 only) observes them
/// with the age of their epoch. `writes_files`: window aggregates go too, else only counts.
pub fn collect<'scope>(
    outputs: Stream<'scope, Epoch, Vec<Output>>,
    collector: Option<Rc<RefCell<Collector>>>,
    writes_files: bool,
    epochs: EpochClock,
) {
    let to_collect = outputs.unary(Pipeline, "CountWindows", move |_, _| {
        move |input, output| {
            input.for_each(|time, data| {
                let mut session = output.session(&time);
                let mut windows = 0;
                for o in data.drain(..) {
                    match o {
                        Output::Window(_) if !writes_files => windows += 1,
                        o => session.give(o),
                    }
                }
                if windows > 0 {
                    session.give(Output::Progress {
                        records: 0,
                        max_event_ms: i64::MIN,
                        windows,
                    });
                }
            });
        }
    });
    to_collect.sink(
        Exchange::new(|_: &Output| 0),
        "Collect",
        move |(input, _frontier)| {
            input.for_each(|time, data| {
                if let Some(c) = &collector {
                    let age = time.least().and_then(|e| epochs.age(*e));
                    let mut c = c.borrow_mut();
                    let epoch = time.least().copied();
                    for o in data.drain(..) {
                        c.observe_latency(&o, age);
                        if let (Output::Race(u), Some(e)) = (&o, epoch) {
                            c.first_emitted(u, e);
                        }
                        c.observe(o);
                    }
                }
            });
        },
    );
}

/// Output that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("--summary {}: {source}", path.display())]
    Summary {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("writing to {}: {message}", dir.display())]
    OutFiles {
        dir: std::path::PathBuf,
        message: String,
    },
    #[error("writing {what}: {source}")]
    Stdout {
        what: &'static str,
        source: std::io::Error,
    },
    /// The `--out` folder or its files cannot be created: the run does not start.
    #[error("--out {}: cannot create: {source}", dir.display())]
    CreateOut {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl WriteError {
    pub fn create_out(dir: Option<&std::path::Path>, source: std::io::Error) -> WriteError {
        WriteError::CreateOut {
            dir: dir.map(|d| d.to_path_buf()).unwrap_or_default(),
            source,
        }
    }
}

/// How the live summary is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// A progress line every interval, and the full summary at the end.
    Live,
    /// Only the full summary at the end.
    Quiet,
}

pub struct Collector {
    files: Option<OutFiles>,
    write_error: Option<String>,
    console: Console,
    interval: Duration,
    started: Instant,
    last_print: Instant,
    records: u64,
    dead_letters: u64,
    dead_by_reason: BTreeMap<String, u64>,
    raised: BTreeMap<&'static str, u64>,
    by_severity: BTreeMap<&'static str, u64>,
    by_type: BTreeMap<&'static str, u64>,
    windows: u64,
    first_event_ms: Option<i64>,
    last_event_ms: Option<i64>,
    per_driver: BTreeMap<String, DriverSummary>,
    latencies_ms: Vec<f64>,
    race: RaceBook,
    /// With `--out`: each prediction's earliest epoch and its rows' counts at that epoch, the
    /// row as it was first emitted (later epochs correct it after the fact).
    first: BTreeMap<PredictionKey, (Epoch, BTreeMap<Prediction, i64>)>,
    /// The same for each driver's lap rows.
    first_laps: BTreeMap<(DriverId, u16), (Epoch, BTreeMap<LapRow, i64>)>,
}

type PredictionKey = (DriverId, u16, ModelType);

impl Collector {
    pub fn new(
        out: Option<&Path>,
        console: Console,
        interval: Duration,
    ) -> std::io::Result<Collector> {
        let zeroes =
            |keys: &[&'static str]| keys.iter().map(|&k| (k, 0)).collect::<BTreeMap<_, _>>();
        let severities: Vec<_> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        let types: Vec<_> = AlertType::ALL.iter().map(|t| t.as_str()).collect();
        Ok(Collector {
            files: out.map(OutFiles::create).transpose()?,
            write_error: None,
            console,
            interval,
            started: Instant::now(),
            last_print: Instant::now(),
            records: 0,
            dead_letters: 0,
            dead_by_reason: BTreeMap::new(),
            raised: zeroes(&severities),
            by_severity: zeroes(&severities),
            by_type: zeroes(&types),
            windows: 0,
            first_event_ms: None,
            last_event_ms: None,
            per_driver: BTreeMap::new(),
            latencies_ms: Vec::new(),
            race: RaceBook::default(),
            first: BTreeMap::new(),
            first_laps: BTreeMap::new(),
        })
    }

    /// Keeps a prediction's or a lap's rows at the earliest epoch it was emitted at (`--out`
    /// only).
    pub fn first_emitted(&mut self, u: &RaceUpdate, epoch: Epoch) {
        if self.files.is_none() {
            return;
        }
        match &u.item {
            RaceItem::Prediction(p) => keep_first(
                &mut self.first,
                (p.driver, p.lap, p.model),
                p,
                u.diff,
                epoch,
            ),
            RaceItem::Lap(l) => {
                let key = (l.lap.done.driver, l.lap.done.lap);
                keep_first(&mut self.first_laps, key, l, u.diff, epoch)
            }
            _ => {}
        }
    }

    /// Notes how long ago (seconds) the source handed over the epoch of an output.
    pub fn observe_latency(&mut self, output: &Output, age_s: Option<f64>) {
        let counted = matches!(output, Output::Alert(a) if a.status == AlertStatus::Raised);
        if let (true, Some(age)) = (counted, age_s) {
            if self.latencies_ms.len() < 2_000_000 {
                self.latencies_ms.push(age * 1000.0);
            }
        }
    }

    pub fn observe(&mut self, output: Output) {
        let written = match output {
            Output::Progress {
                records,
                max_event_ms,
                windows,
            } => {
                self.records += records;
                self.windows += windows;
                self.last_event_ms = Some(
                    self.last_event_ms
                        .map_or(max_event_ms, |m| m.max(max_event_ms)),
                );
                Ok(())
            }
            Output::Alert(alert) => match alert.status {
                AlertStatus::Raised => {
                    *self.raised.entry(alert.severity.as_str()).or_default() += 1;
                    Ok(())
                }
                AlertStatus::Cleared => {
                    *self.by_severity.entry(alert.severity.as_str()).or_default() += 1;
                    *self.by_type.entry(alert.alert_type.as_str()).or_default() += 1;
                    self.per_driver
                        .entry(alert.driver.to_string())
                        .or_default()
                        .alerts += 1;
                    match self.files.as_mut() {
                        Some(f) => f.alert(&alert),
                        None => Ok(()),
                    }
                }
            },
            Output::Window(w) => {
                self.windows += 1;
                match self.files.as_mut() {
                    Some(f) => f.window(&w),
                    None => Ok(()),
                }
            }
            Output::DeadLetter(d) => {
                self.dead_letters += 1;
                *self.dead_by_reason.entry(d.reason_key()).or_default() += 1;
                if self.dead_letters <= 10 {
                    tracing::warn!("dead letter: {d}");
                }
                match self.files.as_mut() {
                    Some(f) => f.dead_letter(&d),
                    None => Ok(()),
                }
            }
            Output::DriverTotals(t) => {
                self.per_driver
                    .entry(t.driver.to_string())
                    .or_default()
                    .records += t.records;
                if t.records > 0 {
                    self.first_event_ms = Some(
                        self.first_event_ms
                            .map_or(t.first_ms, |m| m.min(t.first_ms)),
                    );
                }
                Ok(())
            }
            Output::Race(update) => {
                self.race.apply(&update);
                Ok(())
            }
        };
        if let Err(e) = written {
            self.write_error.get_or_insert_with(|| e.to_string());
        }
    }

    /// Prints the live progress line when it is due.
    pub fn tick(&mut self) {
        if self.console != Console::Live || self.last_print.elapsed() < self.interval {
            return;
        }
        self.last_print = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let line = format!(
            "[{secs:7.1}s] records {:>10}  ({:>9.0}/s)  alerts raised: high {} · medium {} · low {}  dead letters {}\n",
            self.records,
            self.records as f64 / secs.max(1e-9),
            self.raised["high"],
            self.raised["medium"],
            self.raised["low"],
            self.dead_letters
        );
        // A reader that went away (`| head`) is nobody to print for, not a reason to stop.
        if crate::report::print_out(&line).is_err() {
            self.console = Console::Quiet;
        }
    }

    /// The race views as they stand.
    pub fn race(&self) -> &RaceBook {
        &self.race
    }

    /// Flushes the files and writes `summary.json` (and `also_summary`, when given).
    pub fn finish(
        mut self,
        also_summary: Option<&Path>,
        input: String,
        filtered_rows: u64,
        workers: usize,
        processes: usize,
        wheel_spin_mode: String,
    ) -> Result<Summary, WriteError> {
        // Car health and retirements are views over laps: final when the run ends.
        let health: Vec<_> = (self.race.car_health().map(|h| h.alert()))
            .chain(self.race.retirements().map(|r| r.alert()))
            .collect();
        for alert in health {
            self.observe(Output::Alert(alert));
        }
        let (laps, pit_stops, predictions) = self.race.counts();
        let seconds = self.started.elapsed().as_secs_f64();
        let summary = Summary {
            input,
            rows: self.records + self.dead_letters + filtered_rows,
            records: self.records,
            filtered_rows,
            drivers: self.per_driver.values().filter(|d| d.records > 0).count(),
            dead_letters: self.dead_letters,
            dead_letters_by_reason: std::mem::take(&mut self.dead_by_reason),
            alerts: self.by_severity.values().sum(),
            alerts_by_severity: owned_keys(&self.by_severity),
            alerts_by_type: owned_keys(&self.by_type),
            windows: self.windows,
            laps: laps as u64,
            pit_stops: pit_stops as u64,
            predictions: predictions as u64,
            seconds,
            records_per_second: self.records as f64 / seconds.max(1e-9),
            workers,
            processes,
            wheel_spin_mode,
            first_event_ms: self.first_event_ms,
            last_event_ms: self.last_event_ms,
            latency_ms: Percentiles::of(&mut self.latencies_ms),
            peak_rss_kb: peak_rss_kb(),
            per_driver: std::mem::take(&mut self.per_driver),
            race: crate::story::RaceStory::of(&self.race),
        };
        if let Some(path) = also_summary {
            write_summary(path, &summary).map_err(|source| WriteError::Summary {
                path: path.to_path_buf(),
                source,
            })?;
        }
        if let Some(f) = self.files.take() {
            let dir = f.dir().to_path_buf();
            let first = self.first.values().filter_map(|(_, rows)| present(rows));
            let first_laps = self
                .first_laps
                .values()
                .filter_map(|(_, rows)| present(rows));
            if let Err(e) = f.race(&self.race, first, first_laps) {
                self.write_error.get_or_insert_with(|| e.to_string());
            }
            if let Err(e) = f.finish(&summary) {
                self.write_error.get_or_insert_with(|| e.to_string());
            }
            if let Some(e) = self.write_error {
                return Err(WriteError::OutFiles { dir, message: e });
            }
        }
        Ok(summary)
    }
}

fn owned_keys(counts: &BTreeMap<&'static str, u64>) -> BTreeMap<String, u64> {
    counts.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Counts a row of `key` at `epoch` when it is the earliest epoch seen for that key.
fn keep_first<K: Ord, T: Ord + Clone>(
    first: &mut BTreeMap<K, (Epoch, BTreeMap<T, i64>)>,
    key: K,
    row: &T,
    diff: i64,
    epoch: Epoch,
) {
    match first.get_mut(&key) {
        Some((e, rows)) if *e == epoch => *rows.entry(row.clone()).or_default() += diff,
        Some((e, _)) if *e < epoch => {}
        _ => {
            first.insert(key, (epoch, BTreeMap::from([(row.clone(), diff)])));
        }
    }
}

/// The row present at its first epoch (inserted there and not retracted).
fn present<T>(rows: &BTreeMap<T, i64>) -> Option<&T> {
    rows.iter().find(|(_, &n)| n > 0).map(|(r, _)| r)
}
