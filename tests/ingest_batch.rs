//! `EventBus::ingest_raw_batch`: the same acceptance rules as `ingest_raw` per event, with one
//! worker wake-up per shard per batch — and no event left undelivered for want of a wake-up.

use purple_rain::{
    runtime, AdapterConfig, ConsumeRequest, ConsumeResponse, EventBus, EventBusConfig, IngestionError, RawEvent,
};
use std::sync::Arc;
use std::time::Duration;

fn start(config: EventBusConfig) -> Arc<EventBus> {
    Arc::new(runtime::wait(async move { EventBus::new(config).await }).unwrap())
}

fn memory(shards: u16) -> EventBusConfig {
    EventBusConfig::builder().shards(shards).adapter(AdapterConfig::memory()).build().unwrap()
}

fn events(range: std::ops::Range<u32>) -> impl Iterator<Item = RawEvent> {
    range.map(|i| RawEvent::from_bytes(format!("{{\"i\":{i}}}").into_bytes()))
}

fn poll(bus: &Arc<EventBus>, request: ConsumeRequest) -> ConsumeResponse {
    let bus = bus.clone();
    runtime::wait(async move { bus.poll(request).await }).unwrap()
}

fn flush(bus: &Arc<EventBus>) {
    let bus = bus.clone();
    runtime::wait(async move { bus.flush().await }).unwrap();
}

#[test]
fn accepts_every_event_and_delivers_them_without_further_pushes() {
    let bus = start(memory(4));
    let mut cursor = None;
    for round in 0..50 {
        let (accepted, result) = bus.ingest_raw_batch(events(round * 100..round * 100 + 100));
        assert_eq!(accepted, 100);
        assert!(result.is_ok());
        // Nothing else wakes the workers: a lost wake-up would leave this long poll empty.
        let mut request = ConsumeRequest::new(10_000).wait(Duration::from_secs(5));
        if let Some(cursor) = cursor.take() {
            request = request.from(cursor);
        }
        let page = poll(&bus, request);
        assert!(!page.events.is_empty(), "round {round}");
        cursor = Some(page.cursor);
    }
    flush(&bus);
    let stats = bus.stats().snapshot();
    assert_eq!(stats.events_ingested, 5000);
    assert_eq!(stats.events_dispatched, 5000);
}

#[test]
fn keeps_per_key_order_like_single_ingest() {
    let bus = start(memory(4));
    let batch = (0..1000u32).map(|i| RawEvent::with_key(format!("{i}").into_bytes(), "one-key"));
    assert_eq!(bus.ingest_raw_batch(batch).0, 1000);
    flush(&bus);
    let page = poll(&bus, ConsumeRequest::new(2000));
    let order: Vec<u32> =
        page.events.iter().map(|e| std::str::from_utf8(&e.payload).unwrap().parse().unwrap()).collect();
    assert_eq!(order, (0..1000).collect::<Vec<_>>());
    assert!(page.events.windows(2).all(|w| w[0].shard == w[1].shard));
}

#[test]
fn stops_at_the_first_refused_event_and_counts_what_went_in() {
    let config = EventBusConfig::from_json(r#"{"shards":1,"ring_capacity":2,"backpressure":"drop_newest"}"#).unwrap();
    let bus = start(config);
    let mut refused = None;
    for _ in 0..1000 {
        let (accepted, result) = bus.ingest_raw_batch(events(0..10_000));
        if let Err(e) = result {
            refused = Some((accepted, e));
            break;
        }
    }
    let (accepted, error) = refused.expect("a ring of 2 refuses a burst of 10000");
    assert!(accepted < 10_000);
    assert!(matches!(error, IngestionError::Backpressure), "{error}");
    flush(&bus);
    let stats = bus.stats().snapshot();
    assert!(stats.is_balanced());
}

#[test]
fn refuses_everything_after_shutdown() {
    let bus = start(memory(2));
    let handle = bus.clone();
    runtime::wait(async move { handle.shutdown_via_ref().await }).unwrap();
    let (accepted, result) = bus.ingest_raw_batch(events(0..10));
    assert_eq!(accepted, 0);
    assert!(matches!(result, Err(IngestionError::ShuttingDown)));
    let (accepted, result) = bus.ingest_raw_batch(std::iter::empty());
    assert_eq!(accepted, 0);
    assert!(result.is_ok());
}

#[test]
fn unwoken_events_are_delivered_once_workers_are_woken() {
    let bus = start(memory(4));
    let mut cursor: Option<String> = None;
    for round in 0..20u32 {
        for event in events(round * 50..round * 50 + 50) {
            bus.ingest_raw_unwoken(event).unwrap();
        }
        bus.wake_workers();
        let mut request = ConsumeRequest::new(10_000).wait(Duration::from_secs(5));
        if let Some(cursor) = cursor.take() {
            request = request.from(cursor);
        }
        let page = poll(&bus, request);
        assert!(!page.events.is_empty(), "round {round}");
        cursor = Some(page.cursor);
    }
    // Waking with nothing to do is harmless, and flush still sees everything.
    bus.wake_workers();
    flush(&bus);
    assert_eq!(bus.stats().snapshot().events_dispatched, 1000);
}

#[test]
fn unwoken_ingest_refuses_like_ingest_raw() {
    let bus = start(memory(1));
    let handle = bus.clone();
    runtime::wait(async move { handle.shutdown_via_ref().await }).unwrap();
    let result = bus.ingest_raw_unwoken(RawEvent::from_bytes(&b"x"[..]));
    assert!(matches!(result, Err(IngestionError::ShuttingDown)));
}

#[test]
fn batches_much_larger_than_the_ring_get_through_in_block_mode() {
    let config = EventBusConfig::from_json(
        r#"{"shards":2,"ring_capacity":8,"backpressure":"block","adapter":{"type":"memory"}}"#,
    )
    .unwrap();
    let bus = start(config);
    let (accepted, result) = bus.ingest_raw_batch(events(0..20_000));
    assert_eq!(accepted, 20_000);
    assert!(result.is_ok());
    flush(&bus);
    let stats = bus.stats().snapshot();
    assert_eq!(stats.events_dispatched, 20_000);
    assert_eq!(stats.events_dropped, 0);
}
