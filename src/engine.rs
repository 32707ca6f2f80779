//! `pitwall run`: builds the dataflow on every worker and runs it to the end of its input.

pub use crate::cluster::Cluster;
use crate::config::{ConfigError, PitwallConfig};
use crate::http::store::{Store, StoreHook};
use crate::ingest::{ingest, EpochClock, InputError, Pace, SourceStats};
use crate::kafka::sink::{kafka_sink, Deliveries};
use crate::kafka::source::{kafka_ingest, CommitBoard, KafkaReader, StopWhen};
use crate::kafka::{BrokerError, KafkaConfig};
use crate::race::model_file::ModelFile;
use crate::report::Summary;
use crate::sinks::collect::collect;
use crate::sinks::collect::{Collector, Console};
use crate::source::InputSpec;
use pitwall_dataflows::dataflow::{analyze_with, Epoch};
use pitwall_dataflows::race::views::race_views;
use pitwall_dataflows::race::RaceBook;
use pitwall_dataflows::DriverId;
use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::dataflow::operators::{Concat, Probe};
use timely::dataflow::ProbeHandle;

/// Kafka in a run: where to read (unless a file or the simulator is the input) and write.
pub struct KafkaRun {
    pub cfg: KafkaConfig,
    /// Read the telemetry topic (else the `input` is read and only the sinks are Kafka).
    pub read: bool,
    pub until_idle: Option<Duration>,
}

pub struct RunOptions {
    pub input: String,
    /// Write summary.json here (alone, without `--out`'s other files).
    pub summary: Option<PathBuf>,
    /// Benchmarks: every worker reads the (merged) file and analyses its own copy.
    pub clone_drivers: bool,
    /// Serve the query API here (`None`: no HTTP server).
    pub http: Option<std::net::SocketAddr>,
    pub kafka: Option<KafkaRun>,
    pub stop: Arc<AtomicBool>,
    pub speed: f64,
    pub drivers: Option<Vec<DriverId>>,
    pub out: Option<PathBuf>,
    pub console: Console,
    pub cluster: Cluster,
    /// The pit-stop model file (`None`: the embedded `config/pit_model.toml`).
    pub pit_model: Option<PathBuf>,
    /// Filled with the race views' rows when the run ends (process 0), for `pitwall train`.
    pub race_book: Option<Arc<Mutex<RaceBook>>>,
}

/// Why a command failed; the binary maps it to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad input or configuration: exit code 2.
    #[error("{0}")]
    Input(String),
    /// Anything else: exit code 1.
    #[error("{0}")]
    Failed(String),
}

impl From<BrokerError> for RunError {
    fn from(e: BrokerError) -> Self {
        RunError::Failed(e.to_string())
    }
}

impl From<ConfigError> for RunError {
    fn from(e: ConfigError) -> Self {
        RunError::Input(e.to_string())
    }
}

impl From<InputError> for RunError {
    fn from(e: InputError) -> Self {
        RunError::Input(e.0)
    }
}

