//! Reading JS arguments without copying, and with our own error code.
//!
//! napi-rs's typed parameters would answer a wrong type with its own `InvalidArg` error, and
//! its owned `Buffer` takes a reference per call; the hot ingest path wants neither. These
//! helpers borrow the bytes of a `Buffer` (any `ArrayBufferView`) or copy a string's UTF-8
//! once, and report a wrong type as `INVALID_ARGUMENT`. All raw-pointer `unsafe` of the
//! binding lives here.

use crate::errors::Failure;
use napi::bindgen_prelude::{Env, Unknown};
use napi::{sys, JsValue};
use std::ptr;

/// Events up to this size are copied into a shared chunk instead of an allocation of their own.
const SMALL_EVENT: usize = 1024;
/// Size of those chunks.
const CHUNK: usize = 64 * 1024;

thread_local! {
    static CHUNK_TAIL: std::cell::RefCell<bytes::BytesMut> = std::cell::RefCell::new(bytes::BytesMut::new());
}

/// Writes `len` bytes into the chunk through `fill` and hands them out as their own `Bytes`.
/// `fill` gets room for `len + 1` bytes (napi writes a NUL after strings) and returns how many
/// it wrote, or `None` on failure.
fn carve(len: usize, fill: impl FnOnce(&mut [std::mem::MaybeUninit<u8>]) -> Option<usize>) -> Option<bytes::Bytes> {
    CHUNK_TAIL.with(|tail| {
        let mut tail = tail.borrow_mut();
        if tail.capacity() - tail.len() < len + 1 {
            *tail = bytes::BytesMut::with_capacity(CHUNK);
        }
        let spare = tail.spare_capacity_mut();
        let written = fill(&mut spare[..len + 1])?.min(len);
        // `fill` initialised the first `written` spare bytes (it reports what it wrote).
        let filled = tail.len() + written;
        // SAFETY: as above; `filled` stays within capacity since `written <= len < spare`.
        unsafe { tail.set_len(filled) };
        Some(tail.split().freeze())
    })
}

/// Copies an event's bytes once. Small events are carved out of a per-thread 64 KiB chunk: one
/// refcount increment instead of a `malloc` whose `free` happens on a worker thread (the
/// producer/consumer pattern that keeps the allocator on its slow path). A chunk is freed when
/// the last event carved from it is.
fn copy_small(slice: &[u8]) -> bytes::Bytes {
    if slice.len() > SMALL_EVENT {
        return bytes::Bytes::copy_from_slice(slice);
    }
    CHUNK_TAIL.with(|tail| {
        let mut tail = tail.borrow_mut();
        if tail.capacity() - tail.len() < slice.len() {
            *tail = bytes::BytesMut::with_capacity(CHUNK);
        }
        tail.extend_from_slice(slice);
        tail.split().freeze()
    })
}

/// Borrows the bytes of a `Buffer` / `Uint8Array`, or `None` when `value` is not one.
///
/// The slice is valid for the current callback only: the caller must not keep it past the
/// return to JavaScript (nothing in JS can run, and so nothing can detach the buffer, before
/// then).
pub(crate) fn buffer_bytes<'a>(env: &Env, value: &Unknown<'a>) -> Option<&'a [u8]> {
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: `env` and `value` are live handles of this callback; the out-pointers are locals.
    // `napi_get_buffer_info` fails without a pending exception when `value` is not a view.
    let status = unsafe { sys::napi_get_buffer_info(env.raw(), value.raw(), &mut data, &mut len) };
    if status != sys::Status::napi_ok {
        return None;
    }
    if len == 0 || data.is_null() {
        return Some(&[]);
    }
    // SAFETY: Node guarantees `data..data+len` is the view's memory; it stays alive and is not
    // detached while this synchronous callback runs, which bounds `'a` in practice (see above).
    Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// A JS string's UTF-8 as `Bytes`, copied once (small ones into the shared chunk), or `None`
/// when `value` is not a string.
fn string_into_bytes(env: &Env, value: &Unknown<'_>) -> Option<bytes::Bytes> {
    let mut len = 0usize;
    // SAFETY: a null buffer asks only for the length; handles are live for this callback.
    let status = unsafe { sys::napi_get_value_string_utf8(env.raw(), value.raw(), ptr::null_mut(), 0, &mut len) };
    if status != sys::Status::napi_ok {
        return None;
    }
    if len > SMALL_EVENT {
        return string_bytes(env, value).map(bytes::Bytes::from);
    }
    carve(len, |room| {
        let mut written = 0usize;
        // SAFETY: `room` has `len + 1` writable bytes: the UTF-8 plus napi's NUL.
        let status = unsafe {
            sys::napi_get_value_string_utf8(env.raw(), value.raw(), room.as_mut_ptr().cast(), room.len(), &mut written)
        };
        (status == sys::Status::napi_ok).then_some(written)
    })
}

/// Copies a JS string's UTF-8, or `None` when `value` is not a string.
pub(crate) fn string_bytes(env: &Env, value: &Unknown<'_>) -> Option<Vec<u8>> {
    let mut len = 0usize;
    // SAFETY: a null buffer asks only for the length; handles are live for this callback.
    let status = unsafe { sys::napi_get_value_string_utf8(env.raw(), value.raw(), ptr::null_mut(), 0, &mut len) };
    if status != sys::Status::napi_ok {
        return None;
    }
    let mut buf = vec![0u8; len + 1];
    let mut written = 0usize;
    // SAFETY: `buf` has room for `len` bytes plus the NUL napi always writes.
    let status = unsafe {
        sys::napi_get_value_string_utf8(env.raw(), value.raw(), buf.as_mut_ptr().cast(), buf.len(), &mut written)
    };
    if status != sys::Status::napi_ok {
        return None;
    }
    buf.truncate(written);
    Some(buf)
}

