//! Stream entries ↔ positions: ids `0-{position}` and one field `e`,
//! `"{timestamp_ns} {dedup_id}\n{payload}"`.
//!
//! One field, not a field per part: every field is two more strings for the server to store
//! and for the client's reply parser to allocate, and parsing the reply is what a read costs
//! (BENCHMARKS.md, "One field per entry").

use ::redis::{RedisWrite, ToRedisArgs, Value};
use bytes::{Buf, Bytes};
use std::io::Write as _;

/// The entry's one field.
const FIELD: &[u8] = b"e";

/// One entry of an `XRANGE` reply.
#[derive(Debug)]
pub(super) struct Entry {
    /// The position the entry occupies; the next position to read after it is `position + 1`.
    pub(super) position: u64,
    /// `Some` for an entry this adapter wrote; `None` for a foreign one (no `e` field, or an
    /// id outside millisecond 0): it is passed over like an event the filter rejected, so a
    /// cursor never stalls on it.
    pub(super) event: Option<Decoded>,
}

/// The parts of an entry this adapter wrote.
#[derive(Debug)]
pub(super) struct Decoded {
    /// The entry id, e.g. `"42-0"`.
    pub(super) id: String,
    pub(super) timestamp_ns: u64,
    pub(super) payload: Bytes,
}

/// An entry's field as its producer stamps it, written straight into the command's buffer (no
/// buffer per event). The append script stores it as sent unless it must restamp it.
pub(super) struct EntryField<'a> {
    pub(super) timestamp_ns: u64,
    /// `"{producer}:{epoch}:{run}:{shard}:"`; the producer sequence completes the dedup id.
    pub(super) dedup_prefix: &'a str,
    pub(super) sequence: u64,
    pub(super) payload: &'a [u8],
}

impl ToRedisArgs for EntryField<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = writeln!(arg, "{} {}{}", self.timestamp_ns, self.dedup_prefix, self.sequence);
        let _ = arg.write_all(self.payload);
    }
}

/// The entry id of a position.
pub(super) fn entry_id(position: u64) -> String {
    format!("0-{position}")
}

/// The largest id this adapter can write: reads end there, so an entry someone else added
/// with another id scheme (a timestamp id sorts above all of ours) is never returned.
pub(super) const LAST_ID: &str = "0-18446744073709551615";

