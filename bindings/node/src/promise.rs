//! Promises settled from the library runtime.
//!
//! Async calls run as tasks on purple-rain's own runtime (the one the bus already uses), not on
//! a second tokio runtime inside the addon and not on libuv's small thread pool, where a long
//! poll would hold a thread for its whole wait. The JS thread only creates the promise and,
//! when the task ends, converts its result; it never waits.

use crate::errors::Failure;
use crate::page::RawValue;
use futures_util::FutureExt;
use napi::bindgen_prelude::{Env, Object, ToNapiValue};
use napi::JsValue;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

type Resolver<V> = Box<dyn FnOnce(Env) -> napi::Result<V> + Send>;

/// Runs `task` on the library runtime and returns a promise of `convert(output)`, converted on
/// the JS thread. A failure rejects with its coded `Error`; a panic rejects instead of leaving
/// the promise (and the event loop) hanging.
pub(crate) fn spawn<'env, T, V, F, C>(env: &'env Env, task: F, convert: C) -> napi::Result<Object<'env>>
where
    T: Send + 'static,
    V: ToNapiValue + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    C: FnOnce(&Env, T) -> napi::Result<V> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<V, Resolver<V>>()?;
    purple_rain::runtime::handle().spawn(async move {
        let outcome = match AssertUnwindSafe(task).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(Failure::panic(panic_message(&panic))),
        };
        deferred.resolve(Box::new(move |env: Env| match outcome {
            Ok(value) => convert(&env, value),
            Err(failure) => Err(failure.into_napi(&env)),
        }));
    });
    Ok(promise)
}

/// Polls `task` once here on the JS thread, with the library runtime entered, and returns
/// `convert(output)` itself when it is already done (a Memory-adapter poll always is); else
/// hands the task to the runtime as [`spawn`] does and returns its promise. `index.js` awaits
/// either. A ready page is then read, converted and later freed on this one thread with no
/// hand-off: the wake-up of the JS thread that settling a promise from the runtime costs was
/// most of the time of a page (the C ABI's `pr_poll` also reads on the calling thread).
///
/// A task that is not ready has registered a no-op waker; the runtime polls it again at once,
/// with its own, which the future contract makes the one that counts.
pub(crate) fn now_or_spawn<T, V, F, C>(env: &Env, task: F, convert: C) -> napi::Result<RawValue>
where
    T: Send + 'static,
    V: ToNapiValue + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    C: FnOnce(&Env, T) -> napi::Result<V> + Send + 'static,
{
    let mut task = Box::pin(task);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let _entered = purple_rain::runtime::handle().enter();
        task.as_mut().poll(&mut cx)
    }));
    let outcome = match polled {
        Ok(Poll::Pending) => return spawn(env, task, convert).map(|promise| RawValue(promise.raw())),
        Ok(Poll::Ready(outcome)) => outcome,
        Err(panic) => Err(Failure::panic(panic_message(&panic))),
    };
    match outcome {
        // SAFETY: `env` is the live env of this callback.
        Ok(value) => unsafe { V::to_napi_value(env.raw(), convert(env, value)?) }.map(RawValue),
        Err(failure) => rejected(env, failure).map(|promise| RawValue(promise.raw())),
    }
}

/// A promise already rejected with `failure`, for argument errors of async methods: they
/// reject like every other failure of the call instead of throwing synchronously.
pub(crate) fn rejected<'env>(env: &'env Env, failure: Failure) -> napi::Result<Object<'env>> {
    let (deferred, promise) = env.create_deferred::<(), Resolver<()>>()?;
    deferred.reject(failure.into_napi(env));
    Ok(promise)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    format!("purple-rain panicked: {text}")
}
