//! One driver's laps with what their history says: stint, tyre age, pace against the driver's
//! own best, the loss over the stint. Kept per driver: a pit stop reported after its in-lap
//! (the lap line can lie inside the pit lane) corrects that lap's row and the ones after it.
//!
//! A row needs only a little of the laps before it (the best lap, the stint's best and its last
//! `RECENT` clean laps, the stops), so the view resumes its scan from the first lap a change
//! touches instead of redoing the driver's race at every step ([`DriverLapsScan`]).

use super::keyed_state::{keyed_state, Counts, KeyedState};
use super::{LapDone, PitStop};
use crate::dataflow::Epoch;
use crate::record::DriverId;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Clean laps used for the trend and the variability of the recent pace.
const RECENT: usize = 5;

/// What the per-driver view is fed: a driver's laps and stops.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DriverEvent {
    Lap(LapDone),
    Pit(PitStop),
    Stop(super::retirement::CarStop),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DriverLap {
    pub done: LapDone,
    pub lap_time_ms: i64,
    /// The car entered the pit lane for a stop on this lap.
    pub pit_in: bool,
    /// The lap after a stop.
    pub pit_out: bool,
    pub stint: u16,
    /// Laps on this set of tyres as pitwall saw them (from the start or the last stop).
    pub tyre_age_laps: u16,
    /// Stops made up to and including this lap.
    pub pit_count: u16,
    /// A lap that says something about pace: not lap 1, not an in- or out-lap, no standstill.
    pub clean: bool,
    /// The driver's best clean lap so far (this one included), 0 before the first.
    pub best_ms: i64,
    /// Lap time / `best_ms`, ‰ (0 without a best).
    pub pace_permille: u32,
    /// This lap against the best clean lap of the stint so far, ms (0 for laps that are not clean).
    pub stint_loss_ms: i64,
    /// Least-squares slope of the stint's last clean laps, ms per lap (tyre wear shows as > 0).
    pub trend_ms_per_lap: i64,
    /// Spread of the last clean laps: standard deviation / mean, ‰.
    pub spread_permille: u32,
}

/// The rows of one driver's laps, from all of its laps and stops in any order.
///
/// Of two laps with the same number, the one that ended first counts. This is the whole scan
/// at once; [`driver_laps_view`] runs the same steps ([`DriverLapsScan`]) from the first lap
/// that changed.
pub fn driver_laps(laps: &[&LapDone], pits: &[&PitStop]) -> Vec<DriverLap> {
    let mut laps: Vec<&LapDone> = laps.to_vec();
    laps.sort_by_key(|l| (l.lap, l.end_ms));
    laps.dedup_by_key(|l| l.lap);
    let mut stop_laps = StopLaps::default();
    for p in pits {
        stop_laps.add(p.lap, 1);
    }
    let mut carry = Carry::default();
    laps.into_iter()
        .map(|done| carry.row(done, &stop_laps))
        .collect()
}

/// The in-laps of a driver's stops, with how many stops each holds.
#[derive(Clone, Debug, Default)]
struct StopLaps(BTreeMap<u16, usize>);

impl StopLaps {
    fn add(&mut self, lap: u16, diff: isize) {
        let n = self.0.entry(lap).or_default();
        *n = n.checked_add_signed(diff).unwrap_or(0);
        if *n == 0 {
            self.0.remove(&lap);
        }
    }

    /// Stops on laps in `range`.
    fn count(&self, range: impl std::ops::RangeBounds<u16>) -> u16 {
        self.0.range(range).map(|(_, n)| *n as u16).sum()
    }
}

/// What a driver's earlier rows hand on to the next one: everything a row needs of the laps
/// before it. It is small (the recent window holds `RECENT` laps), so each row keeps the one
/// after it and the scan can resume at any lap.
#[derive(Clone, Debug, Default, PartialEq)]
struct Carry {
    /// The previous row's lap number and the stops made before it.
    last_lap: Option<u16>,
    stops_before_last: u16,
    best_ms: i64,
    stint: u16,
    stint_best_ms: i64,
    /// The stint's last clean lap times, oldest first (at most `RECENT`).
    recent: Vec<i64>,
}

