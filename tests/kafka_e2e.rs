//! Kafka end to end against a real broker: the one `scripts/kafka.sh start` runs (or
//! PITWALL_BROKERS), and for the outage test a Tansu of its own that it can pause.

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn brokers() -> String {
    std::env::var("PITWALL_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pitwall")
}

/// A test's own topics and group, so tests can run side by side on one broker.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    brokers: String,
    prefix: String,
}

impl Setup {
    fn new(name: &str, brokers: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!("t{}-{name}", nanos % 1_000_000_000);
        let config = dir.path().join("pitwall.toml");
        std::fs::write(
            &config,
            format!(
                "[engine]\nprogress_interval_ms = 200\n\n[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{prefix}-engine\"\n\n\
                 [kafka.topics]\ntelemetry = {{ name = \"{prefix}-telemetry\", partitions = 4 }}\n\
                 alerts = {{ name = \"{prefix}-alerts\", partitions = 3 }}\n\
                 predictions = {{ name = \"{prefix}-predictions\", partitions = 3 }}\n\
                 windows = {{ name = \"{prefix}-windows\", partitions = 4 }}\n\
                 dead_letters = {{ name = \"{prefix}-dead\", partitions = 1 }}\n"
            ),
        )
        .unwrap();
        let s = Setup {
            dir,
            config,
            brokers: brokers.to_string(),
            prefix,
        };
        s.check(&["topics", "create"]);
        s
    }

    fn topic(&self, t: &str) -> String {
        format!("{}-{t}", self.prefix)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.env("PITWALL_HTTP", "off");
        c.args(args)
            .env("PITWALL_CONFIG", &self.config)
            .env("PITWALL_BROKERS", &self.brokers)
            .env("RUST_LOG", "pitwall=info");
        c
    }

    fn check(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "pitwall {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `pitwall run` on the test's topics until `idle` seconds without a message, into `out`.
    fn engine_args<'a>(&'a self, idle: &'a str, out: &'a Path) -> [&'a str; 8] {
        [
            "run",
            "-q",
            "--brokers",
            &self.brokers,
            "--until-idle",
            idle,
            "--out",
            out.to_str().unwrap(),
        ]
    }

