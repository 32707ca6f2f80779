//! Car health: a car that loses performance against its own baseline and the field at once.
//!
//! Judged on eligible laps only — green, clean (no pit lane, not lap 1) and in free air (no car
//! within `traffic_ms` ahead at the line, or leading) — so rain, a neutralisation, traffic and
//! pit laps explain nothing away by accident. On such a lap the car's top speed is compared
//! with the field's median top speed on the same lap (green, clean laps without DRS: a car in a
//! DRS train tops out higher than one alone); its usual gap is the median over its
//! earlier eligible laps. A lap is a deficit when the top speed is down against that usual gap
//! by `strong_kmh` or more, or by `speed_kmh` or more together with a second sign: a gear it
//! reached on nearly every lap no longer reached, or its RPM ceiling `rpm` below its usual.
//! Two deficit laps in a row make one `car_health` alert (high), on the first of them.

use super::keyed_state::{keyed_state, Counts, KeyedState};
use super::{median, LapRow, RaceConfig};
use crate::alert::{Alert, AlertStatus, AlertType, Severity};
use crate::dataflow::Epoch;
use crate::record::DriverId;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Eligible laps that make a baseline.
const BASELINE_LAPS: usize = 5;
/// Share (‰) of baseline laps on which a gear must have been reached to count as usual.
const USUAL_GEAR_PERMILLE: usize = 900;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CarHealth {
    pub driver: DriverId,
    /// First lap of the deficit.
    pub lap: u16,
    pub start_ms: i64,
    /// End of the second deficit lap, when the alert could be raised.
    pub end_ms: i64,
    /// Top speed against the usual gap to the field, km/h (negative: down).
    pub top_speed_delta_kmh: i32,
    /// The usual top gear and the one reached, when a gear was lost.
    pub gear_lost: Option<(u8, u8)>,
    /// RPM ceiling against the usual one (negative: down).
    pub rpm_delta: i32,
}

impl CarHealth {
    pub fn evidence(&self) -> String {
        let mut parts = vec![format!(
            "top speed {:+} km/h against its usual gap to the field",
            self.top_speed_delta_kmh
        )];
        if let Some((usual, now)) = self.gear_lost {
            parts.push(format!("gear {usual} no longer reached (top gear {now})"));
        }
        if self.rpm_delta != 0 {
            parts.push(format!("RPM ceiling {:+}", self.rpm_delta));
        }
        parts.join("; ")
    }

    /// The finding as an alert: `peak` is the top speed lost, km/h.
    pub fn alert(&self) -> Alert {
        Alert {
            alert_id: Alert::id_for(
                self.driver,
                AlertType::CarHealth,
                Severity::High,
                self.start_ms,
            ),
            alert_type: AlertType::CarHealth,
            severity: Severity::High,
            status: AlertStatus::Cleared,
            driver: self.driver,
            lap: Some(self.lap),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            peak: -self.top_speed_delta_kmh as f64,
            threshold: 0.0,
            samples: 2,
        }
    }
}

/// What the health view needs of one of a driver's laps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HealthLap {
    pub lap: u16,
    pub start_ms: i64,
    pub end_ms: i64,
    pub eligible: bool,
    pub top_speed: i32,
    pub field_top_speed: i32,
    pub top_gear: u8,
    pub max_rpm: i32,
}

/// A multiset of integers that knows its median (the element at `len / 2` in sorted order, as
/// [`super::median`] picks it) at any time: the lower half and the upper half, the median the least of
/// the upper. Adding or removing a value is a few map operations, however many it holds.
#[derive(Clone, Debug, Default)]
struct MedianSet {
    low: BTreeMap<i32, usize>,
    high: BTreeMap<i32, usize>,
    low_len: usize,
    high_len: usize,
}

impl MedianSet {
    fn median(&self) -> i32 {
        *self
            .high
            .first_key_value()
            .expect("a median of no values")
            .0
    }

    fn insert(&mut self, v: i32) {
        if self.high.first_key_value().is_some_and(|(&m, _)| v >= m) {
            *self.high.entry(v).or_default() += 1;
            self.high_len += 1;
        } else {
            *self.low.entry(v).or_default() += 1;
            self.low_len += 1;
        }
        self.balance();
    }

    fn remove(&mut self, v: i32) {
        if take(&mut self.high, v) {
            self.high_len -= 1;
        } else if take(&mut self.low, v) {
            self.low_len -= 1;
        }
        self.balance();
    }

