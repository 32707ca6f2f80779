//! Retirements: a car that stops for good.
//!
//! A car that stands still with its engine off has stopped for good: no pit stop, queue or
//! spin switches the engine off. The alert is raised `retire_engine_off_ms` after that, on
//! track or in the pit lane. A car standing in neutral with its engine running may still go
//! on (a spin, a stall it recovers from): it is a retirement after `retire_on_track_ms` on
//! track, `retire_in_pit_ms` in the pit lane, where standing is what a stop is. A car that has
//! finished (its last lap closed and a cool-down lap driven) is parked, not retired; a car that
//! has not yet left its grid slot (lap 1, 50 m) is on the grid, so a car stopped in a
//! first-corner crash retires. If the car drives off again, the alert is
//! cleared then, so the feed says it was a stop and not the end.

use super::RaceConfig;
use crate::alert::{Alert, AlertStatus, AlertType, Severity};
use crate::record::{DriverId, Telemetry};
use serde::{Deserialize, Serialize};

/// A car that stood long enough to be judged retired. Whether it is a retirement is for the
/// race views to say: a car parked after the chequered flag is not one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CarStop {
    pub driver: DriverId,
    pub lap: u16,
    /// When the car stopped, and when it had stood long enough (epoch ms).
    pub since_ms: i64,
    pub judged_ms: i64,
    /// Judged by its engine being off (else by standing in neutral).
    pub engine_off: bool,
    pub in_pit_lane: bool,
    /// When the car drove off again (`None` while it stands): a stop that ended is kept, so
    /// that the race views know how many cars stood at once (a red flag).
    pub ended_ms: Option<i64>,
}

impl CarStop {
    /// The retirement as an alert (ended: a retirement does not end).
    pub fn alert(&self) -> Alert {
        Alert {
            alert_id: Alert::id_for(
                self.driver,
                AlertType::Retirement,
                Severity::High,
                self.since_ms,
            ),
            alert_type: AlertType::Retirement,
            severity: Severity::High,
            status: AlertStatus::Cleared,
            driver: self.driver,
            lap: Some(self.lap),
            start_ms: self.since_ms,
            end_ms: self.judged_ms,
            peak: (self.judged_ms - self.since_ms) as f64 / 1000.0,
            threshold: (self.judged_ms - self.since_ms) as f64 / 1000.0,
            samples: 1,
        }
    }
}

/// What one sample changed: a car judged stopped for good, or one that drove off again.
#[derive(Clone, Debug, PartialEq)]
pub enum StopChange {
    Stopped(CarStop),
    /// The stop judged, and when the car drove off.
    DroveOff(CarStop, i64),
}

#[derive(Clone, Debug)]
pub struct Retirement {
    driver: DriverId,
    on_track_ms: i64,
    in_pit_ms: i64,
    engine_off_ms: i64,
    stationary_kmh: f32,
    /// When and on which lap the car stopped, whether in the pit lane, and since when the
    /// engine has been off.
    stopped: Option<(i64, u16, bool, Option<i64>)>,
    judged: Option<CarStop>,
}

impl Retirement {
    pub fn new(driver: DriverId, cfg: &RaceConfig) -> Self {
        Retirement {
            driver,
            on_track_ms: cfg.retire_on_track_ms,
            in_pit_ms: cfg.retire_in_pit_ms,
            engine_off_ms: cfg.retire_engine_off_ms,
            stationary_kmh: cfg.stationary_kmh,
            stopped: None,
            judged: None,
        }
    }

