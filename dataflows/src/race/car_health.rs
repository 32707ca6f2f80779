//! Car health: a car that loses performance against its own baseline and the field at once.
//!
//! Judged on eligible laps only — green, clean (no pit lane, not lap 1) and in free air (no car
//! within `traffic_ms` ahead at the line, or leading) — so rain, a neutralisation, traffic and
//! pit laps explain nothing away by accident. On such a lap the car's top speed is compared
//! with the field's median top speed on the same lap; its usual gap is the median over its
//! earlier eligible laps. A lap is a deficit when the top speed is down against that usual gap
//! by `strong_kmh` or more, or by `speed_kmh` or more together with a second sign: a gear it
//! reached on nearly every lap no longer reached, or its RPM ceiling `rpm` below its usual.
//! Two deficit laps in a row make one `car_health` alert (high), on the first of them.

use super::{LapRow, RaceConfig};
use crate::alert::{Alert, AlertStatus, AlertType, Severity};
use crate::dataflow::Epoch;
use crate::record::DriverId;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

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

fn median(mut v: Vec<i32>) -> i32 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The first deficit of one driver, from its laps in lap order.
pub fn first_deficit(driver: DriverId, laps: &[&HealthLap], cfg: &RaceConfig) -> Option<CarHealth> {
    let mut baseline: Vec<&HealthLap> = Vec::new();
    // Deficit laps in a row: the lap, its top-speed delta, a gear lost, its RPM delta.
    type Deficit<'a> = (&'a HealthLap, i32, Option<(u8, u8)>, i32);
    let mut run: Vec<Deficit> = Vec::new();
    for l in laps.iter().filter(|l| l.eligible) {
        if baseline.len() < BASELINE_LAPS {
            baseline.push(l);
            continue;
        }
        let usual_gap = median(
            baseline
                .iter()
                .map(|b| b.top_speed - b.field_top_speed)
                .collect(),
        );
        let usual_rpm = median(baseline.iter().map(|b| b.max_rpm).collect());
        let usual_gear = baseline.iter().map(|b| b.top_gear).max().unwrap_or(0);
        let reached = baseline.iter().filter(|b| b.top_gear >= usual_gear).count();
        let gear_is_usual = reached * 1000 >= USUAL_GEAR_PERMILLE * baseline.len();

        let speed_delta = (l.top_speed - l.field_top_speed) - usual_gap;
        let gear_lost =
            (gear_is_usual && l.top_gear < usual_gear).then_some((usual_gear, l.top_gear));
        let rpm_delta = l.max_rpm - usual_rpm;
        let second_sign = gear_lost.is_some() || rpm_delta <= -cfg.health_rpm;
        let deficit = speed_delta <= -cfg.health_strong_kmh
            || (speed_delta <= -cfg.health_speed_kmh && second_sign);
        if deficit {
            run.push((
                l,
                speed_delta,
                gear_lost,
                if rpm_delta <= -cfg.health_rpm {
                    rpm_delta
                } else {
                    0
                },
            ));
            if run.len() == 2 {
                let (first, delta, gear, rpm) = run[0];
                return Some(CarHealth {
                    driver,
                    lap: first.lap,
                    start_ms: first.start_ms,
                    end_ms: l.end_ms,
                    top_speed_delta_kmh: delta,
                    gear_lost: gear.or(run[1].2),
                    rpm_delta: rpm,
                });
            }
        } else {
            // A lap that looks like the car's usual self joins its baseline.
            for (r, ..) in run.drain(..) {
                baseline.push(r);
            }
            baseline.push(l);
        }
    }
    None
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
    let field_top = rows
        .clone()
        .filter(|r| r.lap.clean && r.field.state == FieldState::Green)
        .map(|r| (r.lap.done.lap, r.lap.done.max_speed_kmh as i32))
        .reduce_named("FieldTopSpeed", |_lap, input, output| {
            let speeds: Vec<i32> = input
                .iter()
                .filter(|(_, d)| *d > 0)
                .map(|(v, _)| **v)
                .collect();
            if !speeds.is_empty() {
                output.push((median(speeds), 1isize));
            }
        });
    let cfg = cfg.clone();
    rows.map(move |r| {
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
    })
    .reduce_named("CarHealth", move |driver, input, output| {
        let laps: Vec<&HealthLap> = input
            .iter()
            .filter(|(_, d)| *d > 0)
            .map(|(l, _)| *l)
            .collect();
        if let Some(h) = first_deficit(*driver, &laps, &cfg) {
            output.push((h, 1isize));
        }
    })
    .map(|(_driver, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn one_slow_lap_or_a_small_drop_alone_is_not() {
        let mut laps: Vec<_> = (2..20).map(|n| lap(n, 288, 7, 11_900)).collect();
        laps.push(lap(20, 260, 7, 11_900));
        laps.extend((21..30).map(|n| lap(n, 288, 7, 11_900)));
        laps.extend((30..40).map(|n| lap(n, 278, 7, 11_900)));
        assert_eq!(find(&laps), None);
    }
}
