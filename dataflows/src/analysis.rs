//! Everything computed for one driver, one sample at a time, in arrival order.

use crate::alert::{AlertType, Severity};
use crate::brake::BrakeThermal;
use crate::config::DetectorConfig;
use crate::episode::{Episode, Worse};
use crate::gear::GearAnomalies;
use crate::output::{DriverTotals, Output};
use crate::race::lap_tracker::{LapAnomaly, LapTracker};
use crate::race::retirement::{CarStop, Retirement, StopChange};
use crate::race::RaceFact;
use crate::record::{DriverId, Telemetry};
use crate::wheel_spin::{SpinReading, WheelSpin};
use crate::window::{Rolling, Tumbling};

/// Values derived from one sample, for whoever wants to show them next to the raw ones.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Derived {
    pub spin: Option<SpinReading>,
    pub brake_temp_c: f64,
}

/// The alert episodes of one driver, in the order they are evaluated.
#[derive(Clone, Debug)]
struct Episodes {
    high_speed: Episode,
    drs_open: Episode,
    drs_closed: Episode,
    brake_medium: Episode,
    brake_high: Episode,
    wheel_spin: Episode,
    lugging: Episode,
    over_revving: Episode,
    rapid_shifting: Episode,
    invalid_gear: Episode,
}

impl Episodes {
    fn new(driver: DriverId, cfg: &DetectorConfig) -> Self {
        let ep = |t, sev, threshold, worse, consecutive| {
            Episode::new(driver, t, sev, threshold, worse, consecutive)
        };
        let (a, g, w) = (&cfg.alerts, &cfg.gear, &cfg.wheel_spin);
        use AlertType::*;
        use Worse::*;
        Episodes {
            high_speed: ep(HighSpeed, Severity::High, a.high_speed_kmh, Higher, 1),
            drs_open: ep(DrsActivated, Severity::Medium, 10.0, Higher, 1),
            drs_closed: ep(DrsDeactivated, Severity::Low, 10.0, Lower, 1),
            brake_medium: ep(
                BrakeTemperature,
                Severity::Medium,
                a.brake_temp_medium_c,
                Higher,
                1,
            ),
            brake_high: ep(
                BrakeTemperature,
                Severity::High,
                a.brake_temp_high_c,
                Higher,
                1,
            ),
            wheel_spin: ep(
                WheelSpin,
                w.severity,
                (w.spin_factor - 1.0) * 100.0,
                Higher,
                w.consecutive,
            ),
            lugging: ep(
                Lugging,
                g.lugging_severity,
                g.lugging_max_rpm,
                Lower,
                g.consecutive,
            ),
            over_revving: ep(
                OverRevving,
                g.over_rev_severity,
                g.over_rev_min_rpm,
                Higher,
                g.consecutive,
            ),
            rapid_shifting: ep(
                RapidShifting,
                g.rapid_shift_severity,
                g.rapid_max_shifts as f64,
                Higher,
                g.consecutive,
            ),
            // Every glitch sample is flagged: no run of samples is asked for.
            invalid_gear: ep(InvalidGear, g.invalid_gear_severity, 8.0, Higher, 1),
        }
    }

    fn all(&mut self) -> [&mut Episode; 10] {
        [
            &mut self.high_speed,
            &mut self.drs_open,
            &mut self.drs_closed,
            &mut self.brake_medium,
            &mut self.brake_high,
            &mut self.wheel_spin,
            &mut self.lugging,
            &mut self.over_revving,
            &mut self.rapid_shifting,
            &mut self.invalid_gear,
        ]
    }
}

#[derive(Clone, Debug)]
pub struct DriverAnalysis {
    driver: DriverId,
    records: u64,
    first_ms: i64,
    last_ms: i64,
    tumbling: Vec<Tumbling>,
    rolling: Rolling,
    spin: WheelSpin,
    gear: GearAnomalies,
    brake: BrakeThermal,
    episodes: Episodes,
    race: LapTracker,
    retirement: Retirement,
    high_speed_kmh: f64,
    brake_medium_c: f64,
    brake_high_c: f64,
    brake_on_estimate: bool,
    drs_was_open: bool,
    /// The race facts of the last sample observed (or replayed), until the next one.
    facts: Vec<RaceFact>,
    /// `DetectorConfig::finish_replayed`.
    finish_replayed: bool,
}

