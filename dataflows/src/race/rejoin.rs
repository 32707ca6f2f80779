//! What a pit stop costs in this race, learned from its own stops: where a car would rejoin if
//! it stopped on the next lap (`running_order` counts the cars it would fall behind).
//!
//! A stop's loss is what its in-lap and out-lap took beyond the lap times of the cars that did
//! not stop on those laps (their median): lane time, standstill and the slow entry and exit
//! against the same stretch at the field's pace on the same laps, so a stop under a safety car
//! is measured against the safety car's laps. It is kept in two parts, the standstill and the
//! rest (a slow stop or a car repaired in the box is not what the next car will lose), apart by
//! the field's state on the in-lap (green, neutralised). The estimate for lap n is the median
//! of each part over the stops whose out-lap is at least a lap behind n, with the prior from
//! configuration counted as two stops (one odd stop does not move it).
//!
//! Three reduces keyed by lap number (groups of about one lap of the field) and one keyed by
//! stop.

use super::field_state::{FieldState, FieldView};
use super::DriverLap;
use crate::dataflow::Epoch;
use crate::record::DriverId;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

/// Laps after a stop its loss counts for (a race is shorter).
const LAPS_AHEAD: u16 = 120;

/// The pit loss the running order projects with on one lap, ms; `None` until the race has
/// shown a stop of that kind.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct PitLoss {
    pub green_ms: Option<i64>,
    pub neutralised_ms: Option<i64>,
}

/// The loss before the race shows one: the prior (configuration), and under a neutralisation
/// the green loss beyond the standstill times this share (the field's laps are slower, the
/// lane and the box are not).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPrior {
    pub green_ms: i64,
    pub neutralised_share: f64,
}

impl PitLoss {
    /// The green and neutralised losses to project with, learned or prior.
    pub fn or_prior(&self, prior: &LossPrior) -> (i64, i64) {
        let green = self.green_ms.unwrap_or(prior.green_ms);
        // The share is of the loss beyond the standstill: the box takes as long under a SC.
        let moving = (green - PRIOR_STANDSTILL_MS).max(0);
        let share = (moving as f64 * prior.neutralised_share).round() as i64 + PRIOR_STANDSTILL_MS;
        (green, self.neutralised_ms.unwrap_or(share))
    }
}

/// A stop's standstill before the race has shown one (ms).
const PRIOR_STANDSTILL_MS: i64 = 2_500;

/// One car's lap as the loss needs it: (lap time, driver, in-lap, out-lap, standstill).
type LapTime = (i64, DriverId, bool, bool, i64);

/// A stop (driver, in-lap) and one of its laps' excess and standstill, ms.
type StopPart = ((DriverId, u16), (i64, i64));

/// The excess of each stopping car's in- and out-lap over the median lap of the cars that did
/// not stop on that lap, and its standstill.
fn lap_excess<'scope>(
    laps: VecCollection<'scope, Epoch, DriverLap, isize>,
) -> VecCollection<'scope, Epoch, StopPart, isize> {
    laps.filter(|l| l.done.lap > 1 && l.lap_time_ms > 0)
        .map(|l| {
            (
                l.done.lap,
                (
                    l.lap_time_ms,
                    l.done.driver,
                    l.pit_in,
                    l.pit_out,
                    l.done.stationary_ms,
                ),
            )
        })
        .reduce_named("PitLapExcess", |lap, input, output| {
            let on: Vec<&LapTime> = input
                .iter()
                .filter(|(_, d)| *d > 0)
                .map(|(v, _)| *v)
                .collect();
            // Sorted by lap time: the median of the cars that stayed out.
            let stayed: Vec<i64> = on
                .iter()
                .filter(|(_, _, i, o, _)| !i && !o)
                .map(|(t, ..)| *t)
                .collect();
            let Some(&median) = stayed.get(stayed.len() / 2) else {
                return;
            };
            for &&(t, driver, pit_in, pit_out, standstill) in &on {
                // An in-lap that is also the out-lap of the stop before counts for the new one.
                let in_lap = match (pit_in, pit_out) {
                    (true, _) => *lap,
                    (false, true) => *lap - 1,
                    _ => continue,
                };
                output.push((((driver, in_lap), *lap, (t - median, standstill)), 1isize));
            }
        })
        .map(|(_, ((driver, in_lap), _lap, excess))| ((driver, in_lap), excess))
}

