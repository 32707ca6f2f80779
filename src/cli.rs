//! The command line: clap's structs for every subcommand, nothing else. `main.rs` dispatches.

use clap::{Args, Parser, Subcommand};
use pitwall::config::PitwallConfig;
use pitwall::error::Error;
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
    Run(Box<RunArgs>),
    /// Replay telemetry (simulator or FastF1 files) into the telemetry topic.
    Produce(ProduceArgs),
    /// Create or list the topics of the configuration.
    Topics(TopicsArgs),
    /// Print a topic's messages as JSON lines, consuming in a named group.
    Tail(TailArgs),
    /// Benchmarks: weak scaling, Kafka end to end, against the Bytewax peer, the query API
    /// under load.
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
    /// Every race's results (Ergast's races, results, status and drivers tables): the base
    /// rates of crashes and tyre failures are counted on its races of 2014-2022.
    #[arg(long, value_name = "DIR", default_value = "../shared/data/history")]
    pub history: PathBuf,
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
    /// Every race's results, for how each car's race ended (crash_risk and tire_failure are
    /// scored against it; the race is found by its date). Skipped when absent.
    #[arg(long, value_name = "DIR", default_value = "../shared/data/history")]
    pub history: PathBuf,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Workers 1, 2, … (and processes), the work growing with them: efficiency = T1 / Tn.
    WeakScaling(WeakScalingArgs),
    /// Produce and engine at once through the broker (started by scripts/kafka.sh).
    Kafka(KafkaBenchArgs),
    /// The engine on the real race side by side with the Bytewax peer
    /// (../shared/peers/bytewax_pipeline.py), pair by pair; pitwall alone without bytewax.
    Peers(PeersBenchArgs),
    /// The query API under wrk while an endless simulator run fills it: req/s, latency, the
    /// engine's records/s meanwhile and its peak RSS.
    Http(HttpBenchArgs),
}

#[derive(Args)]
pub struct PeersBenchArgs {
    /// The race both engines read: a merged FastF1 file, gzip (the peer reads only gzip).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "../shared/data/monaco-2023/monaco_2023_race.csv.gz"
    )]
    pub input: PathBuf,
    /// Worker counts; both engines run with each.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Pairs (a pitwall run and a peer run, one right after the other) per worker count; the
    /// medians and the median of the pairs' ratios are reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// A Python with bytewax 0.21.1 (default: the active venv's python, then python3, if it
    /// imports bytewax; else pitwall runs alone).
    #[arg(long, value_name = "PATH", env = "PITWALL_PEER_PYTHON")]
    pub python: Option<PathBuf>,
    /// The peer's script.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "../shared/peers/bytewax_pipeline.py"
    )]
    pub peer_script: PathBuf,
    /// The peer's dataflow: `ops` (one operator per concern, as pitwall) or `fused` (one
    /// operator, its fastest form).
    #[arg(long, value_parser = ["ops", "fused"], default_value = "ops")]
    pub peer_mode: String,
    /// Name of the results: bench/results/NAME.csv and NAME.svg.
    #[arg(long, default_value = "peers")]
    pub name: String,
    /// Folder of the results.
    #[arg(long, default_value = "bench/results")]
    pub results: PathBuf,
}

#[derive(Args)]
pub struct HttpBenchArgs {
    /// The request wrk sends, path and query.
    #[arg(
        long,
        default_value = "/api/series?driver=SIM01&metric=speed&maxDataPoints=1000"
    )]
    pub request: String,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// wrk's connections (-c).
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// wrk's threads (-t).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Simulated cars, each buffer filled before the load.
    #[arg(long, default_value_t = 20)]
    pub cars: usize,
    /// Points kept per driver, the buffers to fill (default: http.points_per_driver of the
    /// configuration, 60,000).
    #[arg(long)]
    pub points_per_driver: Option<usize>,
    /// Engine workers.
    #[arg(short = 'w', long, default_value_t = 1)]
    pub workers: usize,
    /// Give up when the buffers are not full after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub fill_timeout: u64,
    /// The wrk binary.
    #[arg(long, value_name = "PATH", default_value = "wrk")]
    pub wrk: PathBuf,
    /// Configuration file of the engine (default: the embedded config/pitwall.toml).
    #[arg(long, env = "PITWALL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Name of the results: bench/results/NAME.csv and NAME.svg.
    #[arg(long, default_value = "http")]
    pub name: String,
    /// Folder of the results.
    #[arg(long, default_value = "bench/results")]
    pub results: PathBuf,
}

