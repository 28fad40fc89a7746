//! The Net adapter in one process: meshes of buses on loopback ports.
//!
//! Each topology ingests 100k events spread over its nodes and checks that every node polls all
//! of them exactly once, with their origin, in order per origin shard.

mod common;

use common::mesh::{assert_mesh_complete, ingest_everywhere, net_config, start_mesh, start_node, Node};
use common::proxy::{start_proxy, ProxyFault};
use common::{free_port, payload, poll_until};
use purple_rain::{NetAdapterConfig, RawEvent};
use std::time::{Duration, Instant};

const TOTAL: usize = 100_000;

fn mesh_test(n: usize, edges: &[(usize, usize)]) {
    let key = NetAdapterConfig::generate_key();
    let nodes = start_mesh(n, edges, &key);
    let expected = ingest_everywhere(&nodes, TOTAL / n);
    for node in &nodes {
        common::flush(&node.bus);
    }
    assert_mesh_complete(&nodes, &expected);
    for node in nodes {
        common::shutdown(node.bus);
    }
}

#[test]
fn two_nodes() {
    mesh_test(2, &[(0, 1)]);
}

#[test]
fn a_line_relays_end_to_end() {
    mesh_test(3, &[(0, 1), (1, 2)]);
}

#[test]
fn a_triangle_drops_what_arrives_twice() {
    mesh_test(3, &[(0, 1), (1, 2), (2, 0)]);
}

#[test]
fn five_nodes_full_mesh() {
    let edges: Vec<(usize, usize)> = (0..5).flat_map(|i| (i + 1..5).map(move |j| (i, j))).collect();
    mesh_test(5, &edges);
}

/// Waits until `condition` holds, failing after 20 s.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `intruder` dials `guard` and is refused at the handshake: counted on the guard, and nothing
/// crosses either way.
fn refused(guard: Node, intruder: Node) {
    guard.bus.ingest_raw(RawEvent::from_bytes(payload("guard", 0))).unwrap();
    intruder.bus.ingest_raw(RawEvent::from_bytes(payload("intruder", 0))).unwrap();
    common::flush(&guard.bus);
    common::flush(&intruder.bus);
    eventually("two refused handshakes", || guard.net.auth_failures() >= 2);
    assert_eq!(guard.net.connected_peers(), 0);
    assert_eq!(intruder.net.connected_peers(), 0);
    // Both sides keep exactly their own event.
    for node in [&guard, &intruder] {
        let events = poll_until(&node.bus, 2, Duration::from_millis(300));
        assert_eq!(events.len(), 1, "node {} holds {} events", node.port, events.len());
        assert_eq!(events[0].origin, node.net.node_id());
    }
    common::shutdown(guard.bus);
    common::shutdown(intruder.bus);
}

#[test]
fn a_node_with_another_key_is_refused() {
    let (guard, intruder) = (free_port(), free_port());
    let key = NetAdapterConfig::generate_key();
    let other = NetAdapterConfig::generate_key();
    refused(
        start_node(net_config(guard, &[], Some(&key)), guard),
        start_node(net_config(intruder, &[guard], Some(&other)), intruder),
    );
}

#[test]
fn a_node_without_a_key_is_refused() {
    let (guard, intruder) = (free_port(), free_port());
    let key = NetAdapterConfig::generate_key();
    refused(
        start_node(net_config(guard, &[], Some(&key)), guard),
        start_node(net_config(intruder, &[guard], None), intruder),
    );
}

