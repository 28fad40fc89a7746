//! Error types of the public API, one enum per concern.
//!
//! Every error names what went wrong precisely enough to act on: the config key, the cursor
//! defect, the shard. Each also has a [`kind`](IngestionError::kind): an [`ErrorKind`] from the
//! one table that the C status codes, Node `code` strings and Go sentinels come from
//! (`error/kind.rs`), so a kind added there is added to every binding.

mod json;
mod kind;

pub use json::JsonError;
pub(crate) use kind::error_kinds;
pub use kind::ErrorKind;
#[cfg(test)]
pub(crate) use kind::RETIRED_STATUSES;

use std::fmt;

/// Result of `ingest` / `ingest_raw`.
pub type IngestionResult<T> = Result<T, IngestionError>;
/// Result of `poll`.
pub type ConsumerResult<T> = Result<T, ConsumerError>;

/// Why an event was not accepted. An event for which `ingest` returned an error was never
/// counted as ingested: the caller still owns the decision about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum IngestionError {
    /// The shard's ring is full and the back-pressure mode is `DropNewest`.
    Backpressure,
    /// No live shard can take the event (only possible while every shard is being removed).
    Unrouted,
    /// The bus is shutting down or has shut down.
    ShuttingDown,
    /// `ingest(Event)` could not serialise the value.
    Serialization(serde_json::Error),
}

impl fmt::Display for IngestionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backpressure => f.write_str("shard ring buffer is full (back-pressure mode drop_newest)"),
            Self::Unrouted => f.write_str("no live shard can take the event"),
            Self::ShuttingDown => f.write_str("the bus is shutting down"),
            Self::Serialization(e) => write!(f, "event is not serialisable: {e}"),
        }
    }
}

impl IngestionError {
    /// The kind of failure, as every binding reports it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Backpressure => ErrorKind::Backpressure,
            Self::Unrouted => ErrorKind::Unrouted,
            Self::ShuttingDown => ErrorKind::ShuttingDown,
            Self::Serialization(_) => ErrorKind::InvalidJson,
        }
    }
}

impl std::error::Error for IngestionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Serialization(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a poll failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The adapter could not read (a shard that fails fails the whole poll: results are never
    /// silently partial). After shutdown this is `Adapter(AdapterError::Shutdown)`.
    Adapter(AdapterError),
    /// The cursor is not one this library produced, or is damaged. Never a silent rewind.
    InvalidCursor(String),
    /// The filter is malformed (unknown operator, empty `$and`/`$or`, too deep, ...).
    InvalidFilter(String),
    /// The request itself is invalid, e.g. it names a shard that never existed.
    InvalidRequest(String),
    /// The request JSON could not be parsed (syntax, unknown key, wrong type). Its kind is
    /// [`ErrorKind::InvalidRequest`].
    Json(JsonError),
}

impl fmt::Display for ConsumerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Adapter(e) => write!(f, "adapter error: {e}"),
            Self::InvalidCursor(r) => write!(f, "invalid cursor: {r}"),
            Self::InvalidFilter(r) => write!(f, "invalid filter: {r}"),
            Self::InvalidRequest(r) => write!(f, "invalid poll request: {r}"),
            Self::Json(e) => write!(f, "invalid poll request: {e}"),
        }
    }
}

impl ConsumerError {
    /// The kind of failure, as every binding reports it (an adapter failure keeps the
    /// adapter's kind).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Adapter(e) => e.kind(),
            Self::InvalidCursor(_) => ErrorKind::InvalidCursor,
            Self::InvalidFilter(_) => ErrorKind::InvalidFilter,
            Self::InvalidRequest(_) | Self::Json(_) => ErrorKind::InvalidRequest,
        }
    }
}

impl std::error::Error for ConsumerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Adapter(e) => Some(e),
            Self::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<AdapterError> for ConsumerError {
    fn from(e: AdapterError) -> Self {
        Self::Adapter(e)
    }
}

