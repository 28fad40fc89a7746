//! Bus configuration: the Rust builder and the JSON shape shared by C, Node and Go.
//!
//! Everything is validated in one place (`EventBusConfig::validate`), so a config built in Rust
//! and one parsed from JSON are held to the same rules, and every error names its field.
//!
//! Plain data, below every stage that reads it: the adapter section ([`AdapterConfig`] and one
//! struct per backend) and the [`ScalingPolicy`] live here too, so that the adapters, the
//! scaler and the bus all import their settings from one place and nothing here imports them.

mod adapter;
mod scaling;

pub(crate) use adapter::{parse_hex32, to_hex};
pub use adapter::{
    AdapterConfig, DiskAdapterConfig, DiskFsync, JetStreamAdapterConfig, JetStreamStorage, MemoryAdapterConfig,
    NetAdapterConfig, RedisAdapterConfig,
};
pub use scaling::ScalingPolicy;

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Largest number of shards a bus may have at once.
pub const MAX_SHARDS: u16 = 1024;
/// Largest ring capacity (slots per shard).
pub const MAX_RING_CAPACITY: usize = 1 << 24;
/// Largest page a poll request may ask for (and the largest read chunk an adapter may be
/// configured with).
pub const MAX_LIMIT: usize = 1_000_000;

/// Configuration of an [`EventBus`](crate::EventBus).
///
/// # Examples
/// ```
/// use purple_rain::{AdapterConfig, BackpressureMode, BatchConfig, EventBusConfig, ScalingPolicy};
/// let config = EventBusConfig::builder()
///     .shards(16)
///     .ring_capacity(4096)
///     .batch(BatchConfig::default().max_events(1024).max_delay_ms(5))
///     .backpressure(BackpressureMode::DropOldest)
///     .adapter(AdapterConfig::net().listen("0.0.0.0:7777").peer("10.0.0.2:7777"))
///     .scaling(ScalingPolicy::default())
///     .build()?;
/// assert_eq!(config.shards, 16);
/// # Ok::<(), purple_rain::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventBusConfig {
    /// Shards at start.
    pub shards: u16,
    /// Slots in each shard's ring; a power of two. Each slot is one 64-byte cache line, allocated
    /// when the shard starts (4096 slots: 256 KiB per shard).
    pub ring_capacity: usize,
    /// How workers batch and retry.
    pub batch: BatchConfig,
    /// What `ingest` does when a ring is full.
    pub backpressure: BackpressureMode,
    /// Where batches go.
    pub adapter: AdapterConfig,
    /// Scaling bounds and thresholds; `None` keeps the shard count where the caller puts it.
    pub scaling: Option<ScalingPolicy>,
    /// File that persists the producer id and start epoch (advanced on every start) that
    /// begin every dedup id; `None`: a fresh id per process.
    ///
    /// Copying the file (a cloned VM image, a volume restored on a second host) is safe: the
    /// copies report the same producer id and may reach the same epoch, but every start also
    /// draws a random run that is part of every dedup id and broker dedup key, so two buses
    /// started from copies, even concurrently against the same streams, never take each
    /// other's events for duplicates; both write everything. What a copy shares is only the
    /// name: ids and logs show the two as one producer.
    pub producer_nonce_path: Option<PathBuf>,
}

impl Default for EventBusConfig {
    /// Four shards of 4096 slots, `DropNewest`, the Noop adapter.
    fn default() -> Self {
        Self {
            shards: 4,
            ring_capacity: 4096,
            batch: BatchConfig::default(),
            backpressure: BackpressureMode::default(),
            adapter: AdapterConfig::Noop,
            scaling: None,
            producer_nonce_path: None,
        }
    }
}

