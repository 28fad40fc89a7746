//! Shutdown: one drain for every caller, whether they call `shutdown`, `shutdown_via_ref`
//! concurrently, or just drop the bus.
//!
//! The sequence runs once, in a task of its own on the library runtime, so a caller that gives
//! up waiting (a dropped future) cannot abandon it halfway. Order matters: (1) mark the bus
//! shutting down so closed rings read as `ShuttingDown` to producers, (2) stop the scaling
//! monitor and take the scaling lock so no shard appears mid-shutdown, (3) close every ring —
//! a producer either reserved its slot before this or fails — and wake everyone, (4) wait for
//! each worker to drain its ring through the adapter, (5) flush and shut down the adapter,
//! (6) set `shutdown_was_lossy`, publish the result.

use super::{BusInner, EventBus};
use crate::error::AdapterError;
use crate::ingest::PublishedRoutes;
use crate::runtime;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

pub(crate) struct Lifecycle {
    shutting_down: Arc<AtomicBool>,
    started: AtomicBool,
    done: watch::Sender<Option<Result<(), AdapterError>>>,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Self {
            shutting_down: Arc::new(AtomicBool::new(false)),
            started: AtomicBool::new(false),
            done: watch::channel(None).0,
        }
    }

    /// The flag itself, for waits that must end when shutdown begins.
    pub(crate) fn stopping_flag(&self) -> Arc<AtomicBool> {
        self.shutting_down.clone()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

impl BusInner {
    /// Starts the shutdown if no one has, and waits for its result.
    pub(crate) async fn shutdown(this: &Arc<Self>) -> Result<(), AdapterError> {
        let mut done = this.begin_shutdown();
        let result = match done.wait_for(Option::is_some).await {
            Ok(result) => result.clone().unwrap_or(Ok(())),
            Err(_) => Err(AdapterError::Shutdown),
        };
        result
    }

    /// Spawns the shutdown sequence once; returns a receiver for its result.
    fn begin_shutdown(self: &Arc<Self>) -> watch::Receiver<Option<Result<(), AdapterError>>> {
        // The thread shutting a bus down is usually the one that ingested into it.
        PublishedRoutes::forget_cached();
        let done = self.lifecycle.done.subscribe();
        if !self.lifecycle.started.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            runtime::spawn(async move {
                let result = this.run_shutdown().await;
                this.lifecycle.done.send_replace(Some(result));
            });
        }
        done
    }

    async fn run_shutdown(&self) -> Result<(), AdapterError> {
        tracing::info!(shards = self.registry.active().len(), "shutdown: draining every shard");
        self.lifecycle.shutting_down.store(true, Ordering::Release);
        super::scaling::stop_monitor(self);
        let _scaling = self.scaling.state.lock().await;
        let shards = self.registry.active();
        self.stop_shards(&shards).await;
        // Anyone parked in a long poll re-checks and sees the shutdown.
        self.dispatch.delivered.notify_waiters();
        let flushed = self.adapter.flush().await;
        let stopped = self.adapter.shutdown().await;
        let stats = self.stats.snapshot();
        let lossy = stats.events_dropped > 0 || !stats.is_balanced();
        self.stats.shutdown_was_lossy.store(lossy, Ordering::Release);
        let result = flushed.and(stopped);
        let (ingested, dispatched, dropped) = (stats.events_ingested, stats.events_dispatched, stats.events_dropped);
        match (&result, lossy) {
            (Err(error), _) => tracing::error!(ingested, dispatched, dropped, %error, "shutdown: the adapter failed"),
            (Ok(()), true) => tracing::warn!(ingested, dispatched, dropped, "shutdown complete, lossy"),
            (Ok(()), false) => tracing::info!(ingested, dispatched, dropped, "shutdown complete"),
        }
        result
    }
}

impl Drop for EventBus {
    /// Shuts the bus down. Outside any async runtime this waits for the drain, so events
    /// ingested before the drop reach the adapter before `drop` returns; inside one it cannot
    /// block, so the drain finishes in the background on the library runtime.
    fn drop(&mut self) {
        if self.inner.lifecycle.done.borrow().is_some() {
            return;
        }
        let done = self.inner.begin_shutdown();
        if tokio::runtime::Handle::try_current().is_err() {
            runtime::wait(async move {
                let mut done = done;
                let _ = done.wait_for(Option::is_some).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventBusConfig;
    use crate::model::RawEvent;

    #[tokio::test]
    async fn shutting_a_bus_down_drops_this_threads_cached_route_set() {
        let bus = EventBus::new(EventBusConfig::default()).await.expect("bus");
        bus.ingest_raw(RawEvent::from_bytes(b"{}".to_vec())).expect("ingest");
        let routes = bus.inner.routes.load_full();
        // The bus, this test and this thread's route cache hold the set.
        assert_eq!(Arc::strong_count(&routes), 3);
        bus.shutdown_via_ref().await.expect("shutdown");
        assert_eq!(Arc::strong_count(&routes), 2);
    }
}
