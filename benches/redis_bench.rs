//! Redis adapter throughput: sustained publish of 100-byte events through the bus, poll, and in
//! the same run a raw pipelined `XADD` loop with the `redis` crate as the ceiling.
//!
//! ```text
//! cargo bench --features redis --bench redis_bench -- [events] [redis-url]
//! ```
//! Defaults: 500000 events, `redis://127.0.0.1:6379`. Keys use a fresh prefix and are deleted
//! at the end.

use purple_rain::{AdapterConfig, BackpressureMode, ConsumeRequest, EventBus, EventBusConfig, Ordering, RawEvent};
use std::sync::Arc;
use std::time::Instant;

const PAYLOAD: usize = 100;
const SHARDS: u16 = 4;

fn payload(i: usize) -> Vec<u8> {
    let mut p = format!(r#"{{"n":{i},"kind":"bench","pad":""#).into_bytes();
    p.resize(PAYLOAD - 2, b'x');
    p.extend_from_slice(br#""}"#);
    p
}

fn rate(events: usize, started: Instant) -> f64 {
    events as f64 / started.elapsed().as_secs_f64()
}

/// The ceiling: one stream per shard, pipelines of 1024 `XADD`s, one pipeline in flight per
/// stream at a time (as the bus has one batch in flight per shard). `full` writes the same
/// entries the adapter writes (one field: timestamp, dedup id, newline, payload); otherwise
/// the payload alone.
async fn raw_xadd(url: &str, prefix: &str, events: usize, full: bool) -> redis::RedisResult<f64> {
    let client = redis::Client::open(url)?;
    let conn = client.get_multiplexed_async_connection().await?;
    let per_stream = events / SHARDS as usize;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for shard in 0..SHARDS {
        let mut conn = conn.clone();
        let key = format!("{prefix}:raw:{shard}");
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < per_stream {
                let n = 1024.min(per_stream - sent);
                let mut pipe = redis::pipe();
                for i in sent..sent + n {
                    let mut field = Vec::with_capacity(PAYLOAD + 48);
                    if full {
                        let ts = 1_764_000_000_000_000_000u64 + i as u64;
                        field.extend_from_slice(format!("{ts} 0123456789abcdef:1:{shard}:{i}\n").as_bytes());
                    }
                    field.extend_from_slice(&payload(i));
                    pipe.cmd("XADD").arg(&key).arg("*").arg("e").arg(field).ignore();
                }
                pipe.exec_async(&mut conn).await?;
                sent += n;
            }
            Ok::<_, redis::RedisError>(())
        }));
    }
    for task in tasks {
        task.await.expect("raw task")?;
    }
    Ok(rate(per_stream * SHARDS as usize, started))
}

async fn publish(url: &str, prefix: &str, events: usize) -> Result<(f64, Arc<EventBus>), Box<dyn std::error::Error>> {
    let config = EventBusConfig::builder()
        .shards(SHARDS)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .adapter(AdapterConfig::redis(url).stream_prefix(prefix))
        .build()?;
    let bus = Arc::new(EventBus::new(config).await?);
    let payloads: Vec<RawEvent> = (0..events).map(|i| RawEvent::from_bytes(payload(i))).collect();
    let started = Instant::now();
    let producer = {
        let bus = bus.clone();
        tokio::task::spawn_blocking(move || {
            for event in payloads {
                bus.ingest_raw(event).expect("ingest");
            }
        })
    };
    producer.await?;
    bus.flush().await?;
    let rate = rate(events, started);
    let stats = bus.stats().snapshot();
    assert_eq!(stats.events_dispatched, events as u64, "{stats:?}");
    Ok((rate, bus))
}

