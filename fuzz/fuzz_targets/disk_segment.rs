//! Fuzzes the disk adapter's recovery and reads: any bytes as segment files (and as the
//! manifest) in a log directory are opened through the public API, written by a writer (with
//! and without `repair`), read-only, or through an `EventBus`, and every event is polled.
//!
//! It must never panic, never return an event that is not a whole record of the input whose
//! CRC32C holds (checked here with an independent decoder), never return a shard's sequences
//! out of order, and never allocate more than the input warrants (run it with
//! `-malloc_limit_mb`, as `.ci/test-all` does: a 4 GiB length field must not become a 4 GiB
//! buffer). A writer's recovery must also be final: opening again finds nothing to cut off
//! and serves the same events.
//!
//! Input: one flags byte, then (with flag `MANIFEST`) a length byte and that many bytes of
//! manifest, then the segment files back to back: a new file starts at every segment header
//! (`PRSEG\0\0`, then the record format, 1 or 2), so a real segment file, or several
//! concatenated, is a valid input (`fuzz/seeds/disk_segment/` holds some written by the
//! adapter). Each file is named by the sequence its first record claims, unless the flags say
//! otherwise.
//!
//! Run with `cargo fuzz run disk_segment fuzz/corpus/disk_segment fuzz/seeds/disk_segment
//! -- -malloc_limit_mb=256` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use purple_rain::adapter::{Adapter, DiskAdapter, ShardRead};
use purple_rain::{AdapterConfig, ConsumeRequest, DiskAdapterConfig, EventBus, EventBusConfig, RawEvent};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// What every segment header starts with; its next byte is the record format (1 or 2).
const SEGMENT_MAGIC: &[u8] = b"PRSEG\0\0";
const SEGMENT_HEADER_LEN: usize = 8;
/// Bytes before the payload: format 1, and format 2 (with the origin node and sequence).
const RECORD_HEADERS: [usize; 2] = [40, 56];
const VALID_MANIFEST: &str = "purple-rain-disk 1\nstore 0123456789abcdef0123456789abcdef\n";

/// Flags byte: bits 0-1 how the log is opened.
const OPEN_MASK: u8 = 0b11;
// 0: a writer.
const OPEN_REPAIR: u8 = 1;
const OPEN_READ_ONLY: u8 = 2;
const OPEN_BUS: u8 = 3;
/// With `OPEN_BUS`: open with `repair`.
const BUS_REPAIR: u8 = 1 << 2;
/// The manifest comes from the input.
const MANIFEST: u8 = 1 << 3;
/// Bits 4-5: how segment files are named.
const NAME_SHIFT: u8 = 4;
/// A 64-byte cache: every event but the newest few is read from its segment file.
const SMALL_CACHE: u8 = 1 << 6;
/// Segments alternate between shards 0 and 1.
const TWO_SHARDS: u8 = 1 << 7;

/// (shard, sequence, timestamp, origin node, payload) of an event.
type Seen = (u16, u64, u64, u64, Vec<u8>);

/// The log directory, on tmpfs when there is one, emptied and reused by every run.
fn log_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
        base.join(format!("purple-rain-fuzz-disk-{}", std::process::id()))
    })
}

struct Input<'a> {
    flags: u8,
    manifest: Option<&'a [u8]>,
    segments: Vec<&'a [u8]>,
}

fn parse(data: &[u8]) -> Option<Input<'_>> {
    let (&flags, mut rest) = data.split_first()?;
    let mut manifest = None;
    if flags & MANIFEST != 0 {
        let (&len, after) = rest.split_first()?;
        let len = (len as usize).min(after.len());
        manifest = Some(&after[..len]);
        rest = &after[len..];
    }
    let mut starts: Vec<usize> = (1..rest.len()).filter(|&at| rest[at..].starts_with(SEGMENT_MAGIC)).collect();
    starts.insert(0, 0);
    starts.push(rest.len());
    let segments = starts.windows(2).map(|w| &rest[w[0]..w[1]]).filter(|s| !s.is_empty()).collect();
    Some(Input { flags, manifest, segments })
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The file name's first sequence for segment `index`.
fn segment_name(flags: u8, index: usize, bytes: &[u8], previous: Option<u64>) -> u64 {
    let claimed = u64_at(bytes, SEGMENT_HEADER_LEN + 8);
    let next = previous.map_or(0, |p| p.wrapping_add(1));
    match (flags >> NAME_SHIFT) & 0b11 {
        0 => claimed.unwrap_or(next),
        1 => claimed.unwrap_or(next).wrapping_add(1),
        2 => u64::MAX - index as u64,
        _ => index as u64,
    }
}

