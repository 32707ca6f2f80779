//! Weak-scaling benchmarks: every worker analyses its own copy of a race (a file's, the
//! simulator's).

use crate::ingest::RecordSource;
use pitwall_dataflows::{DriverId, Ingest};

/// Worker `worker`'s copy of `driver`: `CODE#worker` (the code itself when that is too long).
pub fn cloned(driver: DriverId, worker: usize) -> DriverId {
    DriverId::new(&format!("{driver}#{worker}")).unwrap_or(driver)
}

/// Every worker's own copy of a race (a file's, the simulator's), drivers renamed
/// `CODE#worker`.
pub struct CloneDrivers<S> {
    inner: S,
    worker: usize,
    names: pitwall_dataflows::record::DriverMap<DriverId>,
}

impl<S> CloneDrivers<S> {
    pub fn new(inner: S, worker: usize) -> Self {
        CloneDrivers {
            inner,
            worker,
            names: Default::default(),
        }
    }
}

impl<S: RecordSource> RecordSource for CloneDrivers<S> {
    fn fill(&mut self, out: &mut Vec<Ingest>, max: usize) -> bool {
        let start = out.len();
        let more = self.inner.fill(out, max);
        for item in &mut out[start..] {
            if let Ingest::Record(s) = item {
                let worker = self.worker;
                s.driver = *self
                    .names
                    .entry(s.driver)
                    .or_insert_with(|| cloned(s.driver, worker));
            }
        }
        more
    }
}