/// An adapter failure, classified so the dispatcher knows whether a retry can help.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdapterError {
    /// A temporary failure; retrying may succeed.
    Transient(String),
    /// A permanent failure; retrying cannot succeed.
    Fatal(String),
    /// The backend is full; retry later.
    Backpressure,
    /// The transport to the backend failed or could not be established.
    Connection(String),
    /// The adapter (or the bus) was asked to stop.
    Shutdown,
    /// Data could not be (de)serialised.
    Serialization(serde_json::Error),
    /// A read started past the end of a shard's log: the cursor is not one this store handed
    /// out (another store, or a log that was lost or recreated since). Its kind is
    /// [`ErrorKind::InvalidCursor`]; a poll reports it as [`ConsumerError::InvalidCursor`].
    CursorAhead {
        /// The shard read.
        shard: u16,
        /// Where the cursor stands in it.
        position: u64,
        /// The sequence the shard's next event will have: every valid position is at most this.
        end: u64,
    },
    /// Stored data is damaged (a disk log record that fails its checksum); the message names
    /// the file and offset.
    Corrupt(String),
    /// The store is held by another process (a disk log's lock); the message names it.
    Locked(String),
}

impl AdapterError {
    /// `true` for `Transient` and `Backpressure`: the dispatcher retries these within its budget
    /// and drops every other kind of failure at once.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Backpressure)
    }

    /// The kind of failure, as every binding reports it. `Shutdown` is
    /// [`ErrorKind::ShuttingDown`]: the caller's view is the bus's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Transient(_) => ErrorKind::AdapterTransient,
            Self::Fatal(_) => ErrorKind::AdapterFatal,
            Self::Backpressure => ErrorKind::AdapterBackpressure,
            Self::Connection(_) => ErrorKind::AdapterConnection,
            Self::Shutdown => ErrorKind::ShuttingDown,
            Self::Serialization(_) => ErrorKind::Adapter,
            Self::CursorAhead { .. } => ErrorKind::InvalidCursor,
            Self::Corrupt(_) => ErrorKind::DiskCorrupt,
            Self::Locked(_) => ErrorKind::DiskLocked,
        }
    }
}

impl Clone for AdapterError {
    fn clone(&self) -> Self {
        match self {
            Self::Transient(s) => Self::Transient(s.clone()),
            Self::Fatal(s) => Self::Fatal(s.clone()),
            Self::Backpressure => Self::Backpressure,
            Self::Connection(s) => Self::Connection(s.clone()),
            Self::Shutdown => Self::Shutdown,
            Self::Corrupt(s) => Self::Corrupt(s.clone()),
            Self::Locked(s) => Self::Locked(s.clone()),
            // serde_json::Error is not Clone; its message is what callers can use.
            Self::Serialization(e) => {
                Self::Serialization(<serde_json::Error as serde::de::Error>::custom(e.to_string()))
            }
            Self::CursorAhead { shard, position, end } => {
                Self::CursorAhead { shard: *shard, position: *position, end: *end }
            }
        }
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient(s) => write!(f, "transient adapter failure: {s}"),
            Self::Fatal(s) => write!(f, "fatal adapter failure: {s}"),
            Self::Backpressure => f.write_str("adapter backend is full"),
            Self::Connection(s) => write!(f, "adapter connection failure: {s}"),
            Self::Shutdown => f.write_str("adapter is shut down"),
            Self::Serialization(e) => write!(f, "adapter serialisation failure: {e}"),
            Self::CursorAhead { shard, position, end } => {
                write!(f, "shard {shard}: the cursor is at {position}, past the end of the log (next sequence {end})")
            }
            Self::Corrupt(s) => write!(f, "corrupt data: {s}"),
            Self::Locked(s) => write!(f, "store is locked: {s}"),
        }
    }
}

impl std::error::Error for AdapterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Serialization(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a flush with a deadline ([`EventBus::flush_timeout`](crate::EventBus::flush_timeout))
/// did not complete.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FlushError {
    /// The deadline passed first. Nothing was given up: the undelivered events stay queued and
    /// keep being delivered (or counted dropped) as the retry policy says; a later flush waits
    /// for them again.
    Timeout {
        /// Events accepted and not yet delivered or dropped, as the deadline passed: queued in
        /// rings or in a batch being retried.
        undelivered: u64,
        /// Events dropped since the previous flush returned (they are not reported again).
        dropped: u64,
    },
    /// The adapter failed to flush, or the bus is shutting down (`Adapter(Shutdown)`).
    Adapter(AdapterError),
}

