//! The Net adapter across real processes: three nodes, each its own OS process, in a triangle
//! on loopback, all ingesting at once. Two are killed with SIGKILL mid-ingest and restarted: B,
//! a Memory node (it comes back as a new origin), and C, a durable node (`disk`: it comes back
//! as the same origin, with its log, and its peers resume where it had stored up to instead of
//! sending everything again). The link between A and C runs through a fault-injecting proxy
//! (`common/link.rs`) that delays, drops records, cuts and blackholes the connection, then
//! heals. Afterwards every event a process counted accepted (a `flush` returned `Ok` after it)
//! is on every node exactly once, each origin's events in order per shard, and all nodes hold
//! the same events.
//!
//! ```text
//!        A ◄──── link (faults) ──── C (durable)
//!        ▲                          │
//!        └────── B ◄────────────────┘     B dials A, C dials A (through the link) and B
//! ```
//!
//! A `harness = false` test: the same binary is a node when `PURPLE_RAIN_NET_NODE` is set. A
//! node reports on stdout (`ready ID RETAINED`, `acked N` after each successful flush, `done N`,
//! `dumped N RECEIVED`) and obeys stdin (`stop`, `dump PATH`); it exits when stdin closes, so
//! nothing outlives the test. Every wait is on a reported condition with a deadline; nothing
//! sleeps and hopes. Bounded: 10 to 20 s in a debug build on a loaded 2-core machine.

mod common;

use common::link::{start_link, Link};
use common::{block, drain, free_port};
use purple_rain::adapter::NetAdapter;
use purple_rain::{
    AdapterConfig, BackpressureMode, ConsumeRequest, EventBus, EventBusConfig, NetAdapterConfig, RawEvent,
};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODE_ENV: &str = "PURPLE_RAIN_NET_NODE";
/// Events ingested between flushes.
const CHUNK: u64 = 50;
/// The longest any one condition of the scenario may take to come true.
const DEADLINE: Duration = Duration::from_secs(60);

/// What a node process is told through its environment.
#[derive(Clone, Debug)]
struct Spec {
    /// `a`, `b` or `c`.
    name: char,
    /// How many times this node was started before (its payloads carry it).
    run: u32,
    listen: u16,
    peers: Vec<u16>,
    key: String,
    /// Peers to be connected to before ingesting, so that the first flush already waits for
    /// their acknowledgement.
    wait_peers: usize,
    /// A durable node's log directory (`NetAdapterConfig::disk`); `None`: the Memory log.
    dir: Option<PathBuf>,
}

/// A payload: `name/run index` and padding, about 80 bytes.
fn payload(name: char, run: u32, index: u64) -> Vec<u8> {
    format!("{name}/{run} {index} {}", "x".repeat(64)).into_bytes()
}

// ---- the node process ---------------------------------------------------------------------

