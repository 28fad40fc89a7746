//! Status codes, the mapping from every Rust error type to them, and the thread-local message
//! that says exactly what went wrong (which key, which byte, which event, which shard).

use super::ffi_boundary;
use crate::error::{AdapterError, ConfigError, ConsumerError, IngestionError, ScalingError};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::ptr::NonNull;

/// Result of every fallible call. `PR_OK` is 0; every failure kind has its own non-zero number,
/// fixed forever: numbers are never reused or renumbered, new kinds are appended.
/// `pr_status_name()` gives the name and `pr_last_error_message()` the details.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pr_status {
    /// Success.
    PR_OK = 0,
    /// A required pointer argument was NULL (the message names it).
    PR_ERR_NULL_ARGUMENT = 1,
    /// A string or payload is not valid UTF-8 (the message gives the byte offset).
    PR_ERR_INVALID_UTF8 = 2,
    /// Config, event, poll request or filter is not well-formed JSON (the message gives the byte
    /// offset, line and column).
    PR_ERR_INVALID_JSON = 3,
    /// The config is well-formed JSON but not a valid config: unknown key, wrong type, value out
    /// of range, adapter not built in (the message names the key).
    PR_ERR_CONFIG = 4,
    /// The shard's ring is full and the back-pressure mode is `drop_newest`: the event was not
    /// accepted.
    PR_ERR_BACKPRESSURE = 5,
    /// The event was dropped by a sampling policy (not accepted).
    PR_ERR_SAMPLED = 6,
    /// No live shard could take the event (not accepted).
    PR_ERR_UNROUTED = 7,
    /// The bus is shutting down or was shut down with `pr_shutdown`.
    PR_ERR_SHUTTING_DOWN = 8,
    /// The poll request's `from` cursor is not one this library produced, or is damaged.
    PR_ERR_INVALID_CURSOR = 9,
    /// The poll request's filter is not a valid filter (unknown operator, empty `$and`, ...).
    PR_ERR_INVALID_FILTER = 10,
    /// The poll request is invalid: unknown key, wrong type, a shard that never existed.
    PR_ERR_INVALID_REQUEST = 11,
    /// The adapter failed (serialisation or an unclassified failure).
    PR_ERR_ADAPTER = 12,
    /// The adapter failed temporarily; retrying may succeed.
    PR_ERR_ADAPTER_TRANSIENT = 13,
    /// The connection to the adapter's backend failed.
    PR_ERR_ADAPTER_CONNECTION = 14,
    /// The adapter failed permanently; retrying cannot succeed.
    PR_ERR_ADAPTER_FATAL = 15,
    /// The adapter's backend is full; retry later.
    PR_ERR_ADAPTER_BACKPRESSURE = 16,
    /// A scaling call failed (unknown shard, out of bounds, partial); nothing is reported as done
    /// that was not.
    PR_ERR_SCALING = 17,
    /// The library panicked inside the call. The panic was caught; the bus may still be usable.
    PR_ERR_PANIC = 18,
    /// An argument has an invalid value: an index out of range, `ends` not ascending or past
    /// `data_len`, a length whose byte size overflows.
    PR_ERR_INVALID_ARGUMENT = 19,
    /// The caller's output buffer is too small; nothing was done (the message gives the size
    /// needed).
    PR_ERR_BUFFER_TOO_SMALL = 20,
}

impl pr_status {
    /// Every status, in number order.
    pub const ALL: [pr_status; 21] = [
        Self::PR_OK,
        Self::PR_ERR_NULL_ARGUMENT,
        Self::PR_ERR_INVALID_UTF8,
        Self::PR_ERR_INVALID_JSON,
        Self::PR_ERR_CONFIG,
        Self::PR_ERR_BACKPRESSURE,
        Self::PR_ERR_SAMPLED,
        Self::PR_ERR_UNROUTED,
        Self::PR_ERR_SHUTTING_DOWN,
        Self::PR_ERR_INVALID_CURSOR,
        Self::PR_ERR_INVALID_FILTER,
        Self::PR_ERR_INVALID_REQUEST,
        Self::PR_ERR_ADAPTER,
        Self::PR_ERR_ADAPTER_TRANSIENT,
        Self::PR_ERR_ADAPTER_CONNECTION,
        Self::PR_ERR_ADAPTER_FATAL,
        Self::PR_ERR_ADAPTER_BACKPRESSURE,
        Self::PR_ERR_SCALING,
        Self::PR_ERR_PANIC,
        Self::PR_ERR_INVALID_ARGUMENT,
        Self::PR_ERR_BUFFER_TOO_SMALL,
    ];

