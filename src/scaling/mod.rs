//! Live scaling: adding and removing shards without losing events, and deciding when to.
//!
//! Adding: a shard's worker runs before the route table that includes it is published, so no
//! event reaches a shard nobody drains. Removing: the table without the shard is published
//! first, then its ring is closed (a producer holding the old table gets `Closed` and reroutes),
//! then the worker drains the ring to the adapter and exits, and only then is the shard retired
//! with its counters frozen into the totals.
//!
//! Decisions come from measurements the hot path already makes: each ring's tail position is
//! its ingest count (rate = delta over time), its fill is `tail - head`, and back-pressure is
//! counted on the slow paths. Sampling reads them; ingest pays nothing extra.

mod policy;

pub use policy::ScalingPolicy;

use crate::bus::{BusInner, EventBus};
use crate::error::ScalingError;
use crate::ingest::routes::Routes;
use crate::ingest::Shard;
use crate::runtime;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What `suggest_scaling` recommends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalingDecision {
    /// Add this many shards.
    ScaleUp(u16),
    /// Remove these shards.
    ScaleDown(Vec<u16>),
    /// Keep the shard set.
    None,
}

/// Scaling bookkeeping, behind the bus's async scaling lock.
pub(crate) struct ScalingState {
    next_id: u32,
    last_applied: Option<Instant>,
}

impl ScalingState {
    pub(crate) fn new(initial_shards: u16) -> Self {
        Self { next_id: u32::from(initial_shards), last_applied: None }
    }
}

/// One reading of a shard's counters.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    accepted: u64,
    pressure: u64,
}

fn read(shard: &Shard) -> Reading {
    let c = &shard.counters;
    Reading {
        at: Instant::now(),
        accepted: shard.ring.accepted(),
        pressure: c.rejected_backpressure.load(Ordering::Relaxed)
            + c.blocked_waits.load(Ordering::Relaxed)
            + c.dropped_evicted.load(Ordering::Relaxed),
    }
}

/// Load measurements between calls, and how long the bus has been idle.
#[derive(Default)]
pub(crate) struct LoadTracker {
    previous: BTreeMap<u16, Reading>,
    idle_since: Option<Instant>,
    /// Tells the auto-scaler to stop (a stored permit, so it is not missed between ticks).
    stop: Arc<Notify>,
}

impl EventBus {
    /// Adds `count` running shards and returns their ids (never reused within the bus's life).
    pub async fn add_shards(&self, count: u16) -> Result<Vec<u16>, ScalingError> {
        let inner = self.inner().clone();
        runtime::run(async move { inner.add_shards(count).await }).await
    }

    /// Stops routing to `shard_ids`, drains their events to the adapter, then retires them.
    /// Returns after the drain. Retired shards' events stay pollable.
    pub async fn remove_shards(&self, shard_ids: Vec<u16>) -> Result<(), ScalingError> {
        let inner = self.inner().clone();
        runtime::run(async move { inner.remove_shards(shard_ids).await }).await
    }

    /// Recommends a change from the load measured since the previous call (or the last monitor
    /// tick), within the policy's bounds.
    pub async fn suggest_scaling(&self) -> ScalingDecision {
        self.inner().suggest_scaling()
    }
}

impl BusInner {
    fn policy(&self) -> crate::ScalingPolicy {
        self.config.scaling.clone().unwrap_or_default()
    }

    fn bounds(&self) -> (u16, u16) {
        match &self.config.scaling {
            Some(p) => (p.min_shards, p.max_shards),
            None => (1, crate::config::MAX_SHARDS),
        }
    }

