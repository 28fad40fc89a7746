//! A poll page as JavaScript receives it: a few flat arrays, built on the JS thread straight
//! from the library's page, so a page of 1000 events costs a couple of dozen napi calls and two
//! copies into memory Node allocates (and frees, on this same thread) — nothing per event.
//!
//! Shape (`index.js` builds `poll`'s event objects and `pollPacked`'s `PackedPage` from it):
//! `{count, data, ends, shards, sequences, timestamps, origins, ids, idsJson, cursor, hasMore,
//! missed}`. `data` is one `Buffer` of every payload back to back, event `i` ending at
//! `ends[i]`. The five columns are views of one more Buffer's memory, laid out widest first so
//! every view is aligned: `sequences`, `timestamps` and `origins` (`BigUint64Array`: exact, as
//! `poll`'s bigints are; an origin is the Net adapter's 64-bit node id, 0 from other adapters),
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

/// Bytes of one event in the column buffer: sequence, timestamp, origin, end, shard.
const COLUMN_BYTES: usize = 8 + 8 + 8 + 4 + 2;

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
    let count = u32::try_from(events.len()).map_err(|_| failure("a page of 2^32 events or more"))?;
    let (data, [sequences, timestamps, origins, ends, shards], derived) = fill(env, events, ids == Ids::OnDemand)?;
    let ids = (!derived).then(|| joined_ids(events));
    let mut object = Object::new(env)?;
    object.set_named_property("count", count)?;
    object.set_named_property("data", data)?;
    object.set_named_property("ends", ends)?;
    object.set_named_property("shards", shards)?;
    object.set_named_property("sequences", sequences)?;
    object.set_named_property("timestamps", timestamps)?;
    object.set_named_property("origins", origins)?;
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
/// to its element size: `[sequences, timestamps, origins, ends, shards]`, and the total length.
fn column_offsets(n: usize) -> ([usize; 5], usize) {
    ([0, 8 * n, 16 * n, 24 * n, 28 * n], COLUMN_BYTES * n)
}

/// Makes the payload Buffer and the column views and fills them in one pass over the events:
/// `(data, [sequences, timestamps, origins, ends, shards], every id derivable)`, the last only
/// checked when `derive_ids`.
fn fill(env: &Env, events: &[StoredEvent], derive_ids: bool) -> napi::Result<(RawValue, [RawValue; 5], bool)> {
    let n = events.len();
    let total: usize = events.iter().map(|e| e.payload.len()).sum();
    if u32::try_from(total).is_err() {
        return Err(failure("a page of 4 GiB or more of payload does not fit `ends`; lower `limit`"));
    }
    let (data, payload_base) = buffer(env, total)?;
    let (offsets, column_bytes) = column_offsets(n);
    // Room to align the columns to 8 bytes whatever the Buffer's address.
    let (columns, column_base) = buffer(env, column_bytes + 7)?;
    let pad = column_base.align_offset(8);
    let mut derived = derive_ids;
    if n > 0 {
        // SAFETY: the column Buffer has `COLUMN_BYTES n + 7` bytes; from `pad` (< 8) on, each
        // column is `n` elements at its offset (`column_offsets`), inside the buffer, aligned to
        // its element (the base is 8-aligned and the offsets are multiples of the element
        // size), and the five do not overlap. Nothing else can touch the fresh Buffers before
        // this function returns.
        let (sequences, timestamps, origins, ends, shards) = unsafe {
            let base = column_base.add(pad);
            (
                std::slice::from_raw_parts_mut(base.add(offsets[0]).cast::<u64>(), n),
                std::slice::from_raw_parts_mut(base.add(offsets[1]).cast::<u64>(), n),
                std::slice::from_raw_parts_mut(base.add(offsets[2]).cast::<u64>(), n),
                std::slice::from_raw_parts_mut(base.add(offsets[3]).cast::<u32>(), n),
                std::slice::from_raw_parts_mut(base.add(offsets[4]).cast::<u16>(), n),
            )
        };
        let mut end = 0usize;
        for (i, event) in events.iter().enumerate() {
            let payload = &event.payload;
            // SAFETY: the payload Buffer has `total` bytes, the sum of the payload lengths, so
            // `end + payload.len() <= total`; source and destination do not overlap.
            unsafe { ptr::copy_nonoverlapping(payload.as_ptr(), payload_base.add(end), payload.len()) };
            end += payload.len();
            sequences[i] = event.sequence;
            timestamps[i] = event.timestamp_ns;
            origins[i] = event.origin;
            // `end <= total`, which fits a u32 (checked above).
            ends[i] = end as u32;
            shards[i] = event.shard;
            derived = derived && is_shard_dash_sequence(&event.id, event.shard, event.sequence);
        }
    }
    let (array_buffer, columns_at) = array_buffer_of(env, &columns)?;
    let view = |kind, offset| -> napi::Result<RawValue> {
        let mut array = ptr::null_mut();
        // SAFETY: `array_buffer` is the live ArrayBuffer under the column Buffer;
        // `offset + n * element size` is within it, and `offset` keeps the element alignment.
        let status = unsafe { sys::napi_create_typedarray(env.raw(), kind, n, array_buffer.0, offset, &mut array) };
        if status != sys::Status::napi_ok {
            return Err(failure("cannot create a column view"));
        }
        Ok(RawValue(array))
    };
    let at = |column: usize| columns_at + pad + offsets[column];
    let views = [
        view(sys::TypedarrayType::biguint64_array, at(0))?,
        view(sys::TypedarrayType::biguint64_array, at(1))?,
        view(sys::TypedarrayType::biguint64_array, at(2))?,
        view(sys::TypedarrayType::uint32_array, at(3))?,
        view(sys::TypedarrayType::uint16_array, at(4))?,
    ];
    Ok((data, views, derived || n == 0))
}

