//! `pitwall bench` stays working: a tiny weak-scaling scenario end to end (its numbers are
//! not asserted, only that it measures and writes its results).

mod common;

use common::RunningChild;
use std::process::Command;

#[test]
fn a_tiny_weak_scaling_run_writes_its_table_csv_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
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

/// A `python3` that has no bytewax (any import fails), first on a PATH of its own.
fn path_without_bytewax(dir: &std::path::Path) -> std::ffi::OsString {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    executable(&bin.join("python3"), "#!/bin/sh\nexit 1\n");
    bin.into_os_string()
}

fn executable(path: &std::path::Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn csv_rows(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut csv = csv::Reader::from_path(path).unwrap();
    let header = csv.headers().unwrap().clone();
    csv.records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn peers_without_bytewax_run_pitwall_alone_and_say_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let race = common::race_prefix(dir.path(), 3000);
    let out = Command::new(common::bin())
        .args(["bench", "peers", "--workers", "1", "--repeat", "2"])
        .arg("--input")
        .arg(&race)
        .args(["--name", "alone", "--results"])
        .arg(dir.path())
        .env("PATH", path_without_bytewax(dir.path()))
        .env_remove("VIRTUAL_ENV")
        .env_remove("PITWALL_PEER_PYTHON")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("pitwall runs alone"), "{stderr}");
    for said in [stdout.as_ref(), stderr.as_ref()] {
        assert!(said.contains("pip install bytewax==0.21.1"), "{said}");
    }
    let rows = csv_rows(&dir.path().join("alone.csv"));
    let pairs: Vec<&str> = rows.iter().map(|r| r["pair"].as_str()).collect();
    assert_eq!(pairs, ["median", "1", "2"]);
    for r in &rows {
        assert_eq!(r["pitwall_records"], "3000");
        assert!(r["pitwall_records_per_second"].parse::<f64>().unwrap() > 0.0);
        assert!(r["pitwall_peak_rss_mb"].parse::<f64>().unwrap() > 0.0);
        assert_eq!(r["bytewax_records_per_second"], "");
        assert_eq!(r["ratio"], "");
    }
    let svg = std::fs::read_to_string(dir.path().join("alone.svg")).unwrap();
    assert_eq!(svg.matches("<rect").count(), 1, "{svg}");
}

/// A stand-in peer: answers the bytewax check, notes its arguments, and prints the peer's JSON
/// line for 3000 records at 1000 records/s.
#[test]
fn peers_are_run_pair_by_pair_with_the_ratio_of_each_pair() {
    let dir = tempfile::tempdir().unwrap();
    let race = common::race_prefix(dir.path(), 3000);
    let calls = dir.path().join("calls");
    let python = dir.path().join("python");
    executable(
        &python,
        &format!(
            "#!/bin/sh\nif [ \"$1\" = -c ]; then echo 0.21.1; exit 0; fi\n\
             echo \"$@\" >> {}\n\
             echo '{{\"records\": 3000, \"seconds\": 3.0, \"records_per_second\": 1000.0, \"alerts_by_type\": {{\"wheel_spin\": 7}}}}'\n",
            calls.display()
        ),
    );
    // The same command twice: before and after the peer script exists.
    let bench = || {
        Command::new(common::bin())
            .args(["bench", "peers", "--workers", "1,2", "--repeat", "2"])
            .arg("--input")
            .arg(&race)
            .arg("--python")
            .arg(&python)
            .args(["--peer-script", "peer.py", "--peer-mode", "fused"])
            .args(["--name", "pairs", "--results"])
            .arg(dir.path())
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = bench();
    let stdout = String::from_utf8_lossy(&out.stdout);
    std::fs::write(dir.path().join("peer.py"), "").unwrap();
    assert!(
        !out.status.success(),
        "a missing --peer-script is an error: {stdout}"
    );

    let out = bench();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(r#"alerts by type, bytewax: {"wheel_spin": 7}"#),
        "{stdout}"
    );
    assert!(!stdout.contains("warning"), "same records: {stdout}");
    let calls = std::fs::read_to_string(&calls).unwrap();
    let expected = |w: usize| format!("peer.py -w {w} --mode fused --data {}", race.display());
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [expected(1), expected(1), expected(2), expected(2)]
    );
    let rows = csv_rows(&dir.path().join("pairs.csv"));
    let shape: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["scenario"].as_str(), r["pair"].as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            ("-w 1", "median"),
            ("-w 1", "1"),
            ("-w 1", "2"),
            ("-w 2", "median"),
            ("-w 2", "1"),
            ("-w 2", "2")
        ]
    );
    let num =
        |r: &std::collections::HashMap<String, String>, c: &str| -> f64 { r[c].parse().unwrap() };
    for r in &rows {
        assert_eq!(r["bytewax_records"], "3000");
        assert_eq!(num(r, "bytewax_records_per_second"), 1000.0);
        if r["pair"] != "median" {
            let ratio = num(r, "pitwall_records_per_second") / 1000.0;
            assert!((num(r, "ratio") - ratio).abs() < 1e-9 * ratio, "{r:?}");
        }
    }
    let svg = std::fs::read_to_string(dir.path().join("pairs.svg")).unwrap();
    assert_eq!(svg.matches("<rect").count(), 4, "{svg}");
}

