//! Which adapter a bus uses, in the JSON shape `{"type": "...", ...}`.
//!
//! Every variant exists in every build so a config file means the same everywhere; a bus built
//! without the feature a variant needs refuses it with a `ConfigError` that says which feature.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where batches go. New backends add variants, so a match outside this crate needs a `_` arm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AdapterConfig {
    /// Discards every batch (the default).
    #[default]
    Noop,
    /// In-process retained log per shard: ingest then poll with no server.
    Memory(MemoryAdapterConfig),
    /// Mesh transport between buses.
    Net(NetAdapterConfig),
    /// Redis Streams, one stream per shard (feature `redis`).
    Redis(RedisAdapterConfig),
    /// NATS JetStream, one subject per shard (feature `jetstream`).
    #[serde(rename = "jetstream")]
    JetStream(JetStreamAdapterConfig),
    /// Durable append-only log per shard in a local directory (`adapter::disk`).
    Disk(DiskAdapterConfig),
}

/// The key path, inside `adapter`, of what makes the config `text` fail to parse (such as
/// `max_events_per_shard`), found by reading the adapter's object again as its `type`'s config
/// (serde reads a `type`-tagged enum through a buffer, which loses the path inside it).
pub(super) fn path_inside(text: &str) -> Option<String> {
    fn path_of<T: serde::de::DeserializeOwned>(fields: serde_json::Map<String, serde_json::Value>) -> Option<String> {
        let error = serde_path_to_error::deserialize::<_, T>(serde_json::Value::Object(fields)).err()?;
        Some(error.path().to_string()).filter(|path| path != ".")
    }
    let config: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut fields = config.get("adapter")?.as_object()?.clone();
    let kind = fields.remove("type")?;
    match kind.as_str()? {
        "memory" => path_of::<MemoryAdapterConfig>(fields),
        "net" => path_of::<NetAdapterConfig>(fields),
        "redis" => path_of::<RedisAdapterConfig>(fields),
        "jetstream" => path_of::<JetStreamAdapterConfig>(fields),
        "disk" => path_of::<DiskAdapterConfig>(fields),
        _ => None,
    }
}

impl AdapterConfig {
    /// An in-memory adapter config with default bounds.
    pub fn memory() -> MemoryAdapterConfig {
        MemoryAdapterConfig::default()
    }

    /// A Net adapter config to fill with `listen` and `peer`.
    pub fn net() -> NetAdapterConfig {
        NetAdapterConfig::default()
    }

    /// A Redis adapter config for `url`.
    pub fn redis(url: impl Into<String>) -> RedisAdapterConfig {
        RedisAdapterConfig { url: url.into(), ..RedisAdapterConfig::default() }
    }

    /// A JetStream adapter config for `url`.
    pub fn jetstream(url: impl Into<String>) -> JetStreamAdapterConfig {
        JetStreamAdapterConfig { url: url.into(), ..JetStreamAdapterConfig::default() }
    }

    /// A durable disk log in `dir`, with `fsync` = `batch` and no retention bound.
    pub fn disk(dir: impl Into<PathBuf>) -> DiskAdapterConfig {
        DiskAdapterConfig { dir: dir.into(), ..DiskAdapterConfig::default() }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Noop => Ok(()),
            Self::Disk(c) => c.validate(),
            Self::Memory(c) => c.validate(),
            Self::Net(c) => c.validate(),
            Self::Redis(c) => c.validate(),
            Self::JetStream(c) => c.validate(),
        }
    }
}

