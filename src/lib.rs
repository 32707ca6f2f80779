//! The pieces of the `pitwall` binary, in floors that only point down:
//!
//! - bottom: [`ingest`] (the record-source trait, pacing, epochs), [`format`] (JSON shapes,
//!   times, field validation), [`metrics`] (the Prometheus registry), [`config`];
//! - sources and sinks: [`source`] (simulator, FastF1 files), [`kafka`] (topics, source,
//!   sink, producer, tail), [`sinks`] (the `--out` files and worker 0's collector),
//!   [`http`] (the query store and API);
//! - top: [`engine`], which wires them to the dataflows of `pitwall-dataflows`, [`error`]
//!   (every command's one error and its exit code), the end-of-run [`report`], [`models`]
//!   (`train`, `evaluate`, the pit model's file) and [`bench`].
//!
//! See ARCHITECTURE.md for the map.

pub mod bench;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ingest;
pub mod kafka;
pub mod liveness;
pub mod metrics;
pub mod models;
pub mod report;
pub mod sinks;
pub mod source;
pub mod story;
