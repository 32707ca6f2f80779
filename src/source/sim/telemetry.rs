//! One car's feed: its motion (from the field) as the car's sensors report it. Gear from the
//! shift points, rpm from speed through the configured gear ratios and wheel, throttle and
//! brake from the acceleration, DRS from the zone; and the faults a feed has, from the car's
//! own generator (seed, car): traction loss at a corner exit (rpm runs ahead of speed), a gear
//! skipped under full load (lugging), a missed upshift (over-rev), a glitch gear value.

use super::field::{CarState, Mode, REV_LIMIT_RPM};
use super::{Injected, Rng};
use crate::config::SimConfig;
use pitwall_dataflows::{DriverId, Telemetry};

const UPSHIFT_RPM: f64 = 11_800.0;
const DOWNSHIFT_RPM: f64 = 8_300.0;
const IDLE_RPM: f64 = 4_000.0;
/// Accelerations (m/s²) read as braking, and as full throttle.
const BRAKING_MPS2: f64 = -4.0;
const FULL_THROTTLE_MPS2: f64 = 0.3;
/// A traction loss spins the rear wheels this much faster, never past this rpm.
const SPIN_FACTOR: f64 = 1.22;
const SPIN_MAX_RPM: f64 = 12_900.0;

/// What every car's sensors share: the gearbox, the circuit's top speed, the tick.
#[derive(Clone, Debug)]
pub struct Sensors {
    pub kmh_per_rpm: [f64; 8],
    pub racing_top_mps: f64,
    pub dt: f64,
}

#[derive(Clone, Debug)]
pub struct CarFeed {
    pub driver: DriverId,
    rng: Rng,
    gear: u8,
    was_braking: bool,
    /// Samples left of an injected event.
    traction_loss: u32,
    skipped_gear: u32,
    over_rev: u32,
    over_rev_samples: u32,
    glitch: u32,
    /// Armed at the start of a lap, fired at the next chance on it.
    over_rev_armed: bool,
    skip_armed: bool,
    glitch_armed: bool,
    lap: u32,
}

impl CarFeed {
    pub fn new(driver: DriverId, rng: Rng) -> CarFeed {
        CarFeed {
            driver,
            rng,
            gear: 1,
            was_braking: false,
            traction_loss: 0,
            skipped_gear: 0,
            over_rev: 0,
            over_rev_samples: 0,
            glitch: 0,
            over_rev_armed: false,
            skip_armed: false,
            glitch_armed: false,
            lap: 0,
        }
    }

