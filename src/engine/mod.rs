//! `pitwall run`: resolves what the run was asked for into a [`plan::Plan`], starts the query
//! API and the supervision, runs every worker ([`worker`], which builds [`graph`]) to the end
//! of its input, and returns process 0's summary.

mod graph;
mod plan;
mod supervise;
mod worker;

pub use crate::cluster::Cluster;
pub use plan::{KafkaRun, RunOptions};

use crate::cluster::ClusterError;
use crate::config::PitwallConfig;
use crate::error::Error;
use crate::report::Summary;
use crate::sinks::collect::WriteError;
use plan::Plan;
use std::time::Duration;
use supervise::Supervisor;

/// Runs the engine; the summary comes from process 0 (other processes return `None`).
pub fn run(cfg: &PitwallConfig, opts: RunOptions) -> Result<Option<Summary>, Error> {
    let timely_config = opts.cluster.timely_config()?;
    let (http, keep_serving) = (opts.http, opts.keep_serving);
    let plan = Plan::resolve(cfg, opts)?;
    let served = match (http, &plan.store) {
        (Some(addr), Some(store)) => {
            let at = crate::http::serve(addr, store.clone(), &cfg.http)?;
            eprintln!("serving the query API on http://{at}");
            Some(at)
        }
        _ => None,
    };
    if let Some(dir) = &plan.out {
        std::fs::create_dir_all(dir).map_err(|e| WriteError::create_out(Some(dir), e))?;
    }
    let supervisor = Supervisor::start(
        &timely_config,
        Duration::from_millis(cfg.engine.peer_timeout_ms.max(1)),
        Duration::from_millis(cfg.engine.stop_grace_ms),
        &plan,
    )?;
    let workers = {
        let plan = plan.clone();
        timely::execute(timely_config, move |worker| worker::run(worker, &plan))
            .map_err(ClusterError::Start)?
    };
    let results = workers.join();
    supervisor.finish(&plan);
    let mut summary = None;
    for result in results {
        if let Some(s) = result.map_err(Error::Worker)?? {
            summary = Some(s);
        }
    }
    Ok(supervise::serve_on(
        served,
        keep_serving,
        &plan.stop,
        summary,
    ))
}