impl FlushError {
    /// The kind of failure, as every binding reports it: [`ErrorKind::Timeout`], or the
    /// adapter's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Adapter(e) => e.kind(),
        }
    }
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { undelivered, dropped } => write!(
                f,
                "flush timed out: {undelivered} events not yet delivered (still queued), {dropped} dropped since the previous flush"
            ),
            Self::Adapter(e) => write!(f, "flush failed: {e}"),
        }
    }
}

impl std::error::Error for FlushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Adapter(e) => Some(e),
            Self::Timeout { .. } => None,
        }
    }
}

impl From<AdapterError> for FlushError {
    fn from(e: AdapterError) -> Self {
        Self::Adapter(e)
    }
}

/// A configuration the bus cannot run with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field holds an invalid value; `field` is its JSON path, e.g. `batch.max_events`.
    Invalid {
        /// Dotted path of the offending key.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The JSON could not be parsed (unknown key, wrong type, syntax); the message names the key
    /// and the position.
    Json(JsonError),
    /// The configured adapter is not available in this build or not implemented.
    Unsupported(String),
    /// The adapter failed to start (e.g. the broker is unreachable).
    Adapter(AdapterError),
    /// The producer identity file could not be read or written.
    ProducerIdentity(String),
}

impl ConfigError {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.to_owned(), reason: reason.into() }
    }

    /// The offending field, when the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The kind of failure, as every binding reports it: [`ErrorKind::Config`], except that an
    /// adapter that failed to start keeps the adapter's kind (the config was fine; the backend
    /// it names could not be reached).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Adapter(e) => e.kind(),
            _ => ErrorKind::Config,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, reason } => write!(f, "invalid config `{field}`: {reason}"),
            Self::Json(m) => write!(f, "invalid config JSON: {m}"),
            Self::Unsupported(m) => write!(f, "unsupported config: {m}"),
            Self::Adapter(e) => write!(f, "adapter failed to start: {e}"),
            Self::ProducerIdentity(m) => write!(f, "producer identity: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            Self::Adapter(e) => Some(e),
            _ => None,
        }
    }
}

impl From<JsonError> for ConfigError {
    fn from(e: JsonError) -> Self {
        Self::Json(e)
    }
}

impl From<AdapterError> for ConfigError {
    fn from(e: AdapterError) -> Self {
        Self::Adapter(e)
    }
}

/// Why a scaling operation failed. Partial results are never reported as success.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ScalingError {
    /// The request is invalid (zero count, empty id list, duplicate ids).
    InvalidRequest(String),
    /// A shard id is not a live shard of this bus.
    UnknownShard(u16),
    /// The operation would leave the shard count outside `[min, max]` (or remove the last shard).
    OutOfBounds {
        /// Shard count the operation would produce.
        requested: usize,
        /// Smallest allowed count.
        min: u16,
        /// Largest allowed count.
        max: u16,
    },
    /// The bus is shutting down.
    ShuttingDown,
    /// Some shards could not be processed; `done` lists those that were.
    Partial {
        /// Shards that were added or removed.
        done: Vec<u16>,
        /// Shards that were not, with the reason.
        failed: Vec<(u16, String)>,
    },
    /// The adapter refused the change.
    Adapter(AdapterError),
}

impl fmt::Display for ScalingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRequest(m) => write!(f, "invalid scaling request: {m}"),
            Self::UnknownShard(id) => write!(f, "shard {id} is not a live shard"),
            Self::OutOfBounds { requested, min, max } => {
                write!(f, "{requested} shards is outside the allowed range [{min}, {max}]")
            }
            Self::ShuttingDown => f.write_str("the bus is shutting down"),
            Self::Partial { done, failed } => {
                write!(f, "scaling partly failed: done {done:?}, failed ")?;
                for (i, (id, why)) in failed.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}shard {id}: {why}")?;
                }
                Ok(())
            }
            Self::Adapter(e) => write!(f, "adapter refused scaling: {e}"),
        }
    }
}

impl ScalingError {
    /// The kind of failure, as every binding reports it: [`ErrorKind::Scaling`], except
    /// shutdown and the adapter's own failures.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::ShuttingDown => ErrorKind::ShuttingDown,
            Self::Adapter(e) => e.kind(),
            _ => ErrorKind::Scaling,
        }
    }
}

impl std::error::Error for ScalingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Adapter(e) => Some(e),
            _ => None,
        }
    }
}
