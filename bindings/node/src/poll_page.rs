//! A poll page as JavaScript receives it: a few flat arrays, built on the JS thread straight
//! from the library's page, so a page of 1000 events costs a couple of dozen napi calls and two
//! copies into memory V8 allocates (and frees, on this same thread) — nothing per event.
//!
//! Shape (`index.js` builds `poll`'s event objects and `pollPacked`'s `PackedPage` from it):
//! `{count, data, ends, shards, sequences, timestamps, ids, idsJson, cursor, hasMore, missed}`.
//! `data` is one `Buffer` of every payload back to back, event `i` ending at `ends[i]`. The
//! four columns are views of one `ArrayBuffer`, laid out widest first so every view is
//! aligned: `sequences` and `timestamps` (`BigUint64Array`: exact, as `poll`'s bigints are),
//! `ends` (`Uint32Array`), `shards` (`Uint16Array`). `ids` is every id joined by `'\n'` (a JSON
//! array when an id holds a `'\n'`, with `idsJson`), or `null` when asked for [`Ids::OnDemand`]
//! and every id is `"{shard}-{sequence}"`, which JavaScript derives when asked.

use crate::page::RawValue;
use napi::bindgen_prelude::{Env, JsObjectValue, Object};
use napi::sys;
use napi::JsValue;
use purple_rain::{ConsumeResponse, IdPool, StoredEvent};
use std::ptr;

/// Separator of event ids in the joined `ids`; ids that contain it are sent as JSON.
const ID_SEPARATOR: char = '\n';

/// Bytes of one event in the column `ArrayBuffer`: sequence, timestamp, end, shard.
const COLUMN_BYTES: usize = 8 + 8 + 4 + 2;

/// How the page carries its ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ids {
    /// Always as a string: `poll` builds an `id` per event anyway.
    Joined,
    /// Left out when every id is `"{shard}-{sequence}"` (the Memory adapter's), so a consumer
    /// that never reads an id never pays for one.
    OnDemand,
}

/// Builds the page object. JS thread only. The page's id strings go to `pool` for the next
/// polls to write into.
pub(crate) fn to_js(env: &Env, mut page: ConsumeResponse, ids: Ids, pool: &IdPool) -> napi::Result<RawValue> {
    let events = &page.events;
    let count = u32::try_from(events.len()).map_err(|_| napi::Error::from_reason("a page of 2^32 events or more"))?;
    let data = payload_buffer(env, events)?;
    let [sequences, timestamps, ends, shards] = columns(env, events)?;
    let ids = match ids {
        Ids::OnDemand if events.iter().all(|e| is_shard_dash_sequence(&e.id, e.shard, e.sequence)) => None,
        _ => Some(joined_ids(events)),
    };
    let mut object = Object::new(env)?;
    object.set_named_property("count", count)?;
    object.set_named_property("data", data)?;
    object.set_named_property("ends", ends)?;
    object.set_named_property("shards", shards)?;
    object.set_named_property("sequences", sequences)?;
    object.set_named_property("timestamps", timestamps)?;
    let (ids, ids_json) = ids.map_or((None, false), |(joined, json)| (Some(joined), json));
    object.set_named_property("ids", ids)?;
    object.set_named_property("idsJson", ids_json)?;
    object.set_named_property("cursor", std::mem::take(&mut page.cursor))?;
    object.set_named_property("hasMore", page.has_more)?;
    object.set_named_property("missed", page.missed as f64)?;
    pool.recycle(page.events);
    Ok(RawValue(object.raw()))
}

