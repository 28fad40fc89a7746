//! One shard's log: its segment files, the writer that appends to the newest one, and the
//! newest events kept in memory for polls.
//!
//! A batch is encoded into one buffer, written with one `write`, synced (with `fsync` =
//! `batch`), and only then published to readers: the in-memory tail keeps `Bytes` slices of
//! that same buffer, so the events a poll returns were never copied after encoding. Events
//! older than the tail are read from their segment, whole, into one buffer (one cold run per
//! shard is kept, so a consumer reading old events pays one read per segment).

use super::record::{self, Fields, Format};
use super::segment::{self, Damage, Entry, Run, Scan};
use super::{DiskStats, Options};
use crate::adapter::memory::{ids, page, Origin};
use crate::adapter::{ShardPage, ShardRead};
use crate::config::DiskFsync;
use crate::error::AdapterError;
use crate::model::{Batch, StoredEvent};
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

/// Entries examined per read-lock hold (as the Memory adapter).
const READ_SLICE: usize = 4096;

pub(super) struct ShardLog {
    pub(super) id: u16,
    pub(super) dir: PathBuf,
    writer: Mutex<Writer>,
    pub(super) state: RwLock<State>,
}

/// The appending side; only `on_batch` (one at a time per shard) and syncs take it.
#[derive(Default)]
struct Writer {
    /// The newest segment, open for appending.
    file: Option<Arc<File>>,
    /// First sequence of that segment.
    segment: u64,
    /// Its length.
    len: u64,
    /// Next sequence to write.
    next: u64,
    /// Written since the last sync.
    dirty: bool,
    /// The record format of that segment.
    format: Format,
    /// Timestamp of the newest event (a Net log keeps them strictly increasing).
    last_timestamp: u64,
    /// A failed sync: the kernel may have dropped the unsynced pages, so nothing written
    /// after it can be promised durable. Every later batch fails with this.
    broken: Option<String>,
}

/// What readers see.
#[derive(Default)]
pub(super) struct State {
    /// Segment files by first sequence, with their lengths.
    pub(super) segments: BTreeMap<u64, u64>,
    /// One past the newest published event.
    pub(super) next: u64,
    /// The newest events, contiguous, ending at `next`.
    pub(super) cache: Run,
    pub(super) cache_bytes: u64,
    /// The segment read last for older events.
    cold: Option<Arc<Run>>,
    /// Read-only: the segment and offset up to which the writer's records have been read.
    pub(super) tail: Option<(u64, u64)>,
}

impl State {
    /// The oldest retained sequence.
    fn oldest(&self) -> u64 {
        self.segments.keys().next().copied().unwrap_or(self.next).min(self.next)
    }

    pub(super) fn trim_cache(&mut self, limit: u64) {
        while self.cache_bytes > limit {
            let Some(entry) = self.cache.entries.pop_front() else { break };
            self.cache_bytes -= entry.payload.len() as u64;
            self.cache.first += 1;
        }
    }
}

