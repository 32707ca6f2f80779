//! Kafka end to end against a real broker: the one `scripts/kafka.sh start` runs (or
//! PITWALL_BROKERS), and for the outage test an Apache Kafka of its own that it can pause.

mod common;

use common::outputs::{check_fold, driver_lap, first_difference, lines, rows_by};
use common::{
    bin, cleared_on_topic, free_port, lines_of, pitwall_run, race, race_prefix, root, serve,
    wait_for_exit, wait_for_line, wait_until, wait_until_ok, Capture, RunCommand, RunningChild,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn brokers() -> String {
    std::env::var("PITWALL_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
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
                 laps = {{ name = \"{prefix}-laps\", partitions = 4 }}\n\
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

    /// `pitwall run` on the test's topics and group (`-q`, its log at info).
    fn run(&self) -> RunCommand {
        pitwall_run()
            .quiet()
            .brokers(&self.brokers)
            .env("PITWALL_CONFIG", &self.config)
            .env("PITWALL_BROKERS", &self.brokers)
            .env("RUST_LOG", "pitwall=info")
    }

    /// `pitwall produce` of `input` paced at `speed` times the race's pace, running.
    fn producing(&self, input: &Path, speed: &str) -> RunningChild {
        RunningChild::new(
            self.command(&[
                "produce",
                "--input",
                input.to_str().unwrap(),
                "--speed",
                speed,
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        )
    }

    /// `pitwall run` on the test's topics with no end and its output discarded, running.
    fn engine_running(&self) -> RunningChild {
        self.run()
            .stdout(Capture::Null)
            .stderr(Capture::Null)
            .spawn()
            .unwrap()
    }

    /// `pitwall run` on the test's topics until `idle` seconds without a message, into `out`.
    fn engine(&self, idle: f64, out: &Path) -> RunCommand {
        self.run().until_idle(idle).out(out)
    }

    /// The engine on the test's topics until 2 s without a message: its --out folder and summary.
    fn run_until_idle(&self, name: &str) -> (PathBuf, Value) {
        let out = self.path(name);
        let run = self.engine(2.0, &out).output().unwrap();
        assert!(
            run.status.success(),
            "the engine failed: {}\n{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
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
        common::outputs::tail(&self.brokers, topic, &format!("{}-{group}", self.prefix))
    }
}

/// The real race in two CSVs, each with the header: its first `rows` rows and the rest.
fn race_split(dir: &Path, rows: usize) -> (PathBuf, PathBuf) {
    let race = race();
    let mut reader = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(race).unwrap(),
    ))
    .lines();
    let header = reader.next().unwrap().unwrap();
    let paths = (dir.join("race-prefix.csv"), dir.join("race-rest.csv"));
    for (path, take) in [(&paths.0, rows), (&paths.1, usize::MAX)] {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        writeln!(out, "{header}").unwrap();
        for line in reader.by_ref().take(take) {
            writeln!(out, "{}", line.unwrap()).unwrap();
        }
    }
    paths
}

/// File mode on the same rows, without Kafka: its --out folder.
fn file_mode(s: &Setup, input: &Path) -> PathBuf {
    let out = s.path("file-mode");
    let run = pitwall_run()
        .quiet()
        .input(input)
        .out(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "file mode failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// File mode on the same rows: the reference alert set, by id.
fn file_mode_alerts(s: &Setup, csv: &Path) -> BTreeMap<String, Value> {
    lines(&file_mode(s, csv).join("alerts.jsonl"))
        .into_iter()
        .map(|a| (a["alert_id"].as_str().unwrap().to_string(), a))
        .collect()
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

/// What a consumer applying the changelog has: the last message of each `key`, in the topic's
/// order (offsets within a partition; a key stays on one partition), without the rows a
/// tombstone (null value) or a retracted prediction took back.
fn latest_by<K: Ord>(messages: &[Value], key: impl Fn(&Value) -> K) -> BTreeMap<K, Value> {
    let mut ordered: Vec<&Value> = messages.iter().collect();
    ordered.sort_by_key(|m| (m["partition"].as_i64(), m["offset"].as_i64()));
    let mut latest = BTreeMap::new();
    for m in ordered {
        let k = key(m);
        if m["value"].is_null() || m["value"]["retracted"] == true {
            latest.remove(&k);
        } else {
            latest.insert(k, m["value"].clone());
        }
    }
    latest
}

/// The test's output topics folded as a changelog by the independent client.
fn fold_with_independent_client(s: &Setup) -> Value {
    common::fold_changelog(
        &s.brokers,
        &s.topic("alerts"),
        &s.topic("laps"),
        &s.topic("predictions"),
    )
}

/// Predictions: keyed by model type; the last message of each (driver, lap, model) on the
/// predictions topic is file mode's prediction (`reference` is file mode's --out folder).
fn check_predictions(s: &Setup, reference: &Path) {
    let messages = s.tail(&s.topic("predictions"), "predictions");
    for m in &messages {
        assert_eq!(m["key"], m["value"]["model_type"], "{m}");
        assert_eq!(m["value"]["message_type"], "prediction", "{m}");
    }
    let on_topic = latest_by(&messages, |m| {
        let (driver, lap) = driver_lap(&m["value"]);
        let model = m["value"]["model_type"].as_str().unwrap().to_string();
        (driver, lap, model)
    });
    let expected = rows_by(&reference.join("predictions.jsonl"), |v| {
        let (driver, lap) = driver_lap(v);
        (driver, lap, v["model_type"].as_str().unwrap().to_string())
    });
    assert!(expected.len() > 4000, "{}", expected.len());
    assert!(
        on_topic == expected,
        "predictions on the topic differ from file mode ({} against {}); {}",
        on_topic.len(),
        expected.len(),
        first_difference(&on_topic, &expected)
    );
}

/// Laps and pit stops: the latest value of each key on the laps topic is file mode's row.
fn check_laps_and_pit_stops(s: &Setup, reference: &Path) {
    let messages = s.tail(&s.topic("laps"), "laps");
    let latest = latest_by(&messages, |m| m["key"].as_str().unwrap().to_string());
    let mut laps = BTreeMap::new();
    let mut pits = BTreeMap::new();
    for (key, v) in latest {
        let (driver, lap) = driver_lap(&v);
        match v["message_type"].as_str().unwrap() {
            "lap" => {
                assert_eq!(key, format!("{driver}:{lap}"));
                laps.insert((driver, lap), v);
            }
            "pit_stop" => {
                assert_eq!(key, format!("{driver}:{lap}:pit"));
                pits.insert((driver, lap), v);
            }
            other => panic!("{other} on the laps topic"),
        }
    }
    let expected = rows_by(&reference.join("laps.jsonl"), driver_lap);
    assert!(expected.len() > 1000, "{}", expected.len());
    assert!(
        laps == expected,
        "laps on the topic differ from file mode ({} against {}); {}",
        laps.len(),
        expected.len(),
        first_difference(&laps, &expected)
    );
    let expected = rows_by(&reference.join("pit_stops.jsonl"), driver_lap);
    assert!(!expected.is_empty());
    assert!(
        pits == expected,
        "pit stops on the topic differ from file mode: {}",
        first_difference(&pits, &expected)
    );
}

#[test]
fn the_race_views_through_kafka_give_file_modes_laps_predictions_and_race_alerts() {
    let s = Setup::new("race", &brokers());
    let race = race();
    let produced = s.check(&["produce", "--input", race.to_str().unwrap()]);
    assert!(produced.contains("produced 513360 messages"), "{produced}");
    let (out, summary) = s.run_until_idle("engine");
    assert_eq!(summary["records"], 513_360);
    let reference = file_mode(&s, &race);

    check_predictions(&s, &reference);
    check_laps_and_pit_stops(&s, &reference);

    // Car health and retirements: alerts on their severity's partition (high), keyed by id.
    let race_alert = |a: &Value| a["alert_type"] == "car_health" || a["alert_type"] == "retirement";
    let messages: Vec<Value> = s
        .tail(&s.topic("alerts"), "race-alerts")
        .into_iter()
        .filter(|m| race_alert(&m["value"]))
        .collect();
    for m in &messages {
        assert_eq!(m["value"]["severity"], "high", "{m}");
        assert_eq!(m["partition"], 0, "{m}");
        assert_eq!(m["key"], m["value"]["alert_id"], "{m}");
    }
    let on_topic = latest_by(&messages, |m| m["key"].as_str().unwrap().to_string());
    let expected: BTreeMap<String, Value> = lines(&reference.join("alerts.jsonl"))
        .into_iter()
        .filter(race_alert)
        .map(|a| (a["alert_id"].as_str().unwrap().to_string(), a))
        .collect();
    assert!(!expected.is_empty());
    assert!(
        on_topic == expected,
        "car health and retirements on the topic differ from file mode: {}",
        first_difference(&on_topic, &expected)
    );
    check_fold(&fold_with_independent_client(&s), &out);
}

/// Three drivers only (a thin field, where the views change their minds most): an independent
/// client folding the changelog gets exactly the engine's files. Which rows get taken back
/// depends on how records meet in epochs; `kafka_changelog.rs` checks the tombstones row by row.
#[test]
fn three_drivers_through_kafka_fold_to_the_engines_files() {
    let s = Setup::new("three", &brokers());
    let race = race();
    let produced = s.check(&[
        "produce",
        "--input",
        race.to_str().unwrap(),
        "--drivers",
        "VER,HAM,LEC",
    ]);
    assert!(produced.contains("drivers VER,HAM,LEC only"), "{produced}");
    let (out, _) = s.run_until_idle("engine");
    check_fold(&fold_with_independent_client(&s), &out);
}

/// The engine restarted mid-race rebuilds its state by replaying the committed part of the
/// telemetry topic, and the race views of that part go on from it: laps, pit stops and
/// predictions of the whole race on their topics are file mode's.
#[test]
fn a_restart_mid_race_keeps_the_race_views_of_the_replayed_part() {
    let s = Setup::new("restart", &brokers());
    let (first, rest) = race_split(s.dir.path(), 250_000);
    let produced = s.check(&["produce", "--input", first.to_str().unwrap()]);
    assert!(produced.contains("produced 250000 messages"), "{produced}");
    let (_, summary) = s.run_until_idle("before");
    assert_eq!(summary["records"], 250_000);

    let produced = s.check(&["produce", "--input", rest.to_str().unwrap()]);
    assert!(produced.contains("produced 263360 messages"), "{produced}");
    let out = s.path("after");
    let restart = s.engine(2.0, &out).output().unwrap();
    let log = String::from_utf8_lossy(&restart.stderr);
    assert!(restart.status.success(), "{log}");
    let replayed: u64 = log
        .split("replayed=")
        .skip(1)
        .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(replayed, 250_000, "every worker's replayed records: {log}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["records"], 263_360,
        "the restart resumed from its commits"
    );

    let reference = file_mode(&s, &race());
    check_predictions(&s, &reference);
    check_laps_and_pit_stops(&s, &reference);
}

/// The offsets the engine's group has committed on the telemetry topic, summed over its
/// partitions.
fn committed_by_engine(s: &Setup) -> Result<i64, String> {
    common::committed_offsets(
        &s.brokers,
        &format!("{}-engine", s.prefix),
        &s.topic("telemetry"),
    )
}

/// Waits until the engine's group has committed part of the telemetry topic.
fn wait_for_commits(s: &Setup) {
    wait_until_ok(
        "the engine's group to commit offsets",
        || match committed_by_engine(s)? {
            0 => Err("Nothing committed yet.".into()),
            _ => Ok(()),
        },
    );
}

/// The records a restarted engine replayed from its committed offsets, by its log.
fn replayed(log: &str) -> u64 {
    log.split("replayed=")
        .skip(1)
        .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_killed_engine_resumes_from_its_commits_and_loses_nothing() {
    let s = Setup::new("kill", &brokers());
    let rows = 40_000;
    let csv = race_prefix(s.dir.path(), rows);
    // A live replay: the engine is killed (SIGKILL) once it has committed some of the race,
    // while the rest is still coming in.
    let mut producer = s.producing(&csv, "60");
    let mut engine = s.engine_running();
    wait_for_commits(&s);
    engine.kill().unwrap();
    assert!(
        wait_for_exit(&mut producer).is_some_and(|status| status.success()),
        "the producer failed"
    );
    let out = s.path("restart");
    let restart = s.engine(2.0, &out).output().unwrap();
    let log = String::from_utf8_lossy(&restart.stderr);
    assert!(restart.status.success(), "{log}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let resumed = summary["records"].as_u64().unwrap();
    // The restart replayed what was committed before the kill and processed the rest: every
    // produced record once, none started over.
    let replayed = replayed(&log);
    assert!(
        replayed > 0,
        "the restart resumed from commits, it did not start over: {log}"
    );
    assert_eq!(
        replayed + resumed,
        rows as u64,
        "replayed {replayed} and processed {resumed}: {log}"
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
    // Across the kill, the changelog still folds to the uninterrupted run's files.
    check_fold(&fold_with_independent_client(&s), &s.path("file-mode"));
}

/// Exactly once: the full race produced live, the engine killed (SIGKILL) at ten points
/// spread over it and restarted in its group each time; its transactions commit outputs and
/// offsets together, so a `read_committed` consumer sees every output of the uninterrupted
/// file run once: the changelog folds to its files, no message repeats its key's current
/// value, and the windows topic holds exactly its windows, none missing, none twice.
#[test]
fn killed_ten_times_the_transactions_give_every_output_exactly_once() {
    let s = Setup::new("once", &brokers());
    let race = race();
    let reference = file_mode(&s, &race);
    let total = common::race_rows() as i64;
    let mut producer = s.producing(&race, "100");
    const KILLS: i64 = 10;
    let mut killed_at = Vec::new();
    for k in 1..=KILLS {
        let mut engine = s.engine_running();
        // Once the transactions have committed k/11 of the race (or, should the producer be
        // done first, at once: a kill during the restart's replay).
        let at = total * k / (KILLS + 1);
        let committed = wait_until_ok(
            &format!("kill {k}: the engine's transactions to commit {at} offsets"),
            || {
                let c = committed_by_engine(&s)?;
                let produced = producer.child().try_wait().map_err(|e| e.to_string())?;
                match c >= at || produced.is_some() {
                    true => Ok(c),
                    false => Err(format!("{c} committed")),
                }
            },
        );
        engine.kill().unwrap();
        killed_at.push(committed);
    }
    assert!(
        wait_for_exit(&mut producer).is_some_and(|status| status.success()),
        "the producer failed"
    );
    s.run_until_idle("last");
    assert_eq!(
        committed_by_engine(&s),
        Ok(total),
        "the last run commits the whole race (killed at {killed_at:?})"
    );

    common::outputs::check_exactly_once(
        &s.brokers,
        |t| s.topic(t),
        &reference,
        &format!("killed at {killed_at:?}"),
    );
}

/// librdkafka can block for ever in `send_offsets_to_transaction` once the broker of the
/// group's coordinator is lost (librdkafka#5456, #5511). Injected here: the third sending of
/// offsets never returns. The engine replaces the blocked producer (the new one fences it, and
/// the broker aborts its open transaction), sends that transaction's outputs again through the
/// new one and goes on: a read_committed consumer sees every output of the run once.
#[test]
fn a_commit_blocked_in_librdkafka_is_taken_over_by_a_new_producer() {
    let s = Setup::new("stall", &brokers());
    let race = race();
    let mut producer = RunningChild::new(
        s.command(&[
            "produce",
            "--input",
            race.to_str().unwrap(),
            "--drivers",
            "VER,HAM,LEC",
            "--speed",
            "200",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let out = s.path("engine");
    let run = s
        .engine(5.0, &out)
        .env("PITWALL_FAULT_STALL_OFFSETS", "3")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the engine failed: {}\n{log}",
        run.status
    );
    assert!(
        wait_for_exit(&mut producer).is_some_and(|status| status.success()),
        "the producer failed"
    );
    assert!(
        log.contains("fault injected: sending offsets 3 blocks for ever"),
        "the fault was not injected:\n{log}"
    );
    assert_eq!(
        log.matches("the blocked transactional producer is replaced by a new one")
            .count(),
        1,
        "{log}"
    );
    common::outputs::check_exactly_once(
        &s.brokers,
        |t| s.topic(t),
        &out,
        "the third commit blocked",
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

/// An Apache Kafka of the test's own (`scripts/kafka.sh` on free ports, in the test's own
/// folder), that it can pause; stopped when dropped.
struct OwnBroker {
    dir: tempfile::TempDir,
    port: u16,
    brokers: String,
}

impl OwnBroker {
    fn script(&self, action: &str) -> std::process::Output {
        Command::new("bash")
            .arg(root().join("scripts/kafka.sh"))
            .arg(action)
            .env("PITWALL_KAFKA_PORT", self.port.to_string())
            .env("PITWALL_KAFKA_CONTROLLER_PORT", free_port().to_string())
            .env("PITWALL_KAFKA_DIR", self.dir.path())
            .output()
            .unwrap()
    }

    fn start() -> OwnBroker {
        let port = free_port();
        let broker = OwnBroker {
            dir: tempfile::tempdir().unwrap(),
            port,
            brokers: format!("127.0.0.1:{port}"),
        };
        let out = broker.script("start");
        assert!(
            out.status.success(),
            "scripts/kafka.sh start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        broker
    }

    fn signal(&self, sig: &str) {
        let pid = std::fs::read_to_string(self.dir.path().join("kafka.pid")).unwrap();
        assert!(Command::new("kill")
            .args([sig, pid.trim()])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        // The script wakes a paused broker before stopping it.
        let _ = self.script("stop");
    }
}

#[test]
fn the_engine_rides_out_a_broker_outage_and_loses_nothing() {
    let broker = OwnBroker::start();
    let s = Setup::new("outage", &broker.brokers);
    let csv = race_prefix(s.dir.path(), 40_000);
    let mut producer = s.producing(&csv, "60");
    let out = s.path("engine");
    let engine = s.engine(15.0, &out).stdout(Capture::Null).spawn().unwrap();
    // Mid-stream (the engine has committed some of the race), the broker stops answering for
    // 10 s (SIGSTOP), then comes back.
    wait_for_commits(&s);
    broker.signal("-STOP");
    std::thread::sleep(Duration::from_secs(10));
    broker.signal("-CONT");
    assert!(producer.child().wait().unwrap().success());
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

/// `(key, partition)` of every message of a topic.
fn keys_and_partitions(messages: &[Value]) -> BTreeSet<(String, i64)> {
    messages
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_string(),
                m["partition"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn produce_drivers_sends_only_those_drivers_and_counts_them() {
    let s = Setup::new("drivers", &brokers());
    let csv = race_prefix(s.dir.path(), 2000);
    let produced = s.check(&[
        "produce",
        "--input",
        csv.to_str().unwrap(),
        "--drivers",
        "VER,HAM,LEC",
    ]);
    // The first 2000 rows are 100 samples of each of the 20 cars.
    assert!(produced.contains("produced 300 messages"), "{produced}");
    assert!(
        produced.contains("acknowledged 300, failed 0"),
        "{produced}"
    );
    assert!(
        produced.contains("drivers VER,HAM,LEC only (1700 rows of others left out)"),
        "{produced}"
    );
    let messages = s.tail(&s.topic("telemetry"), "drivers");
    assert_eq!(messages.len(), 300);
    let drivers: BTreeSet<&str> = messages
        .iter()
        .map(|m| m["value"]["driver_id"].as_str().unwrap())
        .collect();
    assert_eq!(drivers, BTreeSet::from(["HAM", "LEC", "VER"]));
}

/// `-X` and `[kafka.properties]` reach the clients: librdkafka's partitioner decides where a
/// key goes, so another partitioner moves some drivers to other partitions.
#[test]
fn kafka_properties_reach_the_producer_from_flags_and_config() {
    let s = Setup::new("props", &brokers());
    let csv = race_prefix(s.dir.path(), 200);
    let produce = |extra: &[&str]| {
        let mut args = vec!["produce", "--input", csv.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = s.check(&args);
        assert!(out.contains("produced 200 messages"), "{out}");
    };
    produce(&[]);
    let default = keys_and_partitions(&s.tail(&s.topic("telemetry"), "p0"));
    assert_eq!(default.len(), 20, "one partition per driver: {default:?}");

    produce(&["-X", "partitioner=murmur2_random"]);
    let both = keys_and_partitions(&s.tail(&s.topic("telemetry"), "p1"));
    let murmur: BTreeSet<_> = both.difference(&default).cloned().collect();
    assert!(
        !murmur.is_empty(),
        "-X partitioner=murmur2_random moved no driver: {both:?}"
    );

    // The same through the configuration file.
    let config = s.path("murmur.toml");
    let text = std::fs::read_to_string(&s.config).unwrap()
        + "\n[kafka.properties]\npartitioner = \"murmur2\"\n";
    std::fs::write(&config, text).unwrap();
    let out = s
        .command(&["produce", "--input", csv.to_str().unwrap()])
        .env("PITWALL_CONFIG", &config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = keys_and_partitions(&s.tail(&s.topic("telemetry"), "p2"));
    assert_eq!(
        all, both,
        "murmur2 from the file puts each key where -X put it"
    );
}

/// `--group` picks the engine's group: the same group resumes, a new one reads from the start.
/// `-b` and `--bootstrap-server` are `--brokers`.
#[test]
fn run_group_resumes_in_its_group_and_a_new_group_reads_from_the_start() {
    let s = Setup::new("group", &brokers());
    let csv = race_prefix(s.dir.path(), 2000);
    s.check(&["produce", "--input", csv.to_str().unwrap()]);
    let run = |group: &str, flag: &str, name: &str| -> u64 {
        let out = s.path(name);
        let o = s
            .command(&["run", "-q", flag, &s.brokers, "--group", group])
            .args(["--until-idle", "2", "--out", out.to_str().unwrap()])
            // The flag, not the environment, must name the broker.
            .env("PITWALL_BROKERS", "127.0.0.1:1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        summary["records"].as_u64().unwrap()
    };
    let a = format!("{}-a", s.prefix);
    let b = format!("{}-b", s.prefix);
    assert_eq!(run(&a, "-b", "a1"), 2000);
    assert_eq!(run(&a, "--bootstrap-server", "a2"), 0, "group a resumed");
    assert_eq!(
        run(&b, "--brokers", "b1"),
        2000,
        "group b read from the start"
    );
}

/// Ctrl-C during a replay: what was sent is flushed and acknowledged, and the summary says so.
#[test]
fn ctrl_c_stops_produce_with_a_flush_and_a_summary() {
    let s = Setup::new("sigint", &brokers());
    let mut child = RunningChild::new(
        s.command(&["produce", "--input", "sim", "--laps", "0", "--speed", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Started (its signal handlers in place) once it says where it produces to.
    let stderr = lines_of(child.take_stderr().unwrap());
    let mut seen = Vec::new();
    assert!(
        wait_for_line(&stderr, "producing to", &mut seen).is_some(),
        "{seen:?}"
    );
    // Some of the race has gone out: the topic has messages.
    let topic = s.topic("telemetry");
    wait_until("messages on the telemetry topic", || {
        (topic_end(&s.brokers, &topic) > 0).then_some(())
    });
    child.signal("INT").unwrap();
    let status = wait_for_exit(&mut child).expect("produce did not stop on SIGINT");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.take_stdout().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("stopped by a signal"), "{out}");
    let number = |after: &str| -> u64 {
        out.split(after)
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no '{after}' in {out}"))
    };
    let sent = number("produced ");
    assert!(sent > 0, "{out}");
    assert_eq!(number("acknowledged "), sent, "{out}");
    assert_eq!(
        s.tail(&s.topic("telemetry"), "after-sigint").len() as u64,
        sent
    );
}

/// The messages on `topic` (the sum of its partitions' high watermarks), by a client of the
/// test's own.
fn topic_end(brokers: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .unwrap();
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(30))
                .unwrap()
                .1
        })
        .sum()
}

/// `pitwall topics list | true`: the reader is gone before the list is written; the listing
/// ends quietly instead of panicking on the broken pipe.
#[test]
fn topics_list_into_a_closed_pipe_ends_quietly() {
    let s = Setup::new("pipe", &brokers());
    let mut child = s
        .command(&["topics", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{}: {stderr}", out.status);
}

/// Consumer lag per partition, read through `/api/engine` and `/metrics` while the engine runs:
/// the partitions' ends add up to what was produced, and once the topic is drained and its
/// outputs acknowledged, nothing is behind the position nor the committed offset.
#[test]
fn consumer_lag_is_reported_per_partition_and_falls_to_zero_once_drained() {
    let s = Setup::new("lag", &brokers());
    let csv = race_prefix(s.dir.path(), 20_000);
    let produced = s.check(&["produce", "--input", csv.to_str().unwrap()]);
    assert!(produced.contains("produced 20000 messages"), "{produced}");
    let mut engine = serve(
        s.run()
            .until_idle(60.0)
            .stdout(Capture::Null)
            .stderr(Capture::Null),
    );
    let base = engine.base.clone();
    let get = |path: &str| -> Option<String> {
        ureq::get(&format!("{base}{path}"))
            .call()
            .ok()?
            .into_string()
            .ok()
    };
    let kafka = wait_until_ok("the consumer lag to fall to zero", || {
        let engine_state: Option<Value> =
            get("/api/engine").and_then(|b| serde_json::from_str(&b).ok());
        let k = engine_state.map_or(Value::Null, |e| e["kafka"].clone());
        let ends: i64 = k["partitions"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["end"].as_i64()).sum())
            .unwrap_or_default();
        if ends == 20_000 && k["lag"] == 0 && k["committed_lag"] == 0 {
            Ok(k)
        } else {
            Err(format!("Last seen: {k}"))
        }
    });
    let partitions = kafka["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 4, "{kafka}");
    for p in partitions {
        assert_eq!(p["topic"], s.topic("telemetry").as_str(), "{p}");
        assert_eq!(p["position"], p["end"], "{p}");
        assert_eq!(p["committed"], p["end"], "{p}");
    }
    let metrics = get("/metrics").unwrap();
    for partition in 0..4 {
        for behind in ["position", "committed"] {
            let line = format!(
                "pitwall_kafka_consumer_lag{{topic=\"{}\",partition=\"{partition}\",behind=\"{behind}\"}} 0",
                s.topic("telemetry")
            );
            assert!(
                metrics.lines().any(|l| l == line),
                "{line} not in {metrics}"
            );
        }
    }
    engine.child.signal("TERM").unwrap();
    let _ = wait_for_exit(&mut engine.child);
}
