//! Who this node is connected to, whom it dials, and how it learns the rest of the mesh.
//!
//! - **Dials**: a loop per address, configured (`peers`) or learned, that connects, runs the
//!   session, and redials with backoff when it ends.
//! - **Learning**: each connection sends `Peers` (`frame.rs`) after `Resume` and whenever the
//!   sender's connections change: its own listen address and those of the nodes it is connected
//!   to. A receiver dials every address of a node it is not connected to (never its own), so a
//!   node configured with one peer ends up connected to every node that listens, and a line
//!   A–B–C becomes a triangle that survives B. A listen address whose host is unspecified
//!   (`0.0.0.0`) or loopback is told as the address the connection came from, with the listen
//!   port. A learned dial is dropped once its address has had no connection up for
//!   `forget_learned_after_ms` (a member that left for good; a peer that tells of it again has
//!   it dialed again), and at most [`MAX_LEARNED`] are kept.
//! - **One link per pair of nodes**: two nodes that dial each other at once would hold two
//!   connections. When a second connection to a node completes its `Hello`, both ends keep the
//!   same one: the newer if both were dialed by the same node (the older is a dead link not yet
//!   noticed, or a second address of the node), else the one the lower node id dialed. The
//!   other is closed; a dial loop whose connection lost waits until the node is disconnected
//!   before dialing again. Each connection's reader checks positions against its own `Resume`,
//!   so the short overlap while the loser closes stores nothing twice and breaks nothing.

use super::peer::{self, Peer, SessionError};
use super::Shared;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Learned addresses kept at most (beyond it, more are ignored).
pub const MAX_LEARNED: usize = 256;
/// Reconnect backoff: first delay and cap.
pub(super) const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A peer address and how dialing it went.
#[derive(Debug)]
pub(super) struct Dial {
    pub addr: String,
    /// Learned from a peer's `Peers`, not configured.
    pub learned: bool,
    pub connected: AtomicBool,
    pub reconnects: AtomicU64,
    /// When a connection to the address was last up (or, before any, when the dial began).
    last_up: Mutex<Instant>,
}

impl Dial {
    pub fn new(addr: String, learned: bool) -> Self {
        Self {
            addr,
            learned,
            connected: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            last_up: Mutex::new(Instant::now()),
        }
    }

    /// How long the address has had no connection up (zero while one is).
    fn down_for(&self) -> Duration {
        if self.connected.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        self.last_up.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

/// The address to dial a peer at, from the listen address it told (`listen`) and the IP its
/// connection comes from: an unspecified or loopback host means "the address you reach me on".
/// `None` when the peer does not listen or told something that is not `host:port`.
pub(super) fn dialable(listen: &str, remote_ip: Option<IpAddr>) -> Option<String> {
    let (host, port) = listen.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() || port == 0 {
        return None;
    }
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>();
    match (ip, remote_ip) {
        (Ok(ip), Some(remote)) if ip.is_unspecified() || ip.is_loopback() => {
            Some(SocketAddr::new(remote, port).to_string())
        }
        (Ok(ip), None) if ip.is_unspecified() => None,
        _ => Some(listen.to_owned()),
    }
}

/// Whether a new connection to a node replaces the one this node already has with it. Both
/// ends decide alike: the dialer of a connection is the same node seen from either end.
pub(super) fn replaces(this_node: u64, new: &Peer, existing: &Peer) -> bool {
    let dialer = |p: &Peer| if p.initiator { this_node } else { p.node };
    dialer(new) == dialer(existing) || dialer(new) == this_node.min(new.node)
}

impl Shared {
    /// Registers a connection that said `Hello`, or refuses it when the link to that node is
    /// kept elsewhere (see the module doc); a replaced connection is told to close.
    pub(super) fn connected(&self, peer: Arc<Peer>) -> Result<(), SessionError> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = peers.iter().position(|p| p.node == peer.node) {
            if !replaces(self.node, &peer, &peers[at]) {
                return Err(SessionError::Duplicate(peer.node));
            }
            let old = peers.swap_remove(at);
            old.close.cancel();
            self.set_dial(&old.addr, false);
        }
        peers.push(peer.clone());
        drop(peers);
        self.set_dial(&peer.addr, true);
        self.membership_changed();
        Ok(())
    }

    /// Forgets a connection that ended (nothing if it was replaced).
    pub(super) fn disconnected(&self, peer: &Arc<Peer>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let before = peers.len();
        peers.retain(|p| !Arc::ptr_eq(p, peer));
        let removed = peers.len() < before;
        drop(peers);
        if removed {
            self.set_dial(&peer.addr, false);
        }
        self.membership_changed();
    }

    /// Wakes `flush` (a peer less to wait for) and the writers (a `Peers` to send).
    pub(super) fn membership_changed(&self) {
        self.acks.send_modify(|n| *n += 1);
        self.members.send_modify(|n| *n += 1);
    }

    fn set_dial(&self, addr: &str, connected: bool) {
        let dials = self.dials.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dial) = dials.iter().find(|d| d.addr == addr) {
            // Connected or just disconnected: up until now either way.
            *dial.last_up.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            dial.connected.store(connected, Ordering::Relaxed);
        }
    }

