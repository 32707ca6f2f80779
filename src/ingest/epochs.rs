//! Event-time epochs: which timely time a record goes at, and when each epoch was first
//! handed to the dataflow (for source-to-output latency).

use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::Ingest;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::dataflow::operators::Capability;

/// When this process's sources first handed each recent epoch to the dataflow, so that the
/// time from a source to an output can be measured. One per run, shared by its workers.
#[derive(Clone, Debug, Default)]
pub struct EpochClock {
    seen: Arc<Mutex<BTreeMap<Epoch, Instant>>>,
}

impl EpochClock {
    const KEEP: usize = 4096;

    pub fn note(&self, epoch: Epoch) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.entry(epoch).or_insert_with(Instant::now);
            while seen.len() > Self::KEEP {
                seen.pop_first();
            }
        }
    }

    /// Seconds since `epoch` was first handed over in this process, if it was.
    pub fn age(&self, epoch: Epoch) -> Option<f64> {
        self.seen
            .lock()
            .ok()?
            .get(&epoch)
            .map(|t| t.elapsed().as_secs_f64())
    }
}

/// Gives items from the front of `pending` to the dataflow, each at its epoch (event time,
/// never going back: an older record goes at the current epoch), at most `max`, stopping at
/// the first item `ready` says is not due yet. Every source hands over records through this.
pub fn give_in_epochs(
    cap: &mut Capability<Epoch>,
    output: &mut OutputBuilderSession<'_, Epoch, CapacityContainerBuilder<Vec<Ingest>>>,
    pending: &mut VecDeque<Ingest>,
    epoch_ms: i64,
    max: usize,
    clock: &EpochClock,
    mut ready: impl FnMut(&Ingest) -> bool,
) -> usize {
    let mut sent = 0;
    while sent < max {
        let epoch = match pending.front() {
            Some(item) if ready(item) => epoch_of(item, *cap.time(), epoch_ms),
            _ => break,
        };
        if epoch > *cap.time() {
            cap.downgrade(&epoch);
        }
        clock.note(epoch);
        let mut session = output.session(&*cap);
        while sent < max {
            match pending.front() {
                Some(item) if epoch_of(item, epoch, epoch_ms) == epoch && ready(item) => {}
                _ => break,
            }
            if let Some(item) = pending.pop_front() {
                session.give(item);
                sent += 1;
            }
        }
    }
    sent
}

pub fn epoch_of(item: &Ingest, current: Epoch, epoch_ms: i64) -> Epoch {
    match item {
        Ingest::Record(s) | Ingest::Replay(s) => {
            current.max(s.ts_ms.max(0).div_euclid(epoch_ms) as Epoch)
        }
        Ingest::Dead(_) => current,
    }
}
