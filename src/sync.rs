//! Atomics and cells for the lock-free ring, swapped for loom's under `--cfg purple_rain_loom`
//! so the model checker can explore every interleaving (the pattern of `bytes/src/loom.rs`).
//!
//! A project-specific cfg name is used instead of `loom` so that dependencies which react to
//! `cfg(loom)` (tokio, bytes) are not switched into their own loom mode.

#[cfg(purple_rain_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};

#[cfg(not(purple_rain_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, Ordering};

#[cfg(purple_rain_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std::cell::UnsafeCell` with loom's closure-based access API.
#[cfg(not(purple_rain_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(purple_rain_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Backs off in a retry loop; under loom, yields so the model checker schedules the other
/// thread instead of exploring an unbounded spin.
pub(crate) fn spin(backoff: &crossbeam_utils::Backoff) {
    #[cfg(purple_rain_loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
    #[cfg(not(purple_rain_loom))]
    backoff.spin();
}

/// Like `spin`, for waits on another thread's progress (may yield the OS thread).
pub(crate) fn snooze(backoff: &crossbeam_utils::Backoff) {
    #[cfg(purple_rain_loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
    #[cfg(not(purple_rain_loom))]
    backoff.snooze();
}