impl Carry {
    /// The row of `done`, the next lap after the ones carried; carries it on.
    fn row(&mut self, done: &LapDone, stop_laps: &StopLaps) -> DriverLap {
        let n = done.lap;
        let stops_before = match self.last_lap {
            Some(last) if last < n => self.stops_before_last + stop_laps.count(last..n),
            _ => stop_laps.count(..n),
        };
        self.last_lap = Some(n);
        self.stops_before_last = stops_before;
        let pit_in = stop_laps.0.contains_key(&n);
        let pit_out = n > 0 && stop_laps.0.contains_key(&(n - 1));
        let last_stop = stop_laps.0.range(..n).next_back().map(|(l, _)| *l);
        let stint = stops_before + 1;
        if stint != self.stint {
            self.stint = stint;
            self.stint_best_ms = 0;
            self.recent.clear();
        }
        let lap_time_ms = done.lap_time_ms();
        let clean = n > 1 && !pit_in && !pit_out && done.stationary_ms < 1_000 && lap_time_ms > 0;
        if clean {
            if self.best_ms == 0 || lap_time_ms < self.best_ms {
                self.best_ms = lap_time_ms;
            }
            if self.stint_best_ms == 0 || lap_time_ms < self.stint_best_ms {
                self.stint_best_ms = lap_time_ms;
            }
            if self.recent.len() == RECENT {
                self.recent.remove(0);
            }
            self.recent.push(lap_time_ms);
        }
        let best_ms = self.best_ms;
        DriverLap {
            done: done.clone(),
            lap_time_ms,
            pit_in,
            pit_out,
            stint,
            tyre_age_laps: n - last_stop.unwrap_or(0),
            pit_count: stops_before + pit_in as u16,
            clean,
            best_ms,
            pace_permille: if best_ms > 0 {
                (lap_time_ms * 1000 / best_ms).clamp(0, u32::MAX as i64) as u32
            } else {
                0
            },
            stint_loss_ms: if clean {
                lap_time_ms - self.stint_best_ms
            } else {
                0
            },
            trend_ms_per_lap: slope(&self.recent),
            spread_permille: spread(&self.recent),
        }
    }
}

/// One driver's laps, stops and rows, kept up to date from the changes: a change at lap `n`
/// (a lap, or a stop whose in-lap is `n`) recomputes the rows from `n` on, resuming from what
/// lap `n - 1` carried. Laps come in order and a stop a lap or so late, so that is a row or
/// two, whatever the length of the race.
#[derive(Default)]
pub struct DriverLapsScan {
    /// Laps by number (more than one value for a number only if the tracker sent two).
    laps: BTreeMap<u16, Counts<LapDone>>,
    pits: Counts<PitStop>,
    stop_laps: StopLaps,
    /// The rows as sent, each with what it carries on.
    rows: BTreeMap<u16, (DriverLap, Carry)>,
}

impl KeyedState for DriverLapsScan {
    type Value = DriverEvent;
    type Output = DriverLap;

    fn update(&mut self, changes: &[(DriverEvent, isize)], output: &mut Vec<(DriverLap, isize)>) {
        let mut from: Option<u16> = None;
        for (event, diff) in changes {
            let changed_lap = match event {
                DriverEvent::Lap(l) => {
                    let values = self.laps.entry(l.lap).or_default();
                    let changed = values.apply(l, *diff);
                    if values.is_empty() {
                        self.laps.remove(&l.lap);
                    }
                    changed.then_some(l.lap)
                }
                DriverEvent::Pit(p) => {
                    let changed = self.pits.apply(p, *diff);
                    if changed {
                        self.stop_laps.add(p.lap, if *diff > 0 { 1 } else { -1 });
                    }
                    changed.then_some(p.lap)
                }
                DriverEvent::Stop(_) => None,
            };
            if let Some(lap) = changed_lap {
                from = Some(from.map_or(lap, |f| f.min(lap)));
            }
        }
        let Some(from) = from else { return };
        for (_, (row, _)) in self.rows.split_off(&from) {
            output.push((row, -1));
        }
        let mut carry = self
            .rows
            .last_key_value()
            .map(|(_, (_, c))| c.clone())
            .unwrap_or_default();
        for (&n, values) in self.laps.range(from..) {
            // The lap that ended first, as `driver_laps` keeps it.
            let Some(done) = values.present().min_by_key(|l| (l.end_ms, *l)) else {
                continue;
            };
            let row = carry.row(done, &self.stop_laps);
            output.push((row.clone(), 1));
            self.rows.insert(n, (row, carry.clone()));
        }
    }
}

/// Least-squares slope of equally spaced values, rounded to an integer.
fn slope(ys: &[i64]) -> i64 {
    let n = ys.len() as f64;
    if ys.len() < 3 {
        return 0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<i64>() as f64 / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, &y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y as f64 - mean_y);
        den += dx * dx;
    }
    (num / den).round() as i64
}

/// Standard deviation / mean, ‰.
fn spread(ys: &[i64]) -> u32 {
    if ys.len() < 3 {
        return 0;
    }
    let n = ys.len() as f64;
    let mean = ys.iter().sum::<i64>() as f64 / n;
    let var = ys.iter().map(|&y| (y as f64 - mean).powi(2)).sum::<f64>() / n;
    (var.sqrt() / mean * 1000.0).round() as u32
}

