//! The secure channel: a Noise handshake over TCP, then encrypted records.
//!
//! `Noise_XXpsk0_25519_{AESGCM,ChaChaPoly}_BLAKE2s` (`snow`): both sides prove knowledge of the
//! cluster key (the pre-shared key, mixed in before the first message, so a node with another
//! key or none fails on the first message it reads), exchange fresh ephemeral X25519 keys
//! (forward secrecy per connection) and prove their node's static key (`identity.rs`), which a
//! node pinning peers (`peer_public_keys`) checks against its list. Every record afterwards is
//! sealed with an implicit counter nonce per direction: a flipped, truncated, reordered or
//! replayed record fails to open and closes the connection.
//!
//! The cipher is the fastest both ends run in hardware. Before the handshake each side sends
//! one byte, the ciphers it offers ([`Cipher`]); both pick AES-256-GCM when both offer it and
//! ChaCha20-Poly1305 otherwise. AES-256-GCM is offered where the CPU has AES and carry-less
//! multiply instructions (x86-64 since 2010, ARMv8 with the crypto extension); on this project's
//! machines it seals 5.1 GB/s against ChaCha20-Poly1305's 1.2 GB/s, and the cipher was most of
//! the replication path's cost (BENCHMARKS.md). Without those instructions AES is slow or
//! leaks timing, which is why ChaCha20-Poly1305 is the floor. The two bytes are the Noise
//! prologue's tail, as the Noise specification advises for negotiation: a downgrade by someone
//! on the path makes the two prologues differ and the handshake fail.
//!
//! `snow` is built with `ring-accelerated`: the ciphers come from `ring` (assembly) and the
//! rest (X25519, BLAKE2s) from snow's default resolver. The records on the wire are the same
//! either way (a test checks the two interoperate). Records are sealed and opened straight
//! into the outgoing and incoming buffers, so the only copy is the one the cipher needs from
//! plaintext to ciphertext and back.
//!
//! On the wire a record is a big-endian `u16` length and that many bytes (`tokio-util`'s
//! length-delimited codec reads them), at most 65535, the Noise message limit. A sender seals a
//! whole buffer of messages into as few records as that allows. Insecure mode (loopback only)
//! sends the same records unencrypted, with no handshake and no offer.

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

/// Largest record.
pub const MAX_RECORD: usize = 65535;
/// Poly1305 tag per encrypted record.
const TAG: usize = 16;
/// Binds the handshake to this protocol and version; the two offers follow it.
pub const PROLOGUE: &[u8] = b"purple-rain net 2";
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

/// A record cipher, as the offer byte names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// ChaCha20-Poly1305: offered by every node.
    ChaChaPoly = 1,
    /// AES-256-GCM: offered where the CPU runs it in hardware.
    AesGcm = 2,
}

impl Cipher {
    /// The handshake with this cipher, named as the Noise specification names it.
    pub fn pattern(self) -> &'static str {
        match self {
            Self::ChaChaPoly => "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s",
            Self::AesGcm => "Noise_XXpsk0_25519_AESGCM_BLAKE2s",
        }
    }

    /// The cipher's name, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ChaChaPoly => "chacha20-poly1305",
            Self::AesGcm => "aes-256-gcm",
        }
    }

    /// What this machine offers: ChaCha20-Poly1305, and AES-256-GCM when the CPU has the
    /// instructions that make it fast and constant-time.
    pub fn offer() -> u8 {
        let mut offer = Self::ChaChaPoly as u8;
        if hardware_aes() {
            offer |= Self::AesGcm as u8;
        }
        offer
    }

    /// The cipher two offers agree on; `None` when one of them offers neither (not a node).
    pub fn agreed(ours: u8, theirs: u8) -> Option<Self> {
        let both = ours & theirs;
        if both & Self::AesGcm as u8 != 0 {
            Some(Self::AesGcm)
        } else if both & Self::ChaChaPoly as u8 != 0 {
            Some(Self::ChaChaPoly)
        } else {
            None
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn hardware_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn hardware_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn hardware_aes() -> bool {
    false
}

/// A connection's ciphers, one per direction, after the handshake.
#[derive(Clone)]
pub struct Keys {
    state: Option<Arc<StatelessTransportState>>,
    cipher: Option<Cipher>,
}

impl Keys {
    /// Insecure mode's: records pass through as they are.
    pub fn insecure() -> Self {
        Self { state: None, cipher: None }
    }

    /// The cipher agreed on; `None` in insecure mode.
    pub fn cipher(&self) -> Option<Cipher> {
        self.cipher
    }

    /// The sealing half.
    pub fn sealer(&self) -> Sealer {
        Sealer { state: self.state.clone(), nonce: 0 }
    }

    /// The opening half.
    pub fn opener(&self) -> Opener {
        Opener { state: self.state.clone(), nonce: 0 }
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
    /// The ciphers offered, [`Cipher`] bits ([`Cipher::offer`] but in tests).
    pub offer: u8,
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
    let theirs = exchange_offers(stream, credentials.offer).await?;
    let Some(cipher) = Cipher::agreed(credentials.offer, theirs) else {
        return Err(HandshakeError::Auth(format!("the peer offers no known cipher ({theirs:#04x})")));
    };
    let offers = if initiator { [credentials.offer, theirs] } else { [theirs, credentials.offer] };
    let prologue = [PROLOGUE, &offers].concat();
    let params = cipher.pattern().parse().map_err(auth)?;
    let builder = Builder::new(params)
        .local_private_key(credentials.identity.private())
        .psk(0, &credentials.key)
        .prologue(&prologue);
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
            let record = read_record(stream).await.map_err(hung_up)?;
            state.read_message(&record, &mut payload).map_err(auth)?;
            credentials.admit(state.get_remote_static())?;
        }
    }
    let state = state.into_stateless_transport_mode().map_err(auth)?;
    Ok(Keys { state: Some(Arc::new(state)), cipher: Some(cipher) })
}

/// Sends this side's offer and reads the peer's; both go out at once, so this costs no round
/// trip of its own.
async fn exchange_offers<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, ours: u8) -> Result<u8, HandshakeError> {
    stream.write_all(&[ours]).await.map_err(HandshakeError::Io)?;
    stream.flush().await.map_err(HandshakeError::Io)?;
    stream.read_u8().await.map_err(hung_up)
}