    /// Keeps `len / 2` values in the lower half.
    fn balance(&mut self) {
        let half = (self.low_len + self.high_len) / 2;
        while self.low_len > half {
            let (&v, _) = self.low.last_key_value().expect("lower half counted");
            take(&mut self.low, v);
            *self.high.entry(v).or_default() += 1;
            self.low_len -= 1;
            self.high_len += 1;
        }
        while self.low_len < half {
            let (&v, _) = self.high.first_key_value().expect("upper half counted");
            take(&mut self.high, v);
            *self.low.entry(v).or_default() += 1;
            self.high_len -= 1;
            self.low_len += 1;
        }
    }
}

/// Takes one `v` out of a counted map; says whether there was one.
fn take(map: &mut BTreeMap<i32, usize>, v: i32) -> bool {
    match map.get_mut(&v) {
        Some(n) if *n > 1 => *n -= 1,
        Some(_) => {
            map.remove(&v);
        }
        None => return false,
    }
    true
}

/// A deficit lap waiting for a second one: the lap, its top-speed delta, a gear lost, its RPM
/// delta (0 unless down by `health_rpm`).
#[derive(Clone, Debug, PartialEq)]
struct Pending {
    lap: HealthLap,
    speed_delta: i32,
    gear_lost: Option<(u8, u8)>,
    rpm_delta: i32,
}

/// The scan of one driver's eligible laps in lap order, one lap at a time, that finds its first
/// deficit. The baseline (the laps that look like the car's usual self) only grows, so it is
/// kept as running medians and a count per top gear; laps are only ever added at its end, so
/// it can be taken back to any earlier length ([`DeficitScan::truncate`]).
#[derive(Clone, Debug, Default)]
struct DeficitScan {
    /// Baseline laps in the order they joined: gap to the field's top speed, RPM ceiling, top
    /// gear.
    baseline: Vec<(i32, i32, u8)>,
    gaps: MedianSet,
    rpms: MedianSet,
    gears: BTreeMap<u8, usize>,
    run: Option<Pending>,
}

impl DeficitScan {
    fn join_baseline(&mut self, l: &HealthLap) {
        let sign = (l.top_speed - l.field_top_speed, l.max_rpm, l.top_gear);
        self.gaps.insert(sign.0);
        self.rpms.insert(sign.1);
        *self.gears.entry(sign.2).or_default() += 1;
        self.baseline.push(sign);
    }

    /// Back to the state with `len` baseline laps and `run` pending.
    fn truncate(&mut self, len: usize, run: Option<Pending>) {
        while self.baseline.len() > len {
            let Some((gap, rpm, gear)) = self.baseline.pop() else {
                break;
            };
            self.gaps.remove(gap);
            self.rpms.remove(rpm);
            if let Some(n) = self.gears.get_mut(&gear) {
                *n -= 1;
                if *n == 0 {
                    self.gears.remove(&gear);
                }
            }
        }
        self.run = run;
    }

    /// The next eligible lap; the deficit when this lap is its second lap in a row.
    fn push(&mut self, driver: DriverId, l: &HealthLap, cfg: &RaceConfig) -> Option<CarHealth> {
        if self.baseline.len() < BASELINE_LAPS {
            self.join_baseline(l);
            return None;
        }
        let usual_gap = self.gaps.median();
        let usual_rpm = self.rpms.median();
        let (usual_gear, reached) = self
            .gears
            .last_key_value()
            .map_or((0, 0), |(&g, &n)| (g, n));
        let gear_is_usual = reached * 1000 >= USUAL_GEAR_PERMILLE * self.baseline.len();

        let speed_delta = (l.top_speed - l.field_top_speed) - usual_gap;
        let gear_lost =
            (gear_is_usual && l.top_gear < usual_gear).then_some((usual_gear, l.top_gear));
        let rpm_delta = l.max_rpm - usual_rpm;
        let second_sign = gear_lost.is_some() || rpm_delta <= -cfg.health_rpm;
        let deficit = speed_delta <= -cfg.health_strong_kmh
            || (speed_delta <= -cfg.health_speed_kmh && second_sign);
        if deficit {
            let this = Pending {
                lap: l.clone(),
                speed_delta,
                gear_lost,
                rpm_delta: if rpm_delta <= -cfg.health_rpm {
                    rpm_delta
                } else {
                    0
                },
            };
            match self.run.take() {
                Some(first) => {
                    return Some(CarHealth {
                        driver,
                        lap: first.lap.lap,
                        start_ms: first.lap.start_ms,
                        end_ms: l.end_ms,
                        top_speed_delta_kmh: first.speed_delta,
                        gear_lost: first.gear_lost.or(this.gear_lost),
                        rpm_delta: first.rpm_delta,
                    })
                }
                None => self.run = Some(this),
            }
        } else {
            // A lap that looks like the car's usual self joins its baseline.
            if let Some(r) = self.run.take() {
                self.join_baseline(&r.lap);
            }
            self.join_baseline(l);
        }
        None
    }
}

