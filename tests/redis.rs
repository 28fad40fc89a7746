//! The Redis Streams adapter against real servers: the shared one on 127.0.0.1:6379 (a unique
//! prefix per test), or a private `redis-server` on a free port for tests that kill, pause or
//! restart it. Run with `cargo test --features redis --test redis`.
#![cfg(feature = "redis")]

mod common;

use common::redis::{shared_url, PrefixGuard, RedisServer, ReplyDropProxy, SilentServer};
use common::{payload, OutageProducer};
use purple_rain::{
    AdapterConfig, AdapterError, BackpressureMode, BatchConfig, ConfigError, ConsumeRequest, ConsumerError, EventBus,
    EventBusConfig, Filter, Ordering, RawEvent, RedisAdapterConfig, RetryPolicy, StoredEvent,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Polls from `cursor` until nothing is left, with nothing missed; returns the events and the
/// final cursor.
async fn drain(bus: &EventBus, cursor: Option<String>, limit: usize) -> (Vec<StoredEvent>, String) {
    let mut request = ConsumeRequest::new(limit);
    request.from_id = cursor;
    let drained = common::drain(bus, request).await;
    assert_eq!(drained.missed, 0);
    (drained.events, drained.cursor)
}

/// Every shard's events in strictly increasing sequence and timestamp order.
fn assert_ordered_per_shard(events: &[StoredEvent]) {
    let mut last: HashMap<u16, (u64, u64)> = HashMap::new();
    for e in events {
        if let Some(&(seq, ts)) = last.get(&e.shard) {
            assert!(e.sequence > seq, "shard {} sequence {} after {}", e.shard, e.sequence, seq);
            assert!(e.timestamp_ns > ts, "shard {} timestamp {} after {}", e.shard, e.timestamp_ns, ts);
        }
        assert_eq!(e.id, format!("0-{}", e.sequence));
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
/// `XRANGE` as `(id, [(field, value)])`.
type RangeReply = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// An entry's stamp (`"{timestamp_ns} {dedup_id}"`) and payload, from its one field `e`.
fn entry_parts(fields: Vec<(String, Vec<u8>)>) -> (String, Vec<u8>) {
    let field = fields.into_iter().find(|(k, _)| k == "e").expect("field e").1;
    let newline = field.iter().position(|&b| b == b'\n').expect("a newline after the stamp");
    (String::from_utf8(field[..newline].to_vec()).expect("an ASCII stamp"), field[newline + 1..].to_vec())
}

fn stream_contents(conn: &mut redis::Connection, prefix: &str) -> HashMap<Vec<u8>, usize> {
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query(conn).unwrap();
    let mut seen = HashMap::new();
    for key in keys.iter().filter(|k| k[prefix.len() + 1..].parse::<u16>().is_ok()) {
        let entries: RangeReply = redis::cmd("XRANGE").arg(key).arg("-").arg("+").query(conn).unwrap();
        for (_, fields) in entries {
            *seen.entry(entry_parts(fields).1).or_insert(0) += 1;
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

    // Pages of 20000 are 5000 per shard: each shard read is split across connections.
    let (events, cursor) = drain(&bus, None, 20_000).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn two_buses_publish_into_one_prefix_and_a_third_polls_both_exactly_once() {
    let guard = PrefixGuard::new(shared_url(), "twobuses");
    let a = Arc::new(bus(4, redis_config(&guard.url, &guard.prefix)).await);
    let b = Arc::new(bus(4, redis_config(&guard.url, &guard.prefix)).await);
    const N: usize = 20_000;
    // Concurrently, so their batches interleave in every stream.
    tokio::join!(ingest_all(&a, "a", 0..N), ingest_all(&b, "b", 0..N));
    a.flush().await.unwrap();
    b.flush().await.unwrap();

    // A poller that publishes nothing and routes to fewer shards still finds every stream.
    let poller = bus(2, redis_config(&guard.url, &guard.prefix)).await;
    let (events, _) = drain(&poller, None, 3_000).await;
    assert_eq!(events.len(), 2 * N);
    let seen = count_payloads(&events);
    for tag in ["a", "b"] {
        assert!((0..N).all(|i| seen.get(&payload(tag, i)) == Some(&1)), "every event of bus {tag} once");
    }
    assert_ordered_per_shard(&events);
    // Positions are dense per stream: the two producers never collide on one.
    let mut per_shard: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
    for e in &events {
        per_shard.entry(e.shard).or_default().push(e.sequence);
    }
    assert_eq!(per_shard.len(), 4);
    for (shard, seqs) in per_shard {
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "shard {shard}");
    }
    // Every entry's dedup id names the bus that produced it, once; timestamps that another
    // producer forced forward (restamped in the script) keep their dedup ids too.
    let mut conn = redis::Client::open(guard.url.as_str()).unwrap().get_connection().unwrap();
    let mut dedup_ids = HashSet::new();
    for shard in 0..4 {
        let entries: RangeReply =
            redis::cmd("XRANGE").arg(format!("{}:{shard}", guard.prefix)).arg("-").arg("+").query(&mut conn).unwrap();
        for (_, fields) in entries {
            let (stamp, payload) = entry_parts(fields);
            let (_ts, dedup) = stamp.split_once(' ').unwrap();
            let producer = if payload.starts_with(br#"{"src":"a""#) { a.producer() } else { b.producer() };
            assert!(dedup.starts_with(&format!("{}:{shard}:", producer.run_key())), "{dedup}");
            assert!(dedup_ids.insert(dedup.to_owned()), "dedup id {dedup} twice");
        }
    }
    assert_eq!(dedup_ids.len(), 2 * N);
    // A timestamp-ordered read is a total order too.
    let page = poller.poll(ConsumeRequest::new(1_000).ordering(Ordering::Timestamp)).await.unwrap();
    let keys: Vec<_> = page.events.iter().map(|e| (e.timestamp_ns, e.shard, e.sequence)).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
}

/// A stream whose last timestamp is ahead of this producer's clock (another producer's, or a
/// clock step): the script restamps every entry after it and must keep payload and dedup id.
#[tokio::test(flavor = "multi_thread")]
async fn entries_restamped_by_the_script_keep_their_payloads_and_dedup_ids() {
    let guard = PrefixGuard::new(shared_url(), "restamp");
    let mut conn = redis::Client::open(guard.url.as_str()).unwrap().get_connection().unwrap();
    let ahead_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 + 3_600_000;
    let _: () = redis::cmd("HSET")
        .arg(format!("{}:0:meta", guard.prefix))
        .arg("tms")
        .arg(ahead_ms)
        .arg("tns")
        .arg(999_998)
        .query(&mut conn)
        .unwrap();
    let bus = bus(1, redis_config(&guard.url, &guard.prefix)).await;
    // Newlines in payloads: the stamp ends at the first one, the payload is everything after.
    let payloads: Vec<Vec<u8>> = (0..5).map(|i| format!("line {i}\n{{\"i\":{i}}}\n").into_bytes()).collect();
    bus.ingest_raw_batch(payloads.iter().cloned().map(RawEvent::from_bytes)).1.unwrap();
    bus.flush().await.unwrap();

    let (events, _) = drain(&bus, None, 10).await;
    assert_eq!(events.iter().map(|e| e.payload.to_vec()).collect::<Vec<_>>(), payloads);
    let first_ns = ahead_ms * 1_000_000 + 999_999;
    let stamps: Vec<u64> = events.iter().map(|e| e.timestamp_ns).collect();
    assert_eq!(stamps, (first_ns..first_ns + 5).collect::<Vec<_>>(), "restamped past the stream's last timestamp");
    let producer = bus.producer();
    let entries: RangeReply =
        redis::cmd("XRANGE").arg(format!("{}:0", guard.prefix)).arg("-").arg("+").query(&mut conn).unwrap();
    for (i, (_, fields)) in entries.into_iter().enumerate() {
        let (stamp, payload) = entry_parts(fields);
        let dedup = format!("{}:0:{}", producer.run_key(), i + 1);
        assert_eq!(stamp, format!("{} {dedup}", first_ns + i as u64));
        assert_eq!(payload, payloads[i]);
    }
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_retried_after_its_reply_was_lost_is_written_once() {
    let server = RedisServer::start();
    let proxy = ReplyDropProxy::start(server.port);
    let config = EventBusConfig::builder()
        .shards(1)
        .backpressure(BackpressureMode::Block)
        .batch(
            BatchConfig::default()
                .max_events(2_000)
                .retry(RetryPolicy::default().max_attempts(10).initial_backoff_ms(5).max_backoff_ms(100)),
        )
        .adapter(redis_config(&proxy.url(), "lost").pipeline_chunk(100))
        .build()
        .unwrap();
    let bus = Arc::new(EventBus::new(config).await.unwrap());
    // Warm up: the script is loaded, so the dropped reply is the one to a real append.
    ingest_all(&bus, "warm", 0..10).await;
    bus.flush().await.unwrap();

    proxy.arm();
    ingest_all(&bus, "x", 0..1_000).await;
    bus.flush().await.unwrap();
    assert_eq!(proxy.dropped(), 1, "the proxy dropped one reply");
    let stats = bus.stats().snapshot();
    assert!(stats.retries >= 1, "the batch was retried: {stats:?}");
    assert_eq!((stats.events_dispatched, stats.events_dropped), (1_010, 0));

    let mut conn = server.connection();
    let contents = stream_contents(&mut conn, "lost");
    assert_eq!(contents.values().sum::<usize>(), 1_010, "no duplicate entries");
    assert!((0..1_000).all(|i| contents.get(&payload("x", i)) == Some(&1)));
    let len: u64 = redis::cmd("XLEN").arg("lost:0").query(&mut conn).unwrap();
    let last: Vec<(String, HashMap<String, Vec<u8>>)> =
        redis::cmd("XREVRANGE").arg("lost:0").arg("+").arg("-").arg("COUNT").arg(1).query(&mut conn).unwrap();
    assert_eq!(last[0].0, format!("0-{len}"), "positions stay dense");
    Arc::into_inner(bus).unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_and_restarted_mid_ingest_keeps_stats_balanced_and_events_exactly_once() {
    let mut server = RedisServer::start_persistent();
    let config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1 << 15)
        .backpressure(BackpressureMode::Block)
        .batch(
            BatchConfig::default()
                .retry(RetryPolicy::default().max_attempts(60).initial_backoff_ms(5).max_backoff_ms(200)),
        )
        .adapter(redis_config(&server.url(), "crash").connect_timeout_ms(300).command_timeout_ms(1_000))
        .build()
        .unwrap();
    let bus = Arc::new(EventBus::new(config).await.unwrap());
    // A consumer reads part of the stream before the crash and resumes after it.
    ingest_all(&bus, "pre", 0..1_000).await;
    bus.flush().await.unwrap();
    let before = bus.poll(ConsumeRequest::new(500)).await.unwrap();
    assert_eq!(before.events.len(), 500);

    // The second half is ingested only once the server is dead, so the crash always meets
    // publishes in flight, whatever the machine's speed.
    const N: usize = 60_000;
    let producer = OutageProducer::start(&bus, "x", N, Duration::from_millis(5));
    while bus.stats().events_dispatched.get() < 10_000 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();
    producer.broker_down();
    let dead = std::time::Instant::now();
    while bus.stats().snapshot().retries == 0 {
        assert!(dead.elapsed() < Duration::from_secs(30), "publishing to a dead server never failed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.restart();
    tokio::task::block_in_place(|| producer.finish());
    bus.flush().await.unwrap();

    let stats = bus.stats().snapshot();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.events_ingested, (N + 1_000) as u64);
    assert!(stats.retries > 0, "the crash was not noticed: {stats:?}");
    assert_eq!(stats.events_dropped, 0, "the retry budget outlasts the restart: {stats:?}");

    let mut conn = server.connection();
    let contents = stream_contents(&mut conn, "crash");
    assert!(contents.values().all(|&n| n == 1), "a duplicate entry");
    assert_eq!(contents.len() as u64, stats.events_dispatched, "every dispatched event is stored once");
    assert!((0..N).all(|i| contents.contains_key(&payload("x", i))));

    // The pre-crash cursor resumes after the restart: no group state to lose, nothing repeats.
    let (rest, _) = drain(&bus, Some(before.cursor), 10_000).await;
    assert_eq!(rest.len(), N + 500);
    let mut all = before.events;
    all.extend(rest);
    assert!(count_payloads(&all).values().all(|&n| n == 1));
    Arc::into_inner(bus).unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_url_is_a_config_error_naming_the_field() {
    for url in ["http://127.0.0.1:6379", "redis://127.0.0.1:notaport", "redis://[::1"] {
        let config = EventBusConfig::builder().adapter(redis_config(url, "x")).build();
        let err = match config {
            Err(e) => e,
            Ok(config) => EventBus::new(config).await.unwrap_err(),
        };
        assert_eq!(err.field(), Some("adapter.url"), "{url}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_fails_within_the_connect_timeout_naming_the_address() {
    // Refused at once, and accepted-but-silent (a hung server): both bounded by the timeout.
    let refused = common::free_port();
    let silent = SilentServer::start();
    for port in [refused, silent.port] {
        let config = bus_config(1, redis_config(&format!("redis://127.0.0.1:{port}"), "x").connect_timeout_ms(300));
        let started = Instant::now();
        let err = EventBus::new(config).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(300 + 700), "took {elapsed:?}");
        let ConfigError::Adapter(AdapterError::Connection(message)) = &err else { panic!("{err:?}") };
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_wakes_on_an_event_published_by_another_bus() {
    let guard = PrefixGuard::new(shared_url(), "longpoll");
    let poller = Arc::new(bus(4, redis_config(&guard.url, &guard.prefix)).await);
    let publisher = Arc::new(bus(4, redis_config(&guard.url, &guard.prefix)).await);
    let empty = poller.poll(ConsumeRequest::new(10)).await.unwrap();
    assert!(empty.events.is_empty());
    let waiter = {
        let poller = poller.clone();
        tokio::spawn(async move {
            let request = ConsumeRequest::new(10).from(empty.cursor).wait(Duration::from_secs(10));
            let page = poller.poll(request).await.unwrap();
            (page, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let published = Instant::now();
    ingest_all(&publisher, "other", 0..1).await;
    let (page, woke) = waiter.await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].payload.as_ref(), payload("other", 0));
    let latency = woke.duration_since(published);
    assert!(latency < Duration::from_millis(1_000), "woke {latency:?} after the publish");

    // With nothing published, the wait ends at its deadline, empty.
    let started = Instant::now();
    let page = poller.poll(ConsumeRequest::new(10).from(page.cursor).wait(Duration::from_millis(300))).await.unwrap();
    assert!(page.events.is_empty());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(280) && waited < Duration::from_millis(1_500), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trimmed_prefix_is_reported_missed_never_skipped_silently() {
    let guard = PrefixGuard::new(shared_url(), "trim");
    let bus = Arc::new(bus(1, redis_config(&guard.url, &guard.prefix).maxlen(100)).await);
    ingest_all(&bus, "t", 0..50).await;
    bus.flush().await.unwrap();
    let first = bus.poll(ConsumeRequest::new(10)).await.unwrap();
    assert_eq!((first.events.len(), first.missed), (10, 0));
    ingest_all(&bus, "t", 50..2_000).await;
    bus.flush().await.unwrap();
    assert!(bus.stats().events_trimmed() > 0);
    let next = bus.poll(ConsumeRequest::new(10).from(first.cursor)).await.unwrap();
    assert!(next.missed > 0, "positions 11.. were trimmed");
    // Exactly the gap: the page resumes at the oldest retained event.
    assert_eq!(next.events[0].sequence, 11 + next.missed);
    let retained: u64 = {
        let mut conn = redis::Client::open(guard.url.as_str()).unwrap().get_connection().unwrap();
        redis::cmd("XLEN").arg(format!("{}:0", guard.prefix)).query(&mut conn).unwrap()
    };
    assert_eq!(next.missed + retained, 2_000 - 10, "missed + retained = everything past the cursor");
    assert_eq!(bus.stats().events_trimmed() + retained, 2_000, "every trim is counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_read_over_a_trimmed_range_resumes_at_the_oldest_and_counts_the_gap() {
    let guard = PrefixGuard::new(shared_url(), "splittrim");
    let bus = Arc::new(bus(1, redis_config(&guard.url, &guard.prefix).maxlen(3_000)).await);
    ingest_all(&bus, "t", 0..20).await;
    bus.flush().await.unwrap();
    let first = bus.poll(ConsumeRequest::new(10)).await.unwrap();
    ingest_all(&bus, "t", 20..20_000).await;
    bus.flush().await.unwrap();
    // 10000 entries from position 11 are split in four parts; all but the last are trimmed.
    let next = bus.poll(ConsumeRequest::new(10_000).from(first.cursor)).await.unwrap();
    let oldest = next.events[0].sequence;
    assert_eq!(next.missed, oldest - 11);
    assert_eq!(next.missed + next.events.len() as u64, 20_000 - 10);
    assert!(next.events.windows(2).all(|w| w[1].sequence == w[0].sequence + 1));
    assert!(!next.has_more);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_shard_fails_the_poll_instead_of_a_partial_page() {
    let guard = PrefixGuard::new(shared_url(), "failshard");
    let bus = Arc::new(bus(2, redis_config(&guard.url, &guard.prefix)).await);
    ingest_all(&bus, "f", 0..100).await;
    bus.flush().await.unwrap();
    let mut conn = redis::Client::open(guard.url.as_str()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("DEL").arg(format!("{}:1", guard.prefix)).query(&mut conn).unwrap();
    let _: () = redis::cmd("SET").arg(format!("{}:1", guard.prefix)).arg("not a stream").query(&mut conn).unwrap();
    let err = bus.poll(ConsumeRequest::new(1_000)).await.unwrap_err();
    let ConsumerError::Adapter(AdapterError::Fatal(message)) = &err else { panic!("{err:?}") };
    assert!(message.contains("shard 1") && message.contains("WRONGTYPE"), "{message}");
    // The healthy shard alone still reads.
    let page = bus.poll(ConsumeRequest::new(1_000).shards(vec![0])).await.unwrap();
    assert!(!page.events.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_chunk_inside_a_pipeline_fails_the_batch_not_counted_dispatched() {
    let guard = PrefixGuard::new(shared_url(), "failchunk");
    let mut conn = redis::Client::open(guard.url.as_str()).unwrap().get_connection().unwrap();
    let bus = Arc::new(bus(1, redis_config(&guard.url, &guard.prefix).pipeline_chunk(10)).await);
    let _: () = redis::cmd("SET").arg(format!("{}:0", guard.prefix)).arg("not a stream").query(&mut conn).unwrap();
    ingest_all(&bus, "w", 0..100).await;
    bus.flush().await.unwrap();
    let stats = bus.stats().snapshot();
    assert_eq!((stats.events_dispatched, stats.dropped_adapter_fatal), (0, 100), "{stats:?}");
    assert!(stats.is_balanced());
    assert!(bus.stats().last_adapter_error().unwrap().contains("WRONGTYPE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_server_times_reads_and_writes_out_instead_of_hanging() {
    let mut server = RedisServer::start();
    let config = EventBusConfig::builder()
        .shards(1)
        .backpressure(BackpressureMode::Block)
        .batch(
            BatchConfig::default()
                .retry(RetryPolicy::default().max_attempts(2).initial_backoff_ms(10).max_backoff_ms(20)),
        )
        .adapter(redis_config(&server.url(), "stuck").command_timeout_ms(300))
        .build()
        .unwrap();
    let bus = Arc::new(EventBus::new(config).await.unwrap());
    ingest_all(&bus, "s", 0..10).await;
    bus.flush().await.unwrap();
    server.pause();

    let started = Instant::now();
    let err = bus.poll(ConsumeRequest::new(10)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1_500), "{:?}", started.elapsed());
    assert!(matches!(err, ConsumerError::Adapter(AdapterError::Transient(ref m)) if m.contains("no reply")), "{err:?}");

    let started = Instant::now();
    ingest_all(&bus, "s", 10..20).await;
    bus.flush().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(3_000), "{:?}", started.elapsed());
    let stats = bus.stats().snapshot();
    assert_eq!(stats.dropped_retry_exhausted, 10, "{stats:?}");
    assert!(stats.is_balanced());

    server.resume();
    ingest_all(&bus, "s", 20..30).await;
    bus.flush().await.unwrap();
    assert_eq!(bus.stats().events_dispatched.get(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_producer_with_a_persisted_identity_is_not_taken_for_its_former_run() {
    let guard = PrefixGuard::new(shared_url(), "epoch");
    let dir = tempfile::tempdir().unwrap();
    let nonce = dir.path().join("producer.nonce");
    let config = || {
        EventBusConfig::builder()
            .shards(2)
            .backpressure(BackpressureMode::Block)
            .producer_nonce_path(&nonce)
            .adapter(redis_config(&guard.url, &guard.prefix))
            .build()
            .unwrap()
    };
    let mut runs = Vec::new();
    for run in ["first", "second"] {
        let bus = Arc::new(EventBus::new(config()).await.unwrap());
        runs.push(bus.producer());
        ingest_all(&bus, run, 0..500).await;
        Arc::into_inner(bus).unwrap().shutdown().await.unwrap();
    }
    assert_eq!(runs[0].id, runs[1].id);
    assert_ne!(runs[0].epoch, runs[1].epoch);
    let poller = bus(2, redis_config(&guard.url, &guard.prefix)).await;
    let (events, _) = drain(&poller, None, 10_000).await;
    assert_eq!(events.len(), 1_000, "the second run's events are not dropped as duplicates");
    assert_ordered_per_shard(&events);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_take_one_round_trip_per_page_not_per_event() {
    let server = RedisServer::start();
    let bus = Arc::new(bus(1, redis_config(&server.url(), "rtt")).await);
    ingest_all(&bus, "r", 0..10_000).await;
    bus.flush().await.unwrap();
    let mut conn = server.connection();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut conn).unwrap();
    let (events, _) = drain(&bus, None, 1_000).await;
    assert_eq!(events.len(), 10_000);
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn).unwrap();
    let calls = |cmd: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    };
    let xrange = calls("xrange");
    assert!((10..=12).contains(&xrange), "{xrange} XRANGE calls for 10 pages\n{info}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filtered_poll_scans_past_rejected_events_and_resumes_exactly() {
    let guard = PrefixGuard::new(shared_url(), "filter");
    let bus = Arc::new(bus(1, redis_config(&guard.url, &guard.prefix).read_chunk(300)).await);
    ingest_all(&bus, "f", 0..5_000).await;
    bus.flush().await.unwrap();
    let filter = Filter::from_json(&serde_json::json!({"$in": {"path": "i", "value": [7, 2_500, 4_999]}})).unwrap();
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = ConsumeRequest::new(2).filter(filter.clone());
        if let Some(c) = cursor.take() {
            request = request.from(c);
        }
        let page = bus.poll(request).await.unwrap();
        found.extend(page.events.into_iter().map(|e| e.payload.to_vec()));
        cursor = Some(page.cursor);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(found, [payload("f", 7), payload("f", 2_500), payload("f", 4_999)]);
}

#[test]
fn config_rejects_zero_timeouts_chunks_and_bounds_naming_each_field() {
    let base = || AdapterConfig::redis("redis://127.0.0.1:6379");
    let cases = [
        (base().connect_timeout_ms(0), "adapter.connect_timeout_ms"),
        (base().command_timeout_ms(0), "adapter.command_timeout_ms"),
        (base().pipeline_chunk(0), "adapter.pipeline_chunk"),
        (base().pipeline_chunk(1 << 20), "adapter.pipeline_chunk"),
        (base().read_chunk(0), "adapter.read_chunk"),
        (base().maxlen(0), "adapter.maxlen"),
        (base().dedup_ttl_secs(0), "adapter.dedup_ttl_secs"),
        (base().stream_prefix("a:b"), "adapter.stream_prefix"),
    ];
    for (adapter, field) in cases {
        let err = EventBusConfig::builder().adapter(adapter).build().unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
    }
    // The JSON shape: defaults for what is left out, unknown keys refused.
    let config = EventBusConfig::from_json(
        r#"{"adapter": {"type": "redis", "url": "redis://127.0.0.1:6379", "stream_prefix": "p", "maxlen": 10}}"#,
    )
    .unwrap();
    let AdapterConfig::Redis(redis) = config.adapter else { panic!() };
    assert_eq!((redis.maxlen, redis.pipeline_chunk, redis.command_timeout_ms), (Some(10), 512, 5_000));
    let err = EventBusConfig::from_json(r#"{"adapter": {"type": "redis", "pipeline": 5}}"#).unwrap_err();
    assert!(err.to_string().contains("pipeline"), "{err}");
    let err = EventBusConfig::from_json(r#"{"adapter": {"type": "redis", "command_timeout_ms": 0}}"#).unwrap_err();
    assert_eq!(err.field(), Some("adapter.command_timeout_ms"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_woken_in_process_leaves_no_blocked_read_on_the_server() {
    let server = RedisServer::start();
    let bus = Arc::new(bus(2, redis_config(&server.url(), "unblock")).await);
    let waiter = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.poll(ConsumeRequest::new(10).wait(Duration::from_secs(30))).await.unwrap() })
    };
    let mut conn = server.connection();
    let blocked = |conn: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("clients").query(conn).unwrap();
        info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).unwrap().trim().parse().unwrap()
    };
    let started = Instant::now();
    while blocked(&mut conn) == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "the long poll never blocked on the server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Published through this bus: the poll wakes in-process and drops its XREAD.
    ingest_all(&bus, "u", 0..1).await;
    let page = waiter.await.unwrap();
    assert_eq!(page.events.len(), 1);
    let started = Instant::now();
    while blocked(&mut conn) > 0 {
        assert!(started.elapsed() < Duration::from_secs(2), "an abandoned XREAD BLOCK is still blocked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_far_ahead_is_an_invalid_cursor_and_does_not_move_positions() {
    let guard = PrefixGuard::new(shared_url(), "farcursor");
    let bus = Arc::new(bus(1, redis_config(&guard.url, &guard.prefix)).await);
    ingest_all(&bus, "c", 0..3).await;
    bus.flush().await.unwrap();
    let mut ahead = purple_rain::consume::Cursor::start();
    ahead.advance(0, 1_000_000);
    match bus.poll(ConsumeRequest::new(10).from(ahead.encode())).await {
        Err(err @ ConsumerError::InvalidCursor(_)) => {
            let message = err.to_string();
            assert!(
                message.contains("shard 0") && message.contains("1000000") && message.contains("sequence 4"),
                "{message}"
            );
        }
        other => panic!("a cursor past the stream's end gave {other:?}"),
    }
    // At the tail, an empty page is no error.
    let (_, tail) = drain(&bus, None, 10).await;
    let page = bus.poll(ConsumeRequest::new(10).from(tail)).await.unwrap();
    assert!(page.events.is_empty() && !page.has_more);
    ingest_all(&bus, "c", 3..4).await;
    bus.flush().await.unwrap();
    let (events, _) = drain(&bus, None, 10).await;
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_carry_the_prefix_store_id_and_another_prefix_refuses_them() {
    let (one, two) = (PrefixGuard::new(shared_url(), "storeone"), PrefixGuard::new(shared_url(), "storetwo"));
    let first = Arc::new(bus(1, redis_config(&one.url, &one.prefix)).await);
    ingest_all(&first, "s", 0..5).await;
    first.flush().await.unwrap();
    let (events, cursor) = drain(&first, None, 2).await;
    assert_eq!(events.len(), 5);
    let stamped = purple_rain::consume::Cursor::decode(&cursor).unwrap();
    assert!(stamped.store().is_some(), "a Redis cursor names its store");
    // Another bus on the same prefix (a restart, a second consumer) is the same store.
    let again = bus(1, redis_config(&one.url, &one.prefix)).await;
    let page = again.poll(ConsumeRequest::new(10).from(cursor.clone())).await.unwrap();
    assert!(page.events.is_empty() && !page.has_more);
    assert_eq!(purple_rain::consume::Cursor::decode(&page.cursor).unwrap().store(), stamped.store());
    // Another prefix is another store: its positions are not this cursor's.
    let other = bus(1, redis_config(&two.url, &two.prefix)).await;
    match other.poll(ConsumeRequest::new(10).from(cursor)).await {
        Err(ConsumerError::InvalidCursor(message)) => assert!(message.contains("another store"), "{message}"),
        other => panic!("a cursor of another prefix gave {other:?}"),
    }
    for bus in [again, other] {
        bus.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn split_reads_racing_live_appends_never_skip_or_repeat() {
    let guard = PrefixGuard::new(shared_url(), "splitrace");
    let publisher = Arc::new(bus(1, redis_config(&guard.url, &guard.prefix)).await);
    let poller = bus(1, redis_config(&guard.url, &guard.prefix)).await;
    const N: usize = 60_000;
    let producing = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            for start in (0..N).step_by(500) {
                ingest_all(&publisher, "r", start..start + 500).await;
                publisher.flush().await.unwrap();
            }
        })
    };
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    let started = Instant::now();
    while events.len() < N {
        assert!(started.elapsed() < Duration::from_secs(60), "read {} of {N}", events.len());
        let mut request = ConsumeRequest::new(8_000).wait(Duration::from_millis(200));
        if let Some(c) = cursor.take() {
            request = request.from(c);
        }
        let page = poller.poll(request).await.unwrap();
        assert_eq!(page.missed, 0, "a race must never look like trimming");
        events.extend(page.events);
        cursor = Some(page.cursor);
    }
    producing.await.unwrap();
    assert_eq!(events.len(), N);
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), (1..=N as u64).collect::<Vec<_>>());
    let seen = count_payloads(&events);
    assert!((0..N).all(|i| seen.get(&payload("r", i)) == Some(&1)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shard_restarted_within_a_run_never_reuses_sequences_its_mark_covers() {
    use purple_rain::{Adapter, Batch, ProducerIdentity};
    let guard = PrefixGuard::new(shared_url(), "restartshard");
    let adapter = purple_rain::adapter::RedisAdapter::new(redis_config(&guard.url, &guard.prefix)).unwrap();
    adapter.init().await.unwrap();
    let producer = ProducerIdentity::ephemeral();
    let batch = |first: u64, tag: &str| {
        let events = (0..10).map(|i| RawEvent::from_bytes(payload(tag, i))).collect();
        Batch::new(0, first, 1_764_000_000_000_000_000 + first, producer, events)
    };
    let mut conn = redis::Client::open(guard.url.as_str()).unwrap().get_connection().unwrap();
    let meta = format!("{}:0:meta", guard.prefix);

    let first = adapter.next_sequence(0).await.unwrap();
    adapter.on_batch(&batch(first, "a")).await.unwrap();
    // The next batch fails for good (the bus counts it dropped); the one after is written.
    let _: () = redis::cmd("SET").arg(&meta).arg("not a hash").query(&mut conn).unwrap();
    assert!(adapter.on_batch(&batch(first + 10, "b")).await.is_err());
    let _: () = redis::cmd("DEL").arg(&meta).query(&mut conn).unwrap();
    adapter.on_batch(&batch(first + 20, "c")).await.unwrap();

    // The shard is removed and added again in the same run: its sequences must continue past
    // everything offered, or the mark (at first + 29) would swallow new events.
    let restart = adapter.next_sequence(0).await.unwrap();
    assert!(restart >= first + 30, "{restart}");
    adapter.on_batch(&batch(restart, "d")).await.unwrap();
    let contents = stream_contents(&mut conn, &guard.prefix);
    assert_eq!(contents.len(), 30);
    assert!((0..10).all(|i| contents.contains_key(&payload("d", i))), "new events after the restart are stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_entry_neither_wakes_a_long_poll_repeatedly_nor_is_returned() {
    let server = RedisServer::start();
    let bus = Arc::new(bus(1, redis_config(&server.url(), "foreign")).await);
    ingest_all(&bus, "f", 0..3).await;
    bus.flush().await.unwrap();
    let (events, cursor) = drain(&bus, None, 10).await;
    assert_eq!(events.len(), 3);
    let mut conn = server.connection();
    let _: String = redis::cmd("XADD").arg("foreign:0").arg("*").arg("x").arg("y").query(&mut conn).unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut conn).unwrap();

    let started = Instant::now();
    let page = bus.poll(ConsumeRequest::new(10).from(cursor).wait(Duration::from_millis(500))).await.unwrap();
    assert!(page.events.is_empty(), "another writer's entry is not an event");
    assert!(started.elapsed() >= Duration::from_millis(450), "{:?}", started.elapsed());
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn).unwrap();
    let xreads: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_xread:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap());
    assert!(xreads <= 3, "{xreads} XREADs: the wait spun on the foreign entry");

    // Appending after it is refused for good (the stream's top id is no longer ours).
    ingest_all(&bus, "f", 3..4).await;
    bus.flush().await.unwrap();
    assert_eq!(bus.stats().snapshot().dropped_adapter_fatal, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn positions_are_not_reused_when_a_restarted_redis_lost_its_data() {
    let mut server = RedisServer::start();
    let config = EventBusConfig::builder()
        .shards(1)
        .backpressure(BackpressureMode::Block)
        .batch(
            BatchConfig::default()
                .retry(RetryPolicy::default().max_attempts(20).initial_backoff_ms(5).max_backoff_ms(100)),
        )
        .adapter(redis_config(&server.url(), "amnesia").connect_timeout_ms(300).command_timeout_ms(1_000))
        .build()
        .unwrap();
    let bus = Arc::new(EventBus::new(config).await.unwrap());
    ingest_all(&bus, "old", 0..100).await;
    bus.flush().await.unwrap();
    let (old, cursor) = drain(&bus, None, 1_000).await;
    assert_eq!(old.last().unwrap().sequence, 100);

    server.restart(); // nothing on disk: every stream, mark and position is gone
    ingest_all(&bus, "new", 0..100).await;
    bus.flush().await.unwrap();
    let stats = bus.stats().snapshot();
    assert!(stats.is_balanced() && stats.events_dropped == 0, "{stats:?}");

    // The old cursor goes on: the new events take positions after the ones already handed out.
    let (new, _) = drain(&bus, Some(cursor), 1_000).await;
    assert_eq!(new.iter().map(|e| e.sequence).collect::<Vec<_>>(), (101..=200).collect::<Vec<_>>());
    assert!(new.iter().all(|e| e.payload.starts_with(br#"{"src":"new""#)));
}

/// Issue 16, items 5 and 6: with the default retry policy a 2-second restart loses nothing, and
/// a flush with a deadline during the outage returns `Timeout` on time with the events still
/// queued, which the restarted server then receives exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_two_second_restart_with_the_default_retry_budget_drops_nothing_and_flush_keeps_its_deadline() {
    let mut server = RedisServer::start_persistent();
    let bus = Arc::new(bus(2, redis_config(&server.url(), "restart2s")).await);
    const N: usize = 20_000;
    let producer = OutageProducer::start(&bus, "r", N, Duration::from_millis(2));
    while bus.stats().events_dispatched.get() < 2_000 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();
    let outage = Instant::now();
    producer.broker_down();
    while bus.stats().snapshot().retries == 0 {
        assert!(outage.elapsed() < Duration::from_secs(10), "publishing to a dead server never failed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = Duration::from_millis(500);
    let started = Instant::now();
    let timed_out = bus.flush_timeout(deadline).await;
    let waited = started.elapsed();
    match timed_out {
        Err(purple_rain::FlushError::Timeout { undelivered, dropped }) => {
            assert!(undelivered > 0, "a batch is being retried, so something is undelivered");
            assert_eq!(dropped, 0);
        }
        other => panic!("a flush while the server is down must time out, got {other:?}"),
    }
    assert!(waited >= deadline && waited < deadline + Duration::from_secs(1), "waited {waited:?}");
    // The rest of a 2-second outage (the fault's duration, not a wait for a result).
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(outage.elapsed())).await;
    server.restart();
    tokio::task::block_in_place(|| producer.finish());
    let report = bus.flush_timeout(Duration::from_secs(60)).await.expect("the server is back");
    assert_eq!((report.dropped, report.lossy), (0, false));
    let stats = bus.stats().snapshot();
    assert!(stats.is_balanced() && stats.retries > 0, "{stats:?}");
    assert_eq!((stats.events_ingested, stats.events_dropped), (N as u64, 0), "{stats:?}");
    let contents = stream_contents(&mut server.connection(), "restart2s");
    assert_eq!(contents.len(), N, "every event stored");
    assert!(contents.values().all(|&n| n == 1), "a duplicate entry");
    Arc::into_inner(bus).unwrap().shutdown().await.unwrap();
}

/// Issue 16, item 1: two live buses started from copies of one identity file (same producer id,
/// same epoch) write to one prefix at once; every event of both is stored exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn two_live_buses_from_copies_of_one_identity_file_store_every_event_exactly_once() {
    let guard = PrefixGuard::new(shared_url(), "copied");
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("producer.nonce");
    purple_rain::ProducerIdentity::load_and_advance(&original).unwrap();
    let copy = dir.path().join("copy.nonce");
    std::fs::copy(&original, &copy).unwrap();
    let config = |nonce: &std::path::Path| {
        EventBusConfig::builder()
            .shards(2)
            .backpressure(BackpressureMode::Block)
            .producer_nonce_path(nonce)
            .adapter(redis_config(&guard.url, &guard.prefix))
            .build()
            .unwrap()
    };
    let a = Arc::new(EventBus::new(config(&original)).await.unwrap());
    let b = Arc::new(EventBus::new(config(&copy)).await.unwrap());
    let (pa, pb) = (a.producer(), b.producer());
    assert_eq!((pa.id, pa.epoch), (pb.id, pb.epoch), "the copies are one producer at one start count");
    const N: usize = 20_000;
    tokio::join!(ingest_all(&a, "a", 0..N), ingest_all(&b, "b", 0..N));
    for bus in [a, b] {
        let report = bus.flush_timeout(Duration::from_secs(60)).await.unwrap();
        assert!(!report.lossy, "{report:?}");
        assert_eq!(bus.stats().events_dispatched.get(), N as u64);
        Arc::into_inner(bus).unwrap().shutdown().await.unwrap();
    }
    let poller = bus(2, redis_config(&guard.url, &guard.prefix)).await;
    let (events, _) = drain(&poller, None, 10_000).await;
    let counts = count_payloads(&events);
    let expected: HashSet<Vec<u8>> = (0..N).flat_map(|i| [payload("a", i), payload("b", i)]).collect();
    assert_eq!(counts.len(), 2 * N, "events lost: the broker took one bus's events for the other's");
    assert!(counts.iter().all(|(p, &n)| n == 1 && expected.contains(p)), "a duplicate or foreign entry");
}

/// The adapter's figures in `stats_prometheus()` (read back by `prometheus_client`) and
/// `stats_json()`: up while commands reach the server, down with the error counted and aged
/// once it is killed, up again after the restart.
#[tokio::test(flavor = "multi_thread")]
async fn connection_state_and_errors_are_exported_and_follow_an_outage() {
    use common::prometheus::{json_metric as metric, scraped as figure};
    let mut server = RedisServer::start();
    let bus = bus(2, redis_config(&server.url(), "metrics").connect_timeout_ms(300).command_timeout_ms(1_000)).await;
    bus.ingest_raw(RawEvent::from_bytes(&b"{\"n\":1}"[..])).unwrap();
    bus.flush().await.unwrap();
    bus.poll(ConsumeRequest::new(10)).await.unwrap();
    assert_eq!(figure(&bus, "redis_up"), Some(1.0));
    assert_eq!(metric(&bus, "redis_up"), Some(1.0));
    assert_eq!(metric(&bus, "redis_command_errors_total"), Some(0.0));
    assert_eq!(metric(&bus, "redis_last_error_age_seconds"), None, "no error yet");

    server.kill();
    assert!(bus.poll(ConsumeRequest::new(10)).await.is_err(), "a poll of a dead server fails");
    assert_eq!(figure(&bus, "redis_up"), Some(0.0));
    assert!(metric(&bus, "redis_command_errors_total").is_some_and(|n| n >= 1.0));
    assert_eq!(figure(&bus, "redis_command_errors_total"), metric(&bus, "redis_command_errors_total"));
    assert!(metric(&bus, "redis_last_error_age_seconds").is_some_and(|age| age >= 0.0));

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while bus.poll(ConsumeRequest::new(10)).await.is_err() {
        assert!(Instant::now() < deadline, "no poll succeeded after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(figure(&bus, "redis_up"), Some(1.0));
    bus.shutdown().await.unwrap();
}
