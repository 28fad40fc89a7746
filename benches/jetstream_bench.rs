//! Publish and poll throughput of the JetStream adapter against a local nats-server, with a raw
//! `async-nats` publish loop (same outstanding-ack bound, same headers) as the ceiling.
//!
//! ```text
//! cargo bench --features jetstream --bench jetstream_bench -- [events] [file|memory]
//! ```
//! `PURPLE_RAIN_NATS_URL` picks the server (default `nats://127.0.0.1:4222`). Streams are
//! created under a random prefix and deleted at the end.

use async_nats::header::{HeaderMap, HeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config, StorageType};
use futures_util::stream::{FuturesUnordered, StreamExt};
use purple_rain::adapter::JetStreamStorage;
use purple_rain::{AdapterConfig, BackpressureMode, ConsumeRequest, EventBus, EventBusConfig, Ordering, RawEvent};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 100;
const WINDOW: usize = 4096;
const SHARDS: u16 = 4;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn payload(i: usize) -> Vec<u8> {
    let mut p = format!(r#"{{"i":{i},"pad":""#).into_bytes();
    p.resize(PAYLOAD - 2, b'x');
    p.extend_from_slice(b"\"}");
    p
}

fn main() -> Result<(), Error> {
    // `cargo bench` adds `--bench` to the arguments it passes on.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let events: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200_000);
    let storage = match args.next().as_deref() {
        Some("memory") => JetStreamStorage::Memory,
        _ => JetStreamStorage::File,
    };
    let url = std::env::var("PURPLE_RAIN_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let prefix = format!("bench_{:08x}", fastrand::u32(..));
    println!("{events} events of {PAYLOAD} bytes, {SHARDS} shards, {storage:?} storage, ack window {WINDOW}");

    let mut raw: f64 = 0.0;
    for tasks in [1, SHARDS as usize] {
        let rate = purple_rain::runtime::wait(raw_publish(
            url.clone(),
            format!("{prefix}raw{tasks}"),
            events,
            storage,
            tasks,
        ))?;
        println!("raw async-nats publish, {tasks} task(s):      {rate:>9.0} events/s");
        raw = raw.max(rate);
    }

    let (publish, polls) = bus_run(&url, &prefix, events, storage)?;
    let share = 100.0 * publish / raw;
    println!("bus ingest -> jetstream -> flush: {publish:>9.0} events/s ({share:.0}% of the best raw)");
    for ((limit, ordering), rate) in POLLS.iter().zip(polls) {
        println!("bus poll {ordering:?}, limit {limit:>5}:  {rate:>9.0} events/s");
    }

    purple_rain::runtime::wait(cleanup(url, prefix))?;
    Ok(())
}

/// The ceiling: `tasks` tasks publishing to `SHARDS` streams (as the bus spreads its events),
/// with at most `WINDOW` acks outstanding in all, the same headers as the adapter, and nothing
/// else: no ring, no batching, no dedup-id formatting beyond the header value.
async fn raw_publish(
    url: String,
    prefix: String,
    events: usize,
    storage: JetStreamStorage,
    tasks: usize,
) -> Result<f64, Error> {
    let client = async_nats::connect(url).await?;
    let js = async_nats::jetstream::ContextBuilder::new().max_ack_inflight(WINDOW).build(client);
    let mut subjects = Vec::new();
    for shard in 0..SHARDS {
        let subject = format!("{prefix}.{shard}");
        js.create_stream(Config {
            name: format!("{prefix}_{shard}"),
            subjects: vec![subject.clone()],
            storage: match storage {
                JetStreamStorage::File => StorageType::File,
                JetStreamStorage::Memory => StorageType::Memory,
            },
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
        subjects.push(async_nats::Subject::from(subject));
    }
    let per_task = events / tasks;
    let payloads: Vec<Vec<bytes::Bytes>> =
        (0..tasks).map(|t| (0..per_task).map(|i| payload(t * per_task + i).into()).collect()).collect();
    let started = Instant::now();
    let handles: Vec<_> = payloads
        .into_iter()
        .enumerate()
        .map(|(t, payloads)| {
            let (js, subjects) = (js.clone(), subjects.clone());
            tokio::spawn(async move {
                let mut pending = FuturesUnordered::new();
                for (i, p) in payloads.into_iter().enumerate() {
                    if pending.len() == WINDOW / tasks {
                        pending.next().await.transpose()?;
                    }
                    let shard = (t + i) % SHARDS as usize;
                    let mut headers = HeaderMap::new();
                    headers.insert(NATS_MESSAGE_ID, format!("{:016x}:1:{shard}:{t}-{i}", 0xfeed_u64));
                    headers.insert("Pr-Ts", HeaderValue::from(i as u64));
                    let message = PublishMessage::build().payload(p).headers(headers);
                    let ack = js.send_publish(subjects[shard].clone(), message).await?;
                    pending.push(ack.into_future());
                }
                while let Some(ack) = pending.next().await {
                    ack?;
                }
                Ok::<(), Error>(())
            })
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    let rate = (per_task * tasks) as f64 / started.elapsed().as_secs_f64();
    for shard in 0..SHARDS {
        js.delete_stream(format!("{prefix}_{shard}")).await?;
    }
    Ok(rate)
}

/// The polls timed after the publish, each over the whole stream. Each shard read is a round
/// trip here, so the timestamp row shows what the merge's read sizes cost.
const POLLS: [(usize, Ordering); 2] = [(10_000, Ordering::Sequence), (1_000, Ordering::Timestamp)];

fn bus_run(url: &str, prefix: &str, events: usize, storage: JetStreamStorage) -> Result<(f64, Vec<f64>), Error> {
    let adapter = AdapterConfig::jetstream(url).stream_prefix(prefix).storage(storage).max_outstanding_acks(WINDOW);
    let config = EventBusConfig::builder()
        .shards(SHARDS)
        .ring_capacity(1 << 14)
        .backpressure(BackpressureMode::Block)
        .adapter(adapter)
        .build()?;
    let bus = Arc::new(purple_rain::runtime::wait(EventBus::new(config))?);
    let payloads: Vec<RawEvent> = (0..events).map(|i| RawEvent::from_bytes(payload(i))).collect();

    let started = Instant::now();
    for event in payloads {
        bus.ingest_raw(event)?;
    }
    let b = bus.clone();
    purple_rain::runtime::wait(async move { b.flush().await })?;
    let publish = events as f64 / started.elapsed().as_secs_f64();
    let stats = bus.stats().snapshot();
    assert_eq!(stats.events_dispatched, events as u64, "{stats:?}");

    let mut polls = Vec::new();
    for (limit, ordering) in POLLS {
        let b = bus.clone();
        let (read, elapsed) = purple_rain::runtime::wait(async move {
            let started = Instant::now();
            let (mut read, mut cursor) = (0usize, None::<String>);
            loop {
                let mut request = ConsumeRequest::new(limit).ordering(ordering);
                if let Some(c) = cursor.take() {
                    request = request.from(c);
                }
                let page = b.poll(request).await?;
                read += page.events.len();
                cursor = Some(page.cursor);
                if !page.has_more {
                    return Ok::<_, Error>((read, started.elapsed()));
                }
            }
        })?;
        assert_eq!(read, events, "poll read every event once");
        polls.push(read as f64 / elapsed.as_secs_f64());
    }
    let b = bus.clone();
    purple_rain::runtime::wait(async move { b.shutdown_via_ref().await })?;
    Ok((publish, polls))
}

async fn cleanup(url: String, prefix: String) -> Result<(), Error> {
    let js = async_nats::jetstream::new(async_nats::connect(url).await?);
    for shard in 0..SHARDS {
        let _ = js.delete_stream(format!("{prefix}_{shard}")).await;
    }
    Ok(())
}
