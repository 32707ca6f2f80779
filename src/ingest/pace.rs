//! Replay pacing: how fast to hand records over, and how coarse the timely timestamps are.

use pitwall_dataflows::Ingest;
use std::time::{Duration, Instant};

/// How fast to replay, and how coarse the timely timestamps are.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// 1.0 = the original spacing of the timestamps, 2.0 twice as fast, 0 = as fast as possible.
    pub speed: f64,
    /// Width of one timely epoch in event-time ms.
    pub epoch_ms: i64,
    /// Items per activation.
    pub batch: usize,
}

/// With pacing, how long until this item's turn (`None` when due). The first record sets the
/// origin of the replay clock.
pub fn due_in(item: &Ingest, clock: &mut Option<(Instant, i64)>, speed: f64) -> Option<Duration> {
    if speed <= 0.0 {
        return None;
    }
    let (Ingest::Record(s) | Ingest::Replay(s)) = item else {
        return None;
    };
    due_at(s.ts_ms, clock, speed)
}

/// [`due_in`] for an event time rather than an item.
pub fn due_at(ts_ms: i64, clock: &mut Option<(Instant, i64)>, speed: f64) -> Option<Duration> {
    if speed <= 0.0 {
        return None;
    }
    let (start, origin_ms) = *clock.get_or_insert((Instant::now(), ts_ms));
    let offset_ms = ((ts_ms - origin_ms) as f64 / speed).max(0.0);
    let due = start + Duration::from_secs_f64(offset_ms / 1000.0);
    let now = Instant::now();
    (due > now).then(|| due - now)
}
