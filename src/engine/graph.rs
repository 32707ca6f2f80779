//! One worker's dataflow, built in the order the data goes: ingest -> analysis (per driver)
//! -> race views -> {query store, Kafka, files}.

use super::plan::Plan;
use crate::error::Error;
use crate::http::store::{race_into_store, StoreHook};
use crate::ingest::{ingest, RecordSource};
use crate::kafka::sink::kafka_sink;
use crate::kafka::source::{kafka_ingest, Epochs, KafkaReader, StopWhen};
use crate::kafka::transaction::transactional_sink;
use crate::sinks::collect::{collect, Collector};
use pitwall_dataflows::dataflow::{analyze_placed, Epoch};
use pitwall_dataflows::placement::Placement;
use pitwall_dataflows::race::views::race_views;
use pitwall_dataflows::Ingest;
use std::cell::RefCell;
use std::rc::Rc;
use timely::dataflow::operators::generic::operator::empty;
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
    let mut detectors = plan.detectors.clone();
    detectors.finish_replayed = ends
        .reader
        .as_ref()
        .is_some_and(|r| r.borrow().replaced_run_open);
    let (records, offsets) = records(scope, plan, ends.reader, ends.source, durable);
    let hook = plan
        .store
        .as_ref()
        .map(|store| StoreHook::new(store.clone(), plan.epochs.clone()));
    let analysis = analyze_placed(records, &detectors, hook, &ends.placement);
    let race = race_views(analysis.facts, &plan.detectors.race, &plan.models);
    if let Some(store) = &plan.store {
        race_into_store(race.clone(), store.clone());
    }
    let outputs = analysis.outputs.concat(race);
    if let Some(k) = &plan.kafka {
        let acknowledged = if plan.transactional() {
            // Every output and offset to process 0, whose transactions commit them together.
            let index = scope.index();
            let to_process_0 = (index % plan.workers_per_process) as u64;
            let offsets = offsets.unwrap_or_else(|| empty(scope));
            transactional_sink(
                outputs.clone(),
                offsets,
                to_process_0,
                &k.cfg,
                plan.deliveries.clone(),
                plan.transactions.clone().map(|t| (t, index)),
            )?
        } else {
            kafka_sink(outputs.clone(), &k.cfg, plan.deliveries.clone())?
        };
        acknowledged.probe_with(durable);
    }
    collect(
        outputs,
        ends.collector,
        plan.out.is_some(),
        plan.epochs.clone(),
    );
    Ok(())
}

/// Next offsets of the worker's partitions, at the epochs their records were handed at.
type Offsets<'scope> = Stream<'scope, Epoch, Vec<(i32, i64)>>;

/// The records of this worker: from the Kafka topic (with their offsets), else from its file
/// or simulator source.
fn records<'scope>(
    scope: Scope<'scope, Epoch>,
    plan: &Plan,
    reader: Option<Rc<RefCell<KafkaReader>>>,
    source: Option<Box<dyn RecordSource>>,
    durable: &ProbeHandle<Epoch>,
) -> (Stream<'scope, Epoch, Vec<Ingest>>, Option<Offsets<'scope>>) {
    match (reader, &plan.kafka) {
        (Some(reader), Some(k)) => {
            let streams = kafka_ingest(
                scope,
                reader,
                durable.clone(),
                StopWhen {
                    idle: k.until_idle,
                    signal: plan.stop.clone(),
                },
                k.cfg.consumer.poll_batch,
                Epochs {
                    epoch_ms: plan.pace.epoch_ms,
                    view_step: plan.detectors.race.view_step_epochs,
                    clock: plan.epochs.clone(),
                },
            );
            (streams.records, Some(streams.offsets))
        }
        _ => (
            ingest(
                scope,
                source,
                plan.pace,
                plan.epochs.clone(),
                plan.stop.clone(),
            ),
            None,
        ),
    }
}
