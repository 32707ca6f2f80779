//! What happened in a simulated race, written as a real race's tables are, so that
//! `pitwall evaluate` scores the simulator as it scores a real race: `laps.csv` in the shape of
//! FastF1's laps table, `track_status.csv` as FastF1's track status, and `incidents.csv` (the
//! retirements and the car-health failures, with lap and cause), which a real race lacks, and
//! `weather.csv` as FastF1's weather (one row a minute; `Rainfall` from the rain's start).
//!
//! The truth is the race's own: the field is stepped alone, with no telemetry, from the same
//! seed and configuration, so it is the same whatever the run's workers.

use super::field::{Field, LapLog};
use super::SimConfig;
use crate::ingest::InputError;
use std::fmt::Write as _;
use std::path::Path;

/// What the truth holds, for the caller to print.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TruthCounts {
    pub laps: usize,
    pub stops: usize,
    pub neutralisations: usize,
    pub incidents: usize,
}

/// Longest race the truth writer steps, in hours of race time: a guard, never reached.
const MAX_RACE_HOURS: u64 = 12;

/// Steps the race to its end and writes its tables into `dir` (created if missing).
pub fn write(cfg: &SimConfig, dir: &Path) -> Result<TruthCounts, InputError> {
    let track = cfg.track();
    if cfg.race_laps(&track) == 0 {
        return Err(InputError::new(
            "--truth needs a race that ends: simulator laps must be at least 1".to_string(),
        ));
    }
    let mut field = Field::new(cfg, track);
    field.keep_log();
    let max_ticks = (MAX_RACE_HOURS as f64 * 3600.0 * cfg.rate_hz) as u64;
    while !field.done() && field.tick < max_ticks {
        field.step();
    }
    let end_ms = field.ts_ms(field.tick) - cfg.start_ms;
    let log = field.log.take().unwrap_or_default();
    std::fs::create_dir_all(dir)
        .map_err(|e| InputError::new(format!("{}: cannot create: {e}", dir.display())))?;
    let (laps_csv, counts) = laps_table(cfg, &log.laps);
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| InputError::new(format!("{}: cannot write: {e}", path.display())))
    };
    write("laps.csv", &laps_csv)?;
    let mut status = String::from("Time,Status,Message\n");
    for (ms, code) in &log.status {
        let message = match code {
            1 => "AllClear",
            4 => "SCDeployed",
            5 => "Red",
            6 => "VSCDeployed",
            _ => "Other",
        };
        let _ = writeln!(status, "{},{code},{message}", timedelta(*ms));
    }
    write("track_status.csv", &status)?;
    let mut incidents = String::from("Driver,LapNumber,Kind,Cause,Time\n");
    for i in &log.incidents {
        let _ = writeln!(
            incidents,
            "{},{},{},{},{}",
            cfg.driver(i.car),
            i.lap,
            i.kind,
            i.cause,
            timedelta(i.ms)
        );
    }
    write("incidents.csv", &incidents)?;
    write("weather.csv", &weather_table(log.rain_ms, end_ms))?;
    Ok(TruthCounts {
        neutralisations: log.status.iter().filter(|(_, c)| *c != 1).count(),
        incidents: log.incidents.len(),
        ..counts
    })
}

/// FastF1's weather table: a row a minute from the start to the end, `Rainfall` `True` from
/// the rain's start (if any); the rest plausible for a race afternoon and constant.
fn weather_table(rain_ms: Option<i64>, end_ms: i64) -> String {
    let mut out =
        String::from("Time,AirTemp,Humidity,Pressure,Rainfall,TrackTemp,WindDirection,WindSpeed\n");
    let mut ms = 0;
    while ms <= end_ms {
        let raining = rain_ms.is_some_and(|r| ms >= r);
        let rainfall = if raining { "True" } else { "False" };
        let _ = writeln!(
            out,
            "{},24.0,55.0,1013.0,{rainfall},38.0,150,1.2",
            timedelta(ms)
        );
        ms += 60_000;
    }
    out
}

/// FastF1's timedelta text: `0 days 01:02:03.456000`.
fn timedelta(ms: i64) -> String {
    let ms = ms.max(0);
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    format!(
        "0 days {h:02}:{m:02}:{:02}.{:03}000",
        rest / 1000,
        rest % 1000
    )
}

/// The laps table: one row per driver and lap; the position at the end of a lap is the order
/// in which the cars crossed the line on that lap (a lapped car behind the leader).
fn laps_table(cfg: &SimConfig, laps: &[Vec<LapLog>]) -> (String, TruthCounts) {
    let mut ends: Vec<(u32, i64, String, usize)> = Vec::new();
    for (car, car_laps) in laps.iter().enumerate() {
        for l in car_laps {
            if let Some(end) = l.end_ms {
                ends.push((l.lap, end, cfg.driver(car).to_string(), car));
            }
        }
    }
    ends.sort();
    let mut position = std::collections::HashMap::new();
    let mut k = 0;
    while k < ends.len() {
        let lap = ends[k].0;
        let mut p = 1;
        while k < ends.len() && ends[k].0 == lap {
            position.insert((ends[k].3, lap), p);
            p += 1;
            k += 1;
        }
    }
    let mut out = String::from(
        "Time,Driver,DriverNumber,LapTime,LapNumber,Stint,PitOutTime,PitInTime,Compound,\
         TyreLife,LapStartTime,TrackStatus,Position\n",
    );
    let mut counts = TruthCounts::default();
    let opt = |ms: Option<i64>| ms.map(timedelta).unwrap_or_default();
    for (car, car_laps) in laps.iter().enumerate() {
        for (n, l) in car_laps.iter().enumerate() {
            // A pit stop is a way through the pit lane: an entry with no exit (a car that
            // retires in its garage) is not one.
            let out_next = car_laps.get(n + 1).and_then(|x| x.pit_out_ms);
            let pit_in = l.pit_in_ms.filter(|_| out_next.is_some());
            counts.laps += 1;
            counts.stops += pit_in.is_some() as usize;
            let statuses: String = (0..10)
                .filter(|b| l.statuses & (1 << b) != 0)
                .map(|b| char::from(b'0' + b as u8))
                .collect();
            let _ = writeln!(
                out,
                "{},{},{},{},{}.0,{}.0,{},{},{},{}.0,{},{},{}",
                opt(l.end_ms),
                cfg.driver(car),
                car + 1,
                opt(l.end_ms.map(|e| e - l.start_ms)),
                l.lap,
                l.stint + 1,
                opt(l.pit_out_ms),
                opt(pit_in),
                l.compound,
                l.tyre_life,
                timedelta(l.start_ms),
                statuses,
                position
                    .get(&(car, l.lap))
                    .map_or(String::new(), |p: &u32| format!("{p}.0")),
            );
        }
    }
    (out, counts)
}
