//! Handle lifecycle (`pr_bus_new`, `pr_flush`, `pr_flush_timeout`, `pr_shutdown`,
//! `pr_bus_free`) and versions.
//!
//! A `pr_bus` owns an `Arc<EventBus>`. `pr_shutdown` stops the bus but leaves the handle valid
//! (later calls return `PR_ERR_SHUTTING_DOWN`), so a thread entering a call while another shuts
//! down never touches freed memory; only `pr_bus_free` frees, and it alone needs the caller to
//! guarantee no concurrent use. Blocking calls clone the `Arc` into the future they wait for.

use super::error::{fail, map_adapter_error, map_config_error, pr_status, Out};
use super::json::check_json_syntax;
use super::{ffi_boundary, try_opt_str, try_out, try_ref, PR_ABI_VERSION};
use crate::adapter::IdPool;
use crate::bus::EventBus;
use crate::config::EventBusConfig;
use crate::error::FlushError;
use crate::runtime;
use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

/// A running event bus. Opaque: create with `pr_bus_new`, destroy with `pr_bus_free`.
pub struct pr_bus {
    pub(crate) bus: Arc<EventBus>,
    /// Ids of pages already copied into results, for the next polls to write into.
    pub(crate) ids: IdPool,
}

/// The ABI version this library implements; equal to `PR_ABI_VERSION` of the header it was built
/// with. Check it at startup to detect a header/library mismatch.
///
/// Threading: any thread.
#[no_mangle]
pub extern "C" fn pr_abi_version() -> u32 {
    ffi_boundary! { PR_ABI_VERSION }
}

/// The crate version, e.g. `"0.1.0"`; equal to `PR_VERSION` of the matching header.
///
/// Ownership: static; do not free. Threading: any thread.
#[no_mangle]
pub extern "C" fn pr_version() -> *const c_char {
    ffi_boundary! { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() }
}

/// Creates and starts a bus from a JSON config (the shape in the README); NULL, `""` or `"null"`
/// gives the defaults (4 shards, Noop adapter). For an embedded log to poll from, use
/// `{"adapter":{"type":"memory"}}`.
///
/// Errors: `PR_ERR_INVALID_UTF8`, `PR_ERR_INVALID_JSON` (byte offset in the message),
/// `PR_ERR_CONFIG` (unknown key, wrong type, invalid value: the message names the key), an
/// adapter code if the adapter cannot start.
///
/// Ownership: on success `*out` receives a new bus that the caller owns and must release with
/// `pr_bus_free`; on failure `*out` is not written. Threading: any thread; blocks until the bus
/// runs.
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string; `out` points to writable memory for one
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn pr_bus_new(config_json: *const c_char, out: *mut *mut pr_bus) -> pr_status {
    ffi_boundary! {
        let out = try_out!(out);
        let text = try_opt_str!(config_json).unwrap_or("");
        let trimmed = text.trim();
        if !trimmed.is_empty() && trimmed != "null" {
            if let Err(status) = check_json_syntax(trimmed.as_bytes(), "config_json") {
                return status;
            }
        }
        let config = match EventBusConfig::from_json(text) {
            Ok(config) => config,
            Err(e) => return map_config_error(&e, text),
        };
        match runtime::wait(EventBus::new(config)) {
            Ok(bus) => {
                out.write(Box::into_raw(Box::new(pr_bus { bus: Arc::new(bus), ids: IdPool::new() })));
                pr_status::PR_OK
            }
            Err(e) => map_config_error(&e, text),
        }
    }
}

/// Barrier: returns once every event accepted before the call has been handed to the adapter
/// (or counted dropped) and the adapter has flushed. After it returns `PR_OK`,
/// `events_dispatched + events_dropped == events_ingested` as of the call.
///
/// Errors: `PR_ERR_SHUTTING_DOWN` after `pr_shutdown`; adapter codes.
///
/// Threading: any thread, concurrently with every call but `pr_bus_free`; blocks the calling
/// thread (without spinning) until done.
///
/// # Safety
/// `bus` is NULL or a live handle from `pr_bus_new`.
#[no_mangle]
pub unsafe extern "C" fn pr_flush(bus: *const pr_bus) -> pr_status {
    ffi_boundary! {
        let bus = try_ref!(bus).bus.clone();
        match runtime::wait(async move { bus.flush().await }) {
            Ok(()) => pr_status::PR_OK,
            Err(e) => map_adapter_error(&e),
        }
    }
}

