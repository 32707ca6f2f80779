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
    #[inline]
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
        // In range, so far inside i64: the cast truncates as `fract` would, without the call
        // to libm's `trunc` that `fract` costs on baseline x86-64 (once per whole field).
        if self.whole && (value as i64) as f64 != value {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The whole-number test without `fract` gives `fract`'s answer for every value of
        /// every whole field, in range or not.
        #[test]
        fn whole_fields_take_exactly_the_values_with_no_fraction(
            value in prop_oneof![
                -1e3..1e3f64,
                (-1000i64..1000).prop_map(|n| n as f64),
                (-1000i64..1000).prop_map(|n| n as f64 + 0.5),
                any::<f64>(),
            ],
        ) {
            for limit in [&GEAR, &DRS, &LAP] {
                let expected = value.is_finite()
                    && (limit.min..=limit.max).contains(&value)
                    && value.fract() == 0.0;
                prop_assert_eq!(limit.check(value).is_ok(), expected, "{} {}", limit.field, value);
            }
        }
    }
}
