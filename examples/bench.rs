//! Throughput and latency figures, each next to a baseline measured in the same run (a bare
//! crossbeam `ArrayQueue` of the same events), because shared machines are noisy and only
//! ratios travel.
//!
//! `cargo run --release --example bench [-- quick]`

use crossbeam_queue::ArrayQueue;
use purple_rain::{
    AdapterConfig, BackpressureMode, ConsumeRequest, EventBus, EventBusConfig, Filter, Ordering, RawEvent,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn events(n: usize) -> Vec<RawEvent> {
    (0..n)
        .map(|i| {
            let kind = if i % 100 == 0 { "buy" } else { "view" };
            let text =
                format!(r#"{{"id":{i:>10},"kind":"{kind:<4}","user":"user-{:>6}","pad":"..........xx"}}"#, i % 100_000);
            debug_assert_eq!(text.len(), 100);
            RawEvent::from_bytes(text)
        })
        .collect()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn report(name: &str, events_per_s: f64, baseline: f64) {
    println!("{name:<48} {:>8.2} M events/s   {:>5.2}x baseline", events_per_s / 1e6, events_per_s / baseline);
}

/// Pushes `producers` × `n` events into a bare queue (the cost floor of a bounded MPMC push).
fn crossbeam_baseline(producers: usize, n: usize) -> f64 {
    let queue = Arc::new(ArrayQueue::new(1 << 16));
    let per = events(n);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = {
        let (queue, stop) = (queue.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || !queue.is_empty() {
                while queue.pop().is_some() {}
                std::hint::spin_loop();
            }
        })
    };
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (queue, batch) = (queue.clone(), per.clone());
            std::thread::spawn(move || {
                for mut e in batch {
                    while let Err(back) = queue.push(e) {
                        e = back;
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let elapsed = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    consumer.join().unwrap();
    rate(producers * n, elapsed)
}

async fn noop_bus(shards: u16) -> Arc<EventBus> {
    let config = EventBusConfig::builder()
        .shards(shards)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .build()
        .unwrap();
    Arc::new(EventBus::new(config).await.unwrap())
}

/// Ingest call rate with `producers` threads, and the sustained ingest-to-adapter rate (until
/// flush returns).
async fn ingest(producers: usize, n: usize) -> (f64, f64) {
    let bus = noop_bus(4).await;
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (bus, batch) = (bus.clone(), events(n));
            std::thread::spawn(move || {
                let t = Instant::now();
                for e in batch {
                    bus.ingest_raw(e).unwrap();
                }
                t.elapsed()
            })
        })
        .collect();
    let call_time: Duration = handles.into_iter().map(|h| h.join().unwrap()).max().unwrap();
    bus.flush().await.unwrap();
    let sustained = start.elapsed();
    assert!(bus.stats().snapshot().is_balanced());
    (rate(producers * n, call_time), rate(producers * n, sustained))
}

async fn latency() -> (Duration, Duration) {
    let config = EventBusConfig::builder().shards(4).adapter(AdapterConfig::memory()).build().unwrap();
    let bus = EventBus::new(config).await.unwrap();
    let mut samples = Vec::new();
    let mut cursor = String::new();
    // ~1k events/s: one event per ms, each followed by a long poll that returns it.
    for i in 0..1000 {
        let start = Instant::now();
        bus.ingest_raw(RawEvent::from_bytes(format!(r#"{{"i":{i}}}"#))).unwrap();
        let page = bus.poll(ConsumeRequest::new(10).from(cursor).wait(Duration::from_secs(1))).await.unwrap();
        samples.push(start.elapsed());
        assert_eq!(page.events.len(), 1);
        cursor = page.cursor;
        tokio::time::sleep(Duration::from_micros(900)).await;
    }
    samples.sort_unstable();
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

async fn poll(shards: u16, ordering: Ordering, filter: Option<Filter>, backlog: usize) -> (usize, f64) {
    let config = EventBusConfig::builder()
        .shards(shards)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .adapter(AdapterConfig::memory().max_events_per_shard(backlog))
        .build()
        .unwrap();
    let bus = EventBus::new(config).await.unwrap();
    for e in events(backlog) {
        bus.ingest_raw(e).unwrap();
    }
    bus.flush().await.unwrap();
    let start = Instant::now();
    let mut cursor = String::new();
    let mut returned = 0;
    loop {
        let mut request = ConsumeRequest::new(1000).ordering(ordering).from(cursor);
        if let Some(f) = &filter {
            request = request.filter(f.clone());
        }
        let page = bus.poll(request).await.unwrap();
        returned += page.events.len();
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    let examined = rate(backlog, start.elapsed());
    bus.shutdown().await.unwrap();
    (returned, examined)
}

fn memory_overhead() -> f64 {
    // Retained bytes per event beyond the payload, from the allocator's view of the process.
    fn rss_kib() -> f64 {
        let status = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: f64 = status.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
        pages * 4.0
    }
    purple_rain::runtime::wait(async {
        let n = 1_000_000;
        let config = EventBusConfig::builder()
            .shards(1)
            .ring_capacity(1 << 16)
            .backpressure(BackpressureMode::Block)
            .adapter(AdapterConfig::memory().max_events_per_shard(n))
            .build()
            .unwrap();
        let bus = EventBus::new(config).await.unwrap();
        let before = rss_kib();
        for i in 0..n {
            bus.ingest_raw(RawEvent::from_bytes_with_hash(vec![b'x'; 100], i as u64)).unwrap();
        }
        bus.flush().await.unwrap();
        let after = rss_kib();
        let per_event = (after - before) * 1024.0 / n as f64 - 100.0;
        bus.shutdown().await.unwrap();
        per_event
    })
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let n = if quick { 200_000 } else { 2_000_000 };
    println!("purple-rain {} bench, {n} events of 100 bytes per producer", purple_rain::VERSION);
    let base1 = crossbeam_baseline(1, n);
    let base2 = crossbeam_baseline(2, n);
    report("baseline: crossbeam ArrayQueue push, 1 producer", base1, base1);
    report("baseline: crossbeam ArrayQueue push, 2 producers", base2, base1);
    let (call1, sustained1) = ingest(1, n).await;
    let (call2, sustained2) = ingest(2, n).await;
    report("ingest_raw call, 1 producer (Noop)", call1, base1);
    report("ingest_raw call, 2 producers total (Noop)", call2, base2);
    report("ingest -> adapter sustained, 1 producer", sustained1, base1);
    report("ingest -> adapter sustained, 2 producers", sustained2, base2);
    let backlog = if quick { 200_000 } else { 1_000_000 };
    let buy = Filter::eq("kind", "buy ").ok();
    for (name, shards, ordering, filter) in [
        ("poll Sequence, 1 shard, pages of 1000", 1, Ordering::Sequence, None),
        ("poll Sequence, 8 shards, pages of 1000", 8, Ordering::Sequence, None),
        ("poll Timestamp, 8 shards, pages of 1000", 8, Ordering::Timestamp, None),
        ("poll filter 1% match, 8 shards (examined/s)", 8, Ordering::Sequence, buy),
    ] {
        let (returned, examined) = poll(shards, ordering, filter, backlog).await;
        report(name, examined, base1);
        println!("    returned {returned} of {backlog}");
    }
    let (p50, p99) = latency().await;
    println!("ingest -> long-poll return latency at ~1k events/s: p50 {p50:.1?}, p99 {p99:.1?}");
    println!(
        "memory adapter retained overhead beyond payload: {:.1} bytes/event",
        tokio::task::spawn_blocking(memory_overhead).await.unwrap()
    );
}
