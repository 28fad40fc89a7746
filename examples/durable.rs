//! Kill and resume with the disk adapter.
//!
//! `cargo run --release --example durable [-- DIR]` starts a child process that ingests into a
//! disk bus (`fsync` = `batch`) and prints how many events each completed `flush` covers, kills
//! it with SIGKILL after a second, then reopens the log: every acknowledged event is there,
//! sequences continue where they stopped, and a cursor taken before a restart resumes after it.
//! The directory (a temporary one by default) can be reused across runs.

use purple_rain::{AdapterConfig, ConsumeRequest, EventBus, EventBusConfig, RawEvent};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn open(dir: &Path) -> Result<EventBus, Error> {
    let config = EventBusConfig::builder().shards(4).adapter(AdapterConfig::disk(dir)).build()?;
    Ok(EventBus::new(config).await?)
}

/// The child: ingests until killed, printing the acknowledged count after every flush.
async fn produce(dir: PathBuf) -> Result<(), Error> {
    let bus = open(&dir).await?;
    let mut out = std::io::stdout();
    for n in 0u64.. {
        bus.ingest_raw(RawEvent::from_bytes(format!(r#"{{"n":{n}}}"#)))?;
        if n % 1000 == 999 {
            bus.flush().await?;
            writeln!(out, "{}", n + 1)?;
        }
    }
    Ok(())
}

/// Polls everything from `cursor`; returns the count and the cursor at the end.
async fn read_all(bus: &EventBus, mut cursor: String) -> Result<(usize, String), Error> {
    let mut count = 0;
    loop {
        let page = bus.poll(ConsumeRequest::new(10_000).from(cursor)).await?;
        count += page.events.len();
        cursor = page.cursor;
        if !page.has_more {
            return Ok((count, cursor));
        }
    }
}

async fn demo(dir: PathBuf) -> Result<(), Error> {
    let before = {
        let bus = open(&dir).await?;
        let (count, cursor) = read_all(&bus, String::new()).await?;
        bus.shutdown().await?;
        println!("{}: {count} events from earlier runs", dir.display());
        cursor
    };

    let mut child = Command::new(std::env::current_exe()?)
        .args(["produce", &dir.to_string_lossy()])
        .stdout(Stdio::piped())
        .spawn()?;
    let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let started = Instant::now();
    let mut acknowledged = 0u64;
    for line in lines.lines() {
        acknowledged = line?.trim().parse()?;
        if started.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    child.kill()?; // SIGKILL: no shutdown, no final flush
    child.wait()?;
    println!("child killed with SIGKILL after {acknowledged} acknowledged events");

    let bus = open(&dir).await?;
    let (count, end) = read_all(&bus, before).await?;
    println!("reopened: {count} new events since the earlier runs (every acknowledged one, and any written after it)");
    assert!(count as u64 >= acknowledged, "an acknowledged event is missing");
    for n in 0..5 {
        bus.ingest_raw(RawEvent::from_bytes(format!(r#"{{"after_restart":{n}}}"#)))?;
    }
    bus.flush().await?;
    let page = bus.poll(ConsumeRequest::new(100).from(end)).await?;
    for event in &page.events {
        println!(
            "  resumed from the cursor: shard {} sequence {} {}",
            event.shard,
            event.sequence,
            String::from_utf8_lossy(&event.payload)
        );
    }
    bus.shutdown().await?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, dir] if mode == "produce" => purple_rain::runtime::wait(produce(PathBuf::from(dir)))?,
        [dir] => purple_rain::runtime::wait(demo(PathBuf::from(dir)))?,
        [] => {
            let scratch = tempfile::tempdir()?;
            purple_rain::runtime::wait(demo(scratch.path().to_owned()))?
        }
        _ => return Err("usage: durable [DIR]".into()),
    }
    Ok(())
}
