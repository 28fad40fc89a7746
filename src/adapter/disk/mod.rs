//! The durable embedded log: an append-only, segmented log per shard in a local directory,
//! so events survive a crash or a restart without a broker, and cursors stay valid across both.
//!
//! # Layout
//!
//! ```text
//! dir/
//!   MANIFEST                 format version and the store's random id (manifest.rs)
//!   LOCK                     flock'ed by the writing process; holds its pid (lock.rs)
//!   shard-00000/
//!     00000000000000000000.log   segment: header, then records from sequence 0 (segment.rs)
//!     00000000000000912345.log   the next segment, from sequence 912345
//!   shard-00001/ ...
//! ```
//!
//! Every record carries its length, sequence, timestamp, producer id and epoch (of the dedup id)
//! and a CRC32C of all of it (record.rs). A segment is named by its first sequence and holds
//! consecutive sequences, so the segment of a sequence is found among the names and the
//! record inside it by position.
//!
//! # Record formats
//!
//! Each segment's header names its record format. Format 1 is what a plain Disk log writes.
//! Format 2 adds each event's origin (node, sequence): what a Net node keeps when its local log
//! is on disk (`NetAdapterConfig::disk`), so that after a restart it still knows where every
//! event came from, relays it with its origin and drops what arrives twice (`adapter::net`).
//! Both are read everywhere (format 1 records have origin 0), so a log written before format 2
//! existed opens unchanged, and a Net node's directory can be polled by a read-only Disk
//! adapter. A writer that finds the newest segment in the other format starts a new segment.
//! Beside the segments a Net node keeps `NODE` and `NET-STATE` (`adapter::net`'s `durable.rs`).
//!
//! # Durability (`fsync`)
//!
//! - `batch` (default): each shard batch is written with one `write` and synced with one
//!   `fdatasync` before `on_batch` returns, so an event counts as dispatched only once it is on
//!   disk, and a completed `flush` means every event ingested before it is on disk. Under load
//!   a batch holds everything that queued while the previous one was syncing: a group commit
//!   per shard. Survives kill -9 and power loss (on a disk that honours flushes).
//! - `interval`: written at once, synced by a background thread every `fsync_interval_ms` and
//!   by `flush`. Kill -9 loses nothing the process wrote (the kernel holds it); power loss
//!   loses at most the last interval. Events are pollable before they are synced.
//! - `never`: written at once, never synced. Kill -9 loses nothing written; power loss loses
//!   whatever the kernel had not written back, and after it sequences may be reused.
//!
//! A failed `fdatasync` breaks the log for writing (every later batch fails as fatal): after
//! one the kernel may have dropped the unsynced pages, and retrying would report success for
//! data that is gone.
//!
//! # Recovery
//!
//! Opening reads the newest segment of each shard (older ones were synced when they were
//! closed). A record cut short or failing its checksum with nothing valid after it is a torn
//! tail: the file is truncated at the last good record. A bad record with valid records after
//! it is damage in the middle of the log: the open fails with [`ErrorKind::DiskCorrupt`] naming
//! the file and offset, unless `repair` says to truncate there. Older segments are checked as
//! they are read: a bad record there fails the poll with the same kind. Bytes truncated, torn
//! tails and repairs are counted in the stats (`disk_recovery_*`). No corrupt event is ever
//! returned, and no bytes on disk can make the adapter panic (the `disk_segment` fuzz target,
//! `fuzz/fuzz_targets/disk_segment.rs`, holds it to both).
//!
//! # Reading
//!
//! The newest events of each shard (`cache_bytes_per_shard` of payload, by default 32 MiB)
//! stay in memory as slices of the buffers they were written from, as the Memory adapter
//! keeps them; older ones are read a whole segment at a time into one buffer. Sequences
//! continue across restarts, so a cursor taken before one resumes after it with no gap and
//! no repeat.
//!
//! # Retention
//!
//! `max_bytes_per_shard` and `max_age_ms` delete whole segments, oldest first, never the one
//! being written; the events deleted are counted as trimmed. A cursor older than retention
//! resumes from the oldest retained event, and the page says how many were missed (as with
//! the Memory adapter): never a silent skip.
//!
//! # Read-only
//!
//! `read_only` opens without the lock and never writes, so another process can poll a log
//! while its writer runs. It sees what the writer had written (synced or not) when it opened,
//! plus, on every poll that reaches its end, what the writer appended since.
//!
//! [`ErrorKind::DiskCorrupt`]: crate::error::ErrorKind::DiskCorrupt

