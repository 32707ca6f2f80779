//! Turns a per-sample condition into episodes: one alert when it starts, one when it ends.
//!
//! Every alert type goes through this one mechanism; detectors only say, per sample, whether
//! the condition holds and with what value.

use crate::alert::{Alert, AlertStatus, AlertType, Severity};
use crate::record::{DriverId, Telemetry};

/// Which direction of the value is worse, for the episode's peak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Worse {
    Higher,
    Lower,
}

#[derive(Clone, Debug)]
pub struct Episode {
    driver: DriverId,
    alert_type: AlertType,
    severity: Severity,
    threshold: f64,
    worse: Worse,
    /// Samples in a row the condition needs before the episode is raised.
    consecutive: u32,
    run: u32,
    start_ms: i64,
    last_ms: i64,
    lap: Option<u16>,
    peak: f64,
    raised: bool,
}

impl Episode {
    pub fn new(
        driver: DriverId,
        alert_type: AlertType,
        severity: Severity,
        threshold: f64,
        worse: Worse,
        consecutive: u32,
    ) -> Self {
        Episode {
            driver,
            alert_type,
            severity,
            threshold,
            worse,
            consecutive: consecutive.max(1),
            run: 0,
            start_ms: 0,
            last_ms: 0,
            lap: None,
            peak: 0.0,
            raised: false,
        }
    }

    pub fn is_open(&self) -> bool {
        self.raised
    }

    /// `reading` is `Some(value)` when the condition holds for this sample.
    /// Returns the alert raised or cleared by this sample, if any.
    pub fn observe(&mut self, sample: &Telemetry, reading: Option<f64>) -> Option<Alert> {
        match reading {
            Some(value) => {
                if self.run == 0 {
                    self.start_ms = sample.ts_ms;
                    self.lap = sample.lap;
                    self.peak = value;
                } else if self.is_worse(value) {
                    self.peak = value;
                }
                self.run += 1;
                self.last_ms = sample.ts_ms;
                if !self.raised && self.run >= self.consecutive {
                    self.raised = true;
                    return Some(self.alert(AlertStatus::Raised));
                }
                None
            }
            None => self.close(),
        }
    }

    /// Ends the episode in progress (the condition stopped, or the stream did).
    pub fn close(&mut self) -> Option<Alert> {
        let was_raised = self.raised;
        self.raised = false;
        let alert = was_raised.then(|| self.alert(AlertStatus::Cleared));
        self.run = 0;
        alert
    }

    fn is_worse(&self, value: f64) -> bool {
        match self.worse {
            Worse::Higher => value > self.peak,
            Worse::Lower => value < self.peak,
        }
    }

    fn alert(&self, status: AlertStatus) -> Alert {
        Alert {
            alert_id: Alert::id_for(self.driver, self.alert_type, self.severity, self.start_ms),
            alert_type: self.alert_type,
            severity: self.severity,
            status,
            driver: self.driver,
            lap: self.lap,
            start_ms: self.start_ms,
            end_ms: self.last_ms,
            peak: self.peak,
            threshold: self.threshold,
            samples: self.run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts_ms: i64) -> Telemetry {
        Telemetry {
            lap: Some(3),
            ..Telemetry::at(DriverId::new("VER").unwrap(), ts_ms)
        }
    }

    fn episode(consecutive: u32, worse: Worse) -> Episode {
        Episode::new(
            DriverId::new("VER").unwrap(),
            AlertType::Lugging,
            Severity::Low,
            8000.0,
            worse,
            consecutive,
        )
    }

    #[test]
    fn needs_consecutive_samples_and_reports_start_end_peak() {
        let mut e = episode(2, Worse::Lower);
        assert_eq!(e.observe(&sample(0), Some(7000.0)), None);
        assert_eq!(
            e.observe(&sample(250), None),
            None,
            "one sample is not enough"
        );
        assert_eq!(e.observe(&sample(500), Some(7500.0)), None);
        let raised = e.observe(&sample(750), Some(6000.0)).unwrap();
        assert_eq!(raised.status, AlertStatus::Raised);
        assert_eq!(
            (raised.start_ms, raised.end_ms, raised.samples),
            (500, 750, 2)
        );
        assert_eq!(raised.peak, 6000.0);
        assert_eq!(e.observe(&sample(1000), Some(6500.0)), None);
        let cleared = e.observe(&sample(1250), None).unwrap();
        assert_eq!(cleared.status, AlertStatus::Cleared);
        assert_eq!(cleared.alert_id, raised.alert_id);
        assert_eq!(
            (cleared.start_ms, cleared.end_ms, cleared.samples),
            (500, 1000, 3)
        );
        assert_eq!(cleared.peak, 6000.0);
        assert_eq!(cleared.lap, Some(3));
    }

    #[test]
    fn close_at_end_of_stream_only_when_raised() {
        let mut e = episode(1, Worse::Higher);
        assert!(e.close().is_none());
        assert!(e.observe(&sample(0), Some(1.0)).is_some());
        assert!(e.observe(&sample(10), Some(3.0)).is_none());
        let c = e.close().unwrap();
        assert_eq!((c.peak, c.samples, c.end_ms), (3.0, 2, 10));
        assert!(e.close().is_none());
    }
}
