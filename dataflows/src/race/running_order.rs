//! The running order at the end of each lap: who crossed the line on lap `n` before whom.
//!
//! A reduce keyed by lap over `(end_ms, driver)`: a car's position at the end of its lap `n`
//! is one more than the number of cars that completed lap `n` before it (a lapped car counts
//! the leader, who completed that lap earlier; a car that retired before lap `n` does not).
//! Gap to the leader and interval to the car ahead are the differences of crossing times.
//! With them, where the car would rejoin if it stopped on the next lap: behind every car that
//! crossed less than the pit loss after it (`rejoin.rs`), under green and under a
//! neutralisation.

use super::rejoin::{rejoin_position, LossPrior};
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
    /// The pit losses those were projected with (ms).
    pub pit_loss_green_ms: i64,
    pub pit_loss_neutralised_ms: i64,
}

/// Standings of the cars that completed one lap, from their crossing times in any order, and
/// where each would rejoin after a stop losing `loss` (green, neutralised ms).
pub fn standings(crossings: &[(i64, DriverId)], loss: (i64, i64)) -> Vec<(DriverId, Standing)> {
    let mut sorted = crossings.to_vec();
    sorted.sort();
    let leader = sorted.first().map_or(0, |c| c.0);
    let mut out = Vec::with_capacity(sorted.len());
    let mut prev: Option<(i64, DriverId)> = None;
    for (i, &(end_ms, driver)) in sorted.iter().enumerate() {
        out.push((
            driver,
            Standing {
                position: i as u16 + 1,
                gap_to_leader_ms: end_ms - leader,
                interval_ms: prev.map_or(0, |p| end_ms - p.0),
                ahead: prev.map(|p| p.1),
                rejoin_green: rejoin_position(&sorted, driver, end_ms, loss.0),
                rejoin_neutralised: rejoin_position(&sorted, driver, end_ms, loss.1),
                pit_loss_green_ms: loss.0,
                pit_loss_neutralised_ms: loss.1,
            },
        ));
        prev = Some((end_ms, driver));
    }
    out
}

/// `(lap, (end_ms, driver))` in, `((driver, lap), standing)` out; a stop's loss is `prior`'s.
pub fn running_order<'scope>(
    crossings: VecCollection<'scope, Epoch, (u16, (i64, DriverId)), isize>,
    prior: LossPrior,
) -> VecCollection<'scope, Epoch, ((DriverId, u16), Standing), isize> {
    let loss = prior.losses();
    crossings
        .reduce_named("RunningOrder", move |_lap, input, output| {
            // Input values come sorted: by crossing time, then driver.
            let crossed: Vec<(i64, DriverId)> = input
                .iter()
                .filter(|(_, diff)| *diff > 0)
                .map(|(c, _)| **c)
                .collect();
            for (driver, standing) in standings(&crossed, loss) {
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
        let s = standings(
            &[(1_500, d("HAM")), (1_000, d("VER")), (4_000, d("LEC"))],
            (2_800, 1_000),
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
    }
}
