//! The JSON API for Grafana's Infinity datasource (`/api/...`, times in epoch ms), the health
//! answer, and `/metrics`. The race endpoints (`/api/standings`, `/api/laps`,
//! `/api/pit_stops`, `/api/predictions`) serve the race views as they stand: each copies what
//! it needs out of the store's book and lets go before building its answer.

use super::params::{
    alert_filter, driver_of, drivers_filter, flag, max_points, model_types, time_range, Query,
};
use super::response::Response;
use super::series::series;
use super::store::Store;
use crate::format::race::{LapMessage, PitStopMessage, PredictionMessage};
use pitwall_dataflows::race::{LapRow, PitRow, Prediction, RaceBook};
use pitwall_dataflows::DriverId;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `GET /health` (and `GET /` for clients not asking for HTML): status, uptime, records,
/// drivers, and the race views' current row counts.
pub fn health(store: &Store) -> Value {
    let (laps, pit_stops, predictions) = store.with_race(|b| b.counts()).unwrap_or_default();
    json!({
        "status": "ok",
        "uptime_seconds": store.uptime_seconds(),
        "records": store.metrics.records.get(),
        "drivers": store.drivers().len(),
        "race": {"laps": laps, "pit_stops": pit_stops, "predictions": predictions},
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

/// `GET /api/series?driver=&metric=&from=&to=&maxDataPoints=`: `[{time, value}]`, written
/// straight from the points (no JSON tree in between: this is the endpoint Grafana polls).
pub fn series_points(store: &Store, q: &Query) -> Result<Response, Response> {
    /// One point as `json!({"time": t, "value": v})` wrote it (the `f32` widened to `f64`,
    /// keys in order), so the bytes are the same.
    #[derive(serde::Serialize)]
    struct TimeValue {
        time: i64,
        value: f64,
    }
    let driver = driver_of(store, q.get("driver").map(String::as_str))?;
    let metric = q
        .get("metric")
        .ok_or_else(|| Response::error(400, "metric is required"))?;
    let (from, to) = time_range(q)?;
    let max = max_points(q.get("maxDataPoints").map(String::as_str))?;
    let points = series(store, driver, metric, from, to, max)?;
    let rows: Vec<TimeValue> = points
        .into_iter()
        .map(|(time, v)| TimeValue {
            time,
            value: v as f64,
        })
        .collect();
    Ok(Response {
        status: 200,
        content_type: "application/json",
        body: serde_json::to_vec(&rows).unwrap_or_default(),
    })
}

/// `GET /api/alerts?from=&to=&severity=&driver=&type=&max=`: alerts in the seeds' JSON,
/// newest first; `max` keeps the newest N.
pub fn alerts(store: &Store, q: &Query) -> Result<Value, Response> {
    let (from, to) = time_range(q)?;
    let filter = alert_filter(q)?;
    let max = match q.get("max") {
        Some(m) => max_points(Some(m))?,
        None => usize::MAX,
    };
    Ok(Value::Array(
        store
            .alerts(from, to, filter)
            .iter()
            .take(max)
            .map(Store::alert_message)
            .collect(),
    ))
}

/// `GET /api/annotations?from=&to=&severity=&driver=&type=`: the alerts as Grafana annotation
/// rows, named as Grafana's annotation mapping looks fields up (`time`, `timeEnd`, `title`,
/// `text`, `tags`): times in epoch ms, the episode as a range, `tags` one comma-separated
/// string (Grafana splits it on commas; a JSON array would reach it as its JSON text).
pub fn annotations(store: &Store, q: &Query) -> Result<Value, Response> {
    let (from, to) = time_range(q)?;
    let filter = alert_filter(q)?;
    Ok(Value::Array(
        store
            .alerts(from, to, filter)
            .iter()
            .map(|a| {
                json!({
                    "time": a.start_ms,
                    "timeEnd": a.end_ms,
                    "title": format!("{} {}", a.driver, a.alert_type.as_str()),
                    "text": a.description(),
                    "tags": format!("{},{},{}", a.severity.as_str(), a.alert_type.as_str(), a.driver),
                })
            })
            .collect(),
    ))
}

/// `GET /api/windows?driver=&max=`: the latest window aggregates.
pub fn windows(store: &Store, q: &Query) -> Result<Value, Response> {
    let driver = driver_of(store, q.get("driver").map(String::as_str))?;
    let (from, to) = time_range(q)?;
    let max = max_points(q.get("max").map(String::as_str))?;
    let windows = store.windows(driver, from, to, max);
    Ok(serde_json::to_value(&windows).unwrap_or_default())
}

/// What `read` copies out of the race book, the lock released before the answer is built.
fn race_copy<T>(store: &Store, read: impl FnOnce(&RaceBook) -> T) -> Result<T, Response> {
    store
        .with_race(read)
        .ok_or_else(|| Response::error(500, "the race views are unavailable"))
}

fn wanted(drivers: &Option<Vec<DriverId>>, driver: DriverId) -> bool {
    drivers.as_ref().is_none_or(|d| d.contains(&driver))
}

/// `GET /api/standings`: the running order as it stands, one row per driver from its latest
/// lap: `position` is the order of this list (most laps first, then who completed that lap
/// first), `laps_down` is laps behind the leader, the gap and interval are those measured at
/// the line on the driver's latest lap (`position_on_lap` is where it crossed that line);
/// `retired` once the race views judged the car retired.
pub fn standings(store: &Store) -> Result<Value, Response> {
    let (rows, retired): (Vec<LapRow>, BTreeMap<DriverId, u16>) = race_copy(store, |b| {
        (
            b.standings().into_iter().cloned().collect(),
            b.retirements().map(|r| (r.driver, r.lap)).collect(),
        )
    })?;
    let leader_lap = rows.first().map_or(0, |r| r.lap.done.lap);
    Ok(Value::Array(
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                let (l, d) = (&r.lap, &r.lap.done);
                json!({
                    "position": i + 1,
                    "driver_id": d.driver.as_str(),
                    "lap": d.lap,
                    "laps_down": leader_lap.saturating_sub(d.lap),
                    "gap_to_leader_ms": r.standing.gap_to_leader_ms,
                    "interval_ms": r.standing.interval_ms,
                    "ahead": r.standing.ahead.map(|a| a.to_string()),
                    "position_on_lap": r.standing.position,
                    "tyre_age_laps": l.tyre_age_laps,
                    "stint": l.stint,
                    "pit_count": l.pit_count,
                    "field_state": r.field.state.as_str(),
                    "last_lap_time_ms": l.lap_time_ms,
                    "best_lap_ms": l.best_ms,
                    "lap_end_ms": d.end_ms,
                    "retired": retired.contains_key(&d.driver),
                    "retired_on_lap": retired.get(&d.driver),
                })
            })
            .collect(),
    ))
}

/// `GET /api/laps?driver=`: lap rows (`laps.jsonl`'s shape) by driver, then lap.
pub fn laps(store: &Store, q: &Query) -> Result<Value, Response> {
    let drivers = drivers_filter(q)?;
    let rows: Vec<LapRow> = race_copy(store, |b| {
        b.laps()
            .filter(|r| wanted(&drivers, r.lap.done.driver))
            .cloned()
            .collect()
    })?;
    Ok(Value::Array(
        rows.iter()
            .map(|r| serde_json::to_value(LapMessage::new(r)).unwrap_or_default())
            .collect(),
    ))
}

/// `GET /api/pit_stops?driver=`: pit stops (`pit_stops.jsonl`'s shape) by driver, then lap.
pub fn pit_stops(store: &Store, q: &Query) -> Result<Value, Response> {
    let drivers = drivers_filter(q)?;
    let rows: Vec<PitRow> = race_copy(store, |b| {
        b.pit_stops()
            .filter(|p| wanted(&drivers, p.stop.driver))
            .cloned()
            .collect()
    })?;
    Ok(Value::Array(
        rows.iter()
            .map(|p| serde_json::to_value(PitStopMessage::new(p)).unwrap_or_default())
            .collect(),
    ))
}

/// `GET /api/predictions?driver=&model_type=&latest=`: predictions in the seeds' shape, plus
/// `ts_ms` (epoch ms of `timestamp`) and `probability` at the top level for Infinity's columns;
/// by driver, then lap, then model. `latest=true` keeps each driver's latest per model.
pub fn predictions(store: &Store, q: &Query) -> Result<Value, Response> {
    let drivers = drivers_filter(q)?;
    let models = model_types(q)?;
    let latest = flag(q, "latest")?;
    let mut rows: Vec<Prediction> = race_copy(store, |b| {
        b.predictions()
            .filter(|p| wanted(&drivers, p.driver))
            .filter(|p| models.as_ref().is_none_or(|m| m.contains(&p.model)))
            .cloned()
            .collect()
    })?;
    if latest {
        let mut last = BTreeMap::new();
        for p in rows {
            last.insert((p.driver, p.model), p);
        }
        rows = last.into_values().collect();
    }
    Ok(Value::Array(rows.iter().map(prediction_row).collect()))
}

fn prediction_row(p: &Prediction) -> Value {
    let mut v = serde_json::to_value(PredictionMessage::new(p)).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        m.insert("ts_ms".into(), json!(p.ts_ms));
        m.insert("probability".into(), json!(p.probability()));
    }
    v
}

