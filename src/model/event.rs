//! The two shapes an event enters the bus in.
//!
//! `RawEvent` is what travels through rings and batches: the payload as shared `Bytes` plus the
//! xxh3-64 routing hash, computed once when the event is made so the hot path never rehashes.

use bytes::Bytes;
use serde_json::Value as JsonValue;
use xxhash_rust::xxh3::xxh3_64;

/// A JSON event, the convenient form. `ingest` stores it as compact JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Event(pub JsonValue);

impl Event {
    /// Wraps a JSON value.
    pub fn new(value: JsonValue) -> Self {
        Self(value)
    }

    /// Parses JSON text.
    #[allow(clippy::should_implement_trait)] // the API reference names it; `FromStr` is implemented too
    pub fn from_str(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s).map(Self)
    }

    /// Parses JSON bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes).map(Self)
    }

    /// The JSON value.
    pub fn into_inner(self) -> JsonValue {
        self.0
    }

    /// Borrows the JSON value.
    pub fn as_value(&self) -> &JsonValue {
        &self.0
    }

    /// Serialises to compact JSON and hashes it.
    pub fn into_raw(self) -> RawEvent {
        RawEvent::from_value(self.0)
    }
}

impl std::str::FromStr for Event {
    type Err = serde_json::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s).map(Self)
    }
}

impl From<JsonValue> for Event {
    fn from(value: JsonValue) -> Self {
        Self(value)
    }
}

/// A pre-serialised event with its cached routing hash: the high-throughput form.
///
/// Cloning is O(1): the payload is shared `Bytes`.
///
/// # Examples
/// ```
/// use purple_rain::RawEvent;
/// let a = RawEvent::with_key(&br#"{"n":1}"#[..], "user-7");
/// let b = RawEvent::with_key(&br#"{"n":2}"#[..], "user-7");
/// assert_eq!(a.hash(), b.hash()); // same key, same shard, order kept
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    payload: Bytes,
    hash: u64,
}

impl RawEvent {
    /// Takes the bytes as they are (no validation) and routes by their xxh3-64 hash.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let payload = bytes.into();
        let hash = xxh3_64(&payload);
        Self { payload, hash }
    }

    /// Like `from_bytes`, but rejects bytes that are not one complete JSON value.
    pub fn from_bytes_validated(bytes: impl Into<Bytes>) -> Result<Self, serde_json::Error> {
        let payload = bytes.into();
        // IgnoredAny walks and checks the whole document without building it.
        serde_json::from_slice::<serde::de::IgnoredAny>(&payload)?;
        Ok(Self::from_bytes(payload))
    }

    /// Routes by a caller-supplied hash instead of hashing the payload.
    pub fn from_bytes_with_hash(bytes: impl Into<Bytes>, hash: u64) -> Self {
        Self { payload: bytes.into(), hash }
    }

    /// Routes by the hash of `key`, so all events of one key land on one shard, in order.
    pub fn with_key(bytes: impl Into<Bytes>, key: impl AsRef<[u8]>) -> Self {
        Self::from_bytes_with_hash(bytes, xxh3_64(key.as_ref()))
    }

    /// Serialises a JSON value compactly.
    pub fn from_value(value: JsonValue) -> Self {
        // Serialising a `Value` into a Vec cannot fail: its map keys are strings and it holds no
        // user `Serialize` impls.
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        Self::from_bytes(bytes)
    }

    /// The payload bytes.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Consumes the event, returning the payload.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// The routing hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
}

impl From<Event> for RawEvent {
    fn from(event: Event) -> Self {
        event.into_raw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validated_rejects_bad_json() {
        assert!(RawEvent::from_bytes_validated(&b"{\"a\":1"[..]).is_err());
        assert!(RawEvent::from_bytes_validated(&b"{\"a\":1} x"[..]).is_err());
        assert!(RawEvent::from_bytes_validated(&b""[..]).is_err());
        assert!(RawEvent::from_bytes_validated(&b"\xff"[..]).is_err());
        assert!(RawEvent::from_bytes_validated(&b"{\"a\":[1,2]}"[..]).is_ok());
    }

    #[test]
    fn hash_is_cached_xxh3_or_key() {
        let e = RawEvent::from_bytes(&b"abc"[..]);
        assert_eq!(e.hash(), xxh3_64(b"abc"));
        assert_eq!(RawEvent::with_key(&b"x"[..], "k").hash(), xxh3_64(b"k"));
        assert_eq!(RawEvent::from_bytes_with_hash(&b"x"[..], 7).hash(), 7);
    }

    #[test]
    fn event_into_raw_is_compact_json() {
        let e = Event::from_str(r#"{ "a" : [1, 2] }"#).unwrap();
        assert_eq!(e.into_raw().payload().as_ref(), br#"{"a":[1,2]}"#);
    }
}
