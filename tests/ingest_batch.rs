//! `EventBus::ingest_raw_batch`: the same acceptance rules as `ingest_raw` per event, with one
//! worker wake-up per shard per batch — and no event left undelivered for want of a wake-up.

mod common;

use common::flush;
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

/// Long-polls (up to 5 s) from `cursor` and moves it past the page. Nothing but the bus wakes
/// the workers here, so a lost wake-up leaves the page empty.
fn long_poll(bus: &Arc<EventBus>, cursor: &mut String) -> ConsumeResponse {
    let page = poll(bus, ConsumeRequest::new(10_000).wait(Duration::from_secs(5)).from(std::mem::take(cursor)));
    cursor.clone_from(&page.cursor);
    page
}

#[test]
fn accepts_every_event_and_delivers_them_without_further_pushes() {
    let bus = start(memory(4));
    let mut cursor = String::new();
    for round in 0..50 {
        let (accepted, result) = bus.ingest_raw_batch(events(round * 100..round * 100 + 100));
        assert_eq!(accepted, 100);
        assert!(result.is_ok());
        assert!(!long_poll(&bus, &mut cursor).events.is_empty(), "round {round}");
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
    let mut cursor = String::new();
    for round in 0..20u32 {
        for event in events(round * 50..round * 50 + 50) {
            bus.ingest_raw_unwoken(event).unwrap();
        }
        bus.wake_workers();
        assert!(!long_poll(&bus, &mut cursor).events.is_empty(), "round {round}");
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
