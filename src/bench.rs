//! `pitwall bench`: weak scaling and Kafka end-to-end runs, as a table, a CSV and an SVG chart.
//!
//! Every scenario runs `pitwall run` as a child process (so each has its own peak RSS and a
//! clean start) and reads the `summary.json` it writes.

use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// One measured scenario.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub workers: usize,
    pub processes: usize,
    pub records: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    pub records_per_second_per_worker: f64,
    /// T1 / Tn, the work growing with the workers.
    pub efficiency: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_p99_ms: f64,
    pub peak_rss_mb: f64,
}

pub struct WeakScaling {
    /// Worker counts of single-process scenarios.
    pub workers: Vec<usize>,
    /// Process counts of one-worker-per-process scenarios on localhost.
    pub processes: Vec<usize>,
    /// `sim`, or a merged FastF1 file whose drivers each worker clones.
    pub input: String,
    pub drivers_per_worker: usize,
    /// Simulator laps per car (samples per driver ≈ 326 a lap at 4 Hz).
    pub laps: u32,
    pub repeat: usize,
}

fn progress(done: usize, total: usize, what: &str) {
    let width = 24;
    let filled = width * done / total.max(1);
    let bar = format!(
        "[{}{}] {done}/{total} {what}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K{bar}");
        if done == total {
            eprintln!();
        }
    } else {
        eprintln!("{bar}");
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn read_summary_file(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn row_from(scenario: &str, workers: usize, processes: usize, s: &Value) -> Row {
    let f = |k: &str| s[k].as_f64().unwrap_or(0.0);
    let lat = |k: &str| s["latency_ms"][k].as_f64().unwrap_or(f64::NAN);
    let peers = workers * processes;
    Row {
        scenario: scenario.to_string(),
        workers: peers,
        processes,
        records: s["records"].as_u64().unwrap_or(0),
        seconds: f("seconds"),
        records_per_second: f("records_per_second"),
        records_per_second_per_worker: f("records_per_second") / peers.max(1) as f64,
        efficiency: 0.0,
        latency_p50_ms: lat("p50"),
        latency_p95_ms: lat("p95"),
        latency_p99_ms: lat("p99"),
        peak_rss_mb: s["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
    }
}

/// Runs one scenario: `processes` × `workers`, the work sized for all of them.
fn run_scenario(
    exe: &Path,
    ws: &WeakScaling,
    workers: usize,
    processes: usize,
) -> Result<Value, String> {
    let peers = workers * processes;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let summary = dir.path().join("summary.json");
    let mut args: Vec<String> = vec![
        "run".into(),
        "-q".into(),
        "--http".into(),
        "off".into(),
        "--summary".into(),
        summary.display().to_string(),
    ];
    if ws.input == "sim" {
        args.extend([
            "--input".into(),
            "sim".into(),
            "--cars".into(),
            (ws.drivers_per_worker * peers).to_string(),
            "--laps".into(),
            ws.laps.to_string(),
        ]);
    } else {
        args.extend(["--input".into(), ws.input.clone(), "--clone-drivers".into()]);
    }
    args.extend(["-w".into(), workers.to_string()]);
    if processes > 1 {
        let hosts = dir.path().join("hosts");
        let lines: Vec<String> = (0..processes)
            .map(|_| free_port().map(|p| format!("127.0.0.1:{p}")))
            .collect::<Result<_, _>>()?;
        std::fs::write(&hosts, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
        let mut others = Vec::new();
        for p in 1..processes {
            let mut a = args.clone();
            a.extend([
                "-n".into(),
                processes.to_string(),
                "-p".into(),
                p.to_string(),
                "-h".into(),
                hosts.display().to_string(),
            ]);
            // Only process 0 writes the summary.
            let pos = a.iter().position(|x| x == "--summary").unwrap_or(0);
            a.drain(pos..pos + 2);
            others.push(
                Command::new(exe)
                    .args(&a)
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| e.to_string())?,
            );
        }
        args.extend([
            "-n".into(),
            processes.to_string(),
            "-p".into(),
            "0".into(),
            "-h".into(),
            hosts.display().to_string(),
        ]);
        let status = Command::new(exe)
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        for mut o in others {
            let _ = o.wait();
        }
        if !status.success() {
            return Err(format!("scenario {processes} processes failed: {status}"));
        }
    } else {
        let status = Command::new(exe)
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("scenario -w {workers} failed: {status}"));
        }
    }
    read_summary_file(&summary)
}

pub fn weak_scaling(ws: &WeakScaling) -> Result<Vec<Row>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut scenarios: Vec<(String, usize, usize)> = ws
        .workers
        .iter()
        .map(|&w| (format!("-w {w}"), w, 1))
        .collect();
    scenarios.extend(
        ws.processes
            .iter()
            .filter(|&&n| n > 1)
            .map(|&n| (format!("-n {n} -w 1"), 1, n)),
    );
    let total = scenarios.len() * ws.repeat.max(1);
    let mut rows = Vec::new();
    let mut done = 0;
    for (name, workers, processes) in &scenarios {
        // The best of `repeat` runs: this machine is shared and noisy.
        let mut best: Option<Row> = None;
        for _ in 0..ws.repeat.max(1) {
            progress(done, total, name);
            let s = run_scenario(&exe, ws, *workers, *processes)?;
            let row = row_from(name, *workers, *processes, &s);
            if best.as_ref().is_none_or(|b| row.seconds < b.seconds) {
                best = Some(row);
            }
            done += 1;
        }
        rows.extend(best);
    }
    progress(done, total, "done");
    let t1 = rows.iter().find(|r| r.workers == 1).map(|r| r.seconds);
    for r in &mut rows {
        r.efficiency = t1.map_or(f64::NAN, |t1| t1 / r.seconds);
    }
    Ok(rows)
}