#[derive(Args)]
pub struct WeakScalingArgs {
    /// Worker counts of single-process scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Process counts of one-worker-per-process scenarios on localhost (e.g. 2).
    #[arg(long, value_delimiter = ',')]
    pub processes: Vec<usize>,
    /// `sim` (every worker runs its own copy of the race) or a merged FastF1 file that every worker reads, its drivers cloned per worker.
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
    /// Folder of the results.
    #[arg(long, default_value = "bench/results")]
    pub results: PathBuf,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
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
    /// Name of the results: bench/results/NAME.csv and NAME.svg.
    #[arg(long, default_value = "kafka")]
    pub name: String,
    /// Folder of the results.
    #[arg(long, default_value = "bench/results")]
    pub results: PathBuf,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, host:port[,host:port...] (default: kafka.brokers of the
    /// configuration).
    #[arg(
        short = 'b',
        long,
        visible_alias = "bootstrap-server",
        env = "PITWALL_BROKERS"
    )]
    pub brokers: Option<String>,
    /// A librdkafka property for every Kafka client, e.g. -X security.protocol=SASL_SSL
    /// (repeat for more; adds to or replaces [kafka.properties] of the configuration).
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE", value_parser = property)]
    pub properties: Vec<(String, String)>,
    /// Configuration file (default: the embedded config/pitwall.toml).
    #[arg(long, env = "PITWALL_CONFIG")]
    pub config: Option<PathBuf>,
}

impl KafkaArgs {
    pub fn load(&self) -> Result<PitwallConfig, Error> {
        let mut cfg = PitwallConfig::load(self.config.as_deref())?;
        kafka_overrides(&mut cfg, self.brokers.as_deref(), &self.properties)?;
        Ok(cfg)
    }
}

/// `-X KEY=VALUE`.
fn property(arg: &str) -> Result<(String, String), NotKeyValue> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(NotKeyValue(arg.to_string())),
    }
}

/// A `-X` argument without a key and a value.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not KEY=VALUE")]
pub struct NotKeyValue(String);

