//! Laps and pit stops of one driver, read from that driver's samples in arrival order.
//!
//! This is the hot-path half of race intelligence: a plain struct that the per-driver analysis
//! calls for every sample, cheap and allocation-free. It hands on two kinds of facts, a
//! completed lap ([`LapDone`]) and a pit stop ([`PitStop`]); everything that needs more than
//! one driver (positions, gaps, the field's state, predictions) is computed from those facts
//! by the differential views next to this file, which never look at samples.
//!
//! - A lap ends when the lap number goes up by one. The last lap of a race has no next lap
//!   number: it is closed when the car has covered a lap's distance (integrated from speed,
//!   against the median of its own previous laps) and goes on well past it without a new lap
//!   number, at the moment it covered that distance.
//! - A feed without lap numbers, given the circuit's length (`lap_length_m`), has its laps
//!   counted from the distance covered since the car moved off the grid, each closed by
//!   distance (so the chequered flag is found as for a last lap). It drifts: see docs/race.md.
//! - A pit stop is a passage through the pit lane: the car runs on its speed limiter (a flat
//!   plateau of speed under load, whatever the circuit's limit is) and stands still in it. The
//!   stop belongs to the lap the car was on when it entered (FastF1's in-lap), and is reported
//!   when the car leaves the pit lane at speed: the start grid (no lap yet), the finish (the car
//!   never leaves) and a car that retires in its garage are therefore not pit stops.

use super::{LapDone, PitStop, RaceConfig};
use crate::record::{DriverId, Telemetry};

/// Completed laps whose distances estimate the length of the next one.
const LAP_DISTANCES: usize = 5;
/// Distance (m) on lap 1 after which a car has left its grid slot: a few car lengths, more
/// than any creep while waiting for the lights.
const MOVED_OFF_M: f64 = 50.0;
/// A feed without lap numbers: the standstill on the grid (ms) after which moving off is the
/// start.
const GRID_STANDSTILL_MS: i64 = 3_000;
/// Longest gap between two samples over which distance is integrated: a car that vanishes from
/// the feed must not be credited with distance it may not have covered.
const MAX_INTEGRATION_GAP_MS: i64 = 2_000;

/// What the tracker saw of the current lap so far.
#[derive(Clone, Copy, Debug, Default)]
struct LapStats {
    samples: u32,
    spin_samples: u32,
    max_speed: f32,
    top_gear: u8,
    max_rpm: f32,
    stationary_ms: i64,
    hard_decels: u32,
    glitch_gears: u32,
    drs_samples: u32,
}

/// The plateau of a speed limiter: samples whose speeds stay within a narrow band.
#[derive(Clone, Copy, Debug, Default)]
struct Plateau {
    start_ms: i64,
    lap: Option<u16>,
    min: f32,
    max: f32,
    samples: u32,
}

/// A stretch of slow running (at most `slow_kmh`), in which a pit passage may be found.
#[derive(Clone, Copy, Debug)]
struct SlowStretch {
    start_ms: i64,
    start_lap: Option<u16>,
    /// Lap at the first standstill of the stretch.
    stop_lap: Option<u16>,
    stationary_ms: i64,
}

/// A pit-lane passage under way.
#[derive(Clone, Copy, Debug)]
struct Passage {
    lap: u16,
    entry_ms: i64,
    limit_kmh: f32,
    limiter_ms: i64,
    stationary_ms: i64,
}

/// What one sample completed: at most one lap, one pit stop, one anomaly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RaceEvents {
    pub lap: Option<LapDone>,
    pub pit: Option<PitStop>,
    pub anomaly: Option<LapAnomaly>,
}

/// Why the tracker ignored a lap number; logged by the caller, never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LapAnomaly {
    /// The lap number went down (`from` → `to`).
    Backwards { from: u16, to: u16 },
    /// The lap number skipped laps: the laps in between are not reported.
    Skipped { from: u16, to: u16 },
}

