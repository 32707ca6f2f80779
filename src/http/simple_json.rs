//! The SimpleJSON protocol the seeds' Flask bridge spoke (`/search`, `/query`,
//! `/annotations`): targets `metric:DRIVER` or `alerts`. Kept for the seeds' clients; the
//! dashboard uses the Infinity API instead. simPod's JSON datasource (unmaintained) lists
//! targets with `POST /metrics`, answered here, while `GET /metrics` stays Prometheus's.

use super::params::{driver_of, max_points, parse_time};
use super::response::Response;
use super::series::{metric_names, series};
use super::store::Store;
use pitwall_dataflows::alert::Alert;
use serde::Deserialize;
use serde_json::{json, Value};

/// Every target a panel can ask for: each metric of each driver, and the alerts table.
pub fn search(store: &Store) -> Value {
    Value::Array(
        store
            .drivers()
            .into_iter()
            .flat_map(|(d, _, _)| metric_names().map(move |m| Value::String(format!("{m}:{d}"))))
            .chain(std::iter::once(Value::String("alerts".into())))
            .collect(),
    )
}

/// `POST /metrics` (simPod's JSON datasource listing what it can query, body `{metric,
/// payload}` or empty): the targets of [`search`], as plain strings, which it accepts. A body
/// that is not JSON is refused like any other.
pub fn metrics(store: &Store, body: &[u8]) -> Result<Value, Response> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| Response::error(400, format!("invalid /metrics body: {e}")))?;
    }
    Ok(search(store))
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

pub fn query(store: &Store, body: &[u8]) -> Result<Value, Response> {
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

pub fn annotations(store: &Store, body: &[u8]) -> Result<Value, Response> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::answer;
    use crate::http::test_store::{json, store};

    #[test]
    fn query_annotations_and_the_target_list_without_a_socket() {
        let s = store();
        let q = json(&answer(query(
            &s,
            br#"{"targets": [{"target": "rpm:HAM"}], "maxDataPoints": 4}"#,
        )));
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
        let r = answer(annotations(
            &s,
            br#"{"range": {"from": "1970-01-01T00:00:00Z", "to": "1970-01-02T00:00:00Z"}}"#,
        ));
        assert_eq!(
            json(&r)[0]["tags"],
            serde_json::json!(["low", "lugging", "HAM"])
        );
        // `POST /metrics` lists what `/search` does, and refuses a body that is not JSON.
        let listed = json(&answer(metrics(&s, b"")));
        assert_eq!(listed, json(&answer(Ok(search(&s)))));
        assert!(listed.as_array().unwrap().contains(&"rpm:HAM".into()));
        assert_eq!(answer(metrics(&s, b"{oops")).status, 400);
    }
}
