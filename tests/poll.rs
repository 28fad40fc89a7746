//! Consumption through the Memory adapter: exactly-once paging with cursors in both orderings,
//! filters across shards, long poll, trimming and bad input.

mod common;

use common::{assert_exactly_once, drain, payload, Drained};
use proptest::prelude::*;
use purple_rain::adapter::{ShardPage, ShardRead};
use purple_rain::consume::Cursor;
use purple_rain::error::ErrorKind;
use purple_rain::{
    AdapterConfig, AdapterError, Batch, ConsumeRequest, ConsumeResponse, ConsumerError, EventBus, EventBusConfig,
    Filter, Ordering, RawEvent, StoredEvent,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn memory_bus(shards: u16, retained: usize) -> EventBus {
    let config = EventBusConfig::builder()
        .shards(shards)
        .ring_capacity(1 << 14)
        .adapter(AdapterConfig::memory().max_events_per_shard(retained))
        .build()
        .unwrap();
    EventBus::new(config).await.unwrap()
}

/// Ingests `payload("p", i)` for every `i` in `range`, then waits until the adapter holds them.
async fn ingest_flushed(bus: &EventBus, range: std::ops::Range<usize>) {
    for i in range {
        bus.ingest_raw(RawEvent::from_bytes(payload("p", i))).unwrap();
    }
    bus.flush().await.unwrap();
}

/// Like `common::drain`, with every page read by `poll_into` into the previous one; returns copies
/// of the pages in order.
async fn drain_into(bus: &EventBus, limit: usize, ordering: Ordering) -> Vec<ConsumeResponse> {
    let mut page = ConsumeResponse::default();
    let mut pages = Vec::new();
    loop {
        let request = ConsumeRequest::new(limit).ordering(ordering).from(page.cursor.clone());
        bus.poll_into(request, &mut page).await.unwrap();
        pages.push(page.clone());
        if !page.has_more {
            return pages;
        }
    }
}

/// The payloads `payload("p", i)` for every `i` of `range` that `keep` selects.
fn payloads(range: std::ops::Range<usize>, keep: impl Fn(usize) -> bool) -> HashSet<Vec<u8>> {
    range.filter(|&i| keep(i)).map(|i| payload("p", i)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn paging_with_cursors_is_exactly_once_in_both_orderings(
        shards in 1u16..=8, events in 0usize..600, limit in 1usize..97, keyed in any::<bool>()
    ) {
        purple_rain::runtime::wait(async move {
            let bus = memory_bus(shards, 1 << 20).await;
            for i in 0..events {
                let event = if keyed { RawEvent::with_key(payload("p", i), (i % 7).to_string()) } else { RawEvent::from_bytes(payload("p", i)) };
                bus.ingest_raw(event).unwrap();
            }
            bus.flush().await.unwrap();
            let seq = drain(&bus, ConsumeRequest::new(limit)).await.events;
            assert_exactly_once(&seq, &payloads(0..events, |_| true));
            let ts = drain(&bus, ConsumeRequest::new(limit).ordering(Ordering::Timestamp)).await.events;
            assert_exactly_once(&ts, &payloads(0..events, |_| true));
            // Reusing each page gives the same pages, ids included.
            for (ordering, expected) in [(Ordering::Sequence, &seq), (Ordering::Timestamp, &ts)] {
                let reused: Vec<StoredEvent> = drain_into(&bus, limit, ordering).await.into_iter().flat_map(|p| p.events).collect();
                assert_eq!(&reused, expected);
            }
            let keys: Vec<_> = ts.iter().map(|e| (e.timestamp_ns, e.shard, e.sequence)).collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(keys, sorted, "timestamp ordering is not a global merge");
            bus.shutdown().await.unwrap();
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_into_writes_the_new_ids_into_the_previous_pages_strings() {
    let bus = memory_bus(1, 1 << 20).await;
    ingest_flushed(&bus, 0..300).await;
    let mut page = ConsumeResponse::default();
    bus.poll_into(ConsumeRequest::new(100), &mut page).await.unwrap();
    assert_eq!(page.events.len(), 100);
    let previous: HashSet<usize> = page.events.iter().map(|e| e.id.as_ptr() as usize).collect();
    let cursor = page.cursor.clone();
    bus.poll_into(ConsumeRequest::new(100).from(cursor), &mut page).await.unwrap();
    let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, (100..200).map(|s| format!("0-{s}")).collect::<Vec<_>>());
    assert!(
        page.events.iter().all(|e| previous.contains(&(e.id.as_ptr() as usize))),
        "every id of the second page should live in a string of the first"
    );
    assert_eq!(page.events[0].payload, payload("p", 100));

    // A failed poll_into keeps the cursor, so a retry resumes where the last page ended.
    let cursor = page.cursor.clone();
    let bad = bus.poll_into(ConsumeRequest::new(100).from("not a cursor"), &mut page).await;
    assert!(matches!(bad, Err(ConsumerError::InvalidCursor(_))), "{bad:?}");
    assert!(page.events.is_empty());
    assert_eq!(page.cursor, cursor);
    bus.poll_into(ConsumeRequest::new(1000).from(page.cursor.clone()), &mut page).await.unwrap();
    assert_eq!(page.events.first().map(|e| e.sequence), Some(200));
    assert_eq!(page.events.len(), 100);
    assert!(!page.has_more);
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_polling_during_ingest_sees_every_event_once() {
    let bus = Arc::new(memory_bus(4, 1 << 22).await);
    const PRODUCERS: usize = 4;
    const EACH: usize = 50_000;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let mut event = RawEvent::from_bytes(payload("p", p * EACH + i));
                    loop {
                        match bus.ingest_raw(event.clone()) {
                            Ok(()) => break,
                            Err(purple_rain::IngestionError::Backpressure) => {
                                event = RawEvent::from_bytes(payload("p", p * EACH + i));
                                std::thread::yield_now()
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let producing = tokio::task::spawn_blocking(move || producers.into_iter().for_each(|h| h.join().unwrap()));
    tokio::pin!(producing);
    let mut done = false;
    loop {
        let page = bus.poll(ConsumeRequest::new(997).from(cursor.clone())).await.unwrap();
        seen.extend(page.events);
        cursor = page.cursor;
        if done && !page.has_more {
            break;
        }
        if !done {
            if let Ok(Some(r)) = tokio::time::timeout(Duration::ZERO, &mut producing).await.map(Some) {
                r.unwrap();
                bus.flush().await.unwrap();
                done = true;
            }
        }
    }
    let ids: HashSet<Vec<u8>> = seen.iter().map(|e| e.payload.to_vec()).collect();
    assert_eq!(seen.len(), PRODUCERS * EACH);
    assert_eq!(ids.len(), PRODUCERS * EACH);
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_polls_skip_examined_non_matches_without_losing_matches_on_any_shard() {
    let bus = memory_bus(8, 1 << 20).await;
    ingest_flushed(&bus, 0..20_000).await;
    let filter = Filter::eq("kind", "buy").unwrap();
    for ordering in [Ordering::Sequence, Ordering::Timestamp] {
        for limit in [1, 7, 100, 5000] {
            let Drained { events, cursor, .. } =
                drain(&bus, ConsumeRequest::new(limit).ordering(ordering).filter(filter.clone())).await;
            assert_eq!(events.len(), 2_000, "{ordering:?} limit {limit}");
            assert!(events.iter().all(|e| filter.matches(&e.payload)));
            assert_exactly_once(&events, &payloads(0..20_000, |i| i % 10 == 0));
            // The final cursor is past every examined event: nothing more, even unfiltered.
            let rest = bus.poll(ConsumeRequest::new(10).from(cursor)).await.unwrap();
            assert!(rest.events.is_empty() && !rest.has_more);
        }
    }
    // Non-JSON payloads never match, not even a negation.
    bus.ingest_raw(RawEvent::from_bytes(&b"not json"[..])).unwrap();
    bus.flush().await.unwrap();
    let not_buy = Filter::negate(Filter::eq("kind", "buy").unwrap());
    let events = drain(&bus, ConsumeRequest::new(1000).filter(not_buy)).await.events;
    assert_eq!(events.len(), 18_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn filter_paths_arrays_and_operators_pass_through_poll() {
    let bus = memory_bus(2, 1000).await;
    for text in [r#"{"a":{"b":[1,2,3]},"s":"hello"}"#, r#"{"a":{"b":[5]},"s":"help"}"#, r#"{"x":1}"#] {
        bus.ingest_raw(RawEvent::from_bytes(text.as_bytes().to_vec())).unwrap();
    }
    bus.flush().await.unwrap();
    let count = |filter: &str| {
        let request = ConsumeRequest::from_json(&format!(r#"{{"limit":10,"filter":{filter}}}"#)).unwrap();
        let bus = &bus;
        async move { bus.poll(request).await.unwrap().events.len() }
    };
    assert_eq!(count(r#"{"path":"a.b.0","value":1}"#).await, 1);
    assert_eq!(count(r#"{"$gt":{"path":"a.b.0","value":0}}"#).await, 2);
    assert_eq!(count(r#"{"$prefix":{"path":"s","value":"hel"}}"#).await, 2);
    assert_eq!(count(r#"{"$exists":{"path":"a.b.1","value":true}}"#).await, 1);
    assert_eq!(count(r#"{"$or":[{"path":"x","value":1},{"path":"s","value":"help"}]}"#).await, 2);
    assert_eq!(count(r#"{"$in":{"path":"a.b.0","value":[5,9]}}"#).await, 1);
    assert_eq!(count(r#"{"$not":{"$exists":{"path":"a","value":true}}}"#).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_wakes_on_ingest_and_times_out_empty() {
    let bus = Arc::new(memory_bus(4, 1000).await);
    let start = Instant::now();
    let empty = bus.poll(ConsumeRequest::new(10).wait(Duration::from_millis(300))).await.unwrap();
    assert!(empty.events.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(290), "returned before the deadline");

    let waiter = {
        let bus = bus.clone();
        let cursor = empty.cursor.clone();
        tokio::spawn(async move {
            let page = bus.poll(ConsumeRequest::new(10).from(cursor).wait(Duration::from_secs(2))).await.unwrap();
            (page, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ingested_at = Instant::now();
    bus.ingest_raw(RawEvent::from_bytes(&b"{\"late\":true}"[..])).unwrap();
    let (page, woke_at) = waiter.await.unwrap();
    assert_eq!(page.events.len(), 1);
    let latency = woke_at.duration_since(ingested_at);
    assert!(latency < Duration::from_millis(500), "long poll woke {latency:?} after the ingest");
}

#[tokio::test(flavor = "multi_thread")]
async fn trimmed_positions_resume_at_the_oldest_and_report_missed() {
    let bus = memory_bus(1, 100).await;
    ingest_flushed(&bus, 0..50).await;
    let first = bus.poll(ConsumeRequest::new(10)).await.unwrap();
    assert_eq!(first.missed, 0);
    ingest_flushed(&bus, 50..300).await;
    let next = bus.poll(ConsumeRequest::new(10).from(first.cursor)).await.unwrap();
    assert_eq!(next.missed, 190, "positions 10..200 were trimmed");
    assert_eq!(next.events[0].sequence, 200);
    assert_eq!(bus.stats().events_trimmed(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_events_carry_exact_payloads_ids_and_wall_clock_timestamps() {
    let bus = memory_bus(1, 1000).await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    bus.ingest(purple_rain::Event::from_str(r#"{ "a" : 1 }"#).unwrap()).unwrap();
    bus.ingest_raw(RawEvent::from_bytes(&b"raw bytes, not json"[..])).unwrap();
    bus.flush().await.unwrap();
    let page = bus.poll(ConsumeRequest::new(10)).await.unwrap();
    assert_eq!(page.events[0].payload.as_ref(), br#"{"a":1}"#);
    assert_eq!(page.events[1].payload.as_ref(), b"raw bytes, not json");
    assert_eq!(page.events[0].id, "0-0");
    assert_eq!(page.events[1].id, "0-1");
    assert!(page.events[0].timestamp_ns >= before);
    assert!(page.events[1].timestamp_ns > page.events[0].timestamp_ns);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_clear_error() {
    let bus = memory_bus(2, 1000).await;
    bus.ingest_raw(RawEvent::from_bytes(&b"{}"[..])).unwrap();
    bus.flush().await.unwrap();
    for cursor in ["garbage!", "UFIBAMCLc_", "AAAA", "eyJzaGFyZCI6MH0"] {
        match bus.poll(ConsumeRequest::new(10).from(cursor)).await {
            Err(ConsumerError::InvalidCursor(reason)) => assert!(!reason.is_empty()),
            other => panic!("cursor {cursor:?} gave {other:?}"),
        }
    }
    for filter in
        [r#"{"$and":[]}"#, r#"{"$or":[]}"#, r#"{"$regex":{"path":"a","value":"x"}}"#, r#"[1]"#, r#"{"path":""}"#]
    {
        match ConsumeRequest::from_json(&format!(r#"{{"filter":{filter}}}"#)) {
            Err(ConsumerError::InvalidFilter(_)) => {}
            other => panic!("filter {filter} gave {other:?}"),
        }
    }
    let deep = format!("{}{}{}", r#"{"$not":"#.repeat(100), r#"{"path":"a","value":1}"#, "}".repeat(100));
    assert!(matches!(
        ConsumeRequest::from_json(&format!(r#"{{"filter":{deep}}}"#)),
        Err(ConsumerError::InvalidFilter(_))
    ));
    assert!(matches!(
        bus.poll(ConsumeRequest::new(10).shards(vec![0, 9])).await,
        Err(ConsumerError::InvalidRequest(m)) if m.contains('9')
    ));
    assert!(matches!(
        ConsumeRequest::from_json(r#"{"limit":1,"colour":"red"}"#),
        Err(e) if e.kind() == ErrorKind::InvalidRequest
    ));
    // The largest page is enforced, from JSON and from Rust alike.
    let max = purple_rain::config::MAX_LIMIT;
    for limit in [max + 1, usize::MAX] {
        let text = format!(r#"{{"limit":{limit}}}"#);
        assert!(
            matches!(ConsumeRequest::from_json(&text), Err(ConsumerError::InvalidRequest(m)) if m.contains("limit"))
        );
        assert!(
            matches!(bus.poll(ConsumeRequest::new(limit)).await, Err(ConsumerError::InvalidRequest(m)) if m.contains("limit"))
        );
    }
    assert!(bus.poll(ConsumeRequest::new(max)).await.is_ok());
    // A request is an object: an array is not read field by field.
    for text in ["[]", "[5]", "[5, null, null, \"timestamp\"]"] {
        assert!(matches!(ConsumeRequest::from_json(text), Err(e) if e.kind() == ErrorKind::InvalidRequest), "{text}");
    }
    // limit 0: empty, same cursor.
    let page = bus.poll(ConsumeRequest::new(1)).await.unwrap();
    let zero = bus.poll(ConsumeRequest::new(0).from(page.cursor.clone())).await.unwrap();
    assert!(zero.events.is_empty());
    assert_eq!(zero.cursor, page.cursor);
    bus.shutdown_via_ref().await.unwrap();
    assert!(matches!(bus.poll(ConsumeRequest::new(1)).await, Err(ConsumerError::Adapter(AdapterError::Shutdown))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_past_the_end_of_a_shard_is_an_invalid_cursor_naming_shard_and_positions() {
    let bus = memory_bus(2, 1000).await;
    ingest_flushed(&bus, 0..40).await;
    let drained = drain(&bus, ConsumeRequest::new(100)).await;
    let tail = Cursor::decode(&drained.cursor).unwrap();
    let end = tail.position(0);
    assert!(end > 0, "shard 0 holds events");
    // A consumer that kept its cursor while the log was lost (a restart of the memory adapter).
    let mut ahead = tail.clone();
    ahead.advance(0, end + 500);
    // A shard that never held an event has only its beginning.
    let mut never_written = Cursor::start();
    never_written.advance(1, tail.position(1) + 3);
    for ordering in [Ordering::Sequence, Ordering::Timestamp] {
        for (cursor, shard, position, log_end) in
            [(&ahead, 0, end + 500, end), (&never_written, 1, tail.position(1) + 3, tail.position(1))]
        {
            match bus.poll(ConsumeRequest::new(10).ordering(ordering).from(cursor.encode())).await {
                Err(err @ ConsumerError::InvalidCursor(_)) => {
                    assert_eq!(err.kind(), ErrorKind::InvalidCursor);
                    let message = err.to_string();
                    for part in [format!("shard {shard}"), format!("at {position}"), format!("sequence {log_end}")] {
                        assert!(message.contains(&part), "{message:?} lacks {part:?}");
                    }
                }
                other => panic!("a cursor past the end gave {other:?}"),
            }
        }
        // The tail itself is no error: an empty page, the same positions.
        let page = bus.poll(ConsumeRequest::new(10).ordering(ordering).from(drained.cursor.clone())).await.unwrap();
        assert!(page.events.is_empty() && !page.has_more);
    }
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_from_another_memory_bus_is_refused_and_an_unstamped_one_is_accepted() {
    let (one, two) = (memory_bus(2, 1000).await, memory_bus(2, 1000).await);
    ingest_flushed(&one, 0..20).await;
    ingest_flushed(&two, 0..20).await;
    let page = one.poll(ConsumeRequest::new(5)).await.unwrap();
    let cursor = Cursor::decode(&page.cursor).unwrap();
    assert!(cursor.store().is_some(), "a memory bus stamps its cursors");
    match two.poll(ConsumeRequest::new(5).from(page.cursor.clone())).await {
        Err(ConsumerError::InvalidCursor(message)) => assert!(message.contains("another store"), "{message}"),
        other => panic!("a cursor of another bus gave {other:?}"),
    }
    // A cursor from before store ids (version 1, no store) is read, and the answer is stamped.
    let unstamped = cursor.clone().with_store(None).encode();
    let next = one.poll(ConsumeRequest::new(5).from(unstamped)).await.unwrap();
    let resumed = one.poll(ConsumeRequest::new(5).from(page.cursor)).await.unwrap();
    assert_eq!(next.events, resumed.events, "the unstamped cursor reads from the same positions");
    assert_eq!(Cursor::decode(&next.cursor).unwrap().store(), cursor.store());
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_a_waiting_long_poll_at_once() {
    let bus = Arc::new(memory_bus(2, 100).await);
    let waiter = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let result = bus.poll(ConsumeRequest::new(10).wait(Duration::from_secs(30))).await;
            (result, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.shutdown_via_ref().await.unwrap();
    let (result, waited) = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    assert!(matches!(result, Err(ConsumerError::Adapter(AdapterError::Shutdown))), "{result:?}");
    assert!(waited < Duration::from_secs(5));
}

/// Poll runs in the caller's task (no spawn, no thread hop) with the library runtime entered, so
/// its long-poll timer works even on an executor that has no timers of its own.
#[test]
fn long_poll_works_on_a_runtime_without_timers() {
    let caller = tokio::runtime::Builder::new_current_thread().build().unwrap();
    caller.block_on(async {
        let bus = memory_bus(2, 1000).await;
        let start = Instant::now();
        let page = bus.poll(ConsumeRequest::new(10).wait(Duration::from_millis(50))).await.unwrap();
        assert!(page.events.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(50));
        bus.ingest_raw(RawEvent::from_bytes(payload("p", 1))).unwrap();
        let page = bus.poll(ConsumeRequest::new(10).wait(Duration::from_secs(5))).await.unwrap();
        assert_eq!(page.events.len(), 1);
        bus.shutdown().await.unwrap();
    });
}

/// Poll futures can be spawned on a multi-threaded executor.
#[test]
fn poll_futures_are_send() {
    fn require_send<T: Send>(_: &T) {}
    let _check = |bus: &EventBus| require_send(&bus.poll(ConsumeRequest::new(1)));
    let _check_into =
        |bus: &EventBus, page: &mut ConsumeResponse| require_send(&bus.poll_into(ConsumeRequest::new(1), page));
}

/// How a `Misreads` adapter breaks the read contract.
#[derive(Clone, Copy)]
enum Misread {
    /// Returns two events when one is asked for.
    TooMany,
    /// Goes back to the start from where the last read left the cursor.
    Backwards,
    /// Says more events exist, returns none and does not move.
    MoreWithoutProgress,
}

/// An adapter whose reads break the contract.
struct Misreads(Misread);

#[async_trait::async_trait]
impl purple_rain::Adapter for Misreads {
    fn name(&self) -> &str {
        "misreads"
    }
    async fn on_batch(&self, _: &Batch) -> Result<(), AdapterError> {
        Ok(())
    }
    async fn read_shard(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        let event = |sequence: u64| StoredEvent {
            id: sequence.to_string(),
            shard: read.shard,
            sequence,
            timestamp_ns: sequence + 1,
            payload: bytes::Bytes::from_static(b"{}"),
            origin: 0,
        };
        let (events, next) = match (self.0, read.from) {
            (Misread::TooMany, from) => (vec![event(from), event(from + 1)], from + 2),
            (Misread::Backwards, 0) => (vec![event(0)], 1),
            (Misread::Backwards, _) => (vec![event(0)], 0),
            (Misread::MoreWithoutProgress, from) => (Vec::new(), from),
        };
        Ok(ShardPage { events, next, missed: 0, more: true })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_that_breaks_the_read_contract_fails_the_poll() {
    let config = || EventBusConfig::builder().shards(1).build().unwrap();
    let fatal = |result: Result<ConsumeResponse, ConsumerError>, what: &str| match result {
        Err(ConsumerError::Adapter(AdapterError::Fatal(message))) => {
            assert!(message.contains(what), "{message}")
        }
        other => panic!("expected a fatal adapter error about {what:?}, got {other:?}"),
    };
    for ordering in [Ordering::Sequence, Ordering::Timestamp] {
        let bus = EventBus::with_adapter(config(), Arc::new(Misreads(Misread::Backwards))).await.unwrap();
        let first = bus.poll(ConsumeRequest::new(1).ordering(ordering)).await.unwrap();
        assert_eq!(first.events.len(), 1);
        fatal(bus.poll(ConsumeRequest::new(1).ordering(ordering).from(first.cursor)).await, "backwards");
        bus.shutdown().await.unwrap();
        // `has_more` with the same cursor would make every `while has_more` consumer spin.
        let bus = EventBus::with_adapter(config(), Arc::new(Misreads(Misread::MoreWithoutProgress))).await.unwrap();
        fatal(bus.poll(ConsumeRequest::new(5).ordering(ordering)).await, "did not move");
        bus.shutdown().await.unwrap();
    }
    let bus = EventBus::with_adapter(config(), Arc::new(Misreads(Misread::TooMany))).await.unwrap();
    fatal(bus.poll(ConsumeRequest::new(1)).await, "reading up to 1");
    bus.shutdown().await.unwrap();
}

/// Fixed per-shard logs of timestamps, served in sequence order; counts the events it hands
/// out, so a test can see how much a merge reads beyond what it returns.
struct StampedLogs {
    stamps: Vec<Vec<u64>>,
    handed_out: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl purple_rain::Adapter for StampedLogs {
    fn name(&self) -> &str {
        "stamped-logs"
    }
    async fn on_batch(&self, _: &Batch) -> Result<(), AdapterError> {
        Ok(())
    }
    async fn read_shard(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        let stamps = &self.stamps[usize::from(read.shard)];
        let from = (read.from as usize).min(stamps.len());
        let end = stamps.len().min(from + read.max_events);
        let events: Vec<StoredEvent> = (from..end)
            .map(|at| StoredEvent {
                id: format!("{}-{at}", read.shard),
                shard: read.shard,
                sequence: at as u64,
                timestamp_ns: stamps[at],
                payload: bytes::Bytes::from_static(b"{}"),
                origin: 0,
            })
            .collect();
        self.handed_out.fetch_add(events.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(ShardPage { events, next: end as u64, missed: 0, more: end < stamps.len() })
    }
}

/// Shards stamp batches with consecutive timestamps, so real logs interleave in runs of every
/// length: here one shard alone holds the oldest 3000 events, two interleave one by one, one
/// alternates runs of 1 and 250, and one is empty.
fn stamped_logs() -> Vec<Vec<u64>> {
    let mut runs = Vec::new();
    let mut at = 10_000;
    while runs.len() < 2000 {
        let run = if runs.len() % 2 == 0 { 1 } else { 250 };
        runs.extend(at..at + run);
        at += 2 * run;
    }
    vec![(0..3000).collect(), (5000..7000).step_by(2).collect(), (5001..7000).step_by(2).collect(), runs, Vec::new()]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timestamp_merge_returns_every_event_once_in_global_order_for_runs_of_any_length() {
    let stamps = stamped_logs();
    let total: usize = stamps.iter().map(Vec::len).sum();
    let mut expected: Vec<(u64, u16, u64)> = Vec::new();
    for (shard, log) in stamps.iter().enumerate() {
        expected.extend(log.iter().enumerate().map(|(at, &ts)| (ts, shard as u16, at as u64)));
    }
    expected.sort_unstable();
    for limit in [1, 7, 100, 1000, 4096] {
        let logs = Arc::new(StampedLogs { stamps: stamps.clone(), handed_out: Default::default() });
        let config = EventBusConfig::builder().shards(stamps.len() as u16).build().unwrap();
        let bus = EventBus::with_adapter(config, logs.clone()).await.unwrap();
        let events = drain(&bus, ConsumeRequest::new(limit).ordering(Ordering::Timestamp)).await.events;
        let keys: Vec<_> = events.iter().map(|e| (e.timestamp_ns, e.shard, e.sequence)).collect();
        assert_eq!(keys.len(), total, "limit {limit}");
        assert_eq!(keys, expected, "limit {limit}");
        bus.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timestamp_page_drawn_from_one_shard_reads_little_from_the_others() {
    let logs = Arc::new(StampedLogs { stamps: stamped_logs(), handed_out: Default::default() });
    let config = EventBusConfig::builder().shards(5).build().unwrap();
    let bus = EventBus::with_adapter(config, logs.clone()).await.unwrap();
    let page = bus.poll(ConsumeRequest::new(1000).ordering(Ordering::Timestamp)).await.unwrap();
    assert!(page.events.iter().all(|e| e.shard == 0));
    assert_eq!(page.events.len(), 1000);
    // A fair share is 200 per shard; the others are read a quarter of that each, once.
    let read = logs.handed_out.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read <= 1000 + 4 * 50, "read {read} events for a page of 1000");
    bus.shutdown().await.unwrap();
}

#[test]
fn a_filter_nested_past_serdes_depth_limit_is_an_invalid_filter_naming_the_limit() {
    for levels in [130, 2_000] {
        let deep = format!("{}{}{}", r#"{"$not":"#.repeat(levels), r#"{"path":"a","value":1}"#, "}".repeat(levels));
        match ConsumeRequest::from_json(&format!(r#"{{"filter":{deep}}}"#)) {
            Err(err @ ConsumerError::InvalidFilter(_)) => {
                let message = err.to_string();
                assert!(message.len() < 250, "a short message, not a key path: {message}");
                assert!(message.contains("at most 127") && message.contains("32"), "{message}");
            }
            other => panic!("{levels} levels gave {other:?}"),
        }
    }
}

#[test]
fn request_errors_carry_the_full_key_path_typed() {
    for (text, expected) in [(r#"{"limit":"x"}"#, "limit"), (r#"{"shards":[0,"one"]}"#, "shards[1]")] {
        match ConsumeRequest::from_json(text) {
            Err(ConsumerError::Json(json)) => {
                assert_eq!(json.path(), Some(expected), "{text}");
                assert!(json.to_string().contains(&format!("`{expected}`")), "{json}");
            }
            other => panic!("{text} gave {other:?}"),
        }
    }
}
