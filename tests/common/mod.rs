//! Helpers the end-to-end tests share: the binary, the real race, waiting on child processes.
//! (Each test binary uses only some of them.)
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

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

/// Waits for a process to end, up to `limit`: its status and how long it took. Past the limit
/// the process is killed and the answer is `None`.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<(ExitStatus, Duration)> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some((status, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Waits until `path` (a `pitwall run`'s stdout) shows live progress past `records`.
pub fn wait_for_progress(path: &Path, records: u64, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(180);
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
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The output topics read from the beginning by an independent client (confluent-kafka in
/// Python, `tests/changelog_fold.py`, read_committed) that applies the changelog: the current
/// rows it folds to. `PITWALL_PYTHON` names the Python that has the client (scripts/test.sh).
pub fn fold_changelog(brokers: &str, alerts: &str, laps: &str, predictions: &str) -> Value {
    let python = std::env::var("PITWALL_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .arg(root().join("tests/changelog_fold.py"))
        .args([brokers, alerts, laps, predictions])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{python} tests/changelog_fold.py (scripts/test.sh makes ~/.cache/pitwall/venv with \
         confluent-kafka and names it in PITWALL_PYTHON): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
