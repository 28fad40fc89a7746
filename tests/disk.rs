//! The disk adapter through the bus: restart with cursor continuity, the directory lock, torn
//! tails and flipped bytes on real segment files, reads of old segments, retention.

mod common;

use common::{assert_exactly_once, drain, payload, Drained};
use purple_rain::error::ErrorKind;
use purple_rain::{
    AdapterConfig, ConfigError, ConsumeRequest, DiskAdapterConfig, DiskFsync, EventBus, EventBusConfig, Ordering,
    RawEvent,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

async fn disk_bus(config: DiskAdapterConfig) -> Result<EventBus, ConfigError> {
    EventBus::new(EventBusConfig::builder().shards(4).ring_capacity(1 << 14).adapter(config).build()?).await
}

async fn ingest(bus: &EventBus, source: &str, range: std::ops::Range<usize>) -> HashSet<Vec<u8>> {
    ingest_flushing_every(bus, source, range, usize::MAX).await
}

/// Ingests with a flush after every `every` events: batches (and so segments, which hold
/// whole batches) stay small.
async fn ingest_flushing_every(
    bus: &EventBus,
    source: &str,
    range: std::ops::Range<usize>,
    every: usize,
) -> HashSet<Vec<u8>> {
    let mut sent = HashSet::new();
    for i in range {
        bus.ingest_raw(RawEvent::from_bytes(payload(source, i))).unwrap();
        sent.insert(payload(source, i));
        if sent.len() % every == 0 {
            bus.flush().await.unwrap();
        }
    }
    bus.flush().await.unwrap();
    sent
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|shard| std::fs::read_dir(shard.unwrap().path()).into_iter().flatten())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_taken_before_a_restart_continues_after_it_with_no_gap_and_no_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let config = AdapterConfig::disk(dir.path());
    let bus = disk_bus(config.clone()).await.unwrap();
    let before = ingest(&bus, "before", 0..3000).await;
    let first = drain(&bus, ConsumeRequest::new(500)).await;
    assert_exactly_once(&first.events, &before);
    let last_sequences: Vec<(u16, u64)> = bus
        .shard_ids()
        .into_iter()
        .map(|s| (s, first.events.iter().filter(|e| e.shard == s).map(|e| e.sequence).max().unwrap()))
        .collect();
    bus.shutdown().await.unwrap();

    let bus = disk_bus(config.clone()).await.unwrap();
    let after = ingest(&bus, "after", 0..2000).await;
    let Drained { events, missed, .. } = drain(&bus, ConsumeRequest::new(700).from(first.cursor.clone())).await;
    assert_eq!(missed, 0);
    assert_exactly_once(&events, &after);
    for (shard, last) in last_sequences {
        let next = events.iter().filter(|e| e.shard == shard).map(|e| e.sequence).min().unwrap();
        assert_eq!(next, last + 1, "shard {shard}: sequences continue where they stopped");
    }
    let everything = drain(&bus, ConsumeRequest::new(1000).ordering(Ordering::Timestamp)).await;
    assert_exactly_once(&everything.events, &before.union(&after).cloned().collect());
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_bus_on_a_locked_directory_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let bus = disk_bus(AdapterConfig::disk(dir.path())).await.unwrap();
    let refused = disk_bus(AdapterConfig::disk(dir.path())).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::DiskLocked, "{refused}");
    assert!(refused.to_string().contains(&format!("pid {}", std::process::id())), "{refused}");
    let reader = disk_bus(AdapterConfig::disk(dir.path()).read_only(true)).await;
    assert!(reader.is_ok(), "a read-only open takes no lock: {reader:?}");
    bus.shutdown().await.unwrap();
    disk_bus(AdapterConfig::disk(dir.path())).await.expect("the lock goes with shutdown").shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_off_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = AdapterConfig::disk(dir.path());
    let bus = disk_bus(config.clone()).await.unwrap();
    let sent = ingest(&bus, "torn", 0..400).await;
    bus.shutdown().await.unwrap();
    // Half a record after the last good one, as a write cut short leaves it.
    let victim = segments(dir.path()).remove(0);
    let good = std::fs::metadata(&victim).unwrap().len();
    let mut bytes = std::fs::read(&victim).unwrap();
    let last_record = bytes[bytes.len() - 130..].to_vec();
    bytes.extend_from_slice(&last_record[..70]);
    std::fs::write(&victim, &bytes).unwrap();

    let bus = disk_bus(config.clone()).await.unwrap();
    assert_eq!(std::fs::metadata(&victim).unwrap().len(), good, "truncated at the last good record");
    let metric = |name: &str| bus.stats().adapter_metrics().into_iter().find(|m| m.name == name).map(|m| m.value);
    assert_eq!(metric("disk_recovery_torn_tails_total"), Some(1.0));
    assert_eq!(metric("disk_recovery_truncated_bytes_total"), Some(70.0));
    let Drained { events, .. } = drain(&bus, ConsumeRequest::new(1000)).await;
    assert_exactly_once(&events, &sent);
    let more = ingest(&bus, "torn-after", 0..100).await;
    let Drained { events, .. } = drain(&bus, ConsumeRequest::new(1000)).await;
    assert_exactly_once(&events, &sent.union(&more).cloned().collect());
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_the_middle_is_refused_with_path_and_offset_until_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let config = AdapterConfig::disk(dir.path());
    let bus = disk_bus(config.clone()).await.unwrap();
    ingest(&bus, "flip", 0..400).await;
    bus.shutdown().await.unwrap();
    let victim = segments(dir.path()).remove(0);
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();

    let refused = disk_bus(config.clone()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::DiskCorrupt, "{refused}");
    let message = refused.to_string();
    assert!(message.contains(&victim.display().to_string()) && message.contains("offset"), "{message}");
    assert_eq!(std::fs::read(&victim).unwrap(), bytes, "a refused open changes nothing");

    let bus = disk_bus(config.clone().repair(true)).await.unwrap();
    let Drained { events, .. } = drain(&bus, ConsumeRequest::new(1000)).await;
    let on_victim: Vec<_> =
        events.iter().filter(|e| victim.to_string_lossy().contains(&format!("shard-{:05}", e.shard))).collect();
    assert!(!on_victim.is_empty() && on_victim.len() < 100 + 100, "the records before the damage remain");
    let sequences: Vec<u64> = on_victim.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (0..sequences.len() as u64).collect::<Vec<_>>(), "no gap before the damage");
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_read_from_their_segments_in_every_mode() {
    for fsync in [DiskFsync::Batch, DiskFsync::Interval, DiskFsync::Never] {
        let dir = tempfile::tempdir().unwrap();
        // Segments of ~8 KiB and a 2 KiB cache: nearly every event is read from a file.
        let config = AdapterConfig::disk(dir.path()).fsync(fsync).segment_bytes(8192).cache_bytes_per_shard(2048);
        let bus = disk_bus(config.clone()).await.unwrap();
        let sent = ingest_flushing_every(&bus, "cold", 0..3000, 100).await;
        let Drained { events, .. } = drain(&bus, ConsumeRequest::new(300)).await;
        assert_exactly_once(&events, &sent);
        assert!(segments(dir.path()).len() > 40, "{fsync:?}: many segments");
        bus.shutdown().await.unwrap();
        let bus = disk_bus(config).await.unwrap();
        let Drained { events, .. } = drain(&bus, ConsumeRequest::new(777)).await;
        assert_exactly_once(&events, &sent);
        bus.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_whole_old_segments_and_a_stale_cursor_is_told_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let config = AdapterConfig::disk(dir.path()).segment_bytes(8192).max_bytes_per_shard(32 << 10);
    let bus = disk_bus(config).await.unwrap();
    let start = drain(&bus, ConsumeRequest::new(10)).await.cursor;
    ingest_flushing_every(&bus, "kept", 0..4000, 100).await;
    for shard in std::fs::read_dir(dir.path()).unwrap().map(|d| d.unwrap().path()).filter(|p| p.is_dir()) {
        let bytes: u64 = std::fs::read_dir(&shard).unwrap().map(|f| f.unwrap().metadata().unwrap().len()).sum();
        assert!(bytes <= (32 << 10) + 8192, "{}: {bytes} bytes kept", shard.display());
    }
    let Drained { events, missed, .. } = drain(&bus, ConsumeRequest::new(1000).from(start)).await;
    let trimmed = bus.stats().snapshot().events_trimmed;
    assert!(trimmed > 0);
    assert_eq!(missed, trimmed, "every deleted event is reported as missed");
    assert_eq!(events.len() as u64 + missed, 4000);
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_bus_follows_the_writer_across_segments_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = AdapterConfig::disk(dir.path()).segment_bytes(8192);
    let writer = disk_bus(config.clone()).await.unwrap();
    let mut sent = ingest_flushing_every(&writer, "early", 0..500, 100).await;
    let reader = disk_bus(config.clone().read_only(true)).await.unwrap();
    let first = drain(&reader, ConsumeRequest::new(200)).await;
    assert_exactly_once(&first.events, &sent);

    let later = ingest_flushing_every(&writer, "later", 0..1500, 100).await;
    let Drained { events, missed, .. } = drain(&reader, ConsumeRequest::new(200).from(first.cursor)).await;
    assert_eq!(missed, 0);
    assert_exactly_once(&events, &later);
    sent.extend(later);
    let everything = drain(&reader, ConsumeRequest::new(333)).await;
    assert_exactly_once(&everything.events, &sent);
    reader.shutdown().await.unwrap();
    writer.shutdown().await.unwrap();
}

/// A segment file holding only the segment header, named as starting at `first`: what a
/// writer killed right after starting a segment leaves.
fn empty_segment(dir: &Path, shard: u16, first: u64) {
    let shard_dir = dir.join(format!("shard-{shard:05}"));
    std::fs::create_dir_all(&shard_dir).unwrap();
    std::fs::write(shard_dir.join(format!("{first:020}.log")), b"PRSEG\0\0\x01").unwrap();
}

// Found by the disk_segment fuzz target: the events two shards report as missed summed past
// u64::MAX and the poll panicked (an overflow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_events_past_u64_max_saturate() {
    let dir = tempfile::tempdir().unwrap();
    empty_segment(dir.path(), 0, 1 << 63);
    empty_segment(dir.path(), 1, 1 << 63);
    let bus =
        EventBus::new(EventBusConfig::builder().shards(2).adapter(AdapterConfig::disk(dir.path())).build().unwrap())
            .await
            .unwrap();
    for ordering in [Ordering::Sequence, Ordering::Timestamp] {
        let page = bus.poll(ConsumeRequest::new(10).ordering(ordering)).await.unwrap();
        assert_eq!(page.missed, u64::MAX, "{ordering:?}");
        assert!(page.events.is_empty() && !page.has_more, "{ordering:?}");
    }
    bus.shutdown().await.unwrap();
}

