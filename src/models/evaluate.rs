//! `pitwall evaluate --out DIR --laps LAPS.csv`: a run's laps, pit stops, predictions and
//! alerts against FastF1's laps table (and track status, when it is beside it), so that anyone
//! can check pitwall on a race they have.

use super::history::{Cause, Ending};
use super::model_file::ModelFile;
use super::scores::{auc, brier, brier_skill, ece, reliability, Bin};
use super::train::HORIZON_LAPS;
use super::truth::{StatusPeriod, Truth, TruthLap};
use crate::format::race::{LapMessage, PitStopMessage, PredictionMessage};
use crate::ingest::InputError;
use pitwall_dataflows::DriverId;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// What `evaluate` reads of `alerts.jsonl`.
#[derive(Debug, Deserialize)]
pub struct AlertLine {
    pub alert_type: String,
    pub driver_id: String,
    pub lap: Option<u16>,
    #[serde(default)]
    pub description: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// One run's outputs, read back from its `--out` folder.
pub struct RunFiles {
    pub laps: Vec<LapMessage>,
    pub stops: Vec<PitStopMessage>,
    /// The predictions as they stand at the end (corrected after the fact).
    pub predictions: Vec<PredictionMessage>,
    /// Each prediction as first emitted at its lap's end (`predictions_first.jsonl`; empty
    /// for a run that did not write it).
    pub first_predictions: Vec<PredictionMessage>,
    /// Each lap row as first written at its lap's end (`laps_first.jsonl`; empty for a run that
    /// did not write it).
    pub first_laps: Vec<LapMessage>,
    pub alerts: Vec<AlertLine>,
}

fn read_jsonl<T: DeserializeOwned>(path: &Path, required: bool) -> Result<Vec<T>, InputError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(InputError::new(format!("{}: {e}", path.display()))),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| InputError::new(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

impl RunFiles {
    /// The day (UTC, YYYY-MM-DD) the run's race was held: its first lap's start.
    pub fn race_date(&self) -> Option<String> {
        let start = self.laps.iter().map(|l| l.lap_start_ms).min()?;
        let t = crate::format::timefmt::format_utc_ms(start);
        t.get(..10).map(str::to_string)
    }

    pub fn read(dir: &Path) -> Result<RunFiles, InputError> {
        Ok(RunFiles {
            laps: read_jsonl(&dir.join("laps.jsonl"), true)?,
            stops: read_jsonl(&dir.join("pit_stops.jsonl"), true)?,
            predictions: read_jsonl(&dir.join("predictions.jsonl"), true)?,
            first_predictions: read_jsonl(&dir.join("predictions_first.jsonl"), false)?,
            first_laps: read_jsonl(&dir.join("laps_first.jsonl"), false)?,
            alerts: read_jsonl(&dir.join("alerts.jsonl"), false)?,
        })
    }

    /// The predictions to score: as first emitted when the run kept them, else as they stand,
    /// with a word for which.
    pub fn scored_predictions(&self) -> (&[PredictionMessage], &'static str) {
        if self.first_predictions.is_empty() {
            (&self.predictions, "as they stand at the end")
        } else {
            (&self.first_predictions, "as first emitted")
        }
    }
}

/// The figures `evaluate` prints, for tests and the README.
#[derive(Debug, Default, Clone)]
pub struct Evaluation {
    pub stops_true: usize,
    pub stops_found: usize,
    pub stops_matched: usize,
    pub stop_precision: f64,
    pub stop_recall: f64,
    pub positions_compared: usize,
    pub positions_equal: usize,
    pub position_agreement: f64,
    pub pit_auc: Option<f64>,
    pub pit_brier: f64,
    pub age_auc: Option<f64>,
    pub age_brier: f64,
    pub base_rate_brier: f64,
    pub pit_brier_skill: f64,
    /// Expected calibration error of pit_stop_probability (10 bins).
    pub pit_ece: f64,
    /// Pit predictions whose probability changed after they were first emitted.
    pub pit_rows_corrected: usize,
    /// crash_risk and tire_failure against how each car's race ended (with the history).
    pub crash: Option<RareScore>,
    pub tyre: Option<RareScore>,
    /// Real stops whose rejoin was projected (on the lap before the in-lap), and how many
    /// projections were within one place of the position after the out-lap, and exact.
    pub rejoin_scored: usize,
    pub rejoin_within_one: usize,
    pub rejoin_exact: usize,
    /// The same projections as first written at their lap's end (`laps_first.jsonl`; 0 for a
    /// run that did not write it): within one place, exact.
    pub rejoin_first_within_one: usize,
    pub rejoin_first_exact: usize,
    /// The settled projections measured in hindsight, without the cars they counted as passing
    /// that stopped on the in-lap or the out-lap themselves (which no projection can know):
    /// within one place, exact. What is left is the loss and the crossing times.
    pub rejoin_hindsight_within_one: usize,
    pub rejoin_hindsight_exact: usize,
    /// Undercut attempts under green, how many took the place, how many the run had within
    /// reach on the lap before, and of them how many took it.
    pub undercut: UndercutScore,
    /// (period name, start lap, end lap, found).
    pub periods: Vec<(String, u16, u16, bool)>,
    /// Driver-laps run wholly under a safety car, VSC or red flag, and how many of them the run
    /// judged neutralised (or red): recall. Driver-laps the run judged so, and how many of
    /// them saw a neutralisation at all: precision.
    pub neutral: StateScore,
    /// The same as each lap row was first written (`laps_first.jsonl`).
    pub neutral_first: Option<StateScore>,
    /// Driver-laps on a wet track (a lap number most of the field ran on intermediate or wet
    /// tyres), and how many of them the run judged rain: recall. Driver-laps the run judged
    /// rain, and how many of them were on a wet track or saw rainfall (the weather table):
    /// precision. None without tyres or rainfall in the tables.
    pub rain: Option<StateScore>,
    /// The same as each lap row was first written.
    pub rain_first: Option<StateScore>,
    /// Incidents of the truth (simulated races) and those the run raised within
    /// [`INCIDENT_LAPS`] laps, by the same driver and alert type.
    pub incidents_true: usize,
    pub incidents_raised: usize,
    pub report: String,
}

/// A field state against the truth, by driver-laps: those that should be found and those
/// found; those judged so and those rightly.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StateScore {
    pub truth: usize,
    pub found: usize,
    pub judged: usize,
    pub right: usize,
}

impl StateScore {
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.truth)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.right, self.judged)
    }
}

