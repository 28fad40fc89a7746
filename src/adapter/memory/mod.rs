//! The in-memory adapter: a bounded, retained log per shard, so ingest → poll works in one
//! process with no server.
//!
//! Payloads are copied once, on append, into a per-shard arena of large shared buffers, and each
//! entry keeps a `Bytes` slice of it: no allocation per event, and polls hand out slices (a
//! reference-count increment), never copies. An entry costs 56 bytes beyond its payload (its
//! origin node and sequence among them, which the Net adapter, storing through this log, relays). Memory
//! is returned when every entry of an arena buffer has been trimmed and every polled slice of it
//! dropped.
//!
//! Each shard has its own lock. Appends hold it for one batch; reads hold it for at most
//! `READ_SLICE` examined entries at a time, so a long filtered scan never stalls the shard's
//! worker for more than one slice.
//!
//! A read appends events to the poll's page with `page::push_event` and then writes their ids
//! with `ids::EventIds`, after the lock is gone: both written for the hot path, where a poll
//! spends most of its time.

pub(super) mod ids;
pub(super) mod page;

use super::{Adapter, AdapterMetric, ShardPage, ShardRead};
use crate::config::MemoryAdapterConfig;
use crate::error::AdapterError;
use crate::model::{Batch, StoredEvent};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Entries examined per read-lock hold.
const READ_SLICE: usize = 4096;
/// Size of one arena buffer.
const ARENA_CHUNK: usize = 1 << 20;
/// Payloads at least this large are kept as they are instead of copied into the arena.
const COPY_LIMIT: usize = 16 << 10;

/// Retains events per shard up to the configured bounds; oldest are trimmed first.
#[derive(Debug)]
pub struct MemoryAdapter {
    config: MemoryAdapterConfig,
    shards: RwLock<BTreeMap<u16, Arc<RwLock<ShardLog>>>>,
    trimmed: AtomicU64,
    /// Random per instance: the log lives and dies with it.
    store_id: u128,
}

#[derive(Debug)]
struct Entry {
    timestamp_ns: u64,
    payload: Bytes,
    origin: Origin,
}

/// Where an event was first ingested: the node (0 for a plain Memory bus) and that node's
/// per-shard sequence. The Net adapter relays it and drops duplicates by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The ingesting node's id.
    pub node: u64,
    /// The ingesting node's sequence on the same shard.
    pub sequence: u64,
}

#[derive(Debug, Default)]
struct ShardLog {
    /// Sequence of `entries[0]`.
    first_sequence: u64,
    entries: VecDeque<Entry>,
    payload_bytes: usize,
    arena: BytesMut,
}

impl ShardLog {
    fn next_sequence(&self) -> u64 {
        self.first_sequence + self.entries.len() as u64
    }

    fn store(&mut self, payload: &Bytes) -> Bytes {
        if payload.len() >= COPY_LIMIT {
            return payload.clone();
        }
        self.store_slice(payload)
    }

    fn store_slice(&mut self, payload: &[u8]) -> Bytes {
        if payload.len() >= COPY_LIMIT {
            return Bytes::copy_from_slice(payload);
        }
        if self.arena.capacity() - self.arena.len() < payload.len() {
            self.arena = BytesMut::with_capacity(ARENA_CHUNK);
        }
        self.arena.extend_from_slice(payload);
        self.arena.split().freeze()
    }

    /// Makes room for `incoming` more entries, growing by a quarter at a time and never past
    /// what the bound can hold (`bound` retained plus one batch before its trim). An entry is 56
    /// bytes; a deque that doubled would cost up to 112 per retained event, a quarter at most 70.
    fn make_room(&mut self, incoming: usize, bound: usize) {
        let (len, capacity) = (self.entries.len(), self.entries.capacity());
        let needed = len + incoming;
        if needed <= capacity {
            return;
        }
        let target = (capacity + capacity / 4).min(bound.saturating_add(incoming)).max(needed);
        self.entries.reserve_exact(target - len);
    }