#[test]
fn peers_refuse_a_python_without_bytewax_and_zero_workers() {
    let dir = tempfile::tempdir().unwrap();
    let race = common::race_prefix(dir.path(), 10);
    let out = Command::new(common::bin())
        .args([
            "bench",
            "peers",
            "--python",
            "/nonexistent/python",
            "--input",
        ])
        .arg(&race)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/python") && stderr.contains("pip install bytewax"),
        "{stderr}"
    );
    let out = Command::new(common::bin())
        .args(["bench", "peers", "--workers", "1,0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(common::bin())
        .args(["bench", "peers", "--input", "/nonexistent.csv.gz"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent.csv.gz"), "{stderr}");
}

fn wrk_installed() -> bool {
    Command::new("wrk").arg("-v").output().is_ok()
}

#[test]
fn a_short_http_load_writes_its_row() {
    if !wrk_installed() {
        common::cannot_run(
            "a_short_http_load_writes_its_row",
            "wrk (apt-get install -y wrk)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args(["bench", "http", "--duration", "1", "--cars", "3"])
        .args(["--points-per-driver", "500", "--connections", "2"])
        .args([
            "--request",
            "/api/series?driver=SIM02&metric=rpm&maxDataPoints=100",
        ])
        .args(["--name", "short", "--results"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("warning"), "every answer a 200: {stdout}");
    let rows = csv_rows(&dir.path().join("short.csv"));
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    let num = |c: &str| -> f64 { r[c].parse().unwrap() };
    assert_eq!((num("drivers"), num("points_per_driver")), (3.0, 500.0));
    assert!(
        num("requests") > 0.0 && num("requests_per_second") > 0.0,
        "{r:?}"
    );
    assert!(num("latency_p50_ms") <= num("latency_p99_ms"), "{r:?}");
    assert_eq!((num("non_2xx"), num("socket_errors")), (0.0, 0.0));
    assert!(num("engine_records_per_second") > 0.0, "{r:?}");
    assert!(num("engine_records_per_second_unloaded") > 0.0, "{r:?}");
    assert!(num("peak_rss_mb") > 0.0, "{r:?}");
    assert!(
        num("peak_rss_mb_buffers_full") <= num("peak_rss_mb"),
        "{r:?}"
    );
    let svg = std::fs::read_to_string(dir.path().join("short.svg")).unwrap();
    assert!(svg.contains("requests/s"), "{svg}");
}

#[test]
fn http_without_wrk_says_how_to_install_it() {
    let out = Command::new(common::bin())
        .args(["bench", "http", "--wrk", "/nonexistent/wrk"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("apt-get install -y wrk"), "{stderr}");
    let out = Command::new(common::bin())
        .args(["bench", "http", "--request", "api/series"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The pids of a process's children (Linux).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn a_stopped_http_bench_stops_its_endless_engine() {
    if !wrk_installed() {
        common::cannot_run(
            "a_stopped_http_bench_stops_its_endless_engine",
            "wrk (apt-get install -y wrk)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut bench = RunningChild::new(
        Command::new(common::bin())
            .args(["bench", "http", "--duration", "60", "--cars", "2"])
            .args(["--points-per-driver", "200", "--results"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Under load: the engine and wrk both running.
    let engine = common::wait_until("the bench's engine and wrk both running", || {
        let kids = children(bench.id());
        let named = |name: &str| {
            kids.iter().copied().find(|k| {
                std::fs::read_to_string(format!("/proc/{k}/comm")).is_ok_and(|c| c.trim() == name)
            })
        };
        named("wrk").and(named("pitwall"))
    });
    bench.signal("TERM").unwrap();
    let status = common::wait_for_exit(&mut bench).expect("the bench did not end after SIGTERM");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut bench.take_stderr().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
    assert!(
        !std::path::Path::new(&format!("/proc/{engine}")).exists(),
        "the engine {engine} outlived the bench"
    );
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
    let out = Command::new(common::bin())
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
