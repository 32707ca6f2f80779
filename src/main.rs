//! `pitwall`: real-time stream processing of Formula 1 car telemetry on timely dataflow.

use pitwall::{bench, config, engine, kafka, report, source};

use clap::{ArgAction, Args, Parser, Subcommand};
use config::PitwallConfig;
use engine::{Cluster, KafkaRun, RunError, RunOptions};
use pitwall_dataflows::config::WheelSpinMode;
use pitwall_dataflows::DriverId;
use report::Console;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pitwall",
    version,
    about = "Real-time stream processing of F1 car telemetry on timely dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Workers 1, 2, … (and processes), the work growing with them: efficiency = T1 / Tn.
    WeakScaling(WeakScalingArgs),
    /// Produce and engine at once through the broker (started by scripts/kafka.sh).
    Kafka(KafkaBenchArgs),
}

#[derive(Args)]
struct WeakScalingArgs {
    /// Worker counts of single-process scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
    /// Process counts of one-worker-per-process scenarios on localhost (e.g. 2).
    #[arg(long, value_delimiter = ',')]
    processes: Vec<usize>,
    /// `sim`, or a merged FastF1 file that every worker reads, its drivers cloned per worker.
    #[arg(long, default_value = "sim")]
    input: String,
    /// Simulator: drivers per worker.
    #[arg(long, default_value_t = 20)]
    drivers_per_worker: usize,
    /// Simulator: laps per car (about 326 samples per driver a lap).
    #[arg(long, default_value_t = 78)]
    laps: u32,
    /// Runs per scenario; the fastest is kept.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Name of the results: bench/results/NAME.csv and NAME.svg.
    #[arg(long, default_value = "weak-scaling")]
    name: String,
    #[arg(long, default_value = "bench/results")]
    results: PathBuf,
}

#[derive(Args)]
struct KafkaBenchArgs {
    #[arg(long, env = "PITWALL_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// What to produce: `sim` or a FastF1 file.
    #[arg(long, default_value = "sim")]
    input: String,
    /// Messages per second to produce at (0 = as fast as possible); with a rate the
    /// sample-to-alert-on-topic latency is measured too.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Engine workers.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    #[arg(long, default_value = "kafka")]
    name: String,
    #[arg(long, default_value = "bench/results")]
    results: PathBuf,
}

#[derive(Args)]
struct KafkaArgs {
    /// Kafka bootstrap servers (default: kafka.brokers of the configuration).
    #[arg(long, env = "PITWALL_BROKERS")]
    brokers: Option<String>,
    /// Configuration file (default: the embedded config/pitwall.toml).
    #[arg(long, env = "PITWALL_CONFIG")]
    config: Option<PathBuf>,
}

impl KafkaArgs {
    fn load(&self) -> Result<PitwallConfig, RunError> {
        let mut cfg = PitwallConfig::load(self.config.as_deref()).map_err(RunError::Input)?;
        if let Some(b) = &self.brokers {
            cfg.kafka.brokers = b.clone();
        }
        Ok(cfg)
    }
}

