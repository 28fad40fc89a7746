//! Where batches go: the `Adapter` trait and its backends.
//!
//! The trait is public so users can plug in their own backend and tests can inject faults. A
//! backend receives batches from shard workers (`on_batch`) and, if it retains events, serves
//! poll reads per shard (`read_shard`); the consume layer does cursors, merging and long-poll
//! on top, identically for every backend.

pub mod disk;
mod id_pool;
#[cfg(feature = "jetstream")]
#[cfg_attr(docsrs, doc(cfg(feature = "jetstream")))]
pub mod jetstream;
pub mod memory;
mod metrics;
pub mod net;
mod noop;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisAdapter;
// An adapter's settings are plain config data (`crate::config`); they are named here too, beside
// the adapters they configure.
pub use crate::config::{
    AdapterConfig, DiskAdapterConfig, DiskFsync, JetStreamAdapterConfig, JetStreamStorage, MemoryAdapterConfig,
    NetAdapterConfig, RedisAdapterConfig,
};
pub use disk::DiskAdapter;
pub use id_pool::IdPool;
#[cfg(feature = "jetstream")]
pub use jetstream::JetStreamAdapter;
pub use memory::MemoryAdapter;
pub use metrics::{AdapterMetric, MetricKind};
pub use net::NetAdapter;
pub use noop::NoopAdapter;

use crate::error::{AdapterError, ConfigError};
use crate::filter::Filter;
use crate::model::{Batch, StoredEvent};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;

/// A backend for batches. All methods are called on the library's runtime.
///
/// `on_batch` may be called concurrently for different shards, never for the same shard: each
/// shard's batches arrive in sequence order, one at a time. A batch that failed with a retryable
/// error is offered again unchanged (same sequences, same dedup ids), so writes should be
/// idempotent by dedup id where the backend allows it.
#[async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// Short name for logs and errors.
    fn name(&self) -> &str;

    /// Connects / prepares; called once before any other call. A failure fails `EventBus::new`.
    async fn init(&self) -> Result<(), AdapterError> {
        Ok(())
    }

    /// The first sequence number a shard should use, so that sequences are never reused across
    /// restarts with a persistent backend.
    async fn next_sequence(&self, _shard: u16) -> Result<u64, AdapterError> {
        Ok(0)
    }

    /// Stores or forwards one batch.
    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError>;

    /// Makes everything accepted so far durable / visible.
    async fn flush(&self) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Releases resources; called once, after the last batch.
    async fn shutdown(&self) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Reads one shard from sequence `read.from`: returns up to `read.max_events` events that
    /// match the filter, in sequence order. The default retains nothing.
    async fn read_shard(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        Ok(ShardPage { events: Vec::new(), next: read.from, missed: 0, more: false })
    }

    /// Like [`read_shard`](Self::read_shard), but appends the events to `page` (the page being
    /// built) and returns a [`ShardPage`] whose `events` is empty. Sequence-ordered polls read
    /// through this, so a backend that makes its events one by one can override it to make
    /// them in place; the default moves what `read_shard` returns.
    async fn read_shard_into(
        &self,
        read: ShardRead<'_>,
        page: &mut Vec<StoredEvent>,
    ) -> Result<ShardPage, AdapterError> {
        let mut shard_page = self.read_shard(read).await?;
        page.append(&mut shard_page.events);
        Ok(shard_page)
    }

    /// The identity of the store this adapter reads, when it has one: the same for every
    /// adapter reading the same events (the same broker and prefix, the same directory), and
    /// different for any other store. Poll cursors carry it, and a poll refuses a cursor
    /// stamped with another store's id (`InvalidCursor`) instead of reading its positions in
    /// a log they do not belong to. Valid once `init` has returned. The default has none:
    /// cursors are not checked.
    fn store_id(&self) -> Option<u128> {
        None
    }

    /// Shards that hold retained events (also shards this bus no longer routes to).
    fn stored_shards(&self) -> Vec<u16> {
        Vec::new()
    }

    /// Events the backend discarded to respect its retention bounds (shown in the bus stats).
    fn trimmed_events(&self) -> u64 {
        0
    }

    /// Appends the adapter's own figures (connection state, peers, recovery, ...) for the stats
    /// JSON and the Prometheus exposition. Called when stats are read, never on the hot path.
    /// The default reports nothing.
    fn metrics(&self, _out: &mut Vec<AdapterMetric>) {}

    /// Long poll for events that do not pass through this bus (other producers of a shared
    /// broker): resolves when one of `positions` (shard, next sequence) may have new events, or
    /// at `deadline`. The default never resolves: the bus wakes long polls itself whenever it
    /// delivers a batch, which covers every event of an in-process backend.
    async fn wait_for_events(&self, _positions: &[(u16, u64)], _deadline: Instant) -> Result<(), AdapterError> {
        std::future::pending().await
    }
}

/// One shard read of a poll.
#[derive(Debug, Clone, Copy)]
pub struct ShardRead<'a> {
    /// The shard.
    pub shard: u16,
    /// First sequence to examine.
    pub from: u64,
    /// Most events to return.
    pub max_events: usize,
    /// Only events that match; a non-JSON payload never matches.
    pub filter: Option<&'a Filter>,
    /// Id strings of pages the caller has finished with ([`IdPool`]): an adapter that builds
    /// its ids may write them into these instead of allocating one per event.
    pub recycled_ids: Option<&'a IdPool>,
}

/// The answer to a [`ShardRead`].
#[derive(Debug, Clone, Default)]
pub struct ShardPage {
    /// Matching events in sequence order.
    pub events: Vec<StoredEvent>,
    /// Every event below this sequence has been examined (returned or rejected by the filter).
    pub next: u64,
    /// Events between `from` and the oldest retained one that were trimmed before being read.
    pub missed: u64,
    /// Events at or past `next` existed when the read was made.
    pub more: bool,
}

/// Builds the adapter a config names.
pub(crate) fn from_config(config: &AdapterConfig) -> Result<Arc<dyn Adapter>, ConfigError> {
    match config {
        AdapterConfig::Noop => Ok(Arc::new(NoopAdapter)),
        AdapterConfig::Memory(c) => Ok(Arc::new(MemoryAdapter::new(c.clone()))),
        AdapterConfig::Disk(c) => Ok(Arc::new(DiskAdapter::open(c.clone())?)),
        AdapterConfig::Net(c) => Ok(Arc::new(NetAdapter::new(c.clone())?)),
        #[cfg(feature = "redis")]
        AdapterConfig::Redis(c) => Ok(Arc::new(self::redis::RedisAdapter::new(c.clone())?)),
        #[cfg(not(feature = "redis"))]
        AdapterConfig::Redis(_) => Err(ConfigError::Unsupported("the redis adapter needs the `redis` feature".into())),
        #[cfg(feature = "jetstream")]
        AdapterConfig::JetStream(c) => Ok(Arc::new(JetStreamAdapter::new(c.clone()))),
        #[cfg(not(feature = "jetstream"))]
        AdapterConfig::JetStream(_) => {
            Err(ConfigError::Unsupported("the jetstream adapter needs the `jetstream` feature".into()))
        }
    }
}
