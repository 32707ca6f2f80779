//! A deterministic race simulator: the embedded default source and the benchmarks' load.
//!
//! Each car drives laps of a fixed circuit along a speed profile (accelerate on the straights
//! up to a drag-limited top speed, brake at a fixed deceleration into each corner), and
//! everything the feed reports is derived from that: gear from the shift points, rpm from
//! speed through the configured gear ratios and a 0.33 m wheel, throttle and brake from the
//! profile's slope, DRS in the zone on laps the car is within range. Some events are injected
//! on purpose, from a seeded per-car generator, so detectors have something to find:
//! traction loss at corner exits (rpm runs ahead of speed), lugging (a gear held too long into
//! a slow corner) and the odd over-rev. Cars are dealt to workers by index, and every car's
//! generator depends only on (seed, car), so any number of workers produces the same race.

pub use crate::config::SimConfig;
use crate::ingest::RecordSource;
use pitwall_dataflows::config::Invalid;
use pitwall_dataflows::record::{splitmix64, SPLITMIX_GAMMA};
use pitwall_dataflows::{DriverId, Ingest, Telemetry};

impl SimConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.cars == 0 || self.cars > 999 {
            return Err(Invalid::new(
                "simulator.cars",
                format!("= {} must be 1..=999", self.cars),
            ));
        }
        if !(self.rate_hz > 0.0 && self.rate_hz <= 1000.0) {
            return Err(Invalid::new(
                "simulator.rate_hz",
                format!("= {} must be in (0, 1000]", self.rate_hz),
            ));
        }
        for (name, p) in [
            ("traction_loss_chance", self.traction_loss_chance),
            ("lugging_chance", self.lugging_chance),
            ("over_rev_chance", self.over_rev_chance),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Invalid::new(
                    format!("simulator.{name}"),
                    format!("= {p} must be a probability"),
                ));
            }
        }
        Ok(())
    }

    pub fn driver(&self, car: usize) -> DriverId {
        DriverId::new(&format!("SIM{:02}", car + 1)).unwrap_or_default()
    }

    /// The worker (of `peers`) that simulates car `car`, and analyses it too.
    pub fn worker_of(car: usize, peers: usize) -> usize {
        car % peers.max(1)
    }
}

/// Circuit length and corners (apex distance m, apex speed km/h).
const LAP_M: f64 = 4300.0;
const CORNERS: [(f64, f64); 8] = [
    (650.0, 100.0),
    (1000.0, 165.0),
    (1350.0, 75.0),
    (1900.0, 235.0),
    (2300.0, 120.0),
    (2600.0, 65.0),
    (3050.0, 185.0),
    (3400.0, 90.0),
];
/// DRS zone: the main straight, from after the last corner to before the first.
const DRS_DETECT_M: f64 = 3420.0;
const DRS_FROM_M: f64 = 3500.0;
const DRS_TO_M: f64 = 560.0;
const STEP_M: f64 = 5.0;
const BRAKE_MPS2: f64 = 38.0;
const ACCEL_MPS2: f64 = 13.0;
const UPSHIFT_RPM: f64 = 11_800.0;
const DOWNSHIFT_RPM: f64 = 8_300.0;
const IDLE_RPM: f64 = 4_000.0;

/// splitmix64: small, seedable, and the same everywhere.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        let out = splitmix64(self.0);
        self.0 = self.0.wrapping_add(SPLITMIX_GAMMA);
        out
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Speed (m/s) along the lap at STEP_M resolution, for one car's pace.
fn speed_profile(pace: f64, top_kmh: f64) -> Vec<f64> {
    let n = (LAP_M / STEP_M) as usize;
    let top = top_kmh / 3.6;
    let mut limit = vec![top; n];
    for &(at, apex) in &CORNERS {
        let apex = apex * pace / 3.6;
        for i in 0..=8 {
            for idx in [at / STEP_M + i as f64, at / STEP_M - i as f64] {
                let idx = (idx as usize + n) % n;
                limit[idx] = limit[idx].min(apex);
            }
        }
    }
    let mut v = limit.clone();
    // Two laps of passes so the wrap-around settles.
    for _ in 0..2 {
        for i in 0..n {
            let prev = v[(i + n - 1) % n];
            let accel = ACCEL_MPS2 * (1.0 - (prev / top).powi(2)).max(0.0);
            v[i] = limit[i].min((prev * prev + 2.0 * accel * STEP_M).sqrt());
        }
        for i in (0..n).rev() {
            let next = v[(i + 1) % n];
            v[i] = v[i].min((next * next + 2.0 * BRAKE_MPS2 * STEP_M).sqrt());
        }
    }
    v
}

