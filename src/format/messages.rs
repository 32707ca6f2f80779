//! The JSON shapes pitwall writes: one place, whatever the sink (files now, Kafka later).

use super::timefmt::{format_utc_ms, parse_utc_ms};
use super::validate::{self, FieldError, Limit};
use pitwall_dataflows::alert::Alert;
use pitwall_dataflows::{DriverId, Telemetry};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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

/// The seeds' telemetry message, as `pitwall produce` writes it.
#[derive(Serialize)]
pub struct TelemetryMessage<'a> {
    pub timestamp: String,
    pub driver_id: &'a str,
    pub speed: f32,
    pub rpm: f32,
    pub gear: u8,
    pub throttle: f32,
    pub brake: bool,
    pub drs: u8,
    /// Seconds since the first record of the replay.
    pub session_time: f64,
    pub lap_number: Option<u16>,
    pub message_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brake_temp: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<f32>,
}

impl<'a> TelemetryMessage<'a> {
    pub fn new(s: &'a Telemetry, session_start_ms: i64) -> Self {
        TelemetryMessage {
            timestamp: format_utc_ms(s.ts_ms),
            driver_id: s.driver.as_str(),
            speed: s.speed,
            rpm: s.rpm,
            gear: s.gear,
            throttle: s.throttle,
            brake: s.brake,
            drs: s.drs,
            session_time: (s.ts_ms - session_start_ms) as f64 / 1000.0,
            lap_number: s.lap,
            message_type: "telemetry",
            brake_temp: s.brake_temp,
            x: s.position.map(|p| p[0]),
            y: s.position.map(|p| p[1]),
        }
    }
}

/// A time as ISO 8601 text or epoch milliseconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimeField<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    EpochMs(f64),
}

/// A flag as a boolean or 0/1.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Number(f64),
}

#[derive(Deserialize)]
struct TelemetryIn<'a> {
    #[serde(borrow)]
    timestamp: TimeField<'a>,
    #[serde(borrow)]
    driver_id: Cow<'a, str>,
    speed: f64,
    rpm: f64,
    gear: f64,
    throttle: f64,
    brake: Flag,
    drs: f64,
    #[serde(default)]
    lap_number: Option<f64>,
    #[serde(default)]
    brake_temp: Option<f64>,
    #[serde(default)]
    x: Option<f64>,
    #[serde(default)]
    y: Option<f64>,
    #[serde(default, borrow)]
    message_type: Option<Cow<'a, str>>,
}

/// 10000-01-01T00:00:00Z in epoch ms.
const MAX_EPOCH_MS: f64 = 253_402_300_800_000.0;

