//! The running order at the end of each lap: who crossed the line on lap `n` before whom.
//!
//! A reduce keyed by lap over `(end_ms, driver)`: a car's position at the end of its lap `n`
//! is one more than the number of cars that completed lap `n` before it (a lapped car counts
//! the leader, who completed that lap earlier; a car that retired before lap `n` does not).
//! Gap to the leader and interval to the car ahead are the differences of crossing times.
//! With them, where the car would rejoin if it stopped on the next lap: behind every car that
//! crossed less than the pit loss after it (`rejoin.rs`), under green and under a
//! neutralisation, the loss learned from the stops of in-laps up to two laps before (their
//! samples join each later lap's group). The row is first written when the car crosses, before
//! the cars behind it have: each of those counts where its gap on the lap before puts it (the
//! lap's group also holds the crossings of the lap before), until it crosses or a car has
//! crossed later than it was expected.
//!
//! And the undercut: a car is within reach of taking the position of the car ahead by stopping
//! first when its interval is less than what that car's tyres have lost (its lap against the
//! best of its stint): on its out-lap it runs on new tyres while the car ahead does one more lap
//! on the old ones. Only a clean lap at racing pace in clear air tells a tyre's loss (a slow lap
//! behind a safety car, in the rain or within `health_traffic_ms` of the car ahead does not),
//! and the lap row shows it only under green.

use super::rejoin::{learned_losses, rejoin_position, LossPrior, LossSample, Losses, LAST_LAP};
use super::DriverLap;
use crate::dataflow::Epoch;
use crate::record::DriverId;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Standing {
    pub position: u16,
    pub gap_to_leader_ms: i64,
    pub interval_ms: i64,
    /// The car ahead on the road at the line, when there is one.
    pub ahead: Option<DriverId>,
    /// The position after a stop on the next lap, green and under a neutralisation.
    pub rejoin_green: u16,
    pub rejoin_neutralised: u16,
    /// The pit losses those were projected with, and the stops they were learned from.
    pub pit_loss: Losses,
    /// What the car ahead's tyres have lost on this lap (ms): what stopping first gains on it.
    pub undercut_gain_ms: i64,
    /// The car ahead, when the interval to it is less than that gain.
    pub undercut_on: Option<DriverId>,
}

/// A lap's crossing: when, who, and what the car's tyres have lost on it (ms, 0 when the lap
/// does not tell).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Crossing {
    pub end_ms: i64,
    pub driver: DriverId,
    pub tyre_loss_ms: i64,
}

/// A lap slower than this (‰ of the driver's best) tells no tyre loss: traffic, a safety car,
/// rain.
const RACING_PACE_PERMILLE: u32 = 1_060;

impl Crossing {
    pub fn of(l: &DriverLap) -> Self {
        let racing = l.clean && l.pace_permille <= RACING_PACE_PERMILLE;
        Crossing {
            end_ms: l.done.end_ms,
            driver: l.done.driver,
            tyre_loss_ms: if racing { l.stint_loss_ms.max(0) } else { 0 },
        }
    }
}

/// What a lap's group holds: the cars that completed it, the cars that completed the lap
/// before (where those still to come are expected), and the loss samples of the stops made up
/// to two laps before it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderInput {
    Crossing(Crossing),
    /// The car's crossing of the lap before.
    Previous(Crossing),
    Sample(LossSample),
}