pub struct KafkaBench {
    pub brokers: String,
    pub input: String,
    /// Produce at this many messages per second (0 = as fast as possible).
    pub rate: f64,
    pub workers: usize,
}

/// Produce and engine at once through the broker: throughput, and with a rate the latency
/// from a sample's send time to its alert arriving on the alerts topic.
pub fn kafka(kb: &KafkaBench) -> Result<Row, String> {
    use crate::kafka::KafkaConfig;
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
    let mut cfg = KafkaConfig {
        brokers: kb.brokers.clone(),
        group_id: format!("{prefix}-engine"),
        ..Default::default()
    };
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
    let toml = toml::to_string(&crate::config::PitwallConfig {
        kafka: cfg.clone(),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    std::fs::write(&config, toml).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(crate::kafka::admin::create_topics(&cfg))?;

    let spec = InputSpec::resolve(&kb.input, &Default::default(), None, Default::default())
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
            &kb.brokers,
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
    let stats = crate::kafka::produce::produce(&cfg, &spec, speed, 4096)?;
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
    let mut row = row_from(&format!("kafka -w {}", kb.workers), kb.workers, 1, &summary);
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

pub fn print_table(rows: &[Row]) {
    println!(
        "{:<12} {:>7} {:>10} {:>8} {:>12} {:>12} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "scenario",
        "workers",
        "records",
        "seconds",
        "records/s",
        "per worker",
        "eff.",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "RSS MB"
    );
    for r in rows {
        println!(
            "{:<12} {:>7} {:>10} {:>8.3} {:>12.0} {:>12.0} {:>6.2} {:>8.2} {:>8.2} {:>8.2} {:>8.1}",
            r.scenario,
            r.workers,
            r.records,
            r.seconds,
            r.records_per_second,
            r.records_per_second_per_worker,
            r.efficiency,
            r.latency_p50_ms,
            r.latency_p95_ms,
            r.latency_p99_ms,
            r.peak_rss_mb
        );
    }
}

/// Writes `<dir>/<name>.csv` and `<dir>/<name>.svg`; returns their paths.
pub fn write_results(dir: &Path, name: &str, rows: &[Row]) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let csv_path = dir.join(format!("{name}.csv"));
    let mut w = csv::Writer::from_path(&csv_path).map_err(|e| e.to_string())?;
    for r in rows {
        w.serialize(r).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())?;
    let svg_path = dir.join(format!("{name}.svg"));
    std::fs::File::create(&svg_path)
        .and_then(|mut f| f.write_all(svg(name, rows).as_bytes()))
        .map_err(|e| e.to_string())?;
    Ok((csv_path, svg_path))
}

/// Bars of records/s per scenario, with the efficiency written above each.
fn svg(title: &str, rows: &[Row]) -> String {
    let (w, h, left, bottom, top) = (640.0, 360.0, 70.0, 60.0, 40.0);
    let max = rows
        .iter()
        .map(|r| r.records_per_second)
        .fold(1.0, f64::max);
    let slot = (w - left - 20.0) / rows.len().max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<text x="{}" y="22" text-anchor="middle" font-size="15">pitwall bench: {title}</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>
<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">records/s</text>
"#,
        w / 2.0,
        h - bottom,
        w - 10.0,
        h - bottom,
        h - bottom,
        (h - bottom + top) / 2.0,
        (h - bottom + top) / 2.0
    );
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = h - bottom - (h - bottom - top) * i as f64 / 4.0;
        s += &format!(
            r#"<text x="{}" y="{}" text-anchor="end">{:.0}k</text>"#,
            left - 6.0,
            y + 4.0,
            v / 1000.0
        );
        s += "\n";
    }
    for (i, r) in rows.iter().enumerate() {
        let bh = (h - bottom - top) * r.records_per_second / max;
        let x = left + slot * i as f64 + slot * 0.2;
        let y = h - bottom - bh;
        s += &format!(
            r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="#3b7dd8"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.0}k/s{}</text>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
"##,
            slot * 0.6,
            x + slot * 0.3,
            y - 6.0,
            r.records_per_second / 1000.0,
            if r.efficiency.is_finite() {
                format!(", eff {:.2}", r.efficiency)
            } else {
                String::new()
            },
            x + slot * 0.3,
            h - bottom + 18.0,
            r.scenario
        );
    }
    s + "</svg>\n"
}
