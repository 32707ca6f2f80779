//! The race facts: what one driver's analysis finds out about the race (a lap done, a pit stop,
//! a car stopped for good) and hands the race views on a stream of its own, apart from the
//! alerts and windows that go to the sinks.

use super::driver_laps::DriverEvent;
use super::retirement::CarStop;
use super::{LapDone, PitStop};
use crate::record::DriverId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RaceFact {
    /// A lap completed, as the driver's tracker saw it.
    Lap(LapDone),
    /// A pit stop made.
    PitStop(PitStop),
    /// A car judged stopped for good (+1); when it drives off again, that stop withdrawn (-1)
    /// and the same stop with its end added (+1). The views tell a retirement from a car
    /// parked after the flag or standing under a red flag.
    CarStop(CarStop, i64),
}

impl RaceFact {
    pub fn driver(&self) -> DriverId {
        match self {
            RaceFact::Lap(l) => l.driver,
            RaceFact::PitStop(p) => p.driver,
            RaceFact::CarStop(s, _) => s.driver,
        }
    }

    /// The fact as the per-driver view takes it: an event and its multiplicity.
    pub(crate) fn event(&self) -> (DriverEvent, isize) {
        match self {
            RaceFact::Lap(l) => (DriverEvent::Lap(l.clone()), 1),
            RaceFact::PitStop(p) => (DriverEvent::Pit(p.clone()), 1),
            RaceFact::CarStop(s, diff) => (DriverEvent::Stop(s.clone()), *diff as isize),
        }
    }
}
