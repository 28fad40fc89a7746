//! The messages peers exchange inside the encrypted stream, and their byte layout.
//!
//! The decrypted records of a connection form one byte stream (as TLS records do); messages are
//! laid end to end in it, each a little-endian `u32` length, a kind byte and a body. A message may
//! span records and a record may hold many messages, so a whole dispatched batch travels as one
//! message, encrypted in as few records as its size allows. Decoding never trusts a length: a
//! message longer than [`MAX_MESSAGE`] or a body that does not add up is a [`FrameError`], which
//! closes the connection.
//!
//! - `Hello { node }`: first message each way, the sender's node id.
//! - `Resume { (shard, next)* }`: second message each way: "send me your shard's log from `next`".
//! - `Events { shard, from, to, missed, entries }`: the sender's log positions `from..to` of a
//!   shard, `missed` of them trimmed before they could be sent (a gap), the rest as entries
//!   `(origin node, origin sequence, timestamp, payload)`, minus those the receiver ingested.
//! - `Ack { shard, to }`: the receiver has stored (or dropped as duplicates) everything before
//!   `to` of the sender's shard log.
//! - `Peers { listen, peers: (node, address)* }`: after `Resume`, and again whenever the
//!   sender's connections change: the address it listens on (empty if none) and the listen
//!   addresses of the nodes it is connected to, so that the receiver can dial them (mesh
//!   learning, see `membership.rs`).

use bytes::{Buf, BufMut, Bytes};
use std::fmt;

/// Largest message: a batch of events, or one event up to this size less its header.
pub const MAX_MESSAGE: usize = 64 << 20;
/// Bytes an event adds to its payload in an `Events` message.
pub const ENTRY_HEADER: usize = 8 + 8 + 8 + 4;
/// Bytes of an `Events` message before its entries (length and kind included).
const EVENTS_HEADER: usize = 4 + 1 + 2 + 8 + 8 + 8 + 4;

const HELLO: u8 = 1;
const RESUME: u8 = 2;
const EVENTS: u8 = 3;
const ACK: u8 = 4;
const PEERS: u8 = 5;

/// A malformed message: the peer is broken or hostile, and the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub &'static str);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

/// A decoded message; `Events` keeps its entries encoded until they are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The sender's node id.
    Hello { node: u64 },
    /// Where the receiver wants each of the sender's shard logs to resume.
    Resume { cursors: Vec<(u16, u64)> },
    /// A run of the sender's shard log.
    Events(EventsHeader, Entries),
    /// The receiver has everything before `to` of the sender's `shard`.
    Ack { shard: u16, to: u64 },
    /// The sender's listen address (empty: none) and its connected peers' (node, address).
    Peers { listen: String, peers: Vec<(u64, String)> },
}

/// The positions an `Events` message covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsHeader {
    /// The shard.
    pub shard: u16,
    /// First position covered (the receiver's cursor).
    pub from: u64,
    /// Position after the last one covered.
    pub to: u64,
    /// Positions from `from` on that the sender no longer had (a gap).
    pub missed: u64,
}

/// One event of an `Events` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Node that ingested it.
    pub node: u64,
    /// That node's sequence on the shard.
    pub sequence: u64,
    /// Ingest time, ns since the epoch.
    pub timestamp_ns: u64,
    /// The payload.
    pub payload: &'a [u8],
}

/// The encoded entries of an `Events` message, validated when decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entries {
    count: usize,
    bytes: Bytes,
}

impl Entries {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        let mut rest = &self.bytes[..];
        (0..self.count).map(move |_| {
            // Validated by `decode`: every entry is whole.
            let node = rest.get_u64_le();
            let sequence = rest.get_u64_le();
            let timestamp_ns = rest.get_u64_le();
            let len = rest.get_u32_le() as usize;
            let (payload, tail) = rest.split_at(len);
            rest = tail;
            Entry { node, sequence, timestamp_ns, payload }
        })
    }
}

/// Writes `Hello`.
pub fn put_hello(out: &mut Vec<u8>, node: u64) {
    out.put_u32_le(1 + 8);
    out.put_u8(HELLO);
    out.put_u64_le(node);
}

/// Writes `Resume`.
pub fn put_resume(out: &mut Vec<u8>, cursors: &[(u16, u64)]) {
    out.put_u32_le((1 + 4 + cursors.len() * 10) as u32);
    out.put_u8(RESUME);
    out.put_u32_le(cursors.len() as u32);
    for &(shard, next) in cursors {
        out.put_u16_le(shard);
        out.put_u64_le(next);
    }
}

/// Writes `Ack`.
pub fn put_ack(out: &mut Vec<u8>, shard: u16, to: u64) {
    out.put_u32_le(1 + 2 + 8);
    out.put_u8(ACK);
    out.put_u16_le(shard);
    out.put_u64_le(to);
}

