//! Per-driver window aggregates: event-time tumbling windows and a count-based rolling window.
//!
//! Both keep running sums, so an update is O(1) and allocation-free once the rolling buffer
//! has reached its size; the rolling min/max use monotonic queues.

use crate::record::{DriverId, Telemetry, MAX_GEAR};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Bins of the gear histogram: gears 0..=8, then one bin for glitch values.
pub const GEAR_BINS: usize = MAX_GEAR as usize + 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// `size` is the width in ms; `end_ms` is exclusive.
    Tumbling,
    /// `size` is the number of samples; `end_ms` is the newest sample's time.
    Rolling,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct MinMeanMax {
    pub min: f32,
    pub mean: f32,
    pub max: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub driver: DriverId,
    pub kind: WindowKind,
    pub size: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub lap: Option<u16>,
    pub count: u32,
    pub speed: MinMeanMax,
    pub rpm: MinMeanMax,
    /// Mean pedal position over the samples that had one (the 104 sentinel is left out).
    pub throttle_mean: Option<f32>,
    pub brake_ratio: f32,
    pub gear_histogram: [u32; GEAR_BINS],
}

fn gear_bin(gear: u8) -> usize {
    (gear as usize).min(GEAR_BINS - 1)
}

/// Running sums shared by both window kinds.
#[derive(Clone, Debug, Default)]
struct Sums {
    count: u32,
    speed: f64,
    rpm: f64,
    throttle: f64,
    throttle_n: u32,
    brake_n: u32,
    gears: [u32; GEAR_BINS],
}

impl Sums {
    fn add(&mut self, s: &Telemetry) {
        self.count += 1;
        self.speed += s.speed as f64;
        self.rpm += s.rpm as f64;
        if let Some(t) = s.throttle_pct() {
            self.throttle += t as f64;
            self.throttle_n += 1;
        }
        self.brake_n += s.brake as u32;
        self.gears[gear_bin(s.gear)] += 1;
    }

    fn remove(&mut self, s: &Telemetry) {
        self.count -= 1;
        self.speed -= s.speed as f64;
        self.rpm -= s.rpm as f64;
        if let Some(t) = s.throttle_pct() {
            self.throttle -= t as f64;
            self.throttle_n -= 1;
        }
        self.brake_n -= s.brake as u32;
        self.gears[gear_bin(s.gear)] -= 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn stats(
        &self,
        driver: DriverId,
        kind: WindowKind,
        size: i64,
        start_ms: i64,
        end_ms: i64,
        lap: Option<u16>,
        speed: (f32, f32),
        rpm: (f32, f32),
    ) -> WindowStats {
        let n = self.count.max(1) as f64;
        WindowStats {
            driver,
            kind,
            size,
            start_ms,
            end_ms,
            lap,
            count: self.count,
            speed: MinMeanMax {
                min: speed.0,
                mean: (self.speed / n) as f32,
                max: speed.1,
            },
            rpm: MinMeanMax {
                min: rpm.0,
                mean: (self.rpm / n) as f32,
                max: rpm.1,
            },
            throttle_mean: (self.throttle_n > 0)
                .then(|| (self.throttle / self.throttle_n as f64) as f32),
            brake_ratio: (self.brake_n as f64 / n) as f32,
            gear_histogram: self.gears,
        }
    }
}

/// Event-time tumbling window of one width, aligned to multiples of the width.
#[derive(Clone, Debug)]
pub struct Tumbling {
    driver: DriverId,
    width_ms: i64,
    start_ms: Option<i64>,
    lap: Option<u16>,
    sums: Sums,
    speed: (f32, f32),
    rpm: (f32, f32),
}

impl Tumbling {
    pub fn new(driver: DriverId, width_ms: i64) -> Self {
        Tumbling {
            driver,
            width_ms,
            start_ms: None,
            lap: None,
            sums: Sums::default(),
            speed: (f32::MAX, f32::MIN),
            rpm: (f32::MAX, f32::MIN),
        }
    }

