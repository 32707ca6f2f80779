//! A differential view whose groups keep their own state and update it from what changed.
//!
//! Differential's `reduce` hands its logic the whole input of a group each time the group
//! changes, and diffs the whole output against the last: a group that grows with the race (a
//! driver's laps, the field's laps) costs more at every step. A view whose answer can be
//! brought up to date from the changes (a scan over a driver's laps resumed from the first lap
//! that changed, a maximum kept in an ordered map) does it here instead, in time linear in
//! what changed.
//!
//! The output is the same collection a `reduce` with the same logic would give: the changes of
//! one time are applied together once the input frontier has passed that time, and the output
//! changes of that time are consolidated, so an unchanged row is neither retracted nor sent
//! again.

use crate::dataflow::Epoch;
use differential_dataflow::consolidation::consolidate;
use differential_dataflow::{AsCollection, ExchangeData, Hashable, VecCollection};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// One group's state.
pub trait KeyedState: 'static {
    type Value;
    type Output;
    /// Applies the changes of one time (consolidated: each value once, no zero) and pushes the
    /// changes of the group's output that follow.
    fn update(&mut self, changes: &[(Self::Value, isize)], output: &mut Vec<(Self::Output, isize)>);
}

/// The values of a group with their counts, as differential accumulates them: a value is in
/// the group while its count is positive.
#[derive(Clone, Debug)]
pub struct Counts<V> {
    counts: BTreeMap<V, isize>,
}

impl<V> Default for Counts<V> {
    fn default() -> Self {
        Counts {
            counts: BTreeMap::new(),
        }
    }
}

impl<V: Ord + Clone> Counts<V> {
    /// Applies one change; says whether the value's presence (count > 0) changed.
    pub fn apply(&mut self, value: &V, diff: isize) -> bool {
        let before = self.counts.get(value).copied().unwrap_or(0);
        let after = before + diff;
        if after == 0 {
            self.counts.remove(value);
        } else {
            self.counts.insert(value.clone(), after);
        }
        (before > 0) != (after > 0)
    }

    /// The values present, in order.
    pub fn present(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.counts.iter().filter(|(_, &n)| n > 0).map(|(v, _)| v)
    }

    /// The values present from `from` on, in order.
    pub fn present_from<'a>(&'a self, from: &V) -> impl Iterator<Item = &'a V> {
        self.counts
            .range(from.clone()..)
            .filter(|(_, &n)| n > 0)
            .map(|(v, _)| v)
    }

    /// Whether any value has a count other than 0 (a `reduce` calls its logic only then).
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// Changes waiting for the frontier to pass their time, with a capability to send at it.
type Waiting<K, V> = BTreeMap<Epoch, (Capability<Epoch>, Vec<(K, V, isize)>)>;

/// `(key, value)` updates in, each group's output changes out; `new_state` makes the state of
/// a key seen for the first time. Groups are exchanged by key, as a `reduce` would.
pub fn keyed_state<'scope, K, S, F>(
    input: VecCollection<'scope, Epoch, (K, S::Value), isize>,
    name: &str,
    new_state: F,
) -> VecCollection<'scope, Epoch, S::Output, isize>
where
    K: ExchangeData + Hash + Eq,
    S: KeyedState,
    S::Value: ExchangeData,
    S::Output: ExchangeData,
    F: Fn(&K) -> S + 'static,
{
    type Update<K, V> = ((K, V), Epoch, isize);
    input
        .inner
        .unary_frontier(
            Exchange::new(|u: &Update<K, S::Value>| u.0 .0.hashed()),
            name,
            move |_initial, _info| {
                let mut groups: HashMap<K, S> = HashMap::new();
                // Changes waiting for the frontier to pass their time.
                let mut pending: Waiting<K, S::Value> = BTreeMap::new();
                let mut changes: Vec<(S::Value, isize)> = Vec::new();
                let mut produced: Vec<(S::Output, isize)> = Vec::new();
                move |(input, frontier), output| {
                    input.for_each(|cap, data| {
                        for ((key, value), time, diff) in data.drain(..) {
                            pending
                                .entry(time)
                                .or_insert_with(|| (cap.delayed(&time, 0), Vec::new()))
                                .1
                                .push((key, value, diff));
                        }
                    });
                    while let Some(entry) = pending.first_entry() {
                        if frontier.less_equal(entry.key()) {
                            break;
                        }
                        let (time, (cap, mut updates)) = entry.remove_entry();
                        updates.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
                        produced.clear();
                        let mut rest = &updates[..];
                        while let Some(first) = rest.first() {
                            let n = rest.iter().take_while(|u| u.0 == first.0).count();
                            let (group, tail) = rest.split_at(n);
                            rest = tail;
                            changes.clear();
                            changes.extend(group.iter().map(|(_, v, d)| (v.clone(), *d)));
                            consolidate(&mut changes);
                            if changes.is_empty() {
                                continue;
                            }
                            groups
                                .entry(first.0.clone())
                                .or_insert_with(|| new_state(&first.0))
                                .update(&changes, &mut produced);
                        }
                        consolidate(&mut produced);
                        if !produced.is_empty() {
                            let mut session = output.session(&cap);
                            for (o, d) in produced.drain(..) {
                                session.give((o, time, d));
                            }
                        }
                    }
                }
            },
        )
        .container::<Vec<_>>()
        .as_collection()
}

/// Drives one group's state by hand, as the operator does, for the views' tests.
#[cfg(test)]
pub(crate) struct Replay<S: KeyedState> {
    pub state: S,
    output: BTreeMap<S::Output, isize>,
}

#[cfg(test)]
impl<S: KeyedState> Replay<S>
where
    S::Value: Ord + Clone,
    S::Output: Ord + Clone + std::fmt::Debug,
{
    pub fn new(state: S) -> Self {
        Replay {
            state,
            output: BTreeMap::new(),
        }
    }

    /// Applies one time's changes; the group's whole output after them, each row once.
    pub fn step(&mut self, mut changes: Vec<(S::Value, isize)>) -> Vec<S::Output> {
        consolidate(&mut changes);
        let mut produced = Vec::new();
        if !changes.is_empty() {
            self.state.update(&changes, &mut produced);
        }
        consolidate(&mut produced);
        for (o, d) in produced {
            let n = self.output.entry(o.clone()).or_default();
            *n += d;
            if *n == 0 {
                self.output.remove(&o);
            }
        }
        for (o, n) in &self.output {
            assert_eq!(*n, 1, "{o:?} held {n} times");
        }
        self.output.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hold_a_value_while_its_count_is_positive() {
        let mut c = Counts::default();
        assert!(c.apply(&3, 1));
        assert!(!c.apply(&3, 1));
        assert!(!c.apply(&3, -1));
        assert!(c.apply(&3, -1));
        assert!(c.is_empty());
        assert!(!c.apply(&5, -1));
        assert!(!c.is_empty());
        c.apply(&7, 1);
        c.apply(&9, 1);
        assert_eq!(c.present().collect::<Vec<_>>(), [&7, &9]);
        assert_eq!(c.present_from(&8).collect::<Vec<_>>(), [&9]);
    }
}
