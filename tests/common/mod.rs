//! The harness the end-to-end tests share: the binary and the real race; starting a child
//! (`pitwall run` through the library's [`RunCommand`], killed when dropped as a
//! [`RunningChild`]); serving on a free port and waiting until it answers ([`serve`]); and
//! waiting on events (a child's end, a line, progress, any condition) with one generous
//! [`PATIENCE`], never on the machine's speed. (Each test binary uses only some of it.)
#![allow(dead_code)]

pub mod outputs;

// Re-exported for the test binaries; each uses only some.
#[allow(unused_imports)]
pub use pitwall::bench::child::{Capture, RunCommand, RunningChild};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The longest any test waits for an event before it fails: generous, since the machine may
/// be busy with other builds and tests, and never reached when things work (every wait returns
/// as soon as its event happens).
pub const PATIENCE: Duration = Duration::from_secs(240);

/// The header and 3000 rows of the real race (every 7th row: all 20 drivers, before and after
/// the start), for tests that build files of their own from real rows.
pub fn real_rows() -> &'static (String, Vec<String>) {
    static ROWS: std::sync::OnceLock<(String, Vec<String>)> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        let path = race();
        let file = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (the tests read the real race)", path.display()));
        let mut lines = BufReader::new(flate2::read::GzDecoder::new(file)).lines();
        let header = lines.next().expect("a header").expect("readable");
        let rows = lines
            .step_by(7)
            .take(3000)
            .map(|l| l.expect("readable"))
            .collect();
        (header, rows)
    })
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pitwall")
}

/// `pitwall run` of this build, its query API off (a test that serves it says where:
/// [`serve`]).
pub fn pitwall_run() -> RunCommand {
    RunCommand::new(bin()).http_off()
}

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The real race: Monaco 2023, every driver.
pub fn race() -> PathBuf {
    let race = root().join("../shared/data/monaco-2023/monaco_2023_race.csv.gz");
    assert!(race.exists(), "{} is missing", race.display());
    race
}

/// The data rows of the real race, counted here without pitwall (each is a record: the race
/// has no bad row, as `run_real_race` checks).
pub fn race_rows() -> u64 {
    let file = std::fs::File::open(race()).unwrap();
    let lines = BufReader::new(flate2::read::GzDecoder::new(file)).lines();
    lines
        .skip(1)
        .map(|l| l.unwrap())
        .filter(|l| !l.is_empty())
        .count() as u64
}

/// The first `rows` rows of the real race as a CSV of its own.
pub fn race_prefix(dir: &Path, rows: usize) -> PathBuf {
    let lines = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(race()).unwrap(),
    ))
    .lines();
    let path = dir.join(format!("race-{rows}.csv"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for line in lines.take(rows + 1) {
        writeln!(out, "{}", line.unwrap()).unwrap();
    }
    path
}

/// Polls `check` (every 100 ms) until it gives a value; fails past [`PATIENCE`], saying it
/// waited for `what`.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    wait_until_ok(what, || check().ok_or_else(String::new))
}

/// Polls `check` (every 100 ms) until it is `Ok`; fails past [`PATIENCE`], saying it waited for
/// `what` and what the last `Err` said it saw.
pub fn wait_until_ok<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = match check() {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "waited {} s for {what}. {seen}",
            PATIENCE.as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to [`PATIENCE`] for a process to end: its status, or `None` (then it is killed).
pub fn wait_for_exit(child: &mut RunningChild) -> Option<ExitStatus> {
    let status = child.wait_for(PATIENCE).unwrap();
    if status.is_none() {
        let _ = child.kill();
    }
    status
}

/// Lines of a pipe (a child's stdout or stderr) as they come, read to its end on a thread of
/// their own.
pub fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (up to [`PATIENCE`]) for a line containing `needle`: the line, or `None` if the pipe
/// closed or the time ran out first. Every line read is added to `seen`.
pub fn wait_for_line(
    lines: &Receiver<String>,
    needle: &str,
    seen: &mut Vec<String>,
) -> Option<String> {
    let deadline = Instant::now() + PATIENCE;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            Err(_) => return None,
        }
    }
    None
}

/// A child serving HTTP on loopback, answering; killed when dropped.
pub struct Served {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub addr: SocketAddr,
    pub child: RunningChild,
}

