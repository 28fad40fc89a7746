//! Reading a shard page with a pull consumer, and long poll.
//!
//! A read uses an ephemeral pull consumer of the shard's stream (no acks, memory state, removed
//! by the server after `CONSUMER_IDLE` without use) started at the cursor's sequence, and
//! fetches up to the page size per request (`no_wait`: the server sends what it has and says
//! when it has no more). A fresh read costs two round trips (create, fetch); the consumer is
//! then kept, positioned where the read stopped, and the next read of the shard from exactly
//! that position costs one. A kept consumer that fails (removed for idleness, lost in a server
//! restart) is replaced by a fresh one within the same read. Messages removed by retention are
//! skipped by the server, not fetched one by one; the holes in the sequence are `missed`.
//!
//! The fetch is read here rather than with the client's `fetch()` stream, which ends silently
//! on a closed subscription or its own timer: a read that does not complete is an error, never
//! a page that looks complete.

use super::publish::TIMESTAMP_HEADER;
use super::{transient, Connection, JetStreamAdapter, ShardStream};
use crate::adapter::{ShardPage, ShardRead};
use crate::error::AdapterError;
use crate::model::StoredEvent;
use async_nats::jetstream::consumer::pull::{self, BatchConfig};
use async_nats::jetstream::consumer::{AckPolicy, Consumer, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::ErrorCode;
use async_nats::{Message, StatusCode};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most messages asked for in one fetch.
const MAX_FETCH: usize = 8192;
/// Smallest fetch of a filtered read (most fetched messages may be rejected).
const FILTERED_FETCH: usize = 1024;
/// The server removes a reader's consumer after this long without use.
const CONSUMER_IDLE: Duration = Duration::from_secs(120);

/// A pull consumer whose next delivery is stream sequence `next`.
pub(super) struct PositionedConsumer {
    consumer: Consumer<pull::Config>,
    next: u64,
}

impl PositionedConsumer {
    pub(super) fn name(&self) -> &str {
        &self.consumer.cached_info().name
    }
}

impl ShardStream {
    pub(super) fn take_consumer(&self) -> Option<PositionedConsumer> {
        self.consumer.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The JetStream metadata of a delivered message, from its reply subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delivery {
    stream_sequence: u64,
    /// Server receive time, ns since the Unix epoch.
    published_ns: u64,
    /// Messages left for the consumer after this one.
    pending: u64,
}

/// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (v1) or
/// `$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]`
/// (v2).
fn parse_delivery(reply: &str) -> Option<Delivery> {
    // Called for every message read: split into a fixed array, no allocation.
    let mut tokens = [""; 12];
    let mut count = 0;
    for token in reply.split('.') {
        // v2 allows further tokens, which carry nothing read here.
        if let Some(slot) = tokens.get_mut(count) {
            *slot = token;
        }
        count += 1;
    }
    if count < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
        return None;
    }
    let base = if count == 9 { 2 } else { 4 };
    let number = |i: usize| tokens.get(base + i)?.parse::<u64>().ok();
    Some(Delivery { stream_sequence: number(3)?, published_ns: number(5)?, pending: number(6)? })
}

impl JetStreamAdapter {
    pub(super) async fn read(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        let conn = self.conn()?;
        let stream = self.shard(read.shard);
        let empty = ShardPage { events: Vec::new(), next: read.from, missed: 0, more: false };
        if read.max_events == 0 {
            return Ok(empty);
        }
        // Stream sequences start at 1; position 0 is "from the start".
        let from = read.from.max(1);
        let kept = stream.take_consumer();
        if let Some(kept) = kept {
            if kept.next == from {
                // A failure here is a consumer removed for idleness or lost in a restart (or a
                // server that is down, which the fresh consumer below finds out again).
                if let Ok(page) = self.read_with(conn, &stream, kept.consumer, from, None, &read).await {
                    return Ok(page);
                }
            } else {
                self.delete_consumer(conn, &stream, kept);
            }
        }
        let config = pull::Config {
            deliver_policy: if from <= 1 {
                DeliverPolicy::All
            } else {
                DeliverPolicy::ByStartSequence { start_sequence: from }
            },
            ack_policy: AckPolicy::None,
            replay_policy: ReplayPolicy::Instant,
            inactive_threshold: CONSUMER_IDLE,
            memory_storage: true,
            description: Some("purple-rain reader".into()),
            ..Default::default()
        };
        self.read_requests.fetch_add(1, Ordering::Relaxed);
        let consumer = match conn.js.create_consumer_on_stream(config, &stream.name).await {
            Ok(consumer) => consumer,
            Err(e) => {
                return match e.kind() {
                    ConsumerErrorKind::JetStream(error) if error.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                        Ok(empty)
                    }
                    _ => Err(transient(&format!("creating a reader of {}", stream.name), e)),
                }
            }
        };
        // The server starts at the first retained message when `from` was trimmed.
        let info = consumer.cached_info();
        let start = info.delivered.stream_sequence.saturating_add(1);
        let pending = info.num_pending;
        if start > from {
            // Then `start` is the stream's first sequence: everything before it was removed.
            stream.trimmed.fetch_max(start - 1, Ordering::Relaxed);
        }
        if pending == 0 && from > 1 {
            // Nothing at or past the cursor: normal at the tail, but past it the cursor is not
            // one this stream handed out. One more request, only for a fresh, empty read.
            let end = self.stream_state(&stream).await?.map_or(1, |state| state.last_sequence.saturating_add(1));
            if from > end {
                self.delete_consumer(conn, &stream, PositionedConsumer { consumer, next: from });
                return Err(AdapterError::CursorAhead { shard: read.shard, position: read.from, end });
            }
        }
        self.read_with(conn, &stream, consumer, start, Some(pending), &read).await
    }

    /// Reads a page with `consumer`, whose next delivery is at or after `start`; `pending` is
    /// the number of messages left for it, when known.
    async fn read_with(
        &self,
        conn: &Connection,
        stream: &ShardStream,
        consumer: Consumer<pull::Config>,
        start: u64,
        pending: Option<u64>,
        read: &ShardRead<'_>,
    ) -> Result<ShardPage, AdapterError> {
        let from = read.from.max(1);
        // Next stream sequence to examine; every hole below it was removed before being read.
        let mut next = from.max(start);
        let mut missed = next - from;
        let mut events = Vec::with_capacity(read.max_events.min(MAX_FETCH));
        let mut more = pending != Some(0);
        let mut overshot = false;
        while more && events.len() < read.max_events {
            let want = read.max_events - events.len();
            let size = if read.filter.is_some() { want.max(FILTERED_FETCH) } else { want }.min(MAX_FETCH);
            let messages = match self.fetch(conn, &consumer, size).await {
                Ok(messages) => messages,
                Err(e) => {
                    self.delete_consumer(conn, stream, PositionedConsumer { consumer, next });
                    return Err(e);
                }
            };
            if messages.is_empty() {
                more = false;
            }
            for message in messages {
                let delivery = message.reply.as_deref().and_then(parse_delivery).ok_or_else(|| {
                    AdapterError::Fatal(format!("a message of {} has no JetStream metadata", stream.name))
                })?;
                if delivery.stream_sequence < from {
                    // Only after the stream was recreated under a cursor from its old life.
                    continue;
                }
                if events.len() == read.max_events {
                    // Fetched past a full (filtered) page: the rest is read again next time.
                    overshot = true;
                    more = true;
                    break;
                }
                missed += delivery.stream_sequence.saturating_sub(next);
                next = delivery.stream_sequence.saturating_add(1);
                more = delivery.pending > 0;
                if read.filter.is_none_or(|f| f.matches(&message.payload)) {
                    events.push(stored_event(stream.shard, &delivery, message));
                }
            }
        }
        let kept = PositionedConsumer { consumer, next };
        if overshot {
            self.delete_consumer(conn, stream, kept);
        } else {
            let replaced = stream.consumer.lock().unwrap_or_else(|e| e.into_inner()).replace(kept);
            if let Some(old) = replaced {
                self.delete_consumer(conn, stream, old);
            }
        }
        Ok(ShardPage { events, next, missed, more })
    }

    /// One `no_wait` fetch of up to `size` messages: all that the consumer has, or an error.
    async fn fetch(
        &self,
        conn: &Connection,
        consumer: &Consumer<pull::Config>,
        size: usize,
    ) -> Result<Vec<Message>, AdapterError> {
        self.read_requests.fetch_add(1, Ordering::Relaxed);
        let timeout = self.request_timeout();
        let inbox = conn.client.new_inbox();
        let mut replies = conn.client.subscribe(inbox.clone()).await.map_err(|e| transient("fetch subscribe", e))?;
        let request = BatchConfig { batch: size, no_wait: true, ..Default::default() };
        consumer.request_batch(request, inbox.into()).await.map_err(|e| transient("fetch request", e))?;
        let mut messages = Vec::with_capacity(size);
        while messages.len() < size {
            let message = match tokio::time::timeout(timeout, replies.next()).await {
                Ok(Some(message)) => message,
                Ok(None) => return Err(AdapterError::Connection("jetstream fetch: subscription closed".into())),
                Err(_) => {
                    return Err(transient("fetch", format!("no reply within {} ms", self.config.request_timeout_ms)))
                }
            };
            match message.status {
                None | Some(StatusCode::OK) => messages.push(message),
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                // No (more) messages now.
                Some(StatusCode::NOT_FOUND) | Some(StatusCode::TIMEOUT) => break,
                Some(status) => {
                    let why = message.description.as_deref().unwrap_or("");
                    return Err(transient("fetch", format!("status {status} {why}")));
                }
            }
        }
        Ok(messages)
    }

    /// Deletes a consumer in the background; the server would remove it after idling anyway.
    fn delete_consumer(&self, conn: &Connection, stream: &ShardStream, consumer: PositionedConsumer) {
        let js = conn.js.clone();
        let name = consumer.name().to_owned();
        let stream = stream.name.clone();
        let timeout = self.request_timeout();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(timeout, js.delete_consumer_from_stream(name, stream)).await;
        });
    }

    /// Long poll: resolves when a message may exist at or past one of `positions`, or at
    /// `deadline`. Subscribes to the shards' subjects first, then checks each stream's last
    /// sequence (so a message stored between the caller's read and the subscription is not
    /// missed), then waits for the server to route a message on any of the subjects.
    pub(super) async fn wait(&self, positions: &[(u16, u64)], deadline: Instant) -> Result<(), AdapterError> {
        let conn = self.conn()?;
        if positions.is_empty() {
            tokio::time::sleep_until(deadline.into()).await;
            return Ok(());
        }
        let timeout = self.request_timeout();
        let mut subscriptions = Vec::with_capacity(positions.len());
        for &(shard, _) in positions {
            let subject = self.subject(shard);
            subscriptions.push(conn.client.subscribe(subject).await.map_err(|e| transient("long-poll subscribe", e))?);
        }
        // The server has registered the subscriptions once it answers a ping.
        match tokio::time::timeout(timeout, conn.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(transient("long-poll flush", e)),
            Err(_) => return Err(transient("long-poll flush", "timed out")),
        }
        let checks = positions.iter().map(|&(shard, position)| async move {
            let state = self.stream_state(&self.shard(shard)).await?;
            Ok::<bool, AdapterError>(state.is_some_and(|s| s.last_sequence >= position.max(1)))
        });
        for has_new in futures_util::future::join_all(checks).await {
            if has_new? {
                return Ok(());
            }
        }
        let mut routed = futures_util::stream::select_all(subscriptions);
        tokio::select! {
            message = routed.next() => match message {
                Some(_) => Ok(()),
                None => Err(AdapterError::Connection("jetstream long poll: subscriptions closed".into())),
            },
            _ = tokio::time::sleep_until(deadline.into()) => Ok(()),
        }
    }
}

