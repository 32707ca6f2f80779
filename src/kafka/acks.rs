//! The longest wait for an acknowledgement from the brokers while messages were waiting for
//! one, as a client sees it: with a broker killed mid-stream, from the last message
//! acknowledged before the kill to the first after it, i.e. how long the client took to fail
//! over. Time with nothing in flight (an idle input) is not a wait.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A wait this long is logged when it ends, with when it began and ended (a failover can be
/// shorter than the longest wait of a busy broker, so each one is told); a second is a warning.
const NOTABLE: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct AckGaps(Mutex<Gaps>);

#[derive(Default)]
struct Gaps {
    /// Messages sent and not yet settled (acknowledged, or failed for good).
    pending: u64,
    /// When the current wait began: the last acknowledgement, or the first send after a
    /// moment with nothing pending.
    since: Option<(Instant, SystemTime)>,
    longest: Option<AckGap>,
}

/// One wait: from the acknowledgement (or send) before it to the acknowledgement that ended
/// it, in Unix ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AckGap {
    pub seconds: f64,
    pub from_unix_ms: u128,
    pub to_unix_ms: u128,
}

fn unix_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

impl AckGaps {
    /// A message handed to the client.
    pub fn sent(&self) {
        let Ok(mut g) = self.0.lock() else { return };
        if g.pending == 0 {
            g.since = Some((Instant::now(), SystemTime::now()));
        }
        g.pending += 1;
    }

    /// A message the brokers acknowledged (from librdkafka's delivery callback).
    pub fn acknowledged(&self) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let Ok(mut g) = self.0.lock() else { return };
        if let Some((before, before_wall)) = g.since {
            let waited = now.duration_since(before);
            let gap = AckGap {
                seconds: waited.as_secs_f64(),
                from_unix_ms: unix_ms(before_wall),
                to_unix_ms: unix_ms(wall),
            };
            if g.longest.is_none_or(|l| gap.seconds > l.seconds) {
                g.longest = Some(gap);
            }
            if waited >= Duration::from_secs(1) {
                tracing::warn!("{}", gap.waited());
            } else if waited >= NOTABLE {
                tracing::info!("{}", gap.waited());
            }
        }
        g.pending = g.pending.saturating_sub(1);
        g.since = Some((now, wall));
    }

    /// A message that failed (to be sent again, which counts as a new send, or given up).
    pub fn failed(&self) {
        if let Ok(mut g) = self.0.lock() {
            g.pending = g.pending.saturating_sub(1);
        }
    }

    /// The longest wait so far, if any message was acknowledged.
    pub fn longest(&self) -> Option<AckGap> {
        self.0.lock().ok().and_then(|g| g.longest)
    }
}

impl AckGap {
    fn waited(&self) -> String {
        format!(
            "waited {:.2} s for an acknowledgement (unix ms {}..{})",
            self.seconds, self.from_unix_ms, self.to_unix_ms
        )
    }
}

impl std::fmt::Display for AckGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "longest wait for an acknowledgement {:.2} s (unix ms {}..{})",
            self.seconds, self.from_unix_ms, self.to_unix_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_counts_only_while_messages_are_in_flight() {
        let gaps = AckGaps::default();
        assert_eq!(gaps.longest(), None);
        gaps.sent();
        gaps.acknowledged();
        // Idle: nothing in flight, however long.
        std::thread::sleep(Duration::from_millis(60));
        gaps.sent();
        gaps.sent();
        gaps.acknowledged();
        assert!(gaps.longest().unwrap().seconds < 0.05);
        // In flight and unanswered: a wait.
        std::thread::sleep(Duration::from_millis(30));
        gaps.acknowledged();
        let g = gaps.longest().unwrap();
        assert!(g.seconds >= 0.03, "{g}");
        assert!(g.to_unix_ms >= g.from_unix_ms + 30, "{g}");
    }
}
