//! Values that cross to JavaScript: stats and scaling advice, packed-ingest offsets, and
//! [`RawValue`] for values made by hand (poll pages are [`crate::poll_page`]'s).

use napi_derive::napi;
use purple_rain::EventBus;

/// Checks packed-ingest offsets: non-decreasing and within `len`. Returns the bytes used.
pub(crate) fn check_ends(ends: &[u32], len: usize) -> Result<usize, String> {
    let mut previous = 0u32;
    for (index, &end) in ends.iter().enumerate() {
        if end < previous {
            return Err(format!("ends[{index}] = {end} is less than ends[{}] = {previous}", index.saturating_sub(1)));
        }
        previous = end;
    }
    if previous as usize > len {
        return Err(format!("ends reach {previous} but data has only {len} bytes"));
    }
    Ok(previous as usize)
}

/// A JS value made on this thread during the current callback, handed back as is.
pub struct RawValue(pub(crate) napi::sys::napi_value);

impl napi::bindgen_prelude::ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: napi::sys::napi_env, value: Self) -> napi::Result<napi::sys::napi_value> {
        Ok(value.0)
    }
}

/// What a completed `flush()` saw since the previous one.
#[napi(object)]
pub struct FlushReport {
    /// Events dropped (evicted, retry budget spent, fatal adapter error) since the previous
    /// flush returned; each drop is reported once.
    pub dropped: f64,
    /// `dropped > 0`: something accepted will never be delivered.
    pub lossy: bool,
}

/// What `suggestScaling()` resolves to.
#[napi(object)]
pub struct ScalingAdvice {
    /// What to do.
    #[napi(ts_type = "'scaleUp' | 'scaleDown' | 'none'")]
    pub action: String,
    /// Shards to add (scaleUp) or remove (scaleDown).
    pub count: u32,
    /// The shards to remove (scaleDown), else empty.
    pub shards: Vec<u32>,
}

/// Bus counters (`stats()`). Counts are JS numbers: exact below 2^53, which a counter does not
/// reach in practice (about 100 days at a billion events per second). After `flush()` resolves
/// and after `shutdown()`: `eventsDispatched + eventsDropped === eventsIngested`.
#[napi(object)]
pub struct Stats {
    /// Events accepted by ingest.
    pub events_ingested: f64,
    /// Accepted events that will never reach the adapter, all causes (the `dropped*` below).
    pub events_dropped: f64,
    /// Batches the adapter accepted.
    pub batches_dispatched: f64,
    /// Events the adapter accepted.
    pub events_dispatched: f64,
    /// Set when shutdown completes if any accepted event was ever dropped.
    pub shutdown_was_lossy: bool,
    /// Evicted from a full ring in `drop_oldest` mode.
    pub dropped_evicted: f64,
    /// In batches the adapter rejected with a non-retryable error (or a panic).
    pub dropped_adapter_fatal: f64,
    /// In batches that failed with retryable errors until the retry budget ran out.
    pub dropped_retry_exhausted: f64,
    /// Accepted but lost because a shard worker died.
    pub dropped_lost: f64,
    /// Refused by ingest with `BACKPRESSURE` (never ingested, so not drops).
    pub rejected_backpressure: f64,
    /// Times a producer waited for room in `block` mode.
    pub blocked_waits: f64,
    /// Batch retries after retryable adapter errors.
    pub retries: f64,
    /// Discarded by the Memory adapter's retention bound after being stored.
    pub events_trimmed: f64,
    /// The adapter's most recent error message, if any.
    pub last_adapter_error: Option<String>,
    /// One entry per shard, retired ones included.
    pub shards: Vec<ShardStats>,
}

/// Figures of one shard, in `Stats.shards`.
#[napi(object)]
pub struct ShardStats {
    /// Shard id.
    pub id: u32,
    /// Accepted into its ring.
    pub events_ingested: f64,
    /// Accepted by the adapter.
    pub events_dispatched: f64,
    /// Dropped, all causes.
    pub events_dropped: f64,
    /// Batches accepted by the adapter.
    pub batches_dispatched: f64,
    /// Refused with back-pressure.
    pub rejected_backpressure: f64,
    /// Events in the shard's ring now.
    pub ring_len: f64,
    /// Slots in the shard's ring.
    pub ring_capacity: f64,
    /// Removed by scaling; its counters are frozen.
    pub retired: bool,
}

impl Stats {
    pub(crate) fn read(bus: &EventBus) -> Self {
        let stats = bus.stats();
        let s = stats.snapshot();
        let n = |v: u64| v as f64;
        Self {
            events_ingested: n(s.events_ingested),
            events_dropped: n(s.events_dropped),
            batches_dispatched: n(s.batches_dispatched),
            events_dispatched: n(s.events_dispatched),
            shutdown_was_lossy: s.shutdown_was_lossy,
            dropped_evicted: n(s.dropped_evicted),
            dropped_adapter_fatal: n(s.dropped_adapter_fatal),
            dropped_retry_exhausted: n(s.dropped_retry_exhausted),
            dropped_lost: n(s.dropped_lost),
            rejected_backpressure: n(s.rejected_backpressure),
            blocked_waits: n(s.blocked_waits),
            retries: n(s.retries),
            events_trimmed: n(s.events_trimmed),
            last_adapter_error: stats.last_adapter_error(),
            shards: stats
                .shards()
                .into_iter()
                .map(|sh| ShardStats {
                    id: u32::from(sh.id),
                    events_ingested: n(sh.events_ingested),
                    events_dispatched: n(sh.events_dispatched),
                    events_dropped: n(sh.events_dropped),
                    batches_dispatched: n(sh.batches_dispatched),
                    rejected_backpressure: n(sh.rejected_backpressure),
                    ring_len: sh.ring_len as f64,
                    ring_capacity: sh.ring_capacity as f64,
                    retired: sh.retired,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_must_be_non_decreasing_and_in_bounds() {
        assert_eq!(check_ends(&[], 0), Ok(0));
        assert_eq!(check_ends(&[3, 3, 10], 10), Ok(10));
        assert_eq!(check_ends(&[3, 7], 10), Ok(7));
        assert!(check_ends(&[5, 4], 10).unwrap_err().contains("ends[1] = 4"));
        assert!(check_ends(&[5, 11], 10).unwrap_err().contains("only 10 bytes"));
    }
}
