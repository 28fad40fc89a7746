//! The JetStream adapter against a real nats-server.
//!
//! Tests use the server on 127.0.0.1:4222 (or `PURPLE_RAIN_NATS_URL`) with a random stream
//! prefix each, and delete their streams at the end; when nothing answers there, each test
//! starts its own server. Tests that restart the server always start their own, on a free port
//! with their own store directory, and stop it on drop.

#![cfg(feature = "jetstream")]

mod common;

use common::nats::{server, NatsServer, Streams};
use common::{assert_exactly_once, block, flush, free_port, payload, shutdown, unique_prefix, OutageProducer};
use purple_rain::adapter::{Adapter, JetStreamAdapter, JetStreamStorage, ShardRead};
use purple_rain::{
    AdapterConfig, BackpressureMode, Batch, BatchConfig, ConfigError, ConsumeRequest, EventBus, EventBusConfig,
    ProducerIdentity, RawEvent, RetryPolicy, StoredEvent,
};
use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers

fn js_config(url: &str, prefix: &str) -> purple_rain::adapter::JetStreamAdapterConfig {
    AdapterConfig::jetstream(url).stream_prefix(prefix).storage(JetStreamStorage::Memory)
}

fn bus(shards: u16, adapter: purple_rain::adapter::JetStreamAdapterConfig) -> Arc<EventBus> {
    let config = EventBusConfig::builder()
        .shards(shards)
        .ring_capacity(1 << 14)
        .backpressure(BackpressureMode::Block)
        .adapter(adapter)
        .build()
        .unwrap();
    Arc::new(block(EventBus::new(config)).unwrap())
}

/// A bus whose retry budget outlasts a server restart.
fn patient_bus(adapter: purple_rain::adapter::JetStreamAdapterConfig) -> Arc<EventBus> {
    let config = EventBusConfig::builder()
        .shards(2)
        .ring_capacity(1 << 12)
        .backpressure(BackpressureMode::Block)
        .batch(
            BatchConfig::default()
                .retry(RetryPolicy::default().max_attempts(100).initial_backoff_ms(20).max_backoff_ms(500)),
        )
        .adapter(adapter)
        .build()
        .unwrap();
    Arc::new(block(EventBus::new(config)).unwrap())
}

/// Polls from `cursor` until `has_more` is false; returns the events, the cursor and `missed`.
fn drain(bus: &Arc<EventBus>, limit: usize, cursor: Option<String>) -> (Vec<StoredEvent>, String, u64) {
    let bus = bus.clone();
    let mut request = ConsumeRequest::new(limit);
    request.from_id = cursor;
    let drained = block(async move { common::drain(&bus, request).await });
    (drained.events, drained.cursor, drained.missed)
}

/// With one producer, each shard's ingestion timestamps increase with the sequence.
fn assert_timestamps_increase(events: &[StoredEvent]) {
    let mut last: HashMap<u16, u64> = HashMap::new();
    for e in events {
        if let Some(ts) = last.insert(e.shard, e.timestamp_ns) {
            assert!(e.timestamp_ns > ts, "shard {} timestamps not increasing at sequence {}", e.shard, e.sequence);
        }
    }
}