#[derive(Clone, Debug)]
pub struct LapTracker {
    driver: DriverId,
    cfg: RaceConfig,
    lap: Option<u16>,
    /// The lap number of the previous sample, so that an anomaly is reported once.
    raw_lap: Option<u16>,
    lap_start_ms: i64,
    /// Lap already closed by distance (the last lap): a later lap number change for it is not
    /// a second completion.
    closed_by_distance: Option<u16>,
    distance_m: f64,
    /// Time at which the current lap reached the expected lap distance.
    reached_lap_distance_ms: Option<i64>,
    lap_distances: [f64; LAP_DISTANCES],
    lap_distance_count: usize,
    stats: LapStats,
    last: Option<(i64, f32)>,
    plateau: Plateau,
    slow: Option<SlowStretch>,
    passage: Option<Passage>,
    /// A feed without lap numbers (`lap_length_m` set): metres covered since the start,
    /// `None` until the car has moved off after standing on the grid, whose standstill so far
    /// is `grid_ms`.
    counted_m: Option<f64>,
    grid_ms: i64,
}

impl LapTracker {
    pub fn new(driver: DriverId, cfg: &RaceConfig) -> Self {
        LapTracker {
            driver,
            cfg: cfg.clone(),
            lap: None,
            raw_lap: None,
            lap_start_ms: 0,
            closed_by_distance: None,
            distance_m: 0.0,
            reached_lap_distance_ms: None,
            lap_distances: [0.0; LAP_DISTANCES],
            lap_distance_count: 0,
            stats: LapStats::default(),
            last: None,
            plateau: Plateau::default(),
            slow: None,
            passage: None,
            counted_m: None,
            grid_ms: 0,
        }
    }

    /// The lap number of a sample that carries none, counted from distance when the
    /// configuration gives the circuit's length: lap 1 from the first time the car moves off
    /// after standing [`GRID_STANDSTILL_MS`] (the grid: a feed that begins during the
    /// formation lap waits for it), then one more each `lap_length_m`.
    /// `step_m` and `dt` are the distance and time since the previous sample (0 over a gap).
    fn counted_lap(&mut self, speed: f32, step_m: f64, dt: i64) -> Option<u16> {
        let length = self.cfg.lap_length_m;
        if length <= 0.0 {
            return None;
        }
        let moving = speed >= self.cfg.stationary_kmh;
        let covered = match self.counted_m {
            Some(m) => m + step_m,
            None if moving && self.grid_ms >= GRID_STANDSTILL_MS => 0.0,
            None => {
                self.grid_ms = if moving { 0 } else { self.grid_ms + dt };
                return None;
            }
        };
        self.counted_m = Some(covered);
        Some((covered / length).min(u16::MAX as f64 - 1.0) as u16 + 1)
    }

    /// The lap the car is on, as far as the tracker follows it.
    pub fn lap(&self) -> Option<u16> {
        self.lap
    }

    /// Whether the car is racing rather than waiting on the grid: it is on a lap and, on lap 1,
    /// has moved off the grid ([`MOVED_OFF_M`]), so that a car stopped in a first-corner crash
    /// is racing (and may retire) while one waiting for the lights with lap 1 shown is not.
    /// (Whether the race is over is for the race views to say.)
    pub fn racing(&self) -> bool {
        match self.lap {
            None => false,
            Some(1) => self.distance_m >= MOVED_OFF_M,
            Some(_) => true,
        }
    }

    /// Whether the car is in a pit-lane passage now.
    pub fn in_pit_lane(&self) -> bool {
        self.passage.is_some()
    }

