//! The telemetry record model and the timely operators of pitwall.
//!
//! This crate knows nothing of files, Kafka or HTTP: sources hand it [`record::Telemetry`]
//! records, and it hands back [`output::Output`] events (alerts, window aggregates, dead letters,
//! progress). Every detector is a plain struct with an `observe` method so that its logic can be
//! tested without timely; [`dataflow::analyze`] wires them into one graph, exchanged by driver.

pub mod alert;
pub mod analysis;
pub mod brake;
pub mod config;
pub mod dataflow;
pub mod episode;
pub mod gear;
pub mod output;
pub mod placement;
pub mod race;
pub mod record;
pub mod testing;
pub mod wheel_spin;
pub mod window;

pub use config::DetectorConfig;
pub use output::{DeadLetter, Ingest, Output};
pub use record::{DriverId, Telemetry};
