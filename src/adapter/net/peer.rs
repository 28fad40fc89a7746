//! One connection to a peer: handshake, greetings, then a reader and a writer.
//!
//! After the handshake each side sends `Hello` (its node id) and then `Resume`: where in the
//! other's shard logs it stands, from the cursors it kept for that node (a reconnect resumes
//! where it left off; a new node, or a restarted one with a new id, starts at the beginning).
//!
//! The writer sends the local log, shard by shard, from those cursors: what this node ingested
//! and what it received (that is the relay), except events the peer itself ingested. It reads
//! straight from the log into one plaintext buffer per round, seals it in as few records as fit,
//! and writes it with one call; when caught up it sleeps until the log grows. The log is the
//! retain log: what a slow or absent peer has not acknowledged stays there up to the log's
//! bound, and what was trimmed before it was sent is a gap, told to the peer and counted on
//! both sides.
//!
//! The reader is two tasks, so that a connection's receiving side uses two cores: one reads,
//! opens and decodes records into messages (`Inbox`), the other stores each `Events` message
//! with one batch append (through the origin marks, so duplicates are dropped), moves its cursor
//! for the peer, and has the writer acknowledge the new position; `Ack`s from the peer move
//! what `flush` waits for. A few decoded messages queue between the two, so a slow store pushes
//! back on the socket.

use super::frame::{self, EventsHeader, EventsWriter, Message};
use super::transport::{self, Cipher, HandshakeError, Opener, Sealer};
use super::Shared;
use bytes::BytesMut;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

/// Payload bytes the writer reads from one shard per message, so acknowledgements and other
/// shards get their turn. Small enough that the receiver's message buffers come back from the
/// allocator warm: with 1 MiB messages queued between its two tasks, every buffer was fresh
/// pages, a page fault per 4 KiB (seen in the profile).
const SCAN_BYTES: usize = 256 << 10;
/// A writer with nothing to send for this long sends an empty record, so that the peer can tell
/// a quiet connection from a dead one.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A connection that brings no record for this long is dead (blackholed, peer frozen): closed,
/// and redialed.
const SILENCE: Duration = Duration::from_secs(5);
/// Decoded messages waiting to be stored: enough that opening the next records overlaps
/// storing the last ones (a message holds up to [`SCAN_BYTES`] of payload).
const DECODED_QUEUE: usize = 4;

/// A connected peer, as `flush`, the stats and the membership see it.
#[derive(Debug)]
pub(super) struct Peer {
    /// The address dialed, or the one the connection came from.
    pub addr: String,
    /// Its node id.
    pub node: u64,
    /// Whether this node dialed the connection.
    pub initiator: bool,
    /// The IP the connection comes from.
    pub remote_ip: Option<IpAddr>,
    /// The record cipher agreed on; `None` in insecure mode.
    pub cipher: Option<Cipher>,
    /// Where it can be dialed, once its `Peers` told where it listens.
    pub listen: Mutex<Option<String>>,
    /// Cancelled when another connection to the same node replaces this one.
    pub close: CancellationToken,
    /// Per shard, the position of this node's log the peer has acknowledged.
    pub acked: Mutex<HashMap<u16, u64>>,
    /// Events sent to it.
    pub sent: AtomicU64,
    /// Events received from it (duplicates included).
    pub received: AtomicU64,
    /// Events received from it that were new here.
    pub stored: AtomicU64,
    /// Events it could not be sent (trimmed first) or could not send us.
    pub gaps: AtomicU64,
}

impl Peer {
    /// A peer that just said `Hello`.
    pub fn new(addr: String, node: u64, initiator: bool, remote_ip: Option<IpAddr>, cipher: Option<Cipher>) -> Self {
        Self {
            addr,
            node,
            initiator,
            remote_ip,
            cipher,
            listen: Mutex::new(None),
            close: CancellationToken::new(),
            acked: Mutex::new(HashMap::new()),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
        }
    }

    /// The acknowledged position of `shard`.
    pub fn acked(&self, shard: u16) -> u64 {
        self.acked.lock().unwrap_or_else(|e| e.into_inner()).get(&shard).copied().unwrap_or(0)
    }
}

