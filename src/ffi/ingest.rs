//! Ingest: one event (validated JSON or raw bytes), a pointer array, or a packed buffer.
//!
//! The bytes are copied once (C keeps its buffer). Single events go into per-thread chunks of
//! 16 KiB that the events reference as `Bytes` slices: one `malloc` per chunk instead of one per
//! event. A batch is copied into one block of its own that its events slice: one `malloc` and
//! one `memcpy` per batch. Events over 1 KiB get an allocation of their own either way, which
//! bounds what a retained event can keep alive. Batches are validated whole before the first
//! event is ingested, then ingested in order, stopping at the first event the bus refuses;
//! `*out_accepted` says how many went in before it.

use super::bus::pr_bus;
use super::error::{fail, invalid_argument, map_ingestion_error, pr_status};
use super::json::check_json_syntax;
use super::{ffi_boundary, try_out, try_ref, try_slice};
use crate::bus::EventBus;
use crate::model::RawEvent;
use bytes::{Bytes, BytesMut};
use std::cell::RefCell;

/// Accepts one JSON event: the bytes must be valid UTF-8 and exactly one JSON value; they are
/// stored as given. Never blocks, except in `"backpressure":"block"` mode.
///
/// Errors: `PR_ERR_INVALID_UTF8`, `PR_ERR_INVALID_JSON` (with the byte offset), then as
/// `pr_ingest_raw`.
///
/// Ownership: the bytes are copied; the caller keeps its buffer. Threading: any thread,
/// concurrently with every call but `pr_bus_free`.
///
/// # Safety
/// `bus` is NULL or a live handle; `json` points to `len` readable bytes (it may be NULL only if
/// `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn pr_ingest(bus: *const pr_bus, json: *const u8, len: usize) -> pr_status {
    ffi_boundary! {
        let bus = &try_ref!(bus).bus;
        let bytes = try_slice!(json, len);
        if let Err(e) = std::str::from_utf8(bytes) {
            return fail(
                pr_status::PR_ERR_INVALID_UTF8,
                format!("event is not valid UTF-8 at byte {}", e.valid_up_to()),
            );
        }
        if let Err(status) = check_json_syntax(bytes, "event") {
            return status;
        }
        match bus.ingest_raw(RawEvent::from_bytes(copy_event(bytes))) {
            Ok(()) => pr_status::PR_OK,
            Err(e) => map_ingestion_error(&e, None),
        }
    }
}

/// Accepts one event as opaque bytes (not parsed), routed by the xxh3-64 hash of the bytes.
/// Never blocks, except in `"backpressure":"block"` mode. An empty event is allowed.
///
/// Errors: `PR_ERR_BACKPRESSURE` (ring full, `drop_newest`), `PR_ERR_SHUTTING_DOWN`,
/// `PR_ERR_UNROUTED`: in every case the event was not accepted.
///
/// Ownership: the bytes are copied. Threading: any thread, concurrently with every call but
/// `pr_bus_free`. Memory: each ingesting thread keeps the shard set it routed through last
/// (the rings' memory) until it ingests into any bus again or exits, also after `pr_bus_free`;
/// the thread that calls `pr_bus_free` drops its own at once.
///
/// # Safety
/// `bus` is NULL or a live handle; `bytes` points to `len` readable bytes (NULL only if `len`
/// is 0).
#[no_mangle]
pub unsafe extern "C" fn pr_ingest_raw(bus: *const pr_bus, bytes: *const u8, len: usize) -> pr_status {
    ffi_boundary! {
        let bus = &try_ref!(bus).bus;
        let bytes = try_slice!(bytes, len);
        match bus.ingest_raw(RawEvent::from_bytes(copy_event(bytes))) {
            Ok(()) => pr_status::PR_OK,
            Err(e) => map_ingestion_error(&e, None),
        }
    }
}

