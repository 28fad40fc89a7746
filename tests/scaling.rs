//! Live scaling: no loss or duplication while shards come and go, per-key order, consistent
//! routing, slow-adapter drains, and decisions that follow the measured load.

mod common;

use common::{Fault, Recorder};
use purple_rain::{
    AdapterConfig, BackpressureMode, BatchConfig, ConsumeRequest, EventBus, EventBusConfig, IngestionError, RawEvent,
    ScalingDecision, ScalingError, ScalingPolicy,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn keyed(producer: usize, key: usize, index: usize) -> RawEvent {
    let bytes = format!(r#"{{"p":{producer},"k":{key},"i":{index}}}"#).into_bytes();
    RawEvent::with_key(bytes, format!("{producer}-{key}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn scaling_under_load_loses_nothing_and_keeps_per_shard_key_order() {
    const PRODUCERS: usize = 4;
    const EACH: usize = 100_000;
    let config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1 << 12)
        .backpressure(BackpressureMode::Block)
        .adapter(AdapterConfig::memory().max_events_per_shard(1 << 22))
        .build()
        .unwrap();
    let bus = Arc::new(EventBus::new(config).await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let scaler = {
        let (bus, stop) = (bus.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ops = 0;
            while !stop.load(Ordering::Acquire) {
                let added = bus.add_shards(2).await.unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
                let ids = bus.shard_ids();
                // Remove one new and one older shard.
                bus.remove_shards(vec![added[0], ids[0]]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
                ops += 2;
            }
            ops
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    bus.ingest_raw(keyed(p, i % 64, i)).unwrap();
                }
            })
        })
        .collect();
    tokio::task::spawn_blocking(move || producers.into_iter().for_each(|h| h.join().unwrap())).await.unwrap();
    stop.store(true, Ordering::Release);
    let ops = scaler.await.unwrap();
    assert!(ops >= 4, "the scaler ran {ops} operations");
    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!(s.events_ingested, (PRODUCERS * EACH) as u64);
    assert_eq!(s.events_dropped, 0);

    let mut cursor = String::new();
    let mut seen: Vec<(u16, u64, serde_json::Value)> = Vec::new();
    loop {
        let page = bus.poll(ConsumeRequest::new(10_000).from(cursor)).await.unwrap();
        for e in page.events {
            seen.push((e.shard, e.sequence, serde_json::from_slice(&e.payload).unwrap()));
        }
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen.len(), PRODUCERS * EACH, "every event exactly once (count)");
    let mut per_event = HashMap::new();
    for (_, _, v) in &seen {
        *per_event.entry((v["p"].as_u64(), v["i"].as_u64())).or_insert(0) += 1;
    }
    assert!(per_event.values().all(|&n| n == 1), "an event was delivered twice");
    // Within a shard, no event of a key comes before an earlier event of the same key.
    let mut last: HashMap<(u16, u64, u64), u64> = HashMap::new();
    for (shard, _, v) in &seen {
        let key = (*shard, v["p"].as_u64().unwrap(), v["k"].as_u64().unwrap());
        let i = v["i"].as_u64().unwrap();
        if let Some(prev) = last.insert(key, i) {
            assert!(i > prev, "key {key:?} out of order within shard: {i} after {prev}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_shard_with_a_slow_adapter_delivers_all_its_events_first() {
    let recorder = Arc::new(Recorder::new(Fault::Slow(Duration::from_millis(20))));
    let config = EventBusConfig::builder().shards(2).batch(BatchConfig::default().max_events(16)).build().unwrap();
    let bus = EventBus::with_adapter(config, recorder.clone()).await.unwrap();
    for i in 0..400 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    let on_shard_1 = bus.stats().shards().iter().find(|s| s.id == 1).unwrap().events_ingested;
    assert!(on_shard_1 > 0);
    bus.remove_shards(vec![1]).await.unwrap();
    let delivered_1 = recorder.delivered.lock().unwrap().get(&1).map_or(0, Vec::len) as u64;
    assert_eq!(delivered_1, on_shard_1, "remove_shards returned before its events reached the adapter");
    assert_eq!(bus.shard_ids(), vec![0]);
    // Totals never go down after retirement.
    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!(s.events_ingested, 400);
    assert!(bus.stats().shards().iter().any(|s| s.id == 1 && s.retired));
}

#[tokio::test(flavor = "multi_thread")]
async fn scaling_errors_are_explicit() {
    let config = EventBusConfig::builder()
        .shards(2)
        .scaling(ScalingPolicy { min_shards: 1, max_shards: 3, ..ScalingPolicy::default() })
        .build()
        .unwrap();
    let bus = EventBus::new(config).await.unwrap();
    assert!(matches!(bus.add_shards(0).await, Err(ScalingError::InvalidRequest(_))));
    assert!(matches!(bus.add_shards(2).await, Err(ScalingError::OutOfBounds { requested: 4, .. })));
    assert_eq!(bus.add_shards(1).await.unwrap(), vec![2]);
    assert!(matches!(bus.remove_shards(vec![7]).await, Err(ScalingError::UnknownShard(7))));
    assert!(matches!(bus.remove_shards(vec![0, 0]).await, Err(ScalingError::InvalidRequest(_))));
    assert!(matches!(bus.remove_shards(vec![0, 1, 2]).await, Err(ScalingError::OutOfBounds { .. })));
    bus.remove_shards(vec![0]).await.unwrap();
    // Ids are never reused.
    bus.remove_shards(vec![1]).await.unwrap();
    assert_eq!(bus.add_shards(1).await.unwrap(), vec![3]);
    bus.shutdown_via_ref().await.unwrap();
    assert!(matches!(bus.add_shards(1).await, Err(ScalingError::ShuttingDown)));
}

#[tokio::test(flavor = "multi_thread")]
async fn retired_shards_stay_pollable_by_default() {
    let config = EventBusConfig::builder().shards(3).adapter(AdapterConfig::memory()).build().unwrap();
    let bus = EventBus::new(config).await.unwrap();
    for i in 0..300 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    bus.remove_shards(vec![1]).await.unwrap();
    bus.flush().await.unwrap();
    let page = bus.poll(ConsumeRequest::new(1000)).await.unwrap();
    assert_eq!(page.events.len(), 300);
    assert!(page.events.iter().any(|e| e.shard == 1));
    assert_eq!(
        bus.poll(ConsumeRequest::new(1000).shards(vec![1])).await.unwrap().events.len() as u64,
        bus.stats().shards().iter().find(|s| s.id == 1).unwrap().events_dispatched
    );
}

fn policy(auto: bool) -> ScalingPolicy {
    ScalingPolicy {
        min_shards: 1,
        max_shards: 8,
        auto,
        fill_ratio_high: 0.5,
        fill_ratio_low: 0.01,
        ingest_rate_high: 1e12,
        ingest_rate_low: 1_000.0,
        cooldown: Duration::from_millis(50),
        scale_down_delay: Duration::from_millis(200),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn suggestions_follow_measured_load() {
    let recorder = Arc::new(Recorder::new(Fault::Slow(Duration::from_millis(50))));
    let config = EventBusConfig::builder()
        .shards(2)
        .ring_capacity(64)
        .batch(BatchConfig::default().max_events(1))
        .scaling(policy(false))
        .build()
        .unwrap();
    let bus = EventBus::with_adapter(config, recorder).await.unwrap();
    assert_eq!(bus.suggest_scaling().await, ScalingDecision::None, "first reading has no rate yet");
    // Overload: the slow adapter cannot keep up, rings fill and producers are refused.
    let mut refused = 0;
    for i in 0..1000 {
        if let Err(IngestionError::Backpressure) = bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))) {
            refused += 1;
        }
    }
    assert!(refused > 0);
    assert_eq!(bus.suggest_scaling().await, ScalingDecision::ScaleUp(2));
    bus.shutdown_via_ref().await.unwrap();

    let bus = EventBus::new(EventBusConfig::builder().shards(3).scaling(policy(false)).build().unwrap()).await.unwrap();
    assert_eq!(bus.suggest_scaling().await, ScalingDecision::None);
    assert_eq!(bus.suggest_scaling().await, ScalingDecision::None, "idle, but not for scale_down_delay yet");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(bus.suggest_scaling().await, ScalingDecision::ScaleDown(vec![2]));
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_scaler_grows_a_busy_bus_and_never_shrinks_it_while_busy() {
    let recorder = Arc::new(Recorder::new(Fault::Slow(Duration::from_millis(2))));
    let config = EventBusConfig::builder()
        .shards(1)
        .ring_capacity(256)
        .batch(BatchConfig::default().max_events(8))
        .backpressure(BackpressureMode::DropNewest)
        .scaling(policy(true))
        .build()
        .unwrap();
    let bus = Arc::new(EventBus::with_adapter(config, recorder).await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bus, stop) = (bus.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let _ = bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i)));
                i += 1;
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        })
    };
    let mut max_seen = 1;
    let mut shrank_while_busy = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let n = bus.shard_ids().len();
        shrank_while_busy |= n < max_seen;
        max_seen = max_seen.max(n);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Release);
    tokio::task::spawn_blocking(move || producer.join().unwrap()).await.unwrap();
    assert!(max_seen > 1, "the auto-scaler never grew a saturated bus");
    assert!(!shrank_while_busy, "the auto-scaler shrank a busy bus");
    bus.flush().await.unwrap();
    common::assert_balanced(&bus);
}

