//! pitwall side by side with the Bytewax peer (`../shared/peers/bytewax_pipeline.py`, Bytewax
//! 0.21.1 on timely) on the same race file.
//!
//! This machine's timings move by 15-40 % from run to run, so the two engines run in pairs,
//! one right after the other in the same session (which goes first alternates, so a drift
//! favours neither), and the figure that counts is each pair's ratio; the medians summarise.
//! Both time their own processing (pitwall's summary, the peer's `cli_main`), not the start of
//! their interpreter or binary. Without a Python that imports bytewax, pitwall runs alone and
//! the output says how to install the peer.

use super::child::{Capture, RunCommand, RunningChild};
use super::results::{Bar, PITWALL_COLOR};
use super::{median, peak_rss_kb_of, progress, read_summary_file, BenchError};
use crate::report::Summary;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How to get the peer, after the peers README.
pub const INSTALL_HINT: &str = "the Bytewax peer needs a Python with bytewax 0.21.1 \
(../shared/peers/README.md):\n    \
python3 -m venv ~/venv-bytewax && ~/venv-bytewax/bin/pip install bytewax==0.21.1\n\
then pass --python ~/venv-bytewax/bin/python (or set PITWALL_PEER_PYTHON, or activate the venv)";

/// The peer as it will be run.
pub struct Peer {
    pub python: PathBuf,
    pub script: PathBuf,
    /// The peer's `--mode`: `ops` (one operator per concern) or `fused`.
    pub mode: String,
    /// bytewax's version as the Python reports it.
    pub version: String,
}

pub struct PeersBench {
    /// A merged FastF1 race file (gzip: the peer reads only gzip).
    pub input: PathBuf,
    pub workers: Vec<usize>,
    /// Pairs per worker count.
    pub repeat: usize,
    /// `None`: pitwall alone.
    pub peer: Option<Peer>,
}

/// One run of each engine (`pair` = 1, 2, …), or, with `pair` = `median`, the medians of a
/// worker count's pairs; the ratio of that row is the median of the pairs' ratios.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerRow {
    pub scenario: String,
    pub pair: String,
    pub workers: usize,
    pub pitwall_records: u64,
    pub pitwall_seconds: f64,
    pub pitwall_records_per_second: f64,
    pub pitwall_peak_rss_mb: f64,
    pub bytewax_records: Option<u64>,
    pub bytewax_seconds: Option<f64>,
    pub bytewax_records_per_second: Option<f64>,
    pub bytewax_peak_rss_mb: Option<f64>,
    /// pitwall's records/s over the peer's.
    pub ratio: Option<f64>,
}

/// What the peer printed, plus its peak RSS.
struct PeerRun {
    records: u64,
    seconds: f64,
    records_per_second: f64,
    peak_rss_kb: Option<u64>,
    alerts_by_type: BTreeMap<String, u64>,
}

/// The outcome: the rows, and what each engine counted (from the last pair), to show what
/// "the same work" covers.
pub struct PeersReport {
    pub rows: Vec<PeerRow>,
    pub pitwall_alerts: BTreeMap<String, u64>,
    pub peer_alerts: Option<BTreeMap<String, u64>>,
    /// Worker counts where the two engines counted different records.
    pub record_mismatches: Vec<String>,
}

/// The Python to run the peer with: `explicit` (`--python` or PITWALL_PEER_PYTHON), which must
/// import bytewax; else the active venv's, else `python3`, whichever imports it first; `None`
/// when none does. Returns the Python and bytewax's version.
pub fn find_python(explicit: Option<&Path>) -> Result<Option<(PathBuf, String)>, BenchError> {
    if let Some(py) = explicit {
        return match bytewax_version(py) {
            Some(v) => Ok(Some((py.to_path_buf(), v))),
            None => Err(BenchError::NoBytewax {
                python: py.to_path_buf(),
            }),
        };
    }
    let mut candidates = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        candidates.push(PathBuf::from(venv).join("bin/python"));
    }
    candidates.push(PathBuf::from("python3"));
    Ok(candidates
        .into_iter()
        .find_map(|py| bytewax_version(&py).map(|v| (py, v))))
}