/// Like `pr_ingest_raw`, but routes by the hash of `key`: all events with the same key go to the
/// same shard and keep their order.
///
/// # Safety
/// As `pr_ingest_raw`; `key` points to `key_len` readable bytes (NULL only if `key_len` is 0).
#[no_mangle]
pub unsafe extern "C" fn pr_ingest_raw_with_key(
    bus: *const pr_bus,
    bytes: *const u8,
    len: usize,
    key: *const u8,
    key_len: usize,
) -> pr_status {
    ffi_boundary! {
        let bus = &try_ref!(bus).bus;
        let bytes = try_slice!(bytes, len);
        let key = try_slice!(key, key_len);
        match bus.ingest_raw(RawEvent::with_key(copy_event(bytes), key)) {
            Ok(()) => pr_status::PR_OK,
            Err(e) => map_ingestion_error(&e, None),
        }
    }
}

/// Accepts `count` raw events given as a pointer array: event `i` is `events[i]`, `lens[i]`
/// bytes. Stops at the first event the bus refuses: `*out_accepted` is the number of events
/// accepted before it and the status is that event's (e.g. `PR_ERR_BACKPRESSURE`; the message
/// names the index). `count` 0 is `PR_OK` with 0 accepted.
///
/// The arrays are checked before any event is ingested: `events[i]` NULL with `lens[i] > 0` is
/// `PR_ERR_NULL_ARGUMENT` and a total length that overflows is `PR_ERR_INVALID_ARGUMENT`, with 0
/// accepted.
///
/// Out-parameter: unlike other calls, `*out_accepted` is written on success and on every failure
/// (0 when nothing was accepted) as long as `out_accepted` itself is not NULL, since a partial
/// batch is what it reports.
///
/// Ownership: the bytes are copied (events up to 1 KiB into one block per call). Threading:
/// any thread, concurrently with every call but `pr_bus_free`.
///
/// # Safety
/// `bus` is NULL or a live handle; `events` and `lens` point to `count` elements each (NULL
/// only if `count` is 0); each `events[i]` points to `lens[i]` readable bytes; `out_accepted`
/// points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pr_ingest_raw_batch(
    bus: *const pr_bus,
    events: *const *const u8,
    lens: *const usize,
    count: usize,
    out_accepted: *mut usize,
) -> pr_status {
    ffi_boundary! {
        let out_accepted = try_out!(out_accepted);
        out_accepted.write(0);
        let bus = &try_ref!(bus).bus;
        let events = try_slice!(events, count);
        let lens = try_slice!(lens, count);
        let mut total = 0usize;
        for (i, (&ptr, &len)) in events.iter().zip(lens).enumerate() {
            if ptr.is_null() && len > 0 {
                return fail(pr_status::PR_ERR_NULL_ARGUMENT, format!("events[{i}] is NULL but lens[{i}] = {len}"));
            }
            total = match total.checked_add(len) {
                Some(total) if total <= isize::MAX as usize => total,
                _ => return invalid_argument(format!("total length of the batch overflows at lens[{i}] = {len}")),
            };
        }
        let slices = events.iter().zip(lens).map(|(&ptr, &len)| {
            if len == 0 {
                &[][..]
            } else {
                // SAFETY: `ptr` is non-NULL (checked above for every `len > 0`) and the caller
                // guarantees it points to `len` readable bytes for the duration of the call; the
                // total fits in `isize` (checked above).
                unsafe { std::slice::from_raw_parts(ptr, len) }
            }
        });
        let (accepted, status) = ingest_each(bus, slices);
        out_accepted.write(accepted);
        status
    }
}