/// Writes `Peers`. Addresses longer than a `u16` length are left out (no real one is).
pub fn put_peers(out: &mut Vec<u8>, listen: &str, peers: &[(u64, String)]) {
    let fits = |addr: &str| addr.len() <= usize::from(u16::MAX);
    let listen = if fits(listen) { listen } else { "" };
    let peers: Vec<&(u64, String)> = peers.iter().filter(|(_, addr)| fits(addr)).take(usize::from(u16::MAX)).collect();
    let len = 1 + 2 + listen.len() + 2 + peers.iter().map(|(_, addr)| 8 + 2 + addr.len()).sum::<usize>();
    out.put_u32_le(len as u32);
    out.put_u8(PEERS);
    out.put_u16_le(listen.len() as u16);
    out.extend_from_slice(listen.as_bytes());
    out.put_u16_le(peers.len() as u16);
    for (node, addr) in peers {
        out.put_u64_le(*node);
        out.put_u16_le(addr.len() as u16);
        out.extend_from_slice(addr.as_bytes());
    }
}

/// Builds an `Events` message in place: `begin`, `push` each entry, `finish`.
pub struct EventsWriter {
    start: usize,
    count: u32,
}

impl EventsWriter {
    /// Starts a message at the end of `out`.
    pub fn begin(out: &mut Vec<u8>) -> Self {
        let start = out.len();
        out.resize(start + EVENTS_HEADER, 0);
        Self { start, count: 0 }
    }

    /// Appends one entry.
    pub fn push(&mut self, out: &mut Vec<u8>, entry: Entry<'_>) {
        out.reserve(ENTRY_HEADER + entry.payload.len());
        out.put_u64_le(entry.node);
        out.put_u64_le(entry.sequence);
        out.put_u64_le(entry.timestamp_ns);
        out.put_u32_le(entry.payload.len() as u32);
        out.extend_from_slice(entry.payload);
        self.count += 1;
    }

    /// Writes the header now that the entries are known.
    pub fn finish(self, out: &mut [u8], header: EventsHeader) {
        let len = out.len() - self.start - 4;
        let mut head = &mut out[self.start..self.start + EVENTS_HEADER];
        head.put_u32_le(len as u32);
        head.put_u8(EVENTS);
        head.put_u16_le(header.shard);
        head.put_u64_le(header.from);
        head.put_u64_le(header.to);
        head.put_u64_le(header.missed);
        head.put_u32_le(self.count);
    }
}

/// Length of the message at the start of `buf` (prefix included), once its prefix is there.
pub fn message_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else { return Ok(None) };
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(FrameError("length out of range"));
    }
    Ok(Some(4 + len))
}

/// Decodes one whole message (its length prefix included, as [`message_len`] measured it).
pub fn decode(mut message: Bytes) -> Result<Message, FrameError> {
    let short = FrameError("truncated");
    if message.len() < 5 {
        return Err(short);
    }
    message.advance(4);
    let kind = message.get_u8();
    let need = |m: &Bytes, n: usize| if m.remaining() < n { Err(FrameError("truncated")) } else { Ok(()) };
    let decoded = match kind {
        HELLO => {
            need(&message, 8)?;
            Message::Hello { node: message.get_u64_le() }
        }
        RESUME => {
            need(&message, 4)?;
            let count = message.get_u32_le() as usize;
            need(&message, count.checked_mul(10).ok_or(FrameError("truncated"))?)?;
            let cursors = (0..count).map(|_| (message.get_u16_le(), message.get_u64_le())).collect();
            Message::Resume { cursors }
        }
        EVENTS => {
            need(&message, EVENTS_HEADER - 5)?;
            let header = EventsHeader {
                shard: message.get_u16_le(),
                from: message.get_u64_le(),
                to: message.get_u64_le(),
                missed: message.get_u64_le(),
            };
            let count = message.get_u32_le() as usize;
            if header.to < header.from || header.to - header.from < header.missed {
                return Err(FrameError("positions out of order"));
            }
            if (header.to - header.from - header.missed) < count as u64 {
                return Err(FrameError("more entries than positions"));
            }
            let bytes = message.split_to(entries_len(&message, count)?);
            Message::Events(header, Entries { count, bytes })
        }
        ACK => {
            need(&message, 10)?;
            Message::Ack { shard: message.get_u16_le(), to: message.get_u64_le() }
        }
        PEERS => {
            let listen = get_str(&mut message)?;
            need(&message, 2)?;
            let count = usize::from(message.get_u16_le());
            // Each entry takes at least 10 bytes: never reserve more than the body can hold.
            let mut peers = Vec::with_capacity(count.min(message.remaining() / 10));
            for _ in 0..count {
                need(&message, 8)?;
                let node = message.get_u64_le();
                peers.push((node, get_str(&mut message)?));
            }
            Message::Peers { listen, peers }
        }
        _ => return Err(FrameError("unknown kind")),
    };
    if message.has_remaining() {
        return Err(FrameError("trailing bytes"));
    }
    Ok(decoded)
}

/// A `u16`-length-prefixed UTF-8 string.
fn get_str(message: &mut Bytes) -> Result<String, FrameError> {
    if message.remaining() < 2 {
        return Err(FrameError("truncated"));
    }
    let len = usize::from(message.get_u16_le());
    if message.remaining() < len {
        return Err(FrameError("truncated address"));
    }
    String::from_utf8(message.split_to(len).to_vec()).map_err(|_| FrameError("address not UTF-8"))
}

