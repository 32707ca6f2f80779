//! `pitwall train`: fits the pit-stop model on real races.
//!
//! Each training race is run through the engine as any input is (same sources, same dataflow,
//! the same features the live engine computes), and every completed driver-lap becomes one
//! example: its [`pit_features`] and whether that driver's in-lap, per the race's laps table,
//! is one of the next three laps. A logistic regression (linfa) is fitted on standardized
//! features, and a tyre-age-only regression and the base rate beside it as baselines.
//! Deterministic: the same races give the same file.

use super::model_file::{Baselines, ModelFile, TyreAgeModel};
use super::scores::auc;
use super::truth::{RaceFolder, Truth};
use crate::ingest::InputError;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use pitwall_dataflows::race::predict::{pit_features, PIT_FEATURES};
use pitwall_dataflows::race::{Hazards, LapRow, PitModel, RaceBook};

/// Laps ahead a stop is predicted over.
pub const HORIZON_LAPS: u16 = 3;
/// L2 penalty of the fit: the training races are few, the features correlated.
const ALPHA: f64 = 10.0;
/// A feature is fitted only if at least this many training rows take another value than its
/// most common one, and this many of those are laps before a stop: a coefficient learned
/// from a handful of rows is noise, and standardized by their tiny spread it would weigh
/// dozens of standard deviations on a lap that shows the feature (the training races have 3
/// driver-laps judged in the rain, none before a stop).
const MIN_ROWS_SHOWN: usize = 30;
const MIN_STOPS_SHOWN: usize = 5;

/// Examples from one race: features and labels.
pub struct Examples {
    pub race: String,
    pub features: Vec<[f64; PIT_FEATURES.len()]>,
    pub tyre_age: Vec<f64>,
    pub labels: Vec<bool>,
}

impl Examples {
    pub fn of(race: &str, book: &RaceBook, truth: &Truth) -> Examples {
        let rows: Vec<&LapRow> = book.laps().collect();
        Examples {
            race: race.to_string(),
            features: rows.iter().map(|r| pit_features(r)).collect(),
            tyre_age: rows.iter().map(|r| r.lap.tyre_age_laps as f64).collect(),
            labels: rows
                .iter()
                .map(|r| truth.stop_within(r.lap.done.driver, r.lap.done.lap, HORIZON_LAPS))
                .collect(),
        }
    }
}

/// Intercept and coefficients of the probability of `true`: linfa models the more frequent
/// class as the positive one, so the signs flip when laps before a stop are the rarer class.
fn toward_true(m: &linfa_logistic::FittedLogisticRegression<f64, bool>) -> (f64, Vec<f64>) {
    let sign = if m.labels().pos.class { 1.0 } else { -1.0 };
    (
        sign * m.intercept(),
        m.params().iter().map(|c| sign * c).collect(),
    )
}

fn fit_error(e: impl std::fmt::Display) -> InputError {
    InputError::new(format!("fitting the pit model: {e}"))
}

/// Fits the model and its baselines on the examples of all training races.
pub fn fit(races: &[Examples], hazards: Hazards) -> Result<ModelFile, InputError> {
    let k = PIT_FEATURES.len();
    let rows: Vec<&[f64; PIT_FEATURES.len()]> =
        races.iter().flat_map(|r| r.features.iter()).collect();
    let labels: Vec<bool> = races
        .iter()
        .flat_map(|r| r.labels.iter().copied())
        .collect();
    let n = rows.len();
    let positives = labels.iter().filter(|&&y| y).count();
    if positives == 0 || positives == n {
        return Err(fit_error(
            "the training laps need both laps before a stop and laps not",
        ));
    }
    let mut mean = vec![0.0; k];
    let mut scale = vec![0.0; k];
    let fitted: Vec<bool> = (0..k)
        .map(|j| {
            let (rows_shown, stops_shown) = shown(&rows, &labels, j);
            rows_shown >= MIN_ROWS_SHOWN && stops_shown >= MIN_STOPS_SHOWN
        })
        .collect();
    for j in 0..k {
        mean[j] = rows.iter().map(|r| r[j]).sum::<f64>() / n as f64;
        let var = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n as f64;
        scale[j] = if var > 1e-12 { var.sqrt() } else { 1.0 };
    }
    // A feature not fitted enters as a column of zeros: the penalty keeps its coefficient 0.
    let x = Array2::from_shape_fn((n, k), |(i, j)| {
        if fitted[j] {
            (rows[i][j] - mean[j]) / scale[j]
        } else {
            0.0
        }
    });
    let y = Array1::from(labels.clone());
    let model = LogisticRegression::default()
        .alpha(ALPHA)
        .max_iterations(1000)
        .fit(&Dataset::new(x, y.clone()))
        .map_err(fit_error)?;

    let ages: Vec<f64> = races
        .iter()
        .flat_map(|r| r.tyre_age.iter().copied())
        .collect();
    let age_x = Array2::from_shape_fn((n, 1), |(i, _)| ages[i]);
    let age_model = LogisticRegression::default()
        .alpha(1e-3)
        .max_iterations(1000)
        .fit(&Dataset::new(age_x, y))
        .map_err(fit_error)?;

    let (intercept, mut coefficients) = toward_true(&model);
    for (c, &f) in coefficients.iter_mut().zip(&fitted) {
        if !f {
            *c = 0.0;
        }
    }
    let (age_intercept, age_coefficient) = toward_true(&age_model);
    Ok(ModelFile {
        rows: n,
        positives,
        pit: PitModel {
            trained_on: races.iter().map(|r| r.race.clone()).collect(),
            features: PIT_FEATURES.iter().map(|s| s.to_string()).collect(),
            not_fitted: PIT_FEATURES
                .iter()
                .zip(&fitted)
                .filter(|(_, &f)| !f)
                .map(|(s, _)| s.to_string())
                .collect(),
            mean,
            scale,
            intercept,
            coefficients,
        },
        baseline: Baselines {
            base_rate: positives as f64 / n as f64,
            tyre_age: TyreAgeModel {
                intercept: age_intercept,
                coefficient: age_coefficient[0],
            },
        },
        hazards,
    })
}