/// Why a session ended.
#[derive(Debug)]
pub(super) enum SessionError {
    /// The handshake failed.
    Handshake(HandshakeError),
    /// A record failed authentication or a message was malformed: counted, connection closed.
    Rejected(String),
    /// The connection failed.
    Io(io::Error),
    /// The peer is this node (a peer list naming the node itself).
    SelfConnection,
    /// Another connection to this node is kept instead (`membership.rs`).
    Duplicate(u64),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(e) => e.fmt(f),
            Self::Rejected(m) => write!(f, "rejected: {m}"),
            Self::Io(e) => write!(f, "connection failed: {e}"),
            Self::SelfConnection => write!(f, "connected to itself"),
            Self::Duplicate(node) => write!(f, "another connection to node {node:016x} is kept"),
        }
    }
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Runs one connection until it fails or the adapter stops.
pub(super) async fn run(shared: Arc<Shared>, mut stream: TcpStream, addr: String, initiator: bool) -> SessionError {
    let _ = stream.set_nodelay(true);
    let keys = match transport::handshake(&mut stream, shared.credentials.as_ref(), initiator).await {
        Ok(keys) => keys,
        Err(e) => {
            if matches!(e, HandshakeError::Auth(_)) {
                shared.auth_failures.fetch_add(1, Ordering::Relaxed);
            }
            return SessionError::Handshake(e);
        }
    };
    let remote_ip = stream.peer_addr().ok().map(|a| a.ip());
    let cipher = keys.cipher();
    let (read, mut write) = stream.into_split();
    let mut inbox = Inbox::new(read, keys.opener());
    let mut sealer = keys.sealer();
    let mut plain = Vec::new();
    frame::put_hello(&mut plain, shared.node);
    if let Err(e) = send(&mut sealer, &mut write, &plain).await {
        return e;
    }
    let node = match inbox.next(&shared).await {
        Ok(Some(Message::Hello { node })) => node,
        Ok(other) => return protocol(&shared, "expected Hello", other),
        Err(e) => return e,
    };
    if node == shared.node {
        return SessionError::SelfConnection;
    }
    // Registered before `Resume`, so that a connection it replaces is closed before this one
    // says where to resume.
    let peer = Arc::new(Peer::new(addr, node, initiator, remote_ip, cipher));
    if let Err(e) = shared.connected(peer.clone()) {
        return e;
    }
    let error = tokio::select! {
        e = session(&shared, &peer, inbox, sealer, write) => e,
        _ = peer.close.cancelled() => SessionError::Duplicate(node),
    };
    shared.disconnected(&peer);
    error
}

/// The rest of a registered connection: `Resume` both ways, then the writer and the reader.
async fn session(
    shared: &Arc<Shared>,
    peer: &Arc<Peer>,
    mut inbox: Inbox,
    mut sealer: Sealer,
    mut write: OwnedWriteHalf,
) -> SessionError {
    let resume = shared.cursors_of(peer.node);
    let mut plain = Vec::new();
    frame::put_resume(&mut plain, &resume);
    if let Err(e) = send(&mut sealer, &mut write, &plain).await {
        return e;
    }
    let cursors: HashMap<u16, u64> = match inbox.next(shared).await {
        Ok(Some(Message::Resume { cursors })) => cursors.into_iter().collect(),
        Ok(other) => return protocol(shared, "expected Resume", other),
        Err(e) => return e,
    };
    // Where the peer said it stands in this log is what it has stored: acknowledged. A peer
    // that reconnects (or restarts durable) caught up is sent nothing and so would never
    // acknowledge anything, holding every `flush` until its deadline.
    *peer.acked.lock().unwrap_or_else(|e| e.into_inner()) = cursors.clone();
    shared.acks.send_modify(|n| *n += 1);
    let acks = Arc::new(PendingAcks::default());
    let writer = Writer { shared: shared.clone(), peer: peer.clone(), sealer, write, cursors, acks: acks.clone() };
    let mut decoded = Decoded::spawn(inbox, shared.clone());
    tokio::select! {
        e = writer.run() => e,
        e = read_loop(shared, peer, &mut decoded, &acks, resume.into_iter().collect()) => e,
    }
}

