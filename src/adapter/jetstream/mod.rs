//! The NATS JetStream adapter (feature `jetstream`).
//!
//! # Layout on the server
//! One stream per shard, named `{prefix}_{shard}`, holding the one subject `{prefix}.{shard}`.
//! One stream per shard (rather than one stream with a subject per shard) makes the stream
//! sequence a per-shard counter with no holes except removed messages, so it serves directly as
//! [`StoredEvent::sequence`](crate::StoredEvent) and as the cursor position: strictly
//! increasing, never reused while the stream lives, shared by every bus that publishes to the
//! same prefix, and any hole a reader meets is a message removed before it was read, which is
//! exactly what `missed` reports. Retention bounds (`max_msgs`, `max_bytes`, `max_age_ms`)
//! apply per shard, as the memory adapter's do.
//!
//! A shard's stream is created, or verified and updated to the configured limits, the first
//! time the adapter needs it: in `next_sequence`, which the bus calls before a shard's worker
//! starts, so shards added by scaling get their stream too. An existing stream with another
//! storage type or other subjects is refused, never silently reused.
//!
//! # Publishing
//! Every message carries `Nats-Msg-Id` = the event's dedup id and `Pr-Ts` = its ingestion
//! timestamp. Messages are published without waiting for each ack; at most
//! `max_outstanding_acks` acks are outstanding across all shards, and `on_batch` returns once
//! every ack of its batch arrived. A missing, failed or late ack fails the batch with a
//! retryable error: the bus retries the whole batch, and the server drops every message of the
//! retry it already stored (same ids, within `duplicate_window_ms`). See `publish.rs`.
//!
//! # Reading
//! A page is read with an ephemeral pull consumer (no acks, memory state) started at the
//! cursor's stream sequence and fetched in batches: two round trips for a fresh read, one when a
//! poll continues where the previous one stopped (the positioned consumer is kept per shard).
//! Removed sequences cost nothing: the server skips them. Every request and every message of a
//! fetch is bounded by `request_timeout_ms`; a read that fails or times out is an error, never a
//! partial page. Long poll subscribes to the shards' subjects and waits for the server to route
//! a message (see `read.rs`). A fresh read that finds nothing at or past its cursor asks the
//! stream for its last sequence, and a cursor beyond it is `AdapterError::CursorAhead`. The
//! adapter has no store id (`Adapter::store_id` is `None`): JetStream has no per-prefix key to
//! keep one in short of a KV bucket, and a stream recreated under an old cursor restarts its
//! sequences at 1, which the past-the-end check catches once the cursor is ahead of it.
//!
//! # Order and timestamps
//! Each shard's messages are stored in publish order, with one exception: when a connection
//! drops mid-batch, messages already written to the dead socket are lost while the ones still
//! queued in the client reach the server after the reconnect; the retry then stores the lost
//! ones after them. Exactly-once holds (the retry's other copies are dropped as duplicates),
//! and a batch completes before the next starts, so an event never moves past another batch:
//! at most `batch.max_events` places. `timestamp_ns` is the ingestion timestamp the producer
//! stamped (`Pr-Ts`), so it increases with the sequence for one producer outside such a
//! reconnect; with several buses publishing to one prefix, each bus's timestamps increase and
//! they interleave. Strict order across reconnects would need the publishes chained with
//! `Nats-Expected-Last-Subject-Sequence`, which only works with a single producer per shard.
//!
//! # Reconnects
//! The client reconnects by itself (jittered backoff, unlimited attempts). While it knows the
//! connection is down (the server closed it, or refused the reconnect), a publish fails at once
//! with a retryable error, and a batch whose connection drops while it waits for acks fails as
//! soon as the client reports the drop: the client would otherwise queue the messages and the
//! batch would wait out `request_timeout_ms` for acks that cannot come, once per queued batch,
//! which made a flush during an outage take minutes. The bus retries such batches within its
//! retry budget (`batch.retry`). A server that stops answering without closing the connection
//! is not known down: its batches still take the request timeout. A consumer lost with the
//! server is recreated; a stream lost with a memory-storage server is recreated on the next
//! publish.

