//! Segment files: an 8-byte header, then records of consecutive sequences.
//!
//! A segment is named by the sequence of its first record, `{first:020}.log`, so finding the
//! segment of a sequence is a lookup among the names, and inside a segment record `i` has
//! sequence `first + i` (a gap in a shard's sequences, left by a batch the bus dropped, starts
//! a new segment). Scanning a segment reads it whole in one call and decodes it in memory;
//! the events it yields hold slices of that one buffer, so reading old events costs no
//! syscall and no allocation per event.

use super::record::{self, Decoded, Format};
use crate::adapter::memory::Origin;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

/// `PRSEG`, two zero bytes, format version 1 (records without origin).
pub(super) const HEADER: [u8; 8] = *b"PRSEG\0\0\x01";
/// Format version 2: records carry their origin (a Net node's log).
pub(super) const HEADER_V2: [u8; 8] = *b"PRSEG\0\0\x02";

/// The header of a segment of `format`.
pub(super) fn header(format: Format) -> [u8; 8] {
    match format {
        Format::V1 => HEADER,
        Format::V2 => HEADER_V2,
    }
}

/// The record format a segment's first bytes name; `None` when they are no segment header.
pub(super) fn format_of(bytes: &[u8]) -> Option<Format> {
    match bytes.get(..HEADER.len()) {
        Some(h) if h == HEADER => Some(Format::V1),
        Some(h) if h == HEADER_V2 => Some(Format::V2),
        _ => None,
    }
}

/// An event as the log keeps it in memory.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) timestamp_ns: u64,
    pub(super) payload: Bytes,
    pub(super) origin: Origin,
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
    /// The record format its header names (format 1 for a file too short to say).
    pub(super) format: Format,
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
    let format = match format_of(&bytes) {
        Some(format) => format,
        None => {
            let torn = bytes.len() < HEADER.len() && (HEADER.starts_with(&bytes) || HEADER_V2.starts_with(&bytes));
            let damage = Damage { offset: 0, reason: "not a segment header", torn };
            // No header survives: the writer starts the file again, in its own format.
            return Scan { run, valid_len: 0, damage: Some(damage), format: Format::V1 };
        }
    };
    let mut at = HEADER.len();
    let damage = loop {
        // At most u64::MAX: a record is kept only below it.
        let expected = first + run.entries.len() as u64;
        let reason = match record::decode_as(&bytes, at, format) {
            // The bus never writes u64::MAX: the event after it would have no sequence.
            Decoded::Record(r) if r.sequence == u64::MAX => "sequence out of range",
            Decoded::Record(r) if r.sequence == expected => {
                let payload = bytes.slice(r.payload.clone());
                run.entries.push_back(Entry { timestamp_ns: r.timestamp_ns, payload, origin: r.origin });
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
        let torn = !record::later_record_exists(&bytes, at + 1, expected.wrapping_sub(1), format);
        break Some(Damage { offset: at as u64, reason, torn });
    };
    Scan { run, valid_len: at as u64, damage, format }
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
    fn a_format_2_segment_scans_with_origins_and_format_1_still_reads() {
        let mut bytes = HEADER_V2.to_vec();
        for i in 0..3u64 {
            let origin = Origin { node: 9, sequence: 100 + i };
            let fields = record::Fields { sequence: 4 + i, timestamp_ns: i, producer: 0, epoch: 0, origin };
            record::encode_as(&mut bytes, Format::V2, fields, b"p");
        }
        let scan = scan(Bytes::from(bytes), 4);
        assert_eq!((scan.damage, scan.format, scan.run.end()), (None, Format::V2, 7));
        assert_eq!(scan.run.entries[2].origin, Origin { node: 9, sequence: 102 });
        let old = super::scan(Bytes::from(segment(0, &[b"a"])), 0);
        assert_eq!((old.format, old.run.entries[0].origin.node), (Format::V1, 0));
    }

    #[test]
    fn records_must_follow_the_name() {
        let bytes = segment(3, &[b"x"]);
        let scan = scan(Bytes::from(bytes), 4);
        assert_eq!(scan.damage.map(|d| d.reason), Some("record out of sequence"));
        assert!(scan.run.entries.is_empty());
    }

    #[test]
    fn no_sequence_past_the_end_of_the_sequence_space_is_read() {
        // The bus never writes sequence u64::MAX (the event after it would have no sequence),
        // so a record claiming it is damage, and a run never ends past u64::MAX.
        let bytes = segment(u64::MAX - 1, &[b"last", b"past"]);
        let scan = scan(Bytes::from(bytes), u64::MAX - 1);
        assert_eq!((scan.run.first, scan.run.end()), (u64::MAX - 1, u64::MAX));
        assert_eq!(scan.damage.map(|d| (d.reason, d.torn)), Some(("sequence out of range", true)));
        let scan = super::scan(Bytes::from(segment(u64::MAX, &[b"past"])), u64::MAX);
        assert!(scan.run.entries.is_empty());
        assert_eq!(scan.valid_len, HEADER.len() as u64);
    }
}