    /// Adds a sample; returns the window it closed, if it opened a later one. A sample older
    /// than the open window (out of order) is counted in the open window rather than lost.
    pub fn observe(&mut self, s: &Telemetry) -> Option<WindowStats> {
        let window = s.ts_ms.div_euclid(self.width_ms) * self.width_ms;
        let closed = match self.start_ms {
            Some(open) if window > open => {
                let closed = self.take();
                self.start_ms = Some(window);
                closed
            }
            Some(_) => None,
            None => {
                self.start_ms = Some(window);
                None
            }
        };
        self.sums.add(s);
        self.lap = s.lap;
        self.speed = (self.speed.0.min(s.speed), self.speed.1.max(s.speed));
        self.rpm = (self.rpm.0.min(s.rpm), self.rpm.1.max(s.rpm));
        closed
    }

    /// Closes the open window (end of stream).
    pub fn finish(&mut self) -> Option<WindowStats> {
        let closed = self.take();
        self.start_ms = None;
        closed
    }

    fn take(&mut self) -> Option<WindowStats> {
        let start = self.start_ms?;
        if self.sums.count == 0 {
            return None;
        }
        let stats = self.sums.stats(
            self.driver,
            WindowKind::Tumbling,
            self.width_ms,
            start,
            start + self.width_ms,
            self.lap,
            self.speed,
            self.rpm,
        );
        self.sums = Sums::default();
        self.speed = (f32::MAX, f32::MIN);
        self.rpm = (f32::MAX, f32::MIN);
        Some(stats)
    }
}

/// Monotonic queue giving the max (or, with negated values, the min) of a sliding window.
#[derive(Clone, Debug, Default)]
struct MonotonicMax {
    queue: VecDeque<(u64, f32)>,
}

impl MonotonicMax {
    fn push(&mut self, seq: u64, value: f32) {
        while matches!(self.queue.back(), Some(&(_, v)) if v <= value) {
            self.queue.pop_back();
        }
        self.queue.push_back((seq, value));
    }

    fn expire(&mut self, oldest_kept: u64) {
        while matches!(self.queue.front(), Some(&(seq, _)) if seq < oldest_kept) {
            self.queue.pop_front();
        }
    }

    fn max(&self) -> f32 {
        self.queue.front().map_or(0.0, |&(_, v)| v)
    }
}

/// The last `capacity` samples of one driver.
#[derive(Clone, Debug)]
pub struct Rolling {
    driver: DriverId,
    capacity: usize,
    samples: VecDeque<Telemetry>,
    next_seq: u64,
    sums: Sums,
    speed_max: MonotonicMax,
    speed_min: MonotonicMax,
    rpm_max: MonotonicMax,
    rpm_min: MonotonicMax,
}

impl Rolling {
    pub fn new(driver: DriverId, capacity: usize) -> Self {
        Rolling {
            driver,
            capacity: capacity.max(1),
            samples: VecDeque::new(),
            next_seq: 0,
            sums: Sums::default(),
            speed_max: MonotonicMax::default(),
            speed_min: MonotonicMax::default(),
            rpm_max: MonotonicMax::default(),
            rpm_min: MonotonicMax::default(),
        }
    }