/// Standings of the cars that completed one lap, from their crossing times in any order, and
/// where each would rejoin after a stop losing `loss`; closer than `traffic_ms` to the car
/// ahead is traffic. `previous` are the crossings of the lap before: a car that completed it
/// and not yet this one is expected where its gap to the car judged on the lap before puts it,
/// unless a car has crossed later already (it stopped, slowed or retired: it counts once it
/// crosses).
pub fn standings(
    crossings: &[Crossing],
    previous: &[Crossing],
    loss: Losses,
    traffic_ms: i64,
) -> Vec<(DriverId, Standing)> {
    let mut all = crossings.to_vec();
    all.sort();
    let sorted: Vec<(i64, DriverId)> = all.iter().map(|c| (c.end_ms, c.driver)).collect();
    let leader = sorted.first().map_or(0, |c| c.0);
    let latest = sorted.last().map_or(0, |c| c.0);
    let waiting: Vec<i64> = previous
        .iter()
        .filter(|p| !sorted.iter().any(|(_, d)| *d == p.driver))
        .map(|p| p.end_ms)
        .collect();
    let mut to_come: Vec<i64> = Vec::with_capacity(waiting.len());
    let mut out = Vec::with_capacity(sorted.len());
    // The car ahead, and whether it ran in clear air.
    let mut prev: Option<(&Crossing, bool)> = None;
    for (i, &(end_ms, driver)) in sorted.iter().enumerate() {
        let interval_ms = prev.map_or(0, |p| end_ms - p.0.end_ms);
        let undercut_gain_ms = match prev {
            Some((p, true)) => p.tyre_loss_ms,
            _ => 0,
        };
        to_come.clear();
        if let Some(before) = previous.iter().find(|p| p.driver == driver) {
            let lap_ms = end_ms - before.end_ms;
            to_come.extend(
                waiting
                    .iter()
                    .map(|t| t + lap_ms)
                    .filter(|&expected| expected > latest),
            );
        }
        let rejoin = |loss_ms| rejoin_position(&sorted, &to_come, driver, end_ms, loss_ms);
        out.push((
            driver,
            Standing {
                position: i as u16 + 1,
                gap_to_leader_ms: end_ms - leader,
                interval_ms,
                ahead: prev.map(|p| p.0.driver),
                rejoin_green: rejoin(loss.green_ms),
                rejoin_neutralised: rejoin(loss.neutralised_ms),
                pit_loss: loss,
                undercut_gain_ms,
                undercut_on: prev
                    .filter(|_| interval_ms < undercut_gain_ms)
                    .map(|p| p.0.driver),
            },
        ));
        prev = Some((&all[i], i == 0 || interval_ms >= traffic_ms));
    }
    out
}