/// The undercut view against the real attempts (`undercut`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UndercutScore {
    pub attempts: usize,
    pub succeeded: usize,
    pub in_reach: usize,
    pub in_reach_succeeded: usize,
}

/// An undercut attempt: the car behind stops this many laps or fewer before the car ahead.
const UNDERCUT_LAPS: u16 = 3;
/// ... from at most this far behind at the line (ms).
const UNDERCUT_GAP_MS: i64 = 10_000;

/// A rare event's prediction against what happened.
#[derive(Debug, Default, Clone)]
pub struct RareScore {
    pub rows: usize,
    pub events: usize,
    pub mean_probability: f64,
    /// The mean of the base rates the predictions carried (the history's at their laps).
    pub mean_base: f64,
    pub brier: f64,
    pub base_brier: f64,
    pub skill: f64,
    pub auc: Option<f64>,
}

/// An incident counts as raised when its alert names a lap at most this many laps after its own.
pub const INCIDENT_LAPS: u16 = 2;

fn driver(s: &str) -> Option<DriverId> {
    DriverId::new(s).ok()
}

/// Scores a run's files against the laps and track-status tables, section by section.
/// `endings`: how each car's race ended, from the history (crash_risk and tire_failure are
/// scored against it when given).
pub fn evaluate(
    run: &RunFiles,
    truth: &Truth,
    status: &[StatusPeriod],
    model: &ModelFile,
    endings: Option<&BTreeMap<DriverId, Ending>>,
) -> Evaluation {
    let mut e = Evaluation::default();
    let mut out = String::new();
    let ours_pos = laps_of(&run.laps);
    let first_pos = laps_of(&run.first_laps);
    let retired = truth.retirements(3);
    pit_stops(&mut e, &mut out, run, truth);
    positions(&mut e, &mut out, run, truth, &ours_pos);
    rejoin(&mut e, &mut out, truth, status, &ours_pos, &first_pos);
    undercut(&mut e, &mut out, truth, status, &ours_pos);
    pit_probability(&mut e, &mut out, run, truth, model, &ours_pos);
    match endings {
        Some(endings) => {
            e.crash = Some(rare_event(
                &mut out,
                run,
                endings,
                "crash_risk",
                Cause::Crash,
            ));
            e.tyre = Some(rare_event(
                &mut out,
                run,
                endings,
                "tire_failure",
                Cause::Tyre,
            ));
        }
        None => {
            let _ = writeln!(
                out,
                "crash_risk, tire_failure: not scored (no results for this race in the history)"
            );
        }
    }
    field_state(&mut e, &mut out, run, truth, status);
    incidents(&mut e, &mut out, run, truth);
    alert_budget(&mut out, run, truth, &retired);
    e.report = out;
    e
}

