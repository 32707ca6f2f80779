//! `pitwall bench` stays working: a tiny weak-scaling scenario end to end (its numbers are
//! not asserted, only that it measures and writes its results).

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
