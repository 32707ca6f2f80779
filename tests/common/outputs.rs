//! Checking an engine's output topics against a run's `--out` files: the changelog folded by an
//! independent client is exactly the files' rows, and with transactions every output is on its
//! topic once.

use super::{bin, fold_changelog_and_windows};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The JSON lines of a file.
pub fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Rows of a file-mode jsonl, each under the key the topic's latest value is taken by.
pub fn rows_by<K: Ord + std::fmt::Debug>(
    path: &Path,
    key: impl Fn(&Value) -> K,
) -> BTreeMap<K, Value> {
    let rows = lines(path);
    let n = rows.len();
    let by: BTreeMap<K, Value> = rows.into_iter().map(|r| (key(&r), r)).collect();
    assert_eq!(by.len(), n, "{}: one row per key", path.display());
    by
}

/// Where two row sets differ, for the assertion message: how many rows only on the topic,
/// missing from it and different, the fields that differ (in how many rows), and the first key.
pub fn first_difference<K: Ord + std::fmt::Debug>(
    a: &BTreeMap<K, Value>,
    b: &BTreeMap<K, Value>,
) -> String {
    let only_a = a.keys().filter(|k| !b.contains_key(*k)).count();
    let only_b = b.keys().filter(|k| !a.contains_key(*k)).count();
    let mut fields: BTreeMap<String, usize> = BTreeMap::new();
    let mut changed = 0;
    for (k, v) in a {
        let Some(w) = b.get(k).filter(|w| *w != v) else {
            continue;
        };
        changed += 1;
        let (Some(v), Some(w)) = (v.as_object(), w.as_object()) else {
            continue;
        };
        for f in v.keys().chain(w.keys()).collect::<BTreeSet<_>>() {
            if v.get(f) != w.get(f) {
                *fields.entry(f.clone()).or_default() += 1;
            }
        }
    }
    format!(
        "{only_a} rows only on the topic, {only_b} missing from it, {changed} different \
         (fields: {fields:?}); {}",
        first_key_difference(a, b)
    )
}

fn first_key_difference<K: Ord + std::fmt::Debug>(
    a: &BTreeMap<K, Value>,
    b: &BTreeMap<K, Value>,
) -> String {
    for (k, v) in a {
        match b.get(k) {
            None => return format!("{k:?} only on the topic: {v}"),
            Some(w) if w != v => return format!("{k:?}: topic {v}\nfile mode {w}"),
            _ => {}
        }
    }
    match b.keys().find(|k| !a.contains_key(*k)) {
        Some(k) => format!("{k:?} missing from the topic"),
        None => "none".into(),
    }
}

pub fn driver_lap(v: &Value) -> (String, u64) {
    (
        v["driver_id"].as_str().unwrap().to_string(),
        v["lap"].as_u64().unwrap(),
    )
}

/// The independent client's fold is exactly an engine's final `--out` files: alerts by id, laps
/// by `DRIVER:LAP`, pit stops by `DRIVER:LAP:pit`, predictions by model, driver and lap.
pub fn check_fold(fold: &Value, out: &Path) {
    let folded = |section: &str| -> BTreeMap<String, Value> {
        fold[section]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let alerts = rows_by(&out.join("alerts.jsonl"), |a| {
        a["alert_id"].as_str().unwrap().to_string()
    });
    let laps = rows_by(&out.join("laps.jsonl"), |v| {
        let (driver, lap) = driver_lap(v);
        format!("{driver}:{lap}")
    });
    let pits = rows_by(&out.join("pit_stops.jsonl"), |v| {
        let (driver, lap) = driver_lap(v);
        format!("{driver}:{lap}:pit")
    });
    let predictions = rows_by(&out.join("predictions.jsonl"), |v| {
        let (driver, lap) = driver_lap(v);
        format!("{}:{driver}:{lap}", v["model_type"].as_str().unwrap())
    });
    for (section, expected) in [
        ("alerts", alerts),
        ("laps", laps),
        ("pit_stops", pits),
        ("predictions", predictions),
    ] {
        let got = folded(section);
        assert!(
            got == expected,
            "{section}: the changelog folds to something else than the engine's files ({} \
             against {}); {}",
            got.len(),
            expected.len(),
            first_difference(&got, &expected)
        );
    }
}

/// Every message of a topic, as `pitwall tail` prints them (`{"key", "value", ...}`), read in
/// a group of its own (read_committed).
pub fn tail(brokers: &str, topic: &str, group: &str) -> Vec<Value> {
    let out = Command::new(bin())
        .env("PITWALL_HTTP", "off")
        .env("PITWALL_BROKERS", brokers)
        .args([
            "tail",
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--timeout",
            "8",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pitwall tail --topic {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Exactly once, against an uninterrupted run's `--out` folder `reference`: the output topics
/// (`topic("alerts")`, ...) fold to its files; the windows topic holds its windows, none
/// missing and none twice; and each analysis alert (race rows aside: car health and
/// retirements are updated as the race goes on) is on the alerts topic once raised and once
/// cleared, never raised after its clearing. `context` goes into every failure message.
pub fn check_exactly_once(
    brokers: &str,
    topic: impl Fn(&str) -> String,
    reference: &Path,
    context: &str,
) {
    let windows = topic("windows");
    let fold = fold_changelog_and_windows(
        brokers,
        &topic("alerts"),
        &topic("laps"),
        &topic("predictions"),
        Some((&windows, &reference.join("windows.jsonl"))),
    );
    check_fold(&fold, reference);
    let expected = lines(&reference.join("windows.jsonl")).len();
    assert!(expected > 0, "{}: no windows", reference.display());
    assert_eq!(
        fold["windows"],
        serde_json::json!({"messages": expected, "missing": 0, "extra": 0}),
        "the windows topic against the uninterrupted run's {expected} ({context})"
    );

    let mut sent: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut cleared = BTreeSet::new();
    let alerts = topic("alerts");
    let messages = tail(brokers, &alerts, &format!("{alerts}-once"));
    for m in &messages {
        let a = &m["value"];
        if a.is_null() {
            continue; // a tombstone: a race row taken back
        }
        let kind = a["alert_type"].as_str().unwrap_or_else(|| panic!("{m}"));
        if kind == "car_health" || kind == "retirement" {
            continue;
        }
        let id = a["alert_id"].as_str().unwrap_or_else(|| panic!("{m}"));
        let status = a["status"].as_str().unwrap_or_else(|| panic!("{m}"));
        assert!(
            !(status == "raised" && cleared.contains(id)),
            "{id} raised after it was cleared ({context})"
        );
        if status == "cleared" {
            cleared.insert(id.to_string());
        }
        *sent
            .entry((id.to_string(), status.to_string()))
            .or_default() += 1;
    }
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "alerts sent twice: {twice:?} ({context})");
    let analysis = rows_by(&reference.join("alerts.jsonl"), |a| {
        a["alert_id"].as_str().unwrap().to_string()
    })
    .into_values()
    .filter(|a| a["alert_type"] != "car_health" && a["alert_type"] != "retirement")
    .count();
    assert!(analysis > 0, "{}: no analysis alerts", reference.display());
    assert_eq!(
        sent.len(),
        2 * analysis,
        "raised and cleared once for each of the uninterrupted run's {analysis} analysis \
         alerts ({context})"
    );
}
