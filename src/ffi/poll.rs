//! Callback-free polling: `pr_poll` returns an opaque result that owns its events; views borrow
//! payload and id pointers from it (no copy) until `pr_poll_result_free`. `pr_poll_json` returns
//! the same page as one JSON string for scripting.
//!
//! The result holds no length a caller could change: `pr_poll_result_free` only drops a `Box`
//! the library made, so nothing C writes into a view can corrupt the free.

use super::bus::pr_bus;
use super::error::{fail, invalid_argument, map_consumer_error, pr_status, Out};
use super::json::check_json_syntax;
use super::{ffi_boundary, try_opt_str, try_out, try_ref};
use crate::adapter::IdPool;
use crate::consume::{nesting_depth, ConsumeRequest, ConsumeResponse, JSON_DEPTH_LIMIT};
use crate::error::ConsumerError;
use crate::model::StoredEvent;
use crate::runtime;
use std::ffi::{c_char, CString};
use std::fmt::Write as _;

/// One event of a poll result. Every pointer borrows from the result and stays valid until
/// `pr_poll_result_free`; the library never reads the view back, so a caller may modify its
/// copy freely.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pr_event_view {
    /// The exact bytes ingested (not NUL-terminated).
    pub payload: *const u8,
    /// Length of `payload` in bytes.
    pub payload_len: usize,
    /// The adapter's position for the event, NUL-terminated (e.g. `"2-17"` in memory).
    pub id: *const c_char,
    /// Shard the event was routed to.
    pub shard: u16,
    /// Per-shard sequence, strictly increasing, never reused.
    pub sequence: u64,
    /// Ingestion wall clock, ns since the Unix epoch, strictly increasing per shard.
    pub timestamp_ns: u64,
    /// The node that ingested the event (the Net adapter's node id); 0 from adapters that do
    /// not know nodes.
    pub origin: u64,
}

/// A page of events returned by `pr_poll`. Opaque; read with the `pr_poll_result_*` functions,
/// release with `pr_poll_result_free`. Immutable once returned: any number of threads may read
/// one result at the same time.
pub struct pr_poll_result {
    events: Vec<StoredEvent>,
    /// Every event's id, NUL-terminated, back to back: one allocation for the page.
    ids: Vec<u8>,
    /// Start of each event's id in `ids`.
    id_starts: Vec<usize>,
    cursor: CString,
    has_more: bool,
    missed: u64,
}

impl pr_poll_result {
    /// Copies the ids into one block and hands the id strings to `pool` for the next poll.
    fn new(mut response: ConsumeResponse, pool: &IdPool) -> Self {
        let mut ids = Vec::with_capacity(response.events.iter().map(|e| e.id.len() + 1).sum());
        let mut id_starts = Vec::with_capacity(response.events.len());
        for event in &response.events {
            id_starts.push(ids.len());
            let id = event.id.as_bytes();
            if id.contains(&0) {
                // Adapter positions are ASCII and never hold NUL; drop one rather than truncate.
                ids.extend(id.iter().filter(|&&b| b != 0));
            } else {
                ids.extend_from_slice(id);
            }
            ids.push(0);
        }
        pool.recycle_ids(response.events.iter_mut().map(|e| std::mem::take(&mut e.id)));
        let cursor = CString::new(response.cursor.into_bytes().into_iter().filter(|&b| b != 0).collect::<Vec<u8>>())
            .unwrap_or_default();
        Self { events: response.events, ids, id_starts, cursor, has_more: response.has_more, missed: response.missed }
    }
}

/// Parses a request the way every poll entry point does: NULL, `""` or `"null"` is the default
/// request (100 events from the start).
fn parse_request(text: Option<&str>) -> Result<ConsumeRequest, pr_status> {
    let text = text.unwrap_or("").trim();
    ConsumeRequest::from_json(text).map_err(|e| {
        // Not JSON at all: `PR_ERR_INVALID_JSON` with the byte offset. (A filter nested past
        // the JSON depth limit is not JSON to serde either, but the request parser already
        // called it `InvalidFilter`.)
        if matches!(&e, ConsumerError::Json(json) if json.is_syntax()) {
            if let Err(status) = check_json_syntax(text.as_bytes(), "request_json") {
                return status;
            }
        }
        map_consumer_error(&e, text)
    })
}

