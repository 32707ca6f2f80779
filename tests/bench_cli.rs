//! `pitwall bench` stays working: a tiny weak-scaling scenario end to end (its numbers are
//! not asserted, only that it measures and writes its results).

mod common;

use std::process::Command;

#[test]
fn a_tiny_weak_scaling_run_writes_its_table_csv_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pitwall"))
        .args([
            "bench",
            "weak-scaling",
            "--workers",
            "1,2",
            "--processes",
            "2",
            "--laps",
            "1",
            "--drivers-per-worker",
            "3",
            "--repeat",
            "1",
            "--name",
            "tiny",
            "--results",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for scenario in ["-w 1", "-w 2", "-n 2 -w 1"] {
        assert!(table.contains(scenario), "{table}");
    }
    let mut csv = csv::Reader::from_path(dir.path().join("tiny.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    let header = csv.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // The work grows with the workers: 3 cars per worker.
    let records: Vec<u64> = rows
        .iter()
        .map(|r| r[col("records")].parse().unwrap())
        .collect();
    assert_eq!(records[1], records[2]);
    assert!(records[1] > records[0]);
    assert_eq!(&rows[0][col("efficiency")], "1.0");
    let svg = std::fs::read_to_string(dir.path().join("tiny.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<rect").count(), 3);
}

/// `bench kafka` on a prefix of the real race at a rate, against the broker `scripts/kafka.sh
/// start` runs (or PITWALL_BROKERS): the three rows, every message drained by the engine and by
/// the plain consumer, and the latency breakdown with the alerts the engine timed. Its numbers
/// are not asserted.
#[test]
fn bench_kafka_drains_every_message_and_breaks_the_latency_down() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 20_000;
    let csv = common::race_prefix(dir.path(), rows);
    let out = Command::new(env!("CARGO_BIN_EXE_pitwall"))
        .args([
            "bench",
            "kafka",
            "--input",
            csv.to_str().unwrap(),
            "--rate",
            "5000",
            "--name",
            "tiny-kafka",
            "--results",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut csv = csv::Reader::from_path(dir.path().join("tiny-kafka.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows_read: Vec<(String, u64)> = csv
        .records()
        .map(Result::unwrap)
        .map(|r| {
            (
                r[col("scenario")].to_string(),
                r[col("records")].parse().unwrap(),
            )
        })
        .collect();
    let expected = rows as u64;
    assert_eq!(
        rows_read,
        vec![
            ("kafka -w 1".to_string(), expected),
            ("drain -w 1".to_string(), expected),
            ("raw drain".to_string(), expected),
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("ceiling: engine drain / plain consumer drain"),
        "{stdout}"
    );
    // The engine timed the alerts the bench saw: its share has a count.
    let share = stdout
        .lines()
        .find(|l| l.starts_with("consumed -> alert acked"))
        .unwrap_or_else(|| panic!("no breakdown: {stdout}"));
    let timed: usize = share.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(timed > 0, "{stdout}");
}