/// How many rows take another value of feature `j` than its most common one, and how many
/// of those are laps before a stop.
fn shown(rows: &[&[f64; PIT_FEATURES.len()]], labels: &[bool], j: usize) -> (usize, usize) {
    let mut values: Vec<u64> = rows.iter().map(|r| r[j].to_bits()).collect();
    values.sort_unstable();
    let mut common = (0, 0u64);
    for run in values.chunk_by(|a, b| a == b) {
        if run.len() > common.0 {
            common = (run.len(), run[0]);
        }
    }
    let away = |r: &[f64; PIT_FEATURES.len()]| r[j].to_bits() != common.1;
    let rows_shown = rows.iter().filter(|r| away(r)).count();
    let stops_shown = rows
        .iter()
        .zip(labels)
        .filter(|(r, &y)| y && away(r))
        .count();
    (rows_shown, stops_shown)
}

/// In-sample AUC of the model on one race's examples (for the training report).
pub fn in_sample_auc(model: &ModelFile, ex: &Examples) -> Option<f64> {
    let p: Vec<f64> = ex
        .features
        .iter()
        .map(|x| model.pit.probability(x))
        .collect();
    auc(&p, &ex.labels)
}

/// The race folders and their truth, checked before anything runs.
pub fn races(dirs: &[std::path::PathBuf]) -> Result<Vec<(RaceFolder, Truth)>, InputError> {
    dirs.iter()
        .map(|d| {
            let race = RaceFolder::find(d)?;
            let truth = Truth::load(&race.laps)?;
            Ok((race, truth))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitwall_dataflows::race::LapHazard;

    #[test]
    fn a_feature_shown_on_a_handful_of_laps_is_not_fitted() {
        let k = PIT_FEATURES.len();
        let rain = PIT_FEATURES.iter().position(|&f| f == "rain").unwrap();
        // 400 laps: the stop comes when the tyres are old; every feature varies, but it
        // rains on 3 laps only, all 3 before a stop.
        let features: Vec<[f64; PIT_FEATURES.len()]> = (0..400)
            .map(|i| {
                let mut x = [0.0; PIT_FEATURES.len()];
                for (j, v) in x.iter_mut().enumerate() {
                    *v = ((i * (j + 3)) % 17) as f64;
                }
                x[0] = (i % 40) as f64;
                x[rain] = if i % 40 >= 37 && i < 120 { 1.0 } else { 0.0 };
                x
            })
            .collect();
        let labels: Vec<bool> = (0..400).map(|i| i % 40 >= 36).collect();
        let ex = Examples {
            race: "test".into(),
            tyre_age: features.iter().map(|x| x[0]).collect(),
            features,
            labels,
        };
        let none = LapHazard {
            lap_1: 0.0,
            laps_2_3: 0.0,
            later: 0.0,
        };
        let hazards = Hazards {
            counted_from: String::new(),
            car_laps: 0,
            crash: none,
            tyre: none,
        };
        let m = fit(&[ex], hazards).unwrap();
        assert_eq!(m.pit.not_fitted, vec!["rain".to_string()]);
        assert_eq!(m.pit.coefficients[rain], 0.0);
        assert!(m.pit.coefficients[0] > 0.5, "{:?}", m.pit.coefficients);
        assert_eq!(m.pit.coefficients.len(), k);
        // On a rainy lap the model says what it says on the same lap without rain.
        let mut wet = [5.0; PIT_FEATURES.len()];
        let dry = wet;
        wet[rain] = 1.0;
        assert_eq!(m.pit.probability(&wet), m.pit.probability(&dry));
    }
}
