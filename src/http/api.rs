//! The HTTP API as plain functions from a request to a response, tested without a socket.
//!
//! Two dialects over one store: JSON for Grafana's Infinity datasource (`/api/...`, times in
//! epoch ms) and the SimpleJSON protocol the seeds' Flask bridge spoke (`/search`, `/query`,
//! `/annotations`, also used by the simPod JSON datasource).

use super::store::{window_value, Point, Store, METRICS, WINDOW_METRICS};
use crate::format::timefmt::parse_utc_ms;
use pitwall_dataflows::alert::{Alert, AlertType};
use pitwall_dataflows::DriverId;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Bodies larger than this are refused.
pub const MAX_BODY: usize = 1 << 20;
/// The most points one series may be asked for.
pub const MAX_POINTS: i64 = 100_000;

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    fn json(status: u16, value: &Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    fn ok(value: Value) -> Response {
        Response::json(200, &value)
    }

    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &json!({ "error": message.into() }))
    }
}

type Query = HashMap<String, String>;

fn parse_query(q: Option<&str>) -> Query {
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
fn parse_time(s: &str) -> Option<i64> {
    s.trim()
        .parse::<i64>()
        .ok()
        .or_else(|| parse_utc_ms(s.trim().as_bytes()))
}

fn time_range(q: &Query) -> Result<(i64, i64), Response> {
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

fn max_points(raw: Option<&str>) -> Result<usize, Response> {
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

fn driver_of(store: &Store, raw: Option<&str>) -> Result<DriverId, Response> {
    let raw = raw.ok_or_else(|| Response::error(400, "driver is required"))?;
    let id = DriverId::new(raw).map_err(|e| Response::error(400, e.to_string()))?;
    if !store.has_driver(id) {
        return Err(Response::error(404, format!("no data for driver {raw:?}")));
    }
    Ok(id)
}

/// Series of one metric of one driver, downsampled to at most `max` points.
fn series(
    store: &Store,
    driver: DriverId,
    metric: &str,
    from: i64,
    to: i64,
    max: usize,
) -> Result<Vec<(i64, f32)>, Response> {
    let points: Vec<(i64, f32)> = if METRICS.contains(&metric) {
        store
            .points(driver, from, to)
            .iter()
            .filter_map(|p: &Point| p.value(metric).map(|v| (p.ts_ms, v)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    } else if WINDOW_METRICS.contains(&metric) {
        store
            .windows(driver, from, to)
            .iter()
            .filter_map(|w| window_value(w, metric).map(|v| (w.end_ms, v)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    } else {
        return Err(Response::error(
            404,
            format!(
                "unknown metric {metric:?}; known: {}",
                METRICS
                    .iter()
                    .chain(&WINDOW_METRICS)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    Ok(downsample(&points, max))
}

/// Keeps at most `max` points by taking the minimum and the maximum of equal-width buckets,
/// in time order, so that peaks survive (never by truncation).
pub fn downsample(points: &[(i64, f32)], max: usize) -> Vec<(i64, f32)> {
    if points.len() <= max {
        return points.to_vec();
    }
    if max < 2 {
        return points
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .into_iter()
            .collect();
    }
    let buckets = max / 2;
    let mut out = Vec::with_capacity(max);
    for b in 0..buckets {
        let lo = b * points.len() / buckets;
        let hi = (b + 1) * points.len() / buckets;
        let chunk = &points[lo..hi];
        let (Some(min), Some(maxp)) = (
            chunk.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            chunk.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        ) else {
            continue;
        };
        if min.0 <= maxp.0 {
            out.push(*min);
            if maxp != min {
                out.push(*maxp);
            }
        } else {
            out.push(*maxp);
            out.push(*min);
        }
    }
    out
}

/// `name=a,b,c` as a list; absent, empty or Grafana's "All" means no filter.
fn list(q: &Query, name: &str) -> Option<Vec<String>> {
    q.get(name)
        .filter(|v| !v.is_empty() && *v != "All" && *v != "$__all")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

fn alert_filter(q: &Query) -> Result<impl Fn(&Alert) -> bool, Response> {
    let severities = list(q, "severity");
    for s in severities.iter().flatten() {
        if !["high", "medium", "low"].contains(&s.as_str()) {
            return Err(Response::error(
                400,
                format!("severity={s:?} must be high, medium or low"),
            ));
        }
    }
    let drivers = match list(q, "driver") {
        Some(ds) => Some(
            ds.iter()
                .map(|d| DriverId::new(d).map_err(|e| Response::error(400, e.to_string())))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
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

/// SimpleJSON request bodies.
#[derive(Deserialize)]
struct QueryBody {
    range: Option<RangeBody>,
    #[serde(default)]
    targets: Vec<TargetBody>,
    #[serde(rename = "maxDataPoints")]
    max_data_points: Option<i64>,
}

#[derive(Deserialize)]
struct RangeBody {
    from: String,
    to: String,
}

#[derive(Deserialize)]
struct TargetBody {
    target: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

fn body_range(range: &Option<RangeBody>) -> Result<(i64, i64), Response> {
    match range {
        None => Ok((i64::MIN, i64::MAX)),
        Some(r) => {
            let from = parse_time(&r.from).ok_or_else(|| {
                Response::error(400, format!("range.from {:?} is not a time", r.from))
            })?;
            let to = parse_time(&r.to).ok_or_else(|| {
                Response::error(400, format!("range.to {:?} is not a time", r.to))
            })?;
            if from > to {
                return Err(Response::error(400, "range.from is after range.to"));
            }
            Ok((from, to))
        }
    }
}

fn alerts_table(alerts: &[Alert]) -> Value {
    let rows: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!([
                a.start_ms,
                a.end_ms,
                a.driver.as_str(),
                a.alert_type.as_str(),
                a.severity.as_str(),
                a.lap,
                a.peak,
                a.threshold,
                a.description(),
                a.alert_id.to_string()
            ])
        })
        .collect();
    json!({
        "type": "table",
        "columns": [
            {"text": "time", "type": "time"}, {"text": "end", "type": "time"}, {"text": "driver", "type": "string"},
            {"text": "alert_type", "type": "string"}, {"text": "severity", "type": "string"}, {"text": "lap", "type": "number"},
            {"text": "peak", "type": "number"}, {"text": "threshold", "type": "number"}, {"text": "description", "type": "string"},
            {"text": "alert_id", "type": "string"}
        ],
        "rows": rows,
    })
}

fn simple_query(store: &Store, body: &[u8]) -> Result<Value, Response> {
    let q: QueryBody = serde_json::from_slice(body)
        .map_err(|e| Response::error(400, format!("invalid /query body: {e}")))?;
    let (from, to) = body_range(&q.range)?;
    let max = max_points(q.max_data_points.map(|m| m.to_string()).as_deref())?;
    let mut out = Vec::new();
    for t in &q.targets {
        let target = t.target.as_deref().unwrap_or_default();
        if target == "alerts" || t.kind.as_deref() == Some("table") {
            out.push(alerts_table(&store.alerts(from, to, |_| true)));
            continue;
        }
        let (metric, driver) = target.split_once(':').ok_or_else(|| {
            Response::error(
                400,
                format!("target {target:?} must be metric:DRIVER, e.g. speed:VER, or alerts"),
            )
        })?;
        let driver = driver_of(store, Some(driver))?;
        let datapoints: Vec<Value> = series(store, driver, metric, from, to, max)?
            .into_iter()
            .map(|(t, v)| json!([v, t]))
            .collect();
        out.push(json!({ "target": target, "datapoints": datapoints }));
    }
    Ok(Value::Array(out))
}

fn annotations(store: &Store, body: &[u8]) -> Result<Value, Response> {
    #[derive(Deserialize)]
    struct AnnotationBody {
        range: Option<RangeBody>,
    }
    let b: AnnotationBody = serde_json::from_slice(body)
        .map_err(|e| Response::error(400, format!("invalid /annotations body: {e}")))?;
    let (from, to) = body_range(&b.range)?;
    let items: Vec<Value> = store
        .alerts(from, to, |_| true)
        .iter()
        .map(|a| {
            json!({
                "time": a.start_ms, "timeEnd": a.end_ms, "title": format!("{} {}", a.driver, a.alert_type.as_str()),
                "text": a.description(), "tags": [a.severity.as_str(), a.alert_type.as_str(), a.driver.as_str()],
            })
        })
        .collect();
    Ok(Value::Array(items))
}

/// Answers one request. `body` is at most [`MAX_BODY`] bytes (the server refuses larger).
pub fn handle(
    store: &Store,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let endpoint = match path {
        "/" | "/metrics" | "/api/drivers" | "/api/series" | "/api/alerts" | "/api/windows"
        | "/search" | "/query" | "/annotations" | "/drivers" | "/alerts" => path,
        _ => "other",
    };
    store
        .metrics
        .queries
        .get_or_create(&crate::metrics::EndpointLabels {
            endpoint: endpoint.to_string(),
        })
        .inc();
    let allowed: &[&str] = match path {
        "/search" | "/query" | "/annotations" => &["POST"],
        "/" => &["GET", "POST"],
        _ => &["GET"],
    };
    if endpoint != "other" && !allowed.contains(&method) {
        return Response::error(
            405,
            format!(
                "{method} is not allowed on {path}; use {}",
                allowed.join(" or ")
            ),
        );
    }
    let q = parse_query(query);
    let result = match path {
        "/" => Ok(json!({
            "status": "ok",
            "uptime_seconds": store.uptime_seconds(),
            "records": store.metrics.records.get(),
            "drivers": store.drivers().len(),
        })),
        "/metrics" => {
            return Response {
                status: 200,
                content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body: store.render_metrics().into_bytes(),
            }
        }
        "/api/drivers" | "/drivers" => Ok(Value::Array(
            store
                .drivers()
                .into_iter()
                .map(|(d, n, last)| json!({ "driver": d.as_str(), "points": n, "last_ms": last }))
                .collect(),
        )),
        "/api/series" => (|| {
            let driver = driver_of(store, q.get("driver").map(String::as_str))?;
            let metric = q
                .get("metric")
                .ok_or_else(|| Response::error(400, "metric is required"))?;
            let (from, to) = time_range(&q)?;
            let max = max_points(q.get("maxDataPoints").map(String::as_str))?;
            let points = series(store, driver, metric, from, to, max)?;
            Ok(Value::Array(
                points
                    .into_iter()
                    .map(|(t, v)| json!({ "time": t, "value": v }))
                    .collect(),
            ))
        })(),
        "/api/alerts" | "/alerts" => (|| {
            let (from, to) = time_range(&q)?;
            let filter = alert_filter(&q)?;
            Ok(Value::Array(
                store
                    .alerts(from, to, filter)
                    .iter()
                    .map(Store::alert_message)
                    .collect(),
            ))
        })(),
        "/api/windows" => (|| {
            let driver = driver_of(store, q.get("driver").map(String::as_str))?;
            let (from, to) = time_range(&q)?;
            let windows = store.windows(driver, from, to);
            let max = max_points(q.get("max").map(String::as_str))?;
            let skip = windows.len().saturating_sub(max);
            Ok(serde_json::to_value(&windows[skip..]).unwrap_or_default())
        })(),
        "/search" => Ok(Value::Array(
            store
                .drivers()
                .into_iter()
                .flat_map(|(d, _, _)| {
                    METRICS
                        .iter()
                        .chain(&WINDOW_METRICS)
                        .map(move |m| Value::String(format!("{m}:{d}")))
                })
                .chain(std::iter::once(Value::String("alerts".into())))
                .collect(),
        )),
        "/query" => simple_query(store, body),
        "/annotations" => annotations(store, body),
        _ => Err(Response::error(404, format!("no endpoint {path}"))),
    };
    match result {
        Ok(v) => Response::ok(v),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::store::StoreHook;
    use pitwall_dataflows::analysis::DriverAnalysis;
    use pitwall_dataflows::dataflow::AnalysisHook;
    use pitwall_dataflows::{DetectorConfig, Telemetry};
    use std::sync::Arc;

    #[test]
    fn downsampling_keeps_each_buckets_extremes_in_time_order() {
        let points: Vec<(i64, f32)> = (0..1000).map(|i| (i, ((i * 37) % 101) as f32)).collect();
        let out = downsample(&points, 10);
        assert!(out.len() <= 10);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        for b in 0..5 {
            let chunk = &points[b * 200..(b + 1) * 200];
            let max = chunk.iter().map(|p| p.1).fold(f32::MIN, f32::max);
            let min = chunk.iter().map(|p| p.1).fold(f32::MAX, f32::min);
            assert!(out
                .iter()
                .any(|p| p.1 == max && (b as i64 * 200..(b as i64 + 1) * 200).contains(&p.0)));
            assert!(out
                .iter()
                .any(|p| p.1 == min && (b as i64 * 200..(b as i64 + 1) * 200).contains(&p.0)));
        }
        assert_eq!(
            downsample(&points[..5], 10),
            points[..5].to_vec(),
            "fewer points than asked: all"
        );
    }

    /// A store fed as the dataflow feeds it: 40 samples of HAM with a lugging episode.
    fn store() -> Store {
        let store = Arc::new(Store::new(100, 100, 100, 1000));
        let mut hook = StoreHook::new(store.clone(), crate::ingest::EpochClock::default());
        let driver = DriverId::new("HAM").unwrap();
        let mut a = DriverAnalysis::new(driver, &DetectorConfig::default());
        for i in 0..40i64 {
            let lug = (10..15).contains(&i);
            let s = Telemetry {
                driver,
                ts_ms: 1_000_000 + i * 250,
                speed: 100.0 + i as f32,
                rpm: if lug { 7000.0 } else { 10000.0 },
                throttle: 50.0,
                brake_temp: None,
                position: None,
                lap: Some(2),
                gear: 5,
                drs: 0,
                brake: false,
            };
            let d = a.observe(&s, |o| hook.output(&o, 0));
            hook.sample(&s, &d);
        }
        a.finish(|o| hook.output(&o, 0));
        hook.flush();
        drop(hook);
        Arc::try_unwrap(store).ok().unwrap()
    }

    fn json(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn series_alerts_and_simple_json_without_a_socket() {
        let s = store();
        let r = handle(
            &s,
            "GET",
            "/api/series",
            Some("driver=HAM&metric=speed&from=1000000&to=1000999"),
            b"",
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            json(&r),
            serde_json::json!([
                {"time": 1000000, "value": 100.0}, {"time": 1000250, "value": 101.0},
                {"time": 1000500, "value": 102.0}, {"time": 1000750, "value": 103.0}
            ])
        );
        let r = handle(
            &s,
            "GET",
            "/api/alerts",
            Some("driver=HAM&type=lugging"),
            b"",
        );
        let alerts = json(&r);
        assert_eq!(alerts.as_array().unwrap().len(), 1);
        assert_eq!(
            alerts[0]["status"], "cleared",
            "the cleared state replaced the raised one"
        );
        assert_eq!(alerts[0]["start_ms"], 1_002_500);
        let r = handle(
            &s,
            "POST",
            "/query",
            None,
            br#"{"targets": [{"target": "rpm:HAM"}], "maxDataPoints": 4}"#,
        );
        let q = json(&r);
        assert_eq!(q[0]["target"], "rpm:HAM");
        let values: Vec<f64> = q[0]["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_f64().unwrap())
            .collect();
        assert!(
            values.len() <= 4 && values.contains(&7000.0) && values.contains(&10000.0),
            "{values:?}"
        );
        let r = handle(
            &s,
            "POST",
            "/annotations",
            None,
            br#"{"range": {"from": "1970-01-01T00:00:00Z", "to": "1970-01-02T00:00:00Z"}}"#,
        );
        assert_eq!(
            json(&r)[0]["tags"],
            serde_json::json!(["low", "lugging", "HAM"])
        );
        assert_eq!(handle(&s, "DELETE", "/api/series", None, b"").status, 405);
        assert_eq!(
            handle(
                &s,
                "GET",
                "/api/series",
                Some("driver=HAM&metric=speed&maxDataPoints=0"),
                b""
            )
            .status,
            400
        );
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
