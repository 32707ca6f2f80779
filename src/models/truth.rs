//! What really happened, from FastF1's tables: the laps table (in-laps, positions, lap times)
//! and the track status. The engine never reads these answers; `train` and `evaluate` do.

use crate::format::timefmt::parse_timedelta_ms;
use crate::ingest::InputError;
use crate::source::fastf1::car_data::read_table;
use pitwall_dataflows::record::DriverMap;
use pitwall_dataflows::DriverId;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One row of the laps table.
#[derive(Clone, Debug, PartialEq)]
pub struct TruthLap {
    pub driver: DriverId,
    pub lap: u16,
    /// The car entered the pit lane on this lap (`PitInTime` set).
    pub pit_in: bool,
    pub position: Option<u16>,
    /// Session time (ms) of the lap's start and end, when known.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Run on intermediate or wet tyres (`Compound`; false when the table has none).
    pub wet_tyres: bool,
}

/// A retirement or a car-health failure a simulated race's `incidents.csv` records (a real
/// race's tables have none).
#[derive(Clone, Debug, PartialEq)]
pub struct TruthIncident {
    pub driver: DriverId,
    pub lap: u16,
    /// `retirement` or `car_health`: the alert type that should report it.
    pub kind: String,
    pub cause: String,
}

#[derive(Clone, Debug, Default)]
pub struct Truth {
    pub laps: Vec<TruthLap>,
    pub incidents: Vec<TruthIncident>,
    /// Session times (ms) of the weather table's samples that recorded rainfall (the table
    /// beside the laps table, `*weather*.csv*`; none without one).
    pub rainfall_ms: Vec<i64>,
    stops: HashSet<(DriverId, u16)>,
    last_lap: DriverMap<u16>,
}