type LapsOf<'a> = HashMap<(DriverId, u16), &'a LapMessage>;

/// A run's lap rows by driver and lap.
fn laps_of(rows: &[LapMessage]) -> LapsOf<'_> {
    rows.iter()
        .filter_map(|l| Some(((driver(&l.driver_id)?, l.lap), l)))
        .collect()
}

fn fmt_auc(a: Option<f64>) -> String {
    a.map_or("n/a".to_string(), |a| format!("{a:.3}"))
}

/// Pit stops: in-laps found against the laps table's.
fn pit_stops(e: &mut Evaluation, out: &mut String, run: &RunFiles, truth: &Truth) {
    let ours: BTreeSet<(DriverId, u16)> = run
        .stops
        .iter()
        .filter_map(|s| Some((driver(&s.driver_id)?, s.lap)))
        .collect();
    let real = truth.stops();
    e.stops_true = real.len();
    e.stops_found = ours.len();
    e.stops_matched = ours.iter().filter(|k| real.contains(k)).count();
    e.stop_precision = ratio(e.stops_matched, e.stops_found);
    e.stop_recall = ratio(e.stops_matched, e.stops_true);
    let _ = writeln!(
        out,
        "pit stops     {} real, {} found, {} matched: precision {:.3}, recall {:.3}",
        e.stops_true, e.stops_found, e.stops_matched, e.stop_precision, e.stop_recall
    );
    let mut missed: Vec<String> = real
        .iter()
        .filter(|k| !ours.contains(k))
        .map(|(d, l)| format!("{d} lap {l}"))
        .collect();
    missed.sort();
    let extra: Vec<String> = ours
        .iter()
        .filter(|k| !real.contains(k))
        .map(|(d, l)| format!("{d} lap {l}"))
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(out, "  missed: {}", missed.join(", "));
    }
    if !extra.is_empty() {
        let _ = writeln!(out, "  not in the laps table: {}", extra.join(", "));
    }
}

/// Positions at the end of each lap.
fn positions(
    e: &mut Evaluation,
    out: &mut String,
    run: &RunFiles,
    truth: &Truth,
    ours_pos: &LapsOf,
) {
    for t in &truth.laps {
        let Some(p) = t.position else { continue };
        e.positions_compared += 1;
        if ours_pos
            .get(&(t.driver, t.lap))
            .is_some_and(|l| l.position == p)
        {
            e.positions_equal += 1;
        }
    }
    e.position_agreement = ratio(e.positions_equal, e.positions_compared);
    let _ = writeln!(
        out,
        "positions     {} of {} driver-laps equal to the laps table ({:.1} %); {} laps found, {} in the table",
        e.positions_equal,
        e.positions_compared,
        e.position_agreement * 100.0,
        run.laps.len(),
        truth.laps.len()
    );
}

/// pit_stop_probability against what happened in the next laps, with the baselines: as each
/// prediction was first emitted (what a pit wall read), and apart, as corrected after the fact.
fn pit_probability(
    e: &mut Evaluation,
    out: &mut String,
    run: &RunFiles,
    truth: &Truth,
    model: &ModelFile,
    ours_pos: &LapsOf,
) {
    let (scored, how) = run.scored_predictions();
    let (p_model, p_age, labels) = pit_rows(scored, truth, model, ours_pos);
    let base = vec![model.baseline.base_rate; labels.len()];
    e.pit_auc = auc(&p_model, &labels);
    e.pit_brier = brier(&p_model, &labels);
    e.age_auc = auc(&p_age, &labels);
    e.age_brier = brier(&p_age, &labels);
    e.base_rate_brier = brier(&base, &labels);
    e.pit_brier_skill = brier_skill(e.pit_brier, e.base_rate_brier);
    let table = reliability(&p_model, &labels, 10);
    e.pit_ece = ece(&table);
    let _ = writeln!(
        out,
        "pit_stop_probability {how} ({} driver-laps, {} before a stop within {HORIZON_LAPS} laps):",
        labels.len(),
        labels.iter().filter(|&&y| y).count()
    );
    let _ = writeln!(
        out,
        "  model        AUC {}  Brier {:.4}  skill vs base rate {:+.3}",
        fmt_auc(e.pit_auc),
        e.pit_brier,
        e.pit_brier_skill
    );
    let _ = writeln!(
        out,
        "  tyre age     AUC {}  Brier {:.4}  skill vs base rate {:+.3}",
        fmt_auc(e.age_auc),
        e.age_brier,
        brier_skill(e.age_brier, e.base_rate_brier)
    );
    let _ = writeln!(
        out,
        "  base rate    AUC 0.500  Brier {:.4}  (rate {:.3} from training)",
        e.base_rate_brier, model.baseline.base_rate
    );
    let _ = writeln!(out, "  calibration error (ECE, 10 bins) {:.3}", e.pit_ece);
    write_reliability(out, &table);
    if !run.first_predictions.is_empty() {
        let key = |p: &&PredictionMessage| (p.driver_id.clone(), p.lap, p.model_type.clone());
        let first: HashMap<_, f64> = run
            .first_predictions
            .iter()
            .map(|p| (key(&p), p.prediction.probability))
            .collect();
        e.pit_rows_corrected = run
            .predictions
            .iter()
            .filter(|p| p.model_type == "pit_stop_probability")
            .filter(|p| first.get(&key(p)) != Some(&p.prediction.probability))
            .count();
        let (p_final, _, labels) = pit_rows(&run.predictions, truth, model, ours_pos);
        let table = reliability(&p_final, &labels, 10);
        let _ = writeln!(
            out,
            "  as corrected after the fact ({} rows changed): AUC {}  Brier {:.4}  skill vs base rate {:+.3}  ECE {:.3}",
            e.pit_rows_corrected,
            fmt_auc(auc(&p_final, &labels)),
            brier(&p_final, &labels),
            brier_skill(brier(&p_final, &labels), e.base_rate_brier),
            ece(&table)
        );
    }
}

