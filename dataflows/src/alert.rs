//! Alerts: one per episode of a condition, with a deterministic id.

use crate::record::DriverId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of pitwall's UUIDv5 alert ids (itself UUIDv5("pitwall") in the URL namespace).
pub const ALERT_NAMESPACE: Uuid = Uuid::from_bytes([
    0x3c, 0x1f, 0x7a, 0x52, 0x0e, 0x61, 0x5b, 0x8e, 0x9d, 0x41, 0x2a, 0x6f, 0x13, 0xc0, 0x77, 0xb5,
]);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::High, Severity::Medium, Severity::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    HighSpeed,
    DrsActivated,
    DrsDeactivated,
    BrakeTemperature,
    WheelSpin,
    Lugging,
    OverRevving,
    RapidShifting,
    InvalidGear,
    Retirement,
    CarHealth,
}

impl AlertType {
    pub const ALL: [AlertType; 11] = [
        AlertType::HighSpeed,
        AlertType::DrsActivated,
        AlertType::DrsDeactivated,
        AlertType::BrakeTemperature,
        AlertType::WheelSpin,
        AlertType::Lugging,
        AlertType::OverRevving,
        AlertType::RapidShifting,
        AlertType::InvalidGear,
        AlertType::Retirement,
        AlertType::CarHealth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::HighSpeed => "high_speed",
            AlertType::DrsActivated => "drs_activated",
            AlertType::DrsDeactivated => "drs_deactivated",
            AlertType::BrakeTemperature => "brake_temperature",
            AlertType::WheelSpin => "wheel_spin",
            AlertType::Lugging => "lugging",
            AlertType::OverRevving => "over_revving",
            AlertType::RapidShifting => "rapid_shifting",
            AlertType::InvalidGear => "invalid_gear",
            AlertType::Retirement => "retirement",
            AlertType::CarHealth => "car_health",
        }
    }

    /// What the alert's `value` measures.
    pub fn unit(self) -> &'static str {
        match self {
            AlertType::HighSpeed => "km/h",
            AlertType::DrsActivated | AlertType::DrsDeactivated => "DRS code",
            AlertType::BrakeTemperature => "°C",
            AlertType::WheelSpin => "% spin",
            AlertType::Lugging | AlertType::OverRevving => "rpm",
            AlertType::RapidShifting => "shifts",
            AlertType::InvalidGear => "gear",
            AlertType::Retirement => "s stopped",
            AlertType::CarHealth => "km/h down",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The episode has started: sent as early as possible.
    Raised,
    /// The episode is over: `end_ms`, `peak` and `samples` are final.
    Cleared,
}

/// One episode of a condition for one driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: Uuid,
    pub alert_type: AlertType,
    pub severity: Severity,
    pub status: AlertStatus,
    pub driver: DriverId,
    pub lap: Option<u16>,
    /// Event time of the first sample of the episode (epoch ms).
    pub start_ms: i64,
    /// Event time of the last sample of the episode so far (epoch ms).
    pub end_ms: i64,
    /// The worst value seen in the episode (highest, or lowest for lugging).
    pub peak: f64,
    pub threshold: f64,
    pub samples: u32,
}

impl Alert {
    /// UUIDv5 over driver, type, severity and start, so that a replay yields the same ids.
    pub fn id_for(
        driver: DriverId,
        alert_type: AlertType,
        severity: Severity,
        start_ms: i64,
    ) -> Uuid {
        let name = format!(
            "{}|{}|{}|{}",
            driver,
            alert_type.as_str(),
            severity.as_str(),
            start_ms
        );
        Uuid::new_v5(&ALERT_NAMESPACE, name.as_bytes())
    }

    pub fn description(&self) -> String {
        let unit = self.alert_type.unit();
        let lap = self.lap.map(|l| format!(" on lap {l}")).unwrap_or_default();
        match self.alert_type {
            AlertType::DrsActivated => format!("{} opened DRS{lap}", self.driver),
            AlertType::DrsDeactivated => format!("{} closed DRS{lap}", self.driver),
            AlertType::CarHealth => format!(
                "{} losing performance{lap}: top speed {:.0} km/h down against its usual gap to the field",
                self.driver, self.peak
            ),
            AlertType::Retirement => format!(
                "{} stopped for good{lap} (standing {:.1} s when judged)",
                self.driver, self.peak
            ),
            AlertType::Lugging => format!(
                "{} lugging{lap}: {:.0} {unit} (below {:.0}) for {} samples",
                self.driver, self.peak, self.threshold, self.samples
            ),
            _ => format!(
                "{} {}{lap}: {:.1} {unit} (threshold {:.1}) for {} samples",
                self.driver,
                self.alert_type.as_str().replace('_', " "),
                self.peak,
                self.threshold,
                self.samples
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let ver = DriverId::new("VER").unwrap();
        let a = Alert::id_for(ver, AlertType::Lugging, Severity::Low, 1000);
        assert_eq!(
            a,
            Alert::id_for(ver, AlertType::Lugging, Severity::Low, 1000)
        );
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(
            a,
            Alert::id_for(ver, AlertType::Lugging, Severity::Low, 1001)
        );
        assert_ne!(
            a,
            Alert::id_for(ver, AlertType::OverRevving, Severity::Low, 1000)
        );
    }
}
