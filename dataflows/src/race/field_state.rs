//! The state of the field when each lap ends: green, neutralised (safety car or virtual safety
//! car), red flag, rain. No car alone says it; the whole field does, at once.
//!
//! For the lap a driver completes at time `t`, the field is the latest lap of every car
//! completed in the lap-long window before `t` (this one included): what the field did over
//! the last lap, as known at `t`. Its judgement, from the clean laps among them and the pit
//! laps still as slow as a neutralisation with their standstill and the pit lane's loss taken
//! off:
//! - neutralised: the median pace (lap time / the driver's own best) is far off, as all cars
//!   slow together to a delta or behind the safety car (when most of the field stops under a
//!   safety car, its pit laps are all the field shows of that lap);
//!   once called, it holds while the pace stays above a lower threshold (the back of a safety
//!   car's train runs laps only a fifth slower than racing);
//! - red flag: a large share of the field stood still for a long time on that lap (never a
//!   car's own clean lap at racing pace: at a restart the queue behind completes its standing
//!   laps);
//! - settled within a lap: a car's own lap as slow as a neutralisation that ended before the
//!   field showed one (the first cars round behind a safety car) is corrected to neutralised
//!   once the field half a lap or a lap later is, or the car stood its next lap out with the
//!   field under a red flag;
//! - rain: the pace drops less than under a neutralisation while wheel spin across the field
//!   rises well above the race's own rate on earlier laps run at normal pace; once called, it
//!   holds at the lower spin factor however slow the field (heavy rain slows it as much as a
//!   safety car).
//!
//! A reduce keyed by lap number (see [`field_state`]): a lap completed recomputes a few small
//! groups, and a late lap updates the answers it changes.

use super::rejoin::STANDSTILL_MS;
use super::{median, DriverLap, RaceConfig};
use crate::dataflow::Epoch;
use crate::record::DriverId;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

/// The window is this many times a typical best lap (‰), so that it holds one lap of the field.
const WINDOW_PERMILLE: i64 = 1_100;
/// Before any best lap is known.
const DEFAULT_WINDOW_MS: i64 = 120_000;
/// Laps at normal pace needed before the race's own wheel-spin rate is trusted.
const SPIN_BASELINE_LAPS: u64 = 40;
/// The least green rate assumed (per 10,000 samples): a dry race can have almost no spin.
const SPIN_BASELINE_FLOOR: u64 = 5;

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FieldState {
    #[default]
    Green,
    Rain,
    Neutralised,
    Red,
}

impl FieldState {
    pub fn as_str(&self) -> &'static str {
        match self {
            FieldState::Green => "green",
            FieldState::Rain => "rain",
            FieldState::Neutralised => "neutralised",
            FieldState::Red => "red",
        }
    }
}

/// The field as seen at the end of one driver's lap.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FieldView {
    pub state: FieldState,
    /// Cars in the window.
    pub cars: u16,
    /// Median pace of their clean laps and of the pit laps slow even without the stop, ‰ of
    /// each driver's best (0 when none).
    pub pace_permille: u32,
    /// Wheel-spin samples per 10,000 samples across the window.
    pub spin_per_10k: u32,
    /// The race's rate on clean laps at normal pace on earlier lap numbers (0 until known).
    pub spin_baseline_per_10k: u32,
    /// Other cars whose in-lap is in the window: rivals who just stopped.
    pub rivals_pitted: u16,
}

/// What the field view needs of a lap, ordered by the time it ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FieldEntry {
    pub end_ms: i64,
    pub driver: DriverId,
    pub lap: u16,
    pub clean: bool,
    pub pace_permille: u32,
    pub best_ms: i64,
    pub stationary_ms: i64,
    pub spin_samples: u32,
    pub samples: u32,
    pub pit_in: bool,
    pub pit_out: bool,
}

impl FieldEntry {
    /// The pace this lap tells of the field: a clean lap's own; a pit lap's without its
    /// standstill and the lane's green loss, only when that is still as slow as a
    /// neutralisation (under green a pit lap says nothing of the field: it abstains); none for
    /// other laps.
    fn judged_pace(&self, lane_ms: i64, neutralised_permille: u32) -> Option<u32> {
        if self.pace_permille == 0 {
            return None;
        }
        if self.clean {
            return Some(self.pace_permille);
        }
        if !(self.pit_in || self.pit_out) || self.best_ms <= 0 {
            return None;
        }
        let lap_ms = self.pace_permille as i64 * self.best_ms / 1000;
        let moving_ms = lap_ms - self.stationary_ms - lane_ms;
        let pace = (moving_ms.max(0) * 1000 / self.best_ms).min(u32::MAX as i64) as u32;
        (pace >= neutralised_permille).then_some(pace)
    }