/// A `Buffer | Uint8Array | string` event argument, copied once into `Bytes`.
pub(crate) fn event_bytes(env: &Env, value: &Unknown<'_>, what: &str) -> Result<bytes::Bytes, Failure> {
    if let Some(slice) = buffer_bytes(env, value) {
        return Ok(copy_small(slice));
    }
    string_into_bytes(env, value)
        .ok_or_else(|| Failure::invalid_argument(format!("{what} must be a Buffer, Uint8Array or string")))
}

/// Borrows the elements of a `Uint32Array`.
pub(crate) fn uint32_array<'a>(env: &Env, value: &Unknown<'a>, what: &str) -> Result<&'a [u32], Failure> {
    let mut kind = 0;
    let mut length = 0usize;
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut array_buffer = ptr::null_mut();
    let mut offset = 0usize;
    let mut is_typed = false;
    // SAFETY: live handles, local out-pointers; `napi_is_typedarray` first so the info call is
    // only made on a typed array.
    let ok = unsafe {
        sys::napi_is_typedarray(env.raw(), value.raw(), &mut is_typed) == sys::Status::napi_ok
            && is_typed
            && sys::napi_get_typedarray_info(
                env.raw(),
                value.raw(),
                &mut kind,
                &mut length,
                &mut data,
                &mut array_buffer,
                &mut offset,
            ) == sys::Status::napi_ok
    };
    if !ok || kind != sys::TypedarrayType::uint32_array {
        return Err(Failure::invalid_argument(format!("{what} must be a Uint32Array")));
    }
    if length == 0 || data.is_null() {
        return Ok(&[]);
    }
    if (data as usize) % std::mem::align_of::<u32>() != 0 {
        // A Uint32Array is always 4-aligned in V8; refuse rather than read unaligned.
        return Err(Failure::invalid_argument(format!("{what} is not 4-byte aligned")));
    }
    // SAFETY: `data` points at the array's first element (Node adds the byte offset), holds
    // `length` u32s, is aligned (checked), and stays valid for this synchronous callback.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u32>(), length) })
}

/// The length of a JS array argument.
pub(crate) fn array_length(env: &Env, array: &Unknown<'_>, what: &str) -> Result<u32, Failure> {
    let mut is_array = false;
    let mut length = 0u32;
    // SAFETY: live handles, local out-pointers.
    let ok = unsafe {
        sys::napi_is_array(env.raw(), array.raw(), &mut is_array) == sys::Status::napi_ok
            && is_array
            && sys::napi_get_array_length(env.raw(), array.raw(), &mut length) == sys::Status::napi_ok
    };
    if !ok {
        return Err(Failure::invalid_argument(format!("{what} must be an array")));
    }
    Ok(length)
}

/// Element `index` of a JS array (a getter that throws leaves its exception pending, and that
/// exception is what JavaScript sees).
pub(crate) fn element<'a>(env: &Env, array: &Unknown<'a>, index: u32, what: &str) -> Result<Unknown<'a>, Failure> {
    let mut element = ptr::null_mut();
    // SAFETY: live handles, local out-pointer.
    let status = unsafe { sys::napi_get_element(env.raw(), array.raw(), index, &mut element) };
    if status != sys::Status::napi_ok {
        return Err(Failure::invalid_argument(format!("{what}[{index}] could not be read")).with_accepted(index));
    }
    // SAFETY: `element` was just produced by napi for this env.
    unsafe { <Unknown<'a> as napi::bindgen_prelude::FromNapiValue>::from_napi_value(env.raw(), element) }
        .map_err(|e| Failure::invalid_argument(e.reason).with_accepted(index))
}

/// The elements of a JS array, each handed to `each` with its index. Stops at the first error.
pub(crate) fn for_each_element<'a, F>(env: &Env, array: &Unknown<'a>, what: &str, mut each: F) -> Result<(), Failure>
where
    F: FnMut(u32, Unknown<'a>) -> Result<(), Failure>,
{
    for index in 0..array_length(env, array, what)? {
        each(index, element(env, array, index, what)?)?;
    }
    Ok(())
}

/// A JS value that is `undefined` or `null`.
pub(crate) fn is_nullish(value: &Unknown<'_>) -> bool {
    matches!(value.get_type(), Ok(napi::ValueType::Undefined | napi::ValueType::Null))
}

/// An optional string argument (`undefined`/`null` → `None`).
pub(crate) fn optional_string(env: &Env, value: &Unknown<'_>, what: &str) -> Result<Option<String>, Failure> {
    if is_nullish(value) {
        return Ok(None);
    }
    let bytes =
        string_bytes(env, value).ok_or_else(|| Failure::invalid_argument(format!("{what} must be a string")))?;
    String::from_utf8(bytes).map(Some).map_err(|e| Failure::invalid_argument(format!("{what}: {e}")))
}

/// A number argument that must be an integer in `[min, max]`.
pub(crate) fn integer(env: &Env, value: &Unknown<'_>, what: &str, min: f64, max: f64) -> Result<f64, Failure> {
    let mut number = 0f64;
    // SAFETY: live handles, local out-pointer; fails without a pending exception on non-numbers.
    let status = unsafe { sys::napi_get_value_double(env.raw(), value.raw(), &mut number) };
    if status != sys::Status::napi_ok || number.fract() != 0.0 || !(min..=max).contains(&number) {
        return Err(Failure::invalid_argument(format!("{what} must be an integer between {min} and {max}")));
    }
    Ok(number)
}
