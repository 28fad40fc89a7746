//! What the fuzz targets drive (`fuzz/fuzz_targets/net_frame.rs`, `net_handshake.rs`): the
//! decoders a peer's bytes reach, behind two functions of plain bytes, so the adapter's
//! internals stay private. Not an API: hidden from the docs and free to change.
//!
//! Each function checks the properties a peer must not be able to break and panics when one
//! fails, which is what a fuzzer reports: every input ends in a value or an error, never a panic
//! inside the adapter, a hang, or an allocation the input's size does not bound; a tampered
//! stream is always an error; an untouched one always decodes as its plaintext does.

use super::frame::{self, Message};
use super::identity::Identity;
use super::transport::{self, Cipher, Credentials, Keys, Opener, PROLOGUE};
use bytes::BytesMut;
use std::sync::OnceLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::codec::Decoder;

/// Both ciphers, whatever this machine runs fast: the fuzzers cover both.
const BOTH_CIPHERS: u8 = Cipher::ChaChaPoly as u8 | Cipher::AesGcm as u8;

/// The messages of a connection's plaintext `plain`, cut and decoded as a connection does
/// (`peer.rs`, `Inbox::next`): how many there were, or the first error. A message left
/// incomplete at the end is an error, as a stream ending inside one is.
pub fn decode_messages(plain: &[u8]) -> Result<usize, String> {
    let mut buffer = BytesMut::from(plain);
    let mut count = 0;
    while let Some(message) = next_message(&mut buffer)? {
        check(&message);
        count += 1;
    }
    if buffer.is_empty() {
        Ok(count)
    } else {
        Err("stream ended inside a message".into())
    }
}

/// The next whole message at the start of `plain`, as `Inbox::next` cuts it.
fn next_message(plain: &mut BytesMut) -> Result<Option<Message>, String> {
    match frame::message_len(plain).map_err(|e| e.to_string())? {
        Some(len) if plain.len() >= len => {
            frame::decode(plain.split_to(len).freeze()).map(Some).map_err(|e| e.to_string())
        }
        _ => Ok(None),
    }
}

/// A decoded message's entries are all there and inside it.
fn check(message: &Message) {
    if let Message::Events(header, entries) = message {
        assert_eq!(entries.iter().count(), entries.len());
        assert!(entries.len() as u64 <= header.to - header.from - header.missed);
    }
}

/// The wire bytes of a connection after its handshake, read as a connection reads them: cut
/// into records by the record codec, each opened by `opener`, the plaintext cut into messages.
///
/// A stream that ends inside a record is an error here. The connection's reader sees the
/// same stream as a plain end of stream when the cut falls after a record's length prefix (the
/// codec has consumed it): the connection closes either way and nothing of the partial record
/// is used, but a check must tell a replayed length prefix from an untouched stream.
fn read_wire(wire: &[u8], mut opener: Opener) -> Result<usize, String> {
    let mut rest = wire;
    while let [high, low, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*high, *low]));
        rest = tail.get(len..).ok_or("stream ended inside a record")?;
    }
    if !rest.is_empty() {
        return Err("stream ended inside a record".into());
    }
    let mut codec = transport::record_codec();
    let mut input = BytesMut::from(wire);
    let mut plain = BytesMut::new();
    let mut count = 0;
    loop {
        let record = match codec.decode(&mut input).map_err(|e| e.to_string())? {
            Some(record) => record,
            None if input.is_empty() => break,
            None => return Err("stream ended inside a record".into()),
        };
        opener.open(&record, &mut plain).map_err(|e| format!("record: {e}"))?;
        while let Some(message) = next_message(&mut plain)? {
            check(&message);
            count += 1;
        }
    }
    if plain.is_empty() {
        Ok(count)
    } else {
        Err("stream ended inside a message".into())
    }
}

/// Two ends of one genuine encrypted connection, made once: a fresh sealer and opener from
/// them start at nonce 0, as on a new connection.
fn keys() -> &'static (Keys, Keys) {
    static KEYS: OnceLock<(Keys, Keys)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
        runtime.block_on(async {
            let credentials = Credentials {
                key: [7; 32],
                identity: Identity::from_private([1; 32]),
                pinned: Vec::new(),
                offer: BOTH_CIPHERS,
            };
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            let (a, b) = tokio::join!(
                transport::handshake(&mut a, Some(&credentials), true),
                transport::handshake(&mut b, Some(&credentials), false)
            );
            (a.expect("handshake"), b.expect("handshake"))
        })
    })
}

