//! Which worker analyses which driver.
//!
//! By default a driver goes to the worker its id hashes to: the same in every process with no
//! coordination, but uneven (20 drivers on 2 workers split 12/8 as easily as 10/10). A source
//! that sees every driver before any of its records are sent (the merged-file reader, which
//! every process runs over the same file in the same order) can instead write an explicit,
//! balanced table here; the exchange in front of the analysis then sends each driver's records
//! where the table says, which is where that reader already handed them, so they stay local.

use crate::output::Ingest;
use crate::record::{DriverId, DriverMap};
use std::sync::{Arc, RwLock};

/// Drivers placed on workers; drivers not in the table (or no table) go by hash.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    table: Option<Arc<RwLock<DriverMap<u32>>>>,
}

impl Placement {
    /// Every driver by the hash of its id.
    pub fn hashed() -> Placement {
        Placement { table: None }
    }

    /// An empty table that a source fills with [`Placement::place`].
    pub fn table() -> Placement {
        Placement {
            table: Some(Arc::default()),
        }
    }

    /// Puts `driver` on `worker`. The caller must do this before any record of the driver
    /// enters the dataflow, and place a driver once (a moved driver would split its state).
    pub fn place(&self, driver: DriverId, worker: usize) {
        if let Some(table) = &self.table {
            if let Ok(mut t) = table.write() {
                t.entry(driver).or_insert(worker as u32);
            }
        }
    }

    /// The worker `driver` was placed on, if it was.
    pub fn worker_of(&self, driver: DriverId) -> Option<usize> {
        let table = self.table.as_ref()?;
        table.read().ok()?.get(&driver).map(|&w| w as usize)
    }

    /// The exchange function for records: a placed driver's worker index (timely takes a
    /// value below the number of workers as that worker), else the hash of its id; dead
    /// letters to worker 0. It keeps its own copy of what it has looked up, so the shared
    /// table is read once per driver, not per record.
    pub fn router(&self) -> impl FnMut(&Ingest) -> u64 + 'static {
        let shared = self.clone();
        let mut seen: DriverMap<u64> = DriverMap::default();
        move |item: &Ingest| match item {
            Ingest::Record(s) | Ingest::Replay(s) => {
                if let Some(&route) = seen.get(&s.driver) {
                    return route;
                }
                match shared.worker_of(s.driver) {
                    Some(worker) => {
                        seen.insert(s.driver, worker as u64);
                        worker as u64
                    }
                    // Not cached: a table may place it later (it never does once records
                    // flow, but a hash is cheap).
                    None => s.driver.route(),
                }
            }
            Ingest::Dead(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Telemetry;

    fn record(driver: &str) -> Ingest {
        Ingest::Record(Telemetry::at(DriverId::new(driver).unwrap(), 0))
    }

    #[test]
    fn placed_drivers_go_to_their_worker_and_others_by_hash() {
        let placement = Placement::table();
        let ver = DriverId::new("VER").unwrap();
        placement.place(ver, 3);
        placement.place(ver, 1); // placed once: the first placement stays
        let mut route = placement.router();
        assert_eq!(route(&record("VER")), 3);
        assert_eq!(route(&record("VER")), 3);
        assert_eq!(route(&record("HAM")), DriverId::new("HAM").unwrap().route());
        let mut hashed = Placement::hashed().router();
        assert_eq!(hashed(&record("VER")), ver.route());
        assert_eq!(placement.worker_of(ver), Some(3));
        assert_eq!(Placement::hashed().worker_of(ver), None);
    }
}
