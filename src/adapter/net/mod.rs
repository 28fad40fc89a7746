//! The Net adapter: buses that form a mesh over TCP and each store every event of the mesh,
//! exactly once, with no broker.
//!
//! # Why this design
//! - **Wire**: TCP with the Noise protocol (`snow`,
//!   `Noise_XXpsk0_25519_{AESGCM,ChaChaPoly}_BLAKE2s`, see `transport.rs`) and length-delimited
//!   records (`tokio-util`). TCP gives ordered, reliable delivery and back-pressure; Noise gives
//!   mutual authentication by the cluster key and authenticated encryption of every record,
//!   with nothing home-made. The cipher was most of the data path's cost, so each connection
//!   uses AES-256-GCM where both ends have AES instructions (ring's assembly, 4.3x
//!   ChaCha20-Poly1305 here) and ChaCha20-Poly1305 otherwise (BENCHMARKS.md); beyond it the path
//!   only copies bytes: a batch is one message, sealed in as few 64 KiB records as fit, and
//!   stored on arrival with one append. What bounds replication into a new node now is the
//!   store itself: the kernel handing its log fresh pages. QUIC would add a TLS certificate
//!   story for users; a shared 32-byte key is all this needs
//!   ([`NetAdapterConfig::generate_key`](crate::config::NetAdapterConfig::generate_key)).
//! - **Store** (`store.rs`): every node keeps its own log, the [`MemoryAdapter`](super::MemoryAdapter)'s by default,
//!   or the [`DiskAdapter`](super::DiskAdapter)'s when `NetAdapterConfig::disk` is set (a
//!   durable node, below). Local batches and received events go into it, each with its origin
//!   (node, sequence) and in the origin's shard, so `poll` returns both like any adapter, and
//!   each origin shard's order holds on every node.
//! - **Relay and retention**: each connection's writer sends the node's whole log (its own
//!   events and those it received) from where the peer said it stands (see `peer.rs`). A line
//!   A–B–C thus carries A's events to C, a node that peers with one member learns every event of
//!   the mesh, and the log itself is the bounded retain log (config `max_events_per_shard`).
//! - **Membership** (`membership.rs`): peers tell each other where they and their peers listen,
//!   and a node dials every node it is not linked to, so one configured peer is enough to join
//!   the whole mesh; two nodes keep one link between them, chosen alike at both ends.
//! - **Identity** (`identity.rs`): each node proves a static X25519 key in the handshake,
//!   persistent with `identity_file`; `peer_public_keys` pins the keys accepted.
//! - **Exactly once**: the origin high-water marks (`marks.rs`) drop an event that arrives twice
//!   (two paths, a reconnect). Nothing loops: a node stores an event once and sends each stored
//!   event once per connection.
//! - **Flush**: `flush` returns once every event stored here before the call has been
//!   acknowledged by every peer connected at the time (a peer that disconnects stops being
//!   waited for), or fails after [`FLUSH_ACK_TIMEOUT`].
//!
//! # Restarts
//!
//! With the Memory log, node ids are random per bus, so a restarted node is a new origin: what
//! it had relayed before stays where it is, and it receives the whole retained log of its peers
//! again.
//!
//! A durable node (`disk`) keeps its log in the Disk adapter's segments (record format 2, with
//! each event's origin) and, beside them (`durable.rs`), its node id and where it stands with
//! each peer. Restarted, even after SIGKILL, it is the same origin and continues its sequences;
//! its origin marks are rebuilt from the log, so nothing its peers send again is stored twice,
//! and it tells each peer to resume from the position it had stored, not from the beginning.
//! Its peers' cursors for it stay valid too: its log positions continue. With `fsync` = `batch`
//! a stored run is synced before it is acknowledged or counted dispatched; with `interval` or
//! `never` a crash of the machine (not of the process) may lose the last events, and the node
//! may then reuse sequences of its own that peers already hold (they would drop the new events
//! as duplicates): use `batch` where power loss matters.

mod durable;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod identity;
mod marks;
mod membership;
mod peer;
mod store;
mod transport;

use super::memory::Origin;
use super::{Adapter, AdapterMetric, ShardPage, ShardRead};
use crate::config::NetAdapterConfig;
use crate::error::{AdapterError, ConfigError};
use crate::model::{Batch, StoredEvent};
use async_trait::async_trait;
use identity::Identity;
use marks::Marks;
use membership::{dial_loop, Dial, BACKOFF};
use peer::Peer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use transport::{Cipher, Credentials};