impl Truth {
    pub fn load(laps_table: &Path) -> Result<Truth, InputError> {
        let mut laps = Vec::new();
        let cols = [
            "Driver",
            "LapNumber",
            "PitInTime",
            "Position",
            "LapStartTime",
            "Time",
        ];
        read_table(laps_table, &cols, |f| {
            let text = |b: &[u8]| std::str::from_utf8(b).unwrap_or("").trim().to_string();
            let number = |b: &[u8]| text(b).parse::<f64>().ok().filter(|v| v.is_finite());
            let (Some(driver), Some(lap)) = (DriverId::from_bytes(f[0]), number(f[1])) else {
                return;
            };
            laps.push(TruthLap {
                driver,
                lap: lap as u16,
                pit_in: parse_timedelta_ms(f[2]).is_some(),
                position: number(f[3]).map(|p| p as u16),
                start_ms: parse_timedelta_ms(f[4]),
                end_ms: parse_timedelta_ms(f[5]),
                wet_tyres: false,
            });
        })?;
        // The tyres, where the table has them (FastF1's always does).
        let mut wet: HashSet<(DriverId, u16)> = HashSet::new();
        let compounds = read_table(laps_table, &["Driver", "LapNumber", "Compound"], |f| {
            let text = std::str::from_utf8(f[2]).unwrap_or("").trim();
            let lap = std::str::from_utf8(f[1])
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok());
            if let (Some(driver), Some(lap), "INTERMEDIATE" | "WET") =
                (DriverId::from_bytes(f[0]), lap, text)
            {
                wet.insert((driver, lap as u16));
            }
        });
        if compounds.is_ok() {
            for l in &mut laps {
                l.wet_tyres = wet.contains(&(l.driver, l.lap));
            }
        }
        if laps.is_empty() {
            return Err(InputError::new(format!(
                "{}: no laps in this laps table",
                laps_table.display()
            )));
        }
        let mut truth = Truth::from_laps(laps);
        // A simulated race's incidents, beside its laps table.
        if let Some(path) = laps_table
            .parent()
            .map(|d| d.join("incidents.csv"))
            .filter(|p| p.exists())
        {
            read_table(&path, &["Driver", "LapNumber", "Kind", "Cause"], |f| {
                let text = |b: &[u8]| std::str::from_utf8(b).unwrap_or("").trim().to_string();
                if let (Some(driver), Ok(lap)) =
                    (DriverId::from_bytes(f[0]), text(f[1]).parse::<u16>())
                {
                    truth.incidents.push(TruthIncident {
                        driver,
                        lap,
                        kind: text(f[2]),
                        cause: text(f[3]),
                    });
                }
            })?;
        }
        if let Some(path) = beside(laps_table, "weather") {
            read_table(&path, &["Time", "Rainfall"], |f| {
                let rain =
                    std::str::from_utf8(f[1]).is_ok_and(|t| t.trim().eq_ignore_ascii_case("true"));
                if let (true, Some(t)) = (rain, parse_timedelta_ms(f[0])) {
                    truth.rainfall_ms.push(t);
                }
            })?;
            truth.rainfall_ms.sort_unstable();
        }
        Ok(truth)
    }

    /// Lap numbers most of the cars that ran them ran on intermediate or wet tyres: a wet
    /// track.
    pub fn wet_laps(&self) -> BTreeSet<u16> {
        let mut count: BTreeMap<u16, (usize, usize)> = BTreeMap::new();
        for l in &self.laps {
            let c = count.entry(l.lap).or_default();
            c.0 += 1;
            c.1 += l.wet_tyres as usize;
        }
        count
            .into_iter()
            .filter(|(_, (all, wet))| 2 * wet > *all)
            .map(|(lap, _)| lap)
            .collect()
    }

    /// Whether the weather table recorded rainfall from a minute before `start_ms` (its
    /// samples come once a minute) to `end_ms`.
    pub fn rained_during(&self, start_ms: i64, end_ms: i64) -> bool {
        let from = self.rainfall_ms.partition_point(|&t| t < start_ms - 60_000);
        self.rainfall_ms.get(from).is_some_and(|&t| t <= end_ms)
    }

    pub fn from_laps(laps: Vec<TruthLap>) -> Truth {
        let stops = laps
            .iter()
            .filter(|l| l.pit_in)
            .map(|l| (l.driver, l.lap))
            .collect();
        let mut last_lap = DriverMap::default();
        for l in &laps {
            let e = last_lap.entry(l.driver).or_insert(0);
            *e = (*e).max(l.lap);
        }
        Truth {
            laps,
            incidents: Vec::new(),
            rainfall_ms: Vec::new(),
            stops,
            last_lap,
        }
    }

    pub fn stops(&self) -> &HashSet<(DriverId, u16)> {
        &self.stops
    }

    /// Each driver's position at the end of each lap the table gives one for.
    pub fn positions(&self) -> HashMap<(DriverId, u16), u16> {
        self.laps
            .iter()
            .filter_map(|l| Some(((l.driver, l.lap), l.position?)))
            .collect()
    }

    /// A stop on one of the laps `lap + 1 ..= lap + ahead`.
    pub fn stop_within(&self, driver: DriverId, lap: u16, ahead: u16) -> bool {
        (1..=ahead).any(|k| self.stops.contains(&(driver, lap + k)))
    }

    /// Each driver's last lap in the table.
    pub fn last_laps(&self) -> BTreeMap<DriverId, u16> {
        self.last_lap.iter().map(|(d, l)| (*d, *l)).collect()
    }

    /// Drivers whose last lap is short of the most laps anyone did by more than `laps_down`:
    /// the cars that did not finish.
    pub fn retirements(&self, laps_down: u16) -> BTreeMap<DriverId, u16> {
        let most = self.last_lap.values().copied().max().unwrap_or(0);
        self.last_laps()
            .into_iter()
            .filter(|(_, l)| *l + laps_down < most)
            .collect()
    }
}