mod publish;
mod read;
mod streams;

use super::{Adapter, AdapterMetric, ShardPage, ShardRead};
use crate::config::JetStreamAdapterConfig;
use crate::error::AdapterError;
use crate::model::Batch;
use async_nats::connection::State;
use async_nats::jetstream::response::Response;
use async_nats::jetstream::Context;
use async_nats::{Client, Event};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{watch, OnceCell, Semaphore};

/// Stores batches in NATS JetStream, one stream per shard. See the [module docs](self).
pub struct JetStreamAdapter {
    config: JetStreamAdapterConfig,
    conn: OnceCell<Connection>,
    /// Bounds the publishes awaiting an ack, across shards.
    acks: Arc<Semaphore>,
    shards: RwLock<HashMap<u16, Arc<ShardStream>>>,
    /// Shards whose stream exists on the server, as far as this adapter has seen.
    stored: RwLock<BTreeSet<u16>>,
    /// Requests made by reads (consumer creations and fetches).
    read_requests: AtomicU64,
    closed: AtomicBool,
}

/// The live connection, made in `init`.
struct Connection {
    client: Client,
    js: Context,
    /// `false` from the client's `Disconnected` event to its next `Connected`.
    up: watch::Receiver<bool>,
}

impl Connection {
    /// Fails fast, with a retryable error, while the client knows it has no connection.
    fn ensure_up(&self, url: &str, subject: &str) -> Result<(), AdapterError> {
        if self.client.connection_state() == State::Connected && *self.up.borrow() {
            return Ok(());
        }
        Err(not_connected(url, subject))
    }
}

/// The retryable error of a publish to `subject` while the connection is known down.
fn not_connected(url: &str, subject: &str) -> AdapterError {
    transient(&format!("publish to {subject}"), format!("not connected to {url} (reconnecting)"))
}

/// What the adapter knows about one shard's stream.
struct ShardStream {
    shard: u16,
    /// `{prefix}_{shard}`.
    name: String,
    /// `{prefix}.{shard}`.
    subject: async_nats::Subject,
    /// The stream was created or verified since the adapter started (or since it was lost).
    verified: AtomicBool,
    /// Serialises creation/verification of this stream.
    verify: tokio::sync::Mutex<()>,
    /// Messages removed from the front of the stream, as last observed (`first_seq - 1`).
    trimmed: AtomicU64,
    /// A consumer positioned where the last read of this shard stopped.
    consumer: Mutex<Option<read::PositionedConsumer>>,
}

impl JetStreamAdapter {
    /// An adapter for `config`; it connects in [`Adapter::init`].
    pub fn new(config: JetStreamAdapterConfig) -> Self {
        let acks = Arc::new(Semaphore::new(config.max_outstanding_acks));
        Self {
            config,
            conn: OnceCell::new(),
            acks,
            shards: RwLock::new(HashMap::new()),
            stored: RwLock::new(BTreeSet::new()),
            read_requests: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &JetStreamAdapterConfig {
        &self.config
    }

    /// The name of `shard`'s stream.
    pub fn stream_name(&self, shard: u16) -> String {
        format!("{}_{shard}", self.config.stream_prefix)
    }

    /// The subject `shard`'s events are published on.
    pub fn subject(&self, shard: u16) -> String {
        format!("{}.{shard}", self.config.stream_prefix)
    }

    /// Requests the reads made so far (consumer creations and fetches): a page of `n` events
    /// costs about `n / 8192 + 1` of them, however many messages retention removed before it.
    pub fn read_requests(&self) -> u64 {
        self.read_requests.load(Ordering::Relaxed)
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    fn conn(&self) -> Result<&Connection, AdapterError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AdapterError::Shutdown);
        }
        self.conn.get().ok_or_else(|| AdapterError::Connection("the jetstream adapter is not initialised".into()))
    }

