//! The ingest floor: what every source (file, simulator, Kafka) hands the dataflow through.
//!
//! A source is a [`RecordSource`] that fills batches; [`ingest`] is the timely operator that
//! drives one, paced ([`pace`]) and cut into coarse event-time epochs ([`epochs`]). The Kafka
//! source has its own operator but hands records over through the same
//! [`epochs::give_in_epochs`]. Nothing here knows which source, sink or server sits above it.

pub mod epochs;
pub mod operator;
pub mod pace;

pub use epochs::{epoch_of, give_in_epochs, EpochClock};
pub use operator::ingest;
pub use pace::{due_at, due_in, Pace};

use pitwall_dataflows::Ingest;
use std::sync::atomic::AtomicU64;
use timely::scheduling::SyncActivator;

/// Input that cannot be used at all: the run does not start (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    pub fn new(message: impl Into<String>) -> Self {
        InputError(message.into())
    }
}

/// Anything that produces records (and dead letters) in batches.
pub trait RecordSource {
    /// Appends up to `max` items to `out`; returns `false` once there will be no more.
    fn fill(&mut self, out: &mut Vec<Ingest>, max: usize) -> bool;

    /// A source fed by another thread can have nothing now and more later. It is given the
    /// operator's activator and returns `true` if it will activate the operator when more
    /// arrives; the operator then waits instead of polling. Others return `false`.
    fn wake_with(&mut self, _activator: SyncActivator) -> bool {
        false
    }

    /// Event time (ms) that the input as a whole has reached, when this source knows it: the
    /// operator may move its epoch up to it while the source has nothing to give, so that a
    /// worker whose own drivers are quiet does not hold every other worker's progress back.
    fn watermark(&self) -> Option<i64> {
        None
    }
}

/// Rows seen by this process's sources, for the summary.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Rows read (records, dead letters and filtered rows alike).
    pub rows: AtomicU64,
    /// Rows left out by `--drivers`.
    pub filtered: AtomicU64,
}
