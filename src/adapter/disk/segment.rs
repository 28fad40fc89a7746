//! Segment files: an 8-byte header, then records of consecutive sequences.
//!
//! A segment is named by the sequence of its first record, `{first:020}.log`, so finding the
//! segment of a sequence is a lookup among the names, and inside a segment record `i` has
//! sequence `first + i` (a gap in a shard's sequences, left by a batch the bus dropped, starts
//! a new segment). Scanning a segment reads it whole in one call and decodes it in memory;
//! the events it yields hold slices of that one buffer, so reading old events costs no
//! syscall and no allocation per event.

use super::record::{self, Decoded};
use bytes::Bytes;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

/// `PRSEG`, two zero bytes, format version 1.
pub(super) const HEADER: [u8; 8] = *b"PRSEG\0\0\x01";

/// An event as the log keeps it in memory.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) timestamp_ns: u64,
    pub(super) payload: Bytes,
}

/// Consecutive events from `first`.
#[derive(Debug, Default)]
pub(super) struct Run {
    pub(super) first: u64,
    pub(super) entries: VecDeque<Entry>,
}

impl Run {
    /// One past the last sequence.
    pub(super) fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }
}

/// Where a segment stops being a sequence of good records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Damage {
    /// Byte offset of the first bad record.
    pub(super) offset: u64,
    pub(super) reason: &'static str,
    /// Nothing valid follows it: a write cut short, not damage in the middle of the log.
    pub(super) torn: bool,
}

/// What reading a segment found.
#[derive(Debug)]
pub(super) struct Scan {
    pub(super) run: Run,
    /// Bytes of good records, header included: where appends continue.
    pub(super) valid_len: u64,
    pub(super) damage: Option<Damage>,
}

/// The file name of the segment starting at `first`.
pub(super) fn file_name(first: u64) -> String {
    format!("{first:020}.log")
}

/// The segments of a shard directory, by first sequence.
pub(super) fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(first) = name.to_str().and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse().ok()) else {
            continue;
        };
        segments.push((first, entry.path()));
    }
    segments.sort_unstable_by_key(|(first, _)| *first);
    Ok(segments)
}

/// Decodes a segment's bytes. Records must carry the sequences `first, first + 1, ...`.
pub(super) fn scan(bytes: Bytes, first: u64) -> Scan {
    let mut run = Run { first, entries: VecDeque::new() };
    if bytes.len() < HEADER.len() || bytes[..HEADER.len()] != HEADER {
        let torn = bytes.len() < HEADER.len() && HEADER.starts_with(&bytes);
        let damage = Damage { offset: 0, reason: "not a segment header", torn };
        return Scan { run, valid_len: 0, damage: Some(damage) };
    }
    let mut at = HEADER.len();
    let damage = loop {
        let expected = first + run.entries.len() as u64;
        let reason = match record::decode(&bytes, at) {
            Decoded::Record(r) if r.sequence == expected => {
                run.entries.push_back(Entry { timestamp_ns: r.timestamp_ns, payload: bytes.slice(r.payload.clone()) });
                at = r.end();
                continue;
            }
            Decoded::Record(_) => {
                break Some(Damage { offset: at as u64, reason: "record out of sequence", torn: false });
            }
            Decoded::Incomplete if at == bytes.len() => break None,
            Decoded::Incomplete => "record cut short",
            Decoded::Corrupt(reason) => reason,
        };
        let torn = !record::later_record_exists(&bytes, at + 1, expected.wrapping_sub(1));
        break Some(Damage { offset: at as u64, reason, torn });
    };
    Scan { run, valid_len: at as u64, damage }
}

/// Reads and decodes the segment at `path`.
pub(super) fn read(path: &Path, first: u64) -> io::Result<Scan> {
    Ok(scan(Bytes::from(std::fs::read(path)?), first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(first: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut buf = HEADER.to_vec();
        for (i, payload) in payloads.iter().enumerate() {
            record::encode(&mut buf, first + i as u64, 10 + i as u64, 1, 1, payload);
        }
        buf
    }

    #[test]
    fn names_sort_as_numbers() {
        assert_eq!(file_name(42), "00000000000000000042.log");
        assert_eq!(file_name(u64::MAX).len(), 24);
    }

    #[test]
    fn a_whole_segment_scans_clean() {
        let bytes = segment(5, &[b"a", b"bb", b"ccc"]);
        let scan = scan(Bytes::from(bytes.clone()), 5);
        assert_eq!(scan.damage, None);
        assert_eq!(scan.valid_len, bytes.len() as u64);
        assert_eq!((scan.run.first, scan.run.end()), (5, 8));
        assert_eq!(scan.run.entries[2].payload.as_ref(), b"ccc");
    }

    #[test]
    fn a_cut_tail_is_torn_and_a_flip_in_the_middle_is_not() {
        let bytes = segment(0, &[b"one", b"two", b"three"]);
        let second = HEADER.len() + record::HEADER_LEN + 3;
        let third = second + record::HEADER_LEN + 3;
        for cut in (second + 1..bytes.len() - 1).filter(|&cut| cut != third) {
            let scan = scan(Bytes::copy_from_slice(&bytes[..cut]), 0);
            if cut < third {
                assert_eq!(scan.run.entries.len(), 1, "cut at {cut}");
                assert_eq!(scan.valid_len, second as u64);
            }
            assert!(scan.damage.as_ref().is_some_and(|d| d.torn), "cut at {cut}: {:?}", scan.damage);
        }
        let mut flipped = bytes.clone();
        flipped[second + record::HEADER_LEN] ^= 0x20;
        let scan = scan(Bytes::from(flipped), 0);
        let damage = scan.damage.expect("damage found");
        assert_eq!((damage.offset, damage.torn), (second as u64, false));
        assert_eq!(scan.run.entries.len(), 1, "nothing past the damage is returned");
    }

    #[test]
    fn records_must_follow_the_name() {
        let bytes = segment(3, &[b"x"]);
        let scan = scan(Bytes::from(bytes), 4);
        assert_eq!(scan.damage.map(|d| d.reason), Some("record out of sequence"));
        assert!(scan.run.entries.is_empty());
    }
}