/// Fuzzes the frame decoder and the record reader. The first byte picks what the rest is:
/// - `0`: a connection's plaintext, straight into the message decoder;
/// - `1`: an insecure connection's wire bytes (plain records);
/// - `2`: a plaintext sealed by a genuine peer (split into records of `data[1]` bytes or
///   fewer), then edited by the last `4 × (data[2] % 8)` bytes, four per edit: op, position
///   (two bytes), value. Op `0` flips bits, `1` truncates, `2` appends a replay of the stream's
///   start. A flipped bit or a replay must be refused; a truncation may only lose messages;
///   an untouched stream must read as its plaintext decodes.
pub fn fuzz_frames(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            let _ = decode_messages(rest);
        }
        1 => {
            let _ = read_wire(rest, Keys::insecure().opener());
        }
        _ => sealed_and_edited(rest),
    }
}

fn sealed_and_edited(data: &[u8]) {
    let [chunk, edits, data @ ..] = data else { return };
    let edit_bytes = (usize::from(*edits) % 8 * 4).min(data.len() / 4 * 4);
    let (plain, edits) = data.split_at(data.len() - edit_bytes);
    let (ours, theirs) = keys();
    let mut sealer = ours.sealer();
    let mut wire = Vec::new();
    let chunk = usize::from(*chunk).max(1);
    if plain.is_empty() {
        sealer.seal(&[], &mut wire).expect("seal");
    }
    for piece in plain.chunks(chunk) {
        sealer.seal(piece, &mut wire).expect("seal");
    }
    let original = wire.clone();
    for edit in edits.chunks_exact(4) {
        let at = usize::from(u16::from_le_bytes([edit[1], edit[2]]));
        if wire.is_empty() {
            break;
        }
        let at = at % wire.len();
        match edit[0] % 3 {
            0 => wire[at] ^= edit[3],
            1 => wire.truncate(at),
            _ => {
                let replay = wire[..=at].to_vec();
                wire.extend_from_slice(&replay);
            }
        }
    }
    // Judged on the result, so that edits that undo each other count as none.
    let changed = !original.starts_with(&wire);
    let truncated = wire.len() < original.len();
    let read = read_wire(&wire, theirs.opener());
    let expected = decode_messages(plain);
    if changed {
        assert!(read.is_err(), "a tampered stream was accepted: {read:?}");
    } else if truncated {
        if let (Ok(read), Ok(expected)) = (&read, &expected) {
            assert!(read <= expected, "a truncated stream gave {read} messages of {expected}");
        }
    } else {
        assert_eq!(read, expected, "an untouched stream read differently from its plaintext");
    }
}