/// Longest `flush` waits for acknowledgements before it reports the peers that are behind.
pub const FLUSH_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a durable node saves its cursors and marks (`durable.rs`).
const SAVE_EVERY: Duration = Duration::from_millis(250);

/// A bus's place in the mesh. Built from [`NetAdapterConfig`]; `init` binds the listen address
/// and starts dialing the peers.
pub struct NetAdapter {
    shared: Arc<Shared>,
}

/// What the connections and the adapter share.
struct Shared {
    node: u64,
    /// `None` in insecure mode.
    credentials: Option<Credentials>,
    /// This node's static public key, hex.
    public_key: String,
    config: NetAdapterConfig,
    log: Store,
    marks: Marks,
    /// Per peer node, per shard: the position of its log this node has stored up to.
    cursors: Mutex<HashMap<u64, HashMap<u16, u64>>>,
    /// Bumped on every append: wakes writers and long polls.
    version: watch::Sender<u64>,
    /// Bumped on every acknowledgement and peer change: wakes `flush`.
    acks: watch::Sender<u64>,
    peers: Mutex<Vec<Arc<Peer>>>,
    /// Bumped when a connection comes or goes or a peer's listen address becomes known:
    /// wakes the writers to send `Peers`, and dial loops waiting for a link to end.
    members: watch::Sender<u64>,
    /// Configured and learned peer addresses (`membership.rs`).
    dials: Mutex<Vec<Arc<Dial>>>,
    auth_failures: AtomicU64,
    rejected_frames: AtomicU64,
    gap_events: AtomicU64,
    /// Learned addresses dropped after staying unreachable (`membership.rs`).
    forgotten_peers: AtomicU64,
    stop: CancellationToken,
    local_addr: OnceLock<SocketAddr>,
}

impl NetAdapter {
    /// An adapter for `config`. The keys are read here (and `identity_file` created when
    /// missing), so a bad `key_file`, `identity_file` or `peer_public_keys` fails now; a
    /// durable node's log is opened and recovered here too.
    pub fn new(config: NetAdapterConfig) -> Result<Self, ConfigError> {
        let key = config.key_bytes()?;
        let pinned = config.peer_public_key_bytes()?;
        let identity = match &config.identity_file {
            Some(path) => Identity::load_or_create(Path::new(path), "adapter.identity_file")?,
            None => Identity::generate()
                .map_err(|e| ConfigError::invalid("adapter.identity_file", format!("no random generator: {e}")))?,
        };
        let public_key = identity.public_hex();
        let credentials = key.map(|key| Credentials { key, identity, pinned, offer: Cipher::offer() });
        let log = Store::open(&config)?;
        let marks = Marks::default();
        let (node, cursors) = match log.disk() {
            None => (node_id(), HashMap::new()),
            Some(disk) => {
                let node = durable::node_id(disk.dir(), node_id)?;
                let (cursors, saved) = durable::load(disk.dir());
                rebuild_marks(&log, &marks)?;
                for (shard, origin, next) in saved {
                    marks.shard(shard).lock().unwrap_or_else(|e| e.into_inner()).raise(origin, next);
                }
                (node, cursors)
            }
        };
        let dials = config.peers.iter().map(|addr| Arc::new(Dial::new(addr.clone(), false))).collect();
        let shared = Shared {
            node,
            credentials,
            public_key,
            log,
            marks,
            cursors: Mutex::new(cursors),
            version: watch::Sender::new(0),
            acks: watch::Sender::new(0),
            peers: Mutex::new(Vec::new()),
            members: watch::Sender::new(0),
            dials: Mutex::new(dials),
            auth_failures: AtomicU64::new(0),
            rejected_frames: AtomicU64::new(0),
            gap_events: AtomicU64::new(0),
            forgotten_peers: AtomicU64::new(0),
            stop: CancellationToken::new(),
            local_addr: OnceLock::new(),
            config,
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// This node's id: the `origin` of the events ingested here.
    pub fn node_id(&self) -> u64 {
        self.shared.node
    }

    /// This node's static public key (64 hex digits): what other nodes list in
    /// `peer_public_keys` to accept this one. Stable across restarts with `identity_file`.
    pub fn public_key(&self) -> &str {
        &self.shared.public_key
    }

    /// The address listened on, once `init` has bound it (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr.get().copied()
    }

    /// Events held in the local log now (local and received, after trimming).
    pub fn retained(&self) -> u64 {
        self.shared.log.retained()
    }

    /// Peers connected now.
    pub fn connected_peers(&self) -> usize {
        self.shared.peer_list().len()
    }

    /// The node ids of the peers connected now.
    pub fn connected_nodes(&self) -> Vec<u64> {
        self.shared.peer_list().iter().map(|p| p.node).collect()
    }

    /// Peer addresses this node learned from its peers and dials (see `membership.rs`).
    pub fn learned_peers(&self) -> Vec<String> {
        self.shared.learned()
    }

    /// Connections refused because the peer did not prove the cluster key (or, with
    /// `peer_public_keys`, a pinned static key).
    pub fn auth_failures(&self) -> u64 {
        self.shared.auth_failures.load(Ordering::Relaxed)
    }

    /// Connections closed on a record that failed authentication or a malformed message.
    pub fn rejected_frames(&self) -> u64 {
        self.shared.rejected_frames.load(Ordering::Relaxed)
    }

    /// Events a peer was told it missed, or this node was told it missed.
    pub fn gap_events(&self) -> u64 {
        self.shared.gap_events.load(Ordering::Relaxed)
    }
}

/// Marks every origin sequence a durable node's log holds as seen.
fn rebuild_marks(log: &Store, marks: &Marks) -> Result<(), AdapterError> {
    for shard in log.stored_shards() {
        let marks = marks.shard(shard);
        let mut marks = marks.lock().unwrap_or_else(|e| e.into_inner());
        log.scan(shard, 0, usize::MAX, |_, origin, _, _| {
            if origin.node != 0 {
                marks.admit(origin.node, origin.sequence);
            }
        })?;
    }
    Ok(())
}

/// Saves a durable node's cursors and marks every [`SAVE_EVERY`] while the log grows, until
/// the adapter stops (`shutdown` saves the last state). `grown` must be subscribed before the
/// first event can be stored: an event stored before it would wait for the next to be saved.
async fn save_loop(shared: Arc<Shared>, mut grown: watch::Receiver<u64>) {
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tokio::time::sleep(SAVE_EVERY) => {}
        }
        if !grown.has_changed().unwrap_or(false) {
            continue;
        }
        grown.borrow_and_update();
        let saving = shared.clone();
        // A failed save leaves the previous file, an older lower bound: nothing to undo.
        let _ = tokio::task::spawn_blocking(move || saving.save()).await;
    }
}