/// Accepts `count` raw events packed in one buffer: event `i` is
/// `data[ends[i-1] .. ends[i])` with `ends[-1] = 0`. One crossing, no pointer array: the form for
/// bindings (Go, Node) and the fastest one. Same stopping rule and `*out_accepted` as
/// `pr_ingest_raw_batch`.
///
/// `ends` is checked before any event is ingested: it must be non-decreasing and no entry may
/// exceed `data_len`, otherwise `PR_ERR_INVALID_ARGUMENT` (naming the index) with 0 accepted.
/// Bytes after `ends[count-1]` are ignored.
///
/// Ownership: the bytes are copied (events up to 1 KiB into one block per call). Threading:
/// any thread, concurrently with every call but `pr_bus_free`.
///
/// # Safety
/// `bus` is NULL or a live handle; `data` points to `data_len` readable bytes (NULL only if
/// `data_len` is 0); `ends` points to `count` elements (NULL only if `count` is 0);
/// `out_accepted` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pr_ingest_raw_packed(
    bus: *const pr_bus,
    data: *const u8,
    data_len: usize,
    ends: *const u32,
    count: usize,
    out_accepted: *mut usize,
) -> pr_status {
    ffi_boundary! {
        let out_accepted = try_out!(out_accepted);
        out_accepted.write(0);
        let bus = &try_ref!(bus).bus;
        let data = try_slice!(data, data_len);
        let ends = try_slice!(ends, count);
        let mut previous = 0usize;
        for (i, &end) in ends.iter().enumerate() {
            let end = end as usize;
            if end < previous {
                return invalid_argument(format!("ends[{i}] = {end} is below ends[{}] = {previous}", i - 1));
            }
            if end > data.len() {
                return invalid_argument(format!("ends[{i}] = {end} is past data_len = {}", data.len()));
            }
            previous = end;
        }
        let starts = std::iter::once(0).chain(ends.iter().copied());
        let slices = starts.zip(ends.iter().copied()).map(|(start, end)| &data[start as usize..end as usize]);
        let (accepted, status) = ingest_each(bus, slices);
        out_accepted.write(accepted);
        status
    }
}

/// Size of the per-thread chunks small events are copied into.
const CHUNK_BYTES: usize = 16 * 1024;
/// Events larger than this get an allocation of their own.
const CHUNKED_MAX: usize = 1024;

thread_local! {
    static CHUNK: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Copies an event's bytes into this thread's current chunk (a new one when it is full).
#[inline]
fn copy_event(bytes: &[u8]) -> Bytes {
    if bytes.is_empty() {
        return Bytes::new();
    }
    if bytes.len() > CHUNKED_MAX {
        return Bytes::copy_from_slice(bytes);
    }
    CHUNK
        .try_with(|chunk| {
            let mut chunk = chunk.borrow_mut();
            if chunk.capacity() < bytes.len() {
                *chunk = BytesMut::with_capacity(CHUNK_BYTES);
            }
            chunk.extend_from_slice(bytes);
            chunk.split().freeze()
        })
        // During thread teardown the chunk may be gone: copy on its own.
        .unwrap_or_else(|_| Bytes::copy_from_slice(bytes))
}

/// Copies the slices (the small ones into one shared block) and ingests them in order, stopping
/// at the first refused event, with one worker wake-up per shard for the whole batch. Returns
/// how many were accepted and the status.
fn ingest_each<'a, I>(bus: &EventBus, slices: I) -> (usize, pr_status)
where
    I: Iterator<Item = &'a [u8]> + Clone,
{
    let small = |slice: &&[u8]| slice.len() <= CHUNKED_MAX;
    let mut block = BytesMut::with_capacity(slices.clone().filter(small).map(<[u8]>::len).sum());
    slices.clone().filter(small).for_each(|slice| block.extend_from_slice(slice));
    let block = block.freeze();
    let mut offset = 0;
    let events = slices.map(|slice| {
        let bytes = if small(&slice) {
            offset += slice.len();
            block.slice(offset - slice.len()..offset)
        } else {
            Bytes::copy_from_slice(slice)
        };
        RawEvent::from_bytes(bytes)
    });
    match bus.ingest_raw_batch(events) {
        (accepted, Ok(())) => (accepted, pr_status::PR_OK),
        (accepted, Err(e)) => {
            let context = format!("event {accepted} of the batch was not accepted ({accepted} accepted before it): ");
            (accepted, map_ingestion_error(&e, Some(&context)))
        }
    }
}
