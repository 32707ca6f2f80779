//! Where a car would rejoin if it stopped on the next lap (`running_order` counts the cars it
//! would fall behind), and the pit loss that assumes, learned from the race's own stops.
//!
//! A stop's loss is measured against the field: the car's in-lap and out-lap against the
//! median of the same two laps of the cars that did not stop on them, its standstill replaced
//! by a standard one (a slow stop does not make the lane longer). Stops whose in-lap or
//! out-lap ran under a SC/VSC are the neutralised samples, the others the green ones; under a
//! red flag none. The loss a lap `n`'s projection uses is the median of the samples of stops
//! whose in-lap was `n - 2` or earlier (their out-lap is over before lap `n` for any car not
//! lapped), with the prior (`race.pit_loss_prior_ms` under green, its share beyond the
//! standstill under a SC/VSC) counted twice: one stop moves nothing, two move it half way.
//! The neutralised loss is at most the green one: the lane is as long and the field slower.
//! (Measured against the field's same laps, the stops under a SC can cost more: the leaders
//! stop together and the cars that stay out are the back of the field, whose laps ran a
//! different part of the neutralisation; Monaco 2019's nine measured 20-24 s.)
//! A lap's projection therefore changes after its end only for a stop of a lapped car or a
//! lap reported late.

use super::field_state::{FieldState, FieldView};
use super::{median, DriverLap};
use crate::dataflow::Epoch;
use crate::record::DriverId;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

/// A stop's sample counts for the projections of laps up to this number (no F1 race is
/// longer).
pub const LAST_LAP: u16 = 200;

/// Samples outside this range (ms) are not a stop's loss (a car that stood on track in its
/// out-lap, a lap timed wrong).
const PLAUSIBLE_MS: std::ops::Range<i64> = 3_000..90_000;

/// The pit loss: the prior (configuration), and under a neutralisation the green loss beyond
/// the standstill times this share (the field's laps are slower, the lane and the box are not).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPrior {
    pub green_ms: i64,
    pub neutralised_share: f64,
}

impl LossPrior {
    /// The green and neutralised losses to project with (ms).
    pub fn losses(&self) -> (i64, i64) {
        let moving = (self.green_ms - STANDSTILL_MS).max(0);
        let share = (moving as f64 * self.neutralised_share).round() as i64 + STANDSTILL_MS;
        (self.green_ms, share)
    }
}

/// A stop's standstill (ms): the box takes as long under a safety car.
pub(crate) const STANDSTILL_MS: i64 = 2_500;

/// One stop's loss, measured as the module docs say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LossSample {
    /// The in-lap or the out-lap ran under a SC/VSC.
    pub neutralised: bool,
    pub loss_ms: i64,
    pub driver: DriverId,
}

/// The losses to project with, green and neutralised (ms), from the samples of the stops made
/// so far: with the prior counted twice, the median of each.
pub fn learned_losses<'a>(
    prior: &LossPrior,
    samples: impl Iterator<Item = &'a LossSample> + Clone,
) -> Losses {
    let (green_prior, neutralised_prior) = prior.losses();
    let learn = |neutralised: bool, prior_ms: i64| {
        let mut v: Vec<i64> = samples
            .clone()
            .filter(|s| s.neutralised == neutralised)
            .map(|s| s.loss_ms)
            .collect();
        let stops = v.len() as u16;
        v.extend([prior_ms, prior_ms]);
        v.sort_unstable();
        let mid = v.len() / 2;
        let ms = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2
        };
        (ms, stops)
    };
    let (green_ms, green_stops) = learn(false, green_prior);
    let (neutralised_ms, neutralised_stops) = learn(true, neutralised_prior);
    Losses {
        green_ms,
        // The lane is as long under a SC/VSC and the field slower: a stop never costs more.
        neutralised_ms: neutralised_ms.min(green_ms),
        green_stops,
        neutralised_stops,
    }
}

/// The pit losses a projection used, and how many of the race's stops each was learned from
/// (0: the prior alone).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Losses {
    pub green_ms: i64,
    pub neutralised_ms: i64,
    pub green_stops: u16,
    pub neutralised_stops: u16,
}

