//! One record of a segment file: a fixed header (40 bytes in format 1, 56 in format 2), then
//! the payload.
//!
//! | offset | size | field                                                        |
//! |--------|------|--------------------------------------------------------------|
//! | 0      | 4    | CRC32C (Castagnoli) of every byte after this field, payload included |
//! | 4      | 4    | payload length                                               |
//! | 8      | 8    | sequence                                                     |
//! | 16     | 8    | timestamp, ns since the Unix epoch                           |
//! | 24     | 8    | producer id (the dedup id's first part)                      |
//! | 32     | 8    | producer epoch                                               |
//! | 40     | 8    | format 2 only: origin node (the Net node that ingested it)    |
//! | 48     | 8    | format 2 only: origin sequence (on that node, same shard)     |
//! | 40/56  | len  | payload                                                      |
//!
//! The format is the segment's (its header says which, `segment.rs`): a plain Disk log writes
//! format 1, a Net node's log format 2, and both read either (format 1 records have origin 0).
//! All integers are little-endian. The producer id and epoch are the first two parts of the
//! bus's dedup id (`ProducerIdentity::dedup_id`, `{producer:016x}:{epoch}:{run:016x}:{shard}:{sequence}`);
//! the per-start run is not kept: one bus at a time writes a directory (its lock).
//! [`decode`] accepts any bytes: it never panics and never returns a record whose checksum
//! fails.

use crate::adapter::memory::Origin;
use bytes::BufMut;

/// Bytes before the payload in format 1.
pub(super) const HEADER_LEN: usize = 40;

/// A segment's record format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Format {
    /// No origin: what a plain Disk log writes.
    #[default]
    V1,
    /// With the origin (node, sequence) the Net adapter relays and deduplicates by.
    V2,
}

impl Format {
    /// Bytes before the payload.
    pub(super) fn header_len(self) -> usize {
        match self {
            Self::V1 => HEADER_LEN,
            Self::V2 => HEADER_LEN + 16,
        }
    }
}
/// Largest payload a record may claim; a longer claim is damage, not a record.
pub(super) const MAX_PAYLOAD: usize = 1 << 30;

/// A record's header fields and where its payload lies in the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) sequence: u64,
    pub(super) timestamp_ns: u64,
    pub(super) producer: u64,
    pub(super) epoch: u64,
    /// Where it was first ingested (node 0 in format 1).
    pub(super) origin: Origin,
    /// Payload range in the buffer.
    pub(super) payload: std::ops::Range<usize>,
}

impl Record {
    /// Offset just past the record.
    pub(super) fn end(&self) -> usize {
        self.payload.end
    }
}

/// What lies at an offset of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decoded {
    /// A whole record whose checksum holds.
    Record(Record),
    /// Fewer bytes than the header or the payload it claims: the end of what was written.
    Incomplete,
    /// Bytes that are not a record.
    Corrupt(&'static str),
}

/// The fields of a record besides its payload.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields {
    pub(super) sequence: u64,
    pub(super) timestamp_ns: u64,
    pub(super) producer: u64,
    pub(super) epoch: u64,
    /// Written in format 2 only.
    pub(super) origin: Origin,
}

/// Appends one record in format 1.
#[cfg(test)]
pub(super) fn encode(
    out: &mut impl BufMut,
    sequence: u64,
    timestamp_ns: u64,
    producer: u64,
    epoch: u64,
    payload: &[u8],
) {
    let origin = Origin { node: 0, sequence: 0 };
    encode_as(out, Format::V1, Fields { sequence, timestamp_ns, producer, epoch, origin }, payload);
}

