//! Each back-pressure mode at a full ring, with a worker held back by a slow adapter.

mod common;

use common::{Fault, Recorder};
use purple_rain::{BackpressureMode, BatchConfig, EventBus, EventBusConfig, IngestionError, RawEvent};
use std::sync::Arc;
use std::time::Duration;

async fn bus_with(mode: BackpressureMode, fault: Fault) -> (EventBus, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::new(fault));
    let config = EventBusConfig::builder()
        .shards(1)
        .ring_capacity(4)
        .batch(BatchConfig::default().max_events(1))
        .backpressure(mode)
        .build()
        .unwrap();
    (EventBus::with_adapter(config, recorder.clone()).await.unwrap(), recorder)
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_newest_rejects_when_full_and_counts_rejections_not_drops() {
    let (bus, recorder) = bus_with(BackpressureMode::DropNewest, Fault::Slow(Duration::from_millis(200))).await;
    let mut rejected = 0;
    for i in 0..20 {
        match bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))) {
            Ok(()) => {}
            Err(IngestionError::Backpressure) => rejected += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // One event may be in flight in the slow adapter, four in the ring: the rest are refused.
    assert!(rejected >= 15, "rejected {rejected}");
    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!(s.events_ingested, 20 - rejected);
    assert_eq!(s.rejected_backpressure, rejected);
    assert_eq!(s.events_dropped, 0);
    assert_eq!(recorder.delivered_count() as u64, s.events_ingested);
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_oldest_evicts_from_the_consumer_end_and_counts_it() {
    let (bus, recorder) = bus_with(BackpressureMode::DropOldest, Fault::Slow(Duration::from_millis(200))).await;
    for i in 0..20 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!(s.events_ingested, 20);
    assert!(s.dropped_evicted >= 15, "{s:?}");
    assert_eq!(s.events_dropped, s.dropped_evicted);
    // The newest events survive: the last four ingested are all delivered, in order.
    let delivered = recorder.payloads();
    let tail: Vec<Vec<u8>> = (16..20).map(|i| common::payload(0, i)).collect();
    assert_eq!(&delivered[delivered.len() - 4..], &tail[..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn block_parks_the_producer_until_room_and_loses_nothing() {
    let (bus, recorder) = bus_with(BackpressureMode::Block, Fault::Slow(Duration::from_millis(5))).await;
    let bus = Arc::new(bus);
    let producer = {
        let bus = bus.clone();
        std::thread::spawn(move || {
            for i in 0..60 {
                bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
            }
        })
    };
    tokio::task::spawn_blocking(move || producer.join().unwrap()).await.unwrap();
    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!((s.events_ingested, s.events_dispatched, s.events_dropped), (60, 60, 0));
    assert!(s.blocked_waits > 0, "the producer must have waited: {s:?}");
    // Batches of one event each: a declared batch counter that is never incremented fails here.
    assert_eq!(s.batches_dispatched, 60, "{s:?}");
    let expected: Vec<Vec<u8>> = (0..60).map(|i| common::payload(0, i)).collect();
    assert_eq!(recorder.payloads(), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn block_mode_producer_is_released_by_shutdown() {
    let (bus, _recorder) = bus_with(BackpressureMode::Block, Fault::Slow(Duration::from_millis(50))).await;
    let bus = Arc::new(bus);
    let producer = {
        let bus = bus.clone();
        std::thread::spawn(move || {
            let mut results = Vec::new();
            for i in 0..1000 {
                results.push(bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))));
            }
            results
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.shutdown_via_ref().await.unwrap();
    let results = tokio::task::spawn_blocking(move || producer.join().unwrap()).await.unwrap();
    assert!(results.iter().any(|r| matches!(r, Err(IngestionError::ShuttingDown))));
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    let s = common::assert_balanced(&bus);
    assert_eq!(s.events_ingested, ok);
}

/// A `Block`-mode producer running on a library runtime thread (as the C ABI's and Drop's
/// waits do) must not starve the shard worker it depends on. Watched from a plain thread, so
/// a deadlock fails the test instead of hanging it.
#[test]
fn block_mode_producer_on_a_library_thread_does_not_deadlock() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let dispatched = purple_rain::runtime::wait(async {
            let config = EventBusConfig::builder()
                .shards(2)
                .ring_capacity(8)
                .backpressure(BackpressureMode::Block)
                .build()
                .unwrap();
            let bus = EventBus::new(config).await.unwrap();
            for i in 0..50_000u64 {
                bus.ingest_raw(RawEvent::from_bytes_with_hash(common::payload(0, i as usize), i)).unwrap();
            }
            bus.flush().await.unwrap();
            bus.stats().snapshot().events_dispatched
        });
        let _ = done_tx.send(dispatched);
    });
    let dispatched = done_rx.recv_timeout(Duration::from_secs(60)).expect("producer deadlocked with its worker");
    assert_eq!(dispatched, 50_000);
}
