//! `EventBus`: the one handle for ingest, poll, flush, scaling and shutdown.

mod flush;
mod lifecycle;
mod scaling;
#[cfg(test)]
mod tests;

use crate::adapter::{self, Adapter, IdPool};
use crate::config::EventBusConfig;
use crate::consume::poll::{self, Recycled};
use crate::consume::{ConsumeRequest, ConsumeResponse};
use crate::dispatch::worker::{self, DispatchContext};
use crate::error::{AdapterError, ConfigError, ConsumerError, ConsumerResult, IngestionError, IngestionResult};
use crate::ingest::{PublishedRoutes, Routes, Shard, ShardPushError};
use crate::model::{Event, ProducerIdentity, RawEvent};
use crate::runtime;
use crate::stats::{EventBusStats, ShardRegistry};
use flush::FlushMark;
pub use flush::FlushReport;
use lifecycle::Lifecycle;
use scaling::Scaling;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A sharded event bus.
///
/// # Examples
/// ```
/// use purple_rain::{AdapterConfig, ConsumeRequest, Event, EventBus, EventBusConfig};
/// # purple_rain::runtime::wait(async {
/// let config = EventBusConfig::builder().shards(2).adapter(AdapterConfig::memory()).build()?;
/// let bus = EventBus::new(config).await?;
/// bus.ingest(Event::from_str(r#"{"kind":"click"}"#)?)?;
/// bus.flush().await?;
/// let page = bus.poll(ConsumeRequest::new(10)).await?;
/// assert_eq!(page.events.len(), 1);
/// bus.shutdown().await?;
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// # }).unwrap();
/// ```
pub struct EventBus {
    inner: Arc<BusInner>,
}

pub(crate) struct BusInner {
    pub(crate) config: EventBusConfig,
    pub(crate) adapter: Arc<dyn Adapter>,
    pub(crate) routes: PublishedRoutes,
    pub(crate) registry: Arc<ShardRegistry>,
    pub(crate) stats: Arc<EventBusStats>,
    pub(crate) dispatch: Arc<DispatchContext>,
    pub(crate) workers: Mutex<Vec<(u16, JoinHandle<()>)>>,
    /// Every shard id this bus ever had (poll may name retired ones).
    pub(crate) known_shards: Mutex<BTreeSet<u16>>,
    pub(crate) scaling: Scaling,
    pub(crate) lifecycle: Lifecycle,
    /// How far flush reports have counted `events_dropped`.
    flush_mark: FlushMark,
}

impl EventBus {
    /// Starts a bus with the adapter its config names.
    pub async fn new(config: EventBusConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let adapter = adapter::from_config(&config.adapter)?;
        Self::with_adapter(config, adapter).await
    }

    /// Starts a bus with a caller-supplied adapter (`config.adapter` is ignored).
    pub async fn with_adapter(config: EventBusConfig, adapter: Arc<dyn Adapter>) -> Result<Self, ConfigError> {
        crate::log::init_from_env();
        config.validate()?;
        let inner = runtime::run(BusInner::start(config, adapter)).await?;
        scaling::start_monitor(&inner);
        Ok(Self { inner })
    }

    /// Accepts a JSON event (stored as compact JSON). Never blocks, except in `Block` mode.
    pub fn ingest(&self, event: Event) -> IngestionResult<()> {
        let bytes = serde_json::to_vec(event.as_value()).map_err(IngestionError::Serialization)?;
        self.ingest_raw(RawEvent::from_bytes(bytes))
    }

    /// Accepts pre-serialised bytes; routes by the cached hash. Never blocks, except in `Block`
    /// mode. On `Ok` the event is counted ingested and will be dispatched or counted dropped.
    ///
    /// The calling thread keeps a reference to the shard set it routed through, so the next
    /// call needs no atomic read-modify-write. That set (and the memory of its rings) stays
    /// allocated after the bus is gone until the thread ingests into any bus again or exits,
    /// unless this thread is the one that shut the bus down.
    #[inline]
    pub fn ingest_raw(&self, event: RawEvent) -> IngestionResult<()> {
        self.route_and_push(event, Shard::push)
    }

    /// Like [`ingest_raw`](Self::ingest_raw), but leaves the shard's worker asleep if it is: the
    /// caller must call [`wake_workers`](Self::wake_workers) soon after, and before a run of
    /// these could fill a ring. For front ends that see many single events per turn of their
    /// event loop (Node wakes at the end of the current JS job), where one wake-up per event is
    /// most of the cost. Acceptance rules are those of `ingest_raw`.
    #[inline]
    pub fn ingest_raw_unwoken(&self, event: RawEvent) -> IngestionResult<()> {
        self.route_and_push(event, Shard::push_quiet)
    }

