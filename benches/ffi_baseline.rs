//! The Rust side of the C ABI benchmark (`tests/c/bench.sh` runs both): the same workloads as
//! `tests/c/bench.c` through the Rust API, so the C numbers have a baseline from the same run.
//!
//! Ingest: 100-byte events, Noop adapter, 4 shards, ring 65536, `Block`, timed to the end of
//! `flush`. `ingest_raw (copy)` copies each event from a borrowed buffer into `Bytes`, which is
//! the work `pr_ingest_raw` must do because C keeps its buffer; `ingest_raw (shared)` hands over
//! an already-shared `Bytes` (no copy), the best case only Rust callers get.
//! Poll: Memory adapter backlog of 1M events, pages of 1000.
//!
//! `cargo bench --bench ffi_baseline -- [ingest_events] [poll_backlog] [repeats]`

use bytes::Bytes;
use purple_rain::{runtime, ConsumeRequest, EventBus, EventBusConfig, RawEvent};
use std::time::Instant;

const EVENT_BYTES: usize = 100;
const POOL: usize = 1000;

fn pool() -> Vec<Vec<u8>> {
    (0..POOL)
        .map(|i| {
            let mut e = format!("{{\"n\":{i},\"pad\":\"").into_bytes();
            e.resize(EVENT_BYTES - 2, b'x');
            e.extend_from_slice(b"\"}");
            e
        })
        .collect()
}

fn bus(config: &str) -> EventBus {
    let config = EventBusConfig::from_json(config).expect("config");
    runtime::wait(EventBus::new(config)).expect("bus")
}

fn ingest_run(pool: &[Vec<u8>], shared: &[Bytes], copy: bool, n: usize) -> f64 {
    let bus = std::sync::Arc::new(bus(
        r#"{"shards":4,"ring_capacity":65536,"backpressure":"block","adapter":{"type":"noop"}}"#,
    ));
    let start = Instant::now();
    for i in 0..n {
        let event = if copy {
            RawEvent::from_bytes(Bytes::copy_from_slice(&pool[i % POOL]))
        } else {
            RawEvent::from_bytes(shared[i % POOL].clone())
        };
        bus.ingest_raw(event).expect("ingest_raw");
    }
    let flushing = bus.clone();
    runtime::wait(async move { flushing.flush().await }).expect("flush");
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(bus.stats().events_dispatched.get(), n as u64);
    let closing = bus.clone();
    runtime::wait(async move { closing.shutdown_via_ref().await }).expect("shutdown");
    rate
}

fn poll_run(pool: &[Vec<u8>], backlog: usize) -> f64 {
    let bus = std::sync::Arc::new(bus(&format!(
        r#"{{"shards":4,"ring_capacity":65536,"backpressure":"block","adapter":{{"type":"memory","max_events_per_shard":{backlog}}}}}"#
    )));
    for i in 0..backlog {
        bus.ingest_raw(RawEvent::from_bytes(Bytes::copy_from_slice(&pool[i % POOL]))).expect("ingest");
    }
    let b = bus.clone();
    runtime::wait(async move { b.flush().await }).expect("flush");
    let start = Instant::now();
    let (mut events, mut checksum, mut cursor) = (0usize, 0u64, String::new());
    loop {
        let mut request = ConsumeRequest::new(1000);
        if !cursor.is_empty() {
            request = request.from(cursor.clone());
        }
        let b = bus.clone();
        let page = runtime::wait(async move { b.poll(request).await }).expect("poll");
        for e in &page.events {
            checksum += e.payload.len() as u64 + u64::from(e.payload[e.payload.len() - 1]) + e.sequence;
        }
        events += page.events.len();
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    let rate = events as f64 / start.elapsed().as_secs_f64();
    assert!(events == backlog && checksum > 0);
    let b = bus.clone();
    runtime::wait(async move { b.shutdown_via_ref().await }).expect("shutdown");
    rate
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(5_000_000);
    let backlog = args.get(1).copied().unwrap_or(1_000_000);
    let repeats = args.get(2).copied().unwrap_or(3).max(1);
    let pool = pool();
    let shared: Vec<Bytes> = pool.iter().map(|e| Bytes::from(e.clone())).collect();
    for (name, copy) in [("ingest_raw (copy)", true), ("ingest_raw (shared)", false)] {
        let best = (0..repeats).map(|_| ingest_run(&pool, &shared, copy, n)).fold(0.0, f64::max);
        println!("rust {name:<22} {best:>12.0} events/s  {:>7.1} ns/event  ({n} events x {repeats}, best)", 1e9 / best);
    }
    let best = (0..repeats).map(|_| poll_run(&pool, backlog)).fold(0.0, f64::max);
    println!(
        "rust {:<22} {best:>12.0} events/s  {:>7.1} ns/event  (backlog {backlog}, pages of 1000)",
        "poll",
        1e9 / best
    );
}
