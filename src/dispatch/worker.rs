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
use tokio::time::Instant;

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
    // When the shard's current run of retryable failures began (see `deliver`).
    let mut failing_since = None;
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
                    tracing::error!(shard = shard.id, events = n, "sequence space exhausted: batch dropped");
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
                let outcome = deliver(&ctx, &shard, &batch, &mut failing_since).await;
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
                        tracing::error!(shard = shard.id, events = n, cause = "adapter_fatal", "batch dropped");
                    }
                    Outcome::RetryExhausted => {
                        counters.dropped_retry_exhausted.fetch_add(n, Ordering::AcqRel);
                        tracing::error!(shard = shard.id, events = n, cause = "retry_exhausted", "batch dropped");
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
///
/// `failing_since` is when the shard's current run of retryable failures began: the elapsed
/// budget counts from there, so in a long outage only the first batch waits the budget out and
/// the ones queued behind it get one attempt each (see [`RetryPolicy`]). Any answer from the
/// adapter other than a retryable error ends the run.
async fn deliver(ctx: &DispatchContext, shard: &Shard, batch: &Batch, failing_since: &mut Option<Instant>) -> Outcome {
    let mut attempt = 1u32;
    loop {
        let error = match AssertUnwindSafe(ctx.adapter.on_batch(batch)).catch_unwind().await {
            Ok(Ok(())) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        shard = shard.id,
                        after_ms = since.elapsed().as_millis() as u64,
                        "adapter recovered"
                    );
                }
                return Outcome::Delivered;
            }
            Ok(Err(error)) => error,
            Err(_) => {
                *failing_since = None;
                tracing::error!(shard = shard.id, adapter = ctx.adapter.name(), "adapter panicked in on_batch");
                ctx.stats.record_adapter_error(format!("adapter {} panicked in on_batch", ctx.adapter.name()));
                return Outcome::Fatal;
            }
        };
        ctx.stats.record_adapter_error(format!("shard {}: {error}", shard.id));
        if !error.is_retryable() {
            *failing_since = None;
            tracing::error!(shard = shard.id, %error, "adapter error, not retryable");
            return Outcome::Fatal;
        }
        if failing_since.is_none() {
            // The first failure of a run (a lost connection, an unavailable broker); the
            // retries of the run log at debug, the recovery at info.
            tracing::warn!(shard = shard.id, %error, "adapter unavailable, retrying");
        } else {
            tracing::debug!(shard = shard.id, attempt, %error, "adapter still unavailable");
        }
        let now = Instant::now();
        let deadline = *failing_since.get_or_insert(now) + Duration::from_millis(ctx.retry.max_elapsed_ms);
        if attempt >= ctx.retry.max_attempts || now >= deadline {
            return Outcome::RetryExhausted;
        }
        shard.counters.retries.fetch_add(1, Ordering::Relaxed);
        // The last wait ends on the deadline, so one attempt falls on the budget's end.
        tokio::time::sleep(backoff(&ctx.retry, attempt).min(deadline - now)).await;
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
    use crate::config::BackpressureMode;
    use crate::error::AdapterError;
    use crate::model::RawEvent;
    use crate::stats::ShardRegistry;
    use std::sync::atomic::AtomicU32;

    /// Fails its first `failures` calls with a retryable error, then stores.
    struct FailsFirst {
        failures: u32,
        calls: AtomicU32,
    }

    #[async_trait::async_trait]
    impl Adapter for FailsFirst {
        fn name(&self) -> &str {
            "fails-first"
        }

        async fn on_batch(&self, _batch: &Batch) -> Result<(), crate::error::AdapterError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                return Err(AdapterError::Transient("down".into()));
            }
            Ok(())
        }
    }

    fn context(adapter: Arc<FailsFirst>, retry: RetryPolicy) -> DispatchContext {
        let stats = Arc::new(EventBusStats::new(Arc::new(ShardRegistry::default()), adapter.clone()));
        DispatchContext {
            adapter,
            retry,
            max_events: 16,
            producer: ProducerIdentity::ephemeral(),
            stats,
            delivered: Arc::new(Notify::new()),
        }
    }

    fn batch() -> Batch {
        Batch::new(0, 1, 1, ProducerIdentity::ephemeral(), vec![RawEvent::from_bytes(&b"{}"[..])])
    }

    /// A 300 ms budget with backoffs up to 1 s: only a wait cut at the deadline ends on time.
    fn patient() -> RetryPolicy {
        RetryPolicy { max_attempts: u32::MAX, initial_backoff_ms: 10, max_backoff_ms: 1_000, max_elapsed_ms: 300 }
    }

    #[tokio::test]
    async fn an_outage_spends_the_elapsed_budget_once_not_once_per_batch() {
        let adapter = Arc::new(FailsFirst { failures: u32::MAX, calls: AtomicU32::new(0) });
        let ctx = context(adapter.clone(), patient());
        let shard = Shard::new(0, 16, BackpressureMode::Block);
        let mut failing_since = None;
        let started = Instant::now();
        assert!(matches!(deliver(&ctx, &shard, &batch(), &mut failing_since).await, Outcome::RetryExhausted));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "gave up before the budget: {waited:?}");
        let first_batch_calls = adapter.calls.load(Ordering::SeqCst);
        assert!(first_batch_calls > 3, "retried {first_batch_calls} times");
        // The next batch of the same outage gets one attempt, no wait.
        assert!(matches!(deliver(&ctx, &shard, &batch(), &mut failing_since).await, Outcome::RetryExhausted));
        assert_eq!(adapter.calls.load(Ordering::SeqCst), first_batch_calls + 1);
    }

    #[tokio::test]
    async fn a_delivery_ends_the_run_of_failures_and_the_next_outage_gets_a_fresh_budget() {
        let adapter = Arc::new(FailsFirst { failures: 5, calls: AtomicU32::new(0) });
        let ctx = context(adapter.clone(), patient());
        let shard = Shard::new(0, 16, BackpressureMode::Block);
        let mut failing_since = None;
        assert!(matches!(deliver(&ctx, &shard, &batch(), &mut failing_since).await, Outcome::Delivered));
        assert_eq!(failing_since, None);
        assert_eq!(shard.counters.retries.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn max_attempts_still_bounds_a_batch_inside_the_elapsed_budget() {
        let adapter = Arc::new(FailsFirst { failures: u32::MAX, calls: AtomicU32::new(0) });
        let ctx = context(adapter.clone(), RetryPolicy { max_attempts: 3, ..patient() });
        let shard = Shard::new(0, 16, BackpressureMode::Block);
        assert!(matches!(deliver(&ctx, &shard, &batch(), &mut None).await, Outcome::RetryExhausted));
        assert_eq!(adapter.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let policy =
            RetryPolicy { max_attempts: 10, initial_backoff_ms: 10, max_backoff_ms: 100, max_elapsed_ms: 1_000 };
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