fn validate_broker(at: &str, url: &str, prefix: &str, scheme: &str) -> Result<(), ConfigError> {
    let tls_redis = scheme == "redis://" && url.starts_with("rediss://");
    if !(url.starts_with(scheme) || tls_redis) {
        return Err(ConfigError::invalid(&format!("{at}.url"), format!("must start with {scheme}, got {url:?}")));
    }
    if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ConfigError::invalid(
            &format!("{at}.stream_prefix"),
            "must be non-empty and use only ASCII letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

/// Bounds of the in-memory log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryAdapterConfig {
    /// Events kept per shard; the oldest are trimmed first.
    pub max_events_per_shard: usize,
    /// Payload bytes kept per shard, if bounded.
    pub max_bytes_per_shard: Option<usize>,
}

impl Default for MemoryAdapterConfig {
    fn default() -> Self {
        Self { max_events_per_shard: 1_000_000, max_bytes_per_shard: None }
    }
}

impl MemoryAdapterConfig {
    /// Events kept per shard.
    pub fn max_events_per_shard(mut self, n: usize) -> Self {
        self.max_events_per_shard = n;
        self
    }
    /// Payload bytes kept per shard.
    pub fn max_bytes_per_shard(mut self, n: usize) -> Self {
        self.max_bytes_per_shard = Some(n);
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_events_per_shard == 0 {
            return Err(ConfigError::invalid("adapter.max_events_per_shard", "must be at least 1"));
        }
        if self.max_bytes_per_shard == Some(0) {
            return Err(ConfigError::invalid("adapter.max_bytes_per_shard", "must be at least 1"));
        }
        Ok(())
    }
}

impl From<MemoryAdapterConfig> for AdapterConfig {
    fn from(c: MemoryAdapterConfig) -> Self {
        Self::Memory(c)
    }
}

/// A mesh of buses: this node listens on `listen`, dials every `peers` address, and every event
/// ingested on any node connected through any chain of peers is stored on every node, exactly
/// once (see `adapter::net` for the protocol).
///
/// Every connection is encrypted and mutually authenticated with the cluster `key` (32 random
/// bytes as 64 hex digits, inline or in `key_file`): make one with
/// [`generate_key`](Self::generate_key) and give it to every node. Plain text needs `insecure`
/// and is refused unless every address is a loopback one.
///
/// Each node also has a static X25519 key pair, its identity: a fresh one per bus, or a
/// persistent one kept in `identity_file` (created, mode 0600, when missing). Listing the public
/// keys of the nodes allowed in `peer_public_keys` pins them: a node holding the cluster key but
/// another identity is then refused at the handshake and counted as an authentication failure.
/// A node tells its public key through `NetAdapter::public_key` and its `net_node` statistic.
///
/// # Examples
/// ```
/// use purple_rain::{AdapterConfig, NetAdapterConfig};
/// let key = NetAdapterConfig::generate_key();
/// let net = AdapterConfig::net().listen("127.0.0.1:7777").peer("127.0.0.1:7778").key(key);
/// assert_eq!(net.key.as_ref().map(String::len), Some(64));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetAdapterConfig {
    /// Address to listen on, e.g. `0.0.0.0:7777`; `None` only dials out.
    pub listen: Option<String>,
    /// Peers to connect to (and reconnect to, with backoff, whenever the connection drops).
    pub peers: Vec<String>,
    /// Dial the members this node learns of from its peers (default `true`), so a node that
    /// peers with one member links to the rest and outlives it. `false` keeps the links to
    /// exactly `peers` and those dialing in: for a topology that is fixed on purpose (through
    /// a proxy or a tunnel, say, where the addresses peers listen on are not the ones to dial).
    pub learn_peers: bool,
    /// A learned address that has had no connection up for this long (ms) is forgotten: a
    /// member that left for good stops being dialed. It is learned again if a peer tells of it
    /// again. `0`: learned addresses are kept for the life of the bus. Configured `peers` are
    /// always redialed. Default 300,000 (5 minutes).
    pub forget_learned_after_ms: u64,
    /// The cluster key: 64 hex digits (32 bytes). Required unless `insecure` or `key_file`.
    pub key: Option<String>,
    /// A file holding the cluster key as 64 hex digits (surrounding whitespace ignored).
    pub key_file: Option<String>,
    /// A file holding this node's static private key (64 hex digits), so its public key, which
    /// peers may pin, survives restarts. Created with a new key, readable by its owner only, when
    /// missing. `None`: a fresh key pair per bus.
    pub identity_file: Option<String>,
    /// When not empty, the only peers accepted: their public keys, 64 hex digits each. A peer
    /// whose handshake proves another static key is refused and counted (`net_auth_failures`).
    pub peer_public_keys: Vec<String>,
    /// Plain text, no authentication: only for loopback addresses (tests, benchmarks).
    pub insecure: bool,
    /// Events the local log keeps per shard (local and received ones). It is also what a peer
    /// that fell behind can still be sent: beyond it, the peer is told of a gap.
    pub max_events_per_shard: usize,
    /// Payload bytes the local log keeps per shard, if bounded.
    pub max_bytes_per_shard: Option<usize>,
    /// Keep the local log on disk, in the Disk adapter's format, instead of in memory: the node
    /// keeps its id, its events and where it stands with each peer across restarts and crashes
    /// (see `adapter::net`). Retention is then the disk config's (`max_bytes_per_shard`,
    /// `max_age_ms`); `max_events_per_shard` and `max_bytes_per_shard` above bound the Memory
    /// log only. `None` (the default): the Memory log.
    pub disk: Option<DiskAdapterConfig>,
}