    /// Drops the oldest entries beyond the bounds; returns how many.
    fn trim(&mut self, max_events: usize, max_bytes: Option<usize>) -> u64 {
        let mut trimmed = 0;
        while self.entries.len() > max_events
            || max_bytes.is_some_and(|m| self.payload_bytes > m && self.entries.len() > 1)
        {
            let Some(entry) = self.entries.pop_front() else { break };
            self.payload_bytes -= entry.payload.len();
            self.first_sequence += 1;
            trimmed += 1;
        }
        trimmed
    }
}

impl MemoryAdapter {
    /// An empty log with the given bounds.
    pub fn new(config: MemoryAdapterConfig) -> Self {
        let store_id = u128::from(fastrand::u64(..)) << 64 | u128::from(fastrand::u64(..));
        Self { config, shards: RwLock::new(BTreeMap::new()), trimmed: AtomicU64::new(0), store_id }
    }

    /// Events trimmed so far to respect the bounds.
    pub fn trimmed(&self) -> u64 {
        self.trimmed.load(Ordering::Relaxed)
    }

    /// Events retained now, all shards.
    pub fn retained(&self) -> u64 {
        self.logs().iter().map(|(_, log)| log.read().map_or(0, |l| l.entries.len() as u64)).sum()
    }

    fn logs(&self) -> Vec<(u16, Arc<RwLock<ShardLog>>)> {
        self.shards.read().map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect()).unwrap_or_default()
    }

    fn log(&self, shard: u16) -> Option<Arc<RwLock<ShardLog>>> {
        self.shards.read().ok()?.get(&shard).cloned()
    }

    fn log_or_create(&self, shard: u16) -> Result<Arc<RwLock<ShardLog>>, AdapterError> {
        if let Some(log) = self.log(shard) {
            return Ok(log);
        }
        let mut shards = self.shards.write().map_err(|_| poisoned())?;
        Ok(shards.entry(shard).or_default().clone())
    }
}

/// The Net adapter's access: it numbers the shard's entries itself, since its log holds events of
/// many nodes, and reads entries with their origin to relay them.
impl MemoryAdapter {
    /// Appends `events` (origin, ingest timestamp, payload) to `shard` at the log's next
    /// sequences and returns the next sequence after them. Timestamps stay strictly increasing
    /// per shard: an event stamped earlier than the last one stored (another node's clock) is
    /// stored one nanosecond after it.
    /// `size_hint` is how many there probably are (room is made for them at once).
    pub(crate) fn append<'a>(
        &self,
        shard: u16,
        size_hint: usize,
        events: impl Iterator<Item = (Origin, u64, &'a [u8])>,
    ) -> Result<u64, AdapterError> {
        let log = self.log_or_create(shard)?;
        let mut log = log.write().map_err(|_| poisoned())?;
        log.make_room(size_hint, self.config.max_events_per_shard);
        let mut last = log.entries.back().map_or(0, |e| e.timestamp_ns);
        for (origin, timestamp_ns, payload) in events {
            let payload = log.store_slice(payload);
            log.payload_bytes += payload.len();
            last = timestamp_ns.max(last + 1);
            log.entries.push_back(Entry { timestamp_ns: last, payload, origin });
        }
        self.trim(&mut log);
        Ok(log.next_sequence())
    }

    /// The sequence the next event appended to `shard` gets.
    pub(crate) fn end_of(&self, shard: u16) -> u64 {
        self.log(shard).and_then(|l| l.read().ok().map(|l| l.next_sequence())).unwrap_or(0)
    }

    /// Calls `visit(sequence, origin, timestamp, payload)` for the entries of `shard` from
    /// `from` on, until `max_bytes` of payload have been visited (at least one entry) or the log
    /// ends. Returns the sequence after the last one visited and how many entries between `from`
    /// and the oldest retained one were trimmed.
    pub(crate) fn scan(
        &self,
        shard: u16,
        from: u64,
        max_bytes: usize,
        mut visit: impl FnMut(u64, Origin, u64, &Bytes),
    ) -> Result<(u64, u64), AdapterError> {
        let Some(log) = self.log(shard) else { return Ok((from, 0)) };
        let log = log.read().map_err(|_| poisoned())?;
        let missed = log.first_sequence.saturating_sub(from);
        let mut next = from.max(log.first_sequence);
        let mut bytes = 0;
        let first = (next - log.first_sequence) as usize;
        for entry in log.entries.range(first.min(log.entries.len())..) {
            if bytes >= max_bytes {
                break;
            }
            visit(next, entry.origin, entry.timestamp_ns, &entry.payload);
            bytes += entry.payload.len();
            next += 1;
        }
        Ok((next, missed))
    }

