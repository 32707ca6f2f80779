//! What watches a run from outside its workers: the heartbeats between a job's processes, the
//! deadline after a stop signal, and serving the query API on after the input ends.

use super::plan::Plan;
use crate::cluster::ClusterError;
use crate::error::Error;
use crate::liveness::Heartbeat;
use crate::report::Summary;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The heartbeat and the stop deadline of one run, armed before its workers start.
pub(super) struct Supervisor {
    heartbeat: Option<Heartbeat>,
    finished: Arc<AtomicBool>,
}

impl Supervisor {
    pub fn start(
        timely_config: &timely::Config,
        peer_timeout: Duration,
        stop_grace: Duration,
        plan: &Plan,
    ) -> Result<Supervisor, Error> {
        let reads_kafka = plan.reads_kafka();
        let heartbeat = {
            let commits = plan.commits.clone();
            crate::liveness::watch(timely_config, peer_timeout, move || {
                if reads_kafka {
                    commits.describe()
                } else {
                    "The input is a file or the simulator: nothing was committed; a restart reads it from the start.".to_string()
                }
            })
            .map_err(ClusterError::Heartbeat)?
        };
        let finished = Arc::new(AtomicBool::new(false));
        let (commits, deliveries) = (plan.commits.clone(), plan.deliveries.clone());
        let writes_kafka = plan.kafka.is_some();
        stop_deadline(plan.stop.clone(), finished.clone(), stop_grace, move || {
            let sent = if writes_kafka {
                format!(
                    "{} outputs were not acknowledged by the broker. ",
                    deliveries.in_flight()
                )
            } else {
                "Outputs not yet written are lost. ".to_string()
            };
            let input = if reads_kafka {
                format!(
                    "{} Unacknowledged outputs are sent again then.",
                    commits.describe()
                )
            } else {
                "A restart reads the input from the start.".to_string()
            };
            sent + &input
        });
        Ok(Supervisor {
            heartbeat,
            finished,
        })
    }

    /// The workers are done: the deadline is disarmed and the heartbeats stop.
    pub fn finish(self, plan: &Plan) {
        self.finished.store(true, Ordering::SeqCst);
        if let Some(gap) = plan.deliveries.gaps.longest() {
            tracing::info!(
                acknowledged = plan.deliveries.acked.load(Ordering::Relaxed),
                "kafka sink: {gap}"
            );
        }
        if let Some(h) = self.heartbeat {
            h.finish();
        }
    }
}

/// After a finite input, with `keep_serving`, serves the query API on at `at` until a signal
/// (printing the summary first, and returning none, as it has been printed).
pub(super) fn serve_on(
    at: Option<SocketAddr>,
    keep_serving: bool,
    stop: &AtomicBool,
    summary: Option<Summary>,
) -> Option<Summary> {
    let Some(at) = at else {
        return summary;
    };
    if keep_serving && !stop.load(Ordering::Relaxed) {
        if let Some(s) = &summary {
            crate::report::print_summary(s);
        }
        eprintln!(
            "input finished; still serving the query API on http://{at} until Ctrl-C (SIGINT) or SIGTERM"
        );
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return None;
    }
    eprintln!(
        "input finished; the query API was on http://{at} (--keep-serving keeps it up after the input)"
    );
    summary
}

/// Once `stop` is set (SIGINT/SIGTERM), gives the run `grace` to flush and commit; a run still
/// blocked then (its broker unreachable, a peer gone quiet) is ended with exit code 1 and one
/// line saying what `unflushed()` reports. A run that finishes in time sets `finished` first.
fn stop_deadline(
    stop: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    grace: Duration,
    unflushed: impl Fn() -> String + Send + 'static,
) {
    let spawned = std::thread::Builder::new()
        .name("pitwall-stop-deadline".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "error: still not stopped {:.1} s after the signal (a broker or a peer is \
                 unreachable); exiting without flushing. {}",
                grace.as_secs_f64(),
                unflushed()
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!("no stop deadline: {e}");
    }
}
