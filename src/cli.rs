//! The command line: clap's structs for every subcommand, nothing else. `main.rs` dispatches.

use clap::{ArgAction, Args, Parser, Subcommand};
use pitwall::config::PitwallConfig;
use pitwall::engine::RunError;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "pitwall",
    version,
    about = "Real-time stream processing of F1 car telemetry on timely dataflow"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the engine on the simulator (default), a FastF1 file or folder, or Kafka.
    Run(RunArgs),
    /// Replay telemetry (simulator or FastF1 files) into the telemetry topic.
    Produce(ProduceArgs),
    /// Create or list the topics of the configuration.
    Topics(TopicsArgs),
    /// Print a topic's messages as JSON lines, consuming in a named group.
    Tail(TailArgs),
    /// Benchmarks: weak scaling over workers and processes, or Kafka end to end.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Fit the pit-stop model on real races (telemetry + FastF1 laps tables).
    Train(TrainArgs),
    /// Score a run's laps, pit stops, predictions and alerts against a FastF1 laps table.
    Evaluate(EvaluateArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    /// A race folder: a merged `*_race.csv(.gz)` with its `*laps*.csv(.gz)` table in it or
    /// in `side/`. Repeat for each race (default: the training races of ../shared/data).
    #[arg(long = "race", value_name = "DIR")]
    pub races: Vec<PathBuf>,
    /// Where to write the model.
    #[arg(long, value_name = "FILE", default_value = "config/pit_model.toml")]
    pub model_out: PathBuf,
    /// Configuration file (default: the embedded config/pitwall.toml).
    #[arg(long, env = "PITWALL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Engine workers per race run.
    #[arg(short = 'w', long, default_value_t = 1)]
    pub workers: usize,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// The `--out` folder of a `pitwall run`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// FastF1's laps table of the same race (csv or csv.gz).
    #[arg(long, value_name = "FILE")]
    pub laps: PathBuf,
    /// FastF1's track-status table (default: a `*track_status*` file beside the laps table).
    #[arg(long, value_name = "FILE")]
    pub track_status: Option<PathBuf>,
    /// The pit-stop model the run used, for its baselines (default: the embedded one).
    #[arg(long, value_name = "FILE")]
    pub pit_model: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Workers 1, 2, … (and processes), the work growing with them: efficiency = T1 / Tn.
    WeakScaling(WeakScalingArgs),
    /// Produce and engine at once through the broker (started by scripts/kafka.sh).
    Kafka(KafkaBenchArgs),
}

#[derive(Args)]
pub struct WeakScalingArgs {
    /// Worker counts of single-process scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Process counts of one-worker-per-process scenarios on localhost (e.g. 2).
    #[arg(long, value_delimiter = ',')]
    pub processes: Vec<usize>,
    /// `sim`, or a merged FastF1 file that every worker reads, its drivers cloned per worker.
    #[arg(long, default_value = "sim")]
    pub input: String,
    /// Simulator: drivers per worker (default: simulator.cars of the configuration).
    #[arg(long)]
    pub drivers_per_worker: Option<usize>,
    /// Simulator: laps per car, about 326 samples per driver a lap (default: simulator.laps).
    #[arg(long)]
    pub laps: Option<u32>,
    /// Runs per scenario; the fastest is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Name of the results: bench/results/NAME.csv and NAME.svg.
    #[arg(long, default_value = "weak-scaling")]
    pub name: String,
    #[arg(long, default_value = "bench/results")]
    pub results: PathBuf,
}

#[derive(Args)]
pub struct KafkaBenchArgs {
    /// What to produce: `sim` or a FastF1 file.
    #[arg(long, default_value = "sim")]
    pub input: String,
    /// Messages per second to produce at (0 = as fast as possible); with a rate the
    /// sample-to-alert-on-topic latency is measured too.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Engine workers.
    #[arg(short = 'w', long, default_value_t = 1)]
    pub workers: usize,
    #[arg(long, default_value = "kafka")]
    pub name: String,
    #[arg(long, default_value = "bench/results")]
    pub results: PathBuf,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (default: kafka.brokers of the configuration).
    #[arg(long, env = "PITWALL_BROKERS")]
    pub brokers: Option<String>,
    /// Configuration file (default: the embedded config/pitwall.toml).
    #[arg(long, env = "PITWALL_CONFIG")]
    pub config: Option<PathBuf>,
}

