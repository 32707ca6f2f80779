//! Properties of the analysis that must hold for any input, checked on random races through
//! the real timely operator ([`analyze`]):
//!
//! - a driver's outputs depend only on that driver's records: however they are interleaved
//!   with other drivers', cut into batches and epochs, or spread over workers, the outputs are
//!   those of the driver's records alone through [`DriverAnalysis`];
//! - alert episodes open and close in pairs: one `Raised` and one `Cleared` per alert id, the
//!   same start, and episodes of one kind for one driver never overlap.

use pitwall_dataflows::alert::{Alert, AlertStatus};
use pitwall_dataflows::analysis::DriverAnalysis;
use pitwall_dataflows::config::LuggingMode;
use pitwall_dataflows::dataflow::analyze;
use pitwall_dataflows::race::RaceFact;
use pitwall_dataflows::testing::{capture, run_and_capture};
use pitwall_dataflows::{DetectorConfig, DriverId, Ingest, Output, Telemetry};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::collections::BTreeMap;

const DRIVERS: [&str; 3] = ["VER", "HAM", "LEC"];

fn config() -> DetectorConfig {
    let mut cfg = DetectorConfig::default();
    // The fixed rule needs no warm-up, so short random races raise lugging too.
    cfg.gear.lugging_mode = LuggingMode::Fixed;
    cfg
}

/// One car's values at one sample: speed, rpm, gear, throttle, brake, drs.
fn car_state() -> impl Strategy<Value = (f32, f32, u8, f32, bool, u8)> {
    (
        prop_oneof![0.0f32..30.0, 80.0f32..330.0],
        prop_oneof![6000.0f32..8500.0, 9000.0f32..14_500.0],
        prop_oneof![8 => 0u8..=8, 1 => 9u8..=128],
        prop_oneof![0.0f32..20.0, 90.0f32..=104.0],
        any::<bool>(),
        prop::sample::select(vec![0u8, 1, 8, 10, 12, 14]),
    )
}

/// A driver's race: samples ~250 ms apart, each state held for a few samples (episodes need
/// consecutive samples), laps counted up.
fn driver_race(driver: DriverId) -> impl Strategy<Value = Vec<Telemetry>> {
    prop::collection::vec((car_state(), 1usize..6, 200i64..300), 10..60).prop_map(move |runs| {
        let mut out = Vec::new();
        let mut ts = 1_685_278_862_000i64;
        for ((speed, rpm, gear, throttle, brake, drs), hold, step) in runs {
            for _ in 0..hold {
                ts += step;
                out.push(Telemetry {
                    speed,
                    rpm,
                    throttle,
                    lap: Some(1 + (out.len() / 40) as u16),
                    gear,
                    drs,
                    brake,
                    ..Telemetry::at(driver, ts)
                });
            }
        }
        out
    })
}

/// Every driver's race, and how they are merged and cut: for each merged position, which
/// driver's next record comes, and whether a new epoch starts there.
fn race() -> impl Strategy<Value = (Vec<Vec<Telemetry>>, Vec<usize>, Vec<bool>, usize)> {
    DRIVERS
        .iter()
        .map(|d| driver_race(DriverId::new(d).expect("a driver code")))
        .collect::<Vec<_>>()
        .prop_flat_map(|races| {
            let total: usize = races.iter().map(Vec::len).sum();
            (
                Just(races),
                prop::collection::vec(0..DRIVERS.len(), total),
                prop::collection::vec(prop::bool::weighted(0.1), total),
                1usize..=2,
            )
        })
}

/// Merges the drivers' records in the order `picks` says, each driver's kept in its order.
fn interleave(races: &[Vec<Telemetry>], picks: &[usize]) -> Vec<Telemetry> {
    let mut next = vec![0usize; races.len()];
    let mut out = Vec::new();
    for &p in picks {
        // A driver already done hands its turn to the next one that is not.
        let d = (0..races.len())
            .map(|k| (p + k) % races.len())
            .find(|&d| next[d] < races[d].len())
            .expect("picks are as many as the records");
        out.push(races[d][next[d]]);
        next[d] += 1;
    }
    out
}

