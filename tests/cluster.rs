//! Several processes, on one machine and across test hosts made of network namespaces
//! (`scripts/cluster.sh`): equal outputs, a lost peer (killed, cut off) stopping every survivor
//! with one clear line, a short flap ridden out, and a restart after a loss losing nothing
//! (against the real broker).
//!
//! The tests that need network namespaces fail under CI where they cannot be made (not root, no
//! `ip netns`), and elsewhere say so and do nothing; `.ci/run` runs as root.

mod common;

use common::{
    bin, pitwall_run, race, race_prefix, root, wait_for_exit, wait_for_progress, Capture,
    RunCommand, RunningChild,
};
use pitwall::bench::child::write_local_hostfile;
use pitwall::config::PitwallConfig;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sorted lines of an alerts file: the comparison does not depend on the order of output.
fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// One process's run in file mode, `-w 1`, for reference: its --out folder.
fn single_process(input: &Path, out: &Path) -> PathBuf {
    let run = pitwall_run()
        .quiet()
        .input(input)
        .out(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out.to_path_buf()
}

/// What a survivor of a lost peer must have said: one line naming the peer and what to do.
fn assert_lost_line(stderr: &str, peer: usize, address: &str) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: lost process"))
        .unwrap_or_else(|| panic!("no 'error: lost process' line in:\n{stderr}"));
    assert!(
        line.contains(&format!("lost process {peer} at {address}")),
        "{line}"
    );
    assert!(
        line.contains("restart `pitwall run` on every host"),
        "{line}"
    );
    assert!(
        !stderr.contains("panicked"),
        "no backtrace, one line: {stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Test hosts

/// A cluster of test hosts from `scripts/cluster.sh`, torn down when dropped (also when the
/// test fails).
struct Hosts {
    name: String,
}

impl Hosts {
    /// `None` (after saying why) where this machine cannot make network namespaces.
    fn up(name: &str, n: usize) -> Option<Hosts> {
        let check = Command::new("bash")
            .arg(root().join("scripts/cluster.sh"))
            .arg("check")
            .output()
            .unwrap();
        if !check.status.success() {
            common::cannot_run(
                name,
                &format!(
                    "network namespaces (root and `ip netns`): {}",
                    String::from_utf8_lossy(&check.stderr).trim()
                ),
            );
            return None;
        }
        let hosts = Hosts {
            name: name.to_string(),
        };
        hosts.script(&["up", name, &n.to_string()]);
        Some(hosts)
    }

    fn script(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(root().join("scripts/cluster.sh"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn address(&self, host: usize) -> String {
        self.script(&["addr", &self.name, &host.to_string()])
            .trim()
            .to_string()
    }

    /// `run` on `host`, stdout and stderr into files in `dir`.
    fn pitwall(&self, host: usize, run: &RunCommand, dir: &Path, tag: &str) -> RunningChild {
        RunningChild::new(
            Command::new("bash")
                .arg(root().join("scripts/cluster.sh"))
                .args(["exec", &self.name, &host.to_string(), bin()])
                .args(run.to_args())
                .stdout(std::fs::File::create(dir.join(format!("{tag}.out"))).unwrap())
                .stderr(std::fs::File::create(dir.join(format!("{tag}.err"))).unwrap())
                .spawn()
                .unwrap(),
        )
    }

    /// A hostfile with one timely process per host, 1..=n, on port 2101.
    fn hostfile(&self, dir: &Path, n: usize) -> PathBuf {
        let path = dir.join("hosts");
        let lines: Vec<String> = (1..=n)
            .map(|h| format!("{}:2101", self.address(h)))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/cluster.sh"))
            .args(["down", &self.name])
            .output();
    }
}

/// `pitwall run -n 2` with one process per host: process p on host p+1.
fn run_across(
    hosts: &Hosts,
    dir: &Path,
    input: &Path,
    speed: f64,
    extra: &[&str],
) -> (RunningChild, RunningChild) {
    let job = pitwall_run()
        .input(input)
        .speed(speed)
        .cluster(2, hosts.hostfile(dir, 2))
        .args(extra);
    let start = |p: usize| hosts.pitwall(p + 1, &job.clone().process(p), dir, &format!("p{p}"));
    (start(0), start(1))
}

/// The embedded configuration's `[engine]`, which the runs here do not change.
fn engine_defaults() -> pitwall::config::EngineConfig {
    PitwallConfig::default().engine
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

#[test]
fn two_hosts_give_one_processs_alerts_and_ride_out_a_short_flap() {
    let Some(hosts) = Hosts::up("flap", 2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = race_prefix(dir.path(), 60_000);
    let reference = single_process(&input, &dir.path().join("one"));
    let out = dir.path().join("two");
    // ~570 s of race at 40x: ~14 s, with the cable out in it for half the peers' timeout.
    let (mut p0, mut p1) = run_across(
        &hosts,
        dir.path(),
        &input,
        40.0,
        &["--out", out.to_str().unwrap()],
    );
    wait_for_progress(&dir.path().join("p0.out"), 15_000, &mut p0);
    hosts.script(&["cut", "flap", "2"]);
    std::thread::sleep(Duration::from_millis(engine_defaults().peer_timeout_ms / 2));
    hosts.script(&["heal", "flap", "2"]);
    for (p, child) in [(0, &mut p0), (1, &mut p1)] {
        let status = wait_for_exit(child).expect("the run ends");
        assert!(
            status.success(),
            "process {p}: {status}: {}",
            read(dir.path(), &format!("p{p}.err"))
        );
    }
    for file in [
        "alerts.jsonl",
        "windows.jsonl",
        "laps.jsonl",
        "pit_stops.jsonl",
    ] {
        let (a, b) = (
            sorted_lines(&out.join(file)),
            sorted_lines(&reference.join(file)),
        );
        assert!(
            !b.is_empty() || file == "pit_stops.jsonl",
            "{file} is empty"
        );
        assert!(
            a == b,
            "{file}: {} lines across hosts, {} in one process",
            a.len(),
            b.len()
        );
    }
}

/// The seconds a lost-process line says the peer had been silent: "no heartbeat for 6.2 s".
fn silence_in(line: &str) -> f64 {
    line.split("no heartbeat for ")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no 'no heartbeat for N s' in {line}"))
}

/// Cuts host 2's cable (no reset reaches anyone) or kills every process on it, mid-run: each
/// survivor stops with the line naming the lost process, exit code 3; a cut cable, which no
/// connection notices, is caught by the heartbeats' `[engine] peer_timeout_ms`.
fn lose_a_host(name: &str, how: &str) {
    let Some(hosts) = Hosts::up(name, 2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut p0, mut p1) = run_across(&hosts, dir.path(), &race(), 20.0, &[]);
    wait_for_progress(&dir.path().join("p0.out"), 5_000, &mut p0);
    hosts.script(&[how, name, "2"]);
    let survivors: Vec<(usize, &mut RunningChild)> = match how {
        "cut" => vec![(0, &mut p0), (1, &mut p1)],
        _ => vec![(0, &mut p0)],
    };
    let timeout_s = engine_defaults().peer_timeout_ms as f64 / 1000.0;
    for (p, child) in survivors {
        let waited = wait_for_exit(child);
        let stderr = read(dir.path(), &format!("p{p}.err"));
        let Some(status) = waited else {
            panic!("process {p} still running long after the {how}: {stderr}");
        };
        assert_eq!(status.code(), Some(3), "process {p}: {status}: {stderr}");
        let (peer, host) = if p == 0 { (1, 2) } else { (0, 1) };
        assert_lost_line(&stderr, peer, &format!("{}:2101", hosts.address(host)));
        assert!(stderr.contains("nothing was committed"), "{stderr}");
        if how == "cut" {
            let line = stderr
                .lines()
                .find(|l| l.starts_with("error: lost process"));
            let silent = silence_in(line.unwrap());
            assert!(
                silent >= timeout_s,
                "process {p}: stopped by the heartbeats' timeout ({timeout_s} s), not before: {stderr}"
            );
        }
    }
}

#[test]
fn a_cut_cable_stops_both_processes_with_one_clear_line() {
    lose_a_host("cut", "cut");
}

#[test]
fn a_killed_host_stops_the_survivor_with_one_clear_line() {
    lose_a_host("killed", "kill");
}

/// SIGTERM to processes blocked on a lost peer (the cable is out, the timeout maybe not reached
/// yet): each ends non-zero, saying it did not flush once `[engine] stop_grace_ms` had passed
/// (or, if the heartbeats' timeout came first, naming the lost process).
#[test]
fn sigterm_ends_processes_blocked_on_a_cut_off_peer_after_the_grace() {
    let Some(hosts) = Hosts::up("term", 2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut p0, mut p1) = run_across(&hosts, dir.path(), &race(), 20.0, &[]);
    wait_for_progress(&dir.path().join("p0.out"), 5_000, &mut p0);
    hosts.script(&["cut", "term", "2"]);
    // `cluster.sh exec` execs pitwall: each child's pid is pitwall's own.
    p0.signal("TERM").unwrap();
    p1.signal("TERM").unwrap();
    let grace = format!(
        "still not stopped {:.1} s after the signal",
        engine_defaults().stop_grace_ms as f64 / 1000.0
    );
    for (p, child) in [(0, &mut p0), (1, &mut p1)] {
        let waited = wait_for_exit(child);
        let stderr = read(dir.path(), &format!("p{p}.err"));
        let Some(status) = waited else {
            panic!("process {p} still running long after SIGTERM: {stderr}");
        };
        assert!(!status.success(), "process {p}: {status}: {stderr}");
        let flushed_not = stderr
            .lines()
            .find(|l| l.contains("exiting without flushing"));
        match flushed_not {
            Some(line) => assert!(line.contains(&grace), "process {p}: {line}"),
            None => assert!(
                stderr.contains("error: lost process"),
                "process {p}: {stderr}"
            ),
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// One machine, the real broker

fn brokers() -> String {
    std::env::var("PITWALL_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

/// A test's own topics and group on the real broker.
struct Topics {
    config: PathBuf,
    prefix: String,
}

impl Topics {
    fn new(dir: &Path, name: &str) -> Topics {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!("c{}-{name}", nanos % 1_000_000_000);
        let config = dir.join("pitwall.toml");
        std::fs::write(
            &config,
            format!(
                "[engine]\nprogress_interval_ms = 200\n\n[kafka]\ngroup_id = \"{prefix}-engine\"\n\n\
                 [kafka.topics]\ntelemetry = {{ name = \"{prefix}-telemetry\", partitions = 4 }}\n\
                 alerts = {{ name = \"{prefix}-alerts\", partitions = 3 }}\n\
                 predictions = {{ name = \"{prefix}-predictions\", partitions = 3 }}\n\
                 laps = {{ name = \"{prefix}-laps\", partitions = 4 }}\n\
                 windows = {{ name = \"{prefix}-windows\", partitions = 4 }}\n\
                 dead_letters = {{ name = \"{prefix}-dead\", partitions = 1 }}\n"
            ),
        )
        .unwrap();
        let t = Topics { config, prefix };
        let out = t.command(&["topics", "create"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("PITWALL_HTTP", "off")
            .env("PITWALL_CONFIG", &self.config)
            .env("PITWALL_BROKERS", brokers())
            .env("RUST_LOG", "pitwall=info");
        c
    }

    /// `pitwall run` on the test's topics and group.
    fn run(&self) -> RunCommand {
        pitwall_run()
            .env("PITWALL_CONFIG", &self.config)
            .env("PITWALL_BROKERS", brokers())
            .env("RUST_LOG", "pitwall=info")
    }
}

/// Two processes on one machine read the telemetry topic while it is produced; one is killed
/// (SIGKILL) mid-stream. The survivor stops with the clear line and the offsets it committed;
/// restarting both resumes from the commits, and a read_committed consumer finds every output
/// of an uninterrupted run exactly once (the transactions of process 0 commit them with the
/// offsets they came from).
#[test]
fn a_killed_process_stops_its_peer_and_a_restart_of_both_gives_every_output_once() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::new(dir.path(), "kill2");
    let input = race_prefix(dir.path(), 40_000);
    let hostfile = dir.path().join("hosts");
    write_local_hostfile(&hostfile, 2).unwrap();
    let mut producer = RunningChild::new(
        topics
            .command(&[
                "produce",
                "--input",
                input.to_str().unwrap(),
                "--speed",
                "60",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let engine = |p: usize, idle: Option<f64>, tag: &str| {
        let run = topics
            .run()
            .cluster(2, &hostfile)
            .process(p)
            .stdout(Capture::File(dir.path().join(format!("{tag}.out"))))
            .stderr(Capture::File(dir.path().join(format!("{tag}.err"))));
        match idle {
            Some(idle) => run.until_idle(idle).quiet(),
            None => run,
        }
        .spawn()
        .unwrap()
    };
    let mut p0 = engine(0, None, "p0");
    let mut p1 = engine(1, None, "p1");
    wait_for_progress(&dir.path().join("p0.out"), 5_000, &mut p0);
    // Killed once the job has committed offsets, so that the survivor has some to report.
    common::wait_until_ok("the engine's group to commit offsets", || {
        match common::committed_offsets(
            &brokers(),
            &format!("{}-engine", topics.prefix),
            &format!("{}-telemetry", topics.prefix),
        )? {
            0 => Err("none yet".to_string()),
            n => Ok(n),
        }
    });
    p1.kill().unwrap();
    let status = wait_for_exit(&mut p0).expect("the survivor stops");
    let stderr = read(dir.path(), "p0.err");
    assert_eq!(status.code(), Some(3), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: lost process 1"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains(&format!("group {}-engine", topics.prefix)),
        "{line}"
    );
    assert!(line.contains("a restart resumes from them"), "{line}");
    assert!(producer.wait().unwrap().success());

    // Restart both; they drain the rest and stop when the topic has been idle for 3 s.
    let mut r0 = engine(0, Some(3.0), "r0");
    let mut r1 = engine(1, Some(3.0), "r1");
    for (tag, child) in [("r0", &mut r0), ("r1", &mut r1)] {
        let status = wait_for_exit(child).expect("the restart ends");
        assert!(
            status.success(),
            "{tag}: {}",
            read(dir.path(), &format!("{tag}.err"))
        );
    }
    let replayed: u64 = ["r0.err", "r1.err"]
        .iter()
        .flat_map(|f| {
            read(dir.path(), f)
                .split("replayed=")
                .skip(1)
                .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum();
    assert!(
        replayed > 0,
        "the restart resumed from commits, it did not start over"
    );

    // Exactly once: the transactions (on, as the input is the topic) gave every output of an
    // uninterrupted run once, across the kill of one process and the restart of both.
    let reference = single_process(&input, &dir.path().join("one"));
    let prefix = &topics.prefix;
    common::outputs::check_exactly_once(
        &brokers(),
        |t| format!("{prefix}-{t}"),
        &reference,
        "process 1 of -n 2 killed",
    );
}
