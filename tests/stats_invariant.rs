//! `events_dispatched + events_dropped == events_ingested` after flush and after shutdown, for
//! every back-pressure mode against adapters that fail transiently, fail fatally, panic or are
//! slow; and every event the adapter got is one that was accepted, exactly once.

mod common;

use common::{Fault, Recorder};
use purple_rain::{BackpressureMode, BatchConfig, EventBus, EventBusConfig, IngestionError, RawEvent, RetryPolicy};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const PRODUCERS: usize = 4;
const PER_PRODUCER: usize = 100_000;

async fn run(mode: BackpressureMode, fault: Fault) {
    let recorder = Arc::new(Recorder::new(fault));
    let retry = RetryPolicy::default().max_attempts(3).initial_backoff_ms(1).max_backoff_ms(4);
    let config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1024)
        .batch(BatchConfig::default().max_events(256).retry(retry))
        .backpressure(mode)
        .build()
        .unwrap();
    let bus = Arc::new(EventBus::with_adapter(config, recorder.clone()).await.unwrap());
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                for i in 0..PER_PRODUCER {
                    let bytes = common::payload(p, i);
                    match bus.ingest_raw(RawEvent::from_bytes(bytes.clone())) {
                        Ok(()) => accepted.push(bytes),
                        Err(IngestionError::Backpressure) => std::thread::yield_now(),
                        Err(e) => panic!("unexpected ingest error {e}"),
                    }
                }
                accepted
            })
        })
        .collect();
    let accepted: Vec<Vec<u8>> =
        tokio::task::spawn_blocking(move || producers.into_iter().flat_map(|h| h.join().unwrap()).collect())
            .await
            .unwrap();

    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!(s.events_ingested, accepted.len() as u64, "{mode:?} {fault:?}: {s:?}");
    // Flush is a barrier: the adapter already holds every dispatched event.
    assert_eq!(recorder.delivered_count() as u64, s.events_dispatched, "{mode:?} {fault:?}");
    let delivered = recorder.payloads();
    let unique: HashSet<&Vec<u8>> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "an event was delivered twice");
    let accepted_set: HashSet<&Vec<u8>> = accepted.iter().collect();
    assert!(unique.iter().all(|p| accepted_set.contains(p)), "delivered an event never accepted");
    match fault {
        Fault::None | Fault::Slow(_) | Fault::TransientEvery(_) if mode != BackpressureMode::DropOldest => {
            assert_eq!(s.events_dropped, 0, "{mode:?} {fault:?}: {s:?}")
        }
        Fault::FatalEvery(_) => assert!(s.dropped_adapter_fatal > 0, "{s:?}"),
        Fault::PanicEvery(_) => assert!(s.dropped_adapter_fatal > 0, "{s:?}"),
        _ => {}
    }
    if let Fault::TransientEvery(_) = fault {
        assert!(s.retries > 0, "{s:?}");
    }

    bus.shutdown_via_ref().await.unwrap();
    let after = common::assert_balanced(&bus);
    assert_eq!(after.events_ingested, s.events_ingested);
    assert_eq!(after.shutdown_was_lossy, after.events_dropped > 0);
}

macro_rules! matrix {
    ($($name:ident: $mode:expr, $fault:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            run($mode, $fault).await;
        }
    )*};
}

matrix! {
    block_transient: BackpressureMode::Block, Fault::TransientEvery(3);
    block_fatal: BackpressureMode::Block, Fault::FatalEvery(5);
    block_slow: BackpressureMode::Block, Fault::Slow(Duration::from_millis(20));
    drop_oldest_transient: BackpressureMode::DropOldest, Fault::TransientEvery(3);
    drop_oldest_fatal: BackpressureMode::DropOldest, Fault::FatalEvery(5);
    drop_oldest_slow: BackpressureMode::DropOldest, Fault::Slow(Duration::from_millis(20));
    drop_newest_transient: BackpressureMode::DropNewest, Fault::TransientEvery(3);
    drop_newest_fatal: BackpressureMode::DropNewest, Fault::FatalEvery(5);
    drop_newest_slow: BackpressureMode::DropNewest, Fault::Slow(Duration::from_millis(20));
    block_panicking_adapter: BackpressureMode::Block, Fault::PanicEvery(7);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_budget_exhausted_is_counted_as_its_own_cause() {
    let recorder = Arc::new(Recorder::new(Fault::AlwaysTransient));
    let retry = RetryPolicy::default().max_attempts(3).initial_backoff_ms(1).max_backoff_ms(2);
    let config = EventBusConfig::builder().shards(2).batch(BatchConfig::default().retry(retry)).build().unwrap();
    let bus = EventBus::with_adapter(config, recorder.clone()).await.unwrap();
    for i in 0..100 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!(s.dropped_retry_exhausted, 100);
    assert_eq!(s.events_dropped, 100);
    assert!(bus.stats().last_adapter_error().unwrap().contains("down"));
    bus.shutdown_via_ref().await.unwrap();
    assert!(bus.stats().shutdown_was_lossy.load(std::sync::atomic::Ordering::Acquire));
}
