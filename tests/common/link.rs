//! A TCP link between two Net nodes whose faults a test switches on and off while it runs:
//! delay, drop, cut and blackhole, then heal.
//!
//! Unlike `proxy.rs` (one fault on one record of the first connection), a link stays up for a
//! whole scenario and applies its current faults to every connection, in both directions. It
//! reads the Net adapter's record framing (a big-endian `u16` length, then the record, after the
//! one-byte cipher offer), so a drop removes whole records: the receiver's next record then
//! fails authentication (its nonce no longer matches) and the connection is closed, as with any
//! lost or reordered record.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The handshake's records (two one way, one the other) are never dropped: a lost handshake
/// record only stalls the handshake until its timeout, which a blackhole already covers.
const HANDSHAKE_RECORDS: usize = 2;

#[derive(Default)]
struct Faults {
    delay_ms: AtomicU64,
    drop_next: AtomicUsize,
    blackhole: AtomicBool,
    dropped: AtomicUsize,
    stop: AtomicBool,
}

/// A running link; it stops accepting and closes its connections when dropped.
pub struct Link {
    pub port: u16,
    /// Connections accepted so far (each one forwarded or held, whatever the faults).
    pub connections: Arc<AtomicUsize>,
    faults: Arc<Faults>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    /// Holds every record for `delay` before forwarding it (zero: none).
    pub fn delay(&self, delay: Duration) {
        self.faults.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Drops the next `records` data records, whichever direction they go.
    pub fn drop_records(&self, records: usize) {
        self.faults.drop_next.store(records, Ordering::SeqCst);
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> usize {
        self.faults.dropped.load(Ordering::SeqCst)
    }

    /// Stops forwarding anything, both ways, on open and new connections, keeping them open.
    pub fn blackhole(&self, on: bool) {
        self.faults.blackhole.store(on, Ordering::SeqCst);
    }

    /// Closes every open connection (both directions); later ones pass.
    pub fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Clears every fault.
    pub fn heal(&self) {
        self.delay(Duration::ZERO);
        self.drop_records(0);
        self.blackhole(false);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.faults.stop.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A link forwarding connections to `127.0.0.1:target`, with no fault on.
pub fn start_link(target: u16) -> Link {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let faults = Arc::new(Faults::default());
    let open = Arc::new(Mutex::new(Vec::new()));
    let link = Link { port, connections: connections.clone(), faults: faults.clone(), open: open.clone() };
    std::thread::spawn(move || {
        for client in listener.incoming() {
            if faults.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
            connections.fetch_add(1, Ordering::SeqCst);
            let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { continue };
            if let (Ok(c3), Ok(s3)) = (client.try_clone(), server.try_clone()) {
                open.lock().unwrap().extend([c3, s3]);
            }
            let (f1, f2) = (faults.clone(), faults.clone());
            std::thread::spawn(move || pump(client, server, &f1));
            std::thread::spawn(move || pump(s2, c2, &f2));
        }
    });
    link
}

/// Forwards records from `from` to `to` under the link's current faults, until either closes.
/// Encrypted connections only: the first byte is taken for the cipher offer.
/// A delay is latency, not a throughput limit: each record is stamped when it arrives and a
/// second thread writes it once its time has come.
fn pump(mut from: TcpStream, to: TcpStream, faults: &Faults) {
    let (queue, queued) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let Ok(writer_end) = to.try_clone() else { return };
    let writer = std::thread::spawn(move || {
        let mut to = writer_end;
        for (due, framed) in queued {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&framed).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
    // An encrypted connection opens with one byte each way, the cipher offer; records follow.
    let mut offer = [0u8];
    if from.read_exact(&mut offer).is_err() {
        return;
    }
    if !faults.blackhole.load(Ordering::SeqCst) && queue.send((Instant::now(), offer.to_vec())).is_err() {
        return;
    }
    let mut index = 0;
    loop {
        let mut len = [0u8; 2];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let mut framed = vec![0u8; 2 + u16::from_be_bytes(len) as usize];
        framed[..2].copy_from_slice(&len);
        if from.read_exact(&mut framed[2..]).is_err() {
            break;
        }
        index += 1;
        if faults.blackhole.load(Ordering::SeqCst) {
            continue;
        }
        if index > HANDSHAKE_RECORDS
            && faults.drop_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            faults.dropped.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let due = Instant::now() + Duration::from_millis(faults.delay_ms.load(Ordering::SeqCst));
        if queue.send((due, framed)).is_err() {
            break;
        }
    }
    drop(queue);
    let _ = writer.join();
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
