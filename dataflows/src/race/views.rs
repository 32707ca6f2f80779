//! Wires the race views: the per-driver analysis's laps and pit stops in, lap rows, pit rows
//! and predictions out, as updates.
//!
//! ```text
//! analysis ─ Lap, PitStop ─> driver_laps ─┬─> ⋈ field_state ─┬─> pit loss samples ─┐
//!                                         │                  └──────────────────────┼──┐
//!                                         └─> running_order <──────────────────────┘  ⋈ ─> lap rows ─> predictions
//!                                                         └──────────────────────────────┘
//!                     PitStop ──────────────── ⋈ field_state ─> pit rows
//!                     lap rows ⋈ the field's top speed per lap ─> car_health
//! ```

use super::car_health::car_health;
use super::chequered_flag::retirements;
use super::driver_laps::{driver_laps_view, DriverEvent};
use super::facts::RaceFact;
use super::field_state::{field_state, FieldState};
use super::predict::{predictions, Models};
use super::rejoin::{pit_loss_samples, LossPrior};
use super::running_order::{running_order, Crossing};
use super::{LapRow, PitRow, RaceConfig, RaceItem, RaceUpdate};
use crate::dataflow::Epoch;
use crate::output::Output;
use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

/// The race views over the analysis's race facts: `Output::Race` updates.
///
/// Long for a reason: it is the wiring diagram at the top of this file, a statement per view;
/// each view is a function in its own file.
pub fn race_views<'scope>(
    facts: Stream<'scope, Epoch, Vec<RaceFact>>,
    cfg: &RaceConfig,
    models: &Models,
) -> Stream<'scope, Epoch, Vec<Output>> {
    // The views move in steps of `view_step_epochs`: every epoch with a lap in it would be a
    // time at which each view is recomputed, and a step of a few seconds costs the views'
    // outputs that much latency but saves most of their work.
    let step = cfg.view_step_epochs.max(1);
    let events: VecCollection<'scope, Epoch, _, isize> = facts
        .unary(Pipeline, "RaceFacts", move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let epoch = time.least().copied().unwrap_or_default().div_ceil(step) * step;
                    let cap = time.delayed(&epoch, 0);
                    let mut session = output.session(&cap);
                    for fact in data.drain(..) {
                        let (event, diff) = fact.event();
                        session.give(((fact.driver(), event), epoch, diff));
                    }
                });
            }
        })
        .container::<Vec<_>>()
        .as_collection();

    let laps = driver_laps_view(events.clone());
    let fields = field_state(laps.clone(), cfg);
    let lap_fields = laps
        .clone()
        .map(|l| ((l.done.driver, l.done.lap), l))
        .join(fields.clone());
    let samples = pit_loss_samples(lap_fields.clone(), cfg.min_field_cars);
    let standings = running_order(
        laps.clone().map(|l| (l.done.lap, Crossing::of(&l))),
        samples,
        LossPrior {
            green_ms: cfg.pit_loss_prior_ms,
            neutralised_share: cfg.pit_loss_neutralised_share,
        },
        cfg.health_traffic_ms,
    );

    let rows = lap_fields
        .join(standings)
        .map(|(_, ((lap, field), standing))| LapRow {
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
                    // A batch may carry several times: each update goes at its own, so that a
                    // sink sees when it happened (not the batch's least time). Stable: the
                    // order of one time's updates is kept.
                    if data.windows(2).any(|w| w[0].1 != w[1].1) {
                        data.sort_by_key(|u| u.1);
                    }
                    let mut updates = data.drain(..).peekable();
                    while let Some(&(_, t, _)) = updates.peek() {
                        let cap = time.delayed(&t, 0);
                        let mut session = output.session(&cap);
                        while let Some((item, _, diff)) = updates.next_if(|u| u.1 == t) {
                            session.give(Output::Race(RaceUpdate {
                                item,
                                diff: diff as i64,
                            }));
                        }
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
    use crate::race::predict::PIT_FEATURES;
    use crate::race::{PitModel, RaceBook};
    use crate::record::{DriverId, Telemetry};
    use crate::testing::{capture, run_and_capture};

    fn models() -> Models {
        let n = PIT_FEATURES.len();
        Models {
            pit: PitModel {
                trained_on: vec![],
                features: PIT_FEATURES.iter().map(|s| s.to_string()).collect(),
                not_fitted: vec![],
                mean: vec![0.0; n],
                scale: vec![1.0; n],
                intercept: -3.0,
                coefficients: vec![0.1; n],
            },
            hazards: crate::race::Hazards {
                counted_from: String::new(),
                car_laps: 0,
                crash: crate::race::LapHazard {
                    lap_1: 0.02,
                    laps_2_3: 0.003,
                    later: 0.001,
                },
                tyre: crate::race::LapHazard {
                    lap_1: 0.0,
                    laps_2_3: 0.0001,
                    later: 0.0001,
                },
            },
            pit_base_rate: 0.05,
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
                            speed,
                            rpm: 10_000.0,
                            throttle,
                            lap: Some(lap),
                            gear: 5,
                            ..Telemetry::at(DriverId::new(code).unwrap(), t)
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
        // One epoch per second of race time.
        let feed = samples
            .into_iter()
            .map(|s| ((s.ts_ms / 1000) as Epoch, Ingest::Record(s)))
            .collect();
        let updates = run_and_capture(workers, feed, |input| {
            let analysis = analyze(input, &DetectorConfig::default());
            let race = race_views(analysis.facts, &RaceConfig::default(), &models());
            capture(race)
        });
        let mut book = RaceBook::default();
        for o in updates {
            if let Output::Race(u) = o {
                book.apply(&u);
            }
        }
        assert_eq!(book.inconsistent(), 0);
        book.laps()
            .map(|r| format!("{r:?}"))
            .chain(book.pit_stops().map(|p| format!("{p:?}")))
            .chain(book.predictions().map(|p| format!("{p:?}")))
            .collect()
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