/// Bytes taken by `count` whole entries at the start of `body`.
fn entries_len(body: &[u8], count: usize) -> Result<usize, FrameError> {
    let mut at = 0;
    for _ in 0..count {
        let header = body.get(at..at + ENTRY_HEADER).ok_or(FrameError("truncated entry"))?;
        let len = u32::from_le_bytes([header[24], header[25], header[26], header[27]]) as usize;
        at += ENTRY_HEADER + len;
        if at > body.len() {
            return Err(FrameError("truncated payload"));
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(buf: &[u8]) -> Result<Vec<Message>, FrameError> {
        let mut out = Vec::new();
        let mut rest = Bytes::copy_from_slice(buf);
        while let Some(len) = message_len(&rest)? {
            if len > rest.len() {
                return Err(FrameError("truncated"));
            }
            out.push(decode(rest.split_to(len))?);
        }
        if !rest.is_empty() {
            return Err(FrameError("truncated"));
        }
        Ok(out)
    }

    #[test]
    fn every_message_round_trips() {
        let mut buf = Vec::new();
        put_hello(&mut buf, 42);
        put_resume(&mut buf, &[(0, 7), (3, 9)]);
        let mut events = EventsWriter::begin(&mut buf);
        events.push(&mut buf, Entry { node: 1, sequence: 2, timestamp_ns: 3, payload: b"abc" });
        events.push(&mut buf, Entry { node: 4, sequence: 5, timestamp_ns: 6, payload: b"" });
        events.finish(&mut buf, EventsHeader { shard: 3, from: 10, to: 15, missed: 1 });
        put_ack(&mut buf, 3, 15);
        put_peers(&mut buf, "0.0.0.0:7777", &[(9, "10.0.0.2:7777".into()), (10, "[::1]:1".into())]);
        put_peers(&mut buf, "", &[]);
        let messages = decode_all(&buf).unwrap();
        assert_eq!(messages[0], Message::Hello { node: 42 });
        assert_eq!(messages[1], Message::Resume { cursors: vec![(0, 7), (3, 9)] });
        let Message::Events(header, entries) = &messages[2] else { panic!("{:?}", messages[2]) };
        assert_eq!(*header, EventsHeader { shard: 3, from: 10, to: 15, missed: 1 });
        let entries: Vec<_> = entries.iter().collect();
        assert_eq!(entries[0], Entry { node: 1, sequence: 2, timestamp_ns: 3, payload: b"abc" });
        assert_eq!(entries[1], Entry { node: 4, sequence: 5, timestamp_ns: 6, payload: b"" });
        assert_eq!(messages[3], Message::Ack { shard: 3, to: 15 });
        let peers = vec![(9, "10.0.0.2:7777".to_owned()), (10, "[::1]:1".to_owned())];
        assert_eq!(messages[4], Message::Peers { listen: "0.0.0.0:7777".into(), peers });
        assert_eq!(messages[5], Message::Peers { listen: String::new(), peers: Vec::new() });
    }

    #[test]
    fn lengths_and_counts_are_never_trusted() {
        assert!(message_len(&(MAX_MESSAGE as u32 + 1).to_le_bytes()).is_err());
        assert!(message_len(&0u32.to_le_bytes()).is_err());
        let mut buf = Vec::new();
        let mut events = EventsWriter::begin(&mut buf);
        events.push(&mut buf, Entry { node: 1, sequence: 2, timestamp_ns: 3, payload: b"abcdef" });
        events.finish(&mut buf, EventsHeader { shard: 0, from: 0, to: 1, missed: 0 });
        // A payload length beyond the message.
        let mut long = buf.clone();
        long[EVENTS_HEADER + 24] = 200;
        assert!(decode_all(&long).is_err());
        // More entries than the positions covered.
        let mut many = buf.clone();
        many[EVENTS_HEADER - 4] = 2;
        assert!(decode_all(&many).is_err());
    }

    proptest! {
        /// Any bytes decode to messages or an error, never a panic, and decoded events stay
        /// inside the buffer.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(messages) = decode_all(&bytes) {
                for message in messages {
                    if let Message::Events(_, entries) = message {
                        prop_assert!(entries.iter().count() == entries.len());
                    }
                }
            }
        }

        /// Well-formed messages with corrupted bytes never panic either.
        #[test]
        fn corrupted_messages_never_panic(at in 0usize..80, value in any::<u8>()) {
            let mut buf = Vec::new();
            let mut events = EventsWriter::begin(&mut buf);
            events.push(&mut buf, Entry { node: 1, sequence: 2, timestamp_ns: 3, payload: b"payload" });
            events.finish(&mut buf, EventsHeader { shard: 0, from: 0, to: 1, missed: 0 });
            put_ack(&mut buf, 0, 1);
            let at = at % buf.len();
            buf[at] = value;
            let _ = decode_all(&buf);
        }
    }
}
