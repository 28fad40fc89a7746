//! Counters and scaling: `pr_stats_get`, `pr_shard_count`, `pr_shard_ids`, `pr_add_shards`,
//! `pr_remove_shards`, `pr_suggest_scaling`.
//!
//! Counts come back through out-parameters with a status, never as a bare return value where 0
//! would be both an answer and the NULL-handle fallback. Output buffers are checked before
//! anything changes: a buffer that is too small fails the call with nothing done.

use super::bus::pr_bus;
use super::error::{fail, map_scaling_error, pr_status};
use super::poll::return_string;
use super::{ffi_boundary, try_out, try_ref, try_slice, PR_MAX_SHARDS};
use crate::runtime;
use crate::scaling::ScalingDecision;
use std::ffi::c_char;

/// Counters of a bus. The first five fields are the contract's, in this order; more fields are
/// only ever appended, with a `PR_ABI_VERSION` bump.
///
/// After `pr_flush` returns `PR_OK` and after `pr_shutdown`:
/// `events_dispatched + events_dropped == events_ingested`, exactly.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pr_stats {
    /// Events accepted by ingest calls.
    pub events_ingested: u64,
    /// Accepted events that will never reach the adapter, all causes (sum of `dropped_*`).
    pub events_dropped: u64,
    /// Batches the adapter accepted.
    pub batches_dispatched: u64,
    /// Events the adapter accepted.
    pub events_dispatched: u64,
    /// Set by shutdown if any accepted event was dropped.
    pub shutdown_was_lossy: bool,
    /// Dropped: evicted from a full ring (`drop_oldest`).
    pub dropped_evicted: u64,
    /// Dropped: in batches the adapter rejected with a non-retryable error.
    pub dropped_adapter_fatal: u64,
    /// Dropped: in batches whose retries ran out.
    pub dropped_retry_exhausted: u64,
    /// Dropped: lost because a shard worker died.
    pub dropped_lost: u64,
    /// Refused with `PR_ERR_BACKPRESSURE` (never ingested, so not drops).
    pub rejected_backpressure: u64,
    /// Times a producer waited for room (`block`).
    pub blocked_waits: u64,
    /// Batch retries after retryable adapter errors.
    pub retries: u64,
    /// Events the adapter discarded for retention (dispatched first, so not drops).
    pub events_trimmed: u64,
}

/// Writes the bus counters to `*out`. Works after `pr_shutdown` (read the final counts there).
///
/// Threading: any thread, concurrently with every call but `pr_bus_free`; lock-free.
///
/// # Safety
/// `bus` is NULL or a live handle; `out` points to a writable `pr_stats`.
#[no_mangle]
pub unsafe extern "C" fn pr_stats_get(bus: *const pr_bus, out: *mut pr_stats) -> pr_status {
    ffi_boundary! {
        let out = try_out!(out);
        let s = try_ref!(bus).bus.stats().snapshot();
        out.write(pr_stats {
            events_ingested: s.events_ingested,
            events_dropped: s.events_dropped,
            batches_dispatched: s.batches_dispatched,
            events_dispatched: s.events_dispatched,
            shutdown_was_lossy: s.shutdown_was_lossy,
            dropped_evicted: s.dropped_evicted,
            dropped_adapter_fatal: s.dropped_adapter_fatal,
            dropped_retry_exhausted: s.dropped_retry_exhausted,
            dropped_lost: s.dropped_lost,
            rejected_backpressure: s.rejected_backpressure,
            blocked_waits: s.blocked_waits,
            retries: s.retries,
            events_trimmed: s.events_trimmed,
        });
        pr_status::PR_OK
    }
}

/// The bus statistics as one JSON document: totals (the `pr_stats` fields by name, plus
/// `events_pending`, `workers_running`, `shards`), one object per shard (live, then retired) and
/// the adapter's own figures. The schema is in README.md ("Monitoring"); its `"schema"` field
/// changes when a field changes meaning. Works after `pr_shutdown`.
///
/// Ownership: on success `*out_json` receives a NUL-terminated string the caller owns and must
/// release with `pr_string_free`; `*out_len` (if `out_len` is not NULL) its length without the
/// NUL. Nothing is written on failure. Threading: any thread, concurrently with every call but
/// `pr_bus_free`.
///
/// # Safety
/// `bus` is NULL or a live handle; `out_json` points to writable memory for one pointer;
/// `out_len` is NULL or points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pr_stats_json(
    bus: *const pr_bus,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> pr_status {
    ffi_boundary! {
        let out_json = try_out!(out_json);
        let text = try_ref!(bus).bus.stats_json();
        return_string(&text, out_json, out_len)
    }
}

