//! `bench`: ingest and poll throughput and latency of a bus, printed as a Markdown table to
//! paste into an issue.
//!
//! Producers are threads that ingest one shared payload per event (an O(1) clone), routed by a
//! hash of the event's index so every shard gets its share: the figures are the bus's and the
//! adapter's, not the allocator's. Every 64th ingest call is timed; every poll page is timed.

use crate::config::{BusArgs, Role};
use crate::exit::{Failure, ADAPTER, INTERRUPTED, OK};
use crate::interrupt::Interrupt;
use crate::{progress, units};
use bytes::Bytes;
use indicatif::ProgressBar;
use purple_rain::{ConsumeRequest, ConsumeResponse, EventBus, RawEvent};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One ingest call in this many is timed.
const SAMPLE_EVERY: u64 = 64;
/// Events per poll page.
const POLL_PAGE: usize = 10_000;

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusArgs,
    /// Events to ingest (e.g. 100k, 1M).
    #[arg(long, value_name = "N", default_value = "1M", value_parser = units::count)]
    pub events: u64,
    /// Payload size in bytes (a JSON object padded to this size).
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub size: usize,
    /// Producer threads.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub producers: u16,
    /// Longest wait for the flush after ingest.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = units::duration)]
    pub flush_timeout: Duration,
}

/// What one phase measured.
struct Phase {
    name: &'static str,
    events: u64,
    elapsed: Duration,
    /// Latency samples in nanoseconds (empty: no latency column).
    samples: Vec<u64>,
}

/// Runs `bench`; returns the exit code.
pub async fn run(args: Args, interrupt: Interrupt) -> Result<u8, Failure> {
    let config = args.bus.resolve(Role::Writer)?;
    let described = describe(&config, &args);
    let bus = Arc::new(EventBus::new(config).await.map_err(Failure::start)?);
    let stop = Arc::new(AtomicBool::new(false));
    let bar = progress::counter("ingesting", "events");

    let started = Instant::now();
    let producers = spawn_producers(&bus, &args, &stop, &bar);
    let joined = tokio::task::spawn_blocking(move || producers.into_iter().map(|p| p.join()).collect::<Vec<_>>());
    tokio::pin!(joined);
    let results = tokio::select! {
        r = &mut joined => r,
        () = interrupt.wait() => { stop.store(true, Ordering::Release); joined.await }
    };
    let ingest_elapsed = started.elapsed();
    bar.finish_and_clear();
    let mut samples = Vec::new();
    let mut refused = 0;
    for result in results.map_err(|e| Failure::new(ADAPTER, format!("a producer failed: {e}")))? {
        let (s, r) = result.map_err(|_| Failure::new(ADAPTER, "a producer thread panicked"))?;
        samples.extend(s);
        refused += r;
    }
    let accepted = bus.stats().events_ingested.get();
    let flushed = bus.flush_timeout(args.flush_timeout).await;
    let flush_elapsed = started.elapsed();

    let mut phases = vec![
        Phase { name: "ingest (per call)", events: accepted, elapsed: ingest_elapsed, samples },
        Phase { name: "ingest + flush", events: accepted, elapsed: flush_elapsed, samples: Vec::new() },
    ];
    if flushed.is_ok() && !interrupt.is_set() {
        phases.push(poll_all(&bus, &interrupt).await?);
    }
    let _ = tokio::time::timeout(args.flush_timeout, bus.shutdown_via_ref()).await;
    let stats = bus.stats().snapshot();

    println!("{}", table(&described, &phases));
    let notes = [
        (refused, "refused by back-pressure"),
        (stats.events_dropped, "dropped"),
        (stats.events_ingested.saturating_sub(stats.events_dispatched + stats.events_dropped), "not flushed"),
    ];
    for (count, what) in notes.iter().filter(|(n, _)| *n > 0) {
        println!("\n{count} events {what}.");
    }
    if let Err(e) = flushed {
        return Err(Failure::new(ADAPTER, format!("flush failed: {e}")));
    }
    Ok(if interrupt.is_set() { INTERRUPTED } else { OK })
}

type ProducerResult = (Vec<u64>, u64);

