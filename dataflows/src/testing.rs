//! A harness for tests that run a real timely graph: build it on N worker threads, feed it
//! from worker 0 at given epochs, and get back what its streams emitted.
//!
//! ```
//! use pitwall_dataflows::dataflow::analyze;
//! use pitwall_dataflows::testing::{capture, run_and_capture};
//! use pitwall_dataflows::{DetectorConfig, DriverId, Ingest, Telemetry};
//!
//! let ver = DriverId::new("VER").unwrap();
//! let feed = (0..8).map(|i| (i / 4, Ingest::Record(Telemetry::at(ver, i as i64 * 250))));
//! let (outputs, facts) = run_and_capture(2, feed.collect(), |input| {
//!     let analysis = analyze(input, &DetectorConfig::default());
//!     (capture(analysis.outputs), capture(analysis.facts))
//! });
//! assert!(!outputs.is_empty());
//! # let _ = facts;
//! ```

use crate::dataflow::Epoch;
use crate::output::Ingest;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use timely::dataflow::operators::capture::{Capture, Event};
use timely::dataflow::operators::Input;
use timely::dataflow::{InputHandle, Stream};

/// A stream being captured, made by [`capture`] inside the graph-building closure.
pub struct Captured<D>(Receiver<Event<Epoch, Vec<D>>>);

/// Captures `stream`: [`run_and_capture`] hands back everything it emitted, as a `Vec<D>`.
pub fn capture<D: Clone + 'static>(stream: Stream<'_, Epoch, Vec<D>>) -> Captured<D> {
    Captured(stream.capture())
}

/// What a graph-building closure returns: one [`Captured`] stream, or a pair or triple of them.
pub trait Captures: Send + 'static {
    /// What the streams emitted: a `Vec` per stream.
    type Emitted: Default;
    /// Appends what was captured (on one worker) to `emitted`.
    fn drain_into(self, emitted: &mut Self::Emitted);
}

impl<D: Send + 'static> Captures for Captured<D> {
    type Emitted = Vec<D>;
    fn drain_into(self, emitted: &mut Vec<D>) {
        for event in self.0.try_iter() {
            if let Event::Messages(_, mut batch) = event {
                emitted.append(&mut batch);
            }
        }
    }
}

impl<A: Captures, B: Captures> Captures for (A, B) {
    type Emitted = (A::Emitted, B::Emitted);
    fn drain_into(self, emitted: &mut Self::Emitted) {
        self.0.drain_into(&mut emitted.0);
        self.1.drain_into(&mut emitted.1);
    }
}

impl<A: Captures, B: Captures, C: Captures> Captures for (A, B, C) {
    type Emitted = (A::Emitted, B::Emitted, C::Emitted);
    fn drain_into(self, emitted: &mut Self::Emitted) {
        self.0.drain_into(&mut emitted.0);
        self.1.drain_into(&mut emitted.1);
        self.2.drain_into(&mut emitted.2);
    }
}

/// Runs the graph `build` makes of the input stream on `workers` threads of one process.
///
/// Worker 0 sends `feed` in order, each item at its epoch (epochs must not decrease), then
/// closes the input; the others send nothing. When the graph is done, returns what the
/// captured streams emitted: each worker's in the order it emitted them, worker 0's first.
pub fn run_and_capture<R, F>(workers: usize, feed: Vec<(Epoch, Ingest)>, build: F) -> R::Emitted
where
    R: Captures,
    F: Fn(Stream<'_, Epoch, Vec<Ingest>>) -> R + Send + Sync + 'static,
{
    let feed = Arc::new(feed);
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandle::new();
        let captured = worker.dataflow::<Epoch, _, _>(|scope| build(scope.input_from(&mut input)));
        if worker.index() == 0 {
            for (epoch, item) in feed.iter() {
                assert!(
                    epoch >= input.time(),
                    "feed epochs must not decrease: {epoch} after {}",
                    input.time()
                );
                input.advance_to(*epoch);
                input.send(item.clone());
            }
        }
        input.close();
        while worker.step_or_park(None) {}
        captured
    })
    .expect("timely starts its workers");
    let mut emitted = R::Emitted::default();
    for (index, captured) in guards.join().into_iter().enumerate() {
        captured
            .unwrap_or_else(|panic| panic!("worker {index} panicked: {panic}"))
            .drain_into(&mut emitted);
    }
    emitted
}