impl Default for NetAdapterConfig {
    fn default() -> Self {
        let memory = MemoryAdapterConfig::default();
        Self {
            listen: None,
            peers: Vec::new(),
            learn_peers: true,
            forget_learned_after_ms: 300_000,
            key: None,
            key_file: None,
            identity_file: None,
            peer_public_keys: Vec::new(),
            insecure: false,
            max_events_per_shard: memory.max_events_per_shard,
            max_bytes_per_shard: memory.max_bytes_per_shard,
            disk: None,
        }
    }
}

impl NetAdapterConfig {
    /// Sets the listen address.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }
    /// Adds a peer.
    pub fn peer(mut self, addr: impl Into<String>) -> Self {
        self.peers.push(addr.into());
        self
    }
    /// Whether to dial the members learned from peers (see the field).
    pub fn learn_peers(mut self, learn: bool) -> Self {
        self.learn_peers = learn;
        self
    }
    /// How long a learned address may go without a connection before it is forgotten (see the
    /// field; `0`: never).
    pub fn forget_learned_after_ms(mut self, ms: u64) -> Self {
        self.forget_learned_after_ms = ms;
        self
    }
    /// Sets the cluster key (64 hex digits).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Reads the cluster key from a file.
    pub fn key_file(mut self, path: impl Into<String>) -> Self {
        self.key_file = Some(path.into());
        self
    }
    /// Keeps this node's private key in `path` (created when missing).
    pub fn identity_file(mut self, path: impl Into<String>) -> Self {
        self.identity_file = Some(path.into());
        self
    }
    /// Accepts the peer with this public key (64 hex digits); once any is given, only those.
    pub fn peer_public_key(mut self, key: impl Into<String>) -> Self {
        self.peer_public_keys.push(key.into());
        self
    }
    /// Plain text on loopback addresses.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }
    /// Events kept per shard.
    pub fn max_events_per_shard(mut self, n: usize) -> Self {
        self.max_events_per_shard = n;
        self
    }
    /// Payload bytes kept per shard.
    pub fn max_bytes_per_shard(mut self, n: usize) -> Self {
        self.max_bytes_per_shard = Some(n);
        self
    }
    /// Keeps the local log on disk (a durable node), e.g. `.disk(AdapterConfig::disk(dir))`.
    pub fn disk(mut self, disk: DiskAdapterConfig) -> Self {
        self.disk = Some(disk);
        self
    }