/// Refuses an array wherever `shape` (the default config as JSON) has an object; `path` is the
/// dotted key path of `given`. An adapter of another type than the default is checked as far
/// as the keys they share.
fn objects_where_objects_belong(
    given: &serde_json::Value,
    shape: &serde_json::Value,
    path: &str,
) -> Result<(), ConfigError> {
    let serde_json::Value::Object(fields) = shape else { return Ok(()) };
    match given {
        serde_json::Value::Array(_) if path.is_empty() => Err(ConfigError::Json(
            <serde_json::Error as serde::de::Error>::invalid_type(serde::de::Unexpected::Seq, &"a JSON object").into(),
        )),
        serde_json::Value::Array(_) => Err(ConfigError::invalid(path, "must be a JSON object, not an array")),
        serde_json::Value::Object(given) => {
            for (key, value) in given {
                if let Some(shape) = fields.get(key) {
                    let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    objects_where_objects_belong(value, shape, &path)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

impl EventBusConfig {
    /// Starts a builder from the defaults.
    pub fn builder() -> EventBusConfigBuilder {
        EventBusConfigBuilder { config: Self::default() }
    }

    /// Parses and validates the JSON shape; `null` or empty text gives the defaults.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() || text.trim() == "null" {
            return Ok(Self::default());
        }
        let mut parser = serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut parser).map_err(|e| {
            let mut path = e.path().to_string();
            if path == "adapter" {
                // The adapter is tagged by `type`, which serde reads through a buffer that
                // forgets the path inside it: find it again on the adapter alone.
                if let Some(inner) = adapter::path_inside(text) {
                    path = format!("adapter.{inner}");
                }
            }
            ConfigError::Json(crate::error::JsonError::at(e.into_inner(), path))
        })?;
        parser.end().map_err(|e| ConfigError::Json(e.into()))?;
        // serde also reads a struct from an array, field by field in order (`[1]` would be
        // `{"shards":1}`): every place the config has an object must hold one. Checked after
        // the typed parse, so syntax and type errors keep their positions.
        let given: serde_json::Value = serde_json::from_str(text).map_err(|e| ConfigError::Json(e.into()))?;
        let shape = serde_json::to_value(Self::default()).unwrap_or_default();
        objects_where_objects_belong(&given, &shape, "")?;
        config.validate()?;
        Ok(config)
    }

    /// Serialises to the JSON shape.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks every field; the error names the first invalid one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.shards == 0 {
            return Err(ConfigError::invalid("shards", "must be at least 1"));
        }
        if self.shards > MAX_SHARDS {
            return Err(ConfigError::invalid("shards", format!("must be at most {MAX_SHARDS}")));
        }
        if self.ring_capacity < 2 || !self.ring_capacity.is_power_of_two() || self.ring_capacity > MAX_RING_CAPACITY {
            return Err(ConfigError::invalid(
                "ring_capacity",
                format!("must be a power of two between 2 and {MAX_RING_CAPACITY}, got {}", self.ring_capacity),
            ));
        }
        self.batch.validate()?;
        self.adapter.validate()?;
        if let Some(policy) = &self.scaling {
            policy.validate()?;
            if self.shards < policy.min_shards || self.shards > policy.max_shards {
                return Err(ConfigError::invalid(
                    "shards",
                    format!("{} is outside scaling bounds [{}, {}]", self.shards, policy.min_shards, policy.max_shards),
                ));
            }
        }
        if let Some(path) = &self.producer_nonce_path {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::invalid("producer_nonce_path", "must not be empty"));
            }
        }
        Ok(())
    }
}

/// Builds an [`EventBusConfig`]; `build` validates.
#[derive(Debug, Clone)]
pub struct EventBusConfigBuilder {
    config: EventBusConfig,
}

impl EventBusConfigBuilder {
    /// Shards at start.
    pub fn shards(mut self, shards: u16) -> Self {
        self.config.shards = shards;
        self
    }
    /// Slots per ring (power of two).
    pub fn ring_capacity(mut self, capacity: usize) -> Self {
        self.config.ring_capacity = capacity;
        self
    }
    /// Batching and retry.
    pub fn batch(mut self, batch: BatchConfig) -> Self {
        self.config.batch = batch;
        self
    }
    /// Full-ring behaviour.
    pub fn backpressure(mut self, mode: BackpressureMode) -> Self {
        self.config.backpressure = mode;
        self
    }
    /// The adapter; accepts `AdapterConfig` or a backend config such as `AdapterConfig::memory()`.
    pub fn adapter(mut self, adapter: impl Into<AdapterConfig>) -> Self {
        self.config.adapter = adapter.into();
        self
    }
    /// Scaling policy.
    pub fn scaling(mut self, policy: ScalingPolicy) -> Self {
        self.config.scaling = Some(policy);
        self
    }
    /// Persist the producer identity at `path` (see [`EventBusConfig::producer_nonce_path`]
    /// for what copying the file does).
    pub fn producer_nonce_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.producer_nonce_path = Some(path.into());
        self
    }
    /// Validates and returns the config.
    pub fn build(self) -> Result<EventBusConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