/// Parses `"{ms}-{seq}"`.
fn parse_id(id: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(id).ok()?;
    let (ms, seq) = text.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The timestamp of an entry's field: the digits before the first space.
fn parse_timestamp(stamp: &[u8]) -> Option<u64> {
    let end = stamp.iter().position(|&b| b == b' ').unwrap_or(stamp.len());
    std::str::from_utf8(&stamp[..end]).ok()?.parse().ok()
}

/// Splits a field into its timestamp and payload; `None` when it is not one of ours.
fn parse_field(field: Vec<u8>) -> Option<(u64, Bytes)> {
    let newline = field.iter().position(|&b| b == b'\n')?;
    let timestamp_ns = parse_timestamp(&field[..newline])?;
    // The payload keeps the field's allocation: advancing a `Bytes` made from a `Vec` neither
    // copies nor allocates.
    let mut payload = Bytes::from(field);
    payload.advance(newline + 1);
    Some((timestamp_ns, payload))
}

/// Parses an `XRANGE` reply (an array of `[id, [field, value, ...]]`). An error names what is
/// malformed; a well-formed entry that this adapter did not write has `event: None`.
pub(super) fn parse_range(reply: Value) -> Result<Vec<Entry>, String> {
    let items = match reply {
        Value::Array(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(format!("XRANGE reply is not an array: {other:?}")),
    };
    items.into_iter().map(parse_entry).collect()
}

fn parse_entry(item: Value) -> Result<Entry, String> {
    let Value::Array(parts) = item else { return Err(format!("stream entry is not an array: {item:?}")) };
    let mut parts = parts.into_iter();
    let (Some(Value::BulkString(id)), Some(fields)) = (parts.next(), parts.next()) else {
        return Err("stream entry lacks an id or fields".into());
    };
    let (ms, position) =
        parse_id(&id).ok_or_else(|| format!("bad stream entry id {:?}", String::from_utf8_lossy(&id)))?;
    let fields = match fields {
        Value::Array(fields) => fields,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    let mut stamped = None;
    let mut fields = fields.into_iter();
    while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
        if let (Value::BulkString(key), Value::BulkString(value)) = (key, value) {
            if key == FIELD {
                stamped = parse_field(value);
            }
        }
    }
    let event = match (ms, stamped) {
        (0, Some((timestamp_ns, payload))) => Some(Decoded {
            // The id bytes are ASCII digits and '-' (parse_id checked), so this never fails.
            id: String::from_utf8(id).unwrap_or_default(),
            timestamp_ns,
            payload,
        }),
        _ => None,
    };
    Ok(Entry { position, event })
}

/// For an `XREAD` reply that holds only entries outside millisecond 0 (another writer's id
/// scheme), the stream index and id of each, so the wait can go on past them. `None` when the
/// reply is empty, holds one of our entries, or has an unexpected shape: then the poll wakes
/// and reads.
pub(super) fn foreign_wakeups(reply: &Value, keys: &[String]) -> Option<Vec<(usize, String)>> {
    let Value::Array(streams) = reply else { return None };
    let mut foreign = Vec::new();
    for stream in streams {
        let Value::Array(parts) = stream else { return None };
        let [Value::BulkString(key), Value::Array(entries)] = parts.as_slice() else { return None };
        let index = keys.iter().position(|k| k.as_bytes() == key.as_slice())?;
        for entry in entries {
            let Value::Array(entry) = entry else { return None };
            let Some(Value::BulkString(id)) = entry.first() else { return None };
            match parse_id(id)? {
                (0, _) => return None,
                _ => foreign.push((index, String::from_utf8(id.clone()).ok()?)),
            }
        }
    }
    (!foreign.is_empty()).then_some(foreign)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    fn entry(id: &str, fields: &[(&[u8], &[u8])]) -> Value {
        Value::Array(vec![
            bulk(id.as_bytes()),
            Value::Array(fields.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect()),
        ])
    }

    #[test]
    fn decodes_own_entries_and_passes_over_foreign_ones() {
        let reply = Value::Array(vec![
            entry("0-7", &[(b"e", b"1700000000000000001 ab:1:0:6\n{\"a\":1}")]),
            entry("1-7", &[(b"e", b"1 ab:1:0:7\nx")]),
            entry("0-8", &[(b"other", b"field")]),
            entry("0-9", &[(b"other", b"field"), (b"e", b"5\n")]),
            entry("0-10", &[(b"e", b"notanumber ab:1:0:8\nx")]),
            entry("0-11", &[(b"e", b"1700000000000000002 ab:1:0:9 no newline")]),
            entry("0-12", &[(b"e", b"3 ab:1:0:10\nline\nbreaks\n")]),
        ]);
        let entries = parse_range(reply).unwrap();
        assert_eq!(entries.iter().map(|e| e.position).collect::<Vec<_>>(), [7, 7, 8, 9, 10, 11, 12]);
        let first = entries[0].event.as_ref().unwrap();
        assert_eq!((first.id.as_str(), first.timestamp_ns), ("0-7", 1_700_000_000_000_000_001));
        assert_eq!(first.payload.as_ref(), b"{\"a\":1}");
        assert!(entries[1].event.is_none(), "an id outside millisecond 0 is not ours");
        assert!(entries[2].event.is_none(), "no e field");
        let empty = entries[3].event.as_ref().unwrap();
        assert_eq!((empty.timestamp_ns, empty.payload.as_ref()), (5, &b""[..]));
        assert!(entries[4].event.is_none(), "a timestamp that is not a number");
        assert!(entries[5].event.is_none(), "no newline before a payload");
        assert_eq!(entries[6].event.as_ref().unwrap().payload.as_ref(), b"line\nbreaks\n");
    }

    #[test]
    fn a_field_is_written_as_the_reader_parses_it() {
        let payload = b"{\"k\":\"a\nb\"}";
        let field =
            EntryField { timestamp_ns: 1_700_000_000_000_000_042, dedup_prefix: "ab:1:0:", sequence: 9, payload };
        let args = field.to_redis_args();
        assert_eq!(args.len(), 1, "one argument");
        assert_eq!(args[0], b"1700000000000000042 ab:1:0:9\n{\"k\":\"a\nb\"}");
        let (timestamp_ns, parsed) = parse_field(args[0].clone()).unwrap();
        assert_eq!((timestamp_ns, parsed.as_ref()), (1_700_000_000_000_000_042, &payload[..]));
    }

    #[test]
    fn only_foreign_entries_let_a_wait_go_on() {
        let keys = vec!["p:0".to_owned(), "p:1".to_owned()];
        let reply = |ids: &[(&str, &str)]| {
            Value::Array(
                ids.iter()
                    .map(|(key, id)| Value::Array(vec![bulk(key.as_bytes()), Value::Array(vec![entry(id, &[])])]))
                    .collect(),
            )
        };
        let foreign = foreign_wakeups(&reply(&[("p:1", "1764000000000-0")]), &keys).unwrap();
        assert_eq!(foreign, [(1, "1764000000000-0".to_owned())]);
        assert!(foreign_wakeups(&reply(&[("p:1", "1764000000000-0"), ("p:0", "0-5")]), &keys).is_none());
        assert!(foreign_wakeups(&Value::Nil, &keys).is_none());
        assert!(foreign_wakeups(&reply(&[("other", "1-0")]), &keys).is_none());
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert!(parse_range(Value::Int(3)).is_err());
        assert!(parse_range(Value::Array(vec![Value::Int(1)])).is_err());
        assert!(parse_range(Value::Array(vec![entry("0-x", &[])])).is_err());
        assert!(parse_range(Value::Nil).unwrap().is_empty());
    }
}