/// How the pretend peer of [`fuzz_handshake`] behaves.
enum Pretender<'a> {
    /// Sends these bytes and hangs up.
    Raw(&'a [u8]),
    /// Runs the handshake with the cluster key (or another), editing its messages.
    Honest { right_key: bool, edits: &'a [u8] },
}

/// Fuzzes the handshake: this node (initiator if `data[0]` bit 0) against a pretend peer fed
/// by the rest. Bits 1–2 of `data[0]`: `0`, the peer sends `data[1..]` raw; `1`, it runs the
/// handshake with the cluster key; `2`, with another key; `3`, with the cluster key but this
/// node pins another public key. Bits 3–4: `1` pins the peer's key (with the cluster key that
/// must succeed). Bit 5: the peer offers ChaCha20-Poly1305 only (this node offers both
/// ciphers, so either may be agreed on). An honest peer applies the edits of `data[1..]`, four
/// bytes each: message (0–2), op (`0` flip bits, `1` truncate, else append), position, value;
/// after a message it edited it hangs up.
///
/// Must hold: raw bytes, another key, an unpinned key or an edited message fail the handshake
/// (an append to the last message may pass: the handshake never reads past its end); an
/// unedited handshake with the cluster key and an accepted key succeeds; nothing times out
/// (run it on a paused clock: a hang then shows as a timeout, at once).
pub async fn fuzz_handshake(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let initiator = mode & 1 == 1;
    let kind = (mode >> 1) & 3;
    let pin_peer = (mode >> 3) & 3 == 1;
    let offer = if mode & 1 << 5 == 0 { BOTH_CIPHERS } else { Cipher::ChaChaPoly as u8 };
    let peer_identity = Identity::from_private([3; 32]);
    let mut ours = Credentials {
        key: [7; 32],
        identity: Identity::from_private([1; 32]),
        pinned: Vec::new(),
        offer: BOTH_CIPHERS,
    };
    if kind == 3 {
        ours.pinned.push(*Identity::from_private([4; 32]).public());
    } else if pin_peer {
        ours.pinned.push(*peer_identity.public());
    }
    let pretender = match kind {
        0 => Pretender::Raw(rest),
        2 => Pretender::Honest { right_key: false, edits: rest },
        _ => Pretender::Honest { right_key: true, edits: rest },
    };
    let (mut mine, theirs) = tokio::io::duplex(1 << 16);
    let ours = async move {
        let result = transport::handshake(&mut mine, Some(&ours), initiator).await;
        // Hang up, as a connection does when its handshake ends, so the peer stops waiting.
        drop(mine);
        result
    };
    let (result, edited) = tokio::join!(ours, pretend(theirs, pretender, !initiator, offer, peer_identity));
    let result = result.map(drop).map_err(|e| e.to_string());
    if let Err(e) = &result {
        assert!(!e.contains("timed out"), "the handshake hung: {e}");
    }
    match (kind, edited) {
        (0 | 2 | 3, _) | (1, Edited::Bytes) => assert!(result.is_err(), "handshake accepted (kind {kind}, {edited:?})"),
        (_, Edited::Nothing) => assert!(result.is_ok(), "an honest handshake failed: {result:?}"),
        _ => {}
    }
}

/// What a pretend peer changed in what it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edited {
    Nothing,
    /// Bytes of a message were flipped or cut.
    Bytes,
    /// Only bytes after a message were added.
    Appended,
}

async fn pretend(
    mut stream: DuplexStream,
    pretender: Pretender<'_>,
    initiator: bool,
    offer: u8,
    identity: Identity,
) -> Edited {
    let (right_key, edits) = match pretender {
        Pretender::Raw(bytes) => {
            let _ = stream.write_all(bytes).await;
            let _ = stream.shutdown().await;
            return Edited::Bytes;
        }
        Pretender::Honest { right_key, edits } => (right_key, edits),
    };
    let key = if right_key { [7; 32] } else { [8; 32] };
    // The offers go unedited: a changed offer is a changed prologue, which the transport tests
    // show fails the handshake.
    let mut theirs = [0u8];
    if stream.write_all(&[offer]).await.is_err() || stream.read_exact(&mut theirs).await.is_err() {
        return Edited::Nothing;
    }
    let Some(cipher) = Cipher::agreed(offer, theirs[0]) else { return Edited::Nothing };
    let offers = if initiator { [offer, theirs[0]] } else { [theirs[0], offer] };
    let prologue = [PROLOGUE, &offers].concat();
    let Ok(params) = cipher.pattern().parse() else { return Edited::Nothing };
    let builder = snow::Builder::new(params).local_private_key(identity.private()).psk(0, &key).prologue(&prologue);
    let Ok(mut state) = (if initiator { builder.build_initiator() } else { builder.build_responder() }) else {
        return Edited::Nothing;
    };
    let mut buf = vec![0u8; transport::MAX_RECORD];
    let mut edited = Edited::Nothing;
    for turn in 0..3u8 {
        if (turn % 2 == 0) == initiator {
            let Ok(n) = state.write_message(&[], &mut buf) else { return edited };
            let mut framed = (n as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&buf[..n]);
            let original = framed.clone();
            for edit in edits.chunks_exact(4).filter(|e| e[0] % 3 == turn) {
                let at = usize::from(edit[2]) % framed.len().max(1);
                match edit[1] % 3 {
                    0 if at < framed.len() => framed[at] ^= edit[3],
                    1 => framed.truncate(at),
                    2 => framed.extend(std::iter::repeat_n(edit[3], usize::from(edit[3]))),
                    _ => {}
                }
            }
            // Judged on the result, so that edits that undo each other count as none.
            let this = if framed == original {
                Edited::Nothing
            } else if framed.starts_with(&original) {
                Edited::Appended
            } else {
                Edited::Bytes
            };
            edited = edited.max_with(this);
            if stream.write_all(&framed).await.is_err() {
                return edited;
            }
            if this != Edited::Nothing {
                let _ = stream.shutdown().await;
                return edited;
            }
        } else {
            let Ok(len) = stream.read_u16().await else { return edited };
            let mut record = vec![0; usize::from(len)];
            if stream.read_exact(&mut record).await.is_err() || state.read_message(&record, &mut buf).is_err() {
                return edited;
            }
        }
    }
    edited
}

