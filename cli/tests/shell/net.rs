//! `--net-*`: a `produce` node joins a mesh through a peer; a `consume --follow` node that
//! listens gets every event.

use crate::support::{bin, free_port, interrupt, json_lines, run, text, Watchdog};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn events_produced_on_one_node_are_consumed_on_its_peer() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("mesh.key");
    std::fs::write(&key, format!("{}\n", "5a".repeat(32))).unwrap();
    let key = key.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());

    let mut consumer = bin()
        .args(["consume", "--net-listen", &listen, "--net-key-file", key, "--follow", "--format", "payload"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _watchdog = Watchdog::arm(&consumer, Duration::from_secs(60));
    let lines = json_lines(500);
    // The producer waits for its peer to connect before it flushes and leaves.
    let produced = run(&["produce", "--net-peer", &listen, "--net-key-file", key, "--flush-timeout", "20s"], &lines);
    assert_eq!(produced.status.code(), Some(0), "{}", text(&produced.stderr));

    let mut got: Vec<String> =
        BufReader::new(consumer.stdout.take().unwrap()).lines().take(500).map(Result::unwrap).collect();
    got.sort();
    let mut want: Vec<String> = text(&lines).lines().map(str::to_owned).collect();
    want.sort();
    assert_eq!(got, want);
    interrupt(&consumer);
    assert_eq!(consumer.wait().unwrap().code(), Some(0));
}

#[test]
fn a_peer_that_never_connects_is_a_loss_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("mesh.key");
    std::fs::write(&key, "5a".repeat(32)).unwrap();
    let peer = format!("127.0.0.1:{}", free_port());
    let out = run(
        &["produce", "--net-peer", &peer, "--net-key-file", key.to_str().unwrap(), "--flush-timeout", "300ms"],
        &json_lines(3),
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("Net peers never connected within 300ms ({peer})")),
        "{}",
        text(&out.stderr)
    );
}

/// `--disk` with `--net-*` is a durable node: what it stored is in its directory, readable by
/// `consume --disk`, and a second run there is the same node, with the first run's events.
#[test]
fn disk_with_net_flags_makes_a_durable_node() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("mesh.key");
    std::fs::write(&key, "5a".repeat(32)).unwrap();
    let (key, log) = (key.to_str().unwrap().to_owned(), dir.path().join("node"));
    let log = log.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let produce = |lines: &[u8]| {
        let out = run(&["produce", "--net-listen", &listen, "--net-key-file", &key, "--disk", log], lines);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    };
    produce(&json_lines(200));
    assert!(std::path::Path::new(log).join("NODE").is_file(), "not a durable node's directory");
    let node = std::fs::read_to_string(std::path::Path::new(log).join("NODE")).unwrap();
    produce(&json_lines(100));
    assert_eq!(std::fs::read_to_string(std::path::Path::new(log).join("NODE")).unwrap(), node, "the same node");
    let out = run(&["consume", "--disk", log, "--format", "payload"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut got: Vec<&str> = stdout.lines().collect();
    got.sort_unstable();
    let (first, second) = (text(&json_lines(200)), text(&json_lines(100)));
    let mut want: Vec<&str> = first.lines().chain(second.lines()).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    // A Net adapter from the config, with no --net-* flag, is made durable the same way (not
    // replaced by a Disk adapter, which keeps no NODE).
    let config = format!(r#"{{"adapter":{{"type":"net","listen":"{listen}","key_file":{key:?}}}}}"#);
    let other = dir.path().join("from-config");
    let out = run(&["produce", "--config-json", &config, "--disk", other.to_str().unwrap()], &json_lines(1));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(other.join("NODE").is_file(), "the config's Net adapter was not made durable");
    // A disk key with a bad value is named as coming from --disk.
    let out = run(
        &[
            "produce",
            "--config-json",
            r#"{"adapter":{"type":"net","disk":{"segment_bytes":1}}}"#,
            "--net-listen",
            &listen,
            "--net-key-file",
            &key,
            "--disk",
            log,
        ],
        b"",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("--disk"), "{}", text(&out.stderr));
}