fn node_main(spec: Spec) {
    // The triangle is fixed: A and C must stay linked through the faulty link, not learn each
    // other's listen address from B and link directly around it.
    let mut config =
        NetAdapterConfig::default().listen(format!("127.0.0.1:{}", spec.listen)).key(&spec.key).learn_peers(false);
    for peer in &spec.peers {
        config = config.peer(format!("127.0.0.1:{peer}"));
    }
    if let Some(dir) = &spec.dir {
        config = config.disk(AdapterConfig::disk(dir));
    }
    let net = Arc::new(NetAdapter::new(config.clone()).unwrap());
    let bus_config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1 << 14)
        .backpressure(BackpressureMode::Block)
        .adapter(config)
        .build()
        .unwrap();
    let adapter = net.clone();
    let bus = Arc::new(block(async move { EventBus::with_adapter(bus_config, adapter).await }).unwrap());
    say(&format!("ready {:016x} {}", net.node_id(), net.retained()));
    let stop = Arc::new(AtomicBool::new(false));
    let ingest = {
        let (bus, stop, net) = (bus.clone(), stop.clone(), net.clone());
        std::thread::spawn(move || ingest(&spec, &bus, &net, &stop))
    };
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("stop"), _) => stop.store(true, Ordering::SeqCst),
            (Some("dump"), Some(path)) => dump(&bus, Path::new(path)),
            _ => panic!("unknown command {line:?}"),
        }
    }
    // Stdin closed: the test is over (or gone).
    stop.store(true, Ordering::SeqCst);
    let _ = ingest.join();
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Ingests chunks of events, each followed by a flush, until told to stop; reports what every
/// successful flush covers. A flush that fails (a peer too slow to acknowledge) is retried by
/// the next one, which covers everything before it.
fn ingest(spec: &Spec, bus: &Arc<EventBus>, net: &NetAdapter, stop: &AtomicBool) {
    let deadline = Instant::now() + DEADLINE;
    while net.connected_peers() < spec.wait_peers {
        assert!(Instant::now() < deadline, "{}: peers never connected", spec.name);
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut next = 0;
    while !stop.load(Ordering::SeqCst) {
        for _ in 0..CHUNK {
            bus.ingest_raw(RawEvent::from_bytes(payload(spec.name, spec.run, next))).unwrap();
            next += 1;
        }
        let flushing = bus.clone();
        if block(async move { flushing.flush().await }).is_ok() {
            say(&format!("acked {next}"));
        }
        // Pacing, so that a few seconds of faults see a few thousand events, not millions.
        std::thread::sleep(Duration::from_millis(5));
    }
    loop {
        let flushing = bus.clone();
        if block(async move { flushing.flush().await }).is_ok() {
            break;
        }
    }
    say(&format!("done {next}"));
}

/// Writes every event the node holds, in poll order, one `origin shard name/run index` line each.
fn dump(bus: &Arc<EventBus>, path: &Path) {
    let polled = bus.clone();
    let events = block(async move { drain(&polled, ConsumeRequest::new(10_000)).await }).events;
    let mut text = String::with_capacity(events.len() * 32);
    for e in &events {
        let payload = std::str::from_utf8(&e.payload).unwrap();
        let mut words = payload.split(' ');
        let (source, index) = (words.next().unwrap(), words.next().unwrap());
        text.push_str(&format!("{:016x} {} {source} {index}\n", e.origin, e.shard));
    }
    std::fs::write(path, text).unwrap();
    let metrics = bus.stats().adapter_metrics();
    let received: f64 = metrics.iter().filter(|m| m.name == "net_peer_received_events_total").map(|m| m.value).sum();
    say(&format!("dumped {} {received}", events.len()));
}

// ---- the test -----------------------------------------------------------------------------

/// A node process as the test sees it.
struct Node {
    spec: Spec,
    process: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    origin: Option<u64>,
    /// Events its log held when it started (a durable node's, after a restart).
    retained_at_open: u64,
    /// Events received from its connected peers (duplicates included), at the last dump.
    received: u64,
    /// Events covered by its last successful flush.
    acked: u64,
    /// Events ingested and flushed once told to stop.
    done: Option<u64>,
    dumped: Option<u64>,
    exited: bool,
}

impl Node {
    fn start(spec: Spec) -> Self {
        let (process, stdin, lines) = common::process::spawn_piped(
            Command::new(std::env::current_exe().unwrap())
                .env(NODE_ENV, "1")
                .env("NODE_NAME", spec.name.to_string())
                .env("NODE_RUN", spec.run.to_string())
                .env("NODE_LISTEN", spec.listen.to_string())
                .env("NODE_PEERS", spec.peers.iter().map(u16::to_string).collect::<Vec<_>>().join(","))
                .env("NODE_KEY", &spec.key)
                .env("NODE_WAIT_PEERS", spec.wait_peers.to_string())
                .env("NODE_DIR", spec.dir.as_deref().unwrap_or(Path::new(""))),
        );
        Self {
            spec,
            process,
            stdin: Some(stdin),
            lines,
            origin: None,
            retained_at_open: 0,
            received: 0,
            acked: 0,
            done: None,
            dumped: None,
            exited: false,
        }
    }

    fn label(&self) -> String {
        format!("{}/{}", self.spec.name, self.spec.run)
    }

    /// Takes in what the process reported since the last call.
    fn update(&mut self) {
        loop {
            let line = match self.lines.try_recv() {
                Ok(line) => line,
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.exited = true;
                    return;
                }
            };
            let (word, value) = line.split_once(' ').unwrap_or((&line, ""));
            match word {
                "ready" => {
                    let (origin, retained) = value.split_once(' ').unwrap();
                    self.origin = Some(u64::from_str_radix(origin, 16).unwrap());
                    self.retained_at_open = retained.parse().unwrap();
                }
                "acked" => self.acked = value.parse().unwrap(),
                "done" => self.done = Some(value.parse().unwrap()),
                "dumped" => {
                    let (count, received) = value.split_once(' ').unwrap();
                    self.dumped = Some(count.parse().unwrap());
                    self.received = received.parse::<f64>().unwrap() as u64;
                }
                _ => panic!("{}: unexpected line {line:?}", self.label()),
            }
        }
    }

    fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).unwrap();
    }

    /// SIGKILL; returns what it had acknowledged.
    fn kill(&mut self) -> u64 {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
        // The reader thread ends at end of stream: everything reported before the kill.
        while !self.exited {
            self.update();
            std::thread::sleep(Duration::from_millis(1));
        }
        self.acked
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Waits until `condition` holds over the nodes' reports, failing after [`DEADLINE`] or when a
/// node exits on its own.
fn wait(nodes: &mut [&mut Node], what: &str, condition: impl Fn(&[&mut Node]) -> bool) {
    eprintln!("net processes: waiting for {what}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        for node in nodes.iter_mut() {
            node.update();
            assert!(!node.exited, "{} exited while waiting for: {what}", node.label());
        }
        if condition(nodes) {
            return;
        }
        let state: Vec<String> = nodes.iter().map(|n| format!("{} acked {}", n.label(), n.acked)).collect();
        assert!(Instant::now() < deadline, "never happened within {DEADLINE:?}: {what} ({state:?})");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until every node has made `more` events' progress past where it is now.
fn progress(nodes: &mut [&mut Node], more: u64, what: &str) {
    let targets: Vec<u64> = nodes
        .iter_mut()
        .map(|n| {
            n.update();
            n.acked + more
        })
        .collect();
    wait(nodes, what, |nodes| nodes.iter().zip(&targets).all(|(n, &t)| n.acked >= t));
}

/// Waits until the link has accepted `more` connections past its count now: the nodes noticed
/// the broken connection and redialed.
fn redialed(link: &Link, nodes: &mut [&mut Node], more: usize, what: &str) {
    let target = link.connections.load(Ordering::SeqCst) + more;
    wait(nodes, what, |_| link.connections.load(Ordering::SeqCst) >= target);
}

/// One line of a dump.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Held {
    name: char,
    run: u32,
    index: u64,
}

/// What one node holds: each event once, each origin shard in order.
fn read_dump(node: &mut Node, path: &Path) -> (HashSet<Held>, HashMap<(char, u32), u64>) {
    node.dumped = None;
    node.command(&format!("dump {}", path.display()));
    wait(&mut [&mut *node], "a dump", |n| n[0].dumped.is_some());
    let text = std::fs::read_to_string(path).unwrap();
    let (mut held, mut origins) = (HashSet::new(), HashMap::new());
    let mut last: HashMap<(u64, u16), (u32, u64)> = HashMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let (origin, shard) = (u64::from_str_radix(words[0], 16).unwrap(), words[1].parse::<u16>().unwrap());
        let (name, run) = words[2].split_once('/').unwrap();
        let event =
            Held { name: name.chars().next().unwrap(), run: run.parse().unwrap(), index: words[3].parse().unwrap() };
        assert!(held.insert(event), "{} holds {event:?} twice", node.label());
        let known = *origins.entry((event.name, event.run)).or_insert(origin);
        assert_eq!(known, origin, "{}: {event:?} with two origins", node.label());
        if let Some(before) = last.insert((origin, shard), (event.run, event.index)) {
            assert!(
                before < (event.run, event.index),
                "{}: origin {origin:x} shard {shard}: {event:?} after {before:?}",
                node.label()
            );
        }
    }
    (held, origins)
}

