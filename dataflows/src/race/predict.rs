//! The three models on `f1-predictions`, one prediction per driver per completed lap and model.
//!
//! Each is a function of one lap row (the driver's lap joined with its position and the field's
//! state), so predictions follow the rows: a corrected row retracts its predictions and issues
//! new ones.
//! - `pit_stop_probability`: that the driver's in-lap is one of the next three laps. A logistic
//!   regression over [`pit_features`], fitted offline by `pitwall train` on the training races
//!   and loaded from `config/pit_model.toml`.
//! - `tire_failure`: that the tyres are past their useful life: time lost against the stint's
//!   best lap, its trend, tyre age and traction loss against the race's rate.
//! - `crash_risk`: what the stream sees of a car on the edge: lock-up/impact-like decelerations,
//!   traction loss, rain, a neutralised field (something happened), gear glitches, and an
//!   erratic pace.
//!
//! The last two are stated rules with fixed weights, not fitted: the training races have too
//! few tyre failures and crashes to fit anything honestly. `pitwall evaluate` reports how they
//! rank what really happened.

use super::{FieldState, LapRow};
use crate::config::Invalid;
use crate::record::DriverId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelType {
    CrashRisk = 0,
    TireFailure = 1,
    PitStopProbability = 2,
}

impl ModelType {
    pub const ALL: [ModelType; 3] = [
        ModelType::CrashRisk,
        ModelType::TireFailure,
        ModelType::PitStopProbability,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ModelType::CrashRisk => "crash_risk",
            ModelType::TireFailure => "tire_failure",
            ModelType::PitStopProbability => "pit_stop_probability",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// A prediction as the views hold it (integers, so that it is `Ord`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Prediction {
    pub driver: DriverId,
    pub lap: u16,
    pub model: ModelType,
    /// End of the lap the prediction was issued at (epoch ms).
    pub ts_ms: i64,
    /// Parts per million.
    pub probability_ppm: u32,
    pub confidence_ppm: u32,
}

impl Prediction {
    pub fn probability(&self) -> f64 {
        self.probability_ppm as f64 / 1e6
    }

    pub fn confidence(&self) -> f64 {
        self.confidence_ppm as f64 / 1e6
    }

    pub fn risk_level(&self) -> &'static str {
        match self.probability() {
            p if p >= 0.6 => "high",
            p if p >= 0.3 => "medium",
            _ => "low",
        }
    }
}

/// Names of the pit model's inputs, in order; the model file must list the same.
pub const PIT_FEATURES: [&str; 11] = [
    "tyre_age_laps",
    "stops_made",
    "first_stint_age",
    "stint_loss_s",
    "trend_s_per_lap",
    "neutralised",
    "rain",
    "rivals_pitted",
    "field_pace",
    "spin_vs_field",
    "position",
];

/// The pit model's inputs for one lap row.
pub fn pit_features(r: &LapRow) -> [f64; 11] {
    let l = &r.lap;
    let f = &r.field;
    let age = l.tyre_age_laps as f64;
    [
        age,
        l.pit_count as f64,
        if l.pit_count == 0 { age } else { 0.0 },
        (l.stint_loss_ms as f64 / 1000.0).clamp(0.0, 10.0),
        (l.trend_ms_per_lap as f64 / 1000.0).clamp(-2.0, 2.0),
        (f.state == FieldState::Neutralised) as u8 as f64,
        (f.state == FieldState::Rain) as u8 as f64,
        (f.rivals_pitted as f64).min(10.0),
        if f.pace_permille > 0 {
            (f.pace_permille as f64 / 1000.0 - 1.0).clamp(0.0, 1.0)
        } else {
            0.0
        },
        spin_vs_field(r),
        r.standing.position as f64,
    ]
}

/// The driver's wheel-spin rate on this lap against the race's green rate (1 = usual).
fn spin_vs_field(r: &LapRow) -> f64 {
    let d = &r.lap.done;
    let base = r.field.spin_baseline_per_10k.max(1) as f64;
    if d.samples == 0 || r.field.spin_baseline_per_10k == 0 {
        return 1.0;
    }
    (d.spin_samples as f64 * 10_000.0 / d.samples as f64 / base).clamp(0.0, 10.0)
}

/// A fitted logistic regression over standardized features.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PitModel {
    /// What it was fitted on, for people.
    #[serde(default)]
    pub trained_on: Vec<String>,
    pub features: Vec<String>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub intercept: f64,
    pub coefficients: Vec<f64>,
}

