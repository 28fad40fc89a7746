//! The secure channel: a Noise handshake over TCP, then encrypted records.
//!
//! `Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s` (`snow`): both sides prove knowledge of the cluster
//! key (the pre-shared key, mixed in before the first message, so a node with another key or
//! none fails on the first message it reads), exchange fresh ephemeral X25519 keys (forward
//! secrecy per connection) and prove their node's static key (`identity.rs`), which a node
//! pinning peers (`peer_public_keys`) checks against its list. Every record afterwards is ChaCha20-Poly1305 with an implicit
//! counter nonce per direction: a flipped, truncated, reordered or replayed record fails to
//! decrypt and closes the connection.
//!
//! `snow` is built with `ring-accelerated`: ChaCha20-Poly1305 comes from `ring` (assembly) and the
//! rest (X25519, BLAKE2s) from snow's default resolver. The records on the wire are the same
//! either way (a test checks the two interoperate); ring's cipher took the encrypted catch-up
//! from ~140 ns to ~90 ns of cipher time per 128-byte event on each side (BENCHMARKS.md). Records
//! are sealed and opened straight into the outgoing and incoming buffers, so the only copy is
//! the one the cipher needs from plaintext to ciphertext and back.
//!
//! On the wire a record is a big-endian `u16` length and that many bytes (`tokio-util`'s
//! length-delimited codec reads them), at most 65535, the Noise message limit. A sender seals a
//! whole buffer of messages into as few records as that allows. Insecure mode (loopback only)
//! sends the same records unencrypted.

use super::identity::Identity;
use crate::config::to_hex;
use bytes::BytesMut;
use snow::{Builder, StatelessTransportState};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::LengthDelimitedCodec;

/// The handshake, named as the Noise specification names it.
pub const PATTERN: &str = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s";
/// Largest record.
pub const MAX_RECORD: usize = 65535;
/// Poly1305 tag per encrypted record.
const TAG: usize = 16;
/// Binds the handshake to this protocol and version.
pub const PROLOGUE: &[u8] = b"purple-rain net 1";
/// Bound on the whole handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The peer did not prove the cluster key (or spoke something else): counted as an
    /// authentication failure.
    Auth(String),
    /// The connection failed or timed out.
    Io(io::Error),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auth(m) => write!(f, "peer not authenticated: {m}"),
            Self::Io(e) => write!(f, "handshake failed: {e}"),
        }
    }
}

/// A connection's ciphers, one per direction, after the handshake.
#[derive(Clone)]
pub struct Keys(Option<Arc<StatelessTransportState>>);

impl Keys {
    /// Insecure mode's: records pass through as they are.
    pub fn insecure() -> Self {
        Self(None)
    }

    /// The sealing half.
    pub fn sealer(&self) -> Sealer {
        Sealer { state: self.0.clone(), nonce: 0 }
    }

    /// The opening half.
    pub fn opener(&self) -> Opener {
        Opener { state: self.0.clone(), nonce: 0 }
    }
}

/// What a node proves in the handshake and what it accepts from peers.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The cluster key, mixed in as the Noise pre-shared key.
    pub key: [u8; 32],
    /// This node's static key pair.
    pub identity: Identity,
    /// When not empty, the only remote static keys accepted.
    pub pinned: Vec<[u8; 32]>,
}

impl Credentials {
    /// Refuses a remote static key that is not pinned (any key, when nothing is pinned).
    fn admit(&self, remote: Option<&[u8]>) -> Result<(), HandshakeError> {
        match remote {
            Some(remote) if !self.pinned.is_empty() && !self.pinned.iter().any(|k| k.as_slice() == remote) => {
                Err(HandshakeError::Auth(format!("public key {} is not in peer_public_keys", to_hex(remote))))
            }
            _ => Ok(()),
        }
    }
}

/// Runs the handshake on a fresh connection (TCP, or an in-memory pipe in tests and fuzzing).
/// `credentials` is `None` in insecure mode, where there is nothing to agree on.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    credentials: Option<&Credentials>,
    initiator: bool,
) -> Result<Keys, HandshakeError> {
    let Some(credentials) = credentials else { return Ok(Keys::insecure()) };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, noise(stream, credentials, initiator)).await {
        Ok(result) => result,
        Err(_) => Err(HandshakeError::Io(io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))),
    }
}

