//! Status codes, the mapping from every Rust error type to them, and the thread-local message
//! that says exactly what went wrong (which key, which byte, which event, which shard).

use super::ffi_boundary;
use crate::error::{error_kinds, AdapterError, ConfigError, ConsumerError, ErrorKind, IngestionError, ScalingError};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::ptr::NonNull;

macro_rules! define_pr_status {
    ($(#[doc = $type_doc:literal])* ; $( $(#[doc = $doc:literal])* $kind:ident = $number:literal => $name:ident, )*) => {
        $(#[doc = $type_doc])*
        #[repr(u32)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum pr_status {
            /// Success.
            PR_OK = 0,
            $( $(#[doc = $doc])* $name = $number, )*
        }

        impl pr_status {
            /// Every status, in number order.
            pub const ALL: [pr_status; 1 + ErrorKind::ALL.len()] = [Self::PR_OK, $(Self::$name),*];

            /// The status with number `n`, if there is one.
            pub fn from_u32(n: u32) -> Option<Self> {
                match n {
                    0 => Some(Self::PR_OK),
                    $($number => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// The C name, e.g. `"PR_ERR_BACKPRESSURE"`.
            pub fn name(self) -> &'static CStr {
                match self {
                    Self::PR_OK => c"PR_OK",
                    $(Self::$name => c_str(concat!(stringify!($name), "\0")),)*
                }
            }

            /// The Rust source of this enum, docs included, for `tests/header.rs`: cbindgen does
            /// not expand macros, so the header test hands it this text to declare `pr_status`.
            #[doc(hidden)]
            pub fn declaration() -> String {
                let mut out = String::new();
                $(out.push_str(&format!("#[doc = {:?}]\n", $type_doc));)*
                out.push_str("#[repr(u32)]\npub enum pr_status {\n    #[doc = \" Success.\"]\n    PR_OK = 0,\n");
                $(
                    $(out.push_str(&format!("    #[doc = {:?}]\n", $doc));)*
                    out.push_str(&format!("    {} = {},\n", stringify!($name), $number));
                )*
                out.push_str("}\n\nimpl pr_status {\n    #[doc = \" Every status, in number order.\"]\n");
                out.push_str(&format!("    pub const ALL: [pr_status; {}] = [", Self::ALL.len()));
                for status in Self::ALL {
                    out.push_str(&format!("pr_status::{status:?}, "));
                }
                out.push_str("];\n}\n");
                out
            }
        }

        impl From<ErrorKind> for pr_status {
            fn from(kind: ErrorKind) -> Self {
                match kind {
                    $(ErrorKind::$kind => Self::$name,)*
                }
            }
        }
    };
}

/// A `&'static CStr` from a literal that ends in its NUL.
const fn c_str(with_nul: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(with_nul.as_bytes()) {
        Ok(s) => s,
        Err(_) => c"",
    }
}

error_kinds! {
    define_pr_status!
    /// Result of every fallible call. `PR_OK` is 0; every failure kind has its own non-zero
    /// number, fixed forever: numbers are never reused or renumbered, new kinds are appended.
    /// Number 6 is retired (it was `PR_ERR_SAMPLED`, which nothing produced).
    /// `pr_status_name()` gives the name and `pr_last_error_message()` the details.
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
    // Dropped, not forgotten: a host that hits a panic on every call must not leak a payload
    // each time. A payload whose destructor panics must not unwind out of an `extern "C"`
    // function, so its drop is caught too; only the second payload, from that destructor, is
    // forgotten (dropping it could panic again).
    if let Err(nested) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(nested);
    }
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

// ---- map_error: one per Rust error type; the status is always the error's kind ----

/// Maps a failed ingest; `context` prefixes the message (e.g. "event 3 of 10: ").
#[cold]
pub(crate) fn map_ingestion_error(e: &IngestionError, context: Option<&str>) -> pr_status {
    let status = pr_status::from(e.kind());
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
        ConsumerError::Json(json) => fail(pr_status::from(e.kind()), super::json::locate(e.to_string(), request, json)),
        _ => fail(pr_status::from(e.kind()), e.to_string()),
    }
}

/// Maps an adapter failure (flush, shutdown, poll); `Shutdown` is `PR_ERR_SHUTTING_DOWN`.
#[cold]
pub(crate) fn map_adapter_error(e: &AdapterError) -> pr_status {
    let status = pr_status::from(e.kind());
    if let AdapterError::Shutdown = e {
        return fail_static(status, c"the bus is shutting down or shut down");
    }
    fail(status, e.to_string())
}

/// Maps a config failure; an adapter that failed to start keeps its adapter code. `text` is the
/// config JSON, used to name the key a parse error points at.
#[cold]
pub(crate) fn map_config_error(e: &ConfigError, text: &str) -> pr_status {
    let status = pr_status::from(e.kind());
    match e {
        ConfigError::Json(json) => fail(status, super::json::locate(e.to_string(), text, json)),
        _ => fail(status, e.to_string()),
    }
}

/// Maps a scaling failure.
#[cold]
pub(crate) fn map_scaling_error(e: &ScalingError) -> pr_status {
    match e {
        ScalingError::Adapter(inner) => map_adapter_error(inner),
        _ => fail(pr_status::from(e.kind()), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_success_then_every_kind_with_its_number_and_name() {
        assert_eq!(pr_status::ALL[0], pr_status::PR_OK);
        assert_eq!(pr_status::ALL.len(), ErrorKind::ALL.len() + 1);
        for (status, &kind) in pr_status::ALL[1..].iter().zip(ErrorKind::ALL) {
            assert_eq!(*status, pr_status::from(kind));
            assert_eq!(*status as u32, kind.status());
            assert_eq!(pr_status::from_u32(kind.status()), Some(*status));
            assert_eq!(status.name().to_str().unwrap(), kind.c_name());
            assert_eq!(status.name().to_str().unwrap(), format!("{status:?}"));
        }
        assert_eq!(pr_status::from_u32(0), Some(pr_status::PR_OK));
        assert_eq!(pr_status::PR_OK.name(), c"PR_OK");
        // Retired and unknown numbers are not statuses.
        for retired in crate::error::RETIRED_STATUSES {
            assert_eq!(pr_status::from_u32(retired), None);
        }
        // Numbers are handed out to parallel work in ranges, so the table may have gaps.
        let past_the_last = ErrorKind::ALL.iter().map(|k| k.status()).max().unwrap_or(0) + 1;
        assert_eq!(pr_status::from_u32(past_the_last), None);
    }
}
