//! One driver's laps with what their history says: stint, tyre age, pace against the driver's
//! own best, the loss over the stint. A reduce keyed by driver: a pit stop reported after its
//! in-lap (the lap line can lie inside the pit lane) corrects that lap's row.

use super::{LapDone, PitStop};
use crate::dataflow::Epoch;
use crate::record::DriverId;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

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
pub fn driver_laps(laps: &[&LapDone], pits: &[&PitStop]) -> Vec<DriverLap> {
    let mut laps: Vec<&LapDone> = laps.to_vec();
    laps.sort_by_key(|l| (l.lap, l.end_ms));
    laps.dedup_by_key(|l| l.lap);
    let mut stop_laps: Vec<u16> = pits.iter().map(|p| p.lap).collect();
    stop_laps.sort_unstable();

    let mut rows = Vec::with_capacity(laps.len());
    let mut best_ms = 0i64;
    let mut stint_best_ms = 0i64;
    let mut stint_clean: Vec<i64> = Vec::new();
    let mut current_stint = 0u16;
    for done in laps {
        let n = done.lap;
        let stops_before = stop_laps.iter().filter(|&&l| l < n).count() as u16;
        let pit_in = stop_laps.binary_search(&n).is_ok();
        let pit_out = n > 0 && stop_laps.binary_search(&(n - 1)).is_ok();
        let last_stop = stop_laps.iter().rev().find(|&&l| l < n).copied();
        let stint = stops_before + 1;
        if stint != current_stint {
            current_stint = stint;
            stint_best_ms = 0;
            stint_clean.clear();
        }
        let lap_time_ms = done.lap_time_ms();
        let clean = n > 1 && !pit_in && !pit_out && done.stationary_ms < 1_000 && lap_time_ms > 0;
        if clean {
            if best_ms == 0 || lap_time_ms < best_ms {
                best_ms = lap_time_ms;
            }
            if stint_best_ms == 0 || lap_time_ms < stint_best_ms {
                stint_best_ms = lap_time_ms;
            }
            stint_clean.push(lap_time_ms);
        }
        let recent = &stint_clean[stint_clean.len().saturating_sub(RECENT)..];
        rows.push(DriverLap {
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
                lap_time_ms - stint_best_ms
            } else {
                0
            },
            trend_ms_per_lap: slope(recent),
            spread_permille: spread(recent),
        });
    }
    rows
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
    events
        .reduce_named("DriverLaps", |_driver, input, output| {
            let mut laps = Vec::new();
            let mut pits = Vec::new();
            for (event, diff) in input {
                if *diff <= 0 {
                    continue;
                }
                match event {
                    DriverEvent::Lap(l) => laps.push(l),
                    DriverEvent::Pit(p) => pits.push(p),
                    DriverEvent::Stop(_) => {}
                }
            }
            for row in driver_laps(&laps, &pits) {
                output.push((row, 1isize));
            }
        })
        .map(|(_driver, row)| row)
}

#[cfg(test)]
mod tests {
    use super::*;

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