/// The outputs of the real operator on `workers` threads, records sent in `order` with a new
/// epoch where `cuts` says; progress counts left out (they follow the batching by design).
fn through_dataflow(
    order: Vec<Telemetry>,
    cuts: Vec<bool>,
    workers: usize,
) -> (Vec<Output>, Vec<RaceFact>) {
    let mut epoch = 0;
    let feed = order
        .into_iter()
        .zip(cuts)
        .map(|(s, cut)| {
            epoch += cut as u64;
            (epoch, Ingest::Record(s))
        })
        .collect();
    let (outputs, facts) = run_and_capture(workers, feed, |input| {
        let analysis = analyze(input, &config());
        (capture(analysis.outputs), capture(analysis.facts))
    });
    let outputs = outputs
        .into_iter()
        .filter(|o| !matches!(o, Output::Progress { .. }))
        .collect();
    (outputs, facts)
}

/// One driver's records alone through the analysis, as the reference.
fn alone(races: &[Vec<Telemetry>]) -> (Vec<Output>, Vec<RaceFact>) {
    let cfg = config();
    let (mut out, mut facts) = (Vec::new(), Vec::new());
    for race in races {
        let mut a = DriverAnalysis::new(race[0].driver, &cfg);
        for s in race {
            a.observe(s, |o| out.push(o));
            facts.extend(a.take_facts());
        }
        a.finish(|o| out.push(o));
    }
    (out, facts)
}

/// Outputs and race facts grouped by driver in the order they came (a driver's are emitted by
/// one worker in order, so their order is part of what must not change).
fn by_driver((outputs, facts): &(Vec<Output>, Vec<RaceFact>)) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in outputs {
        let driver = match o {
            Output::Alert(a) => a.driver.to_string(),
            Output::Window(w) => w.driver.to_string(),
            Output::DriverTotals(t) => t.driver.to_string(),
            other => panic!("the analysis of records emitted {other:?}"),
        };
        map.entry(driver).or_default().push(format!("{o:?}"));
    }
    for f in facts {
        map.entry(format!("{} facts", f.driver()))
            .or_default()
            .push(format!("{f:?}"));
    }
    map
}

fn check_episodes(outputs: &[Output]) -> Result<(), TestCaseError> {
    let alerts: Vec<&Alert> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Alert(a) => Some(a),
            _ => None,
        })
        .collect();
    let mut by_id: BTreeMap<String, Vec<&Alert>> = BTreeMap::new();
    for a in &alerts {
        by_id.entry(a.alert_id.to_string()).or_default().push(a);
    }
    for (id, pair) in &by_id {
        prop_assert_eq!(pair.len(), 2, "alert {} has {} messages", id, pair.len());
        prop_assert_eq!(pair[0].status, AlertStatus::Raised);
        prop_assert_eq!(pair[1].status, AlertStatus::Cleared);
        prop_assert_eq!(pair[0].start_ms, pair[1].start_ms);
        prop_assert!(pair[1].end_ms >= pair[1].start_ms);
        prop_assert!(pair[1].samples >= 1);
    }
    let mut kinds: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for a in alerts.iter().filter(|a| a.status == AlertStatus::Cleared) {
        let kind = format!("{} {:?} {:?}", a.driver, a.alert_type, a.severity);
        kinds.entry(kind).or_default().push((a.start_ms, a.end_ms));
    }
    for (kind, mut spans) in kinds {
        spans.sort();
        for w in spans.windows(2) {
            prop_assert!(w[0].1 < w[1].0, "{} episodes overlap: {:?}", kind, w);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_and_batching_gives_each_driver_its_own_outputs(
        (races, picks, cuts, workers) in race()
    ) {
        let reference = alone(&races);
        let got = through_dataflow(interleave(&races, &picks), cuts, workers);
        prop_assert_eq!(by_driver(&got), by_driver(&reference));
        check_episodes(&got.0)?;
    }
}

#[test]
fn the_random_races_raise_alerts_of_several_kinds() {
    // The property above is only as good as the races it is given: they must raise episodes.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (races, _, _, _) = race().new_tree(&mut runner).expect("a race").current();
        for o in alone(&races).0 {
            if let Output::Alert(a) = o {
                kinds.insert(format!("{:?}", a.alert_type));
            }
        }
    }
    assert!(kinds.len() >= 4, "{kinds:?}");
}