impl Edited {
    /// The more serious of two edits.
    fn max_with(self, other: Edited) -> Edited {
        match (self, other) {
            (Edited::Bytes, _) | (_, Edited::Bytes) => Edited::Bytes,
            (Edited::Appended, _) | (_, Edited::Appended) => Edited::Appended,
            _ => Edited::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn handshake(data: &[u8]) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(fuzz_handshake(data));
    }

    #[test]
    fn honest_handshakes_pass_and_spoiled_ones_fail() {
        for initiator in [0, 1] {
            handshake(&[initiator | 1 << 1]); // cluster key
            handshake(&[initiator | 1 << 1 | 1 << 3]); // cluster key, pinned
            handshake(&[initiator | 2 << 1]); // another key
            handshake(&[initiator | 3 << 1]); // not pinned
            handshake(&[initiator, 0, 1, 2, 3]); // raw bytes
            for message in 0..3 {
                handshake(&[initiator | 1 << 1, message, 0, 9, 0x40]); // a flipped bit
                handshake(&[initiator | 1 << 1, message, 1, 20, 0]); // cut short
                handshake(&[initiator | 1 << 1, message, 2, 0, 5]); // trailing bytes
            }
        }
    }

    #[test]
    fn sealed_streams_read_as_their_plaintext_and_edits_are_refused() {
        let mut plain = Vec::new();
        frame::put_hello(&mut plain, 42);
        frame::put_ack(&mut plain, 1, 2);
        for chunk in [1u8, 7, 255] {
            let mut data = vec![2, chunk, 0];
            data.extend_from_slice(&plain);
            fuzz_frames(&data);
            for op in 0..3u8 {
                let mut edited = vec![2, chunk, 1];
                edited.extend_from_slice(&plain);
                edited.extend_from_slice(&[op, 5, 0, 1]);
                fuzz_frames(&edited);
            }
        }
        assert_eq!(decode_messages(&plain), Ok(2));
    }

    /// Found by `net_frame`: an empty stream's heartbeat with a replay of its own length prefix
    /// appended read as an untouched stream (the record codec consumes a prefix whose record
    /// never comes and then reports a clean end).
    /// Found by `net_handshake`: cutting bytes appended to the last message, not the message,
    /// was taken for a spoiled handshake that should have failed.
    #[test]
    fn cutting_only_appended_bytes_leaves_the_handshake_whole() {
        handshake(&[0x02, 0x23, 0xfe, 0xff, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x02, 0x0a, 0xff, 0xff]);
    }

    /// Found by `net_frame`: a byte flipped twice, back to what it was, was taken for a
    /// tampered stream that should have been refused.
    #[test]
    fn edits_that_undo_each_other_leave_the_stream_untouched() {
        fuzz_frames(&[2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 0, 0x29, 0]);
    }

    /// Found by `net_handshake`: a byte of the last message flipped twice, back to what it
    /// was, was taken for a spoiled handshake.
    #[test]
    fn handshake_edits_that_undo_each_other_leave_it_whole() {
        let mut data = vec![0x0a, 0, 0, 0, 0, 0x98, 0x2d, 0x98, 0x98, 0x98, 0x21, 0x98, 0x98, 0x98, 0x98, 0x98];
        data.extend_from_slice(&[0x98, 0x98, 0x98, 0x23, 0x98, 0x98, 0x98, 0x98, 0x98, 0x98, 0x98, 0x98]);
        data.extend_from_slice(&[0x98, 0x98, 0x98, 0x98, 0x98, 0x98, 0, 0, 0, 0, 0x3d]);
        handshake(&data);
    }

    #[test]
    fn a_replayed_length_prefix_alone_is_refused() {
        fuzz_frames(&[0x02, 0x60, 0x45, 0x23, 0x45, 0x0a, 0x00]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_frames_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzz_frames(&data);
        }

        #[test]
        fn arbitrary_handshakes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            handshake(&data);
        }
    }
}
