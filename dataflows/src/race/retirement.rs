//! Retirements: a car that stops for good.
//!
//! A car is stopped when it stands still with its engine off or in neutral: a car that waits
//! at a corner, in a queue or in its pit box keeps its engine running in gear. On track, the
//! alert is raised after `retire_on_track_ms` of that; in the pit lane, where standing still is
//! what a stop is, after `retire_in_pit_ms`. A car that has finished (its last lap closed) is
//! parked, not retired; before lap 1 the car is on the grid. If the car drives off again, the
//! alert is cleared then (a stall, a spin), so the feed says it was a stop and not the end.

use super::RaceConfig;
use crate::alert::{Alert, AlertStatus, AlertType, Severity};
use crate::record::{DriverId, Telemetry};

#[derive(Clone, Debug)]
pub struct Retirement {
    driver: DriverId,
    on_track_ms: i64,
    in_pit_ms: i64,
    stationary_kmh: f32,
    /// When and on which lap the car stopped, and whether in the pit lane.
    stopped: Option<(i64, u16, bool, u32)>,
    raised: Option<Alert>,
}

impl Retirement {
    pub fn new(driver: DriverId, cfg: &RaceConfig) -> Self {
        Retirement {
            driver,
            on_track_ms: cfg.retire_on_track_ms,
            in_pit_ms: cfg.retire_in_pit_ms,
            stationary_kmh: cfg.stationary_kmh,
            stopped: None,
            raised: None,
        }
    }

    /// `in_pit_lane` and `finished` come from the driver's lap tracker.
    pub fn observe(&mut self, s: &Telemetry, in_pit_lane: bool, finished: bool) -> Option<Alert> {
        let standing = s.speed < self.stationary_kmh && (s.gear == 0 || s.rpm < 500.0);
        let moving = s.speed >= self.stationary_kmh * 5.0;
        let lap = s.lap.filter(|_| !finished);
        match (&mut self.stopped, lap) {
            (None, Some(lap)) if standing => {
                self.stopped = Some((s.ts_ms, lap, in_pit_lane, 1));
                None
            }
            (Some(_), _) if moving => {
                self.stopped = None;
                self.clear(s.ts_ms)
            }
            (Some((since, lap, pit, samples)), _) => {
                *samples += standing as u32;
                *pit |= in_pit_lane;
                let wait = if *pit {
                    self.in_pit_ms
                } else {
                    self.on_track_ms
                };
                if self.raised.is_none() && s.ts_ms - *since >= wait {
                    let alert = Alert {
                        alert_id: Alert::id_for(
                            self.driver,
                            AlertType::Retirement,
                            Severity::High,
                            *since,
                        ),
                        alert_type: AlertType::Retirement,
                        severity: Severity::High,
                        status: AlertStatus::Raised,
                        driver: self.driver,
                        lap: Some(*lap),
                        start_ms: *since,
                        end_ms: s.ts_ms,
                        peak: (s.ts_ms - *since) as f64 / 1000.0,
                        threshold: wait as f64 / 1000.0,
                        samples: *samples,
                    };
                    self.raised = Some(alert.clone());
                    return Some(alert);
                }
                if let Some(a) = self.raised.as_mut() {
                    a.end_ms = s.ts_ms;
                    a.peak = (s.ts_ms - *since) as f64 / 1000.0;
                    a.samples = *samples;
                }
                None
            }
            _ => None,
        }
    }

    fn clear(&mut self, _ts_ms: i64) -> Option<Alert> {
        let mut a = self.raised.take()?;
        a.status = AlertStatus::Cleared;
        Some(a)
    }

    /// End of input: an open retirement is final.
    pub fn close(&mut self) -> Option<Alert> {
        self.stopped = None;
        self.clear(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts_ms: i64, speed: f32, gear: u8, rpm: f32) -> Telemetry {
        Telemetry {
            driver: DriverId::new("MAG").unwrap(),
            ts_ms,
            speed,
            rpm,
            throttle: 0.0,
            brake_temp: None,
            position: None,
            lap: Some(70),
            gear,
            drs: 0,
            brake: false,
        }
    }

    #[test]
    fn a_car_standing_in_neutral_on_track_retires_within_ten_seconds() {
        let mut r = Retirement::new(DriverId::new("MAG").unwrap(), &RaceConfig::default());
        let mut alerts = vec![];
        for i in 0..200 {
            let ts = i * 250;
            let sample = if i < 40 {
                s(ts, 150.0, 5, 10_000.0)
            } else {
                s(ts, 0.0, 0, 4000.0)
            };
            alerts.extend(r.observe(&sample, false, false));
        }
        alerts.extend(r.close());
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].status, AlertStatus::Raised);
        assert_eq!((alerts[0].lap, alerts[0].start_ms), (Some(70), 10_000));
        assert!(alerts[0].end_ms - alerts[0].start_ms <= 10_000);
        assert_eq!(alerts[1].status, AlertStatus::Cleared);
    }

    #[test]
    fn a_pit_stop_in_gear_a_parked_finisher_and_a_stall_that_restarts() {
        let driver = DriverId::new("MAG").unwrap();
        // A stop in gear with the engine running: no alert.
        let mut r = Retirement::new(driver, &RaceConfig::default());
        let stop: Vec<_> = (0..100).map(|i| s(i * 250, 0.0, 1, 4000.0)).collect();
        assert!(stop.iter().all(|x| r.observe(x, true, false).is_none()));
        // Parked in neutral after the finish: no alert.
        let mut r = Retirement::new(driver, &RaceConfig::default());
        let parked: Vec<_> = (0..400).map(|i| s(i * 250, 0.0, 0, 0.0)).collect();
        assert!(parked.iter().all(|x| r.observe(x, false, true).is_none()));
        // A stall of 20 s on track, then away again: raised, then cleared at once.
        let mut r = Retirement::new(driver, &RaceConfig::default());
        let mut alerts = vec![];
        for i in 0..120 {
            let sample = if i < 80 {
                s(i * 250, 0.0, 0, 0.0)
            } else {
                s(i * 250, 80.0, 2, 9000.0)
            };
            alerts.extend(r.observe(&sample, false, false));
        }
        let statuses: Vec<_> = alerts.iter().map(|a| a.status).collect();
        assert_eq!(statuses, vec![AlertStatus::Raised, AlertStatus::Cleared]);
        assert_eq!(alerts[1].end_ms, 79 * 250);
    }
}