    /// A new random cluster key (32 bytes from the operating system's generator) as 64 hex
    /// digits, for `key` or a `key_file`.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        // The OS generator failing is not something a caller could handle.
        getrandom::getrandom(&mut key).expect("the operating system's random generator failed");
        to_hex(&key)
    }

    /// The pinned peer public keys' bytes (empty: every peer with the cluster key is accepted).
    pub fn peer_public_key_bytes(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        let parse = |(i, key): (usize, &String)| {
            parse_hex32(key.trim()).ok_or_else(|| {
                ConfigError::invalid(
                    &format!("adapter.peer_public_keys[{i}]"),
                    format!("{key:?} must be 64 hex digits (a peer's public key, 32 bytes)"),
                )
            })
        };
        self.peer_public_keys.iter().enumerate().map(parse).collect()
    }

    /// The cluster key's bytes, from `key` or `key_file`; `None` when `insecure`.
    pub fn key_bytes(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        if self.insecure {
            return Ok(None);
        }
        let (field, text) = match (&self.key, &self.key_file) {
            (Some(key), None) => ("adapter.key", key.clone()),
            (None, Some(path)) => (
                "adapter.key_file",
                std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::invalid("adapter.key_file", format!("cannot read {path:?}: {e}")))?,
            ),
            (Some(_), Some(_)) => return Err(ConfigError::invalid("adapter.key", "give key or key_file, not both")),
            (None, None) => {
                return Err(ConfigError::invalid(
                    "adapter.key",
                    "a cluster key is required (key or key_file; NetAdapterConfig::generate_key makes one)",
                ))
            }
        };
        parse_hex32(text.trim())
            .map(Some)
            .ok_or_else(|| ConfigError::invalid(field, "must be 64 hex digits (32 bytes)"))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let check = |field: &str, addr: &str| match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if self.insecure && !loopback {
                    return Err(ConfigError::invalid(field, format!("insecure is refused on {addr:?}: not loopback")));
                }
                Ok(())
            }
            _ => Err(ConfigError::invalid(field, format!("{addr:?} is not host:port"))),
        };
        if let Some(listen) = &self.listen {
            check("adapter.listen", listen)?;
        }
        for (i, peer) in self.peers.iter().enumerate() {
            check(&format!("adapter.peers[{i}]"), peer)?;
        }
        if self.insecure && (self.key.is_some() || self.key_file.is_some()) {
            return Err(ConfigError::invalid("adapter.insecure", "insecure takes no key"));
        }
        if self.insecure && (self.identity_file.is_some() || !self.peer_public_keys.is_empty()) {
            return Err(ConfigError::invalid(
                "adapter.insecure",
                "insecure has no handshake: no identity_file or peer_public_keys",
            ));
        }
        self.peer_public_key_bytes()?;
        // A missing key is refused when the adapter is built, not here: a config may be written
        // before its key is chosen (the spec's example has none), but no bus runs without one.
        if self.key.is_some() && self.key_file.is_none() {
            self.key_bytes()?;
        }
        if self.max_events_per_shard == 0 {
            return Err(ConfigError::invalid("adapter.max_events_per_shard", "must be at least 1"));
        }
        if self.max_bytes_per_shard == Some(0) {
            return Err(ConfigError::invalid("adapter.max_bytes_per_shard", "must be at least 1"));
        }
        if let Some(disk) = &self.disk {
            if disk.read_only {
                return Err(ConfigError::invalid("adapter.disk.read_only", "a mesh node writes its log"));
            }
            disk.validate_at("adapter.disk")?;
        }
        Ok(())
    }
}

/// 32 bytes from 64 hex digits (keys in configs and files).
pub(crate) fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

/// Lowercase hex digits of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<NetAdapterConfig> for AdapterConfig {
    fn from(c: NetAdapterConfig) -> Self {
        Self::Net(c)
    }
}

/// Redis Streams bridge (the adapter itself needs the `redis` feature; see
/// `adapter::redis` for the key layout and the idempotence scheme).
///
/// Every field but `url` and `stream_prefix` may be left out of the JSON; the defaults suit a
/// local server.
///
/// # Examples
/// ```
/// use purple_rain::AdapterConfig;
/// let redis = AdapterConfig::redis("redis://127.0.0.1:6379").stream_prefix("orders").maxlen(1_000_000);
/// assert_eq!(redis.maxlen, Some(1_000_000));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisAdapterConfig {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://` with a TLS-enabled build).
    pub url: String,
    /// Streams are named `{stream_prefix}:{shard}`.
    pub stream_prefix: String,
    /// Bound on establishing a connection, including the first one in `EventBus::new`.
    pub connect_timeout_ms: u64,
    /// Bound on every command or pipeline (publish chunks, reads); an expired one is a
    /// retryable error.
    pub command_timeout_ms: u64,
    /// Events per server-side script call; a batch is sent as one pipeline of such chunks.
    pub pipeline_chunk: usize,
    /// Entries per `XRANGE` when a poll reads a shard.
    pub read_chunk: usize,
    /// Approximate retention per stream (`XADD MAXLEN ~`); `None` keeps everything.
    pub maxlen: Option<usize>,
    /// How long the per-producer dedup marks live after their last write. A retry of a batch
    /// older than this could be duplicated; retries happen within seconds.
    pub dedup_ttl_secs: u64,
}