/// Whether `id` is exactly `"{shard}-{sequence}"` in decimal, no sign, no leading zero: what
/// JavaScript's `` `${shard}-${sequence}` `` gives back.
fn is_shard_dash_sequence(id: &str, shard: u16, sequence: u64) -> bool {
    /// The value of canonical decimal digits (no sign, no leading zero), else `None`. Byte by
    /// byte: this runs once per event, and the ids are a few bytes long.
    fn decimal(digits: &[u8]) -> Option<u64> {
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        digits.iter().try_fold(0u64, |value, &b| {
            let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
            value.checked_mul(10)?.checked_add(u64::from(digit))
        })
    }
    let id = id.as_bytes();
    let Some(dash) = id.iter().position(|&b| b == b'-') else { return false };
    decimal(&id[..dash]) == Some(u64::from(shard)) && decimal(&id[dash + 1..]) == Some(sequence)
}

/// Every id joined by [`ID_SEPARATOR`], or a JSON array of them (`true`) when one holds it.
fn joined_ids(events: &[StoredEvent]) -> (String, bool) {
    if events.iter().any(|e| e.id.contains(ID_SEPARATOR)) {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        // Serialising a list of strings cannot fail.
        return (serde_json::to_string(&ids).unwrap_or_default(), true);
    }
    let mut joined = String::with_capacity(events.iter().map(|e| e.id.len() + 1).sum());
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            joined.push(ID_SEPARATOR);
        }
        joined.push_str(&event.id);
    }
    (joined, false)
}

/// Where each column starts in the column buffer of `n` events, widest first so each is aligned
/// to its element size: `[sequences, timestamps, ends, shards]`, and the total length.
fn column_offsets(n: usize) -> ([usize; 4], usize) {
    ([0, 8 * n, 16 * n, 20 * n], COLUMN_BYTES * n)
}

/// One Buffer holding every payload back to back.
fn payload_buffer(env: &Env, events: &[StoredEvent]) -> napi::Result<RawValue> {
    let total: usize = events.iter().map(|e| e.payload.len()).sum();
    if u32::try_from(total).is_err() {
        return Err(failure("a page of 4 GiB or more of payload does not fit `ends`; lower `limit`"));
    }
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    // SAFETY: live env on its JS thread; out-pointers are locals.
    let status = unsafe { sys::napi_create_buffer(env.raw(), total, &mut data, &mut buffer) };
    if status != sys::Status::napi_ok || (total > 0 && data.is_null()) {
        return Err(failure(&format!("cannot allocate a {total}-byte Buffer")));
    }
    let mut offset = 0usize;
    for event in events {
        let payload = &event.payload;
        // SAFETY: `data` has `total` writable bytes, the sum of the payload lengths, so
        // `offset + payload.len() <= total`; source and destination do not overlap.
        unsafe { ptr::copy_nonoverlapping(payload.as_ptr(), data.cast::<u8>().add(offset), payload.len()) };
        offset += payload.len();
    }
    Ok(RawValue(buffer))
}

