//! Weak-scaling benchmarks: every worker analyses its own copy of a file's race.

use crate::ingest::RecordSource;
use pitwall_dataflows::{DriverId, Ingest};

/// Every worker's own copy of a file's race, drivers renamed `CODE#worker`.
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
                s.driver = *self.names.entry(s.driver).or_insert_with(|| {
                    DriverId::new(&format!("{}#{worker}", s.driver)).unwrap_or(s.driver)
                });
            }
        }
        more
    }
}
