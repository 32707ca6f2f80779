//! One worker's dataflow, built in the order the data goes: ingest -> analysis (per driver)
//! -> race views -> {query store, Kafka, files}.

use super::plan::Plan;
use crate::error::Error;
use crate::http::store::{race_into_store, StoreHook};
use crate::ingest::{ingest, RecordSource};
use crate::kafka::sink::kafka_sink;
use crate::kafka::source::{kafka_ingest, KafkaReader, StopWhen};
use crate::sinks::collect::{collect, Collector};
use pitwall_dataflows::dataflow::{analyze_placed, Epoch};
use pitwall_dataflows::placement::Placement;
use pitwall_dataflows::race::views::race_views;
use pitwall_dataflows::Ingest;
use std::cell::RefCell;
use std::rc::Rc;
use timely::dataflow::operators::{Concat, Probe};
use timely::dataflow::{ProbeHandle, Scope, Stream};

/// Where one worker's records come from, and worker 0's collector.
pub(super) struct Ends {
    /// The Kafka consumer (when the topic is the input).
    pub reader: Option<Rc<RefCell<KafkaReader>>>,
    /// The file or simulator source (when one is the input and this worker reads).
    pub source: Option<Box<dyn RecordSource>>,
    /// Which worker analyses which driver.
    pub placement: Placement,
    /// Counts and writes the `--out` files (worker 0 only).
    pub collector: Option<Rc<RefCell<Collector>>>,
}

/// Builds the dataflow; `durable` is probed past an epoch once the Kafka sink has every
/// output of it acknowledged, which is when the Kafka source may commit the epoch's offsets.
pub(super) fn build<'scope>(
    scope: Scope<'scope, Epoch>,
    plan: &Plan,
    ends: Ends,
    durable: &ProbeHandle<Epoch>,
) -> Result<(), Error> {
    let records = records(scope, plan, ends.reader, ends.source, durable);
    let hook = plan
        .store
        .as_ref()
        .map(|store| StoreHook::new(store.clone(), plan.epochs.clone()));
    let analysis = analyze_placed(records, &plan.detectors, hook, &ends.placement);
    let race = race_views(analysis.facts, &plan.detectors.race, &plan.models);
    if let Some(store) = &plan.store {
        race_into_store(race.clone(), store.clone());
    }
    let outputs = analysis.outputs.concat(race);
    if let Some(k) = &plan.kafka {
        kafka_sink(outputs.clone(), &k.cfg, plan.deliveries.clone())?.probe_with(durable);
    }
    collect(
        outputs,
        ends.collector,
        plan.out.is_some(),
        plan.epochs.clone(),
    );
    Ok(())
}

/// The records of this worker: from the Kafka topic, else from its file or simulator source.
fn records<'scope>(
    scope: Scope<'scope, Epoch>,
    plan: &Plan,
    reader: Option<Rc<RefCell<KafkaReader>>>,
    source: Option<Box<dyn RecordSource>>,
    durable: &ProbeHandle<Epoch>,
) -> Stream<'scope, Epoch, Vec<Ingest>> {
    match (reader, &plan.kafka) {
        (Some(reader), Some(k)) => kafka_ingest(
            scope,
            reader,
            durable.clone(),
            StopWhen {
                idle: k.until_idle,
                signal: plan.stop.clone(),
            },
            plan.pace.epoch_ms,
            k.cfg.consumer.poll_batch,
            plan.epochs.clone(),
        ),
        _ => ingest(
            scope,
            source,
            plan.pace,
            plan.epochs.clone(),
            plan.stop.clone(),
        ),
    }
}