async fn poll(
    bus: &EventBus,
    events: usize,
    limit: usize,
    ordering: Ordering,
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut cursor: Option<String> = None;
    let mut read = 0;
    loop {
        let mut request = ConsumeRequest::new(limit).ordering(ordering);
        if let Some(c) = cursor.take() {
            request = request.from(c);
        }
        let page = bus.poll(request).await?;
        read += page.events.len();
        cursor = Some(page.cursor);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(read, events);
    Ok(rate(read, started))
}

/// The poll ceiling: `XRANGE` pages of 10000 entries straight into `redis::Value`s.
async fn raw_xrange(url: &str, prefix: &str) -> redis::RedisResult<f64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let started = Instant::now();
    let mut read = 0;
    for shard in 0..SHARDS {
        let mut from = "-".to_owned();
        loop {
            let page: Vec<(String, redis::Value)> = redis::cmd("XRANGE")
                .arg(format!("{prefix}:raw:{shard}"))
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut conn)
                .await?;
            let Some((last, _)) = page.last() else { break };
            from = format!("({last}");
            read += page.len();
        }
    }
    Ok(rate(read, started))
}

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

/// Redis CPU seconds so far (user + sys), to show where the time goes on a dedicated server.
fn server_cpu(url: &str) -> redis::RedisResult<f64> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    let info: String = redis::cmd("INFO").arg("cpu").query(&mut conn)?;
    let field = |name: &str| -> f64 {
        info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
    };
    Ok(field("used_cpu_user:") + field("used_cpu_sys:"))
}

fn cleanup(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query(&mut conn)?;
    for key in keys {
        redis::cmd("DEL").arg(key).exec(&mut conn)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` adds `--bench` to the arguments it passes on.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let events: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500_000);
    let url = args.next().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let prefix = format!("bench_{}_{:08x}", std::process::id(), fastrand::u32(..));
    println!("{events} events of {PAYLOAD} bytes, {SHARDS} shards, {url}");

    // (server, client) CPU microseconds per event since `mark`.
    let mark = || -> redis::RedisResult<(f64, f64)> { Ok((server_cpu(&url)?, own_cpu())) };
    let cost = |(server, client): (f64, f64)| -> redis::RedisResult<String> {
        let per = |d: f64| d * 1e6 / events as f64;
        Ok(format!(
            "server {:.2} us/event, client {:.2} us/event",
            per(server_cpu(&url)? - server),
            per(own_cpu() - client)
        ))
    };

    let at = mark()?;
    let raw_min = raw_xadd(&url, &prefix, events, false).await?;
    println!("raw pipelined XADD, payload only:   {raw_min:>9.0} events/s  ({})", cost(at)?);
    cleanup(&url, &prefix)?;
    let at = mark()?;
    let raw = raw_xadd(&url, &prefix, events, true).await?;
    println!("raw pipelined XADD, same entries:   {raw:>9.0} events/s  ({})", cost(at)?);
    let at = mark()?;
    let raw_read = raw_xrange(&url, &prefix).await?;
    println!("raw XRANGE into redis::Value:       {raw_read:>9.0} events/s  ({})", cost(at)?);
    cleanup(&url, &prefix)?;

    let at = mark()?;
    let (published, bus) = publish(&url, &prefix, events).await?;
    println!(
        "bus publish:                        {published:>9.0} events/s  ({}); {:.0}% of raw same entries, {:.0}% of payload-only",
        cost(at)?,
        100.0 * published / raw,
        100.0 * published / raw_min
    );
    for limit in [10_000, 1_000] {
        let at = mark()?;
        let polled = poll(&bus, events, limit, Ordering::Sequence).await?;
        println!("bus poll, limit {limit:>5}:             {polled:>9.0} events/s  ({})", cost(at)?);
    }
    // Each shard read is a round trip here, so this row shows what the merge's read sizes cost.
    let at = mark()?;
    let polled = poll(&bus, events, 1_000, Ordering::Timestamp).await?;
    println!("bus poll Timestamp, limit  1000:    {polled:>9.0} events/s  ({})", cost(at)?);

    Arc::into_inner(bus).ok_or("bus still shared")?.shutdown().await?;
    cleanup(&url, &prefix)?;
    Ok(())
}
