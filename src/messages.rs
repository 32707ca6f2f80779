//! The JSON shapes pitwall writes: one place, whatever the sink (files now, Kafka later).

use crate::source::timefmt::format_utc_ms;
use pitwall_dataflows::alert::Alert;
use serde::Serialize;

/// The seeds' alert message, plus the episode's fields.
#[derive(Serialize)]
pub struct AlertMessage<'a> {
    pub alert_id: String,
    pub alert_type: &'static str,
    pub severity: &'static str,
    pub driver_id: &'a str,
    pub description: String,
    pub value: f64,
    pub threshold: f64,
    /// Start of the episode, ISO 8601 UTC.
    pub timestamp: String,
    pub message_type: &'static str,
    pub status: pitwall_dataflows::alert::AlertStatus,
    pub lap: Option<u16>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub peak: f64,
    pub samples: u32,
}

impl<'a> AlertMessage<'a> {
    pub fn new(a: &'a Alert) -> Self {
        AlertMessage {
            alert_id: a.alert_id.to_string(),
            alert_type: a.alert_type.as_str(),
            severity: a.severity.as_str(),
            driver_id: a.driver.as_str(),
            description: a.description(),
            value: a.peak,
            threshold: a.threshold,
            timestamp: format_utc_ms(a.start_ms),
            message_type: "alert",
            status: a.status,
            lap: a.lap,
            start_ms: a.start_ms,
            end_ms: a.end_ms,
            peak: a.peak,
            samples: a.samples,
        }
    }
}