    fn trim(&self, log: &mut ShardLog) {
        let trimmed = log.trim(self.config.max_events_per_shard, self.config.max_bytes_per_shard);
        if trimmed > 0 {
            self.trimmed.fetch_add(trimmed, Ordering::Relaxed);
        }
    }
}

fn poisoned() -> AdapterError {
    AdapterError::Fatal("memory adapter lock poisoned".into())
}

#[async_trait]
impl Adapter for MemoryAdapter {
    fn name(&self) -> &str {
        "memory"
    }

    fn store_id(&self) -> Option<u128> {
        Some(self.store_id)
    }

    async fn next_sequence(&self, shard: u16) -> Result<u64, AdapterError> {
        Ok(self.log(shard).and_then(|l| l.read().ok().map(|l| l.next_sequence())).unwrap_or(0))
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        let log = self.log_or_create(batch.shard())?;
        let mut log = log.write().map_err(|_| poisoned())?;
        if log.entries.is_empty() {
            log.first_sequence = batch.first_sequence();
        } else if log.next_sequence() != batch.first_sequence() {
            // Sequences only move forward; a gap means batches were dropped, which is fine, but
            // the log is indexed by sequence, so restart it at the batch.
            if batch.first_sequence() < log.next_sequence() {
                return Err(AdapterError::Fatal(format!(
                    "shard {}: batch sequence {} is behind the log ({})",
                    batch.shard(),
                    batch.first_sequence(),
                    log.next_sequence()
                )));
            }
            let gap = log.entries.len() as u64;
            log.entries.clear();
            log.payload_bytes = 0;
            log.first_sequence = batch.first_sequence();
            self.trimmed.fetch_add(gap, Ordering::Relaxed);
        }
        log.make_room(batch.len(), self.config.max_events_per_shard);
        for entry in batch.iter() {
            let payload = log.store(entry.payload());
            log.payload_bytes += payload.len();
            let origin = Origin { node: 0, sequence: entry.sequence };
            log.entries.push_back(Entry { timestamp_ns: entry.timestamp_ns, payload, origin });
        }
        self.trim(&mut log);
        Ok(())
    }

    async fn read_shard(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        let mut events = Vec::with_capacity(read.max_events.min(READ_SLICE));
        let mut page = self.read_shard_into(read, &mut events).await?;
        page.events = events;
        Ok(page)
    }

    async fn read_shard_into(
        &self,
        read: ShardRead<'_>,
        found: &mut Vec<StoredEvent>,
    ) -> Result<ShardPage, AdapterError> {
        let mut page = ShardPage { events: Vec::new(), next: read.from, missed: 0, more: false };
        if read.max_events == 0 {
            return Ok(page);
        }
        let ahead = |end: u64| AdapterError::CursorAhead { shard: read.shard, position: read.from, end };
        let Some(log) = self.log(read.shard) else {
            // Nothing was ever stored in this shard: only its beginning is a position.
            return if read.from == 0 { Ok(page) } else { Err(ahead(0)) };
        };
        let start = found.len();
        let full = start + read.max_events;
        loop {
            let log = log.read().map_err(|_| poisoned())?;
            if page.next > log.next_sequence() {
                // Only the first slice can find this: later ones start where an earlier one
                // stopped, inside the log, and a log never shrinks at its end.
                return Err(ahead(log.next_sequence()));
            }
            if page.next < log.first_sequence {
                page.missed += log.first_sequence - page.next;
                page.next = log.first_sequence;
            }
            let first = (page.next - log.first_sequence) as usize;
            let end = log.entries.len().min(first + READ_SLICE);
            for (offset, entry) in log.entries.range(first..end).enumerate() {
                if found.len() == full {
                    break;
                }
                if read.filter.is_none_or(|f| f.matches(&entry.payload)) {
                    let sequence = page.next + offset as u64;
                    page::push_event(
                        found,
                        read.shard,
                        sequence,
                        entry.timestamp_ns,
                        &entry.payload,
                        entry.origin.node,
                    );
                }
            }
            let examined_to = match found.last() {
                Some(last) if found.len() == full => last.sequence + 1,
                _ => log.first_sequence + end as u64,
            };
            page.next = examined_to;
            page.more = page.next < log.next_sequence();
            if found.len() == full || !page.more {
                break;
            }
        }
        // Ids are formatted after the lock is gone.
        ids::write_ids(&mut found[start..], read.shard, read.recycled_ids);
        Ok(page)
    }