/// Largest `pipeline_chunk` (keeps one script call's argument list modest).
pub const MAX_REDIS_PIPELINE_CHUNK: usize = 65_536;

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            stream_prefix: "purple".into(),
            connect_timeout_ms: 2_000,
            command_timeout_ms: 5_000,
            pipeline_chunk: 512,
            read_chunk: 4_096,
            maxlen: None,
            dedup_ttl_secs: 86_400,
        }
    }
}

impl RedisAdapterConfig {
    /// Streams are named `{prefix}:{shard}`.
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = prefix.into();
        self
    }
    /// Connect timeout in milliseconds.
    pub fn connect_timeout_ms(mut self, ms: u64) -> Self {
        self.connect_timeout_ms = ms;
        self
    }
    /// Command timeout in milliseconds.
    pub fn command_timeout_ms(mut self, ms: u64) -> Self {
        self.command_timeout_ms = ms;
        self
    }
    /// Events per script call.
    pub fn pipeline_chunk(mut self, n: usize) -> Self {
        self.pipeline_chunk = n;
        self
    }
    /// Entries per `XRANGE`.
    pub fn read_chunk(mut self, n: usize) -> Self {
        self.read_chunk = n;
        self
    }
    /// Approximate retention per stream.
    pub fn maxlen(mut self, n: usize) -> Self {
        self.maxlen = Some(n);
        self
    }
    /// Lifetime of dedup marks in seconds.
    pub fn dedup_ttl_secs(mut self, secs: u64) -> Self {
        self.dedup_ttl_secs = secs;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        validate_broker("adapter", &self.url, &self.stream_prefix, "redis://")?;
        let positive = |field: &str, value: u64| {
            if value == 0 {
                Err(ConfigError::invalid(&format!("adapter.{field}"), "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("connect_timeout_ms", self.connect_timeout_ms)?;
        positive("command_timeout_ms", self.command_timeout_ms)?;
        positive("pipeline_chunk", self.pipeline_chunk as u64)?;
        positive("read_chunk", self.read_chunk as u64)?;
        positive("dedup_ttl_secs", self.dedup_ttl_secs)?;
        if let Some(maxlen) = self.maxlen {
            positive("maxlen", maxlen as u64)?;
        }
        if self.pipeline_chunk > MAX_REDIS_PIPELINE_CHUNK {
            return Err(ConfigError::invalid(
                "adapter.pipeline_chunk",
                format!("must be at most {MAX_REDIS_PIPELINE_CHUNK}"),
            ));
        }
        if self.read_chunk > super::MAX_LIMIT {
            return Err(ConfigError::invalid("adapter.read_chunk", format!("must be at most {}", super::MAX_LIMIT)));
        }
        // A day is far more than any retry budget; a year would only hoard memory.
        if self.dedup_ttl_secs > 366 * 86_400 {
            return Err(ConfigError::invalid("adapter.dedup_ttl_secs", "must be at most 31622400 (366 days)"));
        }
        Ok(())
    }
}

impl From<RedisAdapterConfig> for AdapterConfig {
    fn from(c: RedisAdapterConfig) -> Self {
        Self::Redis(c)
    }
}

/// NATS JetStream bridge: one stream per shard, named `{stream_prefix}_{shard}`, holding the
/// one subject `{stream_prefix}.{shard}`.
///
/// The retention bounds apply to each shard's stream; `None` means unbounded. Publishing keeps
/// at most `max_outstanding_acks` messages awaiting their ack across all shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JetStreamAdapterConfig {
    /// `nats://host:port`.
    pub url: String,
    /// Stream and subject prefix.
    pub stream_prefix: String,
    /// Where the server keeps each shard's stream.
    pub storage: JetStreamStorage,
    /// Oldest message age kept, in ms; `None` keeps messages of any age.
    pub max_age_ms: Option<u64>,
    /// Messages kept per shard stream, oldest trimmed first; `None` is unbounded.
    pub max_msgs: Option<u64>,
    /// Bytes kept per shard stream, oldest trimmed first; `None` is unbounded.
    pub max_bytes: Option<u64>,
    /// Stream replicas (1 to 5; more than 1 needs a clustered server).
    pub replicas: usize,
    /// How long the server remembers a `Nats-Msg-Id` to drop a retried publish, in ms.
    pub duplicate_window_ms: u64,
    /// Publishes awaiting their ack at once, across all shards. After a failed batch, the acks
    /// it abandoned may linger beside them for at most `request_timeout_ms`.
    pub max_outstanding_acks: usize,
    /// Bound on establishing the connection at start, in ms.
    pub connect_timeout_ms: u64,
    /// Bound on every request to the server (publish ack, stream and consumer calls, each
    /// message of a read), in ms.
    pub request_timeout_ms: u64,
}

/// Where a JetStream stream is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JetStreamStorage {
    /// On the server's disk: survives a server restart.
    #[default]
    File,
    /// In the server's memory: lost on a server restart.
    Memory,
}

impl Default for JetStreamAdapterConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream_prefix: "purple".into(),
            storage: JetStreamStorage::File,
            max_age_ms: None,
            max_msgs: None,
            max_bytes: None,
            replicas: 1,
            duplicate_window_ms: 120_000,
            max_outstanding_acks: 4096,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 5_000,
        }
    }
}