/// What a loss sample needs of a driver's lap, in the group of lap `k`: lap `k` itself or
/// (`next`) lap `k + 1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LossLap {
    pub driver: DriverId,
    pub next: bool,
    pub time_ms: i64,
    pub stationary_ms: i64,
    pub pit_in: bool,
    pub pit_out: bool,
    pub state: FieldState,
}

/// The samples of the stops whose in-lap is the group's lap `k`, from every car's laps `k` and
/// `k + 1`. None without `min_cars` cars that ran both laps without a stop.
pub fn loss_samples(group: &[&LossLap], min_cars: usize) -> Vec<LossSample> {
    // Each driver's two laps: the group is sorted by driver, lap `k` before `k + 1`.
    let mut pairs: Vec<(&LossLap, &LossLap)> = Vec::new();
    for w in group.windows(2) {
        if w[0].driver == w[1].driver && !w[0].next && w[1].next {
            pairs.push((w[0], w[1]));
        }
    }
    let mut field: Vec<i64> = pairs
        .iter()
        .filter(|(k, k1)| !k.pit_in && !k.pit_out && !k1.pit_in && !k1.pit_out)
        .map(|(k, k1)| k.time_ms + k1.time_ms)
        .collect();
    if field.len() < min_cars {
        return Vec::new();
    }
    let Some(reference) = median(&mut field) else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter(|(k, k1)| k.pit_in && !k1.pit_in && k1.pit_out)
        .filter(|(k, k1)| k.state != FieldState::Red && k1.state != FieldState::Red)
        .filter_map(|(k, k1)| {
            let standing = k.stationary_ms + k1.stationary_ms;
            let loss = k.time_ms + k1.time_ms - reference - standing + STANDSTILL_MS;
            let neutralised =
                k.state == FieldState::Neutralised || k1.state == FieldState::Neutralised;
            PLAUSIBLE_MS.contains(&loss).then_some(LossSample {
                neutralised,
                loss_ms: loss,
                driver: k.driver,
            })
        })
        .collect()
}

/// Driver laps with the field's view of each, by driver and lap.
pub type LapFields<'scope> =
    VecCollection<'scope, Epoch, ((DriverId, u16), (DriverLap, FieldView)), isize>;

/// The stops' loss samples by in-lap, from the driver laps with the field's view of each.
pub fn pit_loss_samples<'scope>(
    laps: LapFields<'scope>,
    min_cars: usize,
) -> VecCollection<'scope, Epoch, (u16, LossSample), isize> {
    laps.flat_map(|((driver, n), (l, field))| {
        let this = LossLap {
            driver,
            next: false,
            time_ms: l.lap_time_ms,
            stationary_ms: l.done.stationary_ms,
            pit_in: l.pit_in,
            pit_out: l.pit_out,
            state: field.state,
        };
        let previous = n
            .checked_sub(1)
            .filter(|&k| k > 0)
            .map(|k| (k, LossLap { next: true, ..this }));
        std::iter::once((n, this)).chain(previous)
    })
    .reduce_named("PitLossSamples", move |_lap, input, output| {
        let group: Vec<&LossLap> = input
            .iter()
            .filter(|(_, diff)| *diff > 0)
            .map(|(l, _)| *l)
            .collect();
        for sample in loss_samples(&group, min_cars) {
            output.push((sample, 1isize));
        }
    })
}