/// Every whole record with a good checksum at any offset of `bytes`, in either format,
/// decoded independently of the adapter's decoder: the events the adapter may return.
fn checksummed_records(shard: u16, bytes: &[u8], out: &mut HashSet<Seen>) {
    for header_len in RECORD_HEADERS {
        for at in 0..bytes.len().saturating_sub(header_len - 1) {
            let header = &bytes[at..at + header_len];
            let len = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
            let Some(payload) = bytes.get(at + header_len..at + header_len + len) else { continue };
            let crc = crc32c::crc32c_append(crc32c::crc32c(&header[4..]), payload);
            if crc == u32::from_le_bytes(header[..4].try_into().unwrap()) {
                let sequence = u64_at(header, 8).unwrap();
                let timestamp = u64_at(header, 16).unwrap();
                let origin = u64_at(header, 40).unwrap_or(0);
                out.insert((shard, sequence, timestamp, origin, payload.to_vec()));
            }
        }
    }
}

/// Writes the input into an emptied log directory; returns the records it holds.
fn lay_out(input: &Input<'_>) -> HashSet<Seen> {
    let dir = log_dir();
    let _ = std::fs::remove_dir_all(dir);
    let shard_dirs = [dir.join("shard-00000"), dir.join("shard-00001")];
    std::fs::create_dir_all(&shard_dirs[0]).expect("create the shard directory");
    std::fs::create_dir_all(&shard_dirs[1]).expect("create the shard directory");
    let manifest = input.manifest.unwrap_or(VALID_MANIFEST.as_bytes());
    std::fs::write(dir.join("MANIFEST"), manifest).expect("write the manifest");
    let mut valid = HashSet::new();
    let mut previous = [None, None];
    for (index, bytes) in input.segments.iter().enumerate() {
        let shard = if input.flags & TWO_SHARDS != 0 { index % 2 } else { 0 };
        let first = segment_name(input.flags, index, bytes, previous[shard]);
        previous[shard] = Some(first);
        std::fs::write(shard_dirs[shard].join(format!("{first:020}.log")), bytes).expect("write a segment");
        checksummed_records(shard as u16, bytes, &mut valid);
    }
    valid
}

fn config(flags: u8) -> DiskAdapterConfig {
    let config = AdapterConfig::disk(log_dir()).segment_bytes(4096);
    if flags & SMALL_CACHE != 0 {
        config.cache_bytes_per_shard(64)
    } else {
        config
    }
}

/// Polls every shard of `adapter` from its start, checking each event against `valid`.
/// Returns what it saw, and whether some shard's read failed.
fn drain_adapter(adapter: &Arc<DiskAdapter>, valid: &HashSet<Seen>) -> (Vec<Seen>, bool) {
    let mut seen = Vec::new();
    let mut failed = false;
    let mut shards = adapter.stored_shards();
    shards.extend([0, 1]);
    shards.sort_unstable();
    shards.dedup();
    for shard in shards {
        let mut from = 0;
        let mut last = None;
        // More rounds than any input has records: a read that stops advancing is a bug.
        for _ in 0..100_000 {
            let adapter = adapter.clone();
            let read = ShardRead { shard, from, max_events: 3, filter: None, recycled_ids: None };
            let page = match purple_rain::runtime::wait(async move { adapter.read_shard(read).await }) {
                Ok(page) => page,
                Err(_) => {
                    failed = true;
                    break;
                }
            };
            for event in &page.events {
                assert_eq!(event.shard, shard);
                assert!(
                    last.is_none_or(|last| event.sequence > last),
                    "shard {shard}: {} after {last:?}",
                    event.sequence
                );
                assert!(
                    event.sequence >= from && event.sequence < page.next,
                    "{} outside {from}..{}",
                    event.sequence,
                    page.next
                );
                last = Some(event.sequence);
                let event = (shard, event.sequence, event.timestamp_ns, event.origin, event.payload.to_vec());
                assert!(valid.contains(&event), "returned an event that is no checksummed record: {event:?}");
                seen.push(event);
            }
            if !page.more {
                break;
            }
            assert!(page.next > from, "shard {shard}: a read from {from} did not advance");
            from = page.next;
        }
    }
    (seen, failed)
}