/// Failure mode 17: the bound check and the activation happen under one lock, so racing adds
/// can never take the bus past `max_shards` together.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_adds_never_go_past_max_shards() {
    let config = EventBusConfig::builder()
        .shards(1)
        .scaling(ScalingPolicy { min_shards: 1, max_shards: 4, ..ScalingPolicy::default() })
        .build()
        .unwrap();
    let bus = Arc::new(EventBus::new(config).await.unwrap());
    let adds: Vec<_> = (0..16)
        .map(|_| {
            let bus = bus.clone();
            tokio::spawn(async move { bus.add_shards(1).await })
        })
        .collect();
    let mut added = 0;
    for add in adds {
        match add.await.unwrap() {
            Ok(ids) => added += ids.len(),
            Err(ScalingError::OutOfBounds { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(added, 3, "exactly the room up to max_shards was used");
    assert_eq!(bus.shard_ids().len(), 4);
    assert_eq!(bus.stats().shards().iter().filter(|s| !s.retired).count(), 4);
}

/// Fails `next_sequence` (the step that activates a shard) for shard ids from `fail_from` on.
struct FailingActivation {
    inner: Recorder,
    fail_from: u16,
}

#[async_trait::async_trait]
impl purple_rain::Adapter for FailingActivation {
    fn name(&self) -> &str {
        "failing-activation"
    }
    async fn next_sequence(&self, shard: u16) -> Result<u64, purple_rain::AdapterError> {
        if shard >= self.fail_from {
            return Err(purple_rain::AdapterError::Fatal(format!("cannot activate shard {shard}")));
        }
        Ok(0)
    }
    async fn on_batch(&self, batch: &purple_rain::Batch) -> Result<(), purple_rain::AdapterError> {
        purple_rain::Adapter::on_batch(&self.inner, batch).await
    }
}

/// Failure mode 16: an add whose second shard fails to activate is rolled back whole: the shard
/// count is unchanged, nothing is routed to the half-made shard, and no event is lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_activation_is_rolled_back_whole_and_loses_nothing() {
    let adapter = Arc::new(FailingActivation { inner: Recorder::new(Fault::None), fail_from: 3 });
    let config = EventBusConfig::builder().shards(2).build().unwrap();
    let bus = EventBus::with_adapter(config, adapter.clone()).await.unwrap();
    for i in 0..500 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    // Shard 2 activates, shard 3 fails: the whole request fails and shard 2 is undone.
    assert!(matches!(bus.add_shards(2).await, Err(ScalingError::Adapter(_))));
    assert_eq!(bus.shard_ids(), vec![0, 1], "the shard count is off after a rollback");
    assert_eq!(bus.stats().workers_running(), 2, "the undone shard's worker was leaked");
    for i in 500..1000 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!((s.events_ingested, s.events_dispatched, s.events_dropped), (1000, 1000, 0));
    assert_eq!(adapter.inner.delivered_count(), 1000);
    let shards: Vec<u16> = adapter.inner.delivered.lock().unwrap().keys().copied().collect();
    assert!(shards.iter().all(|&shard| shard < 2), "events went to a rolled-back shard: {shards:?}");
    bus.shutdown_via_ref().await.unwrap();
    assert_eq!(bus.stats().workers_running(), 0, "a worker outlived shutdown");
}

/// Failure mode 18: a scale-down with one bad id is refused before anything changes, instead
/// of removing the good ids and reporting success or a bare error.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_scale_down_changes_nothing() {
    let recorder = Arc::new(Recorder::new(Fault::None));
    let config = EventBusConfig::builder().shards(3).build().unwrap();
    let bus = EventBus::with_adapter(config, recorder.clone()).await.unwrap();
    assert!(matches!(bus.remove_shards(vec![1, 7]).await, Err(ScalingError::UnknownShard(7))));
    assert!(matches!(bus.remove_shards(vec![2, 2]).await, Err(ScalingError::InvalidRequest(_))));
    assert_eq!(bus.shard_ids(), vec![0, 1, 2]);
    assert!(bus.stats().shards().iter().all(|s| !s.retired));
    assert_eq!(bus.stats().workers_running(), 3);
    bus.remove_shards(vec![1]).await.unwrap();
    assert_eq!(bus.shard_ids(), vec![0, 2]);
    assert_eq!(bus.stats().workers_running(), 2, "a removed shard's worker outlived its drain");
}

/// Failure mode 22: every shard stamps wall-clock time, so a shard added late does not start
/// near zero and timestamp order across shards means something.
#[tokio::test(flavor = "multi_thread")]
async fn a_shard_added_later_stamps_wall_clock_timestamps() {
    let config = EventBusConfig::builder().shards(1).adapter(AdapterConfig::memory()).build().unwrap();
    let bus = EventBus::new(config).await.unwrap();
    bus.ingest_raw(RawEvent::with_key(&b"{\"old\":1}"[..], "k")).unwrap();
    bus.flush().await.unwrap();
    let added = bus.add_shards(3).await.unwrap();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    for i in 0..200 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(1, i))).unwrap();
    }
    bus.flush().await.unwrap();
    let page = bus.poll(ConsumeRequest::new(1000)).await.unwrap();
    let old = page.events.iter().find(|e| e.shard == 0 && e.sequence == 0).unwrap().timestamp_ns;
    let on_new: Vec<_> = page.events.iter().filter(|e| added.contains(&e.shard)).collect();
    assert!(!on_new.is_empty(), "no event reached the added shards");
    for e in on_new {
        assert!(e.timestamp_ns >= before, "shard {} stamped {} before {before}", e.shard, e.timestamp_ns);
        assert!(e.timestamp_ns > old, "a later event on a new shard sorts before an older one");
    }
}

