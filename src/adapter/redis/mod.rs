//! The Redis Streams adapter (feature `redis`): events outlive the process, and any number of
//! buses (processes) share one event stream.
//!
//! It needs Redis 7 or newer (the append script declares its flags with a shebang), standalone
//! or behind a proxy that keeps one keyspace: its keys carry no cluster hash tags. The streams
//! belong to the adapter: an entry someone else adds with an ordinary id (`XADD key * ...`)
//! sorts above all of ours, is never returned by a poll nor wakes a long poll, and makes every
//! later append to that stream fail (fatal, counted dropped) until it is removed.
//!
//! # Keys
//! With `stream_prefix = P`, shard `s` is the stream `P:s`. Beside it the adapter keeps
//! `P:s:meta` (a hash: the last position and timestamp assigned in the stream), one mark per
//! producer run `P:s:mark:{producer}:{epoch}:{run}` (the last producer sequence written, expiring
//! `dedup_ttl_secs` after its last write), and the set `P:shards` of shard ids that have a
//! stream, so a poller finds shards it does not route to itself, and `P:store`, the store id
//! stamped into poll cursors (128 random bits as hex, created once with `SET NX` by the first
//! adapter to start on the prefix, so a cursor from another server or prefix, or from before
//! the keys were deleted, is refused instead of read here). Every entry has one field,
//! `e`: `"{timestamp_ns} {dedup_id}\n{payload}"` (the dedup id is
//! `{producer}:{epoch}:{run}:{shard}:{sequence}`; the payload is every byte after the first newline);
//! the position is the entry id. One field rather than one per part: every field costs the
//! server on write and the client's reply parser on read (measured in `BENCHMARKS.md`).
//!
//! # Positions: one sequence space per stream, assigned by Redis
//! Several buses append to the same streams, each numbering its own batches from its own
//! counters, so a producer's sequence cannot be the stored one: two producers would both write
//! sequence 7 to shard 0. Instead the append script assigns each entry the next *position* of
//! its stream (`meta.seq + 1`) as the entry id `0-{position}`: millisecond 0, sequence
//! `position`. The first entry of a chunk gets that id explicitly, the others `0-*` (Redis
//! takes the next sequence), so no id is formatted per event. So:
//! - [`StoredEvent::sequence`] is the position: dense, strictly increasing per shard across all
//!   producers, and never reused: positions come from the stream (never below its last entry,
//!   nor below the highest position this adapter has seen, even if Redis lost its data).
//! - [`StoredEvent::id`] is the entry id, and a cursor position maps to an entry id exactly, so
//!   a read starts with `XRANGE P:s 0-{position} 0-{max} COUNT n`, no lookup; and `n` entries from a
//!   position are the id range `[position, position + n)`, which lets a large read be split.
//! - Holes mean trimming: a read that finds its first entry beyond the cursor's position reports
//!   the gap as `missed` instead of silently skipping it.
//! - Timestamps are made strictly increasing per stream too (`max(own, last + 1)`), so the
//!   timestamp merge stays a total order even when producers' clocks disagree.
//!
//! # Idempotence: a server-side script per chunk, with a per-producer high-water mark
//! Redis 7 has no idempotent `XADD`, and a batch whose reply was lost (timeout, dropped
//! connection) may or may not have been applied. Each batch is sent as one pipeline of
//! `EVALSHA` calls, one per chunk of `pipeline_chunk` events; the script (`append.lua`) runs
//! atomically and, for its chunk:
//! 1. reads the producer run's mark — the last producer sequence of this `(producer, epoch, run,
//!    shard)` already in the stream — and skips the events at or below it: exactly the events
//!    an earlier attempt of the same batch wrote (the bus retries a batch unchanged, and hands a
//!    shard's batches over one at a time in sequence order, so "written" is always a prefix);
//! 2. refuses (`PRGAP`, retryable) a chunk whose preceding chunk of the same batch is not in,
//!    so a retry can never skip events that an older, still-travelling attempt did not write;
//! 3. `XADD`s the rest with their positions (with `MAXLEN ~` when configured), then records the
//!    new mark, position and timestamp. If an `XADD` fails midway it still records what it
//!    wrote before returning the error, so a retry resumes exactly after it.
//!
//! The mark is keyed by the producer's run key: producer id, epoch (it grows on every start with
//! a persisted producer id) and a random run drawn at every start. So a restarted producer whose
//! sequences start over is never taken for its former run (failure mode 33), and two buses never
//! share a mark, not even two started from copies of one identity file (which share id and
//! epoch; `src/model/producer.rs` says why a random run rather than a claim in Redis). The marks are a few
//! bytes per producer run and shard and expire on their own. Dedup relies on the marks staying:
//! use the default `maxmemory-policy noeviction` (or a policy that evicts only other keys).
//!
//! Each reply of the pipeline is checked on its own: one failed chunk fails the batch, which
//! the bus retries within its budget (failure mode 32). A batch that the bus gives up on may
//! still have been written by an attempt whose reply was lost; it is counted dropped all the
//! same. Events counted dispatched are in the stream exactly once.
//!
//! # Reading, waiting, failing
//! A shard read is `XRANGE` with `COUNT` from the page size (and a look-ahead of one entry to
//! know whether more exist), looping in `read_chunk` steps only while a filter rejects events;
//! never one round trip per event (failure mode 34). Reads have their own connections, so they
//! never queue behind an append pipeline; a read of at least 2 048 entries is split into id
//! ranges read at once on up to four connections, because parsing the reply is what a read
//! costs the client (see `BENCHMARKS.md`). A part that does not reach the end of its
//! range ends the result, so parts that ran at different moments never leave a gap.
//!
//! Long polls use `XREAD BLOCK` on every polled stream, for at most the time left, on a
//! connection of their own (a blocking command would stall a multiplexed connection); a poll
//! that wakes another way drops that connection, which ends the blocked command. No consumer
//! groups are used, so a restarted server has no group state to lose (failure mode 36).
//!
//! Every command runs under `command_timeout_ms`, every connection attempt under
//! `connect_timeout_ms` (failure mode 35); a read that fails or times out fails the whole poll
//! (failure mode 30). The connection manager reconnects after a dropped connection, and the
//! adapter replaces its connections after a timeout (a half-open connection would otherwise
//! time out forever). Reads, being safe to repeat, run once more when they find their
//! connection dead; appends never retry on their own: the manager makes no retries either, so
//! the bus's jittered backoff alone paces a recovering server.