    /// The state of `shard`'s stream, created on first use (no server call).
    fn shard(&self, shard: u16) -> Arc<ShardStream> {
        if let Some(s) = self.shards.read().unwrap_or_else(|e| e.into_inner()).get(&shard) {
            return s.clone();
        }
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        shards
            .entry(shard)
            .or_insert_with(|| {
                Arc::new(ShardStream {
                    shard,
                    name: self.stream_name(shard),
                    subject: self.subject(shard).into(),
                    verified: AtomicBool::new(false),
                    verify: tokio::sync::Mutex::new(()),
                    trimmed: AtomicU64::new(0),
                    consumer: Mutex::new(None),
                })
            })
            .clone()
    }

    fn mark_stored(&self, shard: u16) {
        self.stored.write().unwrap_or_else(|e| e.into_inner()).insert(shard);
    }

    async fn connect(&self) -> Result<Connection, AdapterError> {
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        let (up_tx, up) = watch::channel(true);
        let options = async_nats::ConnectOptions::new()
            .name("purple-rain")
            .connection_timeout(timeout)
            .request_timeout(Some(self.request_timeout()))
            .max_reconnects(None)
            .reconnect_delay_callback(reconnect_delay)
            .event_callback(move |event| {
                match event {
                    Event::Connected => {
                        up_tx.send_replace(true);
                    }
                    Event::Disconnected | Event::Closed => {
                        up_tx.send_replace(false);
                    }
                    _ => {}
                }
                std::future::ready(())
            });
        // The client bounds its own handshake; the outer bound also covers name resolution.
        let client = match tokio::time::timeout(timeout, options.connect(self.config.url.as_str())).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(AdapterError::Connection(format!("cannot connect to {}: {e}", self.config.url))),
            Err(_) => {
                return Err(AdapterError::Connection(format!(
                    "cannot connect to {} within {} ms",
                    self.config.url, self.config.connect_timeout_ms
                )))
            }
        };
        // The adapter's own semaphore bounds the acks it awaits. The context's bound also counts
        // the acks of a failed batch that were dropped un-awaited, which the client keeps waiting
        // for in the background until `ack_timeout`: give them room beside the live window and
        // the same timeout as every request, so a failed batch cannot stall its retry.
        let js = async_nats::jetstream::ContextBuilder::new()
            .timeout(self.request_timeout())
            .ack_timeout(self.request_timeout())
            .max_ack_inflight(self.config.max_outstanding_acks.saturating_mul(2))
            .backpressure_on_inflight(true)
            .build(client.clone());
        Ok(Connection { client, js, up })
    }
}

/// Reconnect delay: none for the first attempt, then exponential to 2 s with jitter, so many
/// clients do not hammer a recovering server in lockstep.
fn reconnect_delay(attempt: usize) -> Duration {
    if attempt <= 1 {
        return Duration::ZERO;
    }
    let ceiling = 10u64.saturating_mul(1 << (attempt - 1).min(16)).min(2_000);
    Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling))
}

impl std::fmt::Debug for JetStreamAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamAdapter")
            .field("url", &self.config.url)
            .field("stream_prefix", &self.config.stream_prefix)
            .field("connected", &self.conn.initialized())
            .finish()
    }
}

#[async_trait]
impl Adapter for JetStreamAdapter {
    fn name(&self) -> &str {
        "jetstream"
    }

    /// Connects, checks that JetStream is enabled for the account, and lists the streams of this
    /// prefix that already exist (so polls see shards other buses wrote).
    async fn init(&self) -> Result<(), AdapterError> {
        let conn = self.conn.get_or_try_init(|| self.connect()).await?;
        // The account info request answers only where JetStream is enabled. (Read as plain JSON:
        // the client's typed account info expects fields newer servers add.)
        let unavailable = |e: &dyn std::fmt::Display| {
            AdapterError::Connection(format!("JetStream is not available at {}: {e}", self.config.url))
        };
        let account: Response<serde_json::Value> = conn.js.request("INFO", &()).await.map_err(|e| unavailable(&e))?;
        if let Response::Err { error } = account {
            return Err(unavailable(&error));
        }
        for shard in streams::existing_shards(conn, &self.config.stream_prefix).await? {
            self.mark_stored(shard);
        }
        Ok(())
    }