mod follow;
mod lock;
mod manifest;
mod record;
mod segment;
mod shard;

use super::{Adapter, AdapterMetric, ShardPage, ShardRead};
use crate::adapter::memory::Origin;
use crate::config::{DiskAdapterConfig, DiskFsync};
use crate::error::AdapterError;
use crate::model::{Batch, StoredEvent};
use async_trait::async_trait;
use bytes::Bytes;
use lock::DirLock;
use record::Format;
use shard::ShardLog;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::Duration;

/// The settings every shard log uses, taken from the config once.
#[derive(Debug, Clone)]
struct Options {
    fsync: DiskFsync,
    segment_bytes: u64,
    cache_bytes: u64,
    max_bytes: Option<u64>,
    max_age: Option<Duration>,
    repair: bool,
    read_only: bool,
    /// The record format of new segments: 1, or 2 (with origins) for a Net node's log.
    format: Format,
}

/// Figures for `Adapter::metrics`.
#[derive(Debug, Default)]
struct DiskStats {
    torn_tails: AtomicU64,
    repairs: AtomicU64,
    truncated_bytes: AtomicU64,
    fsyncs: AtomicU64,
    cold_reads: AtomicU64,
}

type Shards = RwLock<BTreeMap<u16, Arc<ShardLog>>>;

/// A durable log in a directory (see the module docs).
pub struct DiskAdapter {
    dir: PathBuf,
    options: Options,
    store_id: u128,
    shards: Arc<Shards>,
    stats: Arc<DiskStats>,
    trimmed: AtomicU64,
    lock: Mutex<Option<DirLock>>,
    /// Dropping it stops the `interval` sync thread.
    stop_syncing: Mutex<Option<mpsc::Sender<()>>>,
}

impl std::fmt::Debug for DiskAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskAdapter").field("dir", &self.dir).field("options", &self.options).finish()
    }
}

fn shard_dir(dir: &std::path::Path, shard: u16) -> PathBuf {
    dir.join(format!("shard-{shard:05}"))
}

impl DiskAdapter {
    /// Opens (or creates) the log in `config.dir`: takes the lock, reads the manifest, recovers
    /// every shard. Fails with [`AdapterError::Locked`] when another process (or bus) has the
    /// directory, [`AdapterError::Corrupt`] on damage in the middle of a log.
    pub fn open(config: DiskAdapterConfig) -> Result<Self, AdapterError> {
        Self::open_as(config, Format::V1)
    }

    /// Opens the log as a Net node's local store: new segments in format 2, with origins.
    pub(crate) fn open_for_net(config: DiskAdapterConfig) -> Result<Self, AdapterError> {
        Self::open_as(config, Format::V2)
    }