mod entry;
mod error;

use self::entry::{entry_id, foreign_wakeups, parse_range, Entry, EntryField, LAST_ID};
use self::error::{classify, classify_server, timed_out, unexpected};
use super::{Adapter, AdapterMetric, ShardPage, ShardRead};
use crate::config::RedisAdapterConfig;
use crate::error::{AdapterError, ConfigError};
use crate::model::{Batch, StoredEvent};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, Pipeline, RedisResult, Value};
use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The append script (see the module doc).
const APPEND_SCRIPT: &str = include_str!("append.lua");
/// Blocking-read connections kept for reuse between long polls.
const IDLE_BLOCKING_CONNECTIONS: usize = 4;
/// Read connections; a read of at least `2 * SPLIT_MIN` entries is split across them.
const READERS: usize = 4;
/// Smallest part of a split read.
const SPLIT_MIN: usize = 1_024;
/// How often a read refreshes the set of shards that have streams.
const SHARDS_REFRESH: Duration = Duration::from_secs(1);

/// Which connection a command uses.
#[derive(Clone, Copy)]
enum Role {
    Write,
    /// Reader `i` (modulo the number of readers).
    Read(usize),
}

/// Bridges a bus to Redis Streams; see the module doc for the scheme.
pub struct RedisAdapter {
    config: RedisAdapterConfig,
    client: Client,
    /// `host:port` for messages (never the URL: it may hold a password).
    addr: String,
    script_sha: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    /// Appends (and `next_sequence`). This and the readers are replaced by lazily connecting
    /// managers after a command timed out: a half-open connection would otherwise time out
    /// every command forever, since only I/O errors make a manager reconnect.
    writer: ArcSwapOption<ConnectionManager>,
    /// Reads, apart from appends so a poll never queues behind an append pipeline; large reads
    /// are split across them, so their replies are parsed on several threads.
    readers: Vec<ArcSwapOption<ConnectionManager>>,
    /// Idle connections for `XREAD BLOCK`.
    blocking: Mutex<Vec<MultiplexedConnection>>,
    /// Per shard, the highest position this adapter has seen assigned.
    floors: Mutex<HashMap<u16, u64>>,
    /// Per shard, one past the highest producer sequence handed to `on_batch`, written or not.
    offered: Mutex<HashMap<u16, u64>>,
    /// Shards that have a stream, as last seen (`stored_shards` is synchronous).
    shards: RwLock<BTreeSet<u16>>,
    shards_refreshed: Mutex<Option<Instant>>,
    trimmed: AtomicU64,
    /// `P:store`, read in `init`.
    store_id: std::sync::OnceLock<u128>,
    health: Health,
}