/// bytewax's version if `python` runs and imports it.
fn bytewax_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import bytewax, importlib.metadata as m; print(m.version('bytewax'))",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn peers(pb: &PeersBench) -> Result<PeersReport, BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::Exe)?;
    let runs_per_pair = if pb.peer.is_some() { 2 } else { 1 };
    let total = pb.workers.len() * pb.repeat.max(1) * runs_per_pair;
    let mut done = 0;
    let mut rows = Vec::new();
    let mut report = PeersReport {
        rows: Vec::new(),
        pitwall_alerts: BTreeMap::new(),
        peer_alerts: None,
        record_mismatches: Vec::new(),
    };
    for &workers in &pb.workers {
        let scenario = format!("-w {workers}");
        let mut pairs = Vec::new();
        for pair in 1..=pb.repeat.max(1) {
            // Odd pairs start with pitwall, even ones with the peer.
            let peer_first = pair % 2 == 0;
            let mut peer_run = None;
            if peer_first {
                if let Some(peer) = &pb.peer {
                    progress(done, total, &format!("bytewax {scenario}"));
                    peer_run = Some(run_peer(peer, &pb.input, workers)?);
                    done += 1;
                }
            }
            progress(done, total, &format!("pitwall {scenario}"));
            let summary = run_pitwall(&exe, &pb.input, workers)?;
            done += 1;
            if !peer_first {
                if let Some(peer) = &pb.peer {
                    progress(done, total, &format!("bytewax {scenario}"));
                    peer_run = Some(run_peer(peer, &pb.input, workers)?);
                    done += 1;
                }
            }
            let row = PeerRow {
                scenario: scenario.clone(),
                pair: pair.to_string(),
                workers,
                pitwall_records: summary.records,
                pitwall_seconds: summary.seconds,
                pitwall_records_per_second: summary.records_per_second,
                pitwall_peak_rss_mb: summary.peak_rss_kb.unwrap_or(0) as f64 / 1024.0,
                bytewax_records: peer_run.as_ref().map(|p| p.records),
                bytewax_seconds: peer_run.as_ref().map(|p| p.seconds),
                bytewax_records_per_second: peer_run.as_ref().map(|p| p.records_per_second),
                bytewax_peak_rss_mb: peer_run
                    .as_ref()
                    .and_then(|p| p.peak_rss_kb)
                    .map(|kb| kb as f64 / 1024.0),
                ratio: peer_run
                    .as_ref()
                    .map(|p| summary.records_per_second / p.records_per_second),
            };
            if let Some(p) = &peer_run {
                if p.records != summary.records && !report.record_mismatches.contains(&scenario) {
                    report.record_mismatches.push(scenario.clone());
                }
                report.peer_alerts = Some(p.alerts_by_type.clone());
            }
            report.pitwall_alerts = summary.alerts_by_type.clone();
            pairs.push(row);
        }
        rows.push(median_row(&scenario, workers, &pairs));
        rows.extend(pairs);
    }
    progress(done, total, "done");
    report.rows = rows;
    Ok(report)
}

/// The medians of one worker count's pairs; its ratio is the median of their ratios, not the
/// ratio of the medians (which would mix runs from different moments).
fn median_row(scenario: &str, workers: usize, pairs: &[PeerRow]) -> PeerRow {
    let m = |f: fn(&PeerRow) -> f64| median(&pairs.iter().map(f).collect::<Vec<_>>());
    let mo = |f: fn(&PeerRow) -> Option<f64>| {
        let v: Vec<f64> = pairs.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| median(&v))
    };
    PeerRow {
        scenario: scenario.to_string(),
        pair: "median".into(),
        workers,
        pitwall_records: pairs.first().map_or(0, |p| p.pitwall_records),
        pitwall_seconds: m(|p| p.pitwall_seconds),
        pitwall_records_per_second: m(|p| p.pitwall_records_per_second),
        pitwall_peak_rss_mb: m(|p| p.pitwall_peak_rss_mb),
        bytewax_records: pairs.first().and_then(|p| p.bytewax_records),
        bytewax_seconds: mo(|p| p.bytewax_seconds),
        bytewax_records_per_second: mo(|p| p.bytewax_records_per_second),
        bytewax_peak_rss_mb: mo(|p| p.bytewax_peak_rss_mb),
        ratio: mo(|p| p.ratio),
    }
}

