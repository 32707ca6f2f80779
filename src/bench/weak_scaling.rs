//! Weak scaling: workers 1, 2, … (and processes), the work growing with them; efficiency is
//! T1 / Tn.

use super::child::{write_local_hostfile, Capture, RunCommand};
use super::{progress, read_summary_file, BenchError, Row};
use crate::report::Summary;
use std::path::Path;

pub struct WeakScaling {
    /// Worker counts of single-process scenarios.
    pub workers: Vec<usize>,
    /// Process counts of one-worker-per-process scenarios on localhost.
    pub processes: Vec<usize>,
    /// `sim`, or a merged FastF1 file whose drivers each worker clones.
    pub input: String,
    pub drivers_per_worker: usize,
    /// Simulator laps per car (samples per driver ≈ 326 a lap at 4 Hz).
    pub laps: u32,
    pub repeat: usize,
}

/// Runs one scenario: `processes` × `workers`, the work sized for all of them.
fn run_scenario(
    exe: &Path,
    ws: &WeakScaling,
    workers: usize,
    processes: usize,
) -> Result<Summary, BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
    let summary = dir.path().join("summary.json");
    let mut run = RunCommand::new(exe)
        .input(&ws.input)
        .workers(workers)
        .http_off()
        .quiet()
        .stdout(Capture::Null);
    // Every worker runs its own copy of the race: the simulator's (each steps one field of
    // `drivers_per_worker` cars) or the file's.
    run = run.arg("--clone-drivers");
    if ws.input == "sim" {
        run = run.args([
            "--cars".to_string(),
            ws.drivers_per_worker.to_string(),
            "--laps".to_string(),
            ws.laps.to_string(),
        ]);
    }
    if processes > 1 {
        let hosts = dir.path().join("hosts");
        write_local_hostfile(&hosts, processes).map_err(BenchError::Port)?;
        let job = run.cluster(processes, &hosts);
        // Only process 0 writes the summary.
        let others = (1..processes)
            .map(|p| {
                let other = job.clone().process(p);
                other.spawn().map_err(BenchError::spawn(&other))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let first = job.summary(&summary);
        let status = first.status().map_err(BenchError::spawn(&first))?;
        for mut o in others {
            let _ = o.wait();
        }
        if !status.success() {
            return Err(BenchError::Failed {
                what: format!("scenario {processes} processes"),
                status,
                output: String::new(),
            });
        }
    } else {
        let run = run.summary(&summary);
        let status = run.status().map_err(BenchError::spawn(&run))?;
        if !status.success() {
            return Err(BenchError::Failed {
                what: format!("scenario -w {workers}"),
                status,
                output: String::new(),
            });
        }
    }
    read_summary_file(&summary)
}

pub fn weak_scaling(ws: &WeakScaling) -> Result<Vec<Row>, BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::Exe)?;
    let mut scenarios: Vec<(String, usize, usize)> = ws
        .workers
        .iter()
        .map(|&w| (format!("-w {w}"), w, 1))
        .collect();
    scenarios.extend(
        ws.processes
            .iter()
            .filter(|&&n| n > 1)
            .map(|&n| (format!("-n {n} -w 1"), 1, n)),
    );
    let total = scenarios.len() * ws.repeat.max(1);
    let mut rows = Vec::new();
    let mut done = 0;
    for (name, workers, processes) in &scenarios {
        // The best of `repeat` runs: this machine is shared and noisy.
        let mut best: Option<Row> = None;
        for _ in 0..ws.repeat.max(1) {
            progress(done, total, name);
            let s = run_scenario(&exe, ws, *workers, *processes)?;
            let row = Row::from_summary(name, *workers, *processes, &s);
            if best.as_ref().is_none_or(|b| row.seconds < b.seconds) {
                best = Some(row);
            }
            done += 1;
        }
        rows.extend(best);
    }
    progress(done, total, "done");
    let t1 = rows.iter().find(|r| r.workers == 1).map(|r| r.seconds);
    for r in &mut rows {
        r.efficiency = t1.map_or(f64::NAN, |t1| t1 / r.seconds);
    }
    Ok(rows)
}
