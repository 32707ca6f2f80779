//! Wires the race views: the per-driver analysis's laps and pit stops in, lap rows, pit rows
//! and predictions out, as updates.
//!
//! ```text
//! analysis ─ Lap, PitStop ─> driver_laps ─┬─> running_order ─┐
//!                                         ├─> field_state ───┼─> lap rows ─> predictions
//!                                         └──────────────────┘
//!                     PitStop ──────────────── ⋈ field_state ─> pit rows
//! ```

use super::driver_laps::{driver_laps_view, DriverEvent};
use super::field_state::{field_state, FieldState};
use super::predict::{predictions, Models};
use super::running_order::running_order;
use super::{LapRow, PitRow, RaceConfig, RaceItem, RaceUpdate};
use crate::dataflow::Epoch;
use crate::output::Output;
use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

/// The race views over the analysis's output: `Output::Race` updates.
pub fn race_views<'scope>(
    analysis: Stream<'scope, Epoch, Vec<Output>>,
    cfg: &RaceConfig,
    models: &Models,
) -> Stream<'scope, Epoch, Vec<Output>> {
    let events: VecCollection<'scope, Epoch, _, isize> = analysis
        .unary(Pipeline, "RaceFacts", |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let epoch = time.least().copied().unwrap_or_default();
                    let mut session = output.session(&time);
                    for o in data.iter() {
                        match o {
                            Output::Lap(l) => {
                                session.give(((l.driver, DriverEvent::Lap(l.clone())), epoch, 1))
                            }
                            Output::PitStop(p) => {
                                session.give(((p.driver, DriverEvent::Pit(p.clone())), epoch, 1))
                            }
                            _ => {}
                        }
                    }
                });
            }
        })
        .container::<Vec<_>>()
        .as_collection();

    let laps = driver_laps_view(events.clone());
    let standings = running_order(
        laps.clone()
            .map(|l| (l.done.lap, (l.done.end_ms, l.done.driver))),
    );
    let fields = field_state(laps.clone(), cfg);

    let rows = laps
        .map(|l| ((l.done.driver, l.done.lap), l))
        .join(standings)
        .join(fields.clone())
        .map(|(_, ((lap, standing), field))| LapRow {
            lap,
            standing,
            field,
        });

    let pits = events
        .flat_map(|(_, e)| match e {
            DriverEvent::Pit(p) => Some(((p.driver, p.lap), p)),
            DriverEvent::Lap(_) => None,
        })
        .join(fields)
        // Cars queueing in the pit lane under a red flag are not making pit stops.
        .filter(|(_, (_, field))| field.state != FieldState::Red)
        .map(|(_, (stop, field))| PitRow {
            stop,
            field_state: field.state,
        });

    let models = models.clone();
    let predicted = rows
        .clone()
        .flat_map(move |row| predictions(&row, &models).map(RaceItem::Prediction));

    rows.map(RaceItem::Lap)
        .concat(pits.map(RaceItem::Pit))
        .concat(predicted)
        .inner
        .unary(Pipeline, "RaceUpdates", |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (item, _time, diff) in data.drain(..) {
                        session.give(Output::Race(RaceUpdate {
                            item,
                            diff: diff as i64,
                        }));
                    }
                });
            }
        })
        .container::<Vec<_>>()
}
