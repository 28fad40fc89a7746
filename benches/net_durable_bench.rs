//! What a durable Net node (`NetAdapterConfig::disk`) costs next to a Memory one, in the same
//! run (shared machines are noisy; only ratios travel).
//!
//! `cargo bench --bench net_durable_bench [-- quick]`
//!
//! - `catch-up`: A (Memory) holds N events; B connects and receives them all, encrypted, into a
//!   Memory log, a Disk log with `fsync` = `interval`, and one with `fsync` = `batch` (each
//!   stored run synced before it is acknowledged). Timed from the connection until B holds
//!   every event; best of three, interleaved.
//! - `reopen`: B (durable) restarted on its directory holding N events, A still up: the time
//!   `NetAdapter::new` takes (recovery, and the origin marks rebuilt from the whole log), the
//!   time until A's flush says B acknowledged A's whole log, and how many events A sent again
//!   (a resume: none; a replay: N).

mod common;

use common::{events, flush, free_port, node, shutdown, wait_connected, wait_retained};
use purple_rain::{DiskFsync, EventBus, NetAdapterConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A holding `n` events, up on a port.
fn source(n: usize, key: &str) -> (Arc<EventBus>, u16) {
    let port = free_port();
    let (a, _) = node(port, None, Some(key), n, None);
    for event in events(n) {
        a.ingest_raw(event).unwrap();
    }
    flush(&a);
    (a, port)
}

/// Events per second from A's log into B's, B connecting after A holds them all.
fn catch_up(n: usize, key: &str, a_port: u16, disk: Option<DiskFsync>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (b, b_net) = node(free_port(), Some(a_port), Some(key), n, disk.map(|fsync| (dir.path(), fsync)));
    wait_connected(&b_net);
    let start = Instant::now();
    wait_retained(&b_net, n as u64, Duration::from_secs(300));
    let rate = n as f64 / start.elapsed().as_secs_f64();
    shutdown(b);
    rate
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let n = if quick { 100_000 } else { 500_000 };
    let key = NetAdapterConfig::generate_key();
    let (a, a_port) = source(n, &key);
    let mut best = [0f64; 3];
    for _ in 0..3 {
        for (i, disk) in [None, Some(DiskFsync::Interval), Some(DiskFsync::Batch)].into_iter().enumerate() {
            let rate = catch_up(n, &key, a_port, disk);
            eprintln!("{disk:?}: {:.3} M events/s", rate / 1e6);
            best[i] = best[i].max(rate);
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{n} events of 100 bytes, 4 shards, encrypted, best of 3; load average {}",
        load.split(' ').next().unwrap_or("")
    );
    for (name, rate) in
        [("Memory log", best[0]), ("Disk log, fsync interval", best[1]), ("Disk log, fsync batch", best[2])]
    {
        println!("catch-up A -> B, {name:<26} {:>6.2} M events/s  {:>5.2}x Memory", rate / 1e6, rate / best[0]);
    }

    // Reopen a durable B holding everything, with A still up.
    let dir = tempfile::tempdir().unwrap();
    let b_port = free_port();
    let (b, b_net) = node(b_port, Some(a_port), Some(&key), n, Some((dir.path(), DiskFsync::Interval)));
    wait_retained(&b_net, n as u64, Duration::from_secs(300));
    shutdown(b);
    drop(b_net);
    let start = Instant::now();
    let (b, b_net) = node(b_port, Some(a_port), Some(&key), n, Some((dir.path(), DiskFsync::Interval)));
    let opened = start.elapsed();
    assert_eq!(b_net.retained(), n as u64, "the log was kept");
    wait_connected(&b_net);
    // A's flush returns once B acknowledged A's whole log: whatever A had to send is in.
    flush(&a);
    let resumed = start.elapsed();
    let received: f64 = b
        .stats()
        .adapter_metrics()
        .iter()
        .filter(|m| m.name == "net_peer_received_events_total")
        .map(|m| m.value)
        .sum();
    println!(
        "reopen a durable B holding {n}: open (recovery + marks rebuilt) {:.0} ms, A's log acknowledged {:.0} ms \
         after the start, {received} events received again (a replay would be {n})",
        opened.as_secs_f64() * 1e3,
        resumed.as_secs_f64() * 1e3,
    );
    shutdown(b);
    shutdown(a);
}
