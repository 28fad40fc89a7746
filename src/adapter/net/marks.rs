//! Exactly once per node: the high-water mark of every origin, per shard.
//!
//! Every event carries its origin (node, shard, sequence), and each origin shard's events reach
//! a node in sequence order over every path: each log they pass through keeps them in the same
//! shard, in order. So one number per origin shard, the next sequence expected, tells a new
//! event from one that already arrived over another path (triangles) or before a reconnect.
//! A sequence past the mark is admitted too: the events between were trimmed somewhere before
//! they could be relayed (a gap, counted where it was seen).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// The marks of every shard; each shard's behind its own lock, which is held while a run of
/// events is checked and appended, so two connections delivering the same event cannot both
/// admit it.
#[derive(Debug, Default)]
pub(super) struct Marks {
    shards: RwLock<HashMap<u16, Arc<Mutex<ShardMarks>>>>,
}

impl Marks {
    /// The marks of `shard`, created empty on first use.
    pub(super) fn shard(&self, shard: u16) -> Arc<Mutex<ShardMarks>> {
        if let Some(marks) = self.shards.read().unwrap_or_else(|e| e.into_inner()).get(&shard) {
            return marks.clone();
        }
        self.shards.write().unwrap_or_else(|e| e.into_inner()).entry(shard).or_default().clone()
    }

    /// Every mark: (shard, origin node, next sequence expected).
    pub(super) fn snapshot(&self) -> Vec<(u16, u64, u64)> {
        let shards: Vec<(u16, Arc<Mutex<ShardMarks>>)> =
            self.shards.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(s, m)| (*s, m.clone())).collect();
        let mut all = Vec::new();
        for (shard, marks) in shards {
            let marks = marks.lock().unwrap_or_else(|e| e.into_inner());
            all.extend(marks.next.iter().map(|&(node, next)| (shard, node, next)));
        }
        all
    }
}

/// Next expected sequence per origin node on one shard. Few nodes feed a shard, so a short
/// vector searched from the most recent origin beats hashing every event.
#[derive(Debug, Default, Clone)]
pub(super) struct ShardMarks {
    next: Vec<(u64, u64)>,
}

impl ShardMarks {
    /// Whether `(node, sequence)` is new; if so it is now marked as seen.
    pub(super) fn admit(&mut self, node: u64, sequence: u64) -> bool {
        let slot = match self.next.iter().position(|&(n, _)| n == node) {
            Some(i) => {
                // Runs of one origin are the common case: keep the last one first.
                self.next.swap(0, i);
                &mut self.next[0].1
            }
            None => {
                self.next.insert(0, (node, 0));
                &mut self.next[0].1
            }
        };
        if sequence < *slot {
            return false;
        }
        *slot = sequence + 1;
        true
    }

    /// Marks everything of `node` before `next` as seen (a mark saved before a restart).
    pub(super) fn raise(&mut self, node: u64, next: u64) {
        match self.next.iter_mut().find(|(n, _)| *n == node) {
            Some((_, at)) => *at = (*at).max(next),
            None => self.next.push((node, next)),
        }
    }

    /// The next sequence expected from `node`.
    pub(super) fn next(&self, node: u64) -> u64 {
        self.next.iter().find(|&&(n, _)| n == node).map_or(0, |&(_, next)| next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_origin_sequence_is_admitted_once() {
        let mut marks = ShardMarks::default();
        assert!(marks.admit(1, 0));
        assert!(marks.admit(2, 0));
        assert!(!marks.admit(1, 0), "a duplicate over a second path");
        assert!(marks.admit(1, 1));
        assert!(marks.admit(1, 5), "after a gap");
        assert!(!marks.admit(1, 3), "inside the gap: older than what was admitted");
        assert!(!marks.admit(2, 0));
        assert_eq!((marks.next(1), marks.next(2), marks.next(3)), (6, 1, 0));
        marks.raise(1, 4);
        marks.raise(3, 10);
        assert_eq!((marks.next(1), marks.next(3)), (6, 10), "raised, never lowered");
        assert!(!marks.admit(3, 9));
    }

    #[test]
    fn concurrent_deliveries_of_the_same_events_admit_each_once() {
        let marks = Arc::new(Marks::default());
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let marks = marks.clone();
                    s.spawn(move || {
                        let shard = marks.shard(0);
                        (0..10_000u64).filter(|&seq| shard.lock().unwrap().admit(9, seq)).count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 10_000);
    }
}
