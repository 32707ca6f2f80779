//! Brake disc temperature: the record's own value when it has one, else a thermal estimate.
//!
//! The estimate is a lumped model of one front brake. Braking turns kinetic energy into heat:
//! between two samples with the brake on and the car slowing from v1 to v2, the front corner
//! takes `½·m·(v1² − v2²)·BRAKE_SHARE·FRONT_SHARE/2` joules and warms by that over its heat
//! capacity. It cools towards `AMBIENT_C` exponentially, faster with more airflow:
//! `T ← T_amb + (T − T_amb)·exp(−dt·(COOL_BASE + COOL_PER_MPS·v))`. Constants are for a 798 kg
//! car whose brakes (not drag) absorb 65 % of the energy, 60 % of it at the front. It is an
//! estimate for alerting, not a measurement.

use crate::record::Telemetry;

const CAR_MASS_KG: f64 = 798.0;
const BRAKE_SHARE: f64 = 0.65;
const FRONT_SHARE: f64 = 0.60;
/// J/K of one front disc and pads (carbon, ≈1.1 kg × 1.2 kJ/kg·K).
const HEAT_CAPACITY_J_PER_K: f64 = 1300.0;
const AMBIENT_C: f64 = 250.0;
const COOL_BASE: f64 = 0.012;
const COOL_PER_MPS: f64 = 0.0018;
/// Longer gaps than this are treated as a pause: no energy is attributed to them.
const MAX_GAP_S: f64 = 2.0;

#[derive(Clone, Debug)]
pub struct BrakeThermal {
    temp_c: f64,
    last: Option<(i64, f64)>,
}

impl Default for BrakeThermal {
    fn default() -> Self {
        BrakeThermal {
            temp_c: AMBIENT_C,
            last: None,
        }
    }
}

impl BrakeThermal {
    /// The brake temperature at this sample, °C.
    pub fn observe(&mut self, s: &Telemetry) -> f64 {
        let v2 = s.speed.max(0.0) as f64 / 3.6;
        if let Some(measured) = s.brake_temp {
            self.temp_c = measured as f64;
        } else if let Some((last_ts, v1)) = self.last {
            let dt = (s.ts_ms - last_ts) as f64 / 1000.0;
            if dt > 0.0 && dt <= MAX_GAP_S {
                if s.brake && v2 < v1 {
                    let joules =
                        0.5 * CAR_MASS_KG * (v1 * v1 - v2 * v2) * BRAKE_SHARE * FRONT_SHARE / 2.0;
                    self.temp_c += joules / HEAT_CAPACITY_J_PER_K;
                }
                let v = 0.5 * (v1 + v2);
                let decay = (-dt * (COOL_BASE + COOL_PER_MPS * v)).exp();
                self.temp_c = AMBIENT_C + (self.temp_c - AMBIENT_C) * decay;
            }
        }
        self.last = Some((s.ts_ms, v2));
        self.temp_c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::DriverId;

    fn s(ts_ms: i64, speed: f32, brake: bool, brake_temp: Option<f32>) -> Telemetry {
        Telemetry {
            speed,
            rpm: 10000.0,
            brake_temp,
            gear: 5,
            brake,
            ..Telemetry::at(DriverId::new("ALO").unwrap(), ts_ms)
        }
    }

    #[test]
    fn braking_heats_by_the_energy_and_coasting_cools() {
        let mut b = BrakeThermal::default();
        assert_eq!(b.observe(&s(0, 288.0, false, None)), AMBIENT_C);
        // 80 m/s to 60 m/s in 0.25 s: ½·798·(6400−3600)·0.65·0.6/2 = 217,854 J -> +167.6 K,
        // then the excess decays by exp(−0.25·(0.012 + 0.0018·70)).
        let t = b.observe(&s(250, 216.0, true, None));
        let expected = AMBIENT_C + 217_854.0 / 1300.0 * (-0.25f64 * (0.012 + 0.0018 * 70.0)).exp();
        assert!((t - expected).abs() < 0.01, "{t} vs {expected}");
        let cooled = b.observe(&s(1250, 216.0, false, None));
        assert!(cooled < t && cooled > AMBIENT_C);
    }

    #[test]
    fn a_measured_value_wins_and_seeds_the_model() {
        let mut b = BrakeThermal::default();
        assert_eq!(b.observe(&s(0, 200.0, true, Some(900.0))), 900.0);
        let next = b.observe(&s(250, 200.0, false, None));
        assert!(next < 900.0 && next > 850.0);
    }
}