    /// Takes one sample; `spinning` is the wheel-spin detector's verdict on it.
    pub fn observe(&mut self, s: &Telemetry, spinning: bool) -> RaceEvents {
        let mut events = RaceEvents::default();
        let mut lap_done = |l| events.lap = Some(l);
        let speed = s.speed.max(0.0);
        let dt = self.last.map_or(0, |(ts, _)| s.ts_ms - ts);
        let integrable = (1..=MAX_INTEGRATION_GAP_MS).contains(&dt);
        // Distance since the previous sample (m), 0 over a gap too long to integrate.
        let step_m = match self.last {
            Some((_, prev)) if integrable => (speed + prev) as f64 / 2.0 / 3.6 * dt as f64 / 1000.0,
            _ => 0.0,
        };

        let mut anomaly = None;
        let lap = match s.lap {
            Some(l) => Some(l),
            None => self.counted_lap(speed, step_m, if integrable { dt } else { 0 }),
        };
        self.follow_lap_number(lap, s.ts_ms, &mut lap_done, &mut |a| anomaly = Some(a));

        if integrable {
            self.distance_m += step_m;
            if let Some((_, prev)) = self.last {
                let decel_mps2 = (prev - speed) as f64 / 3.6 / (dt as f64 / 1000.0);
                if decel_mps2 > self.cfg.hard_decel_mps2 {
                    self.stats.hard_decels += 1;
                }
            }
            if speed < self.cfg.stationary_kmh {
                self.stats.stationary_ms += dt;
            }
        }
        self.stats.samples += 1;
        self.stats.spin_samples += spinning as u32;
        self.stats.drs_samples += s.drs_open() as u32;
        self.stats.max_speed = self.stats.max_speed.max(speed);
        if s.gear_is_valid() {
            self.stats.top_gear = self.stats.top_gear.max(s.gear);
        } else {
            self.stats.glitch_gears += 1;
        }
        self.stats.max_rpm = self.stats.max_rpm.max(s.rpm);

        self.close_last_lap_by_distance(s.ts_ms, &mut lap_done);
        let mut pit = None;
        self.follow_pit_lane(s, speed, if integrable { dt } else { 0 }, &mut |p| {
            pit = Some(p)
        });
        self.last = Some((s.ts_ms, speed));
        events.anomaly = anomaly;
        events.pit = pit;
        events
    }

    fn follow_lap_number(
        &mut self,
        lap: Option<u16>,
        ts_ms: i64,
        lap_done: &mut impl FnMut(LapDone),
        anomaly: &mut impl FnMut(LapAnomaly),
    ) {
        let Some(now) = lap else { return };
        // A counted lap ends where the car covered the circuit's length: closed by distance.
        let counted = self.counted_m.is_some();
        let repeated = self.raw_lap == Some(now);
        self.raw_lap = Some(now);
        match self.lap {
            None => self.start_lap(now, ts_ms),
            Some(cur) if now == cur => {}
            Some(cur) if now == cur + 1 => {
                if self.closed_by_distance != Some(cur) {
                    lap_done(self.lap_done(cur, ts_ms, counted));
                    self.remember_distance();
                }
                self.start_lap(now, ts_ms);
            }
            Some(cur) if now < cur => {
                if !repeated {
                    anomaly(LapAnomaly::Backwards { from: cur, to: now })
                }
            }
            Some(cur) => {
                anomaly(LapAnomaly::Skipped { from: cur, to: now });
                self.start_lap(now, ts_ms);
            }
        }
    }

    fn start_lap(&mut self, lap: u16, ts_ms: i64) {
        self.lap = Some(lap);
        self.lap_start_ms = ts_ms;
        self.distance_m = 0.0;
        self.reached_lap_distance_ms = None;
        self.stats = LapStats::default();
    }

    fn remember_distance(&mut self) {
        let slot = self.lap_distance_count % LAP_DISTANCES;
        self.lap_distances[slot] = self.distance_m;
        self.lap_distance_count += 1;
    }

    /// Median distance of the last completed laps, once there are enough of them.
    fn expected_lap_distance(&self) -> Option<f64> {
        if self.lap_distance_count < 3 {
            return None;
        }
        let n = self.lap_distance_count.min(LAP_DISTANCES);
        let mut d = self.lap_distances;
        let d = &mut d[..n];
        d.sort_by(f64::total_cmp);
        Some(d[n / 2])
    }

    fn close_last_lap_by_distance(&mut self, ts_ms: i64, lap_done: &mut impl FnMut(LapDone)) {
        let (Some(lap), Some(expected)) = (self.lap, self.expected_lap_distance()) else {
            return;
        };
        if self.closed_by_distance == Some(lap) {
            return;
        }
        if self.reached_lap_distance_ms.is_none() && self.distance_m >= expected {
            self.reached_lap_distance_ms = Some(ts_ms);
        }
        if let Some(end_ms) = self.reached_lap_distance_ms {
            if self.distance_m >= expected * self.cfg.last_lap_overrun {
                lap_done(self.lap_done(lap, end_ms, true));
                self.closed_by_distance = Some(lap);
            }
        }
    }

