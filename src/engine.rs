//! `pitwall run`: builds the dataflow on every worker and runs it to the end of its input.

use crate::config::PitwallConfig;
use crate::report::{Collector, Console, Summary};
use crate::source::{ingest, InputError, InputSpec, Pace, SourceStats};
use pitwall_dataflows::dataflow::{analyze, Epoch};
use pitwall_dataflows::{DriverId, Output};
use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

/// Timely's own cluster flags, as a user of timely expects them.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub workers: usize,
    pub processes: usize,
    pub process: usize,
    pub hostfile: Option<PathBuf>,
}

impl Cluster {
    /// Builds timely's configuration through timely's own parser, so `-w -n -p -h` mean
    /// exactly what they mean to timely (a hostfile line per process, default localhost:2101+).
    pub fn timely_config(&self) -> Result<timely::Config, String> {
        let mut args = vec![
            "pitwall".to_string(),
            "-w".into(),
            self.workers.max(1).to_string(),
            "-n".into(),
            self.processes.max(1).to_string(),
            "-p".into(),
            self.process.to_string(),
        ];
        if let Some(h) = &self.hostfile {
            args.push("-h".into());
            args.push(h.display().to_string());
        }
        if self.process >= self.processes.max(1) {
            return Err(format!(
                "-p {} must be below -n {}",
                self.process,
                self.processes.max(1)
            ));
        }
        timely::Config::from_args(args.into_iter())
            .map_err(|e| format!("timely configuration: {e}"))
    }
}

pub struct RunOptions {
    pub input: String,
    pub speed: f64,
    pub drivers: Option<Vec<DriverId>>,
    pub out: Option<PathBuf>,
    pub console: Console,
    pub cluster: Cluster,
}

#[derive(Debug)]
pub enum RunError {
    /// Bad input or configuration: exit code 2.
    Input(String),
    /// Anything else: exit code 1.
    Failed(String),
}

impl From<InputError> for RunError {
    fn from(e: InputError) -> Self {
        RunError::Input(e.0)
    }
}

/// Runs the engine; the summary comes from process 0 (other processes return `None`).
pub fn run(cfg: &PitwallConfig, opts: RunOptions) -> Result<Option<Summary>, RunError> {
    let timely_config = opts.cluster.timely_config().map_err(RunError::Input)?;
    let filter = opts
        .drivers
        .map(|d| Arc::new(d.into_iter().collect::<HashSet<_>>()));
    let stats = Arc::new(SourceStats::default());
    let spec = Arc::new(InputSpec::resolve(
        &opts.input,
        &cfg.simulator,
        filter.clone(),
        stats.clone(),
    )?);
    let detectors = cfg.detectors();
    let pace = Pace {
        speed: opts.speed,
        epoch_ms: cfg.engine.epoch_ms,
        batch: cfg.engine.batch,
    };
    let interval = Duration::from_millis(cfg.engine.progress_interval_ms.max(1));
    let out = opts.out.clone();
    let console = opts.console;
    let processes = opts.cluster.processes.max(1);
    let mode = format!("{:?}", detectors.wheel_spin.mode).to_lowercase();

    if let Some(dir) = &out {
        std::fs::create_dir_all(dir)
            .map_err(|e| RunError::Input(format!("--out {}: cannot create: {e}", dir.display())))?;
    }

    let guards = timely::execute(timely_config, move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let source = spec.open(index, peers, filter.clone(), stats.clone())?;
        let collector = if index == 0 {
            let c = Collector::new(out.as_deref(), console, interval)
                .map_err(|e| InputError::new(format!("--out: {e}")))?;
            Some(Rc::new(RefCell::new(c)))
        } else {
            None
        };
        let sink = collector.clone();
        worker.dataflow::<Epoch, _, _>(|scope| {
            let outputs = analyze(ingest(scope, source, pace), &detectors);
            outputs.sink(
                Exchange::new(|_: &Output| 0),
                "Collect",
                move |(input, _frontier)| {
                    input.for_each(|_time, data| {
                        if let Some(c) = &sink {
                            let mut c = c.borrow_mut();
                            for o in data.drain(..) {
                                c.observe(o);
                            }
                        }
                    });
                },
            );
        });
        while worker.step_or_park(Some(Duration::from_millis(50))) {
            if let Some(c) = &collector {
                c.borrow_mut().tick();
            }
        }
        let Some(collector) = collector else {
            return Ok(None);
        };
        let collector = Rc::try_unwrap(collector)
            .map_err(|_| InputError::new("collector still shared after the dataflow ended"))?
            .into_inner();
        let summary = collector
            .finish(
                spec.describe(),
                stats.filtered.load(Ordering::Relaxed),
                peers,
                processes,
                mode.clone(),
            )
            .map_err(InputError::new)?;
        Ok::<_, InputError>(Some(summary))
    })
    .map_err(RunError::Failed)?;

    let mut summary = None;
    for result in guards.join() {
        match result {
            Ok(Ok(Some(s))) => summary = Some(s),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(RunError::Failed(e.0)),
            Err(panic) => return Err(RunError::Failed(format!("a worker failed: {panic}"))),
        }
    }
    Ok(summary)
}
