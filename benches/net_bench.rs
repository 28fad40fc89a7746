//! The Net adapter between two buses on loopback, next to a plain TCP socket moving the same
//! bytes in the same run (shared machines are noisy; only ratios travel).
//!
//! `cargo bench --bench net_bench [-- quick]`
//!
//! - `tcp`: one thread writes the bytes replication puts on the wire (100-byte payloads plus
//!   their 28-byte entry headers) in 1 MiB writes; another reads them. No encryption.
//! - `catch-up`: A holds N events; B connects and receives them all (encrypted, and insecure
//!   for comparison): the replication data path alone, from A's log to B's log.
//! - `live`: A and B connected; N events ingested on A until B holds them all.
//! - `latency`: 1k events/s ingested on A; time until a long poll on B returns each.

use purple_rain::adapter::NetAdapter;
use purple_rain::{
    BackpressureMode, BatchConfig, ConsumeRequest, EventBus, EventBusConfig, NetAdapterConfig, RawEvent,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENTRY_HEADER: usize = 28;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}

fn events(n: usize) -> Vec<RawEvent> {
    (0..n)
        .map(|i| {
            RawEvent::from_bytes(format!(
                r#"{{"id":{i:>10},"kind":"click","user":"u-{:>6}","pad":"{}"}}"#,
                i % 100_000,
                "x".repeat(43)
            ))
        })
        .collect()
}

fn node(port: u16, peer: Option<u16>, key: Option<&str>, n: usize) -> (Arc<EventBus>, Arc<NetAdapter>) {
    let mut config = NetAdapterConfig::default().listen(format!("127.0.0.1:{port}")).max_events_per_shard(n);
    if let Some(peer) = peer {
        config = config.peer(format!("127.0.0.1:{peer}"));
    }
    config = match key {
        Some(key) => config.key(key),
        None => config.insecure(true),
    };
    let net = Arc::new(NetAdapter::new(config.clone()).unwrap());
    let bus_config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .batch(BatchConfig::default().max_delay_ms(1))
        .adapter(config)
        .build()
        .unwrap();
    let adapter = net.clone();
    let bus = purple_rain::runtime::wait(async move { EventBus::with_adapter(bus_config, adapter).await }).unwrap();
    (Arc::new(bus), net)
}

fn flush(bus: &Arc<EventBus>) {
    let bus = bus.clone();
    purple_rain::runtime::wait(async move { bus.flush().await }).unwrap();
}

fn shutdown(bus: Arc<EventBus>) {
    purple_rain::runtime::wait(async move { bus.shutdown_via_ref().await }).unwrap();
}

fn wait_retained(net: &NetAdapter, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while net.retained() < n {
        assert!(Instant::now() < deadline, "only {} of {n} replicated", net.retained());
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Events per second a plain TCP socket moves, at the bytes per event replication sends.
fn tcp(n: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let total = n * (100 + ENTRY_HEADER);
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut read = 0;
        while read < total {
            read += stream.read(&mut buf).unwrap();
        }
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let start = Instant::now();
    let mut written = 0;
    while written < total {
        let len = chunk.len().min(total - written);
        stream.write_all(&chunk[..len]).unwrap();
        written += len;
    }
    reader.join().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// Events per second from A's log to B's, B connecting after A holds them all.
fn catch_up(n: usize, key: Option<&str>) -> f64 {
    let (a_port, b_port) = (free_port(), free_port());
    let (a, _) = node(a_port, None, key, n);
    for event in events(n) {
        a.ingest_raw(event).unwrap();
    }
    flush(&a);
    let start = Instant::now();
    let (b, b_net) = node(b_port, Some(a_port), key, n);
    wait_retained(&b_net, n as u64);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    shutdown(a);
    shutdown(b);
    rate
}

/// Events per second ingested on A until B holds them all, connected throughout.
fn live(n: usize, key: &str) -> f64 {
    let (a_port, b_port) = (free_port(), free_port());
    let (a, a_net) = node(a_port, None, Some(key), n);
    let (b, b_net) = node(b_port, Some(a_port), Some(key), n);
    while a_net.connected_peers() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let events = events(n);
    let start = Instant::now();
    for event in events {
        a.ingest_raw(event).unwrap();
    }
    wait_retained(&b_net, n as u64);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    shutdown(a);
    shutdown(b);
    rate
}

/// Ingest on A → returned by a long poll on B, at `rate` events/s for `n` events: p50, p99 in µs.
fn latency(n: usize, rate: u64, key: &str) -> (f64, f64) {
    let (a_port, b_port) = (free_port(), free_port());
    let (a, a_net) = node(a_port, None, Some(key), n);
    let (b, _) = node(b_port, Some(a_port), Some(key), n);
    while a_net.connected_peers() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let base = Instant::now();
    let consumer = {
        let b = b.clone();
        std::thread::spawn(move || {
            purple_rain::runtime::wait(async move {
                let (mut cursor, mut latencies) = (String::new(), Vec::with_capacity(n));
                while latencies.len() < n {
                    let request = ConsumeRequest::new(1000).from(cursor).wait(Duration::from_secs(5));
                    let page = b.poll(request).await.unwrap();
                    let now = base.elapsed().as_nanos() as u64;
                    for event in &page.events {
                        let sent: u64 = std::str::from_utf8(&event.payload[6..26]).unwrap().trim().parse().unwrap();
                        latencies.push((now - sent) as f64 / 1000.0);
                    }
                    cursor = page.cursor;
                }
                latencies
            })
        })
    };
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    for i in 0..n {
        let due = base + interval * i as u32;
        while Instant::now() < due {
            std::thread::sleep(due - Instant::now());
        }
        let sent = base.elapsed().as_nanos() as u64;
        a.ingest_raw(RawEvent::from_bytes(format!(r#"{{"t":"{sent:>20}","pad":"{}"}}"#, "x".repeat(60)))).unwrap();
    }
    let mut latencies = consumer.join().unwrap();
    latencies.sort_by(|x, y| x.total_cmp(y));
    shutdown(a);
    shutdown(b);
    (latencies[latencies.len() / 2], latencies[latencies.len() * 99 / 100])
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let n = if quick { 300_000 } else { 1_000_000 };
    let key = NetAdapterConfig::generate_key();
    let tcp_rate = tcp(n);
    println!("plain TCP, {} bytes/event:        {:>6.2} M events/s (baseline)", 100 + ENTRY_HEADER, tcp_rate / 1e6);
    let encrypted = catch_up(n, Some(&key));
    println!("catch-up, encrypted:              {:>6.2} M events/s  {:.2}x TCP", encrypted / 1e6, encrypted / tcp_rate);
    let plain = catch_up(n, None);
    println!("catch-up, insecure:               {:>6.2} M events/s  {:.2}x TCP", plain / 1e6, plain / tcp_rate);
    let pipelined = live(n, &key);
    println!("live ingest on A -> stored on B:  {:>6.2} M events/s  {:.2}x TCP", pipelined / 1e6, pipelined / tcp_rate);
    let (p50, p99) = latency(if quick { 1000 } else { 3000 }, 1000, &key);
    println!("latency at 1k events/s, A -> poll on B: p50 {p50:.0} µs, p99 {p99:.0} µs");
}
