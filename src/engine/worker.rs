//! One worker of a run: opens its ends (Kafka consumer or source, worker 0's collector),
//! builds the dataflow, steps it to the end of the input, then commits and (worker 0) writes
//! the summary.

use super::graph::{self, Ends};
use super::plan::Plan;
use crate::error::Error;
use crate::kafka::source::KafkaReader;
use crate::report::Summary;
use crate::sinks::collect::{Collector, WriteError};
use pitwall_dataflows::dataflow::Epoch;
use pitwall_dataflows::placement::Placement;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

/// Runs this worker's share of the run; worker 0 returns the summary.
pub(super) fn run(worker: &mut Worker, plan: &Plan) -> Result<Option<Summary>, Error> {
    let ends = open(worker.index(), worker.peers(), plan)?;
    let (reader, collector) = (ends.reader.clone(), ends.collector.clone());
    let durable: ProbeHandle<Epoch> = ProbeHandle::new();
    worker.dataflow::<Epoch, _, _>(|scope| graph::build(scope, plan, ends, &durable))?;
    while worker.step_or_park(Some(Duration::from_millis(50))) {
        if let Some(c) = &collector {
            c.borrow_mut().tick();
        }
    }
    if let Some(t) = &plan.transactions {
        // The committer thread commits the last transaction once every sink has sent all.
        t.wait_for_last();
    }
    if let Some(r) = &reader {
        // Every output has been acknowledged: the dataflow only ends once the sinks let go.
        let committed = r.borrow_mut().commit_all();
        tracing::info!(worker = worker.index(), ?committed, "committed offsets");
    }
    match collector {
        Some(collector) => finish(collector, worker.peers(), plan).map(Some),
        None => Ok(None),
    }
}

fn open(index: usize, peers: usize, plan: &Plan) -> Result<Ends, Error> {
    if let (Some(t), Some(k)) = (&plan.transactions, &plan.kafka) {
        // First: fences the run this one replaces, whose open transaction (offsets included)
        // is aborted, so the group's committed offsets can be read.
        t.open(&k.cfg, &plan.deliveries)?;
    }
    let reader = match &plan.kafka {
        Some(k) if k.read => {
            let metrics = plan.store.as_ref().map(|s| &s.metrics);
            let mut reader = KafkaReader::open(
                &k.cfg,
                index,
                peers,
                metrics.map(|m| m.consumed_offset.clone()),
                metrics.map(|m| m.consumer_lag.clone()),
                plan.transactional().then(|| plan.commits.clone()),
            )?;
            reader.share_commits(plan.commits.clone());

            Some(Rc::new(RefCell::new(reader)))
        }
        _ => None,
    };
    let source = match &plan.spec {
        Some(spec) => {
            let first = index - index % plan.workers_per_process;
            spec.open_in(
                index,
                peers,
                first..first + plan.workers_per_process,
                plan.filter.clone(),
                plan.stats.clone(),
            )?
        }
        None => None,
    };
    let placement = plan
        .spec
        .as_ref()
        .map_or_else(Placement::hashed, |s| s.placement(peers));
    let collector = if index == 0 {
        let c = Collector::new(plan.out.as_deref(), plan.console, plan.interval)
            .map_err(|e| WriteError::create_out(plan.out.as_deref(), e))?;
        Some(Rc::new(RefCell::new(c)))
    } else {
        None
    };
    Ok(Ends {
        reader,
        source,
        placement,
        collector,
    })
}

/// Worker 0, after the dataflow: hands `pitwall train` the race book and writes the summary.
fn finish(collector: Rc<RefCell<Collector>>, peers: usize, plan: &Plan) -> Result<Summary, Error> {
    let collector = Rc::try_unwrap(collector)
        .map_err(|_| {
            Error::Worker("the collector is still shared after the dataflow ended".into())
        })?
        .into_inner();
    if let Some(slot) = &plan.race_book {
        if let Ok(mut book) = slot.lock() {
            *book = collector.race().clone();
        }
    }
    Ok(collector.finish(
        plan.summary_path.as_deref(),
        plan.describe.clone(),
        plan.stats.filtered.load(Ordering::Relaxed),
        peers,
        plan.processes,
        plan.wheel_spin_mode(),
    )?)
}