/// The per-driver view: every driver's laps and stops in, their lap rows out.
pub fn driver_laps_view<'scope>(
    events: VecCollection<'scope, Epoch, (DriverId, DriverEvent), isize>,
) -> VecCollection<'scope, Epoch, DriverLap, isize> {
    let events = events.filter(|(_, e)| !matches!(e, DriverEvent::Stop(_)));
    keyed_state(events, "DriverLaps", |_driver| DriverLapsScan::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::race::keyed_state::Replay;
    use proptest::prelude::*;

    fn lap(n: u16, secs: i64) -> LapDone {
        LapDone {
            driver: DriverId::new("HAM").unwrap(),
            lap: n,
            start_ms: n as i64 * 100_000,
            end_ms: n as i64 * 100_000 + secs * 1000,
            by_distance: false,
            samples: 300,
            spin_samples: 0,
            max_speed_kmh: 290,
            top_gear: 8,
            max_rpm: 11_800,
            stationary_ms: 0,
            hard_decels: 0,
            glitch_gears: 0,
            drs_samples: 0,
        }
    }

    fn stop(n: u16) -> PitStop {
        PitStop {
            driver: DriverId::new("HAM").unwrap(),
            lap: n,
            pit_in_ms: 0,
            pit_out_ms: 0,
            stationary_ms: 2_500,
            limit_kmh: 60,
        }
    }

    #[test]
    fn stints_tyre_age_and_pit_flags_follow_the_stops() {
        let laps: Vec<_> = (1..=8).map(|n| lap(n, 80)).collect();
        let pits = [stop(4)];
        let rows = driver_laps(
            &laps.iter().collect::<Vec<_>>(),
            &pits.iter().collect::<Vec<_>>(),
        );
        let view: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.done.lap,
                    r.stint,
                    r.tyre_age_laps,
                    r.pit_in,
                    r.pit_out,
                    r.pit_count,
                )
            })
            .collect();
        assert_eq!(view[3], (4, 1, 4, true, false, 1));
        assert_eq!(view[4], (5, 2, 1, false, true, 1));
        assert_eq!(view[7], (8, 2, 4, false, false, 1));
        assert!(!rows[0].clean && rows[1].clean && !rows[3].clean && !rows[4].clean);
    }

    /// Laps 1..=24 in two versions each (a lap can be corrected, or sent twice), stops on any
    /// lap, in steps that mostly add the next lap and sometimes take back or add anything.
    fn events() -> impl Strategy<Value = Vec<Vec<(u16, u8, bool)>>> {
        let change = (1..=24u16, 0..6u8, prop::bool::weighted(0.8));
        prop::collection::vec(prop::collection::vec(change, 0..5), 1..40)
    }

    fn event(n: u16, kind: u8) -> DriverEvent {
        match kind {
            0 => DriverEvent::Lap(lap(n, 80)),
            1 => DriverEvent::Lap(lap(n, 79 + (n as i64 % 5))),
            2 => DriverEvent::Lap(LapDone {
                stationary_ms: 5_000,
                ..lap(n, 95)
            }),
            3 => DriverEvent::Pit(stop(n)),
            4 => DriverEvent::Pit(PitStop {
                stationary_ms: 3_100,
                ..stop(n)
            }),
            _ => DriverEvent::Lap(LapDone {
                end_ms: lap(n, 78).end_ms - 1,
                ..lap(n, 81)
            }),
        }
    }

    proptest! {
        /// The rows kept from the changes are, after every step, the rows of the whole scan
        /// over the laps and stops present.
        #[test]
        fn rows_kept_from_changes_are_the_rows_of_the_whole_scan(steps in events()) {
            let mut view = Replay::new(DriverLapsScan::default());
            let mut present: BTreeMap<DriverEvent, isize> = BTreeMap::new();
            for (next_lap, step) in (1u16..).zip(steps) {
                // The usual step: the next lap.
                let mut changes = vec![(event(next_lap, 0), 1)];
                for (n, kind, add) in step {
                    let e = event(n, kind);
                    let count = present.get(&e).copied().unwrap_or(0);
                    let diff = if add || count == 0 { 1 } else { -1 };
                    changes.push((e, diff));
                }
                for (e, d) in &changes {
                    *present.entry(e.clone()).or_default() += d;
                }
                let rows = view.step(changes);
                let laps: Vec<&LapDone> = present
                    .iter()
                    .filter_map(|(e, n)| match e {
                        DriverEvent::Lap(l) if *n > 0 => Some(l),
                        _ => None,
                    })
                    .collect();
                let pits: Vec<&PitStop> = present
                    .iter()
                    .filter_map(|(e, n)| match e {
                        DriverEvent::Pit(p) if *n > 0 => Some(p),
                        _ => None,
                    })
                    .collect();
                let mut whole = driver_laps(&laps, &pits);
                whole.sort();
                prop_assert_eq!(rows, whole);
            }
        }
    }

    #[test]
    fn pace_and_stint_loss_are_against_the_best_clean_laps() {
        let times = [90, 80, 79, 80, 81, 82, 83];
        let laps: Vec<_> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| lap(i as u16 + 1, t))
            .collect();
        let rows = driver_laps(&laps.iter().collect::<Vec<_>>(), &[]);
        let last = rows.last().unwrap();
        assert_eq!(last.best_ms, 79_000);
        assert_eq!(last.stint_loss_ms, 4_000);
        assert_eq!(last.pace_permille, 83_000 * 1000 / 79_000);
        assert_eq!(last.trend_ms_per_lap, 1_000);
        assert_eq!(rows[0].pace_permille, 0);
    }
}