/// The pit predictions among `predictions` with a lap row: the model's probability, the tyre
/// age baseline's, and whether an in-lap came within the horizon.
fn pit_rows(
    predictions: &[PredictionMessage],
    truth: &Truth,
    model: &ModelFile,
    ours_pos: &LapsOf,
) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let (mut p_model, mut p_age, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for p in predictions
        .iter()
        .filter(|p| p.model_type == "pit_stop_probability")
    {
        let Some(d) = driver(&p.driver_id) else {
            continue;
        };
        let Some(lap) = ours_pos.get(&(d, p.lap)) else {
            continue;
        };
        p_model.push(p.prediction.probability);
        p_age.push(
            model
                .baseline
                .tyre_age
                .probability(lap.tyre_age_laps as f64),
        );
        labels.push(truth.stop_within(d, p.lap, HORIZON_LAPS));
    }
    (p_model, p_age, labels)
}

/// The rejoin projection: for each real stop, the position projected on the lap before its
/// in-lap ("if he pits next lap") against the laps table's position after the out-lap. A
/// passage into the pit lane under a red flag (its in-lap touches one) is not a stop that
/// costs places: the field queues there and restarts in order; those are counted apart.
fn rejoin(
    e: &mut Evaluation,
    out: &mut String,
    truth: &Truth,
    status: &[StatusPeriod],
    ours_pos: &LapsOf,
    first_pos: &LapsOf,
) {
    let real = truth.positions();
    let under_red = laps_touching(truth, status, |code| code == 5);
    // In-laps run partly or wholly under a SC/VSC: the pit wall knows the track status when it
    // calls the stop, and can read the projection for a stop under one.
    let neutralised = laps_touching(truth, status, |code| matches!(code, 4 | 6 | 7));
    let mut red_stops = 0;
    // Settled, as first written, and the stops made under a SC/VSC read with the projection
    // for a stop under one.
    let (mut settled, mut first_written, mut under_sc, mut hindsight) = (
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
    );
    let mut stops: Vec<&(DriverId, u16)> = truth.stops().iter().collect();
    stops.sort();
    for &&(d, in_lap) in &stops {
        if under_red.contains(&(d, in_lap)) {
            red_stops += 1;
            continue;
        }
        let (Some(ours), Some(&after)) = (
            ours_pos.get(&(d, in_lap.saturating_sub(1))),
            real.get(&(d, in_lap + 1)),
        ) else {
            continue;
        };
        let miss = |said: u16| format!("{d} lap {in_lap}: P{said}, real P{after}");
        let projected = ours.rejoin_position_if_pit;
        settled.score(projected, after, || {
            format!("{} ({})", miss(projected), ours.field_state)
        });
        // The cars counted as passing (crossed within the loss behind) that stopped themselves
        // on the car's in-lap or out-lap.
        let stopped_too = ours_pos
            .iter()
            .filter(|(&(e, lap), r)| {
                lap == ours.lap
                    && e != d
                    && r.lap_end_ms > ours.lap_end_ms
                    && r.lap_end_ms < ours.lap_end_ms + ours.pit_loss_ms
                    && (in_lap..=in_lap + 1).any(|n| truth.stops().contains(&(e, n)))
            })
            .count();
        let known = projected.saturating_sub(stopped_too as u16).max(1);
        hindsight.score(known, after, String::new);
        if let Some(first) = first_pos.get(&(d, in_lap.saturating_sub(1))) {
            let said = first.rejoin_position_if_pit;
            first_written.score(said, after, || miss(said));
        }
        // A run written before the rows carried it has none (0).
        let sc = ours.rejoin_position_if_pit_neutralised;
        if neutralised.contains(&(d, in_lap)) && sc > 0 {
            under_sc.score(sc, after, String::new);
        }
    }
    e.rejoin_scored = settled.scored;
    e.rejoin_within_one = settled.within_one;
    e.rejoin_exact = settled.exact;
    e.rejoin_first_within_one = first_written.within_one;
    e.rejoin_first_exact = first_written.exact;
    e.rejoin_hindsight_within_one = hindsight.within_one;
    e.rejoin_hindsight_exact = hindsight.exact;
    let share = |n: usize| 100.0 * n as f64 / settled.scored.max(1) as f64;
    let _ = writeln!(
        out,
        "rejoin        {} stops: within one place of the position after the out-lap {:.1} %, exact {:.1} %",
        settled.scored,
        share(settled.within_one),
        share(settled.exact)
    );
    if !first_pos.is_empty() {
        let _ = writeln!(
            out,
            "  as first written, when the car crossed and the cars behind it had not: within one {:.1} %, exact {:.1} %",
            share(first_written.within_one),
            share(first_written.exact)
        );
    }
    let _ = writeln!(
        out,
        "  in hindsight, without the cars counted as passing that stopped on the in-lap or the out-lap themselves: within one {:.1} %, exact {:.1} %",
        share(hindsight.within_one),
        share(hindsight.exact)
    );
    if under_sc.scored > 0 {
        let _ = writeln!(
            out,
            "  the {} stops made under a SC/VSC, read with the projection for a stop under one: within one {}, exact {}",
            under_sc.scored, under_sc.within_one, under_sc.exact
        );
    }
    if red_stops > 0 {
        let _ = writeln!(
            out,
            "  {red_stops} passages into the pit lane under a red flag not scored (the field queues and restarts in order)"
        );
    }
    for (tally, what) in [(&settled, ""), (&first_written, " as first written")] {
        if !tally.misses.is_empty() {
            let _ = writeln!(out, "  off by more{what}: {}", tally.misses.join("; "));
        }
    }
}