    /// The status with number `n`, if there is one.
    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(n as usize).copied()
    }

    /// The C name, e.g. `"PR_ERR_BACKPRESSURE"`.
    pub fn name(self) -> &'static CStr {
        match self {
            Self::PR_OK => c"PR_OK",
            Self::PR_ERR_NULL_ARGUMENT => c"PR_ERR_NULL_ARGUMENT",
            Self::PR_ERR_INVALID_UTF8 => c"PR_ERR_INVALID_UTF8",
            Self::PR_ERR_INVALID_JSON => c"PR_ERR_INVALID_JSON",
            Self::PR_ERR_CONFIG => c"PR_ERR_CONFIG",
            Self::PR_ERR_BACKPRESSURE => c"PR_ERR_BACKPRESSURE",
            Self::PR_ERR_SAMPLED => c"PR_ERR_SAMPLED",
            Self::PR_ERR_UNROUTED => c"PR_ERR_UNROUTED",
            Self::PR_ERR_SHUTTING_DOWN => c"PR_ERR_SHUTTING_DOWN",
            Self::PR_ERR_INVALID_CURSOR => c"PR_ERR_INVALID_CURSOR",
            Self::PR_ERR_INVALID_FILTER => c"PR_ERR_INVALID_FILTER",
            Self::PR_ERR_INVALID_REQUEST => c"PR_ERR_INVALID_REQUEST",
            Self::PR_ERR_ADAPTER => c"PR_ERR_ADAPTER",
            Self::PR_ERR_ADAPTER_TRANSIENT => c"PR_ERR_ADAPTER_TRANSIENT",
            Self::PR_ERR_ADAPTER_CONNECTION => c"PR_ERR_ADAPTER_CONNECTION",
            Self::PR_ERR_ADAPTER_FATAL => c"PR_ERR_ADAPTER_FATAL",
            Self::PR_ERR_ADAPTER_BACKPRESSURE => c"PR_ERR_ADAPTER_BACKPRESSURE",
            Self::PR_ERR_SCALING => c"PR_ERR_SCALING",
            Self::PR_ERR_PANIC => c"PR_ERR_PANIC",
            Self::PR_ERR_INVALID_ARGUMENT => c"PR_ERR_INVALID_ARGUMENT",
            Self::PR_ERR_BUFFER_TOO_SMALL => c"PR_ERR_BUFFER_TOO_SMALL",
        }
    }
}

mod raw {
    /// `pr_status` as C passes it in: any `uint32_t`, so an unknown number is not undefined
    /// behaviour on the Rust side. cbindgen resolves types by their last path segment, so the
    /// header still declares the parameter as `pr_status`.
    ///
    /// cbindgen:ignore
    pub type pr_status = u32;
}

/// The name of a status, e.g. `"PR_ERR_BACKPRESSURE"`; `"PR_UNKNOWN_STATUS"` for a number that
/// is not a status.
///
/// Ownership: the string is static; do not free it. Threading: any thread.
#[no_mangle]
pub extern "C" fn pr_status_name(status: raw::pr_status) -> *const c_char {
    ffi_boundary! {
        match pr_status::from_u32(status) {
            Some(status) => status.name().as_ptr(),
            None => c"PR_UNKNOWN_STATUS".as_ptr(),
        }
    }
}

