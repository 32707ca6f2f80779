//! One exit code per kind of failure, wherever it happens: 2 when the command cannot start with
//! what it was given, 1 when it started and then failed. The broker's failure is the same code
//! on the main thread (`topics list`) and inside a worker (`run` reading the topic).

mod common;

use std::process::Output;

fn pitwall(args: &[&str]) -> (Option<i32>, String) {
    let Output { status, stderr, .. } = std::process::Command::new(common::bin())
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("pitwall runs");
    (status.code(), String::from_utf8_lossy(&stderr).into_owned())
}

/// Runs `args`, expecting `code` and an error line containing `says`.
fn fails(args: &[&str], code: i32, says: &str) {
    let (got, err) = pitwall(args);
    assert_eq!(got, Some(code), "{args:?}: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{args:?}: no error line in {err}"));
    assert!(line.contains(says), "{args:?}: {line}");
}

#[test]
fn a_flag_value_that_cannot_be_used_is_2() {
    fails(
        &["run", "--laps", "1", "--http", "nowhere"],
        2,
        "--http nowhere: invalid socket address syntax",
    );
}

#[test]
fn a_setting_that_cannot_be_used_is_2() {
    fails(
        &["run", "--laps", "1", "--rate-hz", "5000", "--http", "off"],
        2,
        "configuration: simulator.rate_hz = 5000 must be in (0, 1000]",
    );
}

#[test]
fn input_that_cannot_be_read_is_2() {
    fails(
        &["run", "--input", "/no/such/race.csv", "--http", "off"],
        2,
        "/no/such/race.csv: cannot read",
    );
}

#[test]
fn a_cluster_layout_that_is_not_one_is_2() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1:2101\n").unwrap();
    let hosts = hosts.to_str().unwrap();
    fails(
        &[
            "run",
            "--laps",
            "1",
            "-n",
            "2",
            "-p",
            "1",
            "--hostfile",
            hosts,
        ],
        2,
        "could only read 1 addresses",
    );
}

#[test]
fn an_address_already_taken_is_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails(
        &["run", "--laps", "1", "--http", &addr],
        2,
        "cannot listen: Address already in use",
    );
}

#[test]
fn an_out_folder_that_cannot_be_made_is_2() {
    fails(
        &[
            "run",
            "--laps",
            "1",
            "--http",
            "off",
            "--out",
            "/dev/null/out",
        ],
        2,
        "--out /dev/null/out: cannot create",
    );
}

#[test]
fn a_summary_that_cannot_be_written_is_1() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("missing/summary.json");
    fails(
        &[
            "run",
            "--laps",
            "1",
            "--http",
            "off",
            "--quiet",
            "--summary",
            summary.to_str().unwrap(),
        ],
        1,
        "No such file or directory",
    );
}

/// No broker listens on the port: the same failure, on the main thread and inside a worker.
#[test]
fn an_unreachable_broker_is_1_on_the_main_thread_and_in_a_worker() {
    let brokers = format!("127.0.0.1:{}", common::free_port());
    fails(
        &["topics", "list", "--brokers", &brokers],
        1,
        &format!("metadata from {brokers}"),
    );
    fails(
        &["run", "--brokers", &brokers, "--http", "off", "--quiet"],
        1,
        &format!("metadata for f1-telemetry from {brokers}"),
    );
}
