//! Gear anomalies: lugging, over-revving, rapid shifting and gear values the car cannot have.

use crate::config::{GearConfig, LuggingMode};
use crate::record::{Telemetry, MAX_GEAR};
use std::collections::VecDeque;

/// Which anomalies hold for one sample, each with its value (rpm, shifts, or the gear).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GearReadings {
    pub lugging: Option<f64>,
    pub over_revving: Option<f64>,
    pub rapid_shifting: Option<f64>,
    pub invalid_gear: Option<f64>,
}

/// A low quantile of one driver's rpm in one gear under load, by stochastic approximation,
/// seeded with the exact quantile of a warm-up.
#[derive(Clone, Debug, Default)]
struct LowQuantile {
    warmup: Vec<f32>,
    estimate: Option<f64>,
}

impl LowQuantile {
    /// Step of the approximation, rpm: the estimate moves up q × step, down (1 - q) × step.
    const STEP: f64 = 200.0;

    fn observe(&mut self, rpm: f64, q: f64, warmup: u32) {
        match self.estimate.as_mut() {
            Some(e) => *e += Self::STEP * (q - (rpm < *e) as u8 as f64),
            None => {
                self.warmup.push(rpm as f32);
                if self.warmup.len() >= warmup as usize {
                    self.warmup.sort_by(f32::total_cmp);
                    let i = ((self.warmup.len() as f64 * q) as usize).min(self.warmup.len() - 1);
                    self.estimate = Some(self.warmup[i] as f64);
                    self.warmup = Vec::new();
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct GearAnomalies {
    cfg: GearConfig,
    /// Calibrated lugging: per gear 1..=8.
    low_rpm: [LowQuantile; MAX_GEAR as usize],
    /// Times of the recent shifts between real gears.
    shifts: VecDeque<i64>,
    last_valid_gear: Option<u8>,
}

impl GearAnomalies {
    pub fn new(cfg: &GearConfig) -> Self {
        GearAnomalies {
            cfg: cfg.clone(),
            low_rpm: Default::default(),
            shifts: VecDeque::new(),
            last_valid_gear: None,
        }
    }

    pub fn observe(&mut self, s: &Telemetry) -> GearReadings {
        let c = &self.cfg;
        let rpm = s.rpm as f64;
        if !s.gear_is_valid() {
            // A glitch value says nothing about the driver's shifting or the engine's load.
            return GearReadings {
                invalid_gear: Some(s.gear as f64),
                ..Default::default()
            };
        }
        if self.last_valid_gear.is_some_and(|g| g != s.gear) {
            self.shifts.push_back(s.ts_ms);
        }
        self.last_valid_gear = Some(s.gear);
        while matches!(self.shifts.front(), Some(&t) if t <= s.ts_ms - c.rapid_window_ms) {
            self.shifts.pop_front();
        }
        let shifts = self.shifts.len();
        let lugging = match c.lugging_mode {
            LuggingMode::Fixed => s.gear > c.lugging_above_gear && rpm < c.lugging_max_rpm,
            LuggingMode::Calibrated => {
                let loaded = s.gear >= 1
                    && s.throttle_pct()
                        .is_some_and(|t| t as f64 >= c.lugging_min_throttle_pct)
                    && s.speed as f64 >= c.lugging_min_kmh;
                if loaded {
                    let q = &mut self.low_rpm[s.gear as usize - 1];
                    let low = q.estimate;
                    q.observe(rpm, c.lugging_quantile, c.lugging_warmup_samples);
                    s.gear > c.lugging_above_gear
                        && low.is_some_and(|low| rpm < low - c.lugging_margin_rpm)
                } else {
                    false
                }
            }
        };
        GearReadings {
            lugging: lugging.then_some(rpm),
            over_revving: (s.gear >= 1
                && s.gear < c.over_rev_below_gear
                && rpm > c.over_rev_min_rpm)
                .then_some(rpm),
            rapid_shifting: (shifts > c.rapid_max_shifts).then_some(shifts as f64),
            invalid_gear: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::DriverId;

    fn s(ts_ms: i64, gear: u8, rpm: f32) -> Telemetry {
        Telemetry {
            speed: 100.0,
            rpm,
            throttle: 50.0,
            gear,
            ..Telemetry::at(DriverId::new("NOR").unwrap(), ts_ms)
        }
    }

    #[test]
    fn lugging_and_over_revving_follow_the_thresholds() {
        let mut g = GearAnomalies::new(&GearConfig {
            lugging_mode: LuggingMode::Fixed,
            ..Default::default()
        });
        assert_eq!(g.observe(&s(0, 4, 7999.0)).lugging, Some(7999.0));
        assert_eq!(
            g.observe(&s(1, 4, 8000.0)).lugging,
            None,
            "8000 is not below 8000"
        );
        assert_eq!(
            g.observe(&s(2, 3, 5000.0)).lugging,
            None,
            "gear 3 is not above 3"
        );
        assert_eq!(g.observe(&s(3, 4, 13500.0)).over_revving, Some(13500.0));
        assert_eq!(
            g.observe(&s(4, 5, 13500.0)).over_revving,
            None,
            "gear 5 is not below 5"
        );
        assert_eq!(
            g.observe(&s(5, 1, 13000.0)).over_revving,
            None,
            "13000 is not above"
        );
        assert_eq!(g.observe(&s(6, 0, 14000.0)).over_revving, None, "neutral");
    }

    #[test]
    fn calibrated_lugging_is_judged_against_the_drivers_own_rpm_under_load() {
        let mut g = GearAnomalies::new(&GearConfig::default());
        let loaded = |ts, rpm: f32| Telemetry {
            throttle: 100.0,
            speed: 200.0,
            ..s(ts, 6, rpm)
        };
        // Full load in 6th between 9,000 and 11,900 rpm: the driver's usual.
        for i in 0..400i64 {
            let r = g.observe(&loaded(i, 9000.0 + (i % 30) as f32 * 100.0));
            assert_eq!(r.lugging, None, "sample {i}");
        }
        // 7,500 rpm at full load in 6th is far below this driver's own 1 %: lugging.
        assert_eq!(g.observe(&loaded(500, 7500.0)).lugging, Some(7500.0));
        // The seeds' rule would flag 7,900 rpm off-throttle in 6th; calibrated does not.
        assert_eq!(g.observe(&s(501, 6, 7900.0)).lugging, None);
    }

    #[test]
    fn glitch_gears_are_invalid_and_nothing_else() {
        let mut g = GearAnomalies::new(&GearConfig::default());
        let r = g.observe(&s(0, 128, 5000.0));
        assert_eq!(r.invalid_gear, Some(128.0));
        assert_eq!((r.lugging, r.rapid_shifting), (None, None));
        assert_eq!(g.observe(&s(0, 9, 5000.0)).invalid_gear, Some(9.0));
        assert_eq!(g.observe(&s(0, 8, 12000.0)).invalid_gear, None);
    }

    #[test]
    fn rapid_shifting_counts_shifts_within_the_window() {
        let cfg = GearConfig {
            rapid_max_shifts: 3,
            rapid_window_ms: 1000,
            ..Default::default()
        };
        let mut g = GearAnomalies::new(&cfg);
        // Shifts at 100, 200, 300, 400 (a glitch value in between does not count).
        let gears = [(0, 2), (100, 3), (150, 99), (200, 4), (300, 3), (400, 4)];
        let mut last = GearReadings::default();
        for (ts, gear) in gears {
            last = g.observe(&s(ts, gear, 10000.0));
        }
        assert_eq!(last.rapid_shifting, Some(4.0));
        // At 1150 the shift at 100 is out of the 1000 ms window: three left, not more than 3.
        assert_eq!(g.observe(&s(1150, 4, 10000.0)).rapid_shifting, None);
    }
}
