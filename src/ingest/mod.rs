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
pub use pace::{due_in, Pace};

use pitwall_dataflows::Ingest;
use std::sync::atomic::AtomicU64;

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
}

/// Rows seen by this process's sources, for the summary.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Rows read (records, dead letters and filtered rows alike).
    pub rows: AtomicU64,
    /// Rows left out by `--drivers`.
    pub filtered: AtomicU64,
}