/// The peer hangs up on a message it cannot authenticate: an authentication failure.
fn hung_up(e: io::Error) -> HandshakeError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        HandshakeError::Auth("the peer closed the connection during the handshake".into())
    } else {
        HandshakeError::Io(e)
    }
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
        Credentials {
            key: [key; 32],
            identity: Identity::generate().unwrap(),
            pinned: Vec::new(),
            offer: Cipher::offer(),
        }
    }

    fn offering(offer: u8) -> Credentials {
        Credentials { offer, ..credentials(7) }
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

    /// The ring ciphers put the same records on the wire as snow's pure-Rust ones: a node built
    /// either way talks to the other.
    #[test]
    fn ring_records_open_with_the_pure_rust_cipher_and_back() {
        use snow::resolvers::DefaultResolver;
        for cipher in [Cipher::ChaChaPoly, Cipher::AesGcm] {
            let params = || cipher.pattern().parse::<snow::params::NoiseParams>().unwrap();
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
                assert_eq!(&out[..m], b"from ring", "{cipher:?}");
                let n = b.write_message(nonce, b"from pure Rust", &mut buf).unwrap();
                let m = a.read_message(nonce, &buf[..n], &mut out).unwrap();
                assert_eq!(&out[..m], b"from pure Rust", "{cipher:?}");
            }
        }
    }

    #[test]
    fn offers_agree_on_aes_only_when_both_run_it() {
        let (chacha, aes, both) = (Cipher::ChaChaPoly as u8, Cipher::AesGcm as u8, 3);
        assert_eq!(Cipher::agreed(both, both), Some(Cipher::AesGcm));
        assert_eq!(Cipher::agreed(both, chacha), Some(Cipher::ChaChaPoly));
        assert_eq!(Cipher::agreed(chacha, both), Some(Cipher::ChaChaPoly));
        assert_eq!(Cipher::agreed(aes, chacha), None);
        assert_eq!(Cipher::agreed(both, 0), None);
        assert_eq!(Cipher::agreed(both, 0xfc), None, "bits of ciphers this node does not know");
        assert_ne!(Cipher::offer() & chacha, 0, "every node offers ChaCha20-Poly1305");
    }

    /// The agreed cipher is the one the records use: a record sealed by one side opens on the
    /// other, and does not open with the other cipher's keys.
    #[tokio::test]
    async fn nodes_of_either_offer_connect_with_the_cipher_both_run() {
        for (a, b) in [(3, 3), (3, 1), (1, 3), (1, 1)] {
            let (x, y) = pair_of(offering(a), offering(b)).await;
            let (x, y) = (x.unwrap(), y.unwrap());
            let mut wire = Vec::new();
            x.sealer().seal(b"hello", &mut wire).unwrap();
            let mut opened = BytesMut::new();
            y.opener().open(&wire[2..], &mut opened).unwrap();
            assert_eq!(&opened[..], b"hello", "offers {a} and {b}");
            let agreed = if a & b & 2 != 0 { Cipher::AesGcm } else { Cipher::ChaChaPoly };
            assert_eq!((x.cipher(), y.cipher()), (Some(agreed), Some(agreed)), "offers {a} and {b}");
        }
        let (x, y) = pair_of(offering(Cipher::AesGcm as u8), offering(Cipher::ChaChaPoly as u8)).await;
        assert!(matches!(&x, Err(HandshakeError::Auth(m)) if m.contains("no known cipher")), "{:?}", x.err());
        assert!(matches!(&y, Err(HandshakeError::Auth(m)) if m.contains("no known cipher")), "{:?}", y.err());
    }

    /// Someone on the path who rewrites an offer to force the weaker cipher (or any other) makes
    /// the two prologues differ: the handshake fails on both sides.
    #[tokio::test]
    async fn a_rewritten_offer_fails_the_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = listener.local_addr().unwrap();
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            handshake(&mut stream, Some(&offering(3)), false).await
        });
        // Forwards both ways, rewriting each side's offer (its first byte) to ChaCha only: both
        // then agree on ChaCha20-Poly1305, and only the prologue can tell.
        tokio::spawn(async move {
            let (client, _) = proxy.accept().await.unwrap();
            let upstream = TcpStream::connect(server_addr).await.unwrap();
            let (client_read, client_write) = client.into_split();
            let (up_read, up_write) = upstream.into_split();
            let rewrite = |mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf| async move {
                let mut offer = [0u8];
                if from.read_exact(&mut offer).await.is_ok() && to.write_all(&[Cipher::ChaChaPoly as u8]).await.is_ok()
                {
                    let _ = tokio::io::copy(&mut from, &mut to).await;
                }
            };
            tokio::join!(rewrite(client_read, up_write), rewrite(up_read, client_write));
        });
        let mut stream = TcpStream::connect(proxy_addr).await.unwrap();
        let client = handshake(&mut stream, Some(&offering(3)), true).await;
        drop(stream);
        let server = server.await.unwrap();
        assert!(matches!(client, Err(HandshakeError::Auth(_))), "{:?}", client.err());
        assert!(matches!(server, Err(HandshakeError::Auth(_))), "{:?}", server.err());
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