fn run_poll(bus: &pr_bus, request: ConsumeRequest) -> Result<ConsumeResponse, pr_status> {
    runtime::block_here(bus.bus.poll_reusing(request, &bus.ids)).map_err(|e| map_consumer_error(&e, ""))
}

/// Reads a page of events. `request_json` has the shape `{"limit": 100, "from": "<cursor>",
/// "filter": {..}, "ordering": "sequence"|"timestamp", "shards": [0,1], "wait_ms": 0}`; NULL,
/// `""` or `"null"` reads up to 100 events from the start. Pass the result's cursor as `"from"`
/// to continue: never a repeat, never a skip. With `wait_ms` and nothing to return, waits (no
/// spinning) up to that long for new events; a `pr_shutdown` meanwhile ends the wait with
/// `PR_ERR_SHUTTING_DOWN`.
///
/// Errors: `PR_ERR_INVALID_UTF8`, `PR_ERR_INVALID_JSON`, `PR_ERR_INVALID_REQUEST` (unknown key,
/// wrong type, unknown shard), `PR_ERR_INVALID_CURSOR`, `PR_ERR_INVALID_FILTER`,
/// `PR_ERR_SHUTTING_DOWN`, adapter codes.
///
/// Ownership: on success `*out` receives a result the caller owns and must release with
/// `pr_poll_result_free` (also when it holds no events); on failure `*out` is not written.
/// Threading: any thread, concurrently with every call but `pr_bus_free`; blocks until the page
/// is read. The read runs on the calling thread (no hand-off to a library thread), so the
/// result is allocated where it will be freed; a long poll parks the thread without spinning.
///
/// # Safety
/// `bus` is NULL or a live handle; `request_json` is NULL or NUL-terminated; `out` points to
/// writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn pr_poll(
    bus: *const pr_bus,
    request_json: *const c_char,
    out: *mut *mut pr_poll_result,
) -> pr_status {
    ffi_boundary! {
        let out = try_out!(out);
        let bus = try_ref!(bus);
        let request = match parse_request(try_opt_str!(request_json)) {
            Ok(request) => request,
            Err(status) => return status,
        };
        match run_poll(bus, request) {
            Ok(response) => {
                out.write(Box::into_raw(Box::new(pr_poll_result::new(response, &bus.ids))));
                pr_status::PR_OK
            }
            Err(status) => status,
        }
    }
}

/// Number of events in the result; 0 for NULL.
///
/// # Safety
/// `result` is NULL or a live result from `pr_poll`.
#[no_mangle]
pub unsafe extern "C" fn pr_poll_result_len(result: *const pr_poll_result) -> usize {
    ffi_boundary! { try_ref!(result).events.len() }
}

/// Writes a view of event `index` (0-based, in the requested order) to `*out`. The view's
/// pointers borrow from `result` and stay valid until `pr_poll_result_free(result)`.
///
/// Errors: `PR_ERR_NULL_ARGUMENT`, `PR_ERR_INVALID_ARGUMENT` when `index >= len`.
///
/// Threading: any thread; a result may be read by several threads at once.
///
/// # Safety
/// `result` is NULL or a live result from `pr_poll`; `out` points to a writable
/// `pr_event_view`.
#[no_mangle]
pub unsafe extern "C" fn pr_poll_result_event(
    result: *const pr_poll_result,
    index: usize,
    out: *mut pr_event_view,
) -> pr_status {
    ffi_boundary! {
        let out = try_out!(out);
        let result = try_ref!(result);
        let (Some(event), Some(&id_start)) = (result.events.get(index), result.id_starts.get(index)) else {
            return invalid_argument(format!("index {index} is out of range: the result holds {} events", result.events.len()));
        };
        out.write(pr_event_view {
            payload: event.payload.as_ptr(),
            payload_len: event.payload.len(),
            // `id_start` is the start of a NUL-terminated id inside `ids`.
            id: result.ids[id_start..].as_ptr().cast(),
            shard: event.shard,
            sequence: event.sequence,
            timestamp_ns: event.timestamp_ns,
            origin: event.origin,
        });
        pr_status::PR_OK
    }
}

