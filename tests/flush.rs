//! `flush_timeout`: a deadline on the wait that cancels nothing, and a report of the drops since
//! the previous reporting flush (issue 16, items 5 and 6).

mod common;

use async_trait::async_trait;
use common::{Fault, Recorder};
use purple_rain::error::ErrorKind;
use purple_rain::{
    Adapter, AdapterError, Batch, BatchConfig, EventBus, EventBusConfig, FlushError, RawEvent, RetryPolicy,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fails every batch transiently while `down`, then records like a `Recorder`.
struct Switchable {
    down: AtomicBool,
    inner: Recorder,
}

#[async_trait]
impl Adapter for Switchable {
    fn name(&self) -> &str {
        "switchable"
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(AdapterError::Transient("backend down".into()));
        }
        self.inner.on_batch(batch).await
    }
}

fn patient_retry() -> BatchConfig {
    BatchConfig::default()
        .max_events(50)
        .retry(RetryPolicy::default().max_attempts(u32::MAX).initial_backoff_ms(1).max_backoff_ms(20))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flush_deadline_returns_timeout_with_the_events_still_queued_and_loses_nothing() {
    let adapter = Arc::new(Switchable { down: AtomicBool::new(true), inner: Recorder::new(Fault::None) });
    let config = EventBusConfig::builder().shards(2).batch(patient_retry()).build().unwrap();
    let bus = EventBus::with_adapter(config, adapter.clone()).await.unwrap();
    for i in 0..1_000 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    let deadline = Duration::from_millis(200);
    let started = Instant::now();
    let error = bus.flush_timeout(deadline).await.expect_err("nothing can be delivered while the backend is down");
    let waited = started.elapsed();
    assert!(waited >= deadline, "returned before its deadline: {waited:?}");
    assert!(waited < deadline + Duration::from_secs(1), "overran its deadline: {waited:?}");
    assert_eq!(error.kind(), ErrorKind::Timeout);
    match error {
        FlushError::Timeout { undelivered, dropped } => assert_eq!((undelivered, dropped), (1_000, 0)),
        other => panic!("expected a timeout, got {other:?}"),
    }

    adapter.down.store(false, Ordering::SeqCst);
    let report = bus.flush_timeout(Duration::from_secs(30)).await.expect("the backend is back");
    assert_eq!((report.dropped, report.lossy), (0, false));
    assert_eq!(adapter.inner.delivered_count(), 1_000, "a timed-out flush must not cancel anything");
    common::assert_balanced(&bus);
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flush_reports_each_drop_once_and_plain_flush_leaves_them_for_the_next_report() {
    let recorder = Arc::new(Recorder::new(Fault::FatalEvery(1)));
    let config = EventBusConfig::builder().shards(1).build().unwrap();
    let bus = EventBus::with_adapter(config, recorder).await.unwrap();
    let ingest = |n: usize| {
        for i in 0..n {
            bus.ingest_raw(RawEvent::from_bytes(common::payload(1, i))).unwrap();
        }
    };
    ingest(10);
    bus.flush().await.unwrap();
    ingest(5);
    let report = bus.flush_timeout(Duration::MAX).await.unwrap();
    assert_eq!((report.dropped, report.lossy), (15, true), "plain flush reported nothing, so these are still owed");
    let report = bus.flush_timeout(Duration::MAX).await.unwrap();
    assert_eq!((report.dropped, report.lossy), (0, false), "a drop is reported once");
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn flush_timeout_after_shutdown_is_shutting_down() {
    let bus = EventBus::new(EventBusConfig::default()).await.unwrap();
    bus.shutdown_via_ref().await.unwrap();
    let error = bus.flush_timeout(Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ShuttingDown);
}