/// A batch written, waiting for its sync and its publication.
struct Written {
    file: Arc<File>,
    segment: u64,
    segment_len: u64,
    first: u64,
    buf: Bytes,
    /// Timestamp, origin and payload range in `buf` of each event.
    events: Vec<(u64, Origin, std::ops::Range<usize>)>,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> AdapterError {
    AdapterError::Fatal(format!("cannot {what} {}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<(), AdapterError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error("sync directory", dir, e))
}

impl ShardLog {
    /// A shard with no segment yet; its directory is made on the first batch.
    pub(super) fn empty(id: u16, dir: PathBuf) -> Self {
        Self { id, dir, writer: Mutex::new(Writer::default()), state: RwLock::new(State::default()) }
    }

    /// Opens a shard's directory: recovers the newest segment (a torn tail is cut off, damage
    /// before the end refused unless `repair`) and keeps its events as the in-memory tail.
    pub(super) fn open(id: u16, dir: PathBuf, options: &Options, stats: &DiskStats) -> Result<Self, AdapterError> {
        let log = Self::empty(id, dir);
        let segments = segment::list(&log.dir).map_err(|e| io_error("list", &log.dir, e))?;
        let Some(&(last, ref path)) = segments.last() else { return Ok(log) };
        let Scan { run, valid_len, damage, format } =
            segment::read(path, last).map_err(|e| io_error("read", path, e))?;
        let file_len = std::fs::metadata(path).map_err(|e| io_error("stat", path, e))?.len();
        if let Some(damage) = damage.filter(|_| !options.read_only) {
            if !damage.torn && !options.repair {
                return Err(AdapterError::Corrupt(format!(
                    "{}: corrupt record at offset {} ({}), with valid records after it; nothing past it is \
                     read. Open with \"repair\": true to truncate the log there",
                    path.display(),
                    damage.offset,
                    damage.reason
                )));
            }
            let counter = if damage.torn { &stats.torn_tails } else { &stats.repairs };
            counter.fetch_add(1, Ordering::Relaxed);
            stats.truncated_bytes.fetch_add(file_len - valid_len, Ordering::Relaxed);
            let file = OpenOptions::new().write(true).open(path).map_err(|e| io_error("open", path, e))?;
            file.set_len(valid_len).and_then(|()| file.sync_all()).map_err(|e| io_error("truncate", path, e))?;
        }
        let mut state = State { next: run.end(), tail: Some((last, valid_len)), ..State::default() };
        for (first, path) in &segments[..segments.len() - 1] {
            let len = std::fs::metadata(path).map_err(|e| io_error("stat", path, e))?.len();
            state.segments.insert(*first, len);
        }
        state.segments.insert(last, valid_len.max(segment::HEADER.len() as u64));
        state.cache_bytes = run.entries.iter().map(|e| e.payload.len() as u64).sum();
        state.cache = run;
        state.trim_cache(options.cache_bytes);
        let last_timestamp = state.cache.entries.back().map_or(0, |e| e.timestamp_ns);
        let mut writer =
            Writer { segment: last, len: valid_len, next: state.next, format, last_timestamp, ..Writer::default() };
        if !options.read_only {
            let mut file = OpenOptions::new().append(true).open(path).map_err(|e| io_error("open", path, e))?;
            if valid_len < segment::HEADER.len() as u64 {
                file.write_all(&segment::header(options.format)).map_err(|e| io_error("write", path, e))?;
                writer.len = segment::HEADER.len() as u64;
                writer.format = options.format;
            }
            writer.file = Some(Arc::new(file));
        }
        Ok(Self { writer: Mutex::new(writer), state: RwLock::new(state), ..log })
    }

    fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(segment::file_name(segment))
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence the next batch should start at.
    pub(super) fn next_sequence(&self) -> u64 {
        self.writer().next
    }

    /// Whether any event is retained.
    pub(super) fn is_empty(&self) -> bool {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.oldest() == state.next
    }

    /// Segment count and bytes.
    pub(super) fn usage(&self) -> (u64, u64) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        (state.segments.len() as u64, state.segments.values().sum())
    }

    /// Appends a batch; returns how many events retention deleted.
    pub(super) async fn append(
        &self,
        batch: &Batch,
        options: &Options,
        stats: &DiskStats,
    ) -> Result<u64, AdapterError> {
        let Some(written) = self.write(batch, options)? else { return Ok(0) };
        if options.fsync == DiskFsync::Batch {
            self.sync(written.file.clone(), stats).await?;
        }
        Ok(self.publish(written, options))
    }

    /// Encodes and writes the events of `batch` not yet in the log (a retried batch may have
    /// been written before); `None` when there are none.
    fn write(&self, batch: &Batch, options: &Options) -> Result<Option<Written>, AdapterError> {
        let mut writer = self.writer();
        if let Some(why) = &writer.broken {
            return Err(AdapterError::Fatal(why.clone()));
        }
        let skip = writer.next.saturating_sub(batch.first_sequence());
        if skip >= batch.len() as u64 {
            return Ok(None);
        }
        let first = batch.first_sequence() + skip;
        let producer = batch.producer();
        let payload_bytes: usize = batch.events()[skip as usize..].iter().map(|e| e.len()).sum();
        let events_len = batch.len() - skip as usize;
        let origin = Origin { node: 0, sequence: 0 };
        let (first_timestamp, producer_id, epoch) = (batch.first_timestamp_ns() + skip, producer.id, producer.epoch);
        let records = batch.events()[skip as usize..].iter().zip(0..).map(|(event, i)| {
            let (sequence, timestamp_ns) = (first + i, first_timestamp + i);
            (Fields { sequence, timestamp_ns, producer: producer_id, epoch, origin }, event.payload().as_ref())
        });
        self.write_records(&mut writer, first, (events_len, payload_bytes), records, options).map(Some)
    }

    /// Encodes `records` (`count` of them, `payload_bytes` in all, sequences from `first`) into
    /// one buffer, in a new segment when needed, and writes it with one call.
    fn write_records<'a>(
        &self,
        writer: &mut Writer,
        first: u64,
        (count, payload_bytes): (usize, usize),
        records: impl Iterator<Item = (Fields, &'a [u8])>,
        options: &Options,
    ) -> Result<Written, AdapterError> {
        let estimate = payload_bytes + count * options.format.header_len();
        let mut buf = BytesMut::with_capacity(segment::HEADER.len() + estimate);
        let new_segment = writer.file.is_none()
            || first != writer.next
            || writer.format != options.format
            || (writer.len > segment::HEADER.len() as u64 && writer.len + estimate as u64 > options.segment_bytes);
        if new_segment {
            self.roll(writer, first, options)?;
            buf.extend_from_slice(&segment::header(options.format));
        }
        let format = writer.format;
        let mut events = Vec::with_capacity(count);
        for (fields, payload) in records {
            let start = buf.len() + format.header_len();
            record::encode_as(&mut buf, format, fields, payload);
            events.push((fields.timestamp_ns, fields.origin, start..buf.len()));
            writer.last_timestamp = fields.timestamp_ns;
        }
        let events_len = events.len();
        let Some(file) = writer.file.clone() else {
            return Err(AdapterError::Fatal("disk log: no segment open".into()));
        };
        if let Err(e) = (&*file).write_all(&buf) {
            let path = self.path(writer.segment);
            // Take back a partial write so the segment stays a run of whole records.
            if let Err(undo) = file.set_len(writer.len) {
                writer.broken =
                    Some(format!("{}: write failed ({e}) and could not be undone ({undo})", path.display()));
            }
            return Err(AdapterError::Transient(format!("cannot write {}: {e}", path.display())));
        }
        writer.len += buf.len() as u64;
        writer.next = first + events_len as u64;
        writer.dirty = true;
        Ok(Written { file, segment: writer.segment, segment_len: writer.len, first, buf: buf.freeze(), events })
    }

    /// The Net adapter's append: `events` (origin, timestamp, payload) at the log's next
    /// sequences, in format 2, timestamps kept strictly increasing (as the Memory log does).
    /// Written, synced when `fsync` is `batch` (on this thread), then published; returns the
    /// events retention deleted.
    pub(super) fn append_origins(
        &self,
        events: &[(Origin, u64, &[u8])],
        options: &Options,
        stats: &DiskStats,
    ) -> Result<u64, AdapterError> {
        if events.is_empty() {
            return Ok(0);
        }
        let written = {
            let mut writer = self.writer();
            if let Some(why) = &writer.broken {
                return Err(AdapterError::Fatal(why.clone()));
            }
            let first = writer.next;
            let payload_bytes = events.iter().map(|e| e.2.len()).sum();
            let mut last = writer.last_timestamp;
            let records = events.iter().zip(first..).map(|(&(origin, timestamp_ns, payload), sequence)| {
                last = timestamp_ns.max(last + 1);
                (Fields { sequence, timestamp_ns: last, producer: 0, epoch: 0, origin }, payload)
            });
            self.write_records(&mut writer, first, (events.len(), payload_bytes), records, options)?
        };
        if options.fsync == DiskFsync::Batch {
            self.sync_now(stats)?;
        }
        Ok(self.publish(written, options))
    }

    /// Closes the current segment (synced unless `fsync` is `never`) and starts one at `first`.
    fn roll(&self, writer: &mut Writer, first: u64, options: &Options) -> Result<(), AdapterError> {
        if let Some(old) = writer.file.take() {
            if options.fsync != DiskFsync::Never && writer.dirty {
                old.sync_data().map_err(|e| io_error("sync", &self.path(writer.segment), e))?;
            }
        }
        let created = !self.dir.exists();
        std::fs::create_dir_all(&self.dir).map_err(|e| io_error("create", &self.dir, e))?;
        let path = self.path(first);
        // A file of this name can only be one whose records never became durable.
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("create", &path, e))?;
        if options.fsync != DiskFsync::Never {
            sync_dir(&self.dir)?;
            if created {
                if let Some(parent) = self.dir.parent() {
                    sync_dir(parent)?;
                }
            }
        }
        *writer = Writer {
            file: Some(Arc::new(file)),
            segment: first,
            len: 0,
            next: first,
            dirty: true,
            broken: None,
            format: options.format,
            last_timestamp: writer.last_timestamp,
        };
        self.state.write().unwrap_or_else(|e| e.into_inner()).segments.insert(first, 0);
        Ok(())
    }

    /// `fdatasync` off the runtime's threads. A failure breaks the log for writing.
    async fn sync(&self, file: Arc<File>, stats: &DiskStats) -> Result<(), AdapterError> {
        let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        let error = match synced {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        let why = format!("shard {}: fdatasync failed ({error}); the log takes no more writes", self.id);
        self.writer().broken = Some(why.clone());
        Err(AdapterError::Fatal(why))
    }

    /// Syncs what was written since the last sync (`fsync` = `interval`, and `flush`).
    pub(super) fn sync_now(&self, stats: &DiskStats) -> Result<(), AdapterError> {
        let file = {
            let mut writer = self.writer();
            if !writer.dirty {
                return Ok(());
            }
            writer.dirty = false;
            writer.file.clone()
        };
        let Some(file) = file else { return Ok(()) };
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        file.sync_data().map_err(|e| {
            let why = format!("shard {}: fdatasync failed ({e}); the log takes no more writes", self.id);
            self.writer().broken = Some(why.clone());
            AdapterError::Fatal(why)
        })
    }

    /// Makes a written batch visible to polls and applies retention; returns the events deleted.
    fn publish(&self, written: Written, options: &Options) -> u64 {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.cache.end() != written.first || state.cache.entries.is_empty() {
            state.cache = Run { first: written.first, entries: Default::default() };
            state.cache_bytes = 0;
        }
        state.cache.entries.reserve(written.events.len());
        for (timestamp_ns, origin, payload) in &written.events {
            state.cache_bytes += payload.len() as u64;
            let payload = written.buf.slice(payload.clone());
            state.cache.entries.push_back(Entry { timestamp_ns: *timestamp_ns, payload, origin: *origin });
        }
        state.next = written.first + written.events.len() as u64;
        state.segments.insert(written.segment, written.segment_len);
        state.trim_cache(options.cache_bytes);
        drop(state);
        self.apply_retention(options)
    }

    /// Deletes the oldest whole segments (never the newest) beyond the size or age bound.
    fn apply_retention(&self, options: &Options) -> u64 {
        if options.max_bytes.is_none() && options.max_age.is_none() {
            return 0;
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut total: u64 = state.segments.values().sum();
        let mut doomed = Vec::new();
        let keys: Vec<(u64, u64)> = state.segments.iter().map(|(k, v)| (*k, *v)).collect();
        for window in keys.windows(2) {
            let ((first, len), (next_first, _)) = (window[0], window[1]);
            let too_big = options.max_bytes.is_some_and(|max| total > max);
            let too_old = options.max_age.is_some_and(|age| {
                std::fs::metadata(self.path(first))
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at.elapsed().is_ok_and(|elapsed| elapsed > age))
            });
            if !(too_big || too_old) {
                break;
            }
            total -= len;
            doomed.push((first, next_first - first));
        }
        let mut trimmed = 0;
        for (first, events) in &doomed {
            state.segments.remove(first);
            trimmed += events;
        }
        let oldest = state.oldest();
        while state.cache.first < oldest {
            let Some(entry) = state.cache.entries.pop_front() else { break };
            state.cache_bytes -= entry.payload.len() as u64;
            state.cache.first += 1;
        }
        if state.cache.entries.is_empty() {
            state.cache.first = state.cache.first.max(oldest);
        }
        drop(state);
        for (first, _) in doomed {
            // A segment a reader holds stays readable from its buffer; the file can go.
            let _ = std::fs::remove_file(self.path(first));
        }
        trimmed
    }

    /// Reads from `read.from`, appending matching events to `found` (see `Adapter::read_shard`).
    /// Events older than retention are skipped and counted in `missed`.
    pub(super) fn read_into(
        &self,
        read: &ShardRead<'_>,
        found: &mut Vec<StoredEvent>,
        stats: &DiskStats,
    ) -> Result<ShardPage, AdapterError> {
        let mut page = ShardPage { events: Vec::new(), next: read.from, missed: 0, more: false };
        if read.max_events == 0 {
            return Ok(page);
        }
        let start = found.len();
        let full = start + read.max_events;
        loop {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if page.next > state.next {
                // Only the first round can find this: later ones start inside the log.
                return Err(AdapterError::CursorAhead { shard: self.id, position: page.next, end: state.next });
            }
            let oldest = state.oldest();
            if page.next < oldest {
                page.missed = page.missed.saturating_add(oldest - page.next);
                page.next = oldest;
            }
            let published = state.next;
            if page.next >= published {
                page.more = false;
                break;
            }
            if page.next >= state.cache.first {
                page.next = serve(&state.cache, page.next, published, read, found, full);
            } else {
                let limit = state.cache.first;
                let cold = state.cold.clone().filter(|run| run.first <= page.next && page.next < run.end());
                if let Some(run) = cold {
                    drop(state);
                    page.next = serve(&run, page.next, limit, read, found, full);
                } else {
                    let segment = state.segments.range(..=page.next).next_back().map(|(first, _)| *first);
                    let following = state.segments.range(page.next + 1..).next().map_or(limit, |(first, _)| *first);
                    drop(state);
                    let Some(segment) = segment else {
                        return Err(AdapterError::Fatal(format!("shard {}: no segment holds {}", self.id, page.next)));
                    };
                    let path = self.path(segment);
                    let scan = match segment::read(&path, segment) {
                        Ok(scan) => scan,
                        // Deleted by retention since the lookup: the next round skips it.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.oldest() > segment => continue,
                        Err(e) => return Err(io_error("read", &path, e)),
                    };
                    stats.cold_reads.fetch_add(1, Ordering::Relaxed);
                    if page.next < scan.run.end() {
                        self.state.write().unwrap_or_else(|e| e.into_inner()).cold = Some(Arc::new(scan.run));
                        continue;
                    }
                    if let Some(damage) = &scan.damage {
                        return Err(unreadable_from(&path, damage, scan.run.end()));
                    }
                    // A gap in the sequences (a batch the bus dropped): nothing to read there.
                    page.next = following.min(limit).max(page.next + 1);
                }
            }
            page.more = page.next < published;
            if found.len() == full || !page.more {
                break;
            }
        }
        ids::write_ids(&mut found[start..], self.id, read.recycled_ids);
        Ok(page)
    }

    fn oldest(&self) -> u64 {
        self.state.read().unwrap_or_else(|e| e.into_inner()).oldest()
    }

    /// One past the newest published event.
    pub(super) fn end(&self) -> u64 {
        self.state.read().unwrap_or_else(|e| e.into_inner()).next
    }

    /// Events retained.
    pub(super) fn retained(&self) -> u64 {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.next - state.oldest()
    }

    /// The Net adapter's read: calls `visit(sequence, origin, timestamp, payload)` for the
    /// events from `from` on until `max_bytes` of payload were visited (at least one event) or
    /// the log ends. Returns the sequence after the last one visited and how many events
    /// between `from` and the oldest retained one were deleted.
    pub(super) fn scan(
        &self,
        from: u64,
        max_bytes: usize,
        visit: &mut dyn FnMut(u64, Origin, u64, &Bytes),
        stats: &DiskStats,
    ) -> Result<(u64, u64), AdapterError> {
        let (mut next, mut missed, mut bytes) = (from, 0, 0);
        loop {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            let oldest = state.oldest();
            if next < oldest {
                missed += oldest - next;
                next = oldest;
            }
            if next >= state.next || bytes >= max_bytes {
                return Ok((next, missed));
            }
            if next >= state.cache.first {
                next = visit_run(&state.cache, next, state.next, (max_bytes, &mut bytes), visit);
                continue;
            }
            let limit = state.cache.first;
            if let Some(run) = state.cold.clone().filter(|run| run.first <= next && next < run.end()) {
                drop(state);
                next = visit_run(&run, next, limit, (max_bytes, &mut bytes), visit);
                continue;
            }
            let segment = state.segments.range(..=next).next_back().map(|(first, _)| *first);
            let following = state.segments.range(next + 1..).next().map_or(limit, |(first, _)| *first);
            drop(state);
            let Some(segment) = segment else {
                return Err(AdapterError::Fatal(format!("shard {}: no segment holds {next}", self.id)));
            };
            let path = self.path(segment);
            let scan = match segment::read(&path, segment) {
                Ok(scan) => scan,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.oldest() > segment => continue,
                Err(e) => return Err(io_error("read", &path, e)),
            };
            stats.cold_reads.fetch_add(1, Ordering::Relaxed);
            if next < scan.run.end() {
                self.state.write().unwrap_or_else(|e| e.into_inner()).cold = Some(Arc::new(scan.run));
                continue;
            }
            if let Some(damage) = &scan.damage {
                return Err(unreadable_from(&path, damage, scan.run.end()));
            }
            next = following.min(limit).max(next + 1);
        }
    }
}

/// Visits the events of `run` from `from` (below `limit`) until `max_bytes` of payload were
/// visited in all; returns the sequence after the last one visited.
fn visit_run(
    run: &Run,
    from: u64,
    limit: u64,
    (max_bytes, bytes): (usize, &mut usize),
    visit: &mut dyn FnMut(u64, Origin, u64, &Bytes),
) -> u64 {
    let end = limit.min(run.end());
    let mut next = from;
    if from < run.first || from >= end {
        return next;
    }
    for entry in run.entries.range((from - run.first) as usize..(end - run.first) as usize) {
        if *bytes >= max_bytes {
            break;
        }
        visit(next, entry.origin, entry.timestamp_ns, &entry.payload);
        *bytes += entry.payload.len();
        next += 1;
    }
    next
}

/// Appends the matching events of `run` from `from` (below `limit`, at most a slice of them)
/// to `found`; returns the sequence examined up to.
fn serve(run: &Run, from: u64, limit: u64, read: &ShardRead<'_>, found: &mut Vec<StoredEvent>, full: usize) -> u64 {
    let first = (from - run.first) as usize;
    let end = ((limit.min(run.end()) - run.first) as usize).min(first + READ_SLICE);
    for (offset, entry) in run.entries.range(first..end).enumerate() {
        if found.len() == full {
            return from + offset as u64;
        }
        if read.filter.is_none_or(|f| f.matches(&entry.payload)) {
            let origin = entry.origin.node;
            page::push_event(found, read.shard, from + offset as u64, entry.timestamp_ns, &entry.payload, origin);
        }
    }
    run.first + end as u64
}

/// A segment that is damaged past the events a read has reached: what follows cannot be served.
fn unreadable_from(path: &Path, damage: &Damage, end: u64) -> AdapterError {
    AdapterError::Corrupt(format!(
        "{}: corrupt record at offset {} ({}); the events from sequence {end} on are unreadable",
        path.display(),
        damage.offset,
        damage.reason,
    ))
}
