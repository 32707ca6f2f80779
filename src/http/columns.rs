//! A driver's points as compact columns: a ring of 15 bytes a sample where the store used to
//! keep a 40-byte struct, plus the min/max [`Pyramid`] that downsampled views read.
//!
//! What a sample keeps, and to what resolution (values are rounded to the nearest step;
//! every value the sources accept fits, so only the two derived wheel-spin figures can
//! saturate, at values the detector only gives for broken input):
//!
//! | column | as | step | range |
//! |---|---|---|---|
//! | time | `u16` ms after the first sample of its run of 64 (an `i64` each) | 1 ms | any: a sample 65 s or more after its run's first, or before it, is kept whole aside |
//! | speed | `u16` | 0.01 km/h | 0..655.34 (sources accept 0..450) |
//! | rpm | `u16` | 0.5 rpm | 0..32,767 (sources accept 0..20,000) |
//! | throttle | `u8` | 0.5 % | 0..127 (sources accept 0..104; FastF1 and the simulator give whole numbers) |
//! | expected speed | `u16` | 0.02 km/h | 0..1,310.68, higher saturates |
//! | wheel spin | `u16` | 0.05 % | −100..3,176.7 (spin is never below −100), higher saturates |
//! | brake temperature | `u16` | 0.05 °C | −50..3,226.7 (measured: −50..2,000) |
//! | gear | `u8` | exact | |
//! | DRS, brake, spinning | one `u8`: DRS in 4 bits (sources accept 0..15), two flags | exact | |
//!
//! A value given with at most two decimals (one for throttle) comes back as the same `f32`:
//! FastF1's speed, rpm and throttle are whole numbers, so the real race is served exactly. Not-a-number (a sample the wheel-spin detector
//! could not judge) has its own code, [`NONE`].

use super::pyramid::{Fold, Found, Pyramid, FINEST, SPANS};
use super::sample::{
    Code, Metric, Point, BRAKE_TEMP, EXPECTED_SPEED, NONE, RPM, SPEED, THROTTLE, WHEEL_SPIN,
};
use std::collections::BTreeMap;

/// The code of a throttle without a value, in its byte column.
const THROTTLE_NONE: u8 = u8::MAX;

const DRS_MASK: u8 = 0x0f;
const BRAKE_BIT: u8 = 0x10;
const SPINNING_BIT: u8 = 0x20;

/// One sample encoded, as a worker stages it before publishing (32 bytes with its driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub ts_ms: i64,
    /// speed, rpm, throttle, expected speed, wheel spin, brake temperature.
    values: [Code; 6],
    gear: u8,
    flags: u8,
}

impl Encoded {
    /// Rounds `p` to the columns' resolution. DRS above 15 (which no source accepts) is kept
    /// as 15.
    pub fn new(p: &Point) -> Encoded {
        let mut flags = p.drs.min(DRS_MASK);
        if p.brake != 0 {
            flags |= BRAKE_BIT;
        }
        if p.spinning {
            flags |= SPINNING_BIT;
        }
        Encoded {
            ts_ms: p.ts_ms,
            values: [
                SPEED.encode(p.speed),
                RPM.encode(p.rpm),
                THROTTLE.encode(p.throttle).min(THROTTLE_NONE as Code),
                EXPECTED_SPEED.encode(p.expected_speed),
                WHEEL_SPIN.encode(p.wheel_spin),
                BRAKE_TEMP.encode(p.brake_temp),
            ],
            gear: p.gear,
            flags,
        }
    }

    pub fn point(&self) -> Point {
        let [speed, rpm, throttle, expected, spin, brake_temp] = self.values;
        Point {
            ts_ms: self.ts_ms,
            speed: SPEED.decode(speed),
            rpm: RPM.decode(rpm),
            throttle: THROTTLE.decode(throttle_code(throttle as u8)),
            expected_speed: EXPECTED_SPEED.decode(expected),
            wheel_spin: WHEEL_SPIN.decode(spin),
            spinning: self.flags & SPINNING_BIT != 0,
            brake_temp: BRAKE_TEMP.decode(brake_temp),
            brake: ((self.flags & BRAKE_BIT) != 0) as u8,
            gear: self.gear,
            drs: self.flags & DRS_MASK,
        }
    }
}

