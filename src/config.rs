//! One typed configuration, loaded from `config/pitwall.toml` (embedded) or `--config PATH`,
//! then overridden by flags, and validated before anything starts.

use crate::kafka::KafkaConfig;
use crate::source::sim::SimConfig;
use pitwall_dataflows::config::{AlertConfig, GearConfig, WheelSpinConfig, WindowConfig};
use pitwall_dataflows::DetectorConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The configuration shipped with pitwall.
pub const DEFAULT_TOML: &str = include_str!("../config/pitwall.toml");

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub epoch_ms: i64,
    pub batch: usize,
    pub progress_interval_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            epoch_ms: 1000,
            batch: 4096,
            progress_interval_ms: 1000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Points kept per driver for the series endpoints.
    pub points_per_driver: usize,
    /// Window aggregates kept per driver.
    pub windows_per_driver: usize,
    /// Recent alerts kept.
    pub max_alerts: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            points_per_driver: 60_000,
            windows_per_driver: 7_200,
            max_alerts: 10_000,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PitwallConfig {
    pub engine: EngineConfig,
    pub simulator: SimConfig,
    pub windows: WindowConfig,
    pub wheel_spin: WheelSpinConfig,
    pub gear: GearConfig,
    pub alerts: AlertConfig,
    pub kafka: KafkaConfig,
    pub http: HttpConfig,
}

impl PitwallConfig {
    /// Loads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<PitwallConfig, String> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p)
                    .map_err(|e| format!("config {}: cannot read: {e}", p.display()))?,
                p.display().to_string(),
            ),
            None => (
                DEFAULT_TOML.to_string(),
                "embedded config/pitwall.toml".to_string(),
            ),
        };
        let cfg: PitwallConfig =
            toml::from_str(&text).map_err(|e| format!("config {origin}: {e}"))?;
        cfg.validate()
            .map_err(|e| format!("config {origin}: {e}"))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.engine.epoch_ms <= 0 {
            return Err("engine.epoch_ms must be positive".into());
        }
        if self.engine.batch == 0 {
            return Err("engine.batch must be at least 1".into());
        }
        self.simulator.validate()?;
        self.kafka.validate()?;
        self.detectors().validate()
    }

    pub fn detectors(&self) -> DetectorConfig {
        DetectorConfig {
            windows: self.windows.clone(),
            wheel_spin: self.wheel_spin.clone(),
            gear: self.gear.clone(),
            alerts: self.alerts.clone(),
            race: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_the_built_in_default() {
        let shipped = PitwallConfig::load(None).unwrap();
        assert_eq!(shipped, PitwallConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = toml::from_str::<PitwallConfig>("[gear]\nluging_max_rpm = 1.0\n").unwrap_err();
        assert!(err.to_string().contains("luging_max_rpm"), "{err}");
        let cfg: PitwallConfig = toml::from_str("[alerts]\nbrake_temp_high_c = 100.0\n").unwrap();
        assert!(cfg.validate().unwrap_err().contains("brake_temp_high_c"));
        let cfg: PitwallConfig = toml::from_str("[windows]\ntumbling_ms = []\n").unwrap();
        assert!(cfg.validate().unwrap_err().contains("tumbling_ms"));
    }
}
