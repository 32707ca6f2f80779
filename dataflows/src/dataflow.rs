//! The timely graph: records are exchanged by driver, so that each driver's samples are
//! analysed in order by one worker, which keeps that driver's state.

use crate::analysis::{Derived, DriverAnalysis};
use crate::config::DetectorConfig;
use crate::output::{Ingest, Output};
use crate::placement::Placement;
use crate::race::RaceFact;
use crate::record::DriverMap;
use crate::record::Telemetry;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::Stream;

/// Timely timestamps are coarse epochs of event time, never one per record.
pub type Epoch = u64;

/// Sees what the analysis of one worker computes, as it computes it (e.g. to keep a query
/// store); called on the worker's thread, so it must be quick.
pub trait AnalysisHook: 'static {
    fn sample(&mut self, s: &Telemetry, derived: &Derived);
    fn output(&mut self, o: &Output, epoch: Epoch);
    /// End of an input batch: a good moment to publish what was buffered.
    fn flush(&mut self);
}

/// The hook that does nothing.
pub struct NoHook;

impl AnalysisHook for NoHook {
    fn sample(&mut self, _: &Telemetry, _: &Derived) {}
    fn output(&mut self, _: &Output, _: Epoch) {}
    fn flush(&mut self) {}
}

/// A hook that may be absent (a run without a query store), so that one graph serves both.
impl<H: AnalysisHook> AnalysisHook for Option<H> {
    fn sample(&mut self, s: &Telemetry, derived: &Derived) {
        if let Some(h) = self {
            h.sample(s, derived)
        }
    }
    fn output(&mut self, o: &Output, epoch: Epoch) {
        if let Some(h) = self {
            h.output(o, epoch)
        }
    }
    fn flush(&mut self) {
        if let Some(h) = self {
            h.flush()
        }
    }
}

/// What the analysis emits, on two streams: its outputs for the sinks (alerts, windows, dead
/// letters, progress) and the race facts for the race views.
pub struct Analysis<'scope> {
    pub outputs: Stream<'scope, Epoch, Vec<Output>>,
    pub facts: Stream<'scope, Epoch, Vec<RaceFact>>,
}

/// Analyses every driver's samples: windows, wheel spin, gear anomalies, alerts, race facts.
///
/// Dead letters pass through (to worker 0). When the input is exhausted each driver's open
/// windows and episodes are closed, in driver order, so the output does not depend on how
/// records were batched or how many workers there are.
pub fn analyze<'scope>(
    ingest: Stream<'scope, Epoch, Vec<Ingest>>,
    cfg: &DetectorConfig,
) -> Analysis<'scope> {
    analyze_with(ingest, cfg, NoHook)
}

/// [`analyze`], telling `hook` about every sample and output.
pub fn analyze_with<'scope, H: AnalysisHook>(
    ingest: Stream<'scope, Epoch, Vec<Ingest>>,
    cfg: &DetectorConfig,
    hook: H,
) -> Analysis<'scope> {
    analyze_placed(ingest, cfg, hook, &Placement::hashed())
}