/// How far, at most, an event sits from its ingestion-order place in its shard's stream.
fn max_displacement(events: &[StoredEvent]) -> usize {
    let mut by_shard: HashMap<u16, Vec<u64>> = HashMap::new();
    for e in events {
        by_shard.entry(e.shard).or_default().push(e.timestamp_ns);
    }
    let mut worst = 0;
    for stored in by_shard.values() {
        let mut ingested = stored.clone();
        ingested.sort_unstable();
        let place: HashMap<u64, usize> = ingested.iter().enumerate().map(|(i, ts)| (*ts, i)).collect();
        for (i, ts) in stored.iter().enumerate() {
            worst = worst.max(i.abs_diff(place[ts]));
        }
    }
    worst
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn round_trip_100k_events_over_4_shards_with_cursors_exactly_once() {
    let server = server();
    let prefix = unique_prefix("roundtrip");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let adapter = Arc::new(JetStreamAdapter::new(js_config(&server.url, &prefix)));
    let config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1 << 14)
        .backpressure(BackpressureMode::Block)
        .build()
        .unwrap();
    let bus = Arc::new(block(EventBus::with_adapter(config, adapter.clone())).unwrap());
    let n = 100_000;
    let mut expected = HashSet::with_capacity(n);
    for i in 0..n {
        let p = payload("a", i);
        expected.insert(p.clone());
        bus.ingest_raw(RawEvent::from_bytes(p)).unwrap();
    }
    flush(&bus);
    let stats = bus.stats().snapshot();
    assert_eq!(stats.events_dispatched, n as u64, "{stats:?}");
    let (events, cursor, missed) = drain(&bus, 5_000, None);
    assert_eq!(missed, 0);
    assert_exactly_once(&events, &expected);
    // Batched reads: 20 pages over 4 shards, never a request per message.
    let requests = adapter.read_requests();
    assert!(requests <= 200, "{requests} read requests for {n} events");
    assert_timestamps_increase(&events);
    assert_eq!(events.iter().map(|e| e.shard).collect::<HashSet<_>>().len(), 4, "all shards used");
    // The cursor stands past everything: polling again returns nothing, and new events only.
    let (again, cursor, _) = drain(&bus, 1_000, Some(cursor));
    assert!(again.is_empty());
    bus.ingest_raw(RawEvent::from_bytes(payload("a", n))).unwrap();
    flush(&bus);
    let (new, _, _) = drain(&bus, 1_000, Some(cursor));
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].payload.as_ref(), payload("a", n).as_slice());
    shutdown(bus);
}

#[test]
fn batch_published_twice_is_stored_once() {
    let server = server();
    let prefix = unique_prefix("retry");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let adapter = Arc::new(JetStreamAdapter::new(js_config(&server.url, &prefix)));
    let a = adapter.clone();
    block(async move {
        a.init().await.unwrap();
        let first = a.next_sequence(0).await.unwrap();
        let producer = ProducerIdentity::ephemeral();
        let events: Vec<RawEvent> = (0..500).map(|i| RawEvent::from_bytes(payload("r", i))).collect();
        // A first attempt that stored only part of the batch, then the whole batch twice.
        let partial = Batch::new(0, first, 1_000, producer, events[..200].to_vec());
        let batch = Batch::new(0, first, 1_000, producer, events.clone());
        a.on_batch(&partial).await.unwrap();
        a.on_batch(&batch).await.unwrap();
        a.on_batch(&batch).await.unwrap();
        let read = ShardRead { shard: 0, from: 0, max_events: 10_000, filter: None, recycled_ids: None };
        let page = a.read_shard(read).await.unwrap();
        assert_eq!(page.events.len(), 500, "each message stored once");
        assert!(!page.more);
        assert_eq!(page.missed, 0);
        for (i, e) in page.events.iter().enumerate() {
            assert_eq!(e.payload.as_ref(), payload("r", i).as_slice());
            assert_eq!(e.timestamp_ns, 1_000 + i as u64, "the ingestion timestamp travels with the message");
        }
        a.shutdown().await.unwrap();
    });
}

#[test]
fn two_buses_publish_a_third_polls_both_exactly_once() {
    let server = server();
    let prefix = unique_prefix("fanin");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let producers = [bus(4, js_config(&server.url, &prefix)), bus(4, js_config(&server.url, &prefix))];
    let mut expected = HashSet::new();
    for (tag, bus) in ["a", "b"].iter().zip(&producers) {
        for i in 0..5_000 {
            let p = payload(tag, i);
            expected.insert(p.clone());
            bus.ingest_raw(RawEvent::from_bytes(p)).unwrap();
        }
    }
    for bus in &producers {
        flush(bus);
    }
    let reader = bus(4, js_config(&server.url, &prefix));
    let (events, _, missed) = drain(&reader, 777, None);
    assert_eq!(missed, 0);
    // Two producers' events interleave per shard: only each one's own timestamps increase.
    assert_exactly_once(&events, &expected);
    for bus in producers {
        shutdown(bus);
    }
    shutdown(reader);
}

