//! Three buses joined by the Net adapter on loopback: A ingests, B and C tail.
//!
//! `cargo run --release --example mesh`
//!
//! A listens on 127.0.0.1:7801 and dials nobody; B dials A; C dials B only, so A's events reach
//! C through B (relay). All three share one cluster key, made here with
//! `NetAdapterConfig::generate_key()`; separate processes would read it from a `key_file`.

use purple_rain::{AdapterConfig, ConsumeRequest, EventBus, EventBusConfig, NetAdapterConfig, RawEvent};
use std::time::{Duration, Instant};

const EVENTS: usize = 100_000;

async fn node(
    listen: &str,
    peer: Option<&str>,
    key: &str,
) -> Result<EventBus, Box<dyn std::error::Error + Send + Sync>> {
    let mut net = AdapterConfig::net().listen(listen).key(key);
    if let Some(peer) = peer {
        net = net.peer(peer);
    }
    Ok(EventBus::new(EventBusConfig::builder().shards(4).adapter(net).build()?).await?)
}

/// Long-polls `bus` until it has seen `count` events; returns when and what it saw last.
async fn tail(name: &str, bus: &EventBus, count: usize) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (mut seen, mut cursor, start) = (0, String::new(), Instant::now());
    while seen < count {
        let page = bus.poll(ConsumeRequest::new(10_000).from(cursor).wait(Duration::from_secs(5))).await?;
        if let Some(last) = page.events.last() {
            if seen == 0 {
                println!("{name}: first event after {:?}, from node {:016x}", start.elapsed(), last.origin);
            }
        }
        seen += page.events.len();
        cursor = page.cursor;
    }
    println!("{name}: all {seen} events after {:?}", start.elapsed());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let key = NetAdapterConfig::generate_key();
    let a = node("127.0.0.1:7801", None, &key).await?;
    let b = node("127.0.0.1:7802", Some("127.0.0.1:7801"), &key).await?;
    let c = node("127.0.0.1:7803", Some("127.0.0.1:7802"), &key).await?;

    let start = Instant::now();
    for i in 0..EVENTS {
        a.ingest_raw(RawEvent::from_bytes(format!(r#"{{"i":{i},"kind":"click"}}"#)))?;
    }
    // Returns once A stored them and every connected peer (B, once it is connected) acknowledged.
    a.flush().await?;
    println!("A: ingested and flushed {EVENTS} events in {:?}", start.elapsed());
    tokio::try_join!(tail("B", &b, EVENTS), tail("C", &c, EVENTS))?;

    for (name, bus) in [("A", &a), ("B", &b), ("C", &c)] {
        for metric in bus.stats().adapter_metrics().iter().filter(|m| m.name.starts_with("net_peer_")) {
            println!("{name}: {} {:?} = {}", metric.name, metric.labels, metric.value);
        }
    }
    for bus in [a, b, c] {
        bus.shutdown().await?;
    }
    Ok(())
}
