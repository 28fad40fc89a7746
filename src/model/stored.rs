//! An event as an adapter retained it: what a poll returns.

use bytes::Bytes;

/// An event as an adapter retained it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The adapter's position for the event (`"{shard}-{sequence}"` in memory, the entry id in
    /// Redis, the stream sequence in JetStream).
    pub id: String,
    /// Shard the event was routed to.
    pub shard: u16,
    /// Per-shard sequence, strictly increasing, never reused.
    pub sequence: u64,
    /// Ingestion wall clock, ns since the Unix epoch, strictly increasing per shard.
    pub timestamp_ns: u64,
    /// The exact bytes ingested.
    pub payload: Bytes,
    /// The node that ingested the event: the Net adapter's random node id of that bus (nonzero),
    /// so a mesh member can tell its own events from relayed ones. 0 from adapters that do not
    /// know nodes (Memory, Redis, JetStream).
    pub origin: u64,
}