/// What `Adapter::metrics` reports about the connection, noted once per command (never per
/// event).
#[derive(Debug, Default)]
struct Health {
    /// The last command reached the server (false after a connection error or a timeout).
    up: AtomicBool,
    /// Commands that failed, by any cause.
    errors: AtomicU64,
    /// Times every connection was replaced after a command timed out.
    resets: AtomicU64,
    /// When the last command failed.
    last_error: Mutex<Option<Instant>>,
}

impl Health {
    fn note<T>(&self, result: Result<T, AdapterError>) -> Result<T, AdapterError> {
        match &result {
            Ok(_) => self.up.store(true, Ordering::Relaxed),
            Err(e) => {
                if matches!(e, AdapterError::Connection(_) | AdapterError::Transient(_)) {
                    self.up.store(false, Ordering::Relaxed);
                }
                self.errors.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            }
        }
        result
    }
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("addr", &self.addr)
            .field("stream_prefix", &self.config.stream_prefix)
            .field("connected", &self.writer.load().is_some())
            .finish()
    }
}

impl RedisAdapter {
    /// Checks the config and parses the URL; connects in [`Adapter::init`].
    pub fn new(config: RedisAdapterConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let client = Client::open(config.url.as_str())
            .map_err(|e| ConfigError::invalid("adapter.url", format!("not a Redis URL: {e}")))?;
        let addr = client.get_connection_info().addr().to_string();
        Ok(Self {
            client,
            addr,
            script_sha: ::redis::Script::new(APPEND_SCRIPT).get_hash().to_owned(),
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            command_timeout: Duration::from_millis(config.command_timeout_ms),
            config,
            writer: ArcSwapOption::empty(),
            readers: (0..READERS).map(|_| ArcSwapOption::empty()).collect(),
            blocking: Mutex::new(Vec::new()),
            floors: Mutex::new(HashMap::new()),
            offered: Mutex::new(HashMap::new()),
            shards: RwLock::new(BTreeSet::new()),
            shards_refreshed: Mutex::new(None),
            trimmed: AtomicU64::new(0),
            store_id: std::sync::OnceLock::new(),
            health: Health::default(),
        })
    }

    /// The stream of a shard: `{prefix}:{shard}`.
    pub fn stream_key(&self, shard: u16) -> String {
        format!("{}:{shard}", self.config.stream_prefix)
    }

    fn meta_key(&self, shard: u16) -> String {
        format!("{}:{shard}:meta", self.config.stream_prefix)
    }

    /// Creates the prefix's store id unless it exists, and reads it.
    async fn claim_store_id(&self) -> Result<u128, AdapterError> {
        let key = format!("{}:store", self.config.stream_prefix);
        let fresh = format!("{:032x}", u128::from(fastrand::u64(..)) << 64 | u128::from(fastrand::u64(..)));
        let set = ::redis::cmd("SET").arg(&key).arg(&fresh).arg("NX").arg("GET").clone();
        let existing: Option<String> = self.read_query(Role::Write, "SET store id", &set).await?;
        let id = existing.unwrap_or(fresh);
        u128::from_str_radix(&id, 16)
            .map_err(|_| AdapterError::Fatal(format!("redis key {key} holds {id:?}, not a store id (32 hex digits)")))
    }

    fn shards_key(&self) -> String {
        format!("{}:shards", self.config.stream_prefix)
    }

    fn conn(&self, role: Role) -> Result<ConnectionManager, AdapterError> {
        let slot = match role {
            Role::Write => &self.writer,
            Role::Read(i) => &self.readers[i % self.readers.len()],
        };
        slot.load().as_deref().cloned().ok_or_else(|| AdapterError::Fatal("redis adapter used before init".into()))
    }