/// Rejoin projections against the real positions: how many, within one place, exact, and
/// the misses described.
#[derive(Default)]
struct Tally {
    scored: usize,
    within_one: usize,
    exact: usize,
    misses: Vec<String>,
}

impl Tally {
    fn score(&mut self, said: u16, after: u16, miss: impl FnOnce() -> String) {
        self.scored += 1;
        self.exact += (said == after) as usize;
        if said.abs_diff(after) <= 1 {
            self.within_one += 1;
        } else {
            self.misses.push(miss());
        }
    }
}

/// The undercut view against the real attempts: a car at most `UNDERCUT_GAP_MS` behind the car
/// ahead at the end of lap `n` (the run's rows say who and how far) stops on lap `n + 1`, the
/// car ahead on one of the `UNDERCUT_LAPS` laps after, all under green (the track status); it
/// took the place when it is ahead after the car ahead's out-lap (the laps table). The view had
/// it within reach when the row of lap `n` said so (`undercut_on`).
fn undercut(
    e: &mut Evaluation,
    out: &mut String,
    truth: &Truth,
    status: &[StatusPeriod],
    ours_pos: &LapsOf,
) {
    let real = truth.positions();
    // SC (4), red flag (5), VSC (6) and its ending (7).
    let not_green = laps_touching(truth, status, |code| (4..=7).contains(&code));
    let stops = truth.stops();
    let mut score = UndercutScore::default();
    let mut taken = Vec::new();
    let mut sorted: Vec<&(DriverId, u16)> = stops.iter().collect();
    sorted.sort();
    for &&(behind, in_lap) in &sorted {
        let n = in_lap.saturating_sub(1);
        let Some(row) = ours_pos.get(&(behind, n)) else {
            continue;
        };
        let Some(ahead) = row.ahead.as_deref().and_then(driver) else {
            continue;
        };
        if row.interval_ms > UNDERCUT_GAP_MS || stops.contains(&(ahead, in_lap)) {
            continue;
        }
        let Some(ahead_in) =
            (in_lap + 1..=in_lap + UNDERCUT_LAPS).find(|l| stops.contains(&(ahead, *l)))
        else {
            continue;
        };
        let green = (n..=ahead_in + 1)
            .all(|l| !not_green.contains(&(behind, l)) && !not_green.contains(&(ahead, l)));
        let (Some(b), Some(a)) = (
            real.get(&(behind, ahead_in + 1)),
            real.get(&(ahead, ahead_in + 1)),
        ) else {
            continue;
        };
        if !green {
            continue;
        }
        let took = b < a;
        let flagged = row.undercut_on.as_deref().and_then(driver) == Some(ahead);
        score.attempts += 1;
        score.succeeded += took as usize;
        score.in_reach += flagged as usize;
        score.in_reach_succeeded += (flagged && took) as usize;
        if took || flagged {
            taken.push(format!(
                "{behind} on {ahead} lap {in_lap}: {}, {}",
                if took { "took the place" } else { "did not" },
                if flagged {
                    "within reach"
                } else {
                    "not within reach"
                }
            ));
        }
    }
    e.undercut = score;
    let _ = writeln!(
        out,
        "undercut      {} attempts under green (within {} s, {}-{} laps before the car ahead): {} took the place; within reach on the lap before {}, of them {} took it",
        score.attempts,
        UNDERCUT_GAP_MS / 1000,
        1,
        UNDERCUT_LAPS,
        score.succeeded,
        score.in_reach,
        score.in_reach_succeeded
    );
    if !taken.is_empty() {
        let _ = writeln!(out, "  {}", taken.join("; "));
    }
}