    /// Whether a connection to `node` is up.
    pub(super) fn is_connected(&self, node: u64) -> bool {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|p| p.node == node)
    }

    /// What this node tells `to` in `Peers`: its listen address and its other peers'.
    pub(super) fn peers_message(&self, to: u64) -> (String, Vec<(u64, String)>) {
        let listen = self.local_addr.get().map(|a| a.to_string()).unwrap_or_default();
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let known = peers
            .iter()
            .filter(|p| p.node != to)
            .filter_map(|p| Some((p.node, p.listen.lock().unwrap_or_else(|e| e.into_inner()).clone()?)))
            .collect();
        (listen, known)
    }

    /// Takes in a `Peers` from `from`: where it listens, and the peers it knows, dialing those
    /// this node is not connected to.
    pub(super) fn learn(self: &Arc<Self>, from: &Peer, listen: &str, peers: Vec<(u64, String)>) {
        let reachable = dialable(listen, from.remote_ip);
        let mut known = from.listen.lock().unwrap_or_else(|e| e.into_inner());
        if *known != reachable {
            *known = reachable;
            drop(known);
            // The other peers learn where `from` listens.
            self.members.send_modify(|n| *n += 1);
        }
        if !self.config.learn_peers {
            return;
        }
        for (node, addr) in peers {
            if node == self.node || node == 0 || self.is_connected(node) || self.stop.is_cancelled() {
                continue;
            }
            let mut dials = self.dials.lock().unwrap_or_else(|e| e.into_inner());
            let learned = dials.iter().filter(|d| d.learned).count();
            if learned >= MAX_LEARNED || dials.iter().any(|d| d.addr == addr) {
                continue;
            }
            let dial = Arc::new(Dial::new(addr, true));
            dials.push(dial.clone());
            drop(dials);
            tokio::spawn(dial_loop(self.clone(), dial));
        }
    }

    /// Drops `dial` if it is a learned one whose address has had no connection up for
    /// `forget_learned_after_ms`; whether it did.
    fn forget_if_gone(&self, dial: &Arc<Dial>) -> bool {
        let after = self.config.forget_learned_after_ms;
        if !dial.learned || after == 0 || dial.down_for() < Duration::from_millis(after) {
            return false;
        }
        self.dials.lock().unwrap_or_else(|e| e.into_inner()).retain(|d| !Arc::ptr_eq(d, dial));
        self.forgotten_peers.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Learned addresses, for stats.
    pub(super) fn learned(&self) -> Vec<String> {
        let dials = self.dials.lock().unwrap_or_else(|e| e.into_inner());
        dials.iter().filter(|d| d.learned).map(|d| d.addr.clone()).collect()
    }

    /// Waits until no connection to `node` is up, or the adapter stops (`false`).
    async fn until_disconnected(&self, node: u64) -> bool {
        let mut changed = self.members.subscribe();
        loop {
            changed.borrow_and_update();
            if !self.is_connected(node) {
                return true;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return false,
                _ = changed.changed() => {}
            }
        }
    }
}