fn profile_at(profile: &[f64], s: f64) -> f64 {
    let x = s.rem_euclid(LAP_M) / STEP_M;
    let i = x as usize % profile.len();
    let j = (i + 1) % profile.len();
    let f = x - x.floor();
    profile[i] * (1.0 - f) + profile[j] * f
}

fn in_drs_zone(s: f64) -> bool {
    let s = s.rem_euclid(LAP_M);
    !(DRS_TO_M..DRS_FROM_M).contains(&s)
}

#[derive(Clone, Debug)]
struct Car {
    driver: DriverId,
    rng: Rng,
    profile: Vec<f64>,
    drs_profile: Vec<f64>,
    distance: f64,
    gear: u8,
    lap: u32,
    drs_this_lap: bool,
    /// Samples left of an injected event.
    traction_loss: u32,
    lugging: u32,
    over_rev: u32,
    over_rev_armed: bool,
    over_rev_samples: u32,
    was_braking: bool,
    finished: bool,
}

/// Counts of what the simulator injected, to check the detectors against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    pub traction_losses: u64,
    pub luggings: u64,
    pub over_revs: u64,
}

pub struct Simulator {
    cfg: SimConfig,
    kmh_per_rpm: [f64; 8],
    cars: Vec<Car>,
    tick: u64,
    injected: Injected,
}

