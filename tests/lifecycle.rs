//! Flush as a barrier, shutdown racing producers, double/concurrent shutdown, drop without
//! shutdown, and restarts with a persisted producer identity.

mod common;

use common::{Fault, Recorder};
use purple_rain::{runtime, AdapterError, BatchConfig, EventBus, EventBusConfig, IngestionError, RawEvent};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn config(shards: u16) -> EventBusConfig {
    EventBusConfig::builder().shards(shards).ring_capacity(1 << 14).build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn flush_waits_for_a_slow_adapter() {
    let recorder = Arc::new(Recorder::new(Fault::Slow(Duration::from_millis(20))));
    let config = EventBusConfig::builder().shards(2).batch(BatchConfig::default().max_events(10)).build().unwrap();
    let bus = EventBus::with_adapter(config, recorder.clone()).await.unwrap();
    for i in 0..200 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    bus.flush().await.unwrap();
    assert_eq!(recorder.delivered_count(), 200, "flush returned before the adapter had everything");
    assert_eq!(recorder.flushes.load(Ordering::SeqCst), 1);
    common::assert_balanced(&bus);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_racing_eight_producers_strands_nothing() {
    for round in 0..5 {
        let recorder = Arc::new(Recorder::new(Fault::None));
        let bus = Arc::new(EventBus::with_adapter(config(4), recorder.clone()).await.unwrap());
        let go = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..8)
            .map(|p| {
                let (bus, go) = (bus.clone(), go.clone());
                std::thread::spawn(move || {
                    while !go.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    let mut ok = 0u64;
                    for i in 0.. {
                        match bus.ingest_raw(RawEvent::from_bytes(common::payload(p, i))) {
                            Ok(()) => ok += 1,
                            Err(IngestionError::Backpressure) => std::thread::yield_now(),
                            Err(IngestionError::ShuttingDown) => return ok,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        go.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(5 + round * 7)).await;
        bus.shutdown_via_ref().await.unwrap();
        let ok: u64 =
            tokio::task::spawn_blocking(move || producers.into_iter().map(|h| h.join().unwrap()).sum()).await.unwrap();
        let s = common::assert_balanced(&bus);
        assert_eq!(s.events_ingested, ok, "every Ok ingest is counted");
        assert_eq!(s.events_dropped, 0);
        assert_eq!(recorder.delivered_count() as u64, ok, "every Ok ingest reached the adapter");
        assert!(!s.shutdown_was_lossy);
        assert_eq!(bus.stats().workers_running(), 0, "a worker outlived shutdown");
        assert!(matches!(bus.ingest_raw(RawEvent::from_bytes(&b"{}"[..])), Err(IngestionError::ShuttingDown)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_shutdowns_all_wait_for_the_one_drain() {
    let recorder = Arc::new(Recorder::new(Fault::Slow(Duration::from_millis(20))));
    let config = EventBusConfig::builder().shards(2).batch(BatchConfig::default().max_events(8)).build().unwrap();
    let bus = Arc::new(EventBus::with_adapter(config, recorder.clone()).await.unwrap());
    for i in 0..100 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let (bus, recorder) = (bus.clone(), recorder.clone());
            tokio::spawn(async move {
                bus.shutdown_via_ref().await.unwrap();
                // Returned only after the drain: the adapter has everything and was shut down.
                assert_eq!(recorder.delivered_count(), 100);
                assert_eq!(recorder.shutdowns.load(Ordering::SeqCst), 1);
                assert_eq!(bus.stats().workers_running(), 0, "a shutdown returned before the drain ended");
            })
        })
        .collect();
    for w in waiters {
        w.await.unwrap();
    }
    bus.shutdown_via_ref().await.unwrap();
    assert_eq!(recorder.shutdowns.load(Ordering::SeqCst), 1, "the adapter is shut down once");
    assert!(matches!(bus.flush().await, Err(AdapterError::Shutdown)));
}

#[test]
fn drop_without_shutdown_outside_a_runtime_delivers_before_returning() {
    let recorder = Arc::new(Recorder::new(Fault::Slow(Duration::from_millis(10))));
    let bus = runtime::wait({
        let recorder = recorder.clone();
        async move { EventBus::with_adapter(config(2), recorder).await.unwrap() }
    });
    for i in 0..500 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    drop(bus);
    assert_eq!(recorder.delivered_count(), 500);
    assert_eq!(recorder.shutdowns.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_without_shutdown_inside_a_runtime_delivers_in_the_background() {
    let recorder = Arc::new(Recorder::new(Fault::Slow(Duration::from_millis(10))));
    let bus = EventBus::with_adapter(config(2), recorder.clone()).await.unwrap();
    for i in 0..500 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    drop(bus);
    tokio::time::timeout(Duration::from_secs(10), recorder.shut_down.notified()).await.unwrap();
    assert_eq!(recorder.delivered_count(), 500);
}

#[test]
fn bus_works_from_a_current_thread_runtime_and_without_any() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap(); // no timers, no IO
    rt.block_on(async {
        let bus = EventBus::new(config(2)).await.unwrap();
        bus.ingest_raw(RawEvent::from_bytes(&b"{}"[..])).unwrap();
        bus.flush().await.unwrap();
        bus.shutdown().await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_with_producer_nonce_path_gives_new_non_colliding_dedup_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("producer.nonce");
    let mut all_ids = HashSet::new();
    let mut producer_ids = HashSet::new();
    for _run in 0..3 {
        let recorder = Arc::new(Recorder::new(Fault::None));
        let config = EventBusConfig::builder().shards(2).producer_nonce_path(&path).build().unwrap();
        let bus = EventBus::with_adapter(config, recorder.clone()).await.unwrap();
        producer_ids.insert(bus.producer().id);
        for i in 0..100 {
            bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
        }
        bus.shutdown().await.unwrap();
        let ids = recorder.dedup_ids.lock().unwrap().clone();
        assert_eq!(ids.len(), 100);
        for id in ids {
            assert!(all_ids.insert(id.clone()), "dedup id {id} reused after restart");
        }
    }
    assert_eq!(producer_ids.len(), 1, "the producer id persists across restarts");
}

#[tokio::test(flavor = "multi_thread")]
async fn dedup_ids_have_the_documented_shape() {
    let recorder = Arc::new(Recorder::new(Fault::None));
    let bus = EventBus::with_adapter(config(1), recorder.clone()).await.unwrap();
    bus.ingest_raw(RawEvent::from_bytes(&b"{}"[..])).unwrap();
    bus.ingest_raw(RawEvent::from_bytes(&b"{}"[..])).unwrap();
    bus.shutdown().await.unwrap();
    let ids = recorder.dedup_ids.lock().unwrap().clone();
    assert_eq!(ids.len(), 2);
    for (seq, id) in ids.iter().enumerate() {
        // `{producer:016x}:{epoch}:{run:016x}:{shard}:{sequence}`
        let parts: Vec<&str> = id.split(':').collect();
        assert_eq!(parts.len(), 5, "{id}");
        assert!(parts[0].len() == 16 && u64::from_str_radix(parts[0], 16).is_ok(), "{id}");
        assert_eq!(parts[1], "1");
        assert!(parts[2].len() == 16 && u64::from_str_radix(parts[2], 16).is_ok(), "{id}");
        assert_eq!(parts[3], "0");
        assert_eq!(parts[4], seq.to_string());
    }
}

/// Failure mode 6: the auto-scaler holds only a weak reference and shutdown stops it, so a bus
/// whose monitor is running still shuts down, and a dropped one drains, promptly. Watched from a
/// plain thread so a hang fails the test instead of wedging it.
#[test]
fn the_auto_scaler_never_holds_up_shutdown_or_drop() {
    let policy = purple_rain::ScalingPolicy {
        min_shards: 1,
        max_shards: 8,
        auto: true,
        cooldown: Duration::from_millis(10),
        ..purple_rain::ScalingPolicy::default()
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let recorders: Vec<_> = (0..2).map(|_| Arc::new(Recorder::new(Fault::None))).collect();
    let watched = recorders.clone();
    std::thread::spawn(move || {
        for (i, recorder) in watched.into_iter().enumerate() {
            let config = EventBusConfig::builder().shards(2).scaling(policy.clone()).build().unwrap();
            let bus = runtime::wait(EventBus::with_adapter(config, recorder));
            let bus = Arc::new(bus.unwrap());
            for n in 0..300 {
                bus.ingest_raw(RawEvent::from_bytes(common::payload(i, n))).unwrap();
            }
            // Let the monitor tick a few times (it ticks every 10 ms) before stopping.
            std::thread::sleep(Duration::from_millis(50));
            if i == 0 {
                let bus = bus.clone();
                runtime::wait(async move { bus.shutdown_via_ref().await }).unwrap();
            }
            drop(bus);
        }
        let _ = done_tx.send(());
    });
    done_rx.recv_timeout(Duration::from_secs(30)).expect("shutdown or drop hung with the auto-scaler running");
    for recorder in &recorders {
        assert_eq!(recorder.delivered_count(), 300);
        assert_eq!(recorder.shutdowns.load(Ordering::SeqCst), 1);
    }
}

/// Failure mode 11: a single event is dispatched as soon as its worker wakes, not after a batch
/// delay or an idle-loop sleep. With `max_delay_ms` at 10 s, a dispatcher that lingered for
/// its batch to fill would miss the 2 s bound by far.
#[tokio::test(flavor = "multi_thread")]
async fn a_single_event_is_not_held_for_the_batch_delay() {
    let config = EventBusConfig::builder()
        .shards(2)
        .batch(BatchConfig::default().max_events(1024).max_delay_ms(10_000))
        .adapter(purple_rain::AdapterConfig::memory())
        .build()
        .unwrap();
    let bus = EventBus::new(config).await.unwrap();
    let mut cursor = bus.poll(purple_rain::ConsumeRequest::new(10)).await.unwrap().cursor;
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let start = std::time::Instant::now();
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
        // No flush: only the worker's own dispatch can make the event visible.
        let page = bus
            .poll(purple_rain::ConsumeRequest::new(10).from(cursor.clone()).wait(Duration::from_secs(5)))
            .await
            .unwrap();
        worst = worst.max(start.elapsed());
        assert_eq!(page.events.len(), 1);
        cursor = page.cursor;
    }
    assert!(worst < Duration::from_secs(2), "a single event waited {worst:?} to be dispatched");
    bus.shutdown().await.unwrap();
}

/// A recorder whose log already ends 3 sequences short of the end of the sequence space.
struct NearTheEnd(Recorder);

#[async_trait::async_trait]
impl purple_rain::Adapter for NearTheEnd {
    fn name(&self) -> &str {
        "near-the-end"
    }
    async fn next_sequence(&self, _shard: u16) -> Result<u64, AdapterError> {
        Ok(u64::MAX - 3)
    }
    async fn on_batch(&self, batch: &purple_rain::Batch) -> Result<(), AdapterError> {
        self.0.on_batch(batch).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sequences_never_wrap_events_past_the_sequence_space_are_dropped_and_counted() {
    let near = Arc::new(NearTheEnd(Recorder::new(Fault::None)));
    // Batches of one, so the worker reaches the end one event at a time.
    let config = EventBusConfig::builder().shards(1).batch(BatchConfig::default().max_events(1)).build().unwrap();
    let bus = EventBus::with_adapter(config, near.clone()).await.unwrap();
    for i in 0..10 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
        bus.flush().await.unwrap();
    }
    let delivered = near.0.delivered.lock().unwrap().get(&0).cloned().unwrap_or_default();
    let sequences: Vec<u64> = delivered.iter().map(|(sequence, _)| *sequence).collect();
    // The next sequence after the last must exist too, so `u64::MAX` itself is never handed out.
    assert_eq!(sequences, [u64::MAX - 3, u64::MAX - 2, u64::MAX - 1], "sequences wrapped or were reused");
    let stats = common::assert_balanced(&bus);
    assert_eq!(stats.dropped_adapter_fatal, 7);
    assert_eq!(stats.dropped_lost, 0, "the worker panicked (overflow in a debug build)");
    let error = bus.stats().last_adapter_error().unwrap_or_default();
    assert!(error.contains("sequence space exhausted"), "{error:?}");
    bus.shutdown().await.unwrap();
}
