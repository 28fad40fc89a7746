//! What the two Net benches share: ports, the 100-byte events, a node on loopback, and waiting
//! for replication. Each bench includes it with `mod common;`.
#![allow(dead_code)]

use purple_rain::adapter::NetAdapter;
use purple_rain::{
    AdapterConfig, BackpressureMode, BatchConfig, DiskFsync, EventBus, EventBusConfig, NetAdapterConfig, RawEvent,
};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}

/// `n` JSON events of 100 bytes each.
pub fn events(n: usize) -> Vec<RawEvent> {
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

/// A bus of 4 shards on a Net node listening on `port`, dialing `peer`, retaining `n` events per
/// shard; encrypted with `key` (insecure without one); durable in `disk` when given.
pub fn node(
    port: u16,
    peer: Option<u16>,
    key: Option<&str>,
    n: usize,
    disk: Option<(&Path, DiskFsync)>,
) -> (Arc<EventBus>, Arc<NetAdapter>) {
    let mut config = NetAdapterConfig::default().listen(format!("127.0.0.1:{port}")).max_events_per_shard(n);
    if let Some(peer) = peer {
        config = config.peer(format!("127.0.0.1:{peer}"));
    }
    config = match key {
        Some(key) => config.key(key),
        None => config.insecure(true),
    };
    if let Some((dir, fsync)) = disk {
        config = config.disk(AdapterConfig::disk(dir).fsync(fsync));
    }
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

pub fn flush(bus: &Arc<EventBus>) {
    let bus = bus.clone();
    purple_rain::runtime::wait(async move { bus.flush().await }).unwrap();
}

pub fn shutdown(bus: Arc<EventBus>) {
    purple_rain::runtime::wait(async move { bus.shutdown_via_ref().await }).unwrap();
}

/// Waits until `net` holds `n` events, for at most `limit`.
pub fn wait_retained(net: &NetAdapter, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while net.retained() < n {
        assert!(Instant::now() < deadline, "only {} of {n} replicated", net.retained());
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Waits until `net` has a connected peer, for at most a minute. Sleeping, not spinning: a
/// spinning thread would take one of the two cores from the handshake. Ask the node whose only
/// peer is the one awaited: another's count also moves when an earlier connection ends.
pub fn wait_connected(net: &NetAdapter) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while net.connected_peers() == 0 {
        assert!(Instant::now() < deadline, "never connected");
        std::thread::sleep(Duration::from_micros(50));
    }
}
