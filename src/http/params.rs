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

/// `a=1&b=x+y%2C` as pairs, decoded as HTML forms are (`+` a space, `%` and two hex digits
/// a byte, anything else as it stands; bytes that are not UTF-8 become U+FFFD).
pub fn parse_query(q: Option<&str>) -> Query {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_takes_only_two_hex_digits() {
        let q = parse_query(Some(
            "a=%+5&b=%-1&c=%2B&d=%e2%82%ac&e=%zz&f=%4&g=V%45R+x&%6Bey=1&h=%",
        ));
        // `%+5` was decoded as byte 0x05: from_str_radix takes a sign.
        assert_eq!(q["a"], "% 5");
        assert_eq!(q["b"], "%-1");
        assert_eq!(q["c"], "+");
        assert_eq!(q["d"], "\u{20ac}");
        assert_eq!(q["e"], "%zz");
        assert_eq!(q["f"], "%4");
        assert_eq!(q["g"], "VER x");
        assert_eq!(q["key"], "1");
        assert_eq!(q["h"], "%");
        assert_eq!(q.len(), 9);
    }

    #[test]
    fn query_strings_are_decoded() {
        let q = parse_query(Some("driver=V%45R&metric=speed+x&empty="));
        assert_eq!(q["driver"], "VER");
        assert_eq!(q["metric"], "speed x");
        assert_eq!(q["empty"], "");
        assert_eq!(parse_query(Some("a=%zz"))["a"], "%zz");
    }
}
