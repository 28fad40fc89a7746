//! The C ABI: an opaque-handle API over [`EventBus`](crate::EventBus), declared in the generated
//! `include/purple_rain.h`.
//!
//! One file per concern: [`error`] (status codes, `map_*_error`, the thread-local message),
//! `json` (byte offsets and key paths for JSON error messages),
//! [`bus`] (handle lifecycle, versions), [`ingest`], [`poll`], [`stats`] (counters and scaling).
//!
//! Every exported function follows the same shape, modelled on rustls-ffi: its body sits inside
//! `ffi_boundary!` (a panic becomes `PR_ERR_PANIC` / NULL / false / 0 and never unwinds into or
//! aborts the host), every pointer goes through one of the `try_*!` macros below (NULL becomes
//! `PR_ERR_NULL_ARGUMENT` with a message naming the argument), and out-parameters are written
//! last, only on success. Raw-pointer `unsafe` lives only in those macros and the one
//! `Box::from_raw` of each `_free`.
//!
//! Blocking calls (`pr_bus_new`, `pr_poll`, `pr_flush`, `pr_shutdown`, scaling) run their future
//! on the library's own runtime and wait on a channel ([`crate::runtime::wait`]): never
//! `block_on`, so they work from any thread, including one inside another tokio runtime, and a
//! waiting caller costs no CPU.
//!
//! cbindgen reads this module tree alone (`tests/header.rs`), so only what is declared here
//! reaches the header.

#![allow(non_camel_case_types)] // C names: pr_bus, pr_status, ...

pub mod bus;
pub mod error;
pub mod ingest;
mod json;
pub mod poll;
pub mod stats;

pub use error::pr_status;

/// Version of the C ABI: bumped whenever a signature, a struct layout or the meaning of a status
/// changes incompatibly. Compare `pr_abi_version()` with it at startup.
pub const PR_ABI_VERSION: u32 = 1;

/// Largest number of shards a bus can have at once: a `uint16_t` buffer of this many entries
/// always holds every shard id.
pub const PR_MAX_SHARDS: usize = 1024;

/// What an exported function returns when its body panicked or a pointer argument was NULL.
pub(crate) trait Fallback {
    /// The value for a caught panic.
    fn on_panic() -> Self;
    /// The value for a NULL pointer argument.
    fn on_null() -> Self;
}

impl Fallback for pr_status {
    fn on_panic() -> Self {
        pr_status::PR_ERR_PANIC
    }
    fn on_null() -> Self {
        pr_status::PR_ERR_NULL_ARGUMENT
    }
}

impl<T> Fallback for *const T {
    fn on_panic() -> Self {
        std::ptr::null()
    }
    fn on_null() -> Self {
        std::ptr::null()
    }
}

impl<T> Fallback for *mut T {
    fn on_panic() -> Self {
        std::ptr::null_mut()
    }
    fn on_null() -> Self {
        std::ptr::null_mut()
    }
}

impl Fallback for bool {
    fn on_panic() -> Self {
        false
    }
    fn on_null() -> Self {
        false
    }
}

impl Fallback for usize {
    fn on_panic() -> Self {
        0
    }
    fn on_null() -> Self {
        0
    }
}

impl Fallback for u32 {
    fn on_panic() -> Self {
        0
    }
    fn on_null() -> Self {
        0
    }
}

impl Fallback for u64 {
    fn on_panic() -> Self {
        0
    }
    fn on_null() -> Self {
        0
    }
}

impl Fallback for () {
    fn on_panic() -> Self {}
    fn on_null() -> Self {}
}

/// Runs the body of an exported function, turning a panic into the return type's
/// [`Fallback::on_panic`] value and recording the panic message as the thread's last error.
/// `return` inside the body returns from the exported function.
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(payload) => {
                $crate::ffi::error::record_panic(payload);
                $crate::ffi::Fallback::on_panic()
            }
        }
    };
}

/// `&T` from a `*const T` argument; NULL returns [`Fallback::on_null`] with a message naming
/// the argument.
macro_rules! try_ref {
    ($ptr:ident) => {
        // SAFETY: every exported function's `# Safety` requires a non-NULL pointer argument to
        // point to a live, properly aligned object of its type for the duration of the call;
        // `as_ref` handles NULL.
        match unsafe { $ptr.as_ref() } {
            Some(value) => value,
            None => {
                $crate::ffi::error::null_argument(stringify!($ptr));
                return $crate::ffi::Fallback::on_null();
            }
        }
    };
}

/// An [`error::Out`] for a `*mut T` out-parameter; NULL returns `PR_ERR_NULL_ARGUMENT`. The
/// pointer is only written through `Out::write`, at the end of a successful call.
macro_rules! try_out {
    ($ptr:ident) => {
        match $crate::ffi::error::Out::new($ptr) {
            Some(out) => out,
            None => {
                $crate::ffi::error::null_argument(stringify!($ptr));
                return $crate::ffi::Fallback::on_null();
            }
        }
    };
}

/// `&[T]` from a pointer and an element count. NULL is accepted for an empty slice only; a count
/// whose byte size overflows `isize` is `PR_ERR_INVALID_ARGUMENT` (an overflow, never "buffer
/// too small"). Only for functions that return `pr_status`.
macro_rules! try_slice {
    ($ptr:ident, $len:expr) => {{
        let len: usize = $len;
        match $crate::ffi::error::slice_checked($ptr, len, stringify!($ptr)) {
            Ok(()) if len == 0 => &[][..],
            // SAFETY: `slice_checked` verified that the pointer is non-NULL and that
            // `len * size_of::<T>()` fits in `isize`; the caller guarantees (`# Safety`) that it
            // points to `len` initialised elements left unchanged for the duration of the call.
            Ok(()) => unsafe { ::std::slice::from_raw_parts($ptr, len) },
            Err(status) => return status,
        }
    }};
}

/// `Option<&str>` from a NUL-terminated `*const c_char`: NULL is `None`; invalid UTF-8 returns
/// `PR_ERR_INVALID_UTF8` naming the argument and the byte offset.
macro_rules! try_opt_str {
    ($ptr:ident) => {{
        if $ptr.is_null() {
            None
        } else {
            // SAFETY: non-NULL, and the caller guarantees (`# Safety`) a NUL-terminated string
            // that stays unchanged for the duration of the call.
            let text = unsafe { ::std::ffi::CStr::from_ptr($ptr) };
            match text.to_str() {
                Ok(text) => Some(text),
                Err(e) => return $crate::ffi::error::invalid_utf8(stringify!($ptr), e.valid_up_to()),
            }
        }
    }};
}

pub(crate) use {ffi_boundary, try_opt_str, try_out, try_ref, try_slice};

#[cfg(test)]
mod tests;
