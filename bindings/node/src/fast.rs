//! The ingest calls as plain napi callbacks bound to one bus.
//!
//! A napi-rs v3 `&self` method pays for its borrow tracking on every call (a global mutex and
//! hash map, a class-identity check): measured, more than the ingest itself. Ingest is the one
//! path where that matters, so `_ingestUnwoken` (under `ingestRaw`), `_wake`, `ingestRawBatch`
//! and `ingestPacked` are created per bus with `napi_create_function`, carrying their own
//! `Arc<EventBus>` as callback data, and set as own (non-enumerable) properties of the instance. A call is then `napi_get_cb_info`
//! plus the work. Each function releases its `Arc` in its own finalizer, so a function kept
//! after the bus object is collected stays sound (and gets `SHUTTING_DOWN`).
//!
//! Every callback body runs inside `catch_unwind`: a panic must not cross `extern "C"`.

use crate::args;
use crate::errors::Failure;
use crate::page;
use napi::bindgen_prelude::{Env, FromNapiValue, JsError, Unknown};
use napi::sys;
use purple_rain::{EventBus, RawEvent};
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

type Body = fn(&Env, &EventBus, &[Unknown<'_>]) -> Result<Returned, Failure>;

/// What a callback hands back to JavaScript.
enum Returned {
    Undefined,
    Count(u32),
}

/// Defines the ingest functions on `instance`, each holding a clone of `bus`.
pub(crate) fn install(env: &Env, instance: sys::napi_value, bus: &Arc<EventBus>) -> napi::Result<()> {
    define(env, instance, bus, c"_ingestUnwoken", ingest_unwoken_cb)?;
    define(env, instance, bus, c"_wake", wake_cb)?;
    define(env, instance, bus, c"ingestRawBatch", ingest_raw_batch_cb)?;
    define(env, instance, bus, c"ingestPacked", ingest_packed_cb)?;
    Ok(())
}

fn define(
    env: &Env,
    instance: sys::napi_value,
    bus: &Arc<EventBus>,
    name: &CStr,
    callback: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value,
) -> napi::Result<()> {
    let data = Box::into_raw(Box::new(bus.clone())).cast::<c_void>();
    let mut function = ptr::null_mut();
    // SAFETY: live env on its JS thread; `name` is NUL-terminated; `data` is a leaked
    // `Box<Arc<EventBus>>` that the finalizer registered right below reclaims exactly once.
    let created = unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr(),
            name.to_bytes().len() as isize,
            Some(callback),
            data,
            &mut function,
        )
    };
    if created != sys::Status::napi_ok {
        // SAFETY: not handed to napi, so still ours.
        drop(unsafe { Box::from_raw(data.cast::<Arc<EventBus>>()) });
        return Err(napi::Error::from_reason(format!("cannot create {}", name.to_string_lossy())));
    }
    // SAFETY: `function` was just created in this env; `finalize_data` frees `data` when the
    // function is collected (or at env teardown).
    let finalizer = unsafe {
        sys::napi_add_finalizer(env.raw(), function, data, Some(finalize_data), ptr::null_mut(), ptr::null_mut())
    };
    if finalizer != sys::Status::napi_ok {
        // SAFETY: no finalizer owns `data`, and the function is never exposed, so it is never
        // called with the freed pointer.
        drop(unsafe { Box::from_raw(data.cast::<Arc<EventBus>>()) });
        return Err(napi::Error::from_reason(format!("cannot attach {}", name.to_string_lossy())));
    }
    let property = sys::napi_property_descriptor {
        utf8name: name.as_ptr(),
        name: ptr::null_mut(),
        method: None,
        getter: None,
        setter: None,
        value: function,
        attributes: sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable,
        data: ptr::null_mut(),
    };
    // SAFETY: `instance` is a live object of this env; one valid descriptor.
    let status = unsafe { sys::napi_define_properties(env.raw(), instance, 1, &property) };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::from_reason(format!("cannot define {}", name.to_string_lossy())));
    }
    Ok(())
}

