//! Node.js binding of purple-rain (napi-rs v3): `require('purple-rain')`.
//!
//! The native side is the `EventBus` class; `index.js` adds the parts best written in
//! JavaScript (`EventBus.create` accepting objects, `ingest` via `JSON.stringify`, `poll`
//! unpacking pages into event objects, `subscribe` as an async iterator).
//!
//! Layout: [`bus`] the class, [`fast`] its ingest calls as raw napi callbacks, [`args`] argument reading (all raw-pointer `unsafe`), [`errors`]
//! the one error-kind → `code` mapping, [`page`] stats and scaling advice, [`poll_page`] poll pages as flat arrays, [`promise`]
//! promises settled from the library runtime, [`lifetime`] shutdown of collected buses.

#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod args;
mod bus;
mod errors;
mod fast;
mod lifetime;
mod page;
mod poll_page;
mod promise;

use napi_derive::napi;

/// The library version (the Rust crate's). `index.js` exports it as the string `version`.
#[napi(skip_typescript)]
pub fn version() -> String {
    purple_rain::VERSION.to_owned()
}

/// Every error `code` the binding can throw or reject with. `index.js` exports them as the
/// `ErrorCode` object, which `index.d.ts` declares.
#[napi(skip_typescript)]
pub fn error_codes() -> Vec<String> {
    errors::codes().map(str::to_owned).collect()
}