/// The server stops while the bus is publishing; the second half of the events is ingested
/// while it is down (the producer waits for that), so the outage is always met by publishes
/// in flight, whatever the machine's speed.
#[test]
fn server_restarted_mid_ingest_every_dispatched_event_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = NatsServer::start(port, dir.path());
    let adapter = AdapterConfig::jetstream(server.url())
        .stream_prefix("restart")
        .storage(JetStreamStorage::File)
        .request_timeout_ms(1_000)
        // A small window: acks abandoned by the batches that failed in the restart must not
        // hold it after their batch gave up, or the retries stall.
        .max_outstanding_acks(64);
    let bus = patient_bus(adapter);
    let n = 40_000;
    let producer = OutageProducer::start(&bus, "s", n, Duration::from_millis(20));
    let started = Instant::now();
    while bus.stats().snapshot().events_dispatched < 5_000 {
        assert!(started.elapsed() < Duration::from_secs(60), "nothing dispatched");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.stop();
    producer.broker_down();
    let down = Instant::now();
    while bus.stats().snapshot().retries == 0 {
        assert!(down.elapsed() < Duration::from_secs(30), "publishing to a stopped server never failed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _restarted_server = NatsServer::start(port, dir.path());
    let restarted = Instant::now();
    producer.finish();
    flush(&bus);
    let recovery = restarted.elapsed();
    assert!(recovery < Duration::from_secs(20), "publishing stalled after the restart: {recovery:?}");
    let stats = bus.stats().snapshot();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.events_ingested, n as u64);
    assert_eq!(stats.events_dropped, 0, "the retry budget outlasts the restart: {stats:?}");
    assert!(stats.retries > 0, "the restart was not noticed: {stats:?}");
    let expected: HashSet<Vec<u8>> = (0..n).map(|i| payload("s", i)).collect();
    let (events, _, _) = drain(&bus, 5_000, None);
    assert_exactly_once(&events, &expected);
    // A reconnect can lose part of the in-flight window while later messages of the same batch
    // land; the retry then stores the lost part after them. Batches never swap (each completes
    // before the next starts), so no event moves further than one batch.
    let displacement = max_displacement(&events);
    assert!(displacement < 1024, "reordered across batches: {displacement}");
    shutdown(bus);
}

#[test]
fn unreachable_server_is_a_connection_error_within_the_connect_timeout() {
    let timeout = Duration::from_millis(500);
    // Nothing listens on the port: refused at once.
    let closed = format!("nats://127.0.0.1:{}", free_port());
    // Something listens and never speaks: only the connect timeout ends the handshake.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("nats://127.0.0.1:{}", silent.local_addr().unwrap().port());
    for url in [closed, silent_url] {
        let config = EventBusConfig::builder()
            .adapter(AdapterConfig::jetstream(&url).connect_timeout_ms(timeout.as_millis() as u64))
            .build()
            .unwrap();
        let started = Instant::now();
        let result = block(EventBus::new(config));
        let elapsed = started.elapsed();
        match result {
            Err(ConfigError::Adapter(purple_rain::AdapterError::Connection(m))) => assert!(m.contains(&url), "{m}"),
            other => panic!("expected a connection error for {url}, got {other:?}"),
        }
        assert!(elapsed < timeout + Duration::from_millis(1_500), "{url}: took {elapsed:?}");
    }
    drop(silent);
}

#[test]
fn a_cursor_past_a_streams_end_is_an_invalid_cursor_and_the_tail_is_not() {
    let server = server();
    let prefix = unique_prefix("ahead");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let bus = bus(1, js_config(&server.url, &prefix));
    for i in 0..5 {
        bus.ingest_raw(RawEvent::from_bytes(payload("a", i))).unwrap();
    }
    flush(&bus);
    let (events, tail, _) = drain(&bus, 10, None);
    assert_eq!(events.len(), 5);
    let mut ahead = purple_rain::consume::Cursor::start();
    ahead.advance(0, 1_000);
    let b = bus.clone();
    let answer = block(async move { b.poll(ConsumeRequest::new(10).from(ahead.encode())).await });
    match answer {
        Err(err @ purple_rain::ConsumerError::InvalidCursor(_)) => {
            let message = err.to_string();
            assert!(
                message.contains("shard 0") && message.contains("1000") && message.contains("sequence 6"),
                "{message}"
            );
        }
        other => panic!("a cursor past the stream's end gave {other:?}"),
    }
    let b = bus.clone();
    let page = block(async move { b.poll(ConsumeRequest::new(10).from(tail)).await }).unwrap();
    assert!(page.events.is_empty() && !page.has_more);
    shutdown(bus);
}

#[test]
fn poll_over_a_trimmed_prefix_starts_at_the_first_retained_and_reports_missed() {
    let server = server();
    let prefix = unique_prefix("trim");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let bus = bus(1, js_config(&server.url, &prefix).max_msgs(100));
    for i in 0..1_000 {
        bus.ingest_raw(RawEvent::from_bytes(payload("t", i))).unwrap();
    }
    flush(&bus);
    let b = bus.clone();
    let page = block(async move { b.poll(ConsumeRequest::new(10)).await }).unwrap();
    assert_eq!(page.missed, 900);
    assert_eq!(page.events.len(), 10);
    assert_eq!(page.events[0].sequence, 901, "first retained stream sequence");
    assert_eq!(page.events[0].payload.as_ref(), payload("t", 900).as_slice());
    assert!(page.has_more);
    let (rest, _, missed) = drain(&bus, 37, Some(page.cursor));
    assert_eq!(missed, 0, "missed is reported once");
    assert_eq!(rest.len(), 90);
    assert_eq!(rest.last().unwrap().payload.as_ref(), payload("t", 999).as_slice());
    assert_eq!(bus.stats().snapshot().events_trimmed, 900);
    shutdown(bus);
}

#[test]
fn long_poll_wakes_on_an_event_from_another_bus() {
    let server = server();
    let prefix = unique_prefix("wait");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let reader = bus(2, js_config(&server.url, &prefix));
    let writer = bus(2, js_config(&server.url, &prefix));
    let (_, cursor, _) = drain(&reader, 10, None);
    let w = writer.clone();
    let publish = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        w.ingest_raw(RawEvent::from_bytes(payload("w", 1))).unwrap();
        flush(&w);
    });
    let r = reader.clone();
    let started = Instant::now();
    let page =
        block(async move { r.poll(ConsumeRequest::new(10).from(cursor).wait(Duration::from_secs(20))).await }).unwrap();
    let elapsed = started.elapsed();
    publish.join().unwrap();
    assert_eq!(page.events.len(), 1, "woke without the event");
    assert_eq!(page.events[0].payload.as_ref(), payload("w", 1).as_slice());
    assert!(elapsed < Duration::from_secs(5), "the wait was not woken by the server: {elapsed:?}");
    // With nothing new, the wait lasts until its deadline and returns empty.
    let r = reader.clone();
    let cursor = page.cursor;
    let started = Instant::now();
    let page =
        block(async move { r.poll(ConsumeRequest::new(10).from(cursor).wait(Duration::from_millis(300))).await })
            .unwrap();
    assert!(page.events.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(300));
    shutdown(writer);
    shutdown(reader);
}

