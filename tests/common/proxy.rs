//! A TCP proxy between two nodes that injects faults into the records one side sends.
//!
//! It reads the Net adapter's record framing (a big-endian `u16` length, then the record, after
//! the one-byte cipher offer of an encrypted connection) from the dialing side, so a fault hits
//! exactly one record: flipped, replayed, or the connection cut or blackholed there. Each fault
//! applies to the first connection only; later ones pass through untouched, as after a network
//! heals.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the proxy does to record `at` of the first connection's dialing side.
#[derive(Debug, Clone, Copy)]
pub enum ProxyFault {
    /// Flips one byte inside the record.
    Flip { at: usize },
    /// Sends the record twice.
    Replay { at: usize },
    /// Closes both directions there.
    Cut { at: usize },
    /// Stops forwarding anything, both ways, keeping the connections open.
    Blackhole { at: usize },
}

/// A running proxy; it stops accepting when dropped.
pub struct Proxy {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Forwards connections to `127.0.0.1:target`, applying `fault` on the first.
pub fn start_proxy(target: u16, fault: ProxyFault) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, stopped) = (connections.clone(), stop.clone());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
            let first = count.fetch_add(1, Ordering::SeqCst) == 0;
            let hole = Arc::new(AtomicBool::new(false));
            let (c2, s2, hole2) = (client.try_clone().unwrap(), server.try_clone().unwrap(), hole.clone());
            // Server to client: untouched but for a blackhole.
            std::thread::spawn(move || pump_raw(s2, c2, hole2));
            let fault = first.then_some(fault);
            std::thread::spawn(move || pump_records(client, server, fault, hole));
        }
    });
    Proxy { port, connections, stop }
}

fn pump_raw(mut from: TcpStream, mut to: TcpStream, hole: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if hole.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

fn pump_records(mut from: TcpStream, mut to: TcpStream, fault: Option<ProxyFault>, hole: Arc<AtomicBool>) {
    // An encrypted connection opens with one byte, the cipher offer; records follow.
    let mut offer = [0u8];
    if from.read_exact(&mut offer).is_err() || to.write_all(&offer).is_err() {
        return;
    }
    let mut index = 0;
    loop {
        let mut len = [0u8; 2];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let mut record = vec![0u8; u16::from_be_bytes(len) as usize];
        if from.read_exact(&mut record).is_err() {
            break;
        }
        let mut times = 1;
        match fault {
            Some(ProxyFault::Flip { at }) if at == index && !record.is_empty() => {
                let middle = record.len() / 2;
                record[middle] ^= 0x40;
            }
            Some(ProxyFault::Replay { at }) if at == index => times = 2,
            Some(ProxyFault::Cut { at }) if at == index => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
            Some(ProxyFault::Blackhole { at }) if at == index => hole.store(true, Ordering::SeqCst),
            _ => {}
        }
        index += 1;
        if hole.load(Ordering::SeqCst) {
            continue;
        }
        for _ in 0..times {
            if to.write_all(&len).and_then(|_| to.write_all(&record)).is_err() {
                return;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    std::thread::sleep(Duration::from_millis(1));
}
