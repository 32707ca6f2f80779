//! Where an alert's milliseconds go, for `bench kafka`'s latency breakdown: when the sample that
//! raised it was consumed, when the alert was handed to its producer and when the broker
//! acknowledged it. Off unless `kafka.alert_timings` names a file prefix; then the source notes
//! every sample's arrival (a ring per driver) and the sink writes one JSON line per raised alert
//! to `PREFIX.PID` once it is acknowledged.
//!
//! The source and the sinks of a process share one table, whichever worker they run on (a
//! driver's samples are read by one worker and analysed by another).

use super::KafkaConfig;
use pitwall_dataflows::alert::{Alert, AlertStatus};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Samples remembered per driver: an alert is raised within a few samples of its last one.
const KEEP_PER_DRIVER: usize = 4096;

/// One raised alert's timestamps, Unix µs (the sample's own `created_ms` from its message).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertTiming {
    pub alert_id: String,
    /// The message timestamp of the sample that raised it (its producer's clock), Unix ms.
    pub sample_created_ms: i64,
    pub consumed_us: u64,
    pub sent_us: u64,
    pub acked_us: u64,
}

/// A sample as it arrived.
#[derive(Clone, Copy)]
struct Arrival {
    ts_ms: i64,
    consumed_us: u64,
    created_ms: i64,
}

#[derive(Default)]
pub struct AlertTimings {
    /// Per driver, oldest first.
    arrivals: Mutex<HashMap<String, VecDeque<Arrival>>>,
    /// Raised alerts sent and not yet acknowledged, by alert id.
    sent: Mutex<HashMap<String, AlertTiming>>,
    file: Mutex<Option<std::fs::File>>,
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl AlertTimings {
    /// The process's table when `cfg.alert_timings` is set.
    pub fn shared(cfg: &KafkaConfig) -> Option<Arc<AlertTimings>> {
        static SHARED: OnceLock<Option<Arc<AlertTimings>>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                if cfg.alert_timings.is_empty() {
                    return None;
                }
                let path = format!("{}.{}", cfg.alert_timings, std::process::id());
                let file = std::fs::File::create(&path)
                    .map_err(|e| tracing::warn!("alert timings {path}: {e}"))
                    .ok();
                Some(Arc::new(AlertTimings {
                    file: Mutex::new(file),
                    ..Default::default()
                }))
            })
            .clone()
    }

    /// A table writing to `path` (tests; the engine's is [`AlertTimings::shared`]).
    pub fn to_file(path: &std::path::Path) -> std::io::Result<AlertTimings> {
        Ok(AlertTimings {
            file: Mutex::new(Some(std::fs::File::create(path)?)),
            ..Default::default()
        })
    }

    /// A sample consumed now: its driver, event time and message timestamp.
    pub fn arrived(&self, driver: &str, ts_ms: i64, created_ms: i64) {
        let now = now_us();
        let Ok(mut a) = self.arrivals.lock() else {
            return;
        };
        let ring = a.entry(driver.to_string()).or_default();
        if ring.len() == KEEP_PER_DRIVER {
            ring.pop_front();
        }
        ring.push_back(Arrival {
            ts_ms,
            consumed_us: now,
            created_ms,
        });
    }

    /// An alert handed to its producer now; only raised ones are timed.
    pub fn sent(&self, alert: &Alert) {
        if alert.status != AlertStatus::Raised {
            return;
        }
        let now = now_us();
        let arrival = self.arrivals.lock().ok().and_then(|a| {
            a.get(alert.driver.as_str())?
                .iter()
                .rev()
                .find(|a| a.ts_ms == alert.end_ms)
                .copied()
        });
        let Some(arrival) = arrival else {
            return;
        };
        let id = alert.alert_id.to_string();
        if let Ok(mut sent) = self.sent.lock() {
            sent.entry(id.clone()).or_insert(AlertTiming {
                alert_id: id,
                sample_created_ms: arrival.created_ms,
                consumed_us: arrival.consumed_us,
                sent_us: now,
                acked_us: 0,
            });
        }
    }

    /// The broker acknowledged a message keyed `key` on the alerts topic.
    pub fn acknowledged(&self, key: &[u8]) {
        let Ok(id) = std::str::from_utf8(key) else {
            return;
        };
        let Some(mut t) = self.sent.lock().ok().and_then(|mut s| s.remove(id)) else {
            return;
        };
        t.acked_us = now_us();
        if let (Ok(mut file), Ok(line)) = (self.file.lock(), serde_json::to_string(&t)) {
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitwall_dataflows::alert::{AlertType, Severity};
    use pitwall_dataflows::DriverId;

    fn alert(status: AlertStatus, end_ms: i64) -> Alert {
        let driver = DriverId::new("VER").unwrap();
        Alert {
            alert_id: Alert::id_for(driver, AlertType::WheelSpin, Severity::Medium, 1_000),
            alert_type: AlertType::WheelSpin,
            severity: Severity::Medium,
            status,
            driver,
            lap: Some(3),
            start_ms: 1_000,
            end_ms,
            peak: 1.3,
            threshold: 1.15,
            samples: 2,
        }
    }

    #[test]
    fn a_raised_alert_is_timed_from_its_last_samples_arrival_to_its_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timings");
        let t = AlertTimings::to_file(&path).unwrap();
        t.arrived("VER", 1_000, 7);
        t.arrived("VER", 1_250, 8);
        t.arrived("HAM", 1_250, 9);
        let raised = alert(AlertStatus::Raised, 1_250);
        t.sent(&raised);
        // The cleared message of the same alert is not timed.
        t.sent(&alert(AlertStatus::Cleared, 1_500));
        let id = raised.alert_id.to_string();
        t.acknowledged(id.as_bytes());
        t.acknowledged(id.as_bytes());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<AlertTiming> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = &lines[0];
        assert_eq!(line.alert_id, id);
        assert_eq!(line.sample_created_ms, 8);
        assert!(line.consumed_us <= line.sent_us && line.sent_us <= line.acked_us);
    }
}
