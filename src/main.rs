//! `pitwall`: real-time stream processing of Formula 1 car telemetry on timely dataflow.

mod cli;

use clap::Parser;
use cli::{
    BenchCommand, Cli, Command, EvaluateArgs, HttpBenchArgs, KafkaBenchArgs, PeersBenchArgs,
    ProduceArgs, RunArgs, TailArgs, TopicsArgs, TrainArgs, WeakScalingArgs,
};
use engine::{Cluster, KafkaRun, RunOptions};
use pitwall::config::PitwallConfig;
use pitwall::error::Error;
use pitwall::ingest::InputError;
use pitwall::kafka::BrokerError;
use pitwall::sinks::collect::Console;
use pitwall::sinks::collect::WriteError;
use pitwall::{bench, engine, kafka, report, source};
use pitwall_dataflows::config::WheelSpinMode;
use pitwall_dataflows::DriverId;
use std::io::IsTerminal;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("pitwall=info,warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A closed stderr (a reader gone) loses the log lines, not the run: tracing's own
        // report of a failed write would print to that stderr and panic.
        .log_internal_errors(false)
        .init();
    let args: Vec<String> = std::env::args().collect();
    if let Some(message) = cli::old_hostfile_flag(&args) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    if let Err(e) = cli.check() {
        e.exit();
    }
    let result = match cli.command {
        Command::Run(args) => run(*args),
        Command::Produce(args) => produce(args),
        Command::Topics(args) => topics(args),
        Command::Tail(args) => tail(args),
        Command::Bench(BenchCommand::WeakScaling(args)) => weak_scaling(args),
        Command::Bench(BenchCommand::Kafka(args)) => kafka_bench(args),
        Command::Bench(BenchCommand::Peers(args)) => peers_bench(args),
        Command::Bench(BenchCommand::Http(args)) => http_bench(args),
        Command::Train(args) => train(args),
        Command::Evaluate(args) => evaluate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: RunArgs) -> Result<(), Error> {
    let truth = args.truth.clone();
    let process = args.process;
    let (cfg, opts) = run_options(args)?;
    let out = opts.out.clone();
    if let Some(dir) = &truth {
        if opts.input != "sim" {
            return Err(Error::flag(
                "--truth",
                dir.display(),
                "only the simulator knows what happened (--input sim)",
            ));
        }
        // The race is the same for every process: the first writes it.
        if process == 0 {
            let counts = pitwall::source::sim::truth::write(&cfg.simulator, dir)?;
            tracing::info!(
                "truth: {} laps, {} pit stops, {} neutralisations, {} incidents in {}",
                counts.laps,
                counts.stops,
                counts.neutralisations,
                counts.incidents,
                dir.display()
            );
        }
    }
    if let Some(summary) = engine::run(&cfg, opts)? {
        report::print_summary(&summary);
        if let Some(dir) = &out {
            println!(
                "  wrote {}/{{alerts,windows,dead_letters,laps,pit_stops,predictions}}.jsonl and summary.json",
                dir.display()
            );
        }
    }
    Ok(())
}

/// `pitwall run`'s flags laid over the configuration, and the engine's options they make.
fn run_options(args: RunArgs) -> Result<(PitwallConfig, RunOptions), Error> {
    let mut cfg = args.kafka.load()?;
    if let Some(mode) = &args.wheel_spin {
        cfg.wheel_spin.mode = if mode == "fixed" {
            WheelSpinMode::Fixed
        } else {
            WheelSpinMode::Calibrated
        };
    }
    if let Some(metres) = args.lap_length {
        cfg.race.lap_length_m = metres;
    }
    let sim = &mut cfg.simulator;
    sim.laps = args.laps.or(sim.laps);
    if let Some(circuit) = &args.circuit {
        sim.circuit = circuit.clone();
    }
    sim.cars = args.cars.unwrap_or(sim.cars);
    sim.seed = args.seed.unwrap_or(sim.seed);
    sim.rate_hz = args.rate_hz.unwrap_or(sim.rate_hz);
    cfg.validate()?;
    if let Some(group) = &args.group {
        cfg.kafka.group_id = group.clone();
    }
    let drivers = parse_drivers(&args.drivers)?;
    let http = match args.http.as_deref().unwrap_or(&cfg.http.address) {
        "off" | "none" | "" => None,
        addr => Some(addr.parse::<std::net::SocketAddr>().map_err(|e| {
            Error::flag(
                "--http",
                addr,
                format!("{e} (an address like 127.0.0.1:5001, or off)"),
            )
        })?),
    };
    // Checked positive by `Cli::check`.
    let until_idle = args.until_idle.map(Duration::from_secs_f64);
    let kafka = args.kafka.brokers.is_some().then(|| KafkaRun {
        cfg: cfg.kafka.clone(),
        read: args.input.is_none(),
        until_idle,
    });
    let console = if args.quiet {
        Console::Quiet
    } else {
        Console::Live
    };
    let stop = stop_on_signals()?;
    let opts = RunOptions {
        summary: args.summary.clone(),
        http,
        keep_serving: args.keep_serving || std::io::stdout().is_terminal(),
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
        pit_model: args.pit_model.clone(),
        race_book: None,
    };
    Ok((cfg, opts))
}

/// SIGINT and SIGTERM set the returned flag: the command stops cleanly (flushes, commits,
/// prints its summary). A second one while it does exits at once with 128 + the signal
/// (130 for Ctrl-C), for when stopping cleanly cannot finish (a broker gone for good).
fn stop_on_signals() -> Result<Arc<AtomicBool>, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Error::Signal;
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so the first signal finds the flag still unset.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, stop.clone())
            .map_err(failed)?;
        signal_hook::flag::register(signal, stop.clone()).map_err(failed)?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(failed)?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("stopping cleanly; Ctrl-C again to quit at once");
        }
    });
    Ok(stop)
}