/// The four column views, `[sequences, timestamps, ends, shards]`, over one `ArrayBuffer`.
fn columns(env: &Env, events: &[StoredEvent]) -> napi::Result<[RawValue; 4]> {
    let n = events.len();
    let (offsets, total) = column_offsets(n);
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    // SAFETY: live env on its JS thread; out-pointers are locals.
    let status = unsafe { sys::napi_create_arraybuffer(env.raw(), total, &mut data, &mut buffer) };
    if status != sys::Status::napi_ok || (total > 0 && data.is_null()) {
        return Err(failure(&format!("cannot allocate a {total}-byte ArrayBuffer")));
    }
    if n > 0 {
        if (data as usize) % 8 != 0 {
            return Err(failure("the column ArrayBuffer is not 8-byte aligned"));
        }
        let base = data.cast::<u8>();
        // SAFETY: the buffer has `total = 22 n` bytes, 8-aligned (checked); each column is `n`
        // elements at its offset (`column_offsets`), inside the buffer, aligned to its element
        // (offsets are multiples of the element size), and the four do not overlap. Nothing
        // else can touch the fresh buffer before this function returns.
        let (sequences, timestamps, ends, shards) = unsafe {
            (
                std::slice::from_raw_parts_mut(base.add(offsets[0]).cast::<u64>(), n),
                std::slice::from_raw_parts_mut(base.add(offsets[1]).cast::<u64>(), n),
                std::slice::from_raw_parts_mut(base.add(offsets[2]).cast::<u32>(), n),
                std::slice::from_raw_parts_mut(base.add(offsets[3]).cast::<u16>(), n),
            )
        };
        let mut end = 0u32;
        for (i, event) in events.iter().enumerate() {
            // The payload total fits a u32 (checked by `payload_buffer` first).
            end = end.wrapping_add(event.payload.len() as u32);
            sequences[i] = event.sequence;
            timestamps[i] = event.timestamp_ns;
            ends[i] = end;
            shards[i] = event.shard;
        }
    }
    let view = |kind, offset| -> napi::Result<RawValue> {
        let mut array = ptr::null_mut();
        // SAFETY: `buffer` is the live ArrayBuffer made above; `offset + n * element size`
        // is within it and `offset` is a multiple of the element size.
        let status = unsafe { sys::napi_create_typedarray(env.raw(), kind, n, buffer, offset, &mut array) };
        if status != sys::Status::napi_ok {
            return Err(failure("cannot create a column view"));
        }
        Ok(RawValue(array))
    };
    Ok([
        view(sys::TypedarrayType::biguint64_array, offsets[0])?,
        view(sys::TypedarrayType::biguint64_array, offsets[1])?,
        view(sys::TypedarrayType::uint32_array, offsets[2])?,
        view(sys::TypedarrayType::uint16_array, offsets[3])?,
    ])
}

fn failure(message: &str) -> napi::Error {
    napi::Error::from_reason(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, shard: u16, sequence: u64) -> StoredEvent {
        StoredEvent { id: id.into(), shard, sequence, timestamp_ns: 0, payload: bytes::Bytes::new() }
    }

    #[test]
    fn only_canonical_shard_dash_sequence_ids_are_derived() {
        assert!(is_shard_dash_sequence("0-0", 0, 0));
        assert!(is_shard_dash_sequence("3-17", 3, 17));
        let max = format!("{}-{}", u16::MAX, u64::MAX);
        assert!(is_shard_dash_sequence(&max, u16::MAX, u64::MAX));
        for (id, shard, sequence) in [
            ("3-18", 3, 17),
            ("4-17", 3, 17),
            ("03-17", 3, 17),
            ("3-017", 3, 17),
            ("+3-17", 3, 17),
            ("3-+17", 3, 17),
            ("3--17", 3, 17),
            ("3-17-0", 3, 17),
            ("3-18446744073709551616", 3, 0),
            ("3-1x", 3, 1),
            ("3", 3, 0),
            ("-3", 0, 3),
            ("", 0, 0),
            ("1700000000000-0", 1, 0),
        ] {
            assert!(!is_shard_dash_sequence(id, shard, sequence), "{id}");
        }
    }

    #[test]
    fn ids_join_with_newlines_or_go_as_json() {
        assert_eq!(joined_ids(&[event("0-1", 0, 1), event("1-9", 1, 9)]), ("0-1\n1-9".to_owned(), false));
        assert_eq!(joined_ids(&[]), (String::new(), false));
        assert_eq!(joined_ids(&[event("a\nb", 0, 0), event("c", 0, 1)]), (r#"["a\nb","c"]"#.to_owned(), true));
    }

    #[test]
    fn columns_are_aligned_and_disjoint() {
        for n in [0, 1, 3, 1000] {
            let (offsets, total) = column_offsets(n);
            let sizes = [8, 8, 4, 2];
            for (column, (&offset, &size)) in offsets.iter().zip(&sizes).enumerate() {
                assert_eq!(offset % size, 0, "column {column} misaligned for n = {n}");
                let end = offsets.get(column + 1).copied().unwrap_or(total);
                assert_eq!(end - offset, n * size, "column {column} for n = {n}");
            }
        }
    }
}