/// Each stop's loss, by its in-lap and whether the field was neutralised on it:
/// `(in-lap, (neutralised, loss without the standstill, standstill) ms)`.
pub fn stop_losses<'scope>(
    laps: VecCollection<'scope, Epoch, DriverLap, isize>,
    fields: VecCollection<'scope, Epoch, ((DriverId, u16), FieldView), isize>,
) -> VecCollection<'scope, Epoch, (u16, (bool, i64, i64)), isize> {
    lap_excess(laps)
        .reduce_named("PitLoss", |_stop, input, output| {
            // Both halves: the in-lap's and the out-lap's (two equal ones come as one value
            // with a count of 2).
            let (parts, loss, standstill) = input.iter().filter(|(_, d)| *d > 0).fold(
                (0isize, 0i64, 0i64),
                |(n, loss, still), ((e, s), d)| {
                    (n + d, loss + e * *d as i64, still + s * *d as i64)
                },
            );
            if parts == 2 {
                output.push(((loss - standstill, standstill), 1isize));
            }
        })
        .join(fields)
        .filter(|(_, (_, field))| field.state != FieldState::Red)
        .map(|((_, in_lap), ((moving, standstill), field))| {
            (
                in_lap,
                (field.state == FieldState::Neutralised, moving, standstill),
            )
        })
}

/// The pit loss to project with on each lap: per part, the median over the stops whose out-lap
/// ended at least a lap before it and the prior counted twice, green and neutralised apart.
pub fn loss_by_lap<'scope>(
    losses: VecCollection<'scope, Epoch, (u16, (bool, i64, i64)), isize>,
    prior: LossPrior,
) -> VecCollection<'scope, Epoch, (u16, PitLoss), isize> {
    losses
        .flat_map(|(in_lap, loss)| {
            (in_lap.saturating_add(3)..=in_lap.saturating_add(LAPS_AHEAD)).map(move |n| (n, loss))
        })
        .reduce_named("PitLossByLap", move |_lap, input, output| {
            let (green, neutralised) = prior.or_prior_parts();
            let of = |kind: bool, (moving, still): (i64, i64)| -> Option<i64> {
                let stops = || {
                    input
                        .iter()
                        .filter(move |((n, ..), d)| *n == kind && *d > 0)
                        .flat_map(|(v, d)| std::iter::repeat_n(*v, *d as usize))
                };
                stops().next()?;
                // The lower median: with the prior's two, one stop of each kind leaves it.
                let median = |mut v: Vec<i64>| {
                    v.sort_unstable();
                    v[(v.len() - 1) / 2]
                };
                let prior_twice = [0, 1];
                let m = median(
                    stops()
                        .map(|(_, m, _)| *m)
                        .chain(prior_twice.map(|_| moving))
                        .collect(),
                );
                let s = median(
                    stops()
                        .map(|(_, _, s)| *s)
                        .chain(prior_twice.map(|_| still))
                        .collect(),
                );
                Some(m + s)
            };
            output.push((
                PitLoss {
                    green_ms: of(false, green),
                    neutralised_ms: of(true, neutralised),
                },
                1isize,
            ));
        })
}

impl LossPrior {
    /// The prior's parts, green and neutralised: (loss without the standstill, standstill).
    fn or_prior_parts(&self) -> ((i64, i64), (i64, i64)) {
        let moving = (self.green_ms - PRIOR_STANDSTILL_MS).max(0);
        let share = (moving as f64 * self.neutralised_share).round() as i64;
        ((moving, PRIOR_STANDSTILL_MS), (share, PRIOR_STANDSTILL_MS))
    }
}

/// The position a car that completed a lap at `end_ms` would hold after losing `loss_ms`
/// against the cars that completed the same lap at `crossings` (itself among them).
pub fn rejoin_position(
    crossings: &[(i64, DriverId)],
    me: DriverId,
    end_ms: i64,
    loss_ms: i64,
) -> u16 {
    let ahead = crossings
        .iter()
        .filter(|(t, d)| *d != me && *t < end_ms + loss_ms)
        .count();
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
        assert_eq!(rejoin_position(&crossed, d("HAM"), 3_000, 21_000), 4);
        // The leader with a loss shorter than his lead keeps it.
        assert_eq!(rejoin_position(&crossed, d("VER"), 1_000, 1_500), 1);
        // Last stays last.
        assert_eq!(rejoin_position(&crossed, d("ALO"), 30_000, 21_000), 5);
    }

    #[test]
    fn without_a_stop_of_its_kind_the_prior() {
        let prior = LossPrior {
            green_ms: 20_000,
            neutralised_share: 0.5,
        };
        assert_eq!(PitLoss::default().or_prior(&prior), (20_000, 11_250));
        let learned = PitLoss {
            green_ms: Some(22_000),
            neutralised_ms: None,
        };
        assert_eq!(learned.or_prior(&prior), (22_000, 12_250));
        let both = PitLoss {
            green_ms: Some(22_000),
            neutralised_ms: Some(9_000),
        };
        assert_eq!(both.or_prior(&prior), (22_000, 9_000));
    }
}