// Found by the disk_segment fuzz target: a record claiming sequence u64::MAX (which the bus
// never writes) overflowed the segment scan. It is damage at the end of the log: cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_at_the_end_of_the_sequence_space_is_cut_off_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = EventBusConfig::builder().shards(1).adapter(AdapterConfig::disk(dir.path())).build().unwrap();
    empty_segment(dir.path(), 0, u64::MAX - 2);
    let bus = EventBus::new(config.clone()).await.unwrap();
    ingest(&bus, "last", 0..1).await;
    // Its record, forged with sequence u64::MAX - 1 and then u64::MAX, follows it.
    let page = bus.poll(ConsumeRequest::new(10)).await.unwrap();
    assert_eq!(page.events.len(), 1);
    bus.shutdown().await.unwrap();
    let victim = segments(dir.path()).into_iter().find(|p| p.ends_with(format!("{:020}.log", u64::MAX - 2))).unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let good = bytes.len() as u64;
    let record = bytes[8..].to_vec();
    for sequence in [u64::MAX - 1, u64::MAX] {
        let mut forged = record.clone();
        forged[8..16].copy_from_slice(&sequence.to_le_bytes());
        let crc = crc32c::crc32c(&forged[4..]);
        forged[..4].copy_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&forged);
    }
    std::fs::write(&victim, &bytes).unwrap();

    let bus = EventBus::new(config).await.unwrap();
    assert_eq!(std::fs::metadata(&victim).unwrap().len(), good + record.len() as u64, "cut before u64::MAX");
    let page = bus.poll(ConsumeRequest::new(10)).await.unwrap();
    let sequences: Vec<u64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [u64::MAX - 2, u64::MAX - 1]);
    bus.shutdown().await.unwrap();
}