/// `(lap, crossing)` and the stops' loss samples by in-lap in, `((driver, lap), standing)`
/// out; the loss starts from `prior`.
pub fn running_order<'scope>(
    crossings: VecCollection<'scope, Epoch, (u16, Crossing), isize>,
    samples: VecCollection<'scope, Epoch, (u16, LossSample), isize>,
    prior: LossPrior,
    traffic_ms: i64,
) -> VecCollection<'scope, Epoch, ((DriverId, u16), Standing), isize> {
    let samples = samples.flat_map(|(in_lap, s)| {
        (in_lap.saturating_add(2)..=LAST_LAP).map(move |lap| (lap, OrderInput::Sample(s)))
    });
    crossings
        .flat_map(|(lap, c)| {
            [
                (lap, OrderInput::Crossing(c)),
                (lap.saturating_add(1), OrderInput::Previous(c)),
            ]
        })
        .concat(samples)
        .reduce_named("RunningOrder", move |_lap, input, output| {
            // Input values come sorted: crossings first, by time, then driver.
            let mut crossed: Vec<Crossing> = Vec::with_capacity(input.len());
            let mut previous: Vec<Crossing> = Vec::new();
            let mut samples: Vec<&LossSample> = Vec::new();
            for (value, diff) in input {
                if *diff <= 0 {
                    continue;
                }
                match value {
                    OrderInput::Crossing(c) => crossed.push(*c),
                    OrderInput::Previous(c) => previous.push(*c),
                    OrderInput::Sample(s) => samples.push(s),
                }
            }
            if crossed.is_empty() {
                return;
            }
            let loss = learned_losses(&prior, samples.iter().copied());
            for (driver, standing) in standings(&crossed, &previous, loss, traffic_ms) {
                output.push(((driver, standing), 1isize));
            }
        })
        .map(|(lap, (driver, standing))| ((driver, lap), standing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_gaps_and_intervals_follow_the_crossing_order() {
        let d = |s| DriverId::new(s).unwrap();
        let c = |end_ms, driver, tyre_loss_ms| Crossing {
            end_ms,
            driver: d(driver),
            tyre_loss_ms,
        };
        let s = standings(
            &[
                c(1_500, "HAM", 2_000),
                c(1_000, "VER", 300),
                c(4_000, "LEC", 0),
            ],
            &[],
            Losses {
                green_ms: 2_800,
                neutralised_ms: 1_000,
                ..Losses::default()
            },
            400,
        );
        let view: Vec<_> = s
            .iter()
            .map(|(d, s)| (d.as_str(), s.position, s.gap_to_leader_ms, s.interval_ms))
            .collect();
        assert_eq!(
            view,
            vec![
                ("VER", 1, 0, 0),
                ("HAM", 2, 500, 500),
                ("LEC", 3, 3000, 2500)
            ]
        );
        assert_eq!(s[2].1.ahead, Some(d("HAM")));
        // VER, stopping with a 2.8 s loss, would come out behind HAM (0.5 s back) and ahead
        // of LEC (3 s); with 1 s (neutralised), behind HAM still.
        let rejoin: Vec<_> = s
            .iter()
            .map(|(_, s)| (s.rejoin_green, s.rejoin_neutralised))
            .collect();
        assert_eq!(rejoin, vec![(2, 2), (3, 2), (3, 3)]);
        // HAM, 0.5 s behind VER whose tyres lost 0.3 s, is not within reach of an undercut;
        // LEC, 2.5 s behind HAM whose tyres lost 2 s, is not either; 1.9 s behind, he would be,
        // but not when HAM's 2 s were lost in traffic (within 1 s of VER).
        let undercut: Vec<_> = s.iter().map(|(_, s)| s.undercut_on).collect();
        assert_eq!(undercut, vec![None, None, None]);
        assert_eq!(
            (s[1].1.undercut_gain_ms, s[2].1.undercut_gain_ms),
            (300, 2_000)
        );
        let lec_closer = [
            c(1_500, "HAM", 2_000),
            c(1_000, "VER", 300),
            c(3_400, "LEC", 0),
        ];
        let closer = standings(&lec_closer, &[], Losses::default(), 400);
        assert_eq!(closer[2].1.undercut_on, Some(d("HAM")));
        let traffic = standings(&lec_closer, &[], Losses::default(), 1_000);
        assert_eq!(traffic[2].1.undercut_on, None);
    }

    #[test]
    fn the_cars_still_to_cross_count_where_their_gap_on_the_lap_before_puts_them() {
        let d = |s| DriverId::new(s).unwrap();
        let c = |end_ms, driver| Crossing {
            end_ms,
            driver: d(driver),
            tyre_loss_ms: 0,
        };
        let loss = Losses {
            green_ms: 20_000,
            neutralised_ms: 10_000,
            ..Losses::default()
        };
        // The lap before: VER, HAM 15 s behind, LEC 25 s behind, ALO 12 s behind VER (and
        // ahead of HAM) but stopping on this lap.
        let before = [
            c(100_000, "VER"),
            c(112_000, "ALO"),
            c(115_000, "HAM"),
            c(125_000, "LEC"),
        ];
        // VER crossed this lap (80 s): HAM is expected 15 s after him, within a stop's 20 s;
        // LEC 25 s after, not. ALO, expected 12 s after, is still to come too.
        let first = standings(&[c(180_000, "VER")], &before, loss, 400);
        assert_eq!(
            (first[0].1.rejoin_green, first[0].1.rejoin_neutralised),
            (3, 1)
        );
        // HAM crossed 16 s after VER: ALO, expected before him, has not crossed (he is in the
        // pit lane) and counts once he crosses; LEC is expected 10 s after HAM.
        let more = standings(&[c(180_000, "VER"), c(196_000, "HAM")], &before, loss, 400);
        assert_eq!(more[0].1.rejoin_green, 2);
        assert_eq!(more[1].1.rejoin_green, 3);
        // Settled: everyone crossed; the expectations are gone.
        let all = standings(
            &[
                c(180_000, "VER"),
                c(196_000, "HAM"),
                c(203_000, "LEC"),
                c(215_000, "ALO"),
            ],
            &before,
            loss,
            400,
        );
        let rejoin: Vec<_> = all.iter().map(|(_, s)| s.rejoin_green).collect();
        assert_eq!(rejoin, vec![2, 4, 4, 4]);
    }
}