#[test]
fn keys_are_required_and_plain_text_stays_on_loopback() {
    let config = |json: &str| purple_rain::EventBusConfig::from_json(&format!(r#"{{"adapter":{json}}}"#));
    let error = NetAdapterConfig::default().listen("127.0.0.1:1").key_bytes().unwrap_err().to_string();
    assert!(error.contains("cluster key is required"), "{error}");
    let error = config(r#"{"type":"net","listen":"0.0.0.0:1","insecure":true}"#).unwrap_err().to_string();
    assert!(error.contains("not loopback"), "{error}");
    let error = config(r#"{"type":"net","peers":["10.0.0.2:7777"],"insecure":true}"#).unwrap_err().to_string();
    assert!(error.contains("not loopback"), "{error}");
    let error = config(r#"{"type":"net","key":"abc"}"#).unwrap_err().to_string();
    assert!(error.contains("64 hex digits"), "{error}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.key");
    std::fs::write(&file, format!("{}\n", NetAdapterConfig::generate_key())).unwrap();
    let from_file = NetAdapterConfig::default().key_file(file.to_str().unwrap());
    assert!(from_file.key_bytes().unwrap().is_some());
    assert_ne!(NetAdapterConfig::generate_key(), NetAdapterConfig::generate_key());
}

/// B dials A through a proxy that spoils one record of B's first connection, while B sends
/// 50k events. A closes that connection and counts it; B redials and everything arrives: each
/// event on A exactly once, nothing spoiled stored.
fn through_a_faulty_link(fault: ProxyFault, expect_rejected: bool) {
    let key = NetAdapterConfig::generate_key();
    let (a_port, b_port) = (free_port(), free_port());
    let a = start_node(net_config(a_port, &[], Some(&key)), a_port);
    let proxy = start_proxy(a_port, fault);
    let b = start_node(net_config(b_port, &[proxy.port], Some(&key)), b_port);
    let nodes = [b, a];
    let expected = ingest_everywhere(&nodes[..1], 50_000);
    assert_mesh_complete(&nodes, &expected);
    assert!(proxy.connections.load(std::sync::atomic::Ordering::SeqCst) >= 2, "B never had to redial");
    if expect_rejected {
        assert!(nodes[1].net.rejected_frames() >= 1, "A did not count the spoiled record");
    }
    let [b, a] = nodes;
    common::shutdown(a.bus);
    common::shutdown(b.bus);
}

#[test]
fn a_flipped_byte_closes_the_connection_and_stores_nothing() {
    through_a_faulty_link(ProxyFault::Flip { at: 6 }, true);
}

#[test]
fn a_replayed_record_stores_nothing_twice() {
    through_a_faulty_link(ProxyFault::Replay { at: 6 }, true);
}

#[test]
fn a_cut_connection_resumes_where_it_stopped() {
    through_a_faulty_link(ProxyFault::Cut { at: 8 }, false);
}

#[test]
fn a_blackholed_connection_is_abandoned_and_redialed() {
    through_a_faulty_link(ProxyFault::Blackhole { at: 8 }, false);
}

/// A durable node (`disk`) restarted on its directory is the same origin, keeps its events and
/// continues its sequences; its JSON config is `{"type":"net",...,"disk":{"dir":...}}`.
#[test]
fn a_durable_node_restarts_as_the_same_origin_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = NetAdapterConfig::generate_key();
    let json = format!(
        r#"{{"adapter":{{"type":"net","listen":"127.0.0.1:{}","key":"{key}","disk":{{"dir":{:?},"fsync":"interval"}}}}}}"#,
        free_port(),
        dir.path()
    );
    let parsed = purple_rain::EventBusConfig::from_json(&json).unwrap();
    let purple_rain::AdapterConfig::Net(config) = parsed.adapter else { panic!("not a net config") };
    assert_eq!(config.disk.as_ref().map(|d| d.dir.as_path()), Some(dir.path()));
    let error = purple_rain::EventBusConfig::from_json(&json.replace(r#""fsync":"interval""#, r#""segment_bytes":1"#))
        .unwrap_err()
        .to_string();
    assert!(error.contains("adapter.disk.segment_bytes"), "{error}");

    // A peer (Memory) with events of its own, which the durable node stores once.
    let peer_port = free_port();
    let peer = start_node(net_config(peer_port, &[], Some(&key)), peer_port);
    for index in 0..10 {
        peer.bus.ingest_raw(RawEvent::from_bytes(payload(1, index))).unwrap();
    }
    common::flush(&peer.bus);
    let port = free_port();
    let config = config.listen(format!("127.0.0.1:{port}")).peer(format!("127.0.0.1:{peer_port}"));
    let first = start_node(config.clone(), port);
    let id = first.net.node_id();
    for index in 0..1000 {
        first.bus.ingest_raw(RawEvent::from_bytes(payload(0, index))).unwrap();
    }
    common::flush(&first.bus);
    assert_eq!(poll_until(&first.bus, 1010, Duration::from_secs(20)).len(), 1010);
    common::shutdown(first.bus);
    drop(first.net);

    let again = start_node(config, port);
    assert_eq!(again.net.node_id(), id, "the same origin after a restart");
    assert_eq!(again.net.retained(), 1010);
    // Caught up, it is sent nothing; what it said at Resume acknowledges the peer's log, so the
    // peer's flush returns Ok instead of failing at its deadline.
    eventually("the peer sees the restarted node", || peer.net.connected_peers() == 1);
    common::flush(&peer.bus);
    for index in 1000..1500 {
        again.bus.ingest_raw(RawEvent::from_bytes(payload(0, index))).unwrap();
    }
    common::flush(&again.bus);
    let events = poll_until(&again.bus, 1510, Duration::from_secs(20));
    let expected = (0..1500).map(|index| payload(0, index)).chain((0..10).map(|index| payload(1, index))).collect();
    common::assert_exactly_once(&events, &expected);
    let mut last = std::collections::HashMap::new();
    for event in events.iter().filter(|e| common::mesh::source_and_index(e).0 == 0) {
        assert_eq!(event.origin, id);
        let (_, index) = common::mesh::source_and_index(event);
        if let Some(before) = last.insert(event.shard, index) {
            assert!(index > before, "shard {}: {index} after {before}", event.shard);
        }
    }
    common::shutdown(again.bus);
    common::shutdown(peer.bus);
}

/// The public key a node with `identity_file` will have (the file is created now).
fn public_key_of(identity_file: &std::path::Path) -> String {
    let config = NetAdapterConfig::default().key(NetAdapterConfig::generate_key());
    let config = config.identity_file(identity_file.to_str().unwrap());
    purple_rain::adapter::NetAdapter::new(config).unwrap().public_key().to_owned()
}

#[test]
fn pinned_peers_connect_and_exchange_events() {
    let dir = tempfile::tempdir().unwrap();
    let (a_file, b_file) = (dir.path().join("a.key"), dir.path().join("b.key"));
    let (a_public, b_public) = (public_key_of(&a_file), public_key_of(&b_file));
    assert_ne!(a_public, b_public);
    let key = NetAdapterConfig::generate_key();
    let (a_port, b_port) = (free_port(), free_port());
    let a = net_config(a_port, &[], Some(&key)).identity_file(a_file.to_str().unwrap()).peer_public_key(&b_public);
    let b =
        net_config(b_port, &[a_port], Some(&key)).identity_file(b_file.to_str().unwrap()).peer_public_key(&a_public);
    let nodes = [start_node(a, a_port), start_node(b, b_port)];
    assert_eq!(nodes[0].net.public_key(), a_public, "the identity file is read back, not replaced");
    let expected = ingest_everywhere(&nodes, 1_000);
    assert_mesh_complete(&nodes, &expected);
    assert_eq!(nodes[0].net.auth_failures() + nodes[1].net.auth_failures(), 0);
    for node in nodes {
        common::shutdown(node.bus);
    }
}

/// `pinner` pins a key that is not `other`'s; whichever dials, the handshake is refused, the
/// pinner counts it, and neither stores the other's event.
fn refused_by_pin(pinner_dials: bool) {
    let key = NetAdapterConfig::generate_key();
    let stranger = NetAdapterConfig::default().key(&key);
    let stranger = purple_rain::adapter::NetAdapter::new(stranger).unwrap().public_key().to_owned();
    let (p_port, o_port) = (free_port(), free_port());
    let (p_peers, o_peers) = if pinner_dials { (vec![o_port], vec![]) } else { (vec![], vec![p_port]) };
    let pinner = start_node(net_config(p_port, &p_peers, Some(&key)).peer_public_key(stranger), p_port);
    let other = start_node(net_config(o_port, &o_peers, Some(&key)), o_port);
    pinner.bus.ingest_raw(RawEvent::from_bytes(payload("pinner", 0))).unwrap();
    other.bus.ingest_raw(RawEvent::from_bytes(payload("other", 0))).unwrap();
    common::flush(&pinner.bus);
    common::flush(&other.bus);
    eventually("two handshakes refused by the pinning node", || pinner.net.auth_failures() >= 2);
    assert_eq!(pinner.net.connected_peers(), 0);
    assert_eq!(other.net.connected_peers(), 0);
    for node in [&pinner, &other] {
        let events = poll_until(&node.bus, 2, Duration::from_millis(300));
        assert_eq!(events.len(), 1, "node {} holds {} events", node.port, events.len());
        assert_eq!(events[0].origin, node.net.node_id());
    }
    common::shutdown(pinner.bus);
    common::shutdown(other.bus);
}

#[test]
fn an_unpinned_peer_dialing_in_is_refused() {
    refused_by_pin(false);
}

#[test]
fn an_unpinned_peer_dialed_is_refused() {
    refused_by_pin(true);
}

#[test]
fn pinning_round_trips_through_json_and_bad_keys_name_their_entry() {
    let public = "ab".repeat(32);
    let json = format!(
        r#"{{"adapter":{{"type":"net","listen":"127.0.0.1:7777","key":"{}","identity_file":"node.key","peer_public_keys":["{public}"]}}}}"#,
        "cd".repeat(32)
    );
    let config = purple_rain::EventBusConfig::from_json(&json).unwrap();
    let purple_rain::AdapterConfig::Net(net) = &config.adapter else { panic!("{:?}", config.adapter) };
    assert_eq!(net.identity_file.as_deref(), Some("node.key"));
    assert_eq!(net.peer_public_keys, vec![public.clone()]);
    assert_eq!(purple_rain::EventBusConfig::from_json(&config.to_json()).unwrap(), config);
    let bad = json.replace(&format!(r#"["{public}"]"#), &format!(r#"["{public}","xyz"]"#));
    let error = purple_rain::EventBusConfig::from_json(&bad).unwrap_err();
    assert_eq!(error.field(), Some("adapter.peer_public_keys[1]"), "{error}");
    assert!(error.to_string().contains("64 hex digits"), "{error}");
    let plain = r#"{"adapter":{"type":"net","listen":"127.0.0.1:1","insecure":true,"peer_public_keys":[]}}"#;
    assert!(purple_rain::EventBusConfig::from_json(plain).is_ok());
    let error = purple_rain::EventBusConfig::from_json(&plain.replace("[]", &format!(r#"["{public}"]"#))).unwrap_err();
    assert_eq!(error.field(), Some("adapter.insecure"), "{error}");
}

/// The value of the adapter metric `name` with label `label` = `value` (any, if `None`).
fn metric(node: &Node, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    let metrics = node.bus.stats().adapter_metrics();
    let labelled = |m: &purple_rain::adapter::AdapterMetric| {
        label.is_none_or(|(k, v)| m.labels.iter().any(|(key, value)| *key == k && value == v))
    };
    metrics.into_iter().find(|m| m.name == name && labelled(m)).map(|m| m.value)
}

#[test]
fn a_line_learns_the_mesh_and_outlives_its_middle() {
    let key = NetAdapterConfig::generate_key();
    let (a_port, b_port, c_port) = (free_port(), free_port(), free_port());
    let b = start_node(net_config(b_port, &[], Some(&key)), b_port);
    let a = start_node(net_config(a_port, &[b_port], Some(&key)), a_port);
    let c = start_node(net_config(c_port, &[b_port], Some(&key)), c_port);
    let (a_id, b_id, c_id) = (a.net.node_id(), b.net.node_id(), c.net.node_id());
    // A and C learn each other's address through B and link up directly, once.
    eventually("A and C connected to each other", || {
        a.net.connected_nodes().contains(&c_id) && c.net.connected_nodes().contains(&a_id)
    });
    let mut a_peers = a.net.connected_nodes();
    a_peers.sort_unstable();
    let mut expected = vec![b_id, c_id];
    expected.sort_unstable();
    assert_eq!(a_peers, expected, "one link per pair of nodes");
    assert_eq!(c.net.connected_peers(), 2);
    assert_eq!(b.net.connected_peers(), 2);
    let learned = a.net.learned_peers().len() + c.net.learned_peers().len();
    assert!(learned >= 1, "neither A nor C learned an address");
    let shown = metric(&a, "net_learned_peers", None).unwrap() + metric(&c, "net_learned_peers", None).unwrap();
    assert_eq!(shown as usize, learned);
    for node in [&a, &c] {
        let own = (node.net.node_id(), node.port);
        assert!(node.net.learned_peers().iter().all(|addr| !addr.ends_with(&format!(":{}", own.1))), "dialed itself");
    }
    // B goes away; what A ingests still reaches C, exactly once.
    common::shutdown(b.bus);
    eventually("B's links dropped", || a.net.connected_peers() == 1 && c.net.connected_peers() == 1);
    let nodes = [a, c];
    let expected = ingest_everywhere(&nodes[..1], 2_000);
    assert_mesh_complete(&nodes, &expected);
    let [a, c] = nodes;
    common::shutdown(a.bus);
    common::shutdown(c.bus);
}

/// With `learn_peers` off the links are exactly the configured ones: the ends of a line
/// exchange their events through the middle and never link to each other.
#[test]
fn a_line_that_does_not_learn_keeps_its_configured_links() {
    let key = NetAdapterConfig::generate_key();
    let (a_port, b_port, c_port) = (free_port(), free_port(), free_port());
    let fixed = |port, peers: &[u16]| net_config(port, peers, Some(&key)).learn_peers(false);
    let b = start_node(fixed(b_port, &[]), b_port);
    let a = start_node(fixed(a_port, &[b_port]), a_port);
    let c = start_node(fixed(c_port, &[b_port]), c_port);
    eventually("A and C connected to B", || a.net.connected_peers() == 1 && c.net.connected_peers() == 1);
    let nodes = [a, b, c];
    // Each end's events reach the other after B told it of the other end (B sends `Peers`
    // before the events of the same round), so a node that learned would have dialed by now.
    let expected = ingest_everywhere(&nodes, 2_000);
    assert_mesh_complete(&nodes, &expected);
    let [a, b, c] = nodes;
    for node in [&a, &c] {
        assert!(node.net.learned_peers().is_empty(), "node {} learned {:?}", node.port, node.net.learned_peers());
        assert_eq!(node.net.connected_peers(), 1, "node {} linked past B", node.port);
    }
    assert_eq!(b.net.connected_peers(), 2);
    for node in [a, b, c] {
        common::shutdown(node.bus);
    }
}

#[test]
fn two_nodes_dialing_each_other_keep_one_link() {
    let key = NetAdapterConfig::generate_key();
    let (a_port, b_port) = (free_port(), free_port());
    let a = start_node(net_config(a_port, &[b_port], Some(&key)), a_port);
    let b = start_node(net_config(b_port, &[a_port], Some(&key)), b_port);
    eventually("A and B connected", || a.net.connected_peers() == 1 && b.net.connected_peers() == 1);
    let nodes = [a, b];
    let expected = ingest_everywhere(&nodes, 20_000);
    assert_mesh_complete(&nodes, &expected);
    for node in &nodes {
        assert_eq!(node.net.connected_peers(), 1, "node {}", node.port);
        assert_eq!(node.net.rejected_frames(), 0, "node {}: the two links disturbed each other", node.port);
    }
    let [a, b] = nodes;
    common::shutdown(a.bus);
    common::shutdown(b.bus);
}

/// Connections use AES-256-GCM where the CPU runs it in hardware and ChaCha20-Poly1305
/// otherwise, shown per peer; an insecure link shows none.
#[test]
fn each_connection_names_its_cipher() {
    #[cfg(target_arch = "x86_64")]
    let hardware_aes = std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(not(target_arch = "x86_64"))]
    let hardware_aes = false;
    let expected = if hardware_aes { "aes-256-gcm" } else { "chacha20-poly1305" };
    for (key, cipher) in [(Some(NetAdapterConfig::generate_key()), expected), (None, "none")] {
        let (a_port, b_port) = (free_port(), free_port());
        let a = start_node(net_config(a_port, &[], key.as_deref()), a_port);
        let b = start_node(net_config(b_port, &[a_port], key.as_deref()), b_port);
        eventually("connected", || a.net.connected_peers() == 1 && b.net.connected_peers() == 1);
        for node in [&a, &b] {
            assert_eq!(metric(node, "net_peer_cipher", Some(("cipher", cipher))), Some(1.0), "{cipher}");
        }
        common::shutdown(a.bus);
        common::shutdown(b.bus);
    }
}

/// A learned address whose node went away for good is forgotten after
/// `forget_learned_after_ms` without a connection, and no longer dialed; a configured peer is
/// never forgotten.
#[test]
fn a_learned_member_that_left_is_forgotten() {
    let key = NetAdapterConfig::generate_key();
    let (a_port, b_port, c_port) = (free_port(), free_port(), free_port());
    let b = start_node(net_config(b_port, &[], Some(&key)), b_port);
    let a = start_node(net_config(a_port, &[b_port], Some(&key)).forget_learned_after_ms(300), a_port);
    // C does not learn, so the A–C link is A's learned dial.
    let c = start_node(net_config(c_port, &[b_port], Some(&key)).learn_peers(false), c_port);
    let (c_addr, c_id) = (format!("127.0.0.1:{c_port}"), c.net.node_id());
    eventually("A learned C through B and linked to it", || {
        a.net.learned_peers().contains(&c_addr) && a.net.connected_nodes().contains(&c_id)
    });
    common::shutdown(c.bus);
    eventually("A forgot C", || a.net.learned_peers().is_empty());
    assert_eq!(metric(&a, "net_forgotten_peers_total", None), Some(1.0));
    assert_eq!(metric(&a, "net_learned_peers", None), Some(0.0));
    // B, configured, is never forgotten: gone for three times the delay (several failed dials
    // at the backoff's pace), it is still dialed.
    common::shutdown(b.bus);
    eventually("A lost B", || a.net.connected_peers() == 0);
    std::thread::sleep(Duration::from_millis(900));
    let b_addr = format!("127.0.0.1:{b_port}");
    assert_eq!(metric(&a, "net_dial_connected", Some(("peer", &b_addr))), Some(0.0), "A no longer dials B");
    assert_eq!(metric(&a, "net_forgotten_peers_total", None), Some(1.0));
    common::shutdown(a.bus);
}

/// A durable node syncs its log before its `NET-STATE` counts events as stored: with
/// `fsync` = `interval` and an interval of an hour, nothing else syncs, so the state file alone
/// would, after a power loss, have the peer skip events the log no longer holds. It also saves
/// what its first peer sent at once (the saving loop once subscribed only after the first
/// connections could store, and missed a catch-up that came first).
#[test]
fn a_durable_node_syncs_its_log_before_saving_its_positions() {
    let dir = tempfile::tempdir().unwrap();
    let key = NetAdapterConfig::generate_key();
    let peer_port = free_port();
    let peer = start_node(net_config(peer_port, &[], Some(&key)), peer_port);
    for index in 0..100 {
        peer.bus.ingest_raw(RawEvent::from_bytes(payload(1, index))).unwrap();
    }
    common::flush(&peer.bus);
    let port = free_port();
    let disk = purple_rain::AdapterConfig::disk(dir.path())
        .fsync(purple_rain::DiskFsync::Interval)
        .fsync_interval_ms(3_600_000);
    let durable = start_node(net_config(port, &[peer_port], Some(&key)).disk(disk), port);
    let state = dir.path().join("NET-STATE");
    let peer_id = format!("{:016x}", peer.net.node_id());
    eventually("NET-STATE counts the peer's events as stored", || {
        std::fs::read_to_string(&state)
            .is_ok_and(|text| text.lines().any(|l| l.starts_with(&format!("cursor {peer_id}"))))
    });
    let fsyncs = metric(&durable, "disk_fsyncs_total", None).unwrap();
    assert!(fsyncs >= 1.0, "NET-STATE was written before the log it describes was synced ({fsyncs} fsyncs)");
    common::shutdown(durable.bus);
    common::shutdown(peer.bus);
}
