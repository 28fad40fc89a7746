//! The disk adapter against the Memory adapter and the disk itself, all in one run: sustained
//! ingest (until `flush` returns) with `fsync` = `batch` and `never`, poll from a warm log,
//! the first poll after a restart, and `dd` sequential-write throughput of the same filesystem
//! (with `conv=fdatasync`) as the ceiling.
//!
//! `cargo bench --bench disk_bench [-- quick]`. The log lives in a temporary directory under
//! `target/` (the disk under test), removed at the end. 100-byte events, 4 shards.

use purple_rain::{
    AdapterConfig, BackpressureMode, ConsumeRequest, ConsumeResponse, DiskFsync, EventBus, EventBusConfig, RawEvent,
};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const EVENT_BYTES: usize = 100;

fn events(n: usize) -> Vec<RawEvent> {
    (0..n)
        .map(|i| {
            let text = format!(r#"{{"id":{i:>10},"kind":"view","pad":"{}"}}"#, ".".repeat(63));
            debug_assert_eq!(text.len(), EVENT_BYTES);
            RawEvent::from_bytes(text.into_bytes())
        })
        .collect()
}

async fn bus(adapter: AdapterConfig) -> EventBus {
    let config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .adapter(adapter)
        .build()
        .unwrap();
    EventBus::new(config).await.unwrap()
}

/// Events per second from the first `ingest_raw` until `flush` returned (one producer thread).
async fn ingest(bus: &EventBus, n: usize) -> f64 {
    let batch = events(n);
    let start = Instant::now();
    for e in batch {
        bus.ingest_raw(e).unwrap();
    }
    bus.flush().await.unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// Events per second reading everything in pages of 1000 with `poll_into`.
async fn drain(bus: &EventBus, n: usize) -> f64 {
    let start = Instant::now();
    let mut page = ConsumeResponse::default();
    let mut returned = 0;
    loop {
        bus.poll_into(ConsumeRequest::new(1000).from(std::mem::take(&mut page.cursor)), &mut page).await.unwrap();
        returned += page.events.len();
        if !page.has_more {
            break;
        }
    }
    assert_eq!(returned, n);
    n as f64 / start.elapsed().as_secs_f64()
}

/// `dd` writing `mib` MiB in 1 MiB blocks and syncing once at the end: bytes per second.
fn dd_ceiling(dir: &Path, mib: usize) -> Option<f64> {
    let target = dir.join("dd.bin");
    let start = Instant::now();
    let ok = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", target.display()))
        .args(["bs=1M", &format!("count={mib}"), "conv=fdatasync", "status=none"])
        .status()
        .ok()?
        .success();
    let elapsed = start.elapsed();
    let _ = std::fs::remove_file(target);
    ok.then(|| (mib << 20) as f64 / elapsed.as_secs_f64())
}

fn line(name: &str, rate: f64, baseline: f64, what: &str) {
    println!("{name:<44} {:>6.2} M events/s  {:>5.2}x {what}", rate / 1e6, rate / baseline);
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let n = if quick { 200_000 } else { 1_000_000 };
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&base);
    let scratch = tempfile::tempdir_in(&base).unwrap();
    purple_rain::runtime::wait({
        let root = scratch.path().to_owned();
        async move {
            let memory = bus(AdapterConfig::memory().max_events_per_shard(n).into()).await;
            let memory_ingest = ingest(&memory, n).await;
            let memory_poll = drain(&memory, n).await;
            memory.shutdown().await.unwrap();
            println!("{n} events of {EVENT_BYTES} bytes, 4 shards, one producer");
            line("memory: ingest until flushed", memory_ingest, memory_ingest, "memory");
            line("memory: poll_into, pages of 1000", memory_poll, memory_poll, "memory");

            for fsync in [DiskFsync::Batch, DiskFsync::Never] {
                let dir = root.join(format!("{fsync:?}"));
                let config = AdapterConfig::disk(&dir).fsync(fsync);
                let disk = bus(config.clone().into()).await;
                let rate = ingest(&disk, n).await;
                let fsyncs = disk
                    .stats()
                    .adapter_metrics()
                    .iter()
                    .find(|m| m.name == "disk_fsyncs_total")
                    .map_or(0.0, |m| m.value);
                line(&format!("disk {fsync:?}: ingest until flushed"), rate, memory_ingest, "memory");
                println!("{:<44} {fsyncs:>6} fdatasync calls ({:.0} events each)", "", n as f64 / fsyncs.max(1.0));
                let warm = drain(&disk, n).await;
                line(&format!("disk {fsync:?}: poll_into, warm log"), warm, memory_poll, "memory");
                disk.shutdown().await.unwrap();
                let reopened = bus(config.into()).await;
                let first = drain(&reopened, n).await;
                line(&format!("disk {fsync:?}: poll_into, first read after reopen"), first, memory_poll, "memory");
                let again = drain(&reopened, n).await;
                line(&format!("disk {fsync:?}: poll_into, second read after reopen"), again, memory_poll, "memory");
                reopened.shutdown().await.unwrap();
                let _ = std::fs::remove_dir_all(&dir);
            }
            let mib = if quick { 128 } else { 512 };
            match dd_ceiling(&root, mib) {
                Some(bytes_per_s) => {
                    let record = (EVENT_BYTES + 40) as f64;
                    println!(
                        "dd {mib} MiB, conv=fdatasync: {:.0} MiB/s = {:.2} M records/s of {record} bytes (the ceiling)",
                        bytes_per_s / (1 << 20) as f64,
                        bytes_per_s / record / 1e6
                    );
                }
                None => println!("dd: not available"),
            }
        }
    });
}