    /// Creates or verifies the shard's stream, then starts after its last sequence. Dedup ids
    /// are unique through the producer's run key already; starting past the stream's last
    /// sequence also keeps a shard's producer sequences growing across restarts.
    async fn next_sequence(&self, shard: u16) -> Result<u64, AdapterError> {
        let stream = self.shard(shard);
        let info = self.ensure_stream(&stream).await?;
        info.state
            .last_sequence
            .checked_add(1)
            .ok_or_else(|| AdapterError::Fatal(format!("shard {shard}: the stream's sequence space is exhausted")))
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        self.publish_batch(batch).await
    }

    /// Nothing to do: `on_batch` returns only after the server acknowledged (stored) every
    /// message of the batch.
    async fn flush(&self) -> Result<(), AdapterError> {
        self.conn().map(|_| ())
    }

    async fn shutdown(&self) -> Result<(), AdapterError> {
        let Some(conn) = self.conn.get() else { return Ok(()) };
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let consumers: Vec<_> = {
            let shards = self.shards.read().unwrap_or_else(|e| e.into_inner());
            shards.values().filter_map(|s| s.take_consumer().map(|c| (s.name.clone(), c))).collect()
        };
        let timeout = self.request_timeout();
        let deletes = consumers.into_iter().map(|(stream, c)| {
            let js = conn.js.clone();
            async move {
                let _ = tokio::time::timeout(timeout, js.delete_consumer_from_stream(c.name(), stream)).await;
            }
        });
        futures_util::future::join_all(deletes).await;
        // Best effort: what matters (every ack) has been awaited already.
        let _ = tokio::time::timeout(timeout, conn.client.drain()).await;
        Ok(())
    }

    async fn read_shard(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        self.read(read).await
    }

    fn stored_shards(&self) -> Vec<u16> {
        self.stored.read().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    /// Messages removed from the front of the shard streams by retention, as last observed.
    fn trimmed_events(&self) -> u64 {
        self.shards.read().unwrap_or_else(|e| e.into_inner()).values().map(|s| s.trimmed.load(Ordering::Relaxed)).sum()
    }

    /// The connection's state and the client's own counters (atomics it keeps anyway).
    fn metrics(&self, out: &mut Vec<AdapterMetric>) {
        let Some(conn) = self.conn.get() else { return };
        let up = conn.client.connection_state() == State::Connected && *conn.up.borrow();
        out.push(AdapterMetric::gauge("jetstream_up", "1 while the client is connected", if up { 1.0 } else { 0.0 }));
        let stats = conn.client.statistics();
        // The first connect is not a reconnect.
        let reconnects = stats.connects.load(Ordering::Relaxed).saturating_sub(1);
        out.push(AdapterMetric::counter("jetstream_reconnects_total", "Connections re-established", reconnects));
        let requests = self.read_requests.load(Ordering::Relaxed);
        out.push(AdapterMetric::counter("jetstream_read_requests_total", "Consumer creations and fetches", requests));
        out.push(AdapterMetric::counter(
            "jetstream_sent_bytes_total",
            "Payload bytes sent",
            stats.out_bytes.load(Ordering::Relaxed),
        ));
        let received = stats.in_bytes.load(Ordering::Relaxed);
        out.push(AdapterMetric::counter("jetstream_received_bytes_total", "Payload bytes received", received));
    }

    async fn wait_for_events(&self, positions: &[(u16, u64)], deadline: Instant) -> Result<(), AdapterError> {
        self.wait(positions, deadline).await
    }
}

/// A failed request: timeouts and transport failures are worth a retry.
fn transient(what: &str, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::Transient(format!("jetstream {what}: {e}"))
}
