//! `pitwall bench`: weak scaling ([`weak_scaling`]), Kafka end-to-end runs ([`kafka`]), the
//! engine against the Bytewax peer ([`peers`]) and the query API under load ([`http_load`]), as
//! a table, a CSV and an SVG chart ([`results`]).
//!
//! Every scenario runs `pitwall run` as a child process (so each has its own peak RSS and a
//! clean start), started through [`child`], and reads the [`Summary`] it writes. What fails is
//! a [`BenchError`].

pub mod child;
mod error;
pub mod http_load;
pub mod kafka;
pub mod peers;
pub mod results;
pub mod weak_scaling;

pub use error::BenchError;
pub use http_load::{http_load, HttpLoad};
pub use kafka::{kafka, KafkaBench};
pub use peers::{peers, PeersBench};
pub use results::{print_table, write_results};
pub use weak_scaling::{weak_scaling, WeakScaling};

use crate::report::Summary;
use std::io::IsTerminal;
use std::path::Path;

/// One measured scenario.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub workers: usize,
    pub processes: usize,
    pub records: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    pub records_per_second_per_worker: f64,
    /// T1 / Tn, the work growing with the workers.
    pub efficiency: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_p99_ms: f64,
    pub peak_rss_mb: f64,
}

impl Row {
    /// The scenario's figures from the summary of its run (process 0's).
    pub fn from_summary(scenario: &str, workers: usize, processes: usize, s: &Summary) -> Row {
        let lat =
            |p: fn(&crate::report::Percentiles) -> f64| s.latency_ms.as_ref().map_or(f64::NAN, p);
        let peers = workers * processes;
        Row {
            scenario: scenario.to_string(),
            workers: peers,
            processes,
            records: s.records,
            seconds: s.seconds,
            records_per_second: s.records_per_second,
            records_per_second_per_worker: s.records_per_second / peers.max(1) as f64,
            efficiency: 0.0,
            latency_p50_ms: lat(|l| l.p50),
            latency_p95_ms: lat(|l| l.p95),
            latency_p99_ms: lat(|l| l.p99),
            peak_rss_mb: s.peak_rss_kb.unwrap_or(0) as f64 / 1024.0,
        }
    }
}

pub(crate) fn progress(done: usize, total: usize, what: &str) {
    let width = 24;
    let filled = width * done / total.max(1);
    let bar = format!(
        "[{}{}] {done}/{total} {what}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K{bar}");
        if done == total {
            eprintln!();
        }
    } else {
        eprintln!("{bar}");
    }
}

/// The `summary.json` a child run wrote.
pub(crate) fn read_summary_file(path: &Path) -> Result<Summary, BenchError> {
    let text = std::fs::read_to_string(path).map_err(BenchError::file(path))?;
    serde_json::from_str(&text).map_err(|source| BenchError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Peak resident set of another process (Linux: VmHWM of /proc/PID/status), KiB; `None` once
/// it has ended (a zombie's status has no memory lines) or off Linux.
pub(crate) fn peak_rss_kb_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The median (the mean of the middle two for an even count); NaN for none.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(super::median(&[]).is_nan());
    }
}
