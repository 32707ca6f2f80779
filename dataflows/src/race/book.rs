//! The race views' current state, as a sink sees it: updates applied in any order.
//!
//! Each item is counted: an insertion adds one, a retraction takes one away, and only items
//! with a positive count are current. Differential sends a change as a retraction and an
//! insertion at the same time, in either order; counting makes the order irrelevant.

use super::{CarHealth, LapRow, PitRow, Prediction, RaceItem, RaceUpdate};
use crate::record::DriverId;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct RaceBook {
    items: BTreeMap<RaceItem, i64>,
    /// Each driver's last retirement retracted, which stands as taken back while the driver
    /// has no retirement (a car that drove off again).
    withdrawn: BTreeMap<DriverId, super::retirement::CarStop>,
}

impl RaceBook {
    pub fn apply(&mut self, u: &RaceUpdate) {
        let count = self.items.entry(u.item.clone()).or_default();
        *count += u.diff;
        if *count == 0 {
            self.items.remove(&u.item);
        }
        if let (RaceItem::Retirement(stop), true) = (&u.item, u.diff < 0) {
            self.withdrawn.insert(stop.driver, stop.clone());
        }
    }

    /// The retirements raised and then taken back (the car drove off again), one per driver
    /// that has no retirement now.
    pub fn retirements_taken_back(&self) -> impl Iterator<Item = &super::retirement::CarStop> {
        let retired: std::collections::BTreeSet<DriverId> =
            self.retirements().map(|r| r.driver).collect();
        self.withdrawn
            .values()
            .filter(move |s| !retired.contains(&s.driver))
    }

    fn current(&self) -> impl Iterator<Item = &RaceItem> {
        self.items.iter().filter(|(_, &n)| n > 0).map(|(i, _)| i)
    }

    /// Lap rows ordered by driver, then lap.
    pub fn laps(&self) -> impl Iterator<Item = &LapRow> {
        self.current().filter_map(|i| match i {
            RaceItem::Lap(r) => Some(r),
            _ => None,
        })
    }

    pub fn pit_stops(&self) -> impl Iterator<Item = &PitRow> {
        self.current().filter_map(|i| match i {
            RaceItem::Pit(r) => Some(r),
            _ => None,
        })
    }

    pub fn predictions(&self) -> impl Iterator<Item = &Prediction> {
        self.current().filter_map(|i| match i {
            RaceItem::Prediction(r) => Some(r),
            _ => None,
        })
    }

    pub fn car_health(&self) -> impl Iterator<Item = &CarHealth> {
        self.current().filter_map(|i| match i {
            RaceItem::Health(h) => Some(h),
            _ => None,
        })
    }

    pub fn retirements(&self) -> impl Iterator<Item = &super::retirement::CarStop> {
        self.current().filter_map(|i| match i {
            RaceItem::Retirement(r) => Some(r),
            _ => None,
        })
    }

    /// Each driver's latest lap, ordered as the race stands: most laps first, then who
    /// completed that lap first.
    pub fn standings(&self) -> Vec<&LapRow> {
        let mut latest: BTreeMap<DriverId, &LapRow> = BTreeMap::new();
        for row in self.laps() {
            latest.insert(row.lap.done.driver, row);
        }
        let mut rows: Vec<&LapRow> = latest.into_values().collect();
        rows.sort_by_key(|r| (std::cmp::Reverse(r.lap.done.lap), r.lap.done.end_ms));
        rows
    }

    /// Counts of current items: (laps, pit stops, predictions).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for i in self.current() {
            match i {
                RaceItem::Lap(_) => c.0 += 1,
                RaceItem::Pit(_) => c.1 += 1,
                RaceItem::Prediction(_) => c.2 += 1,
                RaceItem::Health(_) | RaceItem::Retirement(_) => {}
            }
        }
        c
    }

    /// Items whose count is not 0 or 1: a view that retracted what it never inserted, or
    /// inserted twice. Empty when the views are consistent.
    pub fn inconsistent(&self) -> usize {
        self.items.values().filter(|&&n| n != 1).count()
    }
}
