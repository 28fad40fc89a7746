//! The one mapping from the library's error kinds to the stable Node `code` strings.
//!
//! Every failure that reaches JavaScript goes through [`Failure`]: the code is fixed here, the
//! message is the library's `Display`. The same kinds exist as C statuses and Go sentinels, so
//! a kind added to `purple_rain::error` gets a line here too.

use napi::bindgen_prelude::{Env, JsError, Unknown};
use napi::{sys, JsValue};
use purple_rain::{AdapterError, ConfigError, ConsumerError, IngestionError, ScalingError};

/// Every code a Node caller can see, in the order of `index.d.ts`'s `ErrorCode`.
pub(crate) const CODES: [&str; 15] = [
    BACKPRESSURE,
    SAMPLED,
    UNROUTED,
    SHUTTING_DOWN,
    SERIALIZATION,
    INVALID_CURSOR,
    INVALID_FILTER,
    INVALID_REQUEST,
    ADAPTER,
    ADAPTER_TRANSIENT,
    ADAPTER_CONNECTION,
    ADAPTER_FATAL,
    CONFIG,
    SCALING,
    INVALID_ARGUMENT,
];

pub(crate) const BACKPRESSURE: &str = "BACKPRESSURE";
pub(crate) const SAMPLED: &str = "SAMPLED";
pub(crate) const UNROUTED: &str = "UNROUTED";
pub(crate) const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
pub(crate) const SERIALIZATION: &str = "SERIALIZATION";
pub(crate) const INVALID_CURSOR: &str = "INVALID_CURSOR";
pub(crate) const INVALID_FILTER: &str = "INVALID_FILTER";
pub(crate) const INVALID_REQUEST: &str = "INVALID_REQUEST";
pub(crate) const ADAPTER: &str = "ADAPTER";
pub(crate) const ADAPTER_TRANSIENT: &str = "ADAPTER_TRANSIENT";
pub(crate) const ADAPTER_CONNECTION: &str = "ADAPTER_CONNECTION";
pub(crate) const ADAPTER_FATAL: &str = "ADAPTER_FATAL";
pub(crate) const CONFIG: &str = "CONFIG";
pub(crate) const SCALING: &str = "SCALING";
pub(crate) const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";

/// A failure on its way to JavaScript: a stable code, the library's message and, for batch
/// ingest, how many events went in before it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) accepted: Option<u32>,
}

impl Failure {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), accepted: None }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(INVALID_ARGUMENT, message)
    }

    pub(crate) fn shutting_down() -> Self {
        Self::from(IngestionError::ShuttingDown)
    }

    /// Records how many events of a batch were accepted before this failure.
    pub(crate) fn with_accepted(mut self, accepted: u32) -> Self {
        self.accepted = Some(accepted);
        self
    }

    /// Builds the JS `Error` (with `code`, and `accepted` when set) and wraps it so napi throws
    /// or rejects with exactly that object. Must run on the JS thread of `env`.
    pub(crate) fn into_napi(self, env: &Env) -> napi::Error {
        let accepted = self.accepted;
        let error = JsError::from(napi::Error::new(self.code, self.message)).into_unknown(*env);
        if let Some(accepted) = accepted {
            set_number(env, &error, c"accepted", f64::from(accepted));
        }
        napi::Error::from(error)
    }
}

/// Best effort: a failed property write leaves the error without the extra field.
fn set_number(env: &Env, target: &Unknown<'_>, name: &std::ffi::CStr, value: f64) {
    let mut number = std::ptr::null_mut();
    // SAFETY: `env` is the live env of this JS thread and `target` a value created in it during
    // this callback; the out-pointers are valid locals and `name` is NUL-terminated.
    unsafe {
        if sys::napi_create_double(env.raw(), value, &mut number) == sys::Status::napi_ok {
            sys::napi_set_named_property(env.raw(), target.raw(), name.as_ptr(), number);
        }
    }
}

