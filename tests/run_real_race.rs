//! `pitwall run` on the real 2023 Monaco race, end to end through the binary.

mod common;

use common::{pitwall_run, race, RunCommand};
use pitwall::bench::child::write_local_hostfile;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

/// `pitwall run -q` of the real race, warnings only in its log.
fn run_of_the_race() -> RunCommand {
    pitwall_run().quiet().input(race()).env("RUST_LOG", "warn")
}

fn check(out: Output) -> Output {
    assert!(
        out.status.success(),
        "pitwall failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the real race with extra arguments into a fresh folder and returns it.
fn run_race(workers: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    check(
        run_of_the_race()
            .workers(workers)
            .out(dir.path())
            .output()
            .unwrap(),
    );
    dir
}

/// The single-worker run, shared by the tests that only read it.
fn one_worker() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| run_race(1)).path()
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn jsonl(path: &Path) -> Vec<Value> {
    BufReader::new(std::fs::File::open(path).unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = BufReader::new(std::fs::File::open(path).unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    lines.sort();
    lines
}

/// Rows of the race file, read independently of pitwall: (driver, Date, nGear).
fn race_rows() -> Vec<(String, String, i64)> {
    let file = std::fs::File::open(race()).unwrap();
    let mut reader = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    let headers = reader.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (d, t, g) = (col("Driver"), col("Date"), col("nGear"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[d].to_string(), r[t].to_string(), r[g].parse().unwrap())
        })
        .collect()
}

#[test]
fn every_row_of_the_race_is_processed_or_dead_lettered() {
    let s = summary(one_worker());
    let rows = race_rows().len() as u64;
    assert_eq!(rows, 513_360);
    assert_eq!(s["records"], 513_360);
    assert_eq!(s["drivers"], 20);
    assert_eq!(s["rows"].as_u64().unwrap(), rows);
    assert_eq!(
        s["records"].as_u64().unwrap() + s["dead_letters"].as_u64().unwrap(),
        rows
    );
    assert_eq!(s["workers"], 1);
    for key in ["seconds", "records_per_second"] {
        assert!(s[key].as_f64().unwrap() > 0.0, "{key}");
    }
    let per_driver = s["per_driver"].as_object().unwrap();
    assert_eq!(per_driver.len(), 20);
    assert!(per_driver.values().all(|d| d["records"] == 25_668));
    let by_severity: u64 = s["alerts_by_severity"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let by_type: u64 = s["alerts_by_type"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_severity, s["alerts"].as_u64().unwrap());
    assert_eq!(by_type, s["alerts"].as_u64().unwrap());
}

#[test]
fn every_invalid_gear_row_is_flagged() {
    let alerts = jsonl(&one_worker().join("alerts.jsonl"));
    let invalid: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["alert_type"] == "invalid_gear")
        .collect();
    let mut flagged = 0;
    let glitches: Vec<(String, String, i64)> =
        race_rows().into_iter().filter(|r| r.2 > 8).collect();
    assert_eq!(glitches.len(), 551);
    for (driver, date, gear) in &glitches {
        let ts = time_ms(date);
        let covering = invalid.iter().find(|a| {
            a["driver_id"] == driver.as_str()
                && a["start_ms"].as_i64().unwrap() <= ts
                && ts <= a["end_ms"].as_i64().unwrap()
        });
        assert!(
            covering.is_some(),
            "{driver} gear {gear} at {date} is not flagged"
        );
        flagged += 1;
    }
    let samples: u64 = invalid.iter().map(|a| a["samples"].as_u64().unwrap()).sum();
    assert_eq!((flagged, samples), (551, 551));
    assert!(invalid
        .iter()
        .all(|a| a["severity"] == "medium" && a["peak"].as_f64().unwrap() > 8.0));
}

/// Epoch ms of `2023-05-28T13:01:02.424`, computed here without pitwall's parser.
fn time_ms(date: &str) -> i64 {
    let (day, clock) = date.split_once('T').unwrap();
    assert_eq!(day, "2023-05-28", "the race is on one day");
    let mut parts = clock.split(':');
    let h: i64 = parts.next().unwrap().parse().unwrap();
    let m: i64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    // 2023-05-28T00:00:00Z
    1_685_232_000_000 + (h * 3600 + m * 60) * 1000 + (s * 1000.0).round() as i64
}

#[test]
fn alerts_are_well_formed_episodes_with_unique_ids() {
    let alerts = jsonl(&one_worker().join("alerts.jsonl"));
    assert!(!alerts.is_empty());
    let mut ids = BTreeSet::new();
    let mut by_type: HashMap<String, u64> = HashMap::new();
    for a in &alerts {
        assert!(
            ids.insert(a["alert_id"].as_str().unwrap().to_string()),
            "duplicate id {a}"
        );
        assert_eq!(a["message_type"], "alert");
        assert_eq!(a["status"], "cleared");
        assert!(a["start_ms"].as_i64().unwrap() <= a["end_ms"].as_i64().unwrap());
        assert!(a["samples"].as_u64().unwrap() >= 1);
        assert!(a["timestamp"].as_str().unwrap().starts_with("2023-05-28T"));
        *by_type
            .entry(a["alert_type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    // DRS opens and closes in pairs on a real race; nobody passes 300 km/h at Monaco.
    assert_eq!(by_type["drs_activated"], by_type["drs_deactivated"]);
    assert!(by_type["drs_activated"] > 100);
    assert!(!by_type.contains_key("high_speed"));
    let s = summary(one_worker());
    assert_eq!(s["alerts"].as_u64().unwrap(), alerts.len() as u64);
}

/// The outputs that must not depend on workers or processes.
const COMPARED: [&str; 7] = [
    "alerts.jsonl",
    "windows.jsonl",
    "laps.jsonl",
    "pit_stops.jsonl",
    "predictions.jsonl",
    "predictions_first.jsonl",
    "laps_first.jsonl",
];

#[test]
fn the_printed_summary_leads_with_the_race() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(run_of_the_race().out(dir.path()).output().unwrap());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let story = &summary(dir.path())["race"];
    let winner = story["classification"][0]["driver"].as_str().unwrap();
    let race_line = at("  race: ").expect("a race line");
    assert!(
        lines[race_line].contains(&format!("winner {winner}")),
        "{}",
        lines[race_line]
    );
    let stops = story["pit_stops"].as_array().unwrap().len();
    assert!(stops > 0);
    let stops_line = at("  pit stops: ").unwrap();
    assert_eq!(lines[stops_line], format!("  pit stops: {stops}"));
    for needle in [
        "  safety car, VSC, red flag: ",
        "  retirements: ",
        "  car health: ",
    ] {
        assert!(
            at(needle).is_some_and(|i| i > stops_line),
            "{needle} in:\n{text}"
        );
    }
    // The race first, then the counts.
    assert!(race_line < at("records from").unwrap(), "{text}");
    assert!(
        at("  car health: ").unwrap() < at("  alerts ").unwrap(),
        "{text}"
    );
}

#[test]
fn two_workers_give_the_same_alerts_windows_laps_stops_and_predictions() {
    let two = run_race(2);
    assert_eq!(summary(two.path())["workers"], 2);
    assert_eq!(
        summary(two.path())["race"],
        summary(one_worker())["race"],
        "the race story"
    );
    for file in COMPARED {
        let a = sorted_lines(&one_worker().join(file));
        let b = sorted_lines(&two.path().join(file));
        assert!(!a.is_empty());
        assert!(
            a == b,
            "{file} differs between -w1 ({} lines) and -w2 ({} lines)",
            a.len(),
            b.len()
        );
    }
}

#[test]
fn two_processes_give_the_same_alerts_windows_laps_stops_and_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    write_local_hostfile(&hosts, 2).unwrap();
    let out = dir.path().join("out");
    let job = pitwall_run()
        .quiet()
        .input(race())
        .cluster(2, &hosts)
        .out(&out);
    let mut second = job.clone().process(1).spawn().unwrap();
    let first = job.output().unwrap();
    let second_status = second.wait().unwrap();
    check(first);
    assert!(second_status.success());
    let s = summary(&out);
    assert_eq!(
        (s["processes"].as_u64(), s["workers"].as_u64()),
        (Some(2), Some(2))
    );
    for file in COMPARED {
        assert!(
            sorted_lines(&one_worker().join(file)) == sorted_lines(&out.join(file)),
            "{file} differs"
        );
    }
}
