//! Sources: what `--input` names (the simulator, a FastF1 file or folder), resolved and
//! checked before the run starts, then opened per worker as a [`RecordSource`] for the
//! [`crate::ingest`] operator. The Kafka source lives in `kafka/source.rs`.

pub mod clone_drivers;
pub mod fastf1;
pub mod sim;

use crate::ingest::{InputError, RecordSource, SourceStats};
use clone_drivers::{cloned, CloneDrivers};
use pitwall_dataflows::placement::Placement;
use pitwall_dataflows::DriverId;
use sim::{SimConfig, Simulator};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What `--input` names, checked before the dataflow starts.
pub enum InputSpec {
    Sim(SimConfig),
    /// The simulator's race run by every worker, each renaming its cars `SIM01#w` (for
    /// weak-scaling benchmarks: the work per worker stays that of one race).
    SimCloned(SimConfig),
    /// A merged FastF1 file with a `Driver` column, dealt to the workers by driver and parsed
    /// by each ([`fastf1::MergedFile`]).
    Dealt(fastf1::MergedFile),
    /// A merged FastF1 file read by every worker, each renaming the drivers `CODE#w` (for
    /// weak-scaling benchmarks).
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

    /// [`InputSpec::resolve`]; with `clone`, a merged file is read (the simulator's race run)
    /// by every worker.
    pub fn resolve_cloned(
        input: &str,
        sim: &SimConfig,
        filter: Option<Arc<HashSet<DriverId>>>,
        stats: Arc<SourceStats>,
        clone: bool,
    ) -> Result<InputSpec, InputError> {
        if input == "sim" {
            return Ok(match clone {
                true => InputSpec::SimCloned(sim.clone()),
                false => InputSpec::Sim(sim.clone()),
            });
        }
        let path = Path::new(input);
        let meta = std::fs::metadata(path)
            .map_err(|e| InputError::new(format!("{input}: cannot read: {e}")))?;
        let files = if meta.is_dir() {
            fastf1::car_data_files(path)?
        } else if fastf1::check_header(path)? {
            // Opened once to check the header; the reader opens it again to stream it.
            return Ok(if clone {
                fastf1::CsvFile::open(path, None, filter.clone(), stats.clone())?;
                InputSpec::Merged(path.to_path_buf(), true)
            } else {
                InputSpec::Dealt(fastf1::MergedFile::new(path, filter, stats)?)
            });
        } else {
            vec![path.to_path_buf()]
        };
        let loaded = fastf1::load_car_data(&files, filter, stats)?;
        Ok(InputSpec::CarData(Mutex::new(Some(loaded)), files))
    }

    /// The source of worker `worker` of `peers` in a run whose process runs the workers
    /// `local`: a merged file is dealt to every worker ([`fastf1::MergedFile`]); anything
    /// else as [`InputSpec::open`].
    pub fn open_in(
        &self,
        worker: usize,
        peers: usize,
        local: std::ops::Range<usize>,
        filter: Option<Arc<HashSet<DriverId>>>,
        stats: Arc<SourceStats>,
    ) -> Result<Option<Box<dyn RecordSource>>, InputError> {
        match self {
            InputSpec::Dealt(file) => Ok(Some(Box::new(file.open(worker, peers, local)?))),
            _ => self.open(worker, peers, filter, stats),
        }
    }

    /// Which worker (of `peers`) analyses which driver: where the source makes its records,
    /// so that they stay on that worker (a dealt file's table; a simulated car on the worker
    /// that simulates it), else by hash.
    pub fn placement(&self, peers: usize) -> Placement {
        match self {
            InputSpec::Dealt(file) => file.placement().clone(),
            InputSpec::Sim(cfg) => {
                let placement = Placement::table();
                for car in 0..cfg.cars {
                    placement.place(cfg.driver(car), SimConfig::worker_of(car, peers));
                }
                placement
            }
            InputSpec::SimCloned(cfg) => {
                // Each worker's copy of the race stays on that worker.
                let placement = Placement::table();
                for worker in 0..peers {
                    for car in 0..cfg.cars {
                        placement.place(cloned(cfg.driver(car), worker), worker);
                    }
                }
                placement
            }
            _ => Placement::hashed(),
        }
    }

    /// The source of one worker, if it has one: files are read by worker 0 (a merged file
    /// row by row, for a single reader such as `pitwall produce`), simulated cars are dealt
    /// to all workers.
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
                Ok(Some(Box::new(Simulator::new(cfg, |car| {
                    SimConfig::worker_of(car, peers) == worker
                        && filter.as_ref().is_none_or(|f| f.contains(&cfg.driver(car)))
                }))))
            }
            InputSpec::SimCloned(cfg) => Ok(Some(Box::new(CloneDrivers::new(
                Simulator::new(cfg, |car| {
                    filter.as_ref().is_none_or(|f| f.contains(&cfg.driver(car)))
                }),
                worker,
            )))),
            InputSpec::Dealt(file) if worker == 0 => Ok(Some(Box::new(fastf1::CsvFile::open(
                file.path(),
                None,
                filter,
                stats,
            )?))),
            InputSpec::Merged(path, false) if worker == 0 => Ok(Some(Box::new(
                fastf1::CsvFile::open(path, None, filter, stats)?,
            ))),
            InputSpec::Merged(path, true) => Ok(Some(Box::new(CloneDrivers::new(
                fastf1::CsvFile::open(path, None, filter, stats)?,
                worker,
            )))),
            InputSpec::CarData(loaded, _) if worker == 0 => Ok(loaded
                .lock()
                .map_err(|_| InputError::new("car_data loader poisoned"))?
                .take()
                .map(|l| Box::new(l) as Box<dyn RecordSource>)),
            _ => Ok(None),
        }
    }

    /// The whole input as one source, for a single reader (`pitwall produce`).
    pub fn open_single(&self) -> Result<Box<dyn RecordSource>, InputError> {
        self.open(0, 1, None, Default::default())?
            .ok_or_else(|| InputError::new("no source for this input"))
    }

    pub fn describe(&self) -> String {
        match self {
            InputSpec::Sim(cfg) | InputSpec::SimCloned(cfg) => {
                let track = cfg.track();
                let cloned = matches!(self, InputSpec::SimCloned(_));
                format!(
                    "sim ({}, {} cars, {} laps, seed {}{})",
                    cfg.circuit,
                    cfg.cars,
                    cfg.race_laps(&track),
                    cfg.seed,
                    if cloned { "; cloned per worker" } else { "" }
                )
            }
            InputSpec::Dealt(file) => file.path().display().to_string(),
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