    pub(crate) async fn add_shards(&self, count: u16) -> Result<Vec<u16>, ScalingError> {
        if count == 0 {
            return Err(ScalingError::InvalidRequest("count must be at least 1".into()));
        }
        let mut state = self.scaling.lock().await;
        if self.lifecycle.is_shutting_down() {
            return Err(ScalingError::ShuttingDown);
        }
        let live = self.routes.load().shards.clone();
        let (min, max) = self.bounds();
        let requested = live.len() + usize::from(count);
        if requested > usize::from(max) {
            return Err(ScalingError::OutOfBounds { requested, min, max });
        }
        if state.next_id + u32::from(count) > u32::from(u16::MAX) + 1 {
            return Err(ScalingError::InvalidRequest("shard ids are exhausted for this bus".into()));
        }
        let mut added = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let id = state.next_id as u16;
            match self.start_shard(id).await {
                Ok(shard) => {
                    state.next_id += 1;
                    added.push(shard);
                }
                Err(e) => {
                    // Roll back: nothing was routed to the new shards yet.
                    self.stop_shards(&added).await;
                    return Err(ScalingError::Adapter(e));
                }
            }
        }
        let mut active: Vec<_> = self.registry.active().iter().cloned().collect();
        active.extend(added.iter().cloned());
        self.registry.set_active(active);
        let shards: Vec<_> = live.iter().cloned().chain(added.iter().cloned()).collect();
        self.routes.publish(Routes::new(shards));
        state.last_applied = Some(Instant::now());
        Ok(added.iter().map(|s| s.id).collect())
    }

    pub(crate) async fn remove_shards(&self, ids: Vec<u16>) -> Result<(), ScalingError> {
        if ids.is_empty() {
            return Err(ScalingError::InvalidRequest("no shard ids given".into()));
        }
        let mut state = self.scaling.lock().await;
        if self.lifecycle.is_shutting_down() {
            return Err(ScalingError::ShuttingDown);
        }
        let live = self.routes.load().shards.clone();
        let mut removing = Vec::with_capacity(ids.len());
        for &id in &ids {
            let Some(shard) = live.iter().find(|s| s.id == id) else { return Err(ScalingError::UnknownShard(id)) };
            if removing.iter().any(|s: &Arc<Shard>| s.id == id) {
                return Err(ScalingError::InvalidRequest(format!("shard {id} is listed twice")));
            }
            removing.push(shard.clone());
        }
        let (min, max) = self.bounds();
        let requested = live.len() - removing.len();
        if requested < usize::from(min.max(1)) {
            return Err(ScalingError::OutOfBounds { requested, min: min.max(1), max });
        }
        let remaining: Vec<_> = live.iter().filter(|s| !ids.contains(&s.id)).cloned().collect();
        self.routes.publish(Routes::new(remaining));
        let died = self.stop_shards(&removing).await;
        for shard in &removing {
            self.registry.retire(shard);
        }
        state.last_applied = Some(Instant::now());
        if died.is_empty() {
            Ok(())
        } else {
            let done = ids.iter().copied().filter(|id| !died.contains(id)).collect();
            let failed = died
                .into_iter()
                .map(|id| (id, "its worker died; its queued events were counted lost".to_owned()))
                .collect();
            Err(ScalingError::Partial { done, failed })
        }
    }

    pub(crate) fn suggest_scaling(&self) -> ScalingDecision {
        let policy = self.policy();
        let shards = self.routes.load().shards.clone();
        let mut tracker = self.load.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut hot = false;
        let mut idle = true;
        let mut previous = BTreeMap::new();
        for shard in &shards {
            let reading = read(shard);
            let fill = shard.ring.len() as f64 / shard.ring.capacity() as f64;
            let (rate, pressure) = match tracker.previous.get(&shard.id) {
                Some(before) => {
                    let secs = reading.at.duration_since(before.at).as_secs_f64().max(1e-6);
                    ((reading.accepted - before.accepted) as f64 / secs, reading.pressure - before.pressure)
                }
                None => (0.0, 0),
            };
            hot |= fill > policy.fill_ratio_high || rate > policy.ingest_rate_high || pressure > 0;
            idle &= fill < policy.fill_ratio_low && rate < policy.ingest_rate_low && pressure == 0;
            previous.insert(shard.id, reading);
        }
        // A shard seen for the first time gives no rate yet: never call the bus idle on that.
        idle &= shards.iter().all(|s| tracker.previous.contains_key(&s.id));
        tracker.previous = previous;
        let live = shards.len() as u16;
        if hot {
            tracker.idle_since = None;
            let room = policy.max_shards.saturating_sub(live);
            return if room == 0 { ScalingDecision::None } else { ScalingDecision::ScaleUp(live.clamp(1, room)) };
        }
        if !idle {
            tracker.idle_since = None;
            return ScalingDecision::None;
        }
        let since = *tracker.idle_since.get_or_insert(now);
        if now.duration_since(since) >= policy.scale_down_delay && live > policy.min_shards.max(1) {
            let newest = shards.iter().map(|s| s.id).max().unwrap_or(0);
            return ScalingDecision::ScaleDown(vec![newest]);
        }
        ScalingDecision::None
    }
}

/// Starts the auto-scaler if the policy asks for it. It holds only a weak reference, so it
/// never keeps a dropped bus alive, and shutdown stops it.
pub(crate) fn start_monitor(inner: &Arc<BusInner>) {
    let Some(policy) = inner.config.scaling.clone().filter(|p| p.auto) else { return };
    let weak: Weak<BusInner> = Arc::downgrade(inner);
    let tick = (policy.cooldown / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let stop = inner.load.lock().unwrap_or_else(|e| e.into_inner()).stop.clone();
    runtime::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Stopping only between decisions: an add or remove in progress always completes.
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.notified() => return,
            }
            let Some(inner) = weak.upgrade() else { return };
            if inner.lifecycle.is_shutting_down() {
                return;
            }
            let decision = inner.suggest_scaling();
            let cooled = {
                let state = inner.scaling.lock().await;
                state.last_applied.is_none_or(|t| t.elapsed() >= policy.cooldown)
            };
            if !cooled {
                continue;
            }
            // Failures (bounds reached, shutdown racing) leave the shard set as it was.
            let _ = match decision {
                ScalingDecision::ScaleUp(n) => inner.add_shards(n).await.map(drop),
                ScalingDecision::ScaleDown(ids) => inner.remove_shards(ids).await,
                ScalingDecision::None => Ok(()),
            };
        }
    });
}

/// Stops the auto-scaler (shutdown then takes the scaling lock, so any decision being applied
/// has finished).
pub(crate) fn stop_monitor(inner: &BusInner) {
    inner.load.lock().unwrap_or_else(|e| e.into_inner()).stop.notify_one();
}