/// The ring: sample `seq` (counted from the first ever pushed) is in slot `seq % capacity`
/// of every column while `seq >= end - len`.
pub struct PointColumns {
    capacity: usize,
    /// Sequence number of the next sample.
    end: u64,
    /// Time of each sample as ms after its run's first sample, or [`TIME_ASIDE`].
    time: Vec<u16>,
    /// Time of the first sample of run `j` (samples `64 j ..`) in slot `j % len`, sized
    /// like a pyramid level so a run's base outlives its samples.
    run_base: Vec<i64>,
    /// Whole times of the samples whose offset does not fit (after a gap of a minute or more,
    /// or out of order), by sequence number; dropped as they leave the ring.
    aside: BTreeMap<u64, i64>,
    /// speed, rpm, expected speed, wheel spin, brake temperature.
    values: [Vec<Code>; 5],
    throttle: Vec<u8>,
    gear: Vec<u8>,
    flags: Vec<u8>,
    pyramid: Pyramid,
}

/// Samples per time base: the pyramid's finest run.
const RUN: u64 = SPANS[0];

/// The time offset of a sample whose whole time is in [`PointColumns::aside`].
const TIME_ASIDE: u16 = u16::MAX;

impl PointColumns {
    /// The columns are reserved at full size (address space only: pages are touched as
    /// samples arrive), so they never grow past `capacity` by doubling.
    pub fn new(capacity: usize) -> PointColumns {
        let capacity = capacity.max(1);
        PointColumns {
            capacity,
            end: 0,
            time: Vec::with_capacity(capacity),
            run_base: vec![0; (capacity as u64).div_ceil(RUN) as usize + 1],
            aside: BTreeMap::new(),
            values: std::array::from_fn(|_| Vec::with_capacity(capacity)),
            throttle: Vec::with_capacity(capacity),
            gear: Vec::with_capacity(capacity),
            flags: Vec::with_capacity(capacity),
            pyramid: Pyramid::new(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.time.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    /// Sequence number of the oldest sample kept.
    fn start(&self) -> u64 {
        self.end - self.len() as u64
    }

    fn slot(&self, seq: u64) -> usize {
        (seq % self.capacity as u64) as usize
    }

    fn base_slot(&self, seq: u64) -> usize {
        ((seq / RUN) % self.run_base.len() as u64) as usize
    }

    fn ts(&self, seq: u64) -> i64 {
        match self.time[self.slot(seq)] {
            TIME_ASIDE => self.aside.get(&seq).copied().unwrap_or_default(),
            offset => self.run_base[self.base_slot(seq)] + offset as i64,
        }
    }

    /// Time of the newest sample.
    pub fn last_ms(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.ts(self.end - 1))
    }

    /// Appends a sample, evicting the oldest when full.
    pub fn push(&mut self, e: &Encoded) {
        let seq = self.end;
        let b = self.base_slot(seq);
        if seq % RUN == 0 {
            self.run_base[b] = e.ts_ms;
        }
        let offset = match e.ts_ms.checked_sub(self.run_base[b]) {
            Some(d) if (0..TIME_ASIDE as i64).contains(&d) => d as u16,
            _ => {
                self.aside.insert(seq, e.ts_ms);
                TIME_ASIDE
            }
        };
        let [speed, rpm, throttle, expected, spin, brake_temp] = e.values;
        let values = [speed, rpm, expected, spin, brake_temp];
        // Encoded::new keeps the throttle code within a byte.
        let throttle = throttle as u8;
        if self.len() < self.capacity {
            self.time.push(offset);
            for (column, &v) in self.values.iter_mut().zip(&values) {
                column.push(v);
            }
            self.throttle.push(throttle);
            self.gear.push(e.gear);
            self.flags.push(e.flags);
        } else {
            let i = self.slot(seq);
            self.time[i] = offset;
            for (column, &v) in self.values.iter_mut().zip(&values) {
                column[i] = v;
            }
            self.throttle[i] = throttle;
            self.gear[i] = e.gear;
            self.flags[i] = e.flags;
        }
        self.end += 1;
        if self.end % RUN == 0 {
            self.summarise_run(seq);
        }
        let start = self.start();
        while self
            .aside
            .first_key_value()
            .is_some_and(|(&k, _)| k < start)
        {
            self.aside.pop_first();
        }
    }

    /// Hands the pyramid the run that sample `last` finished, a column at a time (the run's
    /// slots are consecutive but where they wrap round the ring's end).
    fn summarise_run(&mut self, last: u64) {
        let first = self.slot(last + 1 - RUN);
        let PointColumns {
            values,
            throttle,
            gear,
            flags,
            pyramid,
            ..
        } = self;
        pyramid.run_done(last, |metric, codes: &mut [Code; FINEST]| match metric {
            Metric::Speed => fill_run(codes, &values[0], first, |c| c),
            Metric::Rpm => fill_run(codes, &values[1], first, |c| c),
            Metric::Throttle => fill_run(codes, throttle, first, throttle_code),
            Metric::ExpectedSpeed => fill_run(codes, &values[2], first, |c| c),
            Metric::WheelSpin => fill_run(codes, &values[3], first, |c| c),
            Metric::BrakeTemp => fill_run(codes, &values[4], first, |c| c),
            Metric::Gear => fill_run(codes, gear, first, Code::from),
            Metric::Drs => fill_run(codes, flags, first, |f| (f & DRS_MASK) as Code),
            Metric::Brake => fill_run(codes, flags, first, |f| ((f & BRAKE_BIT) != 0) as Code),
        });
    }

    fn encoded(&self, seq: u64) -> Encoded {
        let i = self.slot(seq);
        let [speed, rpm, expected, spin, brake_temp] = std::array::from_fn(|c| self.values[c][i]);
        Encoded {
            ts_ms: self.ts(seq),
            values: [
                speed,
                rpm,
                throttle_code(self.throttle[i]),
                expected,
                spin,
                brake_temp,
            ],
            gear: self.gear[i],
            flags: self.flags[i],
        }
    }

    fn code(&self, metric: Metric, seq: u64) -> Code {
        let i = self.slot(seq);
        match metric {
            Metric::Speed => self.values[0][i],
            Metric::Rpm => self.values[1][i],
            Metric::Throttle => throttle_code(self.throttle[i]),
            Metric::ExpectedSpeed => self.values[2][i],
            Metric::WheelSpin => self.values[3][i],
            Metric::BrakeTemp => self.values[4][i],
            Metric::Gear => self.gear[i] as Code,
            Metric::Drs => (self.flags[i] & DRS_MASK) as Code,
            Metric::Brake => ((self.flags[i] & BRAKE_BIT) != 0) as Code,
        }
    }

    /// The samples timed within `[from, to]`, as sequence numbers `lo..hi`. Times are
    /// searched as sorted, which they are as the workers publish them (each batch sorted by
    /// time, batches in epoch order).
    pub fn range(&self, from: i64, to: i64) -> (u64, u64) {
        let first_not = |pred: &dyn Fn(i64) -> bool| {
            let (mut lo, mut hi) = (self.start(), self.end);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if pred(self.ts(mid)) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let lo = first_not(&|t| t < from);
        let hi = first_not(&|t| t <= to).max(lo);
        (lo, hi)
    }

    /// The samples timed within `[from, to]`, decoded.
    pub fn points(&self, from: i64, to: i64) -> Vec<Point> {
        let (lo, hi) = self.range(from, to);
        (lo..hi).map(|seq| self.encoded(seq).point()).collect()
    }

    /// `metric` over `[from, to]` as `(time, value)`, at most `max` of them, not-a-number
    /// left out: every sample while there are at most `max`, otherwise the minimum and the
    /// maximum of each of the buckets [`bucket_width`] chooses, in time order (one point when
    /// both are the same sample; the larger when `max` is 1). Reads about one pyramid run per
    /// bucket, never the whole ring.
    pub fn series(
        &self,
        metric: Metric,
        from: i64,
        to: i64,
        max: usize,
        out: &mut Vec<(i64, f32)>,
    ) {
        let (lo, hi) = self.range(from, to);
        let code_at = |seq: u64| self.code(metric, seq);
        let value = |seq: u64, c: Code| (self.ts(seq), metric.decode(c));
        let Some(width) = bucket_width(lo, hi, max) else {
            out.extend(
                (lo..hi)
                    .map(|seq| (seq, code_at(seq)))
                    .filter(|&(_, c)| c != NONE)
                    .map(|(seq, c)| value(seq, c)),
            );
            return;
        };
        let mut b = lo;
        while b < hi {
            let b_end = ((b / width + 1) * width).min(hi);
            let mut fold = Fold::default();
            self.pyramid.extremes(metric, b, b_end, code_at, &mut fold);
            if let Some(f) = fold.found() {
                if max < 2 {
                    out.push(value(f.max_seq, f.max));
                } else {
                    push_extremes(f, out, value);
                }
            }
            b = b_end;
        }
    }
}

/// The codes of the 64 samples from slot `first` of `column`, which may wrap round its end;
/// generic so that each column's loop is compiled on its own (and vectorised).
fn fill_run<T: Copy>(
    codes: &mut [Code; FINEST],
    column: &[T],
    first: usize,
    code: impl Fn(T) -> Code,
) {
    let head = &column[first..(first + FINEST).min(column.len())];
    let (whole, wrapped) = codes.split_at_mut(head.len());
    for (c, &v) in whole.iter_mut().zip(head) {
        *c = code(v);
    }
    for (c, &v) in wrapped.iter_mut().zip(column) {
        *c = code(v);
    }
}

/// A throttle byte as a code ([`NONE`] for none).
fn throttle_code(b: u8) -> Code {
    if b == THROTTLE_NONE {
        NONE
    } else {
        b as Code
    }
}

/// The bucket's minimum and maximum in sequence order, once if they are the same sample.
fn push_extremes(f: Found, out: &mut Vec<(i64, f32)>, value: impl Fn(u64, Code) -> (i64, f32)) {
    let (min, max) = (value(f.min_seq, f.min), value(f.max_seq, f.max));
    if f.min_seq == f.max_seq {
        out.push(min);
    } else if f.min_seq < f.max_seq {
        out.extend([min, max]);
    } else {
        out.extend([max, min]);
    }
}

/// The width in samples of the buckets that cut `lo..hi` down to at most `max` points, or
/// `None` when it has at most `max` samples. Buckets are aligned to multiples of the width
/// in sequence numbers (so they stay put as samples arrive, and a chart does not shimmer on
/// refresh), at most `max / 2` of them (`u64::MAX`, one bucket, when `max` is below 4).
/// Past 64 samples a bucket is a multiple of the pyramid's finest run, so that whole runs
/// cover it and a view costs reads in proportion to its buckets, not to its samples; the
/// rounding can halve the buckets asked for (60,000 samples at `max` 1,000: 469 buckets of
/// 128 rather than 500 of 120).
pub fn bucket_width(lo: u64, hi: u64, max: usize) -> Option<u64> {
    let samples = hi - lo;
    if samples <= max as u64 {
        return None;
    }
    let buckets = max as u64 / 2;
    if buckets <= 1 {
        return Some(u64::MAX);
    }
    let step = SPANS[0];
    let mut width = samples.div_ceil(buckets);
    if width > step {
        width = width.div_ceil(step) * step;
    }
    let count = |w: u64| (hi - 1) / w - lo / w + 1;
    while count(width) > buckets {
        width += if width > step { step } else { 1 };
        if width > step {
            width = width.div_ceil(step) * step;
        }
    }
    Some(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator, so the random buffers are the same every run.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn point(ts_ms: i64, r: &mut Lcg) -> Point {
        // Few distinct values, so ties between equal extremes are common.
        let judged = r.below(4) != 0;
        Point {
            ts_ms,
            speed: r.below(40) as f32 * 7.5,
            rpm: 8000.0 + r.below(50) as f32 * 100.5,
            throttle: r.below(105) as f32,
            expected_speed: if judged {
                r.below(30) as f32 * 10.0
            } else {
                f32::NAN
            },
            wheel_spin: if judged {
                r.below(200) as f32 - 50.0
            } else {
                f32::NAN
            },
            spinning: judged && r.below(2) == 0,
            brake_temp: 200.0 + r.below(60) as f32 * 12.25,
            brake: r.below(2) as u8,
            gear: r.below(9) as u8,
            drs: [0, 8, 10, 12][r.below(4) as usize],
        }
    }

    /// What the downsampled answer must be, computed from the raw points of the range with
    /// the same bucket width: each bucket's first minimum and last maximum.
    fn brute_force(kept: &[(u64, Point)], metric: Metric, max: usize) -> Vec<(i64, f32)> {
        let values: Vec<(u64, i64, f32)> = kept
            .iter()
            .map(|(seq, p)| (*seq, p.ts_ms, p.value(metric)))
            .collect();
        let (Some(lo), Some(hi)) = (values.first(), values.last()) else {
            return Vec::new();
        };
        let Some(width) = bucket_width(lo.0, hi.0 + 1, max) else {
            return values
                .iter()
                .filter(|v| v.2.is_finite())
                .map(|v| (v.1, v.2))
                .collect();
        };
        let mut out = Vec::new();
        let mut buckets: Vec<Vec<(u64, i64, f32)>> = Vec::new();
        let mut current = u64::MAX;
        for v in values.iter().filter(|v| v.2.is_finite()) {
            if v.0 / width != current {
                current = v.0 / width;
                buckets.push(Vec::new());
            }
            buckets.last_mut().unwrap().push(*v);
        }
        for bucket in buckets {
            let mut min = bucket[0];
            let mut maxv = bucket[0];
            for v in &bucket {
                if v.2 < min.2 {
                    min = *v;
                }
                if v.2 >= maxv.2 {
                    maxv = *v;
                }
            }
            if max < 2 {
                out.push((maxv.1, maxv.2));
            } else if min.0 == maxv.0 {
                out.push((min.1, min.2));
            } else if min.0 < maxv.0 {
                out.extend([(min.1, min.2), (maxv.1, maxv.2)]);
            } else {
                out.extend([(maxv.1, maxv.2), (min.1, min.2)]);
            }
        }
        out
    }

    #[test]
    fn downsampled_series_equal_a_brute_force_over_the_raw_points_also_after_the_ring_wraps() {
        let mut r = Lcg(2023);
        for round in 0..60 {
            let capacity = [1, 63, 64, 300, 1000, 5000, 20_000][round % 7];
            let mut columns = PointColumns::new(capacity);
            let pushed = r.below(3 * capacity as u64) as usize + 1;
            let mut all = Vec::new();
            let mut ts = 1_779_627_600_000i64;
            for seq in 0..pushed as u64 {
                // Mostly 1..300 ms apart, now and then a gap of minutes (times kept aside).
                ts += if r.below(500) == 0 {
                    60_000 + r.below(10_000_000) as i64
                } else {
                    1 + r.below(300) as i64
                };
                let p = Encoded::new(&point(ts, &mut r)).point();
                columns.push(&Encoded::new(&p));
                all.push((seq, p));
            }
            let kept = &all[pushed.saturating_sub(capacity)..];
            assert_eq!(columns.len(), kept.len());
            for _ in 0..20 {
                let (t0, t1) = (kept[0].1.ts_ms, kept[kept.len() - 1].1.ts_ms);
                let a = t0 - 10 + r.below((t1 - t0 + 20) as u64) as i64;
                let b = t0 - 10 + r.below((t1 - t0 + 20) as u64) as i64;
                let (mut from, mut to) = (a.min(b), a.max(b));
                // Often to the newest sample (what a live chart asks), or from the oldest.
                match r.below(4) {
                    0 => to = i64::MAX,
                    1 => from = i64::MIN,
                    _ => {}
                }
                let max = [1, 2, 3, 10, 100, 1000, 100_000][r.below(7) as usize];
                let metric = Metric::ALL[r.below(Metric::COUNT as u64) as usize];
                let in_range: Vec<(u64, Point)> = kept
                    .iter()
                    .filter(|(_, p)| (from..=to).contains(&p.ts_ms))
                    .copied()
                    .collect();
                let mut got = Vec::new();
                columns.series(metric, from, to, max, &mut got);
                let want = brute_force(&in_range, metric, max);
                assert!(got.len() <= max, "{} points for max {max}", got.len());
                assert_eq!(
                    got,
                    want,
                    "capacity {capacity}, pushed {pushed}, {} [{from}, {to}] max {max}",
                    metric.as_str()
                );
            }
            // Debug text, as NaN is not equal to itself.
            assert_eq!(
                format!("{:?}", columns.points(i64::MIN, i64::MAX)),
                format!("{:?}", kept.iter().map(|(_, p)| *p).collect::<Vec<_>>())
            );
        }
    }

    #[test]
    fn a_live_view_is_right_after_every_sample_while_runs_fill_and_the_ring_wraps() {
        let mut r = Lcg(11);
        let capacity = 300;
        let mut columns = PointColumns::new(capacity);
        let mut all = Vec::new();
        for seq in 0..1000u64 {
            let p = Encoded::new(&point(1_000_000 + seq as i64 * 250, &mut r)).point();
            columns.push(&Encoded::new(&p));
            all.push((seq, p));
            let kept = &all[all.len().saturating_sub(capacity)..];
            for (metric, max) in [("speed", 4), ("wheel_spin", 10), ("gear", 100)] {
                let mut got = Vec::new();
                let m = Metric::parse(metric).unwrap();
                columns.series(m, i64::MIN, i64::MAX, max, &mut got);
                assert_eq!(got, brute_force(kept, m, max), "{metric} after {seq}");
            }
        }
    }

    #[test]
    fn a_full_view_reads_a_run_per_bucket_and_keeps_at_least_a_quarter_of_the_points_asked() {
        // 60,000 samples down to 1,000 points: 128-sample buckets, two runs each.
        assert_eq!(bucket_width(0, 60_000, 1000), Some(128));
        assert_eq!(bucket_width(1234, 61_234, 1000), Some(128));
        for (lo, n, max) in [
            (0, 60_000, 1000),
            (7, 100_001, 999),
            (5, 200, 100),
            (3, 70, 2),
        ] {
            let w = bucket_width(lo, lo + n, max).unwrap();
            let buckets = (lo + n - 1) / w - lo / w + 1;
            assert!(buckets <= max as u64 / 2, "{lo} {n} {max}: {buckets}");
            assert!(buckets * 4 >= max as u64 / 2, "{lo} {n} {max}: {buckets}");
        }
        assert_eq!(bucket_width(0, 1000, 1000), None, "all fit");
        assert_eq!(bucket_width(10, 20, 1), Some(u64::MAX), "one bucket");
    }

    #[test]
    fn values_round_to_the_stated_resolution_and_two_decimals_come_back_as_they_were() {
        for v in [0.0f32, 123.45, 287.3, 449.99, 450.0] {
            assert_eq!(SPEED.decode(SPEED.encode(v)), v);
        }
        for v in [0.0f32, 57.0, 57.5, 100.0, 104.0] {
            assert_eq!(THROTTLE.decode(THROTTLE.encode(v)), v);
        }
        assert_eq!(THROTTLE.decode(THROTTLE.encode(57.3)), 57.5);
        assert_eq!(SPEED.decode(SPEED.encode(287.344)), 287.34);
        assert_eq!(RPM.decode(RPM.encode(11_234.3)), 11_234.5);
        assert_eq!(RPM.decode(RPM.encode(20_000.0)), 20_000.0);
        assert_eq!(THROTTLE.decode(THROTTLE.encode(104.0)), 104.0);
        assert_eq!(WHEEL_SPIN.decode(WHEEL_SPIN.encode(-12.34)), -12.35);
        assert_eq!(BRAKE_TEMP.decode(BRAKE_TEMP.encode(-50.0)), -50.0);
        assert_eq!(BRAKE_TEMP.decode(BRAKE_TEMP.encode(1999.97)), 1999.95);
        assert!(EXPECTED_SPEED
            .decode(EXPECTED_SPEED.encode(f32::NAN))
            .is_nan());
        assert_eq!(
            EXPECTED_SPEED.decode(EXPECTED_SPEED.encode(5000.0)),
            1310.68,
            "saturates"
        );
        assert!(
            SPEED.encode(300.0) < SPEED.encode(300.01),
            "codes order as values"
        );
    }

    #[test]
    fn times_after_a_long_gap_or_out_of_order_are_kept_whole_until_they_leave_the_ring() {
        let mut r = Lcg(7);
        let mut columns = PointColumns::new(100);
        let mut times = Vec::new();
        let mut ts = 1_685_278_800_000i64;
        for i in 0..250 {
            ts += match i % 50 {
                10 => 3_600_000, // a red flag
                20 => -5_000,    // out of order
                _ => 250,
            };
            times.push(ts);
            columns.push(&Encoded::new(&point(ts, &mut r)));
        }
        let kept: Vec<i64> = (columns.start()..columns.end)
            .map(|q| columns.ts(q))
            .collect();
        assert_eq!(kept, times[150..]);
        assert!(
            !columns.aside.is_empty() && columns.aside.keys().all(|&q| q >= columns.start()),
            "{:?}",
            columns.aside
        );
        assert_eq!(columns.last_ms(), Some(ts));
    }
}
