//! A deterministic race simulator: the embedded default source and the benchmarks' load.
//!
//! A race at one of the configured circuits (`circuit.rs`): the whole field's motion, tick by
//! tick (`field.rs`: pace, strategy and pit stops through the pit lane at its limiter speed,
//! safety car and virtual safety car, a red flag, rain, overtakes, retirements, a car that
//! loses power or gears), each car's motion read by its sensors (`telemetry.rs`), and what
//! happened written as FastF1's tables (`truth.rs`) for `pitwall evaluate`. Cars are dealt
//! to workers by index; every worker steps the whole field alike and reports only its own
//! cars, whose feeds depend only on (seed, car), so any number of workers produces the same
//! race.

mod circuit;
mod field;
mod telemetry;
pub mod truth;

pub use crate::config::SimConfig;
use crate::ingest::RecordSource;
pub use circuit::Track;
use field::Field;
use pitwall_dataflows::config::Invalid;
use pitwall_dataflows::record::{splitmix64, SPLITMIX_GAMMA};
use pitwall_dataflows::{DriverId, Ingest};
use telemetry::{CarFeed, Sensors};

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
        let (probability, grip) = (0.0..=1.0, 0.2..=1.0);
        for (name, x, range, what) in [
            (
                "traction_loss_chance",
                self.traction_loss_chance,
                &probability,
                "a probability",
            ),
            (
                "lugging_chance",
                self.lugging_chance,
                &probability,
                "a probability",
            ),
            (
                "over_rev_chance",
                self.over_rev_chance,
                &probability,
                "a probability",
            ),
            (
                "glitch_gear_chance",
                self.glitch_gear_chance,
                &probability,
                "a probability",
            ),
            (
                "rain_chance",
                self.rain_chance,
                &probability,
                "a probability",
            ),
            (
                "wet_grip_slick",
                self.wet_grip_slick,
                &grip,
                "a share of the dry grip in [0.2, 1]",
            ),
            (
                "wet_grip_intermediate",
                self.wet_grip_intermediate,
                &grip,
                "a share of the dry grip in [0.2, 1]",
            ),
        ] {
            if !range.contains(&x) {
                return Err(Invalid::new(
                    format!("simulator.{name}"),
                    format!("= {x} must be {what}"),
                ));
            }
        }
        for (name, x) in [
            ("wet_spin_slick", self.wet_spin_slick),
            ("wet_spin_intermediate", self.wet_spin_intermediate),
        ] {
            if !(1.0..=1000.0).contains(&x) || x * self.traction_loss_chance > 1.0 {
                return Err(Invalid::new(
                    format!("simulator.{name}"),
                    format!(
                        "= {x} must be in [1, 1000], and times traction_loss_chance ({}) a \
                         probability",
                        self.traction_loss_chance
                    ),
                ));
            }
        }
        let circuit = self.circuit_config()?;
        let key = |k: &str| format!("simulator.circuits.{}.{k}", self.circuit);
        if !(circuit.lap_m >= 500.0 && circuit.lap_m <= 20_000.0) {
            return Err(Invalid::new(key("lap_m"), "must be in [500, 20000] m"));
        }
        if !(circuit.top_kmh > 100.0 && circuit.drs_top_kmh >= circuit.top_kmh) {
            return Err(Invalid::new(
                key("top_kmh"),
                "must be above 100 km/h, and drs_top_kmh at least as high",
            ));
        }
        if !(40.0..=100.0).contains(&circuit.pit_limit_kmh) {
            return Err(Invalid::new(key("pit_limit_kmh"), "must be in [40, 100]"));
        }
        let lane = circuit.pit_entry_before_line_m + circuit.pit_exit_after_line_m;
        if !(circuit.pit_entry_before_line_m >= 50.0
            && circuit.pit_box_after_line_m >= 20.0
            && circuit.pit_exit_after_line_m > circuit.pit_box_after_line_m + 20.0
            && lane < circuit.lap_m / 2.0)
        {
            return Err(Invalid::new(
                key("pit_entry_before_line_m"),
                "the pit lane must start at least 50 m before the line, have its boxes at least \
                 20 m after it and end past them, and be shorter than half a lap",
            ));
        }
        for c in &circuit.corners {
            if !(0.0..circuit.lap_m).contains(&c[0]) || !(20.0..=400.0).contains(&c[1]) {
                return Err(Invalid::new(
                    key("corners"),
                    format!("{c:?}: apexes lie on the lap, at 20..=400 km/h"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&circuit.overtake_chance) || circuit.laps == 0 {
            return Err(Invalid::new(
                key("overtake_chance"),
                "must be a probability, and laps at least 1",
            ));
        }
        Ok(())
    }

    fn circuit_config(&self) -> Result<&crate::config::CircuitConfig, Invalid> {
        self.circuits.get(&self.circuit).ok_or_else(|| {
            Invalid::new(
                "simulator.circuit",
                format!(
                    "= {:?} is not one of the circuits: {}",
                    self.circuit,
                    self.circuits.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// The circuit raced (the configuration is validated: it exists).
    pub fn track(&self) -> Track {
        let c = self.circuit_config().cloned().unwrap_or_else(|_| {
            self.circuits
                .values()
                .next()
                .cloned()
                .expect("validated: the circuits are not empty")
        });
        Track::new(
            &self.circuit,
            &c,
            [self.wet_grip_slick, self.wet_grip_intermediate],
        )
    }

    /// Laps of the race: the configured count, else the circuit's race distance (0: no end).
    pub fn race_laps(&self, track: &Track) -> u32 {
        self.laps.unwrap_or(track.race_laps)
    }

    pub fn driver(&self, car: usize) -> DriverId {
        DriverId::new(&format!("SIM{:02}", car + 1)).unwrap_or_default()
    }

    /// The worker (of `peers`) that simulates car `car`, and analyses it too.
    pub fn worker_of(car: usize, peers: usize) -> usize {
        car % peers.max(1)
    }
}

/// splitmix64: small, seedable, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

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

/// Counts of what the simulator injected, to check the detectors against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    pub traction_losses: u64,
    pub luggings: u64,
    pub over_revs: u64,
    pub glitches: u64,
}

pub struct Simulator {
    cfg: SimConfig,
    sensors: Sensors,
    field: Field,
    /// This worker's cars: index in the field and feed.
    feeds: Vec<(usize, CarFeed)>,
    injected: Injected,
}

impl Simulator {
    /// The race, reporting the cars for which `keep(car index)` holds.
    pub fn new(cfg: &SimConfig, keep: impl Fn(usize) -> bool) -> Simulator {
        let circumference_km = 2.0 * std::f64::consts::PI * cfg.wheel_radius_m / 1000.0;
        let field = Field::new(cfg, cfg.track());
        let feeds = (0..cfg.cars)
            .filter(|&car| keep(car))
            .map(|car| {
                (
                    car,
                    CarFeed::new(cfg.driver(car), field::car_rng(cfg.seed, car, 2)),
                )
            })
            .collect();
        Simulator {
            cfg: cfg.clone(),
            sensors: Sensors {
                kmh_per_rpm: cfg.gear_ratios.map(|r| circumference_km * 60.0 / r),
                racing_top_mps: field.track.profile_top(),
                dt: 1.0 / cfg.rate_hz,
            },
            field,
            feeds,
            injected: Injected::default(),
        }
    }

    #[cfg(test)]
    pub fn injected(&self) -> Injected {
        self.injected
    }

    fn done(&self) -> bool {
        self.feeds
            .iter()
            .all(|(car, _)| !self.field.cars[*car].in_feed())
    }

    fn step(&mut self, out: &mut Vec<Ingest>) {
        let ts_ms = self.field.ts_ms(self.field.tick);
        let lap_m = self.field.track.lap_m;
        for (car, feed) in self.feeds.iter_mut() {
            let state = &self.field.cars[*car];
            if !state.in_feed() {
                continue;
            }
            let mut sample =
                feed.sample(state, &self.cfg, &self.sensors, &mut self.injected, ts_ms);
            let theta = 2.0 * std::f64::consts::PI * state.s.rem_euclid(lap_m) / lap_m;
            sample.position = Some([
                (700.0 * theta.cos() + 150.0 * (3.0 * theta).cos()) as f32,
                (450.0 * theta.sin()) as f32,
            ]);
            out.push(Ingest::Record(sample));
        }
        self.field.step();
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
    use pitwall_dataflows::Telemetry;

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

    fn at(circuit: &str, cars: usize, laps: u32) -> SimConfig {
        SimConfig {
            cars,
            laps: Some(laps),
            circuit: circuit.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn the_circuits_have_the_pace_of_real_ones() {
        let mut checks = vec![];
        // Reference lap (s) and top speed (km/h) without DRS of a healthy car, against real
        // race laps: Monaco ~76 s and ~285 km/h, Monza ~84 s (its fast corners a little faster here), Silverstone ~91 s.
        for (name, lap, top) in [
            ("monaco", 72.0..82.0, 270.0..300.0),
            ("monza", 74.0..90.0, 320.0..352.0),
            ("silverstone", 86.0..96.0, 300.0..335.0),
        ] {
            let t = at(name, 1, 1).track();
            eprintln!(
                "{name}: lap {:.1} s, top {:.0} km/h, SC cap {:.0}, VSC cap {:.0}",
                t.lap_time_s,
                t.profile_top() * 3.6,
                t.sc_cap_mps * 3.6,
                t.vsc_cap_mps * 3.6
            );
            checks.push((
                name,
                lap.contains(&t.lap_time_s),
                top.contains(&(t.profile_top() * 3.6)),
            ));
        }
        assert!(checks.iter().all(|c| c.1 && c.2), "{checks:?}");
    }

    #[test]
    fn bad_rain_settings_are_named() {
        for (cfg, key) in [
            (
                SimConfig {
                    rain_chance: 1.5,
                    ..Default::default()
                },
                "simulator.rain_chance",
            ),
            (
                SimConfig {
                    wet_grip_intermediate: 0.0,
                    ..Default::default()
                },
                "simulator.wet_grip_intermediate",
            ),
            (
                SimConfig {
                    wet_spin_slick: 400.0,
                    ..Default::default()
                },
                "simulator.wet_spin_slick",
            ),
            (
                SimConfig {
                    wet_spin_intermediate: f64::NAN,
                    ..Default::default()
                },
                "simulator.wet_spin_intermediate",
            ),
        ] {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        assert!(SimConfig::default().validate().is_ok());
    }

    #[test]
    fn the_race_is_the_same_however_cars_are_dealt() {
        let cfg = at("monaco", 7, 3);
        let mut whole = race(&cfg, 0, 1);
        let mut split = race(&cfg, 0, 2);
        split.extend(race(&cfg, 1, 2));
        let key = |s: &Telemetry| (s.driver, s.ts_ms);
        whole.sort_by_key(key);
        split.sort_by_key(key);
        assert_eq!(whole, split);
    }
}