    pub fn of(l: &DriverLap) -> Self {
        FieldEntry {
            end_ms: l.done.end_ms,
            driver: l.done.driver,
            lap: l.done.lap,
            clean: l.clean,
            pace_permille: l.pace_permille,
            best_ms: l.best_ms,
            stationary_ms: l.done.stationary_ms,
            spin_samples: l.done.spin_samples,
            samples: l.done.samples,
            pit_in: l.pit_in,
            pit_out: l.pit_out,
        }
    }
}

/// The field's view at the end of each lap numbered `only_lap` (all when `None`) among
/// `entries` (sorted by end time), given what the race so far tells those laps (its wheel-spin
/// rate at normal pace, 0 while unknown, when no rain is called; whether the track is wet).
///
/// Long for a reason: one pass in time order over the race's laps whose buffers are reused for
/// every lap (a reduce hands it the whole race at each step), so its steps share them.
pub fn field_views(
    entries: &[&FieldEntry],
    only_lap: Option<u16>,
    so_far: SoFar,
    cfg: &RaceConfig,
) -> Vec<(DriverId, u16, FieldView)> {
    let SoFar { baseline, wet } = so_far;
    let mut out = Vec::with_capacity(entries.len());
    // The last 20 best laps seen (a ring), for the window's length.
    let mut bests = [0i64; 20];
    let mut best_count = 0usize;
    let mut scratch = [0i64; 20];
    // Reused for every lap: a reduce calls this with the whole race each time.
    let mut latest: Vec<&FieldEntry> = Vec::with_capacity(32);
    let mut paces: Vec<u32> = Vec::with_capacity(32);
    let mut before: Vec<&FieldEntry> = Vec::with_capacity(32);
    let mut before_paces: Vec<u32> = Vec::with_capacity(32);
    let mut narrow: Vec<&FieldEntry> = Vec::with_capacity(32);
    // What a stop costs beyond its standstill under green: taken off a pit lap's time.
    let lane_ms = (cfg.pit_loss_prior_ms - STANDSTILL_MS).max(0);
    let alone = Alone {
        cfg,
        lane_ms,
        baseline,
        wet,
    };
    for (i, e) in entries.iter().enumerate() {
        if e.best_ms > 0 {
            bests[best_count % bests.len()] = e.best_ms;
            best_count += 1;
        }
        if only_lap.is_some_and(|l| l != e.lap) {
            continue;
        }
        let typical_ms = match best_count.min(bests.len()) {
            0 => DEFAULT_WINDOW_MS,
            n => {
                scratch[..n].copy_from_slice(&bests[..n]);
                let (_, m, _) = scratch[..n].select_nth_unstable(n / 2);
                *m * WINDOW_PERMILLE / 1000
            }
        };
        // A slow lap (behind a safety car) is a longer lap of the field: when the usual
        // window holds too few laps to judge by (a leader far ahead of a field bunched behind
        // the safety car sees only itself; most of the field just stopped), it is widened to
        // this lap's own length.
        let own_ms = e.pace_permille as i64 * e.best_ms / 1000 * WINDOW_PERMILLE / 1000;
        let window_start = judge_window(
            &entries[..=i],
            e.end_ms,
            [typical_ms, typical_ms.max(own_ms)],
            lane_ms,
            cfg,
            &mut latest,
            &mut paces,
        );
        let pace = median(&mut paces).unwrap_or(0);
        let judged = paces.len() >= cfg.min_field_cars;
        let (spin_per_10k, cars) = (spin_rate(&latest), latest.len());
        // The field a lap before (a lap's window back), judged alone: a neutralisation holds
        // until the field's pace is back near racing pace, not merely under the threshold that
        // called it (at the back of a safety car's train cars run laps only a fifth slower;
        // the race restarts from a red flag behind the safety car);
        // rain holds while the field is slow with spin at the lower factor (in heavy rain the
        // field runs as slowly as behind a safety car).
        let before_ms = e.end_ms - typical_ms;
        let state_before = match entries[..=i].iter().rposition(|l| l.end_ms <= before_ms) {
            Some(j) => alone.judge(
                &entries[..=j],
                before_ms,
                [typical_ms, 2 * typical_ms],
                &mut before,
                &mut before_paces,
            ),
            None => FieldState::Green,
        };
        // A red flag: most of the field stood on the laps it completed over the last lap, or
        // over the widened window (the cars that queued ahead of the line complete their lap
        // standing together at the restart, and the widened window reaches back to the laps
        // the others completed at racing pace before the flag): when the window was widened,
        // the lap's own window is judged for red too.
        let widened = entries[window_start].end_ms <= e.end_ms - typical_ms;
        let red_narrow = widened && {
            let from =
                entries[window_start..=i].partition_point(|l| l.end_ms <= e.end_ms - typical_ms);
            latest_of_each_car(&entries[window_start + from..=i], &mut narrow);
            red_flag(&narrow, cfg)
        };
        let state = if red_flag(&latest, cfg) || red_narrow {
            FieldState::Red
        } else {
            judge(
                judged,
                pace,
                spin_per_10k,
                baseline,
                Some(state_before),
                wet,
                cfg,
            )
        };
        // A clean lap of its own at racing pace was not run behind a safety car, to a delta or
        // under a red flag, whatever the laps of the field still behind it say (at a restart;
        // the laps the queue completes standing at a restart from a red flag).
        let racing = e.clean && e.pace_permille > 0 && e.pace_permille < cfg.rain_pace_permille;
        let state = match state {
            FieldState::Neutralised | FieldState::Red if racing => FieldState::Green,
            state => state,
        };
        // Settled within a lap: a lap of its own as slow as a neutralisation, ended before the
        // field had shown one (the first cars round behind the safety car, or to stand out a
        // red flag, while the others' latest laps were still green), is neutralised when the
        // field's laps half a lap or a lap later say so, or when the car stood its next lap out
        // with the field (the drive to the pit lane's queue after a red flag; the field shows
        // it only at the restart). Its row is written as judged at its end, then corrected.
        let state = if state == FieldState::Green
            && e.pace_permille >= cfg.neutralised_pace_permille
            && alone.settles(
                entries,
                i,
                typical_ms,
                own_ms,
                &mut before,
                &mut before_paces,
            ) {
            FieldState::Neutralised
        } else {
            state
        };
        let rivals_pitted = entries[window_start..=i]
            .iter()
            .filter(|l| l.pit_in && l.driver != e.driver)
            .count() as u16;
        out.push((
            e.driver,
            e.lap,
            FieldView {
                state,
                cars: cars as u16,
                pace_permille: pace,
                spin_per_10k,
                spin_baseline_per_10k: baseline,
                rivals_pitted,
            },
        ));
    }
    out
}

