//! The Net adapter between two buses on loopback, next to a plain TCP socket moving the same
//! bytes in the same run (shared machines are noisy; only ratios travel).
//!
//! `cargo bench --bench net_bench [-- quick]`
//!
//! - `tcp`: one thread writes the bytes replication puts on the wire (100-byte payloads plus
//!   their 28-byte entry headers) in 1 MiB writes; another reads them. No encryption.
//! - `catch-up`: A holds N events; B connects and receives them all (encrypted, and insecure
//!   for comparison): the replication data path alone, from A's log to B's log, timed from the
//!   moment the connection is up (bus start-up and the handshake are not replication) until B
//!   holds every event. Also the process's CPU time per event, which a loaded machine inflates
//!   less than the wall time.
//! - `live`: A and B connected; N events ingested on A until B holds them all (A's ingest
//!   pipeline included).
//! - `store alone`: a new Memory log appending the same events, one thread, no network: what
//!   the receiving side's store costs by itself, an upper bound for replication. Later runs
//!   reuse memory earlier ones freed, so the best of three errs high.
//! - `cipher`: GB/s one core seals with each of the two ciphers a connection may agree on.
//! - `latency`: 1k events/s ingested on A; time until a long poll on B returns each.
//!
//! The throughput figures are the best of three runs each, TCP interleaved with the others.

mod common;

use common::{events, flush, free_port, node, shutdown, wait_connected, wait_retained};
use purple_rain::adapter::{Adapter, MemoryAdapter};
use purple_rain::{Batch, ConsumeRequest, MemoryAdapterConfig, NetAdapterConfig, ProducerIdentity, RawEvent};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const ENTRY_HEADER: usize = 28;
/// Events one replication message carries (256 KiB of 100-byte payloads).
const RUN: usize = 2600;

/// This process's CPU seconds so far (user + sys, all threads).
fn own_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A throughput: events per second and CPU ns per event.
#[derive(Clone, Copy)]
struct Rate {
    per_second: f64,
    cpu_ns: f64,
}

impl Rate {
    fn measure(n: usize, start: Instant, cpu: f64) -> Self {
        Self { per_second: n as f64 / start.elapsed().as_secs_f64(), cpu_ns: (own_cpu() - cpu) * 1e9 / n as f64 }
    }
}

/// Events per second a plain TCP socket moves, at the bytes per event replication sends.
fn tcp(n: usize) -> Rate {
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
    let (start, cpu) = (Instant::now(), own_cpu());
    let mut written = 0;
    while written < total {
        let len = chunk.len().min(total - written);
        stream.write_all(&chunk[..len]).unwrap();
        written += len;
    }
    reader.join().unwrap();
    Rate::measure(n, start, cpu)
}

/// Tells `perf record --control fifo:$PERF_CTL_FIFO` (started with `-D -1`) to `enable` or
/// `disable` sampling, so that a profile holds replication alone.
fn profiler(command: &str) {
    if let Some(fifo) = std::env::var_os("PERF_CTL_FIFO") {
        let _ = std::fs::OpenOptions::new().write(true).open(fifo).and_then(|mut f| writeln!(f, "{command}"));
    }
}

/// Events per second from A's log to B's, B connecting after A holds them all.
fn catch_up(n: usize, key: Option<&str>) -> Rate {
    let (a_port, b_port) = (free_port(), free_port());
    let (a, a_net) = node(a_port, None, key, n, None);
    for event in events(n) {
        a.ingest_raw(event).unwrap();
    }
    flush(&a);
    let (b, b_net) = node(b_port, Some(a_port), key, n, None);
    // What arrives on B meanwhile is subtracted.
    wait_connected(&a_net);
    let (start, cpu, early) = (Instant::now(), own_cpu(), b_net.retained() as usize);
    profiler("enable");
    wait_retained(&b_net, n as u64, Duration::from_secs(120));
    let rate = Rate::measure(n - early, start, cpu);
    profiler("disable");
    shutdown(a);
    shutdown(b);
    rate
}