/// What `pr_flush_timeout` saw.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct pr_flush_report {
    /// Events accepted and not yet delivered or dropped when the call returned: 0 on `PR_OK`;
    /// on `PR_ERR_TIMEOUT`, the events still queued (in rings or in a batch being retried).
    /// They stay queued and keep being delivered; nothing is cancelled.
    pub undelivered: u64,
    /// Events dropped (evicted, retry budget spent, fatal adapter error, lost worker) since the
    /// previous `pr_flush_timeout` returned `PR_OK` or `PR_ERR_TIMEOUT`. Each drop is reported
    /// once. `pr_flush` reports nothing and so does not reset this count.
    pub dropped: u64,
    /// `dropped > 0`.
    pub lossy: bool,
}

/// `pr_flush` with a deadline and a report of losses. Waits until every event accepted before
/// the call has been handed to the adapter (or counted dropped) and the adapter has flushed, or
/// until `timeout_ms` milliseconds passed, whichever is first. `UINT64_MAX` waits without a
/// deadline (like `pr_flush`, with the report).
///
/// Returns `PR_OK` (everything delivered or counted dropped; read `out->lossy`),
/// `PR_ERR_TIMEOUT` (the deadline passed: the undelivered events stay queued and keep being
/// delivered; calling again waits for them again), `PR_ERR_SHUTTING_DOWN` after `pr_shutdown`,
/// or an adapter code if the adapter's flush failed.
///
/// Ownership: `out` may be NULL (no report wanted). Otherwise it is written on `PR_OK` and on
/// `PR_ERR_TIMEOUT` (both say how many were dropped, and a timeout how many are undelivered),
/// and left untouched on every other status. Threading: any thread, concurrently with every
/// call but `pr_bus_free`; blocks the calling thread (without spinning) for at most about
/// `timeout_ms`.
///
/// # Safety
/// `bus` is NULL or a live handle from `pr_bus_new`; `out` is NULL or points to writable memory
/// for one `pr_flush_report`.
#[no_mangle]
pub unsafe extern "C" fn pr_flush_timeout(bus: *const pr_bus, timeout_ms: u64, out: *mut pr_flush_report) -> pr_status {
    ffi_boundary! {
        let bus = try_ref!(bus).bus.clone();
        let out = Out::new(out);
        let timeout = if timeout_ms == u64::MAX { Duration::MAX } else { Duration::from_millis(timeout_ms) };
        let report = |undelivered, dropped| pr_flush_report { undelivered, dropped, lossy: dropped > 0 };
        match runtime::wait(async move { bus.flush_timeout(timeout).await }) {
            Ok(done) => {
                if let Some(out) = out {
                    out.write(report(0, done.dropped));
                }
                pr_status::PR_OK
            }
            Err(e @ FlushError::Timeout { undelivered, dropped }) => {
                if let Some(out) = out {
                    out.write(report(undelivered, dropped));
                }
                fail(pr_status::from(e.kind()), format!("{e} (deadline {timeout_ms} ms)"))
            }
            Err(FlushError::Adapter(e)) => map_adapter_error(&e),
        }
    }
}

/// Drains, flushes and stops the bus. The handle stays valid: later ingest, poll, flush and
/// scaling calls return `PR_ERR_SHUTTING_DOWN`, while `pr_stats_get` and `pr_shard_count` keep
/// working (read the final counters there). Idempotent: every call, also concurrent ones,
/// returns after the one shutdown completed, with its result. A lossy shutdown still returns
/// `PR_OK`; `pr_stats.shutdown_was_lossy` tells.
///
/// Threading: any thread, concurrently with every call but `pr_bus_free`; blocks (without
/// spinning) until the shutdown completed.
///
/// # Safety
/// `bus` is NULL or a live handle from `pr_bus_new`.
#[no_mangle]
pub unsafe extern "C" fn pr_shutdown(bus: *const pr_bus) -> pr_status {
    ffi_boundary! {
        let bus = try_ref!(bus).bus.clone();
        match runtime::wait(async move { bus.shutdown_via_ref().await }) {
            Ok(()) => pr_status::PR_OK,
            Err(e) => map_adapter_error(&e),
        }
    }
}

/// Shuts the bus down if that has not happened, then frees the handle. NULL is a no-op.
///
/// Ownership: consumes `bus`; the handle and every pointer derived from it (but not poll results,
/// which own their data) are invalid afterwards. Threading: like `free`, the caller must
/// guarantee no other thread uses `bus` during or after this call.
///
/// # Safety
/// `bus` is NULL or a handle from `pr_bus_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn pr_bus_free(bus: *mut pr_bus) {
    ffi_boundary! {
        if bus.is_null() {
            return;
        }
        // SAFETY: non-NULL, created by `Box::into_raw` in `pr_bus_new`, and the caller
        // guarantees it was not freed before and is not in use by another thread.
        let owned = unsafe { Box::from_raw(bus) };
        let handle = owned.bus.clone();
        // The result is in the stats (`shutdown_was_lossy`); there is no one to return it to.
        let _ = runtime::wait(async move { handle.shutdown_via_ref().await });
        drop(owned);
    }
}