async fn noise<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    credentials: &Credentials,
    initiator: bool,
) -> Result<Keys, HandshakeError> {
    let auth = |e: snow::Error| HandshakeError::Auth(e.to_string());
    let params = PATTERN.parse().map_err(auth)?;
    let builder = Builder::new(params)
        .local_private_key(credentials.identity.private())
        .psk(0, &credentials.key)
        .prologue(PROLOGUE);
    let mut state = if initiator { builder.build_initiator() } else { builder.build_responder() }.map_err(auth)?;
    let mut buf = vec![0u8; MAX_RECORD];
    let mut payload = vec![0u8; MAX_RECORD];
    // XX: initiator writes, responder writes, initiator writes. Each side checks the remote
    // static key as soon as it has it: the initiator before its last message, the responder on
    // the last one, so a peer that is not pinned never gets past the handshake.
    for turn in 0..3 {
        if (turn % 2 == 0) == initiator {
            let n = state.write_message(&[], &mut buf).map_err(auth)?;
            write_record(stream, &buf[..n]).await.map_err(HandshakeError::Io)?;
        } else {
            let record = match read_record(stream).await {
                Ok(record) => record,
                // The peer hangs up on a message it cannot authenticate.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(HandshakeError::Auth("the peer closed the connection during the handshake".into()))
                }
                Err(e) => return Err(HandshakeError::Io(e)),
            };
            state.read_message(&record, &mut payload).map_err(auth)?;
            credentials.admit(state.get_remote_static())?;
        }
    }
    Ok(Keys(Some(Arc::new(state.into_stateless_transport_mode().map_err(auth)?))))
}

async fn write_record<S: AsyncWrite + Unpin>(stream: &mut S, record: &[u8]) -> io::Result<()> {
    let mut framed = Vec::with_capacity(2 + record.len());
    framed.extend_from_slice(&(record.len() as u16).to_be_bytes());
    framed.extend_from_slice(record);
    stream.write_all(&framed).await?;
    stream.flush().await
}

async fn read_record<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let len = stream.read_u16().await? as usize;
    let mut record = vec![0; len];
    stream.read_exact(&mut record).await?;
    Ok(record)
}

/// The codec that cuts a connection's byte stream into records after the handshake.
pub fn record_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().big_endian().length_field_length(2).max_frame_length(MAX_RECORD).new_codec()
}

/// Seals outgoing plaintext into records (plaintext chunks of at most 65519 bytes, so the
/// insecure mode's records line up with the encrypted ones).
pub struct Sealer {
    state: Option<Arc<StatelessTransportState>>,
    nonce: u64,
}

impl Sealer {
    /// Appends `plain` to `out` as length-prefixed records, as few as the record limit allows.
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), snow::Error> {
        if plain.is_empty() {
            return self.seal_chunk(&[], out);
        }
        for chunk in plain.chunks(MAX_RECORD - TAG) {
            self.seal_chunk(chunk, out)?;
        }
        Ok(())
    }

    /// One record; an empty one is a heartbeat. Sealed straight into `out`: the plaintext is
    /// copied once, into the record, and encrypted there.
    fn seal_chunk(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), snow::Error> {
        let Some(state) = &self.state else {
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
            return Ok(());
        };
        let at = out.len();
        out.resize(at + 2 + chunk.len() + TAG, 0);
        let n = match state.write_message(self.nonce, chunk, &mut out[at + 2..]) {
            Ok(n) => n,
            Err(e) => {
                out.truncate(at);
                return Err(e);
            }
        };
        self.nonce += 1;
        out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
        out.truncate(at + 2 + n);
        Ok(())
    }
}

/// Opens incoming records.
pub struct Opener {
    state: Option<Arc<StatelessTransportState>>,
    nonce: u64,
}