/// The laps of the laps table that touch a track-status period whose code `of` picks.
fn laps_touching(
    truth: &Truth,
    status: &[StatusPeriod],
    of: impl Fn(u8) -> bool,
) -> BTreeSet<(DriverId, u16)> {
    truth
        .laps
        .iter()
        .filter(|l| {
            let (Some(from), Some(to)) = (l.start_ms, l.end_ms) else {
                return false;
            };
            status
                .iter()
                .any(|p| of(p.status) && p.start_ms < to && p.end_ms > from)
        })
        .map(|l| (l.driver, l.lap))
        .collect()
}

/// Each lap row's field state, by driver and lap.
fn states_by_lap(laps: &[LapMessage]) -> HashMap<(DriverId, u16), &str> {
    laps.iter()
        .filter_map(|l| Some(((driver(&l.driver_id)?, l.lap), l.field_state.as_str())))
        .collect()
}

/// A reliability table, one line a bin.
fn write_reliability(out: &mut String, table: &[Bin]) {
    let _ = writeln!(out, "  reliability   probability     n   mean p  observed");
    for b in table {
        let _ = writeln!(
            out,
            "                {:.1}-{:.1}   {:>6}   {:.4}   {:.4}",
            b.lo, b.hi, b.n, b.mean_probability, b.observed
        );
    }
}

/// crash_risk or tire_failure: that the car's race ends by `cause` within the horizon, against
/// how each race ended (the predictions as the run's files hold them at its end).
fn rare_event(
    out: &mut String,
    run: &RunFiles,
    endings: &BTreeMap<DriverId, Ending>,
    model: &str,
    cause: Cause,
) -> RareScore {
    let mut p = Vec::new();
    let mut base = Vec::new();
    let mut labels = Vec::new();
    let (scored, how) = run.scored_predictions();
    for m in scored.iter().filter(|p| p.model_type == model) {
        let Some(d) = driver(&m.driver_id) else {
            continue;
        };
        let event = match endings.get(&d) {
            Some(Ending::Retired { lap, status }) => {
                Cause::of(status) == cause && *lap > m.lap && *lap <= m.lap + HORIZON_LAPS
            }
            _ => false,
        };
        p.push(m.prediction.probability);
        base.push(m.prediction.base_rate);
        labels.push(event);
    }
    let n = p.len().max(1) as f64;
    let (brier_p, brier_base) = (brier(&p, &labels), brier(&base, &labels));
    let s = RareScore {
        rows: p.len(),
        events: labels.iter().filter(|&&y| y).count(),
        mean_probability: p.iter().sum::<f64>() / n,
        mean_base: base.iter().sum::<f64>() / n,
        brier: brier_p,
        base_brier: brier_base,
        skill: brier_skill(brier_p, brier_base),
        auc: auc(&p, &labels),
    };
    let _ = writeln!(
        out,
        "{model} {how} ({} driver-laps, {} before the race ended by it within {HORIZON_LAPS} laps):",
        s.rows, s.events
    );
    let _ = writeln!(
        out,
        "  mean {:.5} against the history's base rate {:.5} ({:.2}x); AUC {}  Brier {:.6}  skill vs base rate {:+.4}",
        s.mean_probability,
        s.mean_base,
        s.mean_probability / s.mean_base.max(1e-12),
        fmt_auc(s.auc),
        s.brier,
        s.skill
    );
    s
}