/// A message out of place is rejected and counted; the end of the stream is only a closed
/// connection (a peer refusing a duplicate link hangs up right after `Hello`).
fn protocol(shared: &Shared, expected: &str, got: Option<Message>) -> SessionError {
    match got {
        None => {
            SessionError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{expected}, got end of stream")))
        }
        Some(m) => {
            shared.rejected_frames.fetch_add(1, Ordering::Relaxed);
            SessionError::Rejected(format!("{expected}, got {m:?}"))
        }
    }
}

async fn send(sealer: &mut Sealer, write: &mut OwnedWriteHalf, plain: &[u8]) -> Result<(), SessionError> {
    let mut wire = Vec::with_capacity(plain.len() + plain.len() / 1000 + 32);
    sealer.seal(plain, &mut wire).map_err(|e| SessionError::Rejected(e.to_string()))?;
    write.write_all(&wire).await?;
    Ok(())
}

/// Reads records, opens them, and cuts the plaintext into messages.
struct Inbox {
    records: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    opener: Opener,
    plain: BytesMut,
}

impl Inbox {
    fn new(read: OwnedReadHalf, opener: Opener) -> Self {
        Self {
            records: FramedRead::new(read, transport::record_codec()),
            opener,
            plain: BytesMut::with_capacity(1 << 20),
        }
    }

    /// The next message, `None` at a clean end of stream.
    async fn next(&mut self, shared: &Shared) -> Result<Option<Message>, SessionError> {
        let reject = |what: String| {
            shared.rejected_frames.fetch_add(1, Ordering::Relaxed);
            SessionError::Rejected(what)
        };
        loop {
            if let Some(len) = frame::message_len(&self.plain).map_err(|e| reject(e.to_string()))? {
                if self.plain.len() >= len {
                    let message = self.plain.split_to(len).freeze();
                    return frame::decode(message).map(Some).map_err(|e| reject(e.to_string()));
                }
            }
            let Ok(record) = tokio::time::timeout(SILENCE, self.records.next()).await else {
                return Err(SessionError::Io(io::Error::new(io::ErrorKind::TimedOut, "the peer went silent")));
            };
            match record {
                Some(Ok(record)) => {
                    self.opener.open(&record, &mut self.plain).map_err(|e| reject(format!("record: {e}")))?
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::InvalidData => return Err(reject(e.to_string())),
                Some(Err(e)) => return Err(SessionError::Io(e)),
                None if self.plain.is_empty() => return Ok(None),
                None => return Err(reject("stream ended inside a message".into())),
            }
        }
    }
}

/// The messages of an [`Inbox`] read on a task of their own; the task ends with the connection
/// (at the first error or end of stream) or when this is dropped.
struct Decoded {
    messages: mpsc::Receiver<Result<Option<Message>, SessionError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Decoded {
    fn spawn(mut inbox: Inbox, shared: Arc<Shared>) -> Self {
        let (send, messages) = mpsc::channel(DECODED_QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let next = inbox.next(&shared).await;
                let last = !matches!(next, Ok(Some(_)));
                if send.send(next).await.is_err() || last {
                    return;
                }
            }
        });
        Self { messages, task }
    }

    async fn next(&mut self) -> Result<Option<Message>, SessionError> {
        self.messages.recv().await.unwrap_or_else(|| {
            Err(SessionError::Io(io::Error::new(io::ErrorKind::BrokenPipe, "the reading task ended")))
        })
    }
}