    /// The engine on the test's topics until 2 s without a message: its --out folder and summary.
    fn run_until_idle(&self, name: &str) -> (PathBuf, Value) {
        let out = self.path(name);
        self.check(&self.engine_args("2", &out));
        let summary =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        (out, summary)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every message of a topic, read by `pitwall tail` in its own group.
    fn tail(&self, topic: &str, group: &str) -> Vec<Value> {
        let out = self.check(&[
            "tail",
            "--topic",
            topic,
            "--group",
            &format!("{}-{group}", self.prefix),
            "--from-beginning",
            "--timeout",
            "8",
        ]);
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The first `rows` rows of the real race, as a small CSV for the test.
fn race_prefix(dir: &Path, rows: usize) -> PathBuf {
    let race = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/monaco-2023/monaco_2023_race.csv.gz");
    assert!(race.exists(), "{} is missing", race.display());
    let reader = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(race).unwrap(),
    ));
    let path = dir.join("race-prefix.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for line in reader.lines().take(rows + 1) {
        writeln!(out, "{}", line.unwrap()).unwrap();
    }
    path
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// File mode on the same rows: the reference alert set, by id.
fn file_mode_alerts(s: &Setup, csv: &Path) -> BTreeMap<String, Value> {
    let out = s.path("file-mode");
    Command::new(bin())
        .env("PITWALL_HTTP", "off")
        .args([
            "run",
            "-q",
            "--input",
            csv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    lines(&out.join("alerts.jsonl"))
        .into_iter()
        .map(|a| (a["alert_id"].as_str().unwrap().to_string(), a))
        .collect()
}

/// The last `cleared` message of each alert id on the alerts topic.
fn cleared_on_topic(messages: &[Value]) -> BTreeMap<String, Value> {
    let mut by_id = BTreeMap::new();
    for m in messages {
        if m["value"]["status"] == "cleared" {
            by_id.insert(
                m["value"]["alert_id"].as_str().unwrap().to_string(),
                m["value"].clone(),
            );
        }
    }
    by_id
}

#[test]
fn the_race_through_kafka_gives_file_modes_alerts_on_severity_partitions() {
    let s = Setup::new("e2e", &brokers());
    let csv = race_prefix(s.dir.path(), 40_000);
    let produced = s.check(&["produce", "--input", csv.to_str().unwrap()]);
    assert!(produced.contains("produced 40000 messages"), "{produced}");
    let (out, summary) = s.run_until_idle("engine");
    assert_eq!(summary["records"], 40_000);

    let reference = file_mode_alerts(&s, &csv);
    assert!(reference.len() > 50, "{}", reference.len());
    let engine: BTreeMap<String, Value> = lines(&out.join("alerts.jsonl"))
        .into_iter()
        .map(|a| (a["alert_id"].as_str().unwrap().to_string(), a))
        .collect();
    assert!(engine == reference, "engine alerts differ from file mode");

    // Two consumers in different groups each see every alert, each on its severity's partition.
    let first = s.tail(&s.topic("alerts"), "tail-a");
    let second = s.tail(&s.topic("alerts"), "tail-b");
    assert_eq!(
        first.len(),
        2 * reference.len(),
        "raised and cleared for every episode"
    );
    assert_eq!(second.len(), first.len());
    for m in &first {
        let expected = match m["value"]["severity"].as_str().unwrap() {
            "high" => 0,
            "medium" => 1,
            _ => 2,
        };
        assert_eq!(m["partition"], expected, "{m}");
        assert_eq!(m["key"], m["value"]["alert_id"]);
    }
    assert!(
        cleared_on_topic(&first) == reference,
        "topic alerts differ from file mode"
    );
    let windows = s.tail(&s.topic("windows"), "tail-w");
    assert_eq!(windows.len(), lines(&out.join("windows.jsonl")).len());
}

/// Runs the engine until its live progress shows `after` records, then kills it with SIGKILL.
fn kill_mid_stream(s: &Setup, after: u64) -> u64 {
    let mut engine: Child = s
        .command(&["run", "--brokers", &s.brokers])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(engine.stdout.take().unwrap());
    let mut seen = 0;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(n) = line
            .split("records")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            seen = n;
            if n >= after {
                break;
            }
        }
    }
    engine.kill().unwrap();
    engine.wait().unwrap();
    seen
}

#[test]
fn a_killed_engine_resumes_from_its_commits_and_loses_nothing() {
    let s = Setup::new("kill", &brokers());
    let csv = race_prefix(s.dir.path(), 40_000);
    // A live replay: the engine is killed while the race is still coming in.
    let mut producer = s
        .command(&["produce", "--input", csv.to_str().unwrap(), "--speed", "60"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let seen = kill_mid_stream(&s, 10_000);
    assert!(
        (10_000..40_000).contains(&seen),
        "killed after {seen} records"
    );
    assert!(producer.wait().unwrap().success());
    let out = s.path("restart");
    let restart = s.command(&s.engine_args("2", &out)).output().unwrap();
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    let log = String::from_utf8_lossy(&restart.stderr);
    assert!(log.contains("replayed="), "{log}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let resumed = summary["records"].as_u64().unwrap();
    assert!(
        resumed < 40_000,
        "the restart resumed, it did not start over: {log}"
    );

    let reference = file_mode_alerts(&s, &csv);
    let messages = s.tail(&s.topic("alerts"), "after-kill");
    let delivered = cleared_on_topic(&messages);
    assert_eq!(
        delivered.keys().collect::<BTreeSet<_>>(),
        reference.keys().collect::<BTreeSet<_>>()
    );
    assert!(
        delivered == reference,
        "the union of alerts differs from the uninterrupted run"
    );
}

#[test]
fn malformed_messages_go_to_the_dead_letter_topic_and_the_rest_is_processed() {
    let s = Setup::new("dlq", &brokers());
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &s.brokers)
        .create()
        .unwrap();
    let topic = s.topic("telemetry");
    let bad: [&[u8]; 5] = [
        b"not json at all",
        br#"{"timestamp": "2023-05-28T13:01:02.424Z", "driver_id": "VER", "rpm": 1, "gear": 1, "throttle": 1, "brake": 0, "drs": 0}"#,
        br#"{"timestamp": "2023-05-28T13:01:02.424Z", "driver_id": "VER", "speed": -40, "rpm": 1, "gear": 1, "throttle": 1, "brake": 0, "drs": 0}"#,
        br#"{"timestamp": "2023-05-28T13:01:02.424Z", "driver_id": "V E R", "speed": 40, "rpm": 1, "gear": 1, "throttle": 1, "brake": 0, "drs": 0}"#,
        b"\xff\xfe binary",
    ];
    let mut sent_bad = 0;
    for i in 0..50i64 {
        let valid = format!(
            r#"{{"timestamp": {}, "driver_id": "VER", "speed": 200, "rpm": 11000, "gear": 7, "throttle": 100, "brake": 0, "drs": 1, "message_type": "telemetry"}}"#,
            1_685_278_862_000 + i * 250
        );
        producer
            .send(BaseRecord::to(&topic).key("VER").payload(valid.as_bytes()))
            .unwrap();
        if i % 10 == 5 {
            producer
                .send(BaseRecord::to(&topic).key("VER").payload(bad[sent_bad]))
                .unwrap();
            sent_bad += 1;
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let (_, summary) = s.run_until_idle("engine");
    assert_eq!(
        summary["records"], 50,
        "every valid message around the bad ones"
    );
    assert_eq!(summary["dead_letters"], 5);
    let dead = s.tail(&s.topic("dead"), "dlq");
    assert_eq!(dead.len(), 5);
    let mut reasons = BTreeSet::new();
    for m in &dead {
        let h = &m["headers"];
        assert_eq!(h["pitwall.origin"], topic.as_str());
        assert!(h["pitwall.offset"].as_str().unwrap().parse::<u64>().is_ok());
        assert!(h["pitwall.partition"]
            .as_str()
            .unwrap()
            .parse::<i32>()
            .is_ok());
        reasons.insert(format!(
            "{}: {}",
            h["pitwall.field"].as_str().unwrap(),
            h["pitwall.reason"].as_str().unwrap()
        ));
    }
    assert!(
        reasons.contains("Speed: out of range 0..=450"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains("driver_id: not a driver code (1-8 letters/digits)"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains("message: not telemetry JSON"),
        "{reasons:?}"
    );
    // The original bytes are kept as they were.
    assert!(dead.iter().any(|m| m["value"] == "not json at all"));
}

/// A Tansu of the test's own, on a free port, that it can pause.
struct OwnBroker {
    child: Child,
    brokers: String,
}

impl OwnBroker {
    fn start() -> OwnBroker {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("path")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/kafka.sh path: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tansu = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnBroker {
            child,
            brokers: format!("127.0.0.1:{port}"),
        }
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_engine_rides_out_a_broker_outage_and_loses_nothing() {
    let broker = OwnBroker::start();
    let s = Setup::new("outage", &broker.brokers);
    let csv = race_prefix(s.dir.path(), 40_000);
    let mut producer = s
        .command(&["produce", "--input", csv.to_str().unwrap(), "--speed", "60"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let out = s.path("engine");
    let engine = s
        .command(&s.engine_args("15", &out))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // The broker stops answering for 10 s (SIGSTOP), then comes back.
    broker.signal("-STOP");
    std::thread::sleep(Duration::from_secs(10));
    broker.signal("-CONT");
    assert!(producer.wait().unwrap().success());
    let status = engine.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["records"], 40_000);
    let reference = file_mode_alerts(&s, &csv);
    let delivered = cleared_on_topic(&s.tail(&s.topic("alerts"), "after-outage"));
    assert!(
        delivered == reference,
        "alerts lost or changed over the outage"
    );
}