fn metric(adapter: &DiskAdapter, name: &str) -> f64 {
    let mut metrics = Vec::new();
    adapter.metrics(&mut metrics);
    metrics.into_iter().find(|m| m.name == name).map_or(0.0, |m| m.value)
}

fn shutdown(adapter: Arc<DiskAdapter>) {
    let _ = purple_rain::runtime::wait(async move { adapter.shutdown().await });
}

/// Opens with the adapter itself; a writer that opened must find its recovery final on a
/// second open.
fn through_adapter(flags: u8, valid: &HashSet<Seen>) {
    let open = flags & OPEN_MASK;
    let config = config(flags).repair(open == OPEN_REPAIR).read_only(open == OPEN_READ_ONLY);
    let Ok(adapter) = DiskAdapter::open(config.clone()) else { return };
    let adapter = Arc::new(adapter);
    let (seen, failed) = drain_adapter(&adapter, valid);
    shutdown(adapter);
    if open == OPEN_READ_ONLY {
        return;
    }
    let again = Arc::new(DiskAdapter::open(config.repair(false)).expect("a recovered log opens again"));
    assert_eq!(metric(&again, "disk_recovery_torn_tails_total"), 0.0, "recovery left a torn tail");
    assert_eq!(metric(&again, "disk_recovery_repairs_total"), 0.0, "recovery left damage");
    let (seen_again, failed_again) = drain_adapter(&again, valid);
    shutdown(again);
    assert_eq!((seen_again, failed_again), (seen, failed), "a second open serves what the first did");
}

/// Opens through a bus, appends, and polls everything back.
fn through_bus(flags: u8, valid: &HashSet<Seen>) {
    const APPENDED: [&[u8]; 2] = [b"{\"fuzz\":1}", b"{\"fuzz\":2}"];
    let config = config(flags).repair(flags & BUS_REPAIR != 0);
    let shards = if flags & TWO_SHARDS != 0 { 2 } else { 1 };
    let polled = purple_rain::runtime::wait(async move {
        let config = EventBusConfig::builder().shards(shards).adapter(config).build().ok()?;
        let bus = EventBus::new(config).await.ok()?;
        for payload in APPENDED {
            bus.ingest_raw(RawEvent::from_bytes(payload.to_vec())).expect("ingest");
        }
        // Events may be dropped (a log whose sequences end at u64::MAX has none left for them);
        // every one dispatched must be polled back.
        let _ = bus.flush().await;
        let dispatched = bus.stats().snapshot().events_dispatched;
        let mut request = ConsumeRequest::new(5);
        let mut found = Vec::new();
        let mut failed = false;
        for _ in 0..100_000 {
            let Ok(page) = bus.poll(request.clone()).await else {
                failed = true;
                break;
            };
            found.extend(page.events);
            if !page.has_more {
                break;
            }
            request = ConsumeRequest::new(5).from(page.cursor);
        }
        let _ = bus.shutdown().await;
        Some((found, dispatched, failed))
    });
    let Some((found, dispatched, failed)) = polled else { return };
    let mut last = [None, None];
    for event in &found {
        let last = &mut last[usize::from(event.shard)];
        assert!(last.is_none_or(|l| event.sequence > l), "shard {}: {} after {last:?}", event.shard, event.sequence);
        *last = Some(event.sequence);
        let seen = (event.shard, event.sequence, event.timestamp_ns, event.origin, event.payload.to_vec());
        assert!(
            valid.contains(&seen) || APPENDED.contains(&event.payload.as_ref()),
            "returned an event that is no checksummed record: {seen:?}"
        );
    }
    let new = found.iter().filter(|e| APPENDED.contains(&e.payload.as_ref())).count();
    assert!(new as u64 >= dispatched || failed, "dispatched {dispatched}, polled back {new}");
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = parse(data) else { return };
    let valid = lay_out(&input);
    if input.flags & OPEN_MASK == OPEN_BUS {
        through_bus(input.flags, &valid);
    } else {
        through_adapter(input.flags, &valid);
    }
    // Only a failing run leaves its directory behind (libFuzzer exits without dropping statics).
    let _ = std::fs::remove_dir_all(log_dir());
});
