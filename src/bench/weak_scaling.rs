//! Weak scaling: workers 1, 2, … (and processes), the work growing with them; efficiency is
//! T1 / Tn.

use super::{progress, read_summary_file, Row};
use crate::report::Summary;
use std::path::Path;
use std::process::{Command, Stdio};

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

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Runs one scenario: `processes` × `workers`, the work sized for all of them.
fn run_scenario(
    exe: &Path,
    ws: &WeakScaling,
    workers: usize,
    processes: usize,
) -> Result<Summary, String> {
    let peers = workers * processes;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let summary = dir.path().join("summary.json");
    let mut args: Vec<String> = vec![
        "run".into(),
        "-q".into(),
        "--http".into(),
        "off".into(),
        "--summary".into(),
        summary.display().to_string(),
    ];
    if ws.input == "sim" {
        args.extend([
            "--input".into(),
            "sim".into(),
            "--cars".into(),
            (ws.drivers_per_worker * peers).to_string(),
            "--laps".into(),
            ws.laps.to_string(),
        ]);
    } else {
        args.extend(["--input".into(), ws.input.clone(), "--clone-drivers".into()]);
    }
    args.extend(["-w".into(), workers.to_string()]);
    if processes > 1 {
        let hosts = dir.path().join("hosts");
        let lines: Vec<String> = (0..processes)
            .map(|_| free_port().map(|p| format!("127.0.0.1:{p}")))
            .collect::<Result<_, _>>()?;
        std::fs::write(&hosts, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
        let mut others = Vec::new();
        for p in 1..processes {
            let mut a = args.clone();
            a.extend([
                "-n".into(),
                processes.to_string(),
                "-p".into(),
                p.to_string(),
                "--hostfile".into(),
                hosts.display().to_string(),
            ]);
            // Only process 0 writes the summary.
            let pos = a.iter().position(|x| x == "--summary").unwrap_or(0);
            a.drain(pos..pos + 2);
            others.push(
                Command::new(exe)
                    .args(&a)
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| e.to_string())?,
            );
        }
        args.extend([
            "-n".into(),
            processes.to_string(),
            "-p".into(),
            "0".into(),
            "--hostfile".into(),
            hosts.display().to_string(),
        ]);
        let status = Command::new(exe)
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        for mut o in others {
            let _ = o.wait();
        }
        if !status.success() {
            return Err(format!("scenario {processes} processes failed: {status}"));
        }
    } else {
        let status = Command::new(exe)
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("scenario -w {workers} failed: {status}"));
        }
    }
    read_summary_file(&summary)
}

pub fn weak_scaling(ws: &WeakScaling) -> Result<Vec<Row>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
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
