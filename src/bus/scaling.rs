//! Live scaling, the bus side: adding and removing shards without losing events, and the
//! auto-scaler that applies the decisions of `crate::scaling`.
//!
//! Adding: a shard's worker runs before the route table that includes it is published, so no
//! event reaches a shard nobody drains. Removing: the table without the shard is published
//! first, then its ring is closed (a producer holding the old table gets `Closed` and reroutes),
//! then the worker drains the ring to the adapter and exits, and only then is the shard retired
//! with its counters frozen into the totals.

use super::{BusInner, EventBus};
use crate::config::{ScalingPolicy, MAX_SHARDS};
use crate::error::ScalingError;
use crate::ingest::{Routes, Shard};
use crate::runtime;
use crate::scaling::{LoadTracker, ScalingDecision};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A bus's scaling side: the lock that serialises changes of the shard set, the load tracker
/// behind `suggest_scaling`, and the auto-scaler's stop signal.
pub(crate) struct Scaling {
    /// Held for the whole of an add or remove (and by shutdown, to wait for one to finish).
    pub(super) state: tokio::sync::Mutex<ScalingState>,
    load: Mutex<LoadTracker>,
    /// Tells the auto-scaler to stop (a stored permit, so it is not missed between ticks).
    stop: Arc<Notify>,
}

impl Scaling {
    pub(super) fn new(initial_shards: u16) -> Self {
        Self {
            state: tokio::sync::Mutex::new(ScalingState::new(initial_shards)),
            load: Mutex::new(LoadTracker::default()),
            stop: Arc::new(Notify::new()),
        }
    }
}

/// Scaling bookkeeping, behind the bus's async scaling lock.
pub(super) struct ScalingState {
    next_id: u32,
    last_applied: Option<Instant>,
}

impl ScalingState {
    fn new(initial_shards: u16) -> Self {
        Self { next_id: u32::from(initial_shards), last_applied: None }
    }
}

impl EventBus {
    /// Adds `count` running shards and returns their ids (never reused within the bus's life).
    pub async fn add_shards(&self, count: u16) -> Result<Vec<u16>, ScalingError> {
        let inner = self.inner().clone();
        let added = runtime::run(async move { inner.add_shards(count).await }).await;
        match &added {
            Ok(ids) => tracing::info!(?ids, "scaling: shards added"),
            Err(error) => tracing::warn!(count, %error, "scaling: adding shards refused"),
        }
        added
    }

    /// Stops routing to `shard_ids`, drains their events to the adapter, then retires them.
    /// Returns after the drain. Retired shards' events stay pollable.
    pub async fn remove_shards(&self, shard_ids: Vec<u16>) -> Result<(), ScalingError> {
        let inner = self.inner().clone();
        let ids = shard_ids.clone();
        let removed = runtime::run(async move { inner.remove_shards(shard_ids).await }).await;
        match &removed {
            Ok(()) => tracing::info!(?ids, "scaling: shards drained and retired"),
            Err(error) => tracing::warn!(?ids, %error, "scaling: removing shards refused"),
        }
        removed
    }

    /// Recommends a change from the load measured since the previous call (or the last monitor
    /// tick), within the policy's bounds.
    pub async fn suggest_scaling(&self) -> ScalingDecision {
        self.inner().suggest_scaling()
    }
}

impl BusInner {
    fn policy(&self) -> ScalingPolicy {
        self.config.scaling.clone().unwrap_or_default()
    }

    fn bounds(&self) -> (u16, u16) {
        match &self.config.scaling {
            Some(p) => (p.min_shards, p.max_shards),
            None => (1, MAX_SHARDS),
        }
    }

    pub(crate) async fn add_shards(&self, count: u16) -> Result<Vec<u16>, ScalingError> {
        if count == 0 {
            return Err(ScalingError::InvalidRequest("count must be at least 1".into()));
        }
        let mut state = self.scaling.state.lock().await;
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
        let mut state = self.scaling.state.lock().await;
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
        let shards = self.routes.load().shards.clone();
        self.scaling.load.lock().unwrap_or_else(|e| e.into_inner()).decide(&self.policy(), &shards)
    }
}

/// Starts the auto-scaler if the policy asks for it. It holds only a weak reference, so it
/// never keeps a dropped bus alive, and shutdown stops it.
pub(super) fn start_monitor(inner: &Arc<BusInner>) {
    let Some(policy) = inner.config.scaling.clone().filter(|p| p.auto) else { return };
    let weak: Weak<BusInner> = Arc::downgrade(inner);
    let tick = (policy.cooldown / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let stop = inner.scaling.stop.clone();
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
                let state = inner.scaling.state.lock().await;
                state.last_applied.is_none_or(|t| t.elapsed() >= policy.cooldown)
            };
            if !cooled {
                continue;
            }
            // Failures (bounds reached, shutdown racing) leave the shard set as it was.
            let applied = match &decision {
                ScalingDecision::ScaleUp(n) => inner.add_shards(*n).await.map(drop),
                ScalingDecision::ScaleDown(ids) => inner.remove_shards(ids.clone()).await,
                ScalingDecision::None => continue,
            };
            match applied {
                Ok(()) => tracing::info!(?decision, "auto-scaling applied"),
                Err(error) => tracing::debug!(?decision, %error, "auto-scaling not applied"),
            }
        }
    });
}

/// Stops the auto-scaler (shutdown then takes the scaling lock, so any decision being applied
/// has finished).
pub(super) fn stop_monitor(inner: &BusInner) {
    inner.scaling.stop.notify_one();
}
