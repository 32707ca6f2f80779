//! Race intelligence: laps, pit stops, running order, the field's state and predictions.
//!
//! Two halves, as the engine is built:
//! - [`lap_tracker`] runs in the per-driver timely analysis, one sample at a time, and hands on
//!   facts: a lap completed ([`LapDone`]), a pit stop made ([`PitStop`]).
//! - The views, on differential dataflow, keep what needs more than one driver up to date as
//!   those facts arrive: [`driver_laps`] (stints, tyre age, pace against the driver's own best),
//!   [`running_order`] (position, gap, interval at the end of each lap), [`field_state`] (green,
//!   neutralised, red flag, rain, from the whole field's laps) and [`predict`] (the three models,
//!   from a lap joined with the field). [`views::race_views`] wires them. A change is an update
//!   (a retraction and an insertion): a position corrected by a car whose lap was reported late
//!   flows on to the sinks as such.
//!
//! A view whose group would grow with the race (a driver's laps, the whole race's laps) is not
//! a `reduce`, which recomputes a group from all of its input at every step: it keeps its state
//! per key and brings it up to date from the changes ([`keyed_state`]), so that the work of a
//! step does not grow with the laps behind it. The reduces left are keyed by lap number, whose
//! groups hold about one lap of the field.
//!
//! Values crossing differential operators are integers (ms, permille, ppm): they must be `Ord`.

pub mod book;
pub mod car_health;
pub mod chequered_flag;
pub mod driver_laps;
pub mod facts;
pub mod field_state;
pub mod keyed_state;
pub mod lap_tracker;
pub mod predict;
pub mod rejoin;
pub mod retirement;
pub mod running_order;
pub mod views;

use crate::record::DriverId;
use serde::{Deserialize, Serialize};

/// The median of `values` (reordered): the element at `len / 2` in sorted order, the upper of
/// the two middle ones for an even count; `None` when empty.
pub(crate) fn median<T: Copy + Ord>(values: &mut [T]) -> Option<T> {
    let mid = values.len() / 2;
    (!values.is_empty()).then(|| *values.select_nth_unstable(mid).1)
}

pub use book::RaceBook;
pub use car_health::CarHealth;
pub use driver_laps::DriverLap;
pub use facts::RaceFact;
pub use field_state::{FieldState, FieldView};
pub use predict::{Hazards, LapHazard, ModelType, Models, PitModel, Prediction};
pub use running_order::Standing;

/// Parameters of lap and pit-lane detection and of the field's state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RaceConfig {
    /// Below this speed (km/h) the car stands still.
    pub stationary_kmh: f32,
    /// A pit-lane passage is looked for in stretches at or below this speed (km/h).
    pub slow_kmh: f32,
    /// Speed limiters of every circuit fall in this range (km/h).
    pub limiter_min_kmh: f32,
    pub limiter_max_kmh: f32,
    /// On the limiter the speed stays within this band (km/h) under throttle.
    pub limiter_band_kmh: f32,
    pub limiter_min_throttle_pct: f32,
    /// A plateau this long (ms, and samples) means the limiter is on.
    pub limiter_detect_ms: i64,
    pub limiter_min_samples: u32,
    /// Leaving the pit lane: faster than the limit by this much (km/h).
    pub pit_exit_margin_kmh: f32,
    /// A pit stop: at least this long on the limiter and this long stationary (ms).
    pub min_limiter_ms: i64,
    pub min_stationary_ms: i64,
    /// The last lap is closed when the car has gone this far past a lap's distance (× lap).
    pub last_lap_overrun: f64,
    /// Deceleration (m/s²) beyond what the car's brakes do on a clean stop: a lock-up or impact.
    pub hard_decel_mps2: f64,
    /// The field, judged by the median of its laps' pace (lap time / the driver's best, ‰):
    /// neutralised (safety car, VSC) at or above this.
    pub neutralised_pace_permille: u32,
    /// ... and stays so, once called a lap before, while the pace is at or above this.
    pub neutralised_exit_pace_permille: u32,
    /// Rain: pace at or above this, with the field's wheel spin at `rain_spin_factor` × the
    /// race's rate on green laps (a safety car's slow laps stay well below that).
    pub rain_pace_permille: u32,
    pub rain_spin_factor: f64,
    /// ... and at this factor when the field is as slow as under a neutralisation.
    pub rain_spin_factor_when_slow: f64,
    /// Red flag: this share (‰) of the field stood still at least `red_stationary_ms` on its lap.
    pub red_share_permille: u32,
    pub red_stationary_ms: i64,
    /// The race views advance in steps of this many epochs (engine.epoch_ms each): their
    /// rows come up to one step later, for a fraction of the work.
    pub view_step_epochs: u64,
    /// The step when a file or the simulator is replayed as fast as it can be read: nobody
    /// watches the views move then, and their final rows are the same at any step, so a
    /// coarse step saves most of the views' work (differential's reduces replay a key's
    /// history at every step).
    pub replay_view_step_epochs: u64,
    /// Fewest cars whose laps make a judgement of the field.
    pub min_field_cars: usize,
    /// A car standing with its engine off has retired after this long (ms).
    pub retire_engine_off_ms: i64,
    /// A car standing in neutral, engine running, after this long on track (ms), or this long
    /// in the pit lane, where standing is what a stop is.
    pub retire_on_track_ms: i64,
    pub retire_in_pit_ms: i64,
    /// Car health (see `car_health`): top speed down this much (km/h) against the usual gap to
    /// the field with a second sign, or `health_strong_kmh` alone; RPM ceiling down this much.
    pub health_speed_kmh: i32,
    pub health_strong_kmh: i32,
    pub health_rpm: i32,
    /// Closer than this (ms) to the car ahead at the line is traffic (car health, undercut).
    pub health_traffic_ms: i64,
    /// The pit loss (ms) a rejoin is projected with before the race has shown green stops, and
    /// its share beyond the standstill under a neutralisation before it has shown neutralised
    /// ones (`rejoin.rs` learns both from the race's stops).
    pub pit_loss_prior_ms: i64,
    pub pit_loss_neutralised_share: f64,
    /// A feed without lap numbers: laps counted from the distance integrated from speed since
    /// the car first moved, one every this many metres (the circuit's length); 0 = off (such
    /// samples make no laps).
    pub lap_length_m: f64,
}

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig {
            stationary_kmh: 2.0,
            slow_kmh: 100.0,
            limiter_min_kmh: 35.0,
            limiter_max_kmh: 100.0,
            limiter_band_kmh: 2.0,
            limiter_min_throttle_pct: 10.0,
            limiter_detect_ms: 2_500,
            limiter_min_samples: 8,
            pit_exit_margin_kmh: 15.0,
            min_limiter_ms: 8_000,
            min_stationary_ms: 1_000,
            last_lap_overrun: 1.15,
            lap_length_m: 0.0,
            hard_decel_mps2: 60.0,
            neutralised_pace_permille: 1_250,
            neutralised_exit_pace_permille: 1_150,
            rain_pace_permille: 1_060,
            rain_spin_factor: 8.0,
            rain_spin_factor_when_slow: 16.0,
            red_share_permille: 500,
            red_stationary_ms: 60_000,
            view_step_epochs: 10,
            replay_view_step_epochs: 600,
            min_field_cars: 3,
            retire_engine_off_ms: 5_000,
            retire_on_track_ms: 30_000,
            retire_in_pit_ms: 60_000,
            health_speed_kmh: 8,
            health_strong_kmh: 15,
            health_rpm: 400,
            health_traffic_ms: 1_000,
            pit_loss_prior_ms: 19_500,
            pit_loss_neutralised_share: 0.55,
        }
    }
}