/// The first table beside `laps_table` whose name holds `what` (`weather`, `track_status`).
pub fn beside(laps_table: &Path, what: &str) -> Option<PathBuf> {
    let dir = laps_table.parent()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(what) && n.contains(".csv"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// A period of one track status (FastF1 codes: 2 yellow, 4 SC, 5 red, 6/7 VSC).
#[derive(Clone, Debug, PartialEq)]
pub struct StatusPeriod {
    pub status: u8,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl StatusPeriod {
    pub fn name(&self) -> &'static str {
        match self.status {
            2 => "yellow",
            4 => "safety car",
            5 => "red flag",
            6 | 7 => "virtual safety car",
            _ => "other",
        }
    }
}

/// Non-green periods of a track-status table; VSC deployed and ending are one period.
pub fn load_track_status(path: &Path) -> Result<Vec<StatusPeriod>, InputError> {
    let mut rows: Vec<(i64, u8)> = Vec::new();
    read_table(path, &["Time", "Status"], |f| {
        let status = std::str::from_utf8(f[1])
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok());
        if let (Some(t), Some(s)) = (parse_timedelta_ms(f[0]), status) {
            rows.push((t, s));
        }
    })?;
    rows.sort();
    let mut periods: Vec<StatusPeriod> = Vec::new();
    for (i, &(t, s)) in rows.iter().enumerate() {
        let end = rows.get(i + 1).map_or(t + 60_000, |r| r.0);
        if s == 1 {
            continue;
        }
        match periods.last_mut() {
            Some(p) if p.end_ms == t && (p.status == s || (p.status == 6 && s == 7)) => {
                p.end_ms = end
            }
            _ => periods.push(StatusPeriod {
                status: s,
                start_ms: t,
                end_ms: end,
            }),
        }
    }
    Ok(periods)
}

/// A race folder's merged telemetry, laps table and track status: `monaco_2019_race.csv.gz`
/// with `side/monaco_laps_2019.csv.gz` (or a `fastf1-car-data/` folder beside it).
#[derive(Clone, Debug)]
pub struct RaceFolder {
    pub name: String,
    pub telemetry: PathBuf,
    pub laps: PathBuf,
    pub track_status: Option<PathBuf>,
}

impl RaceFolder {
    pub fn find(dir: &Path) -> Result<RaceFolder, InputError> {
        let files = |d: &Path| -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(d)
                .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        let name_of = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string()
        };
        let mut all = files(dir);
        for sub in ["side", "fastf1-car-data"] {
            all.extend(files(&dir.join(sub)));
        }
        let pick = |want: &dyn Fn(&str) -> bool| all.iter().find(|p| want(&name_of(p))).cloned();
        let telemetry = pick(&|n| n.contains("_race.csv"));
        let laps = pick(&|n| n.contains("laps") && n.contains(".csv"));
        let track_status = pick(&|n| n.contains("track_status") && n.contains(".csv"));
        match (telemetry, laps) {
            (Some(telemetry), Some(laps)) => Ok(RaceFolder {
                name: name_of(dir),
                telemetry,
                laps,
                track_status,
            }),
            _ => Err(InputError::new(format!(
                "{}: a race folder needs a merged *_race.csv(.gz) and a *laps*.csv(.gz) table \
                 (in it, in side/ or in fastf1-car-data/)",
                dir.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lap of the table with nothing but its driver and number.
    fn bare(driver: &str, lap: u16) -> TruthLap {
        TruthLap {
            driver: DriverId::new(driver).unwrap(),
            lap,
            pit_in: false,
            position: None,
            start_ms: None,
            end_ms: None,
            wet_tyres: false,
        }
    }

    #[test]
    fn stops_within_the_next_laps_and_retirements() {
        let d = |s| DriverId::new(s).unwrap();
        let lap = |driver, lap, pit_in| TruthLap {
            pit_in,
            ..bare(driver, lap)
        };
        let mut laps = vec![];
        for n in 1..=78 {
            laps.push(lap("VER", n, n == 30));
        }
        for n in 1..=52 {
            laps.push(lap("STR", n, false));
        }
        for n in 1..=77 {
            laps.push(lap("SAR", n, false));
        }
        let t = Truth::from_laps(laps);
        assert!(t.stop_within(d("VER"), 27, 3));
        assert!(!t.stop_within(d("VER"), 26, 3));
        assert!(!t.stop_within(d("VER"), 30, 3));
        let out: Vec<_> = t.retirements(3).into_iter().collect();
        assert_eq!(out, vec![(d("STR"), 52)]);
    }

    #[test]
    fn a_wet_track_is_where_most_of_the_field_ran_wet_tyres_and_rain_fell_within_the_lap() {
        let lap = |driver, lap, wet_tyres| TruthLap {
            wet_tyres,
            ..bare(driver, lap)
        };
        // Lap 2: two of three on intermediates; lap 3: one of three.
        let mut t = Truth::from_laps(vec![
            lap("VER", 1, false),
            lap("HAM", 1, false),
            lap("VER", 2, true),
            lap("HAM", 2, true),
            lap("LEC", 2, false),
            lap("VER", 3, true),
            lap("HAM", 3, false),
            lap("LEC", 3, false),
        ]);
        assert_eq!(t.wet_laps().into_iter().collect::<Vec<_>>(), vec![2]);
        // Recorded during the lap, or in the minute before it began (samples come a minute
        // apart), counts; after its end does not.
        t.rainfall_ms = vec![200_000, 260_000];
        assert!(t.rained_during(150_000, 230_000));
        assert!(t.rained_during(201_000, 205_000));
        assert!(t.rained_during(270_000, 300_000));
        assert!(!t.rained_during(100_000, 150_000));
        assert!(!t.rained_during(321_000, 400_000));
    }

    #[test]
    fn the_real_training_races_are_found() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/monaco-2019");
        let race = RaceFolder::find(&dir).unwrap();
        assert!(race.telemetry.ends_with("monaco_2019_race.csv.gz"));
        let truth = Truth::load(&race.laps).unwrap();
        assert_eq!(truth.stops().len(), 23);
        let periods = load_track_status(race.track_status.as_ref().unwrap()).unwrap();
        assert!(periods.iter().any(|p| p.status == 4));
    }
}
