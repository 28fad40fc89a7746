//! A shard's own counters, kept beside its ring: the shard's slow paths and its worker write
//! them, the stats read and sum them (`crate::stats`).

use std::sync::atomic::AtomicU64;

/// Per-shard counters. Workers and slow paths write them; producers never touch them on the
/// fast path.
#[derive(Debug, Default)]
pub(crate) struct ShardCounters {
    pub(crate) dispatched: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) dropped_evicted: AtomicU64,
    pub(crate) dropped_adapter_fatal: AtomicU64,
    pub(crate) dropped_retry_exhausted: AtomicU64,
    pub(crate) dropped_lost: AtomicU64,
    pub(crate) rejected_backpressure: AtomicU64,
    pub(crate) blocked_waits: AtomicU64,
    pub(crate) retries: AtomicU64,
}
