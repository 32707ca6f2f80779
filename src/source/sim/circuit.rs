//! A circuit as the simulator drives it: speed profiles along the lap (accelerate on the
//! straights towards a drag-limited top speed, brake at a fixed deceleration into each corner)
//! for a healthy car, with DRS open and with power lost, and the pit lane's geometry.

use crate::config::CircuitConfig;

/// Resolution of the speed profiles, m.
pub const STEP_M: f64 = 5.0;
/// Braking the profiles assume, m/s², and the most the simulated cars ever brake.
pub const BRAKE_MPS2: f64 = 42.0;
pub const MAX_BRAKE_MPS2: f64 = 50.0;
/// Acceleration from rest; it fades to 0 at the top speed.
pub const ACCEL_MPS2: f64 = 17.0;
/// A car that has lost power: this much lower top speed (km/h) and this share of its push.
const POWER_LOSS_KMH: f64 = 40.0;
const POWER_LOSS_ACCEL: f64 = 0.8;

/// Which of a circuit's profiles a car follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Normal,
    Drs,
    PowerLoss,
    PowerLossDrs,
}

#[derive(Clone, Debug)]
pub struct Track {
    pub name: String,
    pub lap_m: f64,
    pub race_laps: u32,
    /// m/s along the lap at `STEP_M` resolution, per [`Profile`].
    profiles: [Vec<f64>; 4],
    /// The normal profile on a fully wet track, on slicks and on intermediates, as shares of
    /// the dry one (at the same resolution).
    wet_shares: [Vec<f64>; 2],
    pub top_mps: f64,
    pub drs_zones: Vec<(f64, f64)>,
    pub pit_limit_mps: f64,
    /// The pit lane from its entry (before the line) to its exit, m; the line and the box are
    /// at these distances from the entry.
    pub pit_lane_m: f64,
    pub pit_line_m: f64,
    pub pit_box_m: f64,
    pub overtake_chance: f64,
    /// Reference lap time of a healthy car at full pace, s.
    pub lap_time_s: f64,
    /// Share of the lap's time spent on a straight (where overtakes happen).
    pub straight_share: f64,
    /// Speed caps (m/s) that make a lap under the safety car and under the VSC this many
    /// times the reference lap: the cars keep most of their corner speed and lose it on the
    /// straights, as real ones do.
    pub sc_cap_mps: f64,
    pub vsc_cap_mps: f64,
}

/// Lap time under a neutralisation against the reference lap: safety car, VSC.
pub const SC_LAP_RATIO: f64 = 1.6;
pub const VSC_LAP_RATIO: f64 = 1.45;
/// Share of the profile's corner speeds kept under a neutralisation.
pub const NEUTRAL_CORNER_SHARE: f64 = 0.9;