/// The field's state against the track-status table, by driver-laps.
fn field_state(
    e: &mut Evaluation,
    out: &mut String,
    run: &RunFiles,
    truth: &Truth,
    status: &[StatusPeriod],
) {
    let lap_of = |ms: i64| -> (u16, u16) {
        // Laps (any driver) that overlap the period, from the laps table's own times.
        let mut laps = truth
            .laps
            .iter()
            .filter(|l| match (l.start_ms, l.end_ms) {
                (Some(s), Some(e)) => s <= ms && ms <= e,
                _ => false,
            })
            .map(|l| l.lap);
        let first = laps.next().unwrap_or(0);
        laps.fold((first, first), |(lo, hi), l| (lo.min(l), hi.max(l)))
    };
    let state_of = states_by_lap(&run.laps);
    for p in status {
        let overlapping: Vec<(DriverId, u16)> = truth
            .laps
            .iter()
            .filter(|l| match (l.start_ms, l.end_ms) {
                (Some(s), Some(e)) => s <= p.end_ms && e >= p.start_ms,
                _ => false,
            })
            .map(|l| (l.driver, l.lap))
            .collect();
        let found = overlapping.iter().any(|k| {
            state_of
                .get(k)
                .is_some_and(|s| *s == "neutralised" || *s == "red")
        });
        let (lo, _) = lap_of(p.start_ms);
        let (_, hi) = lap_of(p.end_ms);
        e.periods.push((p.name().to_string(), lo, hi, found));
    }
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (name, ..) in &e.periods {
        by_kind.entry(name.as_str()).or_default();
    }
    for (name, _, _, found) in &e.periods {
        let c = by_kind.get_mut(name.as_str()).unwrap();
        c.0 += 1;
        c.1 += *found as usize;
    }
    for (name, (total, found)) in &by_kind {
        let _ = writeln!(
            out,
            "field state   {name}: {found} of {total} periods found"
        );
    }
    // Driver-laps: wholly inside a neutralisation (to be found), or touching one (may be).
    let neutral: Vec<&StatusPeriod> = status
        .iter()
        .filter(|p| matches!(p.status, 4..=7))
        .collect();
    let neutralised = |s: &str| s == "neutralised" || s == "red";
    let (settled, first) = score_state(truth, run, neutralised, |l| {
        let (Some(s), Some(end)) = (l.start_ms, l.end_ms) else {
            return None;
        };
        let inside = neutral.iter().any(|p| p.start_ms <= s && end <= p.end_ms);
        let touched = neutral.iter().any(|p| p.start_ms < end && s < p.end_ms);
        Some((inside, touched))
    });
    write_score(
        out,
        "neutralised",
        "run wholly under SC/VSC/red",
        "saw one",
        &settled,
    );
    write_first(out, first.as_ref());
    (e.neutral, e.neutral_first) = (settled, first);
    rain(e, out, run, truth);
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &run.laps {
        *states.entry(l.field_state.as_str()).or_default() += 1;
    }
    let _ = writeln!(out, "  driver-laps by state: {states:?}");
}

/// The rain field state against the tyres the field ran (a wet track) and the weather table's
/// rainfall, by driver-laps.
fn rain(e: &mut Evaluation, out: &mut String, run: &RunFiles, truth: &Truth) {
    let wet_laps = truth.wet_laps();
    if wet_laps.is_empty() && truth.rainfall_ms.is_empty() {
        return;
    }
    let (settled, first) = score_state(
        truth,
        run,
        |s| s == "rain",
        |l| {
            let wet = wet_laps.contains(&l.lap);
            let rained = match (l.start_ms, l.end_ms) {
                (Some(from), Some(to)) => truth.rained_during(from, to),
                _ => false,
            };
            Some((wet, wet || rained))
        },
    );
    write_score(
        out,
        "rain",
        "on a wet track (most of the field on intermediate or wet tyres)",
        "were on one or saw rainfall",
        &settled,
    );
    write_first(out, first.as_ref());
    (e.rain, e.rain_first) = (Some(settled), first);
}

