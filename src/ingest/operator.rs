//! The `Ingest` operator: drives one worker's [`RecordSource`] (or none) as a timely input.

use super::{due_at, due_in, give_in_epochs, EpochClock, Pace, RecordSource};
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::Ingest;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

/// Drives a worker's source (or none) as a timely input stream.
///
/// Epochs are event-time buckets (`ts / epoch_ms`), never going back: a record older than the
/// current epoch is sent at the current one. With a speed, a record is held until its turn.
pub fn ingest<'scope>(
    scope: Scope<'scope, Epoch>,
    source_for_worker: Option<Box<dyn RecordSource>>,
    pace: Pace,
    epochs: EpochClock,
    stop: Arc<AtomicBool>,
) -> Stream<'scope, Epoch, Vec<Ingest>> {
    source(scope, "Ingest", move |capability, info| {
        let activator = scope.activator_for(info.address.clone());
        let mut src = source_for_worker;
        // A source fed by its own thread wakes this operator when it has more.
        let woken = src
            .as_mut()
            .is_some_and(|s| s.wake_with(scope.worker().sync_activator_for(info.address.to_vec())));
        let mut cap = src.is_some().then_some(capability);
        let mut pending: VecDeque<Ingest> = VecDeque::new();
        let mut fill_buf: Vec<Ingest> = Vec::with_capacity(pace.batch);
        let mut exhausted = false;
        let mut clock: Option<(Instant, i64)> = None;
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            if pending.is_empty() && !exhausted {
                if let Some(s) = src.as_mut() {
                    exhausted = !s.fill(&mut fill_buf, pace.batch);
                    pending.extend(fill_buf.drain(..));
                }
            }
            if (pending.is_empty() && exhausted) || stop.load(Ordering::Relaxed) {
                cap = None;
                src = None;
                return;
            }
            if pending.is_empty() {
                // Nothing of this worker's own to give: follow the input's watermark (when
                // due), then wait to be woken (or poll, for a source that does not wake).
                if let Some(ms) = src.as_ref().and_then(|s| s.watermark()) {
                    let epoch = ms.max(0).div_euclid(pace.epoch_ms.max(1)) as Epoch;
                    match due_at(ms, &mut clock, pace.speed) {
                        None if epoch > *c.time() => c.downgrade(&epoch),
                        None => {}
                        Some(delay) => {
                            activator.activate_after(delay);
                            return;
                        }
                    }
                }
                if !woken {
                    activator.activate();
                }
                return;
            }
            give_in_epochs(
                c,
                output,
                &mut pending,
                pace.epoch_ms,
                pace.batch,
                &epochs,
                |item| due_in(item, &mut clock, pace.speed).is_none(),
            );
            match pending
                .front()
                .and_then(|item| due_in(item, &mut clock, pace.speed))
            {
                Some(delay) => activator.activate_after(delay),
                None => activator.activate(),
            }
        }
    })
    .container::<Vec<_>>()
}