impl JetStreamAdapterConfig {
    /// Stream and subject prefix.
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = prefix.into();
        self
    }
    /// File or memory storage.
    pub fn storage(mut self, storage: JetStreamStorage) -> Self {
        self.storage = storage;
        self
    }
    /// Oldest message age kept per shard stream.
    pub fn max_age_ms(mut self, ms: u64) -> Self {
        self.max_age_ms = Some(ms);
        self
    }
    /// Messages kept per shard stream.
    pub fn max_msgs(mut self, n: u64) -> Self {
        self.max_msgs = Some(n);
        self
    }
    /// Bytes kept per shard stream.
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = Some(n);
        self
    }
    /// Stream replicas.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }
    /// Dedup window for `Nats-Msg-Id`.
    pub fn duplicate_window_ms(mut self, ms: u64) -> Self {
        self.duplicate_window_ms = ms;
        self
    }
    /// Publishes awaiting an ack at once.
    pub fn max_outstanding_acks(mut self, n: usize) -> Self {
        self.max_outstanding_acks = n;
        self
    }
    /// Bound on connecting at start.
    pub fn connect_timeout_ms(mut self, ms: u64) -> Self {
        self.connect_timeout_ms = ms;
        self
    }
    /// Bound on each request.
    pub fn request_timeout_ms(mut self, ms: u64) -> Self {
        self.request_timeout_ms = ms;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_broker("adapter", &self.url, &self.stream_prefix, "nats://")?;
        let positive = |field: &str, value: Option<u64>| match value {
            Some(0) => Err(ConfigError::invalid(field, "must be at least 1 (leave it out for no bound)")),
            Some(v) if v > i64::MAX as u64 => Err(ConfigError::invalid(field, format!("must be at most {}", i64::MAX))),
            _ => Ok(()),
        };
        positive("adapter.max_age_ms", self.max_age_ms)?;
        positive("adapter.max_msgs", self.max_msgs)?;
        positive("adapter.max_bytes", self.max_bytes)?;
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::invalid(
                "adapter.replicas",
                format!("must be between 1 and 5, got {}", self.replicas),
            ));
        }
        if self.duplicate_window_ms == 0 {
            return Err(ConfigError::invalid("adapter.duplicate_window_ms", "must be at least 1"));
        }
        if self.max_age_ms.is_some_and(|age| self.duplicate_window_ms > age) {
            return Err(ConfigError::invalid("adapter.duplicate_window_ms", "must not exceed max_age_ms"));
        }
        if self.max_outstanding_acks == 0 || self.max_outstanding_acks > 1 << 20 {
            return Err(ConfigError::invalid("adapter.max_outstanding_acks", "must be between 1 and 1048576"));
        }
        if self.connect_timeout_ms == 0 {
            return Err(ConfigError::invalid("adapter.connect_timeout_ms", "must be at least 1"));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::invalid("adapter.request_timeout_ms", "must be at least 1"));
        }
        Ok(())
    }
}

impl From<JetStreamAdapterConfig> for AdapterConfig {
    fn from(c: JetStreamAdapterConfig) -> Self {
        Self::JetStream(c)
    }
}

