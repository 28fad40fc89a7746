//! The `EventBus` class as JavaScript sees it (`index.js` adds `poll`, `ingest`, `subscribe`
//! and `EventBus.create` on top of these natives).

use crate::args;
use crate::errors::Failure;
use crate::page::{FlushReport, RawValue, ScalingAdvice, Stats};
use crate::poll_page::{self, Ids};
use crate::{fast, lifetime, promise};
use napi::bindgen_prelude::{Env, JavaScriptClassExt, Object, Unknown};
use napi::JsValue;
use napi_derive::napi;
use purple_rain::adapter::AdapterConfig;
use purple_rain::{ConsumeRequest, EventBus as Bus, EventBusConfig, IdPool, ScalingDecision};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// `Number.MAX_SAFE_INTEGER`: the largest millisecond count a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

// The doc comments of `#[napi]` items below are the JSDoc of `native.d.ts`, which the build
// generates from them (`scripts/build.js`): they are written for JavaScript readers. Items
// `index.js` wraps are `skip_typescript`; `index.d.ts` declares the wrappers.

/// A sharded event bus. Create one with `await EventBus.create(config)`.
#[napi]
pub struct EventBus {
    // The ingest calls are own properties of each instance, made by `fast::install` (and
    // `ingestRaw` by `index.js` on top of them); the rest is here and in `index.js`.
    bus: Arc<Bus>,
    /// Most unwoken single events before `ingestRaw` wakes the workers mid-job (see `fast`).
    wake_every: u32,
    /// Set when `shutdown()` starts, so parked long polls end at once instead of at their
    /// deadline.
    closed: Arc<watch::Sender<bool>>,
    /// Ids of pages already packed for JS, for the next polls to write into.
    ids: Arc<IdPool>,
    /// The adapter reads from memory only (Memory, Noop): a poll never blocks, so a page ready
    /// at once is read on the JS thread ([`promise::now_or_spawn`]). Any other adapter reads
    /// files or a network, which must not hold the event loop: its polls run on the runtime.
    reads_in_memory: bool,
}

impl EventBus {
    fn new(bus: Bus, ring_capacity: usize, reads_in_memory: bool) -> Self {
        // A quarter ring, so unwoken events can never fill one (they may all hash to one shard),
        // and at most 64, so a long synchronous burst still reaches the adapter as it goes.
        let wake_every = (ring_capacity / 4).clamp(1, 64) as u32;
        Self {
            bus: Arc::new(bus),
            wake_every,
            closed: Arc::new(watch::channel(false).0),
            ids: Arc::default(),
            reads_in_memory,
        }
    }

    fn ensure_open(&self) -> Result<(), Failure> {
        if self.bus.is_shutting_down() || *self.closed.borrow() {
            return Err(Failure::shutting_down());
        }
        Ok(())
    }
}

impl Drop for EventBus {
    /// The JS object was collected (or its env is tearing down): shut the bus down.
    fn drop(&mut self) {
        lifetime::release(self.bus.clone());
    }
}

#[napi]
impl EventBus {
    /// Starts a bus from a JSON config (`null`/`undefined` for the defaults). `index.js`
    /// exposes it as `EventBus.create(config)`, which also accepts an object.
    #[napi(js_name = "_create", skip_typescript, catch_unwind)]
    pub fn create<'env>(env: &'env Env, config: Unknown<'env>) -> napi::Result<Object<'env>> {
        lifetime::watch_env(env);
        let text = match args::optional_string(env, &config, "config") {
            Ok(text) => text.unwrap_or_default(),
            Err(failure) => return promise::rejected(env, failure),
        };
        let config = match EventBusConfig::from_json(&text) {
            Ok(config) => config,
            Err(e) => return promise::rejected(env, e.into()),
        };
        let ring_capacity = config.ring_capacity;
        let reads_in_memory = matches!(config.adapter, AdapterConfig::Memory(_) | AdapterConfig::Noop);
        promise::spawn(env, async move { Bus::new(config).await.map_err(Failure::from) }, move |env, bus| {
            let instance = EventBus::new(bus, ring_capacity, reads_in_memory);
            let shared = instance.bus.clone();
            let object = instance.into_instance(env)?;
            fast::install(env, object.value, &shared)?;
            Ok(RawValue(object.value))
        })
    }