/// The first deficit of one driver, from its laps in lap order.
pub fn first_deficit(driver: DriverId, laps: &[&HealthLap], cfg: &RaceConfig) -> Option<CarHealth> {
    let mut scan = DeficitScan::default();
    laps.iter()
        .filter(|l| l.eligible)
        .find_map(|l| scan.push(driver, l, cfg))
}

/// One driver's laps and the state of its scan, kept up to date from the changes: a lap that
/// changes rewinds the scan to just before it and resumes from there, so a new lap at the end
/// costs one step of the scan, and nothing once the deficit is found before it.
pub struct CarHealthScan {
    driver: DriverId,
    cfg: RaceConfig,
    laps: Counts<HealthLap>,
    scan: DeficitScan,
    /// The eligible laps scanned, in order, each with the baseline's length and the pending
    /// deficit before it: where to rewind to.
    scanned: Vec<(HealthLap, usize, Option<Pending>)>,
    found: Option<CarHealth>,
}

impl CarHealthScan {
    pub fn new(driver: DriverId, cfg: &RaceConfig) -> Self {
        CarHealthScan {
            driver,
            cfg: cfg.clone(),
            laps: Counts::default(),
            scan: DeficitScan::default(),
            scanned: Vec::new(),
            found: None,
        }
    }
}

impl KeyedState for CarHealthScan {
    type Value = HealthLap;
    type Output = CarHealth;

    fn update(&mut self, changes: &[(HealthLap, isize)], output: &mut Vec<(CarHealth, isize)>) {
        let mut first: Option<&HealthLap> = None;
        for (lap, diff) in changes {
            // Laps that are not eligible never enter the scan.
            if self.laps.apply(lap, *diff) && lap.eligible && first.is_none_or(|f| lap < f) {
                first = Some(lap);
            }
        }
        let Some(first) = first else { return };
        let at = self.scanned.partition_point(|(l, ..)| l < first);
        if at == self.scanned.len() {
            if self.found.is_some() {
                // After the lap the deficit was found on: nothing to redo.
                return;
            }
        } else {
            let (_, len, run) = self.scanned[at].clone();
            self.scanned.truncate(at);
            self.scan.truncate(len, run);
        }
        let before = self.found.take();
        for l in self.laps.present_from(first).filter(|l| l.eligible) {
            self.scanned
                .push((l.clone(), self.scan.baseline.len(), self.scan.run.clone()));
            if let Some(h) = self.scan.push(self.driver, l, &self.cfg) {
                self.found = Some(h);
                break;
            }
        }
        if before != self.found {
            output.extend(before.map(|h| (h, -1)));
            output.extend(self.found.clone().map(|h| (h, 1)));
        }
    }
}