unsafe extern "C" fn finalize_data(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Box<Arc<EventBus>>` leaked in `define`; napi calls this once.
    let bus = unsafe { Box::from_raw(data.cast::<Arc<EventBus>>()) };
    // Never the last reference to a live bus: the instance's finalizer shuts the bus down and
    // its drain task holds a reference until done, so this drop does not wait for anything.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(bus)));
}

/// The shared trampoline: reads `data` and up to 2 arguments, runs `body` under
/// `catch_unwind`, and throws its failure as a coded `Error`.
///
/// # Safety
/// `env`/`info` must be the ones napi passed to a callback created by [`define`].
unsafe fn trampoline(env: sys::napi_env, info: sys::napi_callback_info, body: Body) -> sys::napi_value {
    let mut argc = 2usize;
    let mut argv = [ptr::null_mut(); 2];
    let mut data = ptr::null_mut();
    // SAFETY: the caller passes napi's own env/info; `argv` has room for `argc` values.
    let status = unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) };
    let env = Env::from_raw(env);
    if status != sys::Status::napi_ok || data.is_null() {
        throw(&env, Failure::invalid_argument("cannot read the call's arguments"));
        return ptr::null_mut();
    }
    // SAFETY: `data` is this function's `Box<Arc<EventBus>>`, alive while the function object
    // is (and it is, being called).
    let bus: &EventBus = unsafe { &*data.cast::<Arc<EventBus>>() };
    // napi fills missing arguments with `undefined`, so both slots hold values.
    // SAFETY: both are live values of this callback.
    let arguments = unsafe {
        match (Unknown::from_napi_value(env.raw(), argv[0]), Unknown::from_napi_value(env.raw(), argv[1])) {
            (Ok(first), Ok(second)) => [first, second],
            _ => {
                throw(&env, Failure::invalid_argument("cannot read the call's arguments"));
                return ptr::null_mut();
            }
        }
    };
    match catch_unwind(AssertUnwindSafe(|| body(&env, bus, &arguments))) {
        Ok(Ok(Returned::Undefined)) => ptr::null_mut(),
        Ok(Ok(Returned::Count(n))) => {
            let mut value = ptr::null_mut();
            // SAFETY: live env; on failure `value` stays null, which reads as `undefined`.
            unsafe { sys::napi_create_uint32(env.raw(), n, &mut value) };
            value
        }
        Ok(Err(failure)) => {
            throw(&env, failure);
            ptr::null_mut()
        }
        Err(_) => {
            throw(&env, Failure::panic("purple-rain panicked during ingest"));
            ptr::null_mut()
        }
    }
}

fn throw(env: &Env, failure: Failure) {
    // SAFETY: `env` is the live env of the running callback.
    unsafe { JsError::from(failure.into_napi(env)).throw_into(env.raw()) };
}

unsafe extern "C" fn ingest_unwoken_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: napi's own env/info, for a function made by `define`.
    unsafe { trampoline(env, info, ingest_unwoken) }
}

unsafe extern "C" fn wake_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as above.
    unsafe { trampoline(env, info, wake) }
}

unsafe extern "C" fn ingest_raw_batch_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as above.
    unsafe { trampoline(env, info, ingest_raw_batch) }
}

unsafe extern "C" fn ingest_packed_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as above.
    unsafe { trampoline(env, info, ingest_packed) }
}

/// `_ingestUnwoken(event)`: one event, its bytes copied once, its shard's worker left asleep.
/// `index.js` builds `ingestRaw` on it and calls `_wake` at the end of the JS job (or sooner,
/// every `_wakeEvery()` events), so a burst of single calls costs one wake-up, not one each.
fn ingest_unwoken(env: &Env, bus: &EventBus, args: &[Unknown<'_>]) -> Result<Returned, Failure> {
    let bytes = args::event_bytes(env, &args[0], "event")?;
    bus.ingest_raw_unwoken(RawEvent::from_bytes(bytes))?;
    Ok(Returned::Undefined)
}

/// `_wake()`: wakes the workers with unwoken events.
fn wake(_env: &Env, bus: &EventBus, _args: &[Unknown<'_>]) -> Result<Returned, Failure> {
    bus.wake_workers();
    Ok(Returned::Undefined)
}

/// `ingestRawBatch(events)`: in order, stopping at the first failure (with `accepted`). One
/// worker wake-up per shard per call.
fn ingest_raw_batch(env: &Env, bus: &EventBus, args: &[Unknown<'_>]) -> Result<Returned, Failure> {
    let array = &args[0];
    let length = args::array_length(env, array, "events")?;
    let mut unreadable = None;
    let events = (0..length).map_while(|index| {
        match args::element(env, array, index, "events").and_then(|e| args::event_bytes(env, &e, "each event")) {
            Ok(bytes) => Some(RawEvent::from_bytes(bytes)),
            Err(failure) => {
                unreadable = Some(failure.with_accepted(index));
                None
            }
        }
    });
    // The events stop at the first unreadable element, and ingest stops at its first failure,
    // so at most one of the two happened, at index `accepted`.
    let (accepted, result) = bus.ingest_raw_batch(events);
    let accepted = u32::try_from(accepted).unwrap_or(u32::MAX);
    result.map_err(|e| Failure::from(e).with_accepted(accepted))?;
    match unreadable {
        Some(failure) => Err(failure),
        None => Ok(Returned::Count(accepted)),
    }
}

/// `ingestPacked(data, ends)`: event `i` is `data[ends[i-1] .. ends[i]]`; `ends` is checked
/// whole before anything is ingested. One copy of `data`; each event a refcounted slice of it;
/// one worker wake-up per shard per call.
fn ingest_packed(env: &Env, bus: &EventBus, args: &[Unknown<'_>]) -> Result<Returned, Failure> {
    let data = args::buffer_bytes(env, &args[0])
        .ok_or_else(|| Failure::invalid_argument("data must be a Buffer or Uint8Array"))?;
    let ends = args::uint32_array(env, &args[1], "ends")?;
    let count = u32::try_from(ends.len()).map_err(|_| Failure::invalid_argument("too many events in one call"))?;
    let used = page::check_ends(ends, data.len()).map_err(|e| Failure::invalid_argument(e).with_accepted(0))?;
    if count == 0 {
        return Ok(Returned::Count(0));
    }
    let block = bytes::Bytes::copy_from_slice(&data[..used]);
    let mut start = 0usize;
    let events = ends.iter().map(|&end| {
        let event = RawEvent::from_bytes(block.slice(start..end as usize));
        start = end as usize;
        event
    });
    let (accepted, result) = bus.ingest_raw_batch(events);
    // `accepted <= count`, which fits a u32.
    result.map_err(|e| Failure::from(e).with_accepted(accepted as u32))?;
    Ok(Returned::Count(count))
}
