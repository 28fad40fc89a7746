//! Bus statistics, kept per shard and summed on read.
//!
//! A counter that every producer bumps on every ingest becomes the bottleneck of a
//! multi-producer bus (one cache line bouncing between cores). So nothing here is written on the
//! ingest fast path: `events_ingested` is read off each ring's tail position, which producers
//! advance anyway; dispatch counters are written once per batch by the shard's worker; drop and
//! back-pressure counters only on their slow paths. A read sums the live shards and the frozen
//! totals of retired ones, so totals never go down after a scale-down.
//!
//! The fields keep the names and `load(Ordering)` calls of the API reference's atomics.

mod json;
mod prometheus;
mod report;

pub use report::STATS_SCHEMA_VERSION;

use crate::adapter::Adapter;
use crate::ingest::Shard;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a counter sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Ingested,
    Dropped,
    Batches,
    Dispatched,
    DroppedEvicted,
    DroppedAdapterFatal,
    DroppedRetryExhausted,
    DroppedLost,
    RejectedBackpressure,
    BlockedWaits,
    Retries,
}

const METRICS: [Metric; 11] = [
    Metric::Ingested,
    Metric::Dropped,
    Metric::Batches,
    Metric::Dispatched,
    Metric::DroppedEvicted,
    Metric::DroppedAdapterFatal,
    Metric::DroppedRetryExhausted,
    Metric::DroppedLost,
    Metric::RejectedBackpressure,
    Metric::BlockedWaits,
    Metric::Retries,
];

fn read(shard: &Shard, metric: Metric) -> u64 {
    let c = &shard.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Acquire);
    match metric {
        Metric::Ingested => shard.ring.accepted(),
        Metric::Dropped => {
            get(&c.dropped_evicted)
                + get(&c.dropped_adapter_fatal)
                + get(&c.dropped_retry_exhausted)
                + get(&c.dropped_lost)
        }
        Metric::Batches => get(&c.batches),
        Metric::Dispatched => get(&c.dispatched),
        Metric::DroppedEvicted => get(&c.dropped_evicted),
        Metric::DroppedAdapterFatal => get(&c.dropped_adapter_fatal),
        Metric::DroppedRetryExhausted => get(&c.dropped_retry_exhausted),
        Metric::DroppedLost => get(&c.dropped_lost),
        Metric::RejectedBackpressure => get(&c.rejected_backpressure),
        Metric::BlockedWaits => get(&c.blocked_waits),
        Metric::Retries => get(&c.retries),
    }
}

/// Every shard whose counters still move (live and draining), plus the totals of retired ones.
#[derive(Default)]
pub(crate) struct ShardRegistry {
    active: ArcSwap<Vec<Arc<Shard>>>,
    retired_totals: [AtomicU64; METRICS.len()],
    retired: Mutex<Vec<ShardStats>>,
}

impl ShardRegistry {
    pub(crate) fn active(&self) -> Arc<Vec<Arc<Shard>>> {
        self.active.load_full()
    }

    pub(crate) fn set_active(&self, shards: Vec<Arc<Shard>>) {
        self.active.store(Arc::new(shards));
    }

    /// Freezes a drained shard's counters into the totals and forgets the shard.
    pub(crate) fn retire(&self, shard: &Arc<Shard>) {
        let mut frozen = shard_stats(shard);
        frozen.retired = true;
        if let Ok(mut retired) = self.retired.lock() {
            retired.push(frozen);
        }
        for (i, metric) in METRICS.iter().enumerate() {
            self.retired_totals[i].fetch_add(read(shard, *metric), Ordering::AcqRel);
        }
        let rest: Vec<_> = self.active().iter().filter(|s| !Arc::ptr_eq(s, shard)).cloned().collect();
        self.set_active(rest);
    }

    fn sum(&self, metric: Metric) -> u64 {
        let index = METRICS.iter().position(|m| *m == metric).unwrap_or(0);
        let retired = self.retired_totals[index].load(Ordering::Acquire);
        self.active.load().iter().map(|s| read(s, metric)).sum::<u64>() + retired
    }
}

/// A statistic summed over shards on read. Reads are lock-free.
pub struct Counter {
    metric: Metric,
    registry: Arc<ShardRegistry>,
}

