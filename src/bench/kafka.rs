//! Kafka end to end: produce and engine at once through the broker; with a rate, the latency
//! from a sample's send time to its alert arriving on the alerts topic and where it goes
//! (the engine notes, per alert, when its sample was consumed and when the alert was sent and
//! acknowledged: `kafka.alert_timings`); then the produced topic drained by the engine and by
//! a plain consumer, whose rate is the ceiling the engine can reach.

use super::child::{Capture, RunCommand};
use super::{progress, read_summary_file, BenchError, Row};
use crate::config::PitwallConfig;
use crate::kafka::timing::AlertTiming;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub struct KafkaBench {
    /// The configuration the run starts from (`--config`, `--brokers`): the bench gives its
    /// topics and group a fresh prefix and leaves the rest as it is.
    pub config: PitwallConfig,
    pub input: String,
    /// Produce at this many messages per second (0 = as fast as possible).
    pub rate: f64,
    pub workers: usize,
}

/// What `bench kafka` measured: the rows of the table, where an alert's milliseconds went
/// (with a rate), and the engine's drain against a plain consumer's.
pub struct KafkaResult {
    /// Produce and engine at once; the engine draining the produced topic; the plain drain.
    pub rows: Vec<Row>,
    /// Sample sent → its alert seen, stage by stage (ms); empty without a rate.
    pub stages: Vec<Stage>,
    /// Engine drain msg/s ÷ plain consumer drain msg/s.
    pub ceiling: Option<f64>,
}

/// One stage of the latency breakdown.
pub struct Stage {
    pub name: &'static str,
    /// What takes the time in it.
    pub covers: &'static str,
    pub ms: Option<crate::report::Percentiles>,
}

/// Produce and engine at once through the broker: throughput, and with a rate the latency
/// from a sample's send time to its alert arriving on the alerts topic, with its breakdown;
/// then the engine and a plain consumer each drain the produced topic afresh.
pub fn kafka(kb: &KafkaBench) -> Result<KafkaResult, BenchError> {
    let setup = Setup::new(kb)?;
    let (row, stages, produced) = produce_with_engine(kb, &setup)?;
    // The produced topic drained afresh (a new group reads it from its start): the engine,
    // then a plain consumer that only counts, the ceiling the engine can reach.
    progress(1, 3, "engine drain");
    let drain = engine_drain(kb, &setup)?;
    progress(2, 3, "plain consumer drain");
    let (count, seconds) = raw_drain(&setup.cfg, &format!("{}-raw", setup.prefix), produced)?;
    progress(3, 3, "done");
    let raw = Row {
        scenario: "raw drain".into(),
        workers: 1,
        processes: 1,
        records: count,
        seconds,
        records_per_second: count as f64 / seconds.max(1e-9),
        records_per_second_per_worker: count as f64 / seconds.max(1e-9),
        efficiency: f64::NAN,
        latency_p50_ms: f64::NAN,
        latency_p95_ms: f64::NAN,
        latency_p99_ms: f64::NAN,
        peak_rss_mb: f64::NAN,
    };
    let ceiling = Some(drain.records_per_second / raw.records_per_second.max(1e-9));
    Ok(KafkaResult {
        rows: vec![row, drain, raw],
        stages,
        ceiling,
    })
}

/// A run's own topics (named after the time it started), its configuration file and folder.
struct Setup {
    exe: std::path::PathBuf,
    dir: tempfile::TempDir,
    prefix: String,
    cfg: crate::kafka::KafkaConfig,
    config: std::path::PathBuf,
    timings_prefix: std::path::PathBuf,
    spec: crate::source::InputSpec,
}

impl Setup {
    fn new(kb: &KafkaBench) -> Result<Setup, BenchError> {
        let exe = std::env::current_exe().map_err(BenchError::Exe)?;
        let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let prefix = format!("bench-{stamp}");
        let mut cfg = kb.config.kafka.clone();
        cfg.group_id = format!("{prefix}-engine");
        for t in [
            &mut cfg.topics.telemetry,
            &mut cfg.topics.alerts,
            &mut cfg.topics.predictions,
            &mut cfg.topics.laps,
            &mut cfg.topics.windows,
            &mut cfg.topics.dead_letters,
        ] {
            t.name = format!("{prefix}-{}", t.name);
        }
        let timings_prefix = dir.path().join("alert-timings");
        if kb.rate > 0.0 {
            // Only with a rate: noting every sample's arrival costs the engine a little.
            cfg.alert_timings = timings_prefix.display().to_string();
        }
        let config = dir.path().join("pitwall.toml");
        let toml = toml::to_string(&PitwallConfig {
            kafka: cfg.clone(),
            ..kb.config.clone()
        })?;
        std::fs::write(&config, toml).map_err(BenchError::file(&config))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BenchError::Runtime)?;
        runtime.block_on(crate::kafka::admin::create_topics(&cfg))?;
        let spec = crate::source::InputSpec::resolve(
            &kb.input,
            &kb.config.simulator,
            None,
            Default::default(),
        )?;
        Ok(Setup {
            exe,
            dir,
            prefix,
            cfg,
            config,
            timings_prefix,
            spec,
        })
    }
}

