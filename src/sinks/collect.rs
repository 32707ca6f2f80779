//! The `Collect` sink: every output worker 0's [`Collector`] needs, exchanged to it.
//!
//! Without files to write, window aggregates are only counted on their own worker
//! (`CountWindows`): no need to send them all to worker 0.

use crate::ingest::EpochClock;
use crate::report::Collector;
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::Output;
use std::cell::RefCell;
use std::rc::Rc;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

/// Sends `outputs` to worker 0, where `collector` (present on worker 0 only) observes them
/// with the age of their epoch. `writes_files`: window aggregates go too, else only counts.
pub fn collect<'scope>(
    outputs: Stream<'scope, Epoch, Vec<Output>>,
    collector: Option<Rc<RefCell<Collector>>>,
    writes_files: bool,
    epochs: EpochClock,
) {
    let to_collect = outputs.unary(Pipeline, "CountWindows", move |_, _| {
        move |input, output| {
            input.for_each(|time, data| {
                let mut session = output.session(&time);
                let mut windows = 0;
                for o in data.drain(..) {
                    match o {
                        Output::Window(_) if !writes_files => windows += 1,
                        o => session.give(o),
                    }
                }
                if windows > 0 {
                    session.give(Output::Progress {
                        records: 0,
                        max_event_ms: i64::MIN,
                        windows,
                    });
                }
            });
        }
    });
    to_collect.sink(
        Exchange::new(|_: &Output| 0),
        "Collect",
        move |(input, _frontier)| {
            input.for_each(|time, data| {
                if let Some(c) = &collector {
                    let age = time.least().and_then(|e| epochs.age(*e));
                    let mut c = c.borrow_mut();
                    for o in data.drain(..) {
                        c.observe_latency(&o, age);
                        c.observe(o);
                    }
                }
            });
        },
    );
}
