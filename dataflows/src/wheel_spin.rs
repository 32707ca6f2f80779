//! Wheel spin: the speed the engine says the car should do, against the speed it does.
//!
//! Expected speed is `rpm / ratio[gear]` wheel revolutions per minute times the wheel's
//! circumference. With the fixed ratios of the config, real FastF1 data disagrees with the
//! table by more than the spin margin in most of a race (the real ratios differ per car and
//! per track, and the feed's speed and rpm channels are not sampled together), so the default
//! `calibrated` mode learns each driver's own km/h-per-rpm per gear as the running median of
//! that driver's stable samples (same gear as the samples before it, on throttle, off the
//! brake) and judges a sample against that.

use crate::config::{WheelSpinConfig, WheelSpinMode};
use crate::record::Telemetry;
use serde::{Deserialize, Serialize};

/// What the detector thinks of one sample it could judge.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpinReading {
    pub expected_kmh: f64,
    /// (expected / actual - 1) × 100; negative when the car is faster than the engine says.
    pub spin_pct: f64,
    pub spinning: bool,
}

/// Median of a stream by stochastic approximation, seeded by the exact median of a warm-up.
#[derive(Clone, Debug, Default)]
struct RunningMedian {
    warmup: Vec<f64>,
    estimate: Option<f64>,
}

impl RunningMedian {
    /// Relative step of each update once warmed up.
    const STEP: f64 = 0.002;

