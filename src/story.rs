//! The race as a run tells it first: who won, the pit stops, the safety cars and red flags,
//! the retirements and the cars that lost health, each with its lap and driver. Made from the
//! race views' final rows (`RaceBook`); in `summary.json` (`race`) and at the head of the
//! end-of-run summary.

use pitwall_dataflows::race::{FieldState, RaceBook};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RaceStory {
    /// Laps the leader completed (0: no lap was seen, e.g. too short an input).
    pub laps: u16,
    /// Every car as the race stands at the end: most laps first, then who completed its last
    /// lap first.
    pub classification: Vec<Classified>,
    pub pit_stops: Vec<StoryEvent>,
    /// Runs of laps the field ran neutralised (safety car, VSC) or under a red flag.
    pub neutralised: Vec<Period>,
    pub retirements: Vec<StoryEvent>,
    /// Retirements raised and taken back: the car drove off again (a stall, or a car that
    /// stood until it could go on).
    #[serde(default)]
    pub retirements_taken_back: Vec<StoryEvent>,
    pub car_health: Vec<StoryEvent>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Classified {
    pub position: u16,
    pub driver: String,
    pub laps: u16,
}

/// Something that happened to one car on one lap.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoryEvent {
    pub driver: String,
    pub lap: u16,
    pub what: String,
}

/// Laps `from..=to` (by the leader's lap count) in one field state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Period {
    pub state: String,
    pub from: u16,
    pub to: u16,
}

impl RaceStory {
    pub fn of(race: &RaceBook) -> RaceStory {
        let standings = race.standings();
        let classification: Vec<Classified> = standings
            .iter()
            .enumerate()
            .map(|(i, r)| Classified {
                position: i as u16 + 1,
                driver: r.lap.done.driver.to_string(),
                laps: r.lap.done.lap,
            })
            .collect();
        let mut pit_stops: Vec<StoryEvent> = race
            .pit_stops()
            .map(|p| StoryEvent {
                driver: p.stop.driver.to_string(),
                lap: p.stop.lap,
                what: format!(
                    "{:.1} s stationary{}",
                    p.stop.stationary_ms as f64 / 1000.0,
                    match p.field_state {
                        FieldState::Neutralised => ", neutralised",
                        FieldState::Red => ", red flag",
                        _ => "",
                    }
                ),
            })
            .collect();
        pit_stops.sort_by(|a, b| (a.lap, &a.driver).cmp(&(b.lap, &b.driver)));
        let mut retirements: Vec<StoryEvent> = race
            .retirements()
            .map(|r| StoryEvent {
                driver: r.driver.to_string(),
                lap: r.lap,
                what: match (r.engine_off, r.in_pit_lane) {
                    (true, true) => "engine off in the pit lane",
                    (true, false) => "engine off on track",
                    (false, true) => "stood in the pit lane",
                    (false, false) => "stood on track",
                }
                .to_string(),
            })
            .collect();
        retirements.sort_by(|a, b| (a.lap, &a.driver).cmp(&(b.lap, &b.driver)));
        let mut retirements_taken_back: Vec<StoryEvent> = race
            .retirements_taken_back()
            .map(|r| StoryEvent {
                driver: r.driver.to_string(),
                lap: r.lap,
                what: "drove off again".to_string(),
            })
            .collect();
        retirements_taken_back.sort_by(|a, b| (a.lap, &a.driver).cmp(&(b.lap, &b.driver)));
        let mut car_health: Vec<StoryEvent> = race
            .car_health()
            .map(|h| {
                let mut what = Vec::new();
                if let Some((usual, reached)) = h.gear_lost {
                    what.push(format!("top gear {reached} instead of {usual}"));
                }
                if h.top_speed_delta_kmh != 0 {
                    what.push(format!("top speed {:+} km/h", h.top_speed_delta_kmh));
                }
                if h.rpm_delta != 0 {
                    what.push(format!("rpm ceiling {:+}", h.rpm_delta));
                }
                StoryEvent {
                    driver: h.driver.to_string(),
                    lap: h.lap,
                    what: what.join(", "),
                }
            })
            .collect();
        car_health.sort_by(|a, b| (a.lap, &a.driver).cmp(&(b.lap, &b.driver)));
        RaceStory {
            laps: classification.first().map_or(0, |c| c.laps),
            classification,
            pit_stops,
            neutralised: periods(race),
            retirements,
            retirements_taken_back,
            car_health,
        }
    }

    /// The story's lines for the end-of-run summary (empty when no lap was seen).
    pub fn lines(&self) -> String {
        let mut out = String::new();
        if self.laps == 0 {
            return out;
        }
        let podium: Vec<String> = self
            .classification
            .iter()
            .take(3)
            .map(|c| format!("{} {}", ordinal(c.position), c.driver))
            .collect();
        let _ = writeln!(out, "  race: {} laps; {}", self.laps, podium.join(", "));
        let _ = writeln!(out, "  pit stops: {}", self.pit_stops.len());
        let mut by_driver: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for s in &self.pit_stops {
            by_driver.entry(&s.driver).or_default().push(s.lap);
        }
        let cells: Vec<String> = by_driver
            .iter()
            .map(|(d, laps)| {
                let laps: Vec<String> = laps.iter().map(u16::to_string).collect();
                format!("{d} lap {}", laps.join(", "))
            })
            .collect();
        for row in cells.chunks(5) {
            let _ = writeln!(out, "    {}", row.join(" · "));
        }
        let periods: Vec<String> = self
            .neutralised
            .iter()
            .map(|p| match p.from == p.to {
                true => format!("lap {} {}", p.from, p.state),
                false => format!("laps {}-{} {}", p.from, p.to, p.state),
            })
            .collect();
        let _ = writeln!(
            out,
            "  safety car, VSC, red flag: {}",
            if periods.is_empty() {
                "none".to_string()
            } else {
                periods.join(" · ")
            }
        );
        // (title, events, printed when there are none)
        for (title, events, always) in [
            ("retirements", &self.retirements, true),
            (
                "retirements taken back",
                &self.retirements_taken_back,
                false,
            ),
            ("car health", &self.car_health, true),
        ] {
            if events.is_empty() && !always {
                continue;
            }
            let _ = writeln!(out, "  {title}: {}", events.len());
            for e in events {
                let _ = writeln!(out, "    lap {:>3}  {:<6} {}", e.lap, e.driver, e.what);
            }
        }
        out
    }
}

fn ordinal(n: u16) -> String {
    match n {
        1 => "winner".into(),
        2 => "2nd".into(),
        3 => "3rd".into(),
        n => format!("{n}th"),
    }
}

/// Runs of lap numbers whose rows mostly say neutralised or red.
fn periods(race: &RaceBook) -> Vec<Period> {
    // Per lap number, how many rows said each state.
    let mut states: BTreeMap<u16, BTreeMap<FieldState, u32>> = BTreeMap::new();
    for r in race.laps() {
        *states
            .entry(r.lap.done.lap)
            .or_default()
            .entry(r.field.state)
            .or_default() += 1;
    }
    let mut out: Vec<Period> = Vec::new();
    for (lap, counts) in states {
        let Some((&state, _)) = counts.iter().max_by_key(|(s, n)| (**n, **s)) else {
            continue;
        };
        if !matches!(state, FieldState::Neutralised | FieldState::Red) {
            continue;
        }
        match out.last_mut() {
            Some(p) if p.state == state.as_str() && p.to + 1 == lap => p.to = lap,
            _ => out.push(Period {
                state: state.as_str().to_string(),
                from: lap,
                to: lap,
            }),
        }
    }
    out
}