    fn lazy_manager(&self) -> Result<ConnectionManager, AdapterError> {
        ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager_config())
            .map_err(|e| classify(&e, "connection setup", &self.addr))
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            // A backstop only: `timed` bounds every command first, with a clearer message.
            .set_response_timeout(Some(self.command_timeout + Duration::from_millis(250)))
            // Reconnection is paced by the bus's jittered retry backoff, not by a second loop.
            .set_number_of_retries(0)
    }

    /// Swaps in fresh managers that connect on first use; commands in flight on the old ones
    /// finish or time out on their own.
    fn replace_connections(&self) {
        self.health.resets.fetch_add(1, Ordering::Relaxed);
        for slot in std::iter::once(&self.writer).chain(&self.readers) {
            if let Ok(fresh) = self.lazy_manager() {
                slot.store(Some(Arc::new(fresh)));
            }
        }
    }

    /// Runs one command future under the command timeout.
    async fn timed<T>(&self, what: &str, future: impl Future<Output = RedisResult<T>>) -> Result<T, AdapterError> {
        let result = match tokio::time::timeout(self.command_timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(classify(&e, what, &self.addr)),
            Err(_) => {
                self.replace_connections();
                Err(timed_out(what, &self.addr, self.command_timeout))
            }
        };
        self.health.note(result)
    }

    /// Runs a read-only command on `role`'s connection under the command timeout. A command
    /// that finds its connection dead (the server restarted since the last use) runs once more
    /// on the reconnected one: reads are safe to repeat, and the first failure is what makes
    /// the manager reconnect.
    async fn read_query<T: FromRedisValue>(&self, role: Role, what: &str, cmd: &Cmd) -> Result<T, AdapterError> {
        let mut conn = self.conn(role)?;
        let result = match tokio::time::timeout(self.command_timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Err(e)) if e.is_connection_dropped() || e.is_io_error() => {
                let mut conn = self.conn(role)?;
                return self.timed(what, cmd.query_async(&mut conn)).await;
            }
            Ok(result) => result.map_err(|e| classify(&e, what, &self.addr)),
            Err(_) => {
                self.replace_connections();
                Err(timed_out(what, &self.addr, self.command_timeout))
            }
        };
        self.health.note(result)
    }

    async fn load_script(&self, conn: &mut ConnectionManager) -> Result<(), AdapterError> {
        let sha: String =
            self.timed("SCRIPT LOAD", ::redis::cmd("SCRIPT").arg("LOAD").arg(APPEND_SCRIPT).query_async(conn)).await?;
        if sha != self.script_sha {
            return Err(unexpected("SCRIPT LOAD", &self.addr, format!("sha {sha}, expected {}", self.script_sha)));
        }
        Ok(())
    }

    fn floor(&self, shard: u16) -> u64 {
        self.floors.lock().map_or(0, |f| f.get(&shard).copied().unwrap_or(0))
    }

    fn raise_floor(&self, shard: u16, position: u64) {
        if let Ok(mut floors) = self.floors.lock() {
            let floor = floors.entry(shard).or_insert(0);
            *floor = (*floor).max(position);
        }
    }

    /// One pipeline of script calls, a chunk each.
    fn append_pipeline(&self, batch: &Batch) -> Pipeline {
        let shard = batch.shard();
        let producer = batch.producer();
        let stream = self.stream_key(shard);
        let meta = self.meta_key(shard);
        let run = producer.run_key();
        let mark = format!("{}:{shard}:mark:{run}", self.config.stream_prefix);
        let shards = self.shards_key();
        let dedup_prefix = format!("{run}:{shard}:");
        let floor = self.floor(shard);
        let maxlen = self.config.maxlen.unwrap_or(0);
        let chunk = self.config.pipeline_chunk;
        let mut pipe = ::redis::pipe();
        pipe.ignore_errors();
        for (index, events) in batch.events().chunks(chunk).enumerate() {
            let offset = (index * chunk) as u64;
            let first_ts = batch.first_timestamp_ns() + offset;
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(&self.script_sha)
                .arg(4)
                .arg(&stream)
                .arg(&meta)
                .arg(&mark)
                .arg(&shards)
                .arg(shard)
                .arg(&dedup_prefix)
                .arg(batch.first_sequence())
                .arg(batch.first_sequence() + offset)
                .arg(first_ts / 1_000_000)
                .arg(first_ts % 1_000_000)
                .arg(floor)
                .arg(maxlen)
                .arg(self.config.dedup_ttl_secs);
            // Each event's field as its producer stamps it; the script keeps these unless
            // another producer got ahead of this one's clock (then it restamps in Lua).
            for (i, event) in events.iter().enumerate() {
                cmd.arg(EntryField {
                    timestamp_ns: first_ts + i as u64,
                    dedup_prefix: &dedup_prefix,
                    sequence: batch.first_sequence() + offset + i as u64,
                    payload: event.payload(),
                });
            }
        }
        pipe
    }

    /// Checks every reply of an append pipeline; `Ok(false)` means the script must be loaded.
    fn check_append(&self, shard: u16, replies: Vec<Value>, chunks: usize) -> Result<bool, AdapterError> {
        if replies.len() != chunks {
            return Err(unexpected("append", &self.addr, format!("{} replies to {chunks} chunks", replies.len())));
        }
        let mut failure = None;
        let mut no_script = false;
        for reply in replies {
            match reply {
                Value::Array(fields) => match fields.as_slice() {
                    [Value::Int(_written), Value::Int(last), Value::Int(trimmed)] => {
                        self.raise_floor(shard, (*last).max(0) as u64);
                        self.trimmed.fetch_add((*trimmed).max(0) as u64, Ordering::Relaxed);
                    }
                    other => {
                        failure.get_or_insert(unexpected("append", &self.addr, format!("{other:?}")));
                    }
                },
                Value::ServerError(e) if e.code() == "NOSCRIPT" => no_script = true,
                Value::ServerError(e) => {
                    failure.get_or_insert(classify_server(&e, &format!("append to shard {shard}"), &self.addr));
                }
                other => {
                    failure.get_or_insert(unexpected("append", &self.addr, format!("{other:?}")));
                }
            }
        }
        match failure {
            // A chunk refused for a missing script makes the next one refuse with PRGAP: load
            // and resend rather than report the PRGAP.
            Some(AdapterError::Transient(_)) if no_script => Ok(false),
            Some(e) => Err(e),
            None => Ok(!no_script),
        }
    }

    /// Up to `want` entries from `position` on, in order, and whether the stream held more
    /// after them.
    async fn fetch(
        &self,
        key: &str,
        what: &str,
        position: u64,
        want: usize,
    ) -> Result<(Vec<Entry>, bool), AdapterError> {
        if want >= 2 * SPLIT_MIN {
            if let Some(result) = self.fetch_split(key, what, position, want).await? {
                return Ok(result);
            }
        }
        self.fetch_plain(key, what, position, want, 0).await
    }

    /// One `XRANGE` with a look-ahead entry.
    async fn fetch_plain(
        &self,
        key: &str,
        what: &str,
        position: u64,
        want: usize,
        reader: usize,
    ) -> Result<(Vec<Entry>, bool), AdapterError> {
        let cmd =
            ::redis::cmd("XRANGE").arg(key).arg(entry_id(position)).arg(LAST_ID).arg("COUNT").arg(want + 1).clone();
        let reply: Value = self.read_query(Role::Read(reader), what, &cmd).await?;
        let mut entries = parse_range(reply).map_err(|e| unexpected(what, &self.addr, e))?;
        let more = entries.len() > want;
        entries.truncate(want);
        Ok((entries, more))
    }

    /// Positions are dense, so `want` entries from `position` are the id range
    /// `[position, position + want)`: split it into parts read at once on different
    /// connections, which parses the replies in parallel.
    ///
    /// The parts run at different moments, so a part may see the stream end inside its range
    /// while a later part, run after more appends, sees entries. The result therefore stops
    /// after the first part that does not reach the end of its range: it is never a run with a
    /// gap that a race made. `None` when the first part is empty while a later one is not
    /// (everything in it trimmed, or such a race): a plain read sorts that out.
    async fn fetch_split(
        &self,
        key: &str,
        what: &str,
        position: u64,
        want: usize,
    ) -> Result<Option<(Vec<Entry>, bool)>, AdapterError> {
        let parts = (want / SPLIT_MIN).min(READERS);
        let size = want / parts;
        let last_size = want - size * (parts - 1);
        let reads = (0..parts).map(|i| {
            let start = position + (i * size) as u64;
            async move {
                if i + 1 == parts {
                    return self.fetch_plain(key, what, start, last_size, i).await;
                }
                let end = start + size as u64 - 1;
                let cmd = ::redis::cmd("XRANGE")
                    .arg(key)
                    .arg(entry_id(start))
                    .arg(entry_id(end))
                    .arg("COUNT")
                    .arg(size)
                    .clone();
                let reply: Value = self.read_query(Role::Read(i), what, &cmd).await?;
                let entries = parse_range(reply).map_err(|e| unexpected(what, &self.addr, e))?;
                let complete = entries.last().is_some_and(|e| e.position >= end);
                Ok((entries, !complete))
            }
        });
        Ok(merge_parts(futures_util::future::try_join_all(reads).await?))
    }

    async fn refresh_shards(&self, role: Role) -> Result<(), AdapterError> {
        let members: Vec<u16> =
            self.read_query(role, "SMEMBERS", ::redis::cmd("SMEMBERS").arg(self.shards_key())).await?;
        if let Ok(mut shards) = self.shards.write() {
            shards.extend(members);
        }
        if let Ok(mut at) = self.shards_refreshed.lock() {
            *at = Some(Instant::now());
        }
        Ok(())
    }

    fn shards_stale(&self) -> bool {
        self.shards_refreshed.lock().map_or(true, |at| at.is_none_or(|at| at.elapsed() >= SHARDS_REFRESH))
    }

    /// An idle blocking connection (`true`: it may have died since its last use) or a new one.
    async fn blocking_connection(&self) -> Result<(MultiplexedConnection, bool), AdapterError> {
        if let Some(conn) = self.blocking.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok((conn, true));
        }
        Ok((self.new_blocking_connection().await?, false))
    }

    async fn new_blocking_connection(&self) -> Result<MultiplexedConnection, AdapterError> {
        // No response timeout of its own: each blocking read is bounded by the caller.
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(Some(self.connect_timeout)).set_response_timeout(None);
        match tokio::time::timeout(
            self.connect_timeout,
            self.client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(classify(&e, "connect for XREAD", &self.addr)),
            Err(_) => Err(timed_out("connect for XREAD", &self.addr, self.connect_timeout)),
        }
    }

    fn return_blocking_connection(&self, conn: MultiplexedConnection) {
        if let Ok(mut idle) = self.blocking.lock() {
            if idle.len() < IDLE_BLOCKING_CONNECTIONS {
                idle.push(conn);
            }
        }
    }
}