/// Holds `next_sequence` (the step that activates a shard) for shard ids from `first_held` on
/// until the test releases it.
struct HeldActivation {
    inner: Recorder,
    first_held: u16,
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl purple_rain::Adapter for HeldActivation {
    fn name(&self) -> &str {
        "held-activation"
    }
    async fn next_sequence(&self, shard: u16) -> Result<u64, purple_rain::AdapterError> {
        if shard >= self.first_held {
            self.entered.notify_one();
            self.release.notified().await;
        }
        Ok(0)
    }
    async fn on_batch(&self, batch: &purple_rain::Batch) -> Result<(), purple_rain::AdapterError> {
        purple_rain::Adapter::on_batch(&self.inner, batch).await
    }
}

/// Failure mode 13: while a new shard is still being activated, no event is routed to it;
/// once `add_shards` returns it takes its share.
#[tokio::test(flavor = "multi_thread")]
async fn no_event_is_routed_to_a_shard_before_it_runs() {
    let adapter = Arc::new(HeldActivation {
        inner: Recorder::new(Fault::None),
        first_held: 2,
        entered: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let config = EventBusConfig::builder().shards(2).build().unwrap();
    let bus = Arc::new(EventBus::with_adapter(config, adapter.clone()).await.unwrap());
    let adding = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.add_shards(1).await })
    };
    adapter.entered.notified().await;
    for i in 0..2000 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    assert_eq!(bus.shard_ids(), vec![0, 1], "a shard is routable before it runs");
    let early: u64 = bus.stats().shards().iter().filter(|s| s.id >= 2).map(|s| s.events_ingested).sum();
    assert_eq!(early, 0, "events were routed to a shard still being activated");
    adapter.release.notify_one();
    assert_eq!(adding.await.unwrap().unwrap(), vec![2]);
    for i in 2000..4000 {
        bus.ingest_raw(RawEvent::from_bytes(common::payload(0, i))).unwrap();
    }
    bus.flush().await.unwrap();
    let s = common::assert_balanced(&bus);
    assert_eq!((s.events_ingested, s.events_dispatched), (4000, 4000));
    let delivered = adapter.inner.delivered.lock().unwrap();
    assert!(delivered.get(&2).is_some_and(|events| !events.is_empty()), "the new shard never got its share");
}