/// `--brokers` and `-X` laid over the configuration; the properties checked by librdkafka.
pub fn kafka_overrides(
    cfg: &mut PitwallConfig,
    brokers: Option<&str>,
    properties: &[(String, String)],
) -> Result<(), Error> {
    if let Some(b) = brokers {
        cfg.kafka.brokers = b.to_string();
    }
    for (key, value) in properties {
        cfg.kafka
            .properties
            .insert(key.clone(), toml::Value::String(value.clone()));
    }
    Ok(cfg.kafka.validate()?)
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
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
    /// `create` the configuration's topics (those that exist are left as they are) and list
    /// the cluster's topics, or only `list` them.
    #[arg(value_parser = ["create", "list"])]
    pub action: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct TailArgs {
    /// The topic to read.
    #[arg(long)]
    pub topic: String,
    /// The consumer group to read in: its committed offsets are where the next tail starts.
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
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// `sim` (default), a FastF1 CSV file (plain or .gz, merged or per-driver car_data), or a
    /// folder of car_data files. With --brokers and no --input, the telemetry topic.
    #[arg(long)]
    pub input: Option<String>,
    /// Kafka (--brokers: read the telemetry topic unless --input is given, and write the
    /// outputs to their topics), -X properties and the configuration file.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Kafka: the engine's consumer group, where it resumes (default: kafka.group_id of the
    /// configuration); a new group reads the topic from its start.
    #[arg(long)]
    pub group: Option<String>,
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
    /// predictions.jsonl, predictions_first.jsonl and laps_first.jsonl (as first emitted) and
    /// summary.json to this folder (the race views keep their live step).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pit-stop model written by `pitwall train` (default: the embedded config/pit_model.toml).
    #[arg(long, value_name = "FILE")]
    pub pit_model: Option<PathBuf>,
    /// Wheel-spin mode, overriding the configuration.
    #[arg(long, value_parser = ["fixed", "calibrated"])]
    pub wheel_spin: Option<String>,
    /// A feed without lap numbers: count laps from the distance each car covers, one every
    /// METRES (the circuit's length, e.g. 3337 at Monaco); overrides race.lap_length_m.
    #[arg(long, value_name = "METRES")]
    pub lap_length: Option<f64>,
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
    /// Simulator: the circuit, one of the configuration's [simulator.circuits] (monaco,
    /// monza, silverstone).
    #[arg(long)]
    pub circuit: Option<String>,
    /// Simulator: write what happened in the race to this folder (laps.csv, track_status.csv,
    /// incidents.csv), for `pitwall evaluate --laps DIR/laps.csv`.
    #[arg(long, value_name = "DIR")]
    pub truth: Option<PathBuf>,
    /// Serve the query API (Grafana, Prometheus) here; `off` for none (default: http.address
    /// of the configuration, 127.0.0.1:5001).
    #[arg(long, env = "PITWALL_HTTP")]
    pub http: Option<String>,
    /// With a finite input (a file, the simulator's race), keep serving the query API after
    /// the input is done, until SIGINT/SIGTERM. Without it a run keeps serving only when its
    /// output is a terminal.
    #[arg(long)]
    pub keep_serving: bool,
    /// Write summary.json to this file (without the other files of --out).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Benchmarks (weak scaling): every worker reads the file (or runs the simulator's race)
    /// and analyses its own copy of the race, its drivers renamed CODE#worker.
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
    /// Timely: index of this process, 0 to processes - 1.
    #[arg(short = 'p', long = "process", default_value_t = 0)]
    pub process: usize,
    /// Timely: file with one host:port line per process (timely's own `-h`).
    #[arg(long = "hostfile", value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
}

impl Cli {
    /// Values clap parsed but pitwall cannot use, as clap's own error: the message, the
    /// subcommand's usage line, exit code 2.
    pub fn check(&self) -> Result<(), clap::Error> {
        let problem = match &self.command {
            Command::Run(a) => check_run(a),
            Command::Produce(a) => non_negative("--speed", a.speed),
            Command::Tail(a) => positive("--timeout", a.timeout),
            Command::Train(a) => at_least_one("--workers", a.workers),
            Command::Bench(BenchCommand::Kafka(a)) => {
                non_negative("--rate", a.rate).or_else(|| at_least_one("--workers", a.workers))
            }
            Command::Bench(BenchCommand::Peers(a)) => (a.workers.is_empty()
                || a.workers.contains(&0))
            .then(|| "--workers takes counts of at least 1".to_string())
            .or_else(|| at_least_one("--repeat", a.repeat)),
            Command::Bench(BenchCommand::Http(a)) => at_least_one("--duration", a.duration as usize)
                .or_else(|| at_least_one("--connections", a.connections))
                .or_else(|| at_least_one("--threads", a.threads))
                .or_else(|| {
                    (a.threads > a.connections).then(|| {
                        format!(
                            "--threads {} must not exceed --connections {} (wrk gives each thread connections)",
                            a.threads, a.connections
                        )
                    })
                })
                .or_else(|| at_least_one("--cars", a.cars))
                .or_else(|| a.points_per_driver.and_then(|p| at_least_one("--points-per-driver", p)))
                .or_else(|| at_least_one("--workers", a.workers))
                .or_else(|| at_least_one("--fill-timeout", a.fill_timeout as usize))
                .or_else(|| pitwall::bench::http_load::request_problem(&a.request)),
            Command::Bench(BenchCommand::WeakScaling(a)) => {
                (a.workers.is_empty() || a.workers.contains(&0) || a.processes.contains(&0))
                    .then(|| "--workers and --processes take counts of at least 1".to_string())
            }
            Command::Topics(_) | Command::Evaluate(_) => None,
        };
        let Some(message) = problem else {
            return Ok(());
        };
        let mut cmd = <Cli as clap::CommandFactory>::command();
        cmd.build();
        let mut sub = self
            .subcommand_path()
            .into_iter()
            .fold(cmd, |c, name| c.find_subcommand(name).cloned().unwrap_or(c));
        Err(sub.error(clap::error::ErrorKind::ValueValidation, message))
    }

    fn subcommand_path(&self) -> Vec<&'static str> {
        match &self.command {
            Command::Run(_) => vec!["run"],
            Command::Produce(_) => vec!["produce"],
            Command::Topics(_) => vec!["topics"],
            Command::Tail(_) => vec!["tail"],
            Command::Bench(BenchCommand::WeakScaling(_)) => vec!["bench", "weak-scaling"],
            Command::Bench(BenchCommand::Kafka(_)) => vec!["bench", "kafka"],
            Command::Bench(BenchCommand::Peers(_)) => vec!["bench", "peers"],
            Command::Bench(BenchCommand::Http(_)) => vec!["bench", "http"],
            Command::Train(_) => vec!["train"],
            Command::Evaluate(_) => vec!["evaluate"],
        }
    }
}

