//! Every race's results (`../shared/data/history`: Ergast's races, results, status and drivers
//! tables): how often a car's race ends by each cause on each lap (the base rates `crash_risk`
//! and `tire_failure` start from), and how each car's race ended in one race (what `evaluate`
//! scores them against).

use crate::ingest::InputError;
use crate::source::fastf1::car_data::read_table;
use pitwall_dataflows::race::{Hazards, LapHazard};
use pitwall_dataflows::DriverId;
use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::path::Path;

/// Where the history is beside the repository.
pub const DEFAULT_DIR: &str = "../shared/data/history";

/// A cause of a race's end, as `crash_risk` and `tire_failure` name their events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Accident, collision, spun off, collision damage.
    Crash,
    /// Tyre, puncture.
    Tyre,
    Other,
}

impl Cause {
    pub fn of(status: &str) -> Cause {
        match status {
            "Accident" | "Collision" | "Spun off" | "Collision damage" | "Fatal accident" => {
                Cause::Crash
            }
            "Tyre" | "Puncture" | "Tyre puncture" => Cause::Tyre,
            _ => Cause::Other,
        }
    }
}

/// How one car's race ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Classified at the flag (laps down included).
    Finished,
    /// Never took the start (did not start, withdrew, did not qualify).
    NotStarted,
    /// Out on this lap (the one after its last completed lap), with the status' text.
    Retired { lap: u16, status: String },
}

/// One row of the results table.
#[derive(Clone, Debug)]
struct ResultRow {
    race: u32,
    driver: u32,
    laps: u16,
    status: u32,
}

/// The history's tables, as far as these models need them.
pub struct History {
    /// Race id: year and date (YYYY-MM-DD).
    races: HashMap<u32, (u16, String)>,
    results: Vec<ResultRow>,
    status: HashMap<u32, String>,
    /// Driver id: three-letter code.
    codes: HashMap<u32, String>,
}

impl History {
    pub fn load(dir: &Path) -> Result<History, InputError> {
        let num = |b: &[u8]| std::str::from_utf8(b).ok()?.trim().parse::<u32>().ok();
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        let mut races = HashMap::new();
        read_table(&dir.join("races.csv"), &["raceId", "year", "date"], |f| {
            if let (Some(id), Some(year)) = (num(f[0]), num(f[1])) {
                races.insert(id, (year as u16, text(f[2])));
            }
        })?;
        let mut results = Vec::new();
        read_table(
            &dir.join("results.csv"),
            &["raceId", "driverId", "laps", "statusId"],
            |f| {
                if let (Some(race), Some(driver), Some(laps), Some(status)) =
                    (num(f[0]), num(f[1]), num(f[2]), num(f[3]))
                {
                    results.push(ResultRow {
                        race,
                        driver,
                        laps: laps.min(u16::MAX as u32) as u16,
                        status,
                    });
                }
            },
        )?;
        let mut status = HashMap::new();
        read_table(&dir.join("status.csv"), &["statusId", "status"], |f| {
            if let Some(id) = num(f[0]) {
                status.insert(id, text(f[1]));
            }
        })?;
        let mut codes = HashMap::new();
        read_table(&dir.join("drivers.csv"), &["driverId", "code"], |f| {
            if let Some(id) = num(f[0]) {
                codes.insert(id, text(f[1]));
            }
        })?;
        if results.is_empty() || races.is_empty() {
            return Err(InputError::new(format!(
                "{}: no races or results in the history",
                dir.display()
            )));
        }
        Ok(History {
            races,
            results,
            status,
            codes,
        })
    }

    fn ending(&self, r: &ResultRow) -> Ending {
        let status = self.status.get(&r.status).map_or("", String::as_str);
        if status == "Finished" || status.starts_with('+') || status == "Disqualified" {
            return Ending::Finished;
        }
        let never = [
            "Did not start",
            "Withdrew",
            "Did not qualify",
            "Did not prequalify",
            "Not classified",
            "Excluded",
            "107% Rule",
        ];
        if r.laps == 0 && never.contains(&status) {
            return Ending::NotStarted;
        }
        Ending::Retired {
            lap: r.laps.saturating_add(1),
            status: status.to_string(),
        }
    }

    /// Per-lap hazards of the two causes over the races of `years`: on each lap, the cars
    /// that ended by the cause on it over the cars that ran it.
    pub fn hazards(&self, years: RangeInclusive<u16>) -> Hazards {
        // Per bucket (lap 1, laps 2-3, later): car-laps run, crashes, tyre failures.
        let mut run = [0u64; 3];
        let mut crash = [0u64; 3];
        let mut tyre = [0u64; 3];
        let bucket = |lap: u16| match lap {
            0 | 1 => 0,
            2 | 3 => 1,
            _ => 2,
        };
        for r in &self.results {
            if !self
                .races
                .get(&r.race)
                .is_some_and(|(y, _)| years.contains(y))
            {
                continue;
            }
            let (last, ended) = match self.ending(r) {
                Ending::NotStarted => continue,
                Ending::Finished => (r.laps, None),
                Ending::Retired { lap, status } => (lap, Some((lap, Cause::of(&status)))),
            };
            for lap in 1..=last {
                run[bucket(lap)] += 1;
            }
            match ended {
                Some((lap, Cause::Crash)) => crash[bucket(lap)] += 1,
                Some((lap, Cause::Tyre)) => tyre[bucket(lap)] += 1,
                _ => {}
            }
        }
        let rate = |n: [u64; 3]| {
            let r = |i: usize| n[i] as f64 / run[i].max(1) as f64;
            LapHazard {
                lap_1: r(0),
                laps_2_3: r(1),
                later: r(2),
            }
        };
        Hazards {
            counted_from: format!(
                "results of every race {}-{} (../shared/data/history)",
                years.start(),
                years.end()
            ),
            car_laps: run.iter().sum(),
            crash: rate(crash),
            tyre: rate(tyre),
        }
    }

    /// How each car's race ended in the race held on `date` (YYYY-MM-DD), by driver code;
    /// `None` when the history has no race that day.
    pub fn endings_on(&self, date: &str) -> Option<BTreeMap<DriverId, Ending>> {
        let race = self
            .races
            .iter()
            .find(|(_, (_, d))| d == date)
            .map(|(id, _)| *id)?;
        Some(
            self.results
                .iter()
                .filter(|r| r.race == race)
                .filter_map(|r| {
                    let code = self.codes.get(&r.driver)?;
                    Some((DriverId::new(code).ok()?, self.ending(r)))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_named_by_the_status_text() {
        assert_eq!(Cause::of("Collision"), Cause::Crash);
        assert_eq!(Cause::of("Accident"), Cause::Crash);
        assert_eq!(Cause::of("Puncture"), Cause::Tyre);
        assert_eq!(Cause::of("Gearbox"), Cause::Other);
        assert_eq!(Cause::of("Wheel nut"), Cause::Other);
    }
}
