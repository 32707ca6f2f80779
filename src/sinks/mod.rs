//! Sinks of a run's outputs, side by side: the `--out` files ([`files`]) and the operator that
//! brings worker 0 what its collector counts and writes ([`collect`]). The Kafka sink is in
//! `kafka/sink.rs`, the query store in `http/store.rs`.

pub mod collect;
pub mod files;
