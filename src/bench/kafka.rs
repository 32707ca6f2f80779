//! Kafka end to end: produce and engine at once through the broker; with a rate, the latency
//! from a sample's send time to its alert arriving on the alerts topic.

use super::{progress, read_summary_file, Row};
use crate::config::PitwallConfig;
use serde_json::Value;
use std::process::{Command, Stdio};
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

/// Produce and engine at once through the broker: throughput, and with a rate the latency
/// from a sample's send time to its alert arriving on the alerts topic.
pub fn kafka(kb: &KafkaBench) -> Result<Row, String> {
    use crate::source::InputSpec;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
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
        &mut cfg.topics.windows,
        &mut cfg.topics.dead_letters,
    ] {
        t.name = format!("{prefix}-{}", t.name);
    }
    let config = dir.path().join("pitwall.toml");
    let toml = toml::to_string(&PitwallConfig {
        kafka: cfg.clone(),
        ..kb.config.clone()
    })
    .map_err(|e| e.to_string())?;
    std::fs::write(&config, toml).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(crate::kafka::admin::create_topics(&cfg))
        .map_err(|e| e.to_string())?;

    let spec = InputSpec::resolve(&kb.input, &kb.config.simulator, None, Default::default())
        .map_err(|e| e.0)?;
    // The race's own rate decides the replay speed that gives the wanted message rate.
    let (records, span_ms) = count_and_span(&spec, &kb.input)?;
    let speed = if kb.rate > 0.0 {
        kb.rate * span_ms as f64 / 1000.0 / records as f64
    } else {
        0.0
    };

    let summary_file = dir.path().join("summary.json");
    // The engine stops once nothing has come for `idle` seconds (counted from its start too),
    // so it must outlast the warm-up below; the idle tail is taken off the elapsed time.
    let idle = 8.0;
    let mut engine = Command::new(&exe)
        .args([
            "run",
            "-q",
            "--http",
            "off",
            "--brokers",
            &cfg.brokers,
            "--until-idle",
            &idle.to_string(),
            "-w",
            &kb.workers.to_string(),
            "--summary",
            &summary_file.display().to_string(),
        ])
        .env("PITWALL_CONFIG", &config)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;

    // Alerts as they arrive on the topic, with their arrival time.
    let alerts_topic = cfg.topics.alerts.name.clone();
    let mut ccfg = cfg.client();
    ccfg.set("group.id", format!("{prefix}-watch"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5");
    let watcher: BaseConsumer = ccfg.create().map_err(|e| e.to_string())?;
    // Assigned, not subscribed: a group join would delay the first messages (on Tansu by
    // half the session timeout) and with them the measured latency.
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in 0..cfg.topics.alerts.partitions {
        assignment
            .add_partition_offset(&alerts_topic, p, rdkafka::Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    watcher.assign(&assignment).map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel::<(SystemTime, i64)>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_watch = stop.clone();
    let watch = std::thread::spawn(move || {
        while !stop_watch.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(Ok(m)) = watcher.poll(Duration::from_millis(100)) {
                let v: Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
                if v["status"] == "raised" {
                    let _ = tx.send((SystemTime::now(), v["end_ms"].as_i64().unwrap_or(0)));
                }
            }
        }
    });
    // Let the engine and the watcher join before the first message.
    std::thread::sleep(Duration::from_secs(3));
    progress(0, 1, "producing");
    let started = Instant::now();
    let source = spec.open_single().map_err(|e| e.0)?;
    let stats = crate::kafka::produce::produce(
        &cfg,
        source,
        speed,
        kb.config.engine.batch,
        &Default::default(),
    )
    .map_err(|e| e.to_string())?;
    let status = engine.wait().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64() - idle;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watch.join();
    progress(1, 1, "done");
    if !status.success() {
        return Err(format!("the engine failed: {status}"));
    }
    let summary = read_summary_file(&summary_file)?;
    let mut latencies: Vec<f64> = Vec::new();
    if let (Some(origin_wall), Some(origin_ms)) = (stats.pacing_origin_wall, stats.first_event_ms) {
        if speed > 0.0 {
            for (arrived, event_ms) in rx.try_iter() {
                let sent = origin_wall
                    + Duration::from_secs_f64(
                        ((event_ms - origin_ms) as f64 / speed / 1000.0).max(0.0),
                    );
                if let Ok(d) = arrived.duration_since(sent) {
                    latencies.push(d.as_secs_f64() * 1000.0);
                }
            }
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
    Ok(row)
}

fn count_and_span(spec: &crate::source::InputSpec, input: &str) -> Result<(u64, i64), String> {
    let mut src = spec
        .open(0, 1, None, Default::default())
        .map_err(|e| e.0)?
        .ok_or(format!("{input}: nothing to read"))?;
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
