//! What a usable value is, shared by every source (CSV rows and Kafka messages alike).

use std::fmt::Display;

/// What is wrong with one field of an input row or message.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
    pub value: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>, value: impl Display) -> Self {
        FieldError {
            field,
            reason: reason.into(),
            value: value.to_string(),
        }
    }
}

/// The accepted range of one numeric field.
pub struct Limit {
    pub field: &'static str,
    pub min: f64,
    pub max: f64,
    pub whole: bool,
}

impl Limit {
    pub fn check(&self, value: f64) -> Result<f64, FieldError> {
        if !value.is_finite() {
            return Err(FieldError::new(self.field, "not a number", value));
        }
        if value < self.min || value > self.max {
            return Err(FieldError::new(
                self.field,
                format!("out of range {}..={}", self.min, self.max),
                value,
            ));
        }
        if self.whole && value.fract() != 0.0 {
            return Err(FieldError::new(self.field, "not a whole number", value));
        }
        Ok(value)
    }
}

pub const SPEED: Limit = Limit {
    field: "Speed",
    min: 0.0,
    max: 450.0,
    whole: false,
};
pub const RPM: Limit = Limit {
    field: "RPM",
    min: 0.0,
    max: 20_000.0,
    whole: false,
};
/// Glitch gears 9..=255 are kept (and flagged by the detectors); negatives are not gears.
pub const GEAR: Limit = Limit {
    field: "nGear",
    min: 0.0,
    max: 255.0,
    whole: true,
};
/// 104 is the feed's sentinel, kept as it came.
pub const THROTTLE: Limit = Limit {
    field: "Throttle",
    min: 0.0,
    max: 104.0,
    whole: false,
};
pub const DRS: Limit = Limit {
    field: "DRS",
    min: 0.0,
    max: 15.0,
    whole: true,
};
pub const LAP: Limit = Limit {
    field: "LapNumber",
    min: 0.0,
    max: 500.0,
    whole: true,
};
pub const BRAKE_TEMP: Limit = Limit {
    field: "BrakeTemp",
    min: -50.0,
    max: 2000.0,
    whole: false,
};
pub const X: Limit = Limit {
    field: "X",
    min: -1e6,
    max: 1e6,
    whole: false,
};
pub const Y: Limit = Limit {
    field: "Y",
    min: -1e6,
    max: 1e6,
    whole: false,
};