/// The same figures as `pr_stats_json` in the Prometheus text exposition format (0.0.4), ready
/// to serve as a `/metrics` response: names prefixed `purple_rain_`, counters ending in
/// `_total`, per-shard figures labelled `shard`. Ownership, threading and safety: as
/// `pr_stats_json` (free the text with `pr_string_free`).
///
/// # Safety
/// As `pr_stats_json`.
#[no_mangle]
pub unsafe extern "C" fn pr_stats_prometheus(
    bus: *const pr_bus,
    out_text: *mut *mut c_char,
    out_len: *mut usize,
) -> pr_status {
    ffi_boundary! {
        let out_text = try_out!(out_text);
        let text = try_ref!(bus).bus.stats_prometheus();
        return_string(&text, out_text, out_len)
    }
}

/// Writes the number of live shards to `*out`.
///
/// Threading: any thread, concurrently with every call but `pr_bus_free`.
///
/// # Safety
/// `bus` is NULL or a live handle; `out` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pr_shard_count(bus: *const pr_bus, out: *mut usize) -> pr_status {
    ffi_boundary! {
        let out = try_out!(out);
        out.write(try_ref!(bus).bus.shard_ids().len());
        pr_status::PR_OK
    }
}

/// Writes the live shard ids, ascending, to `out_ids` and their number to `*out_len`. A buffer
/// of `PR_MAX_SHARDS` entries is always enough.
///
/// Errors: `PR_ERR_BUFFER_TOO_SMALL` when `capacity` is below the number of shards (the message
/// gives it); nothing is written then.
///
/// # Safety
/// `bus` is NULL or a live handle; `out_ids` points to `capacity` writable `uint16_t`s (NULL only
/// if `capacity` is 0); `out_len` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pr_shard_ids(
    bus: *const pr_bus,
    out_ids: *mut u16,
    capacity: usize,
    out_len: *mut usize,
) -> pr_status {
    ffi_boundary! {
        let out_len = try_out!(out_len);
        let ids = try_ref!(bus).bus.shard_ids();
        if ids.len() > capacity {
            return fail(
                pr_status::PR_ERR_BUFFER_TOO_SMALL,
                format!("out_ids holds {capacity} ids but the bus has {} shards (PR_MAX_SHARDS always fits)", ids.len()),
            );
        }
        if let Err(status) = write_ids(out_ids, capacity, &ids) {
            return status;
        }
        out_len.write(ids.len());
        pr_status::PR_OK
    }
}

/// Adds `count` running shards and writes their new ids to `out_ids`, their number to
/// `*out_len`. Ids are never reused within the bus's life.
///
/// The buffer is checked first: `capacity < count` is `PR_ERR_BUFFER_TOO_SMALL` with no shard
/// added. Errors: `PR_ERR_SCALING` (count 0, past `max_shards`, partial failure: nothing is
/// reported as added that was not), `PR_ERR_SHUTTING_DOWN`. Nothing is written on failure.
///
/// Threading: any thread, concurrently with every call but `pr_bus_free`; blocks until the
/// shards run.
///
/// # Safety
/// `bus` is NULL or a live handle; `out_ids` points to `capacity` writable `uint16_t`s (NULL only
/// if `capacity` is 0); `out_len` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pr_add_shards(
    bus: *const pr_bus,
    count: u16,
    out_ids: *mut u16,
    capacity: usize,
    out_len: *mut usize,
) -> pr_status {
    ffi_boundary! {
        let out_len = try_out!(out_len);
        let bus = try_ref!(bus).bus.clone();
        // Plain comparison of two lengths: no multiplication, so no overflow to misreport.
        if usize::from(count) > capacity {
            return fail(
                pr_status::PR_ERR_BUFFER_TOO_SMALL,
                format!("out_ids holds {capacity} ids but {count} shards were requested; no shard was added"),
            );
        }
        if let Err(status) = write_ids(out_ids, capacity, &[]) {
            return status;
        }
        match runtime::wait(async move { bus.add_shards(count).await }) {
            Ok(ids) => {
                if let Err(status) = write_ids(out_ids, capacity, &ids) {
                    return status;
                }
                out_len.write(ids.len());
                pr_status::PR_OK
            }
            Err(e) => map_scaling_error(&e),
        }
    }
}

