//! The events the tests ingest, and what they check about the events and counters a bus gives
//! back.

use purple_rain::{ConsumeRequest, EventBus, StatsSnapshot, StoredEvent};
use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

/// A JSON payload of about 100 bytes, different for every `(source, index)`. For filters,
/// `kind` is `"buy"` for every tenth index (else `"view"`) and `user.id` is `index % 100`.
pub fn payload(source: impl Display, index: usize) -> Vec<u8> {
    let kind = if index % 10 == 0 { "buy" } else { "view" };
    let user = index % 100;
    format!(r#"{{"src":"{source}","i":{index},"kind":"{kind}","user":{{"id":{user}}},"pad":"{}"}}"#, "x".repeat(40))
        .into_bytes()
}

/// Runs `future` to completion from a plain thread (on the library's runtime).
pub fn block<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    purple_rain::runtime::wait(future)
}

/// `flush` from a plain thread; panics on an error.
pub fn flush(bus: &Arc<EventBus>) {
    let bus = bus.clone();
    block(async move { bus.flush().await }).unwrap();
}

/// `shutdown_via_ref` from a plain thread; panics on an error.
pub fn shutdown(bus: Arc<EventBus>) {
    block(async move { bus.shutdown_via_ref().await }).unwrap();
}

/// What polling until `has_more` was false returned.
#[derive(Debug)]
pub struct Drained {
    /// Every event of every page, in page order.
    pub events: Vec<StoredEvent>,
    /// The last page's cursor.
    pub cursor: String,
    /// The sum of the pages' `missed`.
    pub missed: u64,
}

/// Polls with `request` (its limit, ordering, filter and shards; its cursor is where to start)
/// until `has_more` is false. Checks that no page is larger than the limit and that the loop
/// ends.
pub async fn drain(bus: &EventBus, request: ConsumeRequest) -> Drained {
    let limit = request.limit;
    let mut request = request;
    let (mut events, mut missed) = (Vec::new(), 0);
    for _ in 0..1_000_000 {
        let page = bus.poll(request.clone()).await.unwrap();
        assert!(page.events.len() <= limit, "a page of {} events for a limit of {limit}", page.events.len());
        missed += page.missed;
        events.extend(page.events);
        if !page.has_more {
            return Drained { events, cursor: page.cursor, missed };
        }
        request = request.from(page.cursor);
    }
    panic!("the poll loop never ended");
}

/// Each payload of `expected` exactly once and nothing else; each shard in strictly increasing
/// sequence order.
pub fn assert_exactly_once(events: &[StoredEvent], expected: &HashSet<Vec<u8>>) {
    let mut seen = HashSet::with_capacity(events.len());
    for e in events {
        assert!(seen.insert(e.payload.to_vec()), "returned twice: {:?}", String::from_utf8_lossy(&e.payload));
    }
    let missing = expected.iter().filter(|p| !seen.contains(*p)).count();
    assert_eq!(missing, 0, "{missing} events missing");
    assert_eq!(seen.len(), expected.len(), "unexpected events");
    let mut last: HashMap<u16, u64> = HashMap::new();
    for e in events {
        if let Some(sequence) = last.insert(e.shard, e.sequence) {
            assert!(e.sequence > sequence, "shard {} out of sequence order", e.shard);
        }
    }
}

/// Asserts `dispatched + dropped == ingested` and returns the snapshot.
pub fn assert_balanced(bus: &EventBus) -> StatsSnapshot {
    let s = bus.stats().snapshot();
    assert_eq!(s.events_dispatched + s.events_dropped, s.events_ingested, "stats invariant broken: {s:?}");
    s
}
