//! What a shard worker hands to the adapter.

use super::{ProducerIdentity, RawEvent};
use bytes::Bytes;

/// A run of consecutive events of one shard.
///
/// Sequence numbers and timestamps are assigned by the shard's worker when it takes the events
/// off the ring: event `i` has sequence `first_sequence + i` and timestamp
/// `first_timestamp_ns + i`, so both are strictly increasing within a shard and a retried batch
/// carries the same ones (and the same dedup ids) as its first attempt.
#[derive(Debug, Clone)]
pub struct Batch {
    shard: u16,
    first_sequence: u64,
    first_timestamp_ns: u64,
    producer: ProducerIdentity,
    events: Vec<RawEvent>,
}

/// One event of a batch with its assigned position.
#[derive(Debug, Clone, Copy)]
pub struct BatchEntry<'a> {
    /// Per-shard sequence number.
    pub sequence: u64,
    /// Wall-clock nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The event.
    pub event: &'a RawEvent,
}

impl BatchEntry<'_> {
    /// The payload bytes.
    pub fn payload(&self) -> &Bytes {
        self.event.payload()
    }
}

impl Batch {
    /// Builds a batch (public so adapter tests can drive an adapter directly). Every sequence
    /// must fit: `first_sequence + events.len()` at most `u64::MAX` (the shard worker drops events
    /// past the end of the sequence space rather than build such a batch).
    pub fn new(
        shard: u16,
        first_sequence: u64,
        first_timestamp_ns: u64,
        producer: ProducerIdentity,
        events: Vec<RawEvent>,
    ) -> Self {
        Self { shard, first_sequence, first_timestamp_ns, producer, events }
    }

    /// The shard the events belong to.
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events in order.
    pub fn events(&self) -> &[RawEvent] {
        &self.events
    }

    /// Sequence of the first event.
    pub fn first_sequence(&self) -> u64 {
        self.first_sequence
    }

    /// Timestamp of the first event.
    pub fn first_timestamp_ns(&self) -> u64 {
        self.first_timestamp_ns
    }

    /// Who produced the batch (for dedup ids).
    pub fn producer(&self) -> ProducerIdentity {
        self.producer
    }

    /// The dedup id of event `index`: `{producer:hex}:{epoch}:{shard}:{sequence}`.
    pub fn dedup_id(&self, index: usize) -> String {
        self.producer.dedup_id(self.shard, self.first_sequence + index as u64)
    }

    /// Events with their sequence numbers and timestamps.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchEntry<'_>> + '_ {
        self.events.iter().enumerate().map(move |(i, event)| BatchEntry {
            sequence: self.first_sequence + i as u64,
            timestamp_ns: self.first_timestamp_ns + i as u64,
            event,
        })
    }

    pub(crate) fn into_events(self) -> Vec<RawEvent> {
        self.events
    }
}