    fn stored_shards(&self) -> Vec<u16> {
        self.logs()
            .into_iter()
            .filter(|(_, l)| l.read().is_ok_and(|l| !l.entries.is_empty()))
            .map(|(id, _)| id)
            .collect()
    }

    fn trimmed_events(&self) -> u64 {
        self.trimmed()
    }

    fn metrics(&self, out: &mut Vec<AdapterMetric>) {
        for (shard, log) in self.logs() {
            let Ok(log) = log.read() else { continue };
            let shard = shard.to_string();
            out.push(
                AdapterMetric::gauge(
                    "memory_retained_events",
                    "Events the Memory adapter holds.",
                    log.entries.len() as f64,
                )
                .label("shard", shard.clone()),
            );
            out.push(
                AdapterMetric::gauge(
                    "memory_retained_payload_bytes",
                    "Payload bytes the Memory adapter holds.",
                    log.payload_bytes as f64,
                )
                .label("shard", shard.clone()),
            );
            out.push(
                AdapterMetric::gauge(
                    "memory_first_sequence",
                    "Sequence of the oldest event held (older ones were trimmed).",
                    log.first_sequence as f64,
                )
                .label("shard", shard),
            );
        }
        out.push(AdapterMetric::counter(
            "memory_trimmed_events_total",
            "Events the Memory adapter discarded to stay within its bounds.",
            self.trimmed(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProducerIdentity, RawEvent};

    /// Appends `batches` batches of `size` 100-byte events to shard 0.
    async fn append(adapter: &MemoryAdapter, batches: usize, size: usize) {
        for _ in 0..batches {
            let first = adapter.next_sequence(0).await.unwrap();
            let events = (0..size).map(|_| RawEvent::from_bytes(vec![b'x'; 100])).collect();
            let batch = Batch::new(0, first, 1 + first, ProducerIdentity::ephemeral(), events);
            adapter.on_batch(&batch).await.unwrap();
        }
    }

    fn capacity(adapter: &MemoryAdapter) -> (usize, usize) {
        let log = adapter.log(0).unwrap();
        let log = log.read().unwrap();
        (log.entries.len(), log.entries.capacity())
    }

    #[tokio::test]
    async fn the_log_grows_by_a_quarter_not_by_doubling() {
        let adapter = MemoryAdapter::new(MemoryAdapterConfig::default());
        for _ in 0..20 {
            append(&adapter, 37, 1000).await;
            let (len, capacity) = capacity(&adapter);
            assert!(capacity as f64 <= len as f64 * 1.25 + 1000.0, "{capacity} slots for {len} entries");
        }
    }

    #[tokio::test]
    async fn a_bounded_log_never_holds_room_beyond_its_bound_and_one_batch() {
        let adapter = MemoryAdapter::new(MemoryAdapterConfig::default().max_events_per_shard(1500));
        append(&adapter, 50, 1000).await;
        let (len, capacity) = capacity(&adapter);
        assert_eq!(len, 1500);
        assert!(capacity <= 2500, "{capacity} slots for a bound of 1500");
    }
}
