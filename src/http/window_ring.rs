//! A driver's one-second window aggregates as the store keeps them: 44 bytes each instead of
//! the 120 of a [`WindowStats`] (what every window of a ring shares, the driver, the kind and
//! the width, is not repeated), in a ring reserved at its full size.
//!
//! Speed and rpm (minimum, mean, maximum) are kept to the resolution of the point columns
//! (0.01 km/h, 0.5 rpm, see [`super::columns`]), the mean throttle to 0.01 %, the brake
//! ratio to 0.0001; a window's count and gear bins go to 65,535 samples (a feed 65 kHz
//! fast), more are kept as 65,535. A window more than 24.8 days from the ring's first starts
//! the ring over (a ring of a few hours never spans that).

use super::sample::{Code, Fixed, NONE, RPM, SPEED};
use pitwall_dataflows::window::{MinMeanMax, WindowKind, WindowStats, GEAR_BINS};
use pitwall_dataflows::DriverId;
use std::collections::VecDeque;

/// One tumbling window of the store's width, less what the ring knows.
#[derive(Clone, Copy, Debug)]
struct Compact {
    /// ms after the ring's base.
    start: u32,
    count: u16,
    speed: [Code; 3],
    rpm: [Code; 3],
    /// [`NONE`] for none.
    throttle_mean: Code,
    brake_ratio: Code,
    /// `u16::MAX` for none.
    lap: u16,
    gears: [u16; GEAR_BINS],
}

const NO_LAP: u16 = u16::MAX;

const THROTTLE_MEAN: Fixed = Fixed {
    per_unit: 100.0,
    min: 0.0,
};
const BRAKE_RATIO: Fixed = Fixed {
    per_unit: 10_000.0,
    min: 0.0,
};

/// Window starts are kept as `u32` ms after a base this far before the first.
const BASE_BEFORE_FIRST_MS: i64 = 1 << 31;

pub struct WindowRing {
    capacity: usize,
    base_ms: Option<i64>,
    windows: VecDeque<Compact>,
}

impl WindowRing {
    pub fn new(capacity: usize) -> WindowRing {
        WindowRing {
            capacity: capacity.max(1),
            base_ms: None,
            windows: VecDeque::new(),
        }
    }

    pub fn push(&mut self, w: &WindowStats) {
        if self.windows.capacity() == 0 {
            self.windows.reserve_exact(self.capacity);
        }
        let base = *self
            .base_ms
            .get_or_insert(w.start_ms.saturating_sub(BASE_BEFORE_FIRST_MS));
        let Ok(start) = u32::try_from(w.start_ms.saturating_sub(base)) else {
            self.windows.clear();
            self.base_ms = None;
            return self.push(w);
        };
        if self.windows.len() == self.capacity {
            self.windows.pop_front();
        }
        let mmm = |codec: Fixed, m: &MinMeanMax| [m.min, m.mean, m.max].map(|v| codec.encode(v));
        self.windows.push_back(Compact {
            start,
            count: w.count.min(u16::MAX as u32) as u16,
            speed: mmm(SPEED, &w.speed),
            rpm: mmm(RPM, &w.rpm),
            throttle_mean: w.throttle_mean.map_or(NONE, |t| THROTTLE_MEAN.encode(t)),
            brake_ratio: BRAKE_RATIO.encode(w.brake_ratio),
            // A lap is at most 500 (validated), well below the sentinel.
            lap: w.lap.map_or(NO_LAP, |l| l.min(NO_LAP - 1)),
            gears: w.gear_histogram.map(|n| n.min(u16::MAX as u32) as u16),
        });
    }

    fn start_ms(&self, c: &Compact) -> i64 {
        self.base_ms.unwrap_or(0) + c.start as i64
    }

    /// `(end_ms, value)` of each window ending within `[from, to]`, oldest first, where
    /// `value` reads what it needs from the window rebuilt with `width_ms`.
    pub fn series(
        &self,
        driver: DriverId,
        width_ms: i64,
        from: i64,
        to: i64,
        value: impl Fn(&WindowStats) -> Option<f32>,
    ) -> Vec<(i64, f32)> {
        self.windows
            .iter()
            .filter(|c| (from..=to).contains(&(self.start_ms(c) + width_ms)))
            .filter_map(|c| {
                let w = self.stats(c, driver, width_ms);
                value(&w).map(|v| (w.end_ms, v))
            })
            .collect()
    }

