//! The library's own process-wide tokio runtime.
//!
//! Shard workers, adapter I/O and timers all run here, whatever runtime (if any) the caller
//! uses: a bus works the same from `#[tokio::main]`, from a current-thread runtime, from a
//! plain thread and from C or Go. One runtime serves every bus in the process, sized to the
//! machine, so many buses do not mean many thread pools. It lives for the whole process and is
//! never dropped, so it can never be dropped from inside an async context.

use std::future::Future;
use std::sync::LazyLock;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

thread_local! {
    static ON_LIBRARY_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is one of the library runtime's workers, whose blocking would
/// stall the shard workers queued behind it.
pub(crate) fn on_library_thread() -> bool {
    ON_LIBRARY_THREAD.with(std::cell::Cell::get)
}

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
    Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("purple-rain")
        .on_thread_start(|| ON_LIBRARY_THREAD.with(|on| on.set(true)))
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("purple-rain: cannot start its runtime: {e}"))
});

/// The library runtime's handle.
pub fn handle() -> &'static Handle {
    RUNTIME.handle()
}

/// Spawns a task on the library runtime.
pub(crate) fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    RUNTIME.spawn(future)
}

/// Runs `future` on the library runtime and awaits it from any executor. A panic inside is
/// resumed in the caller.
pub(crate) async fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match spawn(future).await {
        Ok(output) => output,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("purple-rain task cancelled: {e}"),
    }
}

/// Runs `future` in the caller's task with the library runtime entered while it is polled:
/// timers and I/O it creates register with the library runtime, so it works from any executor,
/// yet it costs no task spawn and no thread hop. For short, hot calls (poll) whose results are
/// consumed by the caller: memory allocated for them is then allocated and freed on one thread.
pub(crate) async fn in_context<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        let _entered = handle().enter();
        future.as_mut().poll(cx)
    })
    .await
}

/// Drives `future` to completion on this thread, with the library runtime entered (see
/// [`in_context`]); the thread parks while the future waits. For C ABI calls on the hot path.
/// Like [`wait`], it must not be called from a library runtime thread.
pub(crate) fn block_here<F: Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        let polled = {
            let _entered = handle().enter();
            future.as_mut().poll(&mut cx)
        };
        if let Poll::Ready(output) = polled {
            return output;
        }
        std::thread::park();
    }
}

/// Runs `future` on the library runtime and blocks this thread until it completes, without
/// `block_on` (which panics inside another runtime): the calling thread only waits on a
/// channel. For the C ABI and for `Drop`. Must not be called from a library runtime thread.
pub fn wait<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    use futures_util::FutureExt;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    spawn(async move {
        let output = std::panic::AssertUnwindSafe(future).catch_unwind().await;
        let _ = tx.send(output);
    });
    match rx.recv() {
        Ok(Ok(output)) => output,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("purple-rain runtime stopped"),
    }
}