/// Dials `dial.addr` until the adapter stops (or, for a learned address, until it is forgotten):
/// a session at a time, backing off between failures, standing by while the node is linked
/// through another connection.
pub(super) async fn dial_loop(shared: Arc<Shared>, dial: Arc<Dial>) {
    let mut delay = BACKOFF.0;
    loop {
        let started = Instant::now();
        let session = async {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&dial.addr)).await {
                Ok(Ok(stream)) => peer::run(shared.clone(), stream, dial.addr.clone(), true).await,
                Ok(Err(e)) => SessionError::Io(e),
                Err(_) => SessionError::Io(std::io::ErrorKind::TimedOut.into()),
            }
        };
        let ended = tokio::select! {
            _ = shared.stop.cancelled() => return,
            ended = session => ended,
        };
        match ended {
            SessionError::SelfConnection => return,
            SessionError::Duplicate(node) => {
                if !shared.until_disconnected(node).await {
                    return;
                }
                delay = BACKOFF.0;
                continue;
            }
            _ => {}
        }
        if shared.forget_if_gone(&dial) {
            return;
        }
        dial.reconnects.fetch_add(1, Ordering::Relaxed);
        // A connection that lasted resets the backoff; quick failures double it.
        delay = if started.elapsed() > BACKOFF.1 { BACKOFF.0 } else { (delay * 2).min(BACKOFF.1) };
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_address_is_told_as_reachable() {
        let from = Some("10.0.0.5".parse().unwrap());
        assert_eq!(dialable("0.0.0.0:7777", from).as_deref(), Some("10.0.0.5:7777"));
        assert_eq!(dialable("127.0.0.1:7777", from).as_deref(), Some("10.0.0.5:7777"));
        assert_eq!(dialable("[::]:7777", from).as_deref(), Some("10.0.0.5:7777"));
        assert_eq!(dialable("10.0.0.9:7777", from).as_deref(), Some("10.0.0.9:7777"));
        assert_eq!(dialable("node-a.local:7777", from).as_deref(), Some("node-a.local:7777"));
        assert_eq!(dialable("127.0.0.1:7777", None).as_deref(), Some("127.0.0.1:7777"));
        for nothing in ["", "7777", "host:", ":7777", "0.0.0.0:0", "host:99999"] {
            assert_eq!(dialable(nothing, from), None, "{nothing:?}");
        }
        assert_eq!(dialable("0.0.0.0:7777", None), None);
    }

    #[test]
    fn both_ends_keep_the_same_connection() {
        let peer = |node: u64, initiator: bool| Peer::new("x".into(), node, initiator, None, None);
        // Seen from node 1 (lower) and from node 2, for connections dialed by 1 and by 2.
        let (by_1_at_1, by_2_at_1) = (peer(2, true), peer(2, false));
        let (by_1_at_2, by_2_at_2) = (peer(1, false), peer(1, true));
        // Whichever arrived first, both ends keep the one node 1 dialed.
        assert!(replaces(1, &by_1_at_1, &by_2_at_1));
        assert!(!replaces(1, &by_2_at_1, &by_1_at_1));
        assert!(replaces(2, &by_1_at_2, &by_2_at_2));
        assert!(!replaces(2, &by_2_at_2, &by_1_at_2));
        // The same dialer again: the newer one.
        assert!(replaces(1, &peer(2, true), &by_1_at_1));
        assert!(replaces(2, &peer(1, false), &by_1_at_2));
    }
}