/// Starts `run` serving its query API on a free loopback port and waits until it answers
/// (`/health`). Add `--keep-serving` to `run` for a server that outlives its input.
pub fn serve(run: RunCommand) -> Served {
    serve_at(run, SocketAddr::from(([127, 0, 0, 1], free_port())))
}

/// [`serve`] on an address chosen beforehand (another program was told it first).
pub fn serve_at(run: RunCommand, addr: SocketAddr) -> Served {
    let run = run.http(addr);
    let mut child = run.spawn().unwrap_or_else(|e| panic!("{run}: {e}"));
    let base = format!("http://{addr}");
    wait_until_answers(&format!("{base}/health"), &mut child, String::new);
    Served { base, addr, child }
}

/// Waits until `GET url` answers with a success (a server up and ready) while `child` runs:
/// fails as soon as the child ends, or past [`PATIENCE`], adding `context()` (a log, say).
pub fn wait_until_answers(url: &str, child: &mut RunningChild, context: impl Fn() -> String) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if ureq::get(url)
            .timeout(Duration::from_secs(10))
            .call()
            .is_ok()
        {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{url}: the server ended ({status}) before answering. {}",
                context()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer in {} s. {}",
            PATIENCE.as_secs(),
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `path` (a `pitwall run`'s stdout) shows live progress past `records`.
pub fn wait_for_progress(path: &Path, records: u64, child: &mut RunningChild) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let seen = text
            .lines()
            .filter_map(|l| {
                l.split("records")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        if seen >= records {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before {records} records: {text}");
        }
        assert!(
            Instant::now() < deadline,
            "no progress past {records}: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `cleared` message of each alert id among messages read by `pitwall tail`.
pub fn cleared_on_topic(messages: &[Value]) -> BTreeMap<String, Value> {
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

/// A test that cannot run on this machine, for want of `missing`. Under CI (`CI` set, as
/// `.ci/run` sets it) that fails the test, naming what is missing; elsewhere the test says so on
/// stderr and adds a line to the file named by `PITWALL_SKIPS`, whose lines `scripts/test.sh`
/// counts and prints at the end (cargo hides a passing test's stderr).
pub fn cannot_run(test: &str, missing: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} cannot run: it needs {missing}, which .ci/run installs"
    );
    eprintln!("SKIPPED {test}: it needs {missing}");
    if let Some(path) = std::env::var_os("PITWALL_SKIPS") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {missing}");
        }
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    pitwall::bench::child::free_port().expect("a free loopback port")
}

/// The output topics read from the beginning by an independent client (confluent-kafka in
/// Python, `tests/changelog_fold.py`, read_committed) that applies the changelog: the current
/// rows it folds to. `PITWALL_PYTHON` names the Python that has the client (scripts/test.sh).
pub fn fold_changelog(brokers: &str, alerts: &str, laps: &str, predictions: &str) -> Value {
    fold_changelog_and_windows(brokers, alerts, laps, predictions, None)
}

/// [`fold_changelog`], and with `windows` (a windows topic and an engine's `windows.jsonl`)
/// the topic's window messages against the file's lines: `"windows": {messages, missing,
/// extra}`.
pub fn fold_changelog_and_windows(
    brokers: &str,
    alerts: &str,
    laps: &str,
    predictions: &str,
    windows: Option<(&str, &Path)>,
) -> Value {
    let python = std::env::var("PITWALL_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut fold = std::process::Command::new(&python);
    fold.arg(root().join("tests/changelog_fold.py"))
        .args([brokers, alerts, laps, predictions]);
    if let Some((topic, file)) = windows {
        fold.arg(topic).arg(file);
    }
    let out = fold.output().unwrap();
    assert!(
        out.status.success(),
        "{python} tests/changelog_fold.py (scripts/test.sh makes ~/.cache/pitwall/venv with \
         confluent-kafka and names it in PITWALL_PYTHON): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The offsets `group` has committed on `topic`, summed over its partitions, as a Kafka client
/// of the test's own reads them from `brokers` (an error while a fresh broker's offsets topic
/// loads, say `NotCoordinator`, is an answer for later).
pub fn committed_offsets(brokers: &str, group: &str, topic: &str) -> Result<i64, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let mut partitions = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        partitions.add_partition(topic, p.id());
    }
    Ok(consumer
        .committed_offsets(partitions, Duration::from_secs(30))
        .map_err(|e| e.to_string())?
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        })
        .sum())
}