/// The cursor after this page: pass it as `"from"` in the next request. NULL only for a NULL
/// `result`.
///
/// Ownership: borrowed from `result`; valid until `pr_poll_result_free`. Copy it to keep it.
///
/// # Safety
/// `result` is NULL or a live result from `pr_poll`.
#[no_mangle]
pub unsafe extern "C" fn pr_poll_result_cursor(result: *const pr_poll_result) -> *const c_char {
    ffi_boundary! { try_ref!(result).cursor.as_ptr() }
}

/// Whether a selected shard holds events past the cursor that this page did not examine: poll
/// again with the cursor. `false` for NULL.
///
/// # Safety
/// `result` is NULL or a live result from `pr_poll`.
#[no_mangle]
pub unsafe extern "C" fn pr_poll_result_has_more(result: *const pr_poll_result) -> bool {
    ffi_boundary! { try_ref!(result).has_more }
}

/// Events the cursor had not reached that retention trimmed before this poll (the consumer fell
/// behind); 0 normally and for NULL.
///
/// # Safety
/// `result` is NULL or a live result from `pr_poll`.
#[no_mangle]
pub unsafe extern "C" fn pr_poll_result_missed(result: *const pr_poll_result) -> u64 {
    ffi_boundary! { try_ref!(result).missed }
}

/// Frees a poll result and everything its views point to. NULL is a no-op.
///
/// Threading: the caller must guarantee no other thread uses `result` during or after the call.
///
/// # Safety
/// `result` is NULL or a result from `pr_poll` not freed before.
#[no_mangle]
pub unsafe extern "C" fn pr_poll_result_free(result: *mut pr_poll_result) {
    ffi_boundary! {
        if !result.is_null() {
            // SAFETY: non-NULL, made by `Box::into_raw` in `pr_poll`, and the caller guarantees
            // it was not freed before and is not in use.
            drop(unsafe { Box::from_raw(result) });
        }
    }
}

/// Like `pr_poll`, but returns the page as one JSON string, for scripting:
/// `{"events":[{"id":"0-1","shard":0,"sequence":1,"timestamp_ns":...,"payload":<value>}],
/// "cursor":"...","has_more":false,"missed":0}`. A payload that is valid JSON is embedded as
/// that value; any other payload appears as `"payload_base64"` (standard alphabet) instead. So
/// does a JSON payload nested more than 124 levels deep: embedded 3 levels down, it would make
/// the page deeper than the 127 levels serde_json (and readers with a like limit) accept.
/// `sequence` and `timestamp_ns` are integers up to 2^64-1 (parse them as 64-bit).
///
/// Ownership: on success `*out_json` receives a NUL-terminated string the caller owns and must
/// release with `pr_string_free`; `*out_len` (if `out_len` is not NULL) its length without the
/// NUL. Nothing is written on failure. Threading: as `pr_poll`.
///
/// # Safety
/// As `pr_poll`; `out_json` points to writable memory for one pointer; `out_len` is NULL or
/// points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pr_poll_json(
    bus: *const pr_bus,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> pr_status {
    ffi_boundary! {
        let out_json = try_out!(out_json);
        let bus = try_ref!(bus);
        let request = match parse_request(try_opt_str!(request_json)) {
            Ok(request) => request,
            Err(status) => return status,
        };
        let response = match run_poll(bus, request) {
            Ok(response) => response,
            Err(status) => return status,
        };
        let text = response_json(&response);
        bus.ids.recycle(response.events);
        return_string(&text, out_json, out_len)
    }
}

/// Hands `text` to C as a NUL-terminated copy the caller frees with `pr_string_free`, and its
/// length through `out_len` when that is not NULL. The copy is malloc'd, so `pr_string_free`
/// is `free` and needs no length a caller could change.
pub(crate) fn return_string(text: &str, out: Out<*mut c_char>, out_len: *mut usize) -> pr_status {
    // SAFETY: plain allocation of `len + 1` bytes; checked for NULL below.
    let ptr = unsafe { libc::malloc(text.len() + 1) }.cast::<u8>();
    if ptr.is_null() {
        return fail(pr_status::PR_ERR_PANIC, format!("out of memory allocating {} bytes", text.len() + 1));
    }
    // SAFETY: `ptr` is a fresh allocation of `text.len() + 1` bytes that does not overlap `text`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), ptr, text.len());
        ptr.add(text.len()).write(0);
    }
    if let Some(out_len) = Out::new(out_len) {
        out_len.write(text.len());
    }
    out.write(ptr.cast());
    pr_status::PR_OK
}