/// A new `len`-byte Buffer, uninitialised (every byte is written before JavaScript sees it), and
/// its first byte.
fn buffer(env: &Env, len: usize) -> napi::Result<(RawValue, *mut u8)> {
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    // SAFETY: live env on its JS thread; out-pointers are locals.
    let status = unsafe { sys::napi_create_buffer(env.raw(), len, &mut data, &mut buffer) };
    if status != sys::Status::napi_ok || (len > 0 && data.is_null()) {
        return Err(failure(&format!("cannot allocate a {len}-byte Buffer")));
    }
    Ok((RawValue(buffer), data.cast()))
}

/// The `ArrayBuffer` under a Buffer, and the Buffer's offset in it.
fn array_buffer_of(env: &Env, buffer: &RawValue) -> napi::Result<(RawValue, usize)> {
    let (mut kind, mut length, mut offset) = (sys::TypedarrayType::uint8_array, 0usize, 0usize);
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut array_buffer = ptr::null_mut();
    // SAFETY: `buffer` is a live Buffer (a Uint8Array) of this env; out-pointers are locals.
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env.raw(),
            buffer.0,
            &mut kind,
            &mut length,
            &mut data,
            &mut array_buffer,
            &mut offset,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(failure("cannot read the column Buffer"));
    }
    Ok((RawValue(array_buffer), offset))
}

fn failure(message: &str) -> napi::Error {
    napi::Error::from_reason(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, shard: u16, sequence: u64) -> StoredEvent {
        StoredEvent { id: id.into(), shard, sequence, timestamp_ns: 0, payload: bytes::Bytes::new(), origin: 0 }
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
            let sizes = [8, 8, 8, 4, 2];
            for (column, (&offset, &size)) in offsets.iter().zip(&sizes).enumerate() {
                assert_eq!(offset % size, 0, "column {column} misaligned for n = {n}");
                let end = offsets.get(column + 1).copied().unwrap_or(total);
                assert_eq!(end - offset, n * size, "column {column} for n = {n}");
            }
        }
    }
}