/// Appends one record in `format`.
pub(super) fn encode_as(out: &mut impl BufMut, format: Format, fields: Fields, payload: &[u8]) {
    let mut header = [0u8; HEADER_LEN + 16];
    header[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[8..16].copy_from_slice(&fields.sequence.to_le_bytes());
    header[16..24].copy_from_slice(&fields.timestamp_ns.to_le_bytes());
    header[24..32].copy_from_slice(&fields.producer.to_le_bytes());
    header[32..40].copy_from_slice(&fields.epoch.to_le_bytes());
    header[40..48].copy_from_slice(&fields.origin.node.to_le_bytes());
    header[48..56].copy_from_slice(&fields.origin.sequence.to_le_bytes());
    let header = &mut header[..format.header_len()];
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[4..]), payload);
    header[..4].copy_from_slice(&crc.to_le_bytes());
    out.put_slice(header);
    out.put_slice(payload);
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Decodes the format 1 record at `at`.
#[cfg(test)]
pub(super) fn decode(buf: &[u8], at: usize) -> Decoded {
    decode_as(buf, at, Format::V1)
}

/// Decodes the record at `at` in `format`.
pub(super) fn decode_as(buf: &[u8], at: usize, format: Format) -> Decoded {
    let header_len = format.header_len();
    let Some(header) = at.checked_add(header_len).filter(|&end| end <= buf.len()).map(|end| &buf[at..end]) else {
        return Decoded::Incomplete;
    };
    let len = u32_at(header, 4) as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Corrupt("payload length out of range");
    }
    let start = at + header_len;
    let end = start + len;
    if end > buf.len() {
        return Decoded::Incomplete;
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[4..]), &buf[start..end]);
    if crc != u32_at(header, 0) {
        return Decoded::Corrupt("checksum mismatch");
    }
    Decoded::Record(Record {
        sequence: u64_at(header, 8),
        timestamp_ns: u64_at(header, 16),
        producer: u64_at(header, 24),
        epoch: u64_at(header, 32),
        origin: match format {
            Format::V1 => Origin { node: 0, sequence: 0 },
            Format::V2 => Origin { node: u64_at(header, 40), sequence: u64_at(header, 48) },
        },
        payload: start..end,
    })
}

/// Checksummed bytes [`later_record_exists`] may spend per byte it searches.
const SEARCH_WORK_PER_BYTE: usize = 64;

