//! Consumer lag from librdkafka's statistics: the engine's consumers report, once a second on
//! librdkafka's own thread, each assigned partition's end (last stable offset), the position
//! handed to the engine and the offset committed, into `metrics::ConsumerLag`. The worker's hot
//! path does nothing for it.

use super::source::CommitBoard;
use crate::metrics::{ConsumerLag, PartitionLag};
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use std::sync::Arc;

/// How often the consumers report (`statistics.interval.ms`).
pub const LAG_INTERVAL_MS: u32 = 1000;

/// The engine's consumer context: where its statistics go, if anywhere.
#[derive(Default)]
pub struct LagContext {
    pub lag: Option<Arc<ConsumerLag>>,
    /// With transactions the offsets are committed by the sink's producer, not this
    /// consumer: the committed offsets are the ones its transactions recorded here.
    pub commits: Option<CommitBoard>,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        let Some(lag) = &self.lag else { return };
        for (name, topic) in &statistics.topics {
            for (&partition, p) in &topic.partitions {
                // -1 is librdkafka's internal partition; an offset below 0 is not known yet.
                if partition < 0 || p.ls_offset < 0 {
                    continue;
                }
                let start = p.lo_offset.max(0);
                let position = if p.app_offset >= 0 {
                    p.app_offset
                } else {
                    start
                };
                let committed = match &self.commits {
                    Some(board) => board.get(name, partition).unwrap_or(start),
                    None if p.committed_offset >= 0 => p.committed_offset,
                    None => start,
                };
                lag.record(
                    name,
                    partition,
                    PartitionLag {
                        end: p.ls_offset,
                        position,
                        committed,
                    },
                );
            }
        }
    }
}

impl ConsumerContext for LagContext {}