/// Produce and engine at once: the throughput row, the latency breakdown by stage (with a
/// rate), and the messages produced.
fn produce_with_engine(
    kb: &KafkaBench,
    setup: &Setup,
) -> Result<(Row, Vec<Stage>, u64), BenchError> {
    let Setup {
        exe,
        dir,
        prefix,
        cfg,
        config,
        timings_prefix,
        spec,
    } = setup;
    // The race's own rate decides the replay speed that gives the wanted message rate.
    let (records, span_ms) = count_and_span(spec, &kb.input)?;
    let speed = if kb.rate > 0.0 {
        kb.rate * span_ms as f64 / 1000.0 / records as f64
    } else {
        0.0
    };

    // The engine stops once nothing has come for `idle` seconds (counted from its start too),
    // so it must outlast the warm-up below; the idle tail is taken off the elapsed time.
    let idle = 8.0;
    let summary_file = dir.path().join("summary.json");
    let engine = engine_run(exe, config, cfg, None, idle, kb.workers, &summary_file);
    let mut engine = engine.spawn().map_err(BenchError::spawn(&engine))?;
    let watch = AlertWatch::start(cfg, &format!("{prefix}-watch"))?;
    // Let the engine and the watcher join before the first message.
    std::thread::sleep(Duration::from_secs(3));
    progress(0, 3, "producing");
    let started = Instant::now();
    let source = spec.open_single()?;
    let stats = crate::kafka::produce::produce(
        cfg,
        source,
        speed,
        kb.config.engine.batch,
        &Default::default(),
    )?;
    let status = engine.wait().map_err(BenchError::wait("the engine"))?;
    let elapsed = started.elapsed().as_secs_f64() - idle;
    let seen = watch.stop();
    if !status.success() {
        return Err(BenchError::Failed {
            what: "the engine".into(),
            status,
            output: String::new(),
        });
    }
    let summary = read_summary_file(&summary_file)?;
    let mut latencies: Vec<f64> = Vec::new();
    let mut stages = Vec::new();
    if let (Some(origin_wall), Some(origin_ms)) = (stats.pacing_origin_wall, stats.first_event_ms) {
        if speed > 0.0 {
            // When the sample that raised an alert (its last, `end_ms`) was due to be sent.
            let sent_us = |event_ms: i64| {
                let due = origin_wall
                    + Duration::from_secs_f64(
                        ((event_ms - origin_ms) as f64 / speed / 1000.0).max(0.0),
                    );
                unix_us(due)
            };
            for a in &seen {
                latencies.push(a.seen_us.saturating_sub(sent_us(a.end_ms)) as f64 / 1000.0);
            }
            stages = breakdown(&seen, &read_timings(timings_prefix), sent_us, &stats);
        }
    }
    let mut row = Row::from_summary(&format!("kafka -w {}", kb.workers), kb.workers, 1, &summary);
    row.records_per_second = stats.messages as f64 / elapsed.max(1e-9);
    row.records_per_second_per_worker = row.records_per_second / kb.workers.max(1) as f64;
    row.seconds = elapsed;
    let p = crate::report::Percentiles::of(&mut latencies);
    row.latency_p50_ms = p.as_ref().map_or(f64::NAN, |p| p.p50);
    row.latency_p95_ms = p.as_ref().map_or(f64::NAN, |p| p.p95);
    row.latency_p99_ms = p.as_ref().map_or(f64::NAN, |p| p.p99);
    row.efficiency = f64::NAN;
    Ok((row, stages, stats.messages))
}

