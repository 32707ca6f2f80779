//! The JSON API for Grafana's Infinity datasource (`/api/...`, times in epoch ms), the health
//! answer, and `/metrics`.

use super::params::{alert_filter, driver_of, max_points, time_range, Query};
use super::response::Response;
use super::series::series;
use super::store::Store;
use serde_json::{json, Value};

/// `GET /`: status, uptime, records, drivers.
pub fn health(store: &Store) -> Value {
    json!({
        "status": "ok",
        "uptime_seconds": store.uptime_seconds(),
        "records": store.metrics.records.get(),
        "drivers": store.drivers().len(),
    })
}

/// `GET /metrics`: the Prometheus/OpenMetrics text.
pub fn metrics(store: &Store) -> Response {
    Response {
        status: 200,
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body: store.render_metrics().into_bytes(),
    }
}

/// `GET /api/drivers`: drivers with their point counts.
pub fn drivers(store: &Store) -> Value {
    Value::Array(
        store
            .drivers()
            .into_iter()
            .map(|(d, n, last)| json!({ "driver": d.as_str(), "points": n, "last_ms": last }))
            .collect(),
    )
}

/// `GET /api/series?driver=&metric=&from=&to=&maxDataPoints=`: `[{time, value}]`.
pub fn series_points(store: &Store, q: &Query) -> Result<Value, Response> {
    let driver = driver_of(store, q.get("driver").map(String::as_str))?;
    let metric = q
        .get("metric")
        .ok_or_else(|| Response::error(400, "metric is required"))?;
    let (from, to) = time_range(q)?;
    let max = max_points(q.get("maxDataPoints").map(String::as_str))?;
    let points = series(store, driver, metric, from, to, max)?;
    Ok(Value::Array(
        points
            .into_iter()
            .map(|(t, v)| json!({ "time": t, "value": v }))
            .collect(),
    ))
}

/// `GET /api/alerts?from=&to=&severity=&driver=&type=`: alerts in the seeds' JSON.
pub fn alerts(store: &Store, q: &Query) -> Result<Value, Response> {
    let (from, to) = time_range(q)?;
    let filter = alert_filter(q)?;
    Ok(Value::Array(
        store
            .alerts(from, to, filter)
            .iter()
            .map(Store::alert_message)
            .collect(),
    ))
}

/// `GET /api/windows?driver=&max=`: the latest window aggregates.
pub fn windows(store: &Store, q: &Query) -> Result<Value, Response> {
    let driver = driver_of(store, q.get("driver").map(String::as_str))?;
    let (from, to) = time_range(q)?;
    let windows = store.windows(driver, from, to);
    let max = max_points(q.get("max").map(String::as_str))?;
    let skip = windows.len().saturating_sub(max);
    Ok(serde_json::to_value(&windows[skip..]).unwrap_or_default())
}