/// A field state (`ours` picks the run's states that say it) against the truth's driver-laps,
/// settled and as each lap row was first written (none for a run without `laps_first.jsonl`):
/// `class` says of a driver-lap whether the run should find the state on it and whether it
/// may (None: not scored).
fn score_state(
    truth: &Truth,
    run: &RunFiles,
    ours: impl Fn(&str) -> bool,
    class: impl Fn(&TruthLap) -> Option<(bool, bool)>,
) -> (StateScore, Option<StateScore>) {
    let score = |rows: &[LapMessage]| {
        let state_of = states_by_lap(rows);
        let mut s = StateScore::default();
        for l in &truth.laps {
            let Some((should, may)) = class(l) else {
                continue;
            };
            let said = state_of.get(&(l.driver, l.lap)).is_some_and(|s| ours(s));
            s.truth += should as usize;
            s.found += (should && said) as usize;
            s.judged += said as usize;
            s.right += (said && may) as usize;
        }
        s
    };
    let first = (!run.first_laps.is_empty()).then(|| score(&run.first_laps));
    (score(&run.laps), first)
}

/// The line of a field state's settled score: the driver-laps `should` describes found
/// (recall), those judged so that `right` describes (precision).
fn write_score(out: &mut String, state: &str, should: &str, right: &str, s: &StateScore) {
    let _ = writeln!(
        out,
        "  {state} driver-laps: {} of {} {should} found (recall {:.3}); {} of {} judged so {right} (precision {:.3})",
        s.found,
        s.truth,
        s.recall(),
        s.right,
        s.judged,
        s.precision()
    );
}

/// The line of a field state's score as each lap row was first written at its lap's end,
/// before the field settled it.
fn write_first(out: &mut String, first: Option<&StateScore>) {
    if let Some(f) = first {
        let _ = writeln!(
            out,
            "  as first written at each lap's end: {} of {} found (recall {:.3}); {} of {} right (precision {:.3})",
            f.found,
            f.truth,
            f.recall(),
            f.right,
            f.judged,
            f.precision()
        );
    }
}

/// A simulated race's incidents: each raised by an alert of its type for its driver, on its lap
/// or at most [`INCIDENT_LAPS`] later.
fn incidents(e: &mut Evaluation, out: &mut String, run: &RunFiles, truth: &Truth) {
    if truth.incidents.is_empty() {
        return;
    }
    e.incidents_true = truth.incidents.len();
    let mut missed = Vec::new();
    for i in &truth.incidents {
        let raised = run.alerts.iter().any(|a| {
            a.alert_type == i.kind
                && a.driver_id == i.driver.as_str()
                && a.lap
                    .is_some_and(|l| l >= i.lap && l <= i.lap + INCIDENT_LAPS)
        });
        if raised {
            e.incidents_raised += 1;
        } else {
            missed.push(format!(
                "{} {} lap {} ({})",
                i.kind, i.driver, i.lap, i.cause
            ));
        }
    }
    let _ = writeln!(
        out,
        "incidents     {} of {} raised within {INCIDENT_LAPS} laps (retirements, car health)",
        e.incidents_raised, e.incidents_true
    );
    if !missed.is_empty() {
        let _ = writeln!(out, "  missed: {}", missed.join(", "));
    }
}

/// The alert budget, and car health and retirements next to the last laps.
fn alert_budget(
    out: &mut String,
    run: &RunFiles,
    truth: &Truth,
    retired: &BTreeMap<DriverId, u16>,
) {
    let mut per_type: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for a in &run.alerts {
        *per_type
            .entry(a.alert_type.as_str())
            .or_default()
            .entry(a.driver_id.as_str())
            .or_default() += 1;
    }
    let drivers = truth.last_laps().len().max(1);
    let _ = writeln!(
        out,
        "alerts per driver (median / max over {drivers} drivers):"
    );
    for (kind, by_driver) in &per_type {
        let mut counts: Vec<usize> = by_driver.values().copied().collect();
        counts.resize(drivers.max(counts.len()), 0);
        counts.sort_unstable();
        let _ = writeln!(
            out,
            "  {kind:<18} {:>5} / {:<5} ({} in all)",
            counts[counts.len() / 2],
            counts.last().unwrap_or(&0),
            counts.iter().sum::<usize>()
        );
    }
    let last = truth.last_laps();
    for a in run
        .alerts
        .iter()
        .filter(|a| a.alert_type == "car_health" || a.alert_type == "retirement")
    {
        let last_lap = driver(&a.driver_id).and_then(|d| last.get(&d).copied());
        let _ = writeln!(
            out,
            "  {:<10} {} lap {} (last lap in the table: {}){}",
            a.alert_type,
            a.driver_id,
            a.lap.map_or("?".into(), |l| l.to_string()),
            last_lap.map_or("?".into(), |l| l.to_string()),
            if a.description.is_empty() {
                String::new()
            } else {
                format!(": {}", a.description)
            }
        );
    }
    let _ = writeln!(
        out,
        "  did not finish (laps table): {}",
        retired
            .iter()
            .map(|(d, l)| format!("{d} lap {l}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