/// The message of the most recent failed call on this thread: which argument, key, byte offset,
/// event index or shard was at fault. `""` if no call on this thread has failed yet. Successful
/// calls do not clear it (as with `errno`), so read it right after a call returned an error.
///
/// Ownership: owned by the library; do not free it. Lifetime: valid until the next `pr_*` call
/// on this thread. Threading: each thread has its own message.
#[no_mangle]
pub extern "C" fn pr_last_error_message() -> *const c_char {
    ffi_boundary! {
        LAST_ERROR.with(|last| match &*last.borrow() {
            Message::Static(text) => text.as_ptr(),
            Message::Owned(text) => text.as_ptr(),
        })
    }
}

enum Message {
    Static(&'static CStr),
    Owned(CString),
}

thread_local! {
    static LAST_ERROR: RefCell<Message> = const { RefCell::new(Message::Static(c"")) };
}

/// Records `message` as this thread's last error and returns `status`.
#[cold]
pub(crate) fn fail(status: pr_status, message: impl Into<String>) -> pr_status {
    let mut bytes = message.into().into_bytes();
    bytes.retain(|&b| b != 0);
    let text = CString::new(bytes).unwrap_or_default();
    // `try_with`: during thread teardown the slot may be gone; the status still tells the kind.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = Message::Owned(text));
    status
}

/// Records a static message (no allocation: for failures that can come in bursts, such as
/// back-pressure) and returns `status`.
#[cold]
pub(crate) fn fail_static(status: pr_status, message: &'static CStr) -> pr_status {
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = Message::Static(message));
    status
}

#[cold]
pub(crate) fn null_argument(name: &str) {
    fail(pr_status::PR_ERR_NULL_ARGUMENT, format!("argument `{name}` is NULL"));
}

#[cold]
pub(crate) fn invalid_utf8(name: &str, valid_up_to: usize) -> pr_status {
    fail(pr_status::PR_ERR_INVALID_UTF8, format!("`{name}` is not valid UTF-8 at byte {valid_up_to}"))
}

#[cold]
pub(crate) fn invalid_argument(message: impl Into<String>) -> pr_status {
    fail(pr_status::PR_ERR_INVALID_ARGUMENT, message)
}

/// Records a caught panic's message.
#[cold]
pub(crate) fn record_panic(payload: Box<dyn std::any::Any + Send>) {
    let what = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    };
    fail(pr_status::PR_ERR_PANIC, format!("internal panic (caught, not propagated): {what}"));
    // A payload whose destructor panics would unwind out of here: forget it instead.
    std::mem::forget(payload);
}

/// Checks a pointer/length pair before it becomes a slice: NULL is fine for an empty slice; the
/// byte size must fit in `isize` (what `slice::from_raw_parts` requires).
pub(crate) fn slice_checked<T>(ptr: *const T, len: usize, name: &str) -> Result<(), pr_status> {
    if len == 0 {
        return Ok(());
    }
    if ptr.is_null() {
        null_argument(name);
        return Err(pr_status::PR_ERR_NULL_ARGUMENT);
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(invalid_argument(format!(
            "`{name}`: length {len} overflows (more than {} elements of {} bytes)",
            isize::MAX as usize / std::mem::size_of::<T>().max(1),
            std::mem::size_of::<T>()
        )));
    }
    Ok(())
}

/// A checked, non-NULL out-parameter. Written once, at the end of a successful call; never read
/// (C may pass uninitialised memory).
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    pub(crate) fn new(ptr: *mut T) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    pub(crate) fn write(&self, value: T) {
        // SAFETY: non-NULL by construction; the caller guarantees (`# Safety`) that an
        // out-parameter points to writable, aligned memory for a `T`. `write` does not read or
        // drop the old (possibly uninitialised) contents.
        unsafe { self.0.as_ptr().write(value) }
    }
}

// ---- map_error: one per Rust error type ----

