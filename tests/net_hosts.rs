//! The Net adapter between hosts with addresses of their own: three network namespaces, each a
//! host on its own subnet behind a router namespace, each running one node process that listens
//! on `0.0.0.0:7777`, the same port everywhere, as nodes on separate machines would.
//!
//! ```text
//!   A 10.213.1.2 ──┐                    B 10.213.2.2 (peers: none)
//!                  ├── router ──────────┤
//!   C 10.213.3.2 ──┘                    A and C peer with B only
//! ```
//!
//! What loopback cannot show: A and C are told each other's listen address by B as
//! `0.0.0.0:7777`, and must dial the address each one's connection to B came from
//! (`membership::dialable`); then they link directly, and when B's process is killed, what A
//! ingests still reaches C, exactly once.
//!
//! A `harness = false` test: the binary is a node when `PURPLE_RAIN_NET_HOST` is set. It needs
//! root and iproute2 (`ip netns`); without them it says so and passes without running, which
//! only a machine that cannot make namespaces does (CI's can). A node reports on stdout (`ready
//! ID`, `status HELD PEERS LEARNED`, `flushed N`, `held N DISTINCT`) and obeys stdin (`status`,
//! `ingest N`, `count`); it exits when stdin closes. Every wait is on a reported condition with a
//! deadline.

mod common;

use common::block;
use purple_rain::adapter::NetAdapter;
use purple_rain::{BackpressureMode, ConsumeRequest, EventBus, EventBusConfig, NetAdapterConfig, RawEvent};
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODE_ENV: &str = "PURPLE_RAIN_NET_HOST";
const PORT: u16 = 7777;
const DEADLINE: Duration = Duration::from_secs(60);

// ---- the node process ---------------------------------------------------------------------

