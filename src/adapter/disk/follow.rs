//! Read-only opens follow a log that another process writes: before each read, what the
//! writer appended since the last look (to the segment being read at its end, and in segments
//! it started since) is decoded and added to the in-memory tail.
//!
//! The writer never rewrites a record, so a record that decodes whole (its checksum holds)
//! stays as it is; the first one that does not is where the writer is, mid-write, and the next
//! look starts there again. A follower so sees every event the writer had written (synced or
//! not) when the poll began. Segments the writer's retention deleted leave the follower's view
//! at the next look.

use super::record::{self, Decoded};
use super::segment::{self, Entry, Run};
use super::shard::ShardLog;
use crate::error::AdapterError;
use bytes::Bytes;
use std::io::{Read, Seek, SeekFrom};

impl ShardLog {
    /// Reads what the writer appended since the last look. `cache_bytes` bounds the tail kept.
    pub(super) fn catch_up(&self, cache_bytes: u64) -> Result<(), AdapterError> {
        let io =
            |what: &str, e: std::io::Error| AdapterError::Fatal(format!("cannot {what} {}: {e}", self.dir.display()));
        let segments = match segment::list(&self.dir) {
            Ok(segments) => segments,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("list", e)),
        };
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let started = state.tail;
        let (mut at_segment, mut offset) = started.unwrap_or((0, 0));
        let newer = started.map_or(0, |(segment, _)| segment);
        for (first, path) in segments.iter().filter(|(first, _)| *first >= newer) {
            if *first != at_segment || state.tail.is_none() {
                (at_segment, offset) = (*first, 0);
            }
            let len = std::fs::metadata(path).map_err(|e| io("stat", e))?.len();
            if len > offset {
                let mut bytes = Vec::with_capacity((len - offset) as usize);
                let mut file = std::fs::File::open(path).map_err(|e| io("open", e))?;
                file.seek(SeekFrom::Start(offset))
                    .and_then(|_| file.read_to_end(&mut bytes))
                    .map_err(|e| io("read", e))?;
                let bytes = Bytes::from(bytes);
                let mut at = 0;
                // The record format is the segment header's; past the header, read it again.
                let format = if offset == 0 {
                    segment::format_of(&bytes)
                } else {
                    let mut header = [0u8; 8];
                    file.seek(SeekFrom::Start(0))
                        .and_then(|_| file.read_exact(&mut header))
                        .map_err(|e| io("read", e))?;
                    segment::format_of(&header)
                };
                if offset == 0 {
                    if format.is_none() {
                        state.tail = Some((at_segment, 0));
                        break;
                    }
                    at = segment::HEADER.len();
                    if *first != state.next || state.cache.entries.is_empty() {
                        // A new shard log, or a gap before this segment: the tail restarts here.
                        state.cache = Run { first: *first, entries: Default::default() };
                        state.cache_bytes = 0;
                        state.next = *first;
                    }
                }
                let format = format.unwrap_or_default();
                while let Decoded::Record(r) = record::decode_as(&bytes, at, format) {
                    // As the segment scan: u64::MAX is no sequence the bus writes.
                    if r.sequence != state.next || r.sequence == u64::MAX {
                        break;
                    }
                    state.cache_bytes += r.payload.len() as u64;
                    let payload = bytes.slice(r.payload.clone());
                    state.cache.entries.push_back(Entry { timestamp_ns: r.timestamp_ns, payload, origin: r.origin });
                    state.next += 1;
                    at = r.end();
                }
                offset += at as u64;
            }
            state.tail = Some((at_segment, offset));
        }
        state.segments =
            segments.iter().map(|(first, path)| (*first, std::fs::metadata(path).map_or(0, |m| m.len()))).collect();
        state.trim_cache(cache_bytes);
        Ok(())
    }
}
