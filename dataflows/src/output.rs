//! What flows into the analysis (records and dead letters) and what flows out of it.
//!
//! These types cross workers and processes (serde + bincode), so they avoid serde attributes
//! that bincode cannot honour (`flatten`, `skip_serializing_if`).

use crate::alert::Alert;
use crate::race::RaceUpdate;
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
    /// The original line or message bytes (written to JSON as lossy UTF-8 text).
    #[serde(with = "text_or_bytes")]
    pub raw: Vec<u8>,
}

/// Bytes as text in human-readable formats (JSON files), as bytes between workers (bincode).
mod text_or_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&String::from_utf8_lossy(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d).map(String::into_bytes)
        } else {
            serde_bytes_vec(d)
        }
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(Visitor)
    }
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
    /// A record read again after a restart only to rebuild state: its outputs were delivered
    /// before, so they are not emitted again.
    Replay(Telemetry),
    Dead(Box<DeadLetter>),
}

impl Ingest {
    /// Exchange key: a driver's records all go to one worker; dead letters to worker 0.
    pub fn route(&self) -> u64 {
        match self {
            Ingest::Record(r) | Ingest::Replay(r) => r.driver.route(),
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
    /// (Window aggregates counted on the way, when they are not sent on themselves.)
    Progress {
        records: u64,
        max_event_ms: i64,
        windows: u64,
    },
    DriverTotals(DriverTotals),
    /// A change of a race view: lap rows, pit rows, predictions.
    Race(RaceUpdate),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_are_text_in_json_and_bytes_between_workers() {
        let d = DeadLetter {
            origin: "f1-telemetry".into(),
            partition: Some(2),
            position: 41,
            field: None,
            reason: "invalid JSON".into(),
            detail: String::new(),
            raw: b"{\"speed\": oops}".to_vec(),
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["raw"], "{\"speed\": oops}");
        assert_eq!(serde_json::from_value::<DeadLetter>(json).unwrap(), d);
        let bin = bincode_round_trip(&d);
        assert_eq!(bin, d);
    }

    fn bincode_round_trip(d: &DeadLetter) -> DeadLetter {
        // The encoding timely uses between processes.
        bincode::deserialize(&bincode::serialize(d).unwrap()).unwrap()
    }
}