impl PitModel {
    /// Checks that the model fits the features this build computes.
    pub fn validate(&self) -> Result<(), Invalid> {
        let names: Vec<&str> = self.features.iter().map(String::as_str).collect();
        if names != PIT_FEATURES {
            return Err(Invalid::new("pit", format!("model features {names:?} differ from this build's {PIT_FEATURES:?}: retrain with `pitwall train`"
            )));
        }
        let n = PIT_FEATURES.len();
        if self.mean.len() != n || self.scale.len() != n || self.coefficients.len() != n {
            return Err(Invalid::new(
                "pit",
                format!("model needs {n} means, scales and coefficients"),
            ));
        }
        if self.scale.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(Invalid::new("pit", "model scales must be positive"));
        }
        Ok(())
    }

    pub fn probability(&self, x: &[f64]) -> f64 {
        let z = self.intercept
            + x.iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .zip(&self.coefficients)
                .map(|(((x, m), s), c)| (x - m) / s * c)
                .sum::<f64>();
        sigmoid(z)
    }
}

/// The models the engine runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Models {
    pub pit: PitModel,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Tyre past its useful life: loss against the stint's best, its trend, age, traction.
pub fn tire_failure(r: &LapRow) -> f64 {
    let l = &r.lap;
    let loss_s = (l.stint_loss_ms as f64 / 1000.0).clamp(0.0, 10.0);
    let trend_s = (l.trend_ms_per_lap as f64 / 1000.0).clamp(0.0, 2.0);
    let z = -4.0
        + 0.9 * loss_s
        + 2.0 * trend_s
        + 0.04 * l.tyre_age_laps as f64
        + 0.6 * (spin_vs_field(r) - 1.0).max(0.0);
    sigmoid(z)
}

/// A car on the edge: impact-like decelerations, traction loss, rain, neutralisations, glitches
/// and an erratic pace.
pub fn crash_risk(r: &LapRow) -> f64 {
    let d = &r.lap.done;
    let f = &r.field;
    let z = -4.5
        + 0.8 * (d.hard_decels as f64).min(5.0)
        + 0.7 * (spin_vs_field(r) - 1.0).clamp(0.0, 4.0)
        + 1.5 * (f.state == FieldState::Rain) as u8 as f64
        + 1.0 * (f.state == FieldState::Neutralised) as u8 as f64
        + 0.5 * (d.glitch_gears as f64).min(4.0)
        + 0.05 * (r.lap.spread_permille as f64).min(40.0);
    sigmoid(z)
}

/// The three predictions for one lap row.
pub fn predictions(r: &LapRow, models: &Models) -> [Prediction; 3] {
    let make = |model, p: f64| {
        let p = p.clamp(0.0, 1.0);
        Prediction {
            driver: r.lap.done.driver,
            lap: r.lap.done.lap,
            model,
            ts_ms: r.lap.done.end_ms,
            probability_ppm: (p * 1e6).round() as u32,
            confidence_ppm: (p.max(1.0 - p) * 1e6).round() as u32,
        }
    };
    [
        make(ModelType::CrashRisk, crash_risk(r)),
        make(ModelType::TireFailure, tire_failure(r)),
        make(
            ModelType::PitStopProbability,
            models.pit.probability(&pit_features(r)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_must_match_the_features_of_the_build() {
        let n = PIT_FEATURES.len();
        let mut m = PitModel {
            trained_on: vec![],
            features: PIT_FEATURES.iter().map(|s| s.to_string()).collect(),
            mean: vec![0.0; n],
            scale: vec![1.0; n],
            intercept: 0.0,
            coefficients: vec![0.0; n],
        };
        assert!(m.validate().is_ok());
        assert!((m.probability(&[1.0; 11]) - 0.5).abs() < 1e-12);
        m.coefficients[0] = 1.0;
        assert!(m.probability(&[3.0; 11]) > 0.9);
        m.features.swap(0, 1);
        assert!(m.validate().unwrap_err().to_string().contains("retrain"));
    }

    #[test]
    fn model_names_round_trip() {
        for m in ModelType::ALL {
            assert_eq!(ModelType::parse(m.as_str()), Some(m));
        }
        assert_eq!(ModelType::parse("x"), None);
    }
}
