//! The race views' current state, as a sink sees it: updates applied in any order.
//!
//! Each item is counted: an insertion adds one, a retraction takes one away, and only items
//! with a positive count are current. Differential sends a change as a retraction and an
//! insertion at the same time, in either order; counting makes the order irrelevant.

use super::retirement::CarStop;
use super::{CarHealth, LapRow, PitRow, Prediction, RaceItem, RaceUpdate};
use crate::record::DriverId;
use std::collections::BTreeMap;

/// Items are kept by kind, each in a map of its own: a prediction then takes its own 32
/// bytes and not the size of a lap row (the largest kind, 216), and there are three
/// predictions to every lap row.
#[derive(Clone, Debug, Default)]
pub struct RaceBook {
    laps: Counted<LapRow>,
    pit_stops: Counted<PitRow>,
    predictions: Counted<Prediction>,
    health: Counted<CarHealth>,
    retirements: Counted<CarStop>,
    /// Each driver's last retirement retracted, which stands as taken back while the driver
    /// has no retirement (a car that drove off again).
    withdrawn: BTreeMap<DriverId, CarStop>,
}

/// Items of one kind and their counts (never 0).
type Counted<T> = BTreeMap<T, i64>;

/// Adds `diff` to the item's count; the item is cloned only when it is new.
fn count<T: Ord + Clone>(items: &mut Counted<T>, item: &T, diff: i64) {
    match items.get_mut(item) {
        Some(n) => {
            *n += diff;
            if *n == 0 {
                items.remove(item);
            }
        }
        None if diff != 0 => {
            items.insert(item.clone(), diff);
        }
        None => {}
    }
}

fn odd<T>(items: &Counted<T>) -> usize {
    items.values().filter(|&&n| n != 1).count()
}

fn current<T>(items: &Counted<T>) -> impl Iterator<Item = &T> {
    items.iter().filter(|(_, &n)| n > 0).map(|(i, _)| i)
}

impl RaceBook {
    pub fn apply(&mut self, u: &RaceUpdate) {
        match &u.item {
            RaceItem::Lap(r) => count(&mut self.laps, r, u.diff),
            RaceItem::Pit(r) => count(&mut self.pit_stops, r, u.diff),
            RaceItem::Prediction(r) => count(&mut self.predictions, r, u.diff),
            RaceItem::Health(r) => count(&mut self.health, r, u.diff),
            RaceItem::Retirement(stop) => {
                count(&mut self.retirements, stop, u.diff);
                if u.diff < 0 {
                    self.withdrawn.insert(stop.driver, stop.clone());
                }
            }
        }
    }

    /// The retirements raised and then taken back (the car drove off again), one per driver
    /// that has no retirement now.
    pub fn retirements_taken_back(&self) -> impl Iterator<Item = &CarStop> {
        let retired: std::collections::BTreeSet<DriverId> =
            self.retirements().map(|r| r.driver).collect();
        self.withdrawn
            .values()
            .filter(move |s| !retired.contains(&s.driver))
    }

    /// Lap rows ordered by driver, then lap.
    pub fn laps(&self) -> impl Iterator<Item = &LapRow> {
        current(&self.laps)
    }

    pub fn pit_stops(&self) -> impl Iterator<Item = &PitRow> {
        current(&self.pit_stops)
    }

    pub fn predictions(&self) -> impl Iterator<Item = &Prediction> {
        current(&self.predictions)
    }

    pub fn car_health(&self) -> impl Iterator<Item = &CarHealth> {
        current(&self.health)
    }

    pub fn retirements(&self) -> impl Iterator<Item = &CarStop> {
        current(&self.retirements)
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
        (
            self.laps().count(),
            self.pit_stops().count(),
            self.predictions().count(),
        )
    }

    /// Items whose count is not 0 or 1: a view that retracted what it never inserted, or
    /// inserted twice. Empty when the views are consistent.
    pub fn inconsistent(&self) -> usize {
        odd(&self.laps)
            + odd(&self.pit_stops)
            + odd(&self.predictions)
            + odd(&self.health)
            + odd(&self.retirements)
    }
}