/// Longest trace `/api/trace` serves, in seconds of race time.
const MAX_TRACE_SECONDS: i64 = 600;

/// `GET /api/trace?driver=VER&seconds=120`: the driver's last `seconds` (1..600, default 120)
/// of race time up to its latest sample, every metric of every sample in one answer (for the
/// live page's charts): `{driver, from, to, points: [{time, speed, rpm, throttle, gear, brake,
/// drs, expected_speed, wheel_spin, spinning}]}`; `expected_speed` and `wheel_spin` are null
/// where the sample could not be judged.
pub fn trace(store: &Store, q: &Query) -> Result<Value, Response> {
    let driver = driver_of(store, q.get("driver").map(String::as_str))?;
    let seconds = match q.get("seconds") {
        None => 120,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_TRACE_SECONDS).contains(&n) => n,
            _ => {
                return Err(Response::error(
                    400,
                    format!("seconds={v:?} must be a whole number from 1 to {MAX_TRACE_SECONDS}"),
                ))
            }
        },
    };
    let to = store
        .drivers()
        .into_iter()
        .find(|(d, _, _)| *d == driver)
        .and_then(|(_, _, last)| last)
        .unwrap_or(0);
    let from = to - seconds * 1000;
    let finite = |v: f32| v.is_finite().then_some(v);
    let points: Vec<Value> = store
        .points(driver, from, to)
        .iter()
        .map(|p| {
            json!({
                "time": p.ts_ms,
                "speed": finite(p.speed),
                "rpm": finite(p.rpm),
                "throttle": finite(p.throttle),
                "gear": p.gear,
                "brake": p.brake,
                "drs": p.drs,
                "expected_speed": finite(p.expected_speed),
                "wheel_spin": finite(p.wheel_spin),
                "spinning": p.spinning,
            })
        })
        .collect();
    Ok(json!({ "driver": driver.as_str(), "from": from, "to": to, "points": points }))
}