    fn observe(&mut self, x: f64, warmup_len: usize) {
        match self.estimate.as_mut() {
            Some(q) => {
                let step = *q * Self::STEP;
                if x > *q {
                    *q += step;
                } else if x < *q {
                    *q -= step;
                }
            }
            None => {
                self.warmup.push(x);
                if self.warmup.len() >= warmup_len {
                    self.warmup.sort_by(f64::total_cmp);
                    self.estimate = Some(self.warmup[self.warmup.len() / 2]);
                    self.warmup = Vec::new();
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct WheelSpin {
    mode: WheelSpinMode,
    /// Fixed mode: km/h per engine rpm, gears 1..=8.
    fixed_kmh_per_rpm: [f64; 8],
    learned: [RunningMedian; 8],
    spin_factor: f64,
    min_speed_kmh: f64,
    min_throttle_pct: f64,
    warmup: usize,
    stable_gear_samples: u32,
    last_gear: u8,
    same_gear_run: u32,
}

impl WheelSpin {
    pub fn new(cfg: &WheelSpinConfig) -> Self {
        let circumference_km = 2.0 * std::f64::consts::PI * cfg.wheel_radius_m / 1000.0;
        WheelSpin {
            mode: cfg.mode,
            fixed_kmh_per_rpm: cfg.gear_ratios.map(|ratio| circumference_km * 60.0 / ratio),
            learned: Default::default(),
            spin_factor: cfg.spin_factor,
            min_speed_kmh: cfg.min_speed_kmh,
            min_throttle_pct: cfg.min_throttle_pct,
            warmup: cfg.calibration_samples.max(1) as usize,
            stable_gear_samples: cfg.stable_gear_samples,
            last_gear: u8::MAX,
            same_gear_run: 0,
        }
    }

    /// Judges a sample; `None` when it cannot be judged (no driving gear, too slow, off
    /// throttle, braking, or, in calibrated mode, a gear not learned yet).
    pub fn observe(&mut self, s: &Telemetry) -> Option<SpinReading> {
        if s.gear == self.last_gear {
            self.same_gear_run += 1;
        } else {
            self.last_gear = s.gear;
            self.same_gear_run = 0;
        }
        if !(1..=8).contains(&s.gear)
            || (s.speed as f64) < self.min_speed_kmh
            || s.rpm <= 0.0
            || s.brake
            || s.throttle_pct()
                .is_none_or(|t| (t as f64) < self.min_throttle_pct)
        {
            return None;
        }
        let g = (s.gear - 1) as usize;
        let kmh_per_rpm = match self.mode {
            WheelSpinMode::Fixed => self.fixed_kmh_per_rpm[g],
            WheelSpinMode::Calibrated => {
                let judged_with = self.learned[g].estimate;
                if self.same_gear_run >= self.stable_gear_samples {
                    self.learned[g].observe(s.speed as f64 / s.rpm as f64, self.warmup);
                }
                judged_with?
            }
        };
        let actual = s.speed as f64;
        let expected = s.rpm as f64 * kmh_per_rpm;
        Some(SpinReading {
            expected_kmh: expected,
            spin_pct: (expected / actual - 1.0) * 100.0,
            spinning: expected > actual * self.spin_factor,
        })
    }

    /// The km/h per rpm the detector uses for a gear (1..=8), if it has one yet.
    pub fn kmh_per_rpm(&self, gear: u8) -> Option<f64> {
        let g = (gear as usize).checked_sub(1).filter(|&g| g < 8)?;
        match self.mode {
            WheelSpinMode::Fixed => Some(self.fixed_kmh_per_rpm[g]),
            WheelSpinMode::Calibrated => self.learned[g].estimate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::DriverId;

    fn s(gear: u8, rpm: f32, speed: f32, throttle: f32, brake: bool) -> Telemetry {
        Telemetry {
            speed,
            rpm,
            throttle,
            gear,
            brake,
            ..Telemetry::at(DriverId::new("LEC").unwrap(), 0)
        }
    }

    fn fixed() -> WheelSpin {
        WheelSpin::new(&WheelSpinConfig {
            mode: WheelSpinMode::Fixed,
            ..Default::default()
        })
    }

    #[test]
    fn fixed_mode_matches_the_hand_computed_expected_speed() {
        let mut w = fixed();
        // Gear 8, ratio 4.0: 12000 rpm -> 3000 wheel rpm * 2π * 0.33 m = 6220.35 m/min = 373.22 km/h.
        let r = w.observe(&s(8, 12000.0, 373.22, 100.0, false)).unwrap();
        assert!((r.expected_kmh - 373.221).abs() < 0.01, "{r:?}");
        assert!(r.spin_pct.abs() < 0.01);
        assert!(!r.spinning);
        // Gear 1, ratio 13.0: 10400 rpm -> 800 wheel rpm -> 99.53 km/h; at 80 km/h that is 24.4 % spin.
        let r = w.observe(&s(1, 10400.0, 80.0, 100.0, false)).unwrap();
        assert!((r.expected_kmh - 99.526).abs() < 0.01, "{r:?}");
        assert!((r.spin_pct - 24.41).abs() < 0.01);
        assert!(r.spinning);
        // 14 % over is within the 1.15 margin.
        let r = w
            .observe(&s(1, 10400.0, 99.526 / 1.14, 100.0, false))
            .unwrap();
        assert!(!r.spinning);
    }

    #[test]
    fn samples_that_cannot_be_judged_are_skipped() {
        let mut w = fixed();
        assert!(
            w.observe(&s(0, 10000.0, 100.0, 100.0, false)).is_none(),
            "neutral"
        );
        assert!(
            w.observe(&s(12, 10000.0, 100.0, 100.0, false)).is_none(),
            "glitch gear"
        );
        assert!(
            w.observe(&s(3, 10000.0, 5.0, 100.0, false)).is_none(),
            "too slow"
        );
        assert!(
            w.observe(&s(3, 10000.0, 100.0, 0.0, false)).is_none(),
            "off throttle"
        );
        assert!(
            w.observe(&s(3, 10000.0, 100.0, 104.0, false)).is_none(),
            "sentinel"
        );
        assert!(
            w.observe(&s(3, 10000.0, 100.0, 100.0, true)).is_none(),
            "braking"
        );
    }

    #[test]
    fn calibrated_mode_learns_the_drivers_ratio_and_flags_deviation() {
        let mut w = WheelSpin::new(&WheelSpinConfig {
            calibration_samples: 5,
            ..Default::default()
        });
        // This car does 0.02 km/h per rpm in gear 4, far from the fixed table's 0.01777.
        let mut judged = 0;
        for _ in 0..20 {
            if let Some(r) = w.observe(&s(4, 10000.0, 200.0, 100.0, false)) {
                judged += 1;
                assert!(!r.spinning);
                assert!(r.spin_pct.abs() < 1e-9);
            }
        }
        // The first sample starts the gear's run, two more make it stable, five warm it up.
        assert_eq!(judged, 20 - 2 - 5);
        assert!((w.kmh_per_rpm(4).unwrap() - 0.02).abs() < 1e-12);
        // 20 % more rpm than the learned ratio explains: spin.
        let r = w.observe(&s(4, 12000.0, 200.0, 100.0, false)).unwrap();
        assert!(r.spinning);
        assert!((r.spin_pct - 20.0).abs() < 0.5);
        // A gear never seen is not judged.
        assert!(w.observe(&s(2, 10000.0, 100.0, 100.0, false)).is_none());
    }
}
