//! A bus whose JS object is garbage-collected without `shutdown()` is shut down, not leaked.
//!
//! The finalizer runs on the JS thread, so it must not wait for a drain (failure mode 50): it
//! starts the shutdown as a task on the library runtime and returns. Those drains are counted,
//! and when the JS environment tears down (process exit, worker exit) a cleanup hook waits for
//! the ones still running, and buses finalized after that point drain before their finalizer
//! returns — so events accepted before exit still reach the adapter (failure mode 4).

use napi::bindgen_prelude::Env;
use purple_rain::EventBus;
use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest a tearing-down environment waits for background drains.
const TEARDOWN_WAIT: Duration = Duration::from_secs(30);

/// Drains started by finalizers and not finished yet.
static DRAINING: Mutex<usize> = Mutex::new(0);
static DRAINED: Condvar = Condvar::new();

thread_local! {
    /// The env on this thread has a teardown hook.
    static HOOKED: Cell<bool> = const { Cell::new(false) };
    /// The env on this thread is tearing down: finalizers must drain before returning.
    static TEARING_DOWN: Cell<bool> = const { Cell::new(false) };
}

/// Installs the teardown hook for the env of this thread, once.
pub(crate) fn watch_env(env: &Env) {
    if HOOKED.with(Cell::get) {
        return;
    }
    if env.add_env_cleanup_hook((), |()| on_teardown()).is_ok() {
        HOOKED.with(|h| h.set(true));
    }
}

fn on_teardown() {
    TEARING_DOWN.with(|t| t.set(true));
    let deadline = Instant::now() + TEARDOWN_WAIT;
    let mut pending = DRAINING.lock().unwrap_or_else(|e| e.into_inner());
    while *pending > 0 {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
        pending = DRAINED.wait_timeout(pending, left).unwrap_or_else(|e| e.into_inner()).0;
    }
}

/// Shuts down a bus whose JS object is gone.
pub(crate) fn release(bus: Arc<EventBus>) {
    if TEARING_DOWN.with(Cell::get) {
        // Outside any runtime, the last drop waits for the drain; during teardown that is what
        // we want. If something else still holds the bus, it is shut down explicitly.
        let _ = purple_rain::runtime::wait(async move { bus.shutdown_via_ref().await });
        return;
    }
    *DRAINING.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    purple_rain::runtime::handle().spawn(async move {
        let _ = bus.shutdown_via_ref().await;
        drop(bus);
        let mut pending = DRAINING.lock().unwrap_or_else(|e| e.into_inner());
        *pending = pending.saturating_sub(1);
        DRAINED.notify_all();
    });
}