    pub fn observe(&mut self, s: &Telemetry) {
        if self.samples.len() == self.capacity {
            if let Some(old) = self.samples.pop_front() {
                self.sums.remove(&old);
            }
        }
        self.samples.push_back(*s);
        self.sums.add(s);
        let seq = self.next_seq;
        self.next_seq += 1;
        let oldest = self.next_seq - self.samples.len() as u64;
        for (queue, value) in [
            (&mut self.speed_max, s.speed),
            (&mut self.speed_min, -s.speed),
            (&mut self.rpm_max, s.rpm),
            (&mut self.rpm_min, -s.rpm),
        ] {
            queue.push(seq, value);
            queue.expire(oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn stats(&self) -> Option<WindowStats> {
        let first = self.samples.front()?;
        let last = self.samples.back()?;
        Some(self.sums.stats(
            self.driver,
            WindowKind::Rolling,
            self.capacity as i64,
            first.ts_ms,
            last.ts_ms,
            last.lap,
            (-self.speed_min.max(), self.speed_max.max()),
            (-self.rpm_min.max(), self.rpm_max.max()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts_ms: i64, speed: f32, rpm: f32, gear: u8, throttle: f32, brake: bool) -> Telemetry {
        Telemetry {
            speed,
            rpm,
            throttle,
            lap: Some(1),
            gear,
            brake,
            ..Telemetry::at(DriverId::new("HAM").unwrap(), ts_ms)
        }
    }

    #[test]
    fn tumbling_windows_close_on_the_next_window_and_compute_by_hand() {
        let mut w = Tumbling::new(DriverId::new("HAM").unwrap(), 1000);
        assert!(w
            .observe(&s(1100, 100.0, 10000.0, 3, 50.0, false))
            .is_none());
        assert!(w
            .observe(&s(1400, 200.0, 12000.0, 4, 104.0, true))
            .is_none());
        assert!(w
            .observe(&s(1900, 150.0, 8000.0, 12, 100.0, false))
            .is_none());
        // 3100 skips the empty 2000..3000 window and closes 1000..2000.
        let c = w.observe(&s(3100, 10.0, 5000.0, 1, 0.0, true)).unwrap();
        assert_eq!(
            (c.start_ms, c.end_ms, c.count, c.size),
            (1000, 2000, 3, 1000)
        );
        assert_eq!(
            c.speed,
            MinMeanMax {
                min: 100.0,
                mean: 150.0,
                max: 200.0
            }
        );
        assert_eq!(
            c.rpm,
            MinMeanMax {
                min: 8000.0,
                mean: 10000.0,
                max: 12000.0
            }
        );
        assert_eq!(c.throttle_mean, Some(75.0), "the 104 sentinel is left out");
        assert!((c.brake_ratio - 1.0 / 3.0).abs() < 1e-6);
        let mut hist = [0u32; GEAR_BINS];
        hist[3] = 1;
        hist[4] = 1;
        hist[9] = 1;
        assert_eq!(c.gear_histogram, hist);
        let last = w.finish().unwrap();
        assert_eq!((last.start_ms, last.count), (3000, 1));
        assert!(w.finish().is_none());
    }

    #[test]
    fn late_samples_count_in_the_open_window() {
        let mut w = Tumbling::new(DriverId::new("HAM").unwrap(), 1000);
        w.observe(&s(5000, 1.0, 1.0, 1, 0.0, false));
        assert!(w.observe(&s(4200, 3.0, 1.0, 1, 0.0, false)).is_none());
        let c = w.finish().unwrap();
        assert_eq!((c.start_ms, c.count, c.speed.mean), (5000, 2, 2.0));
    }

    #[test]
    fn rolling_window_keeps_the_last_n_with_exact_min_max() {
        let mut r = Rolling::new(DriverId::new("HAM").unwrap(), 3);
        let speeds = [50.0, 300.0, 100.0, 80.0, 90.0, 10.0];
        for (i, &v) in speeds.iter().enumerate() {
            r.observe(&s(i as i64 * 100, v, v * 10.0, 2, 40.0, i % 2 == 0));
            let lo = i.saturating_sub(2);
            let window = &speeds[lo..=i];
            let st = r.stats().unwrap();
            let min = window.iter().cloned().fold(f32::MAX, f32::min);
            let max = window.iter().cloned().fold(f32::MIN, f32::max);
            let mean = window.iter().sum::<f32>() / window.len() as f32;
            assert_eq!(st.count as usize, window.len());
            assert_eq!((st.speed.min, st.speed.max), (min, max), "at {i}");
            assert!((st.speed.mean - mean).abs() < 1e-3);
            assert_eq!((st.rpm.min, st.rpm.max), (min * 10.0, max * 10.0));
            assert_eq!(st.start_ms, lo as i64 * 100);
        }
        assert_eq!(r.len(), 3);
    }
}