/// A random nonzero node id (0 means "no node" in `StoredEvent::origin`).
fn node_id() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        bytes = fastrand::u64(..).to_le_bytes();
    }
    u64::from_le_bytes(bytes).max(1)
}

impl Shared {
    /// Appends the events of one origin shard run that are new here; returns how many were.
    fn store<'a>(
        &self,
        shard: u16,
        size_hint: usize,
        events: impl Iterator<Item = (u64, u64, u64, &'a [u8])>,
    ) -> Result<u64, AdapterError> {
        let marks = self.marks.shard(shard);
        let mut marks = marks.lock().unwrap_or_else(|e| e.into_inner());
        // Marks admit before the append; a failed append (a disk error) must not leave them
        // ahead of the log, or the events would be dropped as duplicates when sent again.
        let before = self.log.disk().is_some().then(|| marks.clone());
        let mut stored = 0;
        let new = events.filter(|&(node, sequence, _, _)| node != 0 && marks.admit(node, sequence)).map(
            |(node, sequence, timestamp_ns, payload)| {
                stored += 1;
                (Origin { node, sequence }, timestamp_ns, payload)
            },
        );
        if let Err(e) = self.log.append(shard, size_hint, new) {
            if let Some(before) = before {
                *marks = before;
            }
            return Err(e);
        }
        drop(marks);
        if stored > 0 {
            self.version.send_modify(|v| *v += 1);
        }
        Ok(stored)
    }

    /// Everything before `to` of `node`'s shard log is stored here. Two connections to one node
    /// may overlap for a moment (`membership.rs`): the cursor only moves forward.
    fn advance_cursor(&self, node: u64, shard: u16, to: u64) {
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        let at = cursors.entry(node).or_default().entry(shard).or_default();
        *at = (*at).max(to);
    }

    fn cursors_of(&self, node: u64) -> Vec<(u16, u64)> {
        let cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        cursors.get(&node).map(|c| c.iter().map(|(&s, &n)| (s, n)).collect()).unwrap_or_default()
    }