/// Frees a string returned by the library (`pr_poll_json`, `pr_stats_json`,
/// `pr_stats_prometheus`). NULL is a no-op. The library does not rely on the string's contents
/// or length, so writing into it before freeing is harmless.
///
/// # Safety
/// `s` is NULL or a string from one of those functions, not freed before.
#[no_mangle]
pub unsafe extern "C" fn pr_string_free(s: *mut c_char) {
    ffi_boundary! {
        // SAFETY: the caller guarantees `s` is NULL or came from `libc::malloc` in `pr_poll_json`
        // and was not freed; `free(NULL)` is a no-op.
        unsafe { libc::free(s.cast()) }
    }
}

/// The deepest payload `response_json` embeds as JSON: the page puts it 3 levels down
/// (`{"events":[{"payload":`), and the page must stay within serde_json's 127 levels.
const EMBEDDED_DEPTH_LIMIT: usize = JSON_DEPTH_LIMIT - 3;

fn response_json(response: &ConsumeResponse) -> String {
    use base64::Engine as _;
    let payload_bytes: usize = response.events.iter().map(|e| e.payload.len() + 96).sum();
    let mut out = String::with_capacity(payload_bytes + 128);
    out.push_str("{\"events\":[");
    for (i, event) in response.events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        out.push_str(&serde_json::Value::from(event.id.as_str()).to_string());
        let _ = write!(
            out,
            ",\"shard\":{},\"sequence\":{},\"timestamp_ns\":{},",
            event.shard, event.sequence, event.timestamp_ns
        );
        let as_json = std::str::from_utf8(&event.payload)
            .ok()
            .filter(|text| nesting_depth(text) <= EMBEDDED_DEPTH_LIMIT)
            .filter(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
        match as_json {
            Some(text) => {
                out.push_str("\"payload\":");
                out.push_str(text.trim());
            }
            None => {
                out.push_str("\"payload_base64\":\"");
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(&event.payload));
                out.push('"');
            }
        }
        out.push('}');
    }
    out.push_str("],\"cursor\":");
    out.push_str(&serde_json::Value::from(response.cursor.as_str()).to_string());
    let _ = write!(out, ",\"has_more\":{},\"missed\":{}}}", response.has_more, response.missed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn a_filter_nested_past_the_json_limit_is_an_invalid_filter_with_a_short_message() {
        let deep = format!("{}{}{}", r#"{"$not":"#.repeat(200), r#"{"path":"a","value":1}"#, "}".repeat(200));
        let text = format!(r#"{{"limit":5,"filter":{deep}}}"#);
        assert_eq!(parse_request(Some(&text)).unwrap_err(), pr_status::PR_ERR_INVALID_FILTER);
        // SAFETY: the library's own NUL-terminated message for this thread.
        let message = unsafe { std::ffi::CStr::from_ptr(super::super::error::pr_last_error_message()) }
            .to_string_lossy()
            .into_owned();
        assert!(message.len() < 250 && message.contains("127"), "{message}");
        // Plain syntax errors stay INVALID_JSON with their offset.
        assert_eq!(parse_request(Some(r#"{"limit":"#)).unwrap_err(), pr_status::PR_ERR_INVALID_JSON);
    }

    #[test]
    fn poll_json_keeps_every_page_within_127_levels() {
        let event = |payload: String| StoredEvent {
            id: "0-1".into(),
            shard: 0,
            sequence: 1,
            timestamp_ns: 2,
            payload: payload.into_bytes().into(),
            origin: 0,
        };
        for (depth, embedded) in
            [(1, true), (EMBEDDED_DEPTH_LIMIT, true), (EMBEDDED_DEPTH_LIMIT + 1, false), (128, false)]
        {
            let response = ConsumeResponse {
                events: vec![event(nested(depth))],
                cursor: String::new(),
                has_more: false,
                missed: 0,
            };
            let page = response_json(&response);
            let value: serde_json::Value = serde_json::from_str(&page).expect("the page is readable JSON");
            assert_eq!(value["events"][0].get("payload").is_some(), embedded, "depth {depth}");
            assert_eq!(value["events"][0].get("payload_base64").is_some(), !embedded, "depth {depth}");
        }
    }
}