/// Whether a red flag's share of `cars` stood still a red flag's time on their laps.
fn red_flag(cars: &[&FieldEntry], cfg: &RaceConfig) -> bool {
    let stood = cars
        .iter()
        .filter(|l| l.stationary_ms >= cfg.red_stationary_ms)
        .count();
    cars.len() >= cfg.min_field_cars
        && stood as u64 * 1000 >= cfg.red_share_permille as u64 * cars.len() as u64
}

/// The field judged alone at some time (no state before it to hold): what that needs.
struct Alone<'c> {
    cfg: &'c RaceConfig,
    /// What a stop costs beyond its standstill under green (ms).
    lane_ms: i64,
    /// The race's wheel-spin rate at normal pace (per 10,000 samples; 0 while unknown).
    baseline: u32,
    /// The track has been wet since rain was last seen ([`race_so_far`]).
    wet: bool,
}

impl Alone<'_> {
    /// The field at `at_ms` over `entries` (sorted by end time, none after `at_ms`), in the
    /// first of `windows` with enough laps to judge by: red when a red flag's share of it
    /// stood, else as its pace and wheel spin say.
    fn judge<'a>(
        &self,
        entries: &[&'a FieldEntry],
        at_ms: i64,
        windows: [i64; 2],
        latest: &mut Vec<&'a FieldEntry>,
        paces: &mut Vec<u32>,
    ) -> FieldState {
        let cfg = self.cfg;
        judge_window(entries, at_ms, windows, self.lane_ms, cfg, latest, paces);
        if red_flag(latest, cfg) {
            return FieldState::Red;
        }
        let judged = paces.len() >= cfg.min_field_cars;
        let pace = median(paces).unwrap_or(0);
        judge(
            judged,
            pace,
            spin_rate(latest),
            self.baseline,
            None,
            self.wet,
            cfg,
        )
    }

    /// Whether lap `entries[i]` (`own_ms` its window's length) settles to neutralised: the
    /// field half a lap or a lap after it was neutralised or stood for a red flag, or its car
    /// stood its next lap out with the field under a red flag.
    fn settles<'a>(
        &self,
        entries: &[&'a FieldEntry],
        i: usize,
        typical_ms: i64,
        own_ms: i64,
        latest: &mut Vec<&'a FieldEntry>,
        paces: &mut Vec<u32>,
    ) -> bool {
        let e = entries[i];
        let later = [typical_ms / 2, typical_ms].into_iter().any(|after_ms| {
            let at_ms = e.end_ms + after_ms;
            let k = i + entries[i..].partition_point(|l| l.end_ms <= at_ms);
            let windows = [typical_ms, typical_ms.max(own_ms)];
            matches!(
                self.judge(&entries[..k], at_ms, windows, latest, paces),
                FieldState::Neutralised | FieldState::Red
            )
        });
        if later {
            return true;
        }
        let next = entries[i + 1..]
            .iter()
            .position(|l| l.driver == e.driver && l.lap == e.lap + 1)
            .map(|j| i + 1 + j);
        next.is_some_and(|j| {
            let next = entries[j];
            let windows = [
                typical_ms,
                typical_ms.max(next.pace_permille as i64 * next.best_ms / 1000),
            ];
            next.stationary_ms >= self.cfg.red_stationary_ms
                && self.judge(&entries[..=j], next.end_ms, windows, latest, paces)
                    == FieldState::Red
        })
    }
}