    /// Saves a durable node's cursors and marks (`durable.rs`); nothing for a Memory log.
    fn save(&self) -> Result<(), AdapterError> {
        let Some(disk) = self.log.disk() else { return Ok(()) };
        let cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let marks = self.marks.snapshot();
        // Everything the snapshot counts as stored was appended before it: synced now, before
        // the state says so. A SIGKILL keeps what was written (the kernel has it), but a power
        // loss drops what was not synced, and a state ahead of the log would then have peers
        // skip those events for good (`fsync` = `never` accepts that).
        disk.sync_written()?;
        durable::save(disk.dir(), &cursors, &marks)
    }

    fn peer_list(&self) -> Vec<Arc<Peer>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, from)) = accepted else {
            // Out of descriptors or similar: wait instead of spinning.
            tokio::time::sleep(BACKOFF.0).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let stop = shared.stop.clone();
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = peer::run(shared, stream, from.to_string(), false) => {}
            }
        });
    }
}

#[async_trait]
impl Adapter for NetAdapter {
    fn name(&self) -> &str {
        "net"
    }

    async fn init(&self) -> Result<(), AdapterError> {
        let shared = &self.shared;
        if shared.log.disk().is_some() {
            // Watching from before any connection exists: what the first peers send is saved.
            tokio::spawn(save_loop(shared.clone(), shared.version.subscribe()));
        }
        if let Some(listen) = &shared.config.listen {
            let listener = TcpListener::bind(listen)
                .await
                .map_err(|e| AdapterError::Connection(format!("cannot listen on {listen}: {e}")))?;
            if let Ok(addr) = listener.local_addr() {
                let _ = shared.local_addr.set(addr);
            }
            tokio::spawn(accept_loop(shared.clone(), listener));
        }
        let dials = shared.dials.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for dial in dials {
            tokio::spawn(dial_loop(shared.clone(), dial));
        }
        Ok(())
    }

