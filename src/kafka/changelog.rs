//! The race views on Kafka as a changelog: which retractions become a message of their own.
//!
//! The views send differential updates. A changed row is a retraction of its old version and an
//! insertion of the new one at the same epoch: the insertion, sent under the row's key,
//! supersedes the old message and the retraction sends nothing. A row taken back with no
//! replacement (a car-health alert withdrawn, a lap or pit row taken back, a retirement
//! retracted when the car drives off) must reach the consumer, as a tombstone on keyed topics
//! (the key, a null value) or a withdrawal on the predictions topic.
//!
//! Whether a retraction was replaced is known only once its epoch is complete (the insertion
//! may come later in the epoch, from another batch), so retractions wait here per epoch and
//! are released when the sink's input frontier has passed their epoch. An insertion of the same
//! row at the same or a later epoch cancels a waiting retraction: the consumer's latest value is
//! the insertion either way, and a withdrawal sent after it would delete the current row.

use pitwall_dataflows::dataflow::Epoch;
use std::collections::{BTreeMap, HashMap};

/// What happened to one row (by its identity) at one open epoch.
struct Change<T> {
    inserted: bool,
    withdrawal: Option<T>,
}

/// Retractions waiting for their epoch to complete; `T` is the message that withdraws the row.
pub struct Changelog<T> {
    open: BTreeMap<Epoch, HashMap<String, Change<T>>>,
}

impl<T> Default for Changelog<T> {
    fn default() -> Self {
        Changelog {
            open: BTreeMap::new(),
        }
    }
}

impl<T> Changelog<T> {
    /// The row `id` was inserted at `epoch` (and its message sent).
    pub fn inserted(&mut self, epoch: Epoch, id: &str) {
        for (_, rows) in self.open.range_mut(..=epoch) {
            if let Some(c) = rows.get_mut(id) {
                c.withdrawal = None;
            }
        }
        let rows = self.open.entry(epoch).or_default();
        match rows.get_mut(id) {
            Some(c) => c.inserted = true,
            None => {
                rows.insert(
                    id.to_string(),
                    Change {
                        inserted: true,
                        withdrawal: None,
                    },
                );
            }
        }
    }

    /// The row `id` was retracted at `epoch`; `withdrawal` is sent unless it is replaced.
    pub fn retracted(&mut self, epoch: Epoch, id: String, withdrawal: T) {
        let replaced = self
            .open
            .range(epoch..)
            .any(|(_, rows)| rows.get(&id).is_some_and(|c| c.inserted));
        if replaced {
            return;
        }
        self.open.entry(epoch).or_default().insert(
            id,
            Change {
                inserted: false,
                withdrawal: Some(withdrawal),
            },
        );
    }

    /// The epochs that have waiting retractions or insertions.
    pub fn epochs(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.open.keys().copied()
    }

    /// The withdrawals of every epoch `complete` says is complete, oldest epoch first.
    pub fn release(&mut self, complete: impl Fn(Epoch) -> bool) -> Vec<(Epoch, T)> {
        let mut out = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if !complete(*entry.key()) {
                break;
            }
            let epoch = *entry.key();
            let mut rows: Vec<(String, Change<T>)> = entry.remove().into_iter().collect();
            // Sorted by identity, so the order on the topics does not depend on hashing.
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            out.extend(
                rows.into_iter()
                    .filter_map(|(_, c)| c.withdrawal.map(|w| (epoch, w))),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(c: &mut Changelog<&'static str>, upto: Epoch) -> Vec<(Epoch, &'static str)> {
        c.release(|e| e <= upto)
    }

    #[test]
    fn a_retraction_replaced_in_its_epoch_sends_nothing() {
        let mut c = Changelog::default();
        c.retracted(3, "VER:12".into(), "tombstone");
        c.inserted(3, "VER:12");
        assert!(released(&mut c, 3).is_empty());
        // The insertion may come first within the epoch.
        c.inserted(4, "VER:13");
        c.retracted(4, "VER:13".into(), "tombstone");
        assert!(released(&mut c, 4).is_empty());
    }

    #[test]
    fn a_retraction_without_replacement_is_released_once_its_epoch_is_complete() {
        let mut c = Changelog::default();
        c.retracted(5, "LEC:58".into(), "tombstone");
        assert!(released(&mut c, 4).is_empty(), "epoch 5 may still change");
        assert_eq!(released(&mut c, 5), vec![(5, "tombstone")]);
        assert!(released(&mut c, 9).is_empty(), "released once");
        assert_eq!(c.epochs().count(), 0);
    }

    #[test]
    fn a_later_insertion_cancels_an_earlier_waiting_retraction() {
        let mut c = Changelog::default();
        c.retracted(5, "HAM:20:pit".into(), "tombstone");
        c.inserted(7, "HAM:20:pit");
        assert!(released(&mut c, 9).is_empty());
        // A retraction arriving after a later epoch's insertion was sent is not withdrawn.
        c.inserted(9, "ALO:1");
        c.retracted(8, "ALO:1".into(), "tombstone");
        assert!(released(&mut c, 9).is_empty());
    }

    #[test]
    fn other_rows_are_independent_and_come_in_epoch_then_key_order() {
        let mut c = Changelog::default();
        c.retracted(6, "b".into(), "b6");
        c.retracted(6, "a".into(), "a6");
        c.retracted(2, "c".into(), "c2");
        c.inserted(6, "d");
        assert_eq!(released(&mut c, 6), vec![(2, "c2"), (6, "a6"), (6, "b6")]);
    }
}