/// The engine alone draining the produced topic in a new group: its throughput row.
fn engine_drain(kb: &KafkaBench, setup: &Setup) -> Result<Row, BenchError> {
    let Setup {
        exe,
        dir,
        prefix,
        cfg,
        config,
        ..
    } = setup;
    let drain_idle = 2.0;
    let drain_file = dir.path().join("drain.json");
    let group = format!("{prefix}-drain");
    let drain_run = engine_run(
        exe,
        config,
        cfg,
        Some(&group),
        drain_idle,
        kb.workers,
        &drain_file,
    );
    let status = drain_run
        .spawn()
        .map_err(BenchError::spawn(&drain_run))?
        .wait()
        .map_err(BenchError::wait("the engine's drain"))?;
    if !status.success() {
        return Err(BenchError::Failed {
            what: "the engine's drain".into(),
            status,
            output: String::new(),
        });
    }
    let drained = read_summary_file(&drain_file)?;
    let mut drain = Row::from_summary(&format!("drain -w {}", kb.workers), kb.workers, 1, &drained);
    // The summary's time includes the idle tail that ended the run.
    drain.seconds = (drained.seconds - drain_idle).max(1e-9);
    drain.records_per_second = drained.records as f64 / drain.seconds;
    drain.records_per_second_per_worker = drain.records_per_second / kb.workers.max(1) as f64;
    drain.efficiency = f64::NAN;
    drain.latency_p50_ms = f64::NAN;
    drain.latency_p95_ms = f64::NAN;
    drain.latency_p99_ms = f64::NAN;
    Ok(drain)
}

/// The breakdown and the ceiling, after the table.
pub fn print_details(result: &KafkaResult) {
    if !result.stages.is_empty() {
        println!();
        println!("sample sent -> its alert seen on the topic, by stage (ms):");
        println!(
            "{:<28} {:>6} {:>8} {:>8} {:>8}  covers",
            "stage", "n", "p50", "p95", "p99"
        );
        for s in &result.stages {
            match &s.ms {
                Some(p) => println!(
                    "{:<28} {:>6} {:>8.2} {:>8.2} {:>8.2}  {}",
                    s.name, p.count, p.p50, p.p95, p.p99, s.covers
                ),
                None => println!("{:<28} {:>6}  {}", s.name, 0, s.covers),
            }
        }
    }
    if let Some(c) = result.ceiling {
        println!();
        println!("ceiling: engine drain / plain consumer drain = {c:.2}");
    }
}

fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `pitwall run` on the bench's topics (`config`), until `idle` seconds without a message.
fn engine_run(
    exe: &Path,
    config: &Path,
    cfg: &crate::config::KafkaConfig,
    group: Option<&str>,
    idle: f64,
    workers: usize,
    summary: &Path,
) -> RunCommand {
    let run = RunCommand::new(exe)
        .quiet()
        .http_off()
        .brokers(&cfg.brokers)
        .until_idle(idle)
        .workers(workers)
        .summary(summary)
        .env("PITWALL_CONFIG", config)
        .stdout(Capture::Null);
    match group {
        Some(g) => run.args(["--group", g]),
        None => run,
    }
}

/// A raised alert as the bench's own consumer saw it.
struct SeenAlert {
    alert_id: String,
    /// Event time of the sample that raised it.
    end_ms: i64,
    seen_us: u64,
}

/// The bench's consumer of the alerts topic, on a thread of its own.
struct AlertWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<SeenAlert>>,
}

impl AlertWatch {
    fn start(cfg: &crate::config::KafkaConfig, group: &str) -> Result<AlertWatch, BenchError> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::Message;
        let topic = cfg.topics.alerts.name.clone();
        let mut ccfg = cfg.client();
        ccfg.set("group.id", group)
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set(
                "fetch.wait.max.ms",
                cfg.consumer.fetch_wait_max_ms.to_string(),
            );
        let watcher: BaseConsumer = ccfg
            .create()
            .map_err(BenchError::kafka(format!("the alert watcher on {topic}")))?;
        // Assigned, not subscribed: a group join (and its rebalance) would delay the first
        // messages and with them the measured latency.
        let mut assignment = rdkafka::TopicPartitionList::new();
        for p in 0..cfg.topics.alerts.partitions {
            assignment
                .add_partition_offset(&topic, p, rdkafka::Offset::Beginning)
                .map_err(BenchError::kafka(format!("the alert watcher on {topic}")))?;
        }
        watcher
            .assign(&assignment)
            .map_err(BenchError::kafka(format!("the alert watcher on {topic}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = watcher.poll(Duration::from_millis(100)) {
                    let seen_us = unix_us(SystemTime::now());
                    let v: Value =
                        serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
                    if v["status"] == "raised" {
                        seen.push(SeenAlert {
                            alert_id: v["alert_id"].as_str().unwrap_or_default().to_string(),
                            end_ms: v["end_ms"].as_i64().unwrap_or(0),
                            seen_us,
                        });
                    }
                }
            }
            seen
        });
        Ok(AlertWatch { stop, thread })
    }

    fn stop(self) -> Vec<SeenAlert> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The engine's per-alert timings (every process's file under `prefix`), by alert id.