#[test]
fn config_validation_names_each_field() {
    let cases = [
        (r#""duplicate_window_ms":0"#, "adapter.duplicate_window_ms"),
        (r#""max_outstanding_acks":0"#, "adapter.max_outstanding_acks"),
        (r#""connect_timeout_ms":0"#, "adapter.connect_timeout_ms"),
        (r#""request_timeout_ms":0"#, "adapter.request_timeout_ms"),
        (r#""max_msgs":0"#, "adapter.max_msgs"),
        (r#""max_bytes":0"#, "adapter.max_bytes"),
        (r#""max_age_ms":0"#, "adapter.max_age_ms"),
        (r#""replicas":0"#, "adapter.replicas"),
        (r#""max_age_ms":1000,"duplicate_window_ms":2000"#, "adapter.duplicate_window_ms"),
        (r#""stream_prefix":"a.b""#, "adapter.stream_prefix"),
    ];
    for (fields, field) in cases {
        let json = format!(r#"{{"adapter":{{"type":"jetstream","url":"nats://127.0.0.1:4222",{fields}}}}}"#);
        let err = EventBusConfig::from_json(&json).unwrap_err();
        assert_eq!(err.field(), Some(field), "{json}: {err}");
    }
    let full = r#"{"adapter":{"type":"jetstream","url":"nats://127.0.0.1:4222","stream_prefix":"p",
        "storage":"memory","max_age_ms":60000,"max_msgs":10,"max_bytes":1000,"replicas":1,
        "duplicate_window_ms":1000,"max_outstanding_acks":10,"connect_timeout_ms":10,"request_timeout_ms":10}}"#;
    let config = EventBusConfig::from_json(full).unwrap();
    let AdapterConfig::JetStream(js) = &config.adapter else { panic!("not jetstream") };
    assert_eq!(js.storage, JetStreamStorage::Memory);
    assert_eq!(js.max_msgs, Some(10));
    let unknown = r#"{"adapter":{"type":"jetstream","max_msg":10}}"#;
    assert!(
        matches!(EventBusConfig::from_json(unknown), Err(ConfigError::Json(m)) if m.to_string().contains("max_msg"))
    );
}

#[test]
fn a_restarted_producer_with_a_persisted_identity_never_reuses_a_dedup_id() {
    let server = server();
    let prefix = unique_prefix("epoch");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let dir = tempfile::tempdir().unwrap();
    let nonce = dir.path().join("producer.nonce");
    let mut expected = HashSet::new();
    for run in ["first", "second"] {
        let config = EventBusConfig::builder()
            .shards(2)
            .backpressure(BackpressureMode::Block)
            .producer_nonce_path(&nonce)
            .adapter(js_config(&server.url, &prefix))
            .build()
            .unwrap();
        let bus = Arc::new(block(EventBus::new(config)).unwrap());
        for i in 0..1_000 {
            expected.insert(payload(run, i));
            bus.ingest_raw(RawEvent::from_bytes(payload(run, i))).unwrap();
        }
        flush(&bus);
        shutdown(bus);
    }
    let reader = bus(2, js_config(&server.url, &prefix));
    let (events, _, _) = drain(&reader, 500, None);
    assert_exactly_once(&events, &expected);
    shutdown(reader);
}

#[test]
fn a_stuck_server_fails_the_poll_within_the_request_timeout_and_reading_resumes_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(free_port(), dir.path());
    let bus = bus(2, js_config(&server.url(), "stuck").request_timeout_ms(500));
    let expected: HashSet<Vec<u8>> = (0..200).map(|i| payload("k", i)).collect();
    for p in &expected {
        bus.ingest_raw(RawEvent::from_bytes(p.clone())).unwrap();
    }
    flush(&bus);
    let b = bus.clone();
    let first = block(async move { b.poll(ConsumeRequest::new(50)).await }).unwrap();
    assert_eq!(first.events.len(), 50);

    server.pause();
    let b = bus.clone();
    let cursor = first.cursor.clone();
    let started = Instant::now();
    let stuck = block(async move { b.poll(ConsumeRequest::new(50).from(cursor)).await });
    let elapsed = started.elapsed();
    server.resume();
    assert!(matches!(stuck, Err(purple_rain::ConsumerError::Adapter(_))), "a stuck read must fail: {stuck:?}");
    assert!(elapsed < Duration::from_secs(5), "the read was not bounded by the request timeout: {elapsed:?}");

    // The failed poll moved nothing: the same cursor continues exactly once.
    let (rest, _, _) = drain(&bus, 50, Some(first.cursor));
    let mut all = first.events;
    all.extend(rest);
    assert_exactly_once(&all, &expected);
    shutdown(bus);
}

#[test]
fn reading_continues_across_a_server_restart_with_the_same_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(free_port(), dir.path());
    let adapter = AdapterConfig::jetstream(server.url())
        .stream_prefix("reread")
        .storage(JetStreamStorage::File)
        .request_timeout_ms(1_000);
    let bus = bus(2, adapter);
    let expected: HashSet<Vec<u8>> = (0..2_000).map(|i| payload("q", i)).collect();
    for p in &expected {
        bus.ingest_raw(RawEvent::from_bytes(p.clone())).unwrap();
    }
    flush(&bus);
    // This read leaves a positioned consumer behind; the restart removes it from the server.
    let b = bus.clone();
    let first = block(async move { b.poll(ConsumeRequest::new(300)).await }).unwrap();
    assert_eq!(first.events.len(), 300);
    server.restart();
    let b = bus.clone();
    let cursor = first.cursor.clone();
    // The client reconnects by itself; the first poll after may still meet the outage.
    let second = block(async move {
        let started = Instant::now();
        loop {
            match b.poll(ConsumeRequest::new(300).from(cursor.clone())).await {
                Ok(page) => return page,
                Err(_) if started.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no read after the restart: {e}"),
            }
        }
    });
    let (rest, _, _) = drain(&bus, 300, Some(second.cursor));
    let mut all = first.events;
    all.extend(second.events);
    all.extend(rest);
    assert_exactly_once(&all, &expected);
    shutdown(bus);
}

#[test]
fn an_existing_stream_takes_new_limits_but_never_another_storage_type() {
    let server = server();
    let prefix = unique_prefix("verify");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let first = bus(1, js_config(&server.url, &prefix));
    for i in 0..300 {
        first.ingest_raw(RawEvent::from_bytes(payload("v", i))).unwrap();
    }
    flush(&first);
    shutdown(first);
    // A bus with a tighter bound brings the stream to it.
    let second = bus(1, js_config(&server.url, &prefix).max_msgs(100));
    let (events, _, missed) = drain(&second, 1_000, None);
    assert_eq!((events.len(), missed), (100, 200));
    shutdown(second);
    // Another storage type would need the stream recreated, losing it: refused, by field name.
    let config = EventBusConfig::builder()
        .shards(1)
        .adapter(js_config(&server.url, &prefix).storage(JetStreamStorage::File))
        .build()
        .unwrap();
    match block(EventBus::new(config)) {
        Err(ConfigError::Adapter(e)) => assert!(e.to_string().contains("adapter.storage"), "{e}"),
        other => panic!("expected the storage mismatch to be refused, got {other:?}"),
    }
}

#[test]
fn a_stream_lost_with_a_memory_server_is_recreated_on_the_next_publish() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(free_port(), dir.path());
    let adapter = AdapterConfig::jetstream(server.url())
        .stream_prefix("lost")
        .storage(JetStreamStorage::Memory)
        .request_timeout_ms(1_000);
    let bus = patient_bus(adapter);
    for i in 0..100 {
        bus.ingest_raw(RawEvent::from_bytes(payload("before", i))).unwrap();
    }
    flush(&bus);
    server.restart();
    // The memory streams are gone; the adapter recreates them when a publish finds no stream.
    let expected: HashSet<Vec<u8>> = (0..1_000).map(|i| payload("after", i)).collect();
    for p in &expected {
        bus.ingest_raw(RawEvent::from_bytes(p.clone())).unwrap();
    }
    flush(&bus);
    let stats = bus.stats().snapshot();
    assert_eq!(stats.events_dropped, 0, "{stats:?}");
    assert!(stats.retries > 0, "the lost stream was never noticed: {stats:?}");
    let (events, _, _) = drain(&bus, 400, None);
    assert_exactly_once(&events, &expected);
    shutdown(bus);
}

/// Failure mode 30: a shard whose read fails makes the whole poll fail, never a page of the
/// other shards reported as complete. Shard 1's stream is replaced out of band by one that
/// holds an event but refuses a reader (its only consumer slot is taken).
#[test]
fn a_shard_that_cannot_be_read_fails_the_poll_instead_of_being_skipped() {
    let server = server();
    let prefix = unique_prefix("failshard");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let bus = bus(2, js_config(&server.url, &prefix).request_timeout_ms(2_000));
    for i in 0..200 {
        bus.ingest_raw(RawEvent::from_bytes(payload("failshard", i))).unwrap();
    }
    flush(&bus);
    let (events, _, _) = drain(&bus, 1000, None);
    assert_eq!(events.len(), 200);
    assert!(events.iter().any(|e| e.shard == 0) && events.iter().any(|e| e.shard == 1));

    let (url, name, subject) = (server.url.clone(), format!("{prefix}_1"), format!("{prefix}.1"));
    block(async move {
        let js = async_nats::jetstream::new(async_nats::connect(url).await?);
        let mut config = js.get_stream(&name).await?.info().await?.config.clone();
        js.delete_stream(&name).await?;
        config.max_consumers = 1;
        let stream = js.create_stream(config).await?;
        let squatter = async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("squatter".into()),
            ..Default::default()
        };
        stream.create_consumer(squatter).await?;
        js.publish(subject, "{\"late\":true}".into()).await?.await?;
        Ok::<(), async_nats::Error>(())
    })
    .unwrap();

    let bus_for_poll = bus.clone();
    let outcome = block(async move { bus_for_poll.poll(ConsumeRequest::new(1000)).await });
    let error = match outcome {
        Ok(page) => {
            panic!("poll skipped the unreadable shard: {} events, has_more {}", page.events.len(), page.has_more)
        }
        Err(e) => e.to_string(),
    };
    assert!(error.contains(&format!("{prefix}_1")), "the error does not name the stream: {error}");
    shutdown(bus);
}

/// Issue 16, items 5 and 6: once the client knows the server is gone, publishes fail at once
/// instead of waiting out the request timeout (10 s here) per batch; a flush with a deadline
/// returns `Timeout` on time, and with the default retry budget a 2-second restart loses
/// nothing.
#[test]
fn a_stopped_server_fails_publishes_fast_and_a_two_second_restart_with_default_retry_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = NatsServer::start(port, dir.path());
    let adapter = AdapterConfig::jetstream(server.url())
        .stream_prefix("fastfail")
        .storage(JetStreamStorage::File)
        .request_timeout_ms(10_000);
    let bus = bus(2, adapter);
    let n = 20_000;
    let producer = OutageProducer::start(&bus, "f", n, Duration::from_millis(2));
    while bus.stats().snapshot().events_dispatched < 2_000 {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.stop();
    let outage = Instant::now();
    producer.broker_down();
    while bus.stats().snapshot().retries == 0 {
        let waited = outage.elapsed();
        assert!(waited < Duration::from_secs(3), "no publish failed within {waited:?} of the stop");
        std::thread::sleep(Duration::from_millis(2));
    }
    let deadline = Duration::from_millis(500);
    let started = Instant::now();
    let timed_out = block({
        let bus = bus.clone();
        async move { bus.flush_timeout(deadline).await }
    });
    let waited = started.elapsed();
    assert!(
        matches!(timed_out, Err(purple_rain::FlushError::Timeout { undelivered, dropped: 0 }) if undelivered > 0),
        "{timed_out:?}"
    );
    assert!(waited >= deadline && waited < deadline + Duration::from_secs(1), "waited {waited:?}");
    // The rest of a 2-second outage (the fault's duration, not a wait for a result).
    std::thread::sleep(Duration::from_secs(2).saturating_sub(outage.elapsed()));
    let _restarted = NatsServer::start(port, dir.path());
    producer.finish();
    flush(&bus);
    let stats = bus.stats().snapshot();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!((stats.events_ingested, stats.events_dropped), (n as u64, 0), "{stats:?}");
    let expected: HashSet<Vec<u8>> = (0..n).map(|i| payload("f", i)).collect();
    let (events, _, _) = drain(&bus, 5_000, None);
    assert_exactly_once(&events, &expected);
    shutdown(bus);
}

/// Issue 16, item 1: two live buses started from copies of one identity file (same producer id,
/// same epoch) publish to one set of streams at once; every event of both is stored exactly
/// once (their `Nats-Msg-Id`s differ by the run each start draws).
#[test]
fn two_live_buses_from_copies_of_one_identity_file_store_every_event_exactly_once() {
    let server = server();
    let prefix = unique_prefix("copied");
    let _streams = Streams { url: server.url.clone(), prefix: prefix.clone() };
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("producer.nonce");
    ProducerIdentity::load_and_advance(&original).unwrap();
    let copy = dir.path().join("copy.nonce");
    std::fs::copy(&original, &copy).unwrap();
    let start = |nonce: &std::path::Path| {
        let config = EventBusConfig::builder()
            .shards(2)
            .backpressure(BackpressureMode::Block)
            .producer_nonce_path(nonce)
            .adapter(js_config(&server.url, &prefix))
            .build()
            .unwrap();
        Arc::new(block(EventBus::new(config)).unwrap())
    };
    let (a, b) = (start(&original), start(&copy));
    let (pa, pb) = (a.producer(), b.producer());
    assert_eq!((pa.id, pa.epoch), (pb.id, pb.epoch), "the copies are one producer at one start count");
    let n = 20_000;
    let producers: Vec<_> = [(a.clone(), "a"), (b.clone(), "b")]
        .into_iter()
        .map(|(bus, tag)| {
            std::thread::spawn(move || {
                for i in 0..n {
                    bus.ingest_raw(RawEvent::from_bytes(payload(tag, i))).unwrap();
                }
            })
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    for bus in [a, b] {
        flush(&bus);
        let stats = bus.stats().snapshot();
        assert_eq!((stats.events_dispatched, stats.events_dropped), (n as u64, 0), "{stats:?}");
        shutdown(bus);
    }
    let reader = bus(2, js_config(&server.url, &prefix));
    let (events, _, _) = drain(&reader, 5_000, None);
    let expected: HashSet<Vec<u8>> = (0..n).flat_map(|i| [payload("a", i), payload("b", i)]).collect();
    assert_exactly_once(&events, &expected);
    shutdown(reader);
}

/// The adapter's figures in `stats_prometheus()` (read back by `prometheus_client`) and
/// `stats_json()`: up, requests and bytes counted; down while the server is stopped; up again
/// after it restarts, with the reconnect counted.
#[test]
fn connection_state_and_client_counters_are_exported_and_follow_a_restart() {
    use common::prometheus::{json_metric as metric, scraped as figure};
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(free_port(), dir.path());
    let adapter = AdapterConfig::jetstream(server.url())
        .stream_prefix("metrics")
        .storage(JetStreamStorage::File)
        .request_timeout_ms(1_000);
    let bus = bus(2, adapter);
    let wait_for = |bus: &EventBus, name: &str, want: &dyn Fn(f64) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !metric(bus, name).is_some_and(want) {
            assert!(Instant::now() < deadline, "{name} never reached the expected value: {:?}", metric(bus, name));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    bus.ingest_raw(RawEvent::from_bytes(&b"{\"n\":1}"[..])).unwrap();
    flush(&bus);
    let b = bus.clone();
    block(async move { b.poll(ConsumeRequest::new(10)).await }).unwrap();
    assert_eq!(figure(&bus, "jetstream_up"), Some(1.0));
    assert_eq!(figure(&bus, "jetstream_reconnects_total"), Some(0.0));
    assert!(figure(&bus, "jetstream_read_requests_total").is_some_and(|n| n >= 1.0));
    assert!(figure(&bus, "jetstream_sent_bytes_total").is_some_and(|n| n >= 7.0), "the payload was sent");
    assert_eq!(metric(&bus, "jetstream_up"), Some(1.0));

    server.stop();
    wait_for(&bus, "jetstream_up", &|up| up == 0.0);
    assert_eq!(figure(&bus, "jetstream_up"), Some(0.0));
    server.restart();
    wait_for(&bus, "jetstream_up", &|up| up == 1.0);
    wait_for(&bus, "jetstream_reconnects_total", &|n| n >= 1.0);
    assert!(figure(&bus, "jetstream_reconnects_total").is_some_and(|n| n >= 1.0));
    shutdown(bus);
}
