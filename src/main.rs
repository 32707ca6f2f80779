//! `pitwall`: real-time stream processing of Formula 1 car telemetry on timely dataflow.

mod config;
mod engine;
mod messages;
mod report;
mod source;

use clap::{ArgAction, Args, Parser, Subcommand};
use config::PitwallConfig;
use engine::{Cluster, RunError, RunOptions};
use pitwall_dataflows::config::WheelSpinMode;
use pitwall_dataflows::DriverId;
use report::Console;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Run the engine on the simulator (default) or a FastF1 file or folder.
    Run(RunArgs),
}

#[derive(Args)]
// `-h` is timely's hostfile flag, so help is `--help` only.
#[command(disable_help_flag = true)]
struct RunArgs {
    /// `sim`, a FastF1 CSV file (plain or .gz, merged or per-driver car_data), or a folder of
    /// car_data files.
    #[arg(long, default_value = "sim")]
    input: String,
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
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
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
    let drivers = if args.drivers.is_empty() {
        None
    } else {
        let ids = args
            .drivers
            .iter()
            .map(|d| {
                DriverId::new(d.trim()).map_err(|e| RunError::Input(format!("--drivers: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Some(ids)
    };
    let console = if args.quiet {
        Console::Quiet
    } else {
        Console::Live
    };
    let summary = engine::run(
        &cfg,
        RunOptions {
            input: args.input,
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
