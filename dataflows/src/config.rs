//! Thresholds and parameters of the detectors, deserialized from `config/pitwall.toml`.
//!
//! Every field has a default so that a partial file works; [`DetectorConfig::validate`] says
//! what is wrong with a bad one before the engine starts.

use crate::alert::Severity;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    pub windows: WindowConfig,
    pub wheel_spin: WheelSpinConfig,
    pub gear: GearConfig,
    pub alerts: AlertConfig,
    pub race: crate::race::RaceConfig,
    /// Set by the engine, not read from the file: the run a restart replays did not reach
    /// the end of its input, so the windows and episodes of a driver that is only replayed
    /// are still open and close (emitting) at this run's end. Off, a driver only replayed
    /// emits nothing at the end (the replaced run closed them, or an at-least-once restart
    /// cannot tell).
    #[serde(skip)]
    pub finish_replayed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WindowConfig {
    /// Size of the count-based rolling window per driver.
    pub rolling_samples: usize,
    /// Widths of the event-time tumbling windows, in ms; the rolling window is reported each
    /// time the first of them closes.
    pub tumbling_ms: Vec<i64>,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            rolling_samples: 1000,
            tumbling_ms: vec![1000, 5000],
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WheelSpinMode {
    /// Expected speed from the configured gear ratios.
    Fixed,
    /// Expected speed from ratios learned per driver and gear from that driver's stable samples.
    Calibrated,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WheelSpinConfig {
    pub mode: WheelSpinMode,
    pub wheel_radius_m: f64,
    /// Overall ratio (engine rpm / wheel rpm) of gears 1..=8.
    pub gear_ratios: [f64; 8],
    /// Spin when expected speed > actual × this factor.
    pub spin_factor: f64,
    /// Below this speed (km/h) a ratio of speeds means nothing.
    pub min_speed_kmh: f64,
    /// Spin is a matter of driving torque: samples under less throttle, or braking, are skipped.
    pub min_throttle_pct: f64,
    /// Calibrated mode: stable samples a gear needs before it is judged.
    pub calibration_samples: u32,
    /// Calibrated mode: a stable sample has the same gear as the `stable_gear_samples` before it.
    pub stable_gear_samples: u32,
    pub consecutive: u32,
    pub severity: Severity,
}

impl Default for WheelSpinConfig {
    fn default() -> Self {
        WheelSpinConfig {
            mode: WheelSpinMode::Calibrated,
            wheel_radius_m: 0.33,
            gear_ratios: [13.0, 10.5, 8.5, 7.0, 6.0, 5.2, 4.5, 4.0],
            spin_factor: 1.15,
            min_speed_kmh: 20.0,
            min_throttle_pct: 10.0,
            calibration_samples: 40,
            stable_gear_samples: 2,
            consecutive: 2,
            severity: Severity::Medium,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GearConfig {
    /// Lugging: `calibrated` (default) judges each driver and gear under full load against the
    /// driver's own RPM distribution; `fixed` is the seeds' rule (gear > `lugging_above_gear`
    /// and rpm < `lugging_max_rpm`, whatever the load).
    pub lugging_mode: LuggingMode,
    /// Lugging: gear > `lugging_above_gear` and rpm < `lugging_max_rpm`.
    pub lugging_above_gear: u8,
    pub lugging_max_rpm: f64,
    /// Calibrated: under load means throttle at least this (%) and faster than `lugging_min_kmh`
    /// (the pit lane and the slowest running are not judged).
    pub lugging_min_throttle_pct: f64,
    pub lugging_min_kmh: f64,
    /// Calibrated: rpm below the driver's `lugging_quantile` for that gear under load by more
    /// than `lugging_margin_rpm`, once `lugging_warmup_samples` were seen in that gear.
    pub lugging_quantile: f64,
    pub lugging_margin_rpm: f64,
    pub lugging_warmup_samples: u32,
    /// Over-revving: a gear below `over_rev_below_gear` (neutral excluded) and rpm > `over_rev_min_rpm`.
    pub over_rev_below_gear: u8,
    pub over_rev_min_rpm: f64,
    /// Rapid shifting: more than `rapid_max_shifts` gear changes within `rapid_window_ms`.
    pub rapid_max_shifts: usize,
    pub rapid_window_ms: i64,
    /// Samples in a row a gear anomaly needs before it is raised.
    pub consecutive: u32,
    pub lugging_severity: Severity,
    pub over_rev_severity: Severity,
    pub rapid_shift_severity: Severity,
    pub invalid_gear_severity: Severity,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LuggingMode {
    Fixed,
    Calibrated,
}

impl Default for GearConfig {
    fn default() -> Self {
        GearConfig {
            lugging_mode: LuggingMode::Calibrated,
            lugging_above_gear: 3,
            lugging_max_rpm: 8000.0,
            lugging_min_throttle_pct: 95.0,
            lugging_min_kmh: 100.0,
            lugging_quantile: 0.01,
            lugging_margin_rpm: 400.0,
            lugging_warmup_samples: 100,
            over_rev_below_gear: 5,
            over_rev_min_rpm: 13000.0,
            rapid_max_shifts: 6,
            rapid_window_ms: 2000,
            consecutive: 2,
            lugging_severity: Severity::Low,
            over_rev_severity: Severity::High,
            rapid_shift_severity: Severity::Low,
            invalid_gear_severity: Severity::Medium,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    pub high_speed_kmh: f64,
    pub brake_temp_medium_c: f64,
    pub brake_temp_high_c: f64,
    /// Brake-temperature alerts from pitwall's own estimate (when the source measures no
    /// temperature). Off by default: the estimate is unvalidated, so it is served as a series
    /// (`/api/series?metric=brake_temp`), not alerted on. Measured temperatures always are.
    pub brake_alerts_on_estimate: bool,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            high_speed_kmh: 300.0,
            brake_temp_medium_c: 600.0,
            brake_temp_high_c: 800.0,
            brake_alerts_on_estimate: false,
        }
    }
}

/// A setting that would make the engine meaningless: which one, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The key, as the configuration file spells it (`windows.rolling_samples`).
    pub setting: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> Invalid {
        Invalid {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.setting, self.reason)
    }
}

impl std::error::Error for Invalid {}

impl DetectorConfig {
    /// Checks the values that would make a detector meaningless; the message names the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        let w = &self.windows;
        if w.rolling_samples == 0 {
            return Err(Invalid::new(
                "windows.rolling_samples",
                "must be at least 1",
            ));
        }
        if w.tumbling_ms.is_empty() || w.tumbling_ms.iter().any(|&ms| ms <= 0) {
            return Err(Invalid::new(
                "windows.tumbling_ms",
                "must list at least one positive width in ms",
            ));
        }
        let s = &self.wheel_spin;
        if !(s.wheel_radius_m > 0.0 && s.wheel_radius_m < 2.0) {
            return Err(Invalid::new(
                "wheel_spin.wheel_radius_m",
                format!("= {} is not a wheel radius in metres", s.wheel_radius_m),
            ));
        }
        if s.gear_ratios.iter().any(|&r| !(r > 0.0 && r.is_finite())) {
            return Err(Invalid::new(
                "wheel_spin.gear_ratios",
                "must be 8 positive numbers",
            ));
        }
        if s.spin_factor.is_nan() || s.spin_factor <= 1.0 {
            return Err(Invalid::new(
                "wheel_spin.spin_factor",
                format!("= {} must be above 1.0", s.spin_factor),
            ));
        }
        if s.consecutive == 0 || self.gear.consecutive == 0 {
            return Err(Invalid::new(
                "wheel_spin.consecutive",
                "and gear.consecutive must be at least 1",
            ));
        }
        if self.gear.rapid_window_ms <= 0 {
            return Err(Invalid::new("gear.rapid_window_ms", "must be positive"));
        }
        let a = &self.alerts;
        if a.brake_temp_high_c <= a.brake_temp_medium_c {
            return Err(Invalid::new(
                "alerts.brake_temp_high_c",
                "must be above alerts.brake_temp_medium_c",
            ));
        }
        let r = &self.race;
        if !(1..=120_000).contains(&r.pit_loss_prior_ms) {
            return Err(Invalid::new(
                "race.pit_loss_prior_ms",
                format!("= {} must be 1..=120000", r.pit_loss_prior_ms),
            ));
        }
        if !(r.lap_length_m == 0.0 || (100.0..=100_000.0).contains(&r.lap_length_m)) {
            return Err(Invalid::new(
                "race.lap_length_m",
                format!(
                    "= {} must be 0 (off) or a circuit's length, 100..=100000 m",
                    r.lap_length_m
                ),
            ));
        }
        if r.neutralised_exit_pace_permille > r.neutralised_pace_permille {
            return Err(Invalid::new(
                "race.neutralised_exit_pace_permille",
                format!(
                    "= {} must not be above race.neutralised_pace_permille ({})",
                    r.neutralised_exit_pace_permille, r.neutralised_pace_permille
                ),
            ));
        }
        if !(r.pit_loss_neutralised_share > 0.0 && r.pit_loss_neutralised_share <= 1.0) {
            return Err(Invalid::new(
                "race.pit_loss_neutralised_share",
                format!("= {} must be in (0, 1]", r.pit_loss_neutralised_share),
            ));
        }
        Ok(())
    }
}
