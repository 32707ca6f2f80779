//! What the open Kafka transaction holds, kept until it commits so that it can be sent again in
//! a new one when the broker makes the transactional producer abort it.
//!
//! A broker lost mid-transaction can leave the producer with an error that only an abort
//! clears (librdkafka's "abortable" errors: a batch timed out on the lost leader and its
//! sequence numbers no longer match the new leader's). Aborting drops every output the
//! transaction held; the engine has handed them over already and will not emit them again. So
//! every message sent into the open transaction is also written here (its bytes into one
//! buffer, reused from transaction to transaction: no allocation per message once it has
//! grown), and the committer sends them all again after the abort, then commits the same
//! input offsets. A `read_committed` consumer sees them once: the aborted copies never.
//!
//! A transaction is committed once it holds a few MB (`transaction.rs`), but one epoch's
//! outputs cannot be split between two: a drain of a backlog can put most of a race in one
//! epoch (a partition read ahead of the others carries the epoch to its end). Past `KEEP_BYTES`
//! nothing more is kept; such a transaction, if it must be aborted, ends the run instead, and a
//! restart resumes from the last commit (as without the redo).

use super::produce::send_blocking;
use super::sink::{Deliveries, SinkProducer};
use pitwall_dataflows::dataflow::Epoch;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::BaseRecord;
use std::ops::Range;

/// A transaction is committed once it holds this many bytes of outputs (keys and values),
/// before its interval is up: what is kept to send again after an abort stays this small.
const COMMIT_BYTES: usize = 4 << 20;

/// At most this many bytes of keys and values are kept for one transaction.
pub(super) const KEEP_BYTES: usize = 8 << 20;

/// The messages of the open transaction, in the order they were sent.
#[derive(Default)]
pub(super) struct Redo {
    /// The transaction outgrew `KEEP_BYTES`: nothing of it is kept.
    overflowed: bool,
    /// Bytes of the transaction's keys and values, kept or not.
    held: usize,
    /// The transaction's messages, kept or not.
    count: usize,
    /// The topics' names (a handful): a message names its topic by index.
    topics: Vec<String>,
    /// Every message's key and payload, one after the other.
    bytes: Vec<u8>,
    messages: Vec<Logged>,
}

struct Logged {
    topic: usize,
    partition: Option<i32>,
    key: Option<Range<usize>>,
    /// `None` for a tombstone.
    payload: Option<Range<usize>>,
    /// A dead letter's (where it came from and why).
    headers: Option<OwnedHeaders>,
    epoch: Epoch,
}

/// One message as it was handed to the producer.
pub(super) struct Message<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: Option<&'a OwnedHeaders>,
    pub epoch: Epoch,
}

impl<'a> Message<'a> {
    /// The record handed to the producer (the epoch as its delivery opaque).
    pub(super) fn record(&self) -> BaseRecord<'a, [u8], [u8], usize> {
        let mut record = BaseRecord::with_opaque_to(self.topic, self.epoch as usize);
        if let Some(p) = self.partition {
            record = record.partition(p);
        }
        if let Some(k) = self.key {
            record = record.key(k);
        }
        if let Some(p) = self.payload {
            record = record.payload(p);
        }
        if let Some(h) = self.headers {
            record = record.headers(h.clone());
        }
        record
    }
}

impl Redo {
    pub(super) fn push(&mut self, m: &Message<'_>) {
        let size = m.key.map_or(0, <[u8]>::len) + m.payload.map_or(0, <[u8]>::len);
        self.held += size;
        self.count += 1;
        if self.overflowed {
            return;
        }
        if self.bytes.len() + size > KEEP_BYTES {
            self.overflowed = true;
            self.bytes = Vec::new();
            self.messages = Vec::new();
            return;
        }
        let topic = match self.topics.iter().position(|t| t == m.topic) {
            Some(i) => i,
            None => {
                self.topics.push(m.topic.to_string());
                self.topics.len() - 1
            }
        };
        let mut keep = |b: &[u8]| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(b);
            start..self.bytes.len()
        };
        let key = m.key.map(&mut keep);
        let payload = m.payload.map(&mut keep);
        self.messages.push(Logged {
            topic,
            partition: m.partition,
            key,
            payload,
            headers: m.headers.cloned(),
            epoch: m.epoch,
        });
    }

    /// Whether the open transaction holds enough to be committed now.
    pub(super) fn full(&self) -> bool {
        self.held >= COMMIT_BYTES
    }

    /// Bytes of keys and values the open transaction holds (kept or not).
    pub(super) fn bytes_held(&self) -> usize {
        self.held
    }

    /// Messages the open transaction holds (kept or not).
    pub(super) fn messages_held(&self) -> usize {
        self.count
    }

    /// Whether every message of the transaction is kept (it can be sent again).
    pub(super) fn complete(&self) -> bool {
        !self.overflowed
    }

    /// Messages held.
    pub(super) fn len(&self) -> usize {
        self.messages.len()
    }

    /// The transaction committed: nothing to keep (the buffers stay allocated).
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.messages.clear();
        self.held = 0;
        self.count = 0;
        self.overflowed = false;
    }

    /// Sends every message again through `producer`, in the order first sent, each counted in
    /// flight at its epoch like the first time.
    pub(super) fn send_again(
        &self,
        producer: &SinkProducer,
        deliveries: &Deliveries,
    ) -> Result<(), KafkaError> {
        for m in &self.messages {
            let record = Message {
                topic: &self.topics[m.topic],
                partition: m.partition,
                key: m.key.clone().map(|k| &self.bytes[k]),
                payload: m.payload.clone().map(|p| &self.bytes[p]),
                headers: m.headers.as_ref(),
                epoch: m.epoch,
            }
            .record();
            deliveries.add_in_flight(m.epoch);
            if let Err(e) = send_blocking(&**producer, record) {
                deliveries.settle(m.epoch);
                return Err(e);
            }
            deliveries.gaps.sent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_message_and_reuses_its_buffers() {
        let mut redo = Redo::default();
        for (i, topic) in ["a", "b", "a"].into_iter().enumerate() {
            redo.push(&Message {
                topic,
                partition: (i == 1).then_some(2),
                key: Some(format!("k{i}").as_bytes()),
                payload: (i != 2).then_some(b"{}".as_slice()),
                headers: None,
                epoch: i as Epoch,
            });
        }
        assert_eq!(redo.len(), 3);
        assert_eq!(redo.topics, ["a", "b"]);
        let third = &redo.messages[2];
        assert_eq!(third.topic, 0);
        assert_eq!(&redo.bytes[third.key.clone().unwrap()], b"k2");
        assert!(third.payload.is_none(), "a tombstone stays one");
        assert_eq!(redo.messages[1].partition, Some(2));
        let capacity = redo.bytes.capacity();
        redo.clear();
        assert_eq!(redo.len(), 0);
        assert_eq!(redo.bytes.capacity(), capacity);
    }

    #[test]
    fn a_transaction_past_the_limit_is_not_kept() {
        let mut redo = Redo::default();
        let payload = vec![b'x'; 1 << 20];
        for epoch in 0..9 {
            redo.push(&Message {
                topic: "t",
                partition: None,
                key: None,
                payload: Some(&payload),
                headers: None,
                epoch,
            });
        }
        assert!(!redo.complete());
        assert_eq!(redo.len(), 0, "nothing kept once past the limit");
        assert_eq!(redo.bytes_held(), 9 << 20, "but what it held is counted");
        assert_eq!(redo.messages_held(), 9);
        redo.clear();
        assert!(redo.complete());
        assert_eq!(redo.bytes_held(), 0);
    }
}