impl KafkaArgs {
    pub fn load(&self) -> Result<PitwallConfig, RunError> {
        let mut cfg = PitwallConfig::load(self.config.as_deref())?;
        if let Some(b) = &self.brokers {
            cfg.kafka.brokers = b.clone();
        }
        Ok(cfg)
    }
}

#[derive(Args)]
pub struct ProduceArgs {
    /// `sim` or a FastF1 CSV file or folder, as for `run`.
    #[arg(long, default_value = "sim")]
    pub input: String,
    /// Replay speed: 1.0 = the original spacing, 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
    /// Only these drivers, e.g. VER,HAM,LEC.
    #[arg(long, value_delimiter = ',')]
    pub drivers: Vec<String>,
    /// Simulator: laps per car.
    #[arg(long)]
    pub laps: Option<u32>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Args)]
pub struct TopicsArgs {
    #[arg(value_parser = ["create", "list"])]
    pub action: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Args)]
pub struct TailArgs {
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub group: String,
    /// Start from the earliest offset when the group has none committed (else the latest).
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many messages.
    #[arg(long)]
    pub max: Option<u64>,
    /// Stop after this many seconds without a message.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Args)]
// `-h` is timely's hostfile flag, so help is `--help` only.
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// `sim` (default), a FastF1 CSV file (plain or .gz, merged or per-driver car_data), or a
    /// folder of car_data files. With --brokers and no --input, the telemetry topic.
    #[arg(long)]
    pub input: Option<String>,
    /// Kafka bootstrap servers: read the telemetry topic (unless --input is given) and write
    /// alerts, windows and dead letters to their topics.
    #[arg(long, env = "PITWALL_BROKERS")]
    pub brokers: Option<String>,
    /// Kafka: stop cleanly (flush, commit, summary) once no message has come for SECS.
    #[arg(long, value_name = "SECS")]
    pub until_idle: Option<f64>,
    /// Replay speed: 1.0 = the original spacing of the timestamps, 2.0 twice as fast,
    /// 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
    /// Only these drivers, e.g. VER,HAM,LEC.
    #[arg(long, value_delimiter = ',')]
    pub drivers: Vec<String>,
    /// Write alerts.jsonl, windows.jsonl, dead_letters.jsonl, laps.jsonl, pit_stops.jsonl,
    /// predictions.jsonl and summary.json to this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Configuration file (default: the embedded config/pitwall.toml).
    #[arg(long, env = "PITWALL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Pit-stop model written by `pitwall train` (default: the embedded config/pit_model.toml).
    #[arg(long, value_name = "FILE")]
    pub pit_model: Option<PathBuf>,
    /// Wheel-spin mode, overriding the configuration.
    #[arg(long, value_parser = ["fixed", "calibrated"])]
    pub wheel_spin: Option<String>,
    /// Simulator: laps per car (0 = no end).
    #[arg(long)]
    pub laps: Option<u32>,
    /// Simulator: number of cars.
    #[arg(long)]
    pub cars: Option<usize>,
    /// Simulator: random seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulator: samples per second per car.
    #[arg(long)]
    pub rate_hz: Option<f64>,
    /// Serve the query API (Grafana, Prometheus) here; `off` for none. With a finite input
    /// the server keeps serving after the replay ends, until SIGINT/SIGTERM (default:
    /// http.address of the configuration, 127.0.0.1:5001).
    #[arg(long, env = "PITWALL_HTTP")]
    pub http: Option<String>,
    /// Write summary.json to this file (without the other files of --out).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Benchmarks (weak scaling): every worker reads the file and analyses its own copy of the
    /// race, its drivers renamed CODE#worker.
    #[arg(long)]
    pub clone_drivers: bool,
    /// Print only the final summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Timely: worker threads per process.
    #[arg(short = 'w', long = "workers", default_value_t = 1)]
    pub workers: usize,
    /// Timely: number of processes.
    #[arg(short = 'n', long = "processes", default_value_t = 1)]
    pub processes: usize,
    /// Timely: index of this process.
    #[arg(short = 'p', long = "process", default_value_t = 0)]
    pub process: usize,
    /// Timely: file with one host:port line per process.
    #[arg(short = 'h', long = "hostfile")]
    pub hostfile: Option<PathBuf>,
    #[arg(long, action = ArgAction::Help, help = "Print help")]
    pub help: Option<bool>,
}
