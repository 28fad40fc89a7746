//! Shard streams: create, verify, update, look up.

use super::{transient, Connection, JetStreamAdapter, ShardStream};
use crate::config::JetStreamStorage;
use crate::error::AdapterError;
use async_nats::jetstream::response::Response;
use async_nats::jetstream::stream::{self, DiscardPolicy, Info, RetentionPolicy, StorageType};
use async_nats::jetstream::ErrorCode;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl JetStreamAdapter {
    /// The stream configuration this adapter wants for a shard.
    fn stream_config(&self, stream: &ShardStream) -> stream::Config {
        let c = &self.config;
        let limit = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        stream::Config {
            name: stream.name.clone(),
            subjects: vec![stream.subject.to_string()],
            storage: match c.storage {
                JetStreamStorage::File => StorageType::File,
                JetStreamStorage::Memory => StorageType::Memory,
            },
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_messages: limit(c.max_msgs),
            max_bytes: limit(c.max_bytes),
            max_age: c.max_age_ms.map_or(Duration::ZERO, Duration::from_millis),
            max_messages_per_subject: -1,
            max_consumers: -1,
            max_message_size: -1,
            num_replicas: c.replicas,
            duplicate_window: Duration::from_millis(c.duplicate_window_ms),
            description: Some("purple-rain shard stream".into()),
            ..Default::default()
        }
    }

    /// Makes sure the shard's stream exists with the configured limits, unless that was done
    /// already since start (or since the stream was found missing).
    pub(super) async fn ensure_verified(&self, stream: &ShardStream) -> Result<(), AdapterError> {
        if stream.verified.load(Ordering::Acquire) {
            return Ok(());
        }
        self.ensure_stream(stream).await.map(|_| ())
    }

    /// Creates the shard's stream, or verifies an existing one and brings its limits to the
    /// configured ones. Refuses a stream with another storage type or other subjects. Returns
    /// the stream's info.
    pub(super) async fn ensure_stream(&self, stream: &ShardStream) -> Result<Info, AdapterError> {
        let conn = self.conn()?;
        let _one_at_a_time = stream.verify.lock().await;
        let want = self.stream_config(stream);
        // Creating with the exact config is idempotent on the server: one round trip when the
        // stream exists as configured.
        let created: Response<Info> = conn
            .js
            .request(format!("STREAM.CREATE.{}", stream.name), &want)
            .await
            .map_err(|e| transient(&format!("creating stream {}", stream.name), e))?;
        let info = match created {
            Response::Ok(info) => info,
            Response::Err { error } if error.error_code() == ErrorCode::STREAM_NAME_EXIST => {
                let existing = stream_info(conn, &stream.name).await?.ok_or_else(|| {
                    AdapterError::Transient(format!("stream {} vanished while verified", stream.name))
                })?;
                if existing.config.storage != want.storage {
                    return Err(AdapterError::Fatal(format!(
                        "stream {} exists with storage {:?}, the config says {:?} (adapter.storage)",
                        stream.name, existing.config.storage, want.storage
                    )));
                }
                if existing.config.subjects != want.subjects {
                    return Err(AdapterError::Fatal(format!(
                        "stream {} exists with subjects {:?}, not {:?}: it is not a purple-rain shard stream",
                        stream.name, existing.config.subjects, want.subjects
                    )));
                }
                let updated: Response<Info> = conn
                    .js
                    .request(format!("STREAM.UPDATE.{}", stream.name), &want)
                    .await
                    .map_err(|e| transient(&format!("updating stream {}", stream.name), e))?;
                match updated {
                    Response::Ok(info) => info,
                    Response::Err { error } => {
                        return Err(AdapterError::Fatal(format!(
                            "stream {} cannot take the configured limits: {error}",
                            stream.name
                        )))
                    }
                }
            }
            Response::Err { error } => {
                return Err(AdapterError::Fatal(format!("cannot create stream {}: {error}", stream.name)))
            }
        };
        stream.observe(&info.state);
        stream.verified.store(true, Ordering::Release);
        self.mark_stored(stream.shard);
        Ok(info)
    }

    /// The shard stream's state, or `None` if it does not exist.
    pub(super) async fn stream_state(&self, stream: &ShardStream) -> Result<Option<stream::State>, AdapterError> {
        let info = stream_info(self.conn()?, &stream.name).await?;
        if let Some(info) = &info {
            stream.observe(&info.state);
        }
        Ok(info.map(|i| i.state))
    }
}

impl ShardStream {
    fn observe(&self, state: &stream::State) {
        self.trimmed.fetch_max(state.first_sequence.saturating_sub(1), Ordering::Relaxed);
    }
}

/// `STREAM.INFO`; `None` if the stream does not exist.
async fn stream_info(conn: &Connection, name: &str) -> Result<Option<Info>, AdapterError> {
    let response: Response<Info> = conn
        .js
        .request(format!("STREAM.INFO.{name}"), &())
        .await
        .map_err(|e| transient(&format!("stream info {name}"), e))?;
    match response {
        Response::Ok(info) => Ok(Some(info)),
        Response::Err { error } if error.error_code() == ErrorCode::STREAM_NOT_FOUND => Ok(None),
        Response::Err { error } => Err(transient(&format!("stream info {name}"), error)),
    }
}

/// Shards whose stream `{prefix}_{shard}` exists on the server.
pub(super) async fn existing_shards(conn: &Connection, prefix: &str) -> Result<Vec<u16>, AdapterError> {
    #[derive(Deserialize)]
    struct Page {
        total: usize,
        streams: Option<Vec<String>>,
    }
    let mut shards = Vec::new();
    let mut offset = 0;
    loop {
        let request = serde_json::json!({ "offset": offset, "subject": format!("{prefix}.*") });
        let page: Response<Page> =
            conn.js.request("STREAM.NAMES", &request).await.map_err(|e| transient("listing streams", e))?;
        let page = match page {
            Response::Ok(page) => page,
            Response::Err { error } => return Err(transient("listing streams", error)),
        };
        let names = page.streams.unwrap_or_default();
        offset += names.len();
        shards.extend(names.iter().filter_map(|n| n.strip_prefix(prefix)?.strip_prefix('_')?.parse::<u16>().ok()));
        if names.is_empty() || offset >= page.total {
            return Ok(shards);
        }
    }
}
