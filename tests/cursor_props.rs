//! Arbitrary well-formed cursors (valid checksum, any positions, any shard set, any or no store
//! id) against every in-process adapter: a poll never panics; it answers a typed error
//! (`InvalidCursor`) or a correct page.

mod common;

use proptest::collection::btree_map;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use purple_rain::consume::Cursor;
use purple_rain::error::ErrorKind;
use purple_rain::{AdapterConfig, ConsumeRequest, EventBus, EventBusConfig, Ordering, RawEvent};
use std::collections::HashMap;

const SHARDS: u16 = 3;
const EVENTS: usize = 300;

async fn filled(adapter: AdapterConfig) -> (EventBus, HashMap<u16, (u64, u64)>) {
    let config = EventBusConfig::builder().shards(SHARDS).adapter(adapter).build().unwrap();
    let bus = EventBus::new(config).await.unwrap();
    for i in 0..EVENTS {
        bus.ingest_raw(RawEvent::from_bytes(common::payload("c", i))).unwrap();
    }
    bus.flush().await.unwrap();
    // Each shard's first and next sequence, from a full read.
    let drained = common::drain(&bus, ConsumeRequest::new(EVENTS)).await;
    let mut bounds: HashMap<u16, (u64, u64)> = HashMap::new();
    for event in &drained.events {
        let entry = bounds.entry(event.shard).or_insert((event.sequence, event.sequence + 1));
        entry.0 = entry.0.min(event.sequence);
        entry.1 = entry.1.max(event.sequence + 1);
    }
    (bus, bounds)
}

/// Positions near the interesting places (0, inside the log, its end, just past it) and anywhere.
fn position() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1u64..=EVENTS as u64 + 2, Just(u64::MAX), any::<u64>()]
}

fn shard() -> impl Strategy<Value = u16> {
    prop_oneof![0u16..SHARDS + 1, any::<u16>()]
}

fn check(bus: &EventBus, bounds: &HashMap<u16, (u64, u64)>, runtime: &tokio::runtime::Runtime) {
    let own_store =
        runtime.block_on(bus.poll(ConsumeRequest::new(1))).ok().and_then(|p| Cursor::decode(&p.cursor).ok()?.store());
    let store = prop_oneof![Just(None), Just(own_store), any::<u128>().prop_map(Some)];
    let strategy = (btree_map(shard(), position(), 0..6), store, 1usize..50, any::<bool>());
    let mut runner = TestRunner::new(Config { cases: 256, ..Config::default() });
    runner
        .run(&strategy, |(positions, store, limit, by_time)| {
            let mut cursor = Cursor::start().with_store(store);
            for (&shard, &next) in &positions {
                cursor.advance(shard, next);
            }
            let text = cursor.encode();
            prop_assert_eq!(Cursor::decode(&text), Ok(cursor.clone()), "well-formed");
            let ordering = if by_time { Ordering::Timestamp } else { Ordering::Sequence };
            let request = ConsumeRequest::new(limit).ordering(ordering).from(text);
            match runtime.block_on(bus.poll(request)) {
                Ok(page) => {
                    prop_assert!(
                        own_store.is_none() || store.is_none() || store == own_store,
                        "another store's cursor was read"
                    );
                    prop_assert!(page.events.len() <= limit);
                    let next = Cursor::decode(&page.cursor).unwrap();
                    for event in &page.events {
                        let (_, end) = bounds[&event.shard];
                        prop_assert!(event.sequence >= cursor.position(event.shard), "an event behind the cursor");
                        prop_assert!(event.sequence < end);
                        prop_assert!(next.position(event.shard) > event.sequence);
                    }
                    for shard in 0..SHARDS {
                        prop_assert!(next.position(shard) >= cursor.position(shard), "the cursor moved back");
                    }
                }
                Err(err) => {
                    prop_assert_eq!(err.kind(), ErrorKind::InvalidCursor, "{}", err);
                    let ahead = (0..SHARDS).any(|s| cursor.position(s) > bounds.get(&s).map_or(0, |b| b.1));
                    let foreign = matches!((store, own_store), (Some(a), Some(b)) if a != b);
                    prop_assert!(ahead || foreign, "refused a valid cursor: {}", err);
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_cursors_never_panic_and_get_a_typed_error_or_a_correct_page() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for adapter in [AdapterConfig::memory().into(), AdapterConfig::disk(dir.path()).into(), AdapterConfig::Noop] {
        let (bus, bounds) = runtime.block_on(filled(adapter));
        check(&bus, &bounds, &runtime);
        runtime.block_on(bus.shutdown()).unwrap();
    }
}
