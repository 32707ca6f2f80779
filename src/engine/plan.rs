//! What a run was asked for ([`RunOptions`]) and what it resolved to before any worker starts
//! ([`Plan`]: the input, the detectors and models, the shared counters and the query store),
//! one `Clone` value each worker takes.

use crate::cluster::Cluster;
use crate::config::PitwallConfig;
use crate::error::Error;
use crate::http::store::Store;
use crate::ingest::{EpochClock, Pace, SourceStats};
use crate::kafka::sink::Deliveries;
use crate::kafka::source::CommitBoard;
use crate::kafka::transaction::Transactions;
use crate::kafka::KafkaConfig;
use crate::models::model_file::ModelFile;
use crate::sinks::collect::Console;
use crate::source::InputSpec;
use pitwall_dataflows::config::DetectorConfig;
use pitwall_dataflows::race::predict::Models;
use pitwall_dataflows::race::RaceBook;
use pitwall_dataflows::DriverId;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

impl RunOptions {
    /// A quiet replay of `input` as fast as it goes on `workers` threads of one process, with
    /// no outputs but the summary (callers add what they need).
    pub fn replay(input: impl Into<String>, workers: usize) -> RunOptions {
        RunOptions {
            input: input.into(),
            summary: None,
            clone_drivers: false,
            http: None,
            keep_serving: false,
            kafka: None,
            stop: Arc::new(AtomicBool::new(false)),
            speed: 0.0,
            drivers: None,
            out: None,
            console: Console::Quiet,
            cluster: Cluster {
                workers,
                processes: 1,
                process: 0,
                hostfile: None,
            },
            pit_model: None,
            race_book: None,
        }
    }
}

/// A run resolved: every worker takes a clone (the shared parts are `Arc`s).
#[derive(Clone)]
pub(super) struct Plan {
    /// The file or simulator to read (`None`: the Kafka topic).
    pub spec: Option<Arc<InputSpec>>,
    pub kafka: Option<Arc<KafkaRun>>,
    pub filter: Option<Arc<HashSet<DriverId>>>,
    pub stats: Arc<SourceStats>,
    /// What the summary says was read.
    pub describe: String,
    pub detectors: DetectorConfig,
    pub models: Models,
    pub pace: Pace,
    /// How often the live summary line is printed.
    pub interval: Duration,
    pub out: Option<PathBuf>,
    pub summary_path: Option<PathBuf>,
    pub console: Console,
    pub processes: usize,
    pub workers_per_process: usize,
    pub stop: Arc<AtomicBool>,
    pub deliveries: Arc<Deliveries>,
    pub commits: CommitBoard,
    /// Process 0's Kafka transactions, when outputs are exactly once (`None` elsewhere).
    pub transactions: Option<Arc<Transactions>>,
    pub epochs: EpochClock,
    pub store: Option<Arc<Store>>,
    pub race_book: Option<Arc<Mutex<RaceBook>>>,
}

impl Plan {
    pub fn resolve(cfg: &PitwallConfig, opts: RunOptions) -> Result<Plan, Error> {
        let filter = opts
            .drivers
            .as_ref()
            .map(|d| Arc::new(d.iter().copied().collect::<HashSet<_>>()));
        let stats = Arc::new(SourceStats::default());
        let reads_kafka = opts.kafka.as_ref().is_some_and(|k| k.read);
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
        let describe = match (&spec, &opts.kafka) {
            (Some(s), _) => s.describe(),
            (None, Some(k)) => {
                format!("kafka {} on {}", k.cfg.topics.telemetry.name, k.cfg.brokers)
            }
            (None, None) => String::new(),
        };
        let commits = CommitBoard::new(opts.kafka.as_ref().map_or("", |k| k.cfg.group_id.as_str()));
        let mut detectors = cfg.detectors();
        if !reads_kafka && opts.speed <= 0.0 && opts.out.is_none() {
            // Replayed flat out: nobody watches the race views move (see the config's
            // comment). With `--out` the predictions are kept as first emitted, which must be
            // what a pit wall would have read live, so the views keep their live step.
            detectors.race.view_step_epochs = detectors.race.replay_view_step_epochs;
        }
        let transactions = opts
            .kafka
            .as_ref()
            .filter(|k| k.read && k.cfg.transactions.enabled && opts.cluster.process == 0)
            .map(|k| {
                Arc::new(Transactions::new(
                    &k.cfg,
                    opts.cluster.workers.max(1),
                    detectors.race.view_step_epochs,
                    commits.clone(),
                ))
            });
        Ok(Plan {
            spec,
            kafka: opts.kafka.map(Arc::new),
            filter,
            stats,
            describe,
            detectors,
            models: ModelFile::load(opts.pit_model.as_deref())?.models(),
            pace: Pace {
                speed: opts.speed,
                epoch_ms: cfg.engine.epoch_ms,
                batch: cfg.engine.batch,
            },
            interval: Duration::from_millis(cfg.engine.progress_interval_ms.max(1)),
            out: opts.out,
            summary_path: opts.summary,
            console: opts.console,
            processes: opts.cluster.processes.max(1),
            workers_per_process: opts.cluster.workers.max(1),
            stop: opts.stop,
            deliveries: Arc::new(Deliveries::default()),
            commits,
            transactions,
            epochs: EpochClock::default(),
            store: opts
                .http
                .map(|_| Arc::new(Store::new(&cfg.http, &cfg.windows))),
            race_book: opts.race_book,
        })
    }

    /// Outputs go to Kafka in transactions (exactly once), with the offsets of the Kafka input
    /// they came from. A file or the simulator has no offsets to commit, and its restart
    /// starts over: its outputs go as sent.
    pub fn transactional(&self) -> bool {
        self.kafka
            .as_ref()
            .is_some_and(|k| k.read && k.cfg.transactions.enabled)
    }

    /// Reads the Kafka telemetry topic (not a file or the simulator).
    pub fn reads_kafka(&self) -> bool {
        self.kafka.as_ref().is_some_and(|k| k.read)
    }

    /// The wheel-spin mode, as the summary names it.
    pub fn wheel_spin_mode(&self) -> String {
        format!("{:?}", self.detectors.wheel_spin.mode).to_lowercase()
    }
}
