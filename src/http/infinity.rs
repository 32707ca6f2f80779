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
/// `retired` once the race views judged the car retired; `rejoin_position_if_pit` where it would
/// cross the line after a stop on the next lap, losing `pit_loss_ms` (under the field's state;
/// `_green` and `_neutralised` under either; each loss learned from `pit_loss_*_stops` of the
/// race's stops, the prior alone at 0); `undercut_on` the car ahead it is within reach of
/// undercutting (under green: its interval is less than `undercut_gain_ms`, what that car's
/// tyres lost on the lap) and `undercut_threat` the car behind within reach of undercutting it.
pub fn standings(store: &Store) -> Result<Value, Response> {
    let (rows, retired): (Vec<LapRow>, BTreeMap<DriverId, u16>) = race_copy(store, |b| {
        (
            b.standings().into_iter().cloned().collect(),
            b.retirements().map(|r| (r.driver, r.lap)).collect(),
        )
    })?;
    let leader_lap = rows.first().map_or(0, |r| r.lap.done.lap);
    let threats: BTreeMap<DriverId, DriverId> = rows
        .iter()
        .filter_map(|r| Some((r.undercut_on()?, r.lap.done.driver)))
        .collect();
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
                    "rejoin_position_if_pit": r.rejoin_if_pit().0,
                    "pit_loss_ms": r.rejoin_if_pit().1,
                    "rejoin_position_if_pit_green": r.standing.rejoin_green,
                    "rejoin_position_if_pit_neutralised": r.standing.rejoin_neutralised,
                    "pit_loss_green_ms": r.standing.pit_loss.green_ms,
                    "pit_loss_neutralised_ms": r.standing.pit_loss.neutralised_ms,
                    "pit_loss_green_stops": r.standing.pit_loss.green_stops,
                    "pit_loss_neutralised_stops": r.standing.pit_loss.neutralised_stops,
                    "undercut_on": r.undercut_on().map(|a| a.to_string()),
                    "undercut_gain_ms": r.standing.undercut_gain_ms,
                    "undercut_threat": threats.get(&d.driver).map(|b| b.to_string()),
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
/// `ts_ms` (epoch ms of `timestamp`), `probability` and `times_base` (how many times its base
/// rate it is) at the top level for Infinity's columns;
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
        m.insert("times_base".into(), json!(p.times_base()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PitwallConfig;
    use crate::http::params::parse_query;
    use crate::http::response::answer;
    use crate::http::store::StoreHook;
    use crate::http::test_store::{json, store, store_lugging};
    use crate::ingest::EpochClock;
    use pitwall_dataflows::analysis::DriverAnalysis;
    use pitwall_dataflows::config::WindowConfig;
    use pitwall_dataflows::dataflow::AnalysisHook;
    use pitwall_dataflows::race::driver_laps::DriverLap;
    use pitwall_dataflows::race::{
        FieldState, FieldView, LapDone, ModelType, PitStop, RaceItem, RaceUpdate, Standing,
    };
    use pitwall_dataflows::{DetectorConfig, Telemetry};
    use std::sync::Arc;

    /// A handler's answer to `query` (a request's query string), as status and JSON.
    fn get(
        s: &Store,
        handler: fn(&Store, &Query) -> Result<Value, Response>,
        query: &str,
    ) -> (u16, Value) {
        let r = answer(handler(s, &parse_query(Some(query))));
        (r.status, json(&r))
    }

    /// `/api/series`' answer to `query`.
    fn series_answer(s: &Store, query: &str) -> Response {
        series_points(s, &parse_query(Some(query))).unwrap_or_else(|e| e)
    }

    #[test]
    fn series_alerts_and_annotations_without_a_socket() {
        let s = store();
        let r = series_answer(&s, "driver=HAM&metric=speed&from=1000000&to=1000999");
        assert_eq!(r.status, 200);
        assert_eq!(
            json(&r),
            serde_json::json!([
                {"time": 1000000, "value": 100.0}, {"time": 1000250, "value": 101.0},
                {"time": 1000500, "value": 102.0}, {"time": 1000750, "value": 103.0}
            ])
        );
        let (_, lugging) = get(&s, alerts, "driver=HAM&type=lugging");
        assert_eq!(lugging.as_array().unwrap().len(), 1);
        assert_eq!(
            lugging[0]["status"], "cleared",
            "the cleared state replaced the raised one"
        );
        assert_eq!(lugging[0]["start_ms"], 1_002_500);
        // The same alert as an annotation row, fields named as Grafana maps them.
        let (_, rows) = get(&s, annotations, "driver=HAM");
        let a = &rows[0];
        assert_eq!(
            (&a["time"], &a["timeEnd"], &a["tags"], &a["title"]),
            (
                &serde_json::json!(1_002_500),
                &lugging[0]["end_ms"],
                &serde_json::json!("low,lugging,HAM"),
                &serde_json::json!("HAM lugging")
            )
        );
        assert!(a["text"].as_str().is_some_and(|t| t.contains("lug")), "{a}");
        let r = metrics(&s);
        assert!(String::from_utf8_lossy(&r.body).contains("pitwall_records_total"));
        assert_eq!(
            series_answer(&s, "driver=HAM&metric=speed&maxDataPoints=0").status,
            400
        );
    }

    fn lap_row(driver: &str, lap: u16, end_ms: i64, position: u16, gap_ms: i64) -> LapRow {
        let driver = DriverId::new(driver).unwrap();
        LapRow {
            lap: DriverLap {
                done: LapDone {
                    driver,
                    lap,
                    start_ms: end_ms - 80_000,
                    end_ms,
                    by_distance: false,
                    samples: 320,
                    spin_samples: 0,
                    max_speed_kmh: 290,
                    top_gear: 8,
                    max_rpm: 11_800,
                    stationary_ms: 0,
                    hard_decels: 0,
                    glitch_gears: 0,
                    drs_samples: 0,
                },
                lap_time_ms: 80_000,
                pit_in: false,
                pit_out: false,
                stint: 1,
                tyre_age_laps: lap,
                pit_count: 0,
                clean: lap > 1,
                best_ms: 80_000,
                pace_permille: 1000,
                stint_loss_ms: 0,
                trend_ms_per_lap: 0,
                spread_permille: 0,
            },
            standing: Standing {
                position,
                gap_to_leader_ms: gap_ms,
                interval_ms: gap_ms,
                ahead: None,
                ..Standing::default()
            },
            field: FieldView::default(),
        }
    }

    fn prediction(driver: &str, lap: u16, model: ModelType, ppm: u32) -> Prediction {
        Prediction {
            driver: DriverId::new(driver).unwrap(),
            lap,
            model,
            ts_ms: 1_685_278_862_424 + lap as i64 * 80_000,
            probability_ppm: ppm,
            confidence_ppm: ppm,
            base_ppm: 10_000,
        }
    }

    /// A store whose race book holds VER on laps 1-2, HAM on laps 1-2 (lap 2's position
    /// corrected by a retraction and an insertion), LEC on lap 1 only; a stop and predictions.
    fn race_store() -> Store {
        let s = store();
        let ins = |item| RaceUpdate { item, diff: 1 };
        let stop = PitRow {
            stop: PitStop {
                driver: DriverId::new("LEC").unwrap(),
                lap: 1,
                pit_in_ms: 1_000_070_000,
                pit_out_ms: 1_000_095_000,
                stationary_ms: 2_500,
                limit_kmh: 80,
            },
            field_state: FieldState::Green,
        };
        let updates = vec![
            ins(RaceItem::Lap(lap_row("VER", 1, 1_000_080_000, 1, 0))),
            ins(RaceItem::Lap(lap_row("HAM", 1, 1_000_081_000, 2, 1_000))),
            ins(RaceItem::Lap(lap_row("LEC", 1, 1_000_082_000, 3, 2_000))),
            ins(RaceItem::Lap(lap_row("HAM", 2, 1_000_160_000, 1, 0))),
            ins(RaceItem::Lap(lap_row("VER", 2, 1_000_159_000, 1, 0))),
            RaceUpdate {
                item: RaceItem::Lap(lap_row("HAM", 2, 1_000_160_000, 1, 0)),
                diff: -1,
            },
            ins(RaceItem::Lap(lap_row("HAM", 2, 1_000_160_000, 2, 1_000))),
            ins(RaceItem::Pit(stop)),
            ins(RaceItem::Prediction(prediction(
                "VER",
                1,
                ModelType::PitStopProbability,
                100_000,
            ))),
            ins(RaceItem::Prediction(prediction(
                "VER",
                2,
                ModelType::PitStopProbability,
                700_000,
            ))),
            ins(RaceItem::Prediction(prediction(
                "VER",
                2,
                ModelType::CrashRisk,
                50_000,
            ))),
            ins(RaceItem::Prediction(prediction(
                "HAM",
                2,
                ModelType::PitStopProbability,
                300_000,
            ))),
        ];
        s.apply_race(&updates);
        s
    }

    #[test]
    fn standings_are_each_drivers_latest_lap_in_race_order() {
        let s = race_store();
        let (status, rows) = get(&s, |s, _| standings(s), "");
        assert_eq!(status, 200);
        let order: Vec<(u64, &str, u64, i64, u64)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["position"].as_u64().unwrap(),
                    r["driver_id"].as_str().unwrap(),
                    r["lap"].as_u64().unwrap(),
                    r["gap_to_leader_ms"].as_i64().unwrap(),
                    r["laps_down"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (1, "VER", 2, 0, 0),
                (2, "HAM", 2, 1_000, 0),
                (3, "LEC", 1, 2_000, 1)
            ],
            "the corrected HAM row, not the retracted one"
        );
        assert_eq!(rows[0]["field_state"], "green");
        assert_eq!(rows[0]["last_lap_time_ms"], 80_000);
        assert_eq!(rows[2]["tyre_age_laps"], 1);
        // An empty book: an empty running order.
        assert_eq!(
            get(&store(), |s, _| standings(s), "").1,
            serde_json::json!([])
        );
    }

    #[test]
    fn laps_and_pit_stops_filter_by_driver() {
        let s = race_store();
        let (status, all) = get(&s, laps, "");
        assert_eq!((status, all.as_array().unwrap().len()), (200, 5));
        let (_, ham) = get(&s, laps, "driver=HAM");
        let ham = ham.as_array().unwrap();
        assert_eq!(ham.len(), 2);
        assert_eq!(
            (ham[1]["lap"].as_u64(), ham[1]["position"].as_u64()),
            (Some(2), Some(2))
        );
        assert_eq!(ham[0]["message_type"], "lap");
        assert_eq!(
            get(&s, laps, "driver=HAM,LEC").1.as_array().unwrap().len(),
            3
        );
        assert_eq!(get(&s, laps, "driver=All").1.as_array().unwrap().len(), 5);
        assert_eq!(get(&s, laps, "driver=ZZZ"), (200, serde_json::json!([])));
        assert_eq!(get(&s, laps, "driver=bad%20id").0, 400);
        let (status, stops) = get(&s, pit_stops, "");
        assert_eq!(status, 200);
        assert_eq!(stops[0]["driver_id"], "LEC");
        assert_eq!(stops[0]["pit_lane_ms"], 25_000);
        assert_eq!(stops[0]["field_state"], "green");
        assert_eq!(
            get(&s, pit_stops, "driver=VER"),
            (200, serde_json::json!([]))
        );
    }

    #[test]
    fn predictions_filter_by_driver_and_model_and_keep_the_latest() {
        let s = race_store();
        let (status, ver) = get(
            &s,
            predictions,
            "driver=VER&model_type=pit_stop_probability",
        );
        assert_eq!(status, 200);
        let ver = ver.as_array().unwrap();
        assert_eq!(ver.len(), 2);
        assert_eq!(ver[1]["lap"], 2);
        assert_eq!(ver[1]["probability"], 0.7);
        assert_eq!(ver[1]["prediction"]["probability"], 0.7);
        assert_eq!(ver[1]["prediction"]["risk_level"], "high");
        assert_eq!(ver[1]["ts_ms"], 1_685_279_022_424i64);
        assert_eq!(ver[1]["timestamp"], "2023-05-28T13:03:42.424Z");
        assert_eq!(get(&s, predictions, "").1.as_array().unwrap().len(), 4);
        let (_, latest) = get(&s, predictions, "latest=true");
        let latest: Vec<(&str, u64, &str)> = latest
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["driver_id"].as_str().unwrap(),
                    p["lap"].as_u64().unwrap(),
                    p["model_type"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            latest,
            vec![
                ("HAM", 2, "pit_stop_probability"),
                ("VER", 2, "crash_risk"),
                ("VER", 2, "pit_stop_probability"),
            ]
        );
        assert_eq!(
            get(&s, predictions, "model_type=crash_risk,tire_failure")
                .1
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            get(&s, predictions, "driver=ZZZ"),
            (200, serde_json::json!([]))
        );
        let (status, e) = get(&s, predictions, "model_type=lap_time");
        assert_eq!(status, 400);
        assert_eq!(
            e["error"],
            "model_type=\"lap_time\" must be one of crash_risk, tire_failure, pit_stop_probability"
        );
        assert_eq!(get(&s, predictions, "latest=maybe").0, 400);
    }

    #[test]
    fn a_trace_is_every_metric_of_the_drivers_last_seconds() {
        let s = store();
        let (status, t) = get(&s, trace, "driver=HAM&seconds=2");
        assert_eq!(status, 200);
        // The last sample is at 1_009_750; two seconds before it, samples 31..=39.
        assert_eq!(
            (t["driver"].as_str(), t["from"].as_i64(), t["to"].as_i64()),
            (Some("HAM"), Some(1_007_750), Some(1_009_750))
        );
        let points = t["points"].as_array().unwrap();
        assert_eq!(points.len(), 9);
        assert_eq!(points[0]["time"], 1_007_750);
        assert_eq!(points[0]["speed"], 131.0);
        assert_eq!(points[0]["rpm"], 10000.0);
        assert_eq!(
            (points[0]["gear"].as_u64(), points[0]["throttle"].as_f64()),
            (Some(5), Some(50.0))
        );
        for p in points {
            for key in ["expected_speed", "wheel_spin"] {
                assert!(p[key].is_null() || p[key].is_number(), "{key}: {p}");
            }
            assert!(p["spinning"].is_boolean());
        }
        let (_, whole) = get(&s, trace, "driver=HAM");
        assert_eq!(
            whole["points"].as_array().unwrap().len(),
            40,
            "the default 120 s holds all"
        );
        assert_eq!(get(&s, trace, "driver=HAM&seconds=0").0, 400);
        assert_eq!(get(&s, trace, "driver=HAM&seconds=601").0, 400);
        assert_eq!(get(&s, trace, "driver=ZZZ").0, 404);
        assert_eq!(get(&s, trace, "").0, 400);
    }

    #[test]
    fn the_engine_answer_counts_records_alerts_and_the_race_clock() {
        let s = store();
        let (status, e) = get(&s, |s, _| Ok(engine(s)), "");
        assert_eq!(status, 200);
        assert_eq!(
            (e["records"].as_u64(), e["drivers"].as_u64()),
            (Some(40), Some(1))
        );
        assert_eq!(e["race_time_ms"], 1_009_750);
        let stored = get(&s, alerts, "").1;
        let by_severity = |sev: &str| {
            stored
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["severity"] == sev)
                .count() as u64
        };
        for sev in ["high", "medium", "low"] {
            assert_eq!(e["alerts"][sev].as_u64(), Some(by_severity(sev)), "{sev}");
        }
        assert!(
            e["alerts"]["low"].as_u64().unwrap() >= 1,
            "the lugging episode"
        );
        // No epoch was noted by this store's clock: no latency measured, said as null.
        assert_eq!(
            e["latency_seconds"],
            serde_json::json!({"last": null, "mean": null, "count": 0})
        );
        assert!(e["uptime_seconds"].as_f64().unwrap() >= 0.0);
        assert!(e["records_per_second"].is_null() || e["records_per_second"].is_number());
    }

    #[test]
    fn alerts_max_keeps_the_newest() {
        let s = store_lugging(&[(10, 15), (25, 30)]);
        let all = get(&s, alerts, "").1;
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        let (status, one) = get(&s, alerts, "max=1");
        assert_eq!(status, 200);
        assert_eq!(one.as_array().unwrap(), &all[..1]);
        assert_eq!(one[0]["start_ms"], 1_006_250, "the newest episode");
        assert_eq!(get(&s, alerts, "max=0").0, 400);
        assert_eq!(get(&s, alerts, "max=lots").0, 400);
    }

    #[test]
    fn a_series_answers_the_bytes_a_json_tree_of_its_points_did() {
        let store = Arc::new(Store::new(
            &PitwallConfig::default().http,
            &WindowConfig::default(),
        ));
        let mut hook = StoreHook::new(store.clone(), EpochClock::default());
        let driver = DriverId::new("LEC").unwrap();
        let mut a = DriverAnalysis::new(driver, &DetectorConfig::default());
        // Decimals that an f32 widened to f64 prints long (287.29998779296875).
        let speeds = [287.3f32, 123.45, 0.07];
        for (i, speed) in speeds.iter().enumerate() {
            let s = Telemetry {
                speed: *speed,
                rpm: 10_000.5,
                throttle: 99.0,
                lap: Some(1),
                gear: 7,
                drs: 12,
                ..Telemetry::at(driver, 1_000_000 + i as i64 * 250)
            };
            let d = a.observe(&s, |o| hook.output(&o, 0));
            hook.sample(&s, &d);
        }
        hook.flush();
        let r = series_answer(&store, "driver=LEC&metric=speed");
        let tree: Vec<Value> = speeds
            .iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"time": 1_000_000 + i as i64 * 250, "value": v}))
            .collect();
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            serde_json::to_string(&tree).unwrap()
        );
    }
}
