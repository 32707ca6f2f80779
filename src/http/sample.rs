//! The query store's sample model: a [`Point`] as the store serves it, the point metrics a
//! series can be asked for ([`Metric`], the one place they are named and ordered, and how
//! each is read from a point and from its code), and the fixed-point codes the point columns
//! and the window ring keep values as.
//!
//! A new point metric is a variant of [`Metric`] and an entry of [`Metric::ALL`]; the
//! compiler then asks for its name, its field of a [`Point`], its code and the column that
//! keeps it (in [`super::columns`]), and the min/max pyramid counts it by itself.

/// A value as its column keeps it; codes order as the values do.
pub type Code = u16;

/// The code of not-a-number; no value encodes to it.
pub const NONE: Code = u16::MAX;

/// Fixed point: `code = round((value - min) × per_unit)`, saturating at the ends.
#[derive(Clone, Copy, Debug)]
pub struct Fixed {
    pub per_unit: f64,
    pub min: f64,
}

impl Fixed {
    /// Rounds half up by adding a half and truncating: `f64::round` is a libm call on a
    /// baseline x86-64 build, and this runs six times a sample on the dataflow's thread.
    pub fn encode(self, v: f32) -> Code {
        if !v.is_finite() {
            return NONE;
        }
        let x = (v as f64 - self.min) * self.per_unit + 0.5;
        if x <= 0.0 {
            0
        } else if x >= (NONE - 1) as f64 {
            NONE - 1
        } else {
            x as Code
        }
    }

    /// Division rather than a multiplication by the step, so that `12345 / 100` is the
    /// `f32` nearest 123.45, as the value that was encoded most likely was.
    pub fn decode(self, c: Code) -> f32 {
        if c == NONE {
            return f32::NAN;
        }
        (c as f64 / self.per_unit + self.min) as f32
    }
}

pub const SPEED: Fixed = Fixed {
    per_unit: 100.0,
    min: 0.0,
};
pub const RPM: Fixed = Fixed {
    per_unit: 2.0,
    min: 0.0,
};
/// Kept in a byte: codes up to 254.
pub const THROTTLE: Fixed = Fixed {
    per_unit: 2.0,
    min: 0.0,
};
pub const EXPECTED_SPEED: Fixed = Fixed {
    per_unit: 50.0,
    min: 0.0,
};
pub const WHEEL_SPIN: Fixed = Fixed {
    per_unit: 20.0,
    min: -100.0,
};
pub const BRAKE_TEMP: Fixed = Fixed {
    per_unit: 20.0,
    min: -50.0,
};

/// One sample as the store serves it: what the dataflow saw, rounded to the resolution of
/// its column (see [`super::columns`]; 0.01 km/h for speed, 0.5 rpm, 0.5 % throttle, ...).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub ts_ms: i64,
    pub speed: f32,
    pub rpm: f32,
    pub throttle: f32,
    /// NaN when the sample could not be judged.
    pub expected_speed: f32,
    pub wheel_spin: f32,
    /// The wheel-spin detector judged this sample spinning.
    pub spinning: bool,
    pub brake_temp: f32,
    pub brake: u8,
    pub gear: u8,
    pub drs: u8,
}

impl Point {
    pub fn value(&self, metric: Metric) -> f32 {
        match metric {
            Metric::Speed => self.speed,
            Metric::Rpm => self.rpm,
            Metric::Throttle => self.throttle,
            Metric::Brake => self.brake as f32,
            Metric::Gear => self.gear as f32,
            Metric::Drs => self.drs as f32,
            Metric::ExpectedSpeed => self.expected_speed,
            Metric::WheelSpin => self.wheel_spin,
            Metric::BrakeTemp => self.brake_temp,
        }
    }
}

/// The point metrics: what a series of a driver's samples can be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Speed,
    Rpm,
    Throttle,
    Brake,
    Gear,
    Drs,
    ExpectedSpeed,
    WheelSpin,
    BrakeTemp,
}

impl Metric {
    /// Every point metric, in the order targets are listed and pyramid summaries kept
    /// (`ALL[m as usize] == m`).
    pub const ALL: &'static [Metric] = &[
        Metric::Speed,
        Metric::Rpm,
        Metric::Throttle,
        Metric::Brake,
        Metric::Gear,
        Metric::Drs,
        Metric::ExpectedSpeed,
        Metric::WheelSpin,
        Metric::BrakeTemp,
    ];

    pub const COUNT: usize = Metric::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Speed => "speed",
            Metric::Rpm => "rpm",
            Metric::Throttle => "throttle",
            Metric::Brake => "brake",
            Metric::Gear => "gear",
            Metric::Drs => "drs",
            Metric::ExpectedSpeed => "expected_speed",
            Metric::WheelSpin => "wheel_spin",
            Metric::BrakeTemp => "brake_temp",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|m| m.as_str() == name)
    }

    /// The value of a code of this metric (gear, DRS and brake are their own codes).
    pub fn decode(self, c: Code) -> f32 {
        match self {
            Metric::Speed => SPEED.decode(c),
            Metric::Rpm => RPM.decode(c),
            Metric::Throttle => THROTTLE.decode(c),
            Metric::ExpectedSpeed => EXPECTED_SPEED.decode(c),
            Metric::WheelSpin => WHEEL_SPIN.decode(c),
            Metric::BrakeTemp => BRAKE_TEMP.decode(c),
            Metric::Brake | Metric::Gear | Metric::Drs => c as f32,
        }
    }
}

// A metric's place in `ALL` is its discriminant, which the pyramid indexes its summaries by.
const _: () = {
    let mut i = 0;
    while i < Metric::COUNT {
        assert!(Metric::ALL[i] as usize == i);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_are_named_in_the_order_series_have_always_listed_them() {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            names,
            [
                "speed",
                "rpm",
                "throttle",
                "brake",
                "gear",
                "drs",
                "expected_speed",
                "wheel_spin",
                "brake_temp",
            ]
        );
        for &m in Metric::ALL {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
        assert_eq!(Metric::parse("window_speed_mean"), None);
    }

    #[test]
    fn a_point_gives_each_metric_its_own_field() {
        let p = Point {
            ts_ms: 0,
            speed: 1.0,
            rpm: 2.0,
            throttle: 3.0,
            expected_speed: 7.0,
            wheel_spin: 8.0,
            spinning: true,
            brake_temp: 9.0,
            brake: 4,
            gear: 5,
            drs: 6,
        };
        let values: Vec<f32> = Metric::ALL.iter().map(|&m| p.value(m)).collect();
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    }
}