/// The position a car that completed a lap at `end_ms` would hold after losing `loss_ms`
/// against the cars that completed the same lap at `crossings` (itself among them), and the
/// cars still to complete it at `to_come`: where each is expected to cross, its gap to this
/// car on the lap before kept.
pub fn rejoin_position(
    crossings: &[(i64, DriverId)],
    to_come: &[i64],
    me: DriverId,
    end_ms: i64,
    loss_ms: i64,
) -> u16 {
    let ahead = crossings
        .iter()
        .filter(|(t, d)| *d != me && *t < end_ms + loss_ms)
        .count()
        + to_come.iter().filter(|&&t| t < end_ms + loss_ms).count();
    (ahead + 1).min(u16::MAX as usize) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_drops_the_car_behind_every_car_within_its_loss() {
        let d = |s| DriverId::new(s).unwrap();
        let crossed = [
            (1_000, d("VER")),
            (3_000, d("HAM")),
            (20_000, d("LEC")),
            (23_500, d("NOR")),
            (30_000, d("ALO")),
        ];
        // HAM, 2nd, loses 21 s: behind LEC (17 s back) and NOR (20.5 s), ahead of ALO (27 s).
        assert_eq!(rejoin_position(&crossed, &[], d("HAM"), 3_000, 21_000), 4);
        // The leader with a loss shorter than his lead keeps it.
        assert_eq!(rejoin_position(&crossed, &[], d("VER"), 1_000, 1_500), 1);
        // Last stays last.
        assert_eq!(rejoin_position(&crossed, &[], d("ALO"), 30_000, 21_000), 5);
        // A car still to cross, expected 24 s after HAM's crossing, is behind it; one
        // expected 20 s after it, ahead.
        assert_eq!(
            rejoin_position(&crossed, &[27_000, 23_000], d("HAM"), 3_000, 21_000),
            5
        );
    }

    fn lap(driver: &str, next: bool, time_ms: i64, stop: bool, state: FieldState) -> LossLap {
        LossLap {
            driver: DriverId::new(driver).unwrap(),
            next,
            time_ms,
            stationary_ms: if stop && !next { 4_500 } else { 0 },
            pit_in: stop && !next,
            pit_out: stop && next,
            state,
        }
    }

    #[test]
    fn a_stop_loses_its_two_laps_against_the_field_with_a_standard_standstill() {
        let g = FieldState::Green;
        let mut group = [
            lap("ALO", false, 80_000, false, g),
            lap("ALO", true, 81_000, false, g),
            lap("HAM", false, 79_000, false, g),
            lap("HAM", true, 80_000, false, g),
            lap("LEC", false, 81_000, false, g),
            lap("LEC", true, 82_000, false, g),
            // VER stops: in-lap 92 s with 4.5 s standing, out-lap 90 s.
            lap("VER", false, 92_000, true, g),
            lap("VER", true, 90_000, true, FieldState::Neutralised),
        ];
        group.sort();
        let refs: Vec<&LossLap> = group.iter().collect();
        // Field median 161 s; 182 s - 161 s - 4.5 s standing + 2.5 s standard = 19 s, and the
        // out-lap under a SC makes it a neutralised sample.
        let samples = loss_samples(&refs, 3);
        assert_eq!(
            samples,
            vec![LossSample {
                neutralised: true,
                loss_ms: 19_000,
                driver: DriverId::new("VER").unwrap(),
            }]
        );
        // Two cars that ran both laps are not a field.
        assert!(loss_samples(&refs[2..], 3).is_empty());
        // Under a red flag the pit lane is a queue, not a stop.
        group[7].state = FieldState::Red;
        group.sort();
        assert!(loss_samples(&group.iter().collect::<Vec<_>>(), 3).is_empty());
    }

    #[test]
    fn the_prior_counts_twice_and_each_state_learns_apart() {
        let prior = LossPrior {
            green_ms: 20_000,
            neutralised_share: 0.5,
        };
        let s = |neutralised, loss_ms| LossSample {
            neutralised,
            loss_ms,
            driver: DriverId::new("VER").unwrap(),
        };
        let none: [LossSample; 0] = [];
        assert_eq!(
            learned_losses(&prior, none.iter()),
            Losses {
                green_ms: 20_000,
                neutralised_ms: 11_250,
                green_stops: 0,
                neutralised_stops: 0,
            }
        );
        // One green stop moves nothing; two move it half way; the neutralised loss is its own.
        let one = [s(false, 24_000)];
        assert_eq!(learned_losses(&prior, one.iter()).green_ms, 20_000);
        let three = [s(false, 24_000), s(false, 24_000), s(true, 15_000)];
        let l = learned_losses(&prior, three.iter());
        assert_eq!((l.green_ms, l.green_stops), (22_000, 2));
        assert_eq!((l.neutralised_ms, l.neutralised_stops), (11_250, 1));
        // Never more under a neutralisation than under green.
        let dear = [s(true, 30_000), s(true, 30_000), s(true, 30_000)];
        assert_eq!(learned_losses(&prior, dear.iter()).neutralised_ms, 20_000);
    }

    #[test]
    fn under_a_neutralisation_the_share_beyond_the_standstill() {
        let prior = LossPrior {
            green_ms: 20_000,
            neutralised_share: 0.5,
        };
        assert_eq!(prior.losses(), (20_000, 11_250));
    }
}