    fn open_as(config: DiskAdapterConfig, format: Format) -> Result<Self, AdapterError> {
        let options = Options {
            fsync: config.fsync,
            segment_bytes: config.segment_bytes,
            cache_bytes: config.cache_bytes_per_shard,
            max_bytes: config.max_bytes_per_shard,
            max_age: config.max_age_ms.map(Duration::from_millis),
            repair: config.repair,
            read_only: config.read_only,
            format,
        };
        let dir = config.dir;
        let fatal =
            |what: &str, e: std::io::Error| AdapterError::Fatal(format!("cannot {what} {}: {e}", dir.display()));
        if !options.read_only {
            std::fs::create_dir_all(&dir).map_err(|e| fatal("create", e))?;
        }
        let lock = if options.read_only { None } else { Some(DirLock::acquire(&dir)?) };
        let store_id = manifest::load_or_create(&dir, !options.read_only)?;
        let stats = Arc::new(DiskStats::default());
        let mut shards = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| fatal("list", e))? {
            let entry = entry.map_err(|e| fatal("list", e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_prefix("shard-")).and_then(|n| n.parse().ok()) else {
                continue;
            };
            shards.insert(id, Arc::new(ShardLog::open(id, entry.path(), &options, &stats)?));
        }
        let shards = Arc::new(RwLock::new(shards));
        let stop_syncing = (options.fsync == DiskFsync::Interval && !options.read_only)
            .then(|| spawn_sync_thread(Arc::downgrade(&shards), stats.clone(), config.fsync_interval_ms));
        Ok(Self {
            dir,
            options,
            store_id,
            shards,
            stats,
            trimmed: AtomicU64::new(0),
            lock: Mutex::new(lock),
            stop_syncing: Mutex::new(stop_syncing),
        })
    }

    /// The store's random id, from its manifest.
    pub fn store_id(&self) -> u128 {
        self.store_id
    }

    fn logs(&self) -> Vec<Arc<ShardLog>> {
        self.shards.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    fn log(&self, shard: u16) -> Option<Arc<ShardLog>> {
        self.shards.read().unwrap_or_else(|e| e.into_inner()).get(&shard).cloned()
    }

    fn log_or_create(&self, shard: u16) -> Arc<ShardLog> {
        if let Some(log) = self.log(shard) {
            return log;
        }
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        shards.entry(shard).or_insert_with(|| Arc::new(ShardLog::empty(shard, shard_dir(&self.dir, shard)))).clone()
    }

    /// The log's directory.
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The Net adapter's append (see `ShardLog::append_origins`).
    pub(crate) fn append_origins(&self, shard: u16, events: &[(Origin, u64, &[u8])]) -> Result<(), AdapterError> {
        let trimmed = self.log_or_create(shard).append_origins(events, &self.options, &self.stats)?;
        if trimmed > 0 {
            self.trimmed.fetch_add(trimmed, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The sequence the next event appended to `shard` gets.
    pub(crate) fn end_of(&self, shard: u16) -> u64 {
        self.log(shard).map_or(0, |log| log.end())
    }

    /// Events retained now, all shards.
    pub(crate) fn retained(&self) -> u64 {
        self.logs().iter().map(|log| log.retained()).sum()
    }

    /// The Net adapter's read (see `ShardLog::scan`).
    pub(crate) fn scan(
        &self,
        shard: u16,
        from: u64,
        max_bytes: usize,
        visit: &mut dyn FnMut(u64, Origin, u64, &Bytes),
    ) -> Result<(u64, u64), AdapterError> {
        match self.log(shard) {
            Some(log) => log.scan(from, max_bytes, visit, &self.stats),
            None => Ok((from, 0)),
        }
    }

    fn sync_all(&self) -> Result<(), AdapterError> {
        self.logs().iter().try_for_each(|log| log.sync_now(&self.stats))
    }

    /// Syncs what was written and not yet synced, unless `fsync` is `never`: what a Net node
    /// does before its `NET-STATE` may count events as stored.
    pub(crate) fn sync_written(&self) -> Result<(), AdapterError> {
        if self.options.fsync == DiskFsync::Never {
            return Ok(());
        }
        self.sync_all()
    }
}

/// The `interval` sync thread: syncs every shard written since its last round, until the
/// adapter drops the sender (or is dropped).
fn spawn_sync_thread(shards: std::sync::Weak<Shards>, stats: Arc<DiskStats>, interval_ms: u64) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let interval = Duration::from_millis(interval_ms);
    std::thread::Builder::new()
        .name("purple-rain-disk-sync".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                let Some(shards) = shards.upgrade() else { return };
                let logs: Vec<_> = shards.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
                for log in logs {
                    // A failure breaks that shard's log; its next batch reports it.
                    let _ = log.sync_now(&stats);
                }
            }
        })
        .ok()
        .map(|_| stop)
        .unwrap_or_else(|| mpsc::channel().0)
}

#[async_trait]
impl Adapter for DiskAdapter {
    fn name(&self) -> &str {
        "disk"
    }

