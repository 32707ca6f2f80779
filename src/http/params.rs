//! Query-string parameters: decoding, times, ranges, point limits, drivers and alert filters,
//! each refusing a bad value with a 4xx that says what was expected.

use super::response::Response;
use super::store::Store;
use crate::format::timefmt::parse_utc_ms;
use pitwall_dataflows::alert::{Alert, AlertType};
use pitwall_dataflows::race::ModelType;
use pitwall_dataflows::DriverId;
use std::collections::HashMap;

/// The most points one series may be asked for.
pub const MAX_POINTS: i64 = 100_000;

pub type Query = HashMap<String, String>;

pub fn parse_query(q: Option<&str>) -> Query {
    q.unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A time as epoch ms or ISO 8601.
pub fn parse_time(s: &str) -> Option<i64> {
    s.trim()
        .parse::<i64>()
        .ok()
        .or_else(|| parse_utc_ms(s.trim().as_bytes()))
}

pub fn time_range(q: &Query) -> Result<(i64, i64), Response> {
    let get = |key: &str, default: i64| match q.get(key) {
        None => Ok(default),
        Some(v) => parse_time(v).ok_or_else(|| {
            Response::error(
                400,
                format!("{key}={v:?} is not epoch ms or an ISO 8601 time"),
            )
        }),
    };
    let (from, to) = (get("from", i64::MIN)?, get("to", i64::MAX)?);
    if from > to {
        return Err(Response::error(
            400,
            format!("from ({from}) is after to ({to})"),
        ));
    }
    Ok((from, to))
}

pub fn max_points(raw: Option<&str>) -> Result<usize, Response> {
    match raw {
        None => Ok(1000),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_POINTS).contains(&n) => Ok(n as usize),
            _ => Err(Response::error(
                400,
                format!("maxDataPoints={v:?} must be a whole number from 1 to {MAX_POINTS}"),
            )),
        },
    }
}

pub fn driver_of(store: &Store, raw: Option<&str>) -> Result<DriverId, Response> {
    let raw = raw.ok_or_else(|| Response::error(400, "driver is required"))?;
    let id = DriverId::new(raw).map_err(|e| Response::error(400, e.to_string()))?;
    if !store.has_driver(id) {
        return Err(Response::error(404, format!("no data for driver {raw:?}")));
    }
    Ok(id)
}

/// `name=a,b,c` as a list; absent, empty or Grafana's "All" means no filter.
pub fn list(q: &Query, name: &str) -> Option<Vec<String>> {
    q.get(name)
        .filter(|v| !v.is_empty() && *v != "All" && *v != "$__all")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

/// `driver=VER,HAM` as driver ids (a malformed id is a 400; an id with no data simply
/// matches nothing); absent or "All" means every driver.
pub fn drivers_filter(q: &Query) -> Result<Option<Vec<DriverId>>, Response> {
    list(q, "driver")
        .map(|ds| {
            ds.iter()
                .map(|d| DriverId::new(d).map_err(|e| Response::error(400, e.to_string())))
                .collect()
        })
        .transpose()
}

/// `model_type=pit_stop_probability,crash_risk` as model types; absent or "All" means all.
pub fn model_types(q: &Query) -> Result<Option<Vec<ModelType>>, Response> {
    list(q, "model_type")
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    ModelType::parse(m).ok_or_else(|| {
                        Response::error(
                            400,
                            format!(
                                "model_type={m:?} must be one of {}",
                                ModelType::ALL.map(|m| m.as_str()).join(", ")
                            ),
                        )
                    })
                })
                .collect()
        })
        .transpose()
}

/// A yes/no flag: `true`/`false` (or `1`/`0`); absent or empty is `false`.
pub fn flag(q: &Query, name: &str) -> Result<bool, Response> {
    match q.get(name).map(|v| v.trim()) {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(v) => Err(Response::error(
            400,
            format!("{name}={v:?} must be true or false"),
        )),
    }
}

pub fn alert_filter(q: &Query) -> Result<impl Fn(&Alert) -> bool, Response> {
    let severities = list(q, "severity");
    for s in severities.iter().flatten() {
        if !["high", "medium", "low"].contains(&s.as_str()) {
            return Err(Response::error(
                400,
                format!("severity={s:?} must be high, medium or low"),
            ));
        }
    }
    let drivers = drivers_filter(q)?;
    let types = list(q, "type");
    for t in types.iter().flatten() {
        if !AlertType::ALL.iter().any(|k| k.as_str() == t) {
            return Err(Response::error(
                400,
                format!("type={t:?} is not an alert type"),
            ));
        }
    }
    Ok(move |a: &Alert| {
        severities
            .as_ref()
            .is_none_or(|s| s.iter().any(|s| s == a.severity.as_str()))
            && drivers.as_ref().is_none_or(|d| d.contains(&a.driver))
            && types
                .as_ref()
                .is_none_or(|t| t.iter().any(|t| t == a.alert_type.as_str()))
    })
}