impl Counter {
    /// The current total. The ordering argument mirrors `AtomicU64::load`; sums are always read
    /// with acquire ordering.
    pub fn load(&self, _order: Ordering) -> u64 {
        self.registry.sum(self.metric)
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.registry.sum(self.metric)
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// Counters of one bus. After `flush()` returns Ok and after `shutdown()`:
/// `events_dispatched + events_dropped == events_ingested`, exactly.
///
/// `events_dropped` is the sum of the `dropped_*` causes. `rejected_backpressure` counts events
/// refused by `ingest` in `DropNewest` mode: the caller got an error for them, so they were never
/// ingested and are not drops.
pub struct EventBusStats {
    /// Events accepted by `ingest`.
    pub events_ingested: Counter,
    /// Accepted events that will never reach the adapter, all causes.
    pub events_dropped: Counter,
    /// Batches the adapter accepted.
    pub batches_dispatched: Counter,
    /// Events the adapter accepted.
    pub events_dispatched: Counter,
    /// Set when shutdown completes if any accepted event was ever dropped.
    pub shutdown_was_lossy: AtomicBool,
    /// Evicted from a full ring in `DropOldest` mode.
    pub dropped_evicted: Counter,
    /// In batches the adapter rejected with a non-retryable error (or a panic).
    pub dropped_adapter_fatal: Counter,
    /// In batches that failed with retryable errors until the retry budget ran out.
    pub dropped_retry_exhausted: Counter,
    /// Accepted but lost because a shard worker died.
    pub dropped_lost: Counter,
    /// Refused by `ingest` with `Backpressure` (not ingested).
    pub rejected_backpressure: Counter,
    /// Times a producer waited for room in `Block` mode.
    pub blocked_waits: Counter,
    /// Batch retries after retryable adapter errors.
    pub retries: Counter,
    pub(crate) registry: Arc<ShardRegistry>,
    adapter: Arc<dyn Adapter>,
    pub(crate) last_adapter_error: Mutex<Option<String>>,
    workers_running: AtomicUsize,
}

/// Held by a shard worker's task for as long as the task exists, however it ends.
pub(crate) struct WorkerAlive(Arc<EventBusStats>);

impl Drop for WorkerAlive {
    fn drop(&mut self) {
        self.0.workers_running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EventBusStats {
    pub(crate) fn new(registry: Arc<ShardRegistry>, adapter: Arc<dyn Adapter>) -> Self {
        let counter = |metric| Counter { metric, registry: registry.clone() };
        Self {
            events_ingested: counter(Metric::Ingested),
            events_dropped: counter(Metric::Dropped),
            batches_dispatched: counter(Metric::Batches),
            events_dispatched: counter(Metric::Dispatched),
            shutdown_was_lossy: AtomicBool::new(false),
            dropped_evicted: counter(Metric::DroppedEvicted),
            dropped_adapter_fatal: counter(Metric::DroppedAdapterFatal),
            dropped_retry_exhausted: counter(Metric::DroppedRetryExhausted),
            dropped_lost: counter(Metric::DroppedLost),
            rejected_backpressure: counter(Metric::RejectedBackpressure),
            blocked_waits: counter(Metric::BlockedWaits),
            retries: counter(Metric::Retries),
            registry,
            adapter,
            last_adapter_error: Mutex::new(None),
            workers_running: AtomicUsize::new(0),
        }
    }

    /// Shard worker tasks that exist: one per shard while the bus runs (a shard being removed
    /// keeps its worker until everything it accepted has been dispatched), none once shutdown
    /// returns. A higher count means a leaked worker.
    pub fn workers_running(&self) -> usize {
        self.workers_running.load(Ordering::Acquire)
    }

    /// Counts a worker from before its task is spawned until the task is dropped.
    pub(crate) fn worker_started(self: &Arc<Self>) -> WorkerAlive {
        self.workers_running.fetch_add(1, Ordering::AcqRel);
        WorkerAlive(self.clone())
    }

    /// A plain-number copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            events_ingested: self.events_ingested.get(),
            events_dropped: self.events_dropped.get(),
            batches_dispatched: self.batches_dispatched.get(),
            events_dispatched: self.events_dispatched.get(),
            shutdown_was_lossy: self.shutdown_was_lossy.load(Ordering::Acquire),
            dropped_evicted: self.dropped_evicted.get(),
            dropped_adapter_fatal: self.dropped_adapter_fatal.get(),
            dropped_retry_exhausted: self.dropped_retry_exhausted.get(),
            dropped_lost: self.dropped_lost.get(),
            rejected_backpressure: self.rejected_backpressure.get(),
            blocked_waits: self.blocked_waits.get(),
            retries: self.retries.get(),
            events_trimmed: self.adapter.trimmed_events(),
        }
    }

    /// Events the adapter discarded to respect its retention bounds (Memory adapter limits).
    /// Not drops: they were dispatched and stored first.
    pub fn events_trimmed(&self) -> u64 {
        self.adapter.trimmed_events()
    }

    /// The adapter's name (`"memory"`, `"redis"`, ...; see [`Adapter::name`]).
    pub fn adapter_name(&self) -> &str {
        self.adapter.name()
    }

    /// The adapter's own figures (see [`Adapter::metrics`]).
    pub fn adapter_metrics(&self) -> Vec<crate::adapter::AdapterMetric> {
        let mut out = Vec::new();
        self.adapter.metrics(&mut out);
        out
    }

    /// Per-shard figures: live and draining shards, then retired ones.
    pub fn shards(&self) -> Vec<ShardStats> {
        let mut out: Vec<ShardStats> = self.registry.active().iter().map(|s| shard_stats(s)).collect();
        if let Ok(retired) = self.registry.retired.lock() {
            out.extend(retired.iter().cloned());
        }
        out
    }

    /// Every figure as one JSON document: totals, per-shard figures and the adapter's own
    /// (schema in README.md, "Monitoring"; `STATS_SCHEMA_VERSION`). For programs that poll
    /// statistics, as librdkafka's statistics JSON is used.
    pub fn to_json(&self) -> String {
        json::render(&report::Report::read(self))
    }

    /// The same figures in the Prometheus text exposition format (0.0.4), for a `/metrics`
    /// endpoint: names prefixed `purple_rain_`, counters ending in `_total`.
    pub fn to_prometheus(&self) -> String {
        prometheus::render(&report::Report::read(self))
    }

    /// The message of the most recent adapter error seen by dispatch, if any.
    pub fn last_adapter_error(&self) -> Option<String> {
        self.last_adapter_error.lock().ok().and_then(|e| e.clone())
    }

    pub(crate) fn record_adapter_error(&self, message: String) {
        if let Ok(mut last) = self.last_adapter_error.lock() {
            *last = Some(message);
        }
    }
}

impl std::fmt::Debug for EventBusStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}

fn shard_stats(shard: &Shard) -> ShardStats {
    ShardStats {
        id: shard.id,
        events_ingested: read(shard, Metric::Ingested),
        events_dispatched: read(shard, Metric::Dispatched),
        events_dropped: read(shard, Metric::Dropped),
        batches_dispatched: read(shard, Metric::Batches),
        rejected_backpressure: read(shard, Metric::RejectedBackpressure),
        ring_len: shard.ring.len(),
        ring_capacity: shard.ring.capacity(),
        retired: false,
    }
}

/// Plain copy of [`EventBusStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StatsSnapshot {
    pub events_ingested: u64,
    pub events_dropped: u64,
    pub batches_dispatched: u64,
    pub events_dispatched: u64,
    pub shutdown_was_lossy: bool,
    pub dropped_evicted: u64,
    pub dropped_adapter_fatal: u64,
    pub dropped_retry_exhausted: u64,
    pub dropped_lost: u64,
    pub rejected_backpressure: u64,
    pub blocked_waits: u64,
    pub retries: u64,
    pub events_trimmed: u64,
}

impl StatsSnapshot {
    /// `events_dispatched + events_dropped == events_ingested`.
    pub fn is_balanced(&self) -> bool {
        self.events_dispatched + self.events_dropped == self.events_ingested
    }
}

/// Figures of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStats {
    /// Shard id.
    pub id: u16,
    /// Accepted into its ring.
    pub events_ingested: u64,
    /// Accepted by the adapter.
    pub events_dispatched: u64,
    /// Dropped, all causes.
    pub events_dropped: u64,
    /// Batches accepted by the adapter.
    pub batches_dispatched: u64,
    /// Refused with back-pressure.
    pub rejected_backpressure: u64,
    /// Events in the ring now.
    pub ring_len: usize,
    /// Ring slots.
    pub ring_capacity: usize,
    /// Removed by scaling; its counters are frozen.
    pub retired: bool,
}
