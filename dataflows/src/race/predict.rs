//! The three models on `f1-predictions`, one prediction per driver per completed lap and model.
//!
//! Each is a function of one lap row (the driver's lap joined with its position and the field's
//! state), so predictions follow the rows: a corrected row retracts its predictions and issues
//! new ones.
//! - `pit_stop_probability`: that the driver's in-lap is one of the next three laps. A logistic
//!   regression over [`pit_features`], fitted offline by `pitwall train` on the training races
//!   and loaded from `config/pit_model.toml`.
//! - `crash_risk`: that the car's race ends in an accident or collision within the next three
//!   laps.
//! - `tire_failure`: that a tyre failure (tyre, puncture) ends the car's race within the next
//!   three laps.
//!
//! The last two start from the history's base rate of their cause on each lap ([`Hazards`]:
//! every race's results, fitted by `pitwall train`), times a stated relative risk from what
//! the stream shows of the car (bounded, 1 on an unremarkable lap): the training races have
//! too few crashes and tyre failures to fit more honestly. Every prediction carries its base
//! rate, so a rare event can stand out as a multiple of it without a large probability.

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
    /// The event's base rate over the same horizon (parts per million): the history's for
    /// crashes and tyre failures at this lap, the training races' for pit stops.
    pub base_ppm: u32,
}

impl Prediction {
    pub fn probability(&self) -> f64 {
        self.probability_ppm as f64 / 1e6
    }

    pub fn confidence(&self) -> f64 {
        self.confidence_ppm as f64 / 1e6
    }

    pub fn base_rate(&self) -> f64 {
        self.base_ppm as f64 / 1e6
    }

    /// How many times its base rate the probability is.
    pub fn times_base(&self) -> f64 {
        if self.base_ppm == 0 {
            return 1.0;
        }
        self.probability_ppm as f64 / self.base_ppm as f64
    }

    /// Against the base rate: four times it or more is high, twice medium.
    pub fn risk_level(&self) -> &'static str {
        match self.times_base() {
            x if x >= 4.0 => "high",
            x if x >= 2.0 => "medium",
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
    /// Features the training rows show too rarely to fit (coefficient 0), for people.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_fitted: Vec<String>,
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

/// The per-lap probability that a car's race ends by one cause, from the history's results:
/// on the opening lap, on laps 2 and 3, and on any later lap.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LapHazard {
    pub lap_1: f64,
    pub laps_2_3: f64,
    pub later: f64,
}

impl LapHazard {
    pub fn at(&self, lap: u16) -> f64 {
        match lap {
            0 | 1 => self.lap_1,
            2 | 3 => self.laps_2_3,
            _ => self.later,
        }
    }

    /// That the race ends by this cause within the `HORIZON` laps after `lap`, with the
    /// per-lap hazard multiplied by `relative_risk`.
    pub fn within_horizon(&self, lap: u16, relative_risk: f64) -> f64 {
        let survive: f64 = (1..=HORIZON)
            .map(|k| 1.0 - (self.at(lap.saturating_add(k)) * relative_risk).clamp(0.0, 0.5))
            .product();
        1.0 - survive
    }
}

/// The laps a prediction looks ahead.
pub const HORIZON: u16 = 3;

/// Base rates of the two causes crash_risk and tire_failure predict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hazards {
    /// What they were counted from, for people.
    pub counted_from: String,
    pub car_laps: u64,
    /// Accident, collision, spun off, collision damage.
    pub crash: LapHazard,
    /// Tyre, puncture.
    pub tyre: LapHazard,
}

/// The largest relative risk the stream can give a car (over its base rate).
pub const MAX_RELATIVE_RISK: f64 = 8.0;

/// The models the engine runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Models {
    pub pit: PitModel,
    pub hazards: Hazards,
    /// The pit model's base rate (stops within the horizon in the training races).
    pub pit_base_rate: f64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// tire_failure's relative risk: tyres past their useful life (time lost against the stint's
/// best lap beyond a second, a worsening trend, laps beyond 25 on the set) and traction loss
/// beyond the race's rate. 1 on an unremarkable lap.
pub fn tire_relative_risk(r: &LapRow) -> f64 {
    let l = &r.lap;
    let loss_s = (l.stint_loss_ms as f64 / 1000.0 - 1.0).clamp(0.0, 4.0);
    let trend_s = (l.trend_ms_per_lap as f64 / 1000.0).clamp(0.0, 1.0);
    let age = (l.tyre_age_laps as f64 - 25.0).clamp(0.0, 30.0);
    let spin = (spin_vs_field(r) - 1.5).clamp(0.0, 3.0);
    (0.35 * loss_s + 0.7 * trend_s + 0.02 * age + 0.2 * spin)
        .exp()
        .min(MAX_RELATIVE_RISK)
}

/// crash_risk's relative risk: a car on the edge (impact-like decelerations, traction loss
/// beyond the race's rate, gear glitches) and a wet track. 1 on an unremarkable dry lap.
pub fn crash_relative_risk(r: &LapRow) -> f64 {
    let d = &r.lap.done;
    let f = &r.field;
    let decels = (d.hard_decels as f64).min(4.0);
    let spin = (spin_vs_field(r) - 1.5).clamp(0.0, 3.0);
    let rain = (f.state == FieldState::Rain) as u8 as f64;
    let glitches = (d.glitch_gears as f64).min(2.0);
    (0.35 * decels + 0.25 * spin + 0.7 * rain + 0.2 * glitches)
        .exp()
        .min(MAX_RELATIVE_RISK)
}

/// That the car's race ends in an accident or collision within the horizon; and its base rate.
pub fn crash_risk(r: &LapRow, h: &Hazards) -> (f64, f64) {
    let lap = r.lap.done.lap;
    (
        h.crash.within_horizon(lap, crash_relative_risk(r)),
        h.crash.within_horizon(lap, 1.0),
    )
}

/// That a tyre failure ends the car's race within the horizon; and its base rate.
pub fn tire_failure(r: &LapRow, h: &Hazards) -> (f64, f64) {
    let lap = r.lap.done.lap;
    (
        h.tyre.within_horizon(lap, tire_relative_risk(r)),
        h.tyre.within_horizon(lap, 1.0),
    )
}

/// The three predictions for one lap row.
pub fn predictions(r: &LapRow, models: &Models) -> [Prediction; 3] {
    let ppm = |p: f64| (p.clamp(0.0, 1.0) * 1e6).round() as u32;
    let make = |model, (p, base): (f64, f64)| {
        let p = p.clamp(0.0, 1.0);
        Prediction {
            driver: r.lap.done.driver,
            lap: r.lap.done.lap,
            model,
            ts_ms: r.lap.done.end_ms,
            probability_ppm: ppm(p),
            confidence_ppm: ppm(p.max(1.0 - p)),
            base_ppm: ppm(base),
        }
    };
    [
        make(ModelType::CrashRisk, crash_risk(r, &models.hazards)),
        make(ModelType::TireFailure, tire_failure(r, &models.hazards)),
        make(
            ModelType::PitStopProbability,
            (
                models.pit.probability(&pit_features(r)),
                models.pit_base_rate,
            ),
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
            not_fitted: vec![],
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
