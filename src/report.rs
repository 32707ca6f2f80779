//! What a run reports: the typed [`Summary`] that `summary.json` holds (made by the collector
//! in `sinks/collect.rs`, read back by `pitwall bench`) and its readable form.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DriverSummary {
    pub records: u64,
    pub alerts: u64,
}

/// What `summary.json` holds; [`crate::bench`] reads it back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub input: String,
    /// Rows read or generated: records + dead letters + rows left out by `--drivers`.
    pub rows: u64,
    pub records: u64,
    pub filtered_rows: u64,
    pub drivers: usize,
    pub dead_letters: u64,
    pub dead_letters_by_reason: BTreeMap<String, u64>,
    /// Episodes (each counted once, when it ended).
    pub alerts: u64,
    pub alerts_by_severity: BTreeMap<String, u64>,
    pub alerts_by_type: BTreeMap<String, u64>,
    pub windows: u64,
    /// Race intelligence: driver-laps, pit stops and predictions written (current rows).
    #[serde(default)]
    pub laps: u64,
    #[serde(default)]
    pub pit_stops: u64,
    #[serde(default)]
    pub predictions: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    pub workers: usize,
    pub processes: usize,
    pub wheel_spin_mode: String,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    /// Source-to-output latency of raised alerts at the collector, ms.
    pub latency_ms: Option<Percentiles>,
    /// Peak resident set of this process (Linux: VmHWM), KiB.
    pub peak_rss_kb: Option<u64>,
    pub per_driver: BTreeMap<String, DriverSummary>,
    /// The race as it ran: podium, pit stops, safety cars, retirements, car health.
    #[serde(default)]
    pub race: crate::story::RaceStory,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub count: usize,
}

impl Percentiles {
    pub fn of(values: &mut [f64]) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Some(Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: values[values.len() - 1],
            count: values.len(),
        })
    }
}

/// Peak resident set size of this process, from /proc (Linux).
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes to stdout; an error (the reader went away) is returned, never a panic as
/// `println!` would.
pub fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// The readable end-of-run summary.
pub fn print_summary(s: &Summary) {
    let mut out = String::new();
    out.push('\n');
    outln!(out, "pitwall run: {}", s.input);
    out.push_str(&s.race.lines());
    outln!(
        out,
        "  {} records from {} drivers in {:.3} s ({:.0} records/s, {} worker(s) in {} process(es))",
        s.records,
        s.drivers,
        s.seconds,
        s.records_per_second,
        s.workers,
        s.processes
    );
    outln!(
        out,
        "  rows {}  dead letters {}  left out by --drivers {}",
        s.rows,
        s.dead_letters,
        s.filtered_rows
    );
    for (reason, n) in &s.dead_letters_by_reason {
        outln!(out, "    {n:>8}  {reason}");
    }
    outln!(out, "  windows {}", s.windows);
    outln!(
        out,
        "  alerts {}  (high {} · medium {} · low {}; wheel spin mode: {})",
        s.alerts,
        s.alerts_by_severity["high"],
        s.alerts_by_severity["medium"],
        s.alerts_by_severity["low"],
        s.wheel_spin_mode
    );
    for (kind, n) in &s.alerts_by_type {
        outln!(out, "    {n:>8}  {kind}");
    }
    outln!(out, "  per driver (records / alerts):");
    let cells: Vec<String> = s
        .per_driver
        .iter()
        .map(|(d, v)| format!("{d:<6}{:>8} /{:>5}", v.records, v.alerts))
        .collect();
    for row in cells.chunks(4) {
        outln!(out, "    {}", row.join("   "));
    }
    // Nobody reading (`| head` closed the pipe): nothing to do about it.
    let _ = print_out(&out);
}