    /// Routes `event` to its live shard and pushes it with `push`. A closed shard is one being
    /// removed (the route table without it is already published, so the next load routes to a
    /// live shard) unless the bus is shutting down.
    #[inline(always)]
    fn route_and_push(
        &self,
        mut event: RawEvent,
        push: impl Fn(&Shard, RawEvent) -> Result<(), ShardPushError>,
    ) -> IngestionResult<()> {
        loop {
            // `None`: no live shard to route to.
            let pushed = self.inner.routes.with_current(|routes| {
                routes.shards.get(routes.table.route(event.hash())).map(|shard| push(shard, event))
            });
            match pushed {
                Some(Ok(())) => return Ok(()),
                None => return Err(IngestionError::Unrouted),
                Some(Err(ShardPushError::Full)) => return Err(IngestionError::Backpressure),
                Some(Err(ShardPushError::Closed(back))) => {
                    if self.inner.lifecycle.is_shutting_down() {
                        return Err(IngestionError::ShuttingDown);
                    }
                    // The ring was closed after the set without it was published: seeing the
                    // close makes that publication visible to the next `with_current`.
                    std::sync::atomic::fence(Ordering::Acquire);
                    event = back;
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Wakes every sleeping worker whose ring holds events: the end of a run of
    /// [`ingest_raw_unwoken`](Self::ingest_raw_unwoken). Cheap when there is nothing to do (a
    /// length and a flag read per shard).
    pub fn wake_workers(&self) {
        for shard in self.inner.routes.load().shards.iter() {
            if shard.ring.len() > 0 {
                shard.wake();
            }
        }
    }

    /// Accepts events in order, as [`ingest_raw`](Self::ingest_raw) on each would, but wakes
    /// each shard's worker once per batch rather than once per event that finds it asleep: a
    /// fast producer otherwise pays a futex wake every few events. For batch front ends (C's
    /// packed ingest, Node's `ingestPacked`). Stops at the first event not accepted; returns how
    /// many were accepted, and that event's error. Workers are also woken every quarter ring
    /// within a batch, so a long batch never fills a ring for want of a wake-up.
    pub fn ingest_raw_batch<I>(&self, events: I) -> (usize, IngestionResult<()>)
    where
        I: IntoIterator<Item = RawEvent>,
    {
        // A shard also gets woken mid-batch every quarter ring: a batch larger than the free room
        // must not meet a full ring (a `DropNewest` refusal, a `DropOldest` eviction) only because
        // the worker that would have made room was left asleep.
        let wake_every = (self.inner.config.ring_capacity / 4).max(1);
        let mut routes = self.inner.routes.load_full();
        let mut unwoken = vec![0usize; routes.shards.len()];
        let wake = |routes: &Routes, unwoken: &mut [usize]| {
            for (shard, count) in routes.shards.iter().zip(unwoken.iter_mut()) {
                if std::mem::take(count) > 0 {
                    shard.wake();
                }
            }
        };
        let mut accepted = 0usize;
        let mut result = Ok(());
        'events: for mut event in events {
            loop {
                if routes.shards.is_empty() {
                    result = Err(IngestionError::Unrouted);
                    break 'events;
                }
                let index = routes.table.route(event.hash());
                let shard = &routes.shards[index];
                match shard.push_quiet(event) {
                    Ok(()) => {
                        accepted += 1;
                        unwoken[index] += 1;
                        if unwoken[index] >= wake_every {
                            unwoken[index] = 0;
                            shard.wake();
                        }
                        continue 'events;
                    }
                    Err(ShardPushError::Full) => {
                        result = Err(IngestionError::Backpressure);
                        break 'events;
                    }
                    Err(ShardPushError::Closed(back)) => {
                        if self.inner.lifecycle.is_shutting_down() {
                            result = Err(IngestionError::ShuttingDown);
                            break 'events;
                        }
                        // A shard is being removed: wake what this table took, then reroute with
                        // the table published without it.
                        wake(&routes, &mut unwoken);
                        routes = self.inner.routes.load_full();
                        unwoken = vec![0; routes.shards.len()];
                        event = back;
                        std::hint::spin_loop();
                    }
                }
            }
        }
        wake(&routes, &mut unwoken);
        (accepted, result)
    }

    /// Reads a page of events (see [`ConsumeRequest`]).
    pub async fn poll(&self, request: ConsumeRequest) -> ConsumerResult<ConsumeResponse> {
        self.poll_recycling(request, Recycled::default()).await
    }

    /// Like [`poll`](Self::poll), but replaces `page` with the new page and reuses its memory:
    /// the new events go into the previous events' buffer, and the previous id strings are
    /// rewritten with the new ids (by the Memory adapter; other adapters allocate ids as
    /// usual). For a consumer that loops over pages and is done with each one before asking
    /// for the next, this takes one allocation per event, and the page's own, out of every
    /// page.
    ///
    /// On error the previous events are gone (`page.events` is empty) and `page.cursor` is
    /// unchanged, so retrying with it loses nothing.
    ///
    /// # Examples
    /// ```
    /// # use purple_rain::{ConsumeRequest, ConsumeResponse, EventBus, EventBusConfig, AdapterConfig, Event};
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let bus = EventBus::new(EventBusConfig::builder().adapter(AdapterConfig::memory()).build()?).await?;
    /// # bus.ingest(Event::new(serde_json::json!({"n": 1})))?;
    /// # bus.flush().await?;
    /// let mut page = ConsumeResponse::default();
    /// loop {
    ///     bus.poll_into(ConsumeRequest::new(1000).from(page.cursor.as_str()), &mut page).await?;
    ///     for event in &page.events {
    ///         // ... use the event; it is recycled by the next poll_into.
    ///         # let _ = event;
    ///     }
    ///     if !page.has_more {
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn poll_into(&self, request: ConsumeRequest, page: &mut ConsumeResponse) -> ConsumerResult<()> {
        let ids = IdPool::new();
        let mut events = std::mem::take(&mut page.events);
        ids.recycle(events.drain(..));
        *page = self.poll_recycling(request, Recycled { ids: Some(&ids), events }).await?;
        Ok(())
    }

    /// Like [`poll`](Self::poll), but the page's ids are written into strings taken from `ids`
    /// (by the Memory adapter) where it has them. For a front end that copies every event out
    /// of the page and can hand the ids back with [`IdPool::recycle`]: the C and Node bindings
    /// keep one pool per bus.
    pub async fn poll_reusing(&self, request: ConsumeRequest, ids: &IdPool) -> ConsumerResult<ConsumeResponse> {
        self.poll_recycling(request, Recycled { ids: Some(ids), ..Recycled::default() }).await
    }

    async fn poll_recycling(&self, request: ConsumeRequest, recycled: Recycled<'_>) -> ConsumerResult<ConsumeResponse> {
        if self.inner.lifecycle.is_shutting_down() {
            return Err(ConsumerError::Adapter(AdapterError::Shutdown));
        }
        let shards = self.inner.select_shards(request.shards.as_deref())?;
        let delivered = self.inner.dispatch.delivered.clone();
        let stopping = self.inner.lifecycle.stopping_flag();
        let adapter = self.inner.adapter.clone();
        runtime::in_context(poll::poll(adapter, request, shards, delivered, stopping, recycled)).await
    }

    /// Returns once every event accepted before the call has been handed to the adapter (or
    /// counted dropped) and the adapter has flushed. No deadline, and drops are not reported
    /// here (only in the stats): [`flush_timeout`](Self::flush_timeout) has both, and since
    /// this flush reports nothing, the next report still includes the drops it saw.
    pub async fn flush(&self) -> Result<(), AdapterError> {
        if self.inner.lifecycle.is_shutting_down() {
            return Err(AdapterError::Shutdown);
        }
        let inner = self.inner.clone();
        runtime::run(async move { inner.flush().await }).await
    }

    /// Drains, flushes and stops the bus, consuming it.
    pub async fn shutdown(self) -> Result<(), AdapterError> {
        self.shutdown_via_ref().await
    }

    /// Drains, flushes and stops the bus. Idempotent; concurrent callers all return when the
    /// one shutdown completes, with its result.
    pub async fn shutdown_via_ref(&self) -> Result<(), AdapterError> {
        BusInner::shutdown(&self.inner).await
    }

    /// The bus counters.
    pub fn stats(&self) -> &EventBusStats {
        &self.inner.stats
    }

    /// The stats JSON document (see [`EventBusStats::to_json`]).
    pub fn stats_json(&self) -> String {
        self.inner.stats.to_json()
    }

    /// The Prometheus text exposition of the stats (see [`EventBusStats::to_prometheus`]).
    pub fn stats_prometheus(&self) -> String {
        self.inner.stats.to_prometheus()
    }

    /// Ids of the live shards, ascending.
    pub fn shard_ids(&self) -> Vec<u16> {
        let mut ids: Vec<u16> = self.inner.routes.load().shards.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.lifecycle.is_shutting_down()
    }

    /// The producer identity used in dedup ids.
    pub fn producer(&self) -> ProducerIdentity {
        self.inner.dispatch.producer
    }

    pub(crate) fn inner(&self) -> &Arc<BusInner> {
        &self.inner
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("adapter", &self.inner.adapter.name())
            .field("shards", &self.shard_ids())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl BusInner {
    async fn start(config: EventBusConfig, adapter: Arc<dyn Adapter>) -> Result<Arc<Self>, ConfigError> {
        let producer = match &config.producer_nonce_path {
            Some(path) => ProducerIdentity::load_and_advance(path).map_err(ConfigError::ProducerIdentity)?,
            None => ProducerIdentity::ephemeral(),
        };
        adapter.init().await?;
        let registry = Arc::new(ShardRegistry::default());
        let stats = Arc::new(EventBusStats::new(registry.clone(), adapter.clone()));
        let dispatch = Arc::new(DispatchContext {
            adapter: adapter.clone(),
            retry: config.batch.retry.clone(),
            max_events: config.batch.max_events,
            producer,
            stats: stats.clone(),
            delivered: Arc::new(Notify::new()),
        });
        let inner = Arc::new(Self {
            routes: PublishedRoutes::new(Routes::new(Vec::new())),
            registry,
            stats,
            dispatch,
            workers: Mutex::new(Vec::new()),
            known_shards: Mutex::new(BTreeSet::new()),
            scaling: Scaling::new(config.shards),
            lifecycle: Lifecycle::new(),
            flush_mark: FlushMark::default(),
            config,
            adapter,
        });
        let mut shards = Vec::with_capacity(inner.config.shards as usize);
        for id in 0..inner.config.shards {
            match inner.start_shard(id).await {
                Ok(shard) => shards.push(shard),
                Err(e) => {
                    inner.stop_shards(&shards).await;
                    return Err(ConfigError::Adapter(e));
                }
            }
        }
        inner.registry.set_active(shards.clone());
        inner.routes.publish(Routes::new(shards));
        Ok(inner)
    }

    /// Creates a shard and starts its worker; the shard is not routed to yet.
    pub(crate) async fn start_shard(&self, id: u16) -> Result<Arc<Shard>, AdapterError> {
        let next_sequence = self.adapter.next_sequence(id).await?;
        let shard = Arc::new(Shard::new(id, self.config.ring_capacity, self.config.backpressure));
        let alive = self.dispatch.stats.worker_started();
        let run = worker::run(shard.clone(), self.dispatch.clone(), next_sequence, 0);
        let handle = runtime::spawn(async move {
            let _alive = alive;
            run.await
        });
        self.workers.lock().unwrap_or_else(|e| e.into_inner()).push((id, handle));
        self.known_shards.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        Ok(shard)
    }

    /// Closes shards, waits for their workers to drain everything to the adapter, and counts
    /// what a dead worker left behind as lost. Returns the ids whose worker died.
    pub(crate) async fn stop_shards(&self, shards: &[Arc<Shard>]) -> Vec<u16> {
        for shard in shards {
            shard.close();
        }
        let handles: Vec<_> = {
            let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
            let (stop, keep): (Vec<_>, Vec<_>) =
                workers.drain(..).partition(|(id, _)| shards.iter().any(|s| s.id == *id));
            *workers = keep;
            stop
        };
        let mut died = Vec::new();
        for (id, handle) in handles {
            if handle.await.is_err() {
                died.push(id);
                if let Some(shard) = shards.iter().find(|s| s.id == id) {
                    let mut rest = Vec::new();
                    while let (crate::ingest::ring::PopStatus::Took(_), _) = shard.ring.pop_batch(usize::MAX, &mut rest)
                    {
                    }
                    shard.counters.dropped_lost.fetch_add(rest.len() as u64, Ordering::AcqRel);
                    shard.worker_exited();
                }
            }
        }
        died
    }

    /// The shards a poll reads: the requested ones (each must exist or hold data), or every
    /// live shard and every shard the adapter still holds data for.
    fn select_shards(&self, requested: Option<&[u16]>) -> ConsumerResult<Vec<u16>> {
        let mut known = self.known_shards.lock().unwrap_or_else(|e| e.into_inner()).clone();
        known.extend(self.adapter.stored_shards());
        match requested {
            Some(ids) => {
                let mut selected = BTreeSet::new();
                for &id in ids {
                    if !known.contains(&id) {
                        return Err(ConsumerError::InvalidRequest(format!(
                            "shard {id} does not exist (known shards: {known:?})"
                        )));
                    }
                    selected.insert(id);
                }
                Ok(selected.into_iter().collect())
            }
            None => {
                let live = self.routes.load().shards.iter().map(|s| s.id).collect::<Vec<_>>();
                let stored = self.adapter.stored_shards();
                Ok(live.into_iter().chain(stored).collect::<BTreeSet<_>>().into_iter().collect())
            }
        }
    }
}
