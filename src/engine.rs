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
use pitwall_dataflows::dataflow::{analyze_placed, Epoch};
use pitwall_dataflows::placement::Placement;
use pitwall_dataflows::race::views::race_views;
use pitwall_dataflows::race::RaceBook;
use pitwall_dataflows::DriverId;
use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    /// After a finite input, keep serving the query API until SIGINT/SIGTERM (else the run
    /// returns when its input is done).
    pub keep_serving: bool,
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
    let mut detectors = cfg.detectors();
    if !reads_kafka && opts.speed <= 0.0 {
        // Replayed flat out: nobody watches the race views move (see the config's comment).
        detectors.race.view_step_epochs = detectors.race.replay_view_step_epochs;
    }
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
    let workers_per_process = opts.cluster.workers.max(1);
    let mode = format!("{:?}", detectors.wheel_spin.mode).to_lowercase();
    let stop = opts.stop.clone();
    let stop_after = opts.stop.clone();
    let deliveries = Arc::new(Deliveries::default());
    let sink_deliveries = deliveries.clone();
    let epochs = EpochClock::default();
    let store = opts
        .http
        .map(|_| Arc::new(Store::new(&cfg.http, &cfg.windows)));
    let mut bound = None;
    if let (Some(addr), Some(store)) = (opts.http, &store) {
        let at = crate::http::serve(addr, store.clone(), &cfg.http)
            .map_err(|e| RunError::Input(e.to_string()))?;
        eprintln!("serving the query API on http://{at}");
        bound = Some(at);
    }

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

    let finished = Arc::new(AtomicBool::new(false));
    stop_deadline(
        opts.stop.clone(),
        finished.clone(),
        Duration::from_millis(cfg.engine.stop_grace_ms),
        {
            let (commits, deliveries) = (commits.clone(), deliveries.clone());
            let writes_kafka = kafka.is_some();
            move || {
                let sent = if writes_kafka {
                    format!(
                        "{} outputs were not acknowledged by the broker. ",
                        deliveries.in_flight()
                    )
                } else {
                    "Outputs not yet written are lost. ".to_string()
                };
                let input = if reads_kafka {
                    format!(
                        "{} Unacknowledged outputs are sent again then.",
                        commits.describe()
                    )
                } else {
                    "A restart reads the input from the start.".to_string()
                };
                sent + &input
            }
        },
    );

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
                    store.as_ref().map(|s| s.metrics.consumer_lag.clone()),
                )
                .map_err(|e| InputError::new(e.to_string()))?,
            ))),
            _ => None,
        };
        if let Some(r) = &reader {
            r.borrow_mut().share_commits(commits.clone());
        }
        let source = match &spec {
            Some(spec) => {
                let first = index - index % workers_per_process;
                spec.open_in(
                    index,
                    peers,
                    first..first + workers_per_process,
                    filter.clone(),
                    stats.clone(),
                )?
            }
            None => None,
        };
        let placement = spec
            .as_ref()
            .map_or_else(Placement::hashed, |s| s.placement(peers));
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
                Some(store) => analyze_placed(
                    records,
                    &detectors,
                    StoreHook::new(store.clone(), epochs.clone()),
                    &placement,
                ),
                None => analyze_placed(
                    records,
                    &detectors,
                    pitwall_dataflows::dataflow::NoHook,
                    &placement,
                ),
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
    finished.store(true, Ordering::SeqCst);
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
    if let Some(at) = bound {
        if opts.keep_serving && !stop_after.load(Ordering::Relaxed) {
            if let Some(s) = &summary {
                crate::report::print_summary(s);
            }
            eprintln!(
                "input finished; still serving the query API on http://{at} until Ctrl-C (SIGINT) or SIGTERM"
            );
            while !stop_after.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
            return Ok(None);
        }
        eprintln!(
            "input finished; the query API was on http://{at} (--keep-serving keeps it up after the input)"
        );
    }
    Ok(summary)
}

/// Once `stop` is set (SIGINT/SIGTERM), gives the run `grace` to flush and commit; a run still
/// blocked then (its broker unreachable, a peer gone quiet) is ended with exit code 1 and one
/// line saying what `unflushed()` reports. A run that finishes in time sets `finished` first.
fn stop_deadline(
    stop: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    grace: Duration,
    unflushed: impl Fn() -> String + Send + 'static,
) {
    let spawned = std::thread::Builder::new()
        .name("pitwall-stop-deadline".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "error: still not stopped {:.1} s after the signal (a broker or a peer is \
                 unreachable); exiting without flushing. {}",
                grace.as_secs_f64(),
                unflushed()
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!("no stop deadline: {e}");
    }
}