fn parse_drivers(list: &[String]) -> Result<Option<Vec<DriverId>>, Error> {
    if list.is_empty() {
        return Ok(None);
    }
    list.iter()
        .map(|d| DriverId::new(d.trim()).map_err(|e| Error::flag("--drivers", d, e)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn produce(args: ProduceArgs) -> Result<(), Error> {
    let mut cfg = args.kafka.load()?;
    cfg.simulator.laps = args.laps.or(cfg.simulator.laps);
    let filter: Option<Arc<std::collections::HashSet<DriverId>>> =
        parse_drivers(&args.drivers)?.map(|d| Arc::new(d.into_iter().collect()));
    let read = Arc::new(pitwall::ingest::SourceStats::default());
    let spec =
        source::InputSpec::resolve(&args.input, &cfg.simulator, filter.clone(), read.clone())?;
    let source = spec
        .open(0, 1, filter.clone(), read.clone())?
        .ok_or_else(|| InputError::new(format!("{}: nothing to read", args.input)))?;
    let stop = stop_on_signals()?;
    let stats = kafka::produce::produce(&cfg.kafka, source, args.speed, cfg.engine.batch, &stop)?;
    let mut line = format!(
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
    if filter.is_some() {
        line += &format!("; drivers {} only", args.drivers.join(","));
        let left_out = read.filtered.load(std::sync::atomic::Ordering::Relaxed);
        if left_out > 0 {
            line += &format!(" ({left_out} rows of others left out)");
        }
    }
    if stats.interrupted {
        line += "; stopped by a signal before the end of the input";
    }
    println!("{line}");
    if let Some(gap) = stats.longest_ack_gap {
        println!("{gap}");
    }
    if stats.failed > 0 {
        return Err(BrokerError::Undelivered {
            count: stats.failed,
        }
        .into());
    }
    Ok(())
}

fn topics(args: TopicsArgs) -> Result<(), Error> {
    let cfg = args.kafka.load()?;
    let mut lines = Vec::new();
    if args.action == "create" {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BrokerError::Io)?;
        lines = runtime.block_on(kafka::admin::create_topics(&cfg.kafka))?;
    }
    for (name, partitions) in kafka::admin::list_topics(&cfg.kafka)? {
        lines.push(format!("{name}\t{partitions} partitions"));
    }
    // Written, not println!'d: a reader that goes away (`| head`) ends the listing, no panic.
    let mut out = std::io::stdout().lock();
    for line in lines {
        match writeln!(out, "{line}") {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(source) => {
                return Err(WriteError::Stdout {
                    what: "the topic list",
                    source,
                }
                .into())
            }
        }
    }
    Ok(())
}

fn tail(args: TailArgs) -> Result<(), Error> {
    let cfg = args.kafka.load()?;
    let opts = kafka::tail::TailOptions {
        topic: args.topic,
        group: args.group,
        from_beginning: args.from_beginning,
        max: args.max,
        timeout: Duration::from_secs_f64(args.timeout),
    };
    let n = kafka::tail::tail(&cfg.kafka, &opts, &mut std::io::stdout().lock())?;
    tracing::info!("{n} messages from {}", opts.topic);
    Ok(())
}

fn report_rows(rows: &[bench::Row], results: &std::path::Path, name: &str) -> Result<(), Error> {
    bench::print_table(rows);
    let (csv, svg) = bench::write_results(results, name, rows)?;
    println!("wrote {} and {}", csv.display(), svg.display());
    Ok(())
}

fn weak_scaling(args: WeakScalingArgs) -> Result<(), Error> {
    // The simulator's defaults come from the embedded configuration, as `pitwall run`'s do.
    let sim = PitwallConfig::default().simulator;
    let ws = bench::WeakScaling {
        workers: args.workers,
        processes: args.processes,
        input: args.input,
        drivers_per_worker: args.drivers_per_worker.unwrap_or(sim.cars).max(1),
        laps: args.laps.unwrap_or(sim.race_laps(&sim.track())).max(1),
        repeat: args.repeat.max(1),
    };
    let rows = bench::weak_scaling(&ws)?;
    report_rows(&rows, &args.results, &args.name)
}

fn kafka_bench(args: KafkaBenchArgs) -> Result<(), Error> {
    let kb = bench::KafkaBench {
        config: args.kafka.load()?,
        input: args.input,
        rate: args.rate,
        workers: args.workers.max(1),
    };
    let result = bench::kafka(&kb)?;
    report_rows(&result.rows, &args.results, &args.name)?;
    bench::kafka::print_details(&result);
    Ok(())
}

fn peers_bench(args: PeersBenchArgs) -> Result<(), Error> {
    use bench::peers::{find_python, Peer, INSTALL_HINT};
    if !args.input.is_file() {
        return Err(Error::flag(
            "--input",
            args.input.display(),
            "no such file (the real race: ../shared/data/monaco-2023/monaco_2023_race.csv.gz)",
        ));
    }
    let peer =
        match find_python(args.python.as_deref()).map_err(|e| Error::flag("--python", "", e))? {
            Some((python, version)) => {
                if !args.peer_script.is_file() {
                    return Err(Error::flag(
                        "--peer-script",
                        args.peer_script.display(),
                        "no such file",
                    ));
                }
                if !version.starts_with("0.21") {
                    eprintln!(
                        "note: {} has bytewax {version}; the peer is written for 0.21.1",
                        python.display()
                    );
                }
                Some(Peer {
                    python,
                    script: args.peer_script.clone(),
                    mode: args.peer_mode.clone(),
                    version,
                })
            }
            None => {
                eprintln!(
                    "no Python with bytewax found: pitwall runs alone. To compare, {INSTALL_HINT}"
                );
                None
            }
        };
    if let Some(p) = &peer {
        eprintln!(
            "pitwall against bytewax {} ({} {}, --mode {}), {} pair(s) per worker count",
            p.version,
            p.python.display(),
            p.script.display(),
            p.mode,
            args.repeat
        );
    }
    let pb = bench::PeersBench {
        input: args.input.clone(),
        workers: args.workers.clone(),
        repeat: args.repeat,
        peer,
    };
    let report = bench::peers(&pb)?;
    bench::peers::print_table(&report.rows);
    let (csv, svg) = bench::results::write_csv_and_chart(
        &args.results,
        &args.name,
        &report.rows,
        "records/s",
        &bench::peers::bars(&report.rows),
    )?;
    println!("ratio = pitwall's records/s over bytewax's, taken pair by pair; the median row's ratio is the median of the pairs'");
    println!("alerts by type, pitwall: {:?}", report.pitwall_alerts);
    match &report.peer_alerts {
        Some(peer) => println!("alerts by type, bytewax: {peer:?}"),
        None => println!("bytewax not run: {INSTALL_HINT}"),
    }
    for scenario in &report.record_mismatches {
        println!("warning: {scenario}: the two engines counted different records (see the CSV): not the same work");
    }
    println!("wrote {} and {}", csv.display(), svg.display());
    Ok(())
}

fn http_bench(args: HttpBenchArgs) -> Result<(), Error> {
    let mut config = PitwallConfig::load(args.config.as_deref())?;
    if let Some(points) = args.points_per_driver {
        config.http.points_per_driver = points;
    }
    let hb = bench::HttpLoad {
        config,
        cars: args.cars,
        workers: args.workers,
        wrk: args.wrk.clone(),
        threads: args.threads,
        connections: args.connections,
        duration_s: args.duration,
        request: args.request.clone(),
        fill_timeout: Duration::from_secs(args.fill_timeout),
        stop: stop_on_signals()?,
    };
    let row = bench::http_load(&hb)?;
    bench::http_load::print_table(&row, &args.request);
    if row.non_2xx + row.socket_errors > 0 {
        println!(
            "warning: {} answers were not 2xx/3xx and {} socket errors: req/s counts them too",
            row.non_2xx, row.socket_errors
        );
    }
    let (csv, svg) = bench::results::write_csv_and_chart(
        &args.results,
        &args.name,
        std::slice::from_ref(&row),
        "requests/s",
        &bench::http_load::bars(&row),
    )?;
    println!("wrote {} and {}", csv.display(), svg.display());
    Ok(())
}

fn train(args: TrainArgs) -> Result<(), Error> {
    use pitwall::models::train::{fit, in_sample_auc, races, Examples};
    let cfg = PitwallConfig::load(args.config.as_deref())?;
    let dirs = if args.races.is_empty() {
        ["monaco-2018", "monaco-2019", "monaco-2021"]
            .iter()
            .map(|r| std::path::Path::new("../shared/data").join(r))
            .collect()
    } else {
        args.races.clone()
    };
    let mut examples = Vec::new();
    for (race, truth) in races(&dirs)? {
        let book = Arc::new(std::sync::Mutex::new(Default::default()));
        let mut opts = RunOptions::replay(race.telemetry.display().to_string(), args.workers);
        opts.race_book = Some(book.clone());
        engine::run(&cfg, opts)?;
        let book = book
            .lock()
            .map_err(|_| Error::Worker("the race book was poisoned by a failed worker".into()))?;
        let ex = Examples::of(&race.name, &book, &truth);
        println!(
            "{:<14} {:>5} driver-laps, {:>3} before a stop within 3 laps ({} stops in its laps table)",
            race.name,
            ex.labels.len(),
            ex.labels.iter().filter(|&&y| y).count(),
            truth.stops().len()
        );
        examples.push(ex);
    }
    let hazards = pitwall::models::history::History::load(&args.history)?.hazards(2014..=2022);
    println!(
        "base rates per lap ({} car-laps): crash {:.5} / {:.5} / {:.5}, tyre failure {:.6} / {:.6} / {:.6} (lap 1 / laps 2-3 / later)",
        hazards.car_laps,
        hazards.crash.lap_1,
        hazards.crash.laps_2_3,
        hazards.crash.later,
        hazards.tyre.lap_1,
        hazards.tyre.laps_2_3,
        hazards.tyre.later
    );
    let model = fit(&examples, hazards)?;
    for ex in &examples {
        if let Some(auc) = in_sample_auc(&model, ex) {
            println!("{:<14} in-sample AUC {auc:.3}", ex.race);
        }
    }
    for (name, c) in model.pit.features.iter().zip(&model.pit.coefficients) {
        if model.pit.not_fitted.contains(name) {
            println!("  {name:<16}  not fitted: too few training laps show it");
        } else {
            println!("  {name:<16} {c:+.3}");
        }
    }
    std::fs::write(&args.model_out, model.to_toml())
        .map_err(|e| Error::flag("--model-out", args.model_out.display(), e))?;
    println!("wrote {}", args.model_out.display());
    Ok(())
}

fn evaluate(args: EvaluateArgs) -> Result<(), Error> {
    use pitwall::models::evaluate::{evaluate, RunFiles};
    use pitwall::models::model_file::ModelFile;
    use pitwall::models::truth::{beside, load_track_status, Truth};
    let truth = Truth::load(&args.laps)?;
    let status_path = args
        .track_status
        .clone()
        .or_else(|| beside(&args.laps, "track_status"));
    let status = match &status_path {
        Some(p) => load_track_status(p)?,
        None => Vec::new(),
    };
    let run = RunFiles::read(&args.out)?;
    let model = ModelFile::load(args.pit_model.as_deref())?;
    let endings = match run.race_date() {
        Some(date) if args.history.is_dir() => {
            pitwall::models::history::History::load(&args.history)?.endings_on(&date)
        }
        _ => None,
    };
    let e = evaluate(&run, &truth, &status, &model, endings.as_ref());
    print!("{}", e.report);
    Ok(())
}