impl DriverAnalysis {
    pub fn new(driver: DriverId, cfg: &DetectorConfig) -> Self {
        DriverAnalysis {
            driver,
            records: 0,
            first_ms: 0,
            last_ms: 0,
            tumbling: cfg
                .windows
                .tumbling_ms
                .iter()
                .map(|&w| Tumbling::new(driver, w))
                .collect(),
            rolling: Rolling::new(driver, cfg.windows.rolling_samples),
            spin: WheelSpin::new(&cfg.wheel_spin),
            gear: GearAnomalies::new(&cfg.gear),
            brake: BrakeThermal::default(),
            episodes: Episodes::new(driver, cfg),
            race: LapTracker::new(driver, &cfg.race),
            retirement: Retirement::new(driver, &cfg.race),
            high_speed_kmh: cfg.alerts.high_speed_kmh,
            brake_medium_c: cfg.alerts.brake_temp_medium_c,
            brake_high_c: cfg.alerts.brake_temp_high_c,
            brake_on_estimate: cfg.alerts.brake_alerts_on_estimate,
            drs_was_open: false,
            facts: Vec::new(),
            finish_replayed: cfg.finish_replayed,
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Analyses one sample of this driver; alerts and closed windows go to `out`.
    pub fn observe(&mut self, s: &Telemetry, out: impl FnMut(Output)) -> Derived {
        if self.records == 0 {
            self.first_ms = s.ts_ms;
        }
        self.records += 1;
        self.last_ms = s.ts_ms;
        self.update(s, out)
    }

    /// Takes a sample into the state only, emitting no output: for samples whose outputs were
    /// delivered before a restart.
    ///
    /// Its race facts (laps, pit stops, stopped cars) are still there to take
    /// ([`DriverAnalysis::take_facts`]): the race views are rebuilt from them after a restart,
    /// and a view row sent again is the same row.
    pub fn replay(&mut self, s: &Telemetry) {
        self.update(s, |_| {});
    }

    /// The race facts the last sample observed or replayed gave (none, most of the time).
    pub fn take_facts(&mut self) -> std::vec::Drain<'_, RaceFact> {
        self.facts.drain(..)
    }

    fn update(&mut self, s: &Telemetry, mut out: impl FnMut(Output)) -> Derived {
        self.facts.clear();
        self.rolling.observe(s);
        for (i, window) in self.tumbling.iter_mut().enumerate() {
            if let Some(closed) = window.observe(s) {
                out(Output::Window(closed));
                // The rolling window is reported at the pace of the first tumbling window.
                if i == 0 {
                    if let Some(rolling) = self.rolling.stats() {
                        out(Output::Window(rolling));
                    }
                }
            }
        }

        let spin = self.spin.observe(s);
        let race = self.race.observe(s, spin.is_some_and(|r| r.spinning));
        if let Some(lap) = race.lap {
            self.facts.push(RaceFact::Lap(lap));
        }
        if let Some(stop) = race.pit {
            self.facts.push(RaceFact::PitStop(stop));
        }
        match self.retirement.observe(
            s,
            self.race.in_pit_lane(),
            self.race.lap().filter(|_| self.race.racing()),
        ) {
            Some(StopChange::Stopped(stop)) => self.facts.push(RaceFact::CarStop(stop, 1)),
            Some(StopChange::DroveOff(stop, at_ms)) => {
                // The standing stop is withdrawn and kept as one that ended.
                let ended = CarStop {
                    ended_ms: Some(at_ms),
                    ..stop.clone()
                };
                self.facts.push(RaceFact::CarStop(stop, -1));
                self.facts.push(RaceFact::CarStop(ended, 1));
            }
            None => {}
        }
        if let Some(anomaly) = race.anomaly {
            let (what, from, to) = match anomaly {
                LapAnomaly::Backwards { from, to } => ("went backwards", from, to),
                LapAnomaly::Skipped { from, to } => ("skipped laps", from, to),
            };
            tracing::warn!(
                driver = %self.driver,
                from,
                to,
                ts_ms = s.ts_ms,
                "lap number {what}: laps in between are not reported, no pit stop is inferred"
            );
        }
        let gear = self.gear.observe(s);
        let brake_temp_c = self.brake.observe(s);
        let brake_judged = s.brake_temp.is_some() || self.brake_on_estimate;
        let speed = s.speed as f64;
        let drs_open = s.drs_open();
        let drs_closed_now = self.drs_was_open && !drs_open;
        self.drs_was_open = drs_open;

        let e = &mut self.episodes;
        let readings = [
            (
                &mut e.high_speed,
                (speed > self.high_speed_kmh).then_some(speed),
            ),
            (&mut e.drs_open, drs_open.then_some(s.drs as f64)),
            (&mut e.drs_closed, drs_closed_now.then_some(s.drs as f64)),
            (
                &mut e.brake_medium,
                (brake_judged && brake_temp_c > self.brake_medium_c).then_some(brake_temp_c),
            ),
            (
                &mut e.brake_high,
                (brake_judged && brake_temp_c > self.brake_high_c).then_some(brake_temp_c),
            ),
            (
                &mut e.wheel_spin,
                spin.filter(|r| r.spinning).map(|r| r.spin_pct),
            ),
            (&mut e.lugging, gear.lugging),
            (&mut e.over_revving, gear.over_revving),
            (&mut e.rapid_shifting, gear.rapid_shifting),
            (&mut e.invalid_gear, gear.invalid_gear),
        ];
        for (episode, reading) in readings {
            if let Some(alert) = episode.observe(s, reading) {
                out(Output::Alert(alert));
            }
        }
        Derived { spin, brake_temp_c }
    }

    /// The driver's input has ended: closes open windows and episodes, reports totals.
    /// A driver that was only replayed (after a restart, with nothing new) emits nothing: the
    /// run before this one closed its windows and episodes already; unless that run did not
    /// reach its end (`DetectorConfig::finish_replayed`).
    pub fn finish(&mut self, mut out: impl FnMut(Output)) {
        if self.records == 0 && !self.finish_replayed {
            return;
        }
        for (i, window) in self.tumbling.iter_mut().enumerate() {
            if let Some(closed) = window.finish() {
                out(Output::Window(closed));
                if i == 0 {
                    if let Some(rolling) = self.rolling.stats() {
                        out(Output::Window(rolling));
                    }
                }
            }
        }
        for episode in self.episodes.all() {
            if let Some(alert) = episode.close() {
                out(Output::Alert(alert));
            }
        }
        out(Output::DriverTotals(DriverTotals {
            driver: self.driver,
            records: self.records,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertStatus};

    fn s(ts_ms: i64, speed: f32, gear: u8, rpm: f32, drs: u8) -> Telemetry {
        Telemetry {
            speed,
            rpm,
            throttle: 100.0,
            lap: Some(7),
            gear,
            drs,
            ..Telemetry::at(DriverId::new("PER").unwrap(), ts_ms)
        }
    }

    fn run(samples: &[Telemetry]) -> Vec<Output> {
        let mut a = DriverAnalysis::new(DriverId::new("PER").unwrap(), &DetectorConfig::default());
        let mut out = Vec::new();
        for x in samples {
            a.observe(x, |o| out.push(o));
        }
        a.finish(|o| out.push(o));
        out
    }

    fn alerts(out: &[Output], status: AlertStatus) -> Vec<Alert> {
        out.iter()
            .filter_map(|o| match o {
                Output::Alert(a) if a.status == status => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn drs_open_and_close_raise_one_alert_each() {
        let out = run(&[
            s(0, 280.0, 7, 11000.0, 8),
            s(250, 285.0, 7, 11100.0, 12),
            s(500, 290.0, 7, 11200.0, 12),
            s(750, 295.0, 8, 10500.0, 14),
            s(1000, 250.0, 7, 10000.0, 1),
            s(1250, 200.0, 6, 10000.0, 1),
        ]);
        let cleared = alerts(&out, AlertStatus::Cleared);
        let types: Vec<_> = cleared
            .iter()
            .map(|a| (a.alert_type, a.start_ms, a.end_ms))
            .collect();
        assert_eq!(
            types,
            vec![
                (AlertType::DrsActivated, 250, 750),
                (AlertType::DrsDeactivated, 1000, 1000)
            ]
        );
        assert_eq!(cleared[0].severity, Severity::Medium);
        assert_eq!(cleared[1].severity, Severity::Low);
        assert_eq!(alerts(&out, AlertStatus::Raised).len(), 2);
    }

    #[test]
    fn high_speed_episode_carries_the_peak_and_lap() {
        let out = run(&[
            s(0, 299.0, 8, 11000.0, 0),
            s(250, 301.0, 8, 11100.0, 0),
            s(500, 312.5, 8, 11200.0, 0),
            s(750, 305.0, 8, 11200.0, 0),
            s(1000, 280.0, 8, 10000.0, 0),
        ]);
        let cleared = alerts(&out, AlertStatus::Cleared);
        assert_eq!(cleared.len(), 1);
        let a = &cleared[0];
        assert_eq!(
            (a.alert_type, a.severity),
            (AlertType::HighSpeed, Severity::High)
        );
        assert_eq!(
            (a.start_ms, a.end_ms, a.samples, a.peak),
            (250, 750, 3, 312.5)
        );
        assert_eq!(a.lap, Some(7));
        assert_eq!(
            a.alert_id,
            Alert::id_for(a.driver, a.alert_type, a.severity, 250)
        );
    }

    #[test]
    fn replayed_samples_rebuild_state_without_output() {
        let samples: Vec<_> = (0..12).map(|i| s(i * 250, 200.0, 6, 7000.0, 0)).collect();
        let whole = run(&samples);
        // Replay the first 5 (as after a restart), then go on live.
        let mut a = DriverAnalysis::new(DriverId::new("PER").unwrap(), &DetectorConfig::default());
        let mut out = Vec::new();
        for x in &samples[..5] {
            a.replay(x);
        }
        for x in &samples[5..] {
            a.observe(x, |o| out.push(o));
        }
        a.finish(|o| out.push(o));
        // The lugging episode started in the replayed part: cleared with the same id and start.
        let full = alerts(&whole, AlertStatus::Cleared);
        let resumed = alerts(&out, AlertStatus::Cleared);
        assert_eq!(full, resumed);
        assert!(
            alerts(&out, AlertStatus::Raised).is_empty(),
            "raised before the restart"
        );
        assert!(matches!(out.last(), Some(Output::DriverTotals(t)) if t.records == 7));
    }

    #[test]
    fn a_driver_only_replayed_closes_at_the_end_only_when_the_replaced_run_did_not() {
        let samples: Vec<_> = (0..12).map(|i| s(i * 250, 200.0, 6, 7000.0, 0)).collect();
        let whole = run(&samples);
        let at_end = |finish_replayed: bool| {
            let cfg = DetectorConfig {
                finish_replayed,
                ..DetectorConfig::default()
            };
            let mut a = DriverAnalysis::new(DriverId::new("PER").unwrap(), &cfg);
            for x in &samples {
                a.replay(x);
            }
            let mut out = Vec::new();
            a.finish(|o| out.push(o));
            out
        };
        // The replaced run ended its input: it closed everything already.
        assert!(at_end(false).is_empty());
        // It did not: its open windows and episodes close now, as the uninterrupted run's did.
        let closed = at_end(true);
        let windows = |out: &[Output]| -> Vec<String> {
            out.iter()
                .filter(|o| matches!(o, Output::Window(_)))
                .map(|w| format!("{w:?}"))
                .collect()
        };
        let (closed_windows, all_windows) = (windows(&closed), windows(&whole));
        assert!(!closed_windows.is_empty());
        assert_eq!(
            closed_windows,
            all_windows[all_windows.len() - closed_windows.len()..],
            "the windows the uninterrupted run closed at its end"
        );
        assert_eq!(
            alerts(&closed, AlertStatus::Cleared),
            alerts(&whole, AlertStatus::Cleared)
        );
    }

    #[test]
    fn finish_closes_windows_and_reports_totals() {
        let out = run(&[s(100, 100.0, 3, 9000.0, 0), s(1100, 100.0, 3, 9000.0, 0)]);
        let windows = out
            .iter()
            .filter(|o| matches!(o, Output::Window(_)))
            .count();
        // 1 s windows 0..1000 and 1000..2000, each followed by a rolling snapshot; one 5 s window.
        assert_eq!(windows, 2 + 2 + 1);
        assert!(matches!(out.last(), Some(Output::DriverTotals(t)) if t.records == 2));
    }
}
