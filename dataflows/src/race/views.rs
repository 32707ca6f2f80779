//! Wires the race views: the per-driver analysis's laps and pit stops in, lap rows, pit rows
//! and predictions out, as updates.
//!
//! ```text
//! analysis ─ Lap, PitStop ─> driver_laps ─┬─> running_order ─┐
//!                                         ├─> field_state ───┼─> lap rows ─> predictions
//!                                         └──────────────────┘
//!                     PitStop ──────────────── ⋈ field_state ─> pit rows
//!                     lap rows ⋈ the field's top speed per lap ─> car_health
//! ```

use super::car_health::car_health;
use super::driver_laps::{driver_laps_view, DriverEvent};
use super::field_state::{field_state, FieldState};
use super::keyed_state::{keyed_state, Counts, KeyedState};
use super::predict::{predictions, Models};
use super::retirement::CarStop;
use super::running_order::running_order;
use super::{LapRow, PitRow, RaceConfig, RaceItem, RaceUpdate};
use crate::dataflow::Epoch;
use crate::output::Output;
use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

/// Cars stopped for good, less those parked after the chequered flag.
///
/// The flag is the end of the race's last lap: the first lap closed by distance (a lap with no
/// next lap number) among the laps of the highest lap number. A car that stopped before it
/// retired; one that stopped after it finished. Until the flag, every stop is a retirement,
/// so it is reported as soon as the car is judged stopped.
fn retirements<'scope>(
    stops: VecCollection<'scope, Epoch, CarStop, isize>,
    laps: VecCollection<'scope, Epoch, super::DriverLap, isize>,
) -> VecCollection<'scope, Epoch, CarStop, isize> {
    // Each stop brings a marker into the one group, so that the flag (or "not yet") is known
    // as soon as the first stop is.
    let marks = stops
        .clone()
        .map(|_| ((), FlagMark::Stop))
        .concat(laps.map(|l| {
            let d = &l.done;
            ((), FlagMark::Lap(d.lap, d.by_distance, d.end_ms))
        }));
    let flag = keyed_state(marks, "Flag", |_| ChequeredFlag::default()).map(|flag| ((), flag));
    stops
        .map(|s| ((), s))
        .join_map(flag, |_unit, stop, flag_ms| (stop.clone(), *flag_ms))
        .filter(|(stop, flag_ms)| stop.since_ms < *flag_ms)
        .map(|(stop, _)| stop)
}

/// What the chequered flag is judged from: a stop, or a lap (number, closed by distance, end).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
enum FlagMark {
    Stop,
    Lap(u16, bool, i64),
}

/// The flag (epoch ms, `i64::MAX` for "not yet") from the whole race's laps, kept in order so
/// that a new lap costs a lookup at the end, not a pass over every lap of the race.
#[derive(Default)]
struct ChequeredFlag {
    stops: isize,
    /// (lap number, closed by distance, end) of every lap.
    laps: Counts<(u16, bool, i64)>,
}

impl ChequeredFlag {
    /// The flag, or nothing while the group is empty (no stop and no lap).
    fn flag(&self) -> Option<i64> {
        if self.stops == 0 && self.laps.is_empty() {
            return None;
        }
        let most = self.laps.present().next_back().map(|&(lap, ..)| lap);
        let first_by_distance = most.and_then(|most| {
            self.laps
                .present_from(&(most, true, i64::MIN))
                .map(|&(_, _, end)| end)
                .next()
        });
        Some(first_by_distance.unwrap_or(i64::MAX))
    }
}

impl KeyedState for ChequeredFlag {
    type Value = FlagMark;
    type Output = i64;

    fn update(&mut self, changes: &[(FlagMark, isize)], output: &mut Vec<(i64, isize)>) {
        let before = self.flag();
        for (mark, diff) in changes {
            match mark {
                FlagMark::Stop => self.stops += diff,
                FlagMark::Lap(lap, by_distance, end) => {
                    self.laps.apply(&(*lap, *by_distance, *end), *diff);
                }
            }
        }
        let after = self.flag();
        if before != after {
            output.extend(before.map(|f| (f, -1)));
            output.extend(after.map(|f| (f, 1)));
        }
    }
}