/// Runs the engine; the summary comes from process 0 (other processes return `None`).
pub fn run(cfg: &PitwallConfig, opts: RunOptions) -> Result<Option<Summary>, RunError> {
    let timely_config = opts
        .cluster
        .timely_config()
        .map_err(|e| RunError::Input(e.to_string()))?;
    let filter = opts
        .drivers
        .map(|d| Arc::new(d.into_iter().collect::<HashSet<_>>()));
    let stats = Arc::new(SourceStats::default());
    let kafka = opts.kafka.map(Arc::new);
    let reads_kafka = kafka.as_ref().is_some_and(|k| k.read);
    let spec = if reads_kafka {
        None
    } else {
        Some(Arc::new(InputSpec::resolve_cloned(
            &opts.input,
            &cfg.simulator,
            filter.clone(),
            stats.clone(),
            opts.clone_drivers,
        )?))
    };
    let describe = match (&spec, &kafka) {
        (Some(s), _) => s.describe(),
        (None, Some(k)) => format!("kafka {} on {}", k.cfg.topics.telemetry.name, k.cfg.brokers),
        (None, None) => String::new(),
    };
    let detectors = cfg.detectors();
    let models = ModelFile::load(opts.pit_model.as_deref())?.models();
    let race_book = opts.race_book.clone();
    let pace = Pace {
        speed: opts.speed,
        epoch_ms: cfg.engine.epoch_ms,
        batch: cfg.engine.batch,
    };
    let interval = Duration::from_millis(cfg.engine.progress_interval_ms.max(1));
    let out = opts.out.clone();
    let summary_path = opts.summary.clone();
    let console = opts.console;
    let processes = opts.cluster.processes.max(1);
    let mode = format!("{:?}", detectors.wheel_spin.mode).to_lowercase();
    let stop = opts.stop.clone();
    let stop_after = opts.stop.clone();
    let deliveries = Arc::new(Deliveries::default());
    let sink_deliveries = deliveries.clone();
    let epochs = EpochClock::default();
    let store = opts
        .http
        .map(|_| Arc::new(Store::new(&cfg.http, &cfg.windows)));
    if let (Some(addr), Some(store)) = (opts.http, &store) {
        let bound =
            crate::http::serve(addr, store.clone()).map_err(|e| RunError::Input(e.to_string()))?;
        eprintln!("serving the query API on http://{bound}");
    }
    let serving = store.clone();

    if let Some(dir) = &out {
        std::fs::create_dir_all(dir)
            .map_err(|e| RunError::Input(format!("--out {}: cannot create: {e}", dir.display())))?;
    }

    let commits = CommitBoard::new(kafka.as_ref().map_or("", |k| k.cfg.group_id.as_str()));
    let heartbeat = {
        let commits = commits.clone();
        crate::liveness::watch(
            &timely_config,
            Duration::from_millis(cfg.engine.peer_timeout_ms.max(1)),
            move || {
                if reads_kafka {
                    commits.describe()
                } else {
                    "The input is a file or the simulator: nothing was committed; a restart reads it from the start.".to_string()
                }
            },
        )
        .map_err(|e| RunError::Input(format!("cluster heartbeat: {e}")))?
    };

    let guards = timely::execute(timely_config, move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let reader = match &kafka {
            Some(k) if k.read => Some(Rc::new(RefCell::new(
                KafkaReader::open(
                    &k.cfg,
                    index,
                    peers,
                    store.as_ref().map(|s| s.metrics.consumed_offset.clone()),
                )
                .map_err(|e| InputError::new(e.to_string()))?,
            ))),
            _ => None,
        };
        if let Some(r) = &reader {
            r.borrow_mut().share_commits(commits.clone());
        }
        let source = match &spec {
            Some(spec) => spec.open(index, peers, filter.clone(), stats.clone())?,
            None => None,
        };
        let collector = if index == 0 {
            let c = Collector::new(out.as_deref(), console, interval)
                .map_err(|e| InputError::new(format!("--out: {e}")))?;
            Some(Rc::new(RefCell::new(c)))
        } else {
            None
        };
        let sink = collector.clone();
        let durable: ProbeHandle<Epoch> = ProbeHandle::new();
        worker.dataflow::<Epoch, _, _>(|scope| {
            let records = match (&reader, &kafka) {
                (Some(r), Some(k)) => kafka_ingest(
                    scope,
                    r.clone(),
                    durable.clone(),
                    StopWhen {
                        idle: k.until_idle,
                        signal: stop.clone(),
                    },
                    pace.epoch_ms,
                    k.cfg.consumer.poll_batch,
                    epochs.clone(),
                ),
                _ => ingest(scope, source, pace, epochs.clone(), stop.clone()),
            };
            let outputs = match &store {
                Some(store) => analyze_with(
                    records,
                    &detectors,
                    StoreHook::new(store.clone(), epochs.clone()),
                ),
                None => analyze_with(records, &detectors, pitwall_dataflows::dataflow::NoHook),
            };
            let race = race_views(outputs.clone(), &detectors.race, &models);
            if let Some(store) = &store {
                crate::http::store::race_into_store(race.clone(), store.clone());
            }
            let outputs = outputs.concat(race);
            if let Some(k) = &kafka {
                kafka_sink(outputs.clone(), &k.cfg, deliveries.clone())
                    .map_err(|e| InputError::new(e.to_string()))?
                    .probe_with(&durable);
            }
            collect(outputs, sink, out.is_some(), epochs.clone());
            Ok::<_, InputError>(())
        })?;
        while worker.step_or_park(Some(Duration::from_millis(50))) {
            if let Some(c) = &collector {
                c.borrow_mut().tick();
            }
        }
        if let Some(r) = &reader {
            // Every output has been acknowledged: the dataflow only ends once the sinks let go.
            let committed = r.borrow_mut().commit_all();
            tracing::info!(worker = index, ?committed, "committed offsets");
        }
        let Some(collector) = collector else {
            return Ok(None);
        };
        let collector = Rc::try_unwrap(collector)
            .map_err(|_| InputError::new("collector still shared after the dataflow ended"))?
            .into_inner();
        if let Some(slot) = &race_book {
            if let Ok(mut book) = slot.lock() {
                *book = collector.race().clone();
            }
        }
        let summary = collector
            .finish(
                summary_path.as_deref(),
                describe.clone(),
                stats.filtered.load(Ordering::Relaxed),
                peers,
                processes,
                mode.clone(),
            )
            .map_err(|e| InputError::new(e.to_string()))?;
        Ok::<_, InputError>(Some(summary))
    })
    .map_err(RunError::Failed)?;

    let results = guards.join();
    if let Some(gap) = sink_deliveries.gaps.longest() {
        tracing::info!(
            acknowledged = sink_deliveries.acked.load(Ordering::Relaxed),
            "kafka sink: {gap}"
        );
    }
    if let Some(h) = heartbeat {
        h.finish();
    }
    let mut summary = None;
    for result in results {
        match result {
            Ok(Ok(Some(s))) => summary = Some(s),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(RunError::Input(e.0)),
            Err(panic) => return Err(RunError::Failed(format!("a worker failed: {panic}"))),
        }
    }
    if serving.is_some() && !stop_after.load(Ordering::Relaxed) {
        if let Some(s) = &summary {
            crate::report::print_summary(s);
        }
        eprintln!("input finished; still serving the query API until Ctrl-C (SIGINT) or SIGTERM");
        while !stop_after.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return Ok(None);
    }
    Ok(summary)
}
