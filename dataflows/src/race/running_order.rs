//! The running order at the end of each lap: who crossed the line on lap `n` before whom.
//!
//! A reduce keyed by lap over `(end_ms, driver)`: a car's position at the end of its lap `n`
//! is one more than the number of cars that completed lap `n` before it (a lapped car counts
//! the leader, who completed that lap earlier; a car that retired before lap `n` does not).
//! Gap to the leader and interval to the car ahead are the differences of crossing times.
//! With them, where the car would rejoin if it stopped on the next lap: behind every car that
//! crossed less than the pit loss after it (`rejoin.rs`), under green and under a
//! neutralisation, the loss learned from the stops of in-laps up to two laps before (their
//! samples join each later lap's group).

use super::rejoin::{learned_losses, rejoin_position, LossPrior, LossSample, Losses, LAST_LAP};
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
}

/// What a lap's group holds: the cars that completed it, and the loss samples of the stops
/// made up to two laps before it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderInput {
    Crossing(i64, DriverId),
    Sample(LossSample),
}

/// Standings of the cars that completed one lap, from their crossing times in any order, and
/// where each would rejoin after a stop losing `loss`.
pub fn standings(crossings: &[(i64, DriverId)], loss: Losses) -> Vec<(DriverId, Standing)> {
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
                rejoin_green: rejoin_position(&sorted, driver, end_ms, loss.green_ms),
                rejoin_neutralised: rejoin_position(&sorted, driver, end_ms, loss.neutralised_ms),
                pit_loss: loss,
            },
        ));
        prev = Some((end_ms, driver));
    }
    out
}

/// `(lap, (end_ms, driver))` and the stops' loss samples by in-lap in, `((driver, lap),
/// standing)` out; the loss starts from `prior`.
pub fn running_order<'scope>(
    crossings: VecCollection<'scope, Epoch, (u16, (i64, DriverId)), isize>,
    samples: VecCollection<'scope, Epoch, (u16, LossSample), isize>,
    prior: LossPrior,
) -> VecCollection<'scope, Epoch, ((DriverId, u16), Standing), isize> {
    let samples = samples.flat_map(|(in_lap, s)| {
        (in_lap.saturating_add(2)..=LAST_LAP).map(move |lap| (lap, OrderInput::Sample(s)))
    });
    crossings
        .map(|(lap, (end_ms, driver))| (lap, OrderInput::Crossing(end_ms, driver)))
        .concat(samples)
        .reduce_named("RunningOrder", move |_lap, input, output| {
            // Input values come sorted: crossings first, by time, then driver.
            let mut crossed: Vec<(i64, DriverId)> = Vec::with_capacity(input.len());
            let mut samples: Vec<&LossSample> = Vec::new();
            for (value, diff) in input {
                if *diff <= 0 {
                    continue;
                }
                match value {
                    OrderInput::Crossing(t, d) => crossed.push((*t, *d)),
                    OrderInput::Sample(s) => samples.push(s),
                }
            }
            if crossed.is_empty() {
                return;
            }
            let loss = learned_losses(&prior, samples.iter().copied());
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
            Losses {
                green_ms: 2_800,
                neutralised_ms: 1_000,
                ..Losses::default()
            },
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