/// The race views over the analysis's output: `Output::Race` updates.
pub fn race_views<'scope>(
    analysis: Stream<'scope, Epoch, Vec<Output>>,
    cfg: &RaceConfig,
    models: &Models,
) -> Stream<'scope, Epoch, Vec<Output>> {
    // The views move in steps of `view_step_epochs`: every epoch with a lap in it would be a
    // time at which each view is recomputed, and a step of a few seconds costs the views'
    // outputs that much latency but saves most of their work.
    let step = cfg.view_step_epochs.max(1);
    let events: VecCollection<'scope, Epoch, _, isize> = analysis
        .unary(Pipeline, "RaceFacts", move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let epoch = time.least().copied().unwrap_or_default().div_ceil(step) * step;
                    let cap = time.delayed(&epoch, 0);
                    let mut session = output.session(&cap);
                    for o in data.iter() {
                        match o {
                            Output::Lap(l) => {
                                session.give(((l.driver, DriverEvent::Lap(l.clone())), epoch, 1))
                            }
                            Output::PitStop(p) => {
                                session.give(((p.driver, DriverEvent::Pit(p.clone())), epoch, 1))
                            }
                            Output::CarStop(stop, diff) => session.give((
                                (stop.driver, DriverEvent::Stop(stop.clone())),
                                epoch,
                                *diff as isize,
                            )),
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
        .clone()
        .map(|l| ((l.done.driver, l.done.lap), l))
        .join(standings)
        .join(fields.clone())
        .map(|(_, ((lap, standing), field))| LapRow {
            lap,
            standing,
            field,
        });

    let pits = events
        .clone()
        .flat_map(|(_, e)| match e {
            DriverEvent::Pit(p) => Some(((p.driver, p.lap), p)),
            _ => None,
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

    let health = car_health(rows.clone(), cfg).map(RaceItem::Health);
    let stops = events.flat_map(|(_, e)| match e {
        DriverEvent::Stop(s) => Some(s),
        _ => None,
    });
    let retirements = retirements(stops, laps).map(RaceItem::Retirement);

    rows.map(RaceItem::Lap)
        .concat(pits.map(RaceItem::Pit))
        .concat(predicted)
        .concat(health)
        .concat(retirements)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectorConfig;
    use crate::dataflow::analyze;
    use crate::output::Ingest;
    use crate::race::keyed_state::Replay;
    use crate::race::predict::PIT_FEATURES;
    use crate::race::{PitModel, RaceBook};
    use crate::record::{DriverId, Telemetry};
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::capture::{Capture, Event};
    use timely::dataflow::operators::{Input, Probe};
    use timely::dataflow::InputHandle;

    fn models() -> Models {
        let n = PIT_FEATURES.len();
        Models {
            pit: PitModel {
                trained_on: vec![],
                features: PIT_FEATURES.iter().map(|s| s.to_string()).collect(),
                mean: vec![0.0; n],
                scale: vec![1.0; n],
                intercept: -3.0,
                coefficients: vec![0.1; n],
            },
        }
    }

    /// Five cars on 60 s laps at 180 km/h, 1 s apart, 4 Hz; car `i` pits on lap `2 + i`.
    fn race() -> Vec<Telemetry> {
        let cars = ["VER", "HAM", "LEC", "NOR", "ALO"];
        let mut per_car: Vec<Vec<Telemetry>> = Vec::new();
        for (i, code) in cars.iter().enumerate() {
            let mut v = Vec::new();
            let mut t = i as i64 * 1000;
            let mut push =
                |speed: f32, throttle: f32, lap: u16, n: usize, v: &mut Vec<Telemetry>| {
                    for _ in 0..n {
                        v.push(Telemetry {
                            driver: DriverId::new(code).unwrap(),
                            ts_ms: t,
                            speed,
                            rpm: 10_000.0,
                            throttle,
                            brake_temp: None,
                            position: None,
                            lap: Some(lap),
                            gear: 5,
                            drs: 0,
                            brake: false,
                        });
                        t += 250;
                    }
                };
            for lap in 1..=6u16 {
                if lap == 2 + i as u16 {
                    push(180.0, 100.0, lap, 160, &mut v);
                    push(60.0, 100.0, lap, 40, &mut v);
                    push(0.0, 0.0, lap, 40, &mut v);
                    push(60.0, 100.0, lap, 30, &mut v);
                } else {
                    push(180.0, 100.0, lap, 240, &mut v);
                }
            }
            per_car.push(v);
        }
        let mut all: Vec<Telemetry> = per_car.into_iter().flatten().collect();
        all.sort_by_key(|s| (s.ts_ms, s.driver));
        all
    }

    fn run(workers: usize, samples: Vec<Telemetry>) -> Vec<String> {
        let samples = Arc::new(samples);
        let books = Arc::new(Mutex::new(RaceBook::default()));
        let sink = books.clone();
        timely::execute(timely::Config::process(workers), move |worker| {
            let mut input = InputHandle::new();
            let (probe, captured) = worker.dataflow::<Epoch, _, _>(|scope| {
                let stream = scope.input_from(&mut input);
                let analysis = analyze(stream, &DetectorConfig::default());
                let race = race_views(analysis, &RaceConfig::default(), &models());
                let (probe, race) = race.probe();
                (probe, race.capture())
            });
            if worker.index() == 0 {
                for s in samples.iter() {
                    let epoch = (s.ts_ms / 1000) as u64;
                    if epoch > *input.time() {
                        input.advance_to(epoch);
                    }
                    input.send(Ingest::Record(*s));
                }
            }
            input.close();
            while worker.step_or_park(None) {}
            drop(probe);
            let mut book = sink.lock().unwrap();
            for event in captured.try_iter() {
                if let Event::Messages(_, batch) = event {
                    for o in batch {
                        if let Output::Race(u) = o {
                            book.apply(&u);
                        }
                    }
                }
            }
        })
        .unwrap();
        let book = books.lock().unwrap();
        assert_eq!(book.inconsistent(), 0);
        book.laps()
            .map(|r| format!("{r:?}"))
            .chain(book.pit_stops().map(|p| format!("{p:?}")))
            .chain(book.predictions().map(|p| format!("{p:?}")))
            .collect()
    }

    proptest::proptest! {
        /// The flag kept from the changes is, after every step, the end of the first lap
        /// closed by distance among those of the highest lap number present, as the marks say.
        #[test]
        fn the_flag_kept_from_changes_is_that_of_all_the_laps(
            steps in proptest::collection::vec(
                proptest::collection::vec(
                    (0..12u16, proptest::bool::ANY, 0..4i64, proptest::bool::weighted(0.7)),
                    0..5,
                ),
                1..30,
            ),
        ) {
            let mut view = Replay::new(ChequeredFlag::default());
            let mut present: std::collections::BTreeMap<FlagMark, isize> = Default::default();
            for step in steps {
                let mut changes = Vec::new();
                for (lap, by_distance, end, add) in step {
                    // Lap 0 stands for a stop.
                    let mark = if lap == 0 {
                        FlagMark::Stop
                    } else {
                        FlagMark::Lap(lap, by_distance, lap as i64 * 100 + end)
                    };
                    let count = present.get(&mark).copied().unwrap_or(0);
                    changes.push((mark, if add || count == 0 { 1 } else { -1 }));
                }
                for (m, d) in &changes {
                    *present.entry(m.clone()).or_default() += d;
                }
                present.retain(|_, n| *n != 0);
                let flag = view.step(changes);
                let laps = present.iter().filter_map(|(m, n)| match m {
                    FlagMark::Lap(lap, by_distance, end) if *n > 0 => {
                        Some((*lap, *by_distance, *end))
                    }
                    _ => None,
                });
                let most = laps.clone().map(|l| l.0).max();
                let expected = laps
                    .filter(|l| Some(l.0) == most && l.1)
                    .map(|l| l.2)
                    .min()
                    .unwrap_or(i64::MAX);
                let expected: Vec<i64> = (!present.is_empty()).then_some(expected).into_iter().collect();
                proptest::prop_assert_eq!(flag, expected);
            }
        }
    }

    #[test]
    fn race_views_are_the_same_on_one_and_two_workers() {
        let one = run(1, race());
        let two = run(2, race());
        assert_eq!(one, two);
        // 5 cars × 5 completed laps (the 6th has no next lap and no overrun), 3 predictions
        // per lap; 4 stops: ALO's, on the unfinished 6th lap, never leaves the pit lane.
        let laps = one.iter().filter(|l| l.starts_with("LapRow")).count();
        let pits = one.iter().filter(|l| l.starts_with("PitRow")).count();
        let preds = one.iter().filter(|l| l.starts_with("Prediction")).count();
        assert_eq!((laps, pits, preds), (25, 4, 75));
        // VER stops for 10 s on lap 2, 1 s ahead of HAM: HAM leads at the end of lap 2.
        let ham2 = one
            .iter()
            .find(|l| l.contains("driver: DriverId(HAM), lap: 2,"))
            .unwrap();
        assert!(ham2.contains("position: 1,"), "{ham2}");
    }
}
