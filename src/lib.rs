//! The pieces of the `pitwall` binary: configuration, sources, Kafka, the HTTP query API, the
//! engine that wires them to the dataflows of `pitwall-dataflows`, and the benchmarks.

pub mod bench;
pub mod config;
pub mod engine;
pub mod http;
pub mod kafka;
pub mod messages;
pub mod report;
pub mod source;