/// Removes the shards `ids[0..count)`: routing stops at once, their queued events are drained to
/// the adapter, and they stay pollable. Returns after the drain.
///
/// Errors: `PR_ERR_SCALING` (unknown shard, duplicate ids, would go below `min_shards` or remove
/// the last shard, partial failure), `PR_ERR_SHUTTING_DOWN`, `PR_ERR_INVALID_ARGUMENT` for a
/// `count` whose byte size overflows.
///
/// Threading: any thread, concurrently with every call but `pr_bus_free`; blocks until drained.
///
/// # Safety
/// `bus` is NULL or a live handle; `ids` points to `count` `uint16_t`s (NULL only if `count` is
/// 0).
#[no_mangle]
pub unsafe extern "C" fn pr_remove_shards(bus: *const pr_bus, ids: *const u16, count: usize) -> pr_status {
    ffi_boundary! {
        let bus = try_ref!(bus).bus.clone();
        let ids = try_slice!(ids, count).to_vec();
        match runtime::wait(async move { bus.remove_shards(ids).await }) {
            Ok(()) => pr_status::PR_OK,
            Err(e) => map_scaling_error(&e),
        }
    }
}

/// What `pr_suggest_scaling` recommends.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pr_scaling_action {
    /// Keep the shard set.
    PR_SCALING_NONE = 0,
    /// Add `count` shards.
    PR_SCALING_UP = 1,
    /// Remove the `count` shards listed in `shard_ids`.
    PR_SCALING_DOWN = 2,
}

/// A scaling recommendation. Fixed size, so no recommendation can be lost to a short buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pr_scaling_decision {
    /// What to do.
    pub action: pr_scaling_action,
    /// Shards to add (`PR_SCALING_UP`) or to remove (`PR_SCALING_DOWN`); 0 for none.
    pub count: u16,
    /// For `PR_SCALING_DOWN`, the shards to remove in `shard_ids[0..count)`.
    pub shard_ids: [u16; PR_MAX_SHARDS],
}

/// Recommends a scaling change from the load measured since the previous call (within the
/// config's `scaling` bounds). Applying it is up to the caller (`pr_add_shards`,
/// `pr_remove_shards`) unless the policy has `"auto": true`.
///
/// Threading: any thread, concurrently with every call but `pr_bus_free`.
///
/// # Safety
/// `bus` is NULL or a live handle; `out` points to a writable `pr_scaling_decision`.
#[no_mangle]
pub unsafe extern "C" fn pr_suggest_scaling(bus: *const pr_bus, out: *mut pr_scaling_decision) -> pr_status {
    ffi_boundary! {
        let out = try_out!(out);
        let bus = try_ref!(bus).bus.clone();
        let decision = runtime::wait(async move { bus.suggest_scaling().await });
        let mut result =
            pr_scaling_decision { action: pr_scaling_action::PR_SCALING_NONE, count: 0, shard_ids: [0; PR_MAX_SHARDS] };
        match decision {
            ScalingDecision::None => {}
            ScalingDecision::ScaleUp(n) => {
                result.action = pr_scaling_action::PR_SCALING_UP;
                result.count = n;
            }
            ScalingDecision::ScaleDown(ids) => {
                let n = ids.len().min(PR_MAX_SHARDS);
                result.action = pr_scaling_action::PR_SCALING_DOWN;
                result.count = n as u16;
                result.shard_ids[..n].copy_from_slice(&ids[..n]);
            }
        }
        out.write(result);
        pr_status::PR_OK
    }
}

/// Copies `ids` into the caller's buffer (checked like any slice; `ids.len() <= capacity`).
fn write_ids(out_ids: *mut u16, capacity: usize, ids: &[u16]) -> Result<(), pr_status> {
    super::error::slice_checked(out_ids.cast_const(), capacity, "out_ids")?;
    if !ids.is_empty() {
        // SAFETY: `slice_checked` verified `out_ids` is non-NULL for `capacity > 0` and the byte
        // size fits; the caller guarantees `capacity` writable elements and `ids.len() <=
        // capacity` holds at every call site.
        unsafe { std::ptr::copy_nonoverlapping(ids.as_ptr(), out_ids, ids.len().min(capacity)) };
    }
    Ok(())
}