    /// `in_pit_lane` and `racing_lap` (the lap the car races on; `None` while it waits on the
    /// grid) come from the driver's lap tracker.
    pub fn observe(
        &mut self,
        s: &Telemetry,
        in_pit_lane: bool,
        racing_lap: Option<u16>,
    ) -> Option<StopChange> {
        let engine_off = s.rpm < 500.0;
        let standing = s.speed < self.stationary_kmh && (s.gear == 0 || engine_off);
        let moving = s.speed >= self.stationary_kmh * 5.0;
        if moving {
            self.stopped = None;
            return self
                .judged
                .take()
                .map(|stop| StopChange::DroveOff(stop, s.ts_ms));
        }
        let Some((since, lap, pit, off)) = self.stopped.as_mut() else {
            if let (true, Some(lap)) = (standing, racing_lap) {
                self.stopped = Some((s.ts_ms, lap, in_pit_lane, engine_off.then_some(s.ts_ms)));
            }
            return None;
        };
        *pit |= in_pit_lane;
        if !engine_off {
            *off = None;
        } else if off.is_none() {
            *off = Some(s.ts_ms);
        }
        let by_engine = off.is_some_and(|t| s.ts_ms - t >= self.engine_off_ms);
        let wait = if *pit {
            self.in_pit_ms
        } else {
            self.on_track_ms
        };
        if self.judged.is_some() || !(by_engine || s.ts_ms - *since >= wait) {
            return None;
        }
        let stop = CarStop {
            driver: self.driver,
            lap: *lap,
            since_ms: *since,
            judged_ms: s.ts_ms,
            engine_off: by_engine,
            in_pit_lane: *pit,
            ended_ms: None,
        };
        self.judged = Some(stop.clone());
        Some(StopChange::Stopped(stop))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts_ms: i64, speed: f32, gear: u8, rpm: f32) -> Telemetry {
        Telemetry {
            speed,
            rpm,
            lap: Some(70),
            gear,
            ..Telemetry::at(DriverId::new("MAG").unwrap(), ts_ms)
        }
    }

    fn run(samples: &[Telemetry], in_pit: bool) -> Vec<StopChange> {
        let mut r = Retirement::new(DriverId::new("MAG").unwrap(), &RaceConfig::default());
        samples
            .iter()
            .filter_map(|x| r.observe(x, in_pit, x.lap))
            .collect()
    }

    #[test]
    fn a_car_standing_with_its_engine_off_is_judged_within_ten_seconds() {
        let samples: Vec<_> = (0..200)
            .map(|i| match i {
                0..40 => s(i * 250, 150.0, 5, 10_000.0),
                40..48 => s(i * 250, 0.0, 0, 4000.0),
                _ => s(i * 250, 0.0, 0, 0.0),
            })
            .collect();
        let changes = run(&samples, false);
        assert_eq!(changes.len(), 1);
        let StopChange::Stopped(stop) = &changes[0] else {
            panic!("{changes:?}")
        };
        assert_eq!(
            (stop.lap, stop.since_ms, stop.engine_off),
            (70, 10_000, true)
        );
        assert!(stop.judged_ms - stop.since_ms <= 10_000);
        assert_eq!(stop.alert().alert_type, AlertType::Retirement);
    }

    #[test]
    fn a_pit_stop_a_spin_and_a_stall_that_restarts() {
        // A stop in gear with the engine running: nothing.
        let stop: Vec<_> = (0..100).map(|i| s(i * 250, 0.0, 1, 4000.0)).collect();
        assert!(run(&stop, true).is_empty());
        // A spin: 20 s in neutral with the engine running, then away: nothing.
        let spin: Vec<_> = (0..100)
            .map(|i| {
                if i < 80 {
                    s(i * 250, 0.0, 0, 4000.0)
                } else {
                    s(i * 250, 60.0, 2, 8000.0)
                }
            })
            .collect();
        assert!(run(&spin, false).is_empty());
        // A stall of 20 s with the engine off, then restarted and away: judged, then off again.
        let stall: Vec<_> = (0..120)
            .map(|i| {
                if i < 80 {
                    s(i * 250, 0.0, 0, 0.0)
                } else {
                    s(i * 250, 80.0, 2, 9000.0)
                }
            })
            .collect();
        let changes = run(&stall, false);
        assert!(
            matches!(changes.as_slice(), [StopChange::Stopped(a), StopChange::DroveOff(b, _)] if a == b)
        );
    }
}
