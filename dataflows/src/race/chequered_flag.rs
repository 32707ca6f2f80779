//! The chequered flag and the retirements it separates from cars parked after it: a car judged
//! stopped for good before the flag retired; one that stopped after it finished.

use super::keyed_state::{keyed_state, Counts, KeyedState};
use super::retirement::CarStop;
use crate::dataflow::Epoch;
use differential_dataflow::VecCollection;

/// Cars stopped for good, less those parked after the chequered flag.
///
/// The flag is the end of the race's last lap: the first lap closed by distance (a lap with no
/// next lap number) among the laps of the highest lap number. A car that stopped before it
/// retired; one that stopped after it finished. Until the flag, every stop is a retirement,
/// so it is reported as soon as the car is judged stopped.
pub(super) fn retirements<'scope>(
    stops: VecCollection<'scope, Epoch, CarStop, isize>,
    laps: VecCollection<'scope, Epoch, super::DriverLap, isize>,
) -> VecCollection<'scope, Epoch, CarStop, isize> {
    // Each stop brings a marker into the one group, so that the flag (or "not yet") is known
    // as soon as the first stop is.
    let marks = stops
        .clone()
        .map(|_| ((), FlagMark::Stop))
        .concat(laps.map(|l| {
            let d = &l.done;
            ((), FlagMark::Lap(d.lap, d.by_distance, d.end_ms))
        }));
    let flag = keyed_state(marks, "Flag", |_| ChequeredFlag::default()).map(|flag| ((), flag));
    stops
        .map(|s| ((), s))
        .join_map(flag, |_unit, stop, flag_ms| (stop.clone(), *flag_ms))
        .filter(|(stop, flag_ms)| stop.since_ms < *flag_ms)
        .map(|(stop, _)| stop)
}

/// What the chequered flag is judged from: a stop, or a lap (number, closed by distance, end).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
enum FlagMark {
    Stop,
    Lap(u16, bool, i64),
}

/// The flag (epoch ms, `i64::MAX` for "not yet") from the whole race's laps, kept in order so
/// that a new lap costs a lookup at the end, not a pass over every lap of the race.
#[derive(Default)]
struct ChequeredFlag {
    stops: isize,
    /// (lap number, closed by distance, end) of every lap.
    laps: Counts<(u16, bool, i64)>,
}

impl ChequeredFlag {
    /// The flag, or nothing while the group is empty (no stop and no lap).
    fn flag(&self) -> Option<i64> {
        if self.stops == 0 && self.laps.is_empty() {
            return None;
        }
        let most = self.laps.present().next_back().map(|&(lap, ..)| lap);
        let first_by_distance = most.and_then(|most| {
            self.laps
                .present_from(&(most, true, i64::MIN))
                .map(|&(_, _, end)| end)
                .next()
        });
        Some(first_by_distance.unwrap_or(i64::MAX))
    }
}

impl KeyedState for ChequeredFlag {
    type Value = FlagMark;
    type Output = i64;

    fn update(&mut self, changes: &[(FlagMark, isize)], output: &mut Vec<(i64, isize)>) {
        let before = self.flag();
        for (mark, diff) in changes {
            match mark {
                FlagMark::Stop => self.stops += diff,
                FlagMark::Lap(lap, by_distance, end) => {
                    self.laps.apply(&(*lap, *by_distance, *end), *diff);
                }
            }
        }
        let after = self.flag();
        if before != after {
            output.extend(before.map(|f| (f, -1)));
            output.extend(after.map(|f| (f, 1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::race::keyed_state::Replay;

    proptest::proptest! {
        /// The flag kept from the changes is, after every step, the end of the first lap
        /// closed by distance among those of the highest lap number present, as the marks say.
        #[test]
        fn the_flag_kept_from_changes_is_that_of_all_the_laps(
            steps in proptest::collection::vec(
                proptest::collection::vec(
                    (0..12u16, proptest::bool::ANY, 0..4i64, proptest::bool::weighted(0.7)),
                    0..5,
                ),
                1..30,
            ),
        ) {
            let mut view = Replay::new(ChequeredFlag::default());
            let mut present: std::collections::BTreeMap<FlagMark, isize> = Default::default();
            for step in steps {
                let mut changes = Vec::new();
                for (lap, by_distance, end, add) in step {
                    // Lap 0 stands for a stop.
                    let mark = if lap == 0 {
                        FlagMark::Stop
                    } else {
                        FlagMark::Lap(lap, by_distance, lap as i64 * 100 + end)
                    };
                    let count = present.get(&mark).copied().unwrap_or(0);
                    changes.push((mark, if add || count == 0 { 1 } else { -1 }));
                }
                for (m, d) in &changes {
                    *present.entry(m.clone()).or_default() += d;
                }
                present.retain(|_, n| *n != 0);
                let flag = view.step(changes);
                let laps = present.iter().filter_map(|(m, n)| match m {
                    FlagMark::Lap(lap, by_distance, end) if *n > 0 => {
                        Some((*lap, *by_distance, *end))
                    }
                    _ => None,
                });
                let most = laps.clone().map(|l| l.0).max();
                let expected = laps
                    .filter(|l| Some(l.0) == most && l.1)
                    .map(|l| l.2)
                    .min()
                    .unwrap_or(i64::MAX);
                let expected: Vec<i64> = (!present.is_empty()).then_some(expected).into_iter().collect();
                proptest::prop_assert_eq!(flag, expected);
            }
        }
    }
}
