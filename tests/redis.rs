//! The Redis Streams adapter against real servers: the shared one on 127.0.0.1:6379 (a unique
//! prefix per test), or a private `redis-server` on a free port for tests that kill, pause or
//! restart it. Run with `cargo test --features redis --test redis`.
#![cfg(feature = "redis")]

#[path = "support/redis.rs"]
mod support;

use purple_rain::{
    AdapterConfig, AdapterError, BackpressureMode, BatchConfig, ConfigError, ConsumeRequest, ConsumerError, EventBus,
    EventBusConfig, Filter, Ordering, RawEvent, RedisAdapterConfig, RetryPolicy, StoredEvent,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{shared_url, PrefixGuard, RedisServer, ReplyDropProxy, SilentServer};

fn redis_config(url: &str, prefix: &str) -> RedisAdapterConfig {
    AdapterConfig::redis(url).stream_prefix(prefix)
}

fn bus_config(shards: u16, adapter: RedisAdapterConfig) -> EventBusConfig {
    EventBusConfig::builder()
        .shards(shards)
        .ring_capacity(1 << 14)
        .backpressure(BackpressureMode::Block)
        .adapter(adapter)
        .build()
        .unwrap()
}

async fn bus(shards: u16, adapter: RedisAdapterConfig) -> EventBus {
    EventBus::new(bus_config(shards, adapter)).await.unwrap()
}

fn payload(tag: &str, i: usize) -> Vec<u8> {
    format!(r#"{{"src":"{tag}","i":{i},"pad":"0123456789012345678901234567890123456789"}}"#).into_bytes()
}

/// Ingests from a plain thread (`Block` mode parks it, which must not happen on a runtime
/// worker).
async fn ingest_all(bus: &Arc<EventBus>, tag: &'static str, range: std::ops::Range<usize>) {
    let bus = bus.clone();
    tokio::task::spawn_blocking(move || {
        for i in range {
            bus.ingest_raw(RawEvent::from_bytes(payload(tag, i))).unwrap();
        }
    })
    .await
    .unwrap();
}

/// Polls from `cursor` until nothing is left; returns the events and the final cursor.
async fn drain(bus: &EventBus, mut cursor: Option<String>, limit: usize) -> (Vec<StoredEvent>, String) {
    let mut events = Vec::new();
    loop {
        let mut request = ConsumeRequest::new(limit);
        if let Some(c) = &cursor {
            request = request.from(c.clone());
        }
        let page = bus.poll(request).await.unwrap();
        assert_eq!(page.missed, 0);
        events.extend(page.events);
        cursor = Some(page.cursor);
        if !page.has_more {
            return (events, cursor.unwrap());
        }
    }
}

/// Every shard's events in strictly increasing sequence and timestamp order.
fn assert_ordered_per_shard(events: &[StoredEvent]) {
    let mut last: HashMap<u16, (u64, u64)> = HashMap::new();
    for e in events {
        if let Some(&(seq, ts)) = last.get(&e.shard) {
            assert!(e.sequence > seq, "shard {} sequence {} after {}", e.shard, e.sequence, seq);
            assert!(e.timestamp_ns > ts, "shard {} timestamp {} after {}", e.shard, e.timestamp_ns, ts);
        }
        assert_eq!(e.id, format!("{}-0", e.sequence));
        last.insert(e.shard, (e.sequence, e.timestamp_ns));
    }
}

fn count_payloads(events: &[StoredEvent]) -> HashMap<Vec<u8>, usize> {
    let mut seen = HashMap::new();
    for e in events {
        *seen.entry(e.payload.to_vec()).or_insert(0) += 1;
    }
    seen
}

/// Every entry of every stream of a prefix, read straight from the server: payload → count.
fn stream_contents(conn: &mut redis::Connection, prefix: &str) -> HashMap<Vec<u8>, usize> {
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query(conn).unwrap();
    let mut seen = HashMap::new();
    for key in keys.iter().filter(|k| k[prefix.len() + 1..].parse::<u16>().is_ok()) {
        let entries: Vec<(String, Vec<(String, Vec<u8>)>)> = redis::cmd("XRANGE").arg(key).arg("-").arg("+").query(conn).unwrap();
        for (_, fields) in entries {
            let payload = fields.into_iter().find(|(k, _)| k == "p").expect("payload field").1;
            *seen.entry(payload).or_insert(0) += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_of_100k_events_over_4_shards_is_exactly_once_with_cursors() {
    let guard = PrefixGuard::new(shared_url(), "roundtrip");
    let bus = Arc::new(bus(4, redis_config(&guard.url, &guard.prefix)).await);
    const N: usize = 100_000;
    ingest_all(&bus, "a", 0..N).await;
    bus.flush().await.unwrap();
    let stats = bus.stats().snapshot();
    assert_eq!((stats.events_ingested, stats.events_dispatched, stats.events_dropped), (N as u64, N as u64, 0));

    let (events, cursor) = drain(&bus, None, 5_000).await;
    assert_eq!(events.len(), N);
    let seen = count_payloads(&events);
    assert_eq!(seen.len(), N, "every event once");
    assert!((0..N).all(|i| seen.get(&payload("a", i)) == Some(&1)));
    assert_ordered_per_shard(&events);
    assert_eq!(events.iter().map(|e| e.shard).collect::<HashSet<_>>().len(), 4);

    // The cursor stands past everything: nothing repeats, and new events follow.
    let page = bus.poll(ConsumeRequest::new(100).from(cursor.clone())).await.unwrap();
    assert!(page.events.is_empty() && !page.has_more);
    ingest_all(&bus, "b", 0..10).await;
    bus.flush().await.unwrap();
    let (tail, _) = drain(&bus, Some(cursor), 3).await;
    assert_eq!(tail.len(), 10);
    assert!(tail.iter().all(|e| e.payload.starts_with(br#"{"src":"b""#)));
    Arc::into_inner(bus).unwrap().shutdown().await.unwrap();
}