/// GB/s one core seals with the Noise cipher of `pattern` (snow with ring, as the adapter builds
/// it), in 64 KiB records: what each side of an encrypted connection pays per byte.
fn seal_rate(pattern: &str) -> f64 {
    let psk = [7u8; 32];
    let builder = || snow::Builder::new(pattern.parse().unwrap()).psk(0, &psk);
    let (mut initiator, mut responder) = (builder().build_initiator().unwrap(), builder().build_responder().unwrap());
    let (mut buf, mut out) = (vec![0u8; 65535], vec![0u8; 65535]);
    let n = initiator.write_message(&[], &mut buf).unwrap();
    responder.read_message(&buf[..n], &mut out).unwrap();
    let n = responder.write_message(&[], &mut buf).unwrap();
    initiator.read_message(&buf[..n], &mut out).unwrap();
    let transport = initiator.into_stateless_transport_mode().unwrap();
    let plain = vec![3u8; 65535 - 16];
    let records = 10_000u64;
    let start = Instant::now();
    for nonce in 0..records {
        transport.write_message(nonce, &plain, &mut buf).unwrap();
    }
    (records as usize * plain.len()) as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// Events per second a Memory log appends, one thread, no network: the receiving side's
/// store alone, in runs of the size one replication message carries. Replication cannot beat
/// it, whatever the wire costs; on fresh memory half of it is the kernel handing the log pages.
fn store_alone(n: usize) -> Rate {
    let log = MemoryAdapter::new(MemoryAdapterConfig::default().max_events_per_shard(n));
    let mut batches = Vec::new();
    for (i, chunk) in events(n).chunks(RUN).enumerate() {
        let shard = (i % 4) as u16;
        let first = (i / 4 * RUN) as u64;
        batches.push(Batch::new(shard, first, 1, ProducerIdentity::ephemeral(), chunk.to_vec()));
    }
    let (start, cpu) = (Instant::now(), own_cpu());
    profiler("enable");
    // The batches come back out, so that freeing them is not timed.
    let (log, _batches) = purple_rain::runtime::wait(async move {
        for batch in &batches {
            log.on_batch(batch).await.unwrap();
        }
        (log, batches)
    });
    let rate = Rate::measure(n, start, cpu);
    profiler("disable");
    assert_eq!(log.retained(), n as u64);
    rate
}

/// Events per second ingested on A until B holds them all, connected throughout.
fn live(n: usize, key: &str) -> Rate {
    let (a_port, b_port) = (free_port(), free_port());
    let (a, a_net) = node(a_port, None, Some(key), n, None);
    let (b, b_net) = node(b_port, Some(a_port), Some(key), n, None);
    wait_connected(&a_net);
    let events = events(n);
    let (start, cpu) = (Instant::now(), own_cpu());
    for event in events {
        a.ingest_raw(event).unwrap();
    }
    wait_retained(&b_net, n as u64, Duration::from_secs(120));
    let rate = Rate::measure(n, start, cpu);
    shutdown(a);
    shutdown(b);
    rate
}

/// Ingest on A → returned by a long poll on B, at `rate` events/s for `n` events: p50, p99 in µs.
fn latency(n: usize, rate: u64, key: &str) -> (f64, f64) {
    let (a_port, b_port) = (free_port(), free_port());
    let (a, a_net) = node(a_port, None, Some(key), n, None);
    let (b, _) = node(b_port, Some(a_port), Some(key), n, None);
    wait_connected(&a_net);
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

/// The best of three runs of `run`, each after a run of the TCP baseline (whose best is kept
/// in `tcp_best`).
fn best_of_three(n: usize, tcp_best: &mut Rate, mut run: impl FnMut() -> Rate) -> Rate {
    let mut best: Option<Rate> = None;
    for _ in 0..3 {
        let t = tcp(n);
        if t.per_second > tcp_best.per_second {
            *tcp_best = t;
        }
        let r = run();
        if best.is_none_or(|b| r.per_second > b.per_second) {
            best = Some(r);
        }
    }
    best.expect("three runs")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let quick = args.iter().any(|a| a == "quick");
    let key = NetAdapterConfig::generate_key();
    // `profile-catch-up [insecure]`: only the catch-up, once, for a profiler (`PERF_CTL_FIFO`).
    if args.iter().any(|a| a == "profile-catch-up") {
        let insecure = args.iter().any(|a| a == "insecure");
        let rate = catch_up(1_000_000, (!insecure).then_some(key.as_str()));
        let mode = if insecure { "insecure" } else { "encrypted" };
        println!("catch-up, {mode}: {:.2} M events/s, {:.0} ns CPU/event", rate.per_second / 1e6, rate.cpu_ns);
        return;
    }
    if args.iter().any(|a| a == "profile-store") {
        let rate = store_alone(1_000_000);
        println!("store alone: {:.2} M events/s, {:.0} ns CPU/event", rate.per_second / 1e6, rate.cpu_ns);
        return;
    }
    let n = if quick { 500_000 } else { 2_000_000 };
    let mut tcp_best = Rate { per_second: 0.0, cpu_ns: 0.0 };
    let encrypted = best_of_three(n, &mut tcp_best, || catch_up(n, Some(&key)));
    let insecure = best_of_three(n, &mut tcp_best, || catch_up(n, None));
    let pipelined = best_of_three(n, &mut tcp_best, || live(n, &key));
    let store = best_of_three(n, &mut tcp_best, || store_alone(n));
    let row = |name: &str, r: Rate| {
        println!(
            "{name:<36} {:>6.2} M events/s  {:>5.2}x TCP  {:>5.0} ns CPU/event",
            r.per_second / 1e6,
            r.per_second / tcp_best.per_second,
            r.cpu_ns
        )
    };
    println!("{n} events of 100 bytes, 4 shards, best of 3 each; load average {}", load_average());
    row(&format!("plain TCP, {} bytes/event (baseline)", 100 + ENTRY_HEADER), tcp_best);
    row("catch-up A -> B, encrypted", encrypted);
    row("catch-up A -> B, insecure", insecure);
    row("live ingest on A -> stored on B, enc.", pipelined);
    row("Memory log append alone (ceiling)", store);
    println!(
        "targets: encrypted catch-up >= 3 M/s: {}; >= 0.5x TCP: {}",
        if encrypted.per_second >= 3e6 { "met" } else { "NOT met" },
        if encrypted.per_second >= 0.5 * tcp_best.per_second { "met" } else { "NOT met" }
    );
    println!(
        "cipher, one core, 64 KiB records: ChaCha20-Poly1305 seals {:.2} GB/s, AES-256-GCM {:.2} GB/s",
        seal_rate("Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s"),
        seal_rate("Noise_NNpsk0_25519_AESGCM_BLAKE2s")
    );
    let (p50, p99) = latency(if quick { 3000 } else { 10_000 }, 1000, &key);
    println!(
        "latency at 1k events/s, ingest on A -> long poll on B: p50 {p50:.0} µs (target 300: {}), p99 {p99:.0} µs \
         (target 2000: {})",
        if p50 <= 300.0 { "met" } else { "NOT met" },
        if p99 <= 2000.0 { "met" } else { "NOT met" }
    );
}

/// The 1-minute load average, as `uptime` shows it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().map(str::to_string))
        .unwrap_or_default()
}