fn read_timings(prefix: &Path) -> HashMap<String, AlertTiming> {
    let mut out = HashMap::new();
    let (Some(dir), Some(stem)) = (prefix.parent(), prefix.file_name()) else {
        return out;
    };
    let stem = stem.to_string_lossy().to_string();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&stem) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            if let Ok(t) = serde_json::from_str::<AlertTiming>(line) {
                out.insert(t.alert_id.clone(), t);
            }
        }
    }
    out
}

/// Sample sent → alert seen, split where the clocks allow: the engine's own timestamps
/// (consumed, alert sent, acknowledged) between the bench's (sample due, alert seen).
fn breakdown(
    seen: &[SeenAlert],
    timings: &HashMap<String, AlertTiming>,
    sent_us: impl Fn(i64) -> u64,
    stats: &crate::kafka::produce::ProduceStats,
) -> Vec<Stage> {
    let ms = |from: u64, to: u64| (to as f64 - from as f64) / 1000.0;
    let mut columns: [Vec<f64>; 6] = Default::default();
    for a in seen {
        let Some(t) = timings.get(&a.alert_id) else {
            continue;
        };
        let sent = sent_us(a.end_ms);
        columns[0].push(ms(sent, t.consumed_us));
        columns[1].push(ms(t.consumed_us, t.sent_us));
        columns[2].push(ms(t.sent_us, t.acked_us));
        columns[3].push(ms(t.consumed_us, t.acked_us));
        columns[4].push(ms(t.sent_us, a.seen_us));
        columns[5].push(ms(sent, a.seen_us));
    }
    let [to_engine, in_engine, to_ack, engine_share, to_bench, total] =
        columns.map(|mut c| crate::report::Percentiles::of(&mut c));
    vec![
        Stage {
            name: "sample sent -> acked",
            covers: "replay producer: linger, request, broker append (every sample)",
            ms: stats.ack_latency_ms.clone(),
        },
        Stage {
            name: "sample sent -> consumed",
            covers: "producer linger, broker, engine's fetch",
            ms: to_engine,
        },
        Stage {
            name: "consumed -> alert sent",
            covers: "engine: source, dataflow, sink",
            ms: in_engine,
        },
        Stage {
            name: "alert sent -> acked",
            covers: "alert producer, broker append, acknowledgement seen",
            ms: to_ack,
        },
        Stage {
            name: "consumed -> alert acked",
            covers: "the engine's own share",
            ms: engine_share,
        },
        Stage {
            name: "alert sent -> seen",
            covers: "alert producer, broker, bench's fetch",
            ms: to_bench,
        },
        Stage {
            name: "sample sent -> alert seen",
            covers: "end to end (the alerts the engine timed)",
            ms: total,
        },
    ]
}

/// A plain consumer with the engine's consumer settings, reading every partition of the
/// telemetry topic from its start and only counting: (messages, seconds to the last one).
fn raw_drain(
    cfg: &crate::config::KafkaConfig,
    group: &str,
    expected: u64,
) -> Result<(u64, f64), BenchError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let topic = &cfg.topics.telemetry.name;
    let what = || format!("plain drain of {topic}");
    let consumer: BaseConsumer = cfg
        .consumer_config(group)
        .create()
        .map_err(BenchError::kafka(what()))?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in 0..cfg.topics.telemetry.partitions {
        assignment
            .add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .map_err(BenchError::kafka(what()))?;
    }
    consumer
        .assign(&assignment)
        .map_err(BenchError::kafka(what()))?;
    let started = Instant::now();
    let (mut count, mut last) = (0u64, started);
    while count < expected && last.elapsed() < Duration::from_secs(5) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                count += 1;
                last = Instant::now();
            }
            Some(Err(e)) => return Err(BenchError::kafka(what())(e)),
            None => {}
        }
    }
    Ok((count, last.duration_since(started).as_secs_f64()))
}

fn count_and_span(spec: &crate::source::InputSpec, input: &str) -> Result<(u64, i64), BenchError> {
    let mut src = spec
        .open(0, 1, None, Default::default())?
        .ok_or_else(|| crate::ingest::InputError::new(format!("{input}: nothing to read")))?;
    let (mut n, mut first, mut last) = (0u64, i64::MAX, i64::MIN);
    let mut buf = Vec::new();
    loop {
        let more = src.fill(&mut buf, 4096);
        for item in buf.drain(..) {
            if let pitwall_dataflows::Ingest::Record(s) = item {
                n += 1;
                first = first.min(s.ts_ms);
                last = last.max(s.ts_ms);
            }
        }
        if !more {
            break;
        }
    }
    Ok((n.max(1), (last - first).max(1)))
}