/// The latest lap of each car among `entries` (sorted by end time, the last ending at or
/// before `end_ms`) in the window before `end_ms`, into `latest`, and the paces they tell into
/// `paces`: the first of `windows` (lengths, ms) with enough laps to judge by, else the last.
/// Returns where the window starts in `entries`.
fn judge_window<'a>(
    entries: &[&'a FieldEntry],
    end_ms: i64,
    windows: [i64; 2],
    lane_ms: i64,
    cfg: &RaceConfig,
    latest: &mut Vec<&'a FieldEntry>,
    paces: &mut Vec<u32>,
) -> usize {
    let mut start = entries.len();
    for window_ms in windows {
        while start > 0 && entries[start - 1].end_ms > end_ms - window_ms {
            start -= 1;
        }
        latest_of_each_car(&entries[start..], latest);
        paces.clear();
        paces.extend(
            latest
                .iter()
                .filter_map(|l| l.judged_pace(lane_ms, cfg.neutralised_pace_permille)),
        );
        if paces.len() >= cfg.min_field_cars {
            break;
        }
    }
    start
}

/// The latest lap of each car among `entries` (sorted by end time), into `latest`.
fn latest_of_each_car<'a>(entries: &[&'a FieldEntry], latest: &mut Vec<&'a FieldEntry>) {
    latest.clear();
    for w in entries.iter().rev() {
        if !latest.iter().any(|l| l.driver == w.driver) {
            latest.push(w);
        }
    }
}

/// The field's state from its window's median pace and wheel spin (red aside), given the state
/// a lap before when it is to hold (`None`: judged alone).
///
/// Rain before neutralised: a wet track can slow the field as much as a safety car does, but
/// only rain makes the whole field's wheels spin that much. (Behind a safety car some spin is
/// usual too: cars weave and restart on cold tyres, hence the higher factor when the field is
/// as slow as a neutralisation, unless it was raining a lap before.)
///
/// A wet track: once the race has seen rain (`wet`, from its earlier lap numbers), a field as
/// slow as a neutralisation needs only the lower spin factor to be rain, and a field still
/// slower than racing pace but not as slow as a neutralisation stays `rain` however little its
/// wheels spin, until a lap number runs at racing pace again (the field on intermediates on a
/// drying track spins little and is still far off its pace).
fn judge(
    judged: bool,
    pace: u32,
    spin_per_10k: u32,
    baseline: u32,
    before: Option<FieldState>,
    wet: bool,
    cfg: &RaceConfig,
) -> FieldState {
    if !judged {
        return FieldState::Green;
    }
    let slow_as_neutralised = pace >= cfg.neutralised_pace_permille
        || matches!(before, Some(FieldState::Neutralised | FieldState::Red))
            && pace >= cfg.neutralised_exit_pace_permille;
    let factor = if slow_as_neutralised && before != Some(FieldState::Rain) && !wet {
        cfg.rain_spin_factor_when_slow
    } else {
        cfg.rain_spin_factor
    };
    if pace >= cfg.rain_pace_permille
        && baseline > 0
        && spin_per_10k as f64 >= baseline as f64 * factor
    {
        FieldState::Rain
    } else if slow_as_neutralised {
        FieldState::Neutralised
    } else if wet && pace >= cfg.rain_pace_permille {
        FieldState::Rain
    } else {
        FieldState::Green
    }
}

