//! The race views' changelog on a real broker, row by row: the engine's Kafka sink is given
//! known differential updates (an insertion, a change, a row taken back with no replacement,
//! on each kind of topic) and an independent client (confluent-kafka in Python,
//! `tests/changelog_fold.py`) reads the topics from the beginning and folds them.
//!
//! Which rows a whole race takes back depends on how its records meet in epochs, so the race
//! tests (`kafka_e2e.rs`) check only that the fold equals the engine's files; this one checks
//! that a retraction without a replacement is a tombstone, or a withdrawn prediction, and that a
//! version taken back within its epoch (a join whose two inputs changed at once) is not the one
//! a consumer is left with, whatever the order the updates came in.

mod common;

use pitwall::config::KafkaConfig;
use pitwall::kafka::sink::{kafka_sink, Deliveries};
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::race::car_health::CarHealth;
use pitwall_dataflows::race::predict::{ModelType, Prediction};
use pitwall_dataflows::race::{RaceItem, RaceUpdate};
use pitwall_dataflows::record::DriverId;
use pitwall_dataflows::Output;
use serde_json::Value;
use std::process::Command;
use std::sync::Arc;
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::InputHandle;

fn brokers() -> String {
    std::env::var("PITWALL_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn driver(code: &str) -> DriverId {
    DriverId::new(code).unwrap()
}

fn health(code: &str, lap: u16) -> RaceItem {
    RaceItem::Health(CarHealth {
        driver: driver(code),
        lap,
        start_ms: 1_685_883_000_000 + i64::from(lap) * 75_000,
        end_ms: 1_685_883_150_000 + i64::from(lap) * 75_000,
        top_speed_delta_kmh: -14,
        gear_lost: None,
        rpm_delta: -600,
    })
}

fn prediction(code: &str, lap: u16, ppm: u32) -> RaceItem {
    RaceItem::Prediction(Prediction {
        driver: driver(code),
        lap,
        model: ModelType::PitStopProbability,
        ts_ms: 1_685_883_000_000 + i64::from(lap) * 75_000,
        probability_ppm: ppm,
        confidence_ppm: 800_000,
        base_ppm: 50_000,
    })
}

fn update(item: RaceItem, diff: i64) -> Output {
    Output::Race(RaceUpdate { item, diff })
}

/// The topics of this test, made by `pitwall topics create` with a configuration of its own.
fn kafka_config(dir: &std::path::Path) -> KafkaConfig {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("t{}-changelog", nanos % 1_000_000_000);
    let mut cfg = KafkaConfig {
        brokers: brokers(),
        ..KafkaConfig::default()
    };
    for (spec, name) in [
        (&mut cfg.topics.telemetry, "telemetry"),
        (&mut cfg.topics.alerts, "alerts"),
        (&mut cfg.topics.predictions, "predictions"),
        (&mut cfg.topics.laps, "laps"),
        (&mut cfg.topics.windows, "windows"),
        (&mut cfg.topics.dead_letters, "dead"),
    ] {
        spec.name = format!("{prefix}-{name}");
    }
    let toml = dir.join("pitwall.toml");
    std::fs::write(
        &toml,
        format!(
            "[kafka]\nbrokers = \"{}\"\n\n[kafka.topics]\n\
             telemetry = {{ name = \"{}\", partitions = 4 }}\n\
             alerts = {{ name = \"{}\", partitions = 3 }}\n\
             predictions = {{ name = \"{}\", partitions = 3 }}\n\
             laps = {{ name = \"{}\", partitions = 4 }}\n\
             windows = {{ name = \"{}\", partitions = 4 }}\n\
             dead_letters = {{ name = \"{}\", partitions = 1 }}\n",
            cfg.brokers,
            cfg.topics.telemetry.name,
            cfg.topics.alerts.name,
            cfg.topics.predictions.name,
            cfg.topics.laps.name,
            cfg.topics.windows.name,
            cfg.topics.dead_letters.name,
        ),
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["topics", "create"])
        .env("PITWALL_CONFIG", &toml)
        .env("PITWALL_BROKERS", &cfg.brokers)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "topics create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cfg
}

/// Runs the sink on one worker over `epochs` (each epoch's updates, in the order given), each
/// epoch acknowledged by the broker before the next is given.
fn sink(cfg: KafkaConfig, epochs: Vec<Vec<Output>>) {
    timely::execute_directly(move |worker| {
        let mut input: InputHandle<Epoch, _> = InputHandle::new();
        let deliveries = Arc::new(Deliveries::default());
        let probe = worker.dataflow::<Epoch, _, _>(|scope| {
            let stream = scope.input_from(&mut input);
            kafka_sink(stream, &cfg, deliveries.clone())
                .unwrap()
                .probe()
                .0
        });
        for (epoch, updates) in epochs.into_iter().enumerate() {
            for u in updates {
                input.send(u);
            }
            let next = epoch as Epoch + 1;
            input.advance_to(next);
            while probe.less_than(&next) {
                worker.step_or_park(Some(std::time::Duration::from_millis(10)));
            }
        }
        input.close();
        while worker.step_or_park(Some(std::time::Duration::from_millis(10))) {}
        assert!(probe.done());
        assert_eq!(deliveries.in_flight(), 0);
    });
}

fn fold(cfg: &KafkaConfig) -> Value {
    common::fold_changelog(
        &cfg.brokers,
        &cfg.topics.alerts.name,
        &cfg.topics.laps.name,
        &cfg.topics.predictions.name,
    )
}

#[test]
fn a_row_taken_back_without_replacement_is_a_tombstone_and_a_changed_row_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kafka_config(dir.path());
    let item_id = |item: &RaceItem| match item {
        RaceItem::Health(h) => h.alert().alert_id.to_string(),
        _ => unreachable!(),
    };
    let lec = health("LEC", 58);
    let ham = health("HAM", 40);
    sink(
        cfg.clone(),
        vec![
            // Epoch 0: two car-health alerts and three predictions are raised.
            vec![
                update(lec.clone(), 1),
                update(ham.clone(), 1),
                update(prediction("VER", 10, 100_000), 1),
                update(prediction("HAM", 5, 200_000), 1),
                update(prediction("ALO", 7, 300_000), 1),
            ],
            // Epoch 1: LEC's alert is taken back, VER's prediction changes (its new version
            // comes first within the epoch), HAM's prediction is taken back.
            vec![
                update(prediction("VER", 10, 150_000), 1),
                update(lec.clone(), -1),
                update(prediction("VER", 10, 100_000), -1),
                update(prediction("HAM", 5, 200_000), -1),
            ],
            // Epoch 2: ALO's prediction is taken back, and raised again at epoch 3.
            vec![update(prediction("ALO", 7, 300_000), -1)],
            vec![update(prediction("ALO", 7, 310_000), 1)],
            // Epoch 4: RUS's prediction is raised; a version a join takes back within the
            // epoch comes after it (two of its inputs changed at once).
            vec![
                update(prediction("RUS", 11, 400_000), 1),
                update(prediction("RUS", 11, 420_000), 1),
                update(prediction("RUS", 11, 420_000), -1),
            ],
            // Epoch 5: it changes, and again such a version comes after the new one, in a
            // batch of its own before the old one's retraction.
            vec![
                update(prediction("RUS", 11, 450_000), 1),
                update(prediction("RUS", 11, 430_000), 1),
                update(prediction("RUS", 11, 430_000), -1),
                update(prediction("RUS", 11, 400_000), -1),
            ],
        ],
    );
    let fold = fold(&cfg);
    let alerts = fold["alerts"].as_object().unwrap();
    assert_eq!(
        alerts.keys().collect::<Vec<_>>(),
        vec![&item_id(&ham)],
        "LEC's alert is deleted by its tombstone: {fold}"
    );
    assert_eq!(fold["tombstones"], 1, "{fold}");
    let predictions = fold["predictions"].as_object().unwrap();
    let probability = |id: &str| predictions[id]["prediction"]["probability"].as_f64();
    assert_eq!(predictions.len(), 3, "{fold}");
    assert_eq!(probability("pit_stop_probability:VER:10"), Some(0.15));
    assert_eq!(probability("pit_stop_probability:ALO:7"), Some(0.31));
    assert_eq!(
        probability("pit_stop_probability:RUS:11"),
        Some(0.45),
        "the current version, not the last one a batch carried: {fold}"
    );
    assert_eq!(
        fold["withdrawn_predictions"], 2,
        "HAM's, and ALO's before it came back: {fold}"
    );
}