#[derive(Args)]
struct ProduceArgs {
    /// `sim` or a FastF1 CSV file or folder, as for `run`.
    #[arg(long, default_value = "sim")]
    input: String,
    /// Replay speed: 1.0 = the original spacing, 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    speed: f64,
    /// Only these drivers, e.g. VER,HAM,LEC.
    #[arg(long, value_delimiter = ',')]
    drivers: Vec<String>,
    /// Simulator: laps per car.
    #[arg(long)]
    laps: Option<u32>,
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[derive(Args)]
struct TopicsArgs {
    #[arg(value_parser = ["create", "list"])]
    action: String,
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[derive(Args)]
struct TailArgs {
    #[arg(long)]
    topic: String,
    #[arg(long)]
    group: String,
    /// Start from the earliest offset when the group has none committed (else the latest).
    #[arg(long)]
    from_beginning: bool,
    /// Stop after this many messages.
    #[arg(long)]
    max: Option<u64>,
    /// Stop after this many seconds without a message.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[derive(Args)]
// `-h` is timely's hostfile flag, so help is `--help` only.
#[command(disable_help_flag = true)]
struct RunArgs {
    /// `sim` (default), a FastF1 CSV file (plain or .gz, merged or per-driver car_data), or a
    /// folder of car_data files. With --brokers and no --input, the telemetry topic.
    #[arg(long)]
    input: Option<String>,
    /// Kafka bootstrap servers: read the telemetry topic (unless --input is given) and write
    /// alerts, windows and dead letters to their topics.
    #[arg(long, env = "PITWALL_BROKERS")]
    brokers: Option<String>,
    /// Kafka: stop cleanly (flush, commit, summary) once no message has come for SECS.
    #[arg(long, value_name = "SECS")]
    until_idle: Option<f64>,
    /// Replay speed: 1.0 = the original spacing of the timestamps, 2.0 twice as fast,
    /// 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    speed: f64,
    /// Only these drivers, e.g. VER,HAM,LEC.
    #[arg(long, value_delimiter = ',')]
    drivers: Vec<String>,
    /// Write alerts.jsonl, windows.jsonl, dead_letters.jsonl and summary.json to this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Configuration file (default: the embedded config/pitwall.toml).
    #[arg(long, env = "PITWALL_CONFIG")]
    config: Option<PathBuf>,
    /// Wheel-spin mode, overriding the configuration.
    #[arg(long, value_parser = ["fixed", "calibrated"])]
    wheel_spin: Option<String>,
    /// Simulator: laps per car (0 = no end).
    #[arg(long)]
    laps: Option<u32>,
    /// Simulator: number of cars.
    #[arg(long)]
    cars: Option<usize>,
    /// Simulator: random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Simulator: samples per second per car.
    #[arg(long)]
    rate_hz: Option<f64>,
    /// Serve the query API (Grafana, Prometheus) here; `off` for none. With a finite input
    /// the server keeps serving after the replay ends, until SIGINT/SIGTERM.
    #[arg(long, env = "PITWALL_HTTP", default_value = "127.0.0.1:5001")]
    http: String,
    /// Write summary.json to this file (without the other files of --out).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Benchmarks (weak scaling): every worker reads the file and analyses its own copy of the
    /// race, its drivers renamed CODE#worker.
    #[arg(long)]
    clone_drivers: bool,
    /// Print only the final summary.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Timely: worker threads per process.
    #[arg(short = 'w', long = "workers", default_value_t = 1)]
    workers: usize,
    /// Timely: number of processes.
    #[arg(short = 'n', long = "processes", default_value_t = 1)]
    processes: usize,
    /// Timely: index of this process.
    #[arg(short = 'p', long = "process", default_value_t = 0)]
    process: usize,
    /// Timely: file with one host:port line per process.
    #[arg(short = 'h', long = "hostfile")]
    hostfile: Option<PathBuf>,
    #[arg(long, action = ArgAction::Help, help = "Print help")]
    help: Option<bool>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("pitwall=info,warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Produce(args) => produce(args),
        Command::Topics(args) => topics(args),
        Command::Tail(args) => tail(args),
        Command::Bench(BenchCommand::WeakScaling(args)) => weak_scaling(args),
        Command::Bench(BenchCommand::Kafka(args)) => kafka_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Input(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(RunError::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: RunArgs) -> Result<(), RunError> {
    let mut cfg = PitwallConfig::load(args.config.as_deref()).map_err(RunError::Input)?;
    if let Some(mode) = &args.wheel_spin {
        cfg.wheel_spin.mode = if mode == "fixed" {
            WheelSpinMode::Fixed
        } else {
            WheelSpinMode::Calibrated
        };
    }
    let sim = &mut cfg.simulator;
    sim.laps = args.laps.unwrap_or(sim.laps);
    sim.cars = args.cars.unwrap_or(sim.cars);
    sim.seed = args.seed.unwrap_or(sim.seed);
    sim.rate_hz = args.rate_hz.unwrap_or(sim.rate_hz);
    cfg.validate()
        .map_err(|e| RunError::Input(format!("configuration: {e}")))?;
    if !(args.speed >= 0.0 && args.speed.is_finite()) {
        return Err(RunError::Input(format!(
            "--speed {} must be 0 or a positive factor",
            args.speed
        )));
    }
    let drivers = parse_drivers(&args.drivers)?;
    let http = match args.http.as_str() {
        "off" | "none" | "" => None,
        addr => Some(addr.parse::<std::net::SocketAddr>().map_err(|e| {
            RunError::Input(format!(
                "--http {addr}: {e} (an address like 127.0.0.1:5001, or off)"
            ))
        })?),
    };
    if let Some(b) = &args.brokers {
        cfg.kafka.brokers = b.clone();
    }
    let until_idle = match args.until_idle {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(RunError::Input(format!(
                "--until-idle {s} must be a positive number of seconds"
            )))
        }
        None => None,
    };
    let kafka = args.brokers.is_some().then(|| KafkaRun {
        cfg: cfg.kafka.clone(),
        read: args.input.is_none(),
        until_idle,
    });
    let console = if args.quiet {
        Console::Quiet
    } else {
        Console::Live
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| RunError::Failed(format!("signal handler: {e}")))?;
    }
    let summary = engine::run(
        &cfg,
        RunOptions {
            summary: args.summary.clone(),
            http,
            clone_drivers: args.clone_drivers,
            input: args.input.unwrap_or_else(|| "sim".to_string()),
            kafka,
            stop,
            speed: args.speed,
            drivers,
            out: args.out.clone(),
            console,
            cluster: Cluster {
                workers: args.workers,
                processes: args.processes,
                process: args.process,
                hostfile: args.hostfile,
            },
        },
    )?;
    if let Some(summary) = summary {
        report::print_summary(&summary);
        if let Some(dir) = &args.out {
            println!(
                "  wrote {}/{{alerts,windows,dead_letters}}.jsonl and summary.json",
                dir.display()
            );
        }
    }
    Ok(())
}

fn parse_drivers(list: &[String]) -> Result<Option<Vec<DriverId>>, RunError> {
    if list.is_empty() {
        return Ok(None);
    }
    list.iter()
        .map(|d| DriverId::new(d.trim()).map_err(|e| RunError::Input(format!("--drivers: {e}"))))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn produce(args: ProduceArgs) -> Result<(), RunError> {
    let mut cfg = args.kafka.load()?;
    cfg.simulator.laps = args.laps.unwrap_or(cfg.simulator.laps);
    if !(args.speed >= 0.0 && args.speed.is_finite()) {
        return Err(RunError::Input(format!(
            "--speed {} must be 0 or a positive factor",
            args.speed
        )));
    }
    let filter = parse_drivers(&args.drivers)?.map(|d| Arc::new(d.into_iter().collect()));
    let spec = source::InputSpec::resolve(&args.input, &cfg.simulator, filter, Default::default())?;
    let stats = kafka::produce::produce(&cfg.kafka, &spec, args.speed, cfg.engine.batch)
        .map_err(RunError::Failed)?;
    println!(
        "produced {} messages ({} bytes) to {} in {:.2} s: {:.0} msg/s; acknowledged {}, failed {}, skipped dead letters {}",
        stats.messages,
        stats.bytes,
        cfg.kafka.topics.telemetry.name,
        stats.seconds,
        stats.messages_per_second,
        stats.acknowledged,
        stats.failed,
        stats.skipped_dead_letters
    );
    if stats.failed > 0 {
        return Err(RunError::Failed(format!(
            "{} messages were not delivered",
            stats.failed
        )));
    }
    Ok(())
}

fn topics(args: TopicsArgs) -> Result<(), RunError> {
    let cfg = args.kafka.load()?;
    if args.action == "create" {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RunError::Failed(e.to_string()))?;
        for line in runtime
            .block_on(kafka::admin::create_topics(&cfg.kafka))
            .map_err(RunError::Failed)?
        {
            println!("{line}");
        }
    }
    for (name, partitions) in kafka::admin::list_topics(&cfg.kafka).map_err(RunError::Failed)? {
        println!("{name}\t{partitions} partitions");
    }
    Ok(())
}

fn tail(args: TailArgs) -> Result<(), RunError> {
    let cfg = args.kafka.load()?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(RunError::Input(format!(
            "--timeout {} must be a positive number of seconds",
            args.timeout
        )));
    }
    let opts = kafka::tail::TailOptions {
        topic: args.topic,
        group: args.group,
        from_beginning: args.from_beginning,
        max: args.max,
        timeout: Duration::from_secs_f64(args.timeout),
    };
    let n = kafka::tail::tail(&cfg.kafka, &opts, &mut std::io::stdout().lock())
        .map_err(RunError::Failed)?;
    tracing::info!("{n} messages from {}", opts.topic);
    Ok(())
}

fn report_rows(rows: &[bench::Row], results: &std::path::Path, name: &str) -> Result<(), RunError> {
    bench::print_table(rows);
    let (csv, svg) = bench::write_results(results, name, rows).map_err(RunError::Failed)?;
    println!("wrote {} and {}", csv.display(), svg.display());
    Ok(())
}

fn weak_scaling(args: WeakScalingArgs) -> Result<(), RunError> {
    if args.workers.is_empty() || args.workers.contains(&0) || args.processes.contains(&0) {
        return Err(RunError::Input(
            "--workers and --processes take counts of at least 1".into(),
        ));
    }
    let ws = bench::WeakScaling {
        workers: args.workers,
        processes: args.processes,
        input: args.input,
        drivers_per_worker: args.drivers_per_worker.max(1),
        laps: args.laps.max(1),
        repeat: args.repeat.max(1),
    };
    let rows = bench::weak_scaling(&ws).map_err(RunError::Failed)?;
    report_rows(&rows, &args.results, &args.name)
}

fn kafka_bench(args: KafkaBenchArgs) -> Result<(), RunError> {
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        return Err(RunError::Input(format!(
            "--rate {} must be 0 or a positive rate",
            args.rate
        )));
    }
    let kb = bench::KafkaBench {
        brokers: args.brokers,
        input: args.input,
        rate: args.rate,
        workers: args.workers.max(1),
    };
    let row = bench::kafka(&kb).map_err(RunError::Failed)?;
    report_rows(&[row], &args.results, &args.name)
}