/// When the disk log calls `fdatasync`; what each mode guarantees is in `adapter::disk`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskFsync {
    /// Every batch is on disk before it counts as dispatched (one `fdatasync` per shard batch:
    /// under load a batch holds everything that queued meanwhile, a group commit).
    #[default]
    Batch,
    /// A background thread syncs every `fsync_interval_ms`; `flush` syncs too.
    Interval,
    /// Never synced by the library: the kernel writes back when it likes.
    Never,
}

/// The durable embedded log: one directory per shard under `dir`, segment files, a manifest
/// and a lock file (`adapter::disk` documents the format).
///
/// # Examples
/// ```
/// use purple_rain::AdapterConfig;
/// let disk = AdapterConfig::disk("/var/lib/app/events").segment_bytes(8 << 20).max_bytes_per_shard(1 << 30);
/// assert_eq!(disk.segment_bytes, 8 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskAdapterConfig {
    /// The log's directory; created if missing. One process writes it at a time.
    pub dir: PathBuf,
    /// When writes are synced to disk.
    pub fsync: DiskFsync,
    /// Period of the background sync with `fsync` = `interval`.
    pub fsync_interval_ms: u64,
    /// A segment file is closed and a new one started once it would grow past this.
    pub segment_bytes: u64,
    /// Payload bytes of each shard's newest events kept in memory for polls (older events are
    /// read from their segment file).
    pub cache_bytes_per_shard: u64,
    /// Segment bytes kept per shard; the oldest whole segments are deleted beyond it.
    pub max_bytes_per_shard: Option<u64>,
    /// Segments whose newest event is older than this (by file modification time) are deleted.
    pub max_age_ms: Option<u64>,
    /// At open, truncate the log at a corrupt record in the middle of the last segment
    /// (losing what follows) instead of refusing to open.
    pub repair: bool,
    /// Open without the lock and without writing: poll a log another process writes. Refuses
    /// every batch.
    pub read_only: bool,
}

impl Default for DiskAdapterConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            fsync: DiskFsync::Batch,
            fsync_interval_ms: 100,
            segment_bytes: 32 << 20,
            cache_bytes_per_shard: 32 << 20,
            max_bytes_per_shard: None,
            max_age_ms: None,
            repair: false,
            read_only: false,
        }
    }
}

impl DiskAdapterConfig {
    /// Sync policy.
    pub fn fsync(mut self, fsync: DiskFsync) -> Self {
        self.fsync = fsync;
        self
    }
    /// Background sync period (with `DiskFsync::Interval`).
    pub fn fsync_interval_ms(mut self, ms: u64) -> Self {
        self.fsync_interval_ms = ms;
        self
    }
    /// Segment file size.
    pub fn segment_bytes(mut self, n: u64) -> Self {
        self.segment_bytes = n;
        self
    }
    /// Bytes of recent payloads kept in memory per shard.
    pub fn cache_bytes_per_shard(mut self, n: u64) -> Self {
        self.cache_bytes_per_shard = n;
        self
    }
    /// Retention by size.
    pub fn max_bytes_per_shard(mut self, n: u64) -> Self {
        self.max_bytes_per_shard = Some(n);
        self
    }
    /// Retention by age.
    pub fn max_age_ms(mut self, ms: u64) -> Self {
        self.max_age_ms = Some(ms);
        self
    }
    /// Truncate at a mid-log corrupt record instead of refusing to open.
    pub fn repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }
    /// Open for polling only.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_at("adapter")
    }

    /// Checks the fields, naming them under `at` (`adapter`, or `adapter.disk` in a Net config).
    fn validate_at(&self, at: &str) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(&format!("{at}.dir"), "must name a directory"));
        }
        if self.fsync_interval_ms == 0 {
            return Err(ConfigError::invalid(&format!("{at}.fsync_interval_ms"), "must be at least 1"));
        }
        if !(4096..=1 << 30).contains(&self.segment_bytes) {
            return Err(ConfigError::invalid(&format!("{at}.segment_bytes"), "must be between 4096 and 1073741824"));
        }
        if self.max_bytes_per_shard == Some(0) || self.max_age_ms == Some(0) {
            return Err(ConfigError::invalid(at, "max_bytes_per_shard and max_age_ms must be at least 1"));
        }
        Ok(())
    }
}

impl From<DiskAdapterConfig> for AdapterConfig {
    fn from(c: DiskAdapterConfig) -> Self {
        Self::Disk(c)
    }
}
