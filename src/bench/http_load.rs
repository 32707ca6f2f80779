//! The query API under load: an endless simulator run flat out (`--laps 0 --speed 0`) with its
//! HTTP server on a free loopback port, its store's buffers filled first (every driver at
//! `[http] points_per_driver`, so each request scans a full ring), then `wrk` on one series
//! request while the engine keeps ingesting. Reports wrk's requests/s and latency percentiles,
//! the engine's records/s during the load and its peak RSS.
//!
//! It talks to the engine only through its HTTP endpoints (`/api/drivers` for the buffers,
//! `/api/engine` for records), never the store's insides.

use super::child::{free_port, Capture, Ended, RunCommand, RunningChild};
use super::results::{Bar, PITWALL_COLOR};
use super::{peak_rss_kb_of, BenchError};
use crate::config::PitwallConfig;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to get wrk when it is missing.
pub const WRK_HINT: &str =
    "wrk is needed for `pitwall bench http`: apt-get install -y wrk (Debian, Ubuntu), \
brew install wrk (macOS), or build it from https://github.com/wg/wrk; or name it with --wrk PATH";

pub struct HttpLoad {
    /// The engine's configuration (`--config`), with the bench's buffer size laid over it; the
    /// child runs with exactly this.
    pub config: PitwallConfig,
    /// Simulated cars: drivers whose buffers must be full before the load starts.
    pub cars: usize,
    pub workers: usize,
    /// The wrk binary.
    pub wrk: PathBuf,
    pub threads: usize,
    pub connections: usize,
    pub duration_s: u64,
    /// The request loaded, path and query.
    pub request: String,
    /// Give up filling the buffers after this long.
    pub fill_timeout: Duration,
    /// Set by SIGINT/SIGTERM: the bench stops wrk and the engine and ends. Without it a signal
    /// to the bench alone would leave the endless engine running flat out.
    pub stop: Arc<AtomicBool>,
}

/// The scenario's figures, one CSV row.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HttpRow {
    pub scenario: String,
    pub workers: usize,
    pub drivers: usize,
    pub points_per_driver: usize,
    /// Seconds the engine took to fill every driver's buffer.
    pub fill_seconds: f64,
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    /// Answers that were not 2xx/3xx, and connect/read/write/timeout errors.
    pub non_2xx: u64,
    pub socket_errors: u64,
    /// Records the engine ingested per second without requests, in the few seconds just
    /// before the load and just after it (an endless run slows down as its race views grow, so
    /// the load is bracketed), and while wrk ran: what the load costs ingestion.
    pub engine_records_per_second_unloaded: f64,
    pub engine_records_per_second: f64,
    /// The engine's peak RSS when its buffers had just filled, and at the end: an endless
    /// run's race views keep growing after the buffers stop.
    pub peak_rss_mb_buffers_full: f64,
    pub peak_rss_mb: f64,
}

/// How long the engine has to stop cleanly after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A running `pitwall run`, stopped with SIGTERM (and waited for) however the bench ends.
struct Engine {
    child: RunningChild,
    stderr: PathBuf,
}

impl Engine {
    /// SIGTERM, then up to [`STOP_GRACE`] for the clean stop; killed past that. Its exit status.
    fn stop(&mut self) -> Result<ExitStatus, BenchError> {
        match self
            .child
            .terminate(STOP_GRACE)
            .map_err(BenchError::wait("the engine"))?
        {
            Ended::Exited(status) => Ok(status),
            Ended::Killed => Err(BenchError::NotStopped {
                what: "the engine".into(),
                grace: STOP_GRACE,
            }),
        }
    }