fn stored_event(shard: u16, delivery: &Delivery, message: Message) -> StoredEvent {
    let timestamp_ns = message
        .headers
        .as_ref()
        .and_then(|h| h.get(TIMESTAMP_HEADER))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(delivery.published_ns);
    StoredEvent {
        id: format!("{shard}-{}", delivery.stream_sequence),
        shard,
        sequence: delivery.stream_sequence,
        timestamp_ns,
        payload: message.payload,
        origin: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_ack_subject_formats() {
        let v1 = parse_delivery("$JS.ACK.purple_0.c1.1.42.7.1700000000000000000.3").unwrap();
        assert_eq!(v1, Delivery { stream_sequence: 42, published_ns: 1_700_000_000_000_000_000, pending: 3 });
        let v2 = parse_delivery("$JS.ACK.dom.hash.purple_0.c1.1.42.7.1700000000000000000.3.tok").unwrap();
        assert_eq!(v2, v1);
        let longer = parse_delivery("$JS.ACK.dom.hash.purple_0.c1.1.42.7.1700000000000000000.3.tok.x.y").unwrap();
        assert_eq!(longer, v1);
        assert_eq!(parse_delivery("_INBOX.abc"), None);
        assert_eq!(parse_delivery("$JS.ACK.s.c.1.x.7.1.3"), None);
    }
}
