//! The retirements among the cars judged stopped for good: not a car parked after the
//! chequered flag (it finished), nor one standing with the field under a red flag until the
//! race has gone on without it.

use super::keyed_state::{keyed_state, Counts, KeyedState};
use super::retirement::CarStop;
use crate::dataflow::Epoch;
use differential_dataflow::VecCollection;
use std::collections::BTreeSet;

/// Cars standing at once (this one among them, within [`AROUND_MS`] of its stop) from which a
/// stop is not taken for a retirement until a lap begun after it was judged has been completed:
/// three cars standing at once are a red flag (the field queues in the pit lane with engines
/// off) or a crash that stopped several, and the cars that restart drive off before any lap
/// begun then is completed.
const STANDING_AT_ONCE: usize = 3;

/// How far around a stop other cars standing count (ms), and how long after a stop is judged
/// the race must be seen going on (a lap completed) before it is reported: under a red flag the
/// field reaches the pit lane within seconds of each other.
const AROUND_MS: i64 = 20_000;

/// Cars stopped for good, less those parked after the chequered flag and those held while the
/// field stands.
///
/// The flag is the end of the race's last lap: the first lap closed by distance (a lap with no
/// next lap number) among the laps of the highest lap number. A car that stopped before it
/// retired; one that stopped after it finished. Until the flag, a stop is a retirement once a
/// lap is completed [`AROUND_MS`] after it was judged, unless [`STANDING_AT_ONCE`] cars stood
/// around it: then once some car has completed a lap begun after it was judged (the race went
/// on without it), and never if it drove off before (a car that restarts after a red flag).
pub(super) fn retirements<'scope>(
    stops: VecCollection<'scope, Epoch, CarStop, isize>,
    laps: VecCollection<'scope, Epoch, super::DriverLap, isize>,
) -> VecCollection<'scope, Epoch, CarStop, isize> {
    let marks = stops.map(|s| ((), RaceMark::Stop(s))).concat(laps.map(|l| {
        let d = &l.done;
        (
            (),
            RaceMark::Lap(d.lap, d.by_distance, d.end_ms, d.start_ms),
        )
    }));
    keyed_state(marks, "Retirements", |_| Retirements::default())
}

/// What the retirements are judged from: a stop (standing, or ended), or a lap (number,
/// closed by distance, end, start).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
enum RaceMark {
    Stop(CarStop),
    Lap(u16, bool, i64, i64),
}

/// The race's stops and laps, the laps kept in order so that a new lap costs a lookup at the
/// end, not a pass over every lap of the race.
#[derive(Default)]
struct Retirements {
    stops: Counts<CarStop>,
    /// (lap number, closed by distance, end) of every lap.
    laps: Counts<(u16, bool, i64)>,
    /// Every lap's start and end.
    starts: Counts<i64>,
    ends: Counts<i64>,
    reported: BTreeSet<CarStop>,
}

impl Retirements {
    /// The flag (epoch ms), `i64::MAX` for "not yet".
    fn flag(&self) -> i64 {
        let most = self.laps.present().next_back().map(|&(lap, ..)| lap);
        let first_by_distance = most.and_then(|most| {
            self.laps
                .present_from(&(most, true, i64::MIN))
                .map(|&(_, _, end)| end)
                .next()
        });
        first_by_distance.unwrap_or(i64::MAX)
    }

    /// The stops that are retirements now.
    fn retired(&self) -> BTreeSet<CarStop> {
        let flag = self.flag();
        let last_start = self.starts.present().next_back().copied();
        let last_end = self.ends.present().next_back().copied();
        self.stops
            .present()
            .filter(|s| s.ended_ms.is_none() && s.since_ms < flag)
            .filter(|s| last_end.is_some_and(|t| t > s.judged_ms + AROUND_MS))
            .filter(|s| {
                let (from, to) = (s.since_ms - AROUND_MS, s.judged_ms + AROUND_MS);
                let standing = self
                    .stops
                    .present()
                    .filter(|o| o.since_ms <= to && o.ended_ms.is_none_or(|e| e > from))
                    .count();
                standing < STANDING_AT_ONCE || last_start.is_some_and(|t| t > s.judged_ms)
            })
            .cloned()
            .collect()
    }
}

impl KeyedState for Retirements {
    type Value = RaceMark;
    type Output = CarStop;