impl Opener {
    /// Decrypts one record (without its length prefix) and appends its plaintext to `plain`,
    /// opened in place at the end of `plain`. A record that fails authentication, including one
    /// replayed or out of order, is an error and appends nothing.
    pub fn open(&mut self, record: &[u8], plain: &mut BytesMut) -> Result<(), snow::Error> {
        let Some(state) = &self.state else {
            plain.extend_from_slice(record);
            return Ok(());
        };
        let at = plain.len();
        plain.resize(at + record.len(), 0);
        match state.read_message(self.nonce, record, &mut plain[at..]) {
            Ok(n) => {
                self.nonce += 1;
                plain.truncate(at + n);
                Ok(())
            }
            Err(e) => {
                plain.truncate(at);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    fn credentials(key: u8) -> Credentials {
        Credentials { key: [key; 32], identity: Identity::generate().unwrap(), pinned: Vec::new() }
    }

    async fn pair_of(a: Credentials, b: Credentials) -> (Result<Keys, HandshakeError>, Result<Keys, HandshakeError>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            handshake(&mut stream, Some(&b), false).await
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let client = handshake(&mut stream, Some(&a), true).await;
        // Hang up as a failed connection does, so a server waiting for more learns at once.
        drop(stream);
        (client, server.await.unwrap())
    }

    async fn pair(a: u8, b: u8) -> (Result<Keys, HandshakeError>, Result<Keys, HandshakeError>) {
        pair_of(credentials(a), credentials(b)).await
    }

    #[tokio::test]
    async fn the_same_key_agrees_and_records_round_trip_once() {
        let (a, b) = pair(7, 7).await;
        let (a, b) = (a.unwrap(), b.unwrap());
        let (mut sealer, mut opener) = (a.sealer(), b.opener());
        let plain: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        sealer.seal(&plain, &mut wire).unwrap();
        let mut records = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            records.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
        assert_eq!(records.len(), 4, "200000 bytes fit in 4 records of 65519");
        let mut opened = BytesMut::new();
        for record in &records {
            opener.open(record, &mut opened).unwrap();
        }
        assert_eq!(&opened[..], &plain[..]);
        // Replaying a record, or flipping a byte of a new one, fails and appends nothing.
        assert!(opener.open(&records[3], &mut opened).is_err());
        assert_eq!(opened.len(), plain.len());
        let mut flipped = Vec::new();
        sealer.seal(b"more", &mut flipped).unwrap();
        flipped[5] ^= 1;
        assert!(opener.open(&flipped[2..], &mut opened).is_err());
        assert_eq!(opened.len(), plain.len());
    }

    /// The ring cipher puts the same records on the wire as snow's pure-Rust one: a node built
    /// either way talks to the other.
    #[test]
    fn ring_records_open_with_the_pure_rust_cipher_and_back() {
        use snow::resolvers::DefaultResolver;
        let params = || PATTERN.parse::<snow::params::NoiseParams>().unwrap();
        let keypair = Builder::new(params()).generate_keypair().unwrap();
        let ring = Builder::new(params()).local_private_key(&keypair.private).psk(0, &[3; 32]).prologue(PROLOGUE);
        let pure = Builder::with_resolver(params(), Box::new(DefaultResolver))
            .local_private_key(&keypair.private)
            .psk(0, &[3; 32])
            .prologue(PROLOGUE);
        let (mut a, mut b) = (ring.build_initiator().unwrap(), pure.build_responder().unwrap());
        let (mut buf, mut out) = (vec![0u8; MAX_RECORD], vec![0u8; MAX_RECORD]);
        for turn in 0..3 {
            let (from, to) = if turn % 2 == 0 { (&mut a, &mut b) } else { (&mut b, &mut a) };
            let n = from.write_message(&[], &mut buf).unwrap();
            to.read_message(&buf[..n], &mut out).unwrap();
        }
        let (a, b) = (a.into_stateless_transport_mode().unwrap(), b.into_stateless_transport_mode().unwrap());
        for nonce in 0..3 {
            let n = a.write_message(nonce, b"from ring", &mut buf).unwrap();
            let m = b.read_message(nonce, &buf[..n], &mut out).unwrap();
            assert_eq!(&out[..m], b"from ring");
            let n = b.write_message(nonce, b"from pure Rust", &mut buf).unwrap();
            let m = a.read_message(nonce, &buf[..n], &mut out).unwrap();
            assert_eq!(&out[..m], b"from pure Rust");
        }
    }

    #[tokio::test]
    async fn a_wrong_key_fails_on_both_sides() {
        let (a, b) = pair(7, 8).await;
        assert!(matches!(a, Err(HandshakeError::Auth(_))), "{:?}", a.err());
        assert!(matches!(b, Err(HandshakeError::Auth(_))), "{:?}", b.err());
    }

    #[tokio::test]
    async fn a_pinned_peer_is_accepted_and_another_refused_either_way() {
        let (a, b, stranger) = (credentials(7), credentials(7), credentials(7));
        let pin = |mut c: Credentials, peer: &Credentials| {
            c.pinned.push(*peer.identity.public());
            c
        };
        let (x, y) = pair_of(pin(a.clone(), &b), pin(b.clone(), &a)).await;
        assert!(x.is_ok() && y.is_ok(), "pinned both ways: {:?} {:?}", x.err(), y.err());
        // The initiator pins someone else: it refuses before its last message.
        let (x, y) = pair_of(pin(a.clone(), &stranger), b.clone()).await;
        assert!(matches!(&x, Err(HandshakeError::Auth(m)) if m.contains("peer_public_keys")), "{:?}", x.err());
        assert!(matches!(y, Err(HandshakeError::Auth(_))), "{:?}", y.err());
        // The responder pins someone else: it refuses on the last message.
        let (x, y) = pair_of(a.clone(), pin(b.clone(), &stranger)).await;
        assert!(matches!(&y, Err(HandshakeError::Auth(m)) if m.contains("peer_public_keys")), "{:?}", y.err());
        // The initiator finished its part: the refusal reaches it as a closed connection.
        drop(x);
    }
}