/// `GET /api/engine`: the engine's own state for the live page: records, their rate over the
/// last few seconds, the race clock (latest sample), drivers, source-to-output latency (the
/// latest and the mean over the run), the stored alerts by severity (each severity is one
/// partition of the alerts topic), and reading Kafka, the consumer lag (`kafka`: messages
/// behind the engine's position and behind its committed offset, in all and per partition;
/// null when the input is not Kafka).
pub fn engine(store: &Store) -> Value {
    let partitions = store.metrics.consumer_lag.partitions();
    let kafka = (!partitions.is_empty()).then(|| {
        let behind = |f: fn(&crate::metrics::PartitionLag) -> i64| -> i64 {
            partitions
                .iter()
                .map(|(_, _, l)| (l.end - f(l)).max(0))
                .sum()
        };
        json!({
            "lag": behind(|l| l.position),
            "committed_lag": behind(|l| l.committed),
            "partitions": partitions
                .iter()
                .map(|(topic, partition, l)| json!({
                    "topic": topic,
                    "partition": partition,
                    "end": l.end,
                    "position": l.position,
                    "committed": l.committed,
                    "lag": (l.end - l.position).max(0),
                    "committed_lag": (l.end - l.committed).max(0),
                }))
                .collect::<Vec<_>>(),
        })
    });
    let drivers = store.drivers();
    let race_time_ms = drivers.iter().filter_map(|(_, _, last)| *last).max();
    let (last, mean, count) = store.latency();
    let by_severity: BTreeMap<&str, usize> = store
        .alerts_by_severity()
        .into_iter()
        .map(|(s, n)| (s.as_str(), n))
        .collect();
    json!({
        "records": store.metrics.records.get(),
        "records_per_second": store.engine_rate(),
        "uptime_seconds": store.uptime_seconds(),
        "drivers": drivers.len(),
        "race_time_ms": race_time_ms,
        "latency_seconds": {
            "last": last,
            "mean": mean,
            "count": count,
        },
        "alerts": by_severity,
        "kafka": kafka,
    })
}
