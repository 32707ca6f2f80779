//! The race views on Kafka as a changelog: each epoch's differential updates, consolidated once
//! the epoch is complete, become the messages a consumer folds into the current rows.
//!
//! The views send differential updates, and neither their order nor their grouping says what a
//! row's current version is:
//! - a changed row is a retraction of its old version and an insertion of its new one at the
//!   same epoch, in either order;
//! - a join whose two inputs change at one epoch can emit a version that it takes back within
//!   that epoch (an insertion and its retraction), before or after the row's final version,
//!   and in another batch;
//! - a later epoch's updates can arrive before an earlier epoch is complete.
//!
//! Sending each insertion as it arrives therefore leaves a consumer with whichever version came
//! last, not the current one. So every update waits here under its epoch; once the epoch is
//! complete it is released consolidated (each version's differences summed, those that cancel
//! dropped), epochs in order. A row then has at most one version inserted per epoch, sent
//! under its key; one only retracted is taken back (a tombstone, or a withdrawn prediction).

use differential_dataflow::consolidation::consolidate;
use pitwall_dataflows::dataflow::Epoch;
use std::collections::BTreeMap;

/// Updates waiting for their epoch to complete; `T` is a row's version.
pub struct Changelog<T> {
    open: BTreeMap<Epoch, Vec<(T, i64)>>,
}

impl<T> Default for Changelog<T> {
    fn default() -> Self {
        Changelog {
            open: BTreeMap::new(),
        }
    }
}

impl<T: Ord> Changelog<T> {
    /// `version` changed by `diff` at `epoch` (1 inserted, -1 retracted).
    pub fn push(&mut self, epoch: Epoch, version: T, diff: i64) {
        self.open.entry(epoch).or_default().push((version, diff));
    }

    /// Whether no update waits.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The updates of every epoch `complete` says is complete, oldest epoch first, each
    /// epoch's consolidated: sorted by version, one difference per version, none zero.
    pub fn release(&mut self, complete: impl Fn(Epoch) -> bool) -> Vec<(Epoch, Vec<(T, i64)>)> {
        let mut out = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if !complete(*entry.key()) {
                break;
            }
            let epoch = *entry.key();
            let mut updates = entry.remove();
            consolidate(&mut updates);
            if !updates.is_empty() {
                out.push((epoch, updates));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(
        c: &mut Changelog<&'static str>,
        upto: Epoch,
    ) -> Vec<(Epoch, Vec<(&'static str, i64)>)> {
        c.release(|e| e <= upto)
    }

    #[test]
    fn a_version_taken_back_within_its_epoch_is_not_released_whatever_the_order() {
        let mut c = Changelog::default();
        // The row's final version first, then a transient one and its retraction, then the
        // retraction of the version the topic holds.
        c.push(3, "VER:12 v2", 1);
        c.push(3, "VER:12 v1b", 1);
        c.push(3, "VER:12 v1b", -1);
        c.push(3, "VER:12 v1", -1);
        assert_eq!(
            released(&mut c, 3),
            vec![(3, vec![("VER:12 v1", -1), ("VER:12 v2", 1)])]
        );
    }

    #[test]
    fn an_epoch_is_released_once_complete_and_epochs_in_order() {
        let mut c = Changelog::default();
        // A later epoch's updates arrive first.
        c.push(6, "LEC:58 v2", 1);
        c.push(6, "LEC:58 v1", -1);
        c.push(5, "LEC:58 v1", 1);
        assert!(released(&mut c, 4).is_empty(), "epoch 5 may still change");
        assert_eq!(released(&mut c, 5), vec![(5, vec![("LEC:58 v1", 1)])]);
        assert!(!c.is_empty());
        assert_eq!(
            released(&mut c, 9),
            vec![(6, vec![("LEC:58 v1", -1), ("LEC:58 v2", 1)])]
        );
        assert!(released(&mut c, 9).is_empty(), "released once");
        assert!(c.is_empty());
    }

    #[test]
    fn an_epoch_whose_updates_all_cancel_releases_nothing() {
        let mut c = Changelog::default();
        c.push(2, "HAM:20:pit", 1);
        c.push(2, "HAM:20:pit", -1);
        assert!(released(&mut c, 2).is_empty());
        assert!(c.is_empty());
    }
}