    fn lap_done(&self, lap: u16, end_ms: i64, by_distance: bool) -> LapDone {
        let st = &self.stats;
        LapDone {
            driver: self.driver,
            lap,
            start_ms: self.lap_start_ms,
            end_ms,
            by_distance,
            samples: st.samples,
            spin_samples: st.spin_samples,
            max_speed_kmh: st.max_speed.round() as u16,
            top_gear: st.top_gear,
            max_rpm: st.max_rpm.round().clamp(0.0, u32::MAX as f32) as u32,
            stationary_ms: st.stationary_ms,
            hard_decels: st.hard_decels,
            glitch_gears: st.glitch_gears,
            drs_samples: st.drs_samples,
        }
    }

    /// Long for a reason: the pit-lane passage as one state machine (a slow stretch, the
    /// limiter's plateau, the stop, the exit), each check reading the same sample and state.
    fn follow_pit_lane(
        &mut self,
        s: &Telemetry,
        speed: f32,
        dt: i64,
        pit_stop: &mut impl FnMut(PitStop),
    ) {
        let c = &self.cfg;
        if let Some(p) = self.passage.as_mut() {
            if speed < c.stationary_kmh {
                p.stationary_ms += dt;
            }
            if (speed - p.limit_kmh).abs() <= c.limiter_band_kmh {
                p.limiter_ms += dt;
            }
            if speed > p.limit_kmh + c.pit_exit_margin_kmh {
                let p = *p;
                self.passage = None;
                self.slow = None;
                if p.limiter_ms >= c.min_limiter_ms && p.stationary_ms >= c.min_stationary_ms {
                    pit_stop(PitStop {
                        driver: self.driver,
                        lap: p.lap,
                        pit_in_ms: p.entry_ms,
                        pit_out_ms: s.ts_ms,
                        stationary_ms: p.stationary_ms,
                        limit_kmh: p.limit_kmh.round() as u16,
                    });
                }
            }
            return;
        }

        // Outside the pit lane: follow slow stretches and limiter plateaus.
        if speed > c.slow_kmh {
            self.slow = None;
            self.plateau.samples = 0;
            return;
        }
        let slow = self.slow.get_or_insert(SlowStretch {
            start_ms: s.ts_ms,
            start_lap: self.lap,
            stop_lap: None,
            stationary_ms: 0,
        });
        if speed < c.stationary_kmh {
            slow.stationary_ms += dt;
            if slow.stop_lap.is_none() {
                slow.stop_lap = self.lap;
            }
        }

        let on_limiter_load = (c.limiter_min_kmh..=c.limiter_max_kmh).contains(&speed)
            && s.throttle_pct()
                .is_some_and(|t| t >= c.limiter_min_throttle_pct);
        let pl = &mut self.plateau;
        if !on_limiter_load {
            pl.samples = 0;
            return;
        }
        if pl.samples == 0 || speed.max(pl.max) - speed.min(pl.min) > c.limiter_band_kmh {
            *pl = Plateau {
                start_ms: s.ts_ms,
                lap: self.lap,
                min: speed,
                max: speed,
                samples: 1,
            };
            return;
        }
        pl.samples += 1;
        pl.min = pl.min.min(speed);
        pl.max = pl.max.max(speed);
        if pl.samples >= c.limiter_min_samples && s.ts_ms - pl.start_ms >= c.limiter_detect_ms {
            // The car is in the pit lane. Its lap is the one it stopped on, when it stood
            // still before the limiter was seen (a stop straight after the entry), else the
            // one the limiter was first seen on.
            let lap = slow.stop_lap.or(pl.lap).or(slow.start_lap);
            if let Some(lap) = lap {
                self.passage = Some(Passage {
                    lap,
                    entry_ms: slow.start_ms,
                    limit_kmh: pl.max,
                    limiter_ms: s.ts_ms - pl.start_ms,
                    stationary_ms: slow.stationary_ms,
                });
            }
            pl.samples = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Run {
        laps: Vec<LapDone>,
        pits: Vec<PitStop>,
        anomalies: Vec<LapAnomaly>,
    }

    /// Feeds (speed, throttle, lap) samples at 4 Hz.
    fn run(samples: &[(f32, f32, Option<u16>)]) -> Run {
        run_with(samples, &RaceConfig::default())
    }

    fn run_with(samples: &[(f32, f32, Option<u16>)], cfg: &RaceConfig) -> Run {
        let mut t = LapTracker::new(DriverId::new("PER").unwrap(), cfg);
        let mut r = Run {
            laps: vec![],
            pits: vec![],
            anomalies: vec![],
        };
        for (i, &(speed, throttle, lap)) in samples.iter().enumerate() {
            let s = Telemetry {
                speed,
                rpm: 9000.0,
                throttle,
                lap,
                gear: 3,
                ..Telemetry::at(DriverId::new("PER").unwrap(), i as i64 * 250)
            };
            let e = t.observe(&s, false);
            r.laps.extend(e.lap);
            r.pits.extend(e.pit);
            r.anomalies.extend(e.anomaly);
        }
        r
    }

    fn repeat(n: usize, speed: f32, throttle: f32, lap: u16) -> Vec<(f32, f32, Option<u16>)> {
        vec![(speed, throttle, Some(lap)); n]
    }

    /// 60 s laps at 180 km/h (3 km each).
    fn racing_laps(first: u16, count: u16) -> Vec<(f32, f32, Option<u16>)> {
        (first..first + count)
            .flat_map(|lap| repeat(240, 180.0, 100.0, lap))
            .collect()
    }

    #[test]
    fn laps_end_when_the_lap_number_goes_up() {
        let r = run(&racing_laps(1, 4));
        let laps: Vec<_> = r
            .laps
            .iter()
            .map(|l| (l.lap, l.start_ms, l.end_ms))
            .collect();
        assert_eq!(
            laps,
            vec![(1, 0, 60_000), (2, 60_000, 120_000), (3, 120_000, 180_000)]
        );
        assert!(r.pits.is_empty());
    }

    #[test]
    fn without_lap_numbers_laps_are_counted_from_the_grid_by_distance() {
        let cfg = RaceConfig {
            lap_length_m: 3_000.0,
            ..RaceConfig::default()
        };
        // The end of the formation lap (moving, then 10 s on the grid), then 3 laps' distance
        // at 180 km/h (60 s each) and half a lap more; no sample carries a lap number.
        let mut s: Vec<_> = vec![(100.0, 50.0, None); 40];
        s.extend(vec![(0.0, 0.0, None); 40]);
        s.extend(vec![(180.0, 100.0, None); 3 * 240 + 120]);
        let r = run_with(&s, &cfg);
        let laps: Vec<_> = r
            .laps
            .iter()
            .map(|l| (l.lap, l.start_ms, l.end_ms, l.by_distance))
            .collect();
        // The start at 20 s (the first sample moving off the grid); a crossing each 3 km,
        // within a sample of it.
        let start = 80 * 250;
        assert_eq!(laps.len(), 3, "{laps:?}");
        for (i, &(lap, from, to, by_distance)) in laps.iter().enumerate() {
            assert_eq!(lap, i as u16 + 1);
            assert!(by_distance);
            let end = start + (i as i64 + 1) * 60_000;
            assert!((to - end).abs() <= 250, "{laps:?}");
            assert!((from - (end - 60_000)).abs() <= 250, "{laps:?}");
        }
        // Off (the default), the same feed makes no lap.
        assert!(run(&s).laps.is_empty());
    }

    #[test]
    fn a_car_is_racing_once_it_has_left_its_grid_slot() {
        let mut t = LapTracker::new(DriverId::new("PER").unwrap(), &RaceConfig::default());
        let mut at = |i: i64, speed: f32, lap: Option<u16>| {
            let s = Telemetry {
                speed,
                lap,
                ..Telemetry::at(DriverId::new("PER").unwrap(), i * 250)
            };
            t.observe(&s, false);
            t.racing()
        };
        // On the grid, before and after lap 1 is shown: not racing.
        assert!(!at(0, 0.0, None));
        assert!(!at(1, 0.0, Some(1)));
        assert!(!at(2, 0.0, Some(1)));
        // Moving off: about 60 m at 100 km/h after 2 s, racing; a first-corner crash at
        // 300 m is a stop of a racing car.
        let racing: Vec<bool> = (3..11).map(|i| at(i, 100.0, Some(1))).collect();
        assert!(!racing[0] && racing[7], "{racing:?}");
        assert!(at(11, 0.0, Some(1)));
    }

    #[test]
    fn the_last_lap_is_closed_by_its_distance() {
        let mut s = racing_laps(1, 5);
        // After the flag: a slow lap at 90 km/h, still numbered 5.
        s.extend(repeat(200, 90.0, 30.0, 5));
        let r = run(&s);
        let last = r.laps.last().unwrap();
        assert_eq!((last.lap, last.by_distance), (5, true));
        assert!((last.end_ms - 300_000).abs() <= 250, "{}", last.end_ms);
    }

    #[test]
    fn a_retired_car_does_not_complete_its_last_lap() {
        let mut s = racing_laps(1, 4);
        s.extend(repeat(120, 180.0, 100.0, 5)); // half a lap
        s.extend(repeat(400, 0.0, 0.0, 5));
        let r = run(&s);
        assert_eq!(r.laps.last().unwrap().lap, 4);
    }

    fn pit_passage(lap: u16, next: u16, stop_samples: usize) -> Vec<(f32, f32, Option<u16>)> {
        let mut s = vec![];
        s.extend(repeat(8, 80.0, 0.0, lap)); // braking into the pit entry
        s.extend(repeat(40, 60.0, 100.0, lap)); // on the limiter
        s.extend(repeat(stop_samples, 0.0, 0.0, lap)); // the stop
        s.extend(repeat(20, 59.0, 100.0, lap));
        s.extend(repeat(20, 60.0, 100.0, next)); // the line is in the pit lane
        s
    }

    #[test]
    fn a_stop_in_the_pit_lane_is_a_pit_stop_of_the_in_lap() {
        let mut s = racing_laps(1, 3);
        s.extend(repeat(100, 180.0, 100.0, 4));
        s.extend(pit_passage(4, 5, 12));
        s.extend(racing_laps(5, 2));
        let r = run(&s);
        assert_eq!(r.pits.len(), 1, "{:?}", r.pits);
        let p = &r.pits[0];
        assert_eq!((p.lap, p.limit_kmh), (4, 60));
        assert_eq!(p.stationary_ms, 12 * 250);
        assert!(p.pit_out_ms > p.pit_in_ms);
        assert!(r.laps.iter().any(|l| l.lap == 4));
    }

    #[test]
    fn a_drive_on_the_limiter_without_a_stop_or_the_grid_is_not_a_pit_stop() {
        // Standing on the grid before lap 1 (no lap number), a drive-through, the finish.
        let mut s: Vec<_> = vec![(0.0, 0.0, None); 200];
        s.extend(racing_laps(1, 3));
        s.extend(repeat(60, 60.0, 100.0, 4));
        s.extend(repeat(200, 180.0, 100.0, 4));
        // Into the pit lane after the flag and parked: never leaves.
        s.extend(repeat(60, 60.0, 100.0, 4));
        s.extend(repeat(400, 0.0, 0.0, 4));
        let r = run(&s);
        assert!(r.pits.is_empty(), "{:?}", r.pits);
    }

    #[test]
    fn lap_numbers_going_backwards_or_skipping_are_reported_not_laps() {
        let mut s = racing_laps(1, 3);
        s.extend(repeat(10, 180.0, 100.0, 2));
        s.extend(repeat(10, 180.0, 100.0, 3));
        s.extend(repeat(10, 180.0, 100.0, 7));
        let r = run(&s);
        assert_eq!(
            r.anomalies,
            vec![
                LapAnomaly::Backwards { from: 3, to: 2 },
                LapAnomaly::Skipped { from: 3, to: 7 }
            ]
        );
        let laps: Vec<_> = r.laps.iter().map(|l| l.lap).collect();
        assert_eq!(laps, vec![1, 2]);
    }
}
