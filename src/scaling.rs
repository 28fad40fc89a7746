//! When the bus should change its shard count: load measured between calls, and the decision a
//! [`ScalingPolicy`] draws from it. Applying a decision (adding and removing shards) is the
//! bus's job (`bus/scaling.rs`).
//!
//! Decisions come from measurements the hot path already makes: each ring's tail position is
//! its ingest count (rate = delta over time), its fill is `tail - head`, and back-pressure is
//! counted on the slow paths. Sampling reads them; ingest pays nothing extra.

pub use crate::config::ScalingPolicy;

use crate::ingest::Shard;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

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
}

impl LoadTracker {
    /// Recommends a change for the live `shards` from the load measured since the previous
    /// call, within the policy's bounds.
    pub(crate) fn decide(&mut self, policy: &ScalingPolicy, shards: &[Arc<Shard>]) -> ScalingDecision {
        let now = Instant::now();
        let mut hot = false;
        let mut idle = true;
        let mut previous = BTreeMap::new();
        for shard in shards {
            let reading = read(shard);
            let fill = shard.ring.len() as f64 / shard.ring.capacity() as f64;
            let (rate, pressure) = match self.previous.get(&shard.id) {
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
        idle &= shards.iter().all(|s| self.previous.contains_key(&s.id));
        self.previous = previous;
        let live = shards.len() as u16;
        if hot {
            self.idle_since = None;
            let room = policy.max_shards.saturating_sub(live);
            return if room == 0 { ScalingDecision::None } else { ScalingDecision::ScaleUp(live.clamp(1, room)) };
        }
        if !idle {
            self.idle_since = None;
            return ScalingDecision::None;
        }
        let since = *self.idle_since.get_or_insert(now);
        if now.duration_since(since) >= policy.scale_down_delay && live > policy.min_shards.max(1) {
            let newest = shards.iter().map(|s| s.id).max().unwrap_or(0);
            return ScalingDecision::ScaleDown(vec![newest]);
        }
        ScalingDecision::None
    }
}