/// A lap completed by one driver, as the per-driver tracker saw it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LapDone {
    pub driver: DriverId,
    pub lap: u16,
    /// Event time (epoch ms) of the lap's start and end.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Closed by distance (the last lap, which has no next lap number).
    pub by_distance: bool,
    pub samples: u32,
    /// Samples the wheel-spin detector flagged.
    pub spin_samples: u32,
    pub max_speed_kmh: u16,
    /// Highest real gear reached.
    pub top_gear: u8,
    pub max_rpm: u32,
    pub stationary_ms: i64,
    /// Decelerations beyond clean braking (lock-up or impact-like).
    pub hard_decels: u32,
    /// Gear values the feed sent that no car has.
    pub glitch_gears: u32,
    /// Samples with the DRS flap open (its top speed is not a car alone's).
    pub drs_samples: u32,
}

impl LapDone {
    pub fn lap_time_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }
}

/// A stop in the pit lane.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PitStop {
    pub driver: DriverId,
    /// The in-lap: the lap the car entered the pit lane on.
    pub lap: u16,
    pub pit_in_ms: i64,
    pub pit_out_ms: i64,
    pub stationary_ms: i64,
    /// The limiter speed the car ran at (km/h).
    pub limit_kmh: u16,
}

/// One driver's lap with everything the views know of it: `laps.jsonl`, `/api/laps`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LapRow {
    pub lap: DriverLap,
    pub standing: Standing,
    pub field: FieldView,
}

impl LapRow {
    /// The position the car would hold after a stop on the next lap, under this lap's field
    /// state; and the pit loss that assumes (ms).
    pub fn rejoin_if_pit(&self) -> (u16, i64) {
        match self.field.state {
            FieldState::Neutralised | FieldState::Red => (
                self.standing.rejoin_neutralised,
                self.standing.pit_loss.neutralised_ms,
            ),
            _ => (self.standing.rejoin_green, self.standing.pit_loss.green_ms),
        }
    }
}

impl LapRow {
    /// The car ahead this car is within reach of undercutting (`running_order`), under green.
    pub fn undercut_on(&self) -> Option<DriverId> {
        self.standing
            .undercut_on
            .filter(|_| self.field.state == FieldState::Green)
    }
}

/// A pit stop with the field's state on its in-lap: `pit_stops.jsonl`, `/api/pit_stops`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PitRow {
    pub stop: PitStop,
    pub field_state: FieldState,
}

/// What the race views hand the sinks: an insertion (`diff` > 0) or a retraction (< 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaceUpdate {
    pub item: RaceItem,
    pub diff: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RaceItem {
    Lap(LapRow),
    Pit(PitRow),
    Prediction(Prediction),
    Health(CarHealth),
    Retirement(retirement::CarStop),
}