impl Drop for Decoded {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Positions the reader has stored and the writer should acknowledge.
#[derive(Default)]
struct PendingAcks {
    shards: Mutex<HashMap<u16, u64>>,
    notify: Notify,
}

/// `expected`: per shard, the position of the peer's log this connection resumed from, then the
/// end of the last `Events` it brought.
async fn read_loop(
    shared: &Arc<Shared>,
    peer: &Peer,
    inbox: &mut Decoded,
    acks: &PendingAcks,
    mut expected: HashMap<u16, u64>,
) -> SessionError {
    loop {
        let message = match inbox.next().await {
            Ok(Some(message)) => message,
            Ok(None) => return SessionError::Io(io::ErrorKind::UnexpectedEof.into()),
            Err(e) => return e,
        };
        match message {
            Message::Events(header, entries) => {
                let at = expected.entry(header.shard).or_default();
                if header.from != *at {
                    return protocol(shared, "Events from the resume position", Some(Message::Events(header, entries)));
                }
                if header.missed > 0 {
                    peer.gaps.fetch_add(header.missed, Ordering::Relaxed);
                    shared.gap_events.fetch_add(header.missed, Ordering::Relaxed);
                }
                peer.received.fetch_add(entries.len() as u64, Ordering::Relaxed);
                let events = entries.iter().map(|e| (e.node, e.sequence, e.timestamp_ns, e.payload));
                match shared.store(header.shard, entries.len(), events) {
                    Ok(stored) => peer.stored.fetch_add(stored, Ordering::Relaxed),
                    Err(e) => return SessionError::Rejected(format!("cannot store: {e}")),
                };
                *at = header.to;
                shared.advance_cursor(peer.node, header.shard, header.to);
                acks.shards.lock().unwrap_or_else(|e| e.into_inner()).insert(header.shard, header.to);
                acks.notify.notify_one();
            }
            Message::Ack { shard, to } => {
                let mut acked = peer.acked.lock().unwrap_or_else(|e| e.into_inner());
                let at = acked.entry(shard).or_default();
                *at = (*at).max(to);
                drop(acked);
                shared.acks.send_modify(|n| *n += 1);
            }
            Message::Peers { listen, peers } => shared.learn(peer, &listen, peers),
            other => return protocol(shared, "Events, Ack or Peers", Some(other)),
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    sealer: Sealer,
    write: OwnedWriteHalf,
    /// Per shard, the next position of the local log to send.
    cursors: HashMap<u16, u64>,
    acks: Arc<PendingAcks>,
}

impl Writer {
    async fn run(mut self) -> SessionError {
        let mut grown = self.shared.version.subscribe();
        // Marked changed so that the first round tells the peer this node's `Peers`.
        let mut members = self.shared.members.subscribe();
        members.mark_changed();
        let mut plain = Vec::with_capacity(2 * SCAN_BYTES);
        let mut wire = Vec::with_capacity(2 * SCAN_BYTES);
        loop {
            grown.borrow_and_update();
            plain.clear();
            if members.has_changed().unwrap_or(false) {
                members.borrow_and_update();
                let (listen, peers) = self.shared.peers_message(self.peer.node);
                frame::put_peers(&mut plain, &listen, &peers);
            }
            let acks = std::mem::take(&mut *self.acks.shards.lock().unwrap_or_else(|e| e.into_inner()));
            for (shard, to) in acks {
                frame::put_ack(&mut plain, shard, to);
            }
            if let Err(e) = self.fill(&mut plain) {
                return SessionError::Rejected(format!("cannot read the log: {e}"));
            }
            if plain.is_empty() {
                tokio::select! {
                    _ = grown.changed() => continue,
                    _ = self.acks.notify.notified() => continue,
                    // `changed` marks the news seen; marked again so the next round tells it.
                    _ = members.changed() => {
                        members.mark_changed();
                        continue;
                    }
                    _ = tokio::time::sleep(HEARTBEAT) => {}
                }
            }
            wire.clear();
            if let Err(e) = self.sealer.seal(&plain, &mut wire) {
                return SessionError::Rejected(e.to_string());
            }
            if let Err(e) = self.write.write_all(&wire).await {
                return SessionError::Io(e);
            }
        }
    }

    /// Appends an `Events` message for every shard with events past its cursor.
    fn fill(&mut self, plain: &mut Vec<u8>) -> Result<(), crate::error::AdapterError> {
        let log = &self.shared.log;
        for shard in log.stored_shards() {
            let from = self.cursors.get(&shard).copied().unwrap_or(0);
            if from >= log.end_of(shard) {
                continue;
            }
            let mut events = EventsWriter::begin(plain);
            let mut sent = 0;
            let peer = self.peer.node;
            let (to, missed) = log.scan(shard, from, SCAN_BYTES, |_, origin, timestamp_ns, payload| {
                if origin.node != peer {
                    let entry = frame::Entry { node: origin.node, sequence: origin.sequence, timestamp_ns, payload };
                    events.push(plain, entry);
                    sent += 1;
                }
            })?;
            events.finish(plain, EventsHeader { shard, from, to, missed });
            self.cursors.insert(shard, to);
            self.peer.sent.fetch_add(sent, Ordering::Relaxed);
            if missed > 0 {
                self.peer.gaps.fetch_add(missed, Ordering::Relaxed);
                self.shared.gap_events.fetch_add(missed, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