    /// The sample of the car's state at `ts_ms`.
    ///
    /// Long for a reason: the sensors in the order they read one tick (speed, braking, the
    /// injected faults, gear, rpm, throttle, DRS), each step reading what the one before set.
    pub fn sample(
        &mut self,
        car: &CarState,
        cfg: &SimConfig,
        sensors: &Sensors,
        injected: &mut Injected,
        ts_ms: i64,
    ) -> Telemetry {
        let (kmh_per_rpm, racing_top_mps, dt) =
            (&sensors.kmh_per_rpm, sensors.racing_top_mps, sensors.dt);
        let r = &mut self.rng;
        let standing = car.v < 0.05;
        // Engine off: retired, or queued in the pit lane under the red flag.
        let retired = car.engine_off;
        let mut speed_kmh = if standing {
            0.0
        } else if car.limiter {
            car.v * 3.6 - 0.6 + (r.unit() - 0.5) * 0.8
        } else {
            (car.v * 3.6 + (r.unit() - 0.5) * 1.0).max(0.0)
        };
        let accel = (car.v - car.v_prev) / dt;
        let braking = accel < BRAKING_MPS2;
        if car.lap != self.lap {
            self.lap = car.lap;
            self.over_rev_armed = r.chance(cfg.over_rev_chance);
            self.skip_armed = r.chance(cfg.lugging_chance);
            self.glitch_armed = r.chance(cfg.glitch_gear_chance);
        }
        let racing = car.mode == Mode::Racing;

        // Traction loss at a corner exit, in a low gear (far more often on a wet track).
        if racing
            && self.was_braking
            && !braking
            && self.gear <= 4
            && r.chance(cfg.traction_loss_chance * car.spin_x)
        {
            self.traction_loss = 3;
            injected.traction_losses += 1;
        }
        self.was_braking = braking;

        // Gear from the shift points, within what the car has left.
        let max_gear = car.max_gear.clamp(1, 8);
        let rpm_in = |g: u8| speed_kmh / kmh_per_rpm[g as usize - 1];
        if retired {
            self.gear = 0;
        } else {
            self.gear = self.gear.clamp(1, max_gear);
            let holding = self.over_rev > 0 || self.skipped_gear > 0;
            while !holding && self.gear < max_gear && rpm_in(self.gear) > UPSHIFT_RPM {
                self.gear += 1;
                // A gear skipped on an upshift under full load: the engine lugs.
                if self.skip_armed && self.gear >= 4 && self.gear + 1 < max_gear && accel > 1.0 {
                    self.skip_armed = false;
                    self.gear += 1;
                    self.skipped_gear = 4;
                    injected.luggings += 1;
                }
            }
            if self.skipped_gear > 0 {
                self.skipped_gear -= 1;
            }
            while self.gear > 1 && rpm_in(self.gear) < DOWNSHIFT_RPM && self.skipped_gear == 0 {
                self.gear -= 1;
            }
        }
        let gear = self.gear.max(1);
        let mut rpm = if retired {
            0.0
        } else {
            // The clutch slips below 20 km/h; above, the engine turns with the wheels.
            let coupled = speed_kmh / kmh_per_rpm[gear as usize - 1];
            if speed_kmh < 20.0 {
                coupled.max(IDLE_RPM)
            } else {
                coupled
            }
        };
        if gear == max_gear && max_gear < 8 {
            rpm = rpm.min(REV_LIMIT_RPM + 50.0);
        }
        let green_straight = racing && car.v > 0.75 * racing_top_mps;
        let mut throttle = if retired || standing || braking {
            0.0
        } else if car.limiter {
            22.0 + 8.0 * r.unit()
        } else if racing && (accel > FULL_THROTTLE_MPS2 || green_straight) {
            100.0
        } else {
            35.0 + 30.0 * r.unit()
        };
        if self.traction_loss > 0 {
            self.traction_loss -= 1;
            rpm = (rpm * SPIN_FACTOR).min(SPIN_MAX_RPM);
            throttle = 100.0;
        }
        // An over-rev is a missed upshift: the gear is held (above) while the car
        // accelerates, so rpm stays coupled to speed and climbs past the limit.
        if self.over_rev_armed
            && racing
            && (2..=4).contains(&gear)
            && throttle >= 100.0
            && accel > 2.0
            && rpm > 10_500.0
        {
            self.over_rev_armed = false;
            self.over_rev = 12;
            self.over_rev_samples = 0;
        }
        if self.over_rev > 0 {
            self.over_rev -= 1;
            if braking {
                self.over_rev = 0;
            } else if rpm > 13_050.0 {
                self.over_rev_samples += 1;
                if self.over_rev_samples == 2 {
                    injected.over_revs += 1;
                    self.over_rev = 0;
                }
            }
        }
        if !retired {
            rpm = (rpm + (r.unit() - 0.5) * 60.0).clamp(0.0, 15_000.0);
        }
        if standing {
            speed_kmh = 0.0;
        }
        // The feed's glitch gear values, two samples long.
        let mut reported_gear = if retired { 0 } else { gear };
        if self.glitch_armed && racing && !braking {
            self.glitch_armed = false;
            self.glitch = 2;
            injected.glitches += 1;
        }
        if self.glitch > 0 {
            self.glitch -= 1;
            reported_gear = 9 + (r.unit() * 6.0) as u8;
        }
        let drs = if car.drs_open {
            12
        } else if car.drs_eligible {
            8
        } else {
            1
        };
        Telemetry {
            driver: self.driver,
            ts_ms,
            speed: speed_kmh.round() as f32,
            rpm: rpm.round() as f32,
            throttle: throttle.round() as f32,
            brake_temp: None,
            position: None,
            lap: Some(car.lap.min(u16::MAX as u32) as u16),
            gear: reported_gear,
            drs,
            brake: braking,
        }
    }
}