/// Lap rows in, one `CarHealth` per driver that shows a deficit out.
pub fn car_health<'scope>(
    rows: VecCollection<'scope, Epoch, LapRow, isize>,
    cfg: &RaceConfig,
) -> VecCollection<'scope, Epoch, CarHealth, isize> {
    use super::FieldState;
    let traffic_ms = cfg.health_traffic_ms;
    let eligible = move |r: &LapRow| {
        r.lap.clean
            && r.field.state == FieldState::Green
            && (r.standing.position == 1 || r.standing.interval_ms > traffic_ms)
    };
    // A lap on which a car opened its DRS flap tops out higher than one alone: the field's
    // median leaves it out (after a restart most of a fast circuit's field runs in DRS
    // trains, 15-20 km/h faster on the straight than a car in free air, whose eligible laps
    // are the ones judged).
    let field_top = rows
        .clone()
        .filter(|r| {
            r.lap.clean && r.field.state == FieldState::Green && r.lap.done.drs_samples == 0
        })
        .map(|r| (r.lap.done.lap, r.lap.done.max_speed_kmh as i32))
        .reduce_named("FieldTopSpeed", |_lap, input, output| {
            let mut speeds: Vec<i32> = input
                .iter()
                .filter(|(_, d)| *d > 0)
                .map(|(v, _)| **v)
                .collect();
            if let Some(m) = median(&mut speeds) {
                output.push((m, 1isize));
            }
        });
    let cfg = cfg.clone();
    let health_laps = rows
        .map(move |r| {
            let e = eligible(&r);
            (r.lap.done.lap, (r, e))
        })
        .join_map(field_top, |_lap, (r, e), field| {
            let d = &r.lap.done;
            (
                d.driver,
                HealthLap {
                    lap: d.lap,
                    start_ms: d.start_ms,
                    end_ms: d.end_ms,
                    eligible: *e,
                    top_speed: d.max_speed_kmh as i32,
                    field_top_speed: *field,
                    top_gear: d.top_gear,
                    max_rpm: d.max_rpm as i32,
                },
            )
        });
    keyed_state(health_laps, "CarHealth", move |driver| {
        CarHealthScan::new(*driver, &cfg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::race::keyed_state::Replay;
    use proptest::prelude::*;

    fn lap(n: u16, top: i32, gear: u8, rpm: i32) -> HealthLap {
        HealthLap {
            lap: n,
            start_ms: n as i64 * 80_000,
            end_ms: (n as i64 + 1) * 80_000,
            eligible: true,
            top_speed: top,
            field_top_speed: 285,
            top_gear: gear,
            max_rpm: rpm,
        }
    }

    fn find(laps: &[HealthLap]) -> Option<CarHealth> {
        let refs: Vec<_> = laps.iter().collect();
        first_deficit(DriverId::new("RIC").unwrap(), &refs, &RaceConfig::default())
    }

    #[test]
    fn a_lost_gear_with_lower_top_speed_on_two_laps_is_a_deficit() {
        let mut laps: Vec<_> = (2..28).map(|n| lap(n, 288, 7, 11_900)).collect();
        laps.extend((28..40).map(|n| lap(n, 275, 6, 11_800)));
        let h = find(&laps).unwrap();
        assert_eq!(
            (h.lap, h.top_speed_delta_kmh, h.gear_lost),
            (28, -13, Some((7, 6)))
        );
        assert!(h.evidence().contains("gear 7 no longer reached"));
    }

    #[test]
    fn the_running_median_is_the_median_of_what_it_holds() {
        let mut set = MedianSet::default();
        let mut all: Vec<i32> = Vec::new();
        // A fixed pseudo-random walk of inserts and removals, duplicates included.
        let mut x = 7u32;
        for i in 0..2_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let v = (x >> 16) as i32 % 40 - 20;
            if i % 3 == 2 && !all.is_empty() {
                let gone = all.remove((x as usize >> 8) % all.len());
                set.remove(gone);
            } else {
                all.push(v);
                set.insert(v);
            }
            if !all.is_empty() {
                assert_eq!(
                    set.median(),
                    median(&mut all.clone()).unwrap(),
                    "after {i} steps"
                );
            }
        }
    }

    /// Laps 1..=40 in three versions (the usual car, a slow lap, a lap with a gear and RPM
    /// lost), some not eligible.
    fn health_lap(n: u16, kind: u8) -> HealthLap {
        let mut l = match kind % 3 {
            0 => lap(n, 288, 7, 11_900),
            1 => lap(n, 271, 7, 11_850),
            _ => lap(n, 279, 6, 11_400),
        };
        l.eligible = kind < 3;
        l
    }

    proptest! {
        /// The finding kept from the changes is, after every step, the first deficit of the
        /// laps present, whatever order they came or went in.
        #[test]
        fn the_finding_kept_from_changes_is_that_of_the_whole_scan(
            steps in prop::collection::vec(
                prop::collection::vec((1..=40u16, 0..4u8, prop::bool::weighted(0.7)), 0..4),
                1..45,
            ),
            usual in prop::collection::vec(0..10u8, 45),
        ) {
            let driver = DriverId::new("RIC").unwrap();
            let cfg = RaceConfig::default();
            let mut view = Replay::new(CarHealthScan::new(driver, &cfg));
            let mut present: BTreeMap<HealthLap, isize> = BTreeMap::new();
            for (i, step) in steps.into_iter().enumerate() {
                let n = i as u16 + 1;
                // The usual step: the next lap, mostly the car's usual self.
                let mut changes = vec![(health_lap(n, usual[i].saturating_sub(6)), 1)];
                for (n, kind, add) in step {
                    let l = health_lap(n, kind);
                    let count = present.get(&l).copied().unwrap_or(0);
                    changes.push((l, if add || count == 0 { 1 } else { -1 }));
                }
                for (l, d) in &changes {
                    *present.entry(l.clone()).or_default() += d;
                }
                let found = view.step(changes);
                let laps: Vec<&HealthLap> =
                    present.iter().filter(|(_, &c)| c > 0).map(|(l, _)| l).collect();
                let whole: Vec<CarHealth> = first_deficit(driver, &laps, &cfg).into_iter().collect();
                prop_assert_eq!(found, whole);
            }
        }
    }

    #[test]
    fn one_slow_lap_or_a_small_drop_alone_is_not() {
        let mut laps: Vec<_> = (2..20).map(|n| lap(n, 288, 7, 11_900)).collect();
        laps.push(lap(20, 260, 7, 11_900));
        laps.extend((21..30).map(|n| lap(n, 288, 7, 11_900)));
        laps.extend((30..40).map(|n| lap(n, 278, 7, 11_900)));
        assert_eq!(find(&laps), None);
    }
}