/// Parses one telemetry message; the error names the field and what was wrong.
pub fn parse_telemetry(payload: &[u8]) -> Result<Telemetry, FieldError> {
    let m: TelemetryIn = serde_json::from_slice(payload)
        .map_err(|e| FieldError::new("message", "not telemetry JSON", e))?;
    if let Some(kind) = m.message_type.as_deref() {
        if kind != "telemetry" {
            return Err(FieldError::new("message_type", "not \"telemetry\"", kind));
        }
    }
    let driver = DriverId::new(&m.driver_id).map_err(|_| {
        FieldError::new(
            "driver_id",
            "not a driver code (1-8 letters/digits)",
            &m.driver_id,
        )
    })?;
    let ts_ms = match &m.timestamp {
        TimeField::Text(t) => parse_utc_ms(t.as_bytes())
            .ok_or_else(|| FieldError::new("timestamp", "not an ISO 8601 UTC time", t))?,
        // Up to 9999-12-31T23:59:59.999Z: what the ISO form pitwall writes back can say.
        TimeField::EpochMs(ms) if (0.0..MAX_EPOCH_MS).contains(ms) => *ms as i64,
        TimeField::EpochMs(ms) => {
            return Err(FieldError::new(
                "timestamp",
                "not a time from 1970 to 9999 in epoch ms",
                ms,
            ))
        }
    };
    let brake = match m.brake {
        Flag::Bool(b) => b,
        Flag::Number(n) if n == 0.0 || n == 1.0 => n == 1.0,
        Flag::Number(n) => {
            return Err(FieldError::new(
                "brake",
                "not a boolean (0/1/true/false)",
                n,
            ))
        }
    };
    let optional =
        |v: Option<f64>, limit: &Limit| v.map(|v| limit.check(v).map(|v| v as f32)).transpose();
    Ok(Telemetry {
        driver,
        ts_ms,
        speed: validate::SPEED.check(m.speed)? as f32,
        rpm: validate::RPM.check(m.rpm)? as f32,
        throttle: validate::THROTTLE.check(m.throttle)? as f32,
        brake_temp: optional(m.brake_temp, &validate::BRAKE_TEMP)?,
        position: optional(m.x, &validate::X)?
            .zip(optional(m.y, &validate::Y)?)
            .map(|(x, y)| [x, y]),
        lap: m
            .lap_number
            .map(|l| validate::LAP.check(l).map(|l| l as u16))
            .transpose()?,
        gear: validate::GEAR.check(m.gear)? as u8,
        drs: validate::DRS.check(m.drs)? as u8,
        brake,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Telemetry {
        Telemetry {
            speed: 232.0,
            rpm: 10179.0,
            throttle: 104.0,
            position: Some([1.5, -2.0]),
            lap: Some(12),
            gear: 128,
            drs: 12,
            brake: true,
            ..Telemetry::at(DriverId::new("LEC").unwrap(), 1_685_278_862_424)
        }
    }

    #[test]
    fn telemetry_round_trips_through_the_seeds_format() {
        let s = sample();
        let json = serde_json::to_string(&TelemetryMessage::new(&s, s.ts_ms - 3_602_968)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["timestamp"], "2023-05-28T13:01:02.424Z");
        assert_eq!(v["driver_id"], "LEC");
        assert_eq!(v["session_time"], 3602.968);
        assert_eq!(v["message_type"], "telemetry");
        assert_eq!(parse_telemetry(json.as_bytes()).unwrap(), s);
    }

    #[test]
    fn accepts_epoch_ms_and_numeric_brake() {
        let json = br#"{"timestamp": 1685278862424, "driver_id": "HAM", "speed": 100, "rpm": 9000,
            "gear": 3, "throttle": 50, "brake": 0, "drs": 1}"#;
        let s = parse_telemetry(json).unwrap();
        assert_eq!((s.ts_ms, s.brake, s.lap), (1_685_278_862_424, false, None));
    }

    #[test]
    fn epoch_ms_past_year_9999_is_refused() {
        // Found by the `telemetry_json` fuzz target's round trip: these were taken (1e300 as
        // i64::MAX), and what pitwall wrote of them ("292278994-08-17T...") it could not read.
        let message = |ts: &str| {
            format!(
                r#"{{"timestamp": {ts}, "driver_id": "HAM", "speed": 1, "rpm": 1, "gear": 1,
                "throttle": 1, "brake": 0, "drs": 0}}"#
            )
        };
        for bad in ["1e300", "253402300800000", "-1", "-0.5"] {
            let err = parse_telemetry(message(bad).as_bytes()).unwrap_err();
            assert_eq!(err.field, "timestamp", "{bad}: {err:?}");
        }
        let last = parse_telemetry(message("253402300799999").as_bytes()).unwrap();
        assert_eq!(format_utc_ms(last.ts_ms), "9999-12-31T23:59:59.999Z");
        assert_eq!(parse_telemetry(message("0").as_bytes()).unwrap().ts_ms, 0);
    }

    #[test]
    fn bad_messages_name_the_field() {
        let cases: [(&[u8], &str); 6] = [
            (b"not json", "message"),
            (br#"{"timestamp": "2023-05-28T13:01:02Z", "driver_id": "HAM"}"#, "message"),
            (br#"{"timestamp": "yesterday", "driver_id": "HAM", "speed": 1, "rpm": 1, "gear": 1, "throttle": 1, "brake": 0, "drs": 0}"#, "timestamp"),
            (br#"{"timestamp": "2023-05-28T13:01:02Z", "driver_id": "HAM", "speed": -4, "rpm": 1, "gear": 1, "throttle": 1, "brake": 0, "drs": 0}"#, "Speed"),
            (br#"{"timestamp": "2023-05-28T13:01:02Z", "driver_id": "HAM", "speed": 4, "rpm": 1, "gear": 1.5, "throttle": 1, "brake": 0, "drs": 0}"#, "nGear"),
            (br#"{"timestamp": "2023-05-28T13:01:02Z", "driver_id": "HAM", "speed": 4, "rpm": 1, "gear": 1, "throttle": 1, "brake": 0, "drs": 0, "message_type": "alert"}"#, "message_type"),
        ];
        for (payload, field) in cases {
            let err = parse_telemetry(payload).unwrap_err();
            assert_eq!(
                err.field,
                field,
                "{}: {err:?}",
                String::from_utf8_lossy(payload)
            );
        }
    }
}
