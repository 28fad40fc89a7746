//! Crash test with real processes: a child ingests into a disk bus with `fsync` = `batch` and
//! prints how many events a completed `flush` covers; the parent SIGKILLs it mid-stream, at a
//! random moment, several times over the same directory. After each kill the parent reopens
//! the log and checks that every event acknowledged by a flush is there exactly once, each
//! shard in order, and that nothing else (no damaged or repeated event) comes back.
//!
//! A `harness = false` test: the same binary is the child when `PURPLE_RAIN_CRASH_CHILD` names
//! the directory. Bounded: a handful of rounds of under half a second of ingest each.

use purple_rain::{AdapterConfig, ConsumeRequest, EventBus, EventBusConfig, RawEvent};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: u64 = 6;
const CHILD_ENV: &str = "PURPLE_RAIN_CRASH_CHILD";

fn config(dir: &Path) -> EventBusConfig {
    EventBusConfig::builder().shards(4).ring_capacity(1 << 14).adapter(AdapterConfig::disk(dir)).build().unwrap()
}

fn event(round: u64, n: u64) -> Vec<u8> {
    format!(r#"{{"r":{round},"n":{n},"pad":"{}"}}"#, "x".repeat(70)).into_bytes()
}

/// Ingests until killed, printing the count of events every completed flush covers.
fn child(dir: &Path, round: u64) {
    purple_rain::runtime::wait({
        let dir = dir.to_owned();
        async move {
            let bus = EventBus::new(config(&dir)).await.unwrap();
            let mut out = std::io::stdout();
            for n in 0.. {
                bus.ingest_raw(RawEvent::from_bytes(event(round, n))).unwrap();
                if n % 97 == 96 {
                    bus.flush().await.unwrap();
                    writeln!(out, "{}", n + 1).unwrap();
                    out.flush().unwrap();
                }
            }
        }
    });
}

/// Runs round `round`'s child, kills it with SIGKILL, and returns how many events it had
/// acknowledged.
fn crash_round(dir: &Path, round: u64) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, dir)
        .env("PURPLE_RAIN_CRASH_ROUND", round.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (acks, acked) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = acks.send(line.trim().parse::<u64>().unwrap());
        }
    });
    // Wait for the first acknowledgement, then let it run a random while longer.
    let first = acked.recv_timeout(Duration::from_secs(30)).expect("the child acknowledges a flush");
    std::thread::sleep(Duration::from_millis(fastrand::u64(20..300)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    acked.try_iter().last().unwrap_or(first)
}

/// Reopens the log and checks every round's acknowledged events.
fn check(dir: &Path, acked: &[u64]) {
    purple_rain::runtime::wait({
        let (dir, acked) = (dir.to_owned(), acked.to_vec());
        async move {
            let bus = EventBus::new(config(&dir)).await.unwrap();
            let mut seen = HashSet::new();
            let mut last: HashMap<u16, (u64, u64, u64)> = HashMap::new();
            let mut request = ConsumeRequest::new(5000);
            loop {
                let page = bus.poll(request.clone()).await.unwrap();
                assert_eq!(page.missed, 0);
                for e in &page.events {
                    let value: serde_json::Value = serde_json::from_slice(&e.payload).expect("an intact event");
                    let key = (value["r"].as_u64().unwrap(), value["n"].as_u64().unwrap());
                    assert_eq!(e.payload.as_ref(), event(key.0, key.1).as_slice(), "intact payload");
                    assert!(seen.insert(key), "{key:?} returned twice");
                    if let Some(&(seq, r, n)) = last.get(&e.shard) {
                        assert!(e.sequence > seq && (key.0, key.1) > (r, n), "shard {} out of order", e.shard);
                    }
                    last.insert(e.shard, (e.sequence, key.0, key.1));
                }
                if !page.has_more {
                    break;
                }
                request = request.from(page.cursor);
            }
            for (round, &count) in acked.iter().enumerate() {
                let missing = (0..count).filter(|n| !seen.contains(&(round as u64, *n))).count();
                assert_eq!(missing, 0, "round {round}: {missing} of {count} acknowledged events lost");
            }
            bus.shutdown().await.unwrap();
        }
    });
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let round = std::env::var("PURPLE_RAIN_CRASH_ROUND").unwrap().parse().unwrap();
        child(Path::new(&dir), round);
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        acked.push(crash_round(dir.path(), round));
        check(dir.path(), &acked);
    }
    println!(
        "disk crash test: {ROUNDS} SIGKILLs, {} acknowledged events all intact, in {:.1}s",
        acked.iter().sum::<u64>(),
        started.elapsed().as_secs_f64()
    );
}