    /// Its stderr so far, for an error message.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.trim_end().lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

pub fn http_load(hb: &HttpLoad) -> Result<HttpRow, BenchError> {
    // wrk first: no point filling buffers for a load that cannot start.
    if let Err(source) = Command::new(&hb.wrk)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        return Err(BenchError::Wrk {
            path: hb.wrk.clone(),
            source,
        });
    }
    let exe = std::env::current_exe().map_err(BenchError::Exe)?;
    let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
    let config = dir.path().join("pitwall.toml");
    let toml = toml::to_string(&hb.config)?;
    std::fs::write(&config, toml).map_err(BenchError::file(&config))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port().map_err(BenchError::Port)?));
    let stderr = dir.path().join("engine.stderr");
    let run = RunCommand::new(&exe)
        .input("sim")
        .speed(0.0)
        .workers(hb.workers)
        .http(addr)
        .config(&config)
        .quiet()
        .args(["--laps", "0", "--cars", &hb.cars.to_string()])
        .stdout(Capture::Null)
        .stderr(Capture::File(stderr.clone()));
    let child = run
        .spawn()
        .map_err(BenchError::spawn(&run))?
        .terminate_on_drop(STOP_GRACE);
    let mut engine = Engine { child, stderr };
    let outcome = measure(hb, addr, &mut engine);
    // Read before the stop: VmHWM goes with the process.
    let peak = peak_rss_kb_of(engine.child.id());
    let stopped = engine.stop();
    let mut row = outcome?;
    let status = stopped?;
    if !status.success() {
        return Err(BenchError::Failed {
            what: "the engine (after SIGTERM)".into(),
            status,
            output: engine.stderr_tail(),
        });
    }
    row.peak_rss_mb = peak.unwrap_or(0) as f64 / 1024.0;
    Ok(row)
}

