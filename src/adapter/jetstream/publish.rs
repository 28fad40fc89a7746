//! Publishing a batch: deduplicated, asynchronous, with a bound on outstanding acks.
//!
//! Each message is handed to the client without waiting for the previous ack; its ack future
//! holds one permit of the adapter-wide semaphore until it resolves. When no permit is free,
//! the batch drives its own outstanding acks (which frees permits) while it waits, so a batch
//! can never wait on permits that only it could release. The batch succeeds when every ack
//! arrived; the first failed or late ack fails it with a retryable error. Acks still in flight
//! then are dropped: their messages may be stored already, and the retry's copies, which carry
//! the same `Nats-Msg-Id`, are dropped by the server (the ack says `duplicate`).
//!
//! A batch fails at once, retryably, when the connection is known down: before it starts, and
//! while it waits for acks (the client's `Disconnected` event), instead of waiting out the ack
//! timeout for acks that cannot come.

use super::{transient, JetStreamAdapter, ShardStream};
use crate::error::AdapterError;
use crate::model::Batch;
use async_nats::header::{HeaderMap, HeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::sync::atomic::Ordering;
use tokio::sync::OwnedSemaphorePermit;

/// Header carrying the event's ingestion timestamp (ns since the Unix epoch, decimal).
pub(super) const TIMESTAMP_HEADER: &str = "Pr-Ts";

type AckResult = Result<PublishAck, PublishError>;

impl JetStreamAdapter {
    pub(super) async fn publish_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        let conn = self.conn()?;
        let stream = self.shard(batch.shard());
        conn.ensure_up(&self.config.url, &stream.subject)?;
        self.ensure_verified(&stream).await?;
        let mut pending = FuturesUnordered::new();
        for (index, entry) in batch.iter().enumerate() {
            let permit = self.ack_permit(&stream, &mut pending).await?;
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, batch.dedup_id(index));
            headers.insert(TIMESTAMP_HEADER, HeaderValue::from(entry.timestamp_ns));
            let message = PublishMessage::build().payload(entry.payload().clone()).headers(headers);
            let ack =
                conn.js.send_publish(stream.subject.clone(), message).await.map_err(|e| publish_error(&stream, e))?;
            pending.push(async move {
                let result = ack.await;
                drop(permit);
                result
            });
        }
        let mut up = conn.up.clone();
        loop {
            tokio::select! {
                biased;
                result = pending.next() => match result {
                    Some(result) => check_ack(&stream, result)?,
                    None => return Ok(()),
                },
                _ = up.wait_for(|up| !*up) => return Err(super::not_connected(&self.config.url, &stream.subject)),
            }
        }
    }

    /// One permit of the outstanding-ack bound, completing this batch's own acks meanwhile.
    async fn ack_permit<F>(
        &self,
        stream: &ShardStream,
        pending: &mut FuturesUnordered<F>,
    ) -> Result<OwnedSemaphorePermit, AdapterError>
    where
        F: Future<Output = AckResult>,
    {
        let closed = |_| AdapterError::Shutdown;
        loop {
            if let Ok(permit) = self.acks.clone().try_acquire_owned() {
                return Ok(permit);
            }
            if pending.is_empty() {
                return self.acks.clone().acquire_owned().await.map_err(closed);
            }
            tokio::select! {
                biased;
                Some(result) = pending.next() => check_ack(stream, result)?,
                permit = self.acks.clone().acquire_owned() => return permit.map_err(closed),
            }
        }
    }
}

/// An ack is good whether the message is new or a duplicate the server dropped.
fn check_ack(stream: &ShardStream, result: AckResult) -> Result<(), AdapterError> {
    result.map(|_| ()).map_err(|e| publish_error(stream, e))
}

fn publish_error(stream: &ShardStream, e: PublishError) -> AdapterError {
    match e.kind() {
        PublishErrorKind::StreamNotFound => {
            // Lost with a memory-storage server, or deleted: recreate it before the retry.
            stream.verified.store(false, Ordering::Release);
            transient(&format!("publish to {}", stream.subject), "no stream holds the subject")
        }
        PublishErrorKind::MaxPayloadExceeded => {
            AdapterError::Fatal(format!("jetstream publish to {}: {e}", stream.subject))
        }
        _ => transient(&format!("publish to {}", stream.subject), e),
    }
}