fn check_run(a: &RunArgs) -> Option<String> {
    non_negative("--speed", a.speed)
        .or_else(|| at_least_one("--workers", a.workers))
        .or_else(|| at_least_one("--processes", a.processes))
        .or_else(|| {
            (a.process >= a.processes).then(|| {
                format!(
                    "-p {} must be below -n {} (processes are numbered from 0)",
                    a.process, a.processes
                )
            })
        })
        .or_else(|| a.until_idle.and_then(|s| positive("--until-idle", s)))
        .or_else(|| a.rate_hz.and_then(|r| positive("--rate-hz", r)))
}

fn non_negative(flag: &str, v: f64) -> Option<String> {
    (!(v.is_finite() && v >= 0.0)).then(|| format!("{flag} {v} must be 0 or a positive number"))
}

fn positive(flag: &str, v: f64) -> Option<String> {
    (!(v.is_finite() && v > 0.0)).then(|| format!("{flag} {v} must be a positive number"))
}

fn at_least_one(flag: &str, v: usize) -> Option<String> {
    (v == 0).then(|| format!("{flag} {v}: at least 1"))
}

/// `run -h FILE` meant timely's hostfile before `-h` was help: say so instead of printing help.
pub fn old_hostfile_flag(args: &[String]) -> Option<String> {
    if args.get(1).map(String::as_str) != Some("run") {
        return None;
    }
    let at = args.iter().position(|a| a == "-h")?;
    let file = args.get(at + 1)?;
    (!file.starts_with('-'))
        .then(|| format!("`-h` is help; timely's hostfile is `--hostfile {file}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut cmd = Cli::command();
        cmd.build();
        walk(&cmd, "pitwall", &mut missing);
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }

    #[test]
    fn property_flags_are_key_value() {
        assert_eq!(
            property("sasl.mechanisms=SCRAM-SHA-512").unwrap(),
            ("sasl.mechanisms".into(), "SCRAM-SHA-512".into())
        );
        assert_eq!(property("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(property("no-value").is_err());
        assert!(property("=x").is_err());
    }
}