/// How shard workers form batches and retry failed ones.
///
/// A worker dispatches as soon as it wakes with events, so an idle bus adds no batching delay;
/// under load, events that arrive while a batch is in flight form the next, larger batch,
/// capped at `max_events`. No event waits for a batch to fill: `max_delay_ms` is the bound on
/// such lingering, and this dispatcher never lingers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Largest batch handed to the adapter.
    pub max_events: usize,
    /// Longest an event may wait for its batch to form.
    pub max_delay_ms: u64,
    /// Retry of retryable adapter errors.
    pub retry: RetryPolicy,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_events: 1024, max_delay_ms: 5, retry: RetryPolicy::default() }
    }
}

impl BatchConfig {
    /// Largest batch.
    pub fn max_events(mut self, n: usize) -> Self {
        self.max_events = n;
        self
    }
    /// Longest linger.
    pub fn max_delay_ms(mut self, ms: u64) -> Self {
        self.max_delay_ms = ms;
        self
    }
    /// Retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_events == 0 {
            return Err(ConfigError::invalid("batch.max_events", "must be at least 1"));
        }
        if self.max_events > MAX_RING_CAPACITY {
            return Err(ConfigError::invalid("batch.max_events", format!("must be at most {MAX_RING_CAPACITY}")));
        }
        self.retry.validate()
    }
}

/// Exponential backoff with full jitter for retryable adapter errors, bounded by attempts and
/// by elapsed time.
///
/// Attempt `k` (from 1) that fails with a retryable error waits a random time in
/// `[d/2, d]` with `d = min(initial_backoff_ms * 2^(k-1), max_backoff_ms)`, then tries again,
/// until `max_attempts` attempts in all or `max_elapsed_ms` have passed, whichever comes first;
/// the batch is then dropped and counted (`dropped_retry_exhausted`). The last wait is cut
/// short so that one attempt falls on the end of the elapsed budget.
///
/// The elapsed budget runs from the first failure of the shard's current run of failures, not
/// per batch: during an outage the first batch waits up to `max_elapsed_ms`, and the batches
/// queued behind it get one attempt each until a batch gets through again. So an outage longer
/// than the budget costs about `max_elapsed_ms` once, not once per queued batch, and a
/// shutdown or flush during it is bounded by it.
///
/// The trade-off: a larger budget rides out longer broker restarts and failovers without
/// loss, but holds the shard's queue for that long (the ring fills and back-pressure applies:
/// `block` producers wait, `drop_newest` refuses, `drop_oldest` evicts), and a shutdown during
/// an outage waits up to the budget. The default, 30 s with at most 100 attempts, rides out a
/// routine broker restart or failover; set `max_elapsed_ms` low (or `max_attempts` to 1) where
/// fresh data matters more than complete data.
///
/// # Examples
/// ```
/// use purple_rain::{BatchConfig, RetryPolicy};
/// let batch = BatchConfig::default().retry(RetryPolicy::default().max_elapsed_ms(5_000));
/// assert_eq!(batch.retry.max_elapsed_ms, 5_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts per batch including the first (1 = no retry).
    pub max_attempts: u32,
    /// First backoff.
    pub initial_backoff_ms: u64,
    /// Backoff cap.
    pub max_backoff_ms: u64,
    /// Longest a shard keeps retrying, from the first failure of its current run of failures.
    pub max_elapsed_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 100, initial_backoff_ms: 10, max_backoff_ms: 2_000, max_elapsed_ms: 30_000 }
    }
}

impl RetryPolicy {
    /// Attempts per batch, the first included.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }
    /// First backoff.
    pub fn initial_backoff_ms(mut self, ms: u64) -> Self {
        self.initial_backoff_ms = ms;
        self
    }
    /// Backoff cap.
    pub fn max_backoff_ms(mut self, ms: u64) -> Self {
        self.max_backoff_ms = ms;
        self
    }
    /// Elapsed-time budget of a run of failures.
    pub fn max_elapsed_ms(mut self, ms: u64) -> Self {
        self.max_elapsed_ms = ms;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::invalid("batch.retry.max_attempts", "must be at least 1"));
        }
        if self.initial_backoff_ms == 0 {
            return Err(ConfigError::invalid("batch.retry.initial_backoff_ms", "must be at least 1"));
        }
        if self.max_backoff_ms < self.initial_backoff_ms {
            return Err(ConfigError::invalid("batch.retry.max_backoff_ms", "must be at least initial_backoff_ms"));
        }
        Ok(())
    }
}

/// What `ingest` does when the shard's ring is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackpressureMode {
    /// Park the producer until the worker frees a slot (no spinning).
    Block,
    /// Evict the oldest queued event (counted in `dropped_evicted`) and accept the new one.
    DropOldest,
    /// Reject the new event with `IngestionError::Backpressure`.
    #[default]
    DropNewest,
}
