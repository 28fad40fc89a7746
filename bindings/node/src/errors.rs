//! Failures on their way to JavaScript, with the stable Node `code` strings.
//!
//! A code is the library's [`ErrorKind::code`]: the kind's C status name without `PR_ERR_`. So
//! the codes come from the same table as the C statuses and the Go sentinels
//! (`purple_rain::error::ErrorKind`), and this binding keeps no list of its own. `index.d.ts`
//! declares them for TypeScript; a test here checks that declaration against the table.

use napi::bindgen_prelude::{Env, JsError, Unknown};
use napi::{sys, JsValue};
use purple_rain::error::ErrorKind;
use std::ffi::CStr;

/// Every code a Node caller can see, in status-number order.
pub(crate) fn codes() -> impl Iterator<Item = &'static str> {
    ErrorKind::ALL.iter().map(|kind| kind.code())
}

/// A failure on its way to JavaScript: its kind, the library's message and the numbers that go
/// with it as properties of the `Error` (`accepted` for batch ingest, `undelivered` and
/// `dropped` for a flush that timed out).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    pub(crate) counts: Vec<(&'static CStr, f64)>,
}

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), counts: Vec::new() }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn shutting_down() -> Self {
        Self::from(purple_rain::IngestionError::ShuttingDown)
    }

    /// The failure for a panic caught in the library or the binding.
    pub(crate) fn panic(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Panic, message)
    }

    /// The stable `code` string.
    pub(crate) fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// Records how many events of a batch were accepted before this failure.
    pub(crate) fn with_accepted(self, accepted: u32) -> Self {
        self.with_count(c"accepted", f64::from(accepted))
    }

    /// Adds a numeric property to the `Error` (numbers above 2^53 lose precision, as in
    /// `stats()`).
    pub(crate) fn with_count(mut self, name: &'static CStr, value: f64) -> Self {
        self.counts.push((name, value));
        self
    }

    /// Builds the JS `Error` (with `code` and the counts) and wraps it so napi throws or rejects
    /// with exactly that object. Must run on the JS thread of `env`.
    pub(crate) fn into_napi(self, env: &Env) -> napi::Error {
        let error = JsError::from(napi::Error::new(self.code(), self.message)).into_unknown(*env);
        for (name, value) in self.counts {
            set_number(env, &error, name, value);
        }
        napi::Error::from(error)
    }
}

impl From<purple_rain::FlushError> for Failure {
    /// A timeout carries `undelivered` and `dropped`; other flush failures are the adapter's.
    fn from(e: purple_rain::FlushError) -> Self {
        let failure = Self::new(e.kind(), e.to_string());
        match e {
            purple_rain::FlushError::Timeout { undelivered, dropped } => {
                failure.with_count(c"undelivered", undelivered as f64).with_count(c"dropped", dropped as f64)
            }
            _ => failure,
        }
    }
}

/// Best effort: a failed property write leaves the error without the extra field.
fn set_number(env: &Env, target: &Unknown<'_>, name: &CStr, value: f64) {
    let mut number = std::ptr::null_mut();
    // SAFETY: `env` is the live env of this JS thread and `target` a value created in it during
    // this callback; the out-pointers are valid locals and `name` is NUL-terminated.
    unsafe {
        if sys::napi_create_double(env.raw(), value, &mut number) == sys::Status::napi_ok {
            sys::napi_set_named_property(env.raw(), target.raw(), name.as_ptr(), number);
        }
    }
}

/// Every error type of the library becomes a failure of its own kind, with its own message.
macro_rules! from_library_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Self {
                Self::new(e.kind(), e.to_string())
            }
        }
    )*};
}

from_library_errors!(
    purple_rain::IngestionError,
    purple_rain::AdapterError,
    purple_rain::ConsumerError,
    purple_rain::ConfigError,
    purple_rain::ScalingError
);

#[cfg(test)]
mod tests {
    use super::*;
    use purple_rain::{AdapterError, ConfigError, ConsumerError, EventBusConfig, IngestionError, ScalingError};

