//! Throughput and latency figures, each next to a baseline measured in the same run (a bare
//! crossbeam `ArrayQueue` of the same events), because shared machines are noisy and only
//! ratios travel.
//!
//! `cargo bench --bench bench [-- [quick] [ingest|scaling|poll|latency|memory ...]]`
//! (no section named: all of them).
//!
//! Every producer builds its own 100-byte events before its clock starts, as a real producer
//! owns what it sends; the consumer side (the shard worker, or the baseline's popping thread)
//! frees them, which is part of what a sustained rate costs.

use async_trait::async_trait;
use crossbeam_queue::ArrayQueue;
use purple_rain::{
    AdapterConfig, AdapterError, BackpressureMode, Batch, ConsumeRequest, ConsumeResponse, EventBus, EventBusConfig,
    Filter, Ordering, RawEvent,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Counts live heap bytes while `COUNTING` is set (off during the throughput runs, where a
/// shared counter would be the bottleneck it measures).
struct CountingAllocator;
static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(AtomicOrdering::Relaxed) {
            LIVE_BYTES.fetch_add(layout.size() as isize, AtomicOrdering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(AtomicOrdering::Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as isize, AtomicOrdering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(AtomicOrdering::Relaxed) {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, AtomicOrdering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Where the producer's payload bytes live.
#[derive(Clone, Copy, PartialEq)]
enum Payloads {
    /// Each event owns a heap allocation, freed by whoever drops it: the usual case, and one
    /// that measures the allocator's cross-thread free as much as the bus.
    Owned,
    /// Every event shares one static payload (each still routes by its own hash): the bus's own
    /// cost, without the allocator.
    Static,
}

fn events(n: usize, producer: usize, payloads: Payloads) -> Vec<RawEvent> {
    static SHARED: &[u8; 100] =
        br#"{"id":         0,"kind":"view","user":"user-     0","pad":".....................................xx"}"#;
    if payloads == Payloads::Static {
        return (0..n).map(|i| RawEvent::from_bytes_with_hash(&SHARED[..], (i * 8 + producer) as u64)).collect();
    }
    (0..n)
        .map(|i| {
            let kind = if i % 100 == 0 { "buy" } else { "view" };
            let id = i * 8 + producer;
            let text =
                format!(r#"{{"id":{id:>10},"kind":"{kind:<4}","user":"user-{:>6}","pad":".....................................xx"}}"#, i % 100_000);
            assert_eq!(text.len(), 100);
            RawEvent::from_bytes(text)
        })
        .collect()
}

/// Each rate is the best of this many runs: the first run of a kind pays for page faults and
/// allocator warm-up that a running service has behind it.
const ROUNDS: usize = 3;

/// The best of `ROUNDS` runs of an async measurement.
async fn best_of<F, Fut>(mut measure: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let mut best = 0.0f64;
    for _ in 0..ROUNDS {
        best = best.max(measure().await);
    }
    best
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn report(name: &str, events_per_s: f64, baseline: f64) {
    println!("{name:<52} {:>8.2} M events/s   {:>5.2}x baseline", events_per_s / 1e6, events_per_s / baseline);
}

/// Runs `producers` threads, each building its `n` events and then handing them one by one to
/// `send`, all starting together. Returns when sending started and the slowest producer's
/// sending time.
fn run_producers<S>(producers: usize, n: usize, payloads: Payloads, send: S) -> (Instant, Duration)
where
    S: Fn(RawEvent) + Send + Sync + 'static,
{
    let send = Arc::new(send);
    let start = Arc::new(Barrier::new(producers));
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let (send, start) = (send.clone(), start.clone());
            std::thread::spawn(move || {
                let batch = events(n, p, payloads);
                start.wait();
                let t = Instant::now();
                for e in batch {
                    send(e);
                }
                (t, t.elapsed())
            })
        })
        .collect();
    let runs: Vec<(Instant, Duration)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (runs.iter().map(|r| r.0).min().unwrap(), runs.iter().map(|r| r.1).max().unwrap())
}

/// Pushes `producers` × `n` events into a bare queue that one thread pops (the cost floor of a
/// bounded MPMC hand-off, frees included).
fn crossbeam_baseline(producers: usize, n: usize, payloads: Payloads) -> f64 {
    let queue = Arc::new(ArrayQueue::new(1 << 16));
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (queue, stop) = (queue.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(AtomicOrdering::Relaxed) || !queue.is_empty() {
                while queue.pop().is_some() {}
                std::hint::spin_loop();
            }
        })
    };
    let pushing = queue.clone();
    let (_, elapsed) = run_producers(producers, n, payloads, move |mut e| {
        while let Err(back) = pushing.push(e) {
            e = back;
            std::hint::spin_loop();
        }
    });
    stop.store(true, AtomicOrdering::Relaxed);
    consumer.join().unwrap();
    rate(producers * n, elapsed)
}

async fn noop_bus(shards: u16, ring_capacity: usize) -> Arc<EventBus> {
    let config = EventBusConfig::builder()
        .shards(shards)
        .ring_capacity(ring_capacity)
        .backpressure(BackpressureMode::Block)
        .build()
        .unwrap();
    Arc::new(EventBus::new(config).await.unwrap())
}

/// The caller's cost of `ingest_raw`: a burst that fits in the rings, so no call waits for a
/// worker. Returns the call rate.
async fn ingest_call(producers: usize, n: usize, payloads: Payloads) -> f64 {
    let bus = noop_bus(4, (producers * n).next_power_of_two()).await;
    let sender = bus.clone();
    let (_, elapsed) = run_producers(producers, n, payloads, move |e| sender.ingest_raw(e).unwrap());
    bus.flush().await.unwrap();
    assert!(bus.stats().snapshot().is_balanced());
    rate(producers * n, elapsed)
}

/// Ingest to adapter over `shards` shards, far more events than the rings hold: the rate until
/// `flush` returns. With `scale_every`, a task meanwhile adds a shard and removes one,
/// alternately, at that interval; its last operation is waited for inside the timing.
async fn ingest_sustained(
    shards: u16,
    producers: usize,
    n: usize,
    payloads: Payloads,
    scale_every: Option<Duration>,
) -> (f64, u64) {
    let bus = noop_bus(shards, 1 << 16).await;
    let stop = Arc::new(AtomicBool::new(false));
    let scaled = Arc::new(AtomicU64::new(0));
    let scaler = scale_every.map(|every| {
        let (bus, stop, scaled) = (bus.clone(), stop.clone(), scaled.clone());
        tokio::spawn(async move {
            let mut added = Vec::new();
            while !stop.load(AtomicOrdering::Relaxed) {
                tokio::time::sleep(every).await;
                match added.pop() {
                    Some(id) => bus.remove_shards(vec![id]).await.unwrap(),
                    None => added = bus.add_shards(1).await.unwrap(),
                }
                scaled.fetch_add(1, AtomicOrdering::Relaxed);
            }
        })
    });
    let sender = bus.clone();
    let producing = tokio::task::spawn_blocking(move || {
        run_producers(producers, n, payloads, move |e| sender.ingest_raw(e).unwrap())
    });
    let (start, _) = producing.await.unwrap();
    stop.store(true, AtomicOrdering::Relaxed);
    if let Some(scaler) = scaler {
        scaler.await.unwrap();
    }
    bus.flush().await.unwrap();
    let elapsed = start.elapsed();
    let stats = bus.stats().snapshot();
    assert!(stats.is_balanced());
    assert_eq!(stats.events_dispatched, (producers * n) as u64);
    bus.shutdown_via_ref().await.unwrap();
    (rate(producers * n, elapsed), scaled.load(AtomicOrdering::Relaxed))
}

/// Records, per event, the time from `ingest_raw` to the adapter's `on_batch`.
struct LatencyProbe {
    origin: Instant,
    samples: Mutex<Vec<Duration>>,
}

#[async_trait]
impl purple_rain::Adapter for LatencyProbe {
    fn name(&self) -> &str {
        "latency-probe"
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        let now = self.origin.elapsed();
        let mut samples = self.samples.lock().unwrap();
        for entry in batch.iter() {
            let sent = u64::from_le_bytes(entry.payload()[..8].try_into().unwrap());
            samples.push(now - Duration::from_nanos(sent));
        }
        Ok(())
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

/// Ingest → adapter at ~1k events/s (one event per ms, from a plain thread).
async fn adapter_latency(count: usize) -> (Duration, Duration) {
    let probe = Arc::new(LatencyProbe { origin: Instant::now(), samples: Mutex::new(Vec::new()) });
    let config = EventBusConfig::builder().shards(4).build().unwrap();
    let bus = Arc::new(EventBus::with_adapter(config, probe.clone()).await.unwrap());
    let (sender, origin) = (bus.clone(), probe.origin);
    tokio::task::spawn_blocking(move || {
        for i in 0..count as u64 {
            let mut payload = origin.elapsed().as_nanos().to_le_bytes()[..8].to_vec();
            payload.extend_from_slice(&i.to_le_bytes());
            sender.ingest_raw(RawEvent::from_bytes_with_hash(payload, i)).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .await
    .unwrap();
    bus.flush().await.unwrap();
    let samples = std::mem::take(&mut *probe.samples.lock().unwrap());
    assert_eq!(samples.len(), count);
    percentiles(samples)
}

/// Ingest → a waiting long poll returns it, at ~1k events/s.
async fn long_poll_latency(count: usize) -> (Duration, Duration) {
    let config = EventBusConfig::builder().shards(4).adapter(AdapterConfig::memory()).build().unwrap();
    let bus = EventBus::new(config).await.unwrap();
    let mut samples = Vec::new();
    let mut cursor = String::new();
    for i in 0..count {
        let start = Instant::now();
        bus.ingest_raw(RawEvent::from_bytes(format!(r#"{{"i":{i}}}"#))).unwrap();
        let page = bus.poll(ConsumeRequest::new(10).from(cursor).wait(Duration::from_secs(1))).await.unwrap();
        samples.push(start.elapsed());
        assert_eq!(page.events.len(), 1);
        cursor = page.cursor;
        tokio::time::sleep(Duration::from_micros(900)).await;
    }
    percentiles(samples)
}

/// Polls a backlog of `backlog` events from the start, in pages of 1000, until `has_more` is
/// false. With `reuse`, each page is read with `poll_into` into the previous one.
async fn poll(shards: u16, ordering: Ordering, filter: Option<Filter>, backlog: usize, reuse: bool) -> (usize, f64) {
    let config = EventBusConfig::builder()
        .shards(shards)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .adapter(AdapterConfig::memory().max_events_per_shard(backlog))
        .build()
        .unwrap();
    let bus = EventBus::new(config).await.unwrap();
    for e in events(backlog, 0, Payloads::Owned) {
        bus.ingest_raw(e).unwrap();
    }
    bus.flush().await.unwrap();
    let mut best = (0, 0.0f64);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut page = ConsumeResponse::default();
        let mut returned = 0;
        loop {
            let mut request = ConsumeRequest::new(1000).ordering(ordering).from(std::mem::take(&mut page.cursor));
            if let Some(f) = &filter {
                request = request.filter(f.clone());
            }
            if reuse {
                bus.poll_into(request, &mut page).await.unwrap();
            } else {
                page = bus.poll(request).await.unwrap();
            }
            returned += page.events.len();
            if !page.has_more {
                break;
            }
        }
        best = (returned, best.1.max(rate(backlog, start.elapsed())));
    }
    bus.shutdown().await.unwrap();
    best
}

/// Heap bytes the Memory adapter retains per event beyond its 100-byte payload, as the
/// allocator counts them (entries, arena chunks, the log's deque).
async fn memory_overhead(n: usize) -> f64 {
    let config = EventBusConfig::builder()
        .shards(1)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .adapter(AdapterConfig::memory().max_events_per_shard(n))
        .build()
        .unwrap();
    let bus = EventBus::new(config).await.unwrap();
    bus.ingest_raw(RawEvent::from_bytes(vec![b'x'; 100])).unwrap();
    bus.flush().await.unwrap();
    LIVE_BYTES.store(0, AtomicOrdering::SeqCst);
    COUNTING.store(true, AtomicOrdering::SeqCst);
    for i in 1..n {
        bus.ingest_raw(RawEvent::from_bytes_with_hash(vec![b'x'; 100], i as u64)).unwrap();
    }
    bus.flush().await.unwrap();
    COUNTING.store(false, AtomicOrdering::SeqCst);
    let per_event = LIVE_BYTES.load(AtomicOrdering::SeqCst) as f64 / (n - 1) as f64 - 100.0;
    bus.shutdown().await.unwrap();
    per_event
}

#[tokio::main]
async fn main() {
    // `cargo bench` adds `--bench` to the arguments it passes on.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let quick = args.iter().any(|a| a == "quick");
    // Sections named on the command line (ingest, scaling, poll, latency, memory); none = all.
    let named: Vec<String> = args.into_iter().filter(|a| a != "quick").collect();
    let run = |section: &str| named.is_empty() || named.iter().any(|n| n == section);
    let n = if quick { 500_000 } else { 2_000_000 };
    let burst = if quick { 200_000 } else { 500_000 };
    println!("purple-rain {} bench, 100-byte events, {n} per producer", purple_rain::VERSION);
    let ingest_sections = if run("ingest") {
        &[(Payloads::Static, "static payloads: the bus alone"), (Payloads::Owned, "owned payloads")][..]
    } else {
        &[]
    };
    for &(payloads, label) in ingest_sections {
        println!("-- {label}");
        let base1 = best_of(|| async { crossbeam_baseline(1, n, payloads) }).await;
        let base2 = best_of(|| async { crossbeam_baseline(2, n, payloads) }).await;
        report("baseline: crossbeam ArrayQueue push+pop, 1 producer", base1, base1);
        report("baseline: crossbeam ArrayQueue push+pop, 2 producers", base2, base1);
        let call1 = best_of(|| ingest_call(1, burst, payloads)).await;
        let call2 = best_of(|| ingest_call(2, burst, payloads)).await;
        report(&format!("ingest_raw call, 1 producer (burst of {burst})"), call1, base1);
        report("ingest_raw call, 2 producers total", call2, base1);
        let sustained1 = best_of(|| async { ingest_sustained(4, 1, n, payloads, None).await.0 }).await;
        let sustained2 = best_of(|| async { ingest_sustained(4, 2, n, payloads, None).await.0 }).await;
        report("ingest -> adapter sustained, 1 producer", sustained1, base1);
        report("ingest -> adapter sustained, 2 producers", sustained2, base1);
        if payloads == Payloads::Owned {
            // One shard frees events in the order they were allocated; four free them strided
            // across the workers, which glibc's malloc handles far more slowly.
            let one_shard = best_of(|| async { ingest_sustained(1, 1, n, payloads, None).await.0 }).await;
            report("ingest -> adapter sustained, 1 producer, 1 shard", one_shard, base1);
        }
    }
    if run("scaling") {
        // Long enough runs for dozens of scaling operations each.
        let long = 4 * n;
        println!("-- live scaling (static payloads, 1 producer, {long} events per run)");
        let steady = best_of(|| async { ingest_sustained(4, 1, long, Payloads::Static, None).await.0 }).await;
        report("ingest -> adapter steady (baseline of this section)", steady, steady);
        let operations = Arc::new(AtomicU64::new(0));
        let scaling = best_of(|| async {
            let (rate, ops) = ingest_sustained(4, 1, long, Payloads::Static, Some(Duration::from_millis(10))).await;
            operations.fetch_add(ops, AtomicOrdering::Relaxed);
            rate
        })
        .await;
        let ops = operations.load(AtomicOrdering::Relaxed) / ROUNDS as u64;
        report(&format!("ingest -> adapter while scaling every 10 ms (~{ops} ops/run)"), scaling, steady);
    }
    if run("poll") {
        println!("-- poll (owned payloads, Memory adapter)");
        let backlog = if quick { 200_000 } else { 1_000_000 };
        let buy = Filter::eq("kind", "buy ").ok();
        // A number can be spelled many ways, so this one is parsed for every event examined.
        let low_ids = Filter::lt("id", 80_000).ok();
        let poll_base = best_of(|| async { crossbeam_baseline(1, backlog, Payloads::Owned) }).await;
        for (name, shards, ordering, filter, reuse) in [
            ("poll Sequence, 1 shard, pages of 1000", 1, Ordering::Sequence, None, false),
            ("poll_into Sequence, 1 shard (page reused)", 1, Ordering::Sequence, None, true),
            ("poll Sequence, 8 shards, pages of 1000", 8, Ordering::Sequence, None, false),
            ("poll_into Sequence, 8 shards (page reused)", 8, Ordering::Sequence, None, true),
            ("poll Timestamp, 8 shards, pages of 1000", 8, Ordering::Timestamp, None, false),
            ("poll_into Timestamp, 8 shards (page reused)", 8, Ordering::Timestamp, None, true),
            ("poll filter 1% match, 8 shards (examined/s)", 8, Ordering::Sequence, buy, false),
            ("poll filter 1% match on a number, 8 shards (examined/s)", 8, Ordering::Sequence, low_ids, false),
        ] {
            let (returned, examined) = poll(shards, ordering, filter, backlog, reuse).await;
            report(name, examined, poll_base);
            println!("    returned {returned} of {backlog}");
        }
    }
    if run("latency") {
        let samples = if quick { 1000 } else { 3000 };
        let (p50, p99) = adapter_latency(samples).await;
        println!("ingest -> adapter latency at ~1k events/s: p50 {p50:.1?}, p99 {p99:.1?}");
        let (p50, p99) = long_poll_latency(samples).await;
        println!("ingest -> long-poll return latency at ~1k events/s: p50 {p50:.1?}, p99 {p99:.1?}");
    }
    if run("memory") {
        println!(
            "memory adapter retained heap beyond the 100-byte payload: {:.1} bytes/event",
            memory_overhead(if quick { 200_000 } else { 1_000_000 }).await
        );
    }
}