fn spawn_producers(
    bus: &Arc<EventBus>,
    args: &Args,
    stop: &Arc<AtomicBool>,
    bar: &ProgressBar,
) -> Vec<std::thread::JoinHandle<ProducerResult>> {
    let producers = u64::from(args.producers);
    let next = Arc::new(AtomicU64::new(0));
    (0..producers)
        .map(|p| {
            let (bus, stop, bar, next) = (bus.clone(), stop.clone(), bar.clone(), next.clone());
            let payload = payload(p, args.size);
            let share = args.events / producers + u64::from(p < args.events % producers);
            std::thread::spawn(move || {
                let mut samples = Vec::with_capacity((share / SAMPLE_EVERY + 1) as usize);
                let mut refused = 0;
                for i in 0..share {
                    if i % 4096 == 0 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        bar.inc(if i == 0 { 0 } else { 4096 });
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let event = RawEvent::from_bytes_with_hash(payload.clone(), spread(index));
                    let result = if i % SAMPLE_EVERY == 0 {
                        let t = Instant::now();
                        let r = bus.ingest_raw(event);
                        samples.push(t.elapsed().as_nanos() as u64);
                        r
                    } else {
                        bus.ingest_raw(event)
                    };
                    refused += u64::from(result.is_err());
                }
                (samples, refused)
            })
        })
        .collect()
}

/// A JSON object of `size` bytes (or the smallest such object when `size` is smaller).
fn payload(producer: u64, size: usize) -> Bytes {
    let head = format!(r#"{{"producer":{producer},"pad":""#);
    let pad = size.saturating_sub(head.len() + 2);
    Bytes::from(format!("{head}{}\"}}", "x".repeat(pad)))
}

/// A well-mixed 64-bit hash of an index (splitmix64's finaliser), to spread events over shards.
fn spread(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn poll_all(bus: &EventBus, interrupt: &Interrupt) -> Result<Phase, Failure> {
    let mut page = ConsumeResponse::default();
    let mut samples = Vec::new();
    let mut events = 0;
    let started = Instant::now();
    loop {
        let request = ConsumeRequest::new(POLL_PAGE).from(page.cursor.clone());
        let t = Instant::now();
        tokio::select! {
            r = bus.poll_into(request, &mut page) => r.map_err(Failure::poll)?,
            () = interrupt.wait() => break,
        }
        samples.push(t.elapsed().as_nanos() as u64);
        events += page.events.len() as u64;
        if !page.has_more {
            break;
        }
    }
    Ok(Phase { name: "poll (per page of 10000)", events, elapsed: started.elapsed(), samples })
}

fn describe(config: &purple_rain::EventBusConfig, args: &Args) -> String {
    let adapter = serde_json::to_value(&config.adapter)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let backpressure = serde_json::to_value(config.backpressure).ok().and_then(|v| v.as_str().map(str::to_owned));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "purple-rain {} bench: {adapter} adapter, {} shards, {} back-pressure, {} events of {} B, {} producer(s), {cores} cores",
        env!("CARGO_PKG_VERSION"),
        config.shards,
        backpressure.unwrap_or_default(),
        args.events,
        payload(0, args.size).len(),
        args.producers,
    )
}

fn table(title: &str, phases: &[Phase]) -> String {
    let mut out = format!("{title}\n\n| phase | events | seconds | events/s | p50 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for phase in phases {
        let secs = phase.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { phase.events as f64 / secs } else { 0.0 };
        let mut sorted = phase.samples.clone();
        sorted.sort_unstable();
        let at = |q: f64| match sorted.len() {
            0 => "-".to_owned(),
            n => nanos(sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1]),
        };
        out.push_str(&format!(
            "| {} | {} | {secs:.3} | {rate:.0} | {} | {} | {} | {} |\n",
            phase.name,
            phase.events,
            at(0.5),
            at(0.99),
            at(0.999),
            at(1.0)
        ));
    }
    out
}

/// `85 ns`, `1.2 µs`, `3.4 ms`, `1.20 s`.
fn nanos(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_json_of_the_asked_size() {
        for size in [0, 10, 100, 4096] {
            let p = payload(3, size);
            serde_json::from_slice::<Value>(&p).unwrap();
            assert_eq!(p.len(), size.max(payload(3, 0).len()));
        }
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let phase = Phase { name: "x", events: 10, elapsed: Duration::from_secs(1), samples: (1..=1000).collect() };
        let t = table("t", &[phase]);
        assert!(t.contains("| x | 10 | 1.000 | 10 | 500 ns | 990 ns | 999 ns | 1.0 µs |"), "{t}");
    }

    #[test]
    fn spread_hashes_differ_for_neighbours() {
        assert_ne!(spread(1) % 4, spread(2) % 4);
    }
}