fn scenario() {
    let started = Instant::now();
    let key = NetAdapterConfig::generate_key();
    let (a_port, b_port, c_port) = (free_port(), free_port(), free_port());
    let link = start_link(a_port);
    let c_dir = tempfile::tempdir().unwrap();
    let spec = |name, listen, peers: Vec<u16>, dir: Option<&Path>| Spec {
        name,
        run: 0,
        listen,
        peers,
        key: key.clone(),
        wait_peers: 2,
        dir: dir.map(Path::to_owned),
    };
    let mut a = Node::start(spec('a', a_port, vec![], None));
    let mut b = Node::start(spec('b', b_port, vec![a_port], None));
    let mut c = Node::start(spec('c', c_port, vec![link.port, b_port], Some(c_dir.path())));
    progress(&mut [&mut a, &mut b, &mut c], 1000, "every node ingesting, the mesh connected");

    // Delay A–C, then drop a record on it: the receiver closes the connection, C redials.
    link.delay(Duration::from_millis(20));
    progress(&mut [&mut a, &mut b, &mut c], 500, "progress over a delayed link");
    link.drop_records(1);
    redialed(&link, &mut [&mut a, &mut b, &mut c], 1, "C redials A after a dropped record");
    link.delay(Duration::ZERO);

    // SIGKILL B mid-ingest and restart it: a new process, a new origin (the Memory store).
    progress(&mut [&mut b], 500, "B ingesting");
    let b_acked = b.kill();
    let mut b = Node::start(Spec { run: 1, ..b.spec.clone() });
    progress(&mut [&mut a, &mut b, &mut c], 500, "everyone ingesting after B's restart");

    // SIGKILL C, the durable node, and restart it on its directory: the same origin, its log
    // kept, its peers resuming where it had stored up to. What it received since (duplicates
    // included) is measured at once: a replay of its two peers' whole logs would be about
    // twice what it holds; resuming, it is about twice what was ingested since.
    progress(&mut [&mut c], 300, "C ingesting");
    let c_acked = c.kill();
    let mut c = Node::start(Spec { run: 1, ..c.spec.clone() });
    progress(&mut [&mut a, &mut b, &mut c], 300, "everyone ingesting after C's restart");
    let scratch = tempfile::tempdir().unwrap();
    let (c_held, _) = read_dump(&mut c, &scratch.path().join("c.dump"));
    let c_resumed = (c.retained_at_open, c.received, c_held.len());
    assert!(c.retained_at_open >= c_acked, "C's log kept {} events of its {c_acked} acknowledged", c.retained_at_open);
    assert!(
        c.received < c_held.len() as u64,
        "C received {} events after its restart, holding {} ({} kept): its peers did not resume",
        c.received,
        c_held.len(),
        c.retained_at_open
    );

    // Cut A–C, then blackhole it until both sides noticed and C redialed into the hole.
    link.cut();
    redialed(&link, &mut [&mut a, &mut b, &mut c], 1, "C redials A after the cut");
    progress(&mut [&mut a, &mut c], 200, "progress after the cut");
    link.blackhole(true);
    redialed(&link, &mut [&mut a, &mut b, &mut c], 1, "C abandons the blackholed connection and redials");
    progress(&mut [&mut a, &mut b, &mut c], 200, "progress during the blackhole");
    link.heal();

    for node in [&mut a, &mut b, &mut c] {
        node.command("stop");
    }
    wait(&mut [&mut a, &mut b, &mut c], "every node's final flush", |n| n.iter().all(|n| n.done.is_some()));
    let mut accepted: Vec<((char, u32), u64)> = vec![(('b', 0), b_acked), (('c', 0), c_acked)];
    accepted.extend([&a, &b, &c].iter().map(|n| ((n.spec.name, n.spec.run), n.done.unwrap())));

    // Converged: every node holds every accepted event, and all hold the same events.
    let dir = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + DEADLINE;
    let (held, origins) = loop {
        let dumps: Vec<_> = [&mut a, &mut b, &mut c]
            .into_iter()
            .map(|n| {
                let path: PathBuf = dir.path().join(format!("{}{}.dump", n.spec.name, n.spec.run));
                read_dump(n, &path)
            })
            .collect();
        let complete = dumps.iter().all(|(held, _)| {
            accepted
                .iter()
                .all(|&((name, run), count)| (0..count).all(|index| held.contains(&Held { name, run, index })))
        });
        if complete && dumps.iter().all(|d| d.0 == dumps[0].0) {
            for d in &dumps[1..] {
                assert_eq!(d.1, dumps[0].1, "the nodes disagree on origins");
            }
            break dumps.into_iter().next().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the nodes never converged: {:?}",
            dumps.iter().map(|d| d.0.len()).collect::<Vec<_>>()
        );
    };
    assert_ne!(origins[&('b', 0)], origins[&('b', 1)], "a restarted Memory node is a new origin");
    assert_eq!(Some(origins[&('a', 0)]), a.origin);
    assert_eq!(origins[&('c', 0)], origins[&('c', 1)], "a restarted durable node is the same origin");

    println!(
        "net processes: {} events on each of 3 nodes ({:?} accepted), B killed at {b_acked}, C at {c_acked} \
         (kept, received, held after its restart: {c_resumed:?}), {} link connections, {} records dropped, in {:.1}s",
        held.len(),
        accepted,
        link.connections.load(Ordering::SeqCst),
        link.dropped(),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    if std::env::var_os(NODE_ENV).is_some() {
        let var = |name: &str| std::env::var(name).unwrap();
        let peers = var("NODE_PEERS");
        node_main(Spec {
            name: var("NODE_NAME").chars().next().unwrap(),
            run: var("NODE_RUN").parse().unwrap(),
            listen: var("NODE_LISTEN").parse().unwrap(),
            peers: peers.split(',').filter(|p| !p.is_empty()).map(|p| p.parse().unwrap()).collect(),
            key: var("NODE_KEY"),
            wait_peers: var("NODE_WAIT_PEERS").parse().unwrap(),
            dir: Some(PathBuf::from(var("NODE_DIR"))).filter(|d| !d.as_os_str().is_empty()),
        });
        return;
    }
    scenario();
}