impl From<IngestionError> for Failure {
    fn from(e: IngestionError) -> Self {
        let code = match &e {
            IngestionError::Backpressure => BACKPRESSURE,
            IngestionError::Sampled => SAMPLED,
            IngestionError::Unrouted => UNROUTED,
            IngestionError::ShuttingDown => SHUTTING_DOWN,
            IngestionError::Serialization(_) => SERIALIZATION,
        };
        Self::new(code, e.to_string())
    }
}

impl From<AdapterError> for Failure {
    fn from(e: AdapterError) -> Self {
        let code = match &e {
            // Retryable like a transient failure: the backend is full for now.
            AdapterError::Transient(_) | AdapterError::Backpressure => ADAPTER_TRANSIENT,
            AdapterError::Fatal(_) => ADAPTER_FATAL,
            AdapterError::Connection(_) => ADAPTER_CONNECTION,
            // The bus (and with it the adapter) was shut down: the caller's view is the bus's.
            AdapterError::Shutdown => SHUTTING_DOWN,
            AdapterError::Serialization(_) => ADAPTER,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ConsumerError> for Failure {
    fn from(e: ConsumerError) -> Self {
        match e {
            ConsumerError::Adapter(inner) => {
                let code = Self::from(inner.clone()).code;
                Self::new(code, ConsumerError::Adapter(inner).to_string())
            }
            ConsumerError::InvalidCursor(_) => Self::new(INVALID_CURSOR, e.to_string()),
            ConsumerError::InvalidFilter(_) => Self::new(INVALID_FILTER, e.to_string()),
            ConsumerError::InvalidRequest(_) => Self::new(INVALID_REQUEST, e.to_string()),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        let code = match &e {
            // The config was fine; the backend it names could not be reached or started.
            ConfigError::Adapter(inner) => Self::from(inner.clone()).code,
            _ => CONFIG,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ScalingError> for Failure {
    fn from(e: ScalingError) -> Self {
        let code = match &e {
            ScalingError::ShuttingDown => SHUTTING_DOWN,
            ScalingError::Adapter(inner) => Self::from(inner.clone()).code,
            _ => SCALING,
        };
        Self::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code() {
        let all = [
            Failure::from(IngestionError::Backpressure).code,
            Failure::from(IngestionError::Sampled).code,
            Failure::from(IngestionError::Unrouted).code,
            Failure::from(IngestionError::ShuttingDown).code,
            Failure::from(ConsumerError::InvalidCursor("x".into())).code,
            Failure::from(ConsumerError::InvalidFilter("x".into())).code,
            Failure::from(ConsumerError::InvalidRequest("x".into())).code,
            Failure::from(AdapterError::Serialization(serde_json::from_str::<u8>("x").unwrap_err())).code,
            Failure::from(AdapterError::Transient("x".into())).code,
            Failure::from(AdapterError::Connection("x".into())).code,
            Failure::from(AdapterError::Fatal("x".into())).code,
            Failure::from(ConfigError::Json("x".into())).code,
            Failure::from(ScalingError::UnknownShard(9)).code,
            Failure::invalid_argument("x").code,
        ];
        for code in all {
            assert!(CODES.contains(&code), "{code}");
        }
        let mut unique = all.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert_eq!(
            Failure::from(IngestionError::Serialization(serde_json::from_str::<u8>("x").unwrap_err())).code,
            SERIALIZATION
        );
    }

    #[test]
    fn shutdown_reads_the_same_everywhere() {
        assert_eq!(Failure::from(ConsumerError::Adapter(AdapterError::Shutdown)).code, SHUTTING_DOWN);
        assert_eq!(Failure::from(ScalingError::ShuttingDown).code, SHUTTING_DOWN);
        assert_eq!(Failure::from(AdapterError::Shutdown).code, SHUTTING_DOWN);
        assert_eq!(Failure::shutting_down().code, SHUTTING_DOWN);
    }

    #[test]
    fn messages_come_from_the_library() {
        let f = Failure::from(ConsumerError::InvalidCursor("truncated".into()));
        assert_eq!(f.message, "invalid cursor: truncated");
    }
}