    async fn next_sequence(&self, shard: u16) -> Result<u64, AdapterError> {
        let marks = self.shared.marks.shard(shard);
        let next = marks.lock().unwrap_or_else(|e| e.into_inner()).next(self.shared.node);
        Ok(next)
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        let node = self.shared.node;
        let (sequence, timestamp_ns) = (batch.first_sequence(), batch.first_timestamp_ns());
        let events =
            batch.events().iter().zip(0..).map(|(e, i)| (node, sequence + i, timestamp_ns + i, e.payload().as_ref()));
        self.shared.store(batch.shard(), batch.len(), events)?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), AdapterError> {
        let shared = &self.shared;
        // A durable log with `fsync` = `interval` syncs here.
        shared.log.adapter().flush().await?;
        let targets: Vec<(u16, u64)> =
            shared.log.stored_shards().into_iter().map(|s| (s, shared.log.end_of(s))).collect();
        let mut changed = shared.acks.subscribe();
        let deadline = tokio::time::Instant::now() + FLUSH_ACK_TIMEOUT;
        loop {
            changed.borrow_and_update();
            let behind: Vec<String> = shared
                .peer_list()
                .iter()
                .filter(|p| targets.iter().any(|&(shard, end)| p.acked(shard) < end))
                .map(|p| p.addr.clone())
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                return Err(AdapterError::Transient(format!(
                    "peers {behind:?} did not acknowledge within {FLUSH_ACK_TIMEOUT:?}"
                )));
            }
        }
    }

    async fn shutdown(&self) -> Result<(), AdapterError> {
        self.shared.stop.cancel();
        let saving = self.shared.clone();
        let saved = tokio::task::spawn_blocking(move || saving.save())
            .await
            .map_err(|e| AdapterError::Fatal(format!("saving the node's state failed: {e}")))?;
        // The log is closed (synced, its lock released) even when the save failed.
        let closed = self.shared.log.adapter().shutdown().await;
        saved.and(closed)
    }

    async fn read_shard(&self, read: ShardRead<'_>) -> Result<ShardPage, AdapterError> {
        self.shared.log.adapter().read_shard(read).await
    }

    async fn read_shard_into(
        &self,
        read: ShardRead<'_>,
        page: &mut Vec<StoredEvent>,
    ) -> Result<ShardPage, AdapterError> {
        self.shared.log.adapter().read_shard_into(read, page).await
    }

    fn store_id(&self) -> Option<u128> {
        self.shared.log.adapter().store_id()
    }

    fn stored_shards(&self) -> Vec<u16> {
        self.shared.log.stored_shards()
    }

    fn trimmed_events(&self) -> u64 {
        self.shared.log.adapter().trimmed_events()
    }

    fn metrics(&self, out: &mut Vec<AdapterMetric>) {
        let shared = &self.shared;
        if let Some(disk) = shared.log.disk() {
            disk.metrics(out);
        }
        out.push(
            AdapterMetric::gauge("net_node", "This node's id and static public key (labels), always 1", 1.0)
                .label("node", format!("{:016x}", shared.node))
                .label("public_key", &shared.public_key),
        );
        out.push(AdapterMetric::gauge("net_connected_peers", "Peers connected now", shared.peer_list().len() as f64));
        out.push(AdapterMetric::counter(
            "net_auth_failures_total",
            "Connections refused: the peer did not prove the cluster key or a pinned public key",
            shared.auth_failures.load(Ordering::Relaxed),
        ));
        out.push(AdapterMetric::counter(
            "net_rejected_frames_total",
            "Connections closed on a record failing authentication or a malformed message",
            shared.rejected_frames.load(Ordering::Relaxed),
        ));
        out.push(AdapterMetric::counter(
            "net_gap_events_total",
            "Events trimmed before a peer got them, told or heard of",
            shared.gap_events.load(Ordering::Relaxed),
        ));
        out.push(AdapterMetric::counter(
            "net_forgotten_peers_total",
            "Learned peer addresses dropped after no connection for forget_learned_after_ms",
            shared.forgotten_peers.load(Ordering::Relaxed),
        ));
        out.push(AdapterMetric::gauge(
            "net_learned_peers",
            "Peer addresses learned from other peers and dialed",
            shared.learned().len() as f64,
        ));
        let dials = shared.dials.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for dial in &dials {
            let source = if dial.learned { "learned" } else { "config" };
            let connected = if dial.connected.load(Ordering::Relaxed) { 1.0 } else { 0.0 };
            out.push(
                AdapterMetric::gauge("net_dial_connected", "A peer address dialed is connected", connected)
                    .label("peer", &dial.addr)
                    .label("source", source),
            );
            out.push(
                AdapterMetric::counter(
                    "net_dial_reconnects_total",
                    "Connections to a peer address dialed that ended",
                    dial.reconnects.load(Ordering::Relaxed),
                )
                .label("peer", &dial.addr)
                .label("source", source),
            );
        }
        let ends: Vec<(u16, u64)> = shared.log.stored_shards().into_iter().map(|s| (s, shared.log.end_of(s))).collect();
        for peer in shared.peer_list() {
            let labelled = |m: AdapterMetric| m.label("peer", &peer.addr).label("node", format!("{:016x}", peer.node));
            let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
            let lag: u64 = ends.iter().map(|&(s, end)| end.saturating_sub(peer.acked(s))).sum();
            out.push(labelled(
                AdapterMetric::gauge("net_peer_cipher", "The connection's record cipher (label), always 1", 1.0)
                    .label("cipher", peer.cipher.map_or("none", Cipher::name)),
            ));
            out.push(labelled(AdapterMetric::counter(
                "net_peer_sent_events_total",
                "Events sent to the peer",
                load(&peer.sent),
            )));
            out.push(labelled(AdapterMetric::counter(
                "net_peer_received_events_total",
                "Events received from the peer, duplicates included",
                load(&peer.received),
            )));
            out.push(labelled(AdapterMetric::counter(
                "net_peer_stored_events_total",
                "Events from the peer that were new here",
                load(&peer.stored),
            )));
            out.push(labelled(AdapterMetric::gauge(
                "net_peer_lag_events",
                "Log positions the peer has not acknowledged",
                lag as f64,
            )));
            out.push(labelled(AdapterMetric::counter(
                "net_peer_gap_events_total",
                "Events the peer was told it missed or told us we missed",
                load(&peer.gaps),
            )));
        }
    }

    async fn wait_for_events(&self, positions: &[(u16, u64)], deadline: Instant) -> Result<(), AdapterError> {
        let mut grown = self.shared.version.subscribe();
        grown.borrow_and_update();
        if positions.iter().any(|&(shard, next)| self.shared.log.end_of(shard) > next) {
            return Ok(());
        }
        let _ = tokio::time::timeout_at(deadline.into(), grown.changed()).await;
        Ok(())
    }
}

impl Drop for NetAdapter {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}