/// One lap number's field, for the laps after it: the median pace of its clean laps (‰ of
/// each driver's best), the wheel spin of all its laps, and that of its clean laps at normal
/// pace (spin samples, samples, laps).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
struct LapField {
    pace_permille: u32,
    spin_samples: u64,
    samples: u64,
    normal: (u64, u64, u64),
}

/// What the race so far tells the laps numbered `lap`: its wheel-spin rate at normal pace on
/// the lap numbers before (per 10,000 samples, 0 while unknown) and whether the track is wet.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SoFar {
    pub baseline: u32,
    pub wet: bool,
}

/// From each lap number's field (`fields`, by lap number), what the race so far tells every
/// lap number after the first, up to the one after the last: a lap number whose field was as
/// slow as rain with its wheels spinning as rain makes them (as [`judge`] calls rain alone)
/// wets the track; one whose field ran at racing pace dries it.
fn race_so_far(fields: &[(u16, LapField)], cfg: &RaceConfig) -> Vec<(u16, SoFar)> {
    let last = fields.last().map_or(0, |f| f.0);
    let mut out = Vec::with_capacity(last as usize);
    let mut so_far = SoFar::default();
    let (mut spins, mut samples, mut laps) = (0u64, 0u64, 0u64);
    let mut next = fields.iter().peekable();
    for lap in 1..=last {
        if let Some((_, f)) = next.next_if(|f| f.0 == lap) {
            if f.pace_permille > 0 && f.pace_permille < cfg.rain_pace_permille {
                so_far.wet = false;
            } else if f.pace_permille > 0 {
                let spin = per_10k(f.spin_samples, f.samples);
                let alone = judge(
                    true,
                    f.pace_permille,
                    spin,
                    so_far.baseline,
                    None,
                    false,
                    cfg,
                );
                so_far.wet |= alone == FieldState::Rain;
            }
            spins += f.normal.0;
            samples += f.normal.1;
            laps += f.normal.2;
            so_far.baseline = spin_baseline(spins, samples, laps);
        }
        out.push((lap + 1, so_far));
    }
    out
}

/// The race's wheel-spin rate at normal pace (per 10,000 samples) from its clean laps at
/// normal pace, once there are enough of them; 0 before.
fn spin_baseline(spins: u64, samples: u64, laps: u64) -> u32 {
    if laps >= SPIN_BASELINE_LAPS {
        per_10k(spins, samples).max(SPIN_BASELINE_FLOOR as u32)
    } else {
        0
    }
}

/// Wheel-spin samples per 10,000 samples over `laps`.
fn spin_rate(laps: &[&FieldEntry]) -> u32 {
    let (spins, samples) = laps.iter().fold((0u64, 0u64), |(s, n), l| {
        (s + l.spin_samples as u64, n + l.samples as u64)
    });
    per_10k(spins, samples)
}

/// `spins` per 10,000 `samples` (0 without samples).
fn per_10k(spins: u64, samples: u64) -> u32 {
    (spins * 10_000).checked_div(samples).unwrap_or(0) as u32
}

/// What a lap's group of the field view holds: the laps of that number, those of the two
/// numbers before (the field a lap ago, and the lap before that for whether a neutralisation
/// holds) and of the number after (the field a lap later, which settles it), and what the race
/// so far tells it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum FieldInput {
    Lap(FieldEntry),
    SoFar(SoFar),
}