/// Joins the parts of a split read, in order: each part's entries with `true` when the part
/// did not reach the end of its range (for the last, open-ended part: when its look-ahead saw
/// more). See [`RedisAdapter::fetch_split`].
fn merge_parts(parts: Vec<(Vec<Entry>, bool)>) -> Option<(Vec<Entry>, bool)> {
    // `entries_from[i]`: some part at or after `i` holds entries.
    let mut entries_from = vec![false; parts.len() + 1];
    for i in (0..parts.len()).rev() {
        entries_from[i] = entries_from[i + 1] || !parts[i].0.is_empty();
    }
    if parts.first().is_some_and(|(entries, _)| entries.is_empty()) && entries_from[1] {
        return None;
    }
    let count = parts.len();
    let mut out = Vec::with_capacity(parts.iter().map(|(entries, _)| entries.len()).sum());
    for (i, (entries, flag)) in parts.into_iter().enumerate() {
        out.extend(entries);
        if i + 1 == count {
            return Some((out, flag));
        }
        if flag {
            // Incomplete: stop here; whether more exists is what the later parts saw.
            return Some((out, entries_from[i + 1]));
        }
    }
    Some((out, false))
}

#[async_trait]
impl Adapter for RedisAdapter {
    fn name(&self) -> &str {
        "redis"
    }

