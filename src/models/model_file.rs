//! `config/pit_model.toml`: the pit-stop model and its two baselines, written by
//! `pitwall train`, embedded in the binary, replaceable with `--pit-model PATH`.

use crate::ingest::InputError;
use pitwall_dataflows::race::{Hazards, Models, PitModel};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The model file this build ships.
pub const EMBEDDED: &str = include_str!("../../config/pit_model.toml");

/// A logistic regression on tyre age alone: the first baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TyreAgeModel {
    pub intercept: f64,
    pub coefficient: f64,
}

impl TyreAgeModel {
    pub fn probability(&self, tyre_age_laps: f64) -> f64 {
        1.0 / (1.0 + (-(self.intercept + self.coefficient * tyre_age_laps)).exp())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baselines {
    /// Share of driver-laps followed by a stop within three laps in the training races.
    pub base_rate: f64,
    pub tyre_age: TyreAgeModel,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Driver-laps fitted on, and how many were followed by a stop within three laps.
    pub rows: usize,
    pub positives: usize,
    pub pit: PitModel,
    pub baseline: Baselines,
    /// Per-lap base rates of the causes crash_risk and tire_failure predict.
    pub hazards: Hazards,
}

impl ModelFile {
    pub fn parse(text: &str, origin: &str) -> Result<ModelFile, InputError> {
        let file: ModelFile =
            toml::from_str(text).map_err(|e| InputError::new(format!("{origin}: {e}")))?;
        file.pit
            .validate()
            .map_err(|e| InputError::new(format!("{origin}: {e}")))?;
        Ok(file)
    }

    /// The model at `path`, or the embedded one.
    pub fn load(path: Option<&Path>) -> Result<ModelFile, InputError> {
        match path {
            None => ModelFile::parse(EMBEDDED, "embedded config/pit_model.toml"),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| InputError::new(format!("{}: {e}", p.display())))?;
                ModelFile::parse(&text, &p.display().to_string())
            }
        }
    }

    pub fn models(&self) -> Models {
        Models {
            pit: self.pit.clone(),
            hazards: self.hazards.clone(),
            pit_base_rate: self.baseline.base_rate,
        }
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# The race models: the pit-stop model (logistic regression over standardized\n\
             # features) and the base rates crash_risk and tire_failure start from, written by\n\
             # `pitwall train` (deterministic; run it again to reproduce this file). Do not edit.\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_loads_and_round_trips() {
        let m = ModelFile::load(None).unwrap();
        assert!(m.rows > 1000 && m.positives > 0);
        let again = ModelFile::parse(&m.to_toml(), "round trip").unwrap();
        assert_eq!(again, m);
        let p = m.baseline.tyre_age.probability(20.0);
        assert!(p > 0.0 && p < 1.0);
    }

    #[test]
    fn a_model_for_other_features_is_refused_with_the_way_out() {
        let text = EMBEDDED.replace("\"tyre_age_laps\"", "\"tyre_temperature\"");
        let e = ModelFile::parse(&text, "x.toml").unwrap_err();
        assert!(
            e.0.contains("x.toml") && e.0.contains("pitwall train"),
            "{e}"
        );
    }
}