impl Simulator {
    /// The cars of the race for which `keep(car index)` holds.
    pub fn new(cfg: &SimConfig, keep: impl Fn(usize) -> bool) -> Simulator {
        let circumference_km = 2.0 * std::f64::consts::PI * cfg.wheel_radius_m / 1000.0;
        let cars = (0..cfg.cars)
            .filter(|&car| keep(car))
            .map(|car| {
                let mut rng = Rng(cfg.seed ^ (car as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
                let pace = 0.95 + 0.05 * rng.unit();
                let top = 286.0 + 10.0 * rng.unit();
                Car {
                    driver: cfg.driver(car),
                    profile: speed_profile(pace, top),
                    drs_profile: speed_profile(pace, top + 14.0),
                    rng,
                    // The grid: 8 m between cars, behind the line.
                    distance: -8.0 * car as f64,
                    gear: 1,
                    lap: 0,
                    drs_this_lap: false,
                    traction_loss: 0,
                    lugging: 0,
                    over_rev: 0,
                    over_rev_armed: false,
                    over_rev_samples: 0,
                    was_braking: false,
                    finished: false,
                }
            })
            .collect();
        Simulator {
            cfg: cfg.clone(),
            kmh_per_rpm: cfg.gear_ratios.map(|r| circumference_km * 60.0 / r),
            cars,
            tick: 0,
            injected: Injected::default(),
        }
    }

    #[cfg(test)]
    pub fn injected(&self) -> Injected {
        self.injected
    }

    fn done(&self) -> bool {
        self.cars.iter().all(|c| c.finished)
    }

    fn step(&mut self, out: &mut Vec<Ingest>) {
        let dt = 1.0 / self.cfg.rate_hz;
        let ts_ms = self.cfg.start_ms + (self.tick as f64 * 1000.0 / self.cfg.rate_hz) as i64;
        let laps = self.cfg.laps;
        for car in self.cars.iter_mut().filter(|c| !c.finished) {
            let sample = drive(
                car,
                &self.cfg,
                &self.kmh_per_rpm,
                &mut self.injected,
                dt,
                ts_ms,
            );
            if laps > 0 && car.lap > laps {
                car.finished = true;
            } else {
                out.push(Ingest::Record(sample));
            }
        }
        self.tick += 1;
    }
}

/// One simulated car's next sample.
///
/// Long for a reason: the car's physics in the order they happen within one tick (speed from
/// the lap's profile, gear and rpm, throttle and brake, the injected faults), each step
/// reading what the one before it set.
fn drive(
    car: &mut Car,
    cfg: &SimConfig,
    kmh_per_rpm: &[f64; 8],
    injected: &mut Injected,
    dt: f64,
    ts_ms: i64,
) -> Telemetry {
    // The race starts from standstill; before the line the car creeps up the grid.
    let drs_open = car.drs_this_lap && in_drs_zone(car.distance) && car.lap >= 3;
    let profile = if drs_open {
        &car.drs_profile
    } else {
        &car.profile
    };
    let v = if car.lap == 0 && car.distance < 0.0 {
        (profile_at(profile, 0.0)).min(20.0 + 4.0 * (ts_ms - cfg.start_ms) as f64 / 1000.0)
    } else {
        profile_at(profile, car.distance)
    };
    let v_next = profile_at(profile, car.distance + v * dt);
    let accel = (v_next - v) / dt;
    let braking = accel < -8.0;
    let before = car.distance.rem_euclid(LAP_M);
    car.distance += v * dt;
    if car.distance >= 0.0 && (car.lap == 0 || car.distance.rem_euclid(LAP_M) < before) {
        car.lap += 1;
        car.drs_this_lap = car.rng.chance(0.45);
        // Armed now, fired at the next low-gear full-throttle sample.
        car.over_rev_armed = car.rng.chance(cfg.over_rev_chance);
    }
    let speed_kmh = (v * 3.6 + (car.rng.unit() - 0.5) * 1.0).max(0.0);

    // Injected events start at the edges of braking.
    if car.was_braking && !braking && car.rng.chance(cfg.traction_loss_chance) && car.gear <= 4 {
        car.traction_loss = 3;
        injected.traction_losses += 1;
    }
    if !car.was_braking && braking && car.gear >= 5 && car.rng.chance(cfg.lugging_chance) {
        car.lugging = 3;
        injected.luggings += 1;
    }
    car.was_braking = braking;

    // Gear from shift points, unless a gear is being held.
    if car.lugging == 0 {
        let rpm_in = |g: u8| speed_kmh / kmh_per_rpm[g as usize - 1];
        let holding = car.over_rev > 0;
        while !holding && car.gear < 8 && rpm_in(car.gear) > UPSHIFT_RPM {
            car.gear += 1;
        }
        while car.gear > 1 && rpm_in(car.gear) < DOWNSHIFT_RPM {
            car.gear -= 1;
        }
    }
    let mut rpm = (speed_kmh / kmh_per_rpm[car.gear as usize - 1]).max(IDLE_RPM);
    let mut throttle = if braking {
        0.0
    } else if accel > 1.0 {
        100.0
    } else {
        45.0 + 20.0 * car.rng.unit()
    };
    if car.traction_loss > 0 {
        car.traction_loss -= 1;
        rpm *= 1.3;
        throttle = 100.0;
    }
    if car.lugging > 0 {
        car.lugging -= 1;
        rpm = rpm.min(7_500.0);
    }
    // An over-rev is a missed upshift: the gear is held (above) while the car accelerates,
    // so rpm stays coupled to speed and climbs past the limit.
    if car.over_rev_armed && (2..=4).contains(&car.gear) && throttle >= 100.0 && !braking {
        car.over_rev_armed = false;
        car.over_rev = 10;
        car.over_rev_samples = 0;
    }
    if car.over_rev > 0 {
        car.over_rev -= 1;
        if braking {
            car.over_rev = 0;
        } else if rpm > 13_050.0 {
            car.over_rev_samples += 1;
            if car.over_rev_samples == 2 {
                injected.over_revs += 1;
                car.over_rev = 0;
            }
        }
    }
    rpm = (rpm + (car.rng.unit() - 0.5) * 60.0).clamp(0.0, 15_000.0);

    let drs = if drs_open {
        12
    } else if car.drs_this_lap && car.lap >= 3 && car.distance.rem_euclid(LAP_M) >= DRS_DETECT_M {
        8
    } else {
        1
    };
    let theta = 2.0 * std::f64::consts::PI * car.distance.rem_euclid(LAP_M) / LAP_M;
    Telemetry {
        driver: car.driver,
        ts_ms,
        speed: speed_kmh.round() as f32,
        rpm: rpm.round() as f32,
        throttle: throttle.round() as f32,
        brake_temp: None,
        position: Some([
            (700.0 * theta.cos() + 150.0 * (3.0 * theta).cos()) as f32,
            (450.0 * theta.sin()) as f32,
        ]),
        lap: (car.lap > 0).then_some(car.lap.min(u16::MAX as u32) as u16),
        gear: car.gear,
        drs,
        brake: braking,
    }
}

impl RecordSource for Simulator {
    fn fill(&mut self, out: &mut Vec<Ingest>, max: usize) -> bool {
        let target = out.len() + max;
        while out.len() < target && !self.done() {
            self.step(out);
        }
        !self.done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn race(cfg: &SimConfig, worker: usize, peers: usize) -> Vec<Telemetry> {
        let mut sim = Simulator::new(cfg, |car| SimConfig::worker_of(car, peers) == worker);
        let mut out = Vec::new();
        while sim.fill(&mut out, 1000) {}
        out.into_iter()
            .map(|i| match i {
                Ingest::Record(s) => s,
                other => panic!("simulator made {other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_race_is_the_same_however_cars_are_dealt() {
        let cfg = SimConfig {
            cars: 5,
            laps: 2,
            ..Default::default()
        };
        let mut whole = race(&cfg, 0, 1);
        let mut split = race(&cfg, 0, 2);
        split.extend(race(&cfg, 1, 2));
        let key = |s: &Telemetry| (s.driver, s.ts_ms);
        whole.sort_by_key(key);
        split.sort_by_key(key);
        assert_eq!(whole, split);
    }

    #[test]
    fn the_detectors_find_what_the_simulator_injected() {
        use pitwall_dataflows::alert::{AlertStatus, AlertType};
        use pitwall_dataflows::analysis::DriverAnalysis;
        use pitwall_dataflows::{DetectorConfig, Output};
        use std::collections::HashMap;
        let cfg = SimConfig {
            cars: 6,
            laps: 25,
            ..Default::default()
        };
        let mut sim = Simulator::new(&cfg, |_| true);
        let mut items = Vec::new();
        while sim.fill(&mut items, 4096) {}
        let injected = sim.injected();
        // The simulator injects the seeds' lugging (a gear held into a braking zone, off the
        // throttle), which only the seeds' fixed rule judges; the calibrated rule needs load.
        let mut detectors = DetectorConfig::default();
        detectors.gear.lugging_mode = pitwall_dataflows::config::LuggingMode::Fixed;
        let mut drivers: HashMap<DriverId, DriverAnalysis> = HashMap::new();
        let mut found: HashMap<AlertType, u64> = HashMap::new();
        let mut count = |o: Output| {
            if let Output::Alert(a) = o {
                if a.status == AlertStatus::Cleared {
                    *found.entry(a.alert_type).or_default() += 1;
                }
            }
        };
        for item in &items {
            if let Ingest::Record(s) = item {
                drivers
                    .entry(s.driver)
                    .or_insert_with(|| DriverAnalysis::new(s.driver, &detectors))
                    .observe(s, &mut count);
            }
        }
        for d in drivers.values_mut() {
            d.finish(&mut count);
        }
        let got = |t| found.get(&t).copied().unwrap_or(0);
        assert!(injected.traction_losses >= 20, "{injected:?}");
        // A traction loss in a gear not yet calibrated (early in the race) can go unseen.
        let spins = got(AlertType::WheelSpin);
        assert!(
            spins as f64 >= 0.8 * injected.traction_losses as f64
                && spins <= injected.traction_losses,
            "wheel spin {spins} vs injected {injected:?}"
        );
        // A traction loss in a low gear (rpm × 1.3) over-revs the engine as well.
        let over_revs = got(AlertType::OverRevving);
        assert!(
            over_revs >= injected.over_revs
                && over_revs <= injected.over_revs + injected.traction_losses,
            "over-revving {over_revs} vs {injected:?}"
        );
        let lugging = got(AlertType::Lugging);
        assert!(
            lugging >= injected.luggings && injected.luggings > 0,
            "lugging {lugging} vs {injected:?}"
        );
        assert!(got(AlertType::DrsActivated) > 0);
        assert_eq!(got(AlertType::InvalidGear), 0);
    }

    #[test]
    fn cars_are_physically_coupled_and_finish_their_laps() {
        let cfg = SimConfig {
            cars: 3,
            laps: 3,
            ..Default::default()
        };
        let samples = race(&cfg, 0, 1);
        let circumference_km = 2.0 * std::f64::consts::PI * 0.33 / 1000.0;
        let mut coupled = 0;
        for s in &samples {
            assert!((1..=8).contains(&s.gear));
            assert!(s.speed >= 0.0 && s.speed < 360.0, "{s:?}");
            assert!(!(s.brake && s.throttle > 0.0), "braking on throttle: {s:?}");
            let expected =
                s.rpm as f64 / cfg.gear_ratios[s.gear as usize - 1] * circumference_km * 60.0;
            if s.speed > 60.0 && (expected / s.speed as f64 - 1.0).abs() < 0.03 {
                coupled += 1;
            }
        }
        // Outside injected events and the rounding near idle, rpm follows speed through the ratios.
        assert!(coupled as f64 > 0.9 * samples.iter().filter(|s| s.speed > 60.0).count() as f64);
        assert_eq!(samples.iter().filter_map(|s| s.lap).max(), Some(3));
        let top = samples.iter().map(|s| s.speed).fold(0.0, f32::max);
        assert!(top > 280.0, "top speed {top}");
        assert!(samples.iter().any(|s| s.drs_open()), "DRS never opened");
        // A 4.3 km lap at ~4 Hz: somewhere between 60 and 120 s a lap.
        let per_car = samples.len() / 3;
        assert!((3 * 60 * 4..3 * 120 * 4).contains(&per_car), "{per_car}");
    }
}