    fn store_id(&self) -> Option<u128> {
        Some(self.store_id)
    }

    async fn next_sequence(&self, shard: u16) -> Result<u64, AdapterError> {
        Ok(self.log(shard).map_or(0, |log| log.next_sequence()))
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        if self.options.read_only {
            return Err(AdapterError::Fatal(format!("{} is open read-only", self.dir.display())));
        }
        let log = self.log_or_create(batch.shard());
        let trimmed = log.append(batch, &self.options, &self.stats).await?;
        if trimmed > 0 {
            self.trimmed.fetch_add(trimmed, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), AdapterError> {
        match self.options.fsync {
            DiskFsync::Interval => {
                let this = self.logs();
                let stats = self.stats.clone();
                tokio::task::spawn_blocking(move || this.iter().try_for_each(|log| log.sync_now(&stats)))
                    .await
                    .map_err(|e| AdapterError::Fatal(format!("disk sync task failed: {e}")))?
            }
            DiskFsync::Batch | DiskFsync::Never => Ok(()),
        }
    }

    async fn shutdown(&self) -> Result<(), AdapterError> {
        let synced = self.sync_written();
        self.stop_syncing.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
        synced
    }

    async fn read_shard(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        let mut events = Vec::with_capacity(read.max_events.min(4096));
        let mut page = self.read_shard_into(read, &mut events).await?;
        page.events = events;
        Ok(page)
    }

    async fn read_shard_into(
        &self,
        read: ShardRead<'_>,
        page: &mut Vec<StoredEvent>,
    ) -> Result<ShardPage, AdapterError> {
        let log = match self.log(read.shard) {
            None if self.options.read_only && shard_dir(&self.dir, read.shard).is_dir() => {
                Some(self.log_or_create(read.shard))
            }
            log => log,
        };
        match log {
            Some(log) => {
                if self.options.read_only {
                    log.catch_up(self.options.cache_bytes)?;
                }
                log.read_into(&read, page, &self.stats)
            }
            // Nothing was ever stored in this shard: only its beginning is a position.
            None if read.from > 0 => Err(AdapterError::CursorAhead { shard: read.shard, position: read.from, end: 0 }),
            None => Ok(ShardPage { events: Vec::new(), next: read.from, missed: 0, more: false }),
        }
    }

    fn stored_shards(&self) -> Vec<u16> {
        let shards = self.shards.read().unwrap_or_else(|e| e.into_inner());
        shards.iter().filter(|(_, log)| !log.is_empty()).map(|(id, _)| *id).collect()
    }

    fn trimmed_events(&self) -> u64 {
        self.trimmed.load(Ordering::Relaxed)
    }

    fn metrics(&self, out: &mut Vec<AdapterMetric>) {
        let counter = |name, help, value: &AtomicU64| AdapterMetric::counter(name, help, value.load(Ordering::Relaxed));
        let stats = &self.stats;
        out.push(counter("disk_recovery_torn_tails_total", "Torn segment tails cut off at open", &stats.torn_tails));
        out.push(counter("disk_recovery_repairs_total", "Mid-log damage truncated at open (repair)", &stats.repairs));
        out.push(counter("disk_recovery_truncated_bytes_total", "Bytes cut off at open", &stats.truncated_bytes));
        out.push(counter("disk_fsyncs_total", "fdatasync calls", &stats.fsyncs));
        out.push(counter("disk_segment_reads_total", "Whole segments read for older events", &stats.cold_reads));
        let (segments, bytes) = self.logs().iter().map(|log| log.usage()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        out.push(AdapterMetric::gauge("disk_segments", "Segment files", segments as f64));
        out.push(AdapterMetric::gauge("disk_bytes", "Bytes in segment files", bytes as f64));
    }
}