fn node_main(name: String, peer: Option<String>, key: String) {
    let mut config = NetAdapterConfig::default().listen(format!("0.0.0.0:{PORT}")).key(key);
    if let Some(peer) = peer {
        config = config.peer(peer);
    }
    let net = Arc::new(NetAdapter::new(config.clone()).unwrap());
    let bus_config =
        EventBusConfig::builder().shards(4).backpressure(BackpressureMode::Block).adapter(config).build().unwrap();
    let adapter = net.clone();
    let bus = Arc::new(block(async move { EventBus::with_adapter(bus_config, adapter).await }).unwrap());
    say(&format!("ready {:016x}", net.node_id()));
    let mut ingested = 0u64;
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["status"] => {
                let peers: Vec<String> = net.connected_nodes().iter().map(|id| format!("{id:016x}")).collect();
                say(&format!("status {} {} {}", net.retained(), peers.join(","), net.learned_peers().join(",")));
            }
            ["ingest", n] => {
                let n: u64 = n.parse().unwrap();
                for index in ingested..ingested + n {
                    bus.ingest_raw(RawEvent::from_bytes(format!("{name} {index}"))).unwrap();
                }
                ingested += n;
                // A flush waits for every connected peer's acknowledgement; one that fails (a
                // peer going away meanwhile) is retried, and covers everything before it.
                let deadline = Instant::now() + DEADLINE;
                loop {
                    let flushing = bus.clone();
                    match block(async move { flushing.flush().await }) {
                        Ok(()) => break,
                        Err(e) => assert!(Instant::now() < deadline, "{name} cannot flush: {e}"),
                    }
                }
                say(&format!("flushed {ingested}"));
            }
            ["count"] => {
                let reading = bus.clone();
                let payloads = block(async move {
                    let (mut cursor, mut payloads) = (String::new(), Vec::new());
                    loop {
                        let page = reading.poll(ConsumeRequest::new(10_000).from(cursor)).await.unwrap();
                        payloads.extend(page.events.iter().map(|e| e.payload.to_vec()));
                        cursor = page.cursor;
                        if !page.has_more {
                            return payloads;
                        }
                    }
                });
                let distinct = payloads.iter().collect::<HashSet<_>>().len();
                say(&format!("held {} {distinct}", payloads.len()));
            }
            _ => panic!("unknown command {line:?}"),
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

// ---- the hosts ----------------------------------------------------------------------------

/// Three host namespaces and a router namespace, removed on drop.
struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    /// Host `i` (1-based) is `10.213.i.2/24`, its router side `10.213.i.1`. `None` when network
    /// namespaces cannot be made here.
    fn make() -> Option<Self> {
        let tag = std::process::id() % 100_000;
        let router = format!("prh{tag}-r");
        ip(&["netns", "add", &router]).ok()?;
        let mut hosts = Self { names: vec![router.clone()] };
        let steps = |i: usize, host: &str| -> Vec<Vec<String>> {
            let s = |v: &[&str]| v.iter().map(|w| w.to_string()).collect::<Vec<_>>();
            let (me, gateway, side) = (format!("10.213.{i}.2/24"), format!("10.213.{i}.1"), format!("v{i}"));
            vec![
                s(&[
                    "link", "add", "name", "eth0", "netns", host, "type", "veth", "peer", "name", &side, "netns",
                    &router,
                ]),
                s(&["-n", host, "addr", "add", &me, "dev", "eth0"]),
                s(&["-n", host, "link", "set", "eth0", "up"]),
                s(&["-n", host, "link", "set", "lo", "up"]),
                s(&["-n", &router, "addr", "add", &format!("{gateway}/24"), "dev", &side]),
                s(&["-n", &router, "link", "set", &side, "up"]),
                s(&["-n", host, "route", "add", "default", "via", &gateway]),
            ]
        };
        for i in 1..=3 {
            let host = format!("prh{tag}-{i}");
            ip(&["netns", "add", &host]).expect("ip netns add");
            hosts.names.push(host.clone());
            for step in steps(i, &host) {
                let words: Vec<&str> = step.iter().map(String::as_str).collect();
                ip(&words).unwrap_or_else(|e| panic!("ip {}: {e}", words.join(" ")));
            }
        }
        let forwarding = Command::new("ip")
            .args(["netns", "exec", &router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
            .status();
        assert!(forwarding.is_ok_and(|s| s.success()), "cannot turn forwarding on in the router");
        Some(hosts)
    }

    fn host(&self, i: usize) -> &str {
        &self.names[i]
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

// ---- the nodes as the test sees them -------------------------------------------------------

struct Node {
    name: &'static str,
    process: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    id: String,
}

impl Node {
    fn start(hosts: &Hosts, host: usize, name: &'static str, peer: Option<&str>, key: &str) -> Self {
        let (process, stdin, lines) = common::process::spawn_piped(
            Command::new("ip")
                .args(["netns", "exec", hosts.host(host)])
                .arg(std::env::current_exe().unwrap())
                .env(NODE_ENV, name)
                .env("NODE_PEER", peer.unwrap_or(""))
                .env("NODE_KEY", key),
        );
        let mut node = Self { name, process, stdin: Some(stdin), lines, id: String::new() };
        let ready = node.next_line("ready");
        node.id = ready[1].clone();
        node
    }

    fn tell(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("the node was stopped");
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line the node reports that starts with `word`, split in words.
    fn next_line(&mut self, word: &str) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("{} never said {word}", self.name));
            let words: Vec<String> = line.split(' ').map(str::to_string).collect();
            if words[0] == word {
                return words;
            }
        }
    }

    /// (events held, connected node ids, learned addresses).
    fn status(&mut self) -> (u64, Vec<String>, Vec<String>) {
        self.tell("status");
        let words = self.next_line("status");
        let list = |i: usize| {
            words.get(i).map_or(Vec::new(), |w| w.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
        };
        (words[1].parse().unwrap(), list(2), list(3))
    }

    fn ingest(&mut self, n: u64) {
        self.tell(&format!("ingest {n}"));
        self.next_line("flushed");
    }

    /// (events held, distinct payloads among them).
    fn count(&mut self) -> (u64, u64) {
        self.tell("count");
        let words = self.next_line("held");
        (words[1].parse().unwrap(), words[2].parse().unwrap())
    }

    fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        self.stdin = None;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Asks every node for its status until `condition` holds of them, failing after [`DEADLINE`].
fn wait(nodes: &mut [&mut Node], what: &str, condition: impl Fn(&[(u64, Vec<String>, Vec<String>)]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let statuses: Vec<_> = nodes.iter_mut().map(|n| n.status()).collect();
        if condition(&statuses) {
            return;
        }
        assert!(Instant::now() < deadline, "never happened: {what} ({statuses:?})");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scenario(hosts: &Hosts) {
    let started = Instant::now();
    let key = NetAdapterConfig::generate_key();
    let b_addr = format!("10.213.2.2:{PORT}");
    let mut b = Node::start(hosts, 2, "b", None, &key);
    let mut a = Node::start(hosts, 1, "a", Some(&b_addr), &key);
    let mut c = Node::start(hosts, 3, "c", Some(&b_addr), &key);
    let (a_id, c_id) = (a.id.clone(), c.id.clone());
    // B tells A and C each other's listen address as 0.0.0.0:7777; each dials the address its
    // connection to B came from, and they link directly.
    wait(&mut [&mut a, &mut c], "A and C linked directly", |s| s[0].1.contains(&c_id) && s[1].1.contains(&a_id));
    let (_, _, a_learned) = a.status();
    let (_, _, c_learned) = c.status();
    let learned: Vec<&String> = a_learned.iter().chain(&c_learned).collect();
    assert!(!learned.is_empty(), "neither A nor C dialed a learned address");
    for addr in &learned {
        assert!(
            *addr == &format!("10.213.1.2:{PORT}") || *addr == &format!("10.213.3.2:{PORT}"),
            "learned {addr}: not the other host's own address"
        );
    }
    a.ingest(1000);
    c.ingest(1000);
    b.ingest(500);
    wait(&mut [&mut a, &mut b, &mut c], "every node holds every event", |s| s.iter().all(|(held, ..)| *held == 2500));
    // B's process dies; A and C keep their own link.
    b.kill();
    wait(&mut [&mut a, &mut c], "B gone from A and C", |s| s.iter().all(|(_, peers, _)| peers.len() == 1));
    a.ingest(1000);
    wait(&mut [&mut c], "C holds A's later events", |s| s[0].0 == 3500);
    for node in [&mut a, &mut c] {
        assert_eq!(node.count(), (3500, 3500), "{} holds each event exactly once", node.name);
    }
    println!(
        "net hosts: A and C linked through addresses learned from B ({learned:?}); 3500 events on each after B was \
         killed, in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    if let Ok(name) = std::env::var(NODE_ENV) {
        let peer = std::env::var("NODE_PEER").ok().filter(|p| !p.is_empty());
        node_main(name, peer, std::env::var("NODE_KEY").unwrap());
        return;
    }
    match Hosts::make() {
        Some(hosts) => scenario(&hosts),
        None => println!("net hosts: skipped, this machine cannot make network namespaces (needs root and iproute2)"),
    }
}
