//! The per-shard batch worker.
//!
//! A worker is a task on the library runtime that loops: take every ready event (up to
//! `max_events`) off its ring with one CAS, stamp sequences and timestamps, hand the batch to
//! the adapter, count the outcome, release flushes it has passed. When the ring is empty it
//! sleeps on a `Notify` until a producer, a flush or `close` wakes it: no polling, no timers, so
//! an idle bus costs nothing and a single event is dispatched as soon as the worker runs.
//!
//! The worker ends only when its ring is closed *and* empty, after dispatching everything; the
//! ring's closed bit guarantees no push can land after that last look.

use crate::adapter::Adapter;
use crate::config::RetryPolicy;
use crate::ingest::ring::PopStatus;
use crate::ingest::Shard;
use crate::model::{Batch, ProducerIdentity};
use crate::stats::EventBusStats;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// What every worker of a bus shares.
pub(crate) struct DispatchContext {
    pub(crate) adapter: Arc<dyn Adapter>,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_events: usize,
    pub(crate) producer: ProducerIdentity,
    pub(crate) stats: Arc<EventBusStats>,
    /// Woken after every delivered batch, for long polls.
    pub(crate) delivered: Arc<Notify>,
}

/// How a batch ended.
enum Outcome {
    Delivered,
    Fatal,
    RetryExhausted,
}

/// Wall clock in ns since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) async fn run(
    shard: Arc<Shard>,
    ctx: Arc<DispatchContext>,
    mut next_sequence: u64,
    mut last_timestamp_ns: u64,
) {
    let mut events = Vec::with_capacity(ctx.max_events.min(shard.ring.capacity()));
    loop {
        match shard.ring.pop_batch(ctx.max_events, &mut events).0 {
            PopStatus::Took(n) => {
                shard.release_blocked_producers();
                let n = n as u64;
                let Some(after) = next_sequence.checked_add(n) else {
                    // Sequences and dedup ids are never reused: past the end of the sequence
                    // space an event has no sequence to take, so it is dropped, counted and said.
                    ctx.stats.record_adapter_error(format!(
                        "shard {}: sequence space exhausted at {next_sequence}: {n} events dropped",
                        shard.id
                    ));
                    shard.counters.dropped_adapter_fatal.fetch_add(n, Ordering::AcqRel);
                    events.clear();
                    shard.release_barriers();
                    continue;
                };
                // Strictly increasing per shard even if the wall clock steps back (saturating:
                // a clock at the end of time stamps its events with that end, never wraps).
                let first_ts = now_ns().max(last_timestamp_ns.saturating_add(1)).min(u64::MAX - n);
                let batch = Batch::new(shard.id, next_sequence, first_ts, ctx.producer, std::mem::take(&mut events));
                next_sequence = after;
                last_timestamp_ns = first_ts + n - 1;
                let in_flight = InFlight { shard: &shard, events: n };
                let outcome = deliver(&ctx, &shard, &batch).await;
                std::mem::forget(in_flight);
                let counters = &shard.counters;
                match outcome {
                    Outcome::Delivered => {
                        counters.dispatched.fetch_add(n, Ordering::AcqRel);
                        counters.batches.fetch_add(1, Ordering::AcqRel);
                        ctx.delivered.notify_waiters();
                    }
                    Outcome::Fatal => {
                        counters.dropped_adapter_fatal.fetch_add(n, Ordering::AcqRel);
                    }
                    Outcome::RetryExhausted => {
                        counters.dropped_retry_exhausted.fetch_add(n, Ordering::AcqRel);
                    }
                }
                events = batch.into_events();
                events.clear();
                shard.release_barriers();
            }
            PopStatus::Pending => tokio::task::yield_now().await,
            PopStatus::Empty => {
                shard.release_barriers();
                if shard.ring.is_closed() && shard.ring.len() == 0 {
                    break;
                }
                shard.sleep_until_work().await;
            }
        }
    }
    shard.worker_exited();
}

/// A batch taken off the ring and not yet counted. If the worker's task ends while the batch is
/// with the adapter (the task was aborted, or unwound), dropping this counts the batch lost, so
/// `dispatched + dropped == ingested` holds even for a dead worker; the reaper in
/// `BusInner::stop_shards` counts what is still in the ring.
struct InFlight<'a> {
    shard: &'a Shard,
    events: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shard.counters.dropped_lost.fetch_add(self.events, Ordering::AcqRel);
    }
}

/// Hands a batch to the adapter, retrying retryable errors with exponential backoff and full
/// jitter within the policy. A panicking adapter counts as a fatal error, never as a lost worker.
async fn deliver(ctx: &DispatchContext, shard: &Shard, batch: &Batch) -> Outcome {
    let mut attempt = 1u32;
    loop {
        let error = match AssertUnwindSafe(ctx.adapter.on_batch(batch)).catch_unwind().await {
            Ok(Ok(())) => return Outcome::Delivered,
            Ok(Err(error)) => error,
            Err(_) => {
                ctx.stats.record_adapter_error(format!("adapter {} panicked in on_batch", ctx.adapter.name()));
                return Outcome::Fatal;
            }
        };
        ctx.stats.record_adapter_error(format!("shard {}: {error}", shard.id));
        if !error.is_retryable() {
            return Outcome::Fatal;
        }
        if attempt >= ctx.retry.max_attempts {
            return Outcome::RetryExhausted;
        }
        shard.counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff(&ctx.retry, attempt)).await;
        attempt += 1;
    }
}

/// `[d/2, d]` with `d = min(initial * 2^(attempt-1), max)`: jitter keeps shards that failed
/// together from retrying in lockstep against a recovering backend.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy.initial_backoff_ms.saturating_mul(1u64 << (attempt - 1).min(32));
    let ceiling = exp.min(policy.max_backoff_ms).max(1);
    Duration::from_millis(fastrand::u64(ceiling.div_ceil(2)..=ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let policy = RetryPolicy { max_attempts: 10, initial_backoff_ms: 10, max_backoff_ms: 100 };
        for _ in 0..100 {
            let d1 = backoff(&policy, 1).as_millis();
            assert!((5..=10).contains(&d1), "{d1}");
            let d3 = backoff(&policy, 3).as_millis();
            assert!((20..=40).contains(&d3), "{d3}");
            let d20 = backoff(&policy, 20).as_millis();
            assert!((50..=100).contains(&d20), "{d20}");
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff(&policy, 3)).collect();
        assert!(spread.len() > 1, "backoff must be jittered");
    }
}