/// Maps a failed ingest; `context` prefixes the message (e.g. "event 3 of 10: ").
#[cold]
pub(crate) fn map_ingestion_error(e: &IngestionError, context: Option<&str>) -> pr_status {
    let status = match e {
        IngestionError::Backpressure => pr_status::PR_ERR_BACKPRESSURE,
        IngestionError::Sampled => pr_status::PR_ERR_SAMPLED,
        IngestionError::Unrouted => pr_status::PR_ERR_UNROUTED,
        IngestionError::ShuttingDown => pr_status::PR_ERR_SHUTTING_DOWN,
        IngestionError::Serialization(_) => pr_status::PR_ERR_INVALID_JSON,
    };
    match (context, e) {
        // Back-pressure comes in bursts: no allocation per rejected event.
        (None, IngestionError::Backpressure) => {
            fail_static(status, c"shard ring buffer is full (back-pressure mode drop_newest); event not accepted")
        }
        (None, IngestionError::ShuttingDown) => fail_static(status, c"the bus is shutting down; event not accepted"),
        (None, _) => fail(status, e.to_string()),
        (Some(context), _) => fail(status, format!("{context}{e}")),
    }
}

/// Maps a failed poll. `request` is the request JSON, used to name the key a parse error
/// points at.
#[cold]
pub(crate) fn map_consumer_error(e: &ConsumerError, request: &str) -> pr_status {
    match e {
        ConsumerError::Adapter(inner) => map_adapter_error(inner),
        ConsumerError::InvalidCursor(_) => fail(pr_status::PR_ERR_INVALID_CURSOR, e.to_string()),
        ConsumerError::InvalidFilter(_) => fail(pr_status::PR_ERR_INVALID_FILTER, e.to_string()),
        ConsumerError::InvalidRequest(_) => {
            fail(pr_status::PR_ERR_INVALID_REQUEST, super::json::locate(e.to_string(), request))
        }
    }
}

/// Maps an adapter failure (flush, shutdown, poll); `Shutdown` is `PR_ERR_SHUTTING_DOWN`.
#[cold]
pub(crate) fn map_adapter_error(e: &AdapterError) -> pr_status {
    let status = match e {
        AdapterError::Transient(_) => pr_status::PR_ERR_ADAPTER_TRANSIENT,
        AdapterError::Fatal(_) => pr_status::PR_ERR_ADAPTER_FATAL,
        AdapterError::Backpressure => pr_status::PR_ERR_ADAPTER_BACKPRESSURE,
        AdapterError::Connection(_) => pr_status::PR_ERR_ADAPTER_CONNECTION,
        AdapterError::Shutdown => pr_status::PR_ERR_SHUTTING_DOWN,
        AdapterError::Serialization(_) => pr_status::PR_ERR_ADAPTER,
    };
    if let AdapterError::Shutdown = e {
        return fail_static(status, c"the bus is shutting down or shut down");
    }
    fail(status, e.to_string())
}

/// Maps a config failure; an adapter that failed to start keeps its adapter code. `text` is the
/// config JSON, used to name the key a parse error points at.
#[cold]
pub(crate) fn map_config_error(e: &ConfigError, text: &str) -> pr_status {
    match e {
        ConfigError::Adapter(inner) => {
            let status = map_adapter_error(inner);
            fail(status, e.to_string())
        }
        ConfigError::Json(_) => fail(pr_status::PR_ERR_CONFIG, super::json::locate(e.to_string(), text)),
        _ => fail(pr_status::PR_ERR_CONFIG, e.to_string()),
    }
}

/// Maps a scaling failure.
#[cold]
pub(crate) fn map_scaling_error(e: &ScalingError) -> pr_status {
    match e {
        ScalingError::ShuttingDown => fail(pr_status::PR_ERR_SHUTTING_DOWN, e.to_string()),
        ScalingError::Adapter(inner) => map_adapter_error(inner),
        _ => fail(pr_status::PR_ERR_SCALING, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_are_their_index_and_names_match() {
        for (i, status) in pr_status::ALL.iter().enumerate() {
            assert_eq!(*status as u32, i as u32);
            assert_eq!(pr_status::from_u32(i as u32), Some(*status));
            assert_eq!(status.name().to_str().unwrap(), format!("{status:?}"));
        }
        assert_eq!(pr_status::from_u32(pr_status::ALL.len() as u32), None);
    }
}