    fn update(&mut self, changes: &[(RaceMark, isize)], output: &mut Vec<(CarStop, isize)>) {
        for (mark, diff) in changes {
            match mark {
                RaceMark::Stop(s) => {
                    self.stops.apply(s, *diff);
                }
                RaceMark::Lap(lap, by_distance, end, start) => {
                    self.laps.apply(&(*lap, *by_distance, *end), *diff);
                    self.starts.apply(start, *diff);
                    self.ends.apply(end, *diff);
                }
            }
        }
        let now = self.retired();
        for gone in self.reported.difference(&now) {
            output.push((gone.clone(), -1));
        }
        for new in now.difference(&self.reported) {
            output.push((new.clone(), 1));
        }
        self.reported = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::race::keyed_state::Replay;
    use crate::record::DriverId;

    fn stop(driver: &str, since_ms: i64) -> CarStop {
        CarStop {
            driver: DriverId::new(driver).unwrap(),
            lap: 5,
            since_ms,
            judged_ms: since_ms + 5_000,
            engine_off: true,
            in_pit_lane: false,
            ended_ms: None,
        }
    }

    fn ended(s: &CarStop, at_ms: i64) -> CarStop {
        CarStop {
            ended_ms: Some(at_ms),
            ..s.clone()
        }
    }

    fn lap(n: u16, start: i64, end: i64) -> RaceMark {
        RaceMark::Lap(n, false, end, start)
    }

    #[test]
    fn a_car_that_stops_alone_retires_at_once_and_one_parked_after_the_flag_does_not() {
        let mut view = Replay::new(Retirements::default());
        view.step(vec![(lap(1, 0, 80_000), 1)]);
        let alo = stop("ALO", 100_000);
        assert!(view.step(vec![(RaceMark::Stop(alo.clone()), 1)]).is_empty());
        // Reported once the race is seen going on (a lap completed 20 s after it was judged).
        let out = view.step(vec![(lap(2, 80_000, 126_000), 1)]);
        assert_eq!(out, vec![alo.clone()]);
        // The last lap (78) closed by distance at 200 s: a car that stops after it finished.
        view.step(vec![(RaceMark::Lap(78, true, 200_000, 120_000), 1)]);
        let out = view.step(vec![(RaceMark::Stop(stop("VER", 210_000)), 1)]);
        assert_eq!(out, vec![alo]);
    }

    proptest::proptest! {
        /// Under a red flag every car stands with its engine off: no retirement while the
        /// field stands, none for the cars that restart, and the cars that never restart are
        /// retirements once a lap begun after they were judged is completed, whatever the
        /// order the facts come in, one time after another.
        #[test]
        fn under_a_red_flag_only_the_cars_that_never_restart_retire(
            cars in 3..20usize,
            never in proptest::collection::btree_set(0..20usize, 0..3),
            cuts in proptest::collection::vec(0..40usize, 0..6),
        ) {
            let codes: Vec<String> = (0..cars).map(|c| format!("C{c:02}")).collect();
            let stops: Vec<CarStop> = codes.iter().enumerate()
                .map(|(c, d)| stop(d, 1_000_000 + c as i64 * 2_000))
                .collect();
            let restart = 2_000_000;
            // The red flag: every car stops; then the others drive off one by one; then
            // laps are completed, the first begun before the flag, the next after the restart.
            let mut facts: Vec<(RaceMark, isize)> = Vec::new();
            for s in &stops {
                facts.push((RaceMark::Stop(s.clone()), 1));
            }
            for (c, s) in stops.iter().enumerate() {
                if !never.contains(&c) {
                    let at = restart + c as i64 * 1_500;
                    facts.push((RaceMark::Stop(s.clone()), -1));
                    facts.push((RaceMark::Stop(ended(s, at)), 1));
                }
            }
            let before = facts.len();
            facts.push((lap(9, 900_000, restart + 60_000), 1));
            facts.push((lap(10, restart + 60_000, restart + 160_000), 1));
            let mut cut: Vec<usize> = cuts.into_iter().map(|c| c.min(facts.len())).collect();
            cut.sort();
            let mut view = Replay::new(Retirements::default());
            let mut from = 0;
            for to in cut.into_iter().chain([facts.len()]) {
                let out = view.step(facts[from..to].to_vec());
                from = to.max(from);
                if to <= before + 1 {
                    proptest::prop_assert!(out.is_empty(), "{out:?} reported at {to}");
                }
            }
            let expected: Vec<CarStop> = stops.iter().enumerate()
                .filter(|(c, _)| never.contains(c))
                .map(|(_, s)| s.clone())
                .collect();
            let out = view.step(Vec::new());
            let out = if out.is_empty() { view.step(vec![(lap(11, restart + 160_000, restart + 250_000), 1)]) } else { out };
            proptest::prop_assert_eq!(out, expected);
        }
    }
}