/// Writes the seed corpus of the `disk_segment` fuzz target (`fuzz/seeds/disk_segment/`):
/// real segment files written by the adapter, in the target's input format (a flags byte,
/// then the segment files back to back), under each way the target opens them. Run it again
/// when the format changes: `cargo test --test disk -- --ignored writes_the_fuzz_seeds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes files into the repository; run by hand when the segment format changes"]
async fn writes_the_fuzz_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let config = AdapterConfig::disk(dir.path()).segment_bytes(4096);
    let bus = EventBus::new(EventBusConfig::builder().shards(1).adapter(config).build().unwrap()).await.unwrap();
    for i in 0..120 {
        bus.ingest_raw(RawEvent::from_bytes(format!("{{\"n\":{i},\"s\":\"seed\"}}"))).unwrap();
        if i % 20 == 19 {
            bus.flush().await.unwrap();
        }
    }
    bus.shutdown().await.unwrap();
    let files = segments(dir.path());
    let first = std::fs::read(&files[0]).unwrap();
    let all: Vec<u8> = files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect();
    let one_record = first[..8 + 40 + 18].to_vec();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/disk_segment");
    std::fs::create_dir_all(&out).unwrap();
    // Flags (see fuzz/fuzz_targets/disk_segment.rs): bits 0-1 open mode, 3 manifest from the
    // input, 6 small cache, 7 two shards.
    let seeds: [(&str, u8, &[u8]); 8] = [
        ("one-record-writer", 0, &one_record),
        ("one-segment-repair", 1, &first),
        ("segments-writer", 0, &all),
        ("segments-read-only-small-cache", 2 | 1 << 6, &all),
        ("segments-bus", 3, &all),
        ("segments-two-shards-small-cache", 1 | 1 << 6 | 1 << 7, &all),
        ("segments-bus-two-shards", 3 | 1 << 7, &all),
        ("manifest", 1 << 3, &one_record),
    ];
    for (name, flags, bytes) in seeds {
        let mut seed = vec![flags];
        if flags & 1 << 3 != 0 {
            let manifest = std::fs::read(dir.path().join("MANIFEST")).unwrap();
            seed.push(manifest.len() as u8);
            seed.extend_from_slice(&manifest);
        }
        seed.extend_from_slice(bytes);
        std::fs::write(out.join(name), seed).unwrap();
    }
}
