//! Ingest a million events into the embedded in-memory adapter, flush, poll them all back, and
//! print throughput both ways and the stats.
//!
//! `cargo run --release --example quickstart`

use purple_rain::{AdapterConfig, BackpressureMode, ConsumeRequest, EventBus, EventBusConfig, RawEvent};
use std::time::Instant;

const EVENTS: usize = 1_000_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .adapter(AdapterConfig::memory().max_events_per_shard(EVENTS))
        .build()?;
    let bus = EventBus::new(config).await?;

    // Pre-serialised 100-byte events; building them is not part of the measurement.
    let events: Vec<RawEvent> = (0..EVENTS)
        .map(|i| {
            RawEvent::from_bytes(format!(
                r#"{{"id":{i:>10},"kind":"click","user":"user-{:>6}","pad":"...........xx"}}"#,
                i % 100_000
            ))
        })
        .collect();
    let start = Instant::now();
    for event in events {
        bus.ingest_raw(event)?;
    }
    bus.flush().await?;
    let ingest = start.elapsed();

    let start = Instant::now();
    let mut cursor = String::new();
    let mut polled = 0usize;
    loop {
        let page = bus.poll(ConsumeRequest::new(1000).from(cursor)).await?;
        polled += page.events.len();
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    let poll = start.elapsed();

    println!(
        "ingest + flush: {EVENTS} events in {ingest:.2?} = {:.2}M events/s",
        EVENTS as f64 / ingest.as_secs_f64() / 1e6
    );
    println!(
        "poll:           {polled} events in {poll:.2?} = {:.2}M events/s",
        polled as f64 / poll.as_secs_f64() / 1e6
    );
    bus.shutdown_via_ref().await?;
    let stats = bus.stats().snapshot();
    println!("stats: {stats:#?}");
    assert_eq!(polled, EVENTS, "every event comes back");
    assert!(stats.is_balanced());
    Ok(())
}
