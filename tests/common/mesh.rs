//! Several buses joined by the Net adapter on loopback ports, and the checks a mesh must pass:
//! every node holds every event exactly once, each origin's events in order.

use super::{block, drain, payload};
use purple_rain::adapter::NetAdapter;
use purple_rain::{
    BackpressureMode, ConsumeRequest, EventBus, EventBusConfig, NetAdapterConfig, RawEvent, StoredEvent,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One node: its bus and its adapter (for the node id and counters).
pub struct Node {
    pub bus: Arc<EventBus>,
    pub net: Arc<NetAdapter>,
    pub port: u16,
}

/// The Net config of a node listening on `port` and dialing `peers` on loopback.
pub fn net_config(port: u16, peers: &[u16], key: Option<&str>) -> NetAdapterConfig {
    let mut config = NetAdapterConfig::default().listen(format!("127.0.0.1:{port}"));
    for peer in peers {
        config = config.peer(format!("127.0.0.1:{peer}"));
    }
    match key {
        Some(key) => config.key(key),
        None => config.insecure(true),
    }
}

/// Starts a node with `config`.
pub fn start_node(config: NetAdapterConfig, port: u16) -> Node {
    let net = Arc::new(NetAdapter::new(config.clone()).unwrap());
    let bus_config = EventBusConfig::builder()
        .shards(4)
        .ring_capacity(1 << 16)
        .backpressure(BackpressureMode::Block)
        .adapter(config)
        .build()
        .unwrap();
    let adapter = net.clone();
    let bus = block(async move { EventBus::with_adapter(bus_config, adapter).await }).unwrap();
    Node { bus: Arc::new(bus), net, port }
}

/// `n` nodes on free ports; `(i, j)` in `edges` makes node `i` dial node `j`.
pub fn start_mesh(n: usize, edges: &[(usize, usize)], key: &str) -> Vec<Node> {
    let ports: Vec<u16> = (0..n).map(|_| super::free_port()).collect();
    (0..n)
        .map(|i| {
            let peers: Vec<u16> = edges.iter().filter(|e| e.0 == i).map(|e| ports[e.1]).collect();
            start_node(net_config(ports[i], &peers, Some(key)), ports[i])
        })
        .collect()
}

/// Ingests `count` events on every node at once (source = node index); returns all payloads.
pub fn ingest_everywhere(nodes: &[Node], count: usize) -> HashSet<Vec<u8>> {
    std::thread::scope(|s| {
        for (i, node) in nodes.iter().enumerate() {
            s.spawn(move || {
                for index in 0..count {
                    node.bus.ingest_raw(RawEvent::from_bytes(payload(i, index))).unwrap();
                }
            });
        }
    });
    (0..nodes.len()).flat_map(|i| (0..count).map(move |index| payload(i, index))).collect()
}

/// Polls `bus` from the start until it returned `expected` events or `within` passed.
pub fn poll_until(bus: &Arc<EventBus>, expected: usize, within: Duration) -> Vec<StoredEvent> {
    let bus = bus.clone();
    block(async move {
        let deadline = Instant::now() + within;
        let mut events = Vec::new();
        let mut request = ConsumeRequest::new(10_000).wait(Duration::from_millis(200));
        while events.len() < expected && Instant::now() < deadline {
            let page = drain(&bus, request.clone()).await;
            events.extend(page.events);
            request = request.from(page.cursor);
        }
        events
    })
}

/// The `src` and `i` fields of a test payload.
pub fn source_and_index(event: &StoredEvent) -> (usize, usize) {
    let value: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
    (value["src"].as_str().unwrap().parse().unwrap(), value["i"].as_u64().unwrap() as usize)
}

/// Every node holds `expected` exactly once, each source's events carry its node's id as their
/// origin, and per origin shard the events are in ingest order.
pub fn assert_mesh_complete(nodes: &[Node], expected: &HashSet<Vec<u8>>) {
    for node in nodes {
        let events = poll_until(&node.bus, expected.len(), Duration::from_secs(120));
        assert_eq!(
            events.len(),
            expected.len(),
            "node {} has {} of {} events",
            node.port,
            events.len(),
            expected.len()
        );
    }
    // Flushed everywhere, every relay in flight has been acknowledged: stored or dropped.
    for node in nodes {
        super::flush(&node.bus);
    }
    let ids: Vec<u64> = nodes.iter().map(|n| n.net.node_id()).collect();
    for node in nodes {
        let bus = node.bus.clone();
        let events = block(async move { drain(&bus, ConsumeRequest::new(10_000)).await }).events;
        super::assert_exactly_once(&events, expected);
        let mut last: HashMap<(u64, u16), usize> = HashMap::new();
        for event in &events {
            let (source, index) = source_and_index(event);
            assert_eq!(event.origin, ids[source], "origin of an event of node {source}");
            if let Some(before) = last.insert((event.origin, event.shard), index) {
                assert!(index > before, "node {source} shard {}: {index} after {before}", event.shard);
            }
        }
    }
}