impl Track {
    /// The circuit, with `wet_grip` the grip left on a fully wet track (share of dry) on
    /// slicks and on intermediates.
    pub fn new(name: &str, c: &CircuitConfig, wet_grip: [f64; 2]) -> Track {
        let top = c.top_kmh / 3.6;
        let normal = speed_profile(c, c.top_kmh, 1.0, 1.0);
        let drs = speed_profile(c, c.drs_top_kmh, 1.0, 1.0);
        let loss = speed_profile(c, c.top_kmh - POWER_LOSS_KMH, POWER_LOSS_ACCEL, 1.0);
        let loss_drs = speed_profile(c, c.drs_top_kmh - POWER_LOSS_KMH, POWER_LOSS_ACCEL, 1.0);
        let wet_shares = wet_grip.map(|grip| {
            speed_profile(c, c.top_kmh, 1.0, grip)
                .iter()
                .zip(&normal)
                .map(|(w, d)| (w / d.max(1.0)).min(1.0))
                .collect()
        });
        let lap_time_s = normal.iter().map(|v| STEP_M / v.max(1.0)).sum::<f64>();
        let max = normal.iter().copied().fold(0.0, f64::max);
        let straight_s: f64 = normal
            .iter()
            .filter(|v| **v >= 0.8 * max)
            .map(|v| STEP_M / v.max(1.0))
            .sum();
        let capped_lap = |cap: f64| {
            normal
                .iter()
                .map(|v| STEP_M / (v * NEUTRAL_CORNER_SHARE).min(cap).max(1.0))
                .sum::<f64>()
        };
        // Bisection: the lap time falls as the cap rises.
        let cap_for = |ratio: f64| {
            let (mut lo, mut hi) = (5.0, max);
            for _ in 0..50 {
                let mid = (lo + hi) / 2.0;
                if capped_lap(mid) > ratio * lap_time_s {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            hi
        };
        Track {
            sc_cap_mps: cap_for(SC_LAP_RATIO),
            vsc_cap_mps: cap_for(VSC_LAP_RATIO),
            name: name.to_string(),
            lap_m: c.lap_m,
            race_laps: c.laps,
            profiles: [normal, drs, loss, loss_drs],
            wet_shares,
            top_mps: top,
            drs_zones: c.drs_zones.iter().map(|z| (z[0], z[1])).collect(),
            pit_limit_mps: c.pit_limit_kmh / 3.6,
            pit_lane_m: c.pit_entry_before_line_m + c.pit_exit_after_line_m,
            pit_line_m: c.pit_entry_before_line_m,
            pit_box_m: c.pit_entry_before_line_m + c.pit_box_after_line_m,
            overtake_chance: c.overtake_chance,
            lap_time_s,
            straight_share: (straight_s / lap_time_s).max(0.01),
        }
    }

    /// Profile speed, m/s, at distance `s` from the line (any lap).
    pub fn speed_at(&self, profile: Profile, s: f64) -> f64 {
        self.along(&self.profiles[profile as usize], s)
    }

    /// A profile's value at `s` metres (any lap), between its two nearest steps.
    fn along(&self, p: &[f64], s: f64) -> f64 {
        let x = s.rem_euclid(self.lap_m) / STEP_M;
        let i = x as usize % p.len();
        let j = (i + 1) % p.len();
        let f = x - x.floor();
        p[i] * (1.0 - f) + p[j] * f
    }

    /// The share of its dry profile speed a car keeps at `s` with `wetness` (0 dry, 1 fully
    /// wet) on its tyres: slicks lose grip as the track gets wet; intermediates have their
    /// wet grip throughout (on a damp track they are no faster).
    pub fn wet_share(&self, s: f64, wetness: f64, intermediates: bool) -> f64 {
        let wet = self.along(&self.wet_shares[intermediates as usize], s);
        if intermediates {
            wet
        } else {
            1.0 - wetness * (1.0 - wet)
        }
    }

    /// The lap time of a healthy car at full pace on a fully wet track, s: on slicks, on
    /// intermediates.
    pub fn wet_lap_time_s(&self) -> [f64; 2] {
        [0, 1].map(|k| {
            self.profiles[0]
                .iter()
                .zip(&self.wet_shares[k])
                .map(|(v, w)| STEP_M / (v * w).max(1.0))
                .sum()
        })
    }

    /// The fastest speed of the normal profile, m/s.
    pub fn profile_top(&self) -> f64 {
        self.profiles[0].iter().copied().fold(0.0, f64::max)
    }

    /// The DRS zone (its index) that `s` is in.
    pub fn drs_zone(&self, s: f64) -> Option<usize> {
        let s = s.rem_euclid(self.lap_m);
        self.drs_zones.iter().position(|&(from, to)| {
            if from <= to {
                (from..to).contains(&s)
            } else {
                s >= from || s < to
            }
        })
    }

    /// Where the pit lane starts, m from the line.
    pub fn pit_entry_s(&self) -> f64 {
        self.lap_m - self.pit_line_m
    }
}

/// Accelerations fade with speed so the car tends to `top_kmh`.
pub fn accel_at(v: f64, top: f64, push: f64) -> f64 {
    ACCEL_MPS2 * push * (1.0 - (v / top).powi(2)).max(0.0)
}

/// Speed (m/s) along the lap at `STEP_M` resolution, with `grip` the share of the dry grip
/// (corner speeds go with its square root, braking and traction with it).
fn speed_profile(c: &CircuitConfig, top_kmh: f64, push: f64, grip: f64) -> Vec<f64> {
    let n = ((c.lap_m / STEP_M) as usize).max(2);
    let top = top_kmh / 3.6;
    let mut limit = vec![top; n];
    for &[at, apex] in &c.corners {
        let apex = apex / 3.6 * grip.sqrt();
        for i in 0..=3 {
            for idx in [at / STEP_M + i as f64, at / STEP_M - i as f64] {
                let idx = (idx.max(-(n as f64)) as isize).rem_euclid(n as isize) as usize;
                limit[idx] = limit[idx].min(apex);
            }
        }
    }
    let mut v = limit.clone();
    // Two laps of passes so the wrap-around settles.
    for _ in 0..2 {
        for i in 0..n {
            let prev = v[(i + n - 1) % n];
            let accel = accel_at(prev, top, push).min(ACCEL_MPS2 * grip);
            v[i] = limit[i].min((prev * prev + 2.0 * accel * STEP_M).sqrt());
        }
        for i in (0..n).rev() {
            let next = v[(i + 1) % n];
            v[i] = v[i].min((next * next + 2.0 * BRAKE_MPS2 * grip * STEP_M).sqrt());
        }
    }
    v
}