/// All laps in, `((driver, lap), view)` out.
///
/// Keyed by lap number, so that a lap completed recomputes one or two small groups and not the
/// whole race: the group of lap `n` holds the laps numbered `n + 1` to `n - 2`, which is the
/// field a lap back from any lap `n`, a lap before that and a lap after it (a car lapped twice
/// is missing from it),
/// and the race's wheel spin on clean laps at normal pace on every earlier lap number, the rain
/// baseline.
pub fn field_state<'scope>(
    laps: VecCollection<'scope, Epoch, DriverLap, isize>,
    cfg: &RaceConfig,
) -> VecCollection<'scope, Epoch, ((DriverId, u16), FieldView), isize> {
    let entries = laps.map(|l| FieldEntry::of(&l));
    let rain_pace = cfg.rain_pace_permille;
    let so_far_cfg = cfg.clone();
    // Each lap number's field, then what the race so far tells each lap number: one group
    // for the race, of one small value a lap number.
    let so_far = entries
        .clone()
        .map(|e| {
            // A clean lap's pace (0 for another lap) and its wheel spin.
            let pace = if e.clean { e.pace_permille } else { 0 };
            (e.lap, (pace, e.spin_samples, e.samples))
        })
        .reduce_named("LapField", move |_lap, input, output| {
            let mut paces: Vec<u32> = Vec::with_capacity(input.len());
            let mut f = LapField::default();
            for ((pace, spins, samples), d) in input {
                if *d <= 0 {
                    continue;
                }
                // Laps alike (two cars' laps give the same values) come as one, counted twice.
                let n = *d as u64;
                if *pace > 0 {
                    paces.extend(std::iter::repeat_n(*pace, n as usize));
                    if *pace < rain_pace {
                        f.normal.0 += *spins as u64 * n;
                        f.normal.1 += *samples as u64 * n;
                        f.normal.2 += n;
                    }
                }
                f.spin_samples += *spins as u64 * n;
                f.samples += *samples as u64 * n;
            }
            f.pace_permille = median(&mut paces).unwrap_or(0);
            output.push((f, 1isize));
        })
        .map(|(lap, f)| ((), (lap, f)))
        .reduce_named("RaceSoFar", move |_, input, output| {
            let fields: Vec<(u16, LapField)> = input
                .iter()
                .filter(|(_, d)| *d > 0)
                .map(|(f, _)| **f)
                .collect();
            for (lap, s) in race_so_far(&fields, &so_far_cfg) {
                output.push(((lap, s), 1isize));
            }
        })
        .map(|((), (lap, s))| (lap, FieldInput::SoFar(s)));
    let cfg = cfg.clone();
    entries
        .flat_map(|e| {
            let lap = e.lap;
            [
                (lap.saturating_sub(1), FieldInput::Lap(e.clone())),
                (lap, FieldInput::Lap(e.clone())),
                (lap + 1, FieldInput::Lap(e.clone())),
                (lap + 2, FieldInput::Lap(e)),
            ]
        })
        .concat(so_far)
        .reduce_named("FieldState", move |lap, input, output| {
            let mut pool: Vec<&FieldEntry> = Vec::with_capacity(input.len());
            let mut so_far = SoFar::default();
            for (value, diff) in input {
                if *diff <= 0 {
                    continue;
                }
                match value {
                    FieldInput::Lap(e) => pool.push(e),
                    FieldInput::SoFar(s) => so_far = *s,
                }
            }
            if !pool.iter().any(|e| e.lap == *lap) {
                return;
            }
            pool.sort();
            for (driver, lap, view) in field_views(&pool, Some(*lap), so_far, &cfg) {
                output.push(((driver, lap, view), 1isize));
            }
        })
        .map(|(_lap, (driver, lap, view))| ((driver, lap), view))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARS: [&str; 6] = ["VER", "HAM", "LEC", "NOR", "ALO", "SAI"];

    /// Six cars, 80 s laps 1 s apart; laps in `slow` take `factor` ‰ of that.
    fn race(laps: u16, slow: std::ops::RangeInclusive<u16>, factor: i64) -> Vec<FieldEntry> {
        let mut v = Vec::new();
        let mut ends = [0i64; 6];
        for lap in 1..=laps {
            for (c, code) in CARS.iter().enumerate() {
                let t = if slow.contains(&lap) {
                    80_000 * factor / 1000
                } else {
                    80_000
                };
                ends[c] = if lap == 1 {
                    80_000 + c as i64 * 1000
                } else {
                    ends[c] + t
                };
                v.push(FieldEntry {
                    end_ms: ends[c],
                    driver: DriverId::new(code).unwrap(),
                    lap,
                    clean: lap > 1,
                    pace_permille: if lap > 1 {
                        (t * 1000 / 80_000) as u32
                    } else {
                        0
                    },
                    best_ms: if lap > 1 { 80_000 } else { 0 },
                    stationary_ms: 0,
                    spin_samples: 0,
                    samples: 320,
                    pit_in: false,
                    pit_out: false,
                });
            }
        }
        v.sort();
        v
    }

    /// Laps 5 to 7 neutralised, green before and after.
    const NEUTRALISED_5_TO_7: [(u16, FieldState); 3] = [
        (1, FieldState::Green),
        (5, FieldState::Neutralised),
        (8, FieldState::Green),
    ];

    fn states(v: &[FieldEntry]) -> Vec<(u16, FieldState)> {
        states_of(v, "SAI")
    }

    fn states_of(v: &[FieldEntry], car: &str) -> Vec<(u16, FieldState)> {
        let refs: Vec<_> = v.iter().collect();
        let mut s: Vec<_> = field_views(&refs, None, SoFar::default(), &RaceConfig::default())
            .into_iter()
            .filter(|(d, _, _)| d.as_str() == car)
            .map(|(_, lap, v)| (lap, v.state))
            .collect();
        s.dedup_by_key(|x| x.1);
        s
    }

    #[test]
    fn a_field_that_slows_together_is_neutralised_and_green_again_after() {
        let v = race(12, 5..=7, 1_450);
        assert_eq!(states(&v), NEUTRALISED_5_TO_7);
    }

    #[test]
    fn the_first_car_round_behind_the_safety_car_is_neutralised_once_the_field_shows_it() {
        // When the leader completes lap 5, the first lap behind the safety car, the others'
        // latest laps are all green: judged alone at its end its lap is green; the laps the
        // field completes in the next lap settle it.
        let v = race(12, 5..=7, 1_450);
        let refs: Vec<_> = v.iter().collect();
        let cut = v.iter().position(|e| e.lap == 5).unwrap();
        let at_its_end = field_views(
            &refs[..=cut],
            Some(5),
            SoFar::default(),
            &RaceConfig::default(),
        );
        assert_eq!(at_its_end[0].2.state, FieldState::Green);
        assert_eq!(states_of(&v, "VER"), NEUTRALISED_5_TO_7);
    }

    /// Every car stands 15 minutes on lap 4 (a red flag), then races again.
    fn red_flag_on_lap_4() -> Vec<FieldEntry> {
        let mut v = race(8, 0..=0, 1000);
        for e in v.iter_mut().filter(|e| e.lap >= 4) {
            e.end_ms += 900_000;
            if e.lap == 4 {
                e.stationary_ms = 900_000;
                e.clean = false;
                e.pace_permille = (980_000 * 1000 / e.best_ms) as u32;
            }
        }
        v.sort();
        v
    }

    #[test]
    fn a_lap_at_racing_pace_is_green_at_a_restart_from_a_red_flag() {
        // VER restarts first and runs lap 5 at racing pace while the others' latest laps are
        // still the standing ones; its own standing lap is settled by theirs.
        let s = states_of(&red_flag_on_lap_4(), "VER");
        assert_eq!(s[0], (1, FieldState::Green), "{s:?}");
        assert!(
            matches!(s[1], (4, FieldState::Neutralised | FieldState::Red)),
            "{s:?}"
        );
        assert_eq!(s[2..], [(5, FieldState::Green)], "{s:?}");
    }

    /// Cars 1..=4 stop at the end of lap `lap` (in-lap 8 s and out-lap 9 s longer, 2.5 s in
    /// the box), each lap ending later by as much.
    fn stop_four(v: &mut [FieldEntry], lap: u16) {
        for c in &CARS[1..5] {
            let mut late = 0;
            for e in v.iter_mut().filter(|e| e.driver.as_str() == *c) {
                let extra = match e.lap {
                    l if l == lap => 8_000,
                    l if l == lap + 1 => 11_500,
                    _ => 0,
                };
                late += extra;
                e.end_ms += late;
                if extra > 0 {
                    e.clean = false;
                    e.pace_permille += (extra * 1000 / e.best_ms) as u32;
                    e.pit_in = e.lap == lap;
                    e.pit_out = e.lap == lap + 1;
                    e.stationary_ms = if e.pit_out { 2_500 } else { 0 };
                }
            }
        }
        v.sort();
    }

    #[test]
    fn a_field_that_stops_under_a_safety_car_is_still_neutralised() {
        // Four of six cars stop on lap 5, the first lap behind the safety car: their pit laps
        // are all the field shows of laps 5 and 6.
        let mut v = race(12, 5..=7, 1_600);
        stop_four(&mut v, 5);
        assert_eq!(states(&v), NEUTRALISED_5_TO_7);
    }

    #[test]
    fn stops_under_green_are_not_a_neutralisation() {
        let mut v = race(12, 0..=0, 1_000);
        stop_four(&mut v, 5);
        assert_eq!(states(&v), vec![(1, FieldState::Green)]);
    }

    #[test]
    fn one_slow_car_is_not_a_neutralisation() {
        let mut v = race(10, 0..=0, 1000);
        for e in v
            .iter_mut()
            .filter(|e| e.driver.as_str() == "HAM" && e.lap > 4)
        {
            e.pace_permille = 1_500;
        }
        assert_eq!(states(&v), vec![(1, FieldState::Green)]);
    }

    #[test]
    fn a_field_standing_still_is_a_red_flag() {
        assert_eq!(
            states(&red_flag_on_lap_4()),
            vec![
                (1, FieldState::Green),
                (4, FieldState::Red),
                (5, FieldState::Green)
            ]
        );
    }

    #[test]
    fn a_drying_track_stays_rain_until_the_field_is_back_at_racing_pace() {
        let cfg = RaceConfig::default();
        // Laps 1-9 dry (6 cars at normal pace, spin 5 per 10,000); rain on lap 10 (20 %
        // slower, spin 20x); laps 11-14 drying on intermediates (15 % slower, spin 2x); lap 15
        // back at racing pace.
        let field = |pace_permille: u32, per_10k: u64| LapField {
            pace_permille,
            spin_samples: per_10k * 2,
            samples: 20_000,
            normal: if pace_permille < cfg.rain_pace_permille {
                (per_10k * 2, 20_000, 6)
            } else {
                (0, 0, 0)
            },
        };
        let mut fields: Vec<(u16, LapField)> = (1..=9).map(|k| (k, field(1_000, 5))).collect();
        fields.push((10, field(1_200, 100)));
        fields.extend((11..=14).map(|k| (k, field(1_150, 10))));
        fields.push((15, field(1_010, 5)));
        let so_far = race_so_far(&fields, &cfg);
        let wet: Vec<u16> = so_far.iter().filter(|s| s.1.wet).map(|s| s.0).collect();
        assert_eq!(wet, (11..=15).collect::<Vec<_>>());
        // The spin at normal pace: 7 laps numbered 1-6 (36 laps) are too few, 7 enough.
        assert_eq!(
            so_far[5],
            (
                7,
                SoFar {
                    baseline: 0,
                    wet: false
                }
            )
        );
        assert_eq!(
            so_far[6],
            (
                8,
                SoFar {
                    baseline: 5,
                    wet: false
                }
            )
        );
        assert_eq!(so_far.last().unwrap().0, 16);
        // Without the rain before it, a field as slow with its wheels spinning twice as much
        // is green; after it, rain; as slow as a neutralisation, neutralised.
        let judged = |pace, wet| judge(true, pace, 10, 5, None, wet, &cfg);
        assert_eq!(judged(1_150, false), FieldState::Green);
        assert_eq!(judged(1_150, true), FieldState::Rain);
        assert_eq!(judged(1_010, true), FieldState::Green);
        assert_eq!(judged(1_400, true), FieldState::Neutralised);
        // As slow as a neutralisation with its wheels spinning 11x: a safety car on a dry
        // track (behind one cars weave and restart on cold tyres), rain on a wet one.
        assert_eq!(
            judge(true, 1_260, 55, 5, None, false, &cfg),
            FieldState::Neutralised
        );
        assert_eq!(
            judge(true, 1_260, 55, 5, None, true, &cfg),
            FieldState::Rain
        );
        // Rain that never came: a field slow with little spin does not wet the track.
        fields[9] = (10, field(1_200, 10));
        assert!(race_so_far(&fields, &cfg).iter().all(|s| !s.1.wet));
    }
}
