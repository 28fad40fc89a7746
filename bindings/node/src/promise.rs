//! Promises settled from the library runtime.
//!
//! Async calls run as tasks on purple-rain's own runtime (the one the bus already uses), not on
//! a second tokio runtime inside the addon and not on libuv's small thread pool, where a long
//! poll would hold a thread for its whole wait. The JS thread only creates the promise and,
//! when the task ends, converts its result; it never waits.

use crate::errors::Failure;
use futures_util::FutureExt;
use napi::bindgen_prelude::{Env, Object, ToNapiValue};
use std::future::Future;
use std::panic::AssertUnwindSafe;

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