/// [`analyze_with`], each driver analysed on the worker `placement` gives it.
///
/// Long for a reason: one timely operator with two outputs, whose per-driver state lives in its
/// closure; the work of each step is [`DriverAnalysis`]'s.
pub fn analyze_placed<'scope, H: AnalysisHook>(
    ingest: Stream<'scope, Epoch, Vec<Ingest>>,
    cfg: &DetectorConfig,
    mut hook: H,
    placement: &Placement,
) -> Analysis<'scope> {
    let cfg = cfg.clone();
    let mut builder = OperatorBuilder::new("Analyze".to_owned(), ingest.scope());
    let mut input = builder.new_input(ingest, Exchange::new(placement.router()));
    let (outputs, output_stream) = builder.new_output::<Vec<Output>>();
    let (facts, fact_stream) = builder.new_output::<Vec<RaceFact>>();
    let mut outputs = OutputBuilder::<_, CapacityContainerBuilder<Vec<Output>>>::from(outputs);
    let mut facts = OutputBuilder::<_, CapacityContainerBuilder<Vec<RaceFact>>>::from(facts);
    builder.build(move |capabilities| {
        let mut drivers: DriverMap<DriverAnalysis> = DriverMap::default();
        // Held at the input frontier so that the final flush has a time to send at.
        let mut flush_cap = capabilities.into_iter().next();
        move |frontiers| {
            let mut outputs = outputs.activate();
            let mut facts = facts.activate();
            input.for_each(|time, data| {
                let epoch = time.least().copied().unwrap_or_default();
                let mut session = outputs.session(&time);
                let mut found = facts.session(&time);
                let hook = &mut hook;
                let mut records = 0u64;
                let mut max_event_ms = i64::MIN;
                for item in data.drain(..) {
                    match item {
                        Ingest::Record(s) => {
                            records += 1;
                            max_event_ms = max_event_ms.max(s.ts_ms);
                            let driver = drivers
                                .entry(s.driver)
                                .or_insert_with(|| DriverAnalysis::new(s.driver, &cfg));
                            let derived = driver.observe(&s, |o| {
                                hook.output(&o, epoch);
                                session.give(o)
                            });
                            found.give_iterator(driver.take_facts());
                            hook.sample(&s, &derived);
                        }
                        Ingest::Replay(s) => {
                            let driver = drivers
                                .entry(s.driver)
                                .or_insert_with(|| DriverAnalysis::new(s.driver, &cfg));
                            driver.replay(&s);
                            found.give_iterator(driver.take_facts());
                        }
                        Ingest::Dead(d) => {
                            let o = Output::DeadLetter(d);
                            hook.output(&o, epoch);
                            session.give(o)
                        }
                    }
                }
                if records > 0 {
                    session.give(Output::Progress {
                        records,
                        max_event_ms,
                        windows: 0,
                    });
                }
                hook.flush();
            });

            let frontier = &frontiers[0];
            if frontier.is_empty() {
                if let Some(cap) = flush_cap.take() {
                    let epoch = *cap.time();
                    let mut session = outputs.session(&cap);
                    let mut ids: Vec<_> = drivers.keys().copied().collect();
                    ids.sort();
                    for id in ids {
                        if let Some(state) = drivers.get_mut(&id) {
                            state.finish(|o| {
                                hook.output(&o, epoch);
                                session.give(o)
                            });
                        }
                    }
                    hook.flush();
                }
            } else if let Some(cap) = flush_cap.as_mut() {
                if let Some(&least) = frontier.frontier().iter().min() {
                    if *cap.time() < least {
                        cap.downgrade(&least);
                    }
                }
            }
        }
    });
    Analysis {
        outputs: output_stream,
        facts: fact_stream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertStatus;
    use crate::record::{DriverId, Telemetry};
    use crate::testing::{capture, run_and_capture};

    fn sample(driver: &str, ts_ms: i64, gear: u8, rpm: f32) -> Telemetry {
        Telemetry {
            speed: 150.0,
            rpm,
            throttle: 60.0,
            lap: Some(1),
            gear,
            ..Telemetry::at(DriverId::new(driver).unwrap(), ts_ms)
        }
    }

    /// Runs the analysis on `workers` threads and returns every output, sorted for comparison.
    fn run(workers: usize, samples: Vec<Telemetry>) -> Vec<String> {
        // A new epoch after every seventh record, named after that record.
        let mut epoch = 0;
        let mut feed = Vec::new();
        for (i, s) in samples.into_iter().enumerate() {
            feed.push((epoch, Ingest::Record(s)));
            if i % 7 == 6 {
                epoch = i as Epoch;
            }
        }
        let outputs = run_and_capture(workers, feed, |input| {
            // The seeds' fixed lugging rule: the bursts below are judged by it.
            let mut cfg = DetectorConfig::default();
            cfg.gear.lugging_mode = crate::config::LuggingMode::Fixed;
            capture(analyze(input, &cfg).outputs)
        });
        let mut all: Vec<String> = outputs
            .into_iter()
            .filter(|o| !matches!(o, Output::Progress { .. }))
            .map(|o| format!("{o:?}"))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn outputs_are_the_same_for_one_and_two_workers() {
        let mut samples = Vec::new();
        for i in 0..400i64 {
            for (d, driver) in ["VER", "HAM", "LEC", "NOR", "ALO"].iter().enumerate() {
                // Lugging bursts and glitch gears at different times per driver.
                let lug = (i + d as i64 * 13) % 37 < 3;
                let gear = if (i + d as i64) % 101 == 0 {
                    64
                } else if lug {
                    6
                } else {
                    3
                };
                let rpm = if lug { 7000.0 } else { 10500.0 };
                samples.push(sample(driver, i * 250, gear, rpm));
            }
        }
        let one = run(1, samples.clone());
        let two = run(2, samples);
        assert_eq!(one, two);
        let cleared_lugging = one
            .iter()
            .filter(|l| l.contains("Lugging") && l.contains(&format!("{:?}", AlertStatus::Cleared)))
            .count();
        // Each driver has a 3-sample lugging burst every 37 samples: 400/37 ≈ 10.8 per driver.
        assert!((50..=60).contains(&cleared_lugging), "{cleared_lugging}");
        assert!(one.iter().any(|l| l.contains("InvalidGear")));
        assert_eq!(
            one.iter().filter(|l| l.starts_with("DriverTotals")).count(),
            5
        );
    }
}
