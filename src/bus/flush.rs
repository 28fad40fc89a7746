//! `flush` and `flush_timeout`: a barrier over every shard, then the adapter's own flush, with
//! an optional deadline and a report of what was dropped since the previous flush.
//!
//! A deadline only stops the *wait*: the barrier futures are dropped, never the events. The
//! workers keep delivering (or counting dropped, as the retry policy says) what was queued, so a
//! timed-out flush is safe to repeat. What it reports is read off the bus counters: `undelivered`
//! is accepted minus delivered minus dropped (queued in rings or in a batch being retried), and
//! `dropped` is the growth of `events_dropped` since the last flush that returned a report (a
//! high-water mark moved with `fetch_max`, so concurrent flushes never report one drop twice).
//! The plain `flush()` reports nothing, so it leaves the mark alone: no drop goes unreported
//! to a caller who asks for reports.

use super::{BusInner, EventBus};
use crate::error::{AdapterError, FlushError};
use crate::runtime;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a completed flush saw: the losses since the previous flush returned.
///
/// # Examples
/// ```
/// use purple_rain::{AdapterConfig, EventBus, EventBusConfig, RawEvent};
/// use std::time::Duration;
/// # purple_rain::runtime::wait(async {
/// let bus = EventBus::new(EventBusConfig::builder().adapter(AdapterConfig::memory()).build()?).await?;
/// bus.ingest_raw(RawEvent::from_bytes(&b"{}"[..]))?;
/// let report = bus.flush_timeout(Duration::from_secs(5)).await?;
/// assert!(!report.lossy);
/// # bus.shutdown().await?;
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReport {
    /// Events dropped (any cause: eviction, retry budget spent, fatal adapter error, lost
    /// worker) since the previous reporting flush (`flush_timeout`, or a binding's flush)
    /// returned. Each drop is reported by one flush only.
    pub dropped: u64,
    /// `dropped > 0`: something accepted since the previous flush will never be delivered.
    pub lossy: bool,
}

impl FlushReport {
    fn new(dropped: u64) -> Self {
        Self { dropped, lossy: dropped > 0 }
    }
}

/// The value of `events_dropped` that the last flush reported up to.
#[derive(Default)]
pub(crate) struct FlushMark(AtomicU64);

impl EventBus {
    /// Like [`flush`](Self::flush), but gives up waiting after `timeout` and says what was lost.
    ///
    /// `Ok` once every event accepted before the call has been handed to the adapter (or
    /// counted dropped) and the adapter has flushed, with the drops since the previous flush.
    /// [`FlushError::Timeout`] if `timeout` passed first: nothing is cancelled, the undelivered
    /// events stay queued and keep being delivered, and the error carries how many there were
    /// and the drops since the previous flush. `Duration::MAX` waits without a deadline, like
    /// `flush`, and still reports losses.
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<FlushReport, FlushError> {
        if self.inner.lifecycle.is_shutting_down() {
            return Err(FlushError::Adapter(AdapterError::Shutdown));
        }
        let inner = self.inner.clone();
        runtime::run(async move {
            match tokio::time::timeout(timeout, inner.flush()).await {
                Ok(Ok(())) => Ok(FlushReport::new(inner.take_dropped())),
                Ok(Err(e)) => Err(FlushError::Adapter(e)),
                Err(_elapsed) => {
                    let undelivered = inner.undelivered();
                    Err(FlushError::Timeout { undelivered, dropped: inner.take_dropped() })
                }
            }
        })
        .await
    }
}

impl BusInner {
    /// Waits until every shard's worker has passed the events accepted so far, then flushes the
    /// adapter.
    pub(crate) async fn flush(&self) -> Result<(), AdapterError> {
        let barriers: Vec<_> = self.registry.active().iter().map(|s| s.barrier()).collect();
        for barrier in barriers {
            // A dropped sender means the worker is gone, which only happens after it drained.
            let _ = barrier.await;
        }
        self.adapter.flush().await
    }

    /// Drops since the last report, and moves the mark past them.
    pub(crate) fn take_dropped(&self) -> u64 {
        let now = self.stats.events_dropped.get();
        let before = self.flush_mark.0.fetch_max(now, Ordering::AcqRel);
        now.saturating_sub(before)
    }

    /// Accepted, not yet delivered or dropped. Outcomes are read before acceptances, so a
    /// concurrent delivery can only make this an overestimate of the moment, never negative.
    fn undelivered(&self) -> u64 {
        let settled = self.stats.events_dispatched.get() + self.stats.events_dropped.get();
        self.stats.events_ingested.get().saturating_sub(settled)
    }
}