    /// `index.d.ts` declares exactly the library's codes, in its order: a kind added to or
    /// removed from the table fails here until the declaration follows.
    #[test]
    fn the_typescript_codes_are_the_library_kinds() {
        // `export type ErrorCode =` and its members, up to the blank line that ends it.
        let declaration = include_str!("../index.d.ts");
        let union =
            declaration.split("export type ErrorCode =").nth(1).and_then(|rest| rest.split("\n\n").next()).unwrap();
        let declared: Vec<&str> =
            union.split('|').map(|member| member.trim().trim_matches('\'')).filter(|m| !m.is_empty()).collect();
        assert_eq!(declared, codes().collect::<Vec<_>>());
    }

    #[test]
    fn each_error_takes_the_code_of_its_kind() {
        let json = || serde_json::from_str::<u8>("x").unwrap_err();
        let cases = [
            (Failure::from(IngestionError::Backpressure), "BACKPRESSURE"),
            (Failure::from(IngestionError::Unrouted), "UNROUTED"),
            (Failure::from(IngestionError::ShuttingDown), "SHUTTING_DOWN"),
            (Failure::from(IngestionError::Serialization(json())), "INVALID_JSON"),
            (Failure::from(ConsumerError::InvalidCursor("x".into())), "INVALID_CURSOR"),
            (Failure::from(ConsumerError::InvalidFilter("x".into())), "INVALID_FILTER"),
            (Failure::from(ConsumerError::InvalidRequest("x".into())), "INVALID_REQUEST"),
            (Failure::from(AdapterError::Serialization(json())), "ADAPTER"),
            (Failure::from(AdapterError::Transient("x".into())), "ADAPTER_TRANSIENT"),
            (Failure::from(AdapterError::Connection("x".into())), "ADAPTER_CONNECTION"),
            (Failure::from(AdapterError::Fatal("x".into())), "ADAPTER_FATAL"),
            (Failure::from(AdapterError::Backpressure), "ADAPTER_BACKPRESSURE"),
            (Failure::from(AdapterError::Corrupt("x".into())), "DISK_CORRUPT"),
            (Failure::from(AdapterError::Locked("x".into())), "DISK_LOCKED"),
            (Failure::from(EventBusConfig::from_json("{\"bogus\":1}").unwrap_err()), "CONFIG"),
            (Failure::from(ScalingError::UnknownShard(9)), "SCALING"),
            (Failure::invalid_argument("x"), "INVALID_ARGUMENT"),
            (Failure::panic("x"), "PANIC"),
        ];
        for (failure, code) in cases {
            assert_eq!(failure.code(), code, "{}", failure.message);
            assert!(codes().any(|c| c == code), "{code}");
        }
    }

    #[test]
    fn an_adapter_failure_keeps_the_adapter_code_wherever_it_surfaces() {
        let adapter = || AdapterError::Connection("refused".into());
        assert_eq!(Failure::from(ConsumerError::Adapter(adapter())).code(), "ADAPTER_CONNECTION");
        assert_eq!(Failure::from(ConfigError::Adapter(adapter())).code(), "ADAPTER_CONNECTION");
        assert_eq!(Failure::from(ScalingError::Adapter(adapter())).code(), "ADAPTER_CONNECTION");
    }

    #[test]
    fn shutdown_reads_the_same_everywhere() {
        assert_eq!(Failure::from(ConsumerError::Adapter(AdapterError::Shutdown)).code(), "SHUTTING_DOWN");
        assert_eq!(Failure::from(ScalingError::ShuttingDown).code(), "SHUTTING_DOWN");
        assert_eq!(Failure::from(AdapterError::Shutdown).code(), "SHUTTING_DOWN");
        assert_eq!(Failure::shutting_down().code(), "SHUTTING_DOWN");
    }

    #[test]
    fn a_flush_timeout_is_timeout_with_its_counts() {
        let f = Failure::from(purple_rain::FlushError::Timeout { undelivered: 7, dropped: 2 });
        assert_eq!(f.code(), "TIMEOUT");
        assert_eq!(f.counts, [(c"undelivered", 7.0), (c"dropped", 2.0)]);
        assert!(f.message.contains("7 events not yet delivered"), "{}", f.message);
        let f = Failure::from(purple_rain::FlushError::Adapter(AdapterError::Shutdown));
        assert_eq!((f.code(), f.counts.len()), ("SHUTTING_DOWN", 0));
    }

    #[test]
    fn messages_come_from_the_library() {
        let f = Failure::from(ConsumerError::InvalidCursor("truncated".into()));
        assert_eq!(f.message, "invalid cursor: truncated");
    }
}