/// Whether a whole record with a sequence in `(after, after + 2^32]` starts anywhere in
/// `buf[from..]`: what tells damage in the middle of a log (later records were written) from a
/// torn tail (nothing valid follows).
///
/// Each candidate costs a checksum over the length it claims, so bytes crafted to make every
/// position a long candidate would cost the square of the segment's size. The search has a
/// budget of [`SEARCH_WORK_PER_BYTE`] checksummed bytes per byte searched (what real damage is
/// far from: a torn tail is followed by nothing, or by bytes whose sequences are rarely in
/// range); spent, it answers yes, the answer that truncates nothing without `repair`.
pub(super) fn later_record_exists(buf: &[u8], from: usize, after: u64, format: Format) -> bool {
    let header_len = format.header_len();
    let mut budget = buf.len().saturating_sub(from).saturating_mul(SEARCH_WORK_PER_BYTE);
    for at in from..buf.len().saturating_sub(header_len - 1) {
        let sequence = u64_at(buf, at + 8);
        if sequence <= after || sequence - after > 1 << 32 {
            continue;
        }
        let claimed = header_len + u32_at(buf, at + 4) as usize;
        if at + claimed <= buf.len() {
            let Some(left) = budget.checked_sub(claimed) else { return true };
            budget = left;
        }
        if matches!(decode_as(buf, at, format), Decoded::Record(r) if r.sequence == sequence) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, 7, 1_000, 0xabc, 3, payload);
        buf
    }

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        let buf = one(b"{\"n\":1}");
        let Decoded::Record(record) = decode(&buf, 0) else { panic!("{:?}", decode(&buf, 0)) };
        assert_eq!((record.sequence, record.timestamp_ns, record.producer, record.epoch), (7, 1_000, 0xabc, 3));
        assert_eq!(&buf[record.payload.clone()], b"{\"n\":1}");
        assert_eq!(record.end(), buf.len());
    }

    #[test]
    fn every_flipped_bit_is_caught_and_every_cut_is_incomplete() {
        let buf = one(b"payload bytes");
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[byte] ^= 1 << bit;
                assert!(!matches!(decode(&damaged, 0), Decoded::Record(_)), "flip at {byte}.{bit} went unnoticed");
            }
        }
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut], 0), Decoded::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn a_later_record_is_found_past_damage() {
        let mut buf = one(b"first");
        encode(&mut buf, 8, 1_001, 0xabc, 3, b"second");
        let second = HEADER_LEN + 5;
        assert!(later_record_exists(&buf, 1, 7, Format::V1));
        assert!(!later_record_exists(&buf, second + 1, 7, Format::V1));
        assert!(!later_record_exists(&buf, 1, 8, Format::V1), "only later sequences count");
    }

    #[test]
    fn a_format_2_record_keeps_its_origin_and_is_caught_when_flipped() {
        let origin = Origin { node: 0xfeed, sequence: 41 };
        let fields = Fields { sequence: 7, timestamp_ns: 1_000, producer: 0, epoch: 0, origin };
        let mut buf = Vec::new();
        encode_as(&mut buf, Format::V2, fields, b"relayed");
        assert_eq!(buf.len(), HEADER_LEN + 16 + 7);
        let Decoded::Record(record) = decode_as(&buf, 0, Format::V2) else { panic!() };
        assert_eq!((record.sequence, record.origin), (7, origin));
        assert_eq!(&buf[record.payload.clone()], b"relayed");
        for byte in 40..56 {
            let mut damaged = buf.clone();
            damaged[byte] ^= 1;
            assert!(!matches!(decode_as(&damaged, 0, Format::V2), Decoded::Record(_)), "flip at {byte}");
        }
        let Decoded::Record(old) = decode_as(&one(b"x"), 0, Format::V1) else { panic!() };
        assert_eq!(old.origin, Origin { node: 0, sequence: 0 }, "format 1 has no origin");
    }

    /// Bytes crafted so that many positions claim a long record in range (each checksum fails)
    /// would take the search hours; its budget runs out instead, and the answer keeps the log
    /// from being truncated without `repair`.
    #[test]
    fn a_search_through_crafted_candidates_is_bounded_and_truncates_nothing() {
        // Every 64 bytes a header in range claiming the rest of the buffer, its checksum wrong.
        let crafted = |len: usize| {
            let mut buf = vec![0u8; len];
            for at in (0..len - HEADER_LEN).step_by(64) {
                let claimed = (len - at - HEADER_LEN) as u32;
                buf[at + 4..at + 8].copy_from_slice(&claimed.to_le_bytes());
                buf[at + 8..at + 16].copy_from_slice(&8u64.to_le_bytes());
            }
            buf
        };
        // 16,384 candidates, 8 GiB to checksum: the budget (64 MiB) runs out.
        assert!(later_record_exists(&crafted(1 << 20), 0, 7, Format::V1), "the budget answers yes");
        // 64 candidates, 128 KiB: within the budget (256 KiB), and nothing is found.
        assert!(!later_record_exists(&crafted(4096), 0, 7, Format::V1));
    }

    proptest! {
        /// The decoder's fuzz target: any bytes at any offset decode without panicking, and
        /// whatever decodes as a record lies inside the buffer and carries a checksum that holds.
        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), at in 0usize..300) {
            if let Decoded::Record(record) = decode(&bytes, at) {
                prop_assert!(record.end() <= bytes.len());
                let mut again = Vec::new();
                encode(&mut again, record.sequence, record.timestamp_ns, record.producer, record.epoch, &bytes[record.payload.clone()]);
                prop_assert_eq!(&again[..], &bytes[at..record.end()]);
            }
            let _ = later_record_exists(&bytes, at.min(bytes.len()), 0, Format::V1);
            if let Decoded::Record(record) = decode_as(&bytes, at, Format::V2) {
                prop_assert!(record.end() <= bytes.len());
            }
            let _ = later_record_exists(&bytes, at.min(bytes.len()), 0, Format::V2);
        }
    }
}