/// Fill, then load; the engine is stopped by the caller whatever this returns.
fn measure(hb: &HttpLoad, addr: SocketAddr, engine: &mut Engine) -> Result<HttpRow, BenchError> {
    let points = hb.config.http.points_per_driver;
    super::progress(0, 4, &format!("filling {} x {points} points", hb.cars));
    let fill_seconds = fill(hb, addr, engine)?;
    let rss_full = peak_rss_kb_of(engine.child.id()).unwrap_or(0) as f64 / 1024.0;
    // The same engine without requests, up to 5 s before and after the load.
    let quiet = Duration::from_secs(hb.duration_s.min(5));
    super::progress(1, 4, "engine without load");
    let unloaded_before = ingest_rate(hb, addr, quiet)?;
    super::progress(2, 4, &format!("wrk for {} s", hb.duration_s));
    let (records_before, t0) = (engine_records(addr)?, Instant::now());
    let out = run_wrk(hb, addr)?;
    let (records_after, elapsed) = (engine_records(addr)?, t0.elapsed().as_secs_f64());
    super::progress(3, 4, "engine without load");
    let unloaded_after = ingest_rate(hb, addr, quiet)?;
    super::progress(4, 4, "done");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(BenchError::Failed {
            what: "wrk".into(),
            status: out.status,
            output: format!(
                "{}{}",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let wrk = WrkReport::parse(&text)?;
    Ok(HttpRow {
        scenario: format!("GET -c {}", hb.connections),
        workers: hb.workers,
        drivers: hb.cars,
        points_per_driver: points,
        fill_seconds,
        requests: wrk.requests,
        requests_per_second: wrk.requests_per_second,
        latency_p50_ms: wrk.p50_ms,
        latency_p90_ms: wrk.p90_ms,
        latency_p99_ms: wrk.p99_ms,
        non_2xx: wrk.non_2xx,
        socket_errors: wrk.socket_errors,
        engine_records_per_second_unloaded: (unloaded_before + unloaded_after) / 2.0,
        engine_records_per_second: records_after.saturating_sub(records_before) as f64
            / elapsed.max(1e-9),
        peak_rss_mb_buffers_full: rss_full,
        peak_rss_mb: 0.0,
    })
}

/// Waits until every driver's buffer holds `points_per_driver` points; the seconds it took.
fn fill(hb: &HttpLoad, addr: SocketAddr, engine: &mut Engine) -> Result<f64, BenchError> {
    let points = hb.config.http.points_per_driver;
    let started = Instant::now();
    loop {
        if let Some(status) = engine
            .child
            .try_wait()
            .map_err(BenchError::wait("the engine"))?
        {
            return Err(BenchError::Failed {
                what: "the engine (before its buffers were full)".into(),
                status,
                output: engine.stderr_tail(),
            });
        }
        // Refused or half-answered while the server starts: try again.
        if let Ok(Value::Array(drivers)) = get_json(addr, "/api/drivers") {
            let full = drivers
                .iter()
                .filter(|d| d["points"].as_u64().unwrap_or(0) as usize >= points)
                .count();
            if full >= hb.cars {
                break;
            }
        }
        if started.elapsed() > hb.fill_timeout {
            return Err(BenchError::Timeout {
                what: format!(
                    "{} drivers' buffers not full ({points} points each)",
                    hb.cars
                ),
                after: hb.fill_timeout,
            });
        }
        pause(hb, Duration::from_millis(200))?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// wrk against the request for the duration; its output once it ended.
fn run_wrk(hb: &HttpLoad, addr: SocketAddr) -> Result<std::process::Output, BenchError> {
    let url = format!("http://{addr}{}", hb.request);
    let mut wrk = Command::new(&hb.wrk)
        .args([
            "-t",
            &hb.threads.to_string(),
            "-c",
            &hb.connections.to_string(),
            "-d",
            &format!("{}s", hb.duration_s),
            "--latency",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BenchError::Wrk {
            path: hb.wrk.clone(),
            source,
        })?;
    while wrk.try_wait().map_err(BenchError::wait("wrk"))?.is_none() {
        if let Err(e) = pause(hb, Duration::from_millis(50)) {
            let _ = wrk.kill();
            let _ = wrk.wait();
            return Err(e);
        }
    }
    // wrk's report is a few lines: read after it ended, no pipe fills up.
    wrk.wait_with_output().map_err(BenchError::wait("wrk"))
}

/// Sleeps `span`, or ends early with an error on SIGINT/SIGTERM.
fn pause(hb: &HttpLoad, span: Duration) -> Result<(), BenchError> {
    let until = Instant::now() + span;
    while Instant::now() < until {
        if hb.stop.load(Ordering::Relaxed) {
            return Err(BenchError::Stopped);
        }
        std::thread::sleep(
            Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())),
        );
    }
    Ok(())
}

/// The engine's records per second over `span`.
fn ingest_rate(hb: &HttpLoad, addr: SocketAddr, span: Duration) -> Result<f64, BenchError> {
    let (before, t0) = (engine_records(addr)?, Instant::now());
    pause(hb, span)?;
    let after = engine_records(addr)?;
    Ok(after.saturating_sub(before) as f64 / t0.elapsed().as_secs_f64().max(1e-9))
}

/// `GET /api/engine`'s record count.
fn engine_records(addr: SocketAddr) -> Result<u64, BenchError> {
    get_json(addr, "/api/engine")?["records"]
        .as_u64()
        .ok_or_else(|| BenchError::Answer {
            path: "/api/engine".into(),
            reason: "no \"records\"".into(),
        })
}

/// A one-shot `GET` (HTTP/1.1, `Connection: close`) and its JSON body; enough for polling the
/// engine without an HTTP client library.
fn get_json(addr: SocketAddr, path: &str) -> Result<Value, BenchError> {
    let connect = |what: String| move |source| BenchError::Connect { what, source };
    let answer = |reason: &str| BenchError::Answer {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(connect(addr.to_string()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(connect(addr.to_string()))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(connect(path.to_string()))?;
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes)
        .map_err(connect(path.to_string()))?;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| answer("a cut-off answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(answer(head.lines().next().unwrap_or_default()));
    }
    serde_json::from_str(body).map_err(|source| BenchError::AnswerJson {
        path: path.to_string(),
        source,
    })
}

/// What wrk prints with `--latency`.
#[derive(Debug, PartialEq)]
struct WrkReport {
    requests: u64,
    requests_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    socket_errors: u64,
}

impl WrkReport {
    fn parse(text: &str) -> Result<WrkReport, BenchError> {
        let missing = |what: &str| BenchError::WrkReport {
            missing: what.to_string(),
            output: text.to_string(),
        };
        let after = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(prefix))
                .map(str::trim)
        };
        // "  Latency Distribution" then "     50%   17.70ms", ...
        let percentile = |p: &str| -> Result<f64, BenchError> {
            let dist = text
                .split_once("Latency Distribution")
                .ok_or_else(|| missing("latency distribution (--latency)"))?
                .1;
            let value = dist
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(p))
                .ok_or_else(|| missing(&format!("{p} percentile")))?;
            duration_ms(value.trim()).ok_or_else(|| missing(&format!("{p} latency")))
        };
        // "  12345 requests in 10.00s, 1.23MB read"
        let requests = text
            .lines()
            .find(|l| l.contains(" requests in "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| missing("request count"))?;
        // "  Socket errors: connect 0, read 0, write 0, timeout 0"
        let socket_errors = after("Socket errors:").map_or(0, |l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        });
        Ok(WrkReport {
            requests,
            requests_per_second: after("Requests/sec:")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| missing("Requests/sec"))?,
            p50_ms: percentile("50%")?,
            p90_ms: percentile("90%")?,
            p99_ms: percentile("99%")?,
            non_2xx: after("Non-2xx or 3xx responses:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            socket_errors,
        })
    }
}

/// wrk's durations: `812.00us`, `17.70ms`, `1.02s`, `2.00m`.
fn duration_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(number * scale)
}

pub fn print_table(row: &HttpRow, request: &str) {
    println!("{request} under wrk:");
    println!(
        "{:<10} {:>8} {:>10} {:>9} {:>9} {:>9} {:>8} {:>12} {:>8}",
        "scenario",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "errors",
        "engine rec/s",
        "RSS MB"
    );
    println!(
        "{:<10} {:>8} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>12.0} {:>8.1}",
        row.scenario,
        row.requests,
        row.requests_per_second,
        row.latency_p50_ms,
        row.latency_p90_ms,
        row.latency_p99_ms,
        row.non_2xx + row.socket_errors,
        row.engine_records_per_second,
        row.peak_rss_mb
    );
    println!(
        "({} drivers x {} points filled in {:.1} s before the load, peak RSS {:.1} MB then; the engine did {:.0} records/s without requests, just before and after)",
        row.drivers,
        row.points_per_driver,
        row.fill_seconds,
        row.peak_rss_mb_buffers_full,
        row.engine_records_per_second_unloaded
    );
}

pub fn bars(row: &HttpRow) -> Vec<Bar> {
    vec![Bar {
        label: row.scenario.clone(),
        value: row.requests_per_second,
        note: format!(
            "{:.0} req/s, p50 {:.1} ms, p99 {:.1} ms",
            row.requests_per_second, row.latency_p50_ms, row.latency_p99_ms
        ),
        color: PITWALL_COLOR,
    }]
}

/// What is wrong with a `--request`, if anything: it must be absolute, without spaces (wrk
/// takes it in a URL). Said to the user as a usage error.
pub fn request_problem(request: &str) -> Option<String> {
    (!request.starts_with('/') || request.contains(char::is_whitespace)).then(|| {
        format!(
            "--request {request:?}: a path and query like /api/series?driver=SIM01&metric=speed"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wrk 4.1.0's output with `--latency`.
    const WRK: &str = "Running 10s test @ http://127.0.0.1:5001/api/series?driver=SIM01
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    17.98ms    4.27ms  61.24ms   80.12%
    Req/Sec   446.78     50.44   535.00     72.00%
  Latency Distribution
     50%   17.70ms
     75%   19.62ms
     90%   22.70ms
     99%    1.02s
  4459 requests in 10.01s, 98.80MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    445.60
Transfer/sec:      9.87MB
";

    #[test]
    fn wrk_output_is_read() {
        assert_eq!(
            WrkReport::parse(WRK).unwrap(),
            WrkReport {
                requests: 4459,
                requests_per_second: 445.6,
                p50_ms: 17.7,
                p90_ms: 22.7,
                p99_ms: 1020.0,
                non_2xx: 7,
                socket_errors: 5,
            }
        );
        assert_eq!(duration_ms("812.00us"), Some(0.812));
        assert_eq!(duration_ms("2.00m"), Some(120_000.0));
        assert_eq!(duration_ms("fast"), None);
    }

    #[test]
    fn wrk_without_latency_percentiles_is_an_error() {
        let plain = WRK.replace("Latency Distribution", "");
        assert!(WrkReport::parse(&plain)
            .unwrap_err()
            .to_string()
            .contains("latency distribution"));
    }

    #[test]
    fn requests_are_paths() {
        assert_eq!(
            request_problem("/api/series?driver=SIM01&metric=speed"),
            None
        );
        assert!(request_problem("api/series").is_some_and(|p| p.contains("a path and query")));
        assert!(request_problem("/a b").is_some());
    }
}