    /// The newest `max` windows ending within `[from, to]`, as the dataflow made them, oldest
    /// first.
    pub fn windows(
        &self,
        driver: DriverId,
        width_ms: i64,
        from: i64,
        to: i64,
        max: usize,
    ) -> Vec<WindowStats> {
        let mut newest: Vec<WindowStats> = self
            .windows
            .iter()
            .rev()
            .filter(|c| (from..=to).contains(&(self.start_ms(c) + width_ms)))
            .take(max)
            .map(|c| self.stats(c, driver, width_ms))
            .collect();
        newest.reverse();
        newest
    }

    fn stats(&self, c: &Compact, driver: DriverId, width_ms: i64) -> WindowStats {
        let start_ms = self.start_ms(c);
        let mmm = |codec: Fixed, codes: [Code; 3]| {
            let [min, mean, max] = codes.map(|c| codec.decode(c));
            MinMeanMax { min, mean, max }
        };
        WindowStats {
            driver,
            kind: WindowKind::Tumbling,
            size: width_ms,
            start_ms,
            end_ms: start_ms + width_ms,
            lap: (c.lap != NO_LAP).then_some(c.lap),
            count: c.count.into(),
            speed: mmm(SPEED, c.speed),
            rpm: mmm(RPM, c.rpm),
            throttle_mean: (c.throttle_mean != NONE).then(|| THROTTLE_MEAN.decode(c.throttle_mean)),
            brake_ratio: BRAKE_RATIO.decode(c.brake_ratio),
            gear_histogram: c.gears.map(u32::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_comes_back_as_it_went_in_and_the_ring_keeps_the_newest() {
        assert_eq!(std::mem::size_of::<Compact>(), 44);
        let driver = DriverId::new("VER").unwrap();
        let window = |start_ms: i64, lap: Option<u16>, throttle: Option<f32>| WindowStats {
            driver,
            kind: WindowKind::Tumbling,
            size: 1000,
            start_ms,
            end_ms: start_ms + 1000,
            lap,
            count: 4,
            speed: MinMeanMax {
                min: 101.5,
                mean: 103.12,
                max: 110.0,
            },
            rpm: MinMeanMax {
                min: 9000.0,
                mean: 9500.5,
                max: 10_000.0,
            },
            throttle_mean: throttle,
            brake_ratio: 0.25,
            gear_histogram: [0, 0, 0, 1, 3, 0, 0, 0, 0, 0],
        };
        let mut ring = WindowRing::new(2);
        let ws = [
            window(1_685_278_800_000, Some(1), Some(99.5)),
            window(1_685_278_801_000, None, None),
            window(1_685_278_802_000, Some(500), Some(0.0)),
        ];
        for w in &ws {
            ring.push(w);
        }
        let json = |w: &[WindowStats]| serde_json::to_value(w).unwrap();
        assert_eq!(
            json(&ring.windows(driver, 1000, i64::MIN, i64::MAX, 10)),
            json(&ws[1..])
        );
        assert_eq!(
            json(&ring.windows(driver, 1000, i64::MIN, i64::MAX, 1)),
            json(&ws[2..]),
            "the newest"
        );
        assert_eq!(
            ring.series(driver, 1000, i64::MIN, 1_685_278_802_000, |w| Some(
                w.speed.mean
            )),
            vec![(1_685_278_802_000, 103.12)]
        );
        // Rounded to the stated resolution.
        let mut rounded = window(1_685_278_803_000, None, Some(33.333));
        rounded.speed.mean = 103.123;
        rounded.rpm.mean = 9500.3;
        rounded.brake_ratio = 1.0 / 3.0;
        ring.push(&rounded);
        let w = &ring.windows(driver, 1000, i64::MIN, i64::MAX, 1)[0];
        assert_eq!(
            (w.speed.mean, w.rpm.mean, w.throttle_mean, w.brake_ratio),
            (103.12, 9500.5, Some(33.33), 0.3333)
        );
        // A window weeks after the first starts the ring over.
        let far = window(1_685_278_803_000 + 30 * 86_400_000, None, None);
        ring.push(&far);
        assert_eq!(
            json(&ring.windows(driver, 1000, i64::MIN, i64::MAX, 10)),
            json(&[far])
        );
    }
}
