//! `pitwall run` as a user meets it: the embedded default, and bad input.

mod common;

use common::{
    bin, lines_of, pitwall_run, wait_for_exit, wait_for_line, Capture, RunCommand, RunningChild,
};
use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::sync::mpsc::Receiver;

fn pitwall(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .env("PITWALL_HTTP", "off")
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn the_default_runs_the_simulator_with_no_broker_and_no_data() {
    let dir = tempfile::tempdir().unwrap();
    // Run from an empty folder: nothing but the binary is needed.
    let out = pitwall_run()
        .args(["--laps", "3"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("from 20 drivers"), "{text}");
    assert!(text.contains("SIM01"), "{text}");
    assert!(text.contains("drs_activated"), "{text}");
}

#[test]
fn an_unreadable_path_is_one_clear_error_and_exit_code_2() {
    let out = pitwall(&["run", "--input", "/no/such/race.csv.gz"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: /no/such/race.csv.gz: cannot read"),
        "{err}"
    );
}

#[test]
fn a_file_with_none_of_the_columns_is_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weather.csv");
    std::fs::write(&path, "time,rain\n1,0\n").unwrap();
    let out = pitwall(&["run", "--input", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none of the required columns"), "{err}");
}

#[test]
fn bad_flags_and_config_are_exit_code_2() {
    // A value pitwall cannot use: what is wrong and the usage line, as for any mistake.
    for (args, says) in [
        (
            &["run", "--speed", "-1"][..],
            "--speed -1 must be 0 or a positive number",
        ),
        (&["run", "-w", "0"], "--workers 0: at least 1"),
        (&["run", "-n", "2", "-p", "2"], "-p 2 must be below -n 2"),
        (&["produce", "--speed", "-2.5"], "--speed -2.5 must be 0"),
        (
            &["tail", "--topic", "t", "--group", "g", "--timeout", "-1"],
            "--timeout -1",
        ),
    ] {
        let out = pitwall(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        let usage = format!("Usage: pitwall {} [OPTIONS]", args[0]);
        assert!(err.contains(&usage), "{args:?}: {err}");
    }
    assert_eq!(
        pitwall(&["run", "--drivers", "NOT A DRIVER"]).status.code(),
        Some(2)
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[gear]\nlugging_max_rpm = \"lots\"\n").unwrap();
    let out = pitwall(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lugging_max_rpm"));
}

#[test]
fn malformed_rows_are_dead_lettered_and_the_rest_is_processed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "Date,Driver,RPM,Speed,nGear,Throttle,Brake,DRS,LapNumber"
    )
    .unwrap();
    for i in 0..100 {
        writeln!(
            f,
            "2023-05-28T13:01:{:02}.{:03},VER,11000,250,7,100,0,12,5",
            i / 4,
            i % 4 * 250
        )
        .unwrap();
    }
    writeln!(f, "2023-05-28T13:01:30.000,VER,11000,fast,7,100,0,12,5").unwrap();
    writeln!(f, "2023-05-28T13:01:30.250,VER,11000,250,7,100,0").unwrap();
    writeln!(f, "2023-05-28T13:01:30.500,VER,11000,250,7,100,0,12,5").unwrap();
    drop(f);
    let out_dir = dir.path().join("out");
    let out = pitwall_run()
        .quiet()
        .input(&path)
        .out(&out_dir)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["records"], 101);
    assert_eq!(summary["dead_letters"], 2);
    assert_eq!(summary["rows"], 103);
    assert_eq!(summary["dead_letters_by_reason"]["Speed: not a number"], 1);
    assert_eq!(
        summary["dead_letters_by_reason"]["row: wrong number of fields"],
        1
    );
    let dead = std::fs::read_to_string(out_dir.join("dead_letters.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(first["position"], 102);
    assert_eq!(first["field"], "Speed");
    assert!(first["raw"].as_str().unwrap().contains("fast"));
    // DRS open for the whole stint: one episode, raised once, closed at the end of input.
    let alerts = std::fs::read_to_string(out_dir.join("alerts.jsonl")).unwrap();
    assert_eq!(
        alerts
            .lines()
            .filter(|l| l.contains("\"drs_activated\""))
            .count(),
        1
    );
}

#[test]
fn dash_h_is_help_for_run_as_for_every_command_and_the_hostfile_is_long() {
    for args in [
        &["run", "-h"][..],
        &["run", "--help"],
        &["produce", "-h"],
        &["tail", "-h"],
    ] {
        let out = pitwall(args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("Usage: pitwall {}", args[0])),
            "{text}"
        );
    }
    let help = String::from_utf8_lossy(&pitwall(&["run", "-h"]).stdout).into_owned();
    assert!(help.contains("--hostfile <FILE>"), "{help}");
    // The old spelling with a file is an error that says what to write instead.
    let out = pitwall(&["run", "-n", "2", "-p", "1", "-h", "hosts"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--hostfile hosts"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unknown_kafka_property_is_exit_code_2_naming_it() {
    let out = pitwall(&["run", "--laps", "1", "-X", "no.such.property=1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no.such.property"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("props.toml");
    std::fs::write(
        &cfg,
        "[kafka.properties]
\"linger.ms\" = \"soon\"\n",
    )
    .unwrap();
    let out = pitwall(&["run", "--laps", "1", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("linger.ms=soon"), "{err}");
}

/// The first `rows` telemetry rows of a made-up stint of VER, as a small CSV.
fn small_race(dir: &std::path::Path, rows: usize) -> std::path::PathBuf {
    let path = dir.join("small.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "Date,Driver,RPM,Speed,nGear,Throttle,Brake,DRS,LapNumber"
    )
    .unwrap();
    for i in 0..rows {
        writeln!(
            f,
            "2023-05-28T13:{:02}:{:02}.{:03},VER,11000,250,7,100,0,12,5",
            1 + i / 240,
            i / 4 % 60,
            i % 4 * 250
        )
        .unwrap();
    }
    path
}

/// Lines of a child's stderr as they come.
fn stderr_lines(child: &mut RunningChild) -> Receiver<String> {
    lines_of(child.take_stderr().unwrap())
}

/// `pitwall run -q` of `input`, its log off, stderr piped.
fn quiet_run(input: &std::path::Path) -> RunCommand {
    pitwall_run()
        .quiet()
        .input(input)
        .env("RUST_LOG", "off")
        .stderr(Capture::Pipe)
}

#[test]
fn a_finite_run_from_a_script_returns_and_says_where_the_query_api_was() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_race(dir.path(), 400);
    let out_dir = dir.path().join("out");
    // stdout is a pipe here, as in a script or CI: nobody is there to look at the page. Port 0:
    // the run says which port it got.
    let mut child = quiet_run(&input)
        .http("127.0.0.1:0")
        .out(&out_dir)
        .stdout(Capture::Pipe)
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let status = wait_for_exit(&mut child).expect("the run did not return after its input");
    let err: Vec<String> = lines.try_iter().collect();
    assert!(status.success(), "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("the query API was on http://127.0.0.1:")),
        "{err:?}"
    );
    assert!(out_dir.join("summary.json").exists());
}

fn http(method: &str, url: &str) -> (u16, Option<String>) {
    match ureq::request(method, url).call() {
        Ok(r) => (r.status(), r.header("allow").map(str::to_string)),
        Err(ureq::Error::Status(code, r)) => (code, r.header("allow").map(str::to_string)),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

#[test]
fn keep_serving_serves_after_the_input_with_a_correct_allow_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_race(dir.path(), 400);
    let mut child = quiet_run(&input)
        .http("127.0.0.1:0")
        .keep_serving()
        .stdout(Capture::Null)
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let line = wait_for_line(&lines, "still serving the query API on http://", &mut seen);
    let Some(line) = line else {
        panic!("no 'still serving' line: {seen:?}");
    };
    let base = line
        .split("on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|a| format!("http://{a}"))
        .unwrap();
    let health: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("{base}/"))
            .set("accept", "application/json")
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap_or_default();
    assert_eq!(health["records"], 400, "{health}");
    assert_eq!(
        http("DELETE", &format!("{base}/api/series")),
        (405, Some("GET".to_string()))
    );
    assert_eq!(
        http("GET", &format!("{base}/query")),
        (405, Some("POST".to_string()))
    );
    let (code, allow) = http("PUT", &format!("{base}/"));
    assert_eq!(code, 405);
    assert!(allow.as_deref().unwrap_or("").contains("GET"), "{allow:?}");
    child.signal("TERM").unwrap();
    let status = wait_for_exit(&mut child).expect("SIGTERM did not stop the server");
    assert!(status.success(), "{status}");
}

/// With the broker gone the sinks retry for ever, so stopping cleanly cannot finish: a second
/// Ctrl-C quits at once, with 130.
#[test]
fn a_second_ctrl_c_quits_at_once_when_the_broker_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    // A stop deadline far away: only the second Ctrl-C can end the run here.
    let config = dir.path().join("patient.toml");
    std::fs::write(&config, "[engine]\nstop_grace_ms = 600000\n").unwrap();
    let (mut child, lines, _stdout, mut seen) = run_on_a_gone_broker(dir.path(), Some(&config));
    child.signal("INT").unwrap();
    if wait_for_line(&lines, "stopping cleanly", &mut seen).is_none() {
        panic!("the first Ctrl-C was not taken: {seen:?}");
    }
    child.signal("INT").unwrap();
    let status = wait_for_exit(&mut child).expect("a second Ctrl-C did not stop the run");
    assert_eq!(status.code(), Some(130), "{status}");
}

/// With the broker gone and nobody to press Ctrl-C twice (a service manager's SIGTERM), the run
/// still ends after `[engine] stop_grace_ms`, non-zero, saying what was not delivered.
#[test]
fn sigterm_ends_a_run_blocked_on_a_gone_broker_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines, _stdout, mut seen) = run_on_a_gone_broker(dir.path(), None);
    child.signal("TERM").unwrap();
    let status = wait_for_exit(&mut child).expect("SIGTERM did not end the blocked run");
    assert_eq!(status.code(), Some(1), "{status}");
    let line = wait_for_line(&lines, "exiting without flushing", &mut seen)
        .unwrap_or_else(|| panic!("no line saying what was not flushed: {seen:?}"));
    // Ended by the stop deadline, once the configured grace (the embedded one) had passed.
    let grace_ms = pitwall::config::PitwallConfig::default()
        .engine
        .stop_grace_ms;
    let grace = format!(
        "still not stopped {:.1} s after the signal",
        grace_ms as f64 / 1000.0
    );
    assert!(line.contains(&grace), "{line}");
    assert!(line.contains("not acknowledged by the broker"), "{line}");
}

/// `pitwall run` of a small race whose Kafka sinks point where nothing listens (every delivery
/// is retried for ever), once its live progress shows: the child, its stderr lines, and the
/// lines seen so far, and its stdout lines (kept open: the live progress goes on printing).
/// `config`, when given, is laid over the embedded one.
fn run_on_a_gone_broker(
    dir: &std::path::Path,
    config: Option<&std::path::Path>,
) -> (
    RunningChild,
    Receiver<String>,
    Receiver<String>,
    Vec<String>,
) {
    let input = small_race(dir, 2000);
    let gone = format!("127.0.0.1:{}", common::free_port());
    let mut run = pitwall_run()
        .input(&input)
        .brokers(gone)
        .env("RUST_LOG", "off")
        .stdout(Capture::Pipe)
        .stderr(Capture::Pipe);
    if let Some(config) = config {
        run = run.env("PITWALL_CONFIG", config);
    }
    let mut child = run.spawn().unwrap();
    let lines = stderr_lines(&mut child);
    let stdout = lines_of(child.take_stdout().unwrap());
    let mut seen = Vec::new();
    if wait_for_line(&stdout, "records", &mut seen).is_none() {
        panic!("no progress line: {seen:?}");
    }
    (child, lines, stdout, seen)
}

#[test]
fn a_reader_that_goes_away_ends_nothing_but_the_printing() {
    // `pitwall run | head -1`: the progress lines and the summary go to a closed pipe. Before,
    // println! panicked the worker printing them (exit 101 with a backtrace).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fast-progress.toml");
    std::fs::write(&config, "[engine]\nprogress_interval_ms = 1\n").unwrap();
    let summary = dir.path().join("summary.json");
    let mut child = pitwall_run()
        .env("RUST_LOG", "off")
        .args(["--laps", "20"])
        .speed(0.0)
        .config(&config)
        .summary(&summary)
        .stdout(Capture::Pipe)
        .stderr(Capture::Pipe)
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.take_stdout().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader has gone: every later write meets a closed pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(first.contains("records"), "{first}");
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.contains("\"drivers\": 20"), "{written}");
}
