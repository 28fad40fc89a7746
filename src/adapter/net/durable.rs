//! What a durable node keeps next to its Disk log, so that after a restart (or SIGKILL) it is
//! the same origin and its peers resume instead of sending everything again.
//!
//! - `NODE`: the node id, 16 hex digits, made once. A restarted node is the same origin and
//!   continues its sequences, so what its peers already hold of it is not stored twice.
//! - `NET-STATE`: per peer node and shard, the position of that peer's log this node has stored
//!   up to (what `Resume` tells the peer), and per shard and origin the next sequence expected
//!   (the origin marks). Rewritten (a new file, synced, renamed over the old one) four times a
//!   second while the log grows, and at shutdown, each time after the log itself is synced
//!   (unless `fsync` is `never`), so no value in it is ahead of what a power loss leaves of the
//!   log. Every value in it was true when written and only grows, so an older file (a crash
//!   between two writes) is a lower bound: the peer resends a little, and the marks, rebuilt
//!   from the log itself at open and raised to the file's, drop it. A malformed line is ignored
//!   for the same reason.

use crate::error::AdapterError;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

const NODE: &str = "NODE";
const STATE: &str = "NET-STATE";

/// Per peer node, per shard: the position of its log stored up to.
pub(super) type Cursors = HashMap<u64, HashMap<u16, u64>>;

fn fatal(what: &str, path: &Path, e: std::io::Error) -> AdapterError {
    AdapterError::Fatal(format!("cannot {what} {}: {e}", path.display()))
}

/// The node id kept in `dir`, made with `fresh` and written there on first use.
pub(super) fn node_id(dir: &Path, fresh: impl FnOnce() -> u64) -> Result<u64, AdapterError> {
    let path = dir.join(NODE);
    match std::fs::read_to_string(&path) {
        Ok(text) => u64::from_str_radix(text.trim(), 16).ok().filter(|&id| id != 0).ok_or_else(|| {
            AdapterError::Corrupt(format!(
                "{}: not a node id ({text:?}); remove it to start as a new node",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = fresh();
            replace(dir, NODE, format!("{id:016x}\n").as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(fatal("read", &path, e)),
    }
}

/// The cursors and marks (shard, origin node, next sequence) last saved in `dir`; empty when
/// there are none.
pub(super) fn load(dir: &Path) -> (Cursors, Vec<(u16, u64, u64)>) {
    let (mut cursors, mut marks) = (Cursors::new(), Vec::new());
    let Ok(text) = std::fs::read_to_string(dir.join(STATE)) else { return (cursors, marks) };
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let hex = |w: &str| u64::from_str_radix(w, 16).ok();
        match words[..] {
            ["cursor", node, shard, at] => {
                if let (Some(node), Ok(shard), Ok(at)) = (hex(node), shard.parse(), at.parse()) {
                    cursors.entry(node).or_default().insert(shard, at);
                }
            }
            ["mark", shard, node, next] => {
                if let (Ok(shard), Some(node), Ok(next)) = (shard.parse(), hex(node), next.parse()) {
                    marks.push((shard, node, next));
                }
            }
            _ => {}
        }
    }
    (cursors, marks)
}

/// Saves the cursors and marks in `dir`.
pub(super) fn save(dir: &Path, cursors: &Cursors, marks: &[(u16, u64, u64)]) -> Result<(), AdapterError> {
    let mut text = String::new();
    for (node, shards) in cursors {
        for (shard, at) in shards {
            text.push_str(&format!("cursor {node:016x} {shard} {at}\n"));
        }
    }
    for (shard, node, next) in marks {
        text.push_str(&format!("mark {shard} {node:016x} {next}\n"));
    }
    replace(dir, STATE, text.as_bytes())
}

/// Writes `name` in `dir` whole or not at all: a synced new file renamed over the old one.
fn replace(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), AdapterError> {
    let (path, new) = (dir.join(name), dir.join(format!("{name}.new")));
    let mut file = std::fs::File::create(&new).map_err(|e| fatal("create", &new, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| fatal("write", &new, e))?;
    std::fs::rename(&new, &path).map_err(|e| fatal("rename", &new, e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| fatal("sync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = node_id(dir.path(), || 0xabc).unwrap();
        assert_eq!(id, 0xabc);
        assert_eq!(node_id(dir.path(), || 0xdef).unwrap(), 0xabc, "a restarted node is the same origin");
        std::fs::write(dir.path().join(NODE), "zz").unwrap();
        assert!(matches!(node_id(dir.path(), || 1), Err(AdapterError::Corrupt(_))));
    }

    #[test]
    fn cursors_and_marks_round_trip_and_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).0.is_empty());
        let mut cursors = Cursors::new();
        cursors.entry(7).or_default().insert(3, 1000);
        save(dir.path(), &cursors, &[(3, 7, 99)]).unwrap();
        assert_eq!(load(dir.path()), (cursors.clone(), vec![(3, 7, 99)]));
        let mut text = std::fs::read_to_string(dir.path().join(STATE)).unwrap();
        text.push_str("cursor zz 1 2\nmark 1\ngarbage\n");
        std::fs::write(dir.path().join(STATE), text).unwrap();
        assert_eq!(load(dir.path()), (cursors, vec![(3, 7, 99)]));
    }
}