/// `pitwall run --input RACE -q --http off --summary F -w N`: the engine only.
fn run_pitwall(exe: &Path, input: &Path, workers: usize) -> Result<Summary, BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
    let summary = dir.path().join("summary.json");
    let run = RunCommand::new(exe)
        .input(input)
        .quiet()
        .http_off()
        .summary(&summary)
        .workers(workers)
        .stdout(Capture::Null)
        .stderr(Capture::Pipe);
    let out = run.output().map_err(BenchError::spawn(&run))?;
    if !out.status.success() {
        return Err(BenchError::Failed {
            what: format!("pitwall run -w {workers}"),
            status: out.status,
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    read_summary_file(&summary)
}

/// `PYTHON bytewax_pipeline.py -w N --data RACE --mode M`: its JSON line, and its peak RSS,
/// read from /proc while it runs (its VmHWM only grows; the last reading before it ends is
/// kept).
fn run_peer(peer: &Peer, input: &Path, workers: usize) -> Result<PeerRun, BenchError> {
    let what = format!(
        "{} {} -w {workers}",
        peer.python.display(),
        peer.script.display()
    );
    let mut child = RunningChild::new(
        Command::new(&peer.python)
            .arg(&peer.script)
            .args(["-w", &workers.to_string(), "--mode", &peer.mode, "--data"])
            .arg(input)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(BenchError::spawn(&what))?,
    );
    // Read both pipes aside, so a chatty peer never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.take_stdout().map(|p| Box::new(p) as _));
    let stderr = drain(child.take_stderr().map(|p| Box::new(p) as _));
    let mut peak = None;
    let status = loop {
        if let Some(kb) = peak_rss_kb_of(child.id()) {
            peak = Some(kb);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(BenchError::wait(&what)(e)),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(BenchError::Failed {
            what,
            status,
            output: tail(&stderr),
        });
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| BenchError::PeerReport {
            what: what.clone(),
            reason: format!("printed no JSON line: {}", tail(&stdout)),
        })?;
    let v: Value = serde_json::from_str(line).map_err(|source| BenchError::PeerJson {
        what: what.clone(),
        line: line.to_string(),
        source,
    })?;
    let number = |key: &str| {
        v[key].as_f64().ok_or_else(|| BenchError::PeerReport {
            what: what.clone(),
            reason: format!("no {key:?} in its line {line:?}"),
        })
    };
    Ok(PeerRun {
        records: number("records")? as u64,
        seconds: number("seconds")?,
        records_per_second: number("records_per_second")?,
        peak_rss_kb: peak,
        alerts_by_type: v["alerts_by_type"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The last few lines of a child's output, for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

pub fn print_table(rows: &[PeerRow]) {
    println!(
        "{:<8} {:>6} {:>10} {:>14} {:>8} {:>14} {:>8} {:>7}",
        "scenario",
        "pair",
        "records",
        "pitwall rec/s",
        "RSS MB",
        "bytewax rec/s",
        "RSS MB",
        "ratio"
    );
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for r in rows {
        println!(
            "{:<8} {:>6} {:>10} {:>14.0} {:>8.1} {:>14} {:>8} {:>7}",
            r.scenario,
            r.pair,
            r.pitwall_records,
            r.pitwall_records_per_second,
            r.pitwall_peak_rss_mb,
            opt(r.bytewax_records_per_second, 0),
            opt(r.bytewax_peak_rss_mb, 1),
            opt(r.ratio, 2),
        );
    }
}

/// Per worker count, pitwall's median and the peer's side by side, the median ratio above
/// pitwall's bar.
pub fn bars(rows: &[PeerRow]) -> Vec<Bar> {
    let mut bars = Vec::new();
    for r in rows.iter().filter(|r| r.pair == "median") {
        bars.push(Bar {
            label: format!("pitwall {}", r.scenario),
            value: r.pitwall_records_per_second,
            note: match r.ratio {
                Some(x) => format!(
                    "{:.0}k/s, {x:.1}x bytewax",
                    r.pitwall_records_per_second / 1000.0
                ),
                None => format!("{:.0}k/s", r.pitwall_records_per_second / 1000.0),
            },
            color: PITWALL_COLOR,
        });
        if let Some(v) = r.bytewax_records_per_second {
            bars.push(Bar {
                label: format!("bytewax {}", r.scenario),
                value: v,
                note: format!("{:.0}k/s", v / 1000.0),
                color: "#e8893a",
            });
        }
    }
    bars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: usize, pitwall: f64, bytewax: Option<f64>) -> PeerRow {
        PeerRow {
            scenario: "-w 1".into(),
            pair: n.to_string(),
            workers: 1,
            pitwall_records: 100,
            pitwall_seconds: 100.0 / pitwall,
            pitwall_records_per_second: pitwall,
            pitwall_peak_rss_mb: 10.0,
            bytewax_records: bytewax.map(|_| 100),
            bytewax_seconds: bytewax.map(|b| 100.0 / b),
            bytewax_records_per_second: bytewax,
            bytewax_peak_rss_mb: bytewax.map(|_| 50.0),
            ratio: bytewax.map(|b| pitwall / b),
        }
    }

    #[test]
    fn the_median_ratio_is_taken_pair_by_pair() {
        // Pairs at different moments of a noisy machine: the ratios are 4, 5 and 6, while the
        // medians' own ratio would be 1000 / 250 = 4.
        let pairs = [
            pair(1, 1000.0, Some(250.0)),
            pair(2, 500.0, Some(100.0)),
            pair(3, 1800.0, Some(300.0)),
        ];
        let m = median_row("-w 1", 1, &pairs);
        assert_eq!(m.pair, "median");
        assert_eq!(m.pitwall_records_per_second, 1000.0);
        assert_eq!(m.bytewax_records_per_second, Some(250.0));
        assert_eq!(m.ratio, Some(5.0));
    }

    #[test]
    fn pitwall_alone_has_no_peer_figures() {
        let m = median_row("-w 2", 2, &[pair(1, 1000.0, None), pair(2, 800.0, None)]);
        assert_eq!(m.pitwall_records_per_second, 900.0);
        assert_eq!((m.bytewax_records_per_second, m.ratio), (None, None));
        assert_eq!(bars(&[m]).len(), 1);
    }
}
