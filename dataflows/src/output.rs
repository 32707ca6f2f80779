//! What flows into the analysis (records and dead letters) and what flows out of it.
//!
//! These types cross workers and processes (serde + bincode), so they avoid serde attributes
//! that bincode cannot honour (`flatten`, `skip_serializing_if`).

use crate::alert::Alert;
use crate::record::{DriverId, Telemetry};
use crate::window::WindowStats;
use serde::{Deserialize, Serialize};

/// Input that could not become a record, with where it came from and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// File path or topic.
    pub origin: String,
    /// Kafka partition, for messages.
    pub partition: Option<i32>,
    /// Line number (files, 1-based, header = line 1) or offset (Kafka).
    pub position: u64,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// Short and stable, for counting: "not a number", "missing", "out of range 0..=450".
    pub reason: String,
    /// The offending value or detail, for a person.
    pub detail: String,
    /// The original line or message, lossily as UTF-8.
    pub raw: String,
}

impl DeadLetter {
    /// Key for counting dead letters by reason: `"Speed: not a number"`.
    pub fn reason_key(&self) -> String {
        match &self.field {
            Some(field) => format!("{field}: {}", self.reason),
            None => self.reason.clone(),
        }
    }
}

impl std::fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.partition {
            Some(p) => write!(f, "{} partition {p} offset {}", self.origin, self.position)?,
            None => write!(f, "{} line {}", self.origin, self.position)?,
        }
        write!(f, ": {}", self.reason_key())?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// What a source hands the dataflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Ingest {
    Record(Telemetry),
    Dead(Box<DeadLetter>),
}

impl Ingest {
    /// Exchange key: a driver's records all go to one worker; dead letters to worker 0.
    pub fn route(&self) -> u64 {
        match self {
            Ingest::Record(r) => r.driver.route(),
            Ingest::Dead(_) => 0,
        }
    }
}

/// Records processed by one worker for one driver, reported when its input ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriverTotals {
    pub driver: DriverId,
    pub records: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// What the analysis emits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Output {
    Alert(Alert),
    Window(WindowStats),
    DeadLetter(Box<DeadLetter>),
    /// Records analysed in one batch, and the latest event time among them.
    Progress {
        records: u64,
        max_event_ms: i64,
    },
    DriverTotals(DriverTotals),
}