    async fn init(&self) -> Result<(), AdapterError> {
        let connect = ConnectionManager::new_with_config(self.client.clone(), self.manager_config());
        let mut conn = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(AdapterError::Connection(format!("cannot connect to Redis at {}: {e}", self.addr)))
            }
            Err(_) => {
                return Err(AdapterError::Connection(format!(
                    "cannot connect to Redis at {}: no answer within {} ms",
                    self.addr,
                    self.connect_timeout.as_millis()
                )))
            }
        };
        self.load_script(&mut conn).await.map_err(|e| match e {
            AdapterError::Fatal(m) => AdapterError::Fatal(format!("{m} (the adapter needs Redis 7 or newer)")),
            other => other,
        })?;
        self.writer.store(Some(Arc::new(conn)));
        for reader in &self.readers {
            reader.store(Some(Arc::new(self.lazy_manager()?)));
        }
        self.refresh_shards(Role::Write).await?;
        let store_id = self.claim_store_id().await?;
        let _ = self.store_id.set(store_id);
        Ok(())
    }

    fn store_id(&self) -> Option<u128> {
        self.store_id.get().copied()
    }

    /// One past the stream's last position, so a single producer's sequences line up with the
    /// stored positions; but never at or below a sequence this adapter was already offered for
    /// the shard. A shard restarted within one run (scaling) keeps its producer run's mark, and
    /// a batch whose sequences the mark covers would be skipped as already written (failure
    /// mode 15); batches the bus gave up on advanced the producer's sequences but not the
    /// stream, so the stream alone cannot tell.
    async fn next_sequence(&self, shard: u16) -> Result<u64, AdapterError> {
        let last: Option<u64> =
            self.read_query(Role::Write, "HGET", ::redis::cmd("HGET").arg(self.meta_key(shard)).arg("seq")).await?;
        let last = last.unwrap_or(0);
        self.raise_floor(shard, last);
        let offered = self.offered.lock().map_or(0, |o| o.get(&shard).copied().unwrap_or(0));
        let after = last.checked_add(1).ok_or_else(|| {
            AdapterError::Fatal(format!("shard {shard}: the stream's sequence space is exhausted (last {last})"))
        })?;
        Ok(after.max(offered))
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Ok(mut offered) = self.offered.lock() {
            let next = offered.entry(batch.shard()).or_insert(0);
            *next = (*next).max(batch.first_sequence().saturating_add(batch.len() as u64));
        }
        let mut conn = self.conn(Role::Write)?;
        let chunks = batch.len().div_ceil(self.config.pipeline_chunk);
        let what = format!("append to shard {}", batch.shard());
        let mut loaded = false;
        loop {
            let pipe = self.append_pipeline(batch);
            let replies: Vec<Value> = self.timed(&what, pipe.query_async(&mut conn)).await?;
            if self.check_append(batch.shard(), replies, chunks)? {
                break;
            }
            if loaded {
                return Err(AdapterError::Transient(format!("redis on {}: script vanished twice", self.addr)));
            }
            // The server lost its script cache (restart, SCRIPT FLUSH): the refused chunks did
            // not run, so loading and resending is safe; the marks skip whatever did run.
            self.load_script(&mut conn).await?;
            loaded = true;
        }
        if let Ok(mut shards) = self.shards.write() {
            shards.insert(batch.shard());
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), AdapterError> {
        if let Ok(mut idle) = self.blocking.lock() {
            idle.clear();
        }
        Ok(())
    }

    async fn read_shard(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        let mut page = ShardPage { events: Vec::new(), next: read.from, missed: 0, more: false };
        if read.max_events == 0 {
            return Ok(page);
        }
        if self.shards_stale() {
            self.refresh_shards(Role::Read(0)).await?;
        }
        let key = self.stream_key(read.shard);
        let what = format!("XRANGE on shard {}", read.shard);
        // Positions start at 1; position 0 of a fresh cursor is "before everything".
        let mut position = read.from.max(1);
        loop {
            let remaining = read.max_events - page.events.len();
            // Unfiltered, exactly what the page needs; filtered, a larger step (bounded).
            let want = match read.filter {
                None => remaining.min(self.config.read_chunk),
                Some(_) => remaining.saturating_mul(4).clamp(self.config.read_chunk.min(256), self.config.read_chunk),
            };
            let (entries, more_beyond) = self.fetch(&key, &what, position, want).await?;
            let fetched = entries.len();
            let mut examined = 0;
            for Entry { position: at, event } in entries {
                examined += 1;
                if at < position {
                    // Never from `XRANGE 0-{position} ...`; kept so a cursor can only move on.
                    continue;
                }
                // A hole below an entry: trimmed (or deleted) before this cursor read it.
                page.missed += at - position;
                position = at.saturating_add(1);
                page.next = position;
                let Some(event) = event else { continue };
                if read.filter.is_none_or(|f| f.matches(&event.payload)) {
                    page.events.push(StoredEvent {
                        id: event.id,
                        shard: read.shard,
                        sequence: at,
                        timestamp_ns: event.timestamp_ns,
                        payload: event.payload,
                        origin: 0,
                    });
                    if page.events.len() == read.max_events {
                        break;
                    }
                }
            }
            if page.events.len() == read.max_events {
                page.more = examined < fetched || more_beyond;
                break;
            }
            if !more_beyond {
                page.more = false;
                break;
            }
        }
        if page.next == read.from && read.from > 1 {
            // Nothing at or past the cursor. At the tail that is normal; past it, the cursor
            // is not one this stream handed out. One `HGET`, only on an empty read.
            let last: Option<u64> = self
                .read_query(Role::Read(0), "HGET", ::redis::cmd("HGET").arg(self.meta_key(read.shard)).arg("seq"))
                .await?;
            let end = last.unwrap_or(0).saturating_add(1);
            if read.from > end {
                return Err(AdapterError::CursorAhead { shard: read.shard, position: read.from, end });
            }
        }
        // Only positions the stream showed: a cursor's own position proves nothing (a stale or
        // foreign cursor must not push this producer's positions ahead).
        if page.next > read.from {
            self.raise_floor(read.shard, page.next - 1);
        }
        Ok(page)
    }

    fn stored_shards(&self) -> Vec<u16> {
        self.shards.read().map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    fn trimmed_events(&self) -> u64 {
        self.trimmed.load(Ordering::Relaxed)
    }

    fn metrics(&self, out: &mut Vec<AdapterMetric>) {
        let health = &self.health;
        let up = if health.up.load(Ordering::Relaxed) { 1.0 } else { 0.0 };
        out.push(AdapterMetric::gauge("redis_up", "1 while the last command reached the server", up));
        let errors = health.errors.load(Ordering::Relaxed);
        out.push(AdapterMetric::counter("redis_command_errors_total", "Commands that failed", errors));
        let resets = health.resets.load(Ordering::Relaxed);
        out.push(AdapterMetric::counter(
            "redis_connection_resets_total",
            "Connections replaced after a command timed out",
            resets,
        ));
        if let Some(at) = *health.last_error.lock().unwrap_or_else(|e| e.into_inner()) {
            let age = at.elapsed().as_secs_f64();
            out.push(AdapterMetric::gauge("redis_last_error_age_seconds", "Seconds since a command last failed", age));
        }
    }

    /// `XREAD BLOCK` on every polled stream past its position, on a connection of its own.
    async fn wait_for_events(&self, positions: &[(u16, u64)], deadline: Instant) -> Result<(), AdapterError> {
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
            return Ok(());
        };
        if positions.is_empty() {
            // Nothing to watch: the poll's own deadline ends the wait.
            return std::future::pending().await;
        }
        let keys: Vec<String> = positions.iter().map(|&(shard, _)| self.stream_key(shard)).collect();
        // Strictly after `next - 1`: wakes for position `next` and later only.
        let mut after: Vec<String> = positions.iter().map(|&(_, next)| entry_id(next.saturating_sub(1))).collect();
        let what = "XREAD BLOCK";
        let (mut conn, mut pooled) = self.blocking_connection().await?;
        let mut left = left;
        loop {
            let mut cmd = ::redis::cmd("XREAD");
            cmd.arg("COUNT").arg(1).arg("BLOCK").arg(left.as_millis().max(1) as u64).arg("STREAMS");
            cmd.arg(&keys).arg(&after);
            // If this future is dropped (the poll woke another way), the connection goes with
            // it, and closing it ends the blocked command on the server.
            match tokio::time::timeout(left + self.command_timeout, cmd.query_async::<Value>(&mut conn)).await {
                Ok(Ok(reply)) => {
                    // Only entries of another id scheme (which this adapter never reads): wait
                    // past them instead of waking the poll again and again until its deadline.
                    let Some(foreign) = foreign_wakeups(&reply, &keys) else {
                        self.return_blocking_connection(conn);
                        return Ok(());
                    };
                    for (index, id) in foreign {
                        after[index] = id;
                    }
                    match deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                        Some(rest) => left = rest,
                        None => {
                            self.return_blocking_connection(conn);
                            return Ok(());
                        }
                    }
                }
                // An idle connection that died meanwhile (e.g. a server restart): once more on
                // a fresh one.
                Ok(Err(e)) if pooled && (e.is_io_error() || e.is_connection_dropped()) => {
                    conn = self.new_blocking_connection().await?;
                    pooled = false;
                }
                Ok(Err(e)) => return Err(classify(&e, what, &self.addr)),
                Err(_) => return Err(timed_out(what, &self.addr, left + self.command_timeout)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(positions: std::ops::Range<u64>, flag: bool) -> (Vec<Entry>, bool) {
        (positions.map(|position| Entry { position, event: None }).collect(), flag)
    }

    fn positions(merged: &(Vec<Entry>, bool)) -> Vec<u64> {
        merged.0.iter().map(|e| e.position).collect()
    }

    #[test]
    fn complete_parts_join_and_the_last_part_says_whether_more_exists() {
        let merged = merge_parts(vec![part(1..4, false), part(4..7, false), part(7..9, true)]).unwrap();
        assert_eq!((positions(&merged), merged.1), ((1..9).collect(), true));
        let merged = merge_parts(vec![part(1..4, false), part(4..6, false)]).unwrap();
        assert_eq!((positions(&merged), merged.1), ((1..6).collect(), false));
    }

    #[test]
    fn a_part_that_ran_before_appends_ends_the_result_instead_of_leaving_a_gap() {
        // Part 0 saw the stream end at 2 (of 1..=3); part 1 ran after appends and saw 4..7.
        let merged = merge_parts(vec![part(1..3, true), part(4..7, false), part(7..8, false)]).unwrap();
        assert_eq!((positions(&merged), merged.1), (vec![1, 2], true));
        // The stream really ends inside part 1.
        let merged = merge_parts(vec![part(1..4, false), part(4..5, true), part(0..0, false)]).unwrap();
        assert_eq!((positions(&merged), merged.1), ((1..5).collect(), false));
    }

    #[test]
    fn an_empty_first_part_with_entries_after_it_falls_back_to_a_plain_read() {
        assert!(merge_parts(vec![part(0..0, true), part(0..0, true), part(9..12, false)]).is_none());
        let merged = merge_parts(vec![part(0..0, true), part(0..0, false)]).unwrap();
        assert_eq!((positions(&merged), merged.1), (vec![], false));
    }
}