    /// Reads a page. Takes the request as JSON (`index.js` builds it) and whether ids may be
    /// left for JavaScript to derive (`pollPacked`; `poll` builds every id); returns the packed
    /// page ([`poll_page`]) when an in-memory read completes at once, else a promise of it.
    #[napi(js_name = "_pollPacked", skip_typescript, catch_unwind)]
    pub fn poll_packed<'env>(
        &self,
        env: &'env Env,
        request: Unknown<'env>,
        ids_on_demand: Option<bool>,
    ) -> napi::Result<RawValue> {
        let request = args::optional_string(env, &request, "request")
            .and_then(|text| ConsumeRequest::from_json(text.as_deref().unwrap_or("")).map_err(Failure::from))
            .and_then(|request| self.ensure_open().map(|()| request));
        let request = match request {
            Ok(request) => request,
            Err(failure) => return promise::rejected(env, failure).map(|promise| RawValue(promise.raw())),
        };
        let ids_form = if ids_on_demand == Some(true) { Ids::OnDemand } else { Ids::Joined };
        let (bus, ids) = (self.bus.clone(), self.ids.clone());
        let pool = ids.clone();
        let mut closed = self.closed.subscribe();
        let task = async move {
            if request.wait.is_some() {
                tokio::select! {
                    page = bus.poll_reusing(request, &ids) => page.map_err(Failure::from),
                    _ = closed.wait_for(|closed| *closed) => Err(Failure::shutting_down()),
                }
            } else {
                bus.poll_reusing(request, &ids).await.map_err(Failure::from)
            }
        };
        let convert = move |env: &Env, page| poll_page::to_js(env, page, ids_form, &pool);
        if self.reads_in_memory {
            promise::now_or_spawn(env, task, convert)
        } else {
            promise::spawn(env, task, convert).map(|promise| RawValue(promise.raw()))
        }
    }

    /// Resolves to `{ dropped, lossy }` once every event accepted before the call has reached
    /// the adapter and the adapter has flushed; rejects with `TIMEOUT` (and `undelivered`,
    /// `dropped`) if `timeoutMs` (`null`/`undefined`: no deadline) passed first. `index.js`
    /// exposes it as `flush({ timeoutMs })`.
    #[napi(js_name = "_flush", skip_typescript, catch_unwind)]
    pub fn flush<'env>(&self, env: &'env Env, timeout_ms: Unknown<'env>) -> napi::Result<Object<'env>> {
        let timeout = if args::is_nullish(&timeout_ms) {
            Ok(Duration::MAX)
        } else {
            args::integer(env, &timeout_ms, "timeoutMs", 0.0, MAX_SAFE_INTEGER)
                .map(|ms| Duration::from_millis(ms as u64))
        };
        let timeout = match timeout.and_then(|timeout| self.ensure_open().map(|()| timeout)) {
            Ok(timeout) => timeout,
            Err(failure) => return promise::rejected(env, failure),
        };
        let bus = self.bus.clone();
        promise::spawn(env, async move { bus.flush_timeout(timeout).await.map_err(Failure::from) }, |_, report| {
            Ok(FlushReport { dropped: report.dropped as f64, lossy: report.lossy })
        })
    }

    /// Drains, flushes and stops the bus. Idempotent: every call resolves when the one
    /// shutdown completes. Ends parked long polls and subscriptions; later calls reject or
    /// throw `SHUTTING_DOWN` (except `stats()`, `shardIds()`, `isShuttingDown()`, `shutdown()`).
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn shutdown<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.closed.send_replace(true);
        let bus = self.bus.clone();
        promise::spawn(env, async move { bus.shutdown_via_ref().await.map_err(Failure::from) }, |_, ()| Ok(()))
    }

    /// Adds `count` shards; resolves to their ids.
    #[napi(ts_args_type = "count: number", ts_return_type = "Promise<Array<number>>", catch_unwind)]
    pub fn add_shards<'env>(&self, env: &'env Env, count: Unknown<'env>) -> napi::Result<Object<'env>> {
        let count = args::integer(env, &count, "count", 1.0, f64::from(u16::MAX))
            .and_then(|count| self.ensure_open().map(|()| count as u16));
        let count = match count {
            Ok(count) => count,
            Err(failure) => return promise::rejected(env, failure),
        };
        let bus = self.bus.clone();
        let task = async move { bus.add_shards(count).await.map_err(Failure::from) };
        promise::spawn(env, task, |_, ids| Ok(ids.into_iter().map(u32::from).collect::<Vec<u32>>()))
    }

    /// Stops routing to the given shards, drains them to the adapter and retires them. Their
    /// events stay pollable.
    #[napi(ts_args_type = "ids: Array<number>", ts_return_type = "Promise<void>", catch_unwind)]
    pub fn remove_shards<'env>(&self, env: &'env Env, ids: Unknown<'env>) -> napi::Result<Object<'env>> {
        let mut shard_ids = Vec::new();
        let parsed = args::for_each_element(env, &ids, "ids", |_, id| {
            shard_ids.push(args::integer(env, &id, "each shard id", 0.0, f64::from(u16::MAX))? as u16);
            Ok(())
        })
        .and_then(|()| self.ensure_open());
        if let Err(failure) = parsed {
            return promise::rejected(env, failure);
        }
        let bus = self.bus.clone();
        promise::spawn(env, async move { bus.remove_shards(shard_ids).await.map_err(Failure::from) }, |_, ()| Ok(()))
    }

    /// Recommends a change of the shard set from the load measured since the previous call.
    #[napi(ts_return_type = "Promise<ScalingAdvice>", catch_unwind)]
    pub fn suggest_scaling<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        if let Err(failure) = self.ensure_open() {
            return promise::rejected(env, failure);
        }
        let bus = self.bus.clone();
        promise::spawn(env, async move { Ok(bus.suggest_scaling().await) }, |_, decision| {
            Ok(match decision {
                ScalingDecision::ScaleUp(count) => {
                    ScalingAdvice { action: "scaleUp".into(), count: u32::from(count), shards: Vec::new() }
                }
                ScalingDecision::ScaleDown(ids) => ScalingAdvice {
                    action: "scaleDown".into(),
                    count: ids.len() as u32,
                    shards: ids.into_iter().map(u32::from).collect(),
                },
                ScalingDecision::None => ScalingAdvice { action: "none".into(), count: 0, shards: Vec::new() },
            })
        })
    }

    /// The bus counters, read now (also valid after shutdown).
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Stats {
        Stats::read(&self.bus)
    }

    /// Every figure as one JSON document (totals, per shard, the adapter's own; schema in the
    /// README, "Monitoring"): `JSON.parse(bus.statsJson())`. Also valid after shutdown.
    #[napi(catch_unwind)]
    pub fn stats_json(&self) -> String {
        self.bus.stats_json()
    }

    /// The same figures in the Prometheus text exposition format, for a `/metrics` response.
    #[napi(catch_unwind)]
    pub fn stats_prometheus(&self) -> String {
        self.bus.stats_prometheus()
    }

    /// How many single events `ingestRaw` leaves unwoken at most before waking the workers.
    #[napi(js_name = "_wakeEvery", skip_typescript)]
    pub fn wake_every(&self) -> u32 {
        self.wake_every
    }

    /// Ids of the live shards, ascending.
    #[napi(catch_unwind)]
    pub fn shard_ids(&self) -> Vec<u32> {
        self.bus.shard_ids().into_iter().map(u32::from).collect()
    }

    /// Whether shutdown has begun.
    #[napi(catch_unwind)]
    pub fn is_shutting_down(&self) -> bool {
        self.bus.is_shutting_down() || *self.closed.borrow()
    }
}
